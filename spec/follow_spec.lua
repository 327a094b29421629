-- Followers in other OS processes: live following, kill -9 and restart,
-- stores without a wake file (API.md §4, §5; `cairn follow`, `cairn project`).
local cairn = require "cairn"
local helper = require "helper"

local q = helper.shell_quote
local SCHOOL = helper.SCHOOL
local school_module = helper.school("training_school")
local counters_module = helper.school("counters")
local Counts = helper.school("counts")

local function wait_until(what, fn, timeout, explain)
  local deadline = cairn.time.now():seconds() + (timeout or 10)
  while not fn() do
    assert(cairn.time.now():seconds() < deadline,
      "timed out waiting for " .. what .. (explain and ": " .. explain() or ""))
    require("cairn.core").sleep(0.01)
  end
end

-- start a shell command in the background; returns its pid
local function spawn(cmd, out)
  local code, pid = helper.run(("%s >%s 2>&1 & echo $!"):format(cmd, q(out)))
  assert(code == 0)
  return tonumber(pid)
end

-- running (a zombie waiting for init to reap it is not)
local function alive(pid)
  local stat = helper.read_file("/proc/" .. pid .. "/stat")
  return stat ~= nil and not stat:match("^%d+ %b() Z")
end

describe("followers in other processes", function()
  local dir, base -- base: the system's store, where each application gets its own
  before_each(function() dir = helper.tmpdir(); base = helper.store_uri(dir, "system") end)
  after_each(function() helper.rmrf(dir) end)

  local function member(name) return helper.member_uri(base, name) end

  it("cairn follow processes what a writer records while it runs, and stops on SIGTERM", function()
    local env = "CAIRN_STORE=" .. q(base) .. " CAIRN_SYNC=none "
    -- the leader's store must exist: cairn follow never creates a store it reads
    local school = school_module.TrainingSchool.new { store = member("TrainingSchool"), sync = "none" }
    finally(function() school:close() end)
    local pid = spawn(("cd %s && %s %s follow system.lua Counters"):format(q(SCHOOL), env, q(helper.cairn_bin)),
      dir .. "/follow.out")
    local counters = counters_module.Counters.new { store = member("Counters"), sync = "none" }
    finally(function() counters:close() end)
    school:register("Fido")
    for i = 1, 50 do school:add_trick("Fido", "trick" .. (i % 5)) end
    wait_until("the follower", function() return counters.store:tracking_max("TrainingSchool") == 51 end)
    assert.are.equal(10, counters:learned("trick1"))
    assert.is_true(alive(pid))
    os.execute("kill -TERM " .. pid)
    wait_until("the follower to stop", function() return not alive(pid) end)
    local out = helper.read_file(dir .. "/follow.out")
    assert.matches("Counters: following TrainingSchool", out)
    assert.matches("stopped %(signal%); 51 notifications processed, 55 new events", out)
  end)

  it("cairn project --follow keeps a view up to date across processes, woken or polling", function()
    for _, wake in ipairs { true, false } do
      local case = wake and "woken" or "polling"
      local school_uri = helper.store_uri(dir, case .. "-school", not wake and "lmdb" or nil)
      local view_uri = helper.store_uri(dir, case .. "-counts", not wake and "lmdb" or nil)
      if not wake then -- an LMDB store's wake file that cannot be made: the follower polls
        os.execute("mkdir -p " .. q(dir .. "/polling-school/wake"))
      end
      local school = school_module.TrainingSchool.new { store = school_uri, sync = "none" }
      local out = dir .. "/" .. case .. ".out"
      local pid = spawn(("cd %s && %s project counts.lua --app %s --view %s --follow"):format(q(SCHOOL),
        q(helper.cairn_bin), q(school_uri), q(view_uri)), out)
      local view = cairn.view(view_uri, "Counts")
      local last
      for i = 1, 20 do last = school:register("dog" .. i)[1].notification_id end
      assert.are.equal(last, view:wait("TrainingSchool", last, 10))
      assert.are.equal(20, view:get("dogs"))
      os.execute("kill -INT " .. pid)
      wait_until("the projection to stop", function() return not alive(pid) end)
      assert.matches("Counts: stopped %(signal%) at notification 20", helper.read_file(out))
      view:close()
      school:close()
    end
  end)

  it("counts exactly once after a projection process is killed with -9 mid catch-up", function()
    local school_uri, view_uri = helper.store_uri(dir, "school"), helper.store_uri(dir, "counts")
    local school = school_module.TrainingSchool.new { store = school_uri, sync = "none" }
    finally(function() school:close() end)
    local Dog = school_module.Dog
    local n = 20000
    for b = 1, n / 500 do
      local dogs = {}
      for j = 1, 500 do dogs[j] = Dog("d" .. b .. "-" .. j) end
      school:save(unpack(dogs))
    end
    local child = dir .. "/child.lua"
    helper.write_file(child, ([[
      package.path = %q .. "/?.lua;" .. package.path
      local cairn = require "cairn"
      local app = { name = "TrainingSchool", store = require("cairn.recorder").open(%q) }
      local r = cairn.ProjectionRunner.new { application = app, projection = require "counts", view = %q,
        batch = 50, sync = "full" }
      r:run()
    ]]):format(SCHOOL, school_uri, view_uri))
    local pid = spawn(helper.luajit_cmd .. " " .. q(child), dir .. "/child.out")
    local view = cairn.view(view_uri, "Counts")
    finally(function() view:close() end)
    wait_until("the first batches", function() return view:max_tracking_id("TrainingSchool") >= 500 end)
    os.execute("kill -9 " .. pid)
    wait_until("the child to die", function() return not alive(pid) end)
    -- each commit holds its writes and its position. On PostgreSQL the child's last write may
    -- still commit on the server after the child died: read both until no commit came between.
    local at, dogs
    repeat
      at = view:max_tracking_id("TrainingSchool")
      dogs = view:get("dogs")
    until view:max_tracking_id("TrainingSchool") == at
    assert.is_true(at < n, "the child finished before it was killed")
    assert.are.equal(at, dogs)
    -- the runner goes on from the position it reads; a late commit of the child after that
    -- refuses the runner's overlapping batch (nothing written) and it goes on from there
    local runner = cairn.ProjectionRunner.new { application = school, projection = Counts, view = view }
    local moved = runner:run()
    assert.is_true(moved > 0 and moved <= n - at)
    assert.are.equal(n, view:max_tracking_id("TrainingSchool"))
    assert.are.equal(n, view:get("dogs"))
  end)

  it("cairn follow wakes for whichever of two leaders records", function()
    helper.write_file(dir .. "/sys.lua", ([[
      local cairn = require "cairn"
      local Seen = cairn.aggregate("Seen")
      Seen:created("Noted", function(self, from) self.from = from end)
      local Both = cairn.process_application("Both")
      Both:policy("Dog.Registered", function(_, event, processing) processing:collect(Seen(event.originator_id)) end)
      local A, B = cairn.application("Alpha"), cairn.application("Beta")
      return { system = cairn.system { pipes = { { A, Both }, { B, Both } } }, env = { store = %q, sync = "none" } }
    ]]):format(base))
    for _, name in ipairs { "Alpha", "Beta" } do -- the leaders' stores must exist
      cairn.application(name).new({ store = member(name), sync = "none" }):close()
    end
    local pid = spawn(("%s follow %s Both"):format(q(helper.cairn_bin), q(dir .. "/sys.lua")), dir .. "/follow.out")
    local both = cairn.view(member("Both"), "X").store
    finally(function() both:close() end)
    wait_until("the follower to start", function()
      return (helper.read_file(dir .. "/follow.out") or ""):find("following", 1, true) ~= nil
    end)
    for _, name in ipairs { "Beta", "Alpha", "Beta" } do
      local want = both:tracking_max(name) + 1
      local leader = cairn.application(name).new { store = member(name), sync = "none" }
      leader:save(school_module.Dog(name .. cairn.uuid.v4()))
      leader:close()
      -- within the 1 s a sleep lasts at most: the write woke the follower
      wait_until(name .. " to be followed", function() return both:tracking_max(name) >= want end, 0.8,
        function() return helper.read_file(dir .. "/follow.out") end)
    end
    os.execute("kill -TERM " .. pid)
    wait_until("the follower to stop", function() return not alive(pid) end)
    assert.matches("Both: following Alpha, Beta", helper.read_file(dir .. "/follow.out"))
    assert.are.equal(3, both:max_id())
  end)

  it("cairn follow stops on SIGTERM between transactions of a long catch-up", function()
    local school = school_module.TrainingSchool.new { store = member("TrainingSchool"), sync = "none" }
    finally(function() school:close() end)
    school:register("Fido")
    local dog = school.repository:get(school_module.Dog.create_id("Fido"))
    for j = 1, 3000 do dog:add_trick("t" .. (j % 7)) end
    school:save(dog)
    local env = "CAIRN_STORE=" .. q(base)
    local pid = spawn(("cd %s && %s %s follow system.lua Counters"):format(q(SCHOOL), env, q(helper.cairn_bin)),
      dir .. "/follow.out")
    local counters = counters_module.Counters.new { store = member("Counters"), sync = "none" }
    finally(function() counters:close() end)
    wait_until("the follower to start", function() return counters.store:tracking_max("TrainingSchool") >= 20 end)
    os.execute("kill -TERM " .. pid)
    wait_until("the follower to stop", function() return not alive(pid) end)
    local at = counters.store:tracking_max("TrainingSchool")
    assert.is_true(at < 3001, "the follower finished its catch-up before it stopped")
    assert.matches("stopped %(signal%)", helper.read_file(dir .. "/follow.out"))
  end)

  it("counts exactly once after cairn follow is killed with -9 mid catch-up", function()
    local school = school_module.TrainingSchool.new { store = member("TrainingSchool"), sync = "none" }
    finally(function() school:close() end)
    school:register("Fido")
    local Dog = school_module.Dog
    local n = 1000
    for b = 1, n / 500 do
      local dog = school.repository:get(Dog.create_id("Fido"))
      for j = 1, 500 do dog:add_trick("t" .. ((b * 500 + j) % 7)) end
      school:save(dog)
    end
    local env = "CAIRN_STORE=" .. q(base)
    local pid = spawn(("cd %s && %s %s follow system.lua Counters"):format(q(SCHOOL), env, q(helper.cairn_bin)),
      dir .. "/follow.out")
    local counters = counters_module.Counters.new { store = member("Counters"), sync = "none" }
    finally(function() counters:close() end)
    -- the follower commits with fsync (CAIRN_SYNC=full), one notification at a time: slow enough to kill
    wait_until("the follower to start", function() return counters.store:tracking_max("TrainingSchool") >= 50 end)
    os.execute("kill -9 " .. pid)
    wait_until("the follower to die", function() return not alive(pid) end)
    assert.is_true(counters.store:tracking_max("TrainingSchool") < n + 1, "the follower finished before the kill")
    local code, out, err = helper.run(("cd %s && %s CAIRN_SYNC=none %s sync system.lua"):format(q(SCHOOL), env,
      q(helper.cairn_bin)))
    assert.are.equal(0, code, err)
    assert.matches("Counters: synchronised", out)
    local total = 0
    for t = 0, 6 do total = total + counters:learned("t" .. t) end
    assert.are.equal(n, total)
    assert.are.equal(n + 1, counters.store:tracking_max("TrainingSchool"))
    assert.are.equal(n + 7, counters:max_notification_id()) -- 7 tricks introduced, n learned
  end)
end)
