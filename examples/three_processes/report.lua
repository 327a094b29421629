--- Wait until both followers have processed the leader's last notification,
-- then print what they made.
--   cairn run examples/three_processes/report.lua DIR
local cairn = require "cairn"
local root = arg[0]:match("^(.*)/examples/") or "."
package.path = root .. "/examples/training_school/?.lua;" .. package.path
local Counters = require("counters").Counters

local dir = assert(arg[1], "usage: report.lua DIR")
local f = assert(io.open(dir .. "/last"))
local last = tonumber(f:read("*a"))
f:close()

local view = cairn.view("lmdb:" .. dir .. "/Counts", "Counts")
view:wait("TrainingSchool", last, 10)
print(("projection: %d dogs, %d tricks taught"):format(view:get("dogs"), view:get("tricks")))
view:close()

-- the process application records how far it got in its own store
local counters = Counters.new { store = "lmdb:" .. dir .. "/Counters" }
local deadline = cairn.time.now():seconds() + 10
while counters.store:tracking_max("TrainingSchool") < last do
  assert(cairn.time.now():seconds() < deadline, "the follower did not catch up")
  require("cairn.core").sleep(0.01)
end
print(("follower: 'roll over' learned by %d dogs, 'fetch' by %d"):format(counters:learned("roll over"),
  counters:learned("fetch")))
counters:close()
