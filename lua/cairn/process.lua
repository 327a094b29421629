--- Process applications (API.md §5): applications whose policies turn the
-- events of the applications they follow into new events of their own. The
-- new events of a notification and the record that it was processed are
-- saved in one transaction, so each notification is processed exactly once.
-- @module cairn.process
local aggregate = require "cairn.aggregate"
local application = require "cairn.application"
local errors = require "cairn.errors"
local guard = require "cairn.guard"

local setmetatable, getmetatable, type, error, xpcall, pcall = setmetatable, getmetatable, type, error, xpcall, pcall
local tostring, pairs = tostring, pairs
local traceback = debug.traceback

local _M = { _VERSION = "0.1.0", BATCH = 1000 }

--- What a policy gets as its third argument: collect the aggregates whose new
-- events the notification causes; `tracking` says which notification it is.
local Processing = {}
Processing.__index = Processing

--- Save these aggregates' new events with the tracking record, atomically.
function Processing:collect(...)
  local aggs = self.aggregates
  for i = 1, select("#", ...) do
    local agg = select(i, ...)
    if type(agg) ~= "table" or not agg.id then
      error(("bad argument #%d to 'collect' (aggregate expected)"):format(i), 2)
    end
    aggs[#aggs + 1] = agg
  end
end
Processing.collect_events = Processing.collect

local function on_error(err)
  if errors.is(err) then return err end
  return traceback(tostring(err), 2)
end

-- Did another process of this follower record notification id first (err
-- being the ConcurrencyError our own write got)? Then its work stands.
local function done_elsewhere(store, leader_name, id, err)
  return errors.is(err, "ConcurrencyError") and store:tracking_max(leader_name) >= id
end

-- Record notifications up to id as processed (they caused no events).
local function mark_processed(store, leader_name, id)
  local ok, err = pcall(store.append, store, {}, { tracking = { application = leader_name, id = id } })
  if not ok and not done_elsewhere(store, leader_name, id, err) then error(err, 0) end
end

-- A sandboxed application's policy runs under its sandbox's bounds.
local function run_policy(policy, app, event, processing)
  local run = guard.runner(getmetatable(app))
  if run then run(policy, app, event, processing) else policy(app, event, processing) end
end

-- What every event a policy triggers carries (API.md §9): the event it reacts
-- to as its cause, and that event's correlation (its own id when it had none).
local function caused_by(event)
  local upstream = event.metadata
  local correlation = type(upstream) == "table" and upstream.correlation_id or nil
  return { causation_id = event.event_id, correlation_id = correlation or event.event_id }
end

-- Run a policy with the causation metadata in force; xpcall's results.
local function react(policy, app, event, processing)
  local outer = aggregate.set_context_metadata(event.event_id and caused_by(event) or nil)
  local ok, err = xpcall(run_policy, on_error, policy, app, event, processing)
  aggregate.set_context_metadata(outer)
  return ok, err
end

-- Methods of process application instances.
local Process = {}

--- Follow a leader: `leader` is its application (or its open store).
function Process:follow(leader_name, leader)
  self.leaders = self.leaders or {}
  self.leaders[leader_name] = type(leader) == "table" and leader.store or leader
end

--- The topics this application's policies take.
function Process:topics()
  local t = {}
  for topic in pairs(self.policies) do t[#t + 1] = topic end
  return t
end

--- Process what the leader recorded since this application's tracked position.
-- @param leader_name a leader given to `follow`
-- @param[opt] opts `batch` (notifications read at once), `on_progress(pos, max)`,
--   `trace(leader_name, id, topic)` (called for each notification read), `should_stop()`
--   (asked after each notification: true ends the pull there, with that notification processed)
-- @return notifications read, events recorded
-- @raise the policy's error, naming the follower, the notification and its topic;
--   everything before the failing notification stays processed
function Process:pull_and_process(leader_name, opts)
  local leader = self.leaders and self.leaders[leader_name]
  if not leader then error(("%s does not follow %s"):format(self.name, tostring(leader_name)), 2) end
  local batch = opts and opts.batch or _M.BATCH
  local store, policies, topics = self.store, self.policies, self:topics()
  local pos = store:tracking_max(leader_name)
  local max = leader:max_id()
  local read, recorded = 0, 0
  local should_stop, halted = opts and opts.should_stop, false
  while pos < max do
    local stop = pos + batch
    if stop > max then stop = max end
    local ids, events = leader:read_events { from = pos + 1, stop = stop, topics = topics }
    local tracked = pos -- the position recorded so far
    for i = 1, #ids do
      local id, event = ids[i], events[i]
      local policy = policies[event.topic]
      local processing = policy and setmetatable({ aggregates = {},
        tracking = { application_name = leader_name, notification_id = id } }, Processing)
      if opts and opts.trace then opts.trace(leader_name, id, event.topic) end
      local ok, err = true, nil
      if policy then ok, err = react(policy, self, event, processing) end
      if not ok then
        if id - 1 > tracked then mark_processed(store, leader_name, id - 1) end
        local msg = ("%s: notification %d of %s (%s) failed: %s"):format(self.name, id, leader_name,
          event.topic, errors.is(err) and tostring(err) or err)
        if errors.is(err) then errors.raise(err.kind, "%s", msg) end
        error(msg, 0)
      end
      if processing and #processing.aggregates > 0 then
        local saved, recordings = pcall(self.save_tracked, self, leader_name, id, processing.aggregates)
        if not saved then
          if not done_elsewhere(store, leader_name, id, recordings) then error(recordings, 0) end
          tracked = nil -- go on from where the other process got
          break
        end
        recorded = recorded + #recordings
        tracked = id
      end
      if should_stop and should_stop() then -- between transactions
        stop, halted = id, true
        break
      end
    end
    if tracked == nil then
      stop = store:tracking_max(leader_name)
      tracked = stop
    end
    -- notifications that caused nothing still count as processed
    if stop > tracked then mark_processed(store, leader_name, stop) end
    read = read + (stop - pos)
    pos = stop
    if opts and opts.on_progress then opts.on_progress(pos, max) end
    if halted then break end
  end
  return read, recorded
end

--- Process every leader's new notifications; returns notifications read, events recorded.
function Process:pull_all(opts)
  local read, recorded = 0, 0
  for name in pairs(self.leaders or {}) do
    local r, e = self:pull_and_process(name, opts)
    read, recorded = read + r, recorded + e
  end
  return read, recorded
end

--- Define a process application class.
-- @param name the application's name
-- @return the class: `:policy(topic, fn(self, event, processing))`, `.new([env])`
function _M.define(name)
  local App = application.define(name)
  App.policies = {}
  App.is_process_application = true
  for k, v in pairs(Process) do App[k] = v end
  --- Handle a topic of the leaders' events.
  function App.policy(cls, topic, fn)
    if type(topic) ~= "string" then error("bad argument #1 to 'policy' (topic expected)", 2) end
    if type(fn) ~= "function" then error("bad argument #2 to 'policy' (function expected)", 2) end
    cls.policies[topic] = fn
    return cls
  end
  return App
end

return _M
