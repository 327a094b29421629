--- Hostile input: bad domain modules, bad URIs, files that are not stores,
-- stores from a newer cairn, unreadable, truncated and damaged data files.
-- Each gets a clear error, and the recorded data stays byte for byte the same.
-- The stores here are LMDB's files (lmdb: URIs) on purpose.
local helper = require "helper"
local cairn = require "cairn"

local q = helper.shell_quote
local tests_bin = os.getenv("CAIRN_C_TESTS") or helper.root .. "/build/tests/cairn_c_tests"

local MODEL = [[
local cairn = require "cairn"
local Dog = cairn.aggregate("HDog")
Dog:created("Registered", function(self, name) self.name = name end)
Dog.rename = Dog:event("Renamed", function(self, name) self.name = name end)
return { Dog = Dog, App = cairn.application("Hostile") }
]]

local function cairn_cmd(args)
  return helper.run(q(helper.cairn_bin) .. " " .. args .. " </dev/null")
end

describe("hostile input", function()
  local dir, path, uri, sums

  -- a checksum of every data file under the store
  local function checksum()
    local _, out = helper.run(("cd %s && sha256sum data.mdb"):format(q(path)))
    return out
  end

  before_each(function()
    dir = helper.tmpdir()
    path = dir .. "/store"
    uri = "lmdb:" .. path
    helper.write_file(dir .. "/model.lua", MODEL)
    helper.write_file(dir .. "/fill.lua", [[
      local m = require "model"
      local app = m.App.new { store = arg[1] }
      for i = 1, 20 do local d = m.Dog("dog " .. i); d:rename("Dog " .. i); app:save(d) end
      app:close()
    ]])
    local code, _, err = cairn_cmd(("run %s %s"):format(q(dir .. "/fill.lua"), q(uri)))
    assert.are.equal(0, code, err)
    sums = checksum()
  end)

  after_each(function()
    assert.are.equal(sums, checksum(), "the store's data changed")
    helper.rmrf(dir)
  end)

  -- run a script beside the model against the store; returns code, stdout, stderr
  local function script(source)
    helper.write_file(dir .. "/script.lua", source)
    return cairn_cmd(("run %s %s"):format(q(dir .. "/script.lua"), q(uri)))
  end

  describe("bad domain modules", function()
    it("a syntax error: cairn run and cairn repl --require exit 1 naming the file and line", function()
      helper.write_file(dir .. "/broken.lua", "local x = = 1\nreturn {}\n")
      local code, _, err = script("require 'broken'")
      assert.are.equal(1, code)
      assert.matches("broken.lua:1:", err, 1, true)
      code, _, err = helper.run(("cd %s && %s repl --store %s --require broken </dev/null"):format(q(dir),
        q(helper.cairn_bin), q(uri)))
      assert.are.equal(1, code)
      assert.matches("broken.lua:1:", err, 1, true)
    end)

    it("an apply function that raises at trigger time records nothing", function()
      local code, out, err = script([[
        local m = require "model"
        m.Dog:event("Broke", function(self, why) error("cannot: " .. why) end)
        local app = m.App.new { store = arg[1] }
        local d = m.Dog("Rex")
        local ok, e = pcall(d.trigger, d, "Broke", { why = "bad" })
        print(ok, (tostring(e):gsub("^.*: cannot", "cannot")), app:max_notification_id())
      ]])
      assert.are.equal(0, code, err)
      assert.are.equal("false\tcannot: bad\t40\n", out)
    end)

    -- regression: the error was a bare string naming neither aggregate nor version
    it("an apply function that raises on replay: a SchemaError naming class, id, version, topic and its message",
      function()
        local code, out, err = script([[
          local cairn = require "cairn"
          local m = require "model"
          m.Dog:event("Renamed", function(self, name) error("no renames today (" .. name .. ")") end)
          local app = m.App.new { store = arg[1] }
          local first = app.log:select(1, 1)[1]
          local ok, e = pcall(app.repository.get, app.repository, first.originator_id)
          print(ok, cairn.errors.is(e, "SchemaError"), first.originator_id)
          print(e.message)
        ]])
        assert.are.equal(0, code, err)
        local ok, is_schema, id, message = out:match("^(%a+)\t(%a+)\t(%S+)\n(.*)\n$")
        assert.are.equal("false", ok)
        assert.are.equal("true", is_schema)
        assert.matches("replaying HDog " .. id:gsub("%-", "%%-") .. " version 2 %(HDog.Renamed%): the apply function "
          .. "raised: .*no renames today %(Dog 1%)", message)
      end)

    -- regression: loops in a module's (JIT-compiled) function ignored Ctrl-C
    it("an infinite loop in a module's function is interrupted by SIGINT in the REPL", function()
      helper.write_file(dir .. "/spin.lua",
        "return { forever = function() local x = 0 while true do x = x + 1 end end }")
      local cmd = ("cd %s; (echo 'spin.forever()'; sleep 3; echo 'app:max_notification_id()') | "
        .. "%s repl --store %s --require spin & pid=$!; sleep 1.5; kill -INT $pid; "
        .. "( sleep 20; kill -KILL $pid 2>/dev/null ) & wait $pid"):format(q(dir), q(helper.cairn_bin), q(uri))
      local code, out, err = helper.run("bash -c " .. q(cmd))
      assert.are.equal(1, code, err) -- read from a pipe, the REPL exits 1 after a failed line
      assert.matches("interrupted", err, 1, true)
      assert.are.equal("40\n", out)
    end)
  end)

  describe("bad store URIs", function()
    for _, bad in ipairs { "lmdb:", "memory:x", "bolt:/tmp/x", "lmdb:/dev/null/x",
                           "lmdb:" .. ("a"):rep(5000), "postgres://nowhere/db" } do
      it(("refuses %q with ConfigError naming it"):format(bad:sub(1, 30)), function()
        local err = helper.error_of(cairn.application("Hostile").new, { store = bad })
        assert.is_true(cairn.errors.is(err, "ConfigError") or cairn.errors.is(err, "StoreError"), tostring(err))
        -- (a PostgreSQL store is named by its server, host:port/database, never by its whole URI)
        assert.matches(bad == "postgres://nowhere/db" and "nowhere:5432/db" or bad:gsub("^lmdb:", ""):sub(1, 20),
          err.message, 1, true)
        -- a URI of no known form is a usage error (the message and a usage line);
        -- one that names no store that can be opened is a failure (one line)
        local usage = bad == "lmdb:" or bad == "memory:x" or bad:match("^bolt:") ~= nil
        local code, _, stderr = cairn_cmd("stat " .. q(bad))
        if usage then
          assert.are.equal(2, code)
          assert.matches("^cairn stat: [^\n]+\nusage: cairn stat [^\n]+\n$", stderr)
        else
          assert.are.equal(1, code)
          assert.matches("^cairn stat: %u%a+Error: [^\n]+\n$", stderr)
        end
      end)
    end

    -- regression: a NUL cut the path short and opened (or created) another store
    it("refuses a URI with a NUL byte in it", function()
      local err = helper.error_of(cairn.application("Hostile").new, { store = uri .. "\0/elsewhere" })
      assert.is_true(cairn.errors.is(err, "ConfigError"), tostring(err))
      assert.matches("NUL", err.message, 1, true)
    end)
  end)

  describe("files that are not stores", function()
    local function refused(setup)
      local other = dir .. "/other"
      os.execute("mkdir -p " .. q(other))
      setup(other .. "/data.mdb")
      local _, before = helper.run(("ls -l %s; sha256sum %s/* 2>/dev/null"):format(q(other), q(other)))
      local code, _, err = cairn_cmd("stat " .. q("lmdb:" .. other))
      assert.are.equal(1, code)
      assert.matches("^cairn stat: ConfigError: " .. other:gsub("%p", "%%%0") .. " does not hold an LMDB store", err)
      local function open() cairn.application("Hostile").new { store = "lmdb:" .. other } end
      helper.assert_error_kind("ConfigError", open, other .. " does not hold an LMDB store")
      local _, after = helper.run(("ls -l %s; sha256sum %s/* 2>/dev/null"):format(q(other), q(other)))
      assert.are.equal(before, after)
      return err
    end

    it("random bytes", function()
      refused(function(f) os.execute(("head -c 100000 /dev/urandom > %s"):format(q(f))) end)
    end)
    it("a text file", function()
      refused(function(f) helper.write_file(f, ("not a database\n"):rep(1000)) end)
    end)
    it("zeros", function()
      refused(function(f) os.execute(("head -c 65536 /dev/zero > %s"):format(q(f))) end)
    end)
    it("a directory named data.mdb", function()
      refused(function(f) os.execute("mkdir " .. q(f)) end)
    end)

    it("a store written by a newer cairn (format 3)", function()
      local newer = dir .. "/newer"
      os.execute(("cp -r %s %s"):format(q(path), q(newer)))
      local code, _, err = helper.run(("%s --format %s 3"):format(q(tests_bin), q(newer)))
      assert.are.equal(0, code, err)
      local _, before = helper.run("sha256sum " .. q(newer .. "/data.mdb"))
      code, _, err = cairn_cmd("log " .. q("lmdb:" .. newer))
      assert.are.equal(1, code)
      assert.matches("ConfigError: store .* has format 3; this cairn reads format 2 %(it was written by a newer", err)
      local _, after = helper.run("sha256sum " .. q(newer .. "/data.mdb"))
      assert.are.equal(before, after)
    end)

    it("a store this user cannot read", function()
      local is_root = select(2, helper.run("id -u")) == "0\n"
      local prefix = ""
      if is_root then
        -- root reads everything: ask as nobody, who may enter the directory but not read the files
        os.execute("chmod 755 " .. q(dir) .. " " .. q(path) .. "; chmod 600 " .. q(path) .. "/*")
        prefix = "setpriv --reuid=65534 --regid=65534 --clear-groups "
      else
        os.execute("chmod 000 " .. q(path) .. "/data.mdb")
      end
      local code, _, err = helper.run(prefix .. q(helper.cairn_bin) .. " stat " .. q(uri) .. " </dev/null")
      os.execute("chmod 644 " .. q(path) .. "/data.mdb")
      assert.are.equal(1, code)
      assert.matches("^cairn stat: StoreError: .*" .. path:gsub("%p", "%%%0") .. ".*Permission denied", err)
    end)
  end)

  describe("damaged data files", function()
    -- regression: LMDB read past the end of the map and the process died of SIGBUS
    it("a truncated data file is an IntegrityError, not a crash", function()
      local cut = dir .. "/cut"
      os.execute(("cp -r %s %s && truncate -s 20000 %s"):format(q(path), q(cut), q(cut .. "/data.mdb")))
      for _, cmd in ipairs { "stat", "log", "export" } do
        local code, _, err = cairn_cmd(cmd .. " " .. q("lmdb:" .. cut))
        assert.are.equal(1, code, cmd .. ": " .. err)
        assert.matches("IntegrityError: store .* is damaged: its data file is truncated", err)
      end
      local err = helper.error_of(cairn.application("Hostile").new, { store = "lmdb:" .. cut })
      assert.is_true(cairn.errors.is(err, "IntegrityError"), tostring(err))
    end)

    it("both meta pages damaged: not an LMDB store", function()
      local bad = dir .. "/bad"
      os.execute(("cp -r %s %s"):format(q(path), q(bad)))
      local f = assert(io.open(bad .. "/data.mdb", "r+b"))
      for _, at in ipairs { 16, 4096 + 16 } do f:seek("set", at); f:write(("\255"):rep(16)) end
      f:close()
      local code, _, err = cairn_cmd("stat " .. q("lmdb:" .. bad))
      assert.are.equal(1, code)
      assert.matches("ConfigError: .* does not hold an LMDB store", err)
    end)
  end)
end)
