--- Operating a store from the command line (API.md §7): no silent success,
-- no accidental stores, a key in the environment that does not lock anyone
-- out of plain stores, `-` for stdio, event fields as objects, progress on a
-- terminal only, usage errors that say what is wrong.
local helper = require "helper"
local terminal = require "terminal"
local progress = require "cairn.progress"

local q = helper.shell_quote
local SCHOOL = helper.SCHOOL
local FIDO = "1e1d7398-8986-57af-bb01-11a89b2f8b02"
local _ -- outputs a test does not look at

-- Run cairn with ARGS in directory `cwd`, CAIRN_STORE and CAIRN_CIPHER_KEY
-- unset unless `env` sets them.
local function cairn(args, opts)
  opts = opts or {}
  local cmd = ("cd %s && env -u CAIRN_STORE -u CAIRN_CIPHER_KEY %s %s %s"):format(q(opts.cwd or "/tmp"),
    opts.env or "", q(helper.cairn_bin), args)
  if opts.stdin then cmd = cmd .. " < " .. q(opts.stdin) else cmd = cmd .. " </dev/null" end
  return helper.run(cmd)
end

local function school_store(dir, name, env)
  local uri = "lmdb:" .. dir .. "/" .. (name or "school")
  local code, _, err = cairn("run " .. q(SCHOOL .. "/main.lua") .. " " .. q(uri), { env = env })
  assert(code == 0, err)
  return uri
end

local function listing(path)
  local _, out = helper.run("ls -A " .. q(path))
  return out
end

