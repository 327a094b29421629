--- Events (API.md §2): plain Lua tables, one per event, holding a header
-- (`topic`, `originator_id`, `originator_version`, `timestamp`, `event_id`,
-- `metadata`) and the payload fields. `pairs(event)` lists them all; changing
-- an event table changes nothing recorded.
-- @module cairn.event
local type, pairs = type, pairs

local _M = { _VERSION = "0.1.0" }

--- The names of an event's header: no payload field may take one of them.
_M.HEADER = { topic = true, originator_id = true, originator_version = true, timestamp = true,
              event_id = true, metadata = true }
local HEADER = _M.HEADER

--- The payload fields of an event, as a new plain table.
function _M.fields(event)
  local fields = {}
  for k, v in pairs(event) do
    if not HEADER[k] then fields[k] = v end
  end
  return fields
end

--- Is v shaped like an event (a table with a topic, an originator id and version, and a timestamp)?
function _M.is_event(v)
  return type(v) == "table" and type(v.topic) == "string" and type(v.originator_id) == "string"
    and type(v.originator_version) == "number" and type(v.timestamp) == "number"
end

--- Internal (upcasting): the event that holds `fields` with `event`'s header.
function _M.with_header(fields, event)
  for k in pairs(HEADER) do fields[k] = event[k] end
  return fields
end

return _M
