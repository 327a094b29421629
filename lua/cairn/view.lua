--- Materialised views (API.md §4): a named key/value space in a store, with
-- the position it has reached in each application's log.
--
-- Outside a runner's batch every write commits at once. Inside one (the
-- handlers of a projection) writes collect in `pending` and commit together
-- with the tracking position, so a notification's effects and the record
-- that it was processed are never split.
-- @module cairn.view
local core = require "cairn.core"
local errors = require "cairn.errors"
local recorder = require "cairn.recorder"

local setmetatable, type, pairs = setmetatable, type, pairs
local tostring, error = tostring, error
local sort, encode, now_us = table.sort, core.encode, core.now_us

local _M = { _VERSION = "0.1.0" }
local View = {}
View.__index = View
_M.View = View

-- a deleted key in the pending writes
local DELETED = setmetatable({}, { __tostring = function() return "<deleted>" end })

local is_store = recorder.is_recorder

--- Open a view.
-- @param target a store URI (`lmdb:PATH`, `memory:`), an open store, or an application (its store)
-- @param name the view's name (a projection's name)
-- @param[opt] opts `sync` (`full`/`none`), `map_size`, `cipher_key`, for a URI
function _M.open(target, name, opts)
  if type(name) ~= "string" or not name:match("^[%a_][%w_]*$") then
    error("bad argument #2 to 'view' (a name of letters, digits and _ expected)", 2)
  end
  local store, owned
  if type(target) == "string" then
    store = recorder.open(target, { sync = opts and opts.sync, map_size = opts and opts.map_size,
                                cipher_key = opts and opts.cipher_key })
    owned = true
  elseif type(target) == "table" and is_store(target.store) then
    store = target.store
  elseif is_store(target) then
    store = target
  else
    error("bad argument #1 to 'view' (store URI, store or application expected)", 2)
  end
  return setmetatable({ store = store, name = name, owned = owned }, View)
end

local function check_key(key, fname)
  if type(key) ~= "string" then
    error(("bad argument #1 to '%s' (string key expected, got %s)"):format(fname, type(key)), 3)
  end
end

local function commit(self, ops, app, id, first)
  self.store:view_write(self.name, ops, app and { application = app, id = id, first = first })
end

--- The value of key, or nil.
function View:get(key)
  check_key(key, "get")
  local pending = self.pending
  if pending then
    local v = pending[key]
    if v ~= nil then
      if v == DELETED then return nil end
      return v
    end
  end
  return self.store:view_get(self.name, key)
end

local function encoded(self, key, value)
  return encode(value, ("view %s key '%s'"):format(self.name, key))
end

local function write(self, key, value)
  local pending = self.pending
  if pending then
    pending[key] = value
  elseif value == DELETED then
    commit(self, { key, false })
  else
    commit(self, { key, encoded(self, key, value) })
  end
end

--- Set key to value (anything an event may carry; nil deletes).
function View:put(key, value)
  check_key(key, "put")
  if value == nil then return write(self, key, DELETED) end
  if self.pending then encoded(self, key, value) end -- refuse now what cannot be stored
  write(self, key, value)
end

--- Remove key.
function View:delete(key)
  check_key(key, "delete")
  write(self, key, DELETED)
end

--- Add n (default 1) to the number at key (missing: 0); returns the new value.
function View:incr(key, n)
  check_key(key, "incr")
  if n == nil then n = 1 elseif type(n) ~= "number" then
    error("bad argument #2 to 'incr' (number expected)", 2)
  end
  local v = self:get(key)
  if v == nil then v = 0 elseif type(v) ~= "number" then
    errors.raise("SchemaError", "view %s: key '%s' holds a %s, not a number", self.name, key, type(v))
  end
  v = v + n
  write(self, key, v)
  return v
end

local PAGE = 1000

--- Iterate the keys starting with prefix (default: all) in byte order: `for key, value in view:scan("dog:")`.
function View:scan(prefix)
  prefix = prefix or ""
  if type(prefix) ~= "string" then error("bad argument #1 to 'scan' (string prefix expected)", 2) end
  local store, name = self.store, self.name
  -- pending writes with the prefix, in key order, merged into the stored ones
  local extra, n_extra = {}, 0
  if self.pending then
    for k in pairs(self.pending) do
      if k:sub(1, #prefix) == prefix then n_extra = n_extra + 1; extra[n_extra] = k end
    end
    sort(extra)
  end
  local pending = self.pending
  local page, at, after, done = {}, 1, nil, false
  local xi = 1
  local function stored_next()
    if at > #page then
      if done then return nil end
      page = store:view_scan(name, { prefix = prefix, after = after, limit = PAGE })
      at = 1
      if #page < 2 * PAGE then done = true end
      if #page == 0 then return nil end
      after = page[#page - 1]
    end
    local k, v = page[at], page[at + 1]
    at = at + 2
    return k, v
  end
  local sk, sv = stored_next()
  return function()
    while true do
      local xk = extra[xi]
      if sk == nil and xk == nil then return nil end
      local k, v
      if xk ~= nil and (sk == nil or xk <= sk) then
        if sk == xk then sk, sv = stored_next() end
        xi = xi + 1
        k, v = xk, pending[xk]
      else
        k, v = sk, sv
        sk, sv = stored_next()
      end
      if v ~= DELETED then return k, v end
    end
  end
end

--- The last notification id of app_name this view has processed (0: none).
function View:max_tracking_id(app_name)
  if type(app_name) ~= "string" then error("bad argument #1 to 'max_tracking_id' (application name expected)", 2) end
  return self.store:view_tracking_max(self.name, app_name)
end

--- Wait until the view has processed notification id of app_name.
-- @raise TimeoutError after timeout_s seconds (default 5)
function View:wait(app_name, id, timeout_s)
  if type(id) ~= "number" then error("bad argument #2 to 'wait' (notification id expected)", 2) end
  timeout_s = timeout_s or 5
  local deadline = now_us() + timeout_s * 1e6
  local stores = { self.store }
  local seen = {}
  while true do
    seen[1] = self.store:wake_seq() or 0
    local at = self:max_tracking_id(app_name)
    if at >= id then return at end
    local left = (deadline - now_us()) / 1e6
    if left <= 0 then
      errors.raise("TimeoutError", "view %s did not reach notification %d of %s within %gs (it is at %d)",
        self.name, id, app_name, timeout_s, at)
    end
    recorder.wait(stores, seen, left < 1 and left or 1, 0.005)
  end
end

--- Internal (runners): collect writes from now on.
function View:begin()
  self.pending = {}
end

--- Internal (runners): drop the collected writes.
function View:discard()
  self.pending = nil
end

--- Internal (runners): commit the collected writes with a tracking position:
-- the batch of app_name's notifications first..id (first defaults to id);
-- ConcurrencyError, nothing written, if the view's position is at or above first.
function View:commit(app_name, id, first)
  local pending, ops, n = self.pending, {}, 0
  self.pending = nil
  for k, v in pairs(pending) do
    ops[n + 1] = k
    ops[n + 2] = v ~= DELETED and encoded(self, k, v) or false
    n = n + 2
  end
  commit(self, ops, app_name, id, first)
end

--- Close the view's store if the view opened it.
function View:close()
  if self.owned and self.store then self.store:close() end
end

function View:__tostring()
  return ("cairn.view(%s in %s)"):format(self.name, tostring(self.store:uri()))
end

return _M
