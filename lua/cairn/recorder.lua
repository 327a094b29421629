--- The recorder port: the one Lua module that calls the C store binding
-- (`core.open` and the store userdata's methods). Every other module reads and
-- writes a store through a recorder: applications, repositories, logs,
-- snapshots, views, runners and the store tools. `cairn.remote_log`
-- implements the same reading side (`read_log`, `read_events`, `max_id`, `uri`,
-- `wake_seq`, `close`) over HTTP.
--
-- Reads take named options: a stream `{ after =, upto =, limit =, reverse = }`
-- (versions after < v <= upto), the log `{ from =, stop =, limit =, topics = }`
-- (ids from <= id <= stop; or `ids = { ... }`: exactly these ids, ascending;
-- `replay = true`: events without event_id and metadata; `dcb = true`: DCB
-- events as `app.events:read` hands them out, `{ position, type, data, tags }`).
-- The binding gathers what a read returns, ends the read, and only then makes
-- Lua values; upcasting runs here, after the read. Log reads come as pages
-- whose tables compiled Lua builds (cairn.log_page), or, when that cannot
-- be, as the binding's tables.
-- @module cairn.recorder
local core = require "cairn.core"
local event = require "cairn.event"
local log_page = require "cairn.log_page"

local setmetatable, getmetatable, type, error, tostring = setmetatable, getmetatable, type, error, tostring
local open, wait = core.open, core.wait
local new_tab = require "table.new" -- LuaJIT's: a table with room for n keys
local event_fields, with_header = event.fields, event.with_header
local page_on, page_build = log_page.on, log_page.build

local _M = { _VERSION = "0.1.0" }

local Recorder = {}
Recorder.__index = Recorder
_M.Recorder = Recorder

-- The batch protocol, Lua side (runtime/lua/lua_store.c reads it): a flat
-- list of STRIDE values per record, in the order of `add`.
_M.STRIDE = 8
assert(core.RECORD_STRIDE == _M.STRIDE, "cairn.recorder and the C binding disagree on the batch protocol")

--- Append one record to a batch (a flat list) at position n; returns the new n.
-- @param id the aggregate (stream) id
-- @param version its version
-- @param timestamp_us microseconds since the epoch
-- @param topic the event's topic (a snapshot's: the aggregate class name)
-- @param payload msgpack bytes of the fields (a snapshot's: the state)
-- @param class_version the class version of the payload
-- @param[opt] event_id the event's id: its UUID string, or its 16 bytes
-- @param[opt] metadata msgpack bytes of the metadata (nil: none)
function _M.add(batch, n, id, version, timestamp_us, topic, payload, class_version, event_id, metadata)
  batch[n + 1], batch[n + 2], batch[n + 3], batch[n + 4] = id, version, timestamp_us, topic
  -- false, not nil, for what is absent: the list's length must count every value
  batch[n + 5], batch[n + 6], batch[n + 7], batch[n + 8] = payload, class_version, event_id or false, metadata or false
  return n + 8
end

-- Upcasting (set by cairn.aggregate): topic -> current class version for the
-- topics not at version 1, and upcast(topic, stored_version, fields,
-- aggregate_version) -> fields, current version (nothing for an unknown topic).
local versions, upcaster = {}, nil

--- Internal (cairn.aggregate): the class versions of event topics (those
-- other than 1) and the function that upcasts fields stored at another one.
function _M.set_upcaster(topic_versions, fn)
  versions, upcaster = topic_versions, fn
end

-- Upcast the events that need it, after the read: odd is the binding's flat
-- list of (index, stored class version, forgotten) for the records that are
-- not plain; their class versions become the ones their fields now have.
local function upcast(events, odd)
  if not upcaster then return end
  for j = 1, #odd, 3 do
    local ev, stored = events[odd[j]], odd[j + 1]
    if not odd[j + 2] and (versions[ev.topic] or 1) ~= stored then
      local fields, now = upcaster(ev.topic, stored, event_fields(ev), ev.originator_version)
      if now then
        events[odd[j]] = with_header(fields, ev)
        odd[j + 1] = now
      end
    end
  end
end

-- Replay as columns (set by cairn.aggregate): topic -> the names of its
-- fields in the order its apply function takes them.
local replay_fields = nil

--- Internal (cairn.aggregate): the field names of every event topic, so that
-- reads for rebuilding aggregates can come as columns (`read_replay`).
function _M.set_replay_fields(fields)
  replay_fields = fields
end

--- The shape of a notification (API.md §3), made here and nowhere else:
-- `{ id, originator_id, originator_version, topic, event }`, with
-- `forgotten = true` for an event whose aggregate was forgotten and
-- `class_version` for fields at a class version other than 1.
function _M.notification(id, ev, class_version, forgotten)
  return { id = id, originator_id = ev.originator_id, originator_version = ev.originator_version,
           topic = ev.topic, event = ev, forgotten = forgotten or nil,
           class_version = class_version ~= 1 and class_version or nil }
end
local notification = _M.notification

--- Open a store.
-- @param uri `memory:` or `lmdb:PATH`
-- @param[opt] opts `sync` (`full`/`none`), `map_size`, `must_exist`, `cipher_key`
--   (base64), `compressor` (`zstd`/`none`), `keyless` (verify without the key)
-- @return a recorder
-- @raise ConfigError, StoreError
function _M.open(uri, opts)
  return setmetatable({ store = open(uri, opts) }, Recorder)
end

--- Is v a recorder (a local store)?
function _M.is_recorder(v)
  return getmetatable(v) == Recorder
end

--- Sleep until one of the recorders changes (or timeout_s passes).
-- @param recorders at most 16 recorders
-- @param seen their change counters as `wake_seq` gave them
-- @return false when a trapped signal arrived, else true
function _M.wait(recorders, seen, timeout_s, poll_s)
  local stores = {}
  for i = 1, #recorders do stores[i] = recorders[i].store end
  return wait(stores, seen, timeout_s, poll_s)
end

local function whole(v, name, fname)
  if v ~= nil and (type(v) ~= "number" or v < 0 or v % 1 ~= 0) then
    error(("bad option '%s' to '%s' (a whole number >= 0 expected)"):format(name, fname), 4)
  end
end

local NO_OPTS = {}

local function check_stream_query(q)
  if q == nil then return NO_OPTS end
  if type(q) ~= "table" then error("bad argument #2 to 'read_stream' (options table expected)", 3) end
  whole(q.after, "after", "read_stream")
  whole(q.upto, "upto", "read_stream")
  whole(q.limit, "limit", "read_stream")
  return q
end

local function check_log_query(q, fname)
  if q == nil then return NO_OPTS end
  if type(q) ~= "table" then error(("bad argument #1 to '%s' (options table expected)"):format(fname), 3) end
  whole(q.from, "from", fname)
  whole(q.stop, "stop", fname)
  whole(q.limit, "limit", fname)
  if q.topics ~= nil and type(q.topics) ~= "table" then
    error(("bad option 'topics' to '%s' (array of topics expected)"):format(fname), 3)
  end
  if q.ids ~= nil and type(q.ids) ~= "table" then
    error(("bad option 'ids' to '%s' (array of notification ids expected)"):format(fname), 3)
  end
  return q
end

-- store:append or store:try_append (fn) with the options spread as the binding takes them.
local function append_with(fn, store, records, opts)
  if not opts then return fn(store, records) end
  local tracking = opts.tracking
  if tracking then return fn(store, records, tracking.application, tracking.id, opts.snapshots, opts) end
  return fn(store, records, nil, nil, opts.snapshots, opts)
end

--- Record a batch in one transaction, or nothing of it.
-- @param records a batch (flat list, see `add`) of events: each stream's
--   events adjacent, with consecutive versions following the recorded ones;
--   or a list of such batches, recorded as their concatenation (app:save of
--   several aggregates passes each one's pending records, not a copy)
-- @param[opt] opts `tracking = { application = name, id = n }` (a follower's
--   position, recorded with the events), `snapshots` (a batch of aggregate states),
--   `once` (an idempotency key: ConcurrencyError if it was saved before),
--   `dcb` (the batch's DCB events: `{ event = index in the batch, type =, tags = }`),
--   `fail_if` (a DCB query) and `after` (a position: ConcurrencyError when an
--   event matching `fail_if` was recorded after it)
-- @return the notification id of the first event, and the hash of the last
--   event of each run of one stream
-- @raise ConcurrencyError (nothing recorded), StoreError
function Recorder:append(records, opts)
  return append_with(self.store.append, self.store, records, opts)
end

--- `append`, with a batch the store refuses given back as nil and the error
-- object instead of raised, so a save needs no pcall.
-- @return the first notification id and the heads; or nil, the error
function Recorder:try_append(records, opts)
  return append_with(self.store.try_append, self.store, records, opts)
end

--- The positions of the DCB events matching a query (cairn.events checks it).
-- @return the positions, ascending (at most `limit`), and the log's last id, read together
function Recorder:dcb_read(query, after, limit) return self.store:dcb_read(query, after, limit) end

--- The save recorded under an idempotency key: its first notification id and
-- number of events, or nil.
function Recorder:once_get(key) return self.store:once_get(key) end

--- A stream's events, oldest first (newest first with `reverse`), upcast.
-- @param id the aggregate id (a UUID string)
-- @param[opt] q `after`, `upto`, `limit`, `reverse`; `replay = true` leaves out
--   `event_id` and `metadata` (for rebuilding aggregates, where no event reaches user code)
-- @return the events, and the hash of the last one read (nil when none)
-- @raise AggregateNotFound (not a UUID, or forgotten), IntegrityError
function Recorder:read_stream(id, q)
  local events, head, odd = self.store:read_stream(id, check_stream_query(q), versions)
  if odd[1] then upcast(events, odd) end
  return events, head
end

--- A stream's head, in one short read (no payload opened, no chain checked).
-- @param id the aggregate id (a UUID string)
-- @return its last version (0: no events), that event's hash as `read_stream`
--   gives it (nil when none), and true when its data key was destroyed (forgotten)
function Recorder:stream_head(id) return self.store:stream_head(id) end

--- A stream read for rebuilding an aggregate (`q` as `read_stream`'s, with
-- `replay = true`): when every record is plain (nothing to upcast or
-- forgotten) and its topic's fields are known (`set_replay_fields`), the
-- events come as columns, with no table per event: `{ first = version of the
-- first, runs = { topic, count, ... } (count events of topic, run after run),
-- stamps = {...} (timestamps), values = {...} }`, the values of each event in
-- its apply function's parameter order, one event after the other
-- (`cairn.aggregate.replay_columns` applies them).
-- @return nil, the head hash and the columns; or the events and the head hash
function Recorder:read_replay(id, q)
  local events, head, odd, runs, first, stamps, values =
    self.store:read_stream(id, check_stream_query(q), versions, replay_fields)
  if runs then return nil, head, { first = first, runs = runs, stamps = stamps, values = values } end
  if odd[1] then upcast(events, odd) end
  return events, head
end

-- A log read as a page whose tables compiled Lua makes (cairn.log_page):
-- ids, events and odd as the binding's read_log gives them, or, given
-- notify (`notification`), the notifications and odd.
local function read_paged(store, q, notify)
  local page = store:read_page(q)
  if not page then
    if notify then return {}, {} end
    return {}, {}, {}
  end
  local a, b, c = page_build(page, q, versions, notify)
  store:release_page(page)
  return a, b, c
end

--- Notifications of the log in id order, with upcast events.
-- @param[opt] q `from` (default 1), `stop`, `limit`, `topics`
-- @return array of notifications (see `notification`)
function Recorder:read_log(q)
  q = check_log_query(q, "read_log")
  local out, odd
  if page_on() then
    out, odd = read_paged(self.store, q, notification)
  else
    local ids, events
    ids, events, odd = self.store:read_log(q, versions)
    local n = #ids
    out = new_tab(n, 0)
    for i = 1, n do out[i] = notification(ids[i], events[i], 1) end
  end
  if odd[1] then
    local events = {} -- those of the odd notifications
    for j = 1, #odd, 3 do events[odd[j]] = out[odd[j]].event end
    upcast(events, odd)
    for j = 1, #odd, 3 do
      local i = odd[j]
      out[i] = notification(out[i].id, events[i], odd[j + 1], odd[j + 2])
    end
  end
  return out
end

--- The log as two arrays, for followers (no notification tables).
-- @param[opt] q as `read_log`
-- @return ids, events: `ids[i]` is the notification id of `events[i]`
function Recorder:read_events(q)
  q = check_log_query(q, "read_events")
  local ids, events, odd
  if page_on() then ids, events, odd = read_paged(self.store, q)
  else ids, events, odd = self.store:read_log(q, versions) end
  if odd[1] then upcast(events, odd) end
  return ids, events
end

--- The newest snapshot of an aggregate (at or below `q.upto`), as stored.
-- @param[opt] q `upto` (a version); `known`: the `record_hash` of a snapshot read before,
--   whose state the caller holds: when the snapshot found is that record (checked as every
--   read is), its body is not opened or decoded again (`state` is nil, `unchanged` true and
--   `originator_id` is id: the caller has the state and the id it was saved under)
-- @return `{ version, class_version, class_name, state, head, timestamp_us, originator_id,
--   record_hash, state_bytes, unchanged }` (originator_id: the aggregate id it was saved under,
--   a string id, or id; state_bytes: the size of its encoded state), or nil
function Recorder:read_snapshot(id, q)
  local upto, known = q and q.upto, q and q.known
  whole(upto, "upto", "read_snapshot")
  if known ~= nil and type(known) ~= "string" then
    error("bad option 'known' to 'read_snapshot' (a record hash string expected)", 2)
  end
  local state, version, class_version, head, ts, class_name, string_id, record_hash, state_bytes =
    self.store:read_snapshot(id, upto, known)
  if not state then return nil end
  local unchanged = state == true
  return { version = version, class_version = class_version, class_name = class_name,
           state = not unchanged and state or nil, head = head, timestamp_us = ts,
           originator_id = string_id or id, record_hash = record_hash, state_bytes = state_bytes,
           unchanged = unchanged }
end

--- The highest notification id (0 when the log is empty).
function Recorder:max_id() return self.store:max_id() end

--- The last notification id of a leader application recorded as processed here (0: none).
function Recorder:tracking_max(app_name) return self.store:tracking_max(app_name) end

local function check_page(q, fname)
  if q == nil then return NO_OPTS end
  if type(q) ~= "table" then error(("bad argument #1 to '%s' (options table expected)"):format(fname), 3) end
  whole(q.limit, "limit", fname)
  if q.after ~= nil and type(q.after) ~= "string" then
    error(("bad option 'after' to '%s' (a string expected)"):format(fname), 3)
  end
  return q
end

--- A page of the tracking positions recorded here, in name order: followers'
-- leader names and views' `view/leader` names with the last id processed.
-- @param[opt] q `after` (a name), `limit` (default 1000)
-- @return `{ name, id, name, id, ... }`
function Recorder:tracking_scan(q)
  q = check_page(q, "tracking_scan")
  return self.store:tracking_scan(q.after, q.limit)
end

--- A page of the aggregates that have snapshots, in id order.
-- @param[opt] q `after` (an aggregate id), `limit` (at most and by default 1000)
-- @return array of aggregate ids
function Recorder:snapshot_streams(q)
  q = check_page(q, "snapshot_streams")
  return self.store:snapshot_streams(q.after, q.limit)
end

--- A page of the aggregates (streams) with their last versions, in id order.
-- @param[opt] q `after` (an aggregate id), `limit` (at most and by default 1000)
-- @return `{ id, version, id, version, ... }`
function Recorder:streams(q)
  q = check_page(q, "streams")
  return self.store:streams(q.after, q.limit)
end

--- A page of the names of the views that hold keys, in name order.
-- @param[opt] q `after` (a view name), `limit` (default 1000)
-- @return array of view names
function Recorder:view_names(q)
  q = check_page(q, "view_names")
  return self.store:view_names(q.after, q.limit)
end

--- Destroy an aggregate's data key (encrypted stores).
function Recorder:forget(id) return self.store:forget(id) end

--- Re-wrap every data key under a new master key (base64), in one transaction;
-- `progress(done, total)` (optional) is called now and then with the data keys re-wrapped.
function Recorder:rekey(new_key, progress) return self.store:rekey(new_key, progress) end

--- Check the whole store; `progress(done, total)` is called now and then.
-- @param[opt] progress
-- @param[opt] all true: the report's `all` lists every problem found, not only the `first`
function Recorder:verify(progress, all) return self.store:verify(progress, all) end

--- What the store holds: engine, uri, events, streams, max_notification_id, sizes, format.
function Recorder:stat() return self.store:stat() end

--- The URI the store was opened with.
function Recorder:uri() return self.store:uri() end

--- A compact copy of the store into an empty directory.
function Recorder:copy(dir) return self.store:copy(dir) end

--- The store's change counter, or nil when it has none (followers then poll).
function Recorder:wake_seq() return self.store:wake_seq() end

--- Close the store; using it afterwards raises a StoreError.
function Recorder:close() return self.store:close() end

--- A view's value at key (decoded), or nil.
function Recorder:view_get(view, key) return self.store:view_get(view, key) end

--- Apply view writes `{ key, msgpack bytes | false (delete), ... }` and a
-- tracking position `{ application =, id = [, first =] }` (optional) in one
-- transaction. `first` is the first notification of the batch that ends at
-- `id` (default `id`): ConcurrencyError, nothing written, when the position
-- recorded for the application is at or above it (the batch was processed).
function Recorder:view_write(view, ops, tracking)
  if tracking then return self.store:view_write(view, ops, tracking.application, tracking.id, tracking.first) end
  return self.store:view_write(view, ops)
end

--- A page of a view's entries: `{ key, value, key, value, ... }` in key order.
-- @param view the view's name
-- @param[opt] q `prefix` (default ""), `after` (a key), `limit` (entries, default 1000)
function Recorder:view_scan(view, q)
  q = q or NO_OPTS
  return self.store:view_scan(view, q.prefix or "", q.after, q.limit)
end

--- Empty a view: its keys and its tracking positions, in one transaction.
function Recorder:view_clear(view) return self.store:view_clear(view) end

--- How far a view has processed an application's log (0: not at all).
function Recorder:view_tracking_max(view, app_name) return self.store:view_tracking_max(view, app_name) end

function Recorder:__tostring()
  return tostring(self.store)
end

return _M
