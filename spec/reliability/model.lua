--- The domain the reliability drivers write: items that writers create and
-- touch, and tallies that several writers count on at once. Every event
-- carries the save it belongs to (`writer`, `batch`) and how many events that
-- save holds (`n`), so a checker can tell a whole save from part of one.
local cairn = require "cairn"

local _M = {}

local Item = cairn.aggregate("RelItem")
Item:created("Made", function(self, writer, batch, n) -- luacheck: ignore 212
  self.writer, self.touches = writer, 0
end)
Item.touch = Item:event("Touched", function(self, writer, batch, n) -- luacheck: ignore 212
  self.touches = self.touches + 1
end)

local Tally = cairn.aggregate("RelTally")
function Tally.create_id(key)
  return cairn.uuid.v5(cairn.uuid.NAMESPACE_URL, "/reliability/tallies/" .. key)
end
Tally:created("Opened", function(self, key)
  self.key, self.count = key, 0
end)
Tally.count_one = Tally:event("Counted", function(self, writer, batch, n) -- luacheck: ignore 212
  self.count = self.count + 1
end)

_M.Item, _M.Tally = Item, Tally
_M.App = cairn.application("Reliability")

--- Save aggs, reloading and recounting the tallies in `tallies` (an array of
-- keys) after a ConcurrencyError, until the save goes through.
-- `recount(tally)` triggers the tally's events again. Returns the recordings
-- and the number of conflicts met.
function _M.save_retrying(app, aggs, tally_keys, recount)
  local conflicts = 0
  while true do
    local all = {}
    for i = 1, #aggs do all[i] = aggs[i] end
    for _, key in ipairs(tally_keys) do
      local tally = app.repository:get(Tally.create_id(key))
      recount(tally)
      all[#all + 1] = tally
    end
    local ok, res = pcall(app.save, app, unpack(all))
    if ok then return res, conflicts end
    if not cairn.errors.is(res, "ConcurrencyError") then error(res, 0) end
    conflicts = conflicts + 1
  end
end

--- Open the tallies key1..keyN if they are not there yet (several processes
-- may race to do it: a ConcurrencyError means another one did).
function _M.open_tallies(app, n)
  for k = 1, n do
    local key = "t" .. k
    if not app.repository:contains(Tally.create_id(key)) then
      local ok, err = pcall(app.save, app, Tally(key))
      if not ok and not cairn.errors.is(err, "ConcurrencyError") then error(err, 0) end
    end
  end
end

return _M
