--- Hot reload of domain modules: `cairn.reload("game")` loads a module's file
-- again in a running host, so code changed on disk takes effect without a restart.
--
-- What changes after a successful reload:
--
-- - Aggregate classes the module defines again replace the old ones in the
--   class registry: every aggregate the repository builds afterwards (also
--   from events recorded before the reload) is an instance of the new class
--   and replays with the new apply functions. Aggregate objects already in
--   memory keep their old class until they are got again.
-- - Application classes the module defines again are updated in place: the
--   class table stays the same, with the new module's fields and methods, so
--   application objects made before the reload (and their open stores) call
--   the new methods at once. Settings read by `App.new` (store, snapshotting
--   on or off) stay as they were.
-- - `package.loaded[name]` is the module's new value, which `reload` returns.
--
-- A module that fails to load (syntax error, error while it runs) changes
-- nothing: `package.loaded`, the class registries and the application classes
-- are as they were before, and `reload` raises an error naming the module and
-- the cause. Only the named module is loaded again, not the modules it requires.
-- @module cairn.reload
local aggregate = require "cairn.aggregate"
local application = require "cairn.application"

local type, pcall, error, tostring, require = type, pcall, error, tostring, require
local package_loaded = package.loaded

local _M = { _VERSION = "0.1.0" }

local function set_reloading(on)
  aggregate.reloading, application.reloading = on, on
end

--- Load a module again, keeping the old one if the new one fails.
-- @param name the module's name, as given to `require`
-- @return the module's new value
-- @raise a string "cannot reload module 'NAME': CAUSE" if the module fails to load
-- @usage cairn.reload "training_school"
function _M.reload(name)
  if type(name) ~= "string" or name == "" then
    error("bad argument #1 to 'reload' (module name expected)", 2)
  end
  return _M.reload_in(name, package_loaded, require)
end

--- Internal: `reload` for modules that `load(name)` loads and `loaded` caches
-- (a sandbox's, see cairn.sandbox).
function _M.reload_in(name, loaded, load)
  if aggregate.reloading then error("cairn.reload cannot be called while a module is being reloaded", 2) end
  local old = loaded[name]
  local saved_aggregates, saved_applications = aggregate.save_registry(), application.save_registry()
  loaded[name] = nil
  set_reloading(true)
  local ok, result = pcall(load, name)
  set_reloading(false)
  if not ok then
    loaded[name] = old
    aggregate.restore_registry(saved_aggregates)
    application.restore_registry(saved_applications)
    -- no position: the module failed, not the caller
    error(("cannot reload module '%s': %s"):format(name, tostring(result)), 0)
  end
  return result
end

return _M
