--- Corrupt records: reads refuse them with IntegrityError naming the record,
-- and the rest of the store stays readable. LMDB only: the damage is done to
-- data.mdb by the C test program.
local helper = require "helper"
local cairn = require "cairn"

local q = helper.shell_quote
local tests_bin = os.getenv("CAIRN_C_TESTS") or helper.root .. "/build/tests/cairn_c_tests"

describe("corrupt records (lmdb:)", function()
  local dir, uri, Dog, App

  before_each(function()
    dir = helper.tmpdir()
    uri = "lmdb:" .. dir .. "/store"
    Dog = cairn.aggregate("Dog")
    Dog:created("Registered", function(self, name) self.name = name end)
    Dog:event("Renamed", function(self, name) self.name = name end)
    App = cairn.application("School")
  end)
  after_each(function() helper.rmrf(dir) end)

  -- two dogs; notification 2 (Fido's rename) gets corrupted
  local function make_store(how)
    local app = App.new { store = uri, sync = "none" }
    local fido, rex = Dog("Fido"), Dog("Rex")
    fido:trigger("Renamed", { name = "Fido II" })
    app:save(fido)
    app:save(rex)
    app:close()
    local code, _, err = helper.run(("%s --corrupt %s 2 %s"):format(q(tests_bin), q(dir .. "/store"), how))
    assert.are.equal(0, code, err)
    return fido.id, rex.id
  end

  for _, how in ipairs { "payload", "header" } do
    describe("(" .. how .. " damaged)", function()
      it("get raises IntegrityError naming the notification; other aggregates still load", function()
        local fido, rex = make_store(how)
        local app = App.new { store = uri }
        local err = helper.error_of(app.repository.get, app.repository, fido)
        assert.is_true(cairn.errors.is(err, "IntegrityError"), tostring(err))
        assert.matches("notification 2", err.message, 1, true)
        assert.are.equal("Rex", app.repository:get(rex).name)
        app:close()
      end)

      -- a read from a stream's start takes its first record to chain from
      -- zeros without looking for one below it: that record is still checked
      it("get raises IntegrityError for the first record of a stream, read from the start", function()
        local fido, rex = make_store(how)
        local code, _, err = helper.run(("%s --corrupt %s 1 %s"):format(q(tests_bin), q(dir .. "/store"), how))
        assert.are.equal(0, code, err)
        local app = App.new { store = uri }
        err = helper.error_of(app.repository.get, app.repository, fido)
        assert.is_true(cairn.errors.is(err, "IntegrityError"), tostring(err))
        assert.matches("notification 1", err.message, 1, true)
        assert.are.equal("Rex", app.repository:get(rex).name)
        app:close()
      end)

      it("the log raises IntegrityError at the record and reads up to it", function()
        make_store(how)
        local app = App.new { store = uri }
        assert.are.equal(1, #app.log:select(1, 1))
        local err = helper.error_of(app.log.select, app.log, 1, 10)
        assert.is_true(cairn.errors.is(err, "IntegrityError"), tostring(err))
        assert.are.equal(1, #app.log:select(3, 10))
        app:close()
      end)

      it("cairn log and export fail with exit 1 and say which record", function()
        make_store(how)
        local code, _, err = helper.run(q(helper.cairn_bin) .. " export " .. q(uri))
        assert.are.equal(1, code)
        assert.matches("IntegrityError: .*notification 2", err)
      end)

      it("verify names the first problem and how many more; --all prints every one", function()
        make_store(how)
        local code, _, err = helper.run(("%s --corrupt %s 3 %s"):format(q(tests_bin), q(dir .. "/store"), how))
        assert.are.equal(0, code, err)
        local out
        code, out, err = helper.run(q(helper.cairn_bin) .. " verify " .. q(uri))
        assert.are.equal(1, code)
        assert.matches("^cairn verify: IntegrityError: [^\n]*notification [23][^\n]*%(and %d+ more problems?: "
          .. "cairn verify %-%-all lists them%)\n$", err)
        assert.not_matches("problem: ", out)
        local problems = tonumber(out:match("problems: (%d+)"))
        code, out, err = helper.run(q(helper.cairn_bin) .. " verify --all " .. q(uri))
        assert.are.equal(1, code)
        local listed = {}
        for line in out:gmatch("problem: ([^\n]+)") do listed[#listed + 1] = line end
        assert.are.equal(problems, #listed)
        local all = table.concat(listed, "\n")
        assert.matches("notification 2", all, 1, true)
        assert.matches("notification 3", all, 1, true)
        assert.matches("more problems%)\n$", err)
      end)

      -- issue 14 item 5: an export of a damaged store must not launder it
      it("export refuses the store, naming the damage; --salvage exports the rest and says what it skipped",
        function()
          make_store(how)
          local code, out, err = helper.run(q(helper.cairn_bin) .. " export " .. q(uri))
          assert.are.equal(1, code)
          assert.are.equal("", out)
          assert.matches("^cairn export: IntegrityError: .* fails its checks %(1 problem, the first: .*"
            .. "notification 2.*cairn export %-%-salvage", err)
          code, out, err = helper.run(q(helper.cairn_bin) .. " export --salvage " .. q(uri))
          assert.are.equal(0, code, err)
          assert.matches("cairn export: %-%-salvage: the store fails its checks %(1 problem", err)
          assert.matches("skipped notification 2: IntegrityError", err)
          assert.matches("left out 1 notification that failed its checks", err)
          local ids = {}
          for id in out:gmatch('"id":(%d+),"originator_id"') do ids[#ids + 1] = tonumber(id) end
          assert.are.same({ 1, 3 }, ids)
        end)
    end)
  end
end)
