--- `cairn repl` in a real terminal (tmux): help, tab completion, Ctrl-C at the
-- prompt, history written entry by entry (multi-line entries whole).
local helper = require "helper"

local q = helper.shell_quote

local SCHOOL = helper.root .. "/examples/training_school"

local terminal = require "terminal"

local function school_store(dir)
  local uri = "lmdb:" .. dir .. "/school"
  local code, _, err = helper.run(("%s run %s %s"):format(q(helper.cairn_bin), q(SCHOOL .. "/main.lua"), q(uri)))
  assert(code == 0, err)
  return uri
end

describe("cairn repl in a terminal", function()
  local dir, term
  before_each(function() dir = helper.tmpdir() end)
  after_each(function()
    if term then term:stop() end
    term = nil
    helper.rmrf(dir)
  end)

  local function repl(args)
    term = terminal.start(dir, SCHOOL, q(helper.cairn_bin) .. " repl " .. (args or ""))
    term:wait_for("help for help")
    return term
  end

  it("prints help with the commands and what app and store can do, and help(value)", function()
    local uri = school_store(dir)
    local t = repl("--store " .. q(uri))
    t:type("help")
    t:keys("Enter")
    local screen = t:wait_for("Ctrl-C")
    assert.matches("app.repository:get(id", screen, 1, true)
    assert.matches("store:read_log { from = 1, limit = n }", screen, 1, true)
    t:keys("C-l")
    t:type("help(store)")
    t:keys("Enter")
    screen = t:wait_for("read_stream")
    assert.matches("a store: stat()", screen, 1, true)
  end)

  it("completes globals, fields and methods with Tab", function()
    local uri = school_store(dir)
    local t = repl("--store " .. q(uri))
    t:type("app.repos")
    t:keys("Tab")
    t:wait_for("> app.repository")
    t:type(":con")
    t:keys("Tab")
    t:wait_for("> app.repository:contains(")
    t:type('"1e1d7398-8986-57af-bb01-11a89b2f8b02")')
    t:keys("Enter")
    t:wait_for("\ntrue")
    t:type("cair")
    t:keys("Tab")
    t:type(".ti")
    t:keys("Tab")
    t:wait_for("> cairn.time")
  end)

  it("clears the line on Ctrl-C at the prompt and stays", function()
    local t = repl()
    t:type("x = 'never run'")
    t:keys("C-c")
    t:wait_for("> x = 'never run'^C")
    -- a statement begun on several lines is dropped too
    t:type("for i = 1, 3 do")
    t:keys("Enter")
    t:wait_for(">>")
    t:keys("C-c")
    t:type("=x == nil and 40 + 2")
    t:keys("Enter")
    local screen = t:wait_for("\n42")
    assert.not_matches("EXITED", screen, 1, true)
  end)

  it("writes history as it goes, multi-line entries whole, and recalls them", function()
    local t = repl()
    t:type("for i = 1, 2 do")
    t:keys("Enter")
    t:type("print(i * 10)")
    t:keys("Enter")
    t:type("end")
    t:keys("Enter")
    t:wait_for("20")
    -- written before the REPL exits
    assert.are.equal("for i = 1, 2 do\\nprint(i * 10)\\nend\n", helper.read_file(dir .. "/history"))
    t:keys("C-d")
    t:wait_for("EXITED 0")
    t:stop()
    -- a new session recalls the whole entry with one Up
    t = repl()
    t:keys("Up")
    t:keys("Enter")
    local screen = t:wait_for("20")
    assert.matches("10\n20", screen, 1, true)
  end)

  it("prints aggregates with their state and errors without builtin frames", function()
    local uri = school_store(dir)
    local t = repl("--store " .. q(uri) .. " --require training_school")
    t:type('app.repository:get("1e1d7398-8986-57af-bb01-11a89b2f8b02")')
    t:keys("Enter")
    local screen = t:wait_for("tricks = {")
    assert.matches("Dog(1e1d7398-8986-57af-bb01-11a89b2f8b02) v3 {", screen, 1, true)
    assert.matches("created_on = %d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%d%.%d%d%d%d%d%dZ", screen)
    t:type('error("x")')
    t:keys("Enter")
    screen = t:wait_for("\nstdin:2: x\n")
    assert.not_matches("builtin", screen, 1, true)
  end)
end)
