--- Event schemas: which fields an event has and of what type.
-- A schema maps field names to type names; a trailing `?` makes the field
-- optional. Types: string, number, integer, boolean, array, map, table,
-- uuid, time, any. A field not in the schema is an error too, so a typo in a
-- command is caught before anything is recorded.
-- @module cairn.schema
local core = require "cairn.core"

local type, pairs, next, tostring, getmetatable = type, pairs, next, tostring, getmetatable
local floor, huge = math.floor, math.huge
local uuid_normalize = core.uuid_normalize

local _M = { _VERSION = "0.1.0" }

local time_mt = core.time_metatable

local function is_array(v)
  local n = #v
  for k in pairs(v) do
    if type(k) ~= "number" or k < 1 or k > n or k % 1 ~= 0 then return false end
  end
  return true
end

local CHECKS = {
  string = function(v) return type(v) == "string" end,
  number = function(v) return type(v) == "number" end,
  integer = function(v) return type(v) == "number" and v == floor(v) and v > -huge and v < huge end,
  boolean = function(v) return type(v) == "boolean" end,
  array = function(v) return type(v) == "table" and getmetatable(v) == nil and is_array(v) end,
  map = function(v)
    if type(v) ~= "table" or getmetatable(v) ~= nil then return false end
    return next(v) == nil or not is_array(v)
  end,
  table = function(v) return type(v) == "table" and getmetatable(v) == nil end,
  uuid = function(v) return type(v) == "string" and uuid_normalize(v) ~= nil end,
  time = function(v) return getmetatable(v) == time_mt end,
  any = function() return true end,
}

local function type_name(v)
  if getmetatable(v) == time_mt then return "time" end
  return type(v)
end

--- Compile a schema into a checking function.
-- @param spec `{ field = "type" | "type?" }`
-- @param where what the schema belongs to (for definition errors)
-- @return `check(fields)` returning nil, or a message naming the field
function _M.compile(spec, where)
  if type(spec) ~= "table" then
    error(("%s: a schema must be a table of field = \"type\""):format(where), 3)
  end
  local fields = {}
  for name, decl in pairs(spec) do
    if type(name) ~= "string" or type(decl) ~= "string" then
      error(("%s: schema entries must be field = \"type\" strings"):format(where), 3)
    end
    local base, optional = decl:match("^(%a+)(%??)$")
    if not base or not CHECKS[base] then
      error(("%s: field '%s' has unknown type '%s' (known: string, number, integer, boolean, array, map, "
        .. "table, uuid, time, any; add ? for optional)"):format(where, name, decl), 3)
    end
    fields[name] = { check = CHECKS[base], optional = optional == "?", decl = decl }
  end
  return function(values)
    for name, f in pairs(fields) do
      local v = values[name]
      if v == nil then
        if not f.optional then return ("field '%s' is missing (a %s)"):format(name, f.decl) end
      elseif not f.check(v) then
        return ("field '%s' must be %s, not %s"):format(name, f.decl, type_name(v))
      end
    end
    for name in pairs(values) do
      if not fields[name] then return ("field '%s' is not in the schema"):format(tostring(name)) end
    end
  end
end

return _M
