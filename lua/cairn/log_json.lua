--- Notifications as plain tables for JSON, and back: the lines of `cairn
-- export`/`import`, and the items of log sections served over HTTP
-- (examples/http_service) and read by `cairn.remote_log`.
--
-- An item: `{ id, originator_id, originator_version, topic, timestamp
-- (ISO 8601 UTC, µs), fields, event_id (when the event has one), metadata
-- (only when not empty), forgotten (only when true), class_version (only
-- when not 1) }`; `cairn export` adds `dcb = true` to DCB events (API.md
-- §9). Notifications themselves are shaped by cairn.recorder.
-- @module cairn.log_json
local core = require "cairn.core"
local event = require "cairn.event"
local json = require "cairn.json"
local recorder = require "cairn.recorder"
local time = require "cairn.time"

local type, pcall, tostring, next = type, pcall, tostring, next
local make_event, uuid_normalize, aggregate_id = core.make_event, core.uuid_normalize, core.aggregate_id
local event_fields, notification = event.fields, recorder.notification

local _M = { _VERSION = "0.1.0" }

--- The item of a notification (from `log:select` or a recorder's `read_log`).
function _M.item(n)
  local ev = n.event
  local metadata = ev.metadata
  return {
    id = n.id, originator_id = n.originator_id, originator_version = n.originator_version,
    topic = n.topic, timestamp = time.from_seconds(ev.timestamp):iso(),
    fields = json.object(event_fields(ev)), forgotten = n.forgotten, event_id = ev.event_id,
    metadata = type(metadata) == "table" and next(metadata) ~= nil and metadata or nil,
    class_version = n.class_version ~= 1 and n.class_version or nil,
  }
end

--- A log section (`log:section(id)`) with its notifications as items.
function _M.section(s)
  local items = {}
  for i = 1, #s.items do items[i] = _M.item(s.items[i]) end
  return { id = s.id, items = items, previous_id = s.previous_id, next_id = s.next_id }
end

--- Options for `cairn.json.decode`: `{"$time": n}` becomes a time value.
_M.DECODE = { time = function(us)
  -- whole microseconds that a double holds exactly (found by fuzzing: a string
  -- here raised a bare Lua error, 1e300 reached C as an int64 overflow)
  if type(us) ~= "number" or us % 1 ~= 0 or us > 2 ^ 53 or us < -2 ^ 53 then
    return nil, "a time must be whole microseconds within 2^53 of the epoch"
  end
  return time.from_us(us)
end }

-- A whole number from 0 to 2^53 (what a double keeps exactly; ids and
-- versions beyond it are refused here, not reported by C as a wrapped int64).
local function whole(v) return type(v) == "number" and v >= 0 and v % 1 == 0 and v <= 2 ^ 53 end

--- The notification an item describes, its event like those of a local log
-- (made with `core.make_event`, so its fields are values an event may carry).
-- @param rec a decoded item
-- @return[1] the notification (cairn.recorder's shape), the event's encoded
--   payload, its timestamp in µs and its encoded metadata (nil when none)
-- @return[2] nil, a message saying what is wrong with the item
function _M.notification(rec)
  if type(rec) ~= "table" or rec[1] ~= nil then return nil, "expected a JSON object" end
  if not whole(rec.id) or rec.id < 1 then return nil, "id must be a whole number from 1 to 2^53" end
  local id, problem = aggregate_id(rec.originator_id)
  if not id then return nil, "originator_id " .. problem end
  if not whole(rec.originator_version) then
    return nil, "originator_version must be a whole number from 0 to 2^53"
  end
  if type(rec.topic) ~= "string" or rec.topic == "" then return nil, "topic must be a string" end
  local t = time.parse_iso(rec.timestamp)
  if not t then return nil, "timestamp must look like 2026-11-22T09:34:10.123456Z" end
  local class_version = rec.class_version == nil and 1 or rec.class_version
  if not whole(class_version) or class_version < 1 or class_version > 65535 then
    return nil, "class_version must be a whole number from 1 to 65535"
  end
  local fields = rec.fields == nil and {} or rec.fields
  if type(fields) ~= "table" then return nil, "fields must be an object" end
  if rec.metadata ~= nil and type(rec.metadata) ~= "table" then return nil, "metadata must be an object" end
  if rec.event_id ~= nil and not (type(rec.event_id) == "string" and uuid_normalize(rec.event_id) == rec.event_id) then
    return nil, "event_id must be a lower-case UUID"
  end
  local ok, ev, payload, metadata = pcall(make_event, rec.topic, id, rec.originator_version, t.us, fields,
    false, rec.metadata, rec.event_id)
  if not ok then return nil, type(ev) == "table" and ev.message or tostring(ev) end
  if rec.event_id == nil then ev.event_id = nil end -- exported from a store that had no event ids
  return notification(rec.id, ev, class_version, rec.forgotten == true), payload, t.us, metadata
end

return _M
