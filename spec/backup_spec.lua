-- Backups that restore everything (API.md §7): `cairn export` writes events,
-- snapshots, views and tracking positions; `cairn import` restores them into a
-- new store, atomically, so a restored follower goes on where it was.
local cairn = require "cairn"
local helper = require "helper"
local json = require "cairn.json"

local q = helper.shell_quote
local SCHOOL = helper.SCHOOL
local TrainingSchool = helper.school("training_school").TrainingSchool

local stdin_file = os.tmpname()
-- run bin/cairn with args; input (a string) on its standard input
local function cairn_cmd(args, env, input)
  helper.write_file(stdin_file, input or "")
  return helper.run(("%s %s %s <%s"):format(env or "", q(helper.cairn_bin), args, q(stdin_file)))
end

-- start bin/cairn with args in the background; returns its process id
local function start(args)
  local _, out = helper.run(("%s %s </dev/null >/dev/null 2>&1 & echo $!"):format(q(helper.cairn_bin), args))
  return assert(out:match("%d+"))
end

local function wait_for_exit(pid)
  helper.run(("while kill -0 %s 2>/dev/null; do sleep 0.05; done"):format(pid))
end

-- the size of a file, nil when there is none
local function size_of(path)
  local f = io.open(path)
  if not f then return nil end
  local size = f:seek("end")
  f:close()
  return size
end

local lines_of = helper.lines

local function kinds(text)
  local count = {}
  for _, line in ipairs(lines_of(text)) do
    local kind = json.decode(line).kind or "event"
    count[kind] = (count[kind] or 0) + 1
  end
  return count
end

