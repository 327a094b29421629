local cairn = require "cairn"
local core = require "cairn.core"
local helper = require "helper"

local errors = cairn.errors
local error_of = helper.error_of

local UUID = "^%x%x%x%x%x%x%x%x%-%x%x%x%x%-%x%x%x%x%-%x%x%x%x%-%x%x%x%x%x%x%x%x%x%x%x%x$"
local UUID_V4 = "^%x%x%x%x%x%x%x%x%-%x%x%x%x%-4%x%x%x%-[89ab]%x%x%x%-%x%x%x%x%x%x%x%x%x%x%x%x$"

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
Dog:event("Renamed", function(self, name) self.name = name end)
function Dog:rename(name)
  if name == "" then error("a dog needs a name") end
  return self:trigger("Renamed", { name = name })
end
Dog.bite = Dog:event("Bit", function(self, whom)
  if whom == "postman" then error("dogs must not bite the postman") end
  self.bitten = whom
end)
-- more than three parameters: apply is called through unpack
Dog.describe = Dog:event("Described", function(self, a, b, c, d, e)
  self.described = { a, b, c, d, e }
end)

-- no create_id: ids are random v4 UUIDs
local Cat = cairn.aggregate("Cat")
Cat:created("Born", function(self) self.lives = 9 end)
Cat.lose_life = Cat:event("LifeLost", function(self) self.lives = self.lives - 1 end)

-- create_id returns its argument as it is, UUID or not
local Tag = cairn.aggregate("Tag")
function Tag.create_id(key) return key end
Tag:created("Made", function(self, key) self.key = key end)

local function fido_id()
  return cairn.uuid.v5(cairn.uuid.NAMESPACE_URL, "/dogs/Fido")
end

-- within a few µs of being a whole number of µs
local function is_whole_us(t)
  local us = t * 1e6
  return math.abs(us - math.floor(us + 0.5)) < 1e-2
end

