-- tools/install into a temporary prefix, then everything used from there only:
-- the cairn host, pkg-config, the game server example built against the
-- installed copy, a static link, and a plain LuaJIT host.
local helper = require "helper"

local q = helper.shell_quote

describe("tools/install", function()
  local dir, prefix, env

  -- run cmd with nothing of the source tree in the environment
  local function run_installed(cmd)
    return helper.run(("cd %s && unset CAIRN_HOME LUA_PATH LUA_CPATH && export %s && %s"):format(q(dir), env, cmd))
  end

  setup(function()
    dir = helper.tmpdir()
    prefix = dir .. "/prefix"
    env = ("PKG_CONFIG_PATH=%s LD_LIBRARY_PATH=%s"):format(q(prefix .. "/lib/pkgconfig"), q(prefix .. "/lib"))
    local code, out, err = helper.run(("%s/tools/install %s"):format(q(helper.root), q(prefix)))
    assert.equal(0, code, err)
    assert.matches("installed cairn", out, 1, true)
  end)

  teardown(function() helper.rmrf(dir) end)

  it("installs the binary, libraries, header, Lua files and a pkg-config file", function()
    for _, file in ipairs { "bin/cairn", "lib/libcairn.so", "lib/libcairn.a", "lib/lua/5.1/cairn/core.so",
      "include/cairn.h", "lib/pkgconfig/cairn.pc", "share/cairn/lua/cairn/init.lua",
      "share/cairn/stdlib/cairn/json.lua" } do
      assert.truthy(io.open(prefix .. "/" .. file), file)
    end
    local code, out = run_installed("pkg-config --cflags --libs cairn")
    assert.equal(0, code)
    assert.equal(("-I%s/include -L%s/lib -lcairn"):format(prefix, prefix), (out:gsub("%s+$", "")))
  end)

  it("an installed cairn finds its own Lua files, without environment variables", function()
    helper.write_file(dir .. "/where.lua", [[
      local cairn = require "cairn"
      local Dog = cairn.aggregate("Dog")
      Dog:created("Registered", function(self, name) self.name = name end)
      local School = cairn.application("School")
      local school = School.new { store = "memory:" }
      local dog = Dog("Fido")
      school:save(dog)
      print(package.searchpath("cairn", package.path), school.repository:get(dog.id).name)
    ]])
    local code, out, err = run_installed(q(prefix .. "/bin/cairn") .. " run where.lua")
    assert.equal(0, code, err)
    assert.equal(prefix .. "/share/cairn/lua/cairn/init.lua\tFido", (out:gsub("%s+$", "")))
  end)

  it("builds the game server example against the installed copy with pkg-config, and runs it", function()
    -- a copy outside the source tree: nothing can come from the checkout
    assert.equal(0, (helper.run(("cp -r %s/examples/game_server %s/game"):format(q(helper.root), q(dir)))))
    local code, _, err = run_installed("make -s -C game")
    assert.equal(0, code, err)
    code, _, err = run_installed("ldd game/game_server | grep -q " .. q(prefix .. "/lib/libcairn.so"))
    assert.equal(0, code, err)
    local out
    code, out, err = run_installed("game/game_server --threads 2 --ticks 5 --commands 5 --players 4 --seed 3 store")
    assert.equal(0, code, err)
    assert.matches("commands: 50 ", out, 1, true)
    assert.matches("failed: 0", out, 1, true)
    code, out, err = run_installed("game/replay store player1 1")
    assert.equal(0, code, err)
    assert.matches("player1", out, 1, true)
    assert.matches("version 1", out, 1, true)
  end)

  it("links statically with pkg-config --static", function()
    helper.write_file(dir .. "/tiny.c", [[
#include <stdio.h>
#include <cairn.h>
int main(void)
{
    cairn_runtime_options opt = { .store = "memory:" };
    cairn_runtime *rt;
    if (cairn_runtime_open(&opt, &rt) != CAIRN_OK) { fprintf(stderr, "%s\n", cairn_errmsg(NULL)); return 1; }
    int rc = cairn_runtime_load(rt, "no_such_module", NULL);
    printf("%s\n", cairn_strerror(rc));
    cairn_runtime_close(rt);
    return rc == CAIRN_LUA ? 0 : 1;
}
]])
    local code, _, err = run_installed(("cc tiny.c $(pkg-config --cflags cairn) %s/lib/libcairn.a "
      .. "$(pkg-config --static --libs-only-l cairn | sed 's/-lcairn//') -o tiny"):format(q(prefix)))
    assert.equal(0, code, err)
    code, _, err = run_installed("ldd tiny | grep -q libcairn")
    assert.equal(1, code, err) -- no libcairn.so: the archive was linked in
    local out
    code, out, err = run_installed("./tiny")
    assert.equal(0, code, err .. out)
  end)

  it("serves require \"cairn\" to a plain LuaJIT host from the installed paths", function()
    local setup = ("package.path=%q; package.cpath=%q"):format(
      prefix .. "/share/cairn/lua/?.lua;" .. prefix .. "/share/cairn/lua/?/init.lua;"
        .. prefix .. "/share/cairn/stdlib/?.lua", prefix .. "/lib/lua/5.1/?.so")
    local script = [[local cairn = require "cairn"
      print(cairn.uuid.v4():len(), package.searchpath("cairn.core", package.cpath))]]
    local code, out, err = run_installed(("luajit -e %s -e %s"):format(q(setup), q(script)))
    assert.equal(0, code, err)
    assert.equal("36\t" .. prefix .. "/lib/lua/5.1/cairn/core.so", (out:gsub("%s+$", "")))
  end)
end)
