-- Process applications, systems and the single-threaded runner (API.md §5).
local cairn = require "cairn"
local helper = require "helper"

local school_module = helper.school("training_school")
local Dog, TrainingSchool = school_module.Dog, school_module.TrainingSchool

-- one Tally per dog, counting its tricks; ids from the dog's, so a repeat would conflict
local Tally = cairn.aggregate("Tally")
function Tally.create_id(dog_id) return cairn.uuid.v5(cairn.uuid.NAMESPACE_URL, "/tally/" .. dog_id) end
Tally:created("Started", function(self, dog_id) self.dog_id = dog_id; self.n = 0 end)
Tally.count = Tally:event("Counted", function(self, trick) -- luacheck: ignore 212
  self.n = self.n + 1
end)

local fail_on -- a trick name that makes the policy fail
local Counters = cairn.process_application("Counters")
Counters:policy("Dog.Registered", function(_, event, processing)
  processing:collect(Tally(event.originator_id))
end)
Counters:policy("Dog.TrickAdded", function(self, event, processing)
  local tally = self.repository:get(Tally.create_id(event.originator_id))
  tally:count(event.trick)
  if event.trick == fail_on then
    local extra = Tally(cairn.uuid.v4())
    processing:collect(extra)
    error("cannot count " .. event.trick)
  end
  processing:collect(tally)
end)

-- follows Counters: one Note per Tally.Counted
local Note = cairn.aggregate("Note")
Note:created("Written", function(self, text) self.text = text end)
local Notes = cairn.process_application("Notes")
Notes:policy("Tally.Counted", function(_, event, processing)
  processing:collect(Note(event.trick))
end)

local assert_kind = helper.assert_kind

describe("cairn.system", function()
  it("knows leaders, followers and processors, leaders first", function()
    local system = cairn.system { pipes = { { TrainingSchool, Counters, Notes } } }
    assert.are.same({ "TrainingSchool", "Counters", "Notes" }, system.order)
    assert.are.same({ "TrainingSchool", "Counters" }, system.leaders)
    assert.are.same({ "Counters", "Notes" }, system.followers)
    assert.are.same({ "Counters" }, system.processors)
    assert.are.same({ "TrainingSchool" }, system.follows.Counters)
    assert.are.equal(Notes, system:get_app_cls("Notes"))
  end)

  it("refuses bad graphs with ConfigError", function()
    local function refused(opts, pattern)
      local err = helper.error_of(cairn.system, opts)
      assert_kind("ConfigError", err)
      assert.matches(pattern, err.message)
    end
    refused({}, "needs pipes")
    refused({ pipes = {} }, "at least one pipe")
    refused({ pipes = { {} } }, "pipe 1 is not")
    refused({ pipes = { { TrainingSchool, "Counters" } } }, "pipe 1, position 2: Counters is not an application")
    refused({ pipes = { { TrainingSchool, Counters }, { cairn.application("Counters") } } },
      "two different applications are named Counters")
    refused({ pipes = { { Counters, TrainingSchool } } }, "TrainingSchool follows Counters but is not a process")
    refused({ pipes = { { TrainingSchool, Counters, Notes, Counters } } }, "cycle %(Counters %-> Notes %-> Counters%)")
    refused({ pipes = { { Counters, Counters } } }, "cycle")
    assert_kind("ConfigError", helper.error_of(function()
      cairn.system({ pipes = { { TrainingSchool, Counters } } }):get_app_cls("Nope")
    end))
    assert.is_truthy(cairn.system { pipes = { { TrainingSchool, Counters, Notes, Counters } }, allow_cycles = true })
  end)

  it("gives each application of an lmdb system its own store", function()
    local system = cairn.system { pipes = { { TrainingSchool, Counters } } }
    assert.are.equal("lmdb:/x/TrainingSchool", system:application_env("TrainingSchool", { store = "lmdb:/x/" })
      .CAIRN_STORE)
    local own = { store = "lmdb:/x", COUNTERS_CAIRN_STORE = "lmdb:/y" }
    assert.are.equal(own, system:application_env("Counters", own))
  end)
end)

