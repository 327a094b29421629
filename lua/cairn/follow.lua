--- The loop every follower runs: catch up, then sleep until one of the
-- followed stores changes (the stores' wake word, store_wake.c), until told
-- to stop. Without a wake word it polls.
-- @module cairn.follow
local core = require "cairn.core"
local errors = require "cairn.errors"
local recorder = require "cairn.recorder"

local now_us, wait, is_recorder, pcall, error = core.now_us, recorder.wait, recorder.is_recorder, pcall, error
local tostring, min = tostring, math.min

local _M = { _VERSION = "0.1.0" }

--- Run step() until stopped.
-- @param stores the recorders (or remote logs) whose changes matter (at most 16)
-- @param step function() -> number of notifications processed (0: caught up)
-- @param should_stop function() -> true to stop (checked after every step)
-- @param[opt] opts `idle_timeout` (return after this many seconds without
--   anything new), `max_wait` (longest single sleep, default 1 s), `poll`
--   (sleep between looks when a store has no wake word, default 0.01 s),
--   `signals` (stop on SIGINT/SIGTERM), `reconnect` (function(err) -> seconds: when
--   step raises err, wait that long and go on instead of raising; nil raises; called
--   with no error once a step succeeds after a failure: see `server_away`)
-- @return "stopped", "idle" or "signal"
function _M.loop(stores, step, should_stop, opts)
  opts = opts or {}
  local max_wait, poll, idle = opts.max_wait or 1, opts.poll or 0.01, opts.idle_timeout
  if opts.signals then
    core.trap_signals()
    core.signal_caught(true)
  end
  local seen = {}
  -- a store that is not one of ours (a cairn.remote_log) cannot be waited on: poll it
  local remote_poll
  for i = 1, #stores do
    if not is_recorder(stores[i]) then
      local p = stores[i].poll_interval or 0.5
      if not remote_poll or p < remote_poll then remote_poll = p end
    end
  end
  local idle_since = now_us()
  local failing = false -- the last step raised an error `reconnect` rode out
  local function run()
    while true do
      for i = 1, #stores do seen[i] = stores[i]:wake_seq() or 0 end
      local n
      if opts.reconnect then
        local ok, r = pcall(step)
        if not ok then
          local pause = opts.reconnect(r)
          if not pause then error(r, 0) end
          core.sleep(pause) -- a signal ends it early; the check below sees the signal
          r, failing = 0, true
        elseif failing then
          opts.reconnect(nil)
          failing = false
        end
        n = r
      else
        n = step()
      end
      if should_stop() then return "stopped" end
      if opts.signals and core.signal_caught() then return "signal" end
      if n > 0 then
        idle_since = now_us()
      else
        local sleep = max_wait
        if idle then
          local left = idle - (now_us() - idle_since) / 1e6
          if left <= 0 then return "idle" end
          if left < sleep then sleep = left end
        end
        if remote_poll then
          core.sleep(remote_poll < sleep and remote_poll or sleep)
        elseif not wait(stores, seen, sleep, poll) then
          return "signal"
        end
      end
    end
  end
  local ok, result = pcall(run)
  if opts.signals then core.restore_signals() end -- also when step raised
  if not ok then error(result, 0) end
  return result
end

--- Whether err says a PostgreSQL server went away (restarted, stopped, the network):
-- a lost connection or one that cannot be made again yet, also when a runner's
-- message wraps it. Every other error (a policy's, a conflict, a bad setting) is not.
function _M.is_server_away(err)
  if not errors.is(err, "StoreError") then return false end
  local msg = tostring(err.message)
  return msg:match("PostgreSQL server [^\n]*: connection lost") ~= nil
    or msg:match("PostgreSQL server [^\n]*: cannot connect") ~= nil
end

--- A `reconnect` policy for `loop` (and the SingleThreadedRunner): while the server
-- is away, try again after 0.2 s, backing off to 5 s; say so once on stderr (one line
-- per outage, naming who waits and the server's message). Followers resume exactly
-- where they were: their tracking records commit with what they processed.
-- @param name who is waiting (a follower's or projection's name), for the message
-- @param[opt] write function(line) (default: io.stderr)
-- @return function(err) -> seconds to wait, or nil (not a server away: raise it);
--   function() after a success (the outage is over)
function _M.server_away(name, write)
  write = write or function(line) io.stderr:write(line) end
  local pause, said = 0.2, false
  return function(err)
    if err == nil then
      pause, said = 0.2, false
      return nil
    end
    if not _M.is_server_away(err) then return nil end
    if not said then
      write(("%s: %s; trying again until it is back (backing off to 5 s)\n"):format(name,
        (tostring(err.message):gsub("\n.*", ""))))
      said = true
    end
    local p = pause
    pause = min(pause * 2, 5)
    return p
  end
end

return _M
