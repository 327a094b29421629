-- Projection and system benchmarks (bench/README.md):
--   P1  catch-up of a counts projection over N notifications into an incr view
--   P2  follower latency across processes: commit in a writer process -> handler in a follower process
--   P3  pipeline: leader saves, a process application follows (SingleThreadedRunner)
-- usage: luajit bench/projection.lua [--quick] [P1|P2|P3 ...]
local root = (arg[0]:match("^(.*)/bench/[^/]*$") or ".")
package.path = root .. "/lua/?.lua;" .. root .. "/lua/?/init.lua;" .. root .. "/stdlib/?.lua;" .. package.path
package.cpath = root .. "/lib/?.so;" .. package.cpath
local cairn = require "cairn"
local core = require "cairn.core"

local quick, only = false, {}
for i = 1, #arg do
  if arg[i] == "--quick" then quick = true elseif arg[i]:match("^P%d$") then only[arg[i]] = true
  elseif arg[i] ~= "--child" then io.stderr:write("usage: bench/projection.lua [--quick] [P1|P2|P3]\n"); os.exit(2) end
end
local function wanted(p) return next(only) == nil or only[p] end

local function tmpdir()
  local p = os.tmpname(); os.remove(p); os.execute("mkdir -p " .. p); return p
end

local Dog = cairn.aggregate("Dog")
Dog:created("Registered", function(self, name) self.name = name end)
Dog.add_trick = Dog:event("TrickAdded", function(self, trick, sent) -- luacheck: ignore 212
end)
local School = cairn.application("TrainingSchool")

local function report(name, value, unit, n, wall_us, detail)
  print(("%s value=%.6g unit=%s n=%d wall_ms=%.1f detail=%s"):format(name, value, unit, n, wall_us / 1000,
    detail or "-"))
end

-- P1: N notifications (a tenth registrations, the rest tricks), then a catch-up.
if wanted("P1") then
  local n = quick and 100000 or 1000000
  local dir = tmpdir()
  local school = School.new { store = "lmdb:" .. dir .. "/school", sync = "none" }
  local per = 1000
  for _ = 1, n / per do
    local dogs = {}
    for j = 1, per / 10 do
      local d = Dog("d" .. j)
      for t = 1, 9 do d:add_trick("t" .. t, 0) end
      dogs[j] = d
    end
    school:save(unpack(dogs))
  end
  local Counts = cairn.projection("Counts", { topics = { "Dog.Registered", "Dog.TrickAdded" } })
  Counts:on("Dog.Registered", function(view) view:incr("dogs", 1) end)
  Counts:on("Dog.TrickAdded", function(view) view:incr("tricks", 1) end)
  local runner = cairn.ProjectionRunner.new { application = school, projection = Counts,
    view = "lmdb:" .. dir .. "/counts", sync = "none" }
  local t0, c0 = core.now_us(), os.clock()
  local read = runner:run()
  local wall = core.now_us() - t0
  assert(read == n and runner.view:get("dogs") == n / 10 and runner.view:get("tricks") == n / 10 * 9)
  report("P1", n / (wall / 1e6), "notifications/s", n, wall, ("cpu_ms=%.1f,batch=%d"):format((os.clock() - c0) * 1000,
    runner.batch))
  runner:close(); school:close()
  os.execute("rm -rf " .. dir)
end
