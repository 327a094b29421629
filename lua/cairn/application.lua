--- Applications: a store, a repository and a notification log, configured from env.
-- `cairn.application(name)` defines an application class; see API.md §3.
-- @module cairn.application
local core = require "cairn.core"
local aggregate = require "cairn.aggregate"
local config = require "cairn.config"
local errors = require "cairn.errors"
local recorder = require "cairn.recorder"
local repository = require "cairn.repository"
local snapshot_store = require "cairn.snapshot_store"
local notification_log = require "cairn.notification_log"
local dcb_events = require "cairn.events"

local setmetatable, getmetatable, select = setmetatable, getmetatable, select
local type, tonumber, pcall, error, tostring, pairs = type, tonumber, pcall, error, tostring, pairs
local floor = math.floor
local encode = core.encode
local add_record = recorder.add
local RECORD = recorder.STRIDE
local pending, take_pending = aggregate.pending, aggregate.take_pending
local new_tab = require "table.new" -- LuaJIT's: a table with room for n keys

-- The state of an aggregate as msgpack, with a SchemaError naming it if a
-- field cannot be stored.
local function encode_state(class_name, agg, state)
  local ok, bytes = pcall(encode, state)
  if not ok then
    errors.raise("SchemaError", "cannot snapshot %s %s version %d: %s", class_name, agg.id, agg.version,
      type(bytes) == "table" and bytes.message or tostring(bytes))
  end
  return bytes
end

local _M = { _VERSION = "0.1.0" }

--- Methods shared by every application class.
local Base = {}

-- Every defined application class by name (the newest definition of a name).
local classes = {}

--- Internal (cairn.reload): set while a module is being reloaded; an
-- application class defined again under its name is then updated in place,
-- so that application objects made from it get the new methods.
_M.reloading = false

-- CAIRN_MAP_SIZE: at least one page, at most what an x86-64 address space maps.
local MIN_MAP_SIZE, MAX_MAP_SIZE = 4096, 2 ^ 48

local function open_store(env)
  local uri = env:get("CAIRN_STORE", "memory:")
  local sync = env:choice("CAIRN_SYNC", "full", { "full", "none" })
  local compressor = env:choice("CAIRN_COMPRESSOR", "none", { "none", "zstd" })
  local map_size = env:get("CAIRN_MAP_SIZE")
  local bytes = map_size and tonumber(map_size)
  if map_size and not (bytes and bytes % 1 == 0 and bytes >= MIN_MAP_SIZE and bytes <= MAX_MAP_SIZE) then
    errors.raise("ConfigError", "CAIRN_MAP_SIZE must be a whole number of bytes from %d to 2^48 (got '%s')",
      MIN_MAP_SIZE, map_size)
  end
  -- the key goes straight to C, which keeps it in locked memory; the
  -- application keeps no copy
  return recorder.open(uri, { sync = sync, map_size = bytes, compressor = compressor,
                          cipher_key = env:get("CAIRN_CIPHER_KEY") })
end

-- CAIRN_AGGREGATE_CACHE: how many aggregates the repository keeps (0: none);
-- CAIRN_SNAPSHOT_CACHE: how many decoded snapshot states (0: none).
local function cache_size(env, key, what, default)
  local given = env:get(key)
  if given == nil then return default end
  local n = tonumber(given)
  if not (n and n % 1 == 0 and n >= 0 and n <= 2 ^ 31) then
    errors.raise("ConfigError", "%s must be a whole number of %s from 0 to 2^31 (got '%s')", key, what,
      tostring(given))
  end
  return n
end

