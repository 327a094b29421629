local json = require("cairn.json")

-- Every byte value 0..255, for binary-safety checks.
local ALL_BYTES
do
  local t = {}
  for i = 0, 255 do t[#t + 1] = string.char(i) end
  ALL_BYTES = table.concat(t)
end

-- Call `fn` from this file so `error(msg, 2)` blames this line; return the message.
local function error_of(fn, ...)
  local ok, err = pcall(fn, ...)
  assert.is_false(ok, "expected an error")
  return err
end

local function encode_error(v)
  -- not a tail call, so the error position names this file
  local ok, err = pcall(function() local s = json.encode(v); return s end)
  assert.is_false(ok, "expected encode to fail")
  return err
end

-- Deep equality that treats NaN as equal to NaN.
local function deep_equal(a, b, seen)
  if a ~= a and b ~= b then return true end
  if type(a) ~= "table" or type(b) ~= "table" then return a == b end
  seen = seen or {}
  if seen[a] == b then return true end
  seen[a] = b
  for k, v in pairs(a) do
    if not deep_equal(v, b[k], seen) then return false end
  end
  for k in pairs(b) do
    if a[k] == nil then return false end
  end
  return true
end

describe("cairn.json", function()
  it("has a version", function()
    assert.equals("0.1.0", json._VERSION)
  end)

  describe(".encode()", function()
    it("encodes scalars", function()
      assert.equals("null", json.encode(nil))
      assert.equals("true", json.encode(true))
      assert.equals("false", json.encode(false))
      assert.equals('"hi"', json.encode("hi"))
      assert.equals('""', json.encode(""))
    end)

    it("writes integral numbers as integers", function()
      assert.equals("42", json.encode(42))
      assert.equals("-7", json.encode(-7))
      assert.equals("0", json.encode(0))
      assert.equals("1000000000000000", json.encode(1e15))
      assert.equals("9007199254740992", json.encode(2 ^ 53))
      assert.equals("-9007199254740992", json.encode(-2 ^ 53))
    end)

    it("writes other finite numbers with %.17g", function()
      assert.equals("0.10000000000000001", json.encode(0.1))
      assert.equals("1.5", json.encode(1.5))
      assert.equals("1.0000000000000001e+300", json.encode(1e300))
      assert.equals("9007199254740994", json.encode(2 ^ 53 + 2))
      assert.equals("-0.25", json.encode(-0.25))
    end)

    it("tags NaN and infinities instead of failing", function()
      assert.equals('{"$float":"nan"}', json.encode(0 / 0))
      assert.equals('{"$float":"inf"}', json.encode(math.huge))
      assert.equals('{"$float":"-inf"}', json.encode(-math.huge))
    end)

    it("escapes quotes, backslashes and control characters", function()
      assert.equals([["a\"b\\c"]], json.encode('a"b\\c'))
      assert.equals([["\b\f\n\r\t"]], json.encode("\b\f\n\r\t"))
      assert.equals([["\u0000\u0001\u001f"]], json.encode("\0\1\31"))
      assert.equals('"/\127"', json.encode("/\127"))
    end)

    it("writes valid UTF-8 as is", function()
      assert.equals('"Zoë – 😀"', json.encode("Zoë – 😀"))
    end)

    it("writes strings that are not valid UTF-8 as $bytes", function()
      assert.equals('{"$bytes":"/w=="}', json.encode("\255"))
      assert.equals('{"$bytes":"wIA="}', json.encode("\192\128"))        -- overlong
      assert.equals('{"$bytes":"7aCA"}', json.encode("\237\160\128"))    -- surrogate
      assert.equals('{"$bytes":"9JCAgA=="}', json.encode("\244\144\128\128")) -- > U+10FFFF
      assert.equals('{"$bytes":"ww=="}', json.encode("\195"))              -- truncated
    end)

    it("never writes a newline, whatever the value", function()
      local out = json.encode({ ALL_BYTES, "a\nb", { ["x\ny"] = "\r\n" }, { [ "\n" ] = 1, [2] = 2 } })
      assert.is_nil(out:find("[\r\n]"))
    end)

    it("encodes arrays and treats an empty table as []", function()
      assert.equals("[1,2,3]", json.encode({ 1, 2, 3 }))
      assert.equals('[["a"],[]]', json.encode({ { "a" }, {} }))
      assert.equals("[]", json.encode({}))
    end)

    it("encodes string-keyed maps as objects with sorted keys", function()
      assert.equals('{"a":1,"b":[true],"c":{"d":"e"}}',
        json.encode({ c = { d = "e" }, a = 1, b = { true } }))
      assert.equals('{"B":1,"a":2}', json.encode({ a = 2, B = 1 }))
      assert.equals('{"a\\"b":1,"x\\ny":2}', json.encode({ ['a"b'] = 1, ["x\ny"] = 2 }))
    end)

    it("sorts many keys the same way as few", function()
      local t, keys = {}, {}
      for i = 1, 30 do
        local k = string.char(97 + (i * 7) % 26) .. i
        t[k] = i
        keys[#keys + 1] = k
      end
      table.sort(keys)
      local parts = {}
      for _, k in ipairs(keys) do parts[#parts + 1] = '"' .. k .. '":' .. t[k] end
      assert.equals("{" .. table.concat(parts, ",") .. "}", json.encode(t))
    end)

    it("is deterministic", function()
      local a = { z = 1, y = { 3, 2, 1 }, [5] = "five", [true] = false }
      local b = {}
      b[true] = false; b[5] = "five"; b.y = { 3, 2, 1 }; b.z = 1
      assert.equals(json.encode(a), json.encode(b))
    end)

    it("writes maps with non-string keys as sorted $map pairs", function()
      assert.equals('{"$map":[[1,"a"],[3,"b"]]}', json.encode({ [1] = "a", [3] = "b" }))
      assert.equals('{"$map":[[-1,0],[0.5,1],[2,2],["a",3],[false,4],[true,5]]}',
        json.encode({ [2] = 2, a = 3, [true] = 5, [false] = 4, [0.5] = 1, [-1] = 0 }))
      assert.equals('{"$map":[[1,"x"],[2,"y"],["n",1]]}', json.encode({ "x", "y", n = 1 }))
      assert.equals('{"$map":[[{"$float":"-inf"},1],[{"$float":"inf"},2]]}',
        json.encode({ [math.huge] = 2, [-math.huge] = 1 }))
    end)

    it("escapes a map whose only key starts with $ via $map", function()
      assert.equals('{"$map":[["$bytes","x"]]}', json.encode({ ["$bytes"] = "x" }))
      assert.equals('{"$map":[["$time",5]]}', json.encode({ ["$time"] = 5 }))
      -- with other keys it is not a tag, so it stays a plain object
      assert.equals('{"$bytes":"x","a":1}', json.encode({ ["$bytes"] = "x", a = 1 }))
    end)

    it("writes maps with a non-UTF-8 key as $map", function()
      assert.equals('{"$map":[["a",1],[{"$bytes":"/w=="},2]]}', json.encode({ a = 1, ["\255"] = 2 }))
    end)

    it("encodes what a __cairn_json hook returns", function()
      local mt = { __cairn_json = function(self) return { ["$time"] = self.ms } end }
      local ts = setmetatable({ ms = 123 }, mt)
      assert.equals('{"$time":123}', json.encode(ts))
      assert.equals('{"at":{"$time":123}}', json.encode({ at = ts }))
      -- hooks may return any value, including scalars
      local upper = setmetatable({}, { __cairn_json = function() return "X" end })
      assert.equals('["X"]', json.encode({ upper }))
    end)

    it("honours the hook behind a protected metatable", function()
      local p = setmetatable({}, { __metatable = false, __cairn_json = function() return 1 end })
      assert.equals("1", json.encode(p))
    end)

    it("encodes the raw contents of tables with other metatables", function()
      local t = setmetatable({ a = 1 }, { __index = function() return "dflt" end })
      assert.equals('{"a":1}', json.encode(t))
    end)

    it("allows shared (non-cyclic) subtables", function()
      local shared = { 1 }
      assert.equals("[[1],[1]]", json.encode({ shared, shared }))
    end)

    it("raises on cycles", function()
      local t = {}
      t.self = t
      assert.matches("json: cycle in value at %.self", encode_error(t))
      local a = { list = {} }
      a.list[1] = a
      assert.matches("cycle in value at %.list%[1%]", encode_error(a))
    end)

    it("raises on a hook that returns its own argument", function()
      local t = setmetatable({}, { __cairn_json = function(self) return self end })
      assert.matches("cycle in value", encode_error(t))
    end)

    it("raises on functions with the type and path", function()
      local err = encode_error({ a = { b = { 1, print } } })
      assert.matches("json: cannot encode function at %.a%.b%[2%]", err)
      assert.matches("cannot encode function at %.$", encode_error(print))
      assert.matches('cannot encode function at %["a b"%]', encode_error({ ["a b"] = print }))
      assert.matches('cannot encode function at %["a\\nb"%]$', encode_error({ ["a\nb"] = print }))
    end)

    it("raises on userdata, threads and cdata", function()
      assert.matches("cannot encode userdata at %.x", encode_error({ x = newproxy() }))
      assert.matches("cannot encode thread at %[1%]", encode_error({ coroutine.create(print) }))
      local ffi = require("ffi")
      assert.matches("cannot encode cdata at %.n", encode_error({ n = ffi.new("int64_t", 1) }))
    end)

    it("raises on keys that are not strings, numbers or booleans", function()
      assert.matches("cannot encode table key at %.m", encode_error({ m = { [{}] = 1 } }))
    end)

    it("raises at the caller's level", function()
      local err = encode_error({ print })
      assert.matches("^spec/stdlib_json_spec%.lua:%d+: json: cannot encode function", err)
    end)

    it("lets errors from hooks propagate unchanged", function()
      local t = setmetatable({}, { __cairn_json = function() error({ code = 7 }) end })
      local ok, err = pcall(json.encode, t)
      assert.is_false(ok)
      assert.same({ code = 7 }, err)
    end)

    it("limits nesting to what decode accepts", function()
      local function nest(n)
        local v = {}
        for _ = 1, n - 1 do v = { v } end
        return v
      end
      assert.truthy(json.decode(json.encode(nest(200))))
      assert.matches("nesting deeper than 200", encode_error(nest(201)))
      -- tags count as a level too
      local deep = nest(199)
      local inner = deep
      while inner[1] do inner = inner[1] end
      inner[1] = { "\255" }
      assert.matches("nesting deeper than 200", encode_error(deep))
      inner[1] = "\255"
      assert.truthy(json.decode(json.encode(deep)))
    end)
  end)

  describe(".decode()", function()
    it("decodes scalars", function()
      assert.is_nil((json.decode("null")))
      assert.is_true(json.decode("true"))
      assert.is_false(json.decode("false"))
      assert.equals(42, json.decode("42"))
      assert.equals(-0.5, json.decode("-0.5"))
      assert.equals(1e-3, json.decode("1E-3"))
      assert.equals(120, json.decode("1.2e+2"))
      assert.equals("x", json.decode('"x"'))
    end)

    it("returns nil without error for top-level null", function()
      local v, err = json.decode(" null ")
      assert.is_nil(v)
      assert.is_nil(err)
    end)

    it("skips JSON whitespace around values", function()
      assert.same({ a = { 1, 2 } }, json.decode(' \t\r\n{ "a" : [ 1 , 2 ] } \n'))
    end)

    it("decodes escapes", function()
      assert.equals('"\\/\b\f\n\r\t', json.decode([["\"\\\/\b\f\n\r\t"]]))
      assert.equals("\0A\127", json.decode([["\u0000\u0041\u007F"]]))
      assert.equals("é€", json.decode([["\u00e9\u20AC"]]))
    end)

    it("joins surrogate pairs into UTF-8", function()
      assert.equals("😀", json.decode([["\ud83d\ude00"]]))
      assert.equals("\244\143\191\191", json.decode([["\uDBFF\uDFFF"]]))
    end)

    it("accepts raw UTF-8", function()
      assert.equals("Zoë – 😀", json.decode('"Zoë – 😀"'))
    end)

    it("decodes arrays and objects", function()
      assert.same({ 1, "a", { true }, {} }, json.decode('[1,"a",[true],{}]'))
      assert.same({ a = { b = { c = false } } }, json.decode('{"a":{"b":{"c":false}}}'))
      assert.same({}, json.decode("[]"))
      assert.same({}, json.decode("{}"))
    end)

    it("drops object keys whose value is null", function()
      assert.same({ b = 2 }, json.decode('{"a":null,"b":2}'))
    end)

    it("decodes tagged objects", function()
      assert.equals("\255\0", json.decode('{"$bytes":"/wA="}'))
      assert.equals("", json.decode('{"$bytes":""}'))
      local nan = json.decode('{"$float":"nan"}')
      assert.is_true(nan ~= nan)
      assert.equals(math.huge, json.decode('{"$float":"inf"}'))
      assert.equals(-math.huge, json.decode('{"$float":"-inf"}'))
      assert.same({ [1] = "a", [true] = { 2 }, x = 1 }, json.decode('{"$map":[[1,"a"],[true,[2]],["x",1]]}'))
      assert.same({}, json.decode('{"$map":[]}'))
    end)

    it("keeps other $-keyed objects as tables", function()
      assert.same({ ["$other"] = 1 }, json.decode('{"$other":1}'))
      assert.same({ ["$bytes"] = "!", a = 1 }, json.decode('{"$bytes":"!","a":1}'))
    end)

    it("keeps $time as a table without a hook", function()
      assert.same({ ["$time"] = 123 }, json.decode('{"$time":123}'))
    end)

    it("passes $time to opts.time", function()
      local seen
      local v = json.decode('{"at":{"$time":123}}', {
        time = function(n) seen = n; return "T" .. n end,
      })
      assert.equals(123, seen)
      assert.same({ at = "T123" }, v)
    end)

    it("fails when opts.time rejects the value", function()
      local v, err = json.decode('[{"$time":"x"}]', {
        time = function(n) if type(n) ~= "number" then return nil, "not a number" end return n end,
      })
      assert.is_nil(v)
      assert.equals("json: invalid $time value (not a number) at byte 2", err)
    end)

    it("reports the byte position of errors", function()
      local cases = {
        { "",              "unexpected end of input at byte 1" },
        { "   ",           "unexpected end of input at byte 4" },
        { "[1,2",          "unexpected end of input at byte 5" },
        { "[1 2]",         "expected ',' or ']' at byte 4" },
        { "[1,]",          "unexpected character ']' at byte 4" },
        { '{"a":1,}',      "expected string key at byte 8" },
        { '{"a" 1}',       "expected ':' at byte 6" },
        { "{'a':1}",       "expected string key at byte 2" },
        { "01",            "leading zero in number at byte 1" },
        { "[-01]",         "leading zero in number at byte 2" },
        { "1.",            "expected digit after '.' at byte 3" },
        { "1e",            "expected digit in exponent at byte 3" },
        { "-",             "invalid number at byte 1" },
        { "+1",            "unexpected character '+' at byte 1" },
        { ".5",            "unexpected character '.' at byte 1" },
        { "tru",           "invalid literal at byte 1" },
        { "nul",           "invalid literal at byte 1" },
        { "1 2",           "trailing data at byte 3" },
        { "[1]x",          "trailing data at byte 4" },
        { '"abc',          "unterminated string at byte 1" },
        { '"a\nb"',        "control character in string at byte 3" },
        { '"\\x"',         "invalid escape at byte 2" },
        { '"\\u12"',       "invalid \\u escape at byte 2" },
        { '"\\ud83d"',     "lone surrogate at byte 2" },
        { '"\\ude00"',     "lone surrogate at byte 2" },
        { '"\\ud83d\\u0041"', "lone surrogate at byte 2" },
        { '"\255"',        "invalid UTF-8 at byte 2" },
        { '"\237\160\128"', "invalid UTF-8 at byte 2" },
        { "[1,null]",      "null in array element 2 at byte 4" },
        { '{"a":1,"a":2}', "duplicate key at byte 8" },
        { '{"a":null,"a":2}', "duplicate key at byte 11" },
        { "/* c */ 1",     "unexpected character '/' at byte 1" },
        { "\239\187\191 1", "unexpected character 0xEF at byte 1" },
        { '{"$bytes":"!!!!"}', "invalid $bytes value (base64: invalid character at offset 1) at byte 1" },
        { '{"$bytes":1}',  "$bytes value must be a string at byte 1" },
        { '{"$float":"NaN"}', "$float value must be \"nan\", \"inf\" or \"-inf\" at byte 1" },
        { '{"$map":1}',    "$map value must be an array of pairs at byte 1" },
        { '{"$map":{"a":1}}', "$map value must be an array of pairs at byte 1" },
        { '{"$map":[[1]]}', "$map entry 1 is not a [key, value] pair at byte 1" },
        { '{"$map":[[1,2,3]]}', "$map entry 1 is not a [key, value] pair at byte 1" },
        { '{"$map":[[[1],2]]}', "$map key 1 has invalid type table at byte 1" },
        { '{"$map":[[1,2],[1,3]]}', "duplicate key in $map entry 2 at byte 1" },
        { '{"$map":[[{"$float":"nan"},1]]}', "$map key 1 is NaN at byte 1" },
      }
      for _, case in ipairs(cases) do
        local v, err = json.decode(case[1])
        assert.is_nil(v, case[1])
        assert.equals("json: " .. case[2], err, "input: " .. case[1])
      end
    end)

    it("limits nesting depth to 200", function()
      assert.truthy(json.decode(string.rep("[", 200) .. string.rep("]", 200)))
      local v, err = json.decode(string.rep("[", 201) .. string.rep("]", 201))
      assert.is_nil(v)
      assert.equals("json: nesting deeper than 200 at byte 201", err)
      v, err = json.decode(string.rep('{"a":', 201) .. "1" .. string.rep("}", 201))
      assert.is_nil(v)
      assert.matches("nesting deeper than 200 at byte %d+", err)
    end)

    it("survives very deep and very long input without raising", function()
      local v, err = json.decode(string.rep("[", 1000000))
      assert.is_nil(v)
      assert.matches("byte", err)
      v, err = json.decode('"' .. string.rep("a", 1000000))
      assert.is_nil(v)
      assert.equals("json: unterminated string at byte 1", err)
    end)

    it("never raises on mutated input", function()
      local base = json.encode({ a = { 1, 2.5, "x\ny" }, b = { ["$time"] = 1 }, c = "\255",
        d = { [1] = true, [3] = false }, e = 0 / 0, f = "😀" })
      local chars = '[]{}",:\\-+.0123456789eEtrufalsn \t\1\255$u'
      math.randomseed(1234)
      for _ = 1, 3000 do
        local s = base
        for _ = 1, math.random(1, 4) do
          local p = math.random(1, #s)
          local r = math.random(1, 3)
          local k = math.random(1, #chars)
          local c = chars:sub(k, k)
          if r == 1 then s = s:sub(1, p - 1) .. s:sub(p + 1)          -- delete
          elseif r == 2 then s = s:sub(1, p - 1) .. c .. s:sub(p)    -- insert
          else s = s:sub(1, p - 1) .. c .. s:sub(p + 1) end          -- replace
        end
        local ok, v, err = pcall(json.decode, s)
        assert.is_true(ok, "raised on: " .. s)
        if v == nil and err ~= nil then
          assert.matches("^json: .* at byte %d+$", err)
        end
      end
    end)

    it("raises on a non-string argument", function()
      assert.matches("string expected, got number", error_of(json.decode, 42))
      assert.matches("table expected, got number", error_of(json.decode, "1", 5))
    end)
  end)

  describe("round-trip", function()
    local ts_mt = { __cairn_json = function(self) return { ["$time"] = self.ms } end }
    local values = {
      { "nil", nil },
      { "true", true },
      { "false", false },
      { "zero", 0 },
      { "int", 42 },
      { "negative int", -7 },
      { "2^53", 2 ^ 53 },
      { "-2^53", -2 ^ 53 },
      { "2^53 + 2", 2 ^ 53 + 2 },
      { "0.1", 0.1 },
      { "1/3", 1 / 3 },
      { "1e300", 1e300 },
      { "-1e-300", -1e-300 },
      { "5e-324", 5e-324 },
      { "max double", 1.7976931348623157e308 },
      { "nan", 0 / 0 },
      { "inf", math.huge },
      { "-inf", -math.huge },
      { "empty string", "" },
      { "utf-8", "Zoë – 😀" },
      { "all 256 bytes", ALL_BYTES },
      { "NUL only", "\0" },
      { "each single byte", (function()
          local t = {}
          for i = 0, 255 do t[i + 1] = string.char(i) end
          return t
        end)() },
      { "empty table", {} },
      { "array", { 1, "two", 3.5, true } },
      { "nested", { a = { b = { c = { 1, { 2, { 3 } } } } }, d = {} } },
      { "single $ key", { ["$bytes"] = "not base64!" } },
      { "single $time key", { ["$time"] = 5 } },
      { "single $map key", { ["$map"] = { { 1, 2 } } } },
      { "sparse array", { [1] = "a", [3] = "b" } },
      { "number keys", { [1.5] = "x", [-3] = "y", [2 ^ 53] = "z" } },
      { "boolean keys", { [true] = 1, [false] = 0 } },
      { "inf keys", { [math.huge] = 1, [-math.huge] = 2 } },
      { "mixed keys", { "a", "b", n = 2, [10] = "ten" } },
      { "binary keys", { ["\255\254"] = ALL_BYTES, ok = "yes" } },
      { "binary $ key", { ["$\255"] = 1 } },
      { "tables as values in $map", { [1] = { x = { [2] = "y" } }, [5] = { {} } } },
      { "event", {
          id = 12345, stream = "orders-42", type = "OrderPlaced",
          payload = { items = { { sku = "A-1", qty = 2, price = 9.99 } }, note = "l1\nl2\t\"q\"" },
        } },
    }

    for _, case in ipairs(values) do
      it("preserves " .. case[1], function()
        local text = json.encode(case[2])
        local back, err = json.decode(text)
        assert.is_nil(err)
        assert.is_true(deep_equal(case[2], back), "mismatch for " .. text)
        -- and the text is stable across a second trip
        assert.equals(text, json.encode(back))
      end)
    end

    it("decodes hooked timestamps through opts.time", function()
      local function ts(ms) return setmetatable({ ms = ms }, ts_mt) end
      local text = json.encode({ at = ts(1700000000123), list = { ts(1), ts(2) } })
      assert.equals('{"at":{"$time":1700000000123},"list":[{"$time":1},{"$time":2}]}', text)
      local back = json.decode(text, { time = ts })
      assert.equals(ts_mt, getmetatable(back.at))
      assert.equals(1700000000123, back.at.ms)
      assert.equals(2, back.list[2].ms)
      assert.equals(text, json.encode(back))
    end)

    it("loses only the sign of -0", function()
      assert.equals(0, json.decode(json.encode(-0.0)))
    end)
  end)

  describe(".base64_encode()", function()
    it("matches the RFC 4648 test vectors", function()
      local vectors = { [""] = "", f = "Zg==", fo = "Zm8=", foo = "Zm9v", foob = "Zm9vYg==",
        fooba = "Zm9vYmE=", foobar = "Zm9vYmFy" }
      for plain, coded in pairs(vectors) do
        assert.equals(coded, json.base64_encode(plain))
      end
    end)

    it("uses the standard alphabet", function()
      assert.equals("+/8=", json.base64_encode("\251\255"))
    end)
  end)

  describe(".base64_decode()", function()
    it("decodes the RFC 4648 test vectors", function()
      local vectors = { [""] = "", f = "Zg==", fo = "Zm8=", foo = "Zm9v", foob = "Zm9vYg==",
        fooba = "Zm9vYmE=", foobar = "Zm9vYmFy" }
      for plain, coded in pairs(vectors) do
        assert.equals(plain, json.base64_decode(coded))
      end
    end)

    it("round-trips every byte value at every alignment", function()
      for shift = 0, 2 do
        local s = ALL_BYTES:sub(1 + shift)
        assert.equals(s, json.base64_decode(json.base64_encode(s)))
      end
    end)

    it("returns nil and a message on bad input", function()
      local cases = {
        { "Zg=",      "length 3 is not a multiple of 4" },
        { "Zg",       "length 2 is not a multiple of 4" },
        { "Z!==",     "invalid character at offset 2" },
        { "Zg==Zg==", "invalid character at offset 3" },  -- padding in the middle
        { "Z===",     "invalid character at offset 2" },
        { "Zm9v\n",   "length 5 is not a multiple of 4" },
        { "Zm 9",     "invalid character at offset 3" },
        { "Zh==",     "non-zero padding bits at offset 2" },
        { "Zm9=",     "non-zero padding bits at offset 3" },
        { "Zg=a",     "invalid character at offset 3" },
        { "-_==",     "invalid character at offset 1" },
      }
      for _, case in ipairs(cases) do
        local v, err = json.base64_decode(case[1])
        assert.is_nil(v, case[1])
        assert.equals("base64: " .. case[2], err, "input: " .. case[1])
      end
      local v, err = json.base64_decode(42)
      assert.is_nil(v)
      assert.equals("base64: expected a string, got number", err)
    end)
  end)

  describe(".is_utf8()", function()
    it("accepts valid and rejects invalid UTF-8", function()
      assert.is_true(json.is_utf8("plain"))
      assert.is_true(json.is_utf8("é€😀\239\191\191\244\143\191\191"))
      assert.is_false(json.is_utf8("\128"))
      assert.is_false(json.is_utf8("\193\191"))          -- overlong 2-byte
      assert.is_false(json.is_utf8("\224\159\191"))      -- overlong 3-byte
      assert.is_false(json.is_utf8("\240\143\191\191"))  -- overlong 4-byte
      assert.is_false(json.is_utf8("\237\191\191"))      -- surrogate
      assert.is_false(json.is_utf8("\195"))              -- truncated
      assert.is_false(json.is_utf8("\248\136\128\128\128"))
    end)
  end)
end)
