--- JSON encoder/decoder for exporting and importing event payloads as JSON lines.
--
-- The encoding round-trips cairn's value model exactly: nil, booleans,
-- numbers, binary-safe strings and tables (arrays and maps). Values that
-- plain JSON cannot represent are written as single-key "tagged" objects:
--
--    {"$bytes":"<base64>"}          a string that is not valid UTF-8
--    {"$float":"nan"|"inf"|"-inf"}  a non-finite number
--    {"$map":[[k1,v1],[k2,v2]]}     a map with non-string keys, or a map whose
--                                   only key starts with "$" (so it cannot be
--                                   mistaken for a tag on the way back)
--    {"$time":n}                    produced by a `__cairn_json` hook; decoded
--                                   through `opts.time` when given
--
-- Encoding hook: if a table's metatable has a `__cairn_json` function, it is
-- called as `hook(value)` and its result is encoded instead of the table.
-- A single-`$`-key table returned by the hook is written as a tagged object
-- verbatim (e.g. `{["$time"]=123}` becomes `{"$time":123}`), which is how
-- hooks emit tags; everywhere else such a table is escaped with `$map`.
--
-- @module cairn.json

local _M = { _VERSION = "0.1.0" }

local type, next, tostring, tonumber = type, next, tostring, tonumber
local error, pcall, setmetatable = error, pcall, setmetatable
local sort, concat = table.sort, table.concat
local byte, char, find, sub, format, gsub =
    string.byte, string.char, string.find, string.sub, string.format, string.gsub
local huge = math.huge
local bit = require("bit")
local band, bor, lshift, rshift = bit.band, bit.bor, bit.lshift, bit.rshift

-- Seeing through `__metatable` protection matters: read-only proxies usually
-- protect their metatable, yet still want their hook honoured.
local getmetatable = (debug and debug.getmetatable) or getmetatable

local MAX_DEPTH = 200           -- JSON nesting limit, shared by encode and decode
local MAX_SAFE_INT = 2 ^ 53     -- beyond this, doubles are not all integers

_M.MAX_DEPTH = MAX_DEPTH

---------------------------------------------------------------------------
-- UTF-8 validation
---------------------------------------------------------------------------

--- Position of the first byte that breaks UTF-8 validity, or nil.
-- Strict RFC 3629: no overlong forms, no surrogates, nothing above U+10FFFF.
local function utf8_bad(s)
  local i = 1
  while true do
    -- skip ASCII runs with one C-level scan; most payload text is ASCII
    i = find(s, "[\128-\255]", i)
    if not i then return nil end
    local c = byte(s, i)
    if c < 0xC2 then
      return i                                  -- stray continuation / overlong lead
    elseif c < 0xE0 then
      local c2 = byte(s, i + 1)
      if not c2 or c2 < 0x80 or c2 > 0xBF then return i end
      i = i + 2
    elseif c < 0xF0 then
      local c2, c3 = byte(s, i + 1, i + 2)
      local lo, hi = 0x80, 0xBF
      if c == 0xE0 then lo = 0xA0 elseif c == 0xED then hi = 0x9F end -- overlong / surrogates
      if not c2 or c2 < lo or c2 > hi or not c3 or c3 < 0x80 or c3 > 0xBF then return i end
      i = i + 3
    elseif c < 0xF5 then
      local c2, c3, c4 = byte(s, i + 1, i + 3)
      local lo, hi = 0x80, 0xBF
      if c == 0xF0 then lo = 0x90 elseif c == 0xF4 then hi = 0x8F end -- overlong / > U+10FFFF
      if not c2 or c2 < lo or c2 > hi or not c3 or c3 < 0x80 or c3 > 0xBF
          or not c4 or c4 < 0x80 or c4 > 0xBF then
        return i
      end
      i = i + 4
    else
      return i
    end
  end
end

--- Whether a string is valid UTF-8 (strict RFC 3629).
-- @tparam string s
-- @treturn boolean
function _M.is_utf8(s)
  return utf8_bad(s) == nil
