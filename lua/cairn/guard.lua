--- Which objects belong to sandboxed code (see cairn.sandbox), and how the
-- framework calls into them. A class, application class or projection that a
-- sandbox defined is registered here with the sandbox's `run(fn, ...)`; the
-- framework's call sites into domain code (apply, create_id, upcasters,
-- policies, projection handlers, the embedding API's calls) ask here first.
-- Trusted objects are not registered: for them it costs one table lookup.
-- @module cairn.guard

local setmetatable = setmetatable

local _M = { _VERSION = "0.1.0" }

local runners = setmetatable({}, { __mode = "k" })

--- Register obj as belonging to a sandbox whose calls go through run(fn, ...).
function _M.register(obj, run)
  runners[obj] = run
end

--- The run function of the sandbox that owns obj, or nil for trusted objects.
function _M.runner(obj)
  if obj == nil then return nil end
  return runners[obj]
end

--- How many sandboxed calls are running (0 or 1: calls do not nest sandboxes).
_M.depth = 0

--- Is sandboxed code running (so that what it asks for must be refused)?
function _M.inside()
  return _M.depth > 0
end

return _M
