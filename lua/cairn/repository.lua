--- The repository: aggregates rebuilt from their stored events.
-- @module cairn.repository
local aggregate = require "cairn.aggregate"
local aggregate_cache = require "cairn.aggregate_cache"
local errors = require "cairn.errors"
local core = require "cairn.core"

local setmetatable, type, pcall, error = setmetatable, type, pcall, error
local uuid_normalize = core.uuid_normalize
local remove = table.remove

local _M = { _VERSION = "0.1.0" }
local mt = { __index = _M }

--- Internal: a repository over an application's store, with an aggregate
-- cache of `cache_size` aggregates when that is above 0.
function _M.new(app, cache_size)
  return setmetatable({ app = app, cache = cache_size and cache_size > 0 and aggregate_cache.new(cache_size) or nil },
    mt)
end

-- The cached aggregate brought up to date from the events recorded since it
-- was cached (by any process), as a copy; nil when it is not cached. The read
-- starts at the cached version's own event, so that a stream forgotten since
-- (its event no longer decrypts) or no longer what the cache holds is read
-- again from the store, which says why.
local function from_cache(self, cache, id)
  local cached = cache:peek(id)
  if not cached then return nil end
  local store = self.app.store
  local ok, events, head = pcall(store.read_stream, store, id, { after = cached.version - 1, replay = true })
  local discarded = false
  ok = ok and events[1] ~= nil and events[1].originator_version == cached.version
  if ok and events[2] then
    remove(events, 1)
    ok, cached, discarded = pcall(aggregate.replay, events, cached)
    if ok then cached.head = head or cached.head end
  end
  if not ok or discarded then
    cache:drop(id) -- forgotten, discarded, or not replayable: the store says why
    return nil
  end
  return aggregate_cache.copy(cached)
end

--- Internal (app:save): keep the cache up to date with what was saved:
-- aggs[i] saved the events events[i]. A cached aggregate at the version they
-- follow takes copies of them (the work of the new events only, not a copy of
-- the whole state); any other is dropped, to be read again on its next get.
function _M:saved(aggs, events)
  local cache = self.cache
  if not cache then return end
  for i = 1, #aggs do
    local id, list = aggs[i].id, events[i]
    local cached = cache:peek(id)
    if cached and cached.version == list[1].originator_version - 1 then
      local ok, _, discarded = pcall(aggregate.replay, aggregate_cache.copy(list), cached)
      if ok and not discarded then cached.head = aggs[i].head else cache:drop(id) end
    elseif cached then
      cache:drop(id)
    end
  end
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
  local cache = self.cache
  if cache and version == nil then
    local agg = from_cache(self, cache, id)
    if agg then return agg end
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
  local events, head, cols = store:read_replay(id, { after = after, upto = version, replay = true })
  local discarded
  if cols then
    agg, discarded = aggregate.replay_columns(cols, agg, id)
  elseif agg then
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
  if cache and version == nil then cache:put(agg) end
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
