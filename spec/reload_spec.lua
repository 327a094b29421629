-- cairn.reload: a domain module edited on disk and loaded again in a running host.
local helper = require "helper"
local cairn = require "cairn"
local aggregate = require "cairn.aggregate"

local q = helper.shell_quote

-- A domain module: a Counter whose Added event adds n * scale, and a Tally
-- application; `extra` runs after the classes are defined.
local function module_text(scale, version, extra)
  return ([[
local cairn = require "cairn"
local Counter = cairn.aggregate("Counter")
Counter:created("Started", function(self) self.total = 0 end)
Counter.add = Counter:event("Added", function(self, n) self.total = self.total + n * %d end)
local Tally = cairn.application("Tally")
function Tally:start() local c = Counter(); self:save(c); return c.id end
function Tally:add(id, n) local c = self.repository:get(id); c:add(n); self:save(c) end
function Tally:total(id) return self.repository:get(id).total end
function Tally:describe() return %q end
%s
return { Counter = Counter, Tally = Tally, version = %q }
]]):format(scale, version, extra or "", version)
end

describe("cairn.reload", function()
  local dir, name, path, old_path
  local counter = 0

  before_each(function()
    dir = helper.tmpdir()
    -- a module name of its own per test: package.loaded outlives the test
    counter = counter + 1
    name = ("reload_fixture_%d_%d"):format(counter, os.time())
    path = dir .. "/" .. name .. ".lua"
    old_path = package.path
    package.path = dir .. "/?.lua;" .. package.path
  end)

  after_each(function()
    package.loaded[name] = nil
    package.path = old_path
    helper.rmrf(dir)
  end)

  local function start(app, adds)
    local id = app:start()
    for _, n in ipairs(adds) do app:add(id, n) end
    return id
  end

  describe("a module that loads", function()
    it("replays old events with the new apply functions", function()
      helper.write_file(path, module_text(1, "v1"))
      local old = require(name)
      local app = old.Tally.new { store = "memory:" }
      finally(function() app:close() end)
      local id = start(app, { 2, 3 })
      assert.equal(5, app:total(id))

      helper.write_file(path, module_text(10, "v2"))
      local new = cairn.reload(name)
      assert.equal("v2", new.version)
      assert.equal(new, package.loaded[name])
      assert.not_equal(old.Counter, new.Counter)
      assert.equal(new.Counter, aggregate.class("Counter"))
      assert.equal(50, app:total(id))
      local agg = app.repository:get(id)
      assert.equal(new.Counter, getmetatable(agg))
      -- new events are recorded after the old ones
      app:add(id, 1)
      assert.equal(60, app:total(id))
      assert.equal(4, app.repository:get(id).version)
    end)

    it("gives application objects made before the reload the new methods", function()
      helper.write_file(path, module_text(1, "v1"))
      local old = require(name)
      local app = old.Tally.new { store = "memory:" }
      finally(function() app:close() end)
      assert.equal("v1", app:describe())
      helper.write_file(path, module_text(1, "v2", "function Tally:double(id) return 2 * self:total(id) end"))
      local new = cairn.reload(name)
      assert.equal("v2", app:describe())
      assert.equal(old.Tally, new.Tally) -- the class is updated in place
      local id = start(app, { 4 })
      assert.equal(8, app:double(id))
    end)

    it("drops the events a redefined class no longer has", function()
      helper.write_file(path, module_text(1, "v1"))
      local app = require(name).Tally.new { store = "memory:" }
      finally(function() app:close() end)
      local id = start(app, { 1 })
      helper.write_file(path, (module_text(1, "v2"):gsub('Counter.add = Counter:event%("Added".-end%)\n', "")))
      cairn.reload(name)
      local err = helper.error_of(app.total, app, id)
      helper.assert_kind("SchemaError", err)
      assert.matches("Counter.Added", err.message, 1, true)
    end)

    it("loads a module that was not loaded yet", function()
      helper.write_file(path, module_text(1, "v1"))
      assert.is_nil(package.loaded[name])
      assert.equal("v1", cairn.reload(name).version)
    end)
  end)

  describe("a module that fails to load", function()
    local old, app, id

    before_each(function()
      helper.write_file(path, module_text(1, "v1"))
      old = require(name)
      app = old.Tally.new { store = "memory:" }
      id = start(app, { 2, 3 })
    end)

    after_each(function() app:close() end)

    local function assert_old_in_place()
      assert.equal(old, package.loaded[name])
      assert.equal(old.Counter, aggregate.class("Counter"))
      assert.equal("v1", app:describe())
      assert.equal(5, app:total(id))
      -- and the old classes still work for new aggregates
      local id2 = start(app, { 7 })
      assert.equal(7, app:total(id2))
    end

    it("keeps the old one after a syntax error, naming the module and the line", function()
      helper.write_file(path, "local cairn = require 'cairn'\nlocal = 1\n")
      local err = helper.error_of(cairn.reload, name)
      assert.is_string(err)
      assert.matches("cannot reload module '" .. name .. "'", err, 1, true)
      assert.matches(name .. ".lua:2:", err, 1, true)
      assert_old_in_place()
    end)

    it("keeps the old one after an error half way, when classes were already redefined", function()
      helper.write_file(path, module_text(100, "v2", "error('broken half way')"))
      local err = helper.error_of(cairn.reload, name)
      assert.matches("cannot reload module '" .. name .. "'.*broken half way", err)
      assert_old_in_place()
    end)

    it("keeps the old one when the file is gone", function()
      os.remove(path)
      local err = helper.error_of(cairn.reload, name)
      assert.matches("cannot reload module '" .. name .. "'.*not found", err)
      assert_old_in_place()
    end)

    it("keeps the kind of a cairn error raised while loading", function()
      helper.write_file(path, module_text(1, "v2", "cairn.errors.raise('ConfigError', 'no settings')"))
      local err = helper.error_of(cairn.reload, name)
      assert.matches("ConfigError: no settings", err, 1, true)
      assert_old_in_place()
    end)
  end)

  it("refuses a name that is not a string", function()
    assert.has_error(function() cairn.reload(nil) end, "bad argument #1 to 'reload' (module name expected)")
  end)

  describe("in the REPL", function()
    it("loads the edited file; the module's global follows; a broken edit keeps the old code", function()
      helper.write_file(path, module_text(1, "v1"))
      helper.write_file(dir .. "/v2.src", module_text(10, "v2"))
      helper.write_file(dir .. "/broken.src", "this is not Lua\n")
      local script = table.concat({
        ("app = %s.Tally.new { store = %q, sync = 'none' }"):format(name, helper.store_uri(dir)),
        "id = app:start()",
        "app:add(id, 2)",
        "=app:describe() .. ' ' .. app:total(id)",
        ("os.execute('cp v2.src %s.lua')"):format(name),
        ("cairn.reload '%s'"):format(name),
        ("=app:describe() .. ' ' .. app:total(id) .. ' ' .. %s.version"):format(name),
        ("os.execute('cp broken.src %s.lua')"):format(name),
        ("cairn.reload '%s'"):format(name),
        ("=app:describe() .. ' ' .. app:total(id) .. ' ' .. %s.version"):format(name),
      }, "\n") .. "\n"
      helper.write_file(dir .. "/script.txt", script)
      local code, out, err = helper.run(("cd %s && %s repl --require %s < script.txt"):format(
        q(dir), q(helper.cairn_bin), name))
      assert.equal(1, code) -- the broken reload failed, so the piped REPL exits 1
      assert.matches('"v1 2"', out, 1, true)
      assert.matches('"v2 20 v2"', out, 1, true)
      assert.matches("cannot reload module '" .. name .. "'", err, 1, true)
      -- after the failed reload the v2 code is still there
      local last = out:match('[^\n]*\n?$')
      assert.matches('"v2 20 v2"', last, 1, true)
    end)
  end)
end)
