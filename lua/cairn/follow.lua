--- The loop every follower runs: catch up, then sleep until one of the
-- followed stores changes (the stores' wake word, store_wake.c), until told
-- to stop. Without a wake word it polls.
-- @module cairn.follow
local core = require "cairn.core"
local recorder = require "cairn.recorder"

local now_us, wait, is_recorder, pcall, error = core.now_us, recorder.wait, recorder.is_recorder, pcall, error

local _M = { _VERSION = "0.1.0" }

--- Run step() until stopped.
-- @param stores the recorders (or remote logs) whose changes matter (at most 16)
-- @param step function() -> number of notifications processed (0: caught up)
-- @param should_stop function() -> true to stop (checked after every step)
-- @param[opt] opts `idle_timeout` (return after this many seconds without
--   anything new), `max_wait` (longest single sleep, default 1 s), `poll`
--   (sleep between looks when a store has no wake word, default 0.01 s),
--   `signals` (stop on SIGINT/SIGTERM), `reconnect` (function(err) -> seconds: when
--   step raises err, wait that long and go on instead of raising; nil raises)
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
          r = 0
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

return _M
