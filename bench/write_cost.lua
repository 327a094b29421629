--- bench/write_cost's driver (run it through bench/write_cost): one scenario,
-- with callgrind's collection switched on only around what the scenario times.
--   luajit bench/write_cost.lua LIBMARKS STORE_DIR S5|S1|S2 -> prints the events or commands counted
local script = (arg and arg[0]) or "bench/write_cost.lua"
local root = (script:match("^(.*)/[^/]*$") or ".") .. "/.."
package.path = root .. "/lua/?.lua;" .. root .. "/lua/?/init.lua;" .. root .. "/stdlib/?.lua;" .. package.path
package.cpath = root .. "/lib/?.so;" .. package.cpath

local ffi = require "ffi"

local marks_lib, dir, which = arg[1], arg[2], arg[3]
ffi.cdef "void cost_toggle(void);"
local marks = ffi.load(marks_lib)

-- The domain of bench/scenarios.lua (the Python library's README dog school).
local school = dofile(root .. "/bench/dog_school.lua")
local Dog, TrainingSchool = school.Dog, school.TrainingSchool

local app = TrainingSchool.new { store = "lmdb:" .. dir, sync = "none", map_size = 64 * 2 ^ 20 }
local counted
if which == "S5" then
  local batch, batches = 1000, 5
  for b = 0, batches - 1 do
    local dogs = {}
    for i = 0, batch - 1 do dogs[i + 1] = Dog(("batch%d-dog-%d"):format(b, i)) end
    collectgarbage()
    marks.cost_toggle()
    app:save(unpack(dogs, 1, batch))
    marks.cost_toggle()
  end
  counted = app:max_notification_id()
  assert(counted == batch * batches, "S5: not every event was recorded")
elseif which == "S1" then
  local n = 20000
  collectgarbage()
  marks.cost_toggle()
  for i = 0, n - 1 do app:register_dog("dog-" .. i) end
  marks.cost_toggle()
  counted = app:max_notification_id()
  assert(counted == n, "S1: not every save was recorded")
elseif which == "S2" then
  local n, m, k = 20000, 20000, 1000
  local ids = {}
  for i = 0, n - 1 do ids[i + 1] = app:register_dog("dog-" .. i) end
  collectgarbage()
  marks.cost_toggle()
  for i = 0, m - 1 do app:add_trick(ids[i % k + 1], "trick-" .. i) end
  marks.cost_toggle()
  assert(#app.repository:get(ids[1]).tricks == m / k, "S2: the first dog has the wrong number of tricks")
  counted = m
else
  error("bench/write_cost.lua: S5, S1 or S2, not " .. tostring(which))
end
app:close()
print(counted)
