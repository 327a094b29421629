-- The store tools that show what a store holds (API.md §7, "Operating a
-- store"), driven through the real bin/cairn: log (topics, JSON, follow), stat,
-- view, status.
local helper = require "helper"
local json = require "cairn.json"

local q = helper.shell_quote
local TrainingSchool = helper.school("training_school").TrainingSchool

local function cairn_cmd(args, env)
  return helper.run(("%s %s %s </dev/null"):format(env or "", q(helper.cairn_bin), args))
end

local lines_of = helper.lines

describe("store tools", function()
  local dir, uri
  before_each(function()
    dir = helper.tmpdir()
    uri = helper.store_uri(dir, "school")
    local school = TrainingSchool.new { store = uri, sync = "none" }
    school:register("Fido")
    school:add_trick("Fido", "roll")
    school:register("Rex")
    school:add_trick("Rex", "sit")
    school:close()
  end)
  after_each(function() helper.rmrf(dir) end)

  describe("cairn log", function()
    it("prints id, timestamp, aggregate, version, topic and fields, with no header on a pipe", function()
      local code, out, err = cairn_cmd("log " .. q(uri))
      assert.are.equal(0, code, err)
      local lines = lines_of(out)
      assert.are.equal(4, #lines)
      assert.matches("^1\t%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%d%.%d%d%d%d%d%dZ\t[%x%-]+\t1\tDog%.Registered\t"
        .. '{"name":"Fido"}$', lines[1])
      assert.matches("^4\t[^\t]+\t[%x%-]+\t2\tDog%.TrickAdded\t{\"trick\":\"sit\"}$", lines[4])
    end)

    it("keeps only the topics asked for, and prints JSON lines with --json", function()
      local code, out = cairn_cmd("log " .. q(uri) .. " --topic Dog.TrickAdded --topic=Dog.Nope")
      assert.are.equal(0, code)
      local lines = lines_of(out)
      assert.are.equal(2, #lines)
      assert.matches("^2\t", lines[1])
      assert.matches("^4\t", lines[2])
      code, out = cairn_cmd("log " .. q(uri) .. " --json --topic Dog.Registered --limit 1 --from 2")
      assert.are.equal(0, code)
      lines = lines_of(out)
      assert.are.equal(1, #lines)
      local item = json.decode(lines[1])
      assert.are.same({ 3, 1, "Dog.Registered", { name = "Rex" } },
        { item.id, item.originator_version, item.topic, item.fields })
    end)

    it("--follow prints new notifications as they are recorded, until SIGINT", function()
      local out_file = dir .. "/follow.out"
      local _, pid = helper.run(("%s log %s --follow --from 4 --topic Dog.TrickAdded >%s 2>&1 & echo $!"):format(
        q(helper.cairn_bin), q(uri), q(out_file)))
      pid = assert(pid:match("%d+"))
      local function wait_for(pattern)
        for _ = 1, 200 do
          if (helper.read_file(out_file) or ""):match(pattern) then return true end
          helper.run("sleep 0.05")
        end
        return false
      end
      assert.is_true(wait_for("^4\t"))
      local school = TrainingSchool.new { store = uri, sync = "none" }
      school:register("Bo")
      school:add_trick("Rex", "beg")
      school:close()
      assert.is_true(wait_for("\n6\t[^\n]*beg"))
      helper.run("kill -INT " .. pid)
      local code = helper.run(("for i in $(seq 100); do kill -0 %s 2>/dev/null || exit 0; sleep 0.05; done; exit 1")
        :format(pid))
      assert.are.equal(0, code, "cairn log --follow did not stop on SIGINT")
      local lines = lines_of(helper.read_file(out_file))
      assert.are.equal(2, #lines) -- not Bo's registration
    end)

    it("refuses bad options with exit 2 and one usage line", function()
      local code, out, err = cairn_cmd("log " .. q(uri) .. " --topic")
      assert.are.equal(2, code)
      assert.are.equal("", out)
      assert.matches("^cairn log: option %-%-topic needs a value\nusage: cairn log ", err)
      code, out, err = cairn_cmd("log " .. q(uri) .. " --follow=yes")
      assert.are.equal(2, code)
      assert.are.equal("", out)
      assert.matches("^cairn log: option %-%-follow takes no value\n", err)
      code, out, err = cairn_cmd("log " .. q("lmdb:" .. dir .. "/typo") .. " --follow")
      assert.are.equal("", out)
      assert.are.equal(1, code)
      assert.matches("no store at", err)
    end)
  end)

  describe("cairn stat and cairn view", function()
    before_each(function()
      helper.write_file(dir .. "/project.lua", ([[
        package.path = %q .. "/?.lua;" .. package.path
        local cairn = require "cairn"
        local school = require "training_school"
        local app = school.TrainingSchool.new { store = arg[1], sync = "none", snapshotting = true }
        app:take_snapshot(school.Dog.create_id("Fido"))
        local runner = cairn.ProjectionRunner.new { application = app, projection = require "counts" }
        runner:run()
        runner:close()
        app:close()
      ]]):format(helper.SCHOOL))
      local code, _, err = cairn_cmd("run " .. q(dir .. "/project.lua") .. " " .. q(uri))
      assert.are.equal(0, code, err)
    end)

    it("stat says whether the store is encrypted, its sizes, snapshots, views and tracking", function()
      local code, out, err = cairn_cmd("stat " .. q(uri))
      assert.are.equal(0, code, err)
      assert.matches("\nencrypted: no\nevents: 4\nstreams: 2\n", out)
      if helper.engine == "lmdb" then -- an LMDB file's pages and map
        assert.matches("\nsize: [%d.]+ KiB in use, map [%d.]+ MiB\n", out)
      else -- the schema's tables with their indexes (pg_total_relation_size): some pages each
        local kib = tonumber(out:match("\nsize: ([%d.]+) KiB %(the schema's tables and indexes%)\n"))
        assert.is_true(kib ~= nil and kib >= 64, out)
      end
      assert.matches("\nsnapshots: 1 aggregates\n", out)
      assert.matches("\nview Counts: 6 keys\n", out)
      assert.matches("\ntracking: view Counts has processed TrainingSchool up to 4\n", out)
      assert.not_matches("topic ", out)
      code, out = cairn_cmd("stat " .. q(uri) .. " --topics")
      assert.are.equal(0, code)
      assert.matches("\ntopic Dog.Registered: 2\ntopic Dog.TrickAdded: 2\n$", out)
      code, out, err = cairn_cmd("stat " .. q(uri) .. " extra")
      assert.are.equal(2, code)
      assert.are.equal("", out)
      assert.matches("^cairn stat: unexpected argument 'extra'", err)
    end)

    it("stat of an encrypted store says so, with or without the key", function()
      local key = "CAIRN_CIPHER_KEY=" .. q(select(2, cairn_cmd("keygen")):match("%S+"))
      local enc = helper.store_uri(dir, "enc")
      local _, exported = cairn_cmd("export " .. q(uri))
      helper.write_file(dir .. "/dump.jsonl", exported)
      local code, _, err = cairn_cmd("import " .. q(enc) .. " " .. q(dir .. "/dump.jsonl"), key)
      assert.are.equal(0, code, err)
      for _, env in ipairs { key, "" } do
        local out
        code, out, err = cairn_cmd("stat " .. q(enc), env)
        assert.are.equal(0, code, err)
        assert.matches("\nencrypted: yes\n", out)
        assert.matches(env == "" and "\nview Counts: keys not counted %(set CAIRN_CIPHER_KEY%)\n"
          or "\nview Counts: 6 keys\n", out)
      end
    end)

    it("view prints keys and values, by prefix, of one view or all", function()
      local code, out, err = cairn_cmd("view " .. q(uri))
      assert.are.equal(0, code, err)
      assert.are.same({ "Counts\tdog:Fido\t0", "Counts\tdog:Rex\t0", "Counts\tdogs\t2", "Counts\ttrick:roll\t1",
                        "Counts\ttrick:sit\t1", "Counts\ttricks\t2" }, lines_of(out))
      code, out = cairn_cmd("view " .. q(uri) .. " trick: --view Counts")
      assert.are.equal(0, code)
      assert.are.same({ "Counts\ttrick:roll\t1", "Counts\ttrick:sit\t1" }, lines_of(out))
      code, out = cairn_cmd("view " .. q(uri) .. " --view Nope")
      assert.are.equal(0, code)
      assert.are.equal("", out)
      code, out = cairn_cmd("view " .. q(uri) .. " --limit 1")
      assert.are.equal(0, code)
      assert.are.same({ "Counts\tdog:Fido\t0" }, lines_of(out))
      code, out, err = cairn_cmd("view " .. q(uri) .. " a b")
      assert.are.equal(2, code)
      assert.are.equal("", out)
      assert.matches("^cairn view: unexpected argument 'b'", err)
      code, out, err = cairn_cmd("view " .. q("lmdb:" .. dir .. "/typo"))
      assert.are.equal(1, code)
      assert.are.equal("", out)
      assert.matches("no store at", err)
    end)
  end)

  describe("cairn status", function()
    it("prints each follower's position, its leader's newest id and the lag", function()
      local base = helper.store_uri(dir, "system")
      local env = "CAIRN_STORE=" .. q(base)
      local sys = q(helper.SCHOOL .. "/system.lua")
      local school = TrainingSchool.new { store = helper.member_uri(base, "TrainingSchool"), sync = "none" }
      school:register("Fido")
      school:add_trick("Fido", "roll")
      school:add_trick("Fido", "sit")
      school:close()
      local code, out, err = cairn_cmd("status " .. sys, env)
      assert.are.equal(0, code, err)
      assert.are.same({ "follower\tleader\tposition\tleader's newest\tlag",
                        "Counters\tTrainingSchool\t0\t3\t3 (no store yet)" }, lines_of(out))
      assert.are.equal(1, (cairn_cmd("stat " .. q(helper.member_uri(base, "Counters")))))
      code, out, err = cairn_cmd("sync " .. sys, env)
      assert.are.equal(0, code, err)
      assert.matches("synchronised", out)
      code, out = cairn_cmd("status " .. sys, env)
      assert.are.equal(0, code)
      assert.are.equal("Counters\tTrainingSchool\t3\t3\t0", lines_of(out)[2])
      code, out, err = cairn_cmd("status " .. sys)
      assert.are.equal(2, code)
      assert.are.equal("", out)
      assert.matches("^cairn status: no store for ", err)
      code, out, err = cairn_cmd("status", env)
      assert.are.equal(2, code)
      assert.are.equal("", out)
      assert.matches("^cairn status: no SYSTEM_MODULE given\nusage: cairn status SYSTEM_MODULE", err)
    end)
  end)

  describe("cairn project --rebuild", function()
    it("empties the view and its tracking in one transaction, then replays the whole log", function()
      local view_uri = helper.store_uri(dir, "counts")
      local counts = q(helper.SCHOOL .. "/counts.lua")
      local cmd = "project " .. counts .. " --app " .. q(uri) .. " --view " .. q(view_uri)
      local code, out, err = cairn_cmd(cmd)
      assert.are.equal(0, code, err)
      assert.matches("caught up at notification 4 of TrainingSchool %(4 read%)", out)
      -- a key the projection does not write, as a changed projection would leave behind
      local core = require "cairn.core"
      local recorder = require "cairn.recorder"
      local store = recorder.open(view_uri, { sync = "none" })
      store:view_write("Counts", { "stale", core.encode(1) })
      store:close()
      code, out, err = cairn_cmd(cmd)
      assert.are.equal(0, code, err)
      assert.matches("%(0 read%)", out)
      code, out, err = cairn_cmd(cmd .. " --rebuild")
      assert.are.equal(0, code, err)
      assert.matches("caught up at notification 4 of TrainingSchool %(4 read%)", out)
      local _, keys = cairn_cmd("view " .. q(view_uri))
      assert.are.same({ "Counts\tdog:Fido\t0", "Counts\tdog:Rex\t0", "Counts\tdogs\t2", "Counts\ttrick:roll\t1",
                        "Counts\ttrick:sit\t1", "Counts\ttricks\t2" }, lines_of(keys))
      code, out, err = cairn_cmd(cmd .. " --rebuild=yes")
      assert.are.equal(2, code)
      assert.are.equal("", out)
      assert.matches("^cairn project: option %-%-rebuild takes no value", err)
    end)
  end)

  describe("cairn streams", function()
    it("lists aggregates with their last versions, a page at a time", function()
      local code, out, err = cairn_cmd("streams " .. q(uri))
      assert.are.equal(0, code, err)
      local fido, rex = "1e1d7398-8986-57af-bb01-11a89b2f8b02", "407d3ee3-a4f3-54fe-98dd-13c70cfefff8"
      assert.are.same({ fido .. "\t2", rex .. "\t2" }, lines_of(out))
      code, out = cairn_cmd("streams " .. q(uri) .. " --limit 1")
      assert.are.equal(0, code)
      assert.are.same({ fido .. "\t2" }, lines_of(out))
      code, out = cairn_cmd("streams " .. q(uri) .. " --after " .. fido)
      assert.are.equal(0, code)
      assert.are.same({ rex .. "\t2" }, lines_of(out))
      code, out = cairn_cmd("streams " .. q(uri) .. " --after " .. rex)
      assert.are.equal(0, code)
      assert.are.equal("", out)
      code, out, err = cairn_cmd("streams " .. q(uri) .. " --after ''")
      assert.are.equal(2, code)
      assert.are.equal("", out)
      assert.matches("^cairn streams: %-%-after must be an aggregate id: '' is empty\nusage: cairn streams ", err)
    end)
  end)
end)
