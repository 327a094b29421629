--- `cairn repl`: interactive Lua with cairn loaded, to explore and repair stores.
-- @module cairn.repl
local cairn = require "cairn"
local errors = require "cairn.errors"
local cli = require "cairn.cli"
local cli_store = require "cairn.cli_store"
local repl_show = require "cairn.repl_show"
local repl_help = require "cairn.repl_help"

local _M = { _VERSION = "0.1.0" }

function _M.help()
  return [[
usage: cairn repl [--store URI] [--require MODULE|FILE]...

Interactive Lua (LuaJIT) with `cairn` loaded. Expressions print their values
as readable Lua (aggregates with their state, views with their first keys,
lists of notifications as a table, timestamps as ISO 8601); `=expr` works too.
`help` lists what you can do, `help(value)` what a value can do. Tab completes
globals, fields and methods. Ctrl-C clears the line or interrupts a running
one (the REPL runs Lua without the JIT compiler, so that it always can);
Ctrl-D exits. History (~/.cairn_history, or $CAIRN_HISTORY) is written entry
by entry, multi-line statements whole.

  --store URI        open an existing store (it is never created): `app` is an
                     application over it (app.repository:get(id),
                     app.log:select(1, 10), app:save(agg)) and `store` the
                     store. An encrypted store takes its key from CAIRN_CIPHER_KEY.
  --require MODULE   load a domain module first: a module name (found on
                     package.path and in the current directory) or a .lua file
                     (its directory is searched by require). It is also a global
                     named after its last component, e.g. training_school;
                     repeatable. After editing its file, `cairn.reload "MODULE"`
                     loads it again (the global follows); a module that fails to
                     load keeps the old one.

Read from a pipe, it prints no prompt and exits 1 if a line failed.
]]
end

local HISTORY_SIZE = 1000

local function global_name(module)
  local last = module:match("([^%.]+)$") or module
  return (last:gsub("[^%w_]", "_"))
end

-- A --require argument: a module name, or a file whose directory goes on
-- package.path (then it is required by its base name, so cairn.reload works).
local function module_of(spec)
  if not (spec:match("%.lua$") or spec:find("/", 1, true)) then return spec end
  local f = io.open(spec, "rb")
  if not f then errors.raise("ConfigError", "cannot read %s (--require takes a module name or a .lua file)", spec) end
  f:close()
  local dir, base = spec:match("^(.-)/?([^/]*)$")
  base = base:gsub("%.lua$", "")
  if dir == "" then dir = "." end
  package.path = dir .. "/?.lua;" .. dir .. "/?/init.lua;" .. package.path
  return base
end

local function require_module(name)
  local ok, err = pcall(require, name)
  if ok then return end
  if type(err) == "string" and err:match("^module '[^']*' not found") then
    errors.raise("ConfigError", "module '%s' not found on package.path (give a module name, or a file: ./%s.lua)",
      name, name)
  end
  error(err, 0)
end

-- As lua.c decides it: the error is at the end of the input.
local function is_incomplete(err)
  return err ~= nil and err:sub(-7) == "'<eof>'"
end

-- Compile a line: as an expression first (so values print), then as a
-- statement. The expression is an argument of select, not a tail call, so
-- that an error it raises still has the input's frame; the source starts on
-- its line of the input, so that messages say `stdin:LINE`.
-- @return the function, or nil, the error and whether more lines may complete it
local function compile(source, first_line)
  local pad = ("\n"):rep(first_line - 1)
  local _, expr_err = loadstring(pad .. "return " .. source, "=stdin")
  if not expr_err then
    local fn = loadstring(pad .. "return select(1, " .. source .. "\n)", "=stdin")
    if fn then return fn end
  end
  local fn, err = loadstring(pad .. source, "=stdin")
  if fn then return fn end
  return nil, err, is_incomplete(err) or is_incomplete(expr_err)
end

-- An error as the REPL prints it: the message, with the line of user code
-- for typed errors; no frames of the REPL, the host or builtins.
local function error_text(err)
  local msg = cli.message_of(err)
  if errors.is(err) then
    local at = cli.user_location(4)
    if at then msg = ("%s (at %s)"):format(msg, at) end
  end
  if cli.trace then msg = msg .. debug.traceback("", 3) end
  return msg
end

local function pack(...)
  return { n = select("#", ...), ... }
end

-- Run a compiled line; Ctrl-C interrupts it. Returns ok and the results (or the error text).
local function run(rl, fn)
  local ok, res = rl.protected_call(function() return pack(xpcall(fn, error_text)) end)
  if not ok then return false, { n = 1, cli.message_of((tostring(res):gsub("\n.*", ""))) } end
  if not res[1] then return false, { n = 1, res[2] } end
  return true, { n = res.n - 1, unpack(res, 2, res.n) }
