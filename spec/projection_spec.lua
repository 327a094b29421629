-- Views and projections (API.md §4).
local cairn = require "cairn"
local helper = require "helper"

local school_module = helper.school("training_school")
local Dog, TrainingSchool = school_module.Dog, school_module.TrainingSchool

local assert_kind = helper.assert_kind

local function counts(opts)
  local p = cairn.projection("Counts", opts or { topics = { "Dog.Registered", "Dog.TrickAdded" } })
  p:on("Dog.Registered", function(view, event)
    view:incr("dogs", 1)
    view:put("dog:" .. event.name, event.originator_id)
  end)
  p:on("Dog.TrickAdded", function(view) view:incr("tricks", 1) end)
  return p
end

describe("cairn.view", function()
  helper.each_store(function(ctx)
    local view
    before_each(function() view = cairn.view(ctx.uri, "V", { sync = "none" }) end)
    after_each(function() view:close() end)

    it("puts, gets, increments and deletes values of every kind an event may carry", function()
      assert.is_nil(view:get("missing"))
      view:put("s", "text\0bytes")
      view:put("t", { list = { 1, 2.5, true }, id = cairn.uuid.v4(), at = cairn.time.from_us(42) })
      assert.are.equal("text\0bytes", view:get("s"))
      local t = view:get("t")
      assert.are.same({ 1, 2.5, true }, t.list)
      assert.are.equal(42, t.at.us)
      assert.are.equal(1, view:incr("n"))
      assert.are.equal(11, view:incr("n", 10))
      view:delete("s")
      view:put("n", nil)
      assert.is_nil(view:get("s"))
      assert.is_nil(view:get("n"))
    end)

    it("refuses values it cannot store, keys that are not strings, and incr of a non-number", function()
      assert_kind("SchemaError", helper.error_of(view.put, view, "f", { fn = print }))
      assert.has_error(function() view:put(1, "x") end, "bad argument #1 to 'put' (string key expected, got number)")
      view:put("s", "text")
      local err = helper.error_of(view.incr, view, "s", 1)
      assert_kind("SchemaError", err)
      assert.matches("key 's' holds a string", err.message)
      assert_kind("StoreError", helper.error_of(view.put, view, ("k"):rep(600), 1))
    end)

    it("scans keys with a prefix in byte order, across pages", function()
      for i = 2500, 1, -1 do view:put(("k:%05d"):format(i), i) end
      view:put("j", 0)
      view:put("l", 0)
      local n, last = 0, ""
      for key, value in view:scan("k:") do
        n = n + 1
        assert.is_true(key > last)
        assert.are.equal(tonumber(key:sub(3)), value)
        last = key
      end
      assert.are.equal(2500, n)
      local all = {}
      for key in view:scan() do all[#all + 1] = key end
      assert.are.equal(2502, #all)
      assert.are.equal("j", all[1])
      assert.are.equal("l", all[#all])
    end)

    it("keeps views of different names apart in one store", function()
      local other = cairn.view(view.store, "W")
      view:put("k", 1)
      other:put("k", 2)
      assert.are.equal(1, view:get("k"))
      assert.are.equal(2, other:get("k"))
      local n = 0
      for _ in other:scan() do n = n + 1 end
      assert.are.equal(1, n)
    end)

    it("waits for a tracking position and raises TimeoutError when it does not come", function()
      assert.are.equal(0, view:max_tracking_id("App"))
      view.store:view_write("V", {}, { application = "App", id = 5 })
      assert.are.equal(5, view:wait("App", 5, 1))
      local t0 = cairn.time.now():seconds()
      local err = helper.error_of(view.wait, view, "App", 6, 0.1)
      assert_kind("TimeoutError", err)
      assert.matches("notification 6 of App", err.message)
      assert.is_true(cairn.time.now():seconds() - t0 >= 0.1)
    end)

    it("refuses a batch that starts at or below the recorded position, writing nothing", function()
      local encode = require("cairn.core").encode
      view.store:view_write("V", { "n", encode(50) }, { application = "App", id = 50, first = 1 })
      -- a writer that read position 0 and processed 1..1000 (the 50 are among them)
      local err = helper.error_of(view.store.view_write, view.store, "V", { "n", encode(1000), "m", encode(1) },
        { application = "App", id = 1000, first = 1 })
      assert_kind("ConcurrencyError", err)
      assert.matches("notification 1 of", err.message)
      err = helper.error_of(view.store.view_write, view.store, "V", { "n", encode(1000) },
        { application = "App", id = 1000, first = 50 })
      assert_kind("ConcurrencyError", err)
      assert.are.equal(50, view:get("n"))
      assert.is_nil(view:get("m"))
      assert.are.equal(50, view:max_tracking_id("App"))
      assert_kind("StoreError", helper.error_of(view.store.view_write, view.store, "V", {},
        { application = "App", id = 60, first = 61 }))
      view.store:view_write("V", { "n", encode(1000) }, { application = "App", id = 1000, first = 51 })
      assert.are.equal(1000, view:get("n"))
      assert.are.equal(1000, view:max_tracking_id("App"))
    end)
  end)
end)

describe("cairn.ProjectionRunner", function()
  helper.each_store(function(ctx)
    local school, runner
    before_each(function()
      school = ctx.open(TrainingSchool)
    end)
    after_each(function()
      if runner then runner:close() end
      runner = nil
    end)

    local function new_runner(projection, view)
      return cairn.ProjectionRunner.new { application = school, projection = projection or counts(),
        view = view or ctx.store("counts"), sync = "none" }
    end

    it("processes everything once, across runs and new runners", function()
      school:register("Fido")
      school:add_trick("Fido", "roll")
      runner = new_runner()
      assert.are.equal(2, runner:run())
      assert.are.equal(0, runner:run())
      school:register("Rex")
      local rec = school:add_trick("Rex", "sit")
      runner:run()
      assert.are.equal(2, runner.view:get("dogs"))
      assert.are.equal(2, runner.view:get("tricks"))
      assert.are.equal(rec[1].notification_id, runner.view:wait(school.name, rec[1].notification_id, 1))
      assert.are.equal(Dog.create_id("Rex"), runner.view:get("dog:Rex"))
      if ctx.engine ~= "memory" then -- the view outlives its runner
        runner:close()
        school:add_trick("Rex", "beg")
        runner = new_runner()
        assert.are.equal(1, runner:run())
        assert.are.equal(3, runner.view:get("tricks"))
      end
    end)

    it("counts once when another writer's batch landed after it read its position", function()
      for i = 1, 100 do school:register("d" .. i) end
      local p = cairn.projection("Counts", { topics = { "Dog.Registered" } })
      local orphan = false
      p:on("Dog.Registered", function(view)
        if not orphan then
          -- what a killed runner's last write, committed after it died, leaves: 1..50 counted
          orphan = true
          view.store:view_write("Counts", { "dogs", require("cairn.core").encode(50) },
            { application = school.name, id = 50, first = 1 })
        end
        view:incr("dogs", 1)
      end)
      runner = new_runner(p)
      runner.batch = 1000
      assert.are.equal(100, runner:run()) -- 50 by the other writer, then 50 by this runner
      assert.are.equal(100, runner.view:get("dogs"))
      assert.are.equal(100, runner.view:max_tracking_id(school.name))
    end)

    it("reads only its topics from the log and skips the rest", function()
      local seen = {}
      local p = cairn.projection("Seen", { topics = { "Dog.TrickAdded" } })
      p:on("Dog.TrickAdded", function(view, event)
        seen[#seen + 1] = event.topic
        view:incr("n")
      end)
      assert.has_error(function() p:on("Dog.Registered", function() end) end,
        "projection Seen: topic 'Dog.Registered' is not among its topics")
      school:register("Fido")
      school:add_trick("Fido", "roll")
      local dog = school.repository:get(Dog.create_id("Fido"))
      dog:discard()
      school:save(dog)
      runner = new_runner(p)
      runner:run()
      assert.are.same({ "Dog.TrickAdded" }, seen)
      assert.are.equal(3, runner.view:max_tracking_id(school.name))
    end)

    it("stops at a failing handler, naming it, keeps what came before, and resumes after a fix", function()
      for _, n in ipairs { "A", "B", "C", "D" } do school:register(n) end
      local broken = true
      local p = cairn.projection("Counts", { topics = { "Dog.Registered" } })
      p:on("Dog.Registered", function(view, event)
        view:incr("dogs")
        if event.name == "C" and broken then error("no C please") end
        view:put("dog:" .. event.name, true)
      end)
      runner = new_runner(p)
      local err = helper.error_of(runner.run, runner)
      assert.matches("projection Counts: notification 3 of TrainingSchool %(Dog.Registered%) failed: .*no C please",
        tostring(err))
      assert.are.equal(2, runner.view:get("dogs"))
      assert.is_nil(runner.view:get("dog:C"))
      assert.are.equal(2, runner.view:max_tracking_id(school.name))
      broken = false
      assert.are.equal(2, runner:run())
      assert.are.equal(4, runner.view:get("dogs"))
      assert.is_true(runner.view:get("dog:C"))
    end)

    it("keeps typed errors of handlers typed", function()
      school:register("A")
      local p = cairn.projection("Bad", { topics = { "Dog.Registered" } })
      p:on("Dog.Registered", function(view) view:put("f", { print }) end)
      runner = new_runner(p)
      local err = helper.error_of(runner.run, runner)
      assert_kind("SchemaError", err)
      assert.matches("notification 1", err.message)
      assert.are.equal(0, runner.view:max_tracking_id(school.name))
    end)

    it("hands handlers plain events like the log's, their own to change", function()
      local rec = school:register("Fido")
      local got
      local p = cairn.projection("Events", { topics = { "Dog.Registered" } })
      p:on("Dog.Registered", function(_, event) got = event; event.name = "changed by the handler" end)
      runner = new_runner(p)
      runner:run()
      assert.is_true(cairn.is_event(got))
      assert.is_nil(getmetatable(got))
      local logged = school.log:select(1, 1)[1].event
      assert.are.equal("Fido", logged.name)
      for _, k in ipairs { "topic", "originator_id", "originator_version", "timestamp", "event_id" } do
        assert.are.equal(logged[k], got[k])
      end
      assert.are.same(logged.metadata, got.metadata)
      assert.are.equal(rec[1].event.originator_id, got.originator_id)
    end)


    it("sees its own writes within a batch, in get and scan", function()
      school:register("A")
      school:register("B")
      local p = cairn.projection("Names", { topics = { "Dog.Registered" } })
      local scanned = {}
      p:on("Dog.Registered", function(view, event)
        view:put("n:" .. event.name, 1)
        view:delete("n:A")
        local keys = {}
        for k in view:scan("n:") do keys[#keys + 1] = k end
        scanned[#scanned + 1] = table.concat(keys, ",")
      end)
      runner = new_runner(p)
      runner:run()
      assert.are.same({ "", "n:B" }, scanned)
    end)

    it("lives in the application's own store when asked to", function()
      school:register("A")
      runner = cairn.ProjectionRunner.new { application = school, projection = counts(), view = school }
      runner:run()
      assert.are.equal(1, cairn.view(school.store, "Counts"):get("dogs"))
      assert.are.equal(1, school:max_notification_id())
    end)

    it("lets the first of two runners of one view win a batch, and the other go on after it", function()
      if ctx.engine == "memory" then return end -- two runners need one view store
      for _, n in ipairs { "A", "B", "C" } do school:register(n) end
      local first = new_runner()
      local p = cairn.projection("Counts", { topics = { "Dog.Registered" } })
      local raced = false
      p:on("Dog.Registered", function(view)
        if not raced then
          raced = true
          first:run() -- the other runner commits the same batch meanwhile
        end
        view:incr("dogs")
      end)
      runner = new_runner(p)
      runner:step()
      assert.are.equal(3, runner.view:get("dogs"))
      school:register("D")
      assert.are.equal(1, runner:run())
      assert.are.equal(4, runner.view:get("dogs"))
      first:close()
    end)

    it("follows until stopped and wakes for new notifications", function()
      school:register("A")
      runner = new_runner()
      local rounds = 0
      runner.on_progress = function()
        rounds = rounds + 1
        if rounds == 1 then school:register("B") else runner:stop() end
      end
      runner:follow { max_wait = 0.05 }
      assert.are.equal(2, runner.view:get("dogs"))
      assert.are.equal("idle", runner:follow { idle_timeout = 0.05 })
    end)

    it("raises a handler's error out of follow", function()
      school:register("A")
      local p = cairn.projection("Bad", { topics = { "Dog.Registered" } })
      p:on("Dog.Registered", function() error("boom") end)
      runner = new_runner(p)
      local err = helper.error_of(runner.follow, runner, { signals = true, idle_timeout = 1 })
      assert.matches("projection Bad: notification 1 .*boom", tostring(err))
    end)
  end)
end)
