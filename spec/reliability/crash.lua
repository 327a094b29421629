--- The crash test: writer processes saving multi-aggregate batches are killed
-- with SIGKILL at random moments, round after round; after every round the
-- store must hold every acknowledged save, whole, and no part of any other.
--
--   cairn run spec/reliability/crash.lua [ROUNDS [WRITERS [SEED]]]
-- As a module: require("reliability.crash").run { rounds = n, ... } -> figures
local spec_dir = debug.getinfo(1, "S").source:match("^@(.*)/reliability/[^/]*$") or "spec"
package.path = spec_dir .. "/?.lua;" .. package.path
local proc = require "reliability.proc"
local check = require "reliability.check"

local _M = {}

local WRITER = spec_dir .. "/reliability/writer.lua"

--- Run the crash test. opts: rounds (20), writers (3), tallies (2), seed,
-- min_ms/max_ms (when each writer is killed, 30..400), after_ack (count that
-- time from the writer's first acknowledged save, so a loaded machine's slow
-- start cannot leave a round with nothing saved), dir (kept if given),
-- store (a fresh store URI; lmdb: in dir by default), say (progress printer).
-- Returns the figures; figures.messages explains violations.
function _M.run(opts)
  opts = opts or {}
  local rounds, writers, tallies = opts.rounds or 20, opts.writers or 3, opts.tallies or 2
  local min_ms, max_ms = opts.min_ms or 30, opts.max_ms or 400
  local seed = opts.seed or os.time()
  local say = opts.say or function() end
  math.randomseed(seed)
  local dir = opts.dir or proc.tmpdir()
  os.execute("mkdir -p " .. proc.quote(dir .. "/acks"))
  local uri = opts.store or "lmdb:" .. dir .. "/store"
  local st = check.new(uri)
  local kills, started = 0, proc.now()
  -- a handle held open for the whole run, as a long-lived server would: the
  -- lock file is never re-initialised, so dead writers' reader slots stay
  local held = require("reliability.model").App.new { store = uri }
  for round = 1, rounds do
    local children, acks = {}, {}
    for w = 1, writers do
      local name = ("r%dw%d"):format(round, w)
      local ack, err = dir .. "/acks/" .. name, dir .. "/acks/" .. name .. ".err"
      -- half the writers fsync every commit, half leave it to the OS: a process crash loses nothing either way
      local sync = (round + w) % 2 == 0 and "full" or "none"
      local pid = proc.spawn(("%s run %s %s %s %d %s %d >%s 2>%s"):format(proc.quote(proc.cairn_bin),
        proc.quote(WRITER), proc.quote(uri), name, math.random(1, 2 ^ 30), sync, tallies, proc.quote(ack),
        proc.quote(err)))
      children[w] = { pid = pid, name = name, err = err, at = proc.now() + math.random(min_ms, max_ms) / 1000 }
      acks[name] = ack
    end
    if opts.after_ack then
      for _, c in ipairs(children) do
        local deadline = proc.now() + 20
        while proc.now() < deadline and (proc.read_file(acks[c.name]) or "") == "" do proc.sleep(0.01) end
        c.at = proc.now() + math.random(min_ms, max_ms) / 1000
      end
    end
    for _, c in ipairs(children) do
      proc.sleep(c.at - proc.now())
      local how, what = proc.wait(c.pid, false)
      if how then
        check.violation(st, "writer %s ended by itself (%s %s): %s", c.name, how, tostring(what),
          proc.read_file(c.err) or "")
      else
        proc.kill(c.pid, proc.SIGKILL)
        how, what = proc.wait(c.pid, true)
        if how == "signal" and what == proc.SIGKILL then
          kills = kills + 1
        else
          check.violation(st, "writer %s ended with %s %s before the kill: %s", c.name, how, tostring(what),
            proc.read_file(c.err) or "")
        end
      end
    end
    check.check(st, acks)
    say(("round %d: %d events, %d acks, %d violations"):format(round, st.events, st.acks, st.violations))
  end
  held:close()
  check.finish(st)
  if not opts.dir then proc.rmrf(dir) end
  return {
    rounds = rounds, writers = writers, kills = kills, acks = st.acks, events = st.events, seed = seed,
    violations = st.violations, messages = st.messages, seconds = proc.now() - started,
  }
end

--- Print figures as `name: value` lines (tools/reliability reads them).
function _M.report(figures, names)
  for _, k in ipairs(names) do io.stdout:write(("%s: %s\n"):format(k, tostring(figures[k]))) end
  for _, m in ipairs(figures.messages or {}) do io.stderr:write("violation: ", m, "\n") end
end

if arg and arg[0] and arg[0]:match("crash%.lua$") then
  local figures = _M.run {
    rounds = tonumber(arg[1]), writers = tonumber(arg[2]), seed = tonumber(arg[3]),
    say = os.getenv("CAIRN_RELIABILITY_VERBOSE") and function(s) io.stderr:write(s, "\n") end,
  }
  _M.report(figures, { "seed", "rounds", "writers", "kills", "acks", "events", "violations", "seconds" })
  os.exit(figures.violations == 0 and 0 or 1)
end

return _M
