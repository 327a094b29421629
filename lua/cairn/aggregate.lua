--- Event-sourced aggregates: classes whose command methods trigger events.
-- `cairn.aggregate(name [, opts])` defines a class; see API.md §2.
-- @module cairn.aggregate
local core = require "cairn.core"
local errors = require "cairn.errors"
local event = require "cairn.event"
local recorder = require "cairn.recorder"
local guard = require "cairn.guard"
local schema = require "cairn.schema"

local setmetatable, getmetatable, rawget = setmetatable, getmetatable, rawget
local type, error, tostring, pairs, pcall = type, error, tostring, pairs, pcall
local runner_of = guard.runner
local debug_getlocal, select, unpack = debug.getlocal, select, unpack
local make_event, now_us, uuid4, uuid_normalize = core.make_event, core.now_us, core.uuid4, core.uuid_normalize
local aggregate_id = core.aggregate_id
local new_tab = require "table.new" -- LuaJIT's: a table with room for n keys

local _M = { _VERSION = "0.1.0" }

-- Pending (triggered, unsaved) events of each aggregate, kept out of the
-- aggregate's own table so its state holds only domain fields: the events,
-- and what will be recorded of them, taken at trigger time as a batch in
-- cairn.recorder's layout (so changing an event table changes nothing
-- recorded, and a save of one aggregate hands its list to the store as it is).
local pending_events = setmetatable({}, { __mode = "k" })
local pending_records = setmetatable({}, { __mode = "k" })
local add_record = recorder.add

-- Every defined class by name, and every event class by topic, for replay.
local classes, by_topic = {}, {}

-- The class version of every event topic that is not at version 1 (reads of
-- the others need no look-up): reads upcast records stored at an older one.
local versions = {}

-- The field names of every event topic, in apply's parameter order: replay
-- reads come as columns of values in this order (recorder.read_replay).
local replay_fields = {}
recorder.set_replay_fields(replay_fields)

-- Called by the recorder after reading a record stored at another class
-- version than its topic's current one (1 when not in `versions`).
-- @return the fields at the current version and that version; nothing for a
--   topic no class defines (the record is left as stored)
local function upcast_event(topic, from, fields, version)
  local entry = by_topic[topic]
  if not entry then return nil end
  local ev_class = entry.event
  local current = ev_class.version
  if from > current then
    errors.raise("SchemaError", "%s version %d was stored by a newer program: it is at class version %d, "
      .. "this program knows version %d", topic, version, from, current)
  end
  for v = from, current - 1 do
    local step = ev_class.upcast[v]
    if not step then
      errors.raise("SchemaError", "%s is stored at class version %d but has no upcast from version %d to %d",
        topic, from, v, v + 1)
    end
    local run = runner_of(entry.class)
    if run then fields = run(step, fields) or fields else fields = step(fields) or fields end
  end
  return fields, current
end
recorder.set_upcaster(versions, upcast_event)

local RESERVED = event.HEADER

-- Event names the framework defines on every class itself: a domain event of
-- that name would make the repository take a live aggregate for a gone one.
local RESERVED_EVENTS = { Discarded = "agg:discard() triggers it, and the repository treats it as the end" }

