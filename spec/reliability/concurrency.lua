--- The concurrency test: N writer processes run M commands each on a few
-- shared tallies (retrying on ConcurrencyError) while reader processes read.
-- Afterwards each tally's count must equal the acknowledged commands that
-- counted on it, ids must be gap-free, and no reader may have seen part of a
-- save. A run that does not finish in time is a deadlock.
--
--   cairn run spec/reliability/concurrency.lua [PROCS [COMMANDS [SEED]]]
-- As a module: require("reliability.concurrency").run { procs = n, ... } -> figures
local spec_dir = debug.getinfo(1, "S").source:match("^@(.*)/reliability/[^/]*$") or "spec"
package.path = spec_dir .. "/?.lua;" .. package.path
local proc = require "reliability.proc"
local check = require "reliability.check"
local model = require "reliability.model"

local _M = {}

local WORKER = spec_dir .. "/reliability/worker.lua"

--- opts: procs (4), commands (200), tallies (3), readers (2), seed,
-- stall (seconds without any acknowledgement that count as a deadlock, 60),
-- timeout (seconds for the whole run, 6 hours), on_start (called with the
-- writers, { pid = … }, once they run), store (a fresh store URI; lmdb: in a
-- temporary directory by default). Returns the figures.
function _M.run(opts)
  opts = opts or {}
  local procs, commands, tallies = opts.procs or 4, opts.commands or 200, opts.tallies or 3
  local readers, stall, timeout = opts.readers or 2, opts.stall or 60, opts.timeout or 6 * 3600
  local seed = opts.seed or os.time()
  math.randomseed(seed)
  local dir = proc.tmpdir()
  local uri = opts.store or "lmdb:" .. dir .. "/store"
  local st = check.new(uri)
  local setup = model.App.new { store = uri, sync = "none" }
  model.open_tallies(setup, tallies)
  setup:close()
  local started = proc.now()
  local function start(name, args)
    return proc.spawn(("%s run %s %s %s %d %s >%s 2>%s"):format(proc.quote(proc.cairn_bin), proc.quote(WORKER),
      proc.quote(uri), name, math.random(1, 2 ^ 30), args, proc.quote(dir .. "/" .. name),
      proc.quote(dir .. "/" .. name .. ".err")))
  end
  local children, acks = {}, {}
  for i = 1, procs do
    local name = "w" .. i
    children[#children + 1] = { name = name, pid = start(name, ("write %d %d"):format(commands, tallies)) }
    acks[name] = dir .. "/" .. name
  end
  local stopfile = dir .. "/stop"
  for i = 1, readers do
    children[#children + 1] = { name = "r" .. i, reader = true,
      pid = start("r" .. i, ("read %s %d"):format(proc.quote(stopfile), tallies)) }
  end
  -- a deadlock is a stall: writers alive, yet no acknowledgement for `stall`
  -- seconds (a long run is slow, not stuck: each retry replays a tally stream)
  local deadlocks = 0
  local function ended(c, how, what)
    if how ~= "exit" or what ~= 0 then
      check.violation(st, "%s ended with %s %s: %s", c.name, how, tostring(what),
        proc.read_file(dir .. "/" .. c.name .. ".err") or "")
    end
  end
  local function acked_bytes()
    local n = 0
    for _, file in pairs(acks) do
      local f = io.open(file)
      if f then n = n + f:seek("end"); f:close() end
    end
    return n
  end
  local running = {}
  for _, c in ipairs(children) do if not c.reader then running[#running + 1] = c end end
  if opts.on_start then opts.on_start(running) end
  local last, last_change = -1, proc.now()
  while #running > 0 do
    for i = #running, 1, -1 do
      local how, what = proc.wait(running[i].pid, false)
      if how then ended(running[i], how, what); table.remove(running, i) end
    end
    local now, bytes = proc.now(), acked_bytes()
    if bytes ~= last then last, last_change = bytes, now end
    if #running > 0 and (now - last_change > stall or now - started > timeout) then
      deadlocks = deadlocks + 1
      check.violation(st, "no writer acknowledged a command for %.0f s (deadlock?), %.0f s in", now - last_change,
        now - started)
      for _, c in ipairs(running) do proc.kill(c.pid); proc.wait(c.pid, true) end
      running = {}
    end
    proc.sleep(0.05)
  end
  io.open(stopfile, "w"):close()
  for _, c in ipairs(children) do
    if c.reader then
      local how, what = proc.wait_for(c.pid, stall)
      if how == "timeout" then
        deadlocks = deadlocks + 1
        check.violation(st, "reader %s did not stop within %d s (deadlock?)", c.name, stall)
      else
        ended(c, how, what)
      end
    end
  end
  local seconds = proc.now() - started

  check.check(st, acks)
  -- the final state is the sum of the acknowledged commands
  local expected, acked, conflicts, reads = {}, 0, 0, 0
  for name, file in pairs(acks) do
    local text = proc.read_file(file) or ""
    for keys in text:gmatch("ack %d+ %d+ %d+ (%S+)\n") do
      acked = acked + 1
      for key in keys:gmatch("[^,]+") do expected[key] = (expected[key] or 0) + 1 end
    end
    conflicts = conflicts + (tonumber(text:match("conflicts (%d+)")) or 0)
    if not text:match("conflicts") then check.violation(st, "writer %s did not finish its commands", name) end
  end
  if acked ~= procs * commands then check.violation(st, "%d commands acknowledged of %d", acked, procs * commands) end
  local app = model.App.new { store = uri }
  for k = 1, tallies do
    local tally = app.repository:get(model.Tally.create_id("t" .. k))
    if tally.count ~= (expected["t" .. k] or 0) then
      check.violation(st, "tally t%d counts %d, the acknowledged commands say %d", k, tally.count,
        expected["t" .. k] or 0)
    end
  end
  app:close()
  for i = 1, readers do
    local text = proc.read_file(dir .. "/r" .. i) or ""
    local r, partial = text:match("reads (%d+) partial (%d+)")
    if not r then check.violation(st, "reader r%d reported nothing", i)
    else
      reads = reads + tonumber(r)
      if tonumber(partial) > 0 then
        check.violation(st, "reader r%d saw %s partial saves: %s", i, partial,
          proc.read_file(dir .. "/r" .. i .. ".err") or "")
      end
    end
  end
  check.finish(st)
  proc.rmrf(dir)
  return {
    procs = procs, commands = acked, conflicts = conflicts, reads = reads, events = st.events, seed = seed,
    deadlocks = deadlocks, violations = st.violations, messages = st.messages, seconds = seconds,
  }
end

if arg and arg[0] and arg[0]:match("concurrency%.lua$") then
  local figures = _M.run { procs = tonumber(arg[1]), commands = tonumber(arg[2]), seed = tonumber(arg[3]) }
  require("reliability.crash").report(figures,
    { "seed", "procs", "commands", "conflicts", "reads", "events", "deadlocks", "violations", "seconds" })
  os.exit(figures.violations == 0 and 0 or 1)
end

return _M
