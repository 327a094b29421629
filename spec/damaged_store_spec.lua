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
    app:close()
    clean = helper.read_file(base .. "/data.mdb")
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
