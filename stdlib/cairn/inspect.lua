--- Pretty printer for the REPL: shows values as readable Lua.
--
--    inspect({ 1, 2, name = "Fido", tricks = { "roll" } })
--    --> { 1, 2, name = "Fido", tricks = { "roll" } }
--
-- Rules:
--
-- * Tables are Lua constructors: the array part (1..n up to the first nil)
--   first, then the other keys sorted (numbers, strings, booleans, then
--   anything else). String keys that are identifiers (and not keywords)
--   print as `name = `, other keys as `["a b"] = ` or `[10] = `.
-- * Strings are double-quoted on one line; control characters are escaped
--   (`\n`, `\t`, `\0`, `\127`...), valid UTF-8 is shown as is and bytes
--   that are not valid UTF-8 are escaped as `\ddd`.
-- * A table whose one-line form does not fit in `opts.width` (default 80)
--   columns is laid out one entry per line with 2-space indentation; each
--   nested table makes the same choice for the room it has.
-- * Tables nested `opts.depth` (default 6) levels deep print as `{...}`
--   (`{}` when empty); a table that contains itself prints `<cycle>`.
-- * Functions, userdata, threads and cdata print as `<function: 0x...>`.
-- * A metatable's `__cairn_inspect(value)` returns a plain table to show
--   instead of the value (lets read-only proxies show their fields); it
--   wins over `__tostring`, whose result is shown verbatim. Errors raised
--   by either are shown as `<error in __tostring: ...>` rather than raised.
--
-- @module cairn.inspect

local _M = { _VERSION = "0.1.0" }

local type, next, tostring, tonumber, rawget = type, next, tostring, tonumber, rawget
local pcall, select, error, setmetatable = pcall, select, error, setmetatable
local sort, concat = table.sort, table.concat
local byte, find, format, rep, sub =
    string.byte, string.find, string.format, string.rep, string.sub
local huge = math.huge

-- A debugging tool should see through `__metatable` protection (proxies
-- usually protect theirs); fall back when `debug` is sandboxed away.
local getmetatable = (debug and debug.getmetatable) or getmetatable

local DEFAULT_WIDTH = 80
local DEFAULT_DEPTH = 6
local INDENT = "  "

local KEYWORDS = {}
for w in ([[and break do else elseif end false for function goto if in
            local nil not or repeat return then true until while]]):gmatch("%a+") do
  KEYWORDS[w] = true
end

---------------------------------------------------------------------------
-- Scalars
---------------------------------------------------------------------------

local ESC = {
  ['"'] = '\\"', ["\\"] = "\\\\", ["\a"] = "\\a", ["\b"] = "\\b", ["\f"] = "\\f",
  ["\n"] = "\\n", ["\r"] = "\\r", ["\t"] = "\\t", ["\v"] = "\\v",
}

-- Length of a valid UTF-8 sequence starting at i, or nil.
local function utf8_len(s, i)
  local c = byte(s, i)
  if c < 0xC2 then return nil end
  if c < 0xE0 then
    local c2 = byte(s, i + 1)
    return c2 and c2 >= 0x80 and c2 <= 0xBF and 2 or nil
  end
  if c < 0xF0 then
    local c2, c3 = byte(s, i + 1, i + 2)
    local lo, hi = 0x80, 0xBF
    if c == 0xE0 then lo = 0xA0 elseif c == 0xED then hi = 0x9F end
    return c2 and c2 >= lo and c2 <= hi and c3 and c3 >= 0x80 and c3 <= 0xBF and 3 or nil
  end
  if c < 0xF5 then
    local c2, c3, c4 = byte(s, i + 1, i + 3)
    local lo, hi = 0x80, 0xBF
    if c == 0xF0 then lo = 0x90 elseif c == 0xF4 then hi = 0x8F end
    return c2 and c2 >= lo and c2 <= hi and c3 and c3 >= 0x80 and c3 <= 0xBF
      and c4 and c4 >= 0x80 and c4 <= 0xBF and 4 or nil
  end
  return nil
end

-- Escape for one character, given the byte that follows it: a decimal
-- escape must not swallow a following digit, so pad to 3 digits then.
local function byte_escape(c, nextc)
  if nextc and nextc >= 48 and nextc <= 57 then return format("\\%03d", c) end
  return "\\" .. c
end

