--- Projections (API.md §4): handlers that turn an application's events into
-- a view, run by a ProjectionRunner that processes each notification once.
-- @module cairn.projection
local core = require "cairn.core"
local view_mod = require "cairn.view"
local follow = require "cairn.follow"
local errors = require "cairn.errors"
local guard = require "cairn.guard"

local setmetatable, getmetatable, type, pairs = setmetatable, getmetatable, type, pairs
local error, xpcall, pcall, tostring = error, xpcall, pcall, tostring
local traceback = debug.traceback

local _M = { _VERSION = "0.1.0", BATCH = 10000 }

local Projection = {}
Projection.__index = Projection

--- Define a projection.
-- @param name the projection's name; also its view's name in a store
-- @param[opt] opts `topics` (only these are read from the log; default: the
--   topics that have handlers), `application` (the name of the application it
--   follows, for `cairn project`)
function _M.define(name, opts)
  if type(name) ~= "string" or not name:match("^[%a_][%w_]*$") then
    error("bad argument #1 to 'projection' (a name of letters, digits and _ expected)", 2)
  end
  opts = opts or {}
  if opts.topics ~= nil and type(opts.topics) ~= "table" then
    error("bad option 'topics' to 'projection' (array of topics expected)", 2)
  end
  local topics
  if opts.topics then
    topics = {}
    for i = 1, #opts.topics do topics[i] = opts.topics[i] end
  end
  return setmetatable({ name = name, topics = topics, handlers = {}, application = opts.application }, Projection)
end

--- Handle events of a topic: handler(view, event).
function Projection:on(topic, handler)
  if type(topic) ~= "string" then error("bad argument #1 to 'on' (topic expected)", 2) end
  if type(handler) ~= "function" then error("bad argument #2 to 'on' (function expected)", 2) end
  if self.topics then
    local listed = false
    for i = 1, #self.topics do if self.topics[i] == topic then listed = true end end
    if not listed then
      error(("projection %s: topic '%s' is not among its topics"):format(self.name, topic), 2)
    end
  end
  self.handlers[topic] = handler
  return self
end

--- The topics read from the log.
function Projection:read_topics()
  if self.topics then return self.topics end
  local t = {}
  for topic in pairs(self.handlers) do t[#t + 1] = topic end
  return t
end

local Runner = {}
Runner.__index = Runner
_M.Runner = Runner

--- Make a runner.
-- @param opts `application` (an application, or `{ name = ..., store = open store }`),
--   `projection`, `view` (URI, store or application; default: the application's store),
--   `sync` (for a view URI; default the application's CAIRN_SYNC), `batch` (notifications per transaction)
function Runner.new(opts)
  if type(opts) ~= "table" then error("bad argument #1 to 'ProjectionRunner.new' (options table expected)", 2) end
  local app, projection = opts.application, opts.projection
  if type(app) ~= "table" or type(app.name) ~= "string" or app.store == nil then
    error("bad option 'application' to 'ProjectionRunner.new' (application expected)", 2)
  end
  if getmetatable(projection) ~= Projection then
    error("bad option 'projection' to 'ProjectionRunner.new' (projection expected)", 2)
  end
  local sync = opts.sync
  if sync == nil and app.env then sync = app.env:choice("CAIRN_SYNC", "full", { "full", "none" }) end
  local view = opts.view
  if getmetatable(view) ~= view_mod.View then
    -- a view store of its own is encrypted with the application's key
    local key = app.env and app.env:get("CAIRN_CIPHER_KEY")
    view = view_mod.open(view or app, projection.name, { sync = sync, cipher_key = key })
  end
  return setmetatable({
    application = app, projection = projection, view = view,
    batch = opts.batch or _M.BATCH, topics = projection:read_topics(),
  }, Runner)
end

-- Run the handlers of events[first..last]; state.at tracks the notification
-- being handled, for the error message; run is the projection's sandbox's,
-- when it has one.
local function handle(handlers, view, events, first, last, state, run)
  for i = first, last do
    local event = events[i]
    local h = handlers[event.topic]
    if h then
      state.at = i
      if run then run(h, view, event) else h(view, event) end
    end
  end
end

local function on_error(err)
  if errors.is(err) then return err end
  return traceback(tostring(err), 2)
end

-- Process notifications (pos, stop] and commit them with the position stop;
-- returns the position the view is at afterwards.
local function process(self, pos, stop)
  local app, view, proj = self.application, self.view, self.projection
  local ids, events = app.store:read_events { from = pos + 1, stop = stop, topics = self.topics }
  local state = {}
  view:begin()
  local run = guard.runner(proj)
  local ok, err = xpcall(handle, on_error, proj.handlers, view, events, 1, #events, state, run)
  if ok then
    local committed, cerr = pcall(view.commit, view, app.name, stop, pos + 1)
    if committed then return stop end
    -- another writer of this view moved its position past pos (another runner, or the
    -- write of a killed one that the server committed after it died): its commit stands,
    -- nothing of this batch is written, the next step goes on from the new position
    local now = errors.is(cerr, "ConcurrencyError") and view:max_tracking_id(app.name)
    if not now or now <= pos then error(cerr, 0) end
    return now
  end
  -- nothing of the failing notification is committed; the ones before it are
  view:discard()
  local at = state.at
  local failed_id, topic = ids[at], events[at].topic
  if failed_id - 1 > pos then
    view:begin()
    local ok2 = xpcall(handle, on_error, proj.handlers, view, events, 1, at - 1, state, run)
    if ok2 then view:commit(app.name, failed_id - 1, pos + 1) else view:discard() end
  end
  local msg = ("projection %s: notification %d of %s (%s) failed: %s"):format(proj.name, failed_id, app.name,
    topic, errors.is(err) and tostring(err) or err)
  if errors.is(err) then errors.raise(err.kind, "%s", msg) end
  error(msg, 0)
end

--- Process one batch; returns how far the view's position moved (0: caught
-- up), by this runner's commit or, when another writer got there first, by its.
function Runner:step()
  local app = self.application
  local pos = self.view:max_tracking_id(app.name)
  local max = app.store:max_id()
  if pos >= max then return 0 end
  local stop = pos + self.batch
  if stop > max then stop = max end
  local now = process(self, pos, stop)
  if self.on_progress then self.on_progress(now, max) end
  return now - pos
end

--- Process everything recorded so far, then return.
-- @return how far the view's position moved
function Runner:run()
  local total = 0
  while true do
    local n = self:step()
    if n == 0 then return total end
    total = total + n
  end
end

--- Keep processing new notifications, also those recorded by other processes,
-- until `stop()` (or opts.idle_timeout, or a signal with opts.signals). A PostgreSQL
-- server that goes away is waited for (`cairn.follow.server_away`) unless
-- opts.reconnect says otherwise (false: raise its StoreError).
-- @param[opt] opts see `cairn.follow.loop`
function Runner:follow(opts)
  self.stopped = false
  local o = {}
  for k, v in pairs(opts or {}) do o[k] = v end
  if o.reconnect == nil then o.reconnect = follow.server_away(self.projection.name) end
  if o.reconnect == false then o.reconnect = nil end
  opts = o
  local runner = self
  local function catch_up()
    local total = 0
    repeat
      local n = runner:step()
      total = total + n
    until n == 0 or runner.stopped or (opts and opts.signals and core.signal_caught())
    return total
  end
  return follow.loop({ self.application.store }, catch_up, function() return runner.stopped end, opts)
end

--- Make `follow` return after the current batch.
function Runner:stop()
  self.stopped = true
end

--- Close the view (its store, if the runner opened it).
function Runner:close()
  self.view:close()
end

return _M