-- Field names come from the apply function's parameters (after self).
local function param_names(fn, where)
  local names = {}
  for i = 2, 64 do
    local name = debug_getlocal(fn, i)
    if not name or name:sub(1, 1) == "(" then break end
    if RESERVED[name] or name:sub(1, 2) == "__" then
      error(("%s: parameter '%s' cannot be an event field (the name is reserved)"):format(where, name), 3)
    end
    names[#names + 1] = name
  end
  if debug_getlocal(fn, 1) == nil then
    error(where .. ": the apply function must take self as its first parameter"
      .. " (or it was compiled without debug info, so its parameter names are unknown)", 3)
  end
  return names
end

-- Call apply with the event's fields in parameter order.
local function apply_event(agg, ev_class, ev)
  local apply, params = ev_class.apply, ev_class.params
  local n = #params
  if n == 0 then apply(agg)
  elseif n == 1 then apply(agg, ev[params[1]])
  elseif n == 2 then apply(agg, ev[params[1]], ev[params[2]])
  elseif n == 3 then apply(agg, ev[params[1]], ev[params[2]], ev[params[3]])
  else
    local args = {}
    for i = 1, n do args[i] = ev[params[i]] end
    apply(agg, unpack(args, 1, n))
  end
  local ts = ev.timestamp
  if ev_class.creation then agg.created_on = ts end
  agg.modified_on = ts
  agg.version = ev.originator_version
end

-- Metadata every event triggered now carries besides its own (set while a
-- process application's policy runs: the causation and correlation ids of the
-- event it reacts to); the trigger's own metadata keys win.
local context_metadata = nil

local function with_context(metadata)
  local merged = {}
  for k, v in pairs(context_metadata) do merged[k] = v end
  if metadata then
    for k, v in pairs(metadata) do merged[k] = v end
  end
  return merged
end

-- Trigger: check the schema, stamp, encode (refusing unstorable values now),
-- apply, then keep as pending.
-- fresh: the fields table was built here, so the event may take it over.
local function fire(agg, ev_class, fields, fresh, metadata)
  if context_metadata then metadata = with_context(metadata) end
  local check = ev_class.check
  if check then
    local problem = check(fields)
    if problem then errors.raise("SchemaError", "%s: %s", ev_class.topic, problem) end
  end
  local ts, id, version, topic = now_us(), agg.id, agg.version + 1, ev_class.topic
  local ev, payload, metadata_bytes, event_id = make_event(topic, id, version, ts, fields, fresh, metadata)
  local run = runner_of(getmetatable(agg))
  if run then run(apply_event, agg, ev_class, ev) else apply_event(agg, ev_class, ev) end
  local events, records = pending_events[agg], pending_records[agg]
  if not events then
    -- room for one event: most saves are of one
    events, records = new_tab(1, 0), new_tab(recorder.STRIDE, 0)
    pending_events[agg], pending_records[agg] = events, records
  end
  events[#events + 1] = ev
  add_record(records, #records, id, version, ts, topic, payload, ev_class.version, event_id, metadata_bytes)
  return ev
end

local function too_many(ev_class)
  error(("%s takes %d argument(s)"):format(ev_class.topic, #ev_class.params), 3)
end

-- Build the fields table from positional arguments. Events of up to four
-- fields get fixed-arity functions (a fifth argument must be nil): LuaJIT's
-- compiler does not trace varargs passed on, and these sit on the hot path.
local MAX_FIXED = 4

-- The fields table becomes the event (core.make_event adds the six header
-- fields), so it is made with room for them: no rehash while it grows.
local HEADER_SLOTS = 6

local function fields_builder(ev_class)
  local p = ev_class.params
  local k1, k2, k3, k4 = p[1], p[2], p[3], p[4]
  local n = #p
  local size = n + HEADER_SLOTS
  if n == 0 then
    return function(a)
      if a ~= nil then too_many(ev_class) end
      return new_tab(0, size)
    end
  elseif n == 1 then
    return function(a, b)
      if b ~= nil then too_many(ev_class) end
      local t = new_tab(0, size)
      t[k1] = a
      return t
    end
  elseif n == 2 then
    return function(a, b, c)
      if c ~= nil then too_many(ev_class) end
      local t = new_tab(0, size)
      t[k1], t[k2] = a, b
      return t
    end
  elseif n == 3 then
    return function(a, b, c, d)
      if d ~= nil then too_many(ev_class) end
      local t = new_tab(0, size)
      t[k1], t[k2], t[k3] = a, b, c
      return t
    end
  elseif n == 4 then
    return function(a, b, c, d, e)
      if e ~= nil then too_many(ev_class) end
      local t = new_tab(0, size)
      t[k1], t[k2], t[k3], t[k4] = a, b, c, d
      return t
    end
  end
  return function(...)
    if select("#", ...) > n then too_many(ev_class) end
    local fields = new_tab(0, size)
    for i = 1, n do fields[p[i]] = (select(i, ...)) end
    return fields
  end
end

--- Methods shared by every aggregate class and instance.
local Base = {}

-- `version` (default 1) and `upcast` ({ [v] = function(fields or state) -> the v+1 form }).
local function check_versioning(opts, where)
  local version, upcast = opts.version or 1, opts.upcast or {}
  if type(version) ~= "number" or version < 1 or version % 1 ~= 0 or version > 65535 then
    error(("%s: version must be a whole number from 1 to 65535"):format(where), 4)
  end
  if type(upcast) ~= "table" then error(("%s: upcast must be a table of functions"):format(where), 4) end
  for v, fn in pairs(upcast) do
    if type(v) ~= "number" or v < 1 or v >= version or type(fn) ~= "function" then
      error(("%s: upcast[%s] must be a function from version %s to the next (below version %d)")
        :format(where, tostring(v), tostring(v), version), 4)
    end
  end
  return version, upcast
end

local function define_event(cls, name, apply, opts, creation)
  if type(name) ~= "string" or name == "" or name:find(".", 1, true) then
    error("bad argument #1 (event name expected: a non-empty string without dots)", 3)
  end
  if RESERVED_EVENTS[name] and cls.__events[name] then
    error(("%s.%s: the event name '%s' is reserved (%s)"):format(cls.__name, name, name, RESERVED_EVENTS[name]), 3)
  end
  if type(apply) ~= "function" then
    error(("bad argument #2 for event '%s' (apply function expected)"):format(name), 3)
  end
  local topic = cls.__name .. "." .. name
  opts = opts or {}
  local version, upcast = check_versioning(opts, topic)
  local ev_class = {
    name = name, topic = topic, apply = apply, creation = creation,
    params = param_names(apply, topic), opts = opts, version = version, upcast = upcast,
    check = opts.schema ~= nil and schema.compile(opts.schema, topic) or nil,
  }
  ev_class.fields = fields_builder(ev_class)
  cls.__events[name] = ev_class
  by_topic[topic] = { class = cls, event = ev_class }
  versions[topic] = version ~= 1 and version or nil
  replay_fields[topic] = ev_class.params
  return ev_class
end

--- Define the creation event: `Dog("Fido")` / `Dog.create("Fido")` trigger it.
-- @param name event name (topic becomes "<Aggregate>.<name>")
-- @param apply function(self, field...) that initialises the state
-- @param[opt] opts event options
-- @return the constructor function
function Base:created(name, apply, opts)
  local cls = self
  local ev_class = define_event(cls, name, apply, opts, true)
  local fields_of = ev_class.fields
  local initial = cls.__initial_version - 1
  -- create_id(...), run under the class's sandbox if it has one
  local function make_id(create_id, ...)
    if not create_id then return nil end
    local run = runner_of(cls)
    if run then return run(create_id, ...) end
    return create_id(...)
  end
  -- create_id(...) when the class defines it, else a random UUID
  local function new_aggregate(create_id, id)
    if not create_id then
      -- not a tail call: the trace that goes on after uuid4 must not return below its start
      local agg = setmetatable({ id = uuid4(), version = initial }, cls)
      return agg
    end
    local canonical, problem
    if cls.__string_ids then canonical, problem = aggregate_id(id) else canonical = uuid_normalize(id) end
    if not canonical then
      if problem then
        errors.raise("SchemaError", "%s.create_id returned %s, which %s (a string id is 1 to 255 bytes of UTF-8)",
          cls.__name, type(id) == "string" and ("'%s'"):format(id:sub(1, 64)) or tostring(id), problem)
      end
      errors.raise("SchemaError", "%s.create_id returned %s, which is not a UUID", cls.__name, tostring(id))
    end
    local agg = setmetatable({ id = canonical, version = initial }, cls)
    return agg
  end
  local construct, call
  if #ev_class.params <= MAX_FIXED then
    construct = function(a, b, c, d, e)
      local create_id = rawget(cls, "create_id")
      local agg = new_aggregate(create_id, make_id(create_id, a, b, c, d))
      fire(agg, ev_class, fields_of(a, b, c, d, e), true)
      return agg
    end
    call = function(_, a, b, c, d, e) return construct(a, b, c, d, e) end
  else
    construct = function(...)
      local create_id = rawget(cls, "create_id")
      local agg = new_aggregate(create_id, make_id(create_id, ...))
      fire(agg, ev_class, fields_of(...), true)
      return agg
    end
    call = function(_, ...) return construct(...) end
  end
  -- the first creation event is the one Dog(...) and Dog.create(...) trigger
  if not rawget(cls, "create") then
    getmetatable(cls).__call = call
    cls.create = construct
  end
  return construct
end

--- Define an event and return its command method: `dog:add_trick("roll")`
-- triggers TrickAdded with the arguments named after apply's parameters.
function Base:event(name, apply, opts)
  local ev_class = define_event(self, name, apply, opts, false)
  local fields_of = ev_class.fields
  if #ev_class.params <= MAX_FIXED then
    return function(agg, a, b, c, d, e)
      return fire(agg, ev_class, fields_of(a, b, c, d, e), true)
    end
  end
  return function(agg, ...)
    return fire(agg, ev_class, fields_of(...), true)
  end
end

--- Trigger a named event with a table of fields, applying it to this aggregate.
-- @param name the event's name
-- @param[opt] fields its payload fields
-- @param[opt] metadata a table recorded with the event (`event.metadata`)
-- @return the event
-- @raise SchemaError if a field or metadata value cannot be stored
function Base:trigger(name, fields, metadata)
  local cls = getmetatable(self)
  local ev_class = cls and cls.__events and cls.__events[name]
  if not ev_class then
    error(("%s has no event '%s'"):format(cls and cls.__name or "?", tostring(name)), 2)
  end
  if ev_class.creation then
    error(("'%s' is a creation event: construct a new %s instead"):format(name, cls.__name), 2)
  end
  if metadata ~= nil and type(metadata) ~= "table" then
    error(("bad argument #3 to 'trigger' (metadata table expected, got %s)"):format(type(metadata)), 2)
  end
  return fire(self, ev_class, fields or {}, false, metadata)
end

--- Mark the aggregate as discarded: the repository then treats it as gone.
function Base:discard()
  return self:trigger("Discarded", {})
end

--- The pending events, oldest first; the aggregate no longer holds them.
function Base:collect_events()
  local events = pending_events[self]
  pending_events[self], pending_records[self] = nil, nil
  return events or {}
end

local function class_tostring(cls)
  return "cairn.aggregate(" .. cls.__name .. ")"
end

local function instance_tostring(agg)
  return ("%s(%s) v%s"):format(getmetatable(agg).__name, tostring(agg.id), tostring(agg.version))
end

--- Define an aggregate class.
-- @param name the class name; event topics are "<name>.<EventName>"
-- @param[opt] opts `initial_version` (default 1), `version` (class version of
--   the state, for snapshots), `upcast` (older snapshot states to newer) and
--   `id` ("uuid", the default, or "string": `create_id` may return any
--   string of 1 to 255 bytes of UTF-8)
-- @return the class
function _M.define(name, opts)
  if type(name) ~= "string" or name == "" or name:find(".", 1, true) then
    error("bad argument #1 to 'aggregate' (a name without dots expected)", 2)
  end
  opts = opts or {}
  if opts.id ~= nil and opts.id ~= "uuid" and opts.id ~= "string" then
    error(("%s: id must be \"uuid\" or \"string\", got %s"):format(name, tostring(opts.id)), 2)
  end
  local version, upcast = check_versioning(opts, name)
  local old = classes[name]
  if old and _M.reloading then
    -- a module being reloaded redefines its classes: events the new class no
    -- longer defines must not replay into it
    for topic, entry in pairs(by_topic) do
      if entry.class == old then by_topic[topic], versions[topic] = nil, nil end
    end
  end
  local cls = {
    __name = name,
    __events = {},
    __initial_version = opts.initial_version or 1,
    __class_version = version,
    __upcast = upcast,
    __string_ids = opts.id == "string",
    __tostring = instance_tostring,
    __discarded = name .. ".Discarded", -- made once: every get compares the last topic with it
  }
  cls.__index = cls
  setmetatable(cls, {
    __index = Base,
    -- replaced by the first :created
    __call = function() error(name .. " has no creation event (define one with :created)", 2) end,
    __tostring = class_tostring,
  })
  define_event(cls, "Discarded", function(self) end, nil, false) -- luacheck: ignore 212
  classes[name] = cls
  return cls
end

--- Internal (cairn.process): the metadata added to every event triggered from
-- now on (nil: none); returns the one set before, for the caller to put back.
function _M.set_context_metadata(metadata)
  local outer = context_metadata
  context_metadata = metadata
  return outer
end

--- Internal: take the pending events of an aggregate and their records (a
-- batch, see cairn.recorder); nil when there are none.
function _M.take_pending(agg)
  local events, records = pending_events[agg], pending_records[agg]
  pending_events[agg], pending_records[agg] = nil, nil
  return events, records
end

--- Internal: the pending events of an aggregate and their records, left
-- with it (a save drops them with take_pending once they are recorded).
function _M.pending(agg)
  return pending_events[agg], pending_records[agg]
end

-- Fields of an aggregate that are not part of its state.
local NOT_STATE = { id = true, version = true, modified_on = true, head = true }

--- Internal: the state of an aggregate to snapshot: class name, class version, fields.
function _M.snapshot_state(agg)
  local cls = getmetatable(agg)
  local state = {}
  for k, v in pairs(agg) do
    if not NOT_STATE[k] then state[k] = v end
  end
  return cls.__name, cls.__class_version, state
end

--- Internal: an aggregate from a snapshot's state (upcast to the class's version).
function _M.from_snapshot(class_name, id, version, class_version, state, timestamp_us, head)
  local cls = classes[class_name]
  if not cls then
    errors.raise("SchemaError", "no aggregate class %s for the snapshot of aggregate %s version %d",
      class_name, id, version)
  end
  if class_version > cls.__class_version then
    errors.raise("SchemaError", "the snapshot of %s %s version %d has class version %d, newer than this "
      .. "program's %d", class_name, id, version, class_version, cls.__class_version)
  end
  for v = class_version, cls.__class_version - 1 do
    local step = cls.__upcast[v]
    if not step then
      errors.raise("SchemaError", "%s has no upcast for snapshot states from version %d to %d", class_name, v, v + 1)
    end
    local run = runner_of(cls)
    if run then state = run(step, state) or state else state = step(state) or state end
  end
  state.id, state.version, state.modified_on, state.head = id, version, timestamp_us / 1e6, head
  return setmetatable(state, cls)
end

-- The index of the event that replay is applying, for its error message.
local replaying

-- Apply events to agg; returns the first event that cls does not define, if any.
local function apply_all(events, agg, cls, run)
  for i = 1, #events do
    local ev = events[i]
    replaying = i
    local found = by_topic[ev.topic]
    if not found or found.class ~= cls then return ev end
    if run then run(apply_event, agg, found.event, ev) else apply_event(agg, found.event, ev) end
  end
end

--- Internal: rebuild an aggregate from its stored events (oldest first),
-- optionally on top of a snapshot's aggregate.
-- @return the aggregate, and whether its last event discarded it
function _M.replay(events, agg)
  local first = events[1]
  if not first then return agg, false end
  local entry = by_topic[first.topic]
  if not entry then
    errors.raise("SchemaError", "no aggregate class defines event '%s' (aggregate %s version %d)",
      first.topic, first.originator_id, first.originator_version)
  end
  local cls = agg and getmetatable(agg) or entry.class
  agg = agg or setmetatable({ id = first.originator_id }, cls)
  local ok, err = pcall(apply_all, events, agg, cls, runner_of(cls))
  if ok and err then
    errors.raise("SchemaError", "%s has no event '%s' (aggregate %s version %d)",
      cls.__name, err.topic, agg.id, err.originator_version)
  elseif not ok then
    local ev = events[replaying]
    local where = ("replaying %s %s version %d (%s)"):format(cls.__name, agg.id, ev.originator_version,
      ev.topic)
    if errors.is(err) then errors.raise(err.kind, "%s: %s", where, err.message) end
    errors.raise("SchemaError", "%s: the apply function raised: %s", where, tostring(err))
  end
  return agg, events[#events].topic == cls.__discarded
end

-- The topic of event i of columns (runs: topic, count, topic, count, ...).
local function topic_at(cols, i)
  local runs = cols.runs
  for r = 1, #runs, 2 do
    if i <= runs[r + 1] then return runs[r] end
    i = i - runs[r + 1]
  end
end

-- Apply the events of columns (recorder.read_replay) to agg, with a run's
-- class and apply function looked up once (one loop over the events, so
-- that the trace compiler keeps what the apply functions carry from one
-- event to the next); returns the index of the first event that cls does not
-- define, if any.
local function apply_columns(cols, agg, cls, run)
  local runs, stamps, values, first = cols.runs, cols.stamps, cols.values, cols.first
  local r, left, j = -1, 0, 0 -- the run (its topic's index in runs), its events still to apply, values taken
  local apply, n, creation
  for i = 1, #stamps do
    replaying = i
    if left == 0 then
      r = r + 2
      local found = by_topic[runs[r]]
      if not found or found.class ~= cls then return i end
      local ev_class = found.event
      apply, n, creation, left = ev_class.apply, #ev_class.params, ev_class.creation, runs[r + 1]
    end
    left = left - 1
    if run then run(apply, agg, unpack(values, j + 1, j + n))
    elseif n == 0 then apply(agg)
    elseif n == 1 then apply(agg, values[j + 1])
    elseif n == 2 then apply(agg, values[j + 1], values[j + 2])
    elseif n == 3 then apply(agg, values[j + 1], values[j + 2], values[j + 3])
    else apply(agg, unpack(values, j + 1, j + n)) end
    j = j + n
    local ts = stamps[i]
    if creation then agg.created_on = ts end
    agg.modified_on = ts
    agg.version = first + i - 1
  end
end

--- Internal: `replay` for a read that came as columns (recorder.read_replay),
-- optionally on top of a snapshot's aggregate; id is the aggregate's id.
-- @return the aggregate, and whether its last event discarded it
function _M.replay_columns(cols, agg, id)
  local runs = cols.runs
  local entry = by_topic[runs[1]]
  if not entry then
    errors.raise("SchemaError", "no aggregate class defines event '%s' (aggregate %s version %d)",
      runs[1], id, cols.first)
  end
  local cls = agg and getmetatable(agg) or entry.class
  agg = agg or setmetatable({ id = id }, cls)
  local ok, err = pcall(apply_columns, cols, agg, cls, runner_of(cls))
  if ok and err then
    errors.raise("SchemaError", "%s has no event '%s' (aggregate %s version %d)",
      cls.__name, topic_at(cols, err), agg.id, cols.first + err - 1)
  elseif not ok then
    local where = ("replaying %s %s version %d (%s)"):format(cls.__name, agg.id, cols.first + replaying - 1,
      topic_at(cols, replaying))
    if errors.is(err) then errors.raise(err.kind, "%s: %s", where, err.message) end
    errors.raise("SchemaError", "%s: the apply function raised: %s", where, tostring(err))
  end
  return agg, runs[#runs - 1] == cls.__discarded
end

--- Internal (cairn.reload): set while a module is being reloaded; a class
-- defined again under its name then replaces the old one and its events.
_M.reloading = false

local function copy(t)
  local c = {}
  for k, v in pairs(t) do c[k] = v end
  return c
end

local function refill(t, from)
  for k in pairs(t) do t[k] = nil end
  for k, v in pairs(from) do t[k] = v end
end

--- Internal (cairn.reload): the class registry as it is now.
function _M.save_registry()
  return { classes = copy(classes), by_topic = copy(by_topic), versions = copy(versions),
           replay_fields = copy(replay_fields) }
end

--- Internal (cairn.reload): put back a registry saved by `save_registry`
-- (the tables are refilled in place: the recorder holds `versions` and `replay_fields`).
function _M.restore_registry(saved)
  refill(classes, saved.classes)
  refill(by_topic, saved.by_topic)
  refill(versions, saved.versions)
  refill(replay_fields, saved.replay_fields)
end

--- The class registered under a name, if any.
function _M.class(name)
  return classes[name]
end

--- The name of the aggregate class one of whose events has this topic, if any.
function _M.topic_owner(topic)
  local entry = by_topic[topic]
  return entry and entry.class.__name
end

return _M
