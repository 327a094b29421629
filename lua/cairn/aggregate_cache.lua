--- The aggregate cache of a repository (`CAIRN_AGGREGATE_CACHE=N`, API.md §3):
-- the N most recently used aggregates by id, least recently used dropped
-- first. It holds private copies: `get` hands out a copy and `put` keeps one,
-- so no caller shares an aggregate with the cache or with another caller.
-- The repository brings a cached aggregate up to date from the store's newer
-- events before handing it out (another process may have saved).
-- @module cairn.aggregate_cache
local setmetatable, getmetatable, type, pairs = setmetatable, getmetatable, type, pairs

local _M = { _VERSION = "0.1.0" }

local Cache = {}
Cache.__index = Cache

--- A copy of an aggregate: its tables copied all the way down (tables shared
-- within it stay shared in the copy), metatables kept.
local function deep_copy(v, seen)
  if type(v) ~= "table" then return v end
  local done = seen[v]
  if done then return done end
  local out = {}
  seen[v] = out
  for k, x in pairs(v) do out[deep_copy(k, seen)] = deep_copy(x, seen) end
  return setmetatable(out, getmetatable(v))
end

function _M.copy(agg)
  return deep_copy(agg, {})
end
local copy = _M.copy

--- A cache of at most `size` aggregates (size >= 1).
function _M.new(size)
  -- entries form a ring list around a sentinel: newest after it, oldest before
  local head = {}
  head.newer, head.older = head, head
  return setmetatable({ size = size, n = 0, by_id = {}, head = head }, Cache)
end

local function unlink(e)
  e.newer.older, e.older.newer = e.older, e.newer
end

local function link_newest(head, e)
  e.older, e.newer = head, head.newer
  head.newer.older = e
  head.newer = e
end

--- The cached aggregate itself (not a copy; the repository updates it and
-- copies it out), marked as just used; nil if not cached.
function Cache:peek(id)
  local e = self.by_id[id]
  if not e then return nil end
  unlink(e)
  link_newest(self.head, e)
  return e.agg
end

--- Keep a copy of agg under its id, dropping the least recently used beyond the size.
function Cache:put(agg)
  local id = agg.id
  local e = self.by_id[id]
  if e then
    e.agg = copy(agg)
    unlink(e)
  else
    e = { agg = copy(agg) }
    self.by_id[id] = e
    self.n = self.n + 1
  end
  link_newest(self.head, e)
  if self.n > self.size then
    local oldest = self.head.older
    unlink(oldest)
    self.by_id[oldest.agg.id] = nil
    self.n = self.n - 1
  end
end

--- Drop an aggregate (discarded, forgotten, or failed to bring up to date).
function Cache:drop(id)
  local e = self.by_id[id]
  if not e then return end
  unlink(e)
  self.by_id[id] = nil
  self.n = self.n - 1
end

--- How many aggregates are cached.
function Cache:count()
  return self.n
end


return _M
