--- PostgreSQL stores when the server fails (issue 13 item 5): a server down at open, a
-- server restarted under open stores, a wrong password. PostgreSQL only: it stops and
-- starts the test cluster (tools/pg halt / restart on CAIRN_TEST_PG_DIR).
local helper = require "spec.helper"
local cairn = require "cairn"

local PG_DIR = os.getenv("CAIRN_TEST_PG_DIR")
local run_here = helper.engine == "postgresql" and PG_DIR

local function pg_tool(cmd)
  local code, _, err = helper.run(("%s/tools/pg %s %s"):format(helper.shell_quote(helper.root), cmd,
    helper.shell_quote(PG_DIR)))
  assert.are.equal(0, code, err)
end

local Counter = cairn.aggregate("PgCounter")
Counter:created("Started", function(self) self.total = 0 end)
Counter:event("Added", function(self, n) self.total = self.total + n end)
function Counter:add(n) self:trigger("Added", { n = n }) end
local Counters = cairn.application("PgCounters")
function Counters:create()
  local c = Counter()
  self:save(c)
  return c.id
end
function Counters:add(id, n)
  local c = self.repository:get(id)
  c:add(n)
  self:save(c)
end

local describe_pg = run_here and describe
  or function(name) it(name .. " (PostgreSQL only: skipped)", function() end) end

