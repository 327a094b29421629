--- Damaged LMDB pages under every read-only store tool (issue 14 item 5): LMDB has
-- no page checksums, and a zeroed page or flipped bits made `verify`, `export` and
-- `log` die with SIGSEGV, SIGBUS or an LMDB assertion. Now: "store ... damaged at
-- ...", exit 1. LMDB only (the files are LMDB's).
local helper = require "helper"
local damage = require "reliability.damage"

local q = helper.shell_quote
local PAGE = 4096

local function tool(name, ...)
  local args = { q(helper.cairn_bin), name }
  for _, a in ipairs { ... } do args[#args + 1] = q(a) end
  return helper.run(table.concat(args, " "))
end

describe("damaged data.mdb", function()
  local dir, base, clean

  setup(function()
    dir = helper.tmpdir()
    base = dir .. "/base"
    local model = require "reliability.model"
    local app = model.App.new { store = "lmdb:" .. base }
    for s = 1, 300 do app:save(model.Item("w", s, 1)) end
    -- the pages in use: a writer's data file is as long as its map (its blocks reserved)
    local used = app.store:stat().used_bytes
    app:close()
    clean = helper.read_file(base .. "/data.mdb"):sub(1, used)
  end)

  teardown(function() helper.rmrf(dir) end)

  local function damaged(bytes)
    local store = dir .. "/damaged"
    os.execute("rm -rf " .. q(store) .. " && mkdir " .. q(store))
    helper.write_file(store .. "/data.mdb", bytes)
    return "lmdb:" .. store
  end

  it("a zeroed page, wherever it is, is an error naming the damage, never a signal", function()
    local failed = 0
    for page = 2, #clean / PAGE - 1 do
      local uri = damaged(clean:sub(1, page * PAGE) .. ("\0"):rep(PAGE) .. clean:sub((page + 1) * PAGE + 1))
      for _, name in ipairs { "log", "export" } do
        local code, _, stderr = tool(name, uri)
        assert.is_true(code == 0 or code == 1, ("cairn %s, page %d zeroed: exit %s %s"):format(name, page,
          tostring(code), stderr))
        if code == 1 then
          failed = failed + 1
          assert.matches("IntegrityError: store " .. dir .. "/damaged damaged at ", stderr, 1, true)
        end
      end
    end
    assert.is_true(failed > 0, "no zeroed page was noticed")
  end)

  it("the page LMDB's assertion fails on (it aborted the process) is named", function()
    -- a zeroed branch page of the log: LMDB asserts IS_LEAF on the page it reaches
    local seen = false
    for page = 2, #clean / PAGE - 1 do
      local uri = damaged(clean:sub(1, page * PAGE) .. ("\0"):rep(PAGE) .. clean:sub((page + 1) * PAGE + 1))
      local code, _, stderr = tool("log", uri)
      assert.is_true(code == 0 or code == 1, stderr)
      if stderr:find("fails LMDB's check", 1, true) then
        seen = true
        assert.are.equal(1, code)
        assert.matches("Assertion", stderr, 1, true)
        break
      end
    end
    assert.is_true(seen, "no zeroed page made LMDB assert")
  end)

  it("a truncated data file is refused at open by every tool", function()
    local uri = damaged(clean:sub(1, #clean - 3 * PAGE))
    for _, name in ipairs { "verify", "stat", "log", "export" } do
      local code, _, stderr = tool(name, uri)
      assert.are.equal(1, code, name .. ": " .. stderr)
      assert.matches("is damaged: its data file is truncated", stderr, 1, true)
    end
  end)

  it("random damage under verify, stat, log, export and events: no signal, no hang", function()
    local figures = damage.run { rounds = 40, seed = 20261201, streams = 300 }
    assert.are.same({}, figures.messages)
    assert.are.equal(0, figures.signals)
    assert.are.equal(200, figures.runs)
    assert.is_true(figures.errors > 0, "no damage was noticed")
  end)
end)

-- Issue 14 item 4: one bit flipped in the newest meta page made LMDB open the commit
-- before; the last save was gone and `verify` reported 0 problems.
describe("a damaged meta page", function()
  local dir
  before_each(function() dir = helper.tmpdir() end)
  after_each(function() helper.rmrf(dir) end)

  local META_TXNID = 16 + 128 -- the page header, then MDB_meta up to mm_txnid

  -- the txnid of meta page n (0 or 1) of a data file, and the file with one bit of it flipped
  local function txnid(bytes, n)
    local v = 0
    for i = 8, 1, -1 do v = v * 256 + bytes:byte(n * PAGE + META_TXNID + i) end
    return v
  end

  it("rolling the store back to the commit before is reported by verify (it said 0 problems)", function()
    local model = require "reliability.model"
    local store = dir .. "/store"
    local uri = "lmdb:" .. store
    local app = model.App.new { store = uri }
    for s = 1, 10 do app:save(model.Item("w", s, 1)) end -- ten commits
    app:close()
    assert.are.equal(0, (tool("verify", uri)))
    local bytes = helper.read_file(store .. "/data.mdb")
    local newest = txnid(bytes, 1) > txnid(bytes, 0) and 1 or 0
    local t = txnid(bytes, newest)
    -- clear the highest set bit of its txnid: LMDB then takes the other meta page as the newest
    assert.is_true(t < 256, "more commits than the test expects")
    local high = 1
    while high * 2 <= t do high = high * 2 end
    local at = newest * PAGE + META_TXNID
    helper.write_file(store .. "/data.mdb", bytes:sub(1, at) .. string.char(bit.bxor(bytes:byte(at + 1), high))
      .. bytes:sub(at + 2))
    local code, out = tool("stat", uri)
    assert.are.equal(0, code)
    assert.matches("max_notification_id: 9", out, 1, true) -- the last save is gone
    local stderr
    code, out, stderr = tool("verify", uri)
    assert.are.equal(1, code, out)
    assert.matches("problems: 1", out, 1, true)
    assert.matches("store rolled back: it opens at commit " .. (t - 1) .. ", but commit " .. t .. " was made",
      stderr, 1, true)
    assert.matches("(notification id 10)", stderr, 1, true)
  end)

  it("a store written by several processes in turn, and a copy of it, report no rollback", function()
    local model = require "reliability.model"
    local uri = "lmdb:" .. dir .. "/store"
    for round = 1, 3 do
      local app = model.App.new { store = uri }
      for s = 1, 5 do app:save(model.Item("w", round * 10 + s, 1)) end
      app:close()
      local code, out, stderr = tool("verify", uri)
      assert.are.equal(0, code, out .. stderr)
    end
    os.execute(("cp -r %s %s"):format(q(dir .. "/store"), q(dir .. "/copy")))
    local code, out, stderr = tool("verify", "lmdb:" .. dir .. "/copy")
    assert.are.equal(0, code, out .. stderr)
  end)
end)
