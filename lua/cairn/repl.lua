--- `cairn repl`: interactive Lua with cairn loaded, to explore and repair stores.
-- @module cairn.repl
local cairn = require "cairn"
local inspect = require "cairn.inspect"
local cli = require "cairn.cli"

local _M = { _VERSION = "0.1.0" }

function _M.help()
  return [[
usage: cairn repl [--store URI] [--require MODULE]

Interactive Lua (LuaJIT) with `cairn` loaded. Expressions print their values
as readable Lua; `=expr` works too. Ctrl-C interrupts a running line (the REPL
runs Lua without the JIT compiler, so that it always can); Ctrl-D exits.
Line editing and history (~/.cairn_history, or $CAIRN_HISTORY) when on a terminal.

  --store URI        open a store: `app` is an application over it (app.repository:get(id),
                     app.log:select(1, 10), app:save(agg)) and `store` the raw store
  --require MODULE   load a domain module first (it is also a global named after the
                     module's last component, e.g. training_school); repeatable.
                     After editing its file, `cairn.reload "MODULE"` loads it again
                     (the global follows); a module that fails to load keeps the old one
]]
end

local function global_name(module)
  local last = module:match("([^%.]+)$") or module
  return (last:gsub("[^%w_]", "_"))
end

-- Compile a line: as an expression first (so values print), then as a statement.
local function compile(source)
  local fn = loadstring("return " .. source, "=stdin")
  if fn then return fn end
  return loadstring(source, "=stdin")
end

local function is_incomplete(err)
  return err and err:find("<eof>", 1, true) ~= nil
end

local function print_results(ok, ...)
  if not ok then
    local err = ...
    -- keep the line's own frames; the REPL's frames below are noise
    io.stderr:write((tostring(err):gsub("\n%s*%[C%]: in function 'protected_call'.*$", "")), "\n")
    return
  end
  if select("#", ...) > 0 then io.write(inspect.inspect_all(...), "\n") end
end

function _M.main(_, args)
  local opts, rest = {}, {}
  local modules = {}
  local i = 1
  while i <= #args do
    local a = args[i]
    if a == "--store" or a == "--require" then
      local v = args[i + 1]
      if not v then cli.usage_error("%s needs a value", a) end
      if a == "--store" then opts.store = v else modules[#modules + 1] = v end
      i = i + 2
    elseif a:match("^%-%-store=") then
      opts.store = a:sub(9); i = i + 1
    elseif a:match("^%-%-require=") then
      modules[#modules + 1] = a:sub(11); i = i + 1
    else
      rest[#rest + 1] = a; i = i + 1
    end
  end
  if #rest > 0 then cli.usage_error("unexpected argument '%s'", rest[1]) end
  -- Ctrl-C works through a debug hook, which JIT-compiled code never runs: a
  -- loop in a domain module's function could not be interrupted. The REPL
  -- runs everything in the interpreter, from before any module is loaded.
  if jit then
    jit.off()
    jit.flush()
  end
  local rl = require "cairn.readline"
  rawset(_G, "cairn", cairn)
  -- the globals of --require modules follow cairn.reload: after each line,
  -- a module whose package.loaded value changed is set again
  local module_values = {}
  local function refresh_modules()
    for _, m in ipairs(modules) do
      local value = package.loaded[m]
      if value ~= nil and value ~= module_values[m] then
        module_values[m] = value
        rawset(_G, global_name(m), value)
      end
    end
  end
  for _, m in ipairs(modules) do require(m) end
  refresh_modules()
  if opts.store then
    local app = cairn.application("Repl").new { store = opts.store }
    rawset(_G, "app", app)
    rawset(_G, "store", app.store)
  end
  local interactive = rl.isatty()
  local history = os.getenv("CAIRN_HISTORY") or ((os.getenv("HOME") or ".") .. "/.cairn_history")
  local read
  if interactive then
    rl.read_history(history)
    io.write(("cairn %s (%s)%s — Ctrl-D to exit\n"):format(cairn._VERSION, jit and jit.version or _VERSION,
      opts.store and (", store " .. opts.store) or ""))
    read = rl.readline
  else
    read = function() return io.read("*l") end
  end
  local buffer
  while true do
    local line = read(buffer and ">> " or "> ")
    if line == nil then break end
    if interactive and line:match("%S") then rl.add_history(line) end
    if not buffer and line:sub(1, 1) == "=" then line = "return " .. line:sub(2) end
    buffer = buffer and (buffer .. "\n" .. line) or line
    local fn, err = compile(buffer)
    -- an incomplete statement waits for its next line in the buffer
    if fn or not is_incomplete(err) then
      buffer = nil
      if not fn then
        io.stderr:write(err, "\n")
      else
        print_results(rl.protected_call(fn))
        refresh_modules()
      end
    end
  end
  if interactive then
    rl.write_history(history)
    io.write("\n")
  end
  if opts.store then rawget(_G, "app"):close() end
  return 0
end

return _M
