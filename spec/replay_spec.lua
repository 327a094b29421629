--- Rebuilding aggregates from reads that come as columns (recorder.read_replay):
-- the same aggregates as from event tables, and event tables whenever a
-- record is not plain (to upcast, a field name that is not a string, more
-- topics than the columns take).
local helper = require "helper"
local cairn = require "cairn"
local core = require "cairn.core"
local aggregate = require "cairn.aggregate"
local recorder = require "cairn.recorder"

local assert_error_kind = helper.assert_error_kind

-- The aggregate rebuilt from event tables (read_stream), as before columns.
local function from_tables(app, id)
  local events = app.store:read_stream(id, { replay = true })
  return (aggregate.replay(events))
end

-- Record a stream's events as given (topic, payload bytes), bypassing the
-- aggregate classes; returns its id.
local function record(app, events)
  local id, batch, n = cairn.uuid.v4(), {}, 0
  for v = 1, #events do
    n = recorder.add(batch, n, id, v, 1700000000000000 + v, events[v][1], events[v][2], 1)
  end
  app.store:append(batch)
  return id
end

describe("replay as columns", function()
  helper.each_store(function(ctx)
    local Kennel, School

    before_each(function()
      Kennel = cairn.aggregate("Kennel")
      Kennel:created("Opened", function(self, name) self.name = name; self.log = {} end)
      Kennel.rest = Kennel:event("Rested", function(self) self.log[#self.log + 1] = "rest" end)
      Kennel.pair = Kennel:event("Paired", function(self, a, b) self.log[#self.log + 1] = { a, b } end)
      Kennel.three = Kennel:event("Tripled", function(self, a, b, c)
        self.log[#self.log + 1] = { a, b, c }
      end)
      Kennel.five = Kennel:event("Fived", function(self, a, b, c, d, e)
        self.log[#self.log + 1] = { a, b, c, d, e, n = select("#", a, b, c, d, e) }
      end)
      School = cairn.application("ReplaySchool")
    end)

    it("rebuilds the same aggregate as event tables do, for 0 to 5 fields, nils, tables, times and ids",
      function()
        local app = ctx.open(School)
        local k = Kennel("North")
        k:rest()
        k:pair("x", { 1, 2, { deep = true } })
        k:three(nil, 2.5, cairn.time.from_us(1700000000123456))
        k:five(1, nil, "three", nil, cairn.uuid.v4())
        k:pair(false, -7)
        app:save(k)
        local events, head, cols = app.store:read_replay(k.id, { replay = true })
        assert.is_nil(events)
        assert.are.equal(k.head, head)
        assert.are.equal(1, cols.first)
        assert.are.same({ "Kennel.Opened", 1, "Kennel.Rested", 1, "Kennel.Paired", 1, "Kennel.Tripled", 1,
          "Kennel.Fived", 1, "Kennel.Paired", 1 }, cols.runs)
        local got = app.repository:get(k.id)
        local want = from_tables(app, k.id)
        want.head = got.head
        assert.are.same(want, got)
        assert.are.equal(6, got.version)
        assert.are.equal(k.created_on, got.created_on)
        assert.are.equal(k.modified_on, got.modified_on)
        assert.are.same({ 1, nil, "three", nil, k.log[4][5], n = 5 }, got.log[4])
        assert.are.equal(1700000000123456, got.log[3][3].us)
        assert.are.equal(getmetatable(k), getmetatable(got))
      end)

    it("starts after a snapshot and at a given version as event tables do", function()
      School.snapshotting_intervals = { Kennel = 3 }
      local app = ctx.open(School)
      local k = Kennel("South")
      for i = 1, 6 do k:pair(i, -i) end
      app:save(k)
      local got = app.repository:get(k.id)
      assert.are.equal(7, got.version)
      assert.are.same({ 6, -6 }, got.log[6])
      local at4 = app.repository:get(k.id, { version = 4 })
      assert.are.equal(4, at4.version)
      assert.are.equal(3, #at4.log)
      School.snapshotting_intervals = nil
    end)

    it("reads a stream that starts above version 1 from its start and after a version, chain checked",
      function()
        local app = ctx.open(School)
        local id, batch, n = cairn.uuid.v4(), {}, 0
        n = recorder.add(batch, n, id, 3, 1700000000000003, "Kennel.Opened", core.encode({ name = "Late" }), 1)
        n = recorder.add(batch, n, id, 4, 1700000000000004, "Kennel.Paired", core.encode({ a = 1, b = 2 }), 1)
        recorder.add(batch, n, id, 5, 1700000000000005, "Kennel.Rested", "\144", 1)
        app.store:append(batch)
        local got = app.repository:get(id)
        assert.are.equal(5, got.version)
        assert.are.same({ { 1, 2 }, "rest" }, got.log)
        local _, head, cols = app.store:read_replay(id, { replay = true })
        assert.are.equal(got.head, head)
        assert.are.equal(3, cols.first)
        assert.are.same({ "Kennel.Opened", 1, "Kennel.Paired", 1, "Kennel.Rested", 1 }, cols.runs)
        local after = app.store:read_stream(id, { after = 3, replay = true })
        assert.are.equal(2, #after)
        assert.are.equal(4, after[1].originator_version)
      end)

    it("takes a read's options from a table with a metatable as from a plain one", function()
      local app = ctx.open(School)
      local k = Kennel("Options")
      for i = 1, 5 do k:pair(i, -i) end
      app:save(k)
      local plain = app.store:read_stream(k.id, { after = 1, upto = 5, limit = 3, replay = true })
      local inherited = app.store:read_stream(k.id,
        setmetatable({}, { __index = { after = 1, upto = 5, limit = 3, replay = true } }))
      assert.are.equal(3, #plain)
      assert.are.same(plain, inherited)
      assert.is_nil(inherited[1].event_id) -- replay = true came through
      local newest = app.store:read_stream(k.id, setmetatable({}, { __index = { reverse = true, limit = 1 } }))
      assert.are.equal(6, newest[1].originator_version)
      local _, _, cols = app.store:read_replay(k.id, { replay = true, after = 4 })
      assert.are.equal(5, cols.first)
      assert.are.same({ "Kennel.Paired", 2 }, cols.runs)
    end)

    it("gives a stream's topics as runs of one topic", function()
      local app = ctx.open(School)
      local k = Kennel("Runs")
      for _ = 1, 3 do k:rest() end
      k:pair("a", "b")
      k:rest()
      app:save(k)
      local _, _, cols = app.store:read_replay(k.id, { replay = true })
      assert.are.same({ "Kennel.Opened", 1, "Kennel.Rested", 3, "Kennel.Paired", 1, "Kennel.Rested", 1 }, cols.runs)
      assert.are.same({ "rest", "rest", "rest", { "a", "b" }, "rest" }, app.repository:get(k.id).log)
      assert.are.same(from_tables(app, k.id), (function()
        local agg = app.repository:get(k.id)
        agg.head = nil
        return agg
      end)())
    end)

    it("drops stored fields the class no longer takes; a field not stored is nil", function()
      local app = ctx.open(School)
      local id = record(app, { { "Kennel.Opened", core.encode({ name = "West" }) },
        { "Kennel.Paired", core.encode({ a = 1, gone = 2 }) },
        { "Kennel.Paired", core.encode({ b = "only b", z = 0 }) } })
      local _, _, cols = app.store:read_replay(id, { replay = true })
      assert.is_table(cols)
      local got = app.repository:get(id)
      assert.are.same({ { 1, nil }, { nil, "only b" } }, got.log)
      assert.are.same(from_tables(app, id).log, got.log)
    end)

    it("gives event tables for a field name that is not a string, and the aggregate is the same", function()
      local app = ctx.open(School)
      local id = record(app, { { "Kennel.Opened", core.encode({ name = "East" }) },
        { "Kennel.Paired", core.encode({ a = 1, [7] = "seven" }) } })
      local events, _, cols = app.store:read_replay(id, { replay = true })
      assert.is_nil(cols)
      assert.are.equal("seven", events[2][7])
      assert.are.same({ { 1, nil } }, app.repository:get(id).log)
    end)

    it("gives event tables when a record must be upcast", function()
      local app = ctx.open(School)
      local k = Kennel("Upcast")
      k:pair("old a", "old b")
      app:save(k)
      Kennel = cairn.aggregate("Kennel")
      Kennel:created("Opened", function(self, name) self.name = name; self.log = {} end)
      Kennel:event("Paired", function(self, a, b) self.log[#self.log + 1] = { a, b } end, {
        version = 2, upcast = { [1] = function(f) return { a = f.a .. "!", b = f.b } end } })
      local events, _, cols = app.store:read_replay(k.id, { replay = true })
      assert.is_nil(cols)
      assert.are.equal("old a!", events[2].a)
      assert.are.same({ { "old a!", "old b" } }, app.repository:get(k.id).log)
    end)

    it("gives event tables for more than 8 topics in one read", function()
      local Many = cairn.aggregate("Many")
      Many:created("Made", function(self) self.seen = {} end)
      local names = {}
      for i = 1, 9 do
        names[i] = "E" .. i
        Many[names[i]] = Many:event(names[i], function(self, v) self.seen[#self.seen + 1] = v end)
      end
      local app = ctx.open(School)
      local m = Many()
      for i = 1, 9 do m[names[i]](m, i) end
      app:save(m)
      local events, _, cols = app.store:read_replay(m.id, { replay = true })
      assert.is_nil(cols)
      assert.are.equal(10, #events)
      assert.are.same({ 1, 2, 3, 4, 5, 6, 7, 8, 9 }, app.repository:get(m.id).seen)
      -- 8 topics still come as columns
      local m8 = Many()
      for i = 1, 7 do m8[names[i]](m8, i) end
      app:save(m8)
      assert.is_table(select(3, app.store:read_replay(m8.id, { replay = true })))
    end)

    it("names the aggregate, version and topic when an apply function raises", function()
      local app = ctx.open(School)
      local k = Kennel("Raises")
      k:pair(1, 2)
      k:pair("boom", 3)
      app:save(k)
      Kennel = cairn.aggregate("Kennel")
      Kennel:created("Opened", function(self, name) self.name = name end)
      Kennel:event("Paired", function(_, a) if a == "boom" then error("no boom") end end)
      assert_error_kind("SchemaError", function() app.repository:get(k.id) end,
        ("replaying Kennel %s version 3 (Kennel.Paired): the apply function raised"):format(k.id))
    end)

    it("refuses an event of another class, naming it", function()
      local Other = cairn.aggregate("OtherKennel")
      Other:created("Opened", function(self) self.other = true end)
      local app = ctx.open(School)
      local id = record(app, { { "Kennel.Opened", core.encode({ name = "Mixed" }) }, { "OtherKennel.Opened", "\144" } })
      assert_error_kind("SchemaError", function() app.repository:get(id) end,
        ("Kennel has no event 'OtherKennel.Opened' (aggregate %s version 2)"):format(id))
    end)

    it("refuses a malformed payload with an IntegrityError naming the aggregate and version", function()
      local app = ctx.open(School)
      local id = record(app, { { "Kennel.Opened", core.encode({ name = "Bad" }) },
        { "Kennel.Paired", "\130\161a\1" } }) -- a map of 2 pairs holding 1
      local err = assert_error_kind("IntegrityError", function() app.repository:get(id) end,
        ("aggregate %s version 2"):format(id))
      assert.is_truthy(err.message:find("malformed", 1, true))
    end)
  end)
end)
