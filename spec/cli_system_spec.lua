-- `cairn sync`, `cairn follow` and `cairn project` (API.md §5, §7).
local cairn = require "cairn"
local helper = require "helper"

local q = helper.shell_quote
local SCHOOL = helper.SCHOOL
local TrainingSchool = helper.school("training_school").TrainingSchool

local function cairn_cmd(args, env)
  return helper.run(("%s %s %s </dev/null"):format(env or "", q(helper.cairn_bin), args))
end

-- A system with two followers of the school; Broken fails on its second notification.
local SYSTEM = [[
local cairn = require "cairn"
local school = require "training_school"
local counters = require "counters"
local Mark = cairn.aggregate("Mark")
Mark:created("Made", function(self, n) self.n = n end)
local Broken = cairn.process_application("Broken")
Broken:policy("Dog.TrickAdded", function(_, event, processing)
  if event.trick == "fail" then error("Broken cannot take " .. event.trick) end
  processing:collect(Mark(event.originator_version))
end)
local pipes = { { school.TrainingSchool, Broken }, { school.TrainingSchool, counters.Counters } }
return { system = cairn.system { pipes = pipes }, env = { store = os.getenv("SYS_STORE"), sync = "none" } }
]]

-- The dry runs' copies a PostgreSQL server holds (schemas cairn_dry_…); 0 on LMDB.
local function dry_copies()
  if helper.engine ~= "postgresql" then return 0 end
  return tonumber(helper.psql("SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'cairn\\_dry\\_%'"))
end

