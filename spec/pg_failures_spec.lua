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

  it("cairn follow rides out a server restart and resumes exactly where it was", function()
    local q = helper.shell_quote
    local school_module, counters_module = helper.school("training_school"), helper.school("counters")
    local base = helper.store_uri(dir, "system")
    local function member(name) return helper.member_uri(base, name) end
    local school = school_module.TrainingSchool.new { store = member("TrainingSchool") }
    finally(function() school:close() end)
    school:register("Fido")
    local code, pid = helper.run(("cd %s && CAIRN_STORE=%s %s follow system.lua Counters >%s 2>&1 & echo $!"):format(
      q(helper.SCHOOL), q(base), q(helper.cairn_bin), q(dir .. "/follow.out")))
    assert.are.equal(0, code)
    pid = tonumber(pid)
    finally(function() os.execute("kill -TERM " .. pid .. " 2>/dev/null") end)
    -- this process's handles meet the restart too: a look that fails is a look again later
    local counters
    local function processed()
      local ok, n = pcall(function()
        counters = counters or counters_module.Counters.new { store = member("Counters") }
        return counters.store:tracking_max("TrainingSchool")
      end)
      return ok and n or -1
    end
    local function wait_for(n)
      local deadline = os.time() + 30
      while processed() ~= n do
        assert(os.time() < deadline, "the follower did not reach " .. n .. ": "
          .. tostring(helper.read_file(dir .. "/follow.out")))
        require("cairn.core").sleep(0.05)
      end
    end
    local function add(i)
      local ok, err = pcall(school.add_trick, school, "Fido", "trick" .. (i % 3))
      if not ok then -- once, right after the restart
        helper.assert_kind("StoreError", err)
        school:add_trick("Fido", "trick" .. (i % 3))
      end
    end
    for i = 1, 9 do add(i) end
    wait_for(10)
    pg_tool("restart")
    for i = 10, 18 do add(i) end
    wait_for(19)
    pg_tool("halt")
    require("cairn.core").sleep(1) -- the follower meets a server that is away, and waits
    pg_tool("restart")
    for i = 19, 21 do add(i) end
    wait_for(22)
    -- every notification counted exactly once: trick0..trick2 seven times each
    for t = 0, 2 do assert.are.equal(7, counters:learned("trick" .. t)) end
    counters:close()
    os.execute("kill -TERM " .. pid)
    local deadline = os.time() + 10
    while helper.read_file("/proc/" .. pid .. "/stat") and os.time() < deadline do
      require("cairn.core").sleep(0.05)
    end
    local out = helper.read_file(dir .. "/follow.out")
    assert.matches("stopped %(signal%); 22 notifications processed", out)
  end)
end)