end

---------------------------------------------------------------------------
-- Base64 (RFC 4648, standard alphabet, with padding)
---------------------------------------------------------------------------

local B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
local b64_enc = {}   -- 6-bit value -> byte
local b64_dec = {}   -- byte -> 6-bit value
for i = 1, 64 do
  local c = byte(B64, i)
  b64_enc[i - 1] = c
  b64_dec[c] = i - 1
end

--- Encode a string (any bytes) as standard base64 with padding.
-- @tparam string s
-- @treturn string
function _M.base64_encode(s)
  local out, n, len = {}, 0, #s
  local full = len - len % 3
  for i = 1, full, 3 do
    local a, b, c = byte(s, i, i + 2)
    local v = bor(lshift(a, 16), lshift(b, 8), c)
    n = n + 1
    out[n] = char(b64_enc[rshift(v, 18)], b64_enc[band(rshift(v, 12), 63)],
                  b64_enc[band(rshift(v, 6), 63)], b64_enc[band(v, 63)])
  end
  local rest = len - full
  if rest == 1 then
    local v = lshift(byte(s, len), 16)
    n = n + 1
    out[n] = char(b64_enc[rshift(v, 18)], b64_enc[band(rshift(v, 12), 63)], 61, 61)
  elseif rest == 2 then
    local a, b = byte(s, len - 1, len)
    local v = bor(lshift(a, 16), lshift(b, 8))
    n = n + 1
    out[n] = char(b64_enc[rshift(v, 18)], b64_enc[band(rshift(v, 12), 63)],
                  b64_enc[band(rshift(v, 6), 63)], 61)
  end
  return concat(out)
end

--- Decode standard base64 with padding.
-- Strict: the length must be a multiple of 4, no whitespace, padding only at
-- the end, and unused trailing bits must be zero, so every byte string has
-- exactly one accepted encoding.
-- @tparam string s
-- @treturn[1] string the decoded bytes
-- @treturn[2] nil
-- @treturn[2] string error message
function _M.base64_decode(s)
  if type(s) ~= "string" then
    return nil, "base64: expected a string, got " .. type(s)
  end
  local len = #s
  if len % 4 ~= 0 then
    return nil, "base64: length " .. len .. " is not a multiple of 4"
  end
  local out, n = {}, 0
  for i = 1, len, 4 do
    local c1, c2, c3, c4 = byte(s, i, i + 3)
    local a, b, c, d = b64_dec[c1], b64_dec[c2], b64_dec[c3], b64_dec[c4]
    if not a then return nil, "base64: invalid character at offset " .. i end
    if not b then return nil, "base64: invalid character at offset " .. (i + 1) end
    local last = i + 3 == len
    if not c then
      if not (last and c3 == 61 and c4 == 61) then
        return nil, "base64: invalid character at offset " .. (i + 2)
      end
      if band(b, 15) ~= 0 then
        return nil, "base64: non-zero padding bits at offset " .. (i + 1)
      end
      n = n + 1
      out[n] = char(bor(lshift(a, 2), rshift(b, 4)))
    elseif not d then
      if not (last and c4 == 61) then
        return nil, "base64: invalid character at offset " .. (i + 3)
      end
      if band(c, 3) ~= 0 then
        return nil, "base64: non-zero padding bits at offset " .. (i + 2)
      end
      local v = bor(lshift(a, 18), lshift(b, 12), lshift(c, 6))
      n = n + 1
      out[n] = char(rshift(v, 16), band(rshift(v, 8), 255))
    else
      local v = bor(lshift(a, 18), lshift(b, 12), lshift(c, 6), d)
      n = n + 1
      out[n] = char(rshift(v, 16), band(rshift(v, 8), 255), band(v, 255))
    end
  end
  return concat(out)
end

local base64_encode, base64_decode = _M.base64_encode, _M.base64_decode

---------------------------------------------------------------------------
-- Encoder
---------------------------------------------------------------------------

