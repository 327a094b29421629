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
    end)
  end
end)
