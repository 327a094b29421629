--- cairn's side of the peer benchmark: one run of the Python eventsourcing
-- library's scenarios (../shared/peers/pyeventsourcing/RESULTS.md), with the
-- same counts, the same distinct strings and the same timing boundaries.
--
--   bin/cairn run bench/scenarios.lua DIR [options]
--   luajit bench/scenarios.lua DIR [options]
--
-- DIR is an existing directory; every scenario opens a fresh store under it
-- (lmdb:DIR/s1, ...) and removes it afterwards. Options (the peer's names
-- and defaults; --quick sets the peer's --quick counts):
--   --n 20000  --m 20000  --cmd-aggs 1000  --stream 10000  --batch 1000
--   --batches 5  --full-n 2000 (S1full)  --sync none|full (S1..S5, default none)
--   --only S1,S1c,S3,S3snap,S5,S1full (S1 runs S2, S4, S4d and S2c after it)
--   --pg URI  (a PostgreSQL database: each store a fresh schema bench_<time>_<n> there,
--              dropped by nothing: use a scratch cluster, e.g. tools/pg run, or bench/run --pg)
--   --procs 1,4,8 --seconds 5  (S6, PostgreSQL only: P processes saving at once, as bench.py's S6)
--
-- Each scenario prints one line for bench/run:
--   S1 value=48123.4 unit=saves/s n=20000 wall_ms=415.6 cpu_ms=410.2 detail=-

-- Find the project from this script's location, so any working directory works.
local script = (arg and arg[0]) or "bench/scenarios.lua"
local root = (script:match("^(.*)/[^/]*$") or ".") .. "/.."
package.path = root .. "/lua/?.lua;" .. root .. "/lua/?/init.lua;" .. root .. "/stdlib/?.lua;"
  .. root .. "/stdlib/?/init.lua;" .. package.path
package.cpath = root .. "/lib/?.so;" .. package.cpath

local cairn = require "cairn"
local core = require "cairn.core"

local now_us, clock = core.now_us, os.clock
local unpack, concat = unpack, table.concat
local collectgarbage, print, tostring, tonumber = collectgarbage, print, tostring, tonumber

-- Arguments: `...` under luajit; fall back to `arg` for hosts that only set that.
local argv = { ... }
if #argv == 0 and arg then
  for i = 1, #arg do argv[i] = arg[i] end
end

local function usage(problem)
  io.stderr:write("scenarios.lua: ", problem, "\n",
    "usage: scenarios.lua DIR [--quick] [--n N] [--m M] [--cmd-aggs K] [--stream E] [--batch B] ",
    "[--batches C] [--full-n F] [--sync none|full] [--only S1,S1c,S3,S3snap,S5,S1full,S6] [--pg URI] ",
    "[--procs 1,4,8] [--seconds S]\n")
  os.exit(2)
end

local N = { n = 20000, m = 20000, cmd_aggs = 1000, stream = 10000, batch = 1000, batches = 5, full_n = 2000,
  seconds = 5 }
local dir, sync, only, pg, child
local procs = { 1, 4, 8 }
do
  local i = 1
  while i <= #argv do
    local a = argv[i]
    if a == "--quick" then
      -- bench.py --quick: n, m, cmd_aggs, stream, batch, batches
      N.n, N.m, N.cmd_aggs, N.stream, N.batch, N.batches, N.full_n = 2000, 2000, 100, 1000, 100, 2, 200
    elseif a == "--pg" then
      pg = argv[i + 1]
      if not pg or not pg:match("^postgres") then usage("--pg needs a postgresql:// URI") end
      i = i + 1
    elseif a == "--procs" then
      procs = {}
      for p in (argv[i + 1] or ""):gmatch("[^,]+") do
        local k = tonumber(p)
        if not k or k < 1 or k % 1 ~= 0 then usage("--procs takes whole numbers >= 1, like 1,4,8") end
        procs[#procs + 1] = k
      end
      if #procs == 0 then usage("--procs takes whole numbers >= 1, like 1,4,8") end
      i = i + 1
    elseif a == "--s6-child" then -- one of S6's writers: SCHEMA START_US (bench's own use)
      child = { schema = argv[i + 1], start = tonumber(argv[i + 2]) }
      if not (child.schema and child.start) then usage("--s6-child needs SCHEMA START_US") end
      i = i + 2
    elseif a == "--sync" or a == "--only" or a:match("^%-%-[%a-]+$") then
      local v = argv[i + 1]
      if v == nil then usage("option " .. a .. " needs a value") end
      i = i + 1
      if a == "--sync" then
        if v ~= "none" and v ~= "full" then usage("--sync is none or full, not '" .. v .. "'") end
        sync = v
      elseif a == "--only" then
        only = {}
        for name in v:gmatch("[^,]+") do only[name] = true end
      else
        local key = a:sub(3):gsub("-", "_")
        local n = tonumber(v)
        if N[key] == nil then usage("unknown option " .. a) end
        if not n or n < 1 or n % 1 ~= 0 then usage(a .. " must be a whole number >= 1, not '" .. v .. "'") end
        N[key] = n
      end
    elseif not dir then
      dir = a
    else
      usage("unexpected argument '" .. a .. "'")
    end
    i = i + 1
  end
end
if not dir then usage("DIR is missing") end
if dir:find("'", 1, true) then usage("DIR may not contain a quote") end
local status = os.execute("test -d '" .. dir .. "'")
if status ~= 0 and status ~= true then usage("DIR '" .. dir .. "' is not an existing directory") end
for name in pairs(only or {}) do
  if not ({ S1 = 1, S1c = 1, S3 = 1, S3snap = 1, S5 = 1, S1full = 1, S6 = 1 })[name] then
    usage("--only takes S1 (with S2, S4, S4d, S2c), S1c, S3, S3snap, S5, S1full, S6; not '" .. name .. "'")
  end
end
if (only and only.S6 or child) and not pg then usage("S6 runs on PostgreSQL only: give --pg URI") end
sync = sync or "none"
local function wanted(name)
  if name == "S6" then return pg ~= nil and (only == nil or only.S6 == true) end
  return only == nil or only[name] == true
end

-- The domain and the application, as in bench.py (the library's README).
local school = dofile(root .. "/bench/dog_school.lua")
local Dog, TrainingSchool = school.Dog, school.TrainingSchool

local SnapshottingTrainingSchool = cairn.application("SnapshottingTrainingSchool")
SnapshottingTrainingSchool.snapshotting_intervals = { Dog = 100 }

-- A fresh store for each application, removed when it closes.
local stores = 0
local function pg_store(schema) return ("%s%sschema=%s"):format(pg, pg:find("?", 1, true) and "&" or "?", schema) end
local function open(App, env, schema)
  stores = stores + 1
  local path = ("%s/store-%d"):format(dir, stores)
  env = env or {}
  env.store, env.sync = "lmdb:" .. path, env.sync or sync
  if pg then -- PostgreSQL's durability is the server's (synchronous_commit), not CAIRN_SYNC
    env.store = pg_store(schema or ("bench_%d_%d"):format(os.time(), stores))
  end
  local app = App.new(env)
  app.bench_path, app.bench_env = path, env
  return app
end

local function close(app)
  app:close()
  os.execute("rm -rf '" .. app.bench_path .. "'")
end

-- A second handle of class App on app's store, with one setting changed.
local function reopen(app, App, key, value)
  local env = {}
  for k, v in pairs(app.bench_env) do env[k] = v end
  env[key] = value
  return App.new(env)
end

local function report(id, value, unit, n, wall_us, cpu_s, detail)
  print(("%s value=%.6g unit=%s n=%d wall_ms=%.1f cpu_ms=%.1f detail=%s"):format(
    id, value, unit, n, wall_us / 1e3, cpu_s * 1e3, detail or "-"))
  io.stdout:flush()
end

local function check(ok, fmt, ...)
  if not ok then error(fmt:format(...), 2) end
end

-- timed(fn): a full collection first (bench.py's gc.collect()), then fn timed;
-- the collector stays on while it runs. Returns wall µs, CPU seconds.
local function timed(fn)
  collectgarbage()
  local c0, t0 = clock(), now_us()
  fn()
  return now_us() - t0, clock() - c0
end

-- S1 create (construction timed, ids kept as bench.py keeps them), then on
-- the same application S2 commands and S4/S4d log reads; then S2c, S2 with
-- the aggregate cache on other dogs of the same store.
local function s1_s2_s4()
  local app = open(TrainingSchool)
  local n, m, k = N.n, N.m, N.cmd_aggs
  local ids = {}
  local wall, cpu = timed(function()
    for i = 0, n - 1 do
      ids[#ids + 1] = app:register_dog("dog-" .. i)
    end
  end)
  report("S1", n / (wall / 1e6), "saves/s", n, wall, cpu, "sync=" .. sync)

  local targets = {}
  for i = 1, k do targets[i] = ids[i] end
  wall, cpu = timed(function()
    for i = 0, m - 1 do
      app:add_trick(targets[i % k + 1], "trick-" .. i)
    end
  end)
  report("S2", m / (wall / 1e6), "commands/s", m, wall, cpu, "aggregates=" .. k)
  local expected = math.ceil(m / k)
  local tricks = #app.repository:get(targets[1]).tricks
  check(tricks == expected, "S2: the first dog has %d tricks, expected %d", tricks, expected)

  -- S4: bench.py's loop (pages of 1,000 until an empty page, counted); the
  -- notifications come decoded (cairn has no raw read), so this is S4d's work
  local total, log, count = n + m, app.log, 0
  wall, cpu = timed(function()
    local start, c = 1, 0
    while true do
      local page = log:select(start, 1000)
      local len = #page
      if len == 0 then break end
      c = c + len
      start = page[len].id + 1
    end
    count = c
  end)
  check(count == total, "S4: read %d notifications, expected %d", count, total)
  report("S4", total / (wall / 1e6), "notifications/s", total, wall, cpu, "pages=1000")

  -- S4d: the same, reading every event's fields (what to_domain_event gives)
  local sum = 0
  wall, cpu = timed(function()
    local start, c, acc = 1, 0, 0
    while true do
      local page = log:select(start, 1000)
      local len = #page
      if len == 0 then break end
      for j = 1, len do
        local e = page[j].event
        local payload = e.trick or e.name
        if e.topic ~= page[j].topic or not payload then
          error(("S4d: notification %d does not match its event"):format(page[j].id))
        end
        acc = acc + e.originator_version + #payload + #e.originator_id + (e.timestamp > 0 and 1 or 0)
      end
      c = c + len
      start = page[len].id + 1
    end
    count, sum = c, acc
  end)
  check(count == total and sum > 0, "S4d: read %d notifications, expected %d", count, total)
  report("S4d", total / (wall / 1e6), "notifications/s", total, wall, cpu, "pages=1000,fields_read")

  -- S2c: S2 with the aggregate cache (CAIRN_AGGREGATE_CACHE = the 1,000 dogs),
  -- on another 1,000 dogs of the same store (streams grow from 1 to 21 events
  -- as in S2), through a second application handle
  local cached = reopen(app, TrainingSchool, "aggregate_cache", k)
  local others = {}
  for i = 1, k do others[i] = ids[k + i] end
  check(others[k] ~= nil, "S2c: needs at least %d dogs from S1, has %d", 2 * k, #ids)
  wall, cpu = timed(function()
    for i = 0, m - 1 do
      cached:add_trick(others[i % k + 1], "trick-" .. i)
    end
  end)
  report("S2c", m / (wall / 1e6), "commands/s", m, wall, cpu, "aggregates=" .. k .. ",cache=" .. k)
  tricks = #app.repository:get(others[1]).tricks -- read past the cache, by the other handle
  check(tricks == expected, "S2c: the first dog has %d tricks, expected %d", tricks, expected)
  cached:close()
  close(app)
end

-- S1c: S1 with the cipher and the compressor (cairn: XChaCha20-Poly1305 per
-- aggregate key, zstd for payloads of 128 bytes or more).
local function s1c()
  local app = open(TrainingSchool, { cipher_key = core.keygen(), compressor = "zstd" })
  local n, ids = N.n, {}
  local wall, cpu = timed(function()
    for i = 0, n - 1 do
      ids[#ids + 1] = app:register_dog("dog-" .. i)
    end
  end)
  check(app.repository:get(ids[1]).name == "dog-0", "S1c: the first dog does not read back")
  report("S1c", n / (wall / 1e6), "saves/s", n, wall, cpu, "cipher=xchacha20poly1305,compressor=zstd")
  close(app)
end

-- S3 / S3snap: one aggregate of `stream` events written with one save; a
-- warm-up get, then the mean of 5 timed gets.
local function s3(snapshot)
  local tag = snapshot and "S3snap" or "S3"
  local app = open(snapshot and SnapshottingTrainingSchool or TrainingSchool)
  local n = N.stream
  local dog = Dog("long-stream")
  for i = 0, n - 2 do dog:add_trick("trick-" .. i) end
  app:save(dog)
  local id = dog.id
  dog = nil -- luacheck: ignore 311
  local repo = app.repository
  local a = repo:get(id)
  check(a.version == n and #a.tricks == n - 1, "%s: got version %s with %d tricks, expected %d", tag,
    tostring(a.version), #a.tricks, n)
  a = nil -- luacheck: ignore 311
  if snapshot then
    local snap = app.snapshots:get(id)
    check(snap and snap.version == n, "%s: the newest snapshot is at version %s, expected %d", tag,
      tostring(snap and snap.version), n)
  end
  local function five_gets(name, r)
    local wall_all, cpu_all, lo, hi = 0, 0, math.huge, 0
    for _ = 1, 5 do
      local wall, cpu = timed(function() r:get(id) end)
      wall_all, cpu_all = wall_all + wall, cpu_all + cpu
      if wall < lo then lo = wall end
      if wall > hi then hi = wall end
    end
    report(name, wall_all / 5 / 1e3, "ms/get", n, wall_all, cpu_all,
      ("gets=5,min_ms=%.3f,max_ms=%.3f"):format(lo / 1e3, hi / 1e3))
  end
  five_gets(tag, repo)
  if snapshot then
    -- S3snapd: the same gets decoding the snapshot every time, as the first get
    -- of a snapshot does (a second handle on the store that keeps no decoded state)
    local decoding = reopen(app, SnapshottingTrainingSchool, "snapshot_cache", 0)
    decoding.repository:get(id)
    five_gets("S3snapd", decoding.repository)
    decoding:close()
  end
  close(app)
end

-- S5: a fresh application, `batches` saves of `batch` new aggregates each
-- (construction not timed); events/s over the total save time.
local function s5()
  local app = open(TrainingSchool)
  local batch, batches = N.batch, N.batches
  local wall_all, cpu_all = 0, 0
  for b = 0, batches - 1 do
    local dogs = {}
    for i = 0, batch - 1 do dogs[i + 1] = Dog(("batch%d-dog-%d"):format(b, i)) end
    local wall, cpu = timed(function() app:save(unpack(dogs, 1, batch)) end)
    wall_all, cpu_all = wall_all + wall, cpu_all + cpu
  end
  local recorded = app:max_notification_id()
  check(recorded == batch * batches, "S5: %d notifications, expected %d", recorded, batch * batches)
  report("S5", batch * batches / (wall_all / 1e6), "events/s", batch * batches, wall_all, cpu_all,
    ("saves=%d,events_per_save=%d"):format(batches, batch))
  close(app)
end

-- S1full: S1 on a durable store (an fsync per save), fewer saves.
local function s1full()
  local app = open(TrainingSchool, { sync = "full" })
  local n = N.full_n
  local wall, cpu = timed(function()
    for i = 0, n - 1 do app:register_dog("dog-" .. i) end
  end)
  report("S1full", n / (wall / 1e6), "saves/s", n, wall, cpu, "sync=full")
  close(app)
end

-- S6 (PostgreSQL): P processes, each with its own application on one schema,
-- saving S1-style new dogs for --seconds after a common start (bench.py's S6:
-- one warm-up save each first); total saves/s = all timed saves / (the last
-- writer's end - the first one's start). Then the log must be exactly 1..N
-- (N = the saves the writers counted + their warm-ups), each dog once.
local function s6_child()
  local app = open(TrainingSchool, nil, child.schema)
  app:register_dog("warm-up")
  while now_us() < child.start do core.sleep(0.0005) end
  local stop, n, i = child.start + N.seconds * 1e6, 0, 0
  local first = now_us()
  local last = first
  while last < stop do
    app:register_dog("dog-" .. i)
    n, i = n + 1, i + 1
    last = now_us()
  end
  print(("S6child saves=%d first_us=%d last_us=%d late_ms=%.1f"):format(n, first, last, (first - child.start) / 1e3))
  app:close()
end

local function s6()
  local lua = os.getenv("CAIRN_BENCH_LUA") or "luajit"
  for _, p in ipairs(procs) do
    local schema = ("bench_s6_%d_%d"):format(os.time(), p)
    local app = open(TrainingSchool, nil, schema) -- makes the tables before the writers come
    local start = now_us() + (1.0 + 0.25 * p) * 1e6
    local pipes = {}
    for k = 1, p do
      pipes[k] = io.popen(("%s '%s' '%s' --pg '%s' --seconds %d --s6-child %s %d 2>&1"):format(lua, script, dir, pg,
        N.seconds, schema, start))
    end
    local saves, t0, t1, late = 0, math.huge, 0, 0
    for k = 1, p do
      local out = pipes[k]:read("*a")
      pipes[k]:close()
      local n, first, last, l = out:match("S6child saves=(%d+) first_us=(%d+) last_us=(%d+) late_ms=([%d.-]+)")
      check(n, "S6: writer %d of %d failed: %s", k, p, out)
      saves = saves + tonumber(n)
      t0, t1 = math.min(t0, tonumber(first)), math.max(t1, tonumber(last))
      late = math.max(late, tonumber(l))
    end
    -- the gap and duplicate check, on the log as a reader sees it
    local want, nid, dogs, seen = saves + p, 0, 0, {}
    local start_id = 1
    while true do
      local page = app.log:select(start_id, 1000)
      if #page == 0 then break end
      for j = 1, #page do
        nid = nid + 1
        check(page[j].id == nid, "S6 P=%d: notification %d where %d was due (a gap or a duplicate)", p, page[j].id, nid)
        local dog = page[j].event.originator_id
        check(not seen[dog], "S6 P=%d: dog %s recorded twice", p, dog)
        seen[dog], dogs = true, dogs + 1
      end
      start_id = page[#page].id + 1
    end
    check(nid == want and dogs == want, "S6 P=%d: the log holds %d notifications, the writers made %d saves", p, nid,
      want)
    report("S6_P" .. p, saves / ((t1 - t0) / 1e6), "saves/s", saves, t1 - t0, 0,
      ("procs=%d,ids=1..%d,gaps=0,duplicates=0,late_start_ms=%.0f"):format(p, want, late))
    app:close()
  end
end

if child then
  s6_child()
  os.exit(0)
end

print("INFO " .. concat({ "sync=" .. sync, "jit=" .. tostring(jit and jit.status()),
  ("n=%d m=%d cmd_aggs=%d stream=%d batch=%d batches=%d full_n=%d"):format(N.n, N.m, N.cmd_aggs, N.stream,
    N.batch, N.batches, N.full_n) }, " "))
local steps = {
  { "S1", s1_s2_s4 }, { "S1c", s1c }, { "S3", function() s3(false) end }, { "S3snap", function() s3(true) end },
  { "S5", s5 }, { "S1full", s1full }, { "S6", s6 },
}
local failed = false
for _, step in ipairs(steps) do
  if wanted(step[1]) then
    local ok, err = pcall(step[2])
    if not ok then
      failed = true
      io.stderr:write("scenarios.lua: ", step[1], ": ", tostring(err), "\n")
    end
    collectgarbage()
  end
end
if failed then os.exit(1) end
