--- Snapshots, upcasting and event schemas: how aggregates are loaded fast and
-- how their events and states change shape across program versions.
local helper = require "helper"
local cairn = require "cairn"

local q = helper.shell_quote

local is_kind = helper.assert_kind

describe("snapshots", function()
  helper.each_store(function(ctx)
    local Dog, School, applied

    before_each(function()
      applied = 0
      Dog = cairn.aggregate("Dog")
      Dog:created("Registered", function(self, name) self.name = name; self.tricks = {} end)
      Dog.add_trick = Dog:event("TrickAdded", function(self, trick)
        applied = applied + 1
        self.tricks[#self.tricks + 1] = trick
      end)
      School = cairn.application("School")
    end)

    local function add(app, dog, n)
      for _ = 1, n do dog:add_trick("t" .. (#dog.tricks + 1)) end
      app:save(dog)
      return dog
    end

    it("are written in the save that reaches an interval, and get starts from the newest", function()
      School.snapshotting_intervals = { Dog = 3 }
      local app = ctx.open(School)
      local fido = Dog("Fido")
      add(app, fido, 1)                                    -- v2
      assert.is_nil(app.snapshots:get(fido.id))
      add(app, fido, 1)                                    -- v3
      assert.are.equal(3, app.snapshots:get(fido.id).version)
      assert.are.same({ "t1", "t2" }, app.snapshots:get(fido.id).state.tricks)
      add(app, fido, 2)                                    -- v5: no new one
      assert.are.equal(3, app.snapshots:get(fido.id).version)
      add(app, fido, 2)                                    -- v7: crossed 6
      assert.are.equal(7, app.snapshots:get(fido.id).version)
      applied = 0
      local back = app.repository:get(fido.id)
      assert.are.equal(0, applied)                         -- all from the snapshot
      assert.are.same({ "t1", "t2", "t3", "t4", "t5", "t6" }, back.tricks)
      assert.are.equal(7, back.version)
      assert.are.equal(fido.head, back.head)
      assert.are.equal(fido.created_on, back.created_on)
      assert.are.equal(fido.modified_on, back.modified_on)
      add(app, back, 1)                                    -- v8
      applied = 0
      assert.are.equal(8, app.repository:get(fido.id).version)
      assert.are.equal(1, applied)                         -- one event after the snapshot
      School.snapshotting_intervals = nil
    end)

    it("are not written by a save that fails", function()
      School.snapshotting_intervals = { Dog = 2 }
      local app = ctx.open(School)
      local fido = add(app, Dog("Fido"), 0)
      local stale = app.repository:get(fido.id)
      add(app, fido, 2)                                    -- v3, snapshot at 3 (crossed 2)
      stale:add_trick("late")
      is_kind("ConcurrencyError", helper.error_of(app.save, app, stale))
      assert.are.equal(3, app.snapshots:get(fido.id).version)
      assert.are.same({ "t1", "t2" }, app.repository:get(fido.id).tricks)
      School.snapshotting_intervals = nil
    end)

    it("are taken on demand, at the latest or a given version, and historical gets stay exact", function()
      local app = ctx.open(School, { snapshotting = "y" })
      local fido = add(app, Dog("Fido"), 4)                -- v5
      local head3 = app.repository:get(fido.id, { version = 3 }).head
      assert.are.equal(5, app:take_snapshot(fido.id))
      assert.are.equal(3, app:take_snapshot(fido.id, 3))
      assert.are.equal(5, app.snapshots:get(fido.id).version)
      assert.are.equal(3, app.snapshots:get(fido.id, { version = 4 }).version)
      -- below the newest snapshot
      local old = app.repository:get(fido.id, { version = 4 })
      assert.are.same({ "t1", "t2", "t3" }, old.tricks)
      assert.are.equal(4, old.version)
      local two = app.repository:get(fido.id, { version = 2 })
      assert.are.same({ "t1" }, two.tricks)
      assert.are.equal(head3, app.repository:get(fido.id, { version = 3 }).head)
      is_kind("AggregateNotFound", helper.error_of(app.take_snapshot, app, fido.id, 9))
      is_kind("AggregateNotFound", helper.error_of(app.take_snapshot, app, cairn.uuid.v4()))
      assert.is_nil(app.snapshots:get("not-a-uuid")) -- a string id without snapshots
      is_kind("AggregateNotFound", helper.error_of(app.snapshots.get, app.snapshots, ""))
    end)

    it("need snapshotting switched on, and a state that can be stored", function()
      local app = ctx.open(School)
      local fido = add(app, Dog("Fido"), 1)
      local err = is_kind("ConfigError", helper.error_of(app.take_snapshot, app, fido.id))
      assert.matches("snapshotting is off", err.message)
      is_kind("ConfigError", helper.error_of(ctx.open, School, { snapshotting = "maybe" }))
      local on = ctx.open(School, { snapshotting = "y" })
      local Odd = cairn.aggregate("Odd")
      Odd:created("Made", function(self) self.fn = function() end end)
      local odd = Odd()
      on:save(odd)
      err = is_kind("SchemaError", helper.error_of(on.take_snapshot, on, odd.id))
      assert.matches("cannot snapshot Odd", err.message)
    end)
  end)
end)

describe("event schemas", function()
  helper.each_store(function(ctx)
    it("refuse a trigger that breaks them, naming the event and field, and record nothing", function()
      local Dog = cairn.aggregate("Dog")
      Dog:created("Registered", function(self, name) self.name = name end, { schema = { name = "string" } })
      Dog.add_trick = Dog:event("TrickAdded", function(self, trick, level) self.trick, self.level = trick, level end,
        { schema = { trick = "string", level = "integer?" } })
      Dog:event("Tagged", function(self, tags, meta) self.tags, self.meta = tags, meta end,
        { schema = { tags = "array", meta = "map" } })
      local School = cairn.application("School")
      local app = ctx.open(School)
      local fido = Dog("Fido")
      fido:add_trick("sit")
      fido:add_trick("roll", 3)
      fido:trigger("Tagged", { tags = { "a", "b" }, meta = { k = 1 } })
      app:save(fido)
      local cases = {
        { function() fido:add_trick(42) end, "Dog.TrickAdded: field 'trick' must be string, not number" },
        { function() fido:add_trick("x", 1.5) end, "field 'level' must be integer?, not number" },
        { function() fido:add_trick() end, "field 'trick' is missing" },
        { function() fido:trigger("TrickAdded", { trick = "x", colour = "red" }) end,
          "field 'colour' is not in the schema" },
        { function() fido:trigger("Tagged", { tags = { a = 1 }, meta = {} }) end, "field 'tags' must be array" },
        { function() fido:trigger("Tagged", { tags = {}, meta = { 1, 2 } }) end, "field 'meta' must be map" },
        { function() Dog(7) end, "Dog.Registered: field 'name' must be string" },
      }
      for _, case in ipairs(cases) do
        local err = is_kind("SchemaError", helper.error_of(case[1]))
        assert.matches(case[2], err.message, 1, true)
      end
      assert.are.equal(4, fido.version)
      assert.are.same({}, fido:collect_events())
      assert.are.equal(4, app:max_notification_id())
    end)

    it("are checked when they are defined", function()
      local Dog = cairn.aggregate("Dog")
      local err = helper.error_of(Dog.event, Dog, "X", function(self, a) self.a = a end, { schema = { a = "strng" } })
      assert.matches("unknown type 'strng'", tostring(err))
      err = helper.error_of(Dog.event, Dog, "Y", function(self, a) self.a = a end, { schema = "a" })
      assert.matches("schema must be a table", tostring(err))
      err = helper.error_of(Dog.event, Dog, "Z", function(self, a) self.a = a end,
        { version = 2, upcast = { [2] = function() end } })
      assert.matches("upcast%[2%]", tostring(err))
      err = helper.error_of(cairn.aggregate, "Cat", { version = 0 })
      assert.matches("version must be a whole number", tostring(err))
    end)
  end)
end)

describe("upcasting across program versions", function()
  local dir, uri

  before_each(function()
    dir = helper.tmpdir()
    uri = helper.store_uri(dir)
  end)
  after_each(function() helper.rmrf(dir) end)

  -- Each program is a domain module plus a command, run as its own process.
  local OLD = [[
local cairn = require "cairn"
local Dog = cairn.aggregate("Dog")
Dog:created("Registered", function(self, name) self.name = name; self.tricks = {} end)
Dog.add_trick = Dog:event("TrickAdded", function(self, trick)
  self.tricks[#self.tricks + 1] = trick
end)
return Dog
]]
  local NEW = [[
local cairn = require "cairn"
local Dog = cairn.aggregate("Dog", { version = 2, upcast = {
  [1] = function(state) state.levels = {}; for i = 1, #state.tricks do state.levels[i] = 1 end; return state end,
} })
Dog:created("Registered", function(self, name) self.name = name; self.tricks = {}; self.levels = {} end)
Dog.add_trick = Dog:event("TrickAdded", function(self, trick, level)
  self.tricks[#self.tricks + 1] = trick
  self.levels[#self.levels + 1] = level
end, { version = 2, upcast = { [1] = function(fields) fields.level = 1; return fields end } })
return Dog
]]
  local MAIN = [[
local cairn = require "cairn"
local Dog = dofile(arg[1])
local School = cairn.application("School")
local app = School.new { store = arg[2], snapshotting = "y" }
local id = cairn.uuid.v5(cairn.uuid.NAMESPACE_URL, "/dogs/Fido")
local cmd = arg[3]
if cmd == "register" then
  Dog.create_id = function() return id end
  local d = Dog("Fido"); d:add_trick("sit"); app:save(d)
elseif cmd == "add" then
  local d = app.repository:get(id); d:add_trick(arg[4], tonumber(arg[5])); app:save(d)
elseif cmd == "snapshot" then
  app:take_snapshot(id)
elseif cmd == "show" then
  local d = app.repository:get(id)
  print(table.concat(d.tricks, ","), d.levels and table.concat(d.levels, ",") or "-")
end
app:close()
]]

  local function program(name, module)
    helper.write_file(dir .. "/" .. name .. ".lua", module)
    helper.write_file(dir .. "/main.lua", MAIN)
    return function(...)
      local args = { ... }
      for i = 1, #args do args[i] = q(args[i]) end
      return helper.run(("%s run %s %s %s %s"):format(q(helper.cairn_bin), q(dir .. "/main.lua"),
        q(dir .. "/" .. name .. ".lua"), q(uri), table.concat(args, " ")))
    end
  end

  it("reads old events upcast step by step, never rewriting them, and refuses newer ones in old code", function()
    local old, new = program("old", OLD), program("new", NEW)
    assert.are.equal(0, (old("register")))
    assert.are.equal(0, (old("add", "roll")))
    local before = select(2, helper.run(q(helper.cairn_bin) .. " export " .. q(uri)))
    local code, out, err = new("show")
    assert.are.equal(0, code, err)
    assert.are.equal("sit,roll\t1,1\n", out)
    -- reading changed nothing stored
    assert.are.equal(before, select(2, helper.run(q(helper.cairn_bin) .. " export " .. q(uri))))
    code, out, err = new("add", "fetch", "3")
    assert.are.equal(0, code, err .. out)
    code, out = new("show")
    assert.are.equal(0, code)
    assert.are.equal("sit,roll,fetch\t1,1,3\n", out)
    -- the new event is stored at class version 2; the old program refuses it clearly
    local export = select(2, helper.run(q(helper.cairn_bin) .. " export " .. q(uri)))
    assert.matches('"class_version":2', export, 1, true)
    code, out, err = old("show")
    assert.are.equal(1, code, out)
    assert.matches("SchemaError: Dog.TrickAdded version 4 was stored by a newer program", err)
  end)

  it("upcasts snapshot states of an older aggregate class version", function()
    local old, new = program("old", OLD), program("new", NEW)
    assert.are.equal(0, (old("register")))
    assert.are.equal(0, (old("add", "roll")))
    assert.are.equal(0, (old("snapshot")))
    local code, out, err = new("show")
    assert.are.equal(0, code, err)
    assert.are.equal("sit,roll\t1,1\n", out)
  end)
end)