-- Snapshot records (a batch, see cairn.recorder) of the aggregates whose new
-- version reaches a multiple of their class's snapshotting interval; records
-- are the aggregates' pending records.
local function interval_snapshots(intervals, aggs, records)
  local snaps
  for i = 1, #aggs do
    local agg, list = aggs[i], records[i]
    local class_name = getmetatable(agg).__name
    local every = intervals[class_name]
    if every then
      -- the last pending record's version, timestamp and topic
      local at = #list - RECORD
      local last_version, last_ts, last_topic = list[at + 2], list[at + 3], list[at + 4]
      local first_version = list[2]
      local reached = floor(last_version / every) > floor((first_version - 1) / every)
      if reached and last_topic ~= class_name .. ".Discarded" then
        local name, class_version, state = aggregate.snapshot_state(agg)
        snaps = snaps or {}
        add_record(snaps, #snaps, agg.id, agg.version, last_ts, name, encode_state(name, agg, state), class_version)
      end
    end
  end
  return snaps
end

-- One append: the batch, snapshots that intervals call for, a tracking
-- position, an idempotency key. A batch the store refuses gives nil and the
-- error object (store:try_append).
local function append(self, batch, tracking_app, tracking_id, aggs, records, once)
  local intervals = self.snapshotting_intervals
  local snaps = intervals and interval_snapshots(intervals, aggs, records)
  if not (snaps or tracking_app or once) then return self.store:try_append(batch) end
  return self.store:try_append(batch, {
    tracking = tracking_app and { application = tracking_app, id = tracking_id }, snapshots = snaps, once = once })
end

-- A conflict on an aggregate that was being created means one with its id
-- exists already: say so, and what to do instead.
local function explain_conflict(err, aggs, events)
  if not errors.is(err, "ConcurrencyError") then return err end
  for i = 1, #aggs do
    local agg, class = aggs[i], getmetatable(aggs[i])
    if events[i][1].originator_version == class.__initial_version and err.message:find(agg.id, 1, true) then
      return errors.new("ConcurrencyError", ("%s %s already exists (it was created before): get it with "
        .. "repository:get instead of creating it again (%s)"):format(class.__name, agg.id, err.message))
    end
  end
  return err
end

-- Record the pending events of aggs[1..n_aggs] in one transaction, with a
-- tracking position (tracking_app, tracking_id) when a follower saves, and
-- an idempotency key (once) for save_once. The events stay pending until
-- the store has them: a save that fails leaves the aggregates as they were.
local function record(self, tracking_app, tracking_id, aggs, n_aggs, once)
  local saving_aggs, saving_events, saving_records = new_tab(n_aggs, 0), new_tab(n_aggs, 0), new_tab(n_aggs, 0)
  local seen = n_aggs > 1 and new_tab(0, n_aggs) or nil
  local k, n_events = 0, 0
  for i = 1, n_aggs do
    local agg = aggs[i]
    if type(agg) ~= "table" or not getmetatable(agg) or not agg.id then
      error(("bad argument #%d to 'save' (aggregate expected)"):format(i), 3)
    end
    if not (seen and seen[agg]) then
      if seen then seen[agg] = true end
      local events, records = pending(agg)
      if events then
        k = k + 1
        saving_aggs[k], saving_events[k], saving_records[k] = agg, events, records
        n_events = n_events + #events
      end
    end
  end
  local recordings = new_tab(n_events, 0)
  local batch = saving_records[1]
  if not batch then
    if not (tracking_app or once) then return recordings end
    batch = {}
  elseif k > 1 then
    -- several aggregates: their pending lists as they are, a batch of batches
    batch = saving_records
  end
  -- under a pcall, though a refusal comes back as a value: the trace that
  -- goes on after the store's C call then ends where append returns, and the
  -- cache's replay below runs in traces of its own (traced on from here, it
  -- left side exits LuaJIT could not compile, 'NYI: register coalescing too
  -- complex', about one run in 30 of spec/jit_spec.lua)
  local ok, first, heads = pcall(append, self, batch, tracking_app, tracking_id, saving_aggs, saving_records, once)
  if not ok then error(explain_conflict(first, saving_aggs, saving_events), 0) end
  if not first then error(explain_conflict(heads, saving_aggs, saving_events), 0) end
  local n = 0
  for i = 1, k do
    local agg, events = saving_aggs[i], saving_events[i]
    take_pending(agg)
    agg.head = heads[i]
    for j = 1, #events do
      recordings[n + j] = { notification_id = first + n + j - 1, event = events[j] }
    end
    n = n + #events
  end
  self.repository:saved(saving_aggs, saving_events)
  return recordings
end

-- The save of one aggregate without snapshot intervals or an aggregate
-- cache (most saves): its pending records are the batch as they are, and
-- they stay pending until the store has them, so a failure has nothing to
-- put back: no pcall, no closure, no table but the recordings (the loop
-- stays compiled). With a cache, record's path: a trace that went on from
-- here into the cache's replay left side exits LuaJIT could not compile
-- (NYI: register coalescing too complex, spec/jit_spec.lua).
local function record_one(self, agg)
  if type(agg) ~= "table" or not getmetatable(agg) or not agg.id then
    error("bad argument #1 to 'save' (aggregate expected)", 3)
  end
  local events, records = pending(agg)
  if not events then return {} end
  local first, heads = self.store:try_append(records)
  if not first then error(explain_conflict(heads, { agg }, { events }), 0) end
  take_pending(agg)
  agg.head = heads[1]
  local n = #events
  local recordings = new_tab(n, 0)
  for j = 1, n do recordings[j] = { notification_id = first + j - 1, event = events[j] } end
  return recordings
end

--- Record the pending events of the given aggregates in one transaction.
-- @param ... aggregates
-- @return the recordings: array of `{ notification_id, event }` in order
-- @raise ConcurrencyError if any aggregate is stale; nothing is then recorded
function Base:save(...)
  local n = select("#", ...)
  if n == 1 and not self.snapshotting_intervals and not self.repository.cache then return record_one(self, ...) end
  return record(self, nil, nil, { ... }, n)
end

-- The recordings of n events recorded from notification id first on.
local function recordings_of(self, first, n)
  local recordings = {}
  if n == 0 then return recordings end
  local ids, events = self.store:read_events { from = first, limit = n }
  for i = 1, #ids do recordings[i] = { notification_id = ids[i], event = events[i] } end
  return recordings
end

-- A retried command's aggregates: their new events are the first save's, not recorded again.
local function drop_pending(aggs, n_aggs)
  for i = 1, n_aggs do
    local agg = aggs[i]
    if type(agg) == "table" and getmetatable(agg) then aggregate.take_pending(agg) end
  end
end

local MAX_ONCE_KEY = 255

--- Record the pending events of the given aggregates, once for `key`: a
-- command that may be retried (API.md §9). The key and the events commit in
-- one transaction.
-- @param key a string of 1 to 255 bytes naming the command
-- @param ... aggregates
-- @return the recordings; when `key` was saved before (by any process), the
--   first save's, and nothing is recorded (the aggregates' pending events are dropped)
-- @raise ConcurrencyError if an aggregate is stale (nothing recorded)
function Base:save_once(key, ...)
  if type(key) ~= "string" or #key == 0 or #key > MAX_ONCE_KEY then
    error(("bad argument #1 to 'save_once' (a key of 1 to %d bytes expected)"):format(MAX_ONCE_KEY), 2)
  end
  local n_aggs = select("#", ...)
  local aggs = { ... }
  local first, n = self.store:once_get(key)
  if not first then
    local ok, recordings = pcall(record, self, nil, nil, aggs, n_aggs, key)
    if ok then return recordings end
    -- another process may have saved the key meanwhile: then its save stands
    if not errors.is(recordings, "ConcurrencyError") then error(recordings, 0) end
    first, n = self.store:once_get(key)
    if not first then error(recordings, 0) end
  end
  drop_pending(aggs, n_aggs)
  return recordings_of(self, first, n)
