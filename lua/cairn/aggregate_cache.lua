--- The aggregate cache of a repository (`CAIRN_AGGREGATE_CACHE=N`, API.md §3):
-- the N most recently used aggregates by id, least recently used dropped
-- first. It holds private copies: `get` hands out a copy and `put` keeps one,
-- so no caller shares an aggregate with the cache or with another caller.
-- The repository brings a cached aggregate up to date from the store's newer
-- events before handing it out (another process may have saved). The
-- repository keeps its decoded snapshot states (`CAIRN_SNAPSHOT_CACHE`) in
-- another such cache, as entries `{ id, record_hash, state, originator_id }`.
-- @module cairn.aggregate_cache
local setmetatable, getmetatable, type, next = setmetatable, getmetatable, type, next

local _M = { _VERSION = "0.1.0" }

local Cache = {}
Cache.__index = Cache

-- A shallow copy of a table: OpenResty's LuaJIT copies it in one step
-- (table.clone); elsewhere, key by key.
local has_clone, clone = pcall(require, "table.clone")
local shallow = has_clone and clone or function(t)
  local out = {}
  for k, v in next, t do out[k] = v end
  return out
end

-- The copy of table t: a shallow copy whose table values and keys are then
-- replaced by their copies (seen: copies made so far, so that tables shared
-- within v stay shared in the copy and cycles end); metatables kept.
local function copy_of(t, seen)
  local out = shallow(t)
  seen[t] = out
  local table_keys
  for k, v in next, out do
    if type(v) == "table" then out[k] = seen[v] or copy_of(v, seen) end
    if type(k) == "table" then
      table_keys = table_keys or {}
      table_keys[#table_keys + 1] = k
    end
  end
  if table_keys then -- re-keyed after the walk: a walk may not add keys
    for i = 1, #table_keys do
      local k = table_keys[i]
      local v = out[k]
      out[k] = nil
      out[seen[k] or copy_of(k, seen)] = v
    end
  end
  return setmetatable(out, getmetatable(t))
end

--- A copy of an aggregate (or any value): its tables copied all the way down
-- (tables shared within it stay shared in the copy), metatables kept. The
-- work is one step per table and per value, nothing per event of its history.
function _M.copy(v)
  if type(v) ~= "table" then return v end
  return copy_of(v, {})
end
local copy = _M.copy

--- A plan for copying the tree t again and again: its tables, each after the
-- tables it holds, with the keys it holds them under; nil when t is not a
-- tree of plain keys (a table key, or a table reached twice), to be copied
-- with `copy`. t must not change while the plan is used.
function _M.copy_plan(t)
  local plan, seen = {}, {}
  local function visit(x)
    if seen[x] then return false end
    seen[x] = true
    local keys
    for k, v in next, x do
      if type(k) == "table" then return false end
      if type(v) == "table" then
        if not visit(v) then return false end
        keys = keys or {}
        keys[#keys + 1] = k
      end
    end
    plan[#plan + 1] = { t = x, keys = keys, mt = getmetatable(x) }
    return true
  end
  return visit(t) and plan or nil
end

--- The copy of a tree by its plan (copy_plan): one shallow copy per table
-- (OpenResty's table.clone: one step), nothing per value.
function _M.copy_by(plan)
  local copies, out = {}, nil
  for i = 1, #plan do
    local p = plan[i]
    local t, keys = p.t, p.keys
    out = shallow(t)
    if keys then
      for j = 1, #keys do
        local k = keys[j]
        out[k] = copies[t[k]]
      end
    end
    if p.mt then setmetatable(out, p.mt) end
    copies[t] = out
  end
  return out
end

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