local function quote(s)
  if not find(s, '[%z\1-\31"\\\127-\255]') then return '"' .. s .. '"' end
  local out, n, i, len = {}, 0, 1, #s
  while i <= len do
    local j = find(s, '[%z\1-\31"\\\127-\255]', i)
    if not j then
      n = n + 1; out[n] = sub(s, i)
      break
    end
    if j > i then n = n + 1; out[n] = sub(s, i, j - 1) end
    local c = byte(s, j)
    local ulen = c >= 0x80 and utf8_len(s, j)
    if ulen then
      n = n + 1; out[n] = sub(s, j, j + ulen - 1)
      i = j + ulen
    else
      local ch = sub(s, j, j)
      n = n + 1; out[n] = ESC[ch] or byte_escape(c, byte(s, j + 1))
      i = j + 1
    end
  end
  return '"' .. concat(out, "", 1, n) .. '"'
end

local function number_string(v)
  if v ~= v then return "0/0" end
  if v == huge then return "math.huge" end
  if v == -huge then return "-math.huge" end
  if v % 1 == 0 and v >= -2 ^ 53 and v <= 2 ^ 53 then return format("%d", v) end
  -- shortest precision that reads back as the same number (0.1, not
  -- 0.10000000000000001); %.17g always does
  for p = 14, 16 do
    local s = format("%." .. p .. "g", v)
    if tonumber(s) == v then return s end
  end
  return format("%.17g", v)
end

-- `<function: 0x...>`; int64 cdata keep their readable `1LL` form.
local function opaque(v)
  local s = tostring(v)
  if type(v) == "cdata" and find(s, "^%-?%d+U?LL$") then return s end
  return "<" .. s .. ">"
end

local function is_identifier(k)
  return type(k) == "string" and find(k, "^[A-Za-z_][A-Za-z0-9_]*$") ~= nil
    and not KEYWORDS[k]
end

---------------------------------------------------------------------------
-- Tables
---------------------------------------------------------------------------

local key_rank = { number = 1, string = 2, boolean = 3 }

local function key_less(a, b)
  local ta, tb = type(a), type(b)
  if ta ~= tb then return (key_rank[ta] or 4) < (key_rank[tb] or 4) end
  if ta == "number" or ta == "string" then return a < b end
  if ta == "boolean" then return (not a) and b end
  return tostring(a) < tostring(b)
end

local function key_prefix(k)
  if is_identifier(k) then return k .. " = " end
  local tk = type(k)
  if tk == "string" then return "[" .. quote(k) .. "] = " end
  if tk == "number" then return "[" .. number_string(k) .. "] = " end
  if tk == "boolean" then return "[" .. tostring(k) .. "] = " end
  return "[" .. opaque(k) .. "] = "
end

-- What a table shows as: a leaf string (from __tostring), or the table
-- whose entries to expand (itself, or what __cairn_inspect returned).
-- Memoised per call so hooks run once per object.
local function resolve(t, ctx)
  local r = ctx.resolved[t]
  if r ~= nil then return r end
  r = t
  local mt = getmetatable(t)
  if type(mt) == "table" then
    local hook = rawget(mt, "__cairn_inspect")
    local ts = rawget(mt, "__tostring")
    if type(hook) == "function" then
      local ok, shown = pcall(hook, t)
      if not ok then
        r = "<error in __cairn_inspect: " .. tostring(shown) .. ">"
      elseif type(shown) == "table" then
        r = shown
      else
        r = "<__cairn_inspect returned " .. type(shown) .. ">"
      end
    elseif ts ~= nil then
      local ok, s = pcall(tostring, t)
      r = ok and tostring(s) or ("<error in __tostring: " .. tostring(s) .. ">")
    end
  end
  ctx.resolved[t] = r
  return r
end

-- Sorted entries of a table as a flat list {prefix1, value1, prefix2, ...};
-- the array part has empty prefixes. Memoised per call.
local function entries(t, ctx)
  local list = ctx.entries[t]
  if list then return list end
  list = {}
  local n, len = 0, 0
  while rawget(t, len + 1) ~= nil do
    len = len + 1
    list[n + 1] = ""
    list[n + 2] = rawget(t, len)
    n = n + 2
  end
  local keys, nk = {}, 0
  for k in next, t do
    -- skip the array part already listed
    if not (type(k) == "number" and k >= 1 and k <= len and k % 1 == 0) then
      nk = nk + 1
      keys[nk] = k
    end
  end
  sort(keys, key_less)
  for i = 1, nk do
    local k = keys[i]
    list[n + 1] = key_prefix(k)
    list[n + 2] = rawget(t, k)
    n = n + 2
  end
  ctx.entries[t] = list
  return list
end

local render_flat -- forward declaration

