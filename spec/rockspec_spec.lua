--- cairn-scm-1.rockspec: `luarocks make` into a temporary tree, then a plain
-- LuaJIT whose package.path/cpath point only at that tree uses cairn.
-- luarocks is required (tools/setup installs it): without it these fail.
local helper = require "helper"

local q = helper.shell_quote
local ROCKSPEC = "cairn-scm-1.rockspec"
-- Debian's luarocks is set up for Lua 5.1 with LUA_INCDIR=/usr/include/lua5.1;
-- cairn's C module needs LuaJIT's headers
local LUAROCKS_FLAGS = "--lua-version=5.1 LUA_INCDIR=/usr/include/luajit-2.1"

-- The files of a directory matching a Lua pattern, sorted.
local function list(dir, pattern)
  local _, out = helper.run("ls " .. q(dir))
  local names = {}
  for name in out:gmatch("[^\n]+") do
    if name:match(pattern) then names[#names + 1] = name end
  end
  table.sort(names)
  return names
end

-- The rockspec's tables, as luarocks reads them (an empty environment).
local function load_rockspec()
  local chunk = assert(loadfile(helper.root .. "/" .. ROCKSPEC))
  local env = {}
  setfenv(chunk, env)
  chunk()
  return env
end

describe("cairn-scm-1.rockspec", function()
  it("builds cairn.core from every runtime/*/*.c but the host's main.c, repl.c and secret_env.c (premake5.lua's list)",
    function()
    local sources = {}
    for _, s in ipairs(load_rockspec().build.modules["cairn.core"].sources) do sources[#sources + 1] = s end
    table.sort(sources)
    local expected = {}
    for _, layer in ipairs(list(helper.root .. "/runtime", "^%a+$")) do
      for _, name in ipairs(list(helper.root .. "/runtime/" .. layer, "%.c$")) do
        local path = "runtime/" .. layer .. "/" .. name
        if path ~= "runtime/host/main.c" and path ~= "runtime/host/repl.c" and path ~= "runtime/host/secret_env.c" then
          expected[#expected + 1] = path
        end
      end
    end
    table.sort(expected)
    assert.are.same(expected, sources)
  end)

  describe("luarocks make --tree", function()
    local dir, tree, built
    setup(function()
      dir = helper.tmpdir()
      tree = dir .. "/tree"
      -- luarocks make builds in place: build a copy, which also shows the rock
      -- needs nothing of the checkout but these sources (no lib/, no build/)
      local src = dir .. "/src"
      local code, out, err = helper.run(("mkdir -p %s && cd %s && cp -R runtime lua stdlib %s %s"):format(
        q(src), q(helper.root), ROCKSPEC, q(src)))
      assert(code == 0, out .. err)
      code = helper.run("command -v luarocks")
      assert(code == 0, "luarocks is not installed (tools/setup installs it)")
      code, out, err = helper.run(("cd %s && luarocks make --tree %s %s %s"):format(q(src), q(tree),
        LUAROCKS_FLAGS, ROCKSPEC))
      built = { code = code, out = out, err = err }
    end)
    teardown(function() helper.rmrf(dir) end)

    it("builds without warnings and installs cairn.core and every Lua module as cairn.*", function()
      assert.are.equal(0, built.code, built.out .. built.err)
      assert.is_nil(built.out:find("warning", 1, true), built.out)
      assert.is_nil(built.err:find("warning", 1, true), built.err)
      assert.is_truthy(helper.read_file(tree .. "/lib/lua/5.1/cairn/core.so"))
      local installed = list(tree .. "/share/lua/5.1/cairn", "%.lua$")
      local expected = list(helper.root .. "/lua/cairn", "%.lua$")
      for _, name in ipairs(list(helper.root .. "/stdlib/cairn", "%.lua$")) do expected[#expected + 1] = name end
      table.sort(expected)
      assert.are.same(expected, installed)
    end)

    it("gives a plain luajit, with only the tree on its paths, a working cairn on memory: and lmdb:", function()
      assert.are.equal(0, built.code, built.out .. built.err)
      local script = dir .. "/use.lua"
      helper.write_file(script, [[
local tree, store_dir = ...
package.path = tree .. "/share/lua/5.1/?.lua;" .. tree .. "/share/lua/5.1/?/init.lua"
package.cpath = tree .. "/lib/lua/5.1/?.so"
local cairn = require "cairn"
assert(package.searchpath("cairn", package.path):sub(1, #tree) == tree)

local Dog = cairn.aggregate("Dog")
function Dog.create_id(name) return cairn.uuid.v5(cairn.uuid.NAMESPACE_URL, "/dogs/" .. name) end
Dog:created("Registered", function(self, name) self.name = name; self.tricks = {} end)
Dog.add_trick = Dog:event("TrickAdded", function(self, trick) self.tricks[#self.tricks + 1] = trick end)
local School = cairn.application("School")

for _, uri in ipairs { "memory:", "lmdb:" .. store_dir } do
  local school = School.new { store = uri, sync = "none" }
  local dog = Dog("Fido")
  dog:add_trick("roll over")
  school:save(dog)
  local got = school.repository:get(Dog.create_id("Fido"))
  print(uri:match("^%a+"), got.name, got.tricks[1], got.version, school:max_notification_id())
  school:close()
end
-- the LMDB store kept them
local again = School.new { store = "lmdb:" .. store_dir }
local dog = again.repository:get(Dog.create_id("Fido"), { version = 1 })
print("reopened", dog.name, #dog.tricks, again.log:select(1, 10)[2].topic)
again:close()
]])
      local code, out, err = helper.run(("cd %s && luajit %s %s %s"):format(q(dir), q(script), q(tree),
        q(dir .. "/store")))
      assert.are.equal(0, code, out .. err)
      assert.are.equal(table.concat({
        "memory\tFido\troll over\t2\t2",
        "lmdb\tFido\troll over\t2\t2",
        "reopened\tFido\t0\tDog.TrickAdded",
      }, "\n") .. "\n", out)
    end)
  end)
end)
