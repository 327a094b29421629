--- docs/API.md is the complete reference: every name it documents in a
-- heading exists, every public name of `require "cairn"`, its modules and the
-- objects they make is documented, every command it documents runs, and it
-- points at no file outside the repository.
local helper = require "helper"
local cairn = require "cairn"

local q = helper.shell_quote
local DOC = helper.read_file(helper.root .. "/docs/API.md")

-- The values the reference's names stand for (its table of names).
local function samples()
  local Dog = cairn.aggregate("RefDog")
  function Dog.create_id(name) return cairn.uuid.v5(cairn.uuid.NAMESPACE_URL, "/ref/" .. name) end
  Dog:created("Registered", function(self, name) self.name = name end)
  Dog.rename = Dog:event("Renamed", function(self, name) self.name = name end)
  local App = cairn.application("RefApp")
  App.snapshotting_intervals = { RefDog = 5 }
  local app = App.new { store = "memory:" }
  local agg = Dog("Fido")
  app:save(agg)
  local P = cairn.projection("RefCounts", { topics = { "RefDog.Registered" } })
  P:on("RefDog.Registered", function(view) view:incr("dogs") end)
  local runner = cairn.ProjectionRunner.new { application = app, projection = P }
  local Proc = cairn.process_application("RefProc")
  local processing
  Proc:policy("RefDog.Registered", function(_, _, p) processing = p end)
  local system = cairn.system { pipes = { { App, Proc } } }
  local system_runner = cairn.SingleThreadedRunner.new(system, { store = "memory:" })
  system_runner:start()
  system_runner:get(App):save(Dog("Rex"))
  return {
    cairn = cairn, Dog = Dog, agg = agg, App = App, app = app, P = P, runner = runner, view = runner.view,
    Proc = Proc, proc = system_runner:get(Proc), processing = processing, system = system,
    system_runner = system_runner, remote = cairn.remote_log("http://127.0.0.1:9/log"),
    errors = cairn.errors, uuid = cairn.uuid, time = cairn.time, t = cairn.time.now(),
    json = require "cairn.json", inspect = require "cairn.inspect", schema = require "cairn.schema",
    log_json = require "cairn.log_json", sb = cairn.sandbox.new(),
  }, function() runner:close(); app:close(); system_runner:stop() end
end

-- Documented as optional: nil until the user sets them.
local OPTIONAL = { ["runner.on_progress"] = true, ["app.repository.cache"] = true }

-- Public names that are the machinery of other public names, not for users.
local INTERNAL = {
  ["view.begin"] = "runners collect a batch's writes", ["view.commit"] = "runners commit a batch",
  ["view.discard"] = "runners drop a failed batch", ["view.store"] = "the view's store (app.store documents it)",
  ["view.owned"] = "whether close closes the store",
  ["app.repository.new"] = "made by App.new", ["app.log.new"] = "made by App.new",
  ["app.log.select_args"] = "argument checks shared with remote logs", ["app.log.SECTION_SIZE"] = "the default",
  ["app.snapshots.new"] = "made by App.new", ["runner.application"] = "the option given",
  ["runner.projection"] = "the option given", ["runner.batch"] = "the option given",
  ["runner.topics"] = "P:read_topics()", ["runner.stopped"] = "set by stop",
  ["remote.url"] = "the URL given", ["remote.timeout"] = "an option", ["remote.section_size"] = "an option",
  ["remote.max_bytes"] = "an option", ["remote.poll_interval"] = "an option",
  ["processing.aggregates"] = "what collect collected", ["proc.leaders"] = "what follow set",
  ["app.log.app"] = "its application", ["app.repository.app"] = "its application",
  ["app.snapshots.app"] = "its application", ["app.events.app"] = "its application",
  ["app.repository.saved"] = "app:save keeps the aggregate cache up to date",
  ["system_runner.apps"] = "its applications (get gives them)", ["system_runner.env"] = "the env given",
  ["system_runner.system"] = "the system given", ["system_runner.queue"] = "saves waiting for followers",
  ["system_runner.queued"] = "saves waiting for followers", ["system_runner.draining"] = "followers at work",
}

