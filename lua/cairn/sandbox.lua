--- A sandbox for hosted domain code: modules loaded through it (a game's mods,
-- an app server's tenants) see no `os`, `io`, `ffi`, `debug`, `jit`,
-- `package`, `collectgarbage`, `getfenv`/`setfenv`, `string.dump` nor loading
-- of bytecode, `require` only what the host allows, and every call the
-- framework makes into them (loading the module, apply functions, create_id,
-- upcasters, policies, projection handlers, application methods called through
-- `sandbox:call` or the embedding API) is bounded in VM instructions and in
-- memory. Breaking a rule or a bound raises a `SandboxError`.
--
--     local sb = cairn.sandbox.new { path = "/srv/tenants/acme/?.lua" }
--     local model = sb:require("model")           -- runs inside the sandbox
--     local app = model.App.new { store = "lmdb:/srv/data/acme" }   -- host side
--     sb:call(app.register, app, "Fido")          -- bounded
--
-- The trusted default (plain `require`) is unchanged. See docs/API.md §10.
-- @module cairn.sandbox
local core = require "cairn.core"
local errors = require "cairn.errors"
local guard = require "cairn.guard"

local setmetatable, getmetatable, type, pairs, select, tostring, error, pcall, xpcall, rawget, rawset =
  setmetatable, getmetatable, type, pairs, select, tostring, error, pcall, xpcall, rawget, rawset
local load, open = load, io.open
local co_create, co_resume, co_running, co_yield = coroutine.create, coroutine.resume, coroutine.running,
  coroutine.yield
local sethook, gethook, getinfo = debug.sethook, debug.gethook, debug.getinfo
local jit_off = jit and jit.off or function() end
local memory_limit, memory_refused = core.memory_limit, core.memory_refused

local _M = { _VERSION = "0.1.0" }

--- The bounds of one call, unless the sandbox's options say otherwise.
_M.DEFAULT_INSTRUCTIONS = 10000000
_M.DEFAULT_MEMORY = 64 * 1024 * 1024
--- Modules a sandbox may require besides its own (they run as trusted code and
-- the sandbox gets a copy of their table). `cairn` itself is always allowed:
-- the sandbox gets a cairn of its own (see `cairn_for`).
_M.DEFAULT_ALLOW = { "cairn.uuid", "cairn.time", "cairn.errors", "cairn.schema", "cairn.json", "cairn.inspect" }

local HOOK_EVERY = 1000 -- VM instructions between two checks

local string_mt = getmetatable("")
local real_string_index = string_mt.__index

-- The call in progress: its sandbox, instructions spent, and why it was
-- stopped (once stopped, it stays stopped until it returns to the host).
local active, spent, stopped

local function stop_error()
  return errors.new("SandboxError", active.name .. ": " .. stopped)
end

local function memory_message(bytes)
  return ("stopped: it needed more than %d bytes of memory in one call (the sandbox's limit)"):format(bytes)
end

local count_hook, run, finish

-- Once a bound is exceeded the call stops: the hook then raises at every
-- instruction, so that a pcall of trusted code (inspect's, say) that caught
-- the error cannot let the sandboxed code run on.
local function stop(why)
  stopped = why
  sethook(count_hook, "", 1)
  error(stop_error(), 0)
end

count_hook = function()
  -- not in the two functions that set the bounds up and take them down
  local f = getinfo(2, "f").func
  if f == run or f == finish then return end
  if stopped then error(stop_error(), 0) end
  spent = spent + HOOK_EVERY
  if spent > active.instructions then
    stop(("stopped after %d VM instructions in one call (the sandbox's limit)"):format(active.instructions))
  elseif memory_refused() then
    stop(memory_message(active.memory))
  end
end

-- After sandboxed code caught an error (pcall, xpcall, coroutine.resume): an
-- exceeded bound is not the sandbox's to catch.
local function still_running()
  if stopped then error(stop_error(), 0) end
  if memory_refused() then stop(memory_message(active.memory)) end
end

-- What the host may see of an error that sandboxed code raised: strings and
-- cairn errors as they are, anything else (a table whose __tostring would run
-- sandboxed code outside the bounds) as a SandboxError naming its type.
local function host_error(sb, err)
  if type(err) == "string" then return err end
  if errors.is(err) and type(rawget(err, "kind")) == "string" and type(rawget(err, "message")) == "string" then
    return err
  end
  return errors.new("SandboxError", ("%s: sandboxed code raised a %s value"):format(sb.name, type(err)))
end

finish = function(sb, saved, ok, ...)
  local refused = memory_limit(false)
  sethook(saved[1], saved[2], saved[3])
  string_mt.__index = real_string_index
  guard.depth = 0
  local why = stopped
  if not why and refused then why = memory_message(sb.memory) end
  active, stopped = nil, nil
  if why then errors.raise("SandboxError", "%s: %s", sb.name, why) end
  if not ok then error(host_error(sb, (...)), 0) end
  return ...
end

-- Run fn(...) under sb's bounds; inside a sandboxed call, just call it.
run = function(sb, fn, ...)
  if guard.depth > 0 then return fn(...) end
  active, spent, stopped = sb, 0, nil
  guard.depth = 1
  local saved = { gethook() }
  string_mt.__index = sb._string_index
  sethook(count_hook, "", HOOK_EVERY)
  memory_limit(sb.memory)
  return finish(sb, saved, pcall(fn, ...))
end

local function copy(t)
  local c = {}
  for k, v in pairs(t) do c[k] = v end
  return c
end

-- A module's table for the sandbox: changing it (or a plain table in it,
-- such as errors.KINDS) changes nothing for the host.
local function copy_module(t)
  local c = {}
  for k, v in pairs(t) do
    if type(v) == "table" and getmetatable(v) == nil then v = copy(v) end
    c[k] = v
  end
  return c
end

local function without(t, ...)
  local c = copy(t)
  for i = 1, select("#", ...) do c[select(i, ...)] = nil end
  return c
end

-- Compile source in the sandbox's environment: text only, never bytecode,
-- and never JIT-compiled (count hooks do not run in compiled traces).
local function compile(sb, source, chunkname)
  if type(source) ~= "string" then
    errors.raise("SandboxError", "%s: load takes a string of Lua source (not a reader function)", sb.name)
  end
  if source:byte(1) == 27 then
    errors.raise("SandboxError", "%s: %s is precompiled bytecode, which a sandbox does not load", sb.name,
      chunkname)
  end
  local chunk, err = load(source, chunkname, "t", sb._env)
  if not chunk then return nil, err end
  jit_off(chunk, true)
  return chunk
end

local function search(path, name)
  local file = name:gsub("%.", "/")
  for template in path:gmatch("[^;]+") do
    local candidate = template:gsub("%?", file)
    local f = open(candidate, "rb")
    if f then return f, candidate end
  end
  return nil
end

local function load_module(sb, name)
  local f, filename = search(sb._path, name)
  if not f then return nil end
  local source = f:read("*a")
  f:close()
  local chunk, err = compile(sb, source, "@" .. filename)
  if not chunk then errors.raise("SandboxError", "%s: cannot load module '%s': %s", sb.name, name, err) end
  local value = chunk(name)
  if value == nil then value = true end
  return value
end

-- The sandbox's own `require`: its modules (found on its path, loaded in it),
-- the host's allowed modules (a copy of their table), and its own cairn.
local function sandbox_require(sb, name)
  if type(name) ~= "string" then error("bad argument #1 to 'require' (string expected)", 2) end
  local loaded = sb._loaded
  local value = loaded[name]
  if value ~= nil then return value end
  if name == "cairn" then
    value = sb._cairn
  elseif sb._allow[name] then
    value = require(name)
    if type(value) == "table" then value = copy_module(value) end
  else
    value = load_module(sb, name)
    if value == nil then
      errors.raise("SandboxError", "%s: require of module '%s' is not allowed (it is not on the sandbox's path "
        .. "and not among the modules the host allows)", sb.name, name)
    end
  end
  loaded[name] = value
  return value
end

-- getmetatable/setmetatable that keep sandboxed code away from the framework's
-- metatables (strings, events, errors, the classes' own): it sees and replaces
-- only metatables it set itself, and those of the classes it defined.
local function metatable_functions(sb)
  local set_by_sandbox = setmetatable({}, { __mode = "k" })
  local function visible(mt)
    return mt ~= nil and (set_by_sandbox[mt] or guard.runner(mt) == sb._run)
  end
  local function safe_getmetatable(v)
    if type(v) ~= "table" then return nil end
    local mt = getmetatable(v)
    if visible(mt) then return mt end
    return nil
  end
  local function safe_setmetatable(t, mt)
    if type(t) ~= "table" then error("bad argument #1 to 'setmetatable' (table expected)", 2) end
    if mt ~= nil and type(mt) ~= "table" then error("bad argument #2 to 'setmetatable' (nil or table expected)", 2) end
    -- a table whose metatable the sandbox did not set itself (an event, an
    -- error, an aggregate, whose class decides how the framework calls it)
    -- keeps it
    local old = getmetatable(t)
    if old ~= nil and not set_by_sandbox[old] then
      errors.raise("SandboxError", "%s: setmetatable on a table whose metatable belongs to the framework", sb.name)
    end
    if mt ~= nil then set_by_sandbox[mt] = true end
    return setmetatable(t, mt)
  end
  return safe_getmetatable, safe_setmetatable
end

-- pcall, xpcall and coroutines that cannot swallow an exceeded bound, and
-- coroutines that cannot yield out of sandboxed code into the host's.
local function control_functions(sb)
  local own_threads = setmetatable({}, { __mode = "k" })
  local function checked(ok, ...)
    if not ok then still_running() end
    return ok, ...
  end
  local function safe_pcall(fn, ...)
    return checked(pcall(fn, ...))
  end
  local function safe_xpcall(fn, handler, ...)
    return checked(xpcall(fn, handler, ...))
  end
  local co = without(coroutine, "create", "resume", "wrap", "yield")
  function co.create(fn)
    local thread = co_create(fn)
    own_threads[thread] = true
    return thread
  end
  function co.resume(thread, ...)
    return checked(co_resume(thread, ...))
  end
  function co.yield(...)
    if not own_threads[co_running() or false] then
      errors.raise("SandboxError", "%s: yield outside a coroutine the sandboxed code created", sb.name)
    end
    return co_yield(...)
  end
  local function rethrow(ok, ...)
    if not ok then error((...), 0) end
    return ...
  end
  function co.wrap(fn)
    local thread = co.create(fn)
    return function(...) return rethrow(co.resume(thread, ...)) end
  end
  return safe_pcall, safe_xpcall, co
end

-- Store handles are reachable from a sandboxed application's methods
-- (self.store). Its own store is the tenant's to read and write; what would
-- reach past it -- copying it to any path, re-keying it away from the host,
-- closing it under the host -- is refused while sandboxed code runs. The
-- framework itself calls none of these inside a sandboxed call.
local HOST_ONLY = { "copy", "rekey", "close" }
local guarded_methods = setmetatable({}, { __mode = "k" })

local function guard_store_methods_of(mt)
  local methods = type(mt) == "table" and rawget(mt, "__index")
  if type(methods) ~= "table" or guarded_methods[methods] then return end
  guarded_methods[methods] = true
  for _, name in pairs(HOST_ONLY) do
    local method = rawget(methods, name)
    if type(method) == "function" then
      methods[name] = function(self, ...)
        if guard.inside() then
          errors.raise("SandboxError", "%s: sandboxed code cannot %s a store (the host does)", active.name, name)
        end
        return method(self, ...)
      end
    end
  end
end

-- Store handles of every kind: the binding's (registered under its name, so
-- that a view's store in a projection handler is covered too), and whatever
-- an application opens.
local function guard_store_methods(store)
  guard_store_methods_of(getmetatable(store))
end
guard_store_methods_of(debug.getregistry()["cairn.store"])

-- The `cairn` that sandboxed code gets: definitions register what they make
-- as the sandbox's, so that the framework calls into them under its bounds.
local function cairn_for(sb)
  local aggregate = require "cairn.aggregate"
  local application = require "cairn.application"
  local projection = require "cairn.projection"
  local process = require "cairn.process"
  local cairn = require "cairn"
  local own = function(obj) guard.register(obj, sb._run); return obj end
  -- a class's methods (function Pet:rename ... end) run under the bounds when
  -- the host calls them directly too
  local function own_class(cls)
    getmetatable(cls).__newindex = function(t, k, v)
      if type(v) == "function" then
        local fn = v
        v = function(...) return run(sb, fn, ...) end
      end
      rawset(t, k, v)
    end
    return own(cls)
  end
  local function no_store(App)
    local new = App.new
    App.new = function(env)
      if guard.inside() then
        errors.raise("SandboxError", "%s: sandboxed code cannot open a store (%s.new): the host does", sb.name,
          App.name)
      end
      local app = new(env)
      guard_store_methods(app.store)
      return app
    end
    return own_class(App)
  end
  return {
    _VERSION = cairn._VERSION,
    errors = copy_module(cairn.errors), uuid = copy_module(cairn.uuid), time = copy_module(cairn.time),
    is_event = cairn.is_event, event_fields = cairn.event_fields,
    aggregate = function(name, opts)
      local existing = type(name) == "string" and aggregate.class(name)
      if existing and guard.runner(existing) ~= sb._run then
        errors.raise("SandboxError", "%s: the aggregate class name %s is taken by code outside this sandbox",
          sb.name, name)
      end
      return own_class(aggregate.define(name, opts))
    end,
    application = function(name) return no_store(application.define(name)) end,
    process_application = function(name) return no_store(process.define(name)) end,
    projection = function(name, opts) return own(projection.define(name, opts)) end,
    system = cairn.system,
  }
end

local function sandbox_env(sb)
  local env = {}
  for _, name in pairs { "assert", "error", "ipairs", "next", "pairs", "rawequal", "rawget", "rawset", "select",
                         "tonumber", "tostring", "type", "unpack" } do
    env[name] = _G[name]
  end
  env._VERSION = _VERSION
  env._G = env
  env.string = without(string, "dump")
  env.table = copy(table)
  env.math = without(math, "random", "randomseed")
  env.bit = bit and copy(bit) or nil
  env.getmetatable, env.setmetatable = metatable_functions(sb)
  env.pcall, env.xpcall, env.coroutine = control_functions(sb)
  env.require = function(name) return sandbox_require(sb, name) end
  env.load = function(source, chunkname)
    return compile(sb, source, chunkname or "=(load)")
  end
  env.loadstring = env.load
  return env
end

local Sandbox = {}
Sandbox.__index = Sandbox

local function positive(v, what)
  if v ~= nil and (type(v) ~= "number" or v <= 0 or v % 1 ~= 0) then
    errors.raise("ConfigError", "sandbox option '%s' must be a positive whole number (got %s)", what, tostring(v))
  end
  return v
end

--- Make a sandbox.
-- @param[opt] opts `path` (where its modules are, package.path style; default
--   "./?.lua;./?/init.lua"), `allow` (more module names it may require, loaded
--   as trusted code), `instructions` (VM instructions per call, default 10^7),
--   `memory` (bytes of memory growth per call, default 64 MiB), `name` (for messages)
-- @return the sandbox
-- @raise ConfigError for a bad option
function _M.new(opts)
  opts = opts or {}
  if type(opts) ~= "table" then error("bad argument #1 to 'sandbox.new' (options table expected)", 2) end
  local sb = setmetatable({
    name = opts.name or "sandbox",
    instructions = positive(opts.instructions, "instructions") or _M.DEFAULT_INSTRUCTIONS,
    memory = positive(opts.memory, "memory") or _M.DEFAULT_MEMORY,
    -- the rest is the sandbox's machinery
    _path = opts.path or "./?.lua;./?/init.lua",
    _allow = {},
    _loaded = {},
  }, Sandbox)
  for _, name in pairs(_M.DEFAULT_ALLOW) do sb._allow[name] = true end
  for _, name in pairs(opts.allow or {}) do sb._allow[name] = true end
  sb._run = function(fn, ...) return run(sb, fn, ...) end
  sb._string_index = without(string, "dump")
  sb._cairn = cairn_for(sb)
  sb._env = sandbox_env(sb)
  return sb
end

--- Load a module in the sandbox (once; later calls return the same value).
-- @raise SandboxError if it is not on the sandbox's path, breaks a rule or a bound
function Sandbox:require(name)
  return run(self, sandbox_require, self, name)
end

--- Load a module of the sandbox again (as cairn.reload does for trusted ones).
-- @raise a string "cannot reload module 'NAME': CAUSE", and nothing changes, if it fails
function Sandbox:reload(name)
  return require("cairn.reload").reload_in(name, self._loaded, function(n) return self:require(n) end)
end

--- Compile and run Lua source in the sandbox.
-- @return what the chunk returns
function Sandbox:load(source, chunkname)
  local chunk, err = compile(self, source, chunkname or "=(sandbox)")
  if not chunk then errors.raise("SandboxError", "%s: %s", self.name, err) end
  return run(self, chunk)
end

--- Call a function (a method of a sandboxed class, say) under the sandbox's bounds.
function Sandbox:call(fn, ...)
  return run(self, fn, ...)
end

--- Does this function, class or object belong to a sandbox? (its run function)
_M.runner = guard.runner

return setmetatable(_M, { __call = function(_, opts) return _M.new(opts) end })