describe("cairn.SingleThreadedRunner", function()
  local dir, base -- base: the system's store, where each application gets its own
  before_each(function() dir = helper.tmpdir(); base = helper.store_uri(dir, "system"); fail_on = nil end)
  after_each(function() helper.rmrf(dir) end)

  local function member(name) return helper.member_uri(base, name) end

  local function start(pipes)
    local system = cairn.system { pipes = pipes or { { TrainingSchool, Counters, Notes } } }
    local runner = cairn.SingleThreadedRunner.new(system, { store = base, sync = "none" })
    runner:start()
    return runner
  end

  it("processes followers synchronously after each leader save, down the pipe", function()
    local runner = start()
    finally(function() runner:stop() end)
    local school = runner:get(TrainingSchool)
    school:register("Fido")
    school:add_trick("Fido", "roll")
    school:add_trick("Fido", "sit")
    local counters = runner:get("Counters")
    assert.are.equal(2, counters.repository:get(Tally.create_id(Dog.create_id("Fido"))).n)
    assert.are.equal(3, counters.store:tracking_max("TrainingSchool"))
    local notes = runner:get(Notes)
    assert.are.equal(2, notes:max_notification_id())
    assert.are.equal(3, notes.store:tracking_max("Counters"))
  end)

  it("records each policy's events with causation_id and correlation_id (API.md §9)", function()
    local runner = start()
    finally(function() runner:stop() end)
    local school = runner:get(TrainingSchool)
    school:register("Fido")
    local added = school:add_trick("Fido", "roll")[1].event
    local counted = runner:get(Counters).log:select(2, 1)[1].event
    assert.are.equal("Tally.Counted", counted.topic)
    -- the school's event had no correlation: its own id starts one
    assert.are.same({ causation_id = added.event_id, correlation_id = added.event_id }, counted.metadata)
    local note = runner:get(Notes).log:select(1, 1)[1].event
    assert.are.same({ causation_id = counted.event_id, correlation_id = added.event_id }, note.metadata)
    -- events triggered outside a policy carry none
    assert.are.same({}, school:register("Rex")[1].event.metadata)
  end)

  it("lets a policy's own metadata keys win over the causation metadata", function()
    local Marking = cairn.process_application("Marking")
    Marking:policy("Dog.TrickAdded", function(_, event, processing)
      local note = Note("x")
      note:trigger("Discarded", {}, { correlation_id = "mine", by = event.trick })
      processing:collect(note)
    end)
    local runner = start({ { TrainingSchool, Marking } })
    finally(function() runner:stop() end)
    local school = runner:get(TrainingSchool)
    school:register("Fido")
    local added = school:add_trick("Fido", "sit")[1].event
    local items = runner:get(Marking).log:select(1, 2)
    assert.are.same({ causation_id = added.event_id, correlation_id = added.event_id }, items[1].event.metadata)
    assert.are.same({ causation_id = added.event_id, correlation_id = "mine", by = "sit" }, items[2].event.metadata)
  end)

  it("prompts followers after save_once and after DCB appends too", function()
    local runner = start({ { TrainingSchool, Counters } })
    finally(function() runner:stop() end)
    local school, counters = runner:get(TrainingSchool), runner:get(Counters)
    school:save_once("reg-fido", Dog("Fido"))
    assert.are.equal(1, counters.store:tracking_max("TrainingSchool"))
    school.events:append { { type = "Note", data = "x", tags = { "n" } } }
    assert.are.equal(2, counters.store:tracking_max("TrainingSchool"))
  end)

  it("catches up on start with what was recorded while it was stopped, exactly once", function()
    local runner = start()
    runner:get(TrainingSchool):register("Fido")
    runner:stop()
    local school = TrainingSchool.new { store = member("TrainingSchool"), sync = "none" }
    school:add_trick("Fido", "roll")
    school:close()
    runner = start()
    finally(function() runner:stop() end)
    local counters = runner:get(Counters)
    assert.are.equal(1, counters.repository:get(Tally.create_id(Dog.create_id("Fido"))).n)
    assert.are.equal(2, counters:max_notification_id()) -- Started, Counted: nothing twice
    assert.are.equal(2, counters.store:tracking_max("TrainingSchool"))
  end)

  it("leaves nothing of a failing policy, and processes the notification once fixed", function()
    local runner = start({ { TrainingSchool, Counters } })
    finally(function() runner:stop() end)
    local school, counters = runner:get(TrainingSchool), runner:get(Counters)
    school:register("Fido")
    fail_on = "bad"
    local err = helper.error_of(school.add_trick, school, "Fido", "bad")
    assert.matches("Counters: notification 2 of TrainingSchool %(Dog.TrickAdded%) failed: .*cannot count bad",
      tostring(err))
    -- the leader's event is recorded; the follower has nothing of the failed notification
    assert.are.equal(2, school:max_notification_id())
    assert.are.equal(1, counters:max_notification_id())
    assert.are.equal(1, counters.store:tracking_max("TrainingSchool"))
    fail_on = nil
    school:register("Rex") -- the next save lets the follower retry from where it stopped
    assert.are.equal(1, counters.repository:get(Tally.create_id(Dog.create_id("Fido"))).n)
    assert.are.equal(3, counters.store:tracking_max("TrainingSchool"))
  end)

  it("lets two processes of one follower share the work without doing anything twice", function()
    local school = TrainingSchool.new { store = helper.store_uri(dir, "school"), sync = "none" }
    finally(function() school:close() end)
    school:register("Fido")
    for i = 1, 5 do school:add_trick("Fido", "t" .. i) end
    local env = { store = helper.store_uri(dir, "counters"), sync = "none" }
    local a, b = Counters.new(env), Counters.new(env)
    finally(function() a:close(); b:close() end)
    a:follow("TrainingSchool", school)
    b:follow("TrainingSchool", school)
    local raced = false
    b.policies = setmetatable({ ["Dog.TrickAdded"] = function(self, event, processing)
      if not raced then
        raced = true
        a:pull_and_process("TrainingSchool") -- the other process does everything first
      end
      return Counters.policies["Dog.TrickAdded"](self, event, processing)
    end }, { __index = Counters.policies })
    b:pull_and_process("TrainingSchool")
    assert.is_true(raced)
    assert.are.equal(5, b.repository:get(Tally.create_id(Dog.create_id("Fido"))).n)
    assert.are.equal(6, b:max_notification_id())
    assert.are.equal(6, b.store:tracking_max("TrainingSchool"))
  end)

  it("refuses two applications on one store", function()
    local runner = cairn.SingleThreadedRunner.new(cairn.system { pipes = { { TrainingSchool, Counters } } },
      { store = base, COUNTERS_CAIRN_STORE = member("TrainingSchool") })
    helper.assert_error_kind("ConfigError", function() runner:start() end,
      "TrainingSchool and Counters would share the store " .. member("TrainingSchool"))
  end)

  it("runs on memory: stores", function()
    local runner = cairn.SingleThreadedRunner.new(cairn.system { pipes = { { TrainingSchool, Counters } } })
    runner:start()
    finally(function() runner:stop() end)
    runner:get(TrainingSchool):register("Fido")
    assert.are.equal(1, runner:get(Counters):max_notification_id())
  end)
end)
