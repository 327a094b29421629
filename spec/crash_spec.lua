--- The crash test (spec/reliability/crash.lua) in small: writers killed with
-- SIGKILL at random moments lose no acknowledged save and leave no partial one.
-- tools/reliability runs it for many more rounds.
local helper = require "helper"
local crash = require "reliability.crash"
local check = require "reliability.check"
local model = require "reliability.model"

describe("crash test (" .. helper.engine .. ":)", function()
  it("keeps every acknowledged save, whole, when writers are killed with SIGKILL", function()
    local dir = helper.tmpdir()
    finally(function() helper.rmrf(dir) end)
    local f = crash.run { rounds = 4, writers = 3, min_ms = 60, max_ms = 300, after_ack = true,
      store = helper.store_uri(dir) }
    assert.are.same({}, f.messages)
    assert.are.equal(0, f.violations)
    assert.are.equal(12, f.kills)
    assert.is_true(f.acks > 0 and f.events > f.acks, "the writers saved nothing before they were killed")
  end)

  describe("its checker", function()
    local dir, uri
    before_each(function()
      dir = helper.tmpdir()
      uri = helper.store_uri(dir)
    end)
    after_each(function() helper.rmrf(dir) end)

    it("reports an acknowledged save that is not in the store", function()
      local app = model.App.new { store = uri, sync = "none" }
      app:save(model.Item("w", 1, 1))
      app:close()
      helper.write_file(dir .. "/acks", "ack 1 1 1\nack 2 2 1\nack 3 3")
      local st = check.new(uri)
      check.check(st, { w = dir .. "/acks" })
      assert.are.equal(1, st.violations)
      assert.matches("acknowledged save w/2 .* is missing", st.messages[1])
    end)

    it("reports a save recorded in part", function()
      local app = model.App.new { store = uri, sync = "none" }
      app:save(model.Item("w", 1, 3), model.Item("w", 1, 3))
      app:close()
      local st = check.new(uri)
      check.check(st, {})
      assert.are.equal(1, st.violations)
      assert.matches("save w/1 is partial: 2 of 3", st.messages[1])
    end)
  end)
end)
