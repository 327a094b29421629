--- Child processes for the reliability drivers: start, kill with a signal,
-- reap, and a monotonic clock. LuaJIT's FFI over libc, because the drivers
-- must deliver SIGKILL at chosen moments, which io.popen cannot do.
local ffi = require "ffi"

local _M = {}

ffi.cdef [[
int fork(void);
int execv(const char *path, char *const argv[]);
void _exit(int status);
int kill(int pid, int sig);
int waitpid(int pid, int *status, int options);
int usleep(unsigned int usec);
struct cairn_rel_timespec { long tv_sec; long tv_nsec; };
int clock_gettime(int clock, struct cairn_rel_timespec *ts);
]]

local C = ffi.C
local SIGKILL, SIGINT, SIGSTOP, WNOHANG, CLOCK_MONOTONIC = 9, 2, 19, 1, 1
_M.SIGKILL, _M.SIGINT, _M.SIGSTOP = SIGKILL, SIGINT, SIGSTOP

--- Seconds on a monotonic clock.
function _M.now()
  local ts = ffi.new("struct cairn_rel_timespec")
  C.clock_gettime(CLOCK_MONOTONIC, ts)
  return tonumber(ts.tv_sec) + tonumber(ts.tv_nsec) * 1e-9
end

function _M.sleep(seconds)
  if seconds > 0 then C.usleep(math.floor(seconds * 1e6)) end
end

--- Start `sh -c CMD` (the shell execs the last command, so the pid is the
-- command's own). Returns the pid.
function _M.spawn(cmd)
  local argv = ffi.new("char *[4]")
  local strs = { "/bin/sh", "-c", "exec " .. cmd }
  local keep = {}
  for i = 1, 3 do
    keep[i] = ffi.new("char[?]", #strs[i] + 1, strs[i])
    argv[i - 1] = keep[i]
  end
  argv[3] = nil
  local pid = C.fork()
  if pid == 0 then
    C.execv("/bin/sh", argv)
    C._exit(127)
  end
  assert(pid > 0, "fork failed")
  return pid
end

function _M.kill(pid, sig)
  return C.kill(pid, sig or SIGKILL) == 0
end

-- status -> "exit", code | "signal", number
local function decode(status)
  local sig = bit.band(status, 0x7f)
  if sig == 0 then return "exit", bit.band(bit.rshift(status, 8), 0xff) end
  return "signal", sig
end

--- Reap pid: returns how it ended ("exit", code | "signal", sig), or nil
-- when it is still running and `block` is false.
function _M.wait(pid, block)
  local status = ffi.new("int[1]")
  local r = C.waitpid(pid, status, block and 0 or WNOHANG)
  if r == 0 then return nil end
  assert(r == pid, "waitpid failed for " .. pid)
  return decode(status[0])
end

--- Wait for pid until `timeout` seconds pass; on timeout kill it and report "timeout".
function _M.wait_for(pid, timeout)
  local deadline = _M.now() + timeout
  while _M.now() < deadline do
    local how, what = _M.wait(pid, false)
    if how then return how, what end
    _M.sleep(0.005)
  end
  _M.kill(pid, SIGKILL)
  _M.wait(pid, true)
  return "timeout"
end

-- paths, files and quoting come from the specs' helper
local helper = require "helper"
_M.quote, _M.root, _M.cairn_bin = helper.shell_quote, helper.root, helper.cairn_bin
_M.read_file, _M.tmpdir, _M.rmrf = helper.read_file, helper.tmpdir, helper.rmrf

return _M
