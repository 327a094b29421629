-- The value rules of API.md §2: what event fields may carry, through a real store.
local cairn = require "cairn"
local core = require "cairn.core"
local ffi = require "ffi"
local helper = require "helper"

local errors = cairn.errors
local error_of = helper.error_of

local ALL_BYTES
do
  local t = {}
  for i = 0, 255 do t[#t + 1] = string.char(i) end
  ALL_BYTES = table.concat(t)
end

local Box = cairn.aggregate("Box")
Box:created("Made", function(self) self.value = nil end)
Box.put = Box:event("Put", function(self, value) self.value = value end)
Box:event("Many", function(self) end) -- luacheck: ignore 212

local Store = cairn.application("Values")

local function nested(depth, leaf)
  local v = leaf
  for _ = 1, depth do v = { v } end
  return v
end

local function is_integer(x)
  return type(x) == "number" and math.floor(x) == x
end

-- the SchemaError raised by putting v into a saved box, checked to leave nothing behind
local function refusal(app, v)
  local box = Box()
  app:save(box)
  local max = app:max_notification_id()
  local err = error_of(box.put, box, v)
  assert.is_true(errors.is(err, "SchemaError"), "expected a SchemaError, got " .. tostring(err))
  assert.are.equal(1, box.version)
  assert.are.same({}, app:save(box))
  assert.are.equal(max, app:max_notification_id())
  return err
end

describe("cairn.aggregate", function()
  helper.each_store(function(ctx)
    local app

    before_each(function()
      app = ctx.open(Store)
    end)

    -- store v in a new box and read it back three ways: as applied when triggered,
    -- as replayed by the repository, and as the event in the log
    local function roundtrip(v)
      local box = Box()
      local ev = box:put(v)
      local recordings = app:save(box)
      local got = app.repository:get(box.id).value
      local logged = app.log:select(recordings[2].notification_id, 1)[1].event.value
      return got, ev.value, logged
    end

    local function assert_roundtrip(v)
      local got, applied, logged = roundtrip(v)
      assert.are.same(v, got)
      assert.are.same(v, applied)
      assert.are.same(v, logged)
      return got
    end

    describe(":trigger() and the store round-trip", function()
      it("nested arrays and maps", function()
        assert_roundtrip({ 1, 2, { 3, { 4, 5 } }, { a = { b = { c = "d" } } } })
        assert_roundtrip({ name = "Fido", tricks = { "roll", "sit" }, owner = { name = "Ann", age = 40 } })
        assert_roundtrip({ { {} }, {}, { x = {} } })
      end)

      it("maps with number keys and mixed keys", function()
        assert_roundtrip({ [1] = "a", [3] = "c" })
        assert_roundtrip({ 1, nil, 3 })
        assert_roundtrip({ [-1] = "minus", [0] = "zero", [1.5] = "half", [2 ^ 40] = "big" })
        assert_roundtrip({ "one", "two", x = "ex" })
        local got = assert_roundtrip({ ["1"] = "string key", [1] = "number key" })
        assert.are.equal("string key", got["1"])
        assert.are.equal("number key", got[1])
      end)

      it("booleans", function()
        assert.is_true((roundtrip(true)))
        assert.is_false((roundtrip(false)))
        assert_roundtrip({ true, false, yes = true, no = false })
      end)

      it("nil", function()
        local got, applied, logged = roundtrip(nil)
        assert.is_nil(got)
        assert.is_nil(applied)
        assert.is_nil(logged)
      end)

      it("integers up to 2^53 in magnitude, as integers", function()
        for _, n in ipairs { 0, 1, -1, 127, 128, 255, 256, -32, -33, 65535, 65536, 2 ^ 31 - 1, 2 ^ 31,
                             2 ^ 32, -2 ^ 31 - 1, 2 ^ 53 - 1, 2 ^ 53, -2 ^ 53, 1e15 } do
          local got, applied = roundtrip(n)
          assert.is_true(is_integer(got), tostring(got))
          assert.are.equal(n, got)
          assert.are.equal(n, applied)
        end
      end)

      it("floats", function()
        for _, x in ipairs { 0.1, 1e300, -2.5, 1e-300, 2 ^ 53 + 2, -1e100, 1 / 3, math.huge, -math.huge } do
          local got, applied, logged = roundtrip(x)
          assert.are.equal(x, got)
          assert.are.equal(x, applied)
          assert.are.equal(x, logged)
        end
        local nan = roundtrip(0 / 0)
        assert.is_true(nan ~= nan)
      end)

      it("negative zero, keeping its sign", function()
        local got = roundtrip(-0.0)
        assert.are.equal(-math.huge, 1 / got)
      end)

      it("binary-safe strings: all 256 byte values and embedded NULs", function()
        assert_roundtrip(ALL_BYTES)
        assert_roundtrip("a\0b\0\0c")
        assert_roundtrip("\0")
        assert_roundtrip("")
        assert_roundtrip(string.rep(ALL_BYTES, 300))
        assert_roundtrip({ [ALL_BYTES] = ALL_BYTES:reverse() })
      end)

      it("UUID strings, canonical ones as they are", function()
        local id = cairn.uuid.v4()
        assert.are.equal(id, (roundtrip(id)))
        assert_roundtrip({ id, { owner = id } })
        -- upper case is not canonical: the string comes back exactly as given
        assert.are.equal(id:upper(), (roundtrip(id:upper())))
        local nearly = id:sub(1, 35) .. "g"
        assert.are.equal(nearly, (roundtrip(nearly)))
      end)

      it("cairn.time values", function()
        local now = cairn.time.now()
        local got, applied, logged = roundtrip(now)
        assert.is_true(cairn.time.is_time(got))
        assert.is_true(cairn.time.is_time(applied))
        assert.is_true(cairn.time.is_time(logged))
        assert.is_true(got == now)
        assert.are.equal(now.us, got.us)
        for _, t in ipairs { cairn.time.from_us(0), cairn.time.from_us(-1234567), cairn.time.from_us(2 ^ 53) } do
          local back = roundtrip(t)
          assert.is_true(back == t, tostring(back) .. " ~= " .. tostring(t))
        end
        local list = roundtrip({ when = now, log = { now, now } })
        assert.is_true(list.when == now and list.log[2] == now)
      end)

      it("empty tables", function()
        assert.are.same({}, (roundtrip({})))
        assert.are.same({ {}, { a = {} } }, (roundtrip({ {}, { a = {} } })))
      end)

      it("a table referenced twice (not a cycle)", function()
        local shared = { 1, 2 }
        local got = roundtrip({ a = shared, b = shared })
        assert.are.same({ a = { 1, 2 }, b = { 1, 2 } }, got)
      end)

      it("nesting up to the deepest level the encoder accepts", function()
        local deepest
        for depth = 1, 80 do
          if not pcall(core.encode, { value = nested(depth, "leaf") }) then break end
          deepest = depth
        end
        assert.is_true(deepest >= 60 and deepest <= 64, "deepest accepted nesting " .. tostring(deepest))
        local v = nested(deepest, "leaf")
        assert_roundtrip(v)
        assert_roundtrip(nested(deepest - 1, {})) -- the innermost {} is the deepest table
      end)

      it("events with many fields, all values kinds at once", function()
        local box = Box()
        local id = cairn.uuid.v4()
        local fields = { s = ALL_BYTES, n = 2 ^ 53, f = 0.1, b = false, t = cairn.time.from_us(42), u = id,
                         list = { 1, "two", { three = 3 } } }
        box:trigger("Many", fields)
        app:save(box)
        local ev = app.log:select(2, 1)[1].event
        local got = cairn.event_fields(ev)
        assert.are.same(fields, got)
      end)
    end)

    describe(":trigger() refuses", function()
      it("a function with SchemaError at trigger time, naming the event and the field path", function()
        local err = refusal(app, { a = { b = { function() end } } })
        assert.matches("Box.Put", err.message, 1, true)
        assert.matches("value.a.b[1]", err.message, 1, true)
      end)

      -- found by fuzzing cairn import: such a time reached C as an undefined int64 cast
      it("a time outside 64-bit microseconds, or not a number", function()
        for _, us in ipairs { 1e300, -1e300, 2 ^ 63, 0 / 0 } do
          local err = refusal(app, { at = cairn.time.from_us(us) })
          assert.matches("a time outside the range of 64%-bit microseconds at Box.Put.value.at", err.message)
        end
      end)

      it("a coroutine", function()
        local err = refusal(app, { co = coroutine.create(function() end) })
        assert.matches("value.co", err.message, 1, true)
      end)

      it("userdata and cdata", function()
        local err = refusal(app, io.stdout)
        assert.matches("Box.Put", err.message, 1, true)
        refusal(app, { ffi.new("int", 1) })
        refusal(app, { n = ffi.new("int64_t", 1) })
      end)

      it("cycles", function()
        local t = { x = 1 }
        t.self = t
        local err = refusal(app, t)
        assert.matches("value.self", err.message, 1, true)
        local a, b = {}, {}
        a[1], b[1] = b, a
        refusal(app, { a })
      end)

      it("tables with metatables other than cairn.time", function()
        refusal(app, setmetatable({}, {}))
        local err = refusal(app, { nested = setmetatable({ 1 }, { __index = table }) })
        assert.matches("value.nested", err.message, 1, true)
      end)

      it("boolean and table keys", function()
        local err = refusal(app, { inner = { [true] = 1 } })
        assert.matches("value.inner", err.message, 1, true)
        refusal(app, { [false] = "no" })
        refusal(app, { [{}] = "table key" })
      end)

      it("nesting deeper than 64", function()
        local err = refusal(app, nested(65, 1))
        assert.matches("64", err.message, 1, true)
        refusal(app, nested(100, {}))
        refusal(app, { ok = 1, deep = nested(70, "x") })
      end)

      it("field names that are not strings", function()
        local box = Box()
        local err = error_of(box.trigger, box, "Many", { [1] = "positional" })
        assert.is_true(errors.is(err, "SchemaError"), tostring(err))
        assert.are.equal(1, box.version)
      end)

      it("values in the creation event, leaving no aggregate", function()
        local Holder = cairn.aggregate("Holder")
        Holder:created("Made", function(self, what) self.what = what end)
        local err = error_of(Holder, function() end)
        assert.is_true(errors.is(err, "SchemaError"), tostring(err))
        assert.matches("Holder.Made", err.message, 1, true)
        assert.are.equal(0, app:max_notification_id())
      end)

      it("one value and leaves the aggregate usable, earlier pending events kept", function()
        local box = Box()
        box:put(1)
        helper.assert_error_kind("SchemaError", function() box:put(function() end) end,
          "cannot store a function at Box.Put.value")
        box:put(3)
        local recordings = app:save(box)
        assert.are.equal(3, #recordings)
        assert.are.same({ 1, 2, 3 }, { recordings[1].event.originator_version,
          recordings[2].event.originator_version, recordings[3].event.originator_version })
        assert.are.equal(3, app.repository:get(box.id).value)
      end)
    end)
  end)
end)

describe("cairn.core", function()
  describe(".encode()", function()
    it("gives identical bytes for the same fields inserted in different orders", function()
      local keys = {}
      for i = 1, 40 do keys[i] = "k" .. i end
      local a, b = {}, {}
      for i = 1, #keys do a[keys[i]] = i end
      for i = #keys, 1, -1 do b[keys[i]] = i end
      -- a different hash layout: grow b, then shrink it back
      for i = 1, 100 do b["extra" .. i] = i end
      for i = 1, 100 do b["extra" .. i] = nil end
      a.nested = { z = 1, y = 2, [3] = "three", [1.5] = "x" }
      b.nested = { [1.5] = "x", [3] = "three", y = 2, z = 1 }
      assert.are.equal(core.encode(a), core.encode(b))
      assert.are.equal(core.encode({ x = 1, y = 2 }), core.encode({ y = 2, x = 1 }))
      assert.are_not.equal(core.encode({ x = 1, y = 2 }), core.encode({ x = 2, y = 1 }))
    end)

    it("stores a canonical UUID string in fewer bytes than its 36 characters", function()
      local id = cairn.uuid.v4()
      local as_uuid = core.encode({ id = id })
      local as_string = core.encode({ id = ("x"):rep(36) })
      assert.is_true(#as_uuid + 16 <= #as_string, #as_uuid .. " vs " .. #as_string)
      assert.are.equal(#as_string, #core.encode({ id = id:upper() }))
    end)

    it("decodes what it encodes", function()
      local v = { 1, "two", { three = 3.5 }, false }
      assert.are.same(v, core.decode(core.encode(v)))
    end)

    it("encodes maps of every size inside arrays and maps, and refuses a bad key without losing its place", function()
      -- maps of up to 16 keys keep their keys on the Lua stack while their
      -- values are encoded: the arrays and maps around them must see their own
      for _, n in ipairs { 0, 1, 2, 15, 16, 17, 40 } do
        local map = {}
        for i = 1, n do map["k" .. i] = i % 3 == 0 and { i, { deep = "d" .. i } } or i end
        for i = 1, n, 7 do map[i + 0.5] = "half" end
        local v = { list = { map, "after", map }, map = map, last = "x" }
        assert.are.same(v, core.decode(core.encode(v)))
      end
      local bad = { ok = 1, nested = { fine = 2, [true] = 3 } }
      local err = helper.assert_kind("SchemaError", error_of(core.encode, { before = { 1, 2 }, bad = bad }))
      assert.matches("boolean table key", err.message, 1, true)
      assert.are.same({ a = { b = 1 } }, core.decode(core.encode({ a = { b = 1 } })))
    end)
  end)

  describe(".decode()", function()
    it("refuses a time the encoder could not write again, and takes the lowest one", function()
      local err = error_of(core.decode, "\215\2\127\255\255\255\255\255\255\255")
      assert.is_true(errors.is(err, "IntegrityError"), tostring(err))
      local lowest = core.decode("\215\2\128\0\0\0\0\0\0\0")
      assert.are.equal(-2 ^ 63, lowest.us)
      assert.are.equal("\215\2\128\0\0\0\0\0\0\0", core.encode(lowest))
    end)

    -- found by fuzzing (spec/fuzz/fuzz_msgpack.c): the decoder took one level
    -- more than the encoder writes, so a value could be read but not stored again
    it("accepts exactly the nesting the encoder writes", function()
      local deepest -- arrays around an empty array
      for depth = 1, 80 do
        if not pcall(core.encode, nested(depth, {})) then break end
        deepest = depth
      end
      local bytes = core.encode(nested(deepest, {}))
      assert.are.same(nested(deepest, {}), core.decode(bytes))
      local err = error_of(core.decode, "\145" .. bytes) -- one more array around it
      assert.is_true(errors.is(err, "IntegrityError"), tostring(err))
    end)
  end)
end)
