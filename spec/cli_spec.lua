--- The `cairn` executable: commands, exit codes and output (API.md §7).
local helper = require "helper"

local q = helper.shell_quote
local _ -- outputs a test does not look at

local function cairn(args, stdin)
  local cmd = q(helper.cairn_bin) .. " " .. args
  if stdin then
    local dir = helper.tmpdir()
    helper.write_file(dir .. "/stdin", stdin)
    cmd = cmd .. " < " .. q(dir .. "/stdin")
    local code, out, err = helper.run(cmd)
    helper.rmrf(dir)
    return code, out, err
  end
  return helper.run(cmd .. " </dev/null")
end

local SCHOOL = helper.root .. "/examples/training_school"

-- Fill a store by running the training-school example against it.
local function school_store(dir)
  local uri = helper.store_uri(dir, "school")
  local code, _, err = cairn("run " .. q(SCHOOL .. "/main.lua") .. " " .. q(uri))
  assert(code == 0, err)
  return uri
end

describe("cairn (command line)", function()
  local dir
  before_each(function() dir = helper.tmpdir() end)
  after_each(function() helper.rmrf(dir) end)

  describe("help and usage", function()
    it("prints usage for --help and exits 0", function()
      local code, out = cairn("--help")
      assert.are.equal(0, code)
      assert.matches("usage: cairn COMMAND", out, 1, true)
      for _, cmd in ipairs { "run", "repl", "events", "log", "stat", "export", "import" } do
        assert.matches(cmd, out, 1, true)
      end
    end)

    it("describes every command with COMMAND --help", function()
      for _, cmd in ipairs { "run", "repl", "events", "log", "stat", "export", "import" } do
        local code, out = cairn(cmd .. " --help")
        assert.are.equal(0, code, cmd)
        assert.matches("usage: cairn " .. cmd, out, 1, true)
      end
    end)

    it("exits 2 without a command, with an unknown command or a bad option", function()
      local code, _, err = cairn("")
      assert.are.equal(2, code)
      assert.matches("usage", err)
      code, _, err = cairn("frobnicate")
      assert.are.equal(2, code)
      assert.matches("unknown command 'frobnicate'", err, 1, true)
      code, _, err = cairn("log memory: --bogus 1")
      assert.are.equal(2, code)
      assert.matches("unknown option --bogus", err, 1, true)
      code, _, err = cairn("log memory: --limit")
      assert.are.equal(2, code)
      assert.matches("^cairn log: option %-%-limit needs a value\nusage: cairn log ", err)
      code, _, err = cairn("events lmdb:" .. q(dir))
      assert.are.equal(2, code)
      assert.matches("^cairn events: no AGGREGATE_ID given\nusage: cairn events ", err)
    end)

    it("prints its version", function()
      local code, out = cairn("--version")
      assert.are.equal(0, code)
      assert.matches("^cairn %d+%.%d+%.%d+", out)
    end)
  end)

  describe("run", function()
    it("passes arguments in arg and as ..., and exits 0", function()
      helper.write_file(dir .. "/s.lua", [[
        local a, b = ...
        print(arg[0]:match("[^/]+$"), arg[1], arg[2], a, b, #arg)
        print(require("cairn").uuid.v5(require("cairn").uuid.NAMESPACE_URL, "/dogs/Fido"))
      ]])
      local code, out = cairn("run " .. q(dir .. "/s.lua") .. " one two")
      assert.are.equal(0, code)
      assert.are.equal("s.lua\tone\ttwo\tone\ttwo\t2\n1e1d7398-8986-57af-bb01-11a89b2f8b02\n", out)
    end)

    it("finds modules beside the script", function()
      helper.write_file(dir .. "/mymod.lua", "return { answer = 42 }")
      helper.write_file(dir .. "/s.lua", "print(require('mymod').answer)")
      local code, out = cairn("run " .. q(dir .. "/s.lua"))
      assert.are.equal(0, code)
      assert.are.equal("42\n", out)
    end)

    it("exits 1 with one line when the script fails, the whole traceback with --trace", function()
      helper.write_file(dir .. "/s.lua", "local function f() error('boom') end\nf()\n")
      local code, out, err = cairn("run " .. q(dir .. "/s.lua"))
      assert.are.equal(1, code)
      assert.are.equal("", out)
      assert.matches("^cairn run: [^\n]*s%.lua:1: boom\n$", err)
      code, _, err = cairn("--trace run " .. q(dir .. "/s.lua"))
      assert.are.equal(1, code)
      assert.matches("^cairn run: [^\n]*s%.lua:1: boom\nstack traceback:\n.*s%.lua:2: in main chunk", err)
    end)

    it("gives typed errors raised for the script the script's line", function()
      -- the README's example run twice: the second registration conflicts
      helper.write_file(dir .. "/s.lua", [[
        local cairn = require "cairn"
        local Dog = cairn.aggregate("Dog")
        function Dog.create_id(name) return cairn.uuid.v5(cairn.uuid.NAMESPACE_URL, "/dogs/" .. name) end
        Dog:created("Registered", function(self, name) self.name = name end)
        local school = cairn.application("School").new { store = arg[1] }
        school:save(Dog("Fido"))
      ]])
      local uri = q("lmdb:" .. dir .. "/school")
      assert.are.equal(0, (cairn("run " .. q(dir .. "/s.lua") .. " " .. uri)))
      local code, _, err = cairn("run " .. q(dir .. "/s.lua") .. " " .. uri)
      assert.are.equal(1, code)
      assert.matches("^cairn run: ConcurrencyError: [^\n]* %(at [^\n]*s%.lua:6%)\n$", err)
      assert.not_matches("application.lua", err, 1, true)
    end)

    it("exits 1 on a syntax error and a missing script", function()
      helper.write_file(dir .. "/s.lua", "local = 1")
      local code, _, err = cairn("run " .. q(dir .. "/s.lua"))
      assert.are.equal(1, code)
      assert.matches("s%.lua:1:", err)
      code, _, err = cairn("run " .. q(dir .. "/missing.lua"))
      assert.are.equal(1, code)
      assert.matches("missing%.lua", err)
    end)

    it("reports cairn errors by kind", function()
      helper.write_file(dir .. "/s.lua", [[
        local cairn = require "cairn"
        cairn.application("A").new { store = "nope:x" }
      ]])
      local code, _, err = cairn("run " .. q(dir .. "/s.lua"))
      assert.are.equal(1, code)
      assert.matches("ConfigError: bad store URI 'nope:x'", err, 1, true)
    end)

    it("exits 2 without a script", function()
      assert.are.equal(2, (cairn("run")))
    end)
  end)

  describe("repl", function()
    it("prints expression results as readable Lua", function()
      local code, out = cairn("repl", "1 + 1\nt = { name = 'Fido', tricks = { 'roll' } }\nt\n=#t.tricks\n")
      assert.are.equal(0, code)
      assert.are.equal('2\n{ name = "Fido", tricks = { "roll" } }\n1\n', out)
    end)

    it("continues incomplete statements, reports errors in one line and exits 1 after one on a pipe", function()
      local code, out, err = cairn("repl", "for i = 1, 2 do\nprint(i)\nend\nerror('oops')\n'still here'\n")
      assert.are.equal(1, code)
      assert.are.equal('1\n2\n"still here"\n', out)
      assert.are.equal("stdin:4: oops\n", err)
      code, out = cairn("repl", "1 + 1\n")
      assert.are.equal(0, code)
      assert.are.equal("2\n", out)
      code, _, err = cairn("repl", "x = = 1\n")
      assert.are.equal(1, code)
      assert.matches("^stdin:1: unexpected symbol", err)
    end)

    it("gives typed errors the line of the REPL input that raised them", function()
      local code, _, err = cairn("repl", "\ncairn.application('A').new { store = 'nope:x' }\n")
      assert.are.equal(1, code)
      assert.matches("^ConfigError: bad store URI 'nope:x'[^\n]* %(at stdin:2%)\n$", err)
    end)

    it("prints aggregates with their state, views with their first keys, notifications as a table", function()
      local uri = school_store(dir)
      local code, out, err = helper.run(("cd %s && %s repl --store %s --require training_school < %s"):format(
        q(SCHOOL), q(helper.cairn_bin), q(uri), q(helper.write_file(dir .. "/in", [[
app.repository:get("1e1d7398-8986-57af-bb01-11a89b2f8b02")
app.log:select(1, 2)
v = cairn.view(store, "Counts")
v:put("dogs", 2); v:put("tricks", { "roll over" })
v
app.log:select(1, 1)[1].event.timestamp
]]) or dir .. "/in")))
      assert.are.equal(0, code, err)
      local iso = "%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%d%.%d%d%d%d%d%dZ"
      assert.matches('^Dog%(1e1d7398%-8986%-57af%-bb01%-11a89b2f8b02%) v3 {\n  created_on = ' .. iso
        .. ',\n  head = "%x+",\n  modified_on = ' .. iso .. ',\n  name = "Fido",\n'
        .. '  tricks = { "roll over", "play dead" }\n}\n', out)
      assert.matches("id  topic           version  originator_id                         fields\n"
        .. " 1  Dog.Registered        1  1e1d7398-8986-57af-bb01-11a89b2f8b02  { name = \"Fido\" }\n"
        .. " 2  Dog.Registered        1  fb9036cd-d7af-5b47-84e1-fc225f959a61  { name = \"Buster\" }\n", out, 1, true)
      assert.matches('cairn.view(Counts in ' .. uri .. ')\n  "dogs" = 2\n  "tricks" = { "roll over" }\n', out, 1, true)
      -- a bare number cannot be known to be a time; fields named timestamp are shown as times
      assert.matches("\n%d+%.%d+\n$", out)
    end)

    it("takes --require as a module name or a file path, and says when neither is there", function()
      local code, out, err = cairn("repl --require " .. q(SCHOOL .. "/training_school.lua"),
        "training_school.TrainingSchool.name\n")
      assert.are.equal(0, code, err)
      assert.are.equal('"TrainingSchool"\n', out)
      code, _, err = cairn("repl --require no_such_module", "")
      assert.are.equal(1, code)
      assert.are.equal("cairn repl: ConfigError: module 'no_such_module' not found on package.path "
        .. "(give a module name, or a file: ./no_such_module.lua)\n", err)
      code, _, err = cairn("repl --require " .. q(dir .. "/missing.lua"), "")
      assert.are.equal(1, code)
      assert.matches("cannot read .*missing%.lua", err)
    end)

    it("opens a store with --store and loads a module with --require", function()
      local uri = school_store(dir)
      local code, out, err = helper.run(("cd %s && %s repl --store %s --require training_school < %s"):format(
        q(SCHOOL), q(helper.cairn_bin), q(uri), q(helper.root .. "/spec/fixtures/repl_school.txt")))
      assert.are.equal(0, code, err)
      assert.are.equal('5\n{ "roll over", "play dead" }\ntrue\n', out)
    end)

    it("interrupts a running line on SIGINT (Ctrl-C) and keeps going", function()
      local script = ("(echo 'x = 0; while true do x = x + 1 end'; sleep 2; echo 'x > 0') | %s repl & "
        .. "pid=$!; sleep 1; kill -INT $pid; wait $pid"):format(q(helper.cairn_bin))
      local code, out, err = helper.run("bash -c " .. q(script))
      assert.are.equal(1, code, err) -- the interrupted line failed
      assert.matches("interrupted", err, 1, true)
      assert.are.equal("true\n", out)
    end)

    it("exits 2 when the store URI is bad and 1 when no store is there, creating none", function()
      local code, _, err = cairn("repl --store bad:uri", "")
      assert.are.equal(2, code)
      assert.matches("'bad:uri' is not a store URI", err, 1, true)
      code, _, err = cairn("repl --store " .. q("lmdb:" .. dir .. "/typo/school"), "")
      assert.are.equal(1, code)
      assert.matches("ConfigError: no store at", err, 1, true)
      assert.is_nil(io.open(dir .. "/typo"))
    end)
  end)

  describe("store tools", function()
    it("stat describes a store", function()
      local uri = school_store(dir)
      local code, out = cairn("stat " .. q(uri))
      assert.are.equal(0, code)
      assert.matches("engine: " .. helper.engine .. "\n", out, 1, true)
      assert.matches("events: 5\n", out, 1, true)
      assert.matches("streams: 2\n", out, 1, true)
      assert.matches("max_notification_id: 5\n", out, 1, true)
    end)

    it("events prints an aggregate's events in order", function()
      local uri = school_store(dir)
      local fido = "1e1d7398-8986-57af-bb01-11a89b2f8b02"
      local code, out = cairn("events " .. q(uri) .. " " .. fido)
      assert.are.equal(0, code)
      local lines = {}
      for line in out:gmatch("[^\n]+") do lines[#lines + 1] = line end
      assert.are.equal(3, #lines)
      assert.matches('^1\t%d%d%d%d%-%d%d%-%d%dT[%d:.]+Z\tDog%.Registered\t{"name":"Fido"}$', lines[1])
      assert.matches('^3\t.*\tDog%.TrickAdded\t{"trick":"play dead"}$', lines[3])
    end)

    it("events exits 1 for an unknown aggregate and 2 for what cannot be an id", function()
      local uri = school_store(dir)
      local code, _, err = cairn("events " .. q(uri) .. " 00000000-0000-4000-8000-000000000000")
      assert.are.equal(1, code)
      assert.matches("AggregateNotFound", err)
      code, _, err = cairn("events " .. q(uri) .. " fido") -- a string id (API.md §2) never recorded
      assert.are.equal(1, code)
      assert.matches("AggregateNotFound: aggregate fido not found", err)
      code, _, err = cairn("events " .. q(uri) .. " ''")
      assert.are.equal(2, code)
      assert.matches("^cairn events: '' is not an aggregate id: it is empty\n", err)
    end)

    it("log prints notifications with --from and --limit", function()
      local uri = school_store(dir)
      local code, out = cairn("log " .. q(uri) .. " --from 2 --limit 2")
      assert.are.equal(0, code)
      local ids = {}
      for id in out:gmatch("(%d+)\t[%dT:.Z-]+\t[%x-]+\t%d+\tDog%.") do ids[#ids + 1] = tonumber(id) end
      assert.are.same({ 2, 3 }, ids)
      code, out = cairn("log " .. q(uri) .. " --from=5")
      assert.are.equal(0, code)
      assert.matches("^5\t", out)
      local err
      code, out, err = cairn("log " .. q(uri) .. " --limit -1")
      assert.are.equal(2, code)
      assert.matches("^cairn log: %-%-limit must be a whole number %(got '%-1'%)\n", err)
      assert.are.equal("", out)
    end)

    it("never creates a store it is asked to look at", function()
      local none = helper.store_uri(dir, "none")
      for _ = 1, 2 do -- the first look made nothing the second could find
        local code, _, err = cairn("stat " .. q(none))
        assert.are.equal(1, code)
        assert.matches("ConfigError: no store at", err, 1, true)
      end
    end)

    it("rejects bad URIs as usage errors: exit 2, the problem and one usage line", function()
      for _, uri in ipairs { "foo:bar", "lmdb:", "memory:x" } do
        local code, out, err = cairn("stat " .. q(uri))
        assert.are.equal(2, code, uri)
        assert.are.equal("", out)
        assert.matches("^cairn stat: [^\n]*URI[^\n]*\n"
          .. "usage: cairn stat %[URI%] %[%-%-topics%] %(cairn stat %-%-help says more%)\n$", err)
      end
    end)

    it("refuses a file that is not an LMDB store", function()
      os.execute("mkdir -p " .. q(dir .. "/junk"))
      helper.write_file(dir .. "/junk/data.mdb", ("not an lmdb file\n"):rep(1000))
      local before = helper.read_file(dir .. "/junk/data.mdb")
      local code, _, err = cairn("stat " .. q("lmdb:" .. dir .. "/junk"))
      assert.are.equal(1, code)
      assert.matches("does not hold an LMDB store", err, 1, true)
      assert.are.equal(before, helper.read_file(dir .. "/junk/data.mdb"))
    end)
  end)

  describe("export and import", function()
    it("round-trips a store exactly: ids, versions, timestamps, fields", function()
      local uri = school_store(dir)
      local code, exported = cairn("export " .. q(uri))
      assert.are.equal(0, code)
      local lines = {}
      for line in exported:gmatch("[^\n]+") do lines[#lines + 1] = line end
      assert.are.equal(5, #lines)
      assert.matches('^{"event_id":"%x+%-[%x%-]+","fields":{"name":"Fido"},"id":1,'
        .. '"originator_id":"1e1d7398%-8986%-57af%-bb01%-11a89b2f8b02",'
        .. '"originator_version":1,"timestamp":"[%d%-T:.]+Z","topic":"Dog%.Registered"}$', lines[1])
      helper.write_file(dir .. "/dump.jsonl", exported)
      local copy = helper.store_uri(dir, "copy")
      local _, err
      code, _, err = cairn("import " .. q(copy) .. " " .. q(dir .. "/dump.jsonl"))
      assert.are.equal(0, code, err)
      assert.matches("imported 5 events", err)
      local again
      code, again = cairn("export " .. q(copy))
      assert.are.equal(0, code)
      assert.are.equal(exported, again)
      -- the copy is a working store for the application
      code, _, err = cairn("run " .. q(SCHOOL .. "/main.lua") .. " " .. q(copy))
      assert.are.equal(0, code, err)
    end)

    it("round-trips DCB events, marked, and the copy's DCB index answers queries", function()
      local uri = school_store(dir)
      local Courses = require("cairn").application("CliCourses")
      local app = Courses.new { store = uri, sync = "none" }
      app.events:append { { type = "CourseDefined", data = { capacity = 2 }, tags = { "course:c1" } },
                          { type = "StudentSubscribed", data = {}, tags = { "course:c1", "student:s1" } } }
      app:close()
      local code, exported, err = cairn("export " .. q(uri))
      assert.are.equal(0, code, err)
      local lines = {}
      for line in exported:gmatch("[^\n]+") do lines[#lines + 1] = line end
      assert.are.equal(7, #lines)
      assert.not_matches('"dcb"', lines[5], 1, true)
      assert.matches('"dcb":true', lines[6], 1, true)
      helper.write_file(dir .. "/dump.jsonl", exported)
      local copy = helper.store_uri(dir, "copy")
      code, _, err = cairn("import " .. q(copy) .. " " .. q(dir .. "/dump.jsonl"))
      assert.are.equal(0, code, err)
      local again
      code, again = cairn("export " .. q(copy))
      assert.are.equal(0, code)
      assert.are.equal(exported, again)
      app = Courses.new { store = copy, sync = "none" }
      finally(function() app:close() end)
      local events = app.events:read({ { tags = { "student:s1" } } })
      assert.are.equal(1, #events)
      assert.are.equal(7, events[1].position)
      -- a DCB line whose tags are not strings is refused before anything is written
      helper.write_file(dir .. "/bad.jsonl", (lines[1] .. "\n" .. lines[2] .. "\n" .. lines[3] .. "\n" .. lines[4]
        .. "\n" .. lines[5] .. "\n" .. lines[6]:gsub('"course:c1"', "7") .. "\n"))
      code, _, err = cairn("import " .. q(helper.store_uri(dir, "bad")) .. " " .. q(dir .. "/bad.jsonl"))
      assert.are.equal(1, code)
      assert.matches("line 6: DCB tag 1 must be a string of 1 to 255 bytes", err, 1, true)
    end)

    it("round-trips binary strings, times, nested values and big integers", function()
      helper.write_file(dir .. "/s.lua", [[
        local cairn = require "cairn"
        local Thing = cairn.aggregate("Thing")
        Thing:created("Made", function(self, blob, at, nested, big, float) end)
        local App = cairn.application("App")
        local app = App.new { store = arg[1] }
        local bytes = {}
        for i = 0, 255 do bytes[#bytes + 1] = string.char(i) end
        app:save(Thing(table.concat(bytes), cairn.time.from_us(1700000000123456),
          { list = { 1, "two", { three = 3 } }, [7] = "seven", ["$x"] = true }, 2^53, 0.1))
        app:close()
      ]])
      local uri = helper.store_uri(dir, "things")
      local code, _, err = cairn("run " .. q(dir .. "/s.lua") .. " " .. q(uri))
      assert.are.equal(0, code, err)
      local exported
      code, exported = cairn("export " .. q(uri))
      assert.are.equal(0, code)
      assert.matches('"$bytes":', exported, 1, true)
      assert.matches('"$time":1700000000123456', exported, 1, true)
      helper.write_file(dir .. "/dump.jsonl", exported)
      code, _, err = cairn("import " .. q(helper.store_uri(dir, "copy")) .. " " .. q(dir .. "/dump.jsonl"))
      assert.are.equal(0, code, err)
      local _, again = cairn("export " .. q(helper.store_uri(dir, "copy")))
      assert.are.equal(exported, again)
    end)

    it("reads JSON lines from stdin", function()
      local line = '{"fields":{"name":"Rex"},"id":1,"originator_id":"00000000-0000-4000-8000-000000000001",'
        .. '"originator_version":1,"timestamp":"2026-01-02T03:04:05.000006Z","topic":"Dog.Registered"}\n'
      local copy = helper.store_uri(dir, "copy")
      local code, _, err = cairn("import " .. q(copy), line)
      assert.are.equal(0, code, err)
      local _, out = cairn("export " .. q(copy))
      assert.are.equal(line, out)
    end)

    it("refuses a store that is not empty, leaving it unchanged", function()
      local uri = school_store(dir)
      local _, before = cairn("export " .. q(uri)) -- luacheck: ignore 211
      helper.write_file(dir .. "/dump.jsonl", before)
      local code, _, err = cairn("import " .. q(uri) .. " " .. q(dir .. "/dump.jsonl"))
      assert.are.equal(1, code)
      assert.matches("not empty", err)
      local _, after = cairn("export " .. q(uri)) -- luacheck: ignore 211
      assert.are.equal(before, after)
    end)

    local function import_error(text)
      local copy = helper.store_uri(dir, "bad")
      helper.write_file(dir .. "/bad.jsonl", text)
      local code, _, err = cairn("import " .. q(copy) .. " " .. q(dir .. "/bad.jsonl"))
      assert.are.equal(1, code)
      -- nothing was written: the whole input is checked first
      local _, out = cairn("log " .. q(copy)) -- luacheck: ignore 211
      assert.are.equal("", out)
      return err
    end

    local function line(id, version, extra)
      return ('{"fields":{},"id":%d,"originator_id":"00000000-0000-4000-8000-000000000001",'
        .. '"originator_version":%d,"timestamp":"2026-01-02T03:04:05Z","topic":"Dog.Registered"%s}\n')
        :format(id, version, extra or "")
    end

    it("names the line of malformed input and writes nothing", function()
      assert.matches("line 2: json: .* at byte", import_error(line(1, 1) .. "{not json}\n"))
      assert.matches("line 2: notification id 3 should be 2", import_error(line(1, 1) .. line(3, 2)))
      assert.matches("line 1: notification id 2 should be 1", import_error(line(2, 1)))
      assert.matches("line 2: aggregate .* version 3 does not follow version 1",
        import_error(line(1, 1) .. line(2, 3)))
      assert.matches("line 1: timestamp", import_error((line(1, 1):gsub("2026%-01%-02T03:04:05Z", "yesterday"))))
      local bad_id = line(1, 1):gsub("00000000%-0000%-4000%-8000%-000000000001", "")
      assert.matches("line 1: originator_id is empty", import_error(bad_id))
      assert.matches("line 1: expected a JSON object", import_error("[1,2]\n"))
      -- found by fuzzing: a bare Lua error, and an int64 overflow in C
      for _, t in ipairs { '"abc"', "1e300", "1.5", "-1e20", "{}" } do
        assert.matches("line 1: json: invalid $time value %(a time must be whole microseconds",
          import_error((line(1, 1):gsub('"fields":{}', '"fields":{"at":{"$time":' .. t .. '}}'))))
      end
    end)

    local good = '{"fields":{"n":1},"id":1,"originator_id":"00000000-0000-4000-8000-000000000001",'
      .. '"originator_version":1,"timestamp":"2026-01-02T03:04:05.000000Z","topic":"Dog.Registered"}\n'

    -- issue 14 item 9: these were changed silently (inf, 2^53) or reported as an int64 overflow
    it("refuses 1e400 (inf), 1e-400 (0) and 2^53+1 (2^53) in fields, naming the line, instead of changing them",
      function()
        for n, want in pairs { ["1e400"] = "too large to keep", ["-1e400"] = "too large to keep",
                               ["1e-400"] = "too small to keep", ["9007199254740993"] = "cannot be kept exactly" } do
          local bad = good:gsub('"n":1', '"n":' .. n):gsub('"id":1', '"id":2')
          local err = import_error(good .. bad)
          assert.matches("line 2: json: %a+ " .. n:gsub("%-", "%%-") .. " [%a ]*" .. want, err)
        end
      end)

    it("refuses a version too large to be one (1e308) with a message about the version", function()
      local err = import_error((good:gsub('"originator_version":1', '"originator_version":1e308')))
      assert.matches("line 1: originator_version must be a whole number from 0 to 2^53", err, 1, true)
    end)

    it("keeps 2^53 as it is", function()
      local exact = good:gsub('"n":1', '"n":9007199254740992')
      local copy = "lmdb:" .. dir .. "/exact"
      local code, _, err = cairn("import " .. q(copy), exact)
      assert.are.equal(0, code, err)
      local _, out = cairn("export " .. q(copy))
      assert.are.equal(exact, out)
    end)
  end)

  describe("examples", function()
    it("the training school registers dogs and lists their tricks", function()
      local code, out, err = cairn("run " .. q(SCHOOL .. "/main.lua") .. " " .. q(helper.store_uri(dir, "s")))
      assert.are.equal(0, code, err)
      assert.matches("registered Fido (notification 1)", out, 1, true)
      assert.matches("Fido knows: roll over, play dead", out, 1, true)
      code, out = cairn("run " .. q(SCHOOL .. "/main.lua") .. " " .. q(helper.store_uri(dir, "s")))
      assert.are.equal(0, code)
      assert.matches("Fido is already registered", out, 1, true)
      assert.matches("Fido knows: roll over, play dead, roll over, play dead", out, 1, true)
    end)

    it("the bank moves money atomically and refuses an overdraft", function()
      local code, out, err = cairn("run " .. q(helper.root .. "/examples/bank_accounts/main.lua") .. " memory:")
      assert.are.equal(0, code, err)
      assert.matches("refused: insufficient funds: Alice's account has -25.00, overdraft limit 50.00, "
        .. "cannot withdraw 50.00\n", out, 1, true)
      assert.matches("balances: Alice -25.00, Bob 125.00", out, 1, true)
      assert.not_matches("%d%d%d%d", (out:gsub("%x+%-%x+%-%x+%-%x+%-%x+", ""))) -- no amount in cents
    end)

    it("course enrolment from four processes exceeds no course's capacity and no student's limit", function()
      local tmp = helper.tmpdir()
      finally(function() helper.rmrf(tmp) end)
      local code, out, err = helper.run(("CAIRN_BIN=%s %s %s"):format(q(helper.cairn_bin),
        q(helper.root .. "/examples/course_enrolment/run.sh"), q(helper.store_uri(tmp, "enrolment"))))
      assert.are.equal(0, code, err)
      local n = 0
      for took in out:gmatch("worker %d: (%d+) subscribed") do n = n + tonumber(took) end
      assert.matches(n .. " subscriptions: the fullest course has 10 of 10 seats, the busiest student 3 of 3 "
        .. "courses: no limit exceeded", out, 1, true)
      -- 20 courses of 10 seats (or 100 students of 3 courses) are the most there can be
      assert.is_true(n > 0 and n <= 200)
    end)
  end)
end)