-- Raised internally; encode() turns it into a message at the caller's level.
-- A table distinguishes our errors from errors raised by user hooks.
local EncodeError = {}
EncodeError.__index = EncodeError

local escapes = {
  ['"'] = '\\"', ["\\"] = "\\\\", ["\b"] = "\\b", ["\f"] = "\\f",
  ["\n"] = "\\n", ["\r"] = "\\r", ["\t"] = "\\t",
}
for i = 0, 31 do
  local c = char(i)
  if not escapes[c] then escapes[c] = format("\\u%04x", i) end
end

local IDENT = "^[A-Za-z_][A-Za-z0-9_]*$"

--- Render the key path (kept as a stack) jq-style: .a.b[2]["x y"]
local function path_string(path, depth)
  if depth == 0 then return "." end
  local parts = {}
  for i = 1, depth do
    local k = path[i]
    if type(k) == "string" then
      -- %q continues lines with a backslash-newline; keep messages on one line
      parts[i] = find(k, IDENT) and ("." .. k)
        or ("[" .. gsub(format("%q", k), "\\\n", "\\n") .. "]")
    else
      parts[i] = "[" .. tostring(k) .. "]"
    end
  end
  return concat(parts)
end

local function fail(ctx, depth, msg)
  error(setmetatable({ msg = msg .. " at " .. path_string(ctx.path, depth) }, EncodeError), 0)
end

-- One scan finds everything that needs care; plain ASCII takes no more.
local SPECIAL = '[%z\1-\31"\\\128-\255]'
local ESCAPED = '[%z\1-\31"\\]'

local function encode_string(s, buf, n, ctx, level, depth)
  if find(s, SPECIAL) then
    if find(s, "[\128-\255]") and utf8_bad(s) then
      -- the tag is an object: one more nesting level for the decoder
      if depth >= MAX_DEPTH then fail(ctx, level, "nesting deeper than " .. MAX_DEPTH) end
      buf[n + 1] = '{"$bytes":"'
      buf[n + 2] = base64_encode(s)
      buf[n + 3] = '"}'
      return n + 3
    end
    s = gsub(s, ESCAPED, escapes)
  end
  buf[n + 1] = '"'
  buf[n + 2] = s
  buf[n + 3] = '"'
  return n + 3
end

-- Object keys repeat across millions of events: cache their encoded form
-- ('"key":'), or false for keys that are not valid UTF-8. Bounded so that
-- data with ever-new keys cannot grow it without limit.
local KEY_CACHE_MAX = 4096
local key_cache, key_cache_size = {}, 0

local function key_json(k)
  local kj = key_cache[k]
  if kj == nil then
    if find(k, "[\128-\255]") and utf8_bad(k) then
      kj = false
    elseif find(k, ESCAPED) then
      kj = '"' .. gsub(k, ESCAPED, escapes) .. '":'
    else
      kj = '"' .. k .. '":'
    end
    if key_cache_size >= KEY_CACHE_MAX then key_cache, key_cache_size = {}, 0 end
    key_cache[k] = kj
    key_cache_size = key_cache_size + 1
  end
  return kj
end

-- Insertion sort for the usual handful of keys: unlike table.sort it is
-- compiled by the JIT; large maps still go to table.sort.
local function sort_keys(keys, nk, less)
  if nk > 12 then
    sort(keys, less)
    return
  end
  for i = 2, nk do
    local k = keys[i]
    local j = i - 1
    if less then
      while j >= 1 and less(k, keys[j]) do keys[j + 1] = keys[j]; j = j - 1 end
    else
      while j >= 1 and k < keys[j] do keys[j + 1] = keys[j]; j = j - 1 end
    end
    keys[j + 1] = k
  end
end

local function encode_number(v)
  if v ~= v then return '{"$float":"nan"}' end
  if v == huge then return '{"$float":"inf"}' end
  if v == -huge then return '{"$float":"-inf"}' end
  if v % 1 == 0 and v >= -MAX_SAFE_INT and v <= MAX_SAFE_INT then
    return format("%d", v)
  end
  return format("%.17g", v)
