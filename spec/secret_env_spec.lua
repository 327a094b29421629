--- Key material out of the `cairn` process's environment and core dumps
-- (issue 14 item 7; runtime/host/secret_env.c).
local helper = require "helper"

local q = helper.shell_quote

-- What a script run by `cairn run` reports about itself: whether its
-- /proc/self/environ holds the key, PR_GET_DUMPABLE, what os.getenv and a
-- child process see, and that an encrypted store opens twice (later opens
-- still get the key).
local REPORT = [[
local ffi = require "ffi"
ffi.cdef "int prctl(int option, unsigned long a2, unsigned long a3, unsigned long a4, unsigned long a5);"
local name, store = arg[1], arg[2]
local key = os.getenv(name)
local f = assert(io.open("/proc/self/environ", "rb")); local environ = f:read("*a"); f:close()
local p = io.popen("printenv " .. name); local child = p:read("*l"); p:close()
local f2 = assert(io.open("/proc/self/environ", "rb")); local after = f2:read("*a"); f2:close()
print("environ", environ:find(name .. "=" .. tostring(key), 1, true) ~= nil)
print("environ after a child", after:find(tostring(key), 1, true) ~= nil)
print("dumpable", ffi.C.prctl(3, 0, 0, 0, 0))
print("getenv", key ~= nil and #key)
print("child", child == key)
if store then
  local cairn = require "cairn"
  local Note = cairn.aggregate("Note")
  Note:created("Written", function(self, text) self.text = text end)
  local App = cairn.application("Keyed")
  for i = 1, 2 do
    local app = App.new { store = store }
    app:save(Note("note " .. i))
    print("saved", app:max_notification_id())
    app:close()
  end
end
]]

describe("cipher keys in the cairn executable's environment", function()
  local dir, key

  before_each(function()
    dir = helper.tmpdir()
    helper.write_file(dir .. "/report.lua", REPORT)
    local _, out = helper.run(q(helper.cairn_bin) .. " keygen")
    key = out:match("%S+")
  end)

  after_each(function() helper.rmrf(dir) end)

  local function report(name, store)
    local code, out, err = helper.run(("%s=%s %s run %s %s %s </dev/null"):format(name, q(key), q(helper.cairn_bin),
      q(dir .. "/report.lua"), name, store and q(store) or ""))
    assert.are.equal(0, code, err)
    return out
  end

  for _, name in ipairs { "CAIRN_CIPHER_KEY", "CAIRN_NEW_CIPHER_KEY", "KEYED_CAIRN_CIPHER_KEY" } do
    it(name .. " is wiped from /proc/self/environ, the process is not dumpable, os.getenv and children still get it",
      function()
        local out = report(name)
        assert.matches("environ\tfalse\n", out, 1, true)
        assert.matches("environ after a child\tfalse\n", out, 1, true)
        assert.matches("dumpable\t0\n", out, 1, true)
        assert.matches("getenv\t" .. #key .. "\n", out, 1, true)
        assert.matches("child\ttrue\n", out, 1, true)
      end)
  end

  it("later application opens in the same process still get the key", function()
    local out = report("CAIRN_CIPHER_KEY", "lmdb:" .. dir .. "/store")
    assert.matches("saved\t1\nsaved\t2\n", out, 1, true)
    -- the key was used: the notes are not in the store's bytes in plain text
    local bytes = helper.stored_bytes("lmdb:" .. dir .. "/store")
    assert.is_true(#bytes > 0)
    assert.is_nil(bytes:find("note 1", 1, true))
  end)

  it("another process of the user does not find the key in /proc/PID/environ", function()
    helper.write_file(dir .. "/wait.lua", [[
      local f = io.open(arg[1], "w"); f:close()
      local t = os.time() + 20
      while os.time() < t and io.open(arg[2]) == nil do end
    ]])
    local script = ([[
      CAIRN_CIPHER_KEY=%s %s run %s %s %s & pid=$!
      for i in $(seq 100); do [ -e %s ] && break; sleep 0.1; done
      if cat /proc/$pid/environ >%s 2>/dev/null; then grep -c -F %s %s; else echo unreadable; fi
      touch %s; wait $pid
    ]]):format(q(key), q(helper.cairn_bin), q(dir .. "/wait.lua"), q(dir .. "/ready"), q(dir .. "/done"),
      q(dir .. "/ready"), q(dir .. "/seen"), q(key), q(dir .. "/seen"), q(dir .. "/done"))
    local code, out, err = helper.run("bash -c " .. q(script))
    assert.are.equal(0, code, err)
    assert.is_true(out == "unreadable\n" or out == "0\n", out)
  end)

  it("leaves a process without a key dumpable, as it was", function()
    local code, out, err = helper.run(("%s run %s NO_SUCH_CIPHER_KEY </dev/null"):format(q(helper.cairn_bin),
      q(dir .. "/report.lua")))
    assert.are.equal(0, code, err)
    assert.matches("dumpable\t1\n", out, 1, true)
  end)
end)
