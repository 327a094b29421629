--- `cairn run SCRIPT [ARGS...]`: run a Lua script the way luajit would.
-- @module cairn.cli_run
local errors = require "cairn.errors"

local _M = { _VERSION = "0.1.0" }

function _M.help()
  return [[
usage: cairn run SCRIPT [ARGS...]

Runs a Lua script with cairn available (`require "cairn"`). The script gets
its arguments in the global `arg` (arg[0] is the script) and as `...`.
The script's directory is searched first by `require`.
Exit status: 0, or 1 if the script raises an error: one line on stderr, with
the script's line for cairn's typed errors (`cairn --trace run ...` prints the
whole traceback).
]]
end

-- The error as one line: a typed error raised from the script (or from the
-- framework on its behalf) gets the script's line, `(at main.lua:14)`. With
-- --trace, the script's own frames follow (the host's below xpcall are noise).
local function report(err)
  local cli = require "cairn.cli"
  local msg = cli.message_of(err)
  if errors.is(err) then
    local at = cli.user_location(3)
    if at then msg = ("%s (at %s)"):format(msg, at) end
  end
  if cli.trace then
    local tb = debug.traceback("", 2):gsub("\n%s*%[C%]: in function 'xpcall'.*$", "")
    msg = msg .. tb
  end
  return msg
end

function _M.main(_, args)
  local script = args[1]
  if not script then require("cairn.cli").usage_error("a script is needed") end
  local chunk, load_err = loadfile(script)
  if not chunk then
    io.stderr:write("cairn run: ", load_err, "\n")
    return 1
  end
  local script_args = { [0] = script, [-1] = "cairn run" }
  for i = 2, #args do script_args[i - 1] = args[i] end
  rawset(_G, "arg", script_args)
  local dir = script:match("^(.*)/[^/]*$") or "."
  package.path = dir .. "/?.lua;" .. dir .. "/?/init.lua;" .. package.path
  local ok, err = xpcall(chunk, report, unpack(script_args, 1, #script_args))
  if not ok then
    io.stderr:write("cairn run: ", err, "\n")
    return 1
  end
  return 0
end

return _M