end

--- Internal (process applications): save with the position of the
-- notification that caused it, in the same transaction.
function Base:save_tracked(leader_name, notification_id, aggs)
  return record(self, leader_name, notification_id, aggs, #aggs)
end

--- Snapshot an aggregate now, at its latest version or at `version`.
-- @return the version snapshotted
-- @raise AggregateNotFound, ConfigError when snapshotting is off
function Base:take_snapshot(id, version)
  if not self.snapshotting then
    errors.raise("ConfigError", "%s: snapshotting is off (set CAIRN_SNAPSHOTTING=y or snapshotting_intervals)",
      self.name)
  end
  local agg = self.repository:get(id, version and { version = version } or nil)
  if version and agg.version ~= version then
    errors.raise("AggregateNotFound", "aggregate %s has no version %d (it is at version %d)", agg.id, version,
      agg.version)
  end
  local name, class_version, state = aggregate.snapshot_state(agg)
  local ts = floor(agg.modified_on * 1e6 + 0.5)
  local snap = {}
  add_record(snap, 0, agg.id, agg.version, ts, name, encode_state(name, agg, state), class_version)
  self.store:append({}, { snapshots = snap })
  return agg.version
end

--- Destroy an aggregate's data key (crypto-shredding; encrypted stores only).
-- Its events and snapshots become unreadable for good; the log keeps its ids and topics.
function Base:forget(id)
  id = self.repository:check_id(id)
  self.store:forget(id)
  if self.repository.cache then self.repository.cache:drop(id) end
  if self.repository.snapshot_states then self.repository.snapshot_states:drop(id) end
end

--- The highest notification id (0 when nothing is recorded).
function Base:max_notification_id()
  return self.store:max_id()
end

--- Close the application's store. The application cannot be used afterwards.
function Base:close()
  if self.store then self.store:close() end
end

--- Define an application class.
-- @param name the application's name (also the prefix of its env keys)
-- @return the class; `App.new([env])` makes an instance
function _M.define(name)
  if type(name) ~= "string" or not name:match("^[%a_][%w_]*$") then
    error("bad argument #1 to 'application' (a name of letters, digits and _ expected)", 2)
  end
  local App = _M.reloading and classes[name]
  if App then
    for k in pairs(App) do App[k] = nil end
    App.name = name
  else
    App = { name = name }
    setmetatable(App, { __index = Base })
  end
  App.__index = App
  classes[name] = App
  --- Make an application: opens its store.
  -- @param[opt] env settings (API.md §3); the process environment fills the rest
  function App.new(env)
    local self = setmetatable({ name = name }, App)
    self.env = config.new(name, env)
    self.store = open_store(self.env)
    self.snapshotting = self.snapshotting_intervals ~= nil or self.env:flag("CAIRN_SNAPSHOTTING", false)
    self.snapshots = snapshot_store.new(self)
    self.repository = repository.new(self, cache_size(self.env, "CAIRN_AGGREGATE_CACHE", "aggregates", 0),
      cache_size(self.env, "CAIRN_SNAPSHOT_CACHE", "snapshot states", 8))
    self.log = notification_log.new(self)
    self.events = dcb_events.new(self)
    return self
  end
  return App
end

--- Is v an application class (made by `cairn.application` or `cairn.process_application`)?
function _M.is_class(v)
  local mt = type(v) == "table" and getmetatable(v)
  return mt and mt.__index == Base or false
end

--- Internal (cairn.reload): the registry and every class's fields as they are now.
function _M.save_registry()
  local saved = {}
  for name, App in pairs(classes) do
    local fields = {}
    for k, v in pairs(App) do fields[k] = v end
    saved[name] = { class = App, fields = fields }
  end
  return saved
end

--- Internal (cairn.reload): put back what `save_registry` saved: the same
-- class tables with their old fields, and no class defined since.
function _M.restore_registry(saved)
  for name in pairs(classes) do classes[name] = nil end
  for name, entry in pairs(saved) do
    local App = entry.class
    for k in pairs(App) do App[k] = nil end
    for k, v in pairs(entry.fields) do App[k] = v end
    classes[name] = App
  end
end

return _M
