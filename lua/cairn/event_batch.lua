--- Events for followers, made from the flat parts of
-- `store:read_log(start, nil, stop, topics, true)`: per notification its id
-- and its event's data table (fields and header, with room for the
-- metamethods). Sealing here rather than in C lets LuaJIT compile the table
-- stores: the events are the same read-only tables the core makes.
-- @module cairn.event_batch
local core = require "cairn.core"

local setmetatable, getmetatable = setmetatable, getmetatable

local _M = { _VERSION = "0.1.0", STRIDE = 2 }

-- the metamethods every event shares, taken from one the core makes
local probe = getmetatable(core.make_event("Probe.Made", "00000000-0000-4000-8000-000000000000", 1, 0, {}))
local READONLY, INSPECT = probe.__newindex, probe.__cairn_inspect

--- Read notifications (start .. stop) with a topic filter; in the returned
-- array, parts[i] is a notification id and parts[i + 1] its event, for
-- i = 1, 1 + STRIDE, ...
function _M.read(store, start, stop, topics)
  local parts = store:read_log(start, nil, stop, topics, true)
  for i = 2, #parts, 2 do
    local d = parts[i]
    d.__index = d
    d.__newindex = READONLY
    d.__cairn_inspect = INSPECT
    parts[i] = setmetatable({}, d)
  end
  return parts
end

return _M
