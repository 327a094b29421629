-- The log read path's instructions per notification, for callgrind (bench/README.md).
--   luajit bench/log_cost.lua fill DIR              S1+S2's application (20,000 dogs, 20,000 tricks
--                                                    over 1,000 of them) into lmdb:DIR, not timed
--   luajit bench/log_cost.lua select DIR K          K passes of S4d's loop (log:select pages of 1,000,
--                                                    every event's fields read)
--   luajit bench/log_cost.lua project DIR K         K catch-ups of a counts projection (view:incr per
--                                                    notification), each into a fresh lmdb: view
-- Per notification = (instructions at K2 - at K1) / ((K2 - K1) * notifications): the store's
-- opening, the first pass's trace compilation and the exit cancel out, e.g.
--   valgrind --tool=callgrind --callgrind-out-file=/tmp/c1 luajit bench/log_cost.lua select DIR 1
--   valgrind --tool=callgrind --callgrind-out-file=/tmp/c3 luajit bench/log_cost.lua select DIR 3
local root = (arg[0]:match("^(.*)/bench/[^/]*$") or ".")
package.path = root .. "/lua/?.lua;" .. root .. "/lua/?/init.lua;" .. root .. "/stdlib/?.lua;" .. package.path
package.cpath = root .. "/lib/?.so;" .. package.cpath
local cairn = require "cairn"

local mode, dir, passes = arg[1], arg[2], tonumber(arg[3] or "1")
if not (mode == "fill" or mode == "select" or mode == "project") or not dir or not passes then
  io.stderr:write("usage: luajit bench/log_cost.lua fill|select|project DIR [K]\n")
  os.exit(2)
end

local school = dofile(root .. "/bench/dog_school.lua")
local app = school.TrainingSchool.new { store = "lmdb:" .. dir .. "/school", sync = "none" }

if mode == "fill" then
  local ids = {}
  for i = 0, 19999 do ids[#ids + 1] = app:register_dog("dog-" .. i) end
  for i = 0, 19999 do app:add_trick(ids[i % 1000 + 1], "trick-" .. i) end
elseif mode == "select" then
  local log, count, acc = app.log, 0, 0
  for _ = 1, passes do
    local start = 1
    while true do
      local page = log:select(start, 1000)
      local len = #page
      if len == 0 then break end
      for j = 1, len do -- S4d's reads
        local e = page[j].event
        local payload = e.trick or e.name
        acc = acc + e.originator_version + #payload + #e.originator_id + (e.timestamp > 0 and 1 or 0)
      end
      count = count + len
      start = page[len].id + 1
    end
  end
  print(("select: %d notifications in %d passes (%d)"):format(count, passes, acc))
else
  local Counts = cairn.projection("Counts", { topics = { "Dog.Registered", "Dog.TrickAdded" } })
  Counts:on("Dog.Registered", function(view) view:incr("dogs", 1) end)
  Counts:on("Dog.TrickAdded", function(view) view:incr("tricks", 1) end)
  local count = 0
  for r = 1, passes do
    local runner = cairn.ProjectionRunner.new { application = app, projection = Counts,
      view = "lmdb:" .. dir .. "/counts-" .. r, sync = "none" }
    count = count + runner:run()
    assert(runner.view:get("dogs") + runner.view:get("tricks") == app.store:max_id())
    runner:close()
    os.execute("rm -rf " .. dir .. "/counts-" .. r)
  end
  print(("project: %d notifications in %d passes"):format(count, passes))
end
app:close()
