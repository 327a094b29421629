--- The Lua half of the C embedding API (runtime/embed.c, runtime/include/cairn.h):
-- loads a domain module's application, calls its methods, reads its log, and
-- turns what they return into plain data that the msgpack codec can encode.
-- Errors are raised as they come; embed.c turns them into return codes.
-- @module cairn.embed
local cairn = require "cairn"
local core = require "cairn.core"
local application = require "cairn.application"
local sandbox = require "cairn.sandbox"

local type, pairs, getmetatable, rawget, select, unpack, error, tostring, require =
  type, pairs, getmetatable, rawget, select, unpack, error, tostring, require
local time_mt = core.time_metatable

local _M = { _VERSION = "0.1.0" }

local MAX_DEPTH = 64

-- The runtime's sandbox (cairn_runtime_options.sandbox), or nil: trusted code.
local sb

--- Load the runtime's domain modules in a sandbox from now on.
-- @param opts cairn.sandbox.new's options (path, allow, instructions, memory)
function _M.use_sandbox(opts)
  sb = sandbox.new(opts)
end

-- A copy of v with aggregates turned into plain tables: a map of their
-- fields (id, version, created_on, modified_on, head and their state).
-- Events are plain tables already. Other objects stay as they are, for the
-- encoder to refuse with a SchemaError naming them.
local function plain(v, depth)
  if type(v) ~= "table" or depth > MAX_DEPTH then return v end
  local mt = getmetatable(v)
  if mt == time_mt then return v end
  if mt and (type(mt) ~= "table" or rawget(mt, "__events") == nil) then return v end -- not an aggregate
  local copy = {}
  for k, x in pairs(v) do copy[k] = plain(x, depth + 1) end
  return copy
end

--- Make the application: `require(module)`, then its field `app_name` (or the
-- module itself when app_name is nil) must be an application class.
-- @param env the env table (API.md §3) for `App.new`
-- @return the application
function _M.load(module, app_name, env)
  local loaded
  if sb then loaded = sb:require(module) else loaded = require(module) end
  local App = loaded
  if app_name then
    App = type(loaded) == "table" and loaded[app_name] or nil
    if not application.is_class(App) then
      error(("module '%s' has no application class '%s' (a field of the table it returns)")
        :format(module, app_name), 0)
    end
  elseif not application.is_class(App) then
    error(("module '%s' returns a %s, not an application class: name the class (a field of the module)")
      :format(module, type(loaded)), 0)
  end
  return App.new(env)
end

local function pack_plain(...)
  local n = select("#", ...)
  local results = { n = n }
  for i = 1, n do results[i] = plain((select(i, ...)), 1) end
  return results
end

--- Call `app:method(args[1], ..., args[n])` (a sandboxed class's methods run
-- under its bounds: the sandbox wraps them).
-- @return `{ n = count, ... }`: every result, as plain data
function _M.call(app, method, args, n)
  local fn = app[method]
  if type(fn) ~= "function" then
    error(("%s has no method '%s'"):format(tostring(app.name), method), 0)
  end
  return pack_plain(fn(app, unpack(args, 1, n)))
end

--- Notifications from `start`, at most `limit`, as plain data.
function _M.read_log(app, start, limit)
  local items = app.log:select(start, limit)
  for i = 1, #items do items[i] = plain(items[i], 1) end
  return items
end

--- `cairn.reload(module)`.
function _M.reload(module)
  if sb then sb:reload(module) else cairn.reload(module) end
end

--- Close an application's store.
function _M.close(app)
  app:close()
end

return _M