describe("operating a store", function()
  local dir
  before_each(function() dir = helper.tmpdir() end)
  after_each(function() helper.rmrf(dir) end)

  describe("a tool that needs a store", function()
    it("exits 2 without one and never falls back to memory:", function()
      for _, args in ipairs { "stat", "log", "export", "verify", "events " .. FIDO, "rekey" } do
        local code, out, err = cairn(args)
        assert.are.equal(2, code, args)
        assert.are.equal("", out, args)
        assert.matches("no store given: name one %(lmdb:PATH%) or set CAIRN_STORE\nusage: cairn ", err)
      end
    end)

    it("takes it from CAIRN_STORE", function()
      local uri = school_store(dir)
      local env = "CAIRN_STORE=" .. q(uri)
      local code, out = cairn("log --limit 1", { env = env })
      assert.are.equal(0, code)
      assert.matches("^1\t[%dT:.Z-]+\t" .. FIDO:gsub("%-", "%%-") .. "\t1\tDog.Registered\t{\"name\":\"Fido\"}\n$", out)
      code, out = cairn("events " .. FIDO, { env = env })
      assert.are.equal(0, code)
      assert.matches("^1\t.*\tDog.Registered\t", out)
      code, out = cairn("export -", { env = env })
      assert.are.equal(0, code)
      assert.are.equal(5, select(2, out:gsub("\n", "")))
    end)

    it("says what is wrong with extra arguments, in one line and one usage line", function()
      local uri = school_store(dir)
      local code, out, err = cairn("log " .. q(uri) .. " extra")
      assert.are.equal(2, code)
      assert.are.equal("", out)
      assert.are.equal("cairn log: unexpected argument 'extra': the command takes one store URI\n"
        .. "usage: cairn log [URI] [--from N] [--limit M] [--topic T]... [--json] [--follow]"
        .. " (cairn log --help says more)\n", err)
      code, _, err = cairn("events " .. q(uri))
      assert.are.equal(2, code)
      assert.matches("^cairn events: no AGGREGATE_ID given\nusage: cairn events %[URI%] AGGREGATE_ID", err)
    end)

    it("reports a failing projection handler in one line, the traceback with --trace", function()
      local uri = school_store(dir)
      helper.write_file(dir .. "/bad.lua", [[
        local P = require("cairn").projection("Bad", { application = "TrainingSchool" })
        P:on("Dog.TrickAdded", function(view, event) local x = nil; return x.y end) -- luacheck: ignore
        return P
      ]])
      local args = ("project %s --app %s --view memory:"):format(q(dir .. "/bad.lua"), q(uri))
      local code, out, err = cairn(args)
      assert.are.equal(1, code)
      assert.are.equal("", out)
      assert.are.equal("cairn project: projection Bad: notification 3 of TrainingSchool (Dog.TrickAdded) failed: "
        .. dir .. "/bad.lua:2: attempt to index local 'x' (a nil value)\n", err)
      code, _, err = cairn("--trace " .. args)
      assert.are.equal(1, code)
      assert.matches("^cairn project: [^\n]+\nprojection Bad: [^\n]+\nstack traceback:\n", err)
    end)

    it("names no internal file in its messages", function()
      local uri = school_store(dir)
      local code, _, err = cairn("export " .. q(uri) .. " " .. q(dir))
      assert.are.equal(1, code)
      assert.are.equal("cairn export: cannot write " .. dir .. ": Is a directory\n", err)
      code, _, err = cairn("import " .. q("lmdb:" .. dir .. "/new") .. " " .. q(dir .. "/missing.jsonl"))
      assert.are.equal(1, code)
      assert.matches("^cairn import: cannot read [^\n]*missing.jsonl: No such file or directory\n$", err)
      assert.not_matches("%.lua:%d", err)
    end)
  end)

  describe("no accidental stores", function()
    it("sync exits 2 without a store and 1 for a leader that is not there, creating nothing", function()
      local code, out, err = cairn("sync system.lua", { cwd = SCHOOL })
      assert.are.equal(2, code)
      assert.are.equal("", out)
      assert.matches("no store for TrainingSchool: set CAIRN_STORE=lmdb:DIR", err, 1, true)
      code, out, err = cairn("sync system.lua", { cwd = SCHOOL, env = "CAIRN_STORE=" .. q("lmdb:" .. dir .. "/typo") })
      assert.are.equal(1, code)
      assert.not_matches("synchronised", out)
      assert.matches("Counters failed: ConfigError: no store at " .. dir .. "/typo/TrainingSchool", err, 1, true)
      assert.are.equal("", listing(dir))
    end)

    it("follow does not create the stores of a follower whose leader is not there", function()
      local code, _, err = cairn("follow system.lua Counters --idle-timeout 0",
        { cwd = SCHOOL, env = "CAIRN_STORE=" .. q("lmdb:" .. dir .. "/typo") })
      assert.are.equal(1, code)
      assert.matches("no store at " .. dir .. "/typo/TrainingSchool", err, 1, true)
      assert.are.equal("", listing(dir))
    end)

    it("project makes a view store only in a directory that exists, and says so", function()
      local uri = school_store(dir)
      local code, _, err = cairn(("project counts.lua --app %s --view %s"):format(q(uri),
        q("lmdb:" .. dir .. "/typo/counts")), { cwd = SCHOOL })
      assert.are.equal(1, code)
      assert.matches("the directory " .. dir .. "/typo does not exist", err, 1, true)
      assert.are.equal("school\n", listing(dir))
      local out
      code, out, err = cairn(("project counts.lua --app %s --view %s"):format(q(uri), q("lmdb:" .. dir .. "/counts")),
        { cwd = SCHOOL })
      assert.are.equal(0, code, err)
      assert.are.equal("cairn project: making the view store lmdb:" .. dir .. "/counts\n", err)
      assert.matches("caught up at notification 5", out)
      -- the second run finds it
      code, _, err = cairn(("project counts.lua --app %s --view %s"):format(q(uri), q("lmdb:" .. dir .. "/counts")),
        { cwd = SCHOOL })
      assert.are.equal(0, code)
      assert.are.equal("", err)
    end)

    it("a directory holding other files is not made a store", function()
      os.execute("mkdir -p " .. q(dir .. "/docs"))
      helper.write_file(dir .. "/docs/readme.txt", "notes\n")
      local code, _, err = cairn("run " .. q(SCHOOL .. "/main.lua") .. " " .. q("lmdb:" .. dir .. "/docs"))
      assert.are.equal(1, code)
      assert.matches(dir .. "/docs holds other files (readme.txt) and no store", err, 1, true)
      assert.are.equal("readme.txt\n", listing(dir .. "/docs"))
      -- an empty directory is fine
      os.execute("mkdir -p " .. q(dir .. "/empty"))
      assert.are.equal(0, (cairn("run " .. q(SCHOOL .. "/main.lua") .. " " .. q("lmdb:" .. dir .. "/empty"))))
    end)

    it("import of input without events fails and creates no store", function()
      helper.write_file(dir .. "/empty.jsonl", "")
      helper.write_file(dir .. "/blank.jsonl", "\n  \n")
      for _, file in ipairs { "empty.jsonl", "blank.jsonl" } do
        local code, _, err = cairn("import " .. q("lmdb:" .. dir .. "/new") .. " " .. q(dir .. "/" .. file))
        assert.are.equal(1, code)
        assert.matches("^cairn import: SchemaError: nothing to import: the input [^\n]*holds no events", err)
        assert.is_nil(io.open(dir .. "/new"))
      end
    end)
  end)

  describe("keys", function()
    it("a key in the environment does not lock anyone out of a plain store", function()
      local uri = school_store(dir)
      local key_env = "CAIRN_CIPHER_KEY=" .. q(select(2, cairn("keygen")):sub(1, -2))
      local _, plain_export = cairn("export " .. q(uri))
      for _, args in ipairs { "stat", "log", "events", "export", "verify" } do
        local code, _, err = cairn(args .. " " .. q(uri) .. (args == "events" and " " .. FIDO or ""), { env = key_env })
        assert.are.equal(0, code, args .. ": " .. err)
      end
      local code, out = cairn("export " .. q(uri), { env = key_env })
      assert.are.equal(0, code)
      assert.are.equal(plain_export, out)
      -- the REPL too
      helper.write_file(dir .. "/in", "app:max_notification_id()\n")
      code, out = cairn("repl --store " .. q(uri), { env = key_env, stdin = dir .. "/in" })
      assert.are.equal(0, code)
      assert.are.equal("5\n", out)
    end)

    it("one command line turns a plain store into an encrypted one", function()
      local uri = school_store(dir)
      local key_env = "CAIRN_CIPHER_KEY=" .. q(select(2, cairn("keygen")):sub(1, -2))
      local _, plain_export = cairn("export " .. q(uri))
      local enc = "lmdb:" .. dir .. "/encrypted"
      local code, _, err = helper.run(("cd /tmp && export %s && %s export %s | %s import %s"):format(key_env,
        q(helper.cairn_bin), q(uri), q(helper.cairn_bin), q(enc)))
      assert.are.equal(0, code, err)
      assert.are.equal("imported 5 events into " .. enc .. "\n", err)
      local out
      code, _, err = cairn("log " .. q(enc))
      assert.are.equal(1, code)
      assert.matches("is encrypted: set CAIRN_CIPHER_KEY", err, 1, true)
      code, out = cairn("export " .. q(enc), { env = key_env })
      assert.are.equal(0, code)
      assert.are.equal(plain_export, out)
      -- the REPL opens it with the key
      helper.write_file(dir .. "/in", "app:max_notification_id()\n")
      code, out = cairn("repl --store " .. q(enc), { env = key_env, stdin = dir .. "/in" })
      assert.are.equal(0, code)
      assert.are.equal("5\n", out)
      -- nothing of a dog's name is in the encrypted store's file
      assert.is_nil(helper.read_file(dir .. "/encrypted/data.mdb"):find("Fido", 1, true))
    end)
  end)

  describe("formats", function()
    it("'-' is standard output for export and standard input for import", function()
      local uri = school_store(dir)
      local code, exported = cairn("export " .. q(uri) .. " -")
      assert.are.equal(0, code)
      helper.write_file(dir .. "/dump.jsonl", exported)
      local err
      code, _, err = cairn("import " .. q("lmdb:" .. dir .. "/copy") .. " -", { stdin = dir .. "/dump.jsonl" })
      assert.are.equal(0, code, err)
      assert.is_nil(io.open(dir .. "/-"))
      local _, again = cairn("export " .. q("lmdb:" .. dir .. "/copy"))
      assert.are.equal(exported, again)
    end)

    it("an event without fields has \"fields\":{} in export and log", function()
      helper.write_file(dir .. "/s.lua", [[
        local cairn = require "cairn"
        local Bell = cairn.aggregate("Bell")
        Bell:created("Rung", function(self) end) -- luacheck: ignore 212
        local app = cairn.application("Bells").new { store = arg[1] }
        app:save(Bell())
      ]])
      local uri = "lmdb:" .. dir .. "/bells"
      assert.are.equal(0, (cairn("run " .. q(dir .. "/s.lua") .. " " .. q(uri))))
      local code, out = cairn("export " .. q(uri))
      assert.are.equal(0, code)
      assert.matches('^{"event_id":"[%x%-]+","fields":{},"id":1,', out)
      code, out = cairn("log " .. q(uri))
      assert.are.equal(0, code)
      assert.matches("\tBell.Rung\t{}\n$", out)
      -- and it imports back
      helper.write_file(dir .. "/dump.jsonl", select(2, cairn("export " .. q(uri))))
      assert.are.equal(0, (cairn("import " .. q("lmdb:" .. dir .. "/copy") .. " " .. q(dir .. "/dump.jsonl"))))
    end)

    it("progress shows the rate and the time left", function()
      assert.are.equal("exporting [############............]  50% 500/1,000 250 events/s ETA 2s",
        progress.line("exporting", "events", 500, 1000, 2))
      assert.are.equal("checking 12,345 6,172 lines/s", progress.line("checking", "lines", 12345, nil, 2))
      assert.are.equal("1h01m", progress.duration(3661))
      assert.are.equal("1,234,567", progress.grouped(1234567))
    end)

    it("progress goes to a terminal, and nothing to a pipe", function()
      local uri = school_store(dir)
      local code, _, err = cairn("export " .. q(uri) .. " " .. q(dir .. "/out.jsonl"))
      assert.are.equal(0, code)
      assert.are.equal("", err)
      local term = terminal.start(dir, dir, ("%s export %s %s"):format(q(helper.cairn_bin), q(uri),
        q(dir .. "/tty.jsonl")))
      finally(function() term:stop() end)
      local screen = term:wait_for("EXITED 0")
      assert.matches("exporting %[#+%] 100%% 5/5 [%d,]+ events/s\n", screen)
    end)
  end)
end)
