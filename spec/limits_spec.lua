--- Limits: huge events, very long streams, very many aggregates behave, and
-- what cannot be stored fails clearly. CAIRN_RELIABILITY_SCALE (default 1)
-- multiplies the sizes; `tools/reliability --long` raises it.
local helper = require "helper"
local cairn = require "cairn"

local SCALE = tonumber(os.getenv("CAIRN_RELIABILITY_SCALE")) or 1
local q = helper.shell_quote

local Blob = cairn.aggregate("LimitBlob")
Blob:created("Made", function(self, data) self.size = #data end)
Blob.append = Blob:event("Appended", function(self, n) self.last = n end)
local App = cairn.application("Limits")

helper.each_store(function(ctx)
  describe("limits", function()
    it("stores and reads back a 50 MB event", function()
      local app = ctx.open(App)
      local data = ("0123456789abcdef"):rep(50 * 2 ^ 20 / 16)
      local blob = Blob(data)
      app:save(blob)
      assert.are.equal(#data, app.repository:get(blob.id).size)
      local n = app.log:select(1, 1)[1]
      assert.are.equal(data, n.event.data)
    end)

    it("replays a very long stream", function()
      local app = ctx.open(App)
      local blob = Blob("x")
      local n = 50000 * SCALE
      for i = 1, n do
        blob:append(i)
        if i % 10000 == 0 then app:save(blob) end
      end
      app:save(blob)
      local got = app.repository:get(blob.id)
      assert.are.equal(n + 1, got.version)
      assert.are.equal(n, got.last)
      assert.are.equal(1000, app.repository:get(blob.id, { version = 1001 }).last)
    end)

    it("holds very many aggregates", function()
      local app = ctx.open(App)
      local n, ids = 50000 * SCALE, {}
      for start = 1, n, 1000 do
        local batch = {}
        for i = start, start + 999 do batch[#batch + 1] = Blob(tostring(i)) end
        app:save(unpack(batch))
        for i = 1, #batch do ids[#ids + 1] = batch[i].id end
      end
      assert.are.equal(n, app:max_notification_id())
      assert.are.equal(n, app.store:stat().streams)
      for _, i in ipairs { 1, 2, n / 2, n - 1, n } do
        assert.are.equal(#tostring(i), app.repository:get(ids[i]).size)
      end
    end)

    it("refuses a topic longer than a record can hold, at trigger time", function()
      local app = ctx.open(App)
      local Long = cairn.aggregate(("L"):rep(70000))
      Long:created("Made", function(self) end) -- luacheck: ignore 212
      local err = helper.error_of(Long)
      assert.is_true(cairn.errors.is(err, "SchemaError"), tostring(err))
      assert.matches("1 to 65535 bytes", err.message, 1, true)
      assert.are.equal(0, app:max_notification_id())
    end)
  end)
end)

describe("limits (" .. helper.engine .. ":, command line)", function()
  it("exports and imports a 50 MB event", function()
    local dir = helper.tmpdir()
    finally(function() helper.rmrf(dir) end)
    local a, b_uri = helper.store_uri(dir, "a"), helper.store_uri(dir, "b")
    local app = App.new { store = a, sync = "none" }
    local data = ("\0\1\2\3 bytes that are not UTF-8 \255"):rep(50 * 2 ^ 20 / 32)
    app:save(Blob(data))
    app:close()
    local code, _, err = helper.run(("%s export %s %s && %s import %s %s"):format(q(helper.cairn_bin),
      q(a), q(dir .. "/x.jsonl"), q(helper.cairn_bin), q(b_uri),
      q(dir .. "/x.jsonl")))
    assert.are.equal(0, code, err)
    local b = App.new { store = b_uri }
    finally(function() b:close() end)
    assert.are.equal(data, b.log:select(1, 1)[1].event.data)
  end)
end)