-- Objects whose names are documented under the name of what made them: an
-- application has its class's fields, a process application an application's.
local ALIASES = {
  app = { "App" }, proc = { "app", "App", "Proc" }, runner = { "cairn.ProjectionRunner" },
  system_runner = { "cairn.SingleThreadedRunner" },
}

-- Every `code` span of every heading.
local function documented_names()
  local names = {}
  for heading in DOC:gmatch("\n#+ ([^\n]*)") do
    for span in heading:gmatch("`([^`]+)`") do names[#names + 1] = span end
  end
  return names
end

-- The value a name like "app.repository:get" stands for, or nil.
local function resolve(roots, name)
  local path = name:match("^[%w_%.:]+")
  local parts = {}
  for part in path:gmatch("[^%.:]+") do parts[#parts + 1] = part end
  local v = roots[parts[1]]
  for i = 2, #parts do
    if v == nil then return nil end
    v = v[parts[i]]
  end
  return v, path
end

-- Public names reachable from a value: its keys and those of its __index tables.
local function public_names(v)
  local out, seen = {}, {}
  local t, hops = v, 0
  while t ~= nil and hops < 4 do
    if type(t) == "table" then
      for k in pairs(t) do
        if type(k) == "string" and not k:match("^_") and not seen[k] then
          seen[k] = true
          out[#out + 1] = k
        end
      end
    end
    local mt = debug.getmetatable(t)
    local index = type(mt) == "table" and rawget(mt, "__index")
    if type(index) ~= "table" or index == t then break end
    t, hops = index, hops + 1
  end
  table.sort(out)
  return out
end

describe("docs/API.md", function()
  local roots, close
  setup(function() roots, close = samples() end)
  teardown(function() close() end)

  it("documents names that exist", function()
    local missing, count = {}, 0
    for _, span in ipairs(documented_names()) do
      if not span:match("^cairn ") and span:match("^[%a_]") then
        local v, path = resolve(roots, span)
        count = count + 1
        if v == nil and not OPTIONAL[path] then missing[#missing + 1] = span end
      end
    end
    assert.is_true(count > 120, "only " .. count .. " names documented")
    assert.are.same({}, missing)
  end)

  it("documents every public name of the modules and the objects they make", function()
    local documented = {}
    for _, span in ipairs(documented_names()) do
      local path = span:match("^[%w_%.:]+")
      if path then documented[(path:gsub(":", "."))] = true end
    end
    local undocumented = {}
    -- a name is documented itself, through an alias, or as the namespace of documented names
    local function is_documented(prefix, k)
      if INTERNAL[prefix .. "." .. k] then return true end
      local names = { prefix .. "." .. k }
      for _, alias in ipairs(ALIASES[prefix] or {}) do names[#names + 1] = alias .. "." .. k end
      for _, name in ipairs(names) do
        if documented[name] then return true end
        for d in pairs(documented) do
          if d:sub(1, #name + 1) == name .. "." then return true end
        end
      end
      return false
    end
    local function check(value, prefix)
      for _, k in ipairs(public_names(value)) do
        if not is_documented(prefix, k) then undocumented[#undocumented + 1] = prefix .. "." .. k end
      end
    end
    for root, value in pairs(roots) do
      if root ~= "t" and root ~= "Dog" and root ~= "App" and root ~= "Proc" and root ~= "agg" then
        check(value, root)
      end
    end
    check(roots.app.repository, "app.repository")
    check(roots.app.log, "app.log")
    check(roots.app.snapshots, "app.snapshots")
    check(roots.app.events, "app.events")
    -- classes: what every class has (the sample's own methods are the user's)
    for _, k in ipairs { "create", "create_id", "created", "event", "trigger", "collect_events", "discard" } do
      if not documented["Dog." .. k] and not documented["agg." .. k] then undocumented[#undocumented + 1] = k end
    end
    for _, k in ipairs { "id", "version", "created_on", "modified_on", "head" } do
      if not documented["agg." .. k] then undocumented[#undocumented + 1] = "agg." .. k end
    end
    for _, k in ipairs { "name", "new", "snapshotting_intervals" } do
      if not documented["App." .. k] then undocumented[#undocumented + 1] = "App." .. k end
    end
    for _, k in ipairs { "policy", "policies", "is_process_application" } do
      if not documented["Proc." .. k] then undocumented[#undocumented + 1] = "Proc." .. k end
    end
    table.sort(undocumented)
    assert.are.same({}, undocumented)
  end)

  it("documents every command, and only commands that exist", function()
    local listed = {}
    local code, usage = helper.run(q(helper.cairn_bin) .. " --help")
    assert.are.equal(0, code)
    for cmd in usage:gmatch("\n  (%l+) ") do listed[cmd] = true end
    local seen = {}
    for _, span in ipairs(documented_names()) do
      local cmd = span:match("^cairn (%l+)")
      if cmd then
        seen[cmd] = true
        local rc, out = helper.run(q(helper.cairn_bin) .. " " .. cmd .. " --help </dev/null")
        assert.are.equal(0, rc, cmd)
        assert.matches("usage: cairn " .. cmd, out, 1, true)
      end
    end
    for cmd in pairs(listed) do assert.is_true(seen[cmd], "cairn " .. cmd .. " is not in docs/API.md") end
  end)

  it("has examples that run: the domain model, an application, a projection, a system", function()
    local blocks = {}
    for code in DOC:gmatch("```lua\n(.-)```") do blocks[#blocks + 1] = code end
    local function block(marker)
      for _, code in ipairs(blocks) do
        if code:find(marker, 1, true) then return code end
      end
      error("no example with " .. marker)
    end
    local dir = helper.tmpdir()
    finally(function() helper.rmrf(dir) end)
    local model = block('cairn.aggregate("Dog")') .. "\n" .. block('cairn.application("TrainingSchool")')
    local programs = {
      projection = model .. '\nschool:register("Fido")\n' .. block('cairn.projection("Counts"') .. [[
        school:add_trick("Fido", "roll")
        runner:run()
        print(runner.view:get("trick:roll"))]],
      system = model .. "\n" .. block('cairn.process_application("Counters")'):gsub("system_runner:stop%(%)",
        'print(system_runner:get(Counters).repository:get(Tally.create_id("dogs")).count)\nsystem_runner:stop()'),
    }
    for name, program in pairs(programs) do
      program = 'local cairn = require "cairn"\n' .. program:gsub("lmdb:%./data", "lmdb:" .. dir .. "/" .. name)
      helper.write_file(dir .. "/" .. name .. ".lua", program)
      local code, out, err = helper.run(q(helper.cairn_bin) .. " run " .. q(dir .. "/" .. name .. ".lua"))
      assert.are.equal(0, code, name .. ": " .. err)
      assert.matches("1\n$", out, nil, false)
    end
  end)

  it("points at no file outside the repository", function()
    for target in DOC:gmatch("%]%(([^)#]+)") do
      if not target:match("^https?:") then
        assert.is_not_nil(io.open(helper.root .. "/docs/" .. target), target)
      end
    end
    assert.not_matches("../shared", DOC, 1, true)
  end)

  it("documents require \"cairn.inspect\" as it is: callable, and with inspect.inspect", function()
    local inspect = require "cairn.inspect"
    assert.are.equal('{ 1, 2, name = "Fido" }', inspect({ 1, 2, name = "Fido" }))
    assert.are.equal(inspect.inspect({ 1 }), inspect({ 1 }))
  end)
end)
