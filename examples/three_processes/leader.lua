--- The leader process: saves to lmdb:DIR/TrainingSchool and exits.
--   cairn run examples/three_processes/leader.lua DIR [--create]   (--create: only make the store)
local root = arg[0]:match("^(.*)/examples/") or "."
package.path = root .. "/examples/training_school/?.lua;" .. package.path
local TrainingSchool = require("training_school").TrainingSchool

local dir = assert(arg[1], "usage: leader.lua DIR")
local school = TrainingSchool.new { store = "lmdb:" .. dir .. "/TrainingSchool" }
if arg[2] == "--create" then school:close(); return end
for _, name in ipairs { "Fido", "Buster", "Rex" } do
  if not school:is_registered(name) then school:register(name) end
end
local last
for _, lesson in ipairs { { "Fido", "roll over" }, { "Buster", "roll over" }, { "Rex", "fetch" } } do
  last = school:add_trick(lesson[1], lesson[2])[1].notification_id
end
print(("leader: recorded up to notification %d"):format(last))
-- tell report.lua how far the followers must get
local f = assert(io.open(dir .. "/last", "w"))
f:write(last)
f:close()
school:close()