describe("cairn sync", function()
  local dir, base, env
  local function member(name) return helper.member_uri(base, name) end

  -- everything the system's stores hold (or that a store is missing), to compare before and after
  local function contents()
    local all = {}
    for _, name in ipairs { "TrainingSchool", "Counters", "Broken" } do
      local code, out, err = cairn_cmd("export " .. q(member(name)))
      all[#all + 1] = ("%s: %d\n%s%s"):format(name, code, out, err)
    end
    return table.concat(all, "\n")
  end

  before_each(function()
    dir = helper.tmpdir()
    base = helper.store_uri(dir, "system")
    helper.write_file(dir .. "/sys.lua", ("package.path = %q .. '/?.lua;' .. package.path\n"):format(SCHOOL) .. SYSTEM)
    env = "SYS_STORE=" .. q(base)
    local school = TrainingSchool.new { store = member("TrainingSchool"), sync = "none" }
    school:register("Fido")
    school:add_trick("Fido", "roll")
    school:add_trick("Fido", "fail")
    school:add_trick("Fido", "sit")
    school:close()
  end)
  after_each(function() helper.rmrf(dir) end)

  it("synchronises every follower on its own and exits 1 when one fails", function()
    local code, out, err = cairn_cmd("sync " .. q(dir .. "/sys.lua"), env)
    assert.are.equal(1, code)
    assert.matches("Counters: synchronised %(4 notifications processed, 6 new events%)", out)
    assert.matches("Broken failed: Broken: notification 3 of TrainingSchool %(Dog.TrickAdded%) failed: "
      .. ".*cannot take fail", err)
    assert.matches("1 of 2 followers failed", err)
    -- Broken kept what came before the failing notification
    local broken = cairn.view(member("Broken"), "X").store
    finally(function() broken:close() end)
    assert.are.equal(2, broken:tracking_max("TrainingSchool"))
    assert.are.equal(1, broken:max_id())
    -- a second run has nothing new for Counters, and Broken fails at the same place
    code, out = cairn_cmd("sync -v 2 " .. q(dir .. "/sys.lua") .. " Counters", env)
    assert.are.equal(0, code)
    assert.matches("Counters: TrainingSchool 4..4, 0 notifications", out)
  end)

  it("with --dry-run processes everything, reports it, and leaves no trace", function()
    local code, out = cairn_cmd("sync " .. q(dir .. "/sys.lua") .. " Counters", env)
    assert.are.equal(0, code, out)
    local school = TrainingSchool.new { store = member("TrainingSchool"), sync = "none" }
    school:add_trick("Fido", "beg")
    school:close()
    local before = contents()
    assert.matches("Broken: 1\n", before) -- Broken has no store yet: the dry run must not make one
    -- on LMDB the copies are in a private directory, on PostgreSQL in new schemas cairn_dry_…
    local code2, out2, err2 = cairn_cmd("sync --dry-run -v 3 " .. q(dir .. "/sys.lua") .. " Counters", env)
    assert.are.equal(0, code2, err2)
    assert.matches("Counters: TrainingSchool #5 Dog.TrickAdded", out2)
    assert.matches("Counters: synchronised %(1 notifications processed, 2 new events%), rolled back", out2)
    assert.are.equal(before, contents())
    code, out = cairn_cmd("sync -n -v0 " .. q(dir .. "/sys.lua") .. " Counters", env)
    assert.are.equal(0, code)
    assert.are.equal("", out)
    assert.are.equal(before, contents())
    -- a follower without a store yet works on an empty copy, which goes too
    code, out2, err2 = cairn_cmd("sync -n " .. q(dir .. "/sys.lua") .. " Broken", env)
    assert.are.equal(1, code, out2)
    assert.matches("Broken failed: Broken: notification 3 of TrainingSchool", err2)
    assert.are.equal(before, contents())
    assert.are.equal(0, dry_copies())
  end)

  -- issue 14 item 7: the copies were left in a world-readable /tmp/lua_XXXXXX
  -- by any signal; now they are private and removed after SIGINT and SIGTERM
  describe("--dry-run's copies", function()
    local SLOW = [[
local cairn = require "cairn"
local school = require "training_school"
local Slow = cairn.process_application("Slow")
Slow:policy("Dog.TrickAdded", function()
  local f = io.open(os.getenv("SLOW_MARK"), "w"); f:close()
  local until_t = os.clock() + 0.3 -- busy: os.execute's system() would ignore SIGINT meanwhile
  while os.clock() < until_t do end
end)
return { system = cairn.system { pipes = { { school.TrainingSchool, Slow } } },
         env = { store = os.getenv("SYS_STORE"), sync = "none" } }
]]

    -- start a dry run of Slow, send sig once its policy runs; returns the
    -- copies' directory mode while it ran, the exit status, what is left in TMPDIR
    local function interrupted(sig)
      helper.write_file(dir .. "/slow.lua", ("package.path = %q .. '/?.lua;' .. package.path\n"):format(SCHOOL) .. SLOW)
      os.execute("mkdir -p " .. q(dir .. "/tmp"))
      local script = ([[
        TMPDIR=%s SLOW_MARK=%s %s %s sync --dry-run %s </dev/null >/dev/null 2>%s & pid=$!
        for i in $(seq 100); do [ -e %s ] && break; sleep 0.1; done
        stat -c %%a %s/cairn-sync.*
        kill -%s $pid; wait $pid; echo "status $?"
        ls -A %s | wc -l
      ]]):format(q(dir .. "/tmp"), q(dir .. "/started"), env, q(helper.cairn_bin), q(dir .. "/slow.lua"),
        q(dir .. "/err"), q(dir .. "/started"), q(dir .. "/tmp"), sig, q(dir .. "/tmp"))
      local code, out, err = helper.run("bash -c " .. q(script))
      assert.are.equal(0, code, err)
      return out:match("^(%d+)\nstatus (%d+)\n%s*(%d+)\n$")
    end

    for sig, status in pairs { TERM = "143", INT = "130" } do
      it("are in a private directory (0700) and removed when SIG" .. sig .. " stops the run", function()
        local mode, exit_status, left = interrupted(sig)
        assert.are.equal("700", mode)
        assert.are.equal(status, exit_status)
        assert.are.equal("0", left)
        assert.matches("stopped by signal", helper.read_file(dir .. "/err"), 1, true)
        assert.are.equal(0, dry_copies()) -- a PostgreSQL follower's copy is dropped too
      end)
    end

    it("stay after SIGKILL, in TMPDIR/cairn-sync.XXXXXX, readable by their owner only", function()
      local mode, exit_status, left = interrupted("KILL")
      assert.are.equal("700", mode)
      assert.are.equal("137", exit_status)
      assert.are.equal("1", left)
      if helper.engine == "postgresql" then -- and a PostgreSQL follower's copy schema, dropped here
        assert.are.equal(1, dry_copies())
        helper.psql("DO $$DECLARE s text; BEGIN FOR s IN SELECT nspname FROM pg_namespace WHERE nspname "
          .. "LIKE 'cairn\\_dry\\_%' LOOP EXECUTE format('DROP SCHEMA %I CASCADE', s); END LOOP; END $$")
      end
    end)
  end)

  it("refuses unknown followers, bad levels and modules without a system (exit 2 or 1)", function()
    local code, _, err = cairn_cmd("sync " .. q(dir .. "/sys.lua") .. " Nobody", env)
    assert.are.equal(2, code)
    assert.matches("no application named Nobody", err)
    code, _, err = cairn_cmd("sync " .. q(dir .. "/sys.lua") .. " TrainingSchool", env)
    assert.are.equal(2, code)
    assert.matches("TrainingSchool follows nothing", err)
    code, _, err = cairn_cmd("sync -v 5 " .. q(dir .. "/sys.lua"), env)
    assert.are.equal(2, code)
    assert.matches("^cairn sync: the verbosity is 0, 1, 2 or 3\n", err)
    code, _, err = cairn_cmd("sync")
    assert.are.equal(2, code)
    assert.matches("^cairn sync: a SYSTEM_MODULE is needed\n", err)
    helper.write_file(dir .. "/none.lua", "return 42")
    code, _, err = cairn_cmd("sync " .. q(dir .. "/none.lua"))
    assert.are.equal(1, code)
    assert.matches("returns no system", err)
  end)
end)

describe("cairn follow and cairn project", function()
  it("describe themselves with --help", function()
    for _, cmd in ipairs { "sync", "follow", "project" } do
      local code, out = cairn_cmd(cmd .. " --help")
      assert.are.equal(0, code)
      assert.matches("usage: cairn " .. cmd, out)
    end
    local code, out = cairn_cmd("--help")
    assert.are.equal(0, code)
    assert.matches("follow SYSTEM_MODULE FOLLOWER", out)
  end)

  it("refuse bad usage with exit status 2", function()
    assert.are.equal(2, (cairn_cmd("follow " .. q(SCHOOL .. "/system.lua"))))
    assert.are.equal(2, (cairn_cmd("follow " .. q(SCHOOL .. "/system.lua") .. " TrainingSchool")))
    assert.are.equal(2, (cairn_cmd("project " .. q(SCHOOL .. "/counts.lua") .. " --app memory:")))
  end)

  it("project catches up and says where it is; a missing store is a failure", function()
    local dir = helper.tmpdir()
    finally(function() helper.rmrf(dir) end)
    local code, _, err = cairn_cmd(("project %s --app %s --view %s"):format(q(SCHOOL .. "/counts.lua"),
      q(helper.store_uri(dir, "none")), q(helper.store_uri(dir, "counts"))))
    assert.are.equal(1, code)
    assert.matches("no store at", err)
    local out
    local store = q(helper.store_uri(dir, "s"))
    code, out, err = helper.run(("cd %s && %s run main.lua %s >/dev/null && %s project counts.lua --app %s --view %s")
      :format(q(SCHOOL), q(helper.cairn_bin), store, q(helper.cairn_bin), store, store))
    assert.are.equal(0, code, err)
    assert.matches("Counts: caught up at notification 5 of TrainingSchool %(5 read%)", out)
  end)
end)

describe("the system examples", function()
  it("run the dog school with its followers in one process, twice", function()
    local dir = helper.tmpdir()
    finally(function() helper.rmrf(dir) end)
    local cmd = ("cd %s && %s run system_main.lua %s"):format(q(SCHOOL), q(helper.cairn_bin), q(dir))
    local code, out, err = helper.run(cmd)
    assert.are.equal(0, code, err)
    assert.matches("dogs who learned 'roll over': 3\nview: 3 dogs, 4 tricks taught", out)
    code, out = helper.run(cmd)
    assert.are.equal(0, code)
    assert.matches("dogs who learned 'roll over': 6\nview: 3 dogs, 8 tricks taught", out)
  end)

  it("run a system as three processes from one shell script", function()
    local dir = helper.tmpdir()
    finally(function() helper.rmrf(dir) end)
    local code, out, err = helper.run(("CAIRN_BIN=%s %s %s"):format(q(helper.cairn_bin),
      q(helper.root .. "/examples/three_processes/run.sh"), q(dir)))
    assert.are.equal(0, code, err)
    assert.matches("projection: 3 dogs, 3 tricks taught", out)
    assert.matches("follower: 'roll over' learned by 2 dogs, 'fetch' by 1", out)
    assert.matches("Counters: stopped %(signal%); 6 notifications processed, 5 new events", out)
  end)
end)
