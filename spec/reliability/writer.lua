--- A crash-test writer: `cairn run writer.lua URI NAME SEED SYNC TALLIES`.
-- Saves batches of several aggregates forever (until it is killed), and after
-- each save returns prints `ack BATCH FIRST_ID N` (line buffered): the save
-- was acknowledged, with its first notification id and its number of events.
local spec_dir = debug.getinfo(1, "S").source:match("^@(.*)/reliability/[^/]*$") or "spec"
package.path = spec_dir .. "/?.lua;" .. package.path
local model = require "reliability.model"

local uri, name, seed, sync, tallies = arg[1], arg[2], tonumber(arg[3]), arg[4], tonumber(arg[5])
math.randomseed(seed)
io.stdout:setvbuf("line")

local app = model.App.new { store = uri, sync = sync }
model.open_tallies(app, tallies)
local mine = {}
local batch = 0
while true do
  batch = batch + 1
  -- decide the batch's shape first: every event carries its size n
  local new, touch, tally_keys = math.random(1, 3), {}, {}
  local n = new
  for _ = 1, math.random(0, 2) do
    if #mine > 0 then
      local item, times = mine[math.random(#mine)], math.random(1, 3)
      if not touch[item] then touch[item] = 0 end
      touch[item] = touch[item] + times
      n = n + times
    end
  end
  if math.random() < 0.5 then
    tally_keys[1] = "t" .. math.random(tallies)
    n = n + 1
  end
  local aggs = {}
  for _ = 1, new do aggs[#aggs + 1] = model.Item(name, batch, n) end
  for item, times in pairs(touch) do
    for _ = 1, times do item:touch(name, batch, n) end
    aggs[#aggs + 1] = item
  end
  local recordings = model.save_retrying(app, aggs, tally_keys, function(tally)
    tally:count_one(name, batch, n)
  end)
  io.stdout:write(("ack %d %d %d\n"):format(batch, recordings[1].notification_id, #recordings))
  for i = 1, new do mine[#mine + 1] = aggs[i] end
end
