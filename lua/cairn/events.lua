--- Dynamic consistency boundaries (the dcb.events specification, API.md §9)
-- on an application's own notification log: `app.events:read(query [, opts])`
-- and `app.events:append(events [, opts])`.
--
-- A DCB event is recorded as a notification whose topic is its type, with
-- the fields `data` and `tags`, as the only event of a stream of its own (its
-- `originator_id`, version 1): projections and followers see it like any
-- other. The store indexes its type and tags in the same transaction, so a
-- query reads only the events that can match, and an append's condition is
-- checked inside the transaction that records it.
-- @module cairn.events
local core = require "cairn.core"
local recorder = require "cairn.recorder"
local aggregate = require "cairn.aggregate"
local errors = require "cairn.errors"

local setmetatable, type, error, ipairs, next = setmetatable, type, error, ipairs, next
local make_event, now_us, uuid4 = core.make_event, core.now_us, core.uuid4
local add_record = recorder.add

local _M = { _VERSION = "0.1.0" }

local MAX_NAME = 255

-- A DCB event's stream id: a UUIDv7 (milliseconds first, then random), so that
-- new streams go to the end of the stream index instead of random pages.
local floor = math.floor
local function time_ordered_id(ts_us)
  local hex = ("%012x"):format(floor(ts_us / 1000))
  return hex:sub(1, 8) .. "-" .. hex:sub(9, 12) .. "-7" .. uuid4():sub(16)
end

local Events = {}
Events.__index = Events

local function bad(fname, fmt, ...)
  error(("bad argument to '%s' (%s)"):format(fname, fmt:format(...)), 4)
end

-- A list of 1..255-byte strings, or nil.
local function check_names(list, what, fname, where)
  if list == nil then return end
  if type(list) ~= "table" then bad(fname, "%s: %s must be an array of strings", where, what) end
  for i, name in ipairs(list) do
    if type(name) ~= "string" or #name == 0 or #name > MAX_NAME then
      bad(fname, "%s: %s[%d] must be a string of 1 to %d bytes", where, what, i, MAX_NAME)
    end
  end
  if #list == 0 and next(list) ~= nil then bad(fname, "%s: %s must be an array of strings", where, what) end
end

-- A query: an array of items `{ types = {...}, tags = {...} }` (each optional).
local function check_query(q, fname, what)
  if type(q) ~= "table" then bad(fname, "%s must be an array of query items", what) end
  for i = 1, #q do
    local item = q[i]
    if type(item) ~= "table" then bad(fname, "%s item %d must be a table", what, i) end
    check_names(item.types, "types", fname, ("%s item %d"):format(what, i))
    check_names(item.tags, "tags", fname, ("%s item %d"):format(what, i))
  end
  if #q == 0 and next(q) ~= nil then bad(fname, "%s must be an array of query items", what) end
  return q
end

local function position(v, name, fname)
  if v ~= nil and (type(v) ~= "number" or v < 0 or v % 1 ~= 0) then
    bad(fname, "%s must be a whole number >= 0", name)
  end
  return v or 0
end

-- The DCB events at the given positions (ascending), in one read: the binding
-- makes their tables `{ position, type, data, tags }` itself.
local function read_at(store, positions)
  if not positions[1] then return {} end
  local _, events = store:read_events { ids = positions, dcb = true }
  for k = 1, #events do
    local ev = events[k]
    if not ev.tags then ev.tags = {} end -- a forgotten event's payload is gone
  end
  return events
end

--- The DCB events matching a query, in position order.
-- @param query an array of items; an event matches an item when its type is
--   one of `types` (or `types` is absent) and it carries every tag in `tags`;
--   it matches the query when it matches one item. `{}` matches every DCB event.
-- @param[opt] opts `after` (only positions above it), `limit`
-- @return the events `{ { position, type, data, tags }, ... }`, and the head:
--   the position of the last event read, or the log's last position when none
--   matched (the `after` for an append that decided on what was read)
function Events:read(query, opts)
  check_query(query, "read", "query")
  if opts ~= nil and type(opts) ~= "table" then bad("read", "options must be a table") end
  local after = position(opts and opts.after, "after", "read")
  local limit = position(opts and opts.limit, "limit", "read")
  if opts and opts.limit == 0 then return {}, after end
  local store = self.app.store
  local positions, last = store:dcb_read(query, after, limit)
  local events = read_at(store, positions)
  local head = positions[#positions] or (last > after and last or after)
  return events, head
end

--- Record DCB events in one transaction, or none of them.
-- @param events an array of `{ type = "...", data = value, tags = { "...", ... } }`
--   (types and tags: strings of 1 to 255 bytes; data: any value an event may carry)
-- @param[opt] opts `fail_if_events_match` (a query) and `after` (a position, default 0):
--   when an event matching the query was recorded after `after`, nothing is recorded
-- @return the position of the last event recorded
-- @raise ConcurrencyError (the condition failed; nothing recorded), SchemaError (also for a type
--   that is the topic of an aggregate's event)
function Events:append(events, opts)
  if type(events) ~= "table" or #events == 0 then bad("append", "a non-empty array of events expected") end
  if opts ~= nil and type(opts) ~= "table" then bad("append", "options must be a table") end
  local condition = opts and opts.fail_if_events_match
  if condition ~= nil then check_query(condition, "append", "fail_if_events_match") end
  local after = position(opts and opts.after, "after", "append")
  local batch, dcb, n = {}, {}, 0
  local ts = now_us()
  for i = 1, #events do
    local e = events[i]
    local where = ("event %d"):format(i)
    if type(e) ~= "table" then bad("append", "%s must be a table", where) end
    if type(e.type) ~= "string" or #e.type == 0 or #e.type > MAX_NAME then
      bad("append", "%s: type must be a string of 1 to %d bytes", where, MAX_NAME)
    end
    check_names(e.tags, "tags", "append", where)
    -- a notification of that topic would be taken for the aggregate's event (replay, projections)
    local owner = aggregate.topic_owner(e.type)
    if owner then
      errors.raise("SchemaError", "%s: DCB type '%s' is the topic of an event of aggregate %s: "
        .. "DCB types must differ from aggregate topics (nothing was recorded)", where, e.type, owner)
    end
    local tags = e.tags or {}
    local id = time_ordered_id(ts)
    local _, payload, metadata, event_id = make_event(e.type, id, 1, ts, { data = e.data, tags = tags })
    n = add_record(batch, n, id, 1, ts, e.type, payload, 1, event_id, metadata)
    dcb[i] = { event = i, type = e.type, tags = tags }
  end
  local first = self.app.store:append(batch, { dcb = dcb, fail_if = condition, after = after })
  return first + #events - 1
end

--- The DCB side of an application (its `events` field).
function _M.new(app)
  return setmetatable({ app = app }, Events)
end

return _M
