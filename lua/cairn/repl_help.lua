--- The REPL's `help`, `help(obj)` and tab completion: what a value can do,
-- from its fields and its metatable's methods, with words for the values
-- the REPL binds (`app`, `store`, views, aggregates).
-- @module cairn.repl_help
local recorder = require "cairn.recorder"
local repl_show = require "cairn.repl_show"
local view = require "cairn.view"

local type, pairs, tostring, rawget, setmetatable = type, pairs, tostring, rawget, setmetatable
local getmetatable = debug.getmetatable
local concat, sort = table.concat, table.sort

local _M = { _VERSION = "0.1.0" }

local GENERAL = [[
cairn REPL: type Lua; expressions print their values (`=expr` works too).
  help                  this text          help(value)  what a value can do
  Tab                   complete names, fields and methods (app.repository:<Tab>)
  Ctrl-C                clear the line, or interrupt a running line
  Ctrl-D                exit (history is kept in ~/.cairn_history or $CAIRN_HISTORY)
  cairn.reload "mod"    load a --require'd module again after editing it
%s
Aggregates print with their state, views with their first keys, lists of
notifications as a table, timestamps as ISO 8601. docs/API.md has everything.]]

local BOUND = [[

Bound here:
  app    an application over %s:
           app.repository:get(id [, { version = v }])   an aggregate (its class must be loaded)
           app.repository:contains(id)
           app.log:select(start, limit [, { topics = {...} }])   notifications
           app.log:section("1,10")   app:max_notification_id()
           app:save(agg, ...)   app.snapshots:get(id)   app:take_snapshot(id)   app:forget(id)
  store  the store itself (a cairn.recorder): store:stat(), store:max_id(),
           store:read_log { from = 1, limit = n }, store:read_stream(id), store:verify(),
           store:tracking_max(app_name)
  cairn.view(store, "Name")   a view in the store (get, scan, max_tracking_id)]]

local NOT_BOUND = [[

No store is open: `cairn repl --store URI` binds `app` and `store`.
  cairn.application("Name").new { store = "lmdb:PATH" }   an application
  cairn.view("lmdb:PATH", "Name")                          a view]]

--- The text `help` prints.
function _M.general(store_uri)
  return GENERAL:format(store_uri and BOUND:format(store_uri) or NOT_BOUND)
end

-- Words for some kinds of value, shown before their fields and methods.
local ABOUT = {
  view = "a view: get(key), put(key, value), delete(key), incr(key, n), scan(prefix) (an iterator of key, "
    .. "value), max_tracking_id(app_name), wait(app_name, id, timeout_s)",
  aggregate = "an aggregate: change it with its command methods, then app:save(it); collect_events() "
    .. "takes its pending events, discard() ends it",
  store = "a store: stat(), max_id(), read_log { from =, stop =, limit =, topics = }, "
    .. "read_stream(id [, { after =, upto =, limit =, reverse = }]), verify(), tracking_max(app_name), uri(), close()",
}

-- Every name reachable from v: its own keys and its __index tables'.
function _M.names_of(v)
  local names, seen = {}, {}
  local function add(k, value)
    if type(k) == "string" and not seen[k] then
      seen[k] = true
      names[#names + 1] = { name = k, value = value }
    end
  end
  local t, hops = v, 0
  while t ~= nil and hops < 6 do
    if type(t) == "table" then
      for k, value in pairs(t) do add(k, value) end
    end
    local mt = getmetatable(t)
    local index = type(mt) == "table" and rawget(mt, "__index")
    if type(index) ~= "table" then break end
    t, hops = index, hops + 1
  end
  sort(names, function(a, b) return a.name < b.name end)
  return names
end

local function kind_of(v)
  if repl_show.is_aggregate(v) then return "aggregate" end
  if type(v) == "table" and getmetatable(v) == view.View then return "view" end
  if recorder.is_recorder(v) then return "store" end
end

--- What `help(v)` prints: what v is, then its fields and methods.
function _M.describe(v)
  local lines = {}
  local kind = kind_of(v)
  if kind then lines[1] = ABOUT[kind] end
  if type(v) == "function" then
    local info = debug.getinfo(v, "S")
    return ("a function (%s)"):format(info.short_src .. (info.linedefined > 0 and ":" .. info.linedefined or ""))
  end
  if type(v) ~= "table" and type(v) ~= "userdata" then
    return ("a %s: %s"):format(type(v), repl_show.show(v))
  end
  local fields, methods = {}, {}
  for _, e in ipairs(_M.names_of(v)) do
    if not e.name:match("^_") then
      if type(e.value) == "function" then
        methods[#methods + 1] = e.name
      else
        fields[#fields + 1] = ("%s (%s)"):format(e.name, type(e.value))
      end
    end
  end
  if #fields > 0 then lines[#lines + 1] = "fields: " .. concat(fields, ", ") end
  if #methods > 0 then lines[#lines + 1] = "functions and methods: " .. concat(methods, ", ") end
  if #lines == 0 then lines[1] = ("%s with nothing to list"):format(tostring(v)) end
  return concat(lines, "\n")
end

--- The `help` global: printing it shows the general help, calling it
-- describes a value.
function _M.new(store_uri)
  return setmetatable({}, {
    __tostring = function() return _M.general(store_uri) end,
    __call = function(_, ...)
      if select("#", ...) == 0 then print(_M.general(store_uri)) return end
      print(_M.describe((...)))
    end,
  })
end

--- Tab completion: the candidates for `word` ("app.repository:g"), each
-- the whole word. Walks globals, fields and __index tables; calls nothing.
function _M.complete(word)
  local base, sep, partial = word:match("^(.*)([%.:])([%w_]*)$")
  local target
  if base then
    target = _G
    for part in base:gmatch("[^%.:]+") do
      if type(target) ~= "table" and type(target) ~= "userdata" then return {} end
      local ok, nxt = pcall(function() return target[part] end)
      if not ok then return {} end
      target = nxt
    end
    if target == nil then return {} end
  else
    target, partial, base, sep = _G, word, "", ""
  end
  local out = {}
  for _, e in ipairs(_M.names_of(target)) do
    local name = e.name
    if name:sub(1, #partial) == partial and name:match("^[%a_][%w_]*$") and (sep ~= ":" or type(e.value) == "function")
    then
      out[#out + 1] = base .. sep .. name .. (type(e.value) == "function" and sep == ":" and "(" or "")
    end
  end
  return out
end

return _M