describe_pg("PostgreSQL server failures", function()
  local dir, uri
  before_each(function()
    dir = helper.tmpdir()
    uri = helper.store_uri(dir)
  end)
  after_each(function()
    pg_tool("restart") -- whatever a test did, the server runs again (restart of a running one is fine too)
    helper.rmrf(dir)
  end)

  it("a wrong password is a one-line ConfigError naming the server, never the password", function()
    local bad = uri:gsub("user=postgres", "user=cairn_pw&password=not-the-s3cret")
    local err = helper.error_of(Counters.new, { store = bad })
    helper.assert_kind("ConfigError", err)
    assert.matches("PostgreSQL server [^\n]*/postgres: cannot connect: [^\n]*password authentication failed",
      err.message)
    assert.is_nil(err.message:find("not-the-s3cret", 1, true))
    assert.is_nil(err.message:find("\n", 1, true))
    -- the right password opens it
    local good = uri:gsub("user=postgres", "user=cairn_pw&password=secret")
    local app = Counters.new { store = good }
    app:create()
    app:close()
  end)

  it("the store tools and messages show a URI's password as ***", function()
    local q = helper.shell_quote
    -- a trusted login: the password is not checked, only carried
    local with_pw = uri:gsub("user=postgres", "user=postgres&password=s3cret-pw")
    local userinfo = uri:gsub("^postgresql://", "postgresql://postgres:s3cret-pw@"):gsub("&user=postgres", "")
    local app = Counters.new { store = with_pw }
    app:create()
    app:close()
    for _, u in ipairs { with_pw, userinfo } do
      local code, out, err = helper.run(("%s stat %s"):format(q(helper.cairn_bin), q(u)))
      assert.are.equal(0, code, err)
      assert.is_nil(out:find("s3cret", 1, true), out)
      assert.matches("\nstore: postgresql://[^\n]*%*%*%*", "\n" .. out)
      code, out, err = helper.run(("%s events %s 00000000-0000-0000-0000-000000000001"):format(q(helper.cairn_bin),
        q(u)))
      assert.are.equal(1, code)
      assert.matches("AggregateNotFound: aggregate [^\n]* not found in postgresql://[^\n]*%*%*%*", err)
      assert.is_nil((out .. err):find("s3cret", 1, true), err)
    end
    local err = helper.error_of(function()
      local a = Counters.new { store = userinfo }
      finally(function() a:close() end)
      a.repository:get(cairn.uuid.v4())
    end)
    helper.assert_kind("AggregateNotFound", err)
    assert.is_nil(err.message:find("s3cret", 1, true), err.message)
  end)

  it("a server down at open is a StoreError naming the server; once it is back the open works", function()
    local app = Counters.new { store = uri }
    local id = app:create()
    app:close()
    pg_tool("halt")
    local err = helper.error_of(Counters.new, { store = uri })
    helper.assert_kind("StoreError", err)
    assert.matches("^PostgreSQL server [^\n]+: cannot connect: [^\n]+ %(is the server running", err.message)
    pg_tool("restart")
    app = Counters.new { store = uri }
    finally(function() app:close() end)
    app:add(id, 2)
    assert.are.equal(2, app.repository:get(id).total)
  end)

  it("an open application rides out a restart: at most one StoreError, nothing lost or doubled, ids go on", function()
    local app = Counters.new { store = uri }
    finally(function() app:close() end)
    local id = app:create()
    app:add(id, 1)
    pg_tool("restart")
    -- the old connection is gone: the first call may say so (once), the next one connects again
    local ok, err = pcall(app.add, app, id, 10)
    if not ok then
      helper.assert_kind("StoreError", err)
      assert.matches("^PostgreSQL server [^\n]+: connection lost", err.message)
      app:add(id, 10)
    end
    app:add(id, 100)
    assert.are.equal(111, app.repository:get(id).total)
    local ids = {}
    for _, n in ipairs(app.log:select(1, 10)) do ids[#ids + 1] = n.id end
    assert.are.same({ 1, 2, 3, 4 }, ids)
  end)

  it("a server stopped mid-use gives StoreErrors naming it until it is back, then the same handle works", function()
    local app = Counters.new { store = uri }
    finally(function() app:close() end)
    local id = app:create()
    pg_tool("halt")
    for _ = 1, 2 do
      local err = helper.error_of(app.add, app, id, 5)
      helper.assert_kind("StoreError", err)
      assert.matches("^PostgreSQL server [^\n]+: ", err.message)
    end
    pg_tool("restart")
    app:add(id, 5)
    assert.are.equal(5, app.repository:get(id).total)
    assert.are.equal(2, app.store:max_id())
  end)

  -- Start `cairn CMD` in the background in the dog school's directory, with CAIRN_STORE=store
  -- when given (its output in dir/NAME.out and .err); its pid.
  local function start_cmd(cmd, name, store)
    local q = helper.shell_quote
    local code, pid = helper.run(("cd %s && %s%s %s >%s 2>%s & echo $!"):format(q(helper.SCHOOL),
      store and "CAIRN_STORE=" .. q(store) .. " " or "", q(helper.cairn_bin), cmd, q(dir .. "/" .. name .. ".out"),
      q(dir .. "/" .. name .. ".err")))
    assert.are.equal(0, code)
    pid = tonumber(pid)
    finally(function() os.execute("kill -TERM " .. pid .. " 2>/dev/null") end)
    return pid
  end

  -- SIGTERM, and wait until the process has gone.
  local function stop_cmd(pid)
    os.execute("kill -TERM " .. pid)
    local deadline = os.time() + 10
    while helper.read_file("/proc/" .. pid .. "/stat") and os.time() < deadline do
      require("cairn.core").sleep(0.05)
    end
  end

  -- Wait until look() gives n. This process's handles meet the restarts too: a look
  -- that fails (look returns nil) is a look again later.
  local function wait_for(look, n, name)
    local deadline = os.time() + 30
    while true do
      local ok, at = pcall(look)
      if ok and at == n then return end
      assert(os.time() < deadline, name .. " did not reach " .. n .. ": "
        .. tostring(helper.read_file(dir .. "/" .. name .. ".err")))
      require("cairn.core").sleep(0.05)
    end
  end

  -- Teach Fido trick i % 3. Right after a restart the first call may fail, having recorded
  -- nothing (the connection was gone before it was sent): taught again then.
  local function teach(school, i)
    local ok, err = pcall(school.add_trick, school, "Fido", "trick" .. (i % 3))
    if not ok then
      helper.assert_kind("StoreError", err)
      assert.matches("^PostgreSQL server [^\n]+: connection lost", err.message)
      school:add_trick("Fido", "trick" .. (i % 3))
    end
  end

  -- Teach 21 tricks across a server restart and a server stopped for a second, each
  -- third waited for until look() (the follower's position) has the last of them: 22.
  local function across_outages(school, look, name)
    for i = 1, 9 do teach(school, i) end
    wait_for(look, 10, name)
    pg_tool("restart")
    for i = 10, 18 do teach(school, i) end
    wait_for(look, 19, name)
    pg_tool("halt")
    require("cairn.core").sleep(1) -- the follower meets a server that is away, and waits
    pg_tool("restart")
    for i = 19, 21 do teach(school, i) end
    wait_for(look, 22, name)
  end

  -- What a background follower said on stderr: one line per outage at most, not one per try.
  local function said_once_per_outage(name, who, outages)
    local lines = helper.lines(helper.read_file(dir .. "/" .. name .. ".err") or "")
    assert.is_true(#lines <= outages, table.concat(lines, "\n"))
    for _, line in ipairs(lines) do
      assert.matches("^" .. who .. ": PostgreSQL server [^\n]+; trying again until it is back", line)
    end
  end

  it("cairn follow rides out a server restart and resumes exactly where it was", function()
    local school_module, counters_module = helper.school("training_school"), helper.school("counters")
    local base = helper.store_uri(dir, "system")
    local function member(name) return helper.member_uri(base, name) end
    local school = school_module.TrainingSchool.new { store = member("TrainingSchool") }
    finally(function() school:close() end)
    school:register("Fido")
    local pid = start_cmd("follow system.lua Counters", "follow", base)
    local counters
    local function processed()
      counters = counters or counters_module.Counters.new { store = member("Counters") }
      return counters.store:tracking_max("TrainingSchool")
    end
    across_outages(school, processed, "follow")
    -- every notification counted exactly once: trick0..trick2 seven times each
    for t = 0, 2 do assert.are.equal(7, counters:learned("trick" .. t)) end
    counters:close()
    stop_cmd(pid)
    assert.matches("stopped %(signal%); 22 notifications processed", helper.read_file(dir .. "/follow.out"))
    said_once_per_outage("follow", "Counters", 2)
  end)

  it("cairn project --follow rides out a server restart: says so once, counts every notification once", function()
    local q = helper.shell_quote
    local school_module = helper.school("training_school")
    local app_uri, view_uri = helper.store_uri(dir, "school"), helper.store_uri(dir, "counts")
    local school = school_module.TrainingSchool.new { store = app_uri }
    finally(function() school:close() end)
    school:register("Fido")
    local pid = start_cmd(("project counts.lua --app %s --view %s --follow"):format(q(app_uri), q(view_uri)),
      "project")
    local view
    local function at()
      view = view or cairn.view(view_uri, "Counts")
      return view:max_tracking_id("TrainingSchool")
    end
    across_outages(school, at, "project")
    -- every notification counted exactly once
    assert.are.equal(21, view:get("tricks"))
    for t = 0, 2 do assert.are.equal(7, view:get("trick:trick" .. t)) end
    assert.are.equal(1, view:get("dogs"))
    view:close()
    stop_cmd(pid)
    assert.matches("Counts: stopped %(signal%) at notification 22 of TrainingSchool",
      helper.read_file(dir .. "/project.out"))
    said_once_per_outage("project", "Counts", 2)
  end)

  it("a ProjectionRunner following in a program rides out a server restart; reconnect = false raises", function()
    local school_module = helper.school("training_school")
    local Counts = dofile(helper.SCHOOL .. "/counts.lua")
    local school = school_module.TrainingSchool.new { store = helper.store_uri(dir, "school") }
    finally(function() school:close() end)
    school:register("Fido")
    local said = {}
    local runner = cairn.ProjectionRunner.new { application = school, projection = Counts,
      view = helper.store_uri(dir, "counts") }
    finally(function() runner:close() end)
    assert.are.equal(1, runner:run())
    teach(school, 1)
    pg_tool("restart") -- the runner's connections are gone
    assert.are.equal("idle", runner:follow { idle_timeout = 0.5,
      reconnect = require("cairn.follow").server_away("Counts", function(line) said[#said + 1] = line end) })
    assert.are.equal(2, runner.view:max_tracking_id("TrainingSchool"))
    assert.are.equal(1, #said)
    -- the default says so on stderr; false raises the StoreError instead
    teach(school, 2)
    pg_tool("restart")
    local err = helper.error_of(runner.follow, runner, { idle_timeout = 0.5, reconnect = false })
    helper.assert_kind("StoreError", err)
    assert.are.equal("idle", runner:follow { idle_timeout = 0.5 })
    assert.are.equal(3, runner.view:max_tracking_id("TrainingSchool"))
    assert.are.equal(2, runner.view:get("tricks"))
  end)

  it("a SingleThreadedRunner rides out a server restart: its followers resume where they were, once", function()
    local school_module, counters_module = helper.school("training_school"), helper.school("counters")
    local system = cairn.system { pipes = { { school_module.TrainingSchool, counters_module.Counters } } }
    local said = {}
    local runner = cairn.SingleThreadedRunner.new(system, { store = helper.store_uri(dir, "system") },
      { say = function(line) said[#said + 1] = line end })
    runner:start()
    finally(function() runner:stop() end)
    local school, counters = runner:get(school_module.TrainingSchool), runner:get(counters_module.Counters)
    school:register("Fido")
    -- a save that raised recorded nothing (the leader's own connection was gone): taught
    -- again; one that returned had its followers processed
    for i = 1, 3 do teach(school, i) end
    pg_tool("restart")
    for i = 4, 6 do teach(school, i) end
    assert.are.equal(7, counters.store:tracking_max("TrainingSchool"))
    for t = 0, 2 do assert.are.equal(2, counters:learned("trick" .. t)) end
    -- the follower met the lost connection after the leader's save had recorded: it said so once
    assert.are.equal(1, #said)
    assert.matches("^Counters: PostgreSQL server [^\n]+: connection lost", said[1])
  end)

  it("a SingleThreadedRunner raises once its follower's server stayed away server_wait; the next save catches up",
    function()
    local school_module, counters_module = helper.school("training_school"), helper.school("counters")
    local system = cairn.system { pipes = { { school_module.TrainingSchool, counters_module.Counters } } }
    -- the leader on LMDB, the follower on PostgreSQL: the leader's saves go on while the server is away
    local said = {}
    local runner = cairn.SingleThreadedRunner.new(system, { store = helper.store_uri(dir, "system"),
      TRAININGSCHOOL_CAIRN_STORE = helper.store_uri(dir, "school", "lmdb") },
      { server_wait = 0.5, say = function(line) said[#said + 1] = line end })
    runner:start()
    finally(function() runner:stop() end)
    local school, counters = runner:get(school_module.TrainingSchool), runner:get(counters_module.Counters)
    school:register("Fido")
    school:add_trick("Fido", "sit")
    assert.are.equal(2, counters.store:tracking_max("TrainingSchool"))
    pg_tool("halt")
    local t0 = require("cairn.core").now_us()
    local err = helper.error_of(school.add_trick, school, "Fido", "sit") -- recorded; its follower waited
    helper.assert_kind("StoreError", err)
    assert.matches("PostgreSQL server [^\n]+: ", err.message)
    assert.is_true((require("cairn.core").now_us() - t0) / 1e6 >= 0.45)
    assert.are.equal(1, #said)
    assert.are.equal(3, school:max_notification_id())
    pg_tool("restart")
    school:add_trick("Fido", "sit") -- the follower goes on from where its tracking says: 3, then 4
    assert.are.equal(4, counters.store:tracking_max("TrainingSchool"))
    assert.are.equal(3, counters:learned("sit"))
    assert.are.equal(1, #said) -- the server came back before the follower looked again: no second outage
  end)
end)
