--- The `cairn` command line: argv in, exit code out (API.md §7).
-- 0 success, 1 failure (one line on stderr), 2 usage error.
-- @module cairn.cli
local errors = require "cairn.errors"

local io_stderr, io_stdout, tostring, type = io.stderr, io.stdout, tostring, type

local _M = { _VERSION = "0.1.0" }

local USAGE = [[
usage: cairn COMMAND [ARGS...]

Scripts and the REPL:
  run SCRIPT [ARGS...]          run a Lua script (arguments in `arg`, like luajit)
  repl [--store URI] [--require MODULE|FILE]
                                interactive Lua with cairn loaded (`help` inside)

Store tools (URI is memory:, lmdb:PATH or postgresql://...; without it, CAIRN_STORE; never created):
  events [URI] AGGREGATE_ID     print an aggregate's events
  log [URI] [--from N] [--limit M] [--topic T]... [--json] [--follow]
                                print the notification log (--follow: as it grows)
  stat [URI] [--topics]         print what a store holds: encryption, sizes, views, tracking
  streams [URI] [--after ID] [--limit M]
                                list aggregates with their last versions
  view [URI] [PREFIX] [--view NAME]
                                print views' keys and values
  export [URI] [FILE|-] [--salvage]
                                write a complete backup as JSON lines (to stdout by default):
                                events, snapshots, views, tracking positions
  import URI [FILE|-]           restore a backup (from stdin by default) into a new store
  verify [URI] [--all]          check hash chains, the log and the index; exit 1 if anything is wrong
                                (--all: print every problem, not just the first)

Keys (encrypted stores take their key from CAIRN_CIPHER_KEY):
  keygen                        print a fresh cipher key
  rekey [URI]                   re-wrap the store's data keys under CAIRN_NEW_CIPHER_KEY

Systems and projections:
  sync SYSTEM_MODULE [--dry-run] [-v 0..3] [FOLLOWER...]
                                let followers catch up with their leaders
  follow SYSTEM_MODULE FOLLOWER run one follower continuously (until SIGINT/SIGTERM)
  status SYSTEM_MODULE          each follower's position, its leader's newest id, the lag
  project MODULE [--app URI] --view URI [--rebuild] [--follow]
                                run a projection into a view (--rebuild: empty it first)

Options:
  -h, --help                    this text; `cairn COMMAND --help` describes a command
  --trace                       before COMMAND (or CAIRN_TRACE=1): print the whole traceback of an error
  --version                     print the version

Exit status: 0 success, 1 failure (one line on stderr), 2 usage error (a
missing or unknown argument, option or store).
]]

local COMMANDS = {
  run = "cairn.cli_run",
  repl = "cairn.repl",
  events = "cairn.store_tools",
  log = "cairn.store_tools",
  stat = "cairn.store_tools",
  view = "cairn.store_tools",
  streams = "cairn.store_tools",
  export = "cairn.cli_backup",
  import = "cairn.cli_backup",
  verify = "cairn.cli_keys",
  keygen = "cairn.cli_keys",
  rekey = "cairn.cli_keys",
  sync = "cairn.cli_system",
  follow = "cairn.cli_system",
  project = "cairn.cli_system",
  status = "cairn.cli_system",
}

--- A usage error: printed with a hint, exit status 2.
local UsageError = {}
UsageError.__index = UsageError

function _M.usage_error(fmt, ...)
  error(setmetatable({ message = fmt:format(...) }, UsageError), 0)
end

--- Parse `--name value` and `--flag` options; the rest are positional.
-- @param args array of strings
-- @param spec `{ name = "value" | "flag" | "list" }` (a list option may be repeated: its values in order)
-- @return options table, positional array
function _M.parse_options(args, spec)
  local opts, rest, i = {}, {}, 1
  while i <= #args do
    local a = args[i]
    local name, inline = a:match("^%-%-([%w%-]+)=(.*)$")
    name = name or a:match("^%-%-([%w%-]+)$")
    if a == "--" then
      for j = i + 1, #args do rest[#rest + 1] = args[j] end
      break
    elseif name then
      local kind = spec[name]
      if not kind then _M.usage_error("unknown option --%s", name) end
      if kind == "flag" then
        if inline then _M.usage_error("option --%s takes no value", name) end
        opts[name] = true
      else
        local v = inline
        if not v then
          i = i + 1
          v = args[i]
          if v == nil then _M.usage_error("option --%s needs a value", name) end
        end
        if kind == "list" then
          local list = opts[name] or {}
          list[#list + 1] = v
          opts[name] = list
        else
          opts[name] = v
        end
      end
    else
      rest[#rest + 1] = a
    end
    i = i + 1
  end
  return opts, rest
end

local function wants_help(args)
  for i = 1, #args do
    if args[i] == "--help" or args[i] == "-h" then return true end
    if args[i] == "--" then return false end
  end
  return false
end

-- Framework and standard-library files: their paths are internal, not the user's.
local INTERNAL = { "/lua/cairn/", "/stdlib/cairn/" }

local function is_internal(source)
  for i = 1, #INTERNAL do
    if source:find(INTERNAL[i], 1, true) then return true end
  end
  return false
end

--- An error as the one line a user sees: a cairn error as `Kind: message`,
-- a string without the framework's `file.lua:NN:` prefixes, and all of it
-- on one line (a module's load error gives its cause on the next line).
function _M.message_of(err)
  local msg
  if errors.is(err) then
    msg = tostring(err)
  elseif type(err) == "table" and err.message then
    msg = tostring(err.message)
  else
    msg = tostring(err)
  end
  -- a traceback carried inside a message (a failed handler's) is for --trace
  msg = msg:gsub("%s*stack traceback:.*$", "")
  msg = msg:gsub("([^%s:]*%.lua):%d+: ", function(file)
    return is_internal(file) and "" or nil
  end)
  return (msg:gsub("%s*\n%s*", " "))
end
local message_of = _M.message_of

--- The first frame of user code (not the framework's, not C) below the
-- function that raised, as `file:line`; nil when there is none.
-- @param level the stack level to start from (of the caller's caller)
function _M.user_location(level)
  for l = level or 3, 60 do
    local info = debug.getinfo(l, "Sl")
    if not info then return nil end
    local src = info.source
    if info.currentline and info.currentline > 0 and (src:sub(1, 1) == "@" or src:sub(1, 1) == "=")
      and not is_internal(src) then
      return ("%s:%d"):format(info.short_src, info.currentline)
    end
  end
end

--- The first line of a command's help: its usage.
local function usage_line(text)
  return (text or ""):match("^(usage:[^\n]*)") or "usage: cairn COMMAND [ARGS...]"
end

-- `--trace` before the command (or CAIRN_TRACE=1) prints whole tracebacks.
local function trace_wanted()
  local trace = os.getenv("CAIRN_TRACE")
  return trace ~= nil and trace ~= "" and trace ~= "0"
end

--- Run a command.
-- @param argv the process arguments, argv[0] the program, argv[1] the command
-- @return exit code
function _M.main(argv)
  local trace = trace_wanted()
  local first = 1
  while argv[first] == "--trace" do trace, first = true, first + 1 end
  local cmd = argv[first]
  local args = {}
  for i = first + 1, #argv do args[#args + 1] = argv[i] end
  if cmd == nil then
    io_stderr:write(USAGE)
    return 2
  end
  if cmd == "-h" or cmd == "--help" or cmd == "help" then
    io_stdout:write(USAGE)
    return 0
  end
  if cmd == "--version" then
    io_stdout:write("cairn ", require("cairn.core").version, " (", jit and jit.version or _VERSION, ")\n")
    return 0
  end
  local module_name = COMMANDS[cmd]
  if not module_name then
    io_stderr:write(("cairn: unknown command '%s'\nusage: cairn COMMAND [ARGS...] (cairn --help lists them)\n")
      :format(cmd))
    return 2
  end
  local command = require(module_name)
  -- `cairn run SCRIPT --help` passes --help to the script
  if wants_help(cmd == "run" and { args[1] } or args) then
    io_stdout:write(command.help(cmd))
    return 0
  end
  _M.trace = trace
  local traceback
  local ok, result = xpcall(command.main, function(err)
    if getmetatable(err) ~= UsageError then traceback = debug.traceback("", 2) end
    return err
  end, cmd, args)
  if ok then return result or 0 end
  if getmetatable(result) == UsageError then
    io_stderr:write(("cairn %s: %s\n%s (cairn %s --help says more)\n"):format(cmd, result.message,
      usage_line(command.help(cmd)), cmd))
    return 2
  end
  io_stderr:write(("cairn %s: %s\n"):format(cmd, message_of(result)))
  if trace then
    -- all of it: the message as raised (with any traceback it carries), then where the command was
    io_stderr:write(tostring(errors.is(result) and result.message or result), "\n")
    if traceback then io_stderr:write((traceback:gsub("^\n", "")), "\n") end
  end
  return 1
end

return _M
