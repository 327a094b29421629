--- How the REPL shows values: aggregates with their state, views with their
-- first keys, lists of notifications as a compact table, timestamps as
-- ISO 8601 with µs; everything else as readable Lua (cairn.inspect).
-- @module cairn.repl_show
local event = require "cairn.event"
local inspect = require "cairn.inspect"
local time = require "cairn.time"
local view = require "cairn.view"

local type, pairs, tostring, select, setmetatable = type, pairs, tostring, select, setmetatable
local getmetatable = debug.getmetatable
local concat, floor, ipairs, pcall = table.concat, math.floor, ipairs, pcall
local event_fields = event.fields

local _M = { _VERSION = "0.1.0" }

--- Fields that hold seconds since the epoch: shown as ISO 8601 times.
local TIME_FIELDS = { timestamp = true, created_on = true, modified_on = true }

--- How many keys of a view the REPL shows.
_M.VIEW_KEYS = 10

local MAX_DEPTH = 6

-- A value inspect shows verbatim (its __tostring).
local function verbatim(text)
  return setmetatable({}, { __tostring = function() return text end })
end

local function iso(seconds)
  return time.from_us(floor(seconds * 1e6 + 0.5)):iso()
end

--- Is v an aggregate (an instance of a cairn.aggregate class)?
function _M.is_aggregate(v)
  local mt = type(v) == "table" and getmetatable(v)
  return type(mt) == "table" and type(mt.__events) == "table" and type(mt.__name) == "string" and v ~= mt
end

local function is_view(v)
  return type(v) == "table" and getmetatable(v) == view.View
end

local function is_notification(v)
  return type(v) == "table" and type(v.id) == "number" and type(v.topic) == "string" and v.originator_id ~= nil
end

local display

-- The fields of a table as a plain copy, for inspect, with times as ISO.
local function copy_fields(t, depth, seen)
  local mt = getmetatable(t)
  local hook = type(mt) == "table" and mt.__cairn_inspect
  local src = t
  if type(hook) == "function" then
    local ok, shown = pcall(hook, t)
    if ok and type(shown) == "table" then src = shown end
  elseif type(mt) == "table" and mt.__tostring and not _M.is_aggregate(t) then
    return t -- values that say what they are (times, errors, stores)
  end
  local out = {}
  seen[t] = out
  for k, v in pairs(src) do
    if TIME_FIELDS[k] and type(v) == "number" then
      out[k] = verbatim(iso(v))
    else
      out[k] = display(v, depth + 1, seen)
    end
  end
  return out
end

-- An aggregate: its class, id and version, then its state.
local function show_aggregate(agg, depth, seen)
  local state = copy_fields(agg, depth, seen)
  state.id, state.version = nil, nil
  local head = ("%s(%s) v%s"):format(getmetatable(agg).__name, tostring(agg.id), tostring(agg.version))
  if depth > 0 then return verbatim(head) end
  return verbatim(head .. " " .. inspect.inspect(state))
end

-- A view: its name, store and first keys.
local function show_view(v)
  local lines, n = { tostring(v) }, 0
  local ok, err = pcall(function()
    for k, value in v:scan("") do
      n = n + 1
      if n > _M.VIEW_KEYS then
        lines[#lines + 1] = "  ... (more keys: v:scan(prefix) lists them)"
        break
      end
      lines[#lines + 1] = ("  %s = %s"):format(inspect.inspect(k), inspect.inspect(value, { width = 60, depth = 2 }))
    end
  end)
  if not ok then lines[#lines + 1] = "  <cannot read: " .. tostring(err) .. ">" end
  if ok and n == 0 then lines[1] = lines[1] .. ": empty" end
  return verbatim(concat(lines, "\n"))
end

-- Notifications as rows: id, topic, version, aggregate id, fields.
local function show_notifications(list)
  local rows = { { "id", "topic", "version", "originator_id", "fields" } }
  for i = 1, #list do
    local n = list[i]
    local fields = type(n.event) == "table" and event_fields(n.event) or {}
    rows[#rows + 1] = { tostring(n.id), n.topic, tostring(n.originator_version), tostring(n.originator_id),
      n.forgotten and "(forgotten)" or inspect.inspect(fields, { width = 1e9, depth = 2 }) }
  end
  local widths = {}
  for _, row in ipairs(rows) do
    for c = 1, 4 do widths[c] = math.max(widths[c] or 0, #row[c]) end
  end
  local out = {}
  for r, row in ipairs(rows) do
    out[r] = ("%" .. widths[1] .. "s  %-" .. widths[2] .. "s  %" .. widths[3] .. "s  %-" .. widths[4] .. "s  %s")
      :format(row[1], row[2], row[3], row[4], row[5])
  end
  return verbatim(concat(out, "\n"))
end

local function all_notifications(t)
  if #t == 0 then return false end
  for i = 1, #t do
    if not is_notification(t[i]) then return false end
  end
  return true
end

--- The value inspect is given for v.
display = function(v, depth, seen)
  if type(v) ~= "table" then return v end
  if seen[v] then return seen[v] end
  if _M.is_aggregate(v) then return show_aggregate(v, depth, seen) end
  if is_view(v) then return depth == 0 and show_view(v) or verbatim(tostring(v)) end
  if depth == 0 and all_notifications(v) then return show_notifications(v) end
  if depth >= MAX_DEPTH then return v end
  return copy_fields(v, depth, seen)
end

--- One value as the REPL shows it.
function _M.show(v)
  return inspect.inspect(display(v, 0, {}))
end

--- All results of a line, tab-separated like print.
function _M.show_all(...)
  local out, n = {}, select("#", ...)
  for i = 1, n do out[i] = _M.show((select(i, ...))) end
  return concat(out, "\t", 1, n)
end

return _M
