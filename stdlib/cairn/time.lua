--- Timestamps that events can carry: microseconds since the epoch, stored exactly.
-- @module cairn.time
local core = require "cairn.core"

local setmetatable, floor, type, os_date = setmetatable, math.floor, type, os.date

local _M = { _VERSION = "0.1.0" }

-- the C codec recognises time values by this metatable
local mt = core.time_metatable
mt.__index = _M

local function from_us(us)
  return setmetatable({ us = floor(us) }, mt)
end

--- The current time.
function _M.now()
  return from_us(core.now_us())
end

--- A time from microseconds since the epoch.
_M.from_us = from_us

--- A time from (fractional) seconds since the epoch, kept to the microsecond.
function _M.from_seconds(s)
  return from_us(floor(s * 1e6 + 0.5))
end

--- Is v a time value?
function _M.is_time(v)
  return type(v) == "table" and getmetatable(v) == mt
end

--- Seconds since the epoch, as a number.
function _M:seconds()
  return self.us / 1e6
end

--- ISO 8601 in UTC with microseconds, e.g. 2026-11-22T09:34:10.123456Z.
function _M:iso()
  local s = floor(self.us / 1e6)
  return os_date("!%Y-%m-%dT%H:%M:%S", s) .. (".%06dZ"):format(self.us - s * 1e6)
end

mt.__tostring = _M.iso
mt.__eq = function(a, b) return a.us == b.us end
mt.__lt = function(a, b) return a.us < b.us end
mt.__le = function(a, b) return a.us <= b.us end
mt.__sub = function(a, b) return (a.us - b.us) / 1e6 end
-- JSON export writes a time as {"$time": microseconds}
mt.__cairn_json = function(t) return { ["$time"] = t.us } end

return _M