describe("cairn export and import of a whole store", function()
  local dir
  before_each(function() dir = helper.tmpdir() end)
  after_each(function() helper.rmrf(dir) end)

  local function path_of(uri) return (uri:match("^lmdb:(.*)$")) end

  describe("a follower restored from a backup", function()
    local base, env, sys
    local function member(name) return helper.member_uri(base, name) end

    before_each(function()
      base = "lmdb:" .. dir .. "/system"
      env = "CAIRN_STORE=" .. q(base)
      sys = q(SCHOOL .. "/system.lua")
      local school = TrainingSchool.new { store = member("TrainingSchool"), sync = "none" }
      school:register("Fido")
      school:add_trick("Fido", "roll")
      school:add_trick("Fido", "sit")
      school:register("Rex")
      school:add_trick("Rex", "roll")
      school:close()
    end)

    it("processes nothing twice: the tracking positions come back with the events", function()
      local code, out, err = cairn_cmd("sync " .. sys, env)
      assert.are.equal(0, code, err)
      assert.matches("Counters: synchronised %(5 notifications processed", out)
      local counters = member("Counters")
      local exported
      code, exported, err = cairn_cmd("export " .. q(counters))
      assert.are.equal(0, code, err)
      assert.matches('{"application":"TrainingSchool","id":5,"kind":"tracking"}', exported, 1, true)
      helper.write_file(dir .. "/counters.jsonl", exported)
      -- the store is lost, and restored from the backup
      helper.rmrf(path_of(counters))
      local _
      code, _, err = cairn_cmd("import " .. q(counters) .. " " .. q(dir .. "/counters.jsonl"))
      assert.are.equal(0, code, err)
      assert.matches("imported 5 events into .* %(0 snapshots, 0 view keys, 1 tracking positions%)", err)
      code, out, err = cairn_cmd("sync " .. sys, env)
      assert.are.equal(0, code, err)
      assert.matches("Counters: synchronised %(0 notifications processed", out)
      -- and goes on from where it was
      local school = TrainingSchool.new { store = member("TrainingSchool"), sync = "none" }
      school:add_trick("Rex", "sit")
      school:close()
      code, out, err = cairn_cmd("sync " .. sys, env)
      assert.are.equal(0, code, err)
      assert.matches("Counters: synchronised %(1 notifications? processed", out)
      local Counters = helper.school("counters").Counters
      local restored = Counters.new { store = counters, sync = "none" }
      finally(function() restored:close() end)
      assert.are.equal(2, restored:learned("roll"))
      assert.are.equal(2, restored:learned("sit"))
      -- the restored store exports what it had, and the new work after it
      local _, again = cairn_cmd("export " .. q(counters))
      assert.matches('"id":6,"kind":"tracking"', again, 1, true)
    end)
  end)

  it("restores snapshots, views with their tracking, and exports the result identically", function()
    helper.write_file(dir .. "/make.lua", ([[
      package.path = %q .. "/?.lua;" .. package.path
      local cairn = require "cairn"
      local school = require "training_school"
      local Counts = require "counts"
      local app = school.TrainingSchool.new { store = arg[1], sync = "none", snapshotting = true }
      app:register("Fido")
      app:add_trick("Fido", "roll")
      app:add_trick("Fido", "sit")
      app:take_snapshot(school.Dog.create_id("Fido"), 2)
      app:take_snapshot(school.Dog.create_id("Fido"))
      app:register("Rex")
      local runner = cairn.ProjectionRunner.new { application = app, projection = Counts }
      runner:run()
      runner:close()
      app:close()
    ]]):format(SCHOOL))
    local uri = "lmdb:" .. dir .. "/school"
    local code, _, err = cairn_cmd("run " .. q(dir .. "/make.lua") .. " " .. q(uri))
    assert.are.equal(0, code, err)
    local exported
    code, exported, err = cairn_cmd("export " .. q(uri))
    assert.are.equal(0, code, err)
    local count = kinds(exported)
    assert.are.same({ event = 4, snapshot = 1, view = 6, tracking = 1 }, count)
    assert.matches('{"application":"TrainingSchool","id":4,"kind":"tracking","view":"Counts"}', exported, 1, true)
    assert.matches('{"key":"dogs","kind":"view","value":2,"view":"Counts"}', exported, 1, true)
    assert.matches('"class_name":"Dog","class_version":1,"kind":"snapshot","originator_id":"[%x%-]+",'
      .. '"originator_version":3,"state":{', exported)
    helper.write_file(dir .. "/dump.jsonl", exported)
    local copy = "lmdb:" .. dir .. "/copy"
    code, _, err = cairn_cmd("import " .. q(copy) .. " " .. q(dir .. "/dump.jsonl"))
    assert.are.equal(0, code, err)
    assert.matches("imported 4 events into .* %(1 snapshots, 6 view keys, 1 tracking positions%)", err)
    local again
    code, again = cairn_cmd("export " .. q(copy))
    assert.are.equal(0, code)
    assert.are.equal(exported, again)
    -- the projection goes on where it was: nothing is counted twice
    local school = helper.school("training_school")
    local app = school.TrainingSchool.new { store = copy, sync = "none" }
    finally(function() app:close() end)
    local runner = cairn.ProjectionRunner.new { application = app, projection = helper.school("counts") }
    assert.are.equal(0, runner:run())
    assert.are.equal(2, runner.view:get("dogs"))
    assert.are.equal(3, app.snapshots:get(school.Dog.create_id("Fido")).version)
    runner:close()
  end)

  it("imports a store holding only views (a projection's view store)", function()
    local view_uri = "lmdb:" .. dir .. "/counts"
    local view = cairn.view(view_uri, "Counts")
    view.store:view_write("Counts", { "dogs", require("cairn.core").encode(7) },
      { application = "TrainingSchool", id = 9 })
    view:close()
    local code, exported, err = cairn_cmd("export " .. q(view_uri))
    assert.are.equal(0, code, err)
    assert.are.same({ view = 1, tracking = 1 }, kinds(exported))
    local copy = "lmdb:" .. dir .. "/copy"
    local _, again
    code, _, err = cairn_cmd("import " .. q(copy), nil, exported)
    assert.are.equal(0, code, err)
    _, again = cairn_cmd("export " .. q(copy))
    assert.are.equal(exported, again)
  end)

  describe("atomic import", function()
    local function big_export(n)
      local buf = {}
      for i = 1, n do
        buf[i] = ('{"fields":{"n":%d},"id":%d,"originator_id":"00000000-0000-4000-8000-000000000001",'
          .. '"originator_version":%d,"timestamp":"2026-01-02T03:04:05Z","topic":"Dog.Registered"}'):format(i, i, i)
      end
      return table.concat(buf, "\n") .. "\n"
    end

    it("leaves no store when the input goes bad after batches were written, and a second import works", function()
      local good = big_export(25000)
      helper.write_file(dir .. "/bad.jsonl", good .. "{not json}\n")
      local copy = "lmdb:" .. dir .. "/copy"
      local code, _, err = cairn_cmd("import " .. q(copy) .. " " .. q(dir .. "/bad.jsonl"))
      assert.are.equal(1, code)
      assert.matches("line 25001: json:", err)
      code, _, err = cairn_cmd("stat " .. q(copy))
      assert.are.equal(1, code)
      assert.matches("no store at", err)
      assert.is_nil(io.open(dir .. "/.copy.importing/data.mdb"))
      helper.write_file(dir .. "/good.jsonl", good)
      code, _, err = cairn_cmd("import " .. q(copy) .. " " .. q(dir .. "/good.jsonl"))
      assert.are.equal(0, code, err)
      assert.matches("imported 25000 events", err)
    end)

    it("kill -9 midway leaves no half store; a second import then works", function()
      helper.write_file(dir .. "/big.jsonl", big_export(200000))
      -- started in the background, killed once it has written to its temporary store
      local other = "lmdb:" .. dir .. "/other"
      local pid = start("import " .. q(other) .. " " .. q(dir .. "/big.jsonl"))
      for _ = 1, 400 do
        if (size_of(dir .. "/.other.importing/data.mdb") or 0) > 1000000 then break end
        helper.run("sleep 0.05")
      end
      assert.is_true(size_of(dir .. "/.other.importing/data.mdb") > 1000000)
      helper.run("kill -9 " .. pid)
      wait_for_exit(pid)
      local code, _, err = cairn_cmd("stat " .. q(other))
      assert.are.equal(1, code)
      assert.matches("no store at", err)
      code, _, err = cairn_cmd("import " .. q(other) .. " " .. q(dir .. "/big.jsonl"))
      assert.are.equal(0, code, err)
      assert.matches("imported 200000 events", err)
      assert.is_nil(io.open(dir .. "/.other.importing/data.mdb"))
      local out
      code, out = cairn_cmd("stat " .. q(other))
      assert.are.equal(0, code)
      assert.matches("events: 200000", out)
    end)

    it("refuses a second import into the same store while one runs", function()
      helper.write_file(dir .. "/big.jsonl", big_export(200000))
      local target = "lmdb:" .. dir .. "/copy"
      local running = start("import " .. q(target) .. " " .. q(dir .. "/big.jsonl"))
      for _ = 1, 200 do
        if size_of(dir .. "/.copy.importing/data.mdb") then break end
        helper.run("sleep 0.02")
      end
      local code, _, err = cairn_cmd("import " .. q(target) .. " " .. q(dir .. "/big.jsonl"))
      wait_for_exit(running)
      assert.are.equal(1, code)
      assert.matches("another import into .* is running", err)
      -- the first one finished, whole
      local out
      code, out = cairn_cmd("stat " .. q(target))
      assert.are.equal(0, code)
      assert.matches("events: 200000", out)
    end)

    it("refuses a path that exists and is not a store, and an existing store", function()
      helper.run("mkdir " .. q(dir .. "/notes"))
      helper.write_file(dir .. "/notes/readme.txt", "mine")
      local code, _, err = cairn_cmd("import " .. q("lmdb:" .. dir .. "/notes"), nil, big_export(1))
      assert.are.equal(1, code)
      assert.matches("exists and is not a store", err)
      assert.are.equal("mine", helper.read_file(dir .. "/notes/readme.txt"))
      code, _, err = cairn_cmd("import " .. q("lmdb:" .. dir .. "/copy"), nil, big_export(1))
      assert.are.equal(0, code, err)
      code, _, err = cairn_cmd("import " .. q("lmdb:" .. dir .. "/copy"), nil, big_export(1))
      assert.are.equal(1, code)
      assert.matches("is not empty", err)
    end)

    it("names an unknown kind of line", function()
      local code, _, err = cairn_cmd("import " .. q("lmdb:" .. dir .. "/copy"), nil, '{"kind":"nope"}\n')
      assert.are.equal(1, code)
      assert.matches("line 1: unknown kind 'nope'", err)
    end)
  end)
end)
