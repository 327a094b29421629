-- Idempotent saves (API.md §9): app:save_once(key, ...).
local cairn = require "cairn"
local helper = require "helper"

local Payment = cairn.aggregate("Payment")
Payment:created("Made", function(self, amount) self.amount = amount end)
Payment.refund = Payment:event("Refunded", function(self) self.refunded = true end)

local Payments = cairn.application("Payments")

helper.each_store(function(ctx)
  it("records the first save of a key and returns its recordings on a retry, recording nothing", function()
    local app = ctx.open(Payments)
    local first = app:save_once("pay-1", Payment(10))
    assert.are.equal(1, #first)
    assert.are.equal(1, first[1].notification_id)
    -- the retry builds the command again: a new aggregate, same key
    local retry = Payment(10)
    local again = app:save_once("pay-1", retry)
    assert.are.equal(1, app:max_notification_id())
    assert.are.equal(1, #again)
    assert.are.equal(1, again[1].notification_id)
    assert.are.equal(first[1].event.event_id, again[1].event.event_id)
    assert.are.equal(first[1].event.originator_id, again[1].event.originator_id)
    -- the retry's own events were dropped: a later save records nothing of them
    assert.are.same({}, app:save(retry))
    assert.is_false(app.repository:contains(retry.id))
  end)

  it("records the key with the events of several aggregates, and with none", function()
    local app = ctx.open(Payments)
    local a, b = Payment(1), Payment(2)
    local rec = app:save_once("two", a, b)
    assert.are.equal(2, #rec)
    local again = app:save_once("two", Payment(1), Payment(2))
    assert.are.same({ rec[1].notification_id, rec[2].notification_id },
      { again[1].notification_id, again[2].notification_id })
    assert.are.same({}, app:save_once("nothing"))
    local p = Payment(3)
    assert.are.same({}, app:save_once("nothing", p)) -- saved before, with no events
    assert.are.equal(2, app:max_notification_id())
  end)

  it("keeps separate keys apart, and a failed save leaves its key unused", function()
    local app = ctx.open(Payments)
    local p = Payment(5)
    app:save(p)
    local stale = app.repository:get(p.id)
    local fresh = app.repository:get(p.id)
    fresh:refund()
    app:save_once("refund-a", fresh)
    stale:refund()
    helper.assert_error_kind("ConcurrencyError", function() app:save_once("refund-b", stale) end)
    assert.are.equal(2, app:max_notification_id())
    -- the stale save recorded nothing, its key neither: a good retry goes through
    local again = app:save_once("refund-b", Payment(6))
    assert.are.equal(3, again[1].notification_id)
  end)

  it("refuses keys that are not strings of 1 to 255 bytes", function()
    local app = ctx.open(Payments)
    local bad = "bad argument #1 to 'save_once' (a key of 1 to 255 bytes expected)"
    assert.has_error(function() app:save_once("", Payment(1)) end, bad)
    assert.has_error(function() app:save_once(("k"):rep(256), Payment(1)) end, bad)
    assert.has_error(function() app:save_once(nil, Payment(1)) end, bad)
    assert.has_error(function() app:save_once(7, Payment(1)) end, bad)
    assert.are.equal(0, app:max_notification_id())
    assert.are.equal(1, #app:save_once(("k"):rep(255), Payment(1)))
  end)
end)

describe("save_once across restarts and processes (" .. helper.engine .. ":)", function()
  local dir
  before_each(function() dir = helper.tmpdir() end)
  after_each(function() helper.rmrf(dir) end)

  it("remembers a key after the store is closed and opened again", function()
    local uri = helper.store_uri(dir, "pay")
    local app = Payments.new { store = uri, sync = "none" }
    local first = app:save_once("pay-9", Payment(9))
    app:close()
    app = Payments.new { store = uri, sync = "none" }
    finally(function() app:close() end)
    local again = app:save_once("pay-9", Payment(9))
    assert.are.equal(first[1].notification_id, again[1].notification_id)
    assert.are.equal(9, again[1].event.amount)
    assert.are.equal(1, app:max_notification_id())
  end)

  it("records a key once when four processes save it at the same time", function()
    local uri = helper.store_uri(dir, "race")
    local script = [[
local cairn = require "cairn"
local dir, uri, name = arg[1], arg[2], arg[3]
local Payment = cairn.aggregate("Payment")
Payment:created("Made", function(self, amount) self.amount = amount end)
local app = cairn.application("Payments").new { store = uri, sync = "none" }
while not io.open(dir .. "/go") do end
local out = {}
for k = 1, 20 do
  local rec = app:save_once("key-" .. k, Payment(k))
  out[#out + 1] = k .. " " .. rec[1].notification_id .. " " .. rec[1].event.event_id
end
local f = assert(io.open(dir .. "/out." .. name, "w"))
f:write(table.concat(out, "\n"), "\n")
f:close()
]]
    local code, err = helper.race_processes(script, dir, uri, 4)
    assert.are.equal(0, code, err)
    local seen
    for i = 1, 4 do
      local text = assert(helper.read_file(dir .. "/out." .. i), "process " .. i .. " wrote nothing: " .. err)
      if seen then assert.are.equal(seen, text) else seen = text end
    end
    local app = Payments.new { store = uri, sync = "none" }
    finally(function() app:close() end)
    assert.are.equal(20, app:max_notification_id()) -- one event per key, whoever won
  end)
end)
