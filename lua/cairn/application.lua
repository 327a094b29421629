--- Applications: a store, a repository and a notification log, configured from env.
-- `cairn.application(name)` defines an application class; see API.md §3.
-- @module cairn.application
local core = require "cairn.core"
local aggregate = require "cairn.aggregate"
local config = require "cairn.config"
local errors = require "cairn.errors"
local repository = require "cairn.repository"
local notification_log = require "cairn.notification_log"

local setmetatable, getmetatable, select = setmetatable, getmetatable, select
local type, tonumber, pcall, error = type, tonumber, pcall, error

local _M = { _VERSION = "0.1.0" }

--- Methods shared by every application class.
local Base = {}

local function open_store(env)
  local uri = env:get("CAIRN_STORE", "memory:")
  local sync = env:choice("CAIRN_SYNC", "full", { "full", "none" })
  if env:get("CAIRN_CIPHER_KEY") then
    errors.raise("ConfigError", "CAIRN_CIPHER_KEY is set, but encryption at rest is not available in this version")
  end
  local compressor = env:choice("CAIRN_COMPRESSOR", "none", { "none", "zstd" })
  if compressor ~= "none" then
    errors.raise("ConfigError", "CAIRN_COMPRESSOR=%s: compression is not available in this version", compressor)
  end
  local map_size = env:get("CAIRN_MAP_SIZE")
  if map_size and not tonumber(map_size) then
    errors.raise("ConfigError", "CAIRN_MAP_SIZE must be a number of bytes (got '%s')", map_size)
  end
  return core.open(uri, { sync = sync, map_size = tonumber(map_size) })
end

-- Record the pending events of aggs[1..n_aggs] in one transaction, with a
-- tracking position (tracking_app, tracking_id) when a follower saves.
local function record(self, tracking_app, tracking_id, aggs, n_aggs)
  local taken_aggs, taken_lists, batch = {}, {}, {}
  local seen = n_aggs > 1 and {} or nil
  for i = 1, n_aggs do
    local agg = aggs[i]
    if type(agg) ~= "table" or not getmetatable(agg) or not agg.id then
      error(("bad argument #%d to 'save' (aggregate expected)"):format(i), 3)
    end
    if not (seen and seen[agg]) then
      if seen then seen[agg] = true end
      local list = aggregate.take_pending(agg)
      if list then
        taken_aggs[#taken_aggs + 1], taken_lists[#taken_lists + 1] = agg, list
        local n = #batch
        for j = 1, #list, 3 do
          local event = list[j]
          batch[n + 1] = event.originator_id
          batch[n + 2] = event.originator_version
          batch[n + 3] = list[j + 2]
          batch[n + 4] = event.topic
          batch[n + 5] = list[j + 1]
          n = n + 5
        end
      end
    end
  end
  local recordings = {}
  if #batch == 0 and not tracking_app then return recordings end
  local ok, first = pcall(self.store.append, self.store, batch, tracking_app, tracking_id)
  if not ok then
    -- the aggregates keep their events, so nothing triggered is lost
    for i = 1, #taken_aggs do aggregate.restore_pending(taken_aggs[i], taken_lists[i]) end
    error(first, 0)
  end
  local n = 0
  for i = 1, #taken_lists do
    local list = taken_lists[i]
    for j = 1, #list, 3 do
      recordings[n + 1] = { notification_id = first + n, event = list[j] }
      n = n + 1
    end
  end
  return recordings
end

--- Record the pending events of the given aggregates in one transaction.
-- @param ... aggregates
-- @return the recordings: array of `{ notification_id, event }` in order
-- @raise ConcurrencyError if any aggregate is stale; nothing is then recorded
function Base:save(...)
  return record(self, nil, nil, { ... }, select("#", ...))
end

--- Internal (process applications): save with the position of the
-- notification that caused it, in the same transaction.
function Base:save_tracked(leader_name, notification_id, aggs)
  return record(self, leader_name, notification_id, aggs, #aggs)
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
  local App = { name = name }
  App.__index = App
  setmetatable(App, { __index = Base })
  --- Make an application: opens its store.
  -- @param[opt] env settings (API.md §3); the process environment fills the rest
  function App.new(env)
    local self = setmetatable({ name = name }, App)
    self.env = config.new(name, env)
    self.store = open_store(self.env)
    self.repository = repository.new(self)
    self.log = notification_log.new(self)
    return self
  end
  return App
end

return _M
