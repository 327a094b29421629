--- cairn: event sourcing for Lua. `local cairn = require "cairn"`
-- @module cairn
local core = require "cairn.core"
local aggregate = require "cairn.aggregate"
local application = require "cairn.application"

local _M = {
  _VERSION = core.version,
  errors = require "cairn.errors",
  uuid = require "cairn.uuid",
  time = require "cairn.time",
  --- Define an aggregate class (API.md §2).
  aggregate = aggregate.define,
  --- Define an application class (API.md §3).
  application = application.define,
  --- Is v an event (a read-only event table)?
  is_event = core.is_event,
  --- The payload fields of an event, as a plain table.
  event_fields = core.event_fields,
}

return _M
