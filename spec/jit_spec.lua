-- The JIT stays on (issue 12): the save, get, log-select, replay and
-- projection loops run under the trace compiler with its events recorded
-- (spec/fixtures/jit_loops.lua, in a fresh process so that no earlier spec has
-- blacklisted anything), and no trace may abort in cairn's own files for a
-- reason other than running out of its loop, nor may the compiler give up on
-- (blacklist) any of their loops or functions.
local helper = require "helper"

local LOOPS = helper.root .. "/spec/fixtures/jit_loops.lua"

describe("the trace compiler on cairn's hot loops", function()
  local dir
  before_each(function() dir = helper.tmpdir() end)
  after_each(function() helper.rmrf(dir) end)

  it("compiles the save, get, log-select, replay and projection loops without giving up", function()
    local code, out, err = helper.run(helper.luajit_cmd .. " " .. helper.shell_quote(LOOPS) .. " "
      .. helper.shell_quote(dir))
    assert.are.equal(0, code, err)
    local last = out:match("ok (%d+)\n$")
    assert.is_truthy(last, "the loops did not finish:\n" .. out .. err)
    assert.is_true(tonumber(last) > 10, "only " .. last .. " traces were compiled: is the JIT on?")
    local problems = out:gsub("ok %d+\n$", "")
    assert.are.equal("", problems, "traces aborted or blacklisted in cairn's files:\n" .. problems)
  end)

  it("reports a loop that aborts on a NYI and is blacklisted (the check itself can fail)", function()
    -- a module under a lua/cairn/ directory whose loop makes a closure per
    -- iteration (NYI: FNEW), run hot enough to be blacklisted
    os.execute("mkdir -p " .. helper.shell_quote(dir .. "/lua/cairn"))
    helper.write_file(dir .. "/lua/cairn/bad.lua", "return function(n) local s = 0\n"
      .. "for i = 1, n do local f = function() return i end; s = s + f() end return s end\n")
    local script = helper.read_file(LOOPS):gsub('\nlocal cairn = require "cairn"\n',
      ('\nlocal cairn = require "cairn"\nlocal bad = dofile(%q)\nfor _ = 1, 20000 do bad(100) end\n'):format(
        dir .. "/lua/cairn/bad.lua"), 1)
    helper.write_file(dir .. "/loops.lua", script)
    local code, out, err = helper.run(helper.luajit_cmd .. " " .. helper.shell_quote(dir .. "/loops.lua") .. " "
      .. helper.shell_quote(dir))
    assert.are.equal(0, code, err)
    assert.matches("abort bad.lua:2: NYI: bytecode 51 %(FNEW%)", out)
    assert.matches("blacklisted IFORL at bad.lua:2", out)
  end)
end)
