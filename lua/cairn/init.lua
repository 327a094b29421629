--- cairn: event sourcing for Lua. `local cairn = require "cairn"`
-- @module cairn
local core = require "cairn.core"
local event = require "cairn.event"
local aggregate = require "cairn.aggregate"
local application = require "cairn.application"
local projection = require "cairn.projection"
local view = require "cairn.view"
local process = require "cairn.process"
local system = require "cairn.system"
local runner = require "cairn.runner"
local reload = require "cairn.reload"
local remote_log = require "cairn.remote_log"

local _M = {
  _VERSION = core.version,
  errors = require "cairn.errors",
  uuid = require "cairn.uuid",
  time = require "cairn.time",
  --- Define an aggregate class (API.md §2).
  aggregate = aggregate.define,
  --- Define an application class (API.md §3).
  application = application.define,
  --- Define a projection (API.md §4).
  projection = projection.define,
  --- Runs a projection into a view: `ProjectionRunner.new { application, projection, view }`.
  ProjectionRunner = projection.Runner,
  --- Open a view directly: `cairn.view(uri_or_store, name)`.
  view = view.open,
  --- Define a process application (API.md §5).
  process_application = process.define,
  --- Define a system of applications: `cairn.system { pipes = { { Leader, Follower } } }`.
  system = system.define,
  --- Runs a system in this process, followers after each leader save.
  SingleThreadedRunner = runner.SingleThreadedRunner,
  --- Read a notification log served over HTTP by another process: `cairn.remote_log(url [, opts])`.
  remote_log = remote_log.new,
  --- Is v shaped like an event (a table with topic, originator_id, originator_version and timestamp)?
  is_event = event.is_event,
  --- The payload fields of an event (everything but its header), as a new plain table.
  event_fields = event.fields,
  --- Load a domain module again, keeping the old one if it fails (see cairn.reload).
  reload = reload.reload,
  --- Load hosted domain code without os/io/ffi/debug, with bounded calls (see cairn.sandbox).
  sandbox = require "cairn.sandbox",
}

return _M
