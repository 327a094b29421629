--- A real terminal for specs: a tmux session on a server of its own (its own
-- socket, so nothing else is touched) running one command; keys in, screen out.
local helper = require "helper"

local q = helper.shell_quote

local _M = {}
local Term = {}
Term.__index = Term

local function tmux(self, args)
  local code, out, err = helper.run(("tmux -L %s %s"):format(q(self.socket), args))
  assert(code == 0, "tmux " .. args .. ": " .. err)
  return out
end

--- Start `cmd` in directory `cwd`, with HOME and CAIRN_HISTORY in `dir`.
-- When it ends, the screen shows `EXITED <status>`.
function _M.start(dir, cwd, cmd)
  local self = setmetatable({ socket = "cairn-spec-" .. dir:match("[^/]+$"), dir = dir }, Term)
  local env = ("env HOME=%s CAIRN_HISTORY=%s TERM=xterm LC_ALL=C.UTF-8 "):format(q(dir), q(dir .. "/history"))
  tmux(self, ("-f /dev/null new-session -d -x 150 -y 50 -s spec %s"):format(q("cd " .. q(cwd) .. " && " .. env
    .. cmd .. "; echo EXITED $?; sleep 30")))
  return self
end

--- Send keys by tmux's names ("Enter", "C-c", "Tab", "Up").
function Term:keys(...)
  local args = {}
  for i = 1, select("#", ...) do args[i] = q((select(i, ...))) end
  tmux(self, "send-keys -t spec " .. table.concat(args, " "))
end

--- Type text literally (no key names).
function Term:type(text)
  tmux(self, "send-keys -t spec -l " .. q(text))
end

function Term:screen()
  return tmux(self, "capture-pane -p -t spec")
end

--- Wait until the screen shows `text` (a plain string); return the screen.
function Term:wait_for(text, seconds)
  local deadline = os.time() + (seconds or 10)
  local screen
  repeat
    screen = self:screen()
    if screen:find(text, 1, true) then return screen end
    os.execute("sleep 0.1")
  until os.time() > deadline
  error(("the terminal never showed %q; it shows:\n%s"):format(text, screen))
end

function Term:stop()
  helper.run(("tmux -L %s kill-server"):format(q(self.socket)))
end

return _M