end

-- History entries are one line each in the file: backslashes and newlines escaped.
local function escape(entry) return (entry:gsub("\\", "\\\\"):gsub("\n", "\\n")) end
local function unescape(line)
  return (line:gsub("\\(.)", function(c) return c == "n" and "\n" or c end))
end

local function load_history(rl, file)
  local f = io.open(file, "rb")
  if not f then return end
  local entries = {}
  for line in f:lines() do entries[#entries + 1] = line end
  f:close()
  local first = math.max(1, #entries - HISTORY_SIZE + 1)
  for i = first, #entries do rl.add_history(unescape(entries[i])) end
  if first > 1 then -- keep the file from growing without end
    local out = io.open(file, "wb")
    if out then
      out:write(table.concat(entries, "\n", first, #entries), "\n")
      out:close()
    end
  end
end

local function append_history(file, entry)
  local f = io.open(file, "ab")
  if not f then return end
  f:write(escape(entry), "\n")
  f:close()
end

local function parse_args(args)
  local opts, modules, rest = {}, {}, {}
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
    elseif a:match("^%-") then
      cli.usage_error("unknown option %s", a)
    else
      rest[#rest + 1] = a; i = i + 1
    end
  end
  if #rest > 0 then cli.usage_error("unexpected argument '%s'", rest[1]) end
  return opts, modules
end

-- The application over an existing store; with a key in the environment only
-- when the store is encrypted (a plain store opens whether or not one is set).
local function open_app(uri)
  cli_store.check_uri(uri)
  local env = { store = uri }
  if not cli_store.needs_key(uri) then env.cipher_key = "" end
  return cairn.application("Repl").new(env)
end

function _M.main(_, args)
  local opts, specs = parse_args(args)
  -- Ctrl-C works through a debug hook, which JIT-compiled code never runs: a
  -- loop in a domain module's function could not be interrupted. The REPL
  -- runs everything in the interpreter, from before any module is loaded.
  if jit then
    jit.off()
    jit.flush()
  end
  local rl = require "cairn.readline"
  rawset(_G, "cairn", cairn)
  local modules = {}
  for i, spec in ipairs(specs) do modules[i] = module_of(spec) end
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
  for _, m in ipairs(modules) do require_module(m) end
  refresh_modules()
  if opts.store then
    local app = open_app(opts.store)
    rawset(_G, "app", app)
    rawset(_G, "store", app.store)
  end
  rawset(_G, "help", repl_help.new(opts.store))
  local interactive = rl.isatty()
  local history = os.getenv("CAIRN_HISTORY") or ((os.getenv("HOME") or ".") .. "/.cairn_history")
  local read
  if interactive then
    load_history(rl, history)
    rl.set_completer(repl_help.complete)
    io.write(("cairn %s (%s)%s: help for help, Ctrl-D to exit\n"):format(cairn._VERSION,
      jit and jit.version or _VERSION, opts.store and (", store " .. opts.store) or ""))
    read = rl.readline
  else
    read = function() return io.read("*l") end
  end
  local buffer, failed, line_no, first_line = nil, false, 0, 1
  while true do
    local line = read(buffer and ">> " or "> ")
    if line == nil then break end
    line_no = line_no + 1
    if line == false then
      buffer = nil -- Ctrl-C cleared the line (and any statement begun)
    else
      if not buffer then
        first_line = line_no
        if line:sub(1, 1) == "=" then line = line:sub(2) end
      end
      buffer = buffer and (buffer .. "\n" .. line) or line
      local fn, err, incomplete = compile(buffer, first_line)
      -- an incomplete statement waits for its next line in the buffer
      if fn or not incomplete then
        if interactive and buffer:match("%S") then
          rl.add_history(buffer)
          append_history(history, buffer)
        end
        buffer = nil
        if not fn then
          io.stderr:write(err, "\n")
          failed = true
        else
          local ok, res = run(rl, fn)
          if ok then
            if res.n > 0 then io.write(repl_show.show_all(unpack(res, 1, res.n)), "\n") end
          else
            io.stderr:write(tostring(res[1]), "\n")
            failed = true
          end
          refresh_modules()
        end
      end
    end
  end
  if buffer then -- the input ended inside a statement
    local _, err = compile(buffer, first_line)
    io.stderr:write(err, "\n")
    failed = true
  end
  if interactive then io.write("\n") end
  if opts.store then rawget(_G, "app"):close() end
  return (failed and not interactive) and 1 or 0
end

return _M