-- One-line form, or nil as soon as it exceeds `budget` columns (so trying
-- the flat layout costs O(width), not O(size of the subtree)).
render_flat = function(v, level, ctx, budget)
  local tv = type(v)
  if tv ~= "table" then
    local s
    if tv == "string" then s = quote(v)
    elseif tv == "number" then s = number_string(v)
    elseif tv == "boolean" or tv == "nil" then s = tostring(v)
    else s = opaque(v) end
    return #s <= budget and s or nil
  end
  if ctx.active[v] then return #"<cycle>" <= budget and "<cycle>" or nil end
  local shown = resolve(v, ctx)
  if ctx.active[shown] then return #"<cycle>" <= budget and "<cycle>" or nil end
  if type(shown) == "string" then return #shown <= budget and shown or nil end
  if level >= ctx.depth then
    local s = next(shown) == nil and "{}" or "{...}"
    return #s <= budget and s or nil
  end
  local list = entries(shown, ctx)
  if #list == 0 then return budget >= 2 and "{}" or nil end

  -- mark both: a proxy's shown table may lead back to either
  ctx.active[v], ctx.active[shown] = true, true
  local parts, used = {}, 4 -- "{ " and " }"
  for i = 1, #list, 2 do
    local prefix = list[i]
    local room = budget - used - #prefix - (i > 1 and 2 or 0)
    local s = room >= 0 and render_flat(list[i + 1], level + 1, ctx, room)
    if not s then
      ctx.active[v], ctx.active[shown] = nil, nil
      return nil
    end
    parts[#parts + 1] = prefix .. s
    used = used + #prefix + #s + (i > 1 and 2 or 0)
  end
  ctx.active[v], ctx.active[shown] = nil, nil
  return "{ " .. concat(parts, ", ") .. " }"
end

-- Best layout for v starting at column `col` of a line at `level`.
local function render(v, level, col, ctx)
  local flat = render_flat(v, level, ctx, ctx.width - col)
  if flat then return flat end

  if type(v) ~= "table" or ctx.active[v] then
    -- leaves never wrap: take the long line
    return render_flat(v, level, ctx, huge)
  end
  local shown = resolve(v, ctx)
  if type(shown) == "string" or ctx.active[shown] or level >= ctx.depth then
    return render_flat(v, level, ctx, huge)
  end

  ctx.active[v], ctx.active[shown] = true, true
  local list = entries(shown, ctx)
  local pad = rep(INDENT, level + 1)
  local lines, n = {}, 0
  for i = 1, #list, 2 do
    local prefix = list[i]
    local last = i + 1 == #list
    -- reserve a column for the trailing comma
    local s = render(list[i + 1], level + 1, #pad + #prefix + (last and 0 or 1), ctx)
    n = n + 1
    lines[n] = pad .. prefix .. s .. (last and "" or ",")
  end
  ctx.active[v], ctx.active[shown] = nil, nil
  return "{\n" .. concat(lines, "\n") .. "\n" .. rep(INDENT, level) .. "}"
end

---------------------------------------------------------------------------
-- Public API
---------------------------------------------------------------------------

--- Format a value as readable Lua.
-- @param value any Lua value
-- @tparam[opt] table opts `width` (columns before wrapping, default 80) and
--   `depth` (table nesting levels to expand, default 6; deeper tables show
--   as `{...}`)
-- @treturn string
function _M.inspect(value, opts)
  local width, depth = DEFAULT_WIDTH, DEFAULT_DEPTH
  if opts ~= nil then
    if type(opts) ~= "table" then
      error("bad argument #2 to 'inspect' (table expected, got " .. type(opts) .. ")", 2)
    end
    width = opts.width or width
    depth = opts.depth or depth
    if type(width) ~= "number" or type(depth) ~= "number" then
      error("bad argument #2 to 'inspect' (width and depth must be numbers)", 2)
    end
  end
  local ctx = { width = width, depth = depth, active = {}, resolved = {}, entries = {} }
  return render(value, 0, 0, ctx)
end

local inspect = _M.inspect

--- Format several values (e.g. all results of a REPL expression), joined
-- with tabs like `print` does; nils in between are kept. No values give "".
-- @param ... any values
-- @treturn string
function _M.inspect_all(...)
  local n = select("#", ...)
  local out = {}
  for i = 1, n do
    out[i] = inspect((select(i, ...)))
  end
  return concat(out, "\t", 1, n)
end

-- `require("cairn.inspect")(value [, opts])` is `inspect(value [, opts])`.
return setmetatable(_M, { __call = function(_, value, opts) return inspect(value, opts) end })
