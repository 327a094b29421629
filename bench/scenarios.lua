--- cairn benchmark scenarios (see bench/README.md).
--
--   luajit bench/scenarios.lua STORE [--sync=full|none] [--sealed] [--quick]
--   bin/cairn run bench/scenarios.lua STORE [--sync=full|none] [--sealed] [--quick]
--
-- --sealed: encryption at rest (a fresh key) and zstd compression.
--
-- STORE is `memory:` or `lmdb:DIR` (`lmdb:` alone: a temporary directory,
-- removed afterwards). Each scenario prints one machine-readable line:
--
--   S1 value=107330.7 unit=saves/s n=20000 wall_ms=186.3 cpu_ms=181.0 detail=...
--
-- bench/run runs this once per store configuration and assembles the table.

-- Find the project from this script's location, so any working directory works.
local script = (arg and arg[0]) or "bench/scenarios.lua"
local root = (script:match("^(.*)/[^/]*$") or ".") .. "/.."
package.path = root .. "/lua/?.lua;" .. root .. "/lua/?/init.lua;" .. root .. "/stdlib/?.lua;"
  .. root .. "/stdlib/?/init.lua;" .. package.path
package.cpath = root .. "/lib/?.so;" .. package.cpath

local cairn = require "cairn"
local core = require "cairn.core"

local now_us, clock = core.now_us, os.clock
local unpack, floor, sort, concat = unpack, math.floor, table.sort, table.concat
local collectgarbage, print, tostring = collectgarbage, print, tostring

-- Arguments: `...` under luajit; fall back to `arg` for hosts that only set that.
local argv = { ... }
if #argv == 0 and arg then
  for i = 1, #arg do argv[i] = arg[i] end
end

local store, sync, quick, sealed
for i = 1, #argv do
  local a = argv[i]
  if a == "--quick" then quick = true
  elseif a == "--sealed" then sealed = true
  elseif a:match("^%-%-sync=") then sync = a:match("^%-%-sync=(.*)$")
  elseif not store then store = a
  else
    io.stderr:write("scenarios.lua: unexpected argument '", a, "'\n")
    os.exit(2)
  end
end
if not store or not (store == "memory:" or store:match("^lmdb:")) or
   (sync and sync ~= "full" and sync ~= "none") then
  io.stderr:write("usage: scenarios.lua memory:|lmdb:[DIR] [--sync=full|none] [--sealed] [--quick]\n")
  os.exit(2)
end
sync = sync or "full"

local temp_dir
if store == "lmdb:" then
  local p = io.popen("mktemp -d")
  temp_dir = p:read("*l")
  p:close()
  store = "lmdb:" .. temp_dir
end

-- Counts. Durable commits (lmdb, sync=full) fsync once per save, so S1 and S2
-- run 10x fewer operations there; S2 keeps 20 commands per aggregate.
local durable = store:match("^lmdb:") and sync == "full"
local scale = quick and 0.1 or 1
local function count(n) return floor(n * scale + 0.5) end
local N = {
  s1 = count(durable and 2000 or 20000),
  s2 = count(durable and 2000 or 20000),
  s3_events = count(10000),
  s3_loads = quick and 5 or 15,
  s4_page = 1000,
  s4_min_passes = 3,
  s4_min_us = quick and 100000 or 400000,
  s5 = count(1000),
  s5_reps = quick and 5 or 9,
}
N.s2_aggregates = floor(N.s2 / 20)

