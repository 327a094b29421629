--- The repository: aggregates rebuilt from their stored events.
-- @module cairn.repository
local aggregate = require "cairn.aggregate"
local aggregate_cache = require "cairn.aggregate_cache"
local errors = require "cairn.errors"
local core = require "cairn.core"
local event = require "cairn.event"

local setmetatable, type, pcall, error, next, tostring = setmetatable, type, pcall, error, next, tostring
local aggregate_id = core.aggregate_id
local copy, copy_plan, copy_by = aggregate_cache.copy, aggregate_cache.copy_plan, aggregate_cache.copy_by

local _M = { _VERSION = "0.1.0" }
local mt = { __index = _M }

-- A smaller snapshot state decodes in about the time its copy takes: not kept.
local KEPT_STATE_MIN = 4096

--- Internal: a repository over an application's store, with an aggregate
-- cache of `cache_size` aggregates and the decoded snapshot states of
-- `snapshot_cache` aggregates, each when above 0.
function _M.new(app, cache_size, snapshot_cache)
  return setmetatable({ app = app, cache = cache_size and cache_size > 0 and aggregate_cache.new(cache_size) or nil,
    snapshot_states = snapshot_cache and snapshot_cache > 0 and aggregate_cache.new(snapshot_cache) or nil }, mt)
end

-- The cached aggregate brought up to date from the events recorded since it
-- was cached (by any process), as a copy; nil when it is not cached, or when
-- the store no longer holds what the cache does (forgotten; an unknown head),
-- to be read again from the store, which says why. One short read of the
-- stream's head answers "is it still version v with this hash" without
-- opening an event; only newer events, if any, are read and applied.
local function from_cache(self, cache, id)
  local cached = cache:peek(id)
  if not cached then return nil end
  local store = self.app.store
  local version, head, forgotten = store:stream_head(id)
  local current = not forgotten and version == cached.version and head == cached.head
  if not current and not forgotten and version > cached.version then
    local ok, events, new_head = pcall(store.read_stream, store, id, { after = cached.version, replay = true })
    local discarded = false
    ok = ok and events[1] ~= nil and events[1].originator_version == cached.version + 1
    if ok then ok, cached, discarded = pcall(aggregate.replay, events, cached) end
    if ok and not discarded then
      cached.head = new_head
      current = true
    end
  end
  if not current then
    cache:drop(id) -- forgotten, discarded, not replayable, or not what the store holds
    return nil
  end
  return copy(cached)
end

-- The events to apply to a cached aggregate: the saved ones themselves (apply
-- only reads them), or copies when a field holds a table that apply may keep.
local HEADER = event.HEADER
local function private_events(list)
  for i = 1, #list do
    for k, v in next, list[i] do
      if type(v) == "table" and not HEADER[k] then return copy(list) end
    end
  end
  return list
end

--- Internal (app:save): keep the cache up to date with what was saved:
-- aggs[i] saved the events events[i]. A cached aggregate at the version they
-- follow applies them (the work of the new events only, not a copy of the
-- whole state); any other is dropped, to be read again on its next get.
function _M:saved(aggs, events)
  local cache = self.cache
  if not cache then return end
  for i = 1, #aggs do
    local id, list = aggs[i].id, events[i]
    local cached = cache:peek(id)
    if cached and cached.version == list[1].originator_version - 1 then
      local ok, _, discarded = pcall(aggregate.replay, private_events(list), cached)
      if ok and not discarded then cached.head = aggs[i].head else cache:drop(id) end
    elseif cached then
      cache:drop(id)
    end
  end
end

--- The canonical form of an aggregate id: a UUID in lower case, or a string id as it is.
-- @raise AggregateNotFound if it is neither (not a string, empty, above 255 bytes, not UTF-8)
function _M:check_id(id)
  local canonical, problem = aggregate_id(id)
  if not canonical then
    errors.raise("AggregateNotFound", "no aggregate %s in %s: the id %s",
      type(id) == "string" and ("'%s'"):format(id:sub(1, 64)) or tostring(id), self.app.store:uri(), problem)
  end
  return canonical
end

-- The newest snapshot at or below version (any: nil), or nil, with a state of
-- its own. A state decoded before is kept (a private copy) under the record's
-- hash; when the store's snapshot is that record, read and checked as always
-- (and still openable: not forgotten), its state is a copy of the kept one
-- rather than a second unsealing, inflating and decoding of the same bytes.
local function read_snapshot(self, store, id, version)
  local states = self.snapshot_states
  local kept = states and states:peek(id)
  local q = { upto = version, known = kept and kept.record_hash }
  local snap
  if kept then
    local ok
    ok, snap = pcall(store.read_snapshot, store, id, q)
    if not ok then
      states:drop(id) -- forgotten or damaged: keep no state of it
      error(snap, 0)
    end
  else
    snap = store:read_snapshot(id, q)
  end
  if not snap then
    if kept then states:drop(id) end
  elseif snap.unchanged then -- the record's body was not opened: its state and string id are the kept ones
    snap.state = kept.plan and copy_by(kept.plan) or copy(kept.state)
    snap.originator_id = kept.originator_id
  elseif states and snap.state_bytes >= KEPT_STATE_MIN then
    states:put { id = id, record_hash = snap.record_hash, state = snap.state, -- put keeps a copy
                 originator_id = snap.originator_id }
    kept = states:peek(id)
    kept.plan = copy_plan(kept.state) -- a decoded state is a tree: copies take a step per table
  elseif kept then
    states:drop(id)
  end
  return snap
end

--- Get an aggregate, at its latest version or at `opts.version`.
-- @param id the aggregate id (a UUID or a string id)
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
    local snap = read_snapshot(self, store, id, version)
    if snap then
      -- the id it was saved under: a string id also when id is its stream key (API.md §2)
      agg = aggregate.from_snapshot(snap.class_name, snap.originator_id, snap.version, snap.class_version,
        snap.state, snap.timestamp_us, snap.head)
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
  local canonical = aggregate_id(id)
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
