--- A progress bar on stderr, drawn only when stderr is a terminal: done of
-- total, the rate and the time left (or, without a total, a count and rate).
-- @module cairn.progress
local core = require "cairn.core"

local io_stderr, floor, setmetatable = io.stderr, math.floor, setmetatable
local now_us = core.now_us

local _M = { _VERSION = "0.1.0" }
local Bar = {}
Bar.__index = Bar

local WIDTH = 24
local EVERY_US = 100000 -- redraw at most ten times a second

--- A bar labelled `what`; nothing is drawn unless stderr is a terminal.
-- @param what the label
-- @param[opt] unit what is counted ("events", "bytes"), shown with the rate
function _M.new(what, unit)
  return setmetatable({ what = what, unit = unit or "", on = core.isatty(2), drawn = false, start = now_us(),
                        last_draw = 0 }, Bar)
end

--- 1234567 as "1,234,567".
local function grouped(n)
  local s = tostring(floor(n))
  local sign, digits = s:match("^(%-?)(%d+)$")
  if not digits then return s end
  local head = #digits % 3 == 0 and 3 or #digits % 3
  return sign .. digits:sub(1, head) .. digits:sub(head + 1):gsub("(%d%d%d)", ",%1")
end
_M.grouped = grouped

--- Seconds as "7s", "3m05s" or "2h07m".
local function duration(s)
  s = floor(s + 0.5)
  if s < 60 then return s .. "s" end
  if s < 3600 then return ("%dm%02ds"):format(floor(s / 60), s % 60) end
  return ("%dh%02dm"):format(floor(s / 3600), floor(s % 3600 / 60))
end
_M.duration = duration

--- The text of the bar for `done` of `total` (nil: unknown) after `elapsed` seconds.
function _M.line(what, unit, done, total, elapsed)
  local rate = elapsed > 0 and done / elapsed or 0
  local rate_s = rate > 0 and (" %s %s/s"):format(grouped(rate), unit ~= "" and unit or "") or ""
  if not total or total <= 0 then
    return ("%s %s%s"):format(what, grouped(done), rate_s)
  end
  local frac = done >= total and 1 or done / total
  local filled = floor(WIDTH * frac)
  local eta = ""
  if done < total and rate > 0 then eta = " ETA " .. duration((total - done) / rate) end
  return ("%s [%s%s] %3d%% %s/%s%s%s"):format(what, ("#"):rep(filled), ("."):rep(WIDTH - filled),
    floor(frac * 100), grouped(done), grouped(total), rate_s, eta)
end

--- Show `done` of `total` (total may be nil when it is not known).
function Bar:update(done, total)
  if not self.on then return end
  local t = now_us()
  if t - self.last_draw < EVERY_US and not (total and done >= total) then return end
  self.last_draw = t
  self.drawn = true
  io_stderr:write("\r", _M.line(self.what, self.unit, done, total, (t - self.start) / 1e6), "\27[K")
end

--- End the bar: clear its line, or, with keep, leave it and end the line.
function Bar:finish(keep)
  if self.on and self.drawn then io_stderr:write(keep and "\n" or "\r\27[K") end
  self.drawn = false
end

return _M
