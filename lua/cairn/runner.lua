--- Runners (API.md §5): make the applications of a system and keep the
-- followers up to date. SingleThreadedRunner does it in the caller's process:
-- after each save of a leader, its followers process the new notifications
-- (and theirs, in turn) before `save` returns.
-- @module cairn.runner
local core = require "cairn.core"
local errors = require "cairn.errors"
local follow = require "cairn.follow"

local setmetatable, type, ipairs, pairs = setmetatable, type, ipairs, pairs
local error, pcall, tostring = error, pcall, tostring

-- how long a follower waits for a PostgreSQL server that went away before the
-- save that prompted it raises (the followers resume on the next save)
local SERVER_WAIT = 60

local _M = { _VERSION = "0.1.0" }

local Runner = {}
Runner.__index = Runner
_M.SingleThreadedRunner = Runner

--- Make the applications of a system, each with `system:application_env(name, env)`,
-- and have every follower follow its leaders. Shared by the command line.
-- @return map name -> application
function _M.make_apps(system, env, names)
  local apps, by_store = {}, {}
  for _, name in ipairs(names or system.order) do
    local app = system:get_app_cls(name).new(system:application_env(name, env))
    local uri = app.store:uri()
    if uri ~= "memory:" then
      if by_store[uri] then
        for _, a in pairs(apps) do a:close() end
        app:close()
        errors.raise("ConfigError", "%s and %s would share the store %s; each needs its own log",
          by_store[uri], name, uri)
      end
      by_store[uri] = name
    end
    apps[name] = app
  end
  return apps
end

--- Make a runner; nothing is opened until `start`.
-- @param system a `cairn.system`
-- @param[opt] env the applications' environment (`system:application_env`)
-- @param[opt] opts `server_wait`: seconds a follower waits for a PostgreSQL server
--   that went away (restarted, the network) before the save that prompted it raises
--   (default 60; 0: raise at once); `say`: function(line) for the one line it writes
--   when that happens (default: stderr)
function Runner.new(system, env, opts)
  if type(system) ~= "table" or not system.nodes then
    error("bad argument #1 to 'SingleThreadedRunner.new' (system expected)", 2)
  end
  if opts ~= nil and type(opts) ~= "table" then
    error("bad argument #3 to 'SingleThreadedRunner.new' (options table expected)", 2)
  end
  opts = opts or {}
  if opts.server_wait ~= nil and (type(opts.server_wait) ~= "number" or opts.server_wait < 0) then
    error("bad option 'server_wait' to 'SingleThreadedRunner.new' (seconds expected)", 2)
  end
  return setmetatable({ system = system, env = env or {}, _server_wait = opts.server_wait or SERVER_WAIT,
    _say = opts.say }, Runner)
end

-- One follower processes a leader's new notifications. While the PostgreSQL server is
-- away it tries again (backing off, saying so once) for up to server_wait seconds: its
-- tracking records say where it was, so it resumes there and processes nothing twice.
local function pull(self, follower, leader)
  local app, waited, away = self.apps[follower], 0, nil
  while true do
    local ok, read, recorded = pcall(app.pull_and_process, app, leader)
    if ok then
      if away then away(nil) end
      return read, recorded
    end
    if not follow.is_server_away(read) or waited >= self._server_wait then error(read, 0) end
    away = away or follow.server_away(follower, self._say)
    local pause = away(read)
    if pause > self._server_wait - waited then pause = self._server_wait - waited end
    core.sleep(pause)
    waited = waited + pause
  end
end

-- Let the followers of the queued applications catch up, breadth first,
-- until nothing new is recorded. A leader leaves the queue once all its
-- followers have caught up with it.
local function drain(self)
  if self.draining then return end
  self.draining = true
  local ok, err = pcall(function()
    while #self.queue > 0 do
      local name = self.queue[1]
      for _, f in ipairs(self.system.leads[name]) do
        local _, recorded = pull(self, f, name)
        if recorded > 0 and not self.queued[f] then
          self.queue[#self.queue + 1] = f
          self.queued[f] = true
        end
      end
      table.remove(self.queue, 1)
      self.queued[name] = nil
    end
  end)
  self.draining = false
  if not ok then
    -- a server still away: the queue stays, the next save (or start) goes on from it
    if not follow.is_server_away(err) then self.queue, self.queued = {}, {} end
    error(err, 0)
  end
end

local function prompt(self, name)
  if not self.queued[name] then
    self.queue[#self.queue + 1] = name
    self.queued[name] = true
  end
  drain(self)
end

--- Open every application, let the followers catch up with what their
-- leaders recorded before, and process new notifications after each save.
function Runner:start()
  if self.apps then error("the runner is already started", 2) end
  local system = self.system
  self.apps = _M.make_apps(system, self.env)
  self.queue, self.queued = {}, {}
  for _, name in ipairs(system.order) do
    local app = self.apps[name]
    for _, leader in ipairs(system.follows[name]) do app:follow(leader, self.apps[leader]) end
    if #system.leads[name] > 0 then
      local save, save_once, runner = app.save, app.save_once, self
      -- the instance's saves prompt the followers once their events are recorded
      app.save = function(a, ...)
        local recordings = save(a, ...)
        if #recordings > 0 then prompt(runner, name) end
        return recordings
      end
      app.save_once = function(a, key, ...)
        local recordings = save_once(a, key, ...)
        if #recordings > 0 then prompt(runner, name) end
        return recordings
      end
      local events = app.events
      local append = events.append
      events.append = function(e, ...)
        local position = append(e, ...)
        prompt(runner, name)
        return position
      end
    end
  end
  for _, name in ipairs(system.leaders) do
    self.queue[#self.queue + 1] = name
    self.queued[name] = true
  end
  drain(self)
  return self
end

--- The running application of a class (or name).
function Runner:get(cls)
  if not self.apps then error("the runner is not started", 2) end
  local name = type(cls) == "table" and cls.name or cls
  local app = self.apps[name]
  if not app then errors.raise("ConfigError", "the system has no application named %s", tostring(name)) end
  return app
end

--- Close every application.
function Runner:stop()
  if not self.apps then return end
  for _, app in pairs(self.apps) do app:close() end
  self.apps = nil
end

return _M
