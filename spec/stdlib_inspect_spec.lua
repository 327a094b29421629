local insp = require("cairn.inspect")
local inspect = insp.inspect

describe("cairn.inspect", function()
  it("has a version", function()
    assert.equals("0.1.0", insp._VERSION)
  end)

  describe(".inspect()", function()
    it("prints scalars as Lua", function()
      assert.equals("nil", inspect(nil))
      assert.equals("true", inspect(true))
      assert.equals("false", inspect(false))
      assert.equals("42", inspect(42))
      assert.equals("-7", inspect(-7))
      assert.equals("9007199254740992", inspect(2 ^ 53))
    end)

    it("prints floats in the shortest form that reads back exactly", function()
      assert.equals("0.1", inspect(0.1))
      assert.equals("1.5", inspect(1.5))
      assert.equals("0.3333333333333333", inspect(1 / 3))
      assert.equals("1e+300", inspect(1e300))
      assert.equals(1 / 3, tonumber(inspect(1 / 3)))
    end)

    it("prints non-finite numbers as Lua expressions", function()
      assert.equals("0/0", inspect(0 / 0))
      assert.equals("math.huge", inspect(math.huge))
      assert.equals("-math.huge", inspect(-math.huge))
    end)

    it("quotes strings on one line", function()
      assert.equals('"hi"', inspect("hi"))
      assert.equals('""', inspect(""))
      assert.equals([["a\nb\r\tc"]], inspect("a\nb\r\tc"))
      assert.equals([["say \"hi\" \\ bye"]], inspect('say "hi" \\ bye'))
      assert.equals([["\0\1\127\a\b\f\v"]], inspect("\0\1\127\a\b\f\v"))
    end)

    it("pads decimal escapes before digits so they read back", function()
      local s = "\0" .. "1\0012"
      local shown = inspect(s)
      assert.equals([["\0001\0012"]], shown)
      assert.equals(s, loadstring("return " .. shown)())
    end)

    it("shows valid UTF-8 as is and escapes invalid bytes", function()
      assert.equals('"Zoë 😀"', inspect("Zoë 😀"))
      assert.equals([["\255\195"]], inspect("\255\195"))
      assert.equals([["é\237\160\128"]], inspect("é\237\160\128"))
    end)

    it("produces strings that load back as the same bytes", function()
      local t = {}
      for i = 0, 255 do t[#t + 1] = string.char(i) end
      local all = table.concat(t)
      local shown = inspect(all)
      assert.is_nil(shown:find("\n"))
      assert.equals(all, loadstring("return " .. shown)())
    end)

    it("prints tables as constructors, array part first", function()
      assert.equals('{ 1, 2, name = "Fido", tricks = { "roll" } }',
        inspect({ 1, 2, name = "Fido", tricks = { "roll" } }))
      assert.equals("{}", inspect({}))
      assert.equals("{ {}, { {} } }", inspect({ {}, { {} } }))
    end)

    it("sorts keys: numbers, strings, booleans, then others", function()
      assert.equals('{ "a", [3] = "c", [10] = "ten", b = 1, z = 2, [false] = 0, [true] = 1 }',
        inspect({ "a", [3] = "c", [10] = "ten", z = 2, b = 1, [true] = 1, [false] = 0 }))
      assert.equals("{ [-1.5] = 0, [2] = 2 }", inspect({ [2] = 2, [-1.5] = 0 }))
    end)

    it("brackets keys that are not identifiers", function()
      assert.equals('{ ["1x"] = 3, _ok = 4, ["a b"] = 1, ["end"] = 2, ["é"] = 5 }',
        inspect({ ["a b"] = 1, ["end"] = 2, ["1x"] = 3, _ok = 4, ["é"] = 5 }))
      assert.equals('{ ["a\\nb"] = 1 }', inspect({ ["a\nb"] = 1 }))
    end)

    it("prints functions, userdata, threads and cdata in angle brackets", function()
      local f = function() end
      assert.equals("<" .. tostring(f) .. ">", inspect(f))
      assert.matches("^<function: ", inspect(f))
      assert.matches("^<userdata: ", inspect(newproxy()))
      assert.matches("^<thread: ", inspect(coroutine.create(f)))
      local ffi = require("ffi")
      assert.matches("^<cdata<struct %d+>: ", inspect(ffi.new("struct { int x; }")))
      assert.equals("{ n = 1LL }", inspect({ n = 1LL }))
      assert.matches("^{ %[<function: [^>]+>%] = 1 }$", inspect({ [f] = 1 }))
    end)

    it("uses __tostring verbatim", function()
      local T = setmetatable({ x = 1 }, { __tostring = function() return "Point(1)" end })
      assert.equals("Point(1)", inspect(T))
      assert.equals("{ p = Point(1) }", inspect({ p = T }))
    end)

    it("shows what __cairn_inspect returns instead of the value", function()
      local fields = { name = "Fido", age = 3 }
      local proxy = setmetatable({}, {
        __index = fields,
        __newindex = function() error("read-only") end,
        __cairn_inspect = function() return fields end,
        __metatable = false,
      })
      assert.equals('{ age = 3, name = "Fido" }', inspect(proxy))
      assert.equals('{ dog = { age = 3, name = "Fido" } }', inspect({ dog = proxy }))
    end)

    it("prefers __cairn_inspect over __tostring", function()
      local v = setmetatable({}, {
        __tostring = function() return "X" end,
        __cairn_inspect = function() return { 1 } end,
      })
      assert.equals("{ 1 }", inspect(v))
    end)

    it("shows errors from metamethods instead of raising", function()
      local bad = setmetatable({}, { __tostring = function() error("boom", 0) end })
      assert.equals("<error in __tostring: boom>", inspect(bad))
      local bad2 = setmetatable({}, { __cairn_inspect = function() error("bang", 0) end })
      assert.equals("<error in __cairn_inspect: bang>", inspect(bad2))
      local bad3 = setmetatable({}, { __cairn_inspect = function() return 1 end })
      assert.equals("<__cairn_inspect returned number>", inspect(bad3))
    end)

    it("prints raw contents of tables with an __index", function()
      local t = setmetatable({ a = 1 }, { __index = function() return "dflt" end })
      assert.equals("{ a = 1 }", inspect(t))
    end)

    it("prints cycles as <cycle>", function()
      local t = { name = "loop" }
      t.self = t
      assert.equals('{ name = "loop", self = <cycle> }', inspect(t))
      local a, b = {}, {}
      a[1], b[1] = b, a
      assert.equals("{ { <cycle> } }", inspect(a))
    end)

    it("prints shared subtables in full each time", function()
      local s = { 1 }
      assert.equals("{ { 1 }, { 1 } }", inspect({ s, s }))
    end)

    it("detects cycles through __cairn_inspect proxies", function()
      local proxy
      proxy = setmetatable({}, { __cairn_inspect = function() return { me = proxy } end })
      assert.equals("{ me = <cycle> }", inspect(proxy))
      local shown = {}
      shown.again = shown
      local p2 = setmetatable({}, { __cairn_inspect = function() return shown end })
      assert.equals("{ again = <cycle> }", inspect(p2))
    end)

    it("limits nesting to 6 levels by default", function()
      local v = { a = { b = { c = { d = { e = { f = { g = 1 } } } } } } }
      assert.equals("{ a = { b = { c = { d = { e = { f = {...} } } } } } }", inspect(v))
    end)

    it("takes the depth limit from opts.depth", function()
      local v = { 1, { 2, { 3 } }, {} }
      assert.equals("{ 1, {...}, {} }", inspect(v, { depth = 1 }))
      assert.equals("{ 1, { 2, {...} }, {} }", inspect(v, { depth = 2 }))
      assert.equals("{...}", inspect(v, { depth = 0 }))
      assert.equals("{}", inspect({}, { depth = 0 }))
    end)

    it("breaks tables longer than 80 columns over lines with 2-space indent", function()
      local v = {
        name = "a fairly long name that takes up room",
        tags = { "one", "two", "three" },
        nested = { deeper = { "x", string.rep("y", 70) } },
      }
      local expected = table.concat({
        "{",
        '  name = "a fairly long name that takes up room",',
        "  nested = {",
        "    deeper = {",
        '      "x",',
        '      "' .. string.rep("y", 70) .. '"',
        "    }",
        "  },",
        '  tags = { "one", "two", "three" }',
        "}",
      }, "\n")
      assert.equals(expected, inspect(v))
    end)

    it("keeps a table on one line when it fits exactly", function()
      local s = string.rep("x", 74)
      local v = { s }                                  -- '{ "x...x" }' is 4 + 76 = 80
      assert.equals('{ "' .. s .. '" }', inspect(v))
      assert.equals(80, #inspect(v))
      v = { string.rep("x", 75) }                      -- 81 columns: wrap
      assert.equals('{\n  "' .. string.rep("x", 75) .. '"\n}', inspect(v))
    end)

    it("takes the width from opts.width", function()
      assert.equals("{ 1, 2, 3 }", inspect({ 1, 2, 3 }, { width = 11 }))
      assert.equals("{\n  1,\n  2,\n  3\n}", inspect({ 1, 2, 3 }, { width = 10 }))
    end)

    it("counts the key and indentation when choosing a nested layout", function()
      local v = { key = { "abcdef", "ghijkl" } }
      -- '  key = { "abcdef", "ghijkl" }' is 30 columns
      assert.equals('{\n  key = { "abcdef", "ghijkl" }\n}', inspect(v, { width = 30 }))
      assert.equals('{\n  key = {\n    "abcdef",\n    "ghijkl"\n  }\n}', inspect(v, { width = 29 }))
    end)

    it("raises on bad options", function()
      local ok, err = pcall(inspect, 1, 5)
      assert.is_false(ok)
      assert.matches("bad argument #2 to 'inspect' %(table expected, got number%)", err)
      ok, err = pcall(inspect, 1, { width = "wide" })
      assert.is_false(ok)
      assert.matches("bad argument #2 to 'inspect' %(width and depth must be numbers%)", err)
    end)
  end)

  describe(".inspect_all()", function()
    it("joins all values with tabs", function()
      assert.equals('1\t"a"\t{ 2 }', insp.inspect_all(1, "a", { 2 }))
    end)

    it("keeps nils, including trailing ones", function()
      assert.equals("nil\t1\tnil", insp.inspect_all(nil, 1, nil))
    end)

    it("returns an empty string for no values", function()
      assert.equals("", insp.inspect_all())
    end)
  end)
end)
