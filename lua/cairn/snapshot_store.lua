--- An application's snapshots: `app.snapshots:get(id)`.
-- @module cairn.snapshot_store
local setmetatable = setmetatable

local _M = { _VERSION = "0.1.0" }
local mt = { __index = _M }

--- Internal: the snapshots of an application's store.
function _M.new(app)
  return setmetatable({ app = app }, mt)
end

--- The newest snapshot of an aggregate (at or below `opts.version`).
-- @return `{ version = v, class_version = c, state = {…}, head = hash, timestamp = seconds }`, or nil
function _M:get(id, opts)
  local canonical = self.app.repository:check_id(id)
  local snap = self.app.store:read_snapshot(canonical, opts and opts.version and { upto = opts.version })
  if not snap then return nil end
  return { version = snap.version, class_version = snap.class_version, state = snap.state, head = snap.head,
           timestamp = snap.timestamp_us / 1e6 }
end

return _M