describe("cairn.aggregate", function()
  describe("()", function()
    it("returns a class whose event topics are prefixed by the class name", function()
      local dog = Dog("Fido")
      local ev = dog:collect_events()[1]
      assert.are.equal("Dog.Registered", ev.topic)
    end)

    it("refuses a name with a dot or an empty name", function()
      local refusal = "bad argument #1 to 'aggregate' (a name without dots expected)"
      assert.has_error(function() cairn.aggregate("A.B") end, refusal)
      assert.has_error(function() cairn.aggregate("") end, refusal)
      assert.has_error(function() cairn.aggregate(nil) end, refusal)
    end)

    it("refuses reserved parameter names at definition", function()
      local K = cairn.aggregate("Reserved")
      for _, case in ipairs {
        { "topic", function(self, topic) end },                           -- luacheck: ignore 212
        { "originator_id", function(self, originator_id) end },           -- luacheck: ignore 212
        { "originator_version", function(self, originator_version) end }, -- luacheck: ignore 212
        { "timestamp", function(self, x, timestamp) end },                -- luacheck: ignore 212
        { "__meta", function(self, __meta) end },                         -- luacheck: ignore 212
      } do
        assert.has_error(function() K:event("Bad", case[2]) end,
          ("Reserved.Bad: parameter '%s' cannot be an event field (the name is reserved)"):format(case[1]))
      end
      assert.has_error(function() K:created("Made", function(self, topic) end) end, -- luacheck: ignore 212
        "Reserved.Made: parameter 'topic' cannot be an event field (the name is reserved)")
    end)

    -- regression: a domain "Discarded" event was accepted, and the aggregate it
    -- created was then taken for a discarded one (contains false, get not found)
    it("refuses the reserved event name Discarded, for :created and :event", function()
      local K = cairn.aggregate("ReservedEvent")
      local err = error_of(K.created, K, "Discarded", function(self, name) self.name = name end)
      assert.matches("ReservedEvent.Discarded: the event name 'Discarded' is reserved", tostring(err), 1, true)
      err = error_of(K.event, K, "Discarded", function(self) end) -- luacheck: ignore 212
      assert.matches("ReservedEvent.Discarded: the event name 'Discarded' is reserved", tostring(err), 1, true)
      K:created("Made", function(self) end) -- luacheck: ignore 212
      assert.are.equal("ReservedEvent.Discarded", K():discard().topic)
    end)

    it("refuses an event name with a dot and an apply that is not a function", function()
      local K = cairn.aggregate("BadEvents")
      local bad_name = "bad argument #1 (event name expected: a non-empty string without dots)"
      assert.has_error(function() K:event("A.B", function(self) end) end, bad_name) -- luacheck: ignore 212
      assert.has_error(function() K:event("", function(self) end) end, bad_name) -- luacheck: ignore 212
      assert.has_error(function() K:event("X", "not a function") end,
        "bad argument #2 for event 'X' (apply function expected)")
    end)

    it("refuses to construct a class without a creation event", function()
      local K = cairn.aggregate("NoCreation")
      assert.has_error(function() return K() end, "NoCreation has no creation event (define one with :created)")
    end)
  end)

  describe("creation", function()
    it("Dog('Fido') triggers and applies the creation event", function()
      local dog = Dog("Fido")
      assert.are.equal("Fido", dog.name)
      assert.are.same({}, dog.tricks)
      assert.are.equal(1, dog.version)
      local events = dog:collect_events()
      assert.are.equal(1, #events)
      assert.are.equal("Dog.Registered", events[1].topic)
      assert.are.same({ name = "Fido" }, cairn.event_fields(events[1]))
    end)

    it("Dog.create('Fido') is the same constructor", function()
      local a, b = Dog("Fido"), Dog.create("Fido")
      assert.are.equal(a.id, b.id)
      assert.are.equal(b.name, "Fido")
      assert.are.equal(1, b.version)
      assert.are.equal(1, #b:collect_events())
    end)

    it("computes the id with create_id", function()
      assert.are.equal(fido_id(), Dog("Fido").id)
      assert.are_not.equal(Dog("Fido").id, Dog("Rex").id)
    end)

    it("keeps the id in canonical lower case when create_id returns upper case", function()
      local id = cairn.uuid.v4()
      local tag = Tag(id:upper())
      assert.are.equal(id, tag.id)
      assert.matches(UUID, tag.id)
      assert.are.equal(id, tag:collect_events()[1].originator_id)
    end)

    it("refuses a create_id that returns no UUID", function()
      local err = error_of(Tag, "not-a-uuid")
      assert.is_true(errors.is(err, "SchemaError"), tostring(err))
      assert.matches("not%-a%-uuid", err.message)
    end)

    it("gives a random version 4 id when create_id is not defined", function()
      local a, b = Cat(), Cat()
      assert.matches(UUID_V4, a.id)
      assert.matches(UUID_V4, b.id)
      assert.are_not.equal(a.id, b.id)
    end)

    it("sets created_on and modified_on to the event's timestamp, to the microsecond", function()
      local before = core.now_us()
      local dog = Dog("Fido")
      local after = core.now_us()
      local ev = dog:collect_events()[1]
      assert.are.equal(ev.timestamp, dog.created_on)
      assert.are.equal(ev.timestamp, dog.modified_on)
      assert.is_true(is_whole_us(dog.created_on))
      local us = math.floor(dog.created_on * 1e6 + 0.5)
      assert.is_true(before <= us and us <= after, ("%d <= %d <= %d"):format(before, us, after))
    end)

    it("refuses more arguments than the creation event has fields", function()
      assert.has_error(function() return Dog("Fido", "extra") end, "Dog.Registered takes 1 argument(s)")
    end)

    it("starts at version 0 with initial_version = 0", function()
      local Zero = cairn.aggregate("ZeroBased", { initial_version = 0 })
      Zero:created("Made", function(self) self.n = 0 end)
      Zero.bump = Zero:event("Bumped", function(self) self.n = self.n + 1 end)
      local z = Zero()
      assert.are.equal(0, z.version)
      z:bump()
      assert.are.equal(1, z.version)
      local events = z:collect_events()
      assert.are.equal(0, events[1].originator_version)
      assert.are.equal(1, events[2].originator_version)
    end)
  end)

  describe("event methods", function()
    it("trigger an event whose fields are named after apply's parameters", function()
      local dog = Dog("Fido")
      local ev = dog:add_trick("roll")
      assert.are.equal("Dog.TrickAdded", ev.topic)
      assert.are.same({ trick = "roll" }, cairn.event_fields(ev))
      assert.are.same({ "roll" }, dog.tricks)
    end)

    it("pass the fields to apply in parameter order, also past three", function()
      local dog = Dog("Fido")
      local ev = dog:describe(1, "two", true, 4.5, "five")
      assert.are.same({ 1, "two", true, 4.5, "five" }, dog.described)
      assert.are.same({ a = 1, b = "two", c = true, d = 4.5, e = "five" }, cairn.event_fields(ev))
    end)

    it("increment the version by one per event", function()
      local dog = Dog("Fido")
      for i = 1, 5 do
        local ev = dog:add_trick("t" .. i)
        assert.are.equal(i + 1, dog.version)
        assert.are.equal(i + 1, ev.originator_version)
      end
    end)

    it("update modified_on but not created_on", function()
      local dog = Dog("Fido")
      local created = dog.created_on
      local ev
      repeat ev = dog:add_trick("roll") until ev.timestamp > created
      assert.are.equal(created, dog.created_on)
      assert.are.equal(ev.timestamp, dog.modified_on)
      assert.is_true(is_whole_us(dog.modified_on))
    end)

    it("refuse more arguments than the event has fields", function()
      local dog = Dog("Fido")
      assert.has_error(function() dog:add_trick("roll", "extra") end, "Dog.TrickAdded takes 1 argument(s)")
      assert.are.equal(1, dog.version)
    end)
  end)

  describe(":trigger()", function()
    it("triggers and applies an event from a table of fields", function()
      local dog = Dog("Fido")
      local ev = dog:trigger("Renamed", { name = "Rex" })
      assert.are.equal("Rex", dog.name)
      assert.are.equal(2, dog.version)
      assert.are.equal("Dog.Renamed", ev.topic)
      assert.are.same({ name = "Rex" }, cairn.event_fields(ev))
    end)

    it("serves commands that validate first", function()
      local dog = Dog("Fido")
      assert.has_error(function() dog:rename("") end, "a dog needs a name")
      assert.are.equal(1, dog.version)
      dog:rename("Rex")
      assert.are.equal("Rex", dog.name)
      local events = dog:collect_events()
      assert.are.equal(2, #events)
      assert.are.equal("Dog.Renamed", events[2].topic)
    end)

    it("raises for an unknown event name", function()
      local dog = Dog("Fido")
      assert.has_error(function() dog:trigger("Vanished", {}) end, "Dog has no event 'Vanished'")
      assert.are.equal(1, dog.version)
      assert.are.equal(1, #dog:collect_events())
    end)

    it("refuses to trigger the creation event", function()
      local dog = Dog("Fido")
      assert.has_error(function() dog:trigger("Registered", { name = "Rex" }) end,
        "'Registered' is a creation event: construct a new Dog instead")
      assert.are.equal("Fido", dog.name)
      assert.are.equal(1, dog.version)
    end)

    it("refuses reserved field names", function()
      local dog = Dog("Fido")
      for _, name in ipairs { "topic", "originator_id", "originator_version", "timestamp", "event_id", "metadata",
                              "__index" } do
        helper.assert_error_kind("SchemaError", function() dog:trigger("Renamed", { name = "Rex", [name] = "x" }) end,
          ("Dog.Renamed: field name '%s' is reserved"):format(name))
      end
      assert.are.equal(1, dog.version)
    end)
  end)

  describe(":collect_events()", function()
    it("returns the pending events in order and clears them", function()
      local dog = Dog("Fido")
      dog:add_trick("roll")
      dog:rename("Rex")
      local events = dog:collect_events()
      local topics, versions = {}, {}
      for i, ev in ipairs(events) do topics[i], versions[i] = ev.topic, ev.originator_version end
      assert.are.same({ "Dog.Registered", "Dog.TrickAdded", "Dog.Renamed" }, topics)
      assert.are.same({ 1, 2, 3 }, versions)
      assert.are.same({}, dog:collect_events())
      dog:add_trick("sit")
      events = dog:collect_events()
      assert.are.equal(1, #events)
      assert.are.equal(4, events[1].originator_version)
    end)

    it("keeps each aggregate's pending events apart", function()
      local a, b = Dog("Fido"), Dog("Rex")
      a:add_trick("roll")
      assert.are.equal(2, #a:collect_events())
      assert.are.equal(1, #b:collect_events())
    end)
  end)

  describe(":discard()", function()
    it("triggers <Aggregate>.Discarded", function()
      local cat = Cat()
      local ev = cat:discard()
      assert.are.equal("Cat.Discarded", ev.topic)
      assert.are.equal(2, cat.version)
      local events = cat:collect_events()
      assert.are.equal(2, #events)
      assert.are.equal("Cat.Discarded", events[2].topic)
    end)
  end)

  describe("events", function()
    it("carry topic, originator_id, originator_version and timestamp", function()
      local dog = Dog("Fido")
      local ev = dog:add_trick("roll")
      assert.are.equal("Dog.TrickAdded", ev.topic)
      assert.are.equal(dog.id, ev.originator_id)
      assert.are.equal(2, ev.originator_version)
      assert.are.equal("number", type(ev.timestamp))
      assert.is_true(is_whole_us(ev.timestamp))
      assert.are.equal("roll", ev.trick)
      assert.is_true(cairn.is_event(ev))
      assert.is_false(cairn.is_event({ topic = "Dog.TrickAdded" }))
    end)

    it("are plain tables: pairs lists the header and the fields", function()
      local dog = Dog("Fido")
      local ev = dog:add_trick("roll")
      assert.is_nil(getmetatable(ev))
      local keys = {}
      for k in pairs(ev) do keys[#keys + 1] = k end
      table.sort(keys)
      assert.are.same({ "event_id", "metadata", "originator_id", "originator_version", "timestamp", "topic",
        "trick" }, keys)
      assert.matches(UUID_V4, ev.event_id)
      assert.are.same({}, ev.metadata)
      assert.are_not.equal(ev.event_id, dog:rename("Rex").event_id)
    end)

    it("carry the metadata given to trigger, as a copy", function()
      local dog = Dog("Fido")
      local meta = { causation_id = cairn.uuid.v4(), tags = { "a" } }
      local ev = dog:trigger("Renamed", { name = "Rex" }, meta)
      meta.tags[1] = "changed"
      assert.are.same({ causation_id = meta.causation_id, tags = { "a" } }, ev.metadata)
      local err = error_of(function() dog:trigger("Renamed", { name = "Max" }, { f = function() end }) end)
      assert.are.equal("SchemaError", err.kind)
      assert.matches("metadata.f", err.message, 1, true)
    end)

    it("can be changed without changing what is recorded", function()
      local app = cairn.application("PlainEvents").new { store = "memory:" }
      finally(function() app:close() end)
      local dog = Dog("Fido")
      local ev = dog:add_trick("roll")
      local event_id = ev.event_id
      ev.trick, ev.topic, ev.originator_version, ev.event_id, ev.extra = "sit", "Dog.Other", 7, "x", true
      ev.metadata.note = "added"
      app:save(dog)
      local n = app.log:select(2, 1)[1]
      assert.are.equal("roll", n.event.trick)
      assert.are.equal("Dog.TrickAdded", n.topic)
      assert.are.equal(2, n.originator_version)
      assert.is_nil(n.event.extra)
      assert.are.same({}, n.event.metadata)
      assert.are.equal(event_id, n.event.event_id)
      -- and the events a read hands out are the reader's own
      n.event.trick = "changed"
      assert.are.equal("roll", app.log:select(2, 1)[1].event.trick)
      assert.are.same({ "roll" }, app.repository:get(dog.id).tricks)
    end)

    it("refuse payload fields named like the header", function()
      local dog = Dog("Fido")
      for _, name in ipairs { "topic", "event_id", "metadata", "timestamp" } do
        local err = error_of(function() dog:trigger("Renamed", { name = "Rex", [name] = 1 }) end)
        assert.are.equal("SchemaError", err.kind)
        assert.matches("'" .. name .. "' is reserved", err.message, 1, true)
      end
    end)

    it("hold a copy of the fields, not the caller's tables", function()
      local Bag = cairn.aggregate("Bag")
      Bag:created("Made", function(self) self.items = nil end)
      Bag.fill = Bag:event("Filled", function(self, items) self.items = items end)
      local bag = Bag()
      local items = { "a", "b" }
      local ev = bag:fill(items)
      items[1] = "changed"
      assert.are.same({ "a", "b" }, ev.items)
      assert.are.same({ "a", "b" }, bag.items)
    end)
  end)

  describe("apply errors", function()
    it("leave no pending event and the version unchanged", function()
      local dog = Dog("Fido")
      dog:collect_events()
      assert.has_error(function() dog:bite("postman") end, "dogs must not bite the postman")
      assert.are.equal(1, dog.version)
      assert.are.same({}, dog:collect_events())
      dog:bite("burglar")
      assert.are.equal(2, dog.version)
      local events = dog:collect_events()
      assert.are.equal(1, #events)
      assert.are.equal(2, events[1].originator_version)
    end)

    it("in the creation event construct nothing", function()
      local Fragile = cairn.aggregate("Fragile")
      Fragile:created("Made", function(self, ok) -- luacheck: ignore 212
        if not ok then error("cannot make it") end
      end)
      assert.has_error(function() return Fragile(false) end, "cannot make it")
      assert.are.equal(1, Fragile(true).version)
    end)
  end)
end)
