local cairn = require "cairn"
local helper = require "helper"

local errors = cairn.errors
local error_of = helper.error_of

local Dog = cairn.aggregate("Dog")
function Dog.create_id(name)
  return cairn.uuid.v5(cairn.uuid.NAMESPACE_URL, "/dogs/" .. name)
end
Dog:created("Registered", function(self, name)
  self.name = name
  self.tricks = {}
end)
Dog.add_trick = Dog:event("TrickAdded", function(self, trick)
  self.tricks[#self.tricks + 1] = trick
end)

local Note = cairn.aggregate("Note")
Note:created("Written", function(self, text) self.text = text end)
Note.edit = Note:event("Edited", function(self, text) self.text = text end)

local TrainingSchool = cairn.application("TrainingSchool")
function TrainingSchool:register(name)
  return self:save(Dog(name))
end
function TrainingSchool:add_trick(name, trick)
  local dog = self.repository:get(Dog.create_id(name))
  dog:add_trick(trick)
  return self:save(dog)
end
function TrainingSchool:get_tricks(name)
  return self.repository:get(Dog.create_id(name)).tricks
end

local assert_kind = helper.assert_kind
local assert_error_kind = helper.assert_error_kind

local function ids_of(items, field)
  local ids = {}
  for i, item in ipairs(items) do ids[i] = item[field or "id"] end
  return ids
end

local function range(a, b)
  local t = {}
  for i = a, b do t[#t + 1] = i end
  return t
end

-- n notes with one event each
local function write_notes(app, n)
  local notes = {}
  for i = 1, n do
    notes[i] = Note("note " .. i)
    app:save(notes[i])
  end
  return notes
end

describe("cairn.application", function()
  helper.each_store(function(ctx)
    local app

    before_each(function()
      app = ctx.open(TrainingSchool)
    end)

    describe(".name", function()
      it("is the application's name", function()
        assert.are.equal("TrainingSchool", app.name)
        assert.are.equal("TrainingSchool", TrainingSchool.name)
      end)
    end)

    describe(":save()", function()
      it("returns the recordings { notification_id, event } in order", function()
        local dog = Dog("Fido")
        local events = { nil, dog:add_trick("roll"), dog:add_trick("sit") }
        local recordings = app:save(dog)
        events[1] = recordings[1].event
        assert.are.equal(3, #recordings)
        assert.are.same({ 1, 2, 3 }, ids_of(recordings, "notification_id"))
        assert.is_true(rawequal(events[1], recordings[1].event))
        assert.is_true(rawequal(events[3], recordings[3].event))
        assert.are.equal("Dog.Registered", recordings[1].event.topic)
        assert.are.equal("sit", recordings[3].event.trick)
        for i, r in ipairs(recordings) do
          assert.are.equal(i, r.event.originator_version)
          assert.are.equal(dog.id, r.event.originator_id)
        end
      end)

      it("gives ids from 1 without gaps across saves", function()
        local seen = {}
        for i = 1, 5 do
          local note = Note("n" .. i)
          for j = 1, i do note:edit("edit " .. j) end
          for _, r in ipairs(app:save(note)) do seen[#seen + 1] = r.notification_id end
        end
        assert.are.same(range(1, 20), seen)
        assert.are.equal(20, app:max_notification_id())
      end)

      it("records several aggregates in one call, in argument order", function()
        local a, b, c = Dog("Fido"), Note("hello"), Dog("Rex")
        b:edit("bye")
        local recordings = app:save(a, b, c)
        assert.are.same({ 1, 2, 3, 4 }, ids_of(recordings, "notification_id"))
        local log = app.log:select(1, 10)
        assert.are.same({ a.id, b.id, b.id, c.id }, ids_of(log, "originator_id"))
        assert.are.same({ "Dog.Registered", "Note.Written", "Note.Edited", "Dog.Registered" }, ids_of(log, "topic"))
      end)

      it("records large batches in one call", function()
        local notes = {}
        for i = 1, 1000 do notes[i] = Note("n" .. i) end
        local big = Note("big")
        for i = 1, 3000 do big:edit("edit " .. i) end
        notes[#notes + 1] = big
        local recordings = app:save(unpack(notes))
        assert.are.equal(4001, #recordings)
        assert.are.equal(4001, recordings[4001].notification_id)
        assert.are.equal(4001, app:max_notification_id())
        assert.are.equal(3001, app.repository:get(big.id).version)
        assert.are.equal("edit 3000", app.repository:get(big.id).text)
      end)

      it("records an aggregate passed twice once", function()
        local a = Dog("Fido")
        assert.are.equal(1, #app:save(a, a))
        assert.are.equal(1, app:max_notification_id())
      end)

      it("returns {} and records nothing when nothing is pending", function()
        local dog = Dog("Fido")
        app:save(dog)
        assert.are.same({}, app:save(dog))
        assert.are.same({}, app:save())
        assert.are.equal(1, app:max_notification_id())
      end)

      it("raises ConcurrencyError for a stale aggregate and records nothing", function()
        app:register("Fido")
        local first = app.repository:get(Dog.create_id("Fido"))
        local second = app.repository:get(Dog.create_id("Fido"))
        first:add_trick("roll")
        app:save(first)
        second:add_trick("sit")
        second:add_trick("beg")
        local err = error_of(app.save, app, second)
        assert_kind("ConcurrencyError", err)
        assert.matches(second.id, err.message, 1, true)
        assert.matches("version 2", err.message, 1, true)
        assert.are.equal(2, app:max_notification_id())
        assert.are.same({ "roll" }, app:get_tricks("Fido"))
      end)

      it("raises ConcurrencyError when an aggregate with the same id is created twice", function()
        app:register("Fido")
        local err = error_of(app.register, app, "Fido")
        assert_kind("ConcurrencyError", err)
        -- it says the aggregate exists and what to do instead
        assert.matches("Dog " .. Dog.create_id("Fido") .. " already exists (it was created before): get it with "
          .. "repository:get instead of creating it again", err.message, 1, true)
        assert.are.equal(1, app:max_notification_id())
      end)

      it("raises ConcurrencyError for two copies of one aggregate in one save", function()
        app:register("Fido")
        local a = app.repository:get(Dog.create_id("Fido"))
        local b = app.repository:get(Dog.create_id("Fido"))
        a:add_trick("roll")
        b:add_trick("sit")
        assert_kind("ConcurrencyError", error_of(app.save, app, a, Note("between"), b))
        assert.are.equal(1, app:max_notification_id())
        assert.are.same({}, app:get_tricks("Fido"))
        assert_kind("ConcurrencyError", error_of(app.save, app, Dog("Rex"), Note("between"), Dog("Rex")))
        assert_kind("ConcurrencyError", error_of(app.save, app, Dog("Max"), Dog("Max")))
        assert.are.equal(1, app:max_notification_id())
        assert.is_false(app.repository:contains(Dog.create_id("Rex")))
      end)

      it("rejects the whole batch when one aggregate is stale", function()
        app:register("Fido")
        local stale = app.repository:get(Dog.create_id("Fido"))
        app:add_trick("Fido", "roll")
        local fresh, other = Dog("Rex"), Note("new")
        stale:add_trick("sit")
        local err = error_of(app.save, app, fresh, other, stale)
        assert_kind("ConcurrencyError", err)
        assert.are.equal(2, app:max_notification_id())
        assert.is_false(app.repository:contains(fresh.id))
        assert.is_false(app.repository:contains(other.id))
        assert.are.equal(2, #app.log:select(1, 100))
        -- and again with the stale aggregate first
        err = error_of(app.save, app, stale, fresh)
        assert_kind("ConcurrencyError", err)
        assert.are.equal(2, app:max_notification_id())
      end)

      it("leaves the pending events with the aggregates after a failed save", function()
        app:register("Fido")
        local stale = app.repository:get(Dog.create_id("Fido"))
        app:add_trick("Fido", "roll")
        local fresh = Dog("Rex")
        stale:add_trick("sit")
        stale:add_trick("beg")
        assert_error_kind("ConcurrencyError", function() app:save(fresh, stale) end, stale.id)
        local events = stale:collect_events()
        assert.are.same({ 2, 3 }, ids_of(events, "originator_version"))
        assert.are.same({ "sit", "beg" }, ids_of(events, "trick"))
        -- the fresh aggregate still has its creation event and can be saved alone
        local recordings = app:save(fresh)
        assert.are.same({ 3 }, ids_of(recordings, "notification_id"))
        assert.are.equal("Rex", app.repository:get(fresh.id).name)
      end)

      it("leaves the pending events with one aggregate saved alone after a failed save, and saves it later", function()
        -- a save of one aggregate hands its pending records to the store as they are
        -- and drops them only once they are recorded
        app:register("Fido")
        local stale = app.repository:get(Dog.create_id("Fido"))
        app:add_trick("Fido", "roll")
        stale:add_trick("sit")
        local err = assert_kind("ConcurrencyError", error_of(app.save, app, stale))
        assert.matches("version 2", err.message, 1, true)
        assert.are.equal(2, stale.version)
        local again = assert_kind("ConcurrencyError", error_of(app.save, app, stale))
        assert.are.equal(err.message, again.message)
        assert.are.same({ "sit" }, ids_of(stale:collect_events(), "trick"))
        assert.are.equal(2, app:max_notification_id())
        -- a store that raises (closed) leaves a new aggregate's event with it too
        local rex, other = Dog("Rex"), ctx.open(TrainingSchool)
        other.store:close()
        assert_kind("StoreError", error_of(other.save, other, rex))
        assert.are.same({ 3 }, ids_of(app:save(rex), "notification_id"))
        assert.are.same({}, app:save(rex))
        assert.are.equal("Rex", app.repository:get(rex.id).name)
        assert.matches("^%x+$", rex.head)
      end)

      it("refuses things that are not aggregates", function()
        assert.has_error(function() app:save("Fido") end, "bad argument #1 to 'save' (aggregate expected)")
        assert.has_error(function() app:save({}) end, "bad argument #1 to 'save' (aggregate expected)")
        assert.has_error(function() app:save(Dog("Rex"), {}) end, "bad argument #2 to 'save' (aggregate expected)")
        assert.are.equal(0, app:max_notification_id())
      end)
    end)

    describe(".repository:get()", function()
      it("rebuilds the latest version", function()
        app:register("Fido")
        app:add_trick("Fido", "roll")
        app:add_trick("Fido", "sit")
        local dog = app.repository:get(Dog.create_id("Fido"))
        assert.are.equal(Dog.create_id("Fido"), dog.id)
        assert.are.equal(3, dog.version)
        assert.are.equal("Fido", dog.name)
        assert.are.same({ "roll", "sit" }, dog.tricks)
        assert.are.same({ "roll", "sit" }, app:get_tricks("Fido"))
      end)

      it("keeps created_on and modified_on exactly", function()
        local dog = Dog("Fido")
        dog:add_trick("roll")
        app:save(dog)
        local got = app.repository:get(dog.id)
        assert.are.equal(dog.created_on, got.created_on)
        assert.are.equal(dog.modified_on, got.modified_on)
      end)

      it("rebuilds historical versions with { version = v }", function()
        local dogs = {}
        for i = 1, 12 do -- several streams, so a stream's neighbours are in the index too
          local dog = Dog("dog" .. i)
          for j = 1, i % 4 do dog:add_trick("t" .. j) end
          app:save(dog)
          dogs[i] = dog
        end
        for _, dog in ipairs(dogs) do
          for v = 1, dog.version do
            local got = app.repository:get(dog.id, { version = v })
            assert.are.equal(v, got.version)
            assert.are.equal(v - 1, #got.tricks)
          end
          assert.are.equal(dog.version, app.repository:get(dog.id, { version = dog.version + 5 }).version)
        end
      end)

      it("accepts an upper-case id", function()
        app:register("Fido")
        assert.are.equal("Fido", app.repository:get(Dog.create_id("Fido"):upper()).name)
      end)

      it("raises AggregateNotFound naming the id of a missing aggregate", function()
        app:register("Fido")
        local id = cairn.uuid.v4()
        local err = error_of(app.repository.get, app.repository, id)
        assert_kind("AggregateNotFound", err)
        assert.matches(id, err.message, 1, true)
      end)

      it("raises AggregateNotFound for an id never recorded or that no aggregate can have", function()
        for _, id in ipairs { "fido", "", "6ba7b811-9dad-11d1-80b4-00c04fd430c", 42 } do
          local err = error_of(app.repository.get, app.repository, id)
          assert_kind("AggregateNotFound", err)
          assert.matches(tostring(id), err.message, 1, true)
        end
      end)

      it("raises AggregateNotFound for a version before the first", function()
        app:register("Fido")
        local err = error_of(app.repository.get, app.repository, Dog.create_id("Fido"), { version = 0 })
        assert_kind("AggregateNotFound", err)
      end)

      it("raises AggregateNotFound for a discarded aggregate", function()
        local dog = Dog("Fido")
        dog:add_trick("roll")
        dog:discard()
        app:save(dog)
        local err = error_of(app.repository.get, app.repository, dog.id)
        assert_kind("AggregateNotFound", err)
        assert.matches(dog.id, err.message, 1, true)
        -- versions before the discard are still history
        assert.are.same({ "roll" }, app.repository:get(dog.id, { version = 2 }).tricks)
      end)

      it("works for aggregates whose versions start at 0", function()
        local Zero = cairn.aggregate("ZeroApp", { initial_version = 0 })
        Zero:created("Made", function(self) self.n = 0 end)
        Zero.bump = Zero:event("Bumped", function(self) self.n = self.n + 1 end)
        local z = Zero()
        z:bump()
        assert.are.same({ 0, 1 }, ids_of(ids_of(app:save(z), "event"), "originator_version"))
        assert.are.equal(1, app.repository:get(z.id).n)
        assert.are.equal(0, app.repository:get(z.id, { version = 0 }).n)
        local again = app.repository:get(z.id)
        again:bump()
        app:save(again)
        assert.are.equal(2, app.repository:get(z.id).version)
      end)
    end)

    describe(".repository:contains()", function()
      it("tells recorded aggregates from others", function()
        local dogs = {}
        for i = 1, 10 do dogs[i] = Dog("dog" .. i); app:save(dogs[i]) end
        for i = 1, 10 do assert.is_true(app.repository:contains(dogs[i].id)) end
        assert.is_true(app.repository:contains(dogs[1].id:upper()))
        assert.is_false(app.repository:contains(cairn.uuid.v4()))
        assert.is_false(app.repository:contains(Dog("unsaved").id))
        assert.is_false(app.repository:contains("not a uuid"))
      end)

      it("is false after a discard", function()
        local dog = Dog("Fido")
        app:save(dog)
        assert.is_true(app.repository:contains(dog.id))
        dog:discard()
        app:save(dog)
        assert.is_false(app.repository:contains(dog.id))
      end)
    end)

    describe(":max_notification_id()", function()
      it("is 0 when nothing is recorded", function()
        assert.are.equal(0, app:max_notification_id())
      end)

      it("is the id of the newest notification", function()
        write_notes(app, 3)
        assert.are.equal(3, app:max_notification_id())
      end)
    end)

    describe(".log:select()", function()
      it("returns notifications in id order from start, up to limit", function()
        local notes = write_notes(app, 7)
        local items = app.log:select(1, 100)
        assert.are.same(range(1, 7), ids_of(items))
        local n = items[3]
        assert.are.equal(notes[3].id, n.originator_id)
        assert.are.equal(1, n.originator_version)
        assert.are.equal("Note.Written", n.topic)
        assert.are.equal("note 3", n.event.text)
        assert.are.equal("Note.Written", n.event.topic)
        assert.are.same({ 3, 4 }, ids_of(app.log:select(3, 2)))
        assert.are.same({ 7 }, ids_of(app.log:select(7, 5)))
        assert.are.same({}, app.log:select(8, 5))
        assert.are.same({}, app.log:select(1, 0))
      end)

      it("stops at stop (inclusive)", function()
        write_notes(app, 7)
        assert.are.same({ 2, 3, 4 }, ids_of(app.log:select(2, 100, { stop = 4 })))
        assert.are.same({ 2, 3 }, ids_of(app.log:select(2, 2, { stop = 4 })))
        assert.are.same({ 4 }, ids_of(app.log:select(4, 10, { stop = 4 })))
        assert.are.same({}, app.log:select(5, 10, { stop = 4 }))
      end)

      it("filters by topics, the filter counting toward limit", function()
        local notes = write_notes(app, 3)
        for _, note in ipairs(notes) do note:edit("edited"); app:save(note) end -- ids 4, 5, 6
        app:register("Fido")                                                   -- id 7
        assert.are.same({ 4, 5, 6 }, ids_of(app.log:select(1, 10, { topics = { "Note.Edited" } })))
        assert.are.same({ 4, 5 }, ids_of(app.log:select(1, 2, { topics = { "Note.Edited" } })))
        assert.are.same({ 6, 7 }, ids_of(app.log:select(6, 2, { topics = { "Note.Edited", "Dog.Registered" } })))
        assert.are.same({ 4 }, ids_of(app.log:select(2, 10, { topics = { "Note.Edited" }, stop = 4 })))
        assert.are.same({}, app.log:select(1, 10, { topics = { "Nothing.Here" } }))
      end)

      it("treats an empty topics list as no filter", function()
        write_notes(app, 3)
        assert.are.same({ 1, 2, 3 }, ids_of(app.log:select(1, 10, { topics = {} })))
      end)

      it("refuses a start below 1 and a missing limit", function()
        assert.has_error(function() app.log:select(0, 10) end, "bad argument #1 to 'select' (id >= 1 expected)")
        assert.has_error(function() app.log:select(1) end, "bad argument #2 to 'select' (limit >= 0 expected)")
        assert.has_error(function() app.log:select(1.5, 10) end, "bad argument #1 to 'select' (id >= 1 expected)")
      end)
    end)

    describe(".log:section()", function()
      it("returns the items of a section with its actual id and links", function()
        write_notes(app, 25)
        local s = app.log:section("1,10")
        assert.are.equal("1,10", s.id)
        assert.are.same(range(1, 10), ids_of(s.items))
        assert.is_nil(s.previous_id)
        assert.are.equal("11,20", s.next_id)
        s = app.log:section("21,30")
        assert.are.equal("21,30", s.id)
        assert.are.same(range(21, 25), ids_of(s.items))
        assert.are.equal("11,20", s.previous_id)
        assert.is_nil(s.next_id)
      end)

      it("links sections from first to current and back", function()
        write_notes(app, 25)
        local seen, id, hops = {}, "1,10", 0
        while id do
          local s = app.log:section(id)
          for _, item in ipairs(s.items) do seen[#seen + 1] = item.id end
          id, hops = s.next_id, hops + 1
          assert.is_true(hops < 10)
        end
        assert.are.same(range(1, 25), seen)
        local s = app.log:section("current")
        assert.are.equal("21,30", s.id)
        local back = {}
        while true do
          table.insert(back, 1, s.id)
          if not s.previous_id then break end
          s = app.log:section(s.previous_id)
        end
        assert.are.same({ "1,10", "11,20", "21,30" }, back)
      end)

      it("gives the same links when a section is requested again by its returned id", function()
        write_notes(app, 25)
        local current = app.log:section("current")
        local again = app.log:section(current.id)
        assert.are.equal(current.id, again.id)
        assert.are.same(ids_of(current.items), ids_of(again.items))
        assert.are.equal(current.previous_id, again.previous_id)
        assert.are.equal(current.next_id, again.next_id)
      end)

      it("caps a section at the section size", function()
        write_notes(app, 25)
        local s = app.log:section("1,100")
        assert.are.equal("1,10", s.id)
        assert.are.equal(10, #s.items)
        assert.are.equal("11,20", s.next_id)
      end)

      it("'current' is the section with the newest notification", function()
        write_notes(app, 20)
        local s = app.log:section("current")
        assert.are.equal("11,20", s.id)
        assert.are.same(range(11, 20), ids_of(s.items))
        assert.are.equal("1,10", s.previous_id)
        write_notes(app, 1)
        assert.are.equal("21,30", app.log:section("current").id)
      end)

      it("names 'current' by its whole range, as in Vernon's numbering (14 notifications: '11,20')", function()
        write_notes(app, 14)
        local s = app.log:section("current")
        assert.are.equal("11,20", s.id)
        assert.are.same(range(11, 14), ids_of(s.items))
        assert.are.equal("1,10", s.previous_id)
        assert.is_nil(s.next_id)
      end)

      it("'current' of an empty log is the first section, with no items", function()
        local s = app.log:section("current")
        assert.are.equal("1,10", s.id)
        assert.is_nil(s.previous_id)
        assert.are.same({}, s.items)
        assert.is_nil(s.next_id)
      end)

      it("refuses bad section ids", function()
        for _, id in ipairs { "", "1", "1,", ",10", "0,10", "10,1", "a,b", "1-10", "1,10,20", " 1,10" } do
          assert.has_error(function() app.log:section(id) end,
            ("bad section id '%s' (expected 'FIRST,LAST' or 'current')"):format(id))
        end
        assert.has_error(function() app.log:section(1) end, "bad argument #1 to 'section' (section id expected)")
        assert.has_error(function() app.log:section(nil) end, "bad argument #1 to 'section' (section id expected)")
      end)
    end)
  end)

  describe(".new()", function()
    local dir

    before_each(function() dir = helper.tmpdir() end)
    after_each(function() helper.rmrf(dir) end)

    local function config_error(env)
      local err = error_of(TrainingSchool.new, env)
      assert_kind("ConfigError", err)
      return err
    end

    it("refuses an env that is not a table", function()
      assert.has_error(function() TrainingSchool.new("memory:") end,
        "bad argument #1 to 'new' (env table expected, got string)")
    end)

    it("gives each memory: application its own store", function()
      local a, b = TrainingSchool.new {}, TrainingSchool.new { store = "memory:" }
      finally(function() a:close(); b:close() end)
      a:register("Fido")
      assert.are.equal(1, a:max_notification_id())
      assert.are.equal(0, b:max_notification_id())
      assert.is_false(b.repository:contains(Dog.create_id("Fido")))
    end)

    it("defaults to a memory: store", function()
      local app = TrainingSchool.new {}
      finally(function() app:close() end)
      app:register("Fido")
      assert.are.equal(1, app:max_notification_id())
    end)

    it("takes the store from the env table, by short or long key", function()
      local a = TrainingSchool.new { store = helper.store_uri(dir), sync = "none" }
      a:register("Fido")
      a:close()
      local b = TrainingSchool.new { CAIRN_STORE = helper.store_uri(dir), CAIRN_SYNC = "none" }
      finally(function() b:close() end)
      assert.is_true(b.repository:contains(Dog.create_id("Fido")))
    end)

    it("lets <APPNAME>_<KEY> take precedence over <KEY>", function()
      local app = TrainingSchool.new {
        CAIRN_STORE = "foo:bar", TRAININGSCHOOL_CAIRN_STORE = helper.store_uri(dir), sync = "none",
      }
      app:register("Fido")
      app:close()
      local again = TrainingSchool.new { store = helper.store_uri(dir) }
      finally(function() again:close() end)
      assert.are.equal(1, again:max_notification_id())
      config_error { CAIRN_STORE = "memory:", TRAININGSCHOOL_CAIRN_STORE = "foo:bar" }
      config_error { CAIRN_SYNC = "none", TRAININGSCHOOL_CAIRN_SYNC = "sometimes" }
    end)

    it("reads the process environment when no env table is given", function()
      local script = dir .. "/env.lua"
      helper.write_file(script, [[
        local cairn = require "cairn"
        local App = cairn.application("TrainingSchool")
        local Dog = cairn.aggregate("Dog")
        Dog:created("Registered", function(self, name) self.name = name end)
        local app = App.new(arg[1] == "table" and { sync = "none" } or nil)
        app:save(Dog("Fido"))
        app:close()
      ]])
      local function run(vars, mode)
        return helper.run(("env %s %s %s %s"):format(vars, helper.luajit_cmd, helper.shell_quote(script), mode or ""))
      end
      local function store(name) return helper.shell_quote(helper.store_uri(dir, name)) end
      local code, _, stderr = run("CAIRN_STORE=" .. store("env1"))
      assert.are.equal(0, code, stderr)
      code, _, stderr = run("CAIRN_STORE=foo:bar TRAININGSCHOOL_CAIRN_STORE=" .. store("env2"))
      assert.are.equal(0, code, stderr)
      -- the env table overrides key by key; the rest comes from the process environment
      code, _, stderr = run("CAIRN_STORE=" .. store("env3"), "table")
      assert.are.equal(0, code, stderr)
      code, _, stderr = run("CAIRN_STORE=foo:bar")
      assert.are_not.equal(0, code)
      assert.matches("ConfigError", stderr)
      for _, name in ipairs { "env1", "env2", "env3" } do
        local app = TrainingSchool.new { store = helper.store_uri(dir, name) }
        local n = app:max_notification_id()
        app:close()
        assert.are.equal(1, n, name)
      end
    end)

    it("refuses a bad sync value", function()
      local err = config_error { sync = "sometimes" }
      assert.matches("sometimes", err.message, 1, true)
      config_error { CAIRN_SYNC = "FULL!" }
    end)

    it("accepts both sync values", function()
      for _, sync in ipairs { "full", "none" } do
        local app = TrainingSchool.new { store = helper.store_uri(dir, sync), sync = sync }
        app:register("Fido")
        assert.are.equal(1, app:max_notification_id())
        app:close()
      end
    end)

    it("refuses malformed cipher keys and unknown compressors", function()
      for _, key in ipairs { "short", "AAAA", "not base64 at all!!!!!!!!!!!!!!!!!!!!!!!!!!!",
                             "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA" } do
        local err = config_error { cipher_key = key }
        assert.matches("malformed", err.message)
      end
      config_error { CAIRN_CIPHER_KEY = "AAAA" }
      config_error { compressor = "lz4" }
      for _, comp in ipairs { "none", "zstd" } do
        local app = TrainingSchool.new { compressor = comp }
        app:close()
      end
    end)

    it("keeps key material out of the error message", function()
      local key = "c2VjcmV0IGtleSBtYXRlcmlhbCBzZWNyZXQga2V5IG1h"
      local err = config_error { cipher_key = key }
      assert.is_nil(err.message:find(key, 1, true))
    end)

    it("refuses bad store URIs with ConfigError naming the URI", function()
      for _, uri in ipairs { "foo:bar", "lmdb:", "memory:x", "postgres://x:y:z", "LMDB:/tmp/x", "/tmp/x" } do
        local err = config_error { store = uri }
        assert.matches(uri:match("^postgres") and "invalid integer value \"y:z\" for connection option \"port\"" or uri,
          err.message, 1, true)
      end
    end)

    it("refuses a bad map size with a ConfigError naming the setting", function()
      -- regression: -1 reached LMDB as a huge size_t ("Cannot allocate memory")
      for _, size in ipairs { "big", "-1", "0", "1.5", "1e30", "nan", "100" } do
        local err = config_error { map_size = size }
        assert.matches("CAIRN_MAP_SIZE must be a whole number of bytes from 4096 to 2^48 (got '" .. size .. "')",
          err.message, 1, true)
      end
      local err = config_error { CAIRN_MAP_SIZE = "-1" }
      assert.matches("CAIRN_MAP_SIZE", err.message, 1, true)
    end)

    it("refuses an lmdb path that is a regular file, naming it", function()
      local file = dir .. "/file"
      helper.write_file(file, "not a store")
      local err = error_of(TrainingSchool.new, { store = "lmdb:" .. file })
      assert_kind("ConfigError", err)
      assert.matches(file, err.message, 1, true)
      assert.are.equal("not a store", helper.read_file(file))
    end)

    it("refuses an LMDB environment that is not a cairn store", function()
      local path = dir .. "/foreign"
      local code, _, stderr = helper.run(("mkdir -p %s && printf 'hello\\nworld\\n' | mdb_load -T %s"):format(
        helper.shell_quote(path), helper.shell_quote(path)))
      if code ~= 0 then
        pending("mdb_load (lmdb-utils) is not available: " .. stderr)
        return
      end
      local err = config_error { store = "lmdb:" .. path }
      assert.matches(path, err.message, 1, true)
      -- and left it alone
      local _, dump = helper.run("mdb_dump -p " .. helper.shell_quote(path))
      assert.matches("hello", dump)
    end)

    it("creates missing parent directories of an lmdb path", function()
      local app = TrainingSchool.new { store = "lmdb:" .. dir .. "/a/b/c", sync = "none" }
      app:register("Fido")
      app:close()
      assert.is_not_nil(helper.read_file(dir .. "/a/b/c/data.mdb"))
    end)
  end)

  -- on a store that outlives its applications (memory: lives and dies with one)
  describe("across opens", function()
    helper.each_store(function(ctx)
      local function open(env) return ctx.open(TrainingSchool, env) end

      it("keeps every event across a reopen, and continues the ids", function()
        local a = open()
        a:register("Fido")
        a:add_trick("Fido", "roll")
        write_notes(a, 3)
        a:close()
        local b = open()
        assert.are.equal(5, b:max_notification_id())
        assert.are.same({ "roll" }, b:get_tricks("Fido"))
        assert.are.same(range(1, 5), ids_of(b.log:select(1, 10)))
        assert.are.same({ 6 }, ids_of(b:add_trick("Fido", "sit"), "notification_id"))
        assert_error_kind("ConcurrencyError", function() b:register("Fido") end, Dog.create_id("Fido"))
      end)

      it("survives a reopen with sync = full", function()
        local a = open { sync = "full" }
        a:register("Fido")
        a:close()
        local b = open { sync = "full" }
        assert.are.equal(1, b:max_notification_id())
      end)

      it("lets two applications in one process share the store", function()
        local a, b = open(), open()
        a:register("Fido")
        assert.is_true(b.repository:contains(Dog.create_id("Fido")))
        b:add_trick("Fido", "roll")
        assert.are.same({ "roll" }, a:get_tricks("Fido"))
        assert.are.equal(2, a:max_notification_id())
        -- a stale copy from one is refused by the other
        local stale = a.repository:get(Dog.create_id("Fido"))
        b:add_trick("Fido", "sit")
        stale:add_trick("beg")
        assert_kind("ConcurrencyError", error_of(a.save, a, stale))
        -- closing one leaves the other working
        a:close()
        assert.are.same({ "roll", "sit" }, b:get_tricks("Fido"))
        b:register("Rex")
        assert.are.equal(4, b:max_notification_id())
      end)

      -- a handle chains a new event to the stream's last one also when it never saw that
      -- event (loaded from a snapshot with nothing after it; saved by another handle)
      it("chains saves correctly across handles that did not see each other's events", function()
        local a = open { snapshotting = "y" }
        a:register("Fido")
        a:add_trick("Fido", "roll")
        a:take_snapshot(Dog.create_id("Fido"))
        local b = open { snapshotting = "y" }
        b:add_trick("Fido", "sit")   -- from the snapshot at version 2, nothing after it
        a:add_trick("Fido", "beg")
        b:add_trick("Fido", "stay")
        a:take_snapshot(Dog.create_id("Fido"))
        local c = open { snapshotting = "y" }
        c:register("Rex")            -- (a handle's first save also reads the store's key state)
        c:add_trick("Fido", "down")  -- from the snapshot at version 5, nothing after it
        c:close()
        assert.are.same({ "roll", "sit", "beg", "stay", "down" }, a:get_tricks("Fido"))
        a:close()
        b:close()
        local code, out, err = helper.run(("%s verify %s"):format(helper.shell_quote(helper.cairn_bin),
          helper.shell_quote(ctx.uri)))
        assert.are.equal(0, code, err)
        assert.matches("problems: 0", out, 1, true)
      end)
    end, { helper.engine })
  end)

  describe("on disk, LMDB only", function()
    helper.each_store(function(ctx)
      local function open(env) return ctx.open(TrainingSchool, env) end

      it("shares the store between different spellings of its path", function()
        local a = open()
        local b = open { store = "lmdb:" .. ctx.dir .. "/./store/" }
        a:register("Fido")
        assert.are.equal(1, b:max_notification_id())
        a:close()
        b:register("Rex")
        assert.are.equal(2, b:max_notification_id())
      end)

      it("grows the map by itself", function()
        local a = open { CAIRN_MAP_SIZE = 65536 }
        local chunk = string.rep("0123456789abcdef", 4096) -- 64 KiB
        local notes = {}
        for i = 1, 64 do -- 4 MiB in all
          notes[i] = Note(chunk .. i)
          if i % 8 == 0 then notes[i]:edit(chunk:rep(4) .. i) end
          a:save(notes[i])
        end
        local total = a:max_notification_id()
        assert.are.equal(72, total)
        a:close()
        local b = open { CAIRN_MAP_SIZE = 65536 }
        assert.are.equal(total, b:max_notification_id())
        for i, note in ipairs(notes) do
          local expected = i % 8 == 0 and chunk:rep(4) .. i or chunk .. i
          assert.are.equal(expected, b.repository:get(note.id).text)
        end
        local count = 0
        for _, n in ipairs(b.log:select(1, 1000)) do count = count + #n.event.text end
        assert.is_true(count > 4 * 1024 * 1024)
      end)

      it("grows the map for a single event larger than the map", function()
        local a = open { map_size = 65536 }
        local big = Note(string.rep("x", 3 * 1024 * 1024))
        a:save(big)
        assert.are.equal(3 * 1024 * 1024, #a.repository:get(big.id).text)
      end)

      it("lets a second application see events saved after the first grew the map", function()
        local a, b = open { map_size = 65536 }, open { map_size = 65536 }
        assert.are.equal(0, b:max_notification_id())
        local note = Note(string.rep("y", 1024 * 1024))
        a:save(note)
        assert.are.equal(1, b:max_notification_id())
        assert.are.equal(1024 * 1024, #b.repository:get(note.id).text)
        local other = Note(string.rep("z", 2 * 1024 * 1024))
        b:save(other)
        assert.are.equal(2 * 1024 * 1024, #a.repository:get(other.id).text)
      end)
    end, { "lmdb" })
  end)

  describe("()", function()
    it("refuses a name that cannot prefix environment keys", function()
      for _, name in ipairs { "Bad Name", "", "1st", "a-b", "x.y" } do
        assert.has_error(function() cairn.application(name) end,
          "bad argument #1 to 'application' (a name of letters, digits and _ expected)")
      end
      assert.has_error(function() cairn.application(nil) end,
        "bad argument #1 to 'application' (a name of letters, digits and _ expected)")
    end)
  end)

  describe(":close()", function()
    it("makes the application unusable: its calls raise a StoreError", function()
      local app = TrainingSchool.new { store = "memory:" }
      app:close()
      for _, call in ipairs {
        function() app:register("Fido") end,
        function() app:max_notification_id() end,
        function() app.repository:get(cairn.uuid.v4()) end,
        function() app.log:select(1, 10) end,
      } do
        local err = helper.assert_kind("StoreError", helper.error_of(call))
        assert.matches("the store is closed", err.message, 1, true)
      end
      app:close() -- twice is harmless
    end)
  end)

  describe("errors", function()
    it("are tables with kind, message and __tostring", function()
      local app = TrainingSchool.new {}
      finally(function() app:close() end)
      local id = cairn.uuid.v4()
      local err = error_of(app.repository.get, app.repository, id)
      assert.are.equal("AggregateNotFound", err.kind)
      assert.are.equal("string", type(err.message))
      assert.matches("AggregateNotFound", tostring(err), 1, true)
      assert.matches(id, tostring(err), 1, true)
      assert.is_true(errors.is(err))
      assert.is_false(errors.is(err, "ConcurrencyError"))
      assert.is_false(errors.is("AggregateNotFound"))
      assert.is_false(errors.is({ kind = "AggregateNotFound", message = "x" }, "AggregateNotFound"))
    end)
  end)
end)