-- The domain: the dog school.
local Dog = cairn.aggregate("Dog")
Dog:created("Registered", function(self, name)
  self.name = name
  self.tricks = {}
end)
Dog.add_trick = Dog:event("TrickAdded", function(self, trick)
  self.tricks[#self.tricks + 1] = trick
end)

local DogSchool = cairn.application("DogSchool")

local app = DogSchool.new { store = store, sync = sync, cipher_key = sealed and core.keygen() or nil,
                            compressor = sealed and "zstd" or "none" }
local repo = app.repository

local TRICKS = { "roll over", "sit", "fetch", "play dead", "shake hands", "beg", "spin", "high five" }

local function names(prefix, n)
  local t = {}
  for i = 1, n do t[i] = prefix .. i end
  return t
end

local function median(t)
  local s = {}
  for i = 1, #t do s[i] = t[i] end
  sort(s)
  local m = #s
  if m % 2 == 1 then return s[(m + 1) / 2] end
  return (s[m / 2] + s[m / 2 + 1]) / 2
end

local function report(id, value, unit, n, wall_us, cpu_s, detail)
  print(("%s value=%.6g unit=%s n=%d wall_ms=%.1f cpu_ms=%.1f detail=%s"):format(
    id, value, unit, n, wall_us / 1e3, cpu_s * 1e3, detail or "-"))
  io.stdout:flush()
end

-- Save many aggregates' pending events in batches (setup, not timed).
local function save_all(aggs)
  for i = 1, #aggs, 500 do
    app:save(unpack(aggs, i, math.min(i + 499, #aggs)))
  end
end

-- S1: create aggregates, one save each.
local function s1()
  local n, dog_names = N.s1, names("s1-dog-", N.s1)
  collectgarbage()
  local c0, t0 = clock(), now_us()
  for i = 1, n do
    app:save(Dog(dog_names[i]))
  end
  local wall, cpu = now_us() - t0, clock() - c0
  report("S1", n / (wall / 1e6), "saves/s", n, wall, cpu)
end

-- S2: get + one event method + save, spread over some aggregates.
local function s2()
  local n, k = N.s2, N.s2_aggregates
  local dogs, ids = {}, {}
  local dog_names = names("s2-dog-", k)
  for i = 1, k do
    dogs[i] = Dog(dog_names[i])
    ids[i] = dogs[i].id
  end
  save_all(dogs)
  dogs = nil -- luacheck: ignore 311
  local ntricks = #TRICKS
  collectgarbage()
  local c0, t0 = clock(), now_us()
  for i = 1, n do
    local dog = repo:get(ids[(i - 1) % k + 1])
    dog:add_trick(TRICKS[i % ntricks + 1])
    app:save(dog)
  end
  local wall, cpu = now_us() - t0, clock() - c0
  report("S2", n / (wall / 1e6), "commands/s", n, wall, cpu, "aggregates=" .. k)
end

-- S3: load one aggregate with many events.
local function s3()
  local n, ntricks = N.s3_events, #TRICKS
  local dog = Dog("s3-big-dog")
  for i = 2, n do
    dog:add_trick(TRICKS[i % ntricks + 1])
    if i % 1000 == 0 then app:save(dog) end
  end
  app:save(dog)
  local id = dog.id
  dog = nil -- luacheck: ignore 311
  local times = {}
  local cpu, t_all = 0, 0
  for r = 1, N.s3_loads do
    collectgarbage()
    local c0, t0 = clock(), now_us()
    local loaded = repo:get(id)
    local dt = now_us() - t0
    cpu = cpu + (clock() - c0)
    if loaded.version ~= n or #loaded.tricks ~= n - 1 then
      error(("S3: loaded version %s with %d tricks, expected %d"):format(
        tostring(loaded.version), #loaded.tricks, n))
    end
    times[r] = dt
    t_all = t_all + dt
  end
  local med = median(times)
  report("S3", med / 1e3, "ms/load", n, t_all, cpu,
    ("loads=%d,min_ms=%.2f,max_ms=%.2f"):format(N.s3_loads, math.min(unpack(times)) / 1e3,
      math.max(unpack(times)) / 1e3))
end

-- S5: one save of many new aggregates.
local function s5()
  local n = N.s5
  local times = {}
  local c_all, t_all = 0, 0
  for r = 1, N.s5_reps do
    local dog_names = names("s5-" .. r .. "-dog-", n)
    local dogs = {}
    for i = 1, n do dogs[i] = Dog(dog_names[i]) end
    collectgarbage()
    local c0, t0 = clock(), now_us()
    local recordings = app:save(unpack(dogs, 1, n))
    local dt = now_us() - t0
    c_all = c_all + (clock() - c0)
    if #recordings ~= n then error(("S5: %d recordings for %d aggregates"):format(#recordings, n)) end
    times[r] = dt
    t_all = t_all + dt
  end
  local med = median(times)
  report("S5", n / (med / 1e6), "events/s", n, t_all, c_all,
    ("reps=%d,median_ms=%.3f"):format(N.s5_reps, med / 1e3))
end

-- S4: read the whole log in pages, touching every event's fields.
local function read_log_once(log, page_size)
  local start, total, acc = 1, 0, 0
  while true do
    local page = log:select(start, page_size)
    local m = #page
    for j = 1, m do
      local note = page[j]
      local e = note.event
      local payload = e.trick or e.name
      local v = e.originator_version
      if e.topic ~= note.topic or e.originator_id ~= note.originator_id or not payload then
        error(("S4: notification %d does not match its event"):format(note.id))
      end
      acc = acc + v + #payload + (e.timestamp > 0 and 1 or 0)
    end
    total = total + m
    if m < page_size then break end
    start = page[m].id + 1
  end
  return total, acc
end

local function s4()
  local log, page = app.log, N.s4_page
  local size = app:max_notification_id()
  local rates, passes, t_all = {}, 0, 0
  collectgarbage()
  local c0 = clock()
  while passes < N.s4_min_passes or (t_all < N.s4_min_us and passes < 100) do
    local t0 = now_us()
    local total = read_log_once(log, page)
    local dt = now_us() - t0
    if total ~= size then error(("S4: read %d notifications, the log has %d"):format(total, size)) end
    passes = passes + 1
    rates[passes] = total / (dt / 1e6)
    t_all = t_all + dt
  end
  local cpu = clock() - c0
  report("S4", median(rates), "notifications/s", size, t_all, cpu,
    ("passes=%d,page=%d"):format(passes, page))
end

local ok, err = pcall(function()
  local info = { "store=" .. store:gsub("^(lmdb:).*$", "%1DIR"), "sync=" .. sync, "quick=" .. tostring(quick == true),
    "jit=" .. tostring(jit and jit.status()) }
  print("INFO " .. concat(info, " "))
  s1(); collectgarbage()
  s2(); collectgarbage()
  s3(); collectgarbage()
  s5(); collectgarbage()
  s4(); collectgarbage()
end)
app:close()
if temp_dir then os.execute("rm -rf '" .. temp_dir .. "'") end
if not ok then
  io.stderr:write("scenarios.lua: ", tostring(err), "\n")
  os.exit(1)
end
