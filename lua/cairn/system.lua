--- Systems (API.md §5): applications joined by pipes, leaders to followers.
-- `cairn.system { pipes = { { TrainingSchool, Counters } } }` checks the graph
-- once, when it is defined.
-- @module cairn.system
local errors = require "cairn.errors"
local config = require "cairn.config"

local setmetatable, type, pairs, ipairs, tostring = setmetatable, type, pairs, ipairs, tostring
local concat = table.concat

local _M = { _VERSION = "0.1.0" }

local System = {}
System.__index = System
_M.System = System

local function is_app_class(v)
  return type(v) == "table" and type(v.name) == "string" and type(v.new) == "function"
end

-- A cycle in the follows graph, as a list of names, or nil.
local function find_cycle(order, leads)
  local state, stack = {}, {}
  local function visit(name)
    state[name] = "open"
    stack[#stack + 1] = name
    for _, f in ipairs(leads[name]) do
      if state[f] == "open" then
        local cycle, at = {}, nil
        for i = 1, #stack do if stack[i] == f then at = i end end
        for i = at, #stack do cycle[#cycle + 1] = stack[i] end
        cycle[#cycle + 1] = f
        return cycle
      elseif state[f] == nil then
        local c = visit(f)
        if c then return c end
      end
    end
    stack[#stack] = nil
    state[name] = "done"
  end
  for _, name in ipairs(order) do
    if not state[name] then
      local c = visit(name)
      if c then return c end
    end
  end
end

-- Leaders before followers (Kahn's algorithm; ties in definition order).
local function topological(order, follows)
  local done, out = {}, {}
  while #out < #order do
    for _, name in ipairs(order) do
      if not done[name] then
        local ready = true
        for _, l in ipairs(follows[name]) do if not done[l] and l ~= name then ready = false end end
        if ready then done[name] = true; out[#out + 1] = name end
      end
    end
  end
  return out
end

--- Define a system.
-- @param opts `pipes` (array of arrays of application classes: each follows the
--   one before it), `allow_cycles` (default false)
-- @raise ConfigError for a bad pipe, two applications with one name, a follower
--   that is not a process application, or a cycle that is not allowed
function _M.define(opts)
  if type(opts) ~= "table" or type(opts.pipes) ~= "table" then
    errors.raise("ConfigError", "a system needs pipes: cairn.system { pipes = { { Leader, Follower } } }")
  end
  local nodes, order, leads, follows = {}, {}, {}, {}
  local edges, seen_edge = {}, {}
  if #opts.pipes == 0 then errors.raise("ConfigError", "a system needs at least one pipe") end
  for p, pipe in ipairs(opts.pipes) do
    if type(pipe) ~= "table" or #pipe == 0 then
      errors.raise("ConfigError", "pipe %d is not a list of applications", p)
    end
    for i, cls in ipairs(pipe) do
      if not is_app_class(cls) then
        errors.raise("ConfigError", "pipe %d, position %d: %s is not an application class", p, i, tostring(cls))
      end
      local known = nodes[cls.name]
      if known and known ~= cls then
        errors.raise("ConfigError", "two different applications are named %s", cls.name)
      end
      if not known then
        nodes[cls.name] = cls
        order[#order + 1] = cls.name
        leads[cls.name], follows[cls.name] = {}, {}
      end
      if i > 1 then
        local leader = pipe[i - 1].name
        if not cls.is_process_application then
          errors.raise("ConfigError", "%s follows %s but is not a process application", cls.name, leader)
        end
        local key = leader .. ">" .. cls.name
        if not seen_edge[key] then
          seen_edge[key] = true
          edges[#edges + 1] = { leader, cls.name }
          leads[leader][#leads[leader] + 1] = cls.name
          follows[cls.name][#follows[cls.name] + 1] = leader
        end
      end
    end
  end
  local cycle = find_cycle(order, leads)
  if cycle and not opts.allow_cycles then
    errors.raise("ConfigError", "the pipes make a cycle (%s); set allow_cycles = true to allow it",
      concat(cycle, " -> "))
  end
  local self = setmetatable({ nodes = nodes, edges = edges, leads = leads, follows = follows,
    order = cycle and order or topological(order, follows), allow_cycles = opts.allow_cycles and true or false },
    System)
  self.leaders, self.followers, self.processors = {}, {}, {}
  for _, name in ipairs(self.order) do
    if #leads[name] > 0 then self.leaders[#self.leaders + 1] = name end
    if #follows[name] > 0 then self.followers[#self.followers + 1] = name end
    if #leads[name] > 0 and #follows[name] > 0 then self.processors[#self.processors + 1] = name end
  end
  return self
end

--- The application class named name.
-- @raise ConfigError if the system has no such application
function System:get_app_cls(name)
  if type(name) == "table" then name = name.name end
  local cls = self.nodes[name]
  if not cls then errors.raise("ConfigError", "the system has no application named %s", tostring(name)) end
  return cls
end

--- The env an application of this system is made with: unless
-- `<APPNAME>_CAIRN_STORE` names its store, `CAIRN_STORE=lmdb:DIR` becomes
-- `lmdb:DIR/<AppName>` (each application keeps its own log); `memory:` stays.
-- The store of application `name` in a system whose store is `base`: a subdirectory of an
-- lmdb: store; on PostgreSQL a schema of the same database named after the base's schema and
-- the application (`schema=S` -> S_name, lower case; no schema -> name); memory: stays memory:.
local function member_store(base, name)
  local dir = base:match("^lmdb:(.*)$")
  if dir then return "lmdb:" .. dir:gsub("/+$", "") .. "/" .. name end
  if not base:match("^postgres") then return base end
  local app = name:lower():gsub("[^%w_]", "_")
  local schema = base:match("[?&]schema=([^&#]*)")
  if schema then
    return (base:gsub("([?&]schema=)[^&#]*", "%1" .. schema .. "_" .. app, 1))
  end
  return base .. (base:find("?", 1, true) and "&" or "?") .. "schema=" .. app
end

function System:application_env(name, env)
  self:get_app_cls(name)
  local cfg = config.new(name, env)
  if cfg:get_own("CAIRN_STORE") then return env end
  local base = cfg:get("CAIRN_STORE", "memory:")
  local out = {}
  for k, v in pairs(env or {}) do
    if k ~= "store" and k ~= "CAIRN_STORE" then out[k] = v end
  end
  out.CAIRN_STORE = member_store(base, name)
  return out
end

return _M
