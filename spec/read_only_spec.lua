--- Store tools that only read (issue 11, item 5): `cairn stat`, `log`, `events`
-- and `verify` open a store without writing to it, so they work beside a
-- writer stopped inside a write transaction and for a user who may not write
-- the store's files. LMDB only: it is about LMDB's writer lock and lock file
-- (spec/c/store_test.c checks the same at the C level).
local helper = require "helper"

local q = helper.shell_quote

local function cairn(args, prefix)
  -- `timeout`: a tool that waits for the writer's lock fails with 124 instead of hanging the suite
  return helper.run(("%stimeout 30 %s %s </dev/null"):format(prefix or "", q(helper.cairn_bin), args))
end

describe("store tools that only read", function()
  local dir, path, uri
  before_each(function()
    dir = helper.tmpdir()
    path = dir .. "/school"
    uri = "lmdb:" .. path
    local code, _, err = cairn("run " .. q(helper.SCHOOL .. "/main.lua") .. " " .. q(uri))
    assert.are.equal(0, code, err)
  end)
  after_each(function() helper.rmrf(dir) end)

  -- stat, log, events and verify all read the whole store as it is
  local function read_everything(prefix)
    local code, out, err = cairn("stat " .. q(uri), prefix)
    assert.are.equal(0, code, err)
    assert.matches("events: 5", out, 1, true)
    code, out, err = cairn("log " .. q(uri), prefix)
    assert.are.equal(0, code, err)
    assert.matches("\t1e1d7398-8986-57af-bb01-11a89b2f8b02\t1\tDog.Registered", out, 1, true)
    code, out, err = cairn("events " .. q(uri) .. " 1e1d7398-8986-57af-bb01-11a89b2f8b02", prefix)
    assert.are.equal(0, code, err)
    assert.matches("Dog.Registered", out, 1, true)
    code, out, err = cairn("verify " .. q(uri), prefix)
    assert.are.equal(0, code, err)
    assert.matches("records checked: 5\n", out, 1, true)
    assert.matches("problems: 0\n", out, 1, true)
  end

  it("work while a writer is stopped inside a write transaction", function()
    -- the C helper begins a write transaction, says "held" and stops itself (SIGSTOP)
    local held, pidfile = dir .. "/held", dir .. "/pid"
    os.execute(("%s --hold-write %s >%s 2>&1 & echo $! >%s"):format(q(helper.tests_bin), q(path), q(held),
      q(pidfile)))
    local pid = assert(tonumber(helper.read_file(pidfile)))
    finally(function() os.execute("kill -9 " .. pid .. " 2>/dev/null") end)
    for _ = 1, 200 do
      if (helper.read_file(held) or ""):match("held") then break end
      os.execute("sleep 0.05")
    end
    assert.matches("held", helper.read_file(held) or "", 1, true)
    -- the writer really holds LMDB's writer lock: another save waits for it
    local code = helper.run(("timeout 2 %s run %s %s </dev/null"):format(q(helper.cairn_bin),
      q(helper.SCHOOL .. "/main.lua"), q(uri)))
    assert.are.equal(124, code)
    read_everything()
  end)

  it("work for a user who may not write the store's files, and a save as that user fails clearly", function()
    local prefix
    if helper.run("test $(id -u) -eq 0") == 0 then
      -- root may write anything: run the tools as nobody, who may read the files (0644) but not write them
      prefix = "setpriv --reuid=65534 --regid=65534 --clear-groups "
    else
      assert.are.equal(0, (helper.run("chmod -R a-w " .. q(path))))
      finally(function() helper.run("chmod -R u+w " .. q(path)) end)
      prefix = ""
    end
    read_everything(prefix)
    local code, _, err = cairn("run " .. q(helper.SCHOOL .. "/main.lua") .. " " .. q(uri), prefix)
    assert.are.equal(1, code)
    assert.matches("StoreError: cannot open store " .. path .. ": Permission denied", err, 1, true)
  end)
end)
