--- `cairn run [--sandbox ...] SCRIPT [ARGS...]`: run a Lua script the way luajit would.
-- @module cairn.cli_run
local errors = require "cairn.errors"

local _M = { _VERSION = "0.1.0" }

function _M.help()
  return [==[
usage: cairn run [--sandbox [--allow MODULE]... [--instructions N] [--memory BYTES]] SCRIPT [ARGS...]

Runs a Lua script with cairn available (`require "cairn"`). The script gets
its arguments in the global `arg` (arg[0] is the script) and as `...`.
The script's directory is searched first by `require`.

--sandbox            the script is the host; the modules it requires from its
                     own directory (the domain modules) are loaded in a
                     cairn.sandbox: no os, io, ffi, debug, bytecode or other
                     modules, and every call into them bounded (SandboxError)
--allow MODULE       a module the sandboxed modules may require as well
--instructions N     VM instructions per call (default 10000000)
--memory BYTES       memory growth per call (default 67108864)

Exit status: 0, or 1 if the script raises an error: one line on stderr, with
the script's line for cairn's typed errors (`cairn --trace run ...` prints the
whole traceback).
]==]
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

-- Options before the script: { sandbox = bool, allow = {...}, instructions, memory }, index of SCRIPT.
local function parse(args)
  local cli = require "cairn.cli"
  local opts, i = { allow = {} }, 1
  while args[i] and args[i]:sub(1, 2) == "--" do
    local flag = args[i]
    if flag == "--sandbox" then
      opts.sandbox = true
    elseif flag == "--allow" or flag == "--instructions" or flag == "--memory" then
      local v = args[i + 1]
      if not v then cli.usage_error(flag .. " needs a value") end
      if flag == "--allow" then
        opts.allow[#opts.allow + 1] = v
      else
        local n = tonumber(v)
        if not n or n <= 0 or n % 1 ~= 0 then cli.usage_error(flag .. " needs a positive whole number") end
        opts[flag:sub(3)] = n
      end
      i = i + 1
    else
      cli.usage_error("unknown option " .. flag)
    end
    i = i + 1
  end
  if not opts.sandbox and (opts.allow[1] or opts.instructions or opts.memory) then
    cli.usage_error("--allow, --instructions and --memory go with --sandbox")
  end
  return opts, i
end

-- Modules in dir are loaded in sb: a searcher ahead of package.path's.
local function sandbox_modules(dir, opts)
  local sandbox = require "cairn.sandbox"
  local path = dir .. "/?.lua;" .. dir .. "/?/init.lua"
  local sb = sandbox.new { path = path, allow = opts.allow, instructions = opts.instructions,
                           memory = opts.memory, name = "sandbox " .. dir }
  table.insert(package.loaders, 2, function(name)
    -- cairn's own modules always come from cairn, never from the script's directory
    if name == "cairn" or name:sub(1, 6) == "cairn." then return nil end
    if not package.searchpath(name, path) then return nil end
    return function() return sb:require(name) end
  end)
end

function _M.main(_, args)
  local opts, first = parse(args)
  local script = args[first]
  if not script then require("cairn.cli").usage_error("a script is needed") end
  local chunk, load_err = loadfile(script)
  if not chunk then
    io.stderr:write("cairn run: ", load_err, "\n")
    return 1
  end
  local script_args = { [0] = script, [-1] = "cairn run" }
  for i = first + 1, #args do script_args[i - first] = args[i] end
  rawset(_G, "arg", script_args)
  local dir = script:match("^(.*)/[^/]*$") or "."
  if opts.sandbox then
    sandbox_modules(dir, opts)
  else
    package.path = dir .. "/?.lua;" .. dir .. "/?/init.lua;" .. package.path
  end
  local ok, err = xpcall(chunk, report, unpack(script_args, 1, #script_args))
  if not ok then
    io.stderr:write("cairn run: ", err, "\n")
    return 1
  end
  return 0
end

return _M
