--- cairn.sandbox (issue 14 item 8): hosted domain code without os/io/ffi/debug,
-- bytecode or unlisted modules, with bounded instructions and memory per call.
local helper = require "helper"
local cairn = require "cairn"

local error_of, assert_kind = helper.error_of, helper.assert_kind

-- A tenant's module, written into a fresh directory per test; `{NAME}` is
-- replaced by a name unique to the test (class names are process-wide).
local MODEL = [[
local cairn = require "cairn"
local Pet = cairn.aggregate("{NAME}Pet")
Pet:created("Adopted", function(self, name) self.name = name; self.moods = {} end)
Pet.feel = Pet:event("Felt", function(self, mood)
  if mood == "forever" then local x = 0 while true do x = x + 1 end end
  if mood == "greedy" then local s = "x" for _ = 1, 40 do s = s .. s end end
  self.moods[#self.moods + 1] = mood
end)
local App = cairn.application("{NAME}App")
function App:adopt(name) return self:save(Pet(name))[1].notification_id end
function App:feel(id, mood) local p = self.repository:get(id); p:feel(mood); return self:save(p) end
function App:key() return self.env:get("CAIRN_CIPHER_KEY") end
function App:another_store() return App.new { store = "memory:" } end
local Moods = cairn.projection("{NAME}Moods", { topics = { "{NAME}Pet.Felt" } })
Moods:on("{NAME}Pet.Felt", function(view, event)
  if event.mood == "sulk" then while true do end end
  if event.mood == "copy" then view.store:copy("/tmp/sandbox-escape") end
  view:incr(event.mood, 1)
end)
return { Pet = Pet, App = App, Moods = Moods }
]]

local counter = 0

describe("cairn.sandbox", function()
  local dir, sb, model, name

  before_each(function()
    dir = helper.tmpdir()
    counter = counter + 1
    name = "Sb" .. counter
    helper.write_file(dir .. "/model.lua", (MODEL:gsub("{NAME}", name)))
    sb = cairn.sandbox.new { path = dir .. "/?.lua", instructions = 2000000, memory = 16 * 1024 * 1024,
                             name = "tenant " .. name }
    model = sb:require("model")
  end)

  after_each(function()
    helper.rmrf(dir)
  end)

  -- run source in the sandbox; returns what it returns
  local function run(source) return sb:load(source) end

  describe("what sandboxed code can reach", function()
    it("has no os, io, ffi, debug, jit, package, collectgarbage, getfenv, setfenv, loadfile, dofile, print", function()
      local seen = run [[
        local names = { "os", "io", "ffi", "debug", "jit", "package", "collectgarbage", "getfenv", "setfenv",
                        "loadfile", "dofile", "print", "newproxy", "module", "gcinfo" }
        local out = {}
        for _, n in ipairs(names) do out[#out + 1] = n .. "=" .. type(_G[n]) end
        return table.concat(out, " ")
      ]]
      assert.are.equal("os=nil io=nil ffi=nil debug=nil jit=nil package=nil collectgarbage=nil getfenv=nil "
        .. "setfenv=nil loadfile=nil dofile=nil print=nil newproxy=nil module=nil gcinfo=nil", seen)
    end)

    it("requires neither the host's libraries nor unlisted modules: SandboxError naming the module", function()
      for _, mod in ipairs { "os", "io", "ffi", "debug", "jit", "cairn.core", "cairn.application", "lfs" } do
        local err = assert_kind("SandboxError", error_of(run, ("return require(%q)"):format(mod)))
        assert.matches("require of module '" .. mod .. "' is not allowed", err.message, 1, true)
      end
    end)

    it("requires its own modules (sandboxed too) and the host's allowed ones", function()
      helper.write_file(dir .. "/helper_mod.lua", "return { os = type(os), uuid = require('cairn.uuid').v4 ~= nil }")
      local t = run "return require('helper_mod')"
      assert.are.equal("nil", t.os)
      assert.is_true(t.uuid)
      local sb2 = cairn.sandbox.new { path = dir .. "/?.lua", allow = { "cairn.view" } }
      assert.is_table(sb2:load("return require('cairn.view')"))
    end)

    it("gets a cairn of its own: no core, no reload, no runners, and changing it changes nothing outside", function()
      local t = run [[
        local c = require "cairn"
        local keys = {}
        for k in pairs(c) do keys[#keys + 1] = k end
        table.sort(keys)
        c.errors.raise = function() return "hijacked" end
        c.errors.KINDS[1] = "hijacked"
        require("cairn.errors").KINDS[2] = "hijacked"
        c.aggregate = nil
        return table.concat(keys, ",")
      ]]
      assert.are.equal("_VERSION,aggregate,application,errors,event_fields,is_event,process_application,"
        .. "projection,system,time,uuid", t)
      assert.are_not.equal("hijacked", pcall(cairn.errors.raise, "ConfigError", "x"))
      assert.is_function(cairn.aggregate)
      assert.are.same({ "ConcurrencyError", "AggregateNotFound" }, { cairn.errors.KINDS[1], cairn.errors.KINDS[2] })
    end)

    it("loads no bytecode, has no string.dump, and strings lead back to no library", function()
      local err = assert_kind("SandboxError", error_of(sb.load, sb, string.dump(function() return 1 end)))
      assert.matches("bytecode", err.message, 1, true)
      assert.are.equal("nil nil nil", run [[
        return type(string.dump) .. " " .. type(("x").dump) .. " " .. type(getmetatable(""))
      ]])
      err = assert_kind("SandboxError", error_of(run, [[return load("\27LJ\2")]]))
      assert.matches("bytecode", err.message, 1, true)
      err = assert_kind("SandboxError", error_of(run, [[return load(function() return nil end)]]))
      assert.matches("takes a string of Lua source", err.message, 1, true)
      -- the host's strings are unchanged afterwards
      assert.is_function(string.dump)
      assert.is_function(("x").dump)
    end)

    it("cannot see or replace the metatables of aggregates and errors; events are plain tables", function()
      local pet = model.Pet("Rex")
      local event = pet:collect_events()[1]
      local err = cairn.errors.new("ConfigError", "x")
      local seen = sb:call(function(getmt, e, er, p) return tostring(getmt(e)) .. tostring(getmt(er)), getmt(p) end,
        sb._env.getmetatable, event, err, pet)
      assert.are.equal("nilnil", seen)
      assert.are.equal(model.Pet, sb:call(sb._env.getmetatable, pet)) -- its own class
      for _, framework_owned in ipairs { err, pet } do
        local e2 = assert_kind("SandboxError", error_of(sb.call, sb, sb._env.setmetatable, framework_owned, {}))
        assert.matches("belongs to the framework", e2.message, 1, true)
      end
      -- an event is a plain table, the receiver's own copy (API.md §2): nothing of the framework to guard
      assert.is_nil(getmetatable(event))
      -- its own tables are its own
      assert.is_true(sb:load("local mt = {} local t = setmetatable({}, mt) return getmetatable(t) == mt "
        .. "and setmetatable(t, nil) == t and getmetatable(t) == nil"))
      assert.is_true(cairn.is_event(event))
    end)

    it("cannot read the application's settings (its key, store path) nor open a store", function()
      local key = require("cairn.core").keygen()
      local app = model.App.new { store = "memory:", cipher_key = key }
      local err = assert_kind("SandboxError", error_of(sb.call, sb, app.key, app))
      assert.matches("cannot read settings", err.message, 1, true)
      assert.is_nil(err.message:find(key, 1, true))
      err = assert_kind("SandboxError", error_of(sb.call, sb, app.another_store, app))
      assert.matches("cannot open a store", err.message, 1, true)
      for _, method in ipairs { "copy", "rekey", "close" } do
        err = assert_kind("SandboxError", error_of(sb.call, sb, function(a) return a.store[method](a.store, dir) end,
          app))
        assert.matches("cannot " .. method .. " a store", err.message, 1, true)
      end
      assert.are.equal(0, app:max_notification_id())
      app:close()
    end)

    it("cannot take over a class name defined outside the sandbox", function()
      cairn.aggregate(name .. "Host")
      local err = assert_kind("SandboxError", error_of(run, ("return require('cairn').aggregate(%q)"):format(
        name .. "Host")))
      assert.matches("taken by code outside this sandbox", err.message, 1, true)
    end)
  end)

  describe("bounds", function()
    it("stops an apply function that loops forever (SandboxError), records nothing", function()
      local app = model.App.new { store = "memory:" }
      sb:call(app.adopt, app, "Rex")
      local pet_id = app.log:select(1, 1)[1].originator_id
      local err = assert_kind("SandboxError", error_of(sb.call, sb, app.feel, app, pet_id, "forever"))
      assert.matches("tenant " .. name .. ": stopped after 2000000 VM instructions", err.message, 1, true)
      assert.are.equal(1, app:max_notification_id())
      -- also when the host triggers the command itself, without sandbox:call
      local pet = app.repository:get(pet_id)
      assert_kind("SandboxError", error_of(pet.feel, pet, "forever"))
      app:close()
    end)

    it("bounds application methods and commands the host calls directly, without sandbox:call", function()
      local app = model.App.new { store = "memory:" }
      assert.are.equal(1, app:adopt("Rex"))
      local pet_id = app.log:select(1, 1)[1].originator_id
      assert_kind("SandboxError", error_of(app.feel, app, pet_id, "forever"))
      local err = assert_kind("SandboxError", error_of(app.key, app))
      assert.matches("cannot read settings", err.message, 1, true)
      app:close()
    end)

    it("stops a call that allocates more than its memory (one s = s .. s at a time)", function()
      local pet = model.Pet("Rex")
      local err = assert_kind("SandboxError", error_of(pet.feel, pet, "greedy"))
      assert.matches("more than 16777216 bytes of memory", err.message, 1, true)
      -- and the host allocates freely again afterwards
      assert.are.equal(32 * 1024 * 1024, #("x"):rep(32 * 1024 * 1024))
    end)

    it("cannot catch an exceeded bound with pcall, xpcall, coroutine.resume or a pcall of trusted code", function()
      for _, source in ipairs {
        "while true do pcall(function() while true do end end) end",
        "while true do xpcall(function() while true do end end, function(e) return e end) end",
        "while true do coroutine.resume(coroutine.create(function() while true do end end)) end",
        "while true do pcall(string.rep, 'x', 2^30) end",
        -- trusted code's own pcall (inspect's, around a __cairn_inspect hook) catching the bound
        "local t = setmetatable({}, { __cairn_inspect = function() while true do end end }) "
          .. "while true do require('cairn.inspect').inspect(t) end",
        "local t = setmetatable({}, { __cairn_inspect = function() return { ('x'):rep(2^30) } end }) "
          .. "while true do require('cairn.inspect').inspect(t) end",
      } do
        assert_kind("SandboxError", error_of(run, source))
      end
    end)

    it("bounds loops inside coroutines (coroutine.wrap) and in code made by load", function()
      assert_kind("SandboxError", error_of(run, "coroutine.wrap(function() while true do end end)()"))
      assert_kind("SandboxError", error_of(run, "load('while true do end')()"))
    end)

    it("cannot yield out of sandboxed code into the host's coroutine", function()
      local co = coroutine.create(function() return sb:load("coroutine.yield('escaped')") end)
      local ok, err = coroutine.resume(co)
      assert.is_false(ok)
      assert_kind("SandboxError", err)
    end)

    it("bounds projection handlers: the runner stops with a SandboxError naming the notification", function()
      local app = model.App.new { store = "memory:" }
      sb:call(app.adopt, app, "Rex")
      local pet_id = app.log:select(1, 1)[1].originator_id
      sb:call(app.feel, app, pet_id, "happy")
      sb:call(app.feel, app, pet_id, "sulk")
      local runner = cairn.ProjectionRunner.new { application = app, projection = model.Moods }
      local err = assert_kind("SandboxError", error_of(runner.run, runner))
      assert.matches("notification 3", err.message, 1, true)
      assert.matches("stopped after", err.message, 1, true)
      assert.are.equal(1, runner.view:get("happy"))
      app:close()
    end)

    it("refuses a projection handler's copy of its view's store", function()
      local app = model.App.new { store = "memory:" }
      sb:call(app.adopt, app, "Rex")
      sb:call(app.feel, app, app.log:select(1, 1)[1].originator_id, "copy")
      local runner = cairn.ProjectionRunner.new { application = app, projection = model.Moods }
      local err = assert_kind("SandboxError", error_of(runner.run, runner))
      assert.matches("cannot copy a store", err.message, 1, true)
      runner:close()
      app:close()
    end)

    it("bounds policies of a sandboxed process application", function()
      helper.write_file(dir .. "/follower.lua", ([[
        local cairn = require "cairn"
        local F = cairn.process_application("{NAME}F")
        F:policy("{NAME}Pet.Adopted", function(self, event, processing) while true do end end)
        return F
      ]]):gsub("{NAME}", name))
      local F = sb:require("follower")
      local app = model.App.new { store = "memory:" }
      sb:call(app.adopt, app, "Rex")
      local f = F.new { store = "memory:" }
      f:follow(app.name, app)
      local err = assert_kind("SandboxError", error_of(f.pull_and_process, f, app.name))
      assert.matches("notification 1", err.message, 1, true)
      app:close(); f:close()
    end)

    it("turns an error object with metamethods into a SandboxError naming its type", function()
      local err = assert_kind("SandboxError", error_of(run, [[
        error(setmetatable({}, { __tostring = function() while true do end end }))
      ]]))
      assert.matches("raised a table value", err.message, 1, true)
    end)

    it("leaves the host as it was: no hook, no memory ceiling, its own string methods", function()
      pcall(run, "while true do end")
      assert.is_nil(debug.gethook())
      assert.is_false(require("cairn.core").memory_refused())
      assert.are.equal("xx", ("x"):rep(2))
    end)

    it("refuses bad options with a ConfigError", function()
      assert_kind("ConfigError", error_of(cairn.sandbox.new, { instructions = -1 }))
      assert_kind("ConfigError", error_of(cairn.sandbox.new, { memory = "lots" }))
    end)
  end)

  describe(":reload()", function()
    it("loads a sandboxed module again inside the sandbox, and keeps the old one when the new one fails", function()
      helper.write_file(dir .. "/hot.lua", "return { v = 1, os = type(os) }")
      assert.are.equal(1, sb:require("hot").v)
      helper.write_file(dir .. "/hot.lua", "return { v = 2, os = type(os) }")
      local new = sb:reload("hot")
      assert.are.same({ v = 2, os = "nil" }, new)
      assert.are.equal(new, sb:require("hot"))
      helper.write_file(dir .. "/hot.lua", "while true do end")
      local err = error_of(sb.reload, sb, "hot")
      assert.matches("cannot reload module 'hot': SandboxError: .*stopped after", tostring(err))
      assert.are.equal(new, sb:require("hot"))
    end)
  end)

  describe("cairn run --sandbox", function()
    local q = helper.shell_quote
    local function cairn_run(flags, script)
      helper.write_file(dir .. "/main.lua", script)
      return helper.run(("%s run %s %s </dev/null"):format(q(helper.cairn_bin), flags, q(dir .. "/main.lua")))
    end

    it("loads the script's own modules in a sandbox; the script itself is the host", function()
      helper.write_file(dir .. "/peek.lua", "return { os = type(os), io = type(io) }")
      local code, out, err = cairn_run("--sandbox", [[
        local m = require "model"
        local peek = require "peek"
        local app = m.App.new { store = "memory:" }
        print(peek.os, peek.io, type(os), app:adopt("Rex"))
      ]])
      assert.are.equal(0, code, err)
      assert.are.equal("nil\tnil\ttable\t1\n", out)
    end)

    it("bounds their calls: --instructions, exit 1 with the SandboxError", function()
      local code, _, err = cairn_run("--sandbox --instructions 100000", [[
        local m = require "model"
        m.Pet("Rex"):feel("forever")
      ]])
      assert.are.equal(1, code)
      assert.matches("SandboxError: sandbox .*: stopped after 100000 VM instructions", err)
    end)

    it("--allow lets them require a host module; without it the require is a SandboxError", function()
      helper.write_file(dir .. "/uses_view.lua", "return require('cairn.view') ~= nil")
      local script = "print(require 'uses_view')"
      local code, out, err = cairn_run("--sandbox --allow cairn.view", script)
      assert.are.equal(0, code, err)
      assert.are.equal("true\n", out)
      code, out, err = cairn_run("--sandbox", script)
      assert.are.equal(1, code, out)
      assert.matches("SandboxError: .*require of module 'cairn.view' is not allowed", err)
    end)

    it("refuses bad usage with exit status 2", function()
      for _, flags in ipairs { "--instructions 10", "--sandbox --memory lots", "--sandbox --bogus" } do
        local code, _, err = cairn_run(flags, "")
        assert.are.equal(2, code, flags)
        assert.matches("cairn run: ", err, 1, true)
      end
    end)
  end)

  it("leaves the trusted default as it is: plain require gives modules os and io", function()
    package.path = dir .. "/?.lua;" .. package.path
    helper.write_file(dir .. "/trusted.lua", "return type(os) .. type(io)")
    assert.are.equal("tabletable", require("trusted"))
  end)
end)