end

-- Sort order for $map keys: numbers, then strings, then booleans.
local key_rank = { number = 1, string = 2, boolean = 3 }
local function key_less(a, b)
  local ta, tb = type(a), type(b)
  if ta ~= tb then return key_rank[ta] < key_rank[tb] end
  if ta == "boolean" then return (not a) and b end
  return a < b
end

local encode_value  -- forward declaration (mutual recursion with encode_table)

-- The metatable of tables marked by `object`.
local OBJECT = {}

--- Mark a table as a JSON object: encoded as `{}` when it is empty (an
-- unmarked empty table is `[]`). Event fields are objects, so that tools such
-- as jq can ask `.fields.name` of an event without fields.
-- @param[opt] t the table (a new one when nil)
-- @return t
function _M.object(t)
  return setmetatable(t or {}, OBJECT)
end

--- depth: number of enclosing JSON arrays/objects already open (for MAX_DEPTH).
--- level: number of Lua keys on the path (for error messages).
local function encode_table(t, buf, n, ctx, level, depth, tag_ok)
  if ctx.active[t] then fail(ctx, level, "cycle in value") end

  local mt = getmetatable(t)
  local hook = type(mt) == "table" and mt.__cairn_json
  if type(hook) == "function" then
    ctx.active[t] = true  -- a hook returning its own argument is a cycle
    n = encode_value(hook(t), buf, n, ctx, level, depth, true)
    ctx.active[t] = nil
    return n
  end

  -- checked even for `[]`: the decoder counts every array/object
  if depth >= MAX_DEPTH then
    fail(ctx, level, "nesting deeper than " .. MAX_DEPTH)
  end

  -- Classify: an array iff every key is a positive integer and 1..count are
  -- all present (count distinct keys, so they are exactly 1..count). No
  -- running maximum: Debian's LuaJIT 2.1 now and then compiled `if k > max
  -- then max = k end` in this loop into a no-op (about one run in a hundred
  -- made {t, t} a map; never with -joff).
  local count, seq, all_string = 0, true, true
  for k in next, t do
    count = count + 1
    local tk = type(k)
    if tk == "number" then
      all_string = false
      if not (k >= 1 and k % 1 == 0) then seq = false end
    else
      seq = false
      if tk == "string" then
        -- JSON object keys cannot carry $bytes, so non-UTF-8 keys force $map
        if not key_json(k) then all_string = false end
      elseif tk == "boolean" then
        all_string = false
      else
        fail(ctx, level, "cannot encode " .. tk .. " key")
      end
    end
  end

  if count == 0 then
    buf[n + 1] = mt == OBJECT and "{}" or "[]"
    return n + 1
  end

  ctx.active[t] = true
  local path = ctx.path
  if seq then
    for i = 1, count do
      if t[i] == nil then seq = false; break end
    end
  end
  if seq then
    buf[n + 1] = "["
    n = n + 1
    for i = 1, count do
      if i > 1 then n = n + 1; buf[n] = "," end
      path[level + 1] = i
      n = encode_value(t[i], buf, n, ctx, level + 1, depth + 1, false)
    end
    n = n + 1
    buf[n] = "]"
  else
    local keys, nk = {}, 0
    for k in next, t do nk = nk + 1; keys[nk] = k end
    local single_dollar = count == 1 and all_string and byte(keys[1], 1) == 36 -- "$"
    if all_string and not (single_dollar and not tag_ok) then
      sort_keys(keys, nk)
      buf[n + 1] = "{"
      n = n + 1
      for i = 1, nk do
        local k = keys[i]
        if i > 1 then n = n + 1; buf[n] = "," end
        n = n + 1
        -- key_json again, not a saved result: the cache may have been reset
        buf[n] = key_json(k)
        path[level + 1] = k
        n = encode_value(t[k], buf, n, ctx, level + 1, depth + 1, false)
      end
      n = n + 1
      buf[n] = "}"
    else
      -- {"$map":[[k,v],...]} nests two levels deeper than the pairs' contents
      if depth + 2 >= MAX_DEPTH then
        fail(ctx, level, "nesting deeper than " .. MAX_DEPTH)
      end
      sort_keys(keys, nk, key_less)
      buf[n + 1] = '{"$map":['
      n = n + 1
      for i = 1, nk do
        local k = keys[i]
        n = n + 1
        buf[n] = i > 1 and ",[" or "["
        path[level + 1] = k
        n = encode_value(k, buf, n, ctx, level + 1, depth + 3, false)
        n = n + 1
        buf[n] = ","
        n = encode_value(t[k], buf, n, ctx, level + 1, depth + 3, false)
        n = n + 1
        buf[n] = "]"
      end
      n = n + 1
      buf[n] = "]}"
    end
  end
  ctx.active[t] = nil
  return n
end

encode_value = function(v, buf, n, ctx, level, depth, tag_ok)
  local tv = type(v)
  if tv == "string" then
    return encode_string(v, buf, n, ctx, level, depth)
  elseif tv == "number" then
    if depth >= MAX_DEPTH and (v ~= v or v == huge or v == -huge) then
      fail(ctx, level, "nesting deeper than " .. MAX_DEPTH) -- $float tag is an object
    end
    n = n + 1
    buf[n] = encode_number(v)
    return n
  elseif tv == "table" then
    return encode_table(v, buf, n, ctx, level, depth, tag_ok)
  elseif tv == "boolean" then
    n = n + 1
    buf[n] = v and "true" or "false"
    return n
  elseif tv == "nil" then
    n = n + 1
    buf[n] = "null"
    return n
  end
  fail(ctx, level, "cannot encode " .. tv)
end

--- Encode a value as a single line of JSON.
-- Arrays (keys exactly 1..n) become JSON arrays, an empty table becomes `[]`
-- (`{}` when marked by `object`),
-- maps with string keys become objects with sorted keys, and everything JSON
-- cannot say directly becomes a tagged object (see the module doc). Output is
-- deterministic: equal values give byte-identical JSON.
-- @param value nil, boolean, number, string or table
-- @treturn string JSON text without newlines
-- @raise "json: cycle in value at <path>", "json: cannot encode <type> at <path>",
--   "json: nesting deeper than 200 at <path>"; paths look like `.a.b[2]`.
--   Errors raised by `__cairn_json` hooks propagate unchanged.
function _M.encode(value)
  local buf = {}
  local ctx = { active = {}, path = {} }
  local ok, res = pcall(encode_value, value, buf, 0, ctx, 0, 0, false)
  if not ok then
    if getmetatable(res) == EncodeError then
      error("json: " .. res.msg, 2)
    end
    error(res, 0)
  end
  return concat(buf, "", 1, res)
end

---------------------------------------------------------------------------
-- Decoder
---------------------------------------------------------------------------

-- Raised internally; decode() turns it into `nil, message`.
local DecodeError = {}

local function dfail(what, pos)
  error(setmetatable({ msg = "json: " .. what .. " at byte " .. pos }, DecodeError), 0)
end

local unescapes = {
  [34] = '"', [92] = "\\", [47] = "/", [98] = "\b",
  [102] = "\f", [110] = "\n", [114] = "\r", [116] = "\t",
}

local function utf8_char(cp)
  if cp < 0x80 then
    return char(cp)
  elseif cp < 0x800 then
    return char(bor(0xC0, rshift(cp, 6)), bor(0x80, band(cp, 0x3F)))
  elseif cp < 0x10000 then
    return char(bor(0xE0, rshift(cp, 12)), bor(0x80, band(rshift(cp, 6), 0x3F)),
                bor(0x80, band(cp, 0x3F)))
  end
  return char(bor(0xF0, rshift(cp, 18)), bor(0x80, band(rshift(cp, 12), 0x3F)),
              bor(0x80, band(rshift(cp, 6), 0x3F)), bor(0x80, band(cp, 0x3F)))
end

local function hex4(s, pos)
  local h = sub(s, pos, pos + 3)
  if not find(h, "^%x%x%x%x$") then dfail("invalid \\u escape", pos - 2) end
  return tonumber(h, 16)
end

--- Parse a string whose opening quote is at pos; returns value, next position.
local function parse_string(s, pos)
  local i = pos + 1
  -- fast path: no escapes before the closing quote
  local j = find(s, '[%z\1-\31"\\]', i)
  if not j then dfail("unterminated string", pos) end
  local c = byte(s, j)
  if c == 34 then return sub(s, i, j - 1), j + 1 end

  local parts, n = {}, 0
  while true do
    if c == 34 then
      n = n + 1
      parts[n] = sub(s, i, j - 1)
      return concat(parts, "", 1, n), j + 1
    elseif c == 92 then
      n = n + 1
      parts[n] = sub(s, i, j - 1)
      local e = byte(s, j + 1)
      if e == 117 then -- \u
        local cp = hex4(s, j + 2)
        i = j + 6
        if cp >= 0xD800 and cp <= 0xDBFF then
          if sub(s, i, i + 1) ~= "\\u" then dfail("lone surrogate", j) end
          local lo = hex4(s, i + 2)
          if lo < 0xDC00 or lo > 0xDFFF then dfail("lone surrogate", j) end
          cp = 0x10000 + (cp - 0xD800) * 0x400 + (lo - 0xDC00)
          i = i + 6
        elseif cp >= 0xDC00 and cp <= 0xDFFF then
          dfail("lone surrogate", j)
        end
        n = n + 1
        parts[n] = utf8_char(cp)
      else
        local u = e and unescapes[e]
        if not u then
          if not e then dfail("unterminated string", pos) end
          dfail("invalid escape", j)
        end
        n = n + 1
        parts[n] = u
        i = j + 2
      end
    else
      dfail("control character in string", j)
    end
    j = find(s, '[%z\1-\31"\\]', i)
    if not j then dfail("unterminated string", pos) end
    c = byte(s, j)
  end
end

--- Strict RFC 8259 number at pos; returns value, next position.
-- A number that a Lua number cannot keep is refused rather than changed: one
-- too large (it would become inf), a non-zero one too small (it would become
-- 0), an integer beyond 2^53 that would become another one.
local function parse_number(s, pos)
  local _, e = find(s, "^-?%d+", pos)
  if not e then dfail("invalid number", pos) end
  local d = byte(s, pos) == 45 and pos + 1 or pos
  if byte(s, d) == 48 and e > d then dfail("leading zero in number", pos) end
  local mantissa_end, integer = e, true
  local c = byte(s, e + 1)
  if c == 46 then -- .
    local _, fe = find(s, "^%d+", e + 2)
    if not fe then dfail("expected digit after '.'", e + 2) end
    e, mantissa_end, integer = fe, fe, false
    c = byte(s, e + 1)
  end
  if c == 101 or c == 69 then -- e E
    local _, xe = find(s, "^[-+]?%d+", e + 2)
    if not xe then dfail("expected digit in exponent", e + 2) end
    e, integer = xe, false
  end
  local text = sub(s, pos, e)
  local v = tonumber(text)
  if v == huge or v == -huge then
    dfail("number " .. text .. " is too large to keep (it would become infinite)", pos)
  elseif v == 0 and find(sub(s, pos, mantissa_end), "[1-9]") then
    dfail("number " .. text .. " is too small to keep (it would become 0)", pos)
  elseif integer and (v >= MAX_SAFE_INT or v <= -MAX_SAFE_INT) and format("%.0f", v) ~= text then
    dfail("integer " .. text .. " cannot be kept exactly (numbers are exact up to 2^53)", pos)
  end
  return v, e + 1
end

local function skip_ws(s, pos)
  -- compact JSON (what encode writes) has no whitespace: check one byte first
  local c = byte(s, pos)
  if c and c > 32 then return pos end
  return find(s, "[^ \t\n\r]", pos) or #s + 1
end

local parse_value -- forward declaration

local function show_byte(c)
  if c > 32 and c < 127 then return "'" .. char(c) .. "'" end
  return format("0x%02X", c)
end

-- A decoded [key, value] pair: exactly keys 1 and 2.
local function is_pair(p)
  if type(p) ~= "table" or p[1] == nil or p[2] == nil then return false end
  local count = 0
  for _ in next, p do count = count + 1 end
  return count == 2
end

-- Decode a single-key "$tag" object; returns the replacement value, or
-- `nil` to keep the object as a plain table.
local function untag(key, val, pos, opts)
  if key == "$bytes" then
    if type(val) ~= "string" then dfail("$bytes value must be a string", pos) end
    local bytes, err = base64_decode(val)
    if not bytes then dfail("invalid $bytes value (" .. err .. ")", pos) end
    return bytes
  elseif key == "$float" then
    if val == "nan" then return 0 / 0
    elseif val == "inf" then return huge
    elseif val == "-inf" then return -huge
    end
    dfail('$float value must be "nan", "inf" or "-inf"', pos)
  elseif key == "$map" then
    if type(val) ~= "table" then dfail("$map value must be an array of pairs", pos) end
    local t = {}
    local n = #val
    -- [] decodes to an empty table, which is fine: an empty map
    if next(val) ~= nil and (n == 0 or next(val, n) ~= nil or val[1] == nil) then
      dfail("$map value must be an array of pairs", pos)
    end
    for i = 1, n do
      local pair = val[i]
      if not is_pair(pair) then
        dfail("$map entry " .. i .. " is not a [key, value] pair", pos)
      end
      local k, v = pair[1], pair[2]
      local tk = type(k)
      if tk ~= "string" and tk ~= "number" and tk ~= "boolean" then
        dfail("$map key " .. i .. " has invalid type " .. tk, pos)
      end
      if k ~= k then dfail("$map key " .. i .. " is NaN", pos) end
      if t[k] ~= nil then dfail("duplicate key in $map entry " .. i, pos) end
      t[k] = v
    end
    return t
  elseif key == "$time" then
    local hook = opts and opts.time
    if hook then
      local r, err = hook(val)
      if r == nil then dfail("invalid $time value (" .. tostring(err or "rejected by hook") .. ")", pos) end
      return r
    end
  end
  return nil
end

local function parse_array(s, pos, depth, opts)
  if depth >= MAX_DEPTH then dfail("nesting deeper than " .. MAX_DEPTH, pos) end
  local t, n = {}, 0
  local i = skip_ws(s, pos + 1)
  if byte(s, i) == 93 then return t, i + 1 end
  while true do
    local start = i
    local v
    v, i = parse_value(s, i, depth + 1, opts)
    n = n + 1
    if v == nil then dfail("null in array element " .. n, start) end
    t[n] = v
    i = skip_ws(s, i)
    local c = byte(s, i)
    if c == 93 then return t, i + 1 end
    if c ~= 44 then
      dfail(c and "expected ',' or ']'" or "unexpected end of input", i)
    end
    i = skip_ws(s, i + 1)
  end
end

local function parse_object(s, pos, depth, opts)
  if depth >= MAX_DEPTH then dfail("nesting deeper than " .. MAX_DEPTH, pos) end
  local t, count, nulls = {}, 0, nil
  local first_key, first_val
  local i = skip_ws(s, pos + 1)
  if byte(s, i) == 125 then return t, i + 1 end
  while true do
    local c = byte(s, i)
    if c ~= 34 then
      dfail(c and "expected string key" or "unexpected end of input", i)
    end
    local kpos = i
    local k
    k, i = parse_string(s, i)
    i = skip_ws(s, i)
    if byte(s, i) ~= 58 then
      dfail(byte(s, i) and "expected ':'" or "unexpected end of input", i)
    end
    local v
    v, i = parse_value(s, skip_ws(s, i + 1), depth + 1, opts)
    if t[k] ~= nil or (nulls and nulls[k]) then dfail("duplicate key", kpos) end
    count = count + 1
    if count == 1 then first_key, first_val = k, v end
    if v == nil then
      -- the value model has no null: drop the key, but remember it for
      -- duplicate detection
      nulls = nulls or {}
      nulls[k] = true
    else
      t[k] = v
    end
    i = skip_ws(s, i)
    c = byte(s, i)
    if c == 125 then break end
    if c ~= 44 then
      dfail(c and "expected ',' or '}'" or "unexpected end of input", i)
    end
    i = skip_ws(s, i + 1)
  end
  if count == 1 and first_val ~= nil and byte(first_key, 1) == 36 then -- "$"
    local r = untag(first_key, first_val, pos, opts)
    if r ~= nil then return r, i + 1 end
  end
  return t, i + 1
end

parse_value = function(s, pos, depth, opts)
  local c = byte(s, pos)
  if c == 34 then
    return parse_string(s, pos)
  elseif c == 123 then
    return parse_object(s, pos, depth, opts)
  elseif c == 91 then
    return parse_array(s, pos, depth, opts)
  elseif c == 116 then
    if sub(s, pos, pos + 3) == "true" then return true, pos + 4 end
    dfail("invalid literal", pos)
  elseif c == 102 then
    if sub(s, pos, pos + 4) == "false" then return false, pos + 5 end
    dfail("invalid literal", pos)
  elseif c == 110 then
    if sub(s, pos, pos + 3) == "null" then return nil, pos + 4 end
    dfail("invalid literal", pos)
  elseif c == 45 or (c and c >= 48 and c <= 57) then
    return parse_number(s, pos)
  elseif not c then
    dfail("unexpected end of input", pos)
  end
  dfail("unexpected character " .. show_byte(c), pos)
end

--- Decode one JSON text.
-- Strict RFC 8259: no comments, trailing commas, single quotes or leading
-- zeros; input must be UTF-8; raw control characters in strings are
-- rejected; nesting is limited to 200 arrays/objects. JSON `null` decodes to
-- nil at the top level, drops the key inside objects and is an error inside
-- arrays (the value model has no holes). Duplicate object keys are an error.
-- Tagged objects (`$bytes`, `$float`, `$map`) decode back to the values
-- `encode` wrote; `{"$time": n}` is passed to `opts.time(n)` if given (its
-- result replaces the object; returning `nil, err` fails the decode), and is
-- otherwise kept as the table `{["$time"] = n}`. Other single-`$`-key
-- objects are kept as plain tables.
-- Never raises on malformed input (only on a non-string argument, or when
-- `opts.time` itself raises).
-- @tparam string str JSON text
-- @tparam[opt] table opts `{ time = function(n) ... end }`
-- @return[1] the value (nil for JSON `null`)
-- @treturn[2] nil
-- @treturn[2] string `"json: <what> at byte <n>"` (1-based byte offset)
function _M.decode(str, opts)
  if type(str) ~= "string" then
    error("bad argument #1 to 'decode' (string expected, got " .. type(str) .. ")", 2)
  end
  if opts ~= nil and type(opts) ~= "table" then
    error("bad argument #2 to 'decode' (table expected, got " .. type(opts) .. ")", 2)
  end
  local bad = find(str, "[\128-\255]") and utf8_bad(str)
  if bad then
    return nil, "json: invalid UTF-8 at byte " .. bad
  end
  local ok, v, pos = pcall(parse_value, str, skip_ws(str, 1), 0, opts)
  if not ok then
    if getmetatable(v) == DecodeError then return nil, v.msg end
    error(v, 0)
  end
  pos = skip_ws(str, pos)
  if pos <= #str then
    return nil, "json: trailing data at byte " .. pos
  end
  return v
end

return _M
