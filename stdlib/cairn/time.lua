--- Timestamps that events can carry: microseconds since the epoch, stored exactly.
-- @module cairn.time
local core = require "cairn.core"

local setmetatable, getmetatable, floor, type, tonumber = setmetatable, getmetatable, math.floor, type, tonumber
local os_date = os.date

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

-- days since 1970-01-01 of a civil date (proleptic Gregorian; H. Hinnant's algorithm)
local function days_from_civil(y, m, d)
  if m <= 2 then y = y - 1 end
  local era = floor(y / 400)
  local yoe = y - era * 400
  local mp = (m + 9) % 12
  local doy = floor((153 * mp + 2) / 5) + d - 1
  local doe = yoe * 365 + floor(yoe / 4) - floor(yoe / 100) + doy
  return era * 146097 + doe - 719468
end

--- The time an ISO 8601 UTC string names, as `iso` writes it (the fraction
-- is optional, up to 6 digits): "2026-11-22T09:34:10.123456Z".
-- @return a time, or nil if s is not such a string
function _M.parse_iso(s)
  if type(s) ~= "string" then return nil end
  local y, mo, d, h, mi, sec, frac = s:match("^(%d%d%d%d)%-(%d%d)%-(%d%d)T(%d%d):(%d%d):(%d%d)%.?(%d*)Z$")
  if not y then return nil end
  y, mo, d, h, mi, sec = tonumber(y), tonumber(mo), tonumber(d), tonumber(h), tonumber(mi), tonumber(sec)
  if mo < 1 or mo > 12 or d < 1 or d > 31 or h > 23 or mi > 59 or sec > 60 or #frac > 6 then return nil end
  local us = tonumber((frac .. "000000"):sub(1, 6))
  return from_us(((days_from_civil(y, mo, d) * 24 + h) * 60 + mi) * 60 * 1e6 + sec * 1e6 + us)
end

mt.__tostring = _M.iso
mt.__eq = function(a, b) return a.us == b.us end
mt.__lt = function(a, b) return a.us < b.us end
mt.__le = function(a, b) return a.us <= b.us end
mt.__sub = function(a, b) return (a.us - b.us) / 1e6 end
-- JSON export writes a time as {"$time": microseconds}
mt.__cairn_json = function(t) return { ["$time"] = t.us } end

return _M
