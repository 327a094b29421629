-- Projection and system benchmarks (bench/README.md):
--   P1  catch-up of a counts projection over N notifications into an incr view
--   P2  follower latency across processes: commit in a writer process -> handler in a follower process
--   P3  pipeline: leader saves, a process application follows (SingleThreadedRunner)
-- usage: luajit bench/projection.lua [--quick] [--runs K] [--n N] [--pg URI] [P1|P2|P3 ...]
-- (--runs: P1 catches up K times, each into a fresh view, over the same log; --n: P1's
-- notifications; --pg: P1's log and views in fresh schemas of that PostgreSQL database)
local root = (arg[0]:match("^(.*)/bench/[^/]*$") or ".")
package.path = root .. "/lua/?.lua;" .. root .. "/lua/?/init.lua;" .. root .. "/stdlib/?.lua;" .. package.path
package.cpath = root .. "/lib/?.so;" .. package.cpath
local cairn = require "cairn"
local core = require "cairn.core"

local Dog = cairn.aggregate("Dog")
Dog:created("Registered", function(self, name) self.name = name end)
Dog.add_trick = Dog:event("TrickAdded", function(self, trick, sent) -- luacheck: ignore 212
end)
local School = cairn.application("TrainingSchool")

-- P2's writer, in its own process: N tricks, each stamped just before its save,
-- 0.5-1.5 ms apart, so the follower is asleep when each one comes.
if arg[1] == "--writer" then
  local uri, n = arg[2], tonumber(arg[3])
  local school = School.new { store = uri, sync = "none" }
  local dog = Dog("writer")
  school:save(dog)
  math.randomseed(7)
  for i = 1, n do
    core.sleep(0.0005 + math.random() * 0.001)
    dog:add_trick(i < n and "t" or "done", core.now_us())
    school:save(dog)
  end
  school:close()
  os.exit(0)
end

local quick, only, runs, p1_n, pg = false, {}, 1, nil, nil
do
  local i = 1
  while i <= #arg do
    if arg[i] == "--quick" then quick = true
    elseif arg[i] == "--runs" and tonumber(arg[i + 1]) and tonumber(arg[i + 1]) >= 1 then
      runs = math.floor(tonumber(arg[i + 1])); i = i + 1
    elseif arg[i] == "--n" and tonumber(arg[i + 1]) and tonumber(arg[i + 1]) % 1000 == 0 then
      p1_n = tonumber(arg[i + 1]); i = i + 1
    elseif arg[i] == "--pg" and (arg[i + 1] or ""):match("^postgres") then
      pg = arg[i + 1]; i = i + 1
    elseif arg[i]:match("^P%d$") then only[arg[i]] = true
    else
      io.stderr:write("usage: bench/projection.lua [--quick] [--runs K] [--n N (a multiple of 1000)] [--pg URI] ",
        "[P1|P2|P3]\n")
      os.exit(2)
    end
    i = i + 1
  end
end
local function wanted(p) return next(only) == nil or only[p] end

local function tmpdir()
  local p = os.tmpname(); os.remove(p); os.execute("mkdir -p " .. p); return p
end

local function report(name, value, unit, n, wall_us, detail)
  print(("%s value=%.6g unit=%s n=%d wall_ms=%.1f detail=%s"):format(name, value, unit, n, wall_us / 1000,
    detail or "-"))
end

-- P1: N notifications (a tenth registrations, the rest tricks), then a catch-up.
-- a store: lmdb:DIR/NAME, or with --pg a fresh schema NAME_<time> of that database
local function store_uri(dir, name)
  if not pg then return "lmdb:" .. dir .. "/" .. name end
  return ("%s%sschema=bench_%s_%d"):format(pg, pg:find("?", 1, true) and "&" or "?", name:gsub("%W", "_"), os.time())
end

if wanted("P1") then
  local n = p1_n or (quick and 100000 or 1000000)
  local dir = tmpdir()
  local school = School.new { store = store_uri(dir, "school"), sync = "none" }
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
  for r = 1, runs do
    local runner = cairn.ProjectionRunner.new { application = school, projection = Counts,
      view = store_uri(dir, "counts-" .. r), sync = "none" }
    collectgarbage()
    local t0, c0 = core.now_us(), os.clock()
    local read = runner:run()
    local wall = core.now_us() - t0
    assert(read == n and runner.view:get("dogs") == n / 10 and runner.view:get("tricks") == n / 10 * 9)
    report("P1", n / (wall / 1e6), "notifications/s", n, wall, ("cpu_ms=%.1f,batch=%d,store=%s"):format(
      (os.clock() - c0) * 1000, runner.batch, pg and "postgresql" or "lmdb"))
    runner:close()
    os.execute("rm -rf " .. dir .. "/counts-" .. r)
  end
  school:close()
  os.execute("rm -rf " .. dir)
end

-- P2: a writer process saves; this process follows with a projection whose
-- handler notes now - the event's stamp (taken before the save, so the
-- commit itself is included). Also with the polling fallback (no wake file).
local function latency(wake, n)
  local dir = tmpdir()
  os.execute("mkdir -p " .. dir .. "/school")
  if not wake then os.execute("mkdir " .. dir .. "/school/wake") end
  local uri = "lmdb:" .. dir .. "/school"
  local school = School.new { store = uri, sync = "none" }
  local lat = {}
  local Lat = cairn.projection("Latency", { topics = { "Dog.TrickAdded" } })
  local runner
  Lat:on("Dog.TrickAdded", function(_, event)
    lat[#lat + 1] = core.now_us() - event.sent
    if event.trick == "done" then runner:stop() end
  end)
  runner = cairn.ProjectionRunner.new { application = school, projection = Lat, view = "memory:" }
  local lua = arg[-1] or "luajit"
  os.execute(("%s %s --writer %s %d &"):format(lua, arg[0], uri, n))
  local t0 = core.now_us()
  runner:follow { poll = 0.01 }
  local wall = core.now_us() - t0
  table.sort(lat)
  local med, p99 = lat[math.floor(#lat / 2) + 1], lat[math.floor(#lat * 0.99) + 1]
  report(wake and "P2" or "P2poll", med / 1000, "ms_median", #lat, wall,
    ("p99_ms=%.3f,max_ms=%.3f,min_ms=%.3f"):format(p99 / 1000, lat[#lat] / 1000, lat[1] / 1000))
  runner:close(); school:close()
  os.execute("rm -rf " .. dir)
end
if wanted("P2") then
  latency(true, quick and 300 or 2000)
  latency(false, quick and 100 or 300)
end

-- P3: a system, leader -> process application, in one process: every
-- registration makes the follower save one aggregate (SingleThreadedRunner:
-- followers run inside each leader save); then a follower catching up alone.
if wanted("P3") then
  local n = quick and 2000 or 20000
  local Seen = cairn.aggregate("Seen")
  Seen:created("Noted", function(self, dog) self.dog = dog end)
  local Follower = cairn.process_application("Follower")
  Follower:policy("Dog.Registered", function(_, event, processing) processing:collect(Seen(event.originator_id)) end)
  local dir = tmpdir()
  local system = cairn.system { pipes = { { School, Follower } } }
  local runner = cairn.SingleThreadedRunner.new(system, { store = "lmdb:" .. dir .. "/live", sync = "none" })
  runner:start()
  local school = runner:get(School)
  local t0 = core.now_us()
  for i = 1, n do school:save(Dog("d" .. i)) end
  local wall = core.now_us() - t0
  assert(runner:get(Follower):max_notification_id() == n)
  report("P3", n / (wall / 1e6), "saves/s", n, wall, "leader_save+follower_save_each")
  runner:stop()
  -- catch-up: the leader's log exists, the follower starts from nothing
  local leader = School.new { store = "lmdb:" .. dir .. "/up/TrainingSchool", sync = "none" }
  for b = 1, n / 1000 do
    local dogs = {}
    for j = 1, 1000 do dogs[j] = Dog(b .. ":" .. j) end
    leader:save(unpack(dogs))
  end
  local follower = Follower.new { store = "lmdb:" .. dir .. "/up/Follower", sync = "none" }
  follower:follow("TrainingSchool", leader)
  t0 = core.now_us()
  local read = follower:pull_and_process("TrainingSchool")
  wall = core.now_us() - t0
  assert(read == n and follower:max_notification_id() == n)
  report("P3up", n / (wall / 1e6), "notifications/s", n, wall, "follower_catch_up,one_txn_per_notification")
  follower:close(); leader:close()
  os.execute("rm -rf " .. dir)
end
