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
    uri = "lmdb:" .. dir .. "/school"
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
end)
