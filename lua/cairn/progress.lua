--- A progress bar on stderr, drawn only when stderr is a terminal.
-- @module cairn.progress
local core = require "cairn.core"

local io_stderr, floor, setmetatable = io.stderr, math.floor, setmetatable

local _M = { _VERSION = "0.1.0" }
local Bar = {}
Bar.__index = Bar

local WIDTH = 30

--- A bar labelled `what`; nothing is drawn unless stderr is a terminal.
function _M.new(what)
  return setmetatable({ what = what, on = core.isatty(2), last = -1 }, Bar)
end

--- Show `done` of `total`.
function Bar:update(done, total)
  if not self.on or total <= 0 then return end
  local pct = floor(done * 100 / total)
  if pct == self.last then return end
  self.last = pct
  local filled = floor(WIDTH * done / total)
  io_stderr:write(("\r%s [%s%s] %3d%% %d/%d"):format(self.what, ("#"):rep(filled), ("."):rep(WIDTH - filled),
    pct, done, total))
end

--- End the bar: clear its line, or, with keep, leave it and end the line.
function Bar:finish(keep)
  if self.on and self.last >= 0 then io_stderr:write(keep and "\n" or "\r\27[K") end
end

return _M
