--- The repository: aggregates rebuilt from their stored events.
-- @module cairn.repository
local aggregate = require "cairn.aggregate"
local errors = require "cairn.errors"
local core = require "cairn.core"

local setmetatable, type, pcall, error = setmetatable, type, pcall, error
local uuid_normalize = core.uuid_normalize

local _M = { _VERSION = "0.1.0" }
local mt = { __index = _M }

--- Internal: a repository over an application's store.
function _M.new(app)
  return setmetatable({ app = app }, mt)
end

--- The canonical (lower-case) form of an aggregate id.
-- @raise AggregateNotFound if it is not a UUID
function _M:check_id(id)
  local canonical = uuid_normalize(id)
  if not canonical then
    errors.raise("AggregateNotFound", "no aggregate %s in %s: the id is not a UUID",
      tostring(id), self.app.store:uri())
  end
  return canonical
end

--- Get an aggregate, at its latest version or at `opts.version`.
-- @param id the aggregate id (a UUID string)
-- @param[opt] opts `{ version = v }`
-- @return the aggregate
-- @raise AggregateNotFound if there is no such aggregate (or it was discarded)
function _M:get(id, opts)
  id = self:check_id(id)
  local version = opts and opts.version
  if version ~= nil and (type(version) ~= "number" or version < 0 or version % 1 ~= 0) then
    error("bad option 'version' to 'get' (a whole number expected)", 2)
  end
  local store = self.app.store
  -- start from the newest snapshot at or below the version, if any
  local agg, after
  if self.app.snapshotting then
    local snap = store:read_snapshot(id, version and { upto = version })
    if snap then
      agg = aggregate.from_snapshot(snap.class_name, id, snap.version, snap.class_version, snap.state,
        snap.timestamp_us, snap.head)
      after = snap.version
    end
  end
  local events, head = store:read_stream(id, { after = after, upto = version, replay = true })
  local discarded
  if agg then
    agg, discarded = aggregate.replay(events, agg)
  else
    if #events == 0 then
      if version then
        errors.raise("AggregateNotFound", "aggregate %s has no version %d in %s", id, version, store:uri())
      end
      errors.raise("AggregateNotFound", "aggregate %s not found in %s", id, store:uri())
    end
    agg, discarded = aggregate.replay(events)
  end
  agg.head = head or agg.head
  if discarded then
    errors.raise("AggregateNotFound", "aggregate %s was discarded (version %d) in %s", id, agg.version,
      store:uri())
  end
  return agg
end

--- Is there an aggregate with this id (recorded and not discarded)?
function _M:contains(id)
  local canonical = uuid_normalize(id)
  if not canonical then return false end
  local ok, events = pcall(self.app.store.read_stream, self.app.store, canonical,
    { reverse = true, limit = 1, replay = true })
  if not ok then
    if errors.is(events, "AggregateNotFound") then return false end -- forgotten
    error(events, 0)
  end
  local last = events[1]
  if not last then return false end
  local topic = last.topic
  return topic:sub(-10) ~= ".Discarded"
end

return _M
