-- cairn build script.
--
-- Runs under premake5 and under Debian's premake4 (premake5 is not packaged):
--   premake4 --file=premake5.lua gmake && make -C build config=release
-- `tools/build [release|debug|sanitize]` does both steps incrementally.
--
-- Products:
--   bin/cairn          the host (scripts, REPL, store tools)
--   lib/libcairn.a     the core, for static embedding
--   lib/libcairn.so    the core, for dynamic embedding
--   lib/cairn/core.so  the core as a Lua C module (require "cairn" from LuaJIT hosts)
--   build/tests/       the C test programs (cairn_c_tests, cairn_api_tests, cairn_pg_tests)
--   build/examples/    the game server example (game_server, replay)
-- The sanitize configuration (AddressSanitizer + UBSan) puts the same products
-- under build/sanitize/ so both builds can live side by side; the tsan
-- configuration (ThreadSanitizer) under build/tsan/, for the threaded tests.

local is_premake5 = _PREMAKE_VERSION and _PREMAKE_VERSION:sub(1, 1) == "5"

-- premake5 scopes settings with filter{}, premake4 with configuration{}.
local function only(config)
  if is_premake5 then filter("configurations:" .. config) else configuration(config) end
end
local function everywhere()
  if is_premake5 then filter {} else configuration {} end
end

local system_libs = { "luajit-5.1", "lmdb", "msgpackc", "sodium", "zstd", "pq", "readline", "m", "dl", "pthread" }
-- Programs that embed cairn (the API tests, the examples) link libcairn.so, as
-- a host does, found next to them through an rpath: lib/ for release builds,
-- build/sanitize/lib and build/tsan/lib for the others.
local with_core = { "cairn_shared" }
for _, lib in ipairs(system_libs) do with_core[#with_core + 1] = lib end
local function link_core()
  links(with_core)
  only "release"
    linkoptions { "-Wl,-rpath,'$$ORIGIN/../../lib'" }
  only "debug"
    linkoptions { "-Wl,-rpath,'$$ORIGIN/../../lib'" }
  only "sanitize"
    linkoptions { "-Wl,-rpath,'$$ORIGIN/../lib'" }
  only "tsan"
    linkoptions { "-Wl,-rpath,'$$ORIGIN/../lib'" }
  everywhere()
end

-- runtime/ has a folder per layer: store/ (engines and mapper, no Lua), net/
-- (the HTTP client, no Lua), lua/ (the binding), host/ (the executable and
-- the embedding API). The core is everything but the executable's own files
-- (entry point, readline REPL, keys out of its environment).
local core_files = { "runtime/store/*.c", "runtime/store/*.h", "runtime/net/*.c", "runtime/net/*.h",
                     "runtime/lua/*.c", "runtime/lua/*.h", "runtime/host/host.c", "runtime/host/host.h",
                     "runtime/host/embed.c", "runtime/include/*.h" }
local host_only = { "runtime/host/main.c", "runtime/host/repl.c", "runtime/host/secret_env.c",
                    "runtime/host/secret_env.h" }
-- The core files that need no Lua: the C tests link only runtime/store/, which proves it.
local lua_free_core = { "runtime/store/*.c" }

local function common(name, out)
  language "C"
  includedirs { "runtime/store", "runtime/net", "runtime/lua", "runtime/host", "runtime/include",
                "/usr/include/luajit-2.1", "/usr/include/postgresql" }
  buildoptions { "-std=gnu11", "-Wall", "-Wextra", "-fPIC", "-fvisibility=default" }
  objdir("obj/" .. name)
  -- keep symbols in every configuration: sanitizer reports and perf need them
  if is_premake5 then symbols "On" else flags { "Symbols" } end
  only "release"
    buildoptions { "-O2", "-g" }
    defines { "NDEBUG" }
    targetdir(out)
  only "debug"
    buildoptions { "-O0", "-g" }
    targetdir(out)
  only "sanitize"
    buildoptions { "-O1", "-g", "-fno-omit-frame-pointer", "-fsanitize=address,undefined",
                   "-fno-sanitize-recover=undefined" }
    linkoptions { "-fsanitize=address,undefined" }
    targetdir("build/sanitize/" .. out:gsub("^build/", ""))
  only "tsan"
    buildoptions { "-O1", "-g", "-fno-omit-frame-pointer", "-fsanitize=thread" }
    linkoptions { "-fsanitize=thread" }
    targetdir("build/tsan/" .. out:gsub("^build/", ""))
  everywhere()
end

solution "cairn"
  configurations { "release", "debug", "sanitize", "tsan" }
  location "build"

  project "cairn_static"
    kind "StaticLib"
    targetname "cairn"
    files(core_files)
    excludes(host_only)
    common("cairn_static", "lib")

  project "cairn_shared"
    kind "SharedLib"
    targetname "cairn"
    files(core_files)
    excludes(host_only)
    links(system_libs)
    common("cairn_shared", "lib")

  project "cairn_lua_module"
    kind "SharedLib"
    targetname "core"
    targetprefix ""
    files(core_files)
    excludes(host_only)
    -- no Lua library: the host process that loads the module provides it
    links { "lmdb", "msgpackc", "sodium", "zstd", "pq", "m" }
    common("cairn_lua_module", "lib/cairn")

  project "cairn_host"
    kind "ConsoleApp"
    targetname "cairn"
    -- the core is compiled in rather than linked: -lcairn would pick libcairn.so
    files(core_files)
    files(host_only)
    links(system_libs)
    -- export the host's symbols so C modules and ffi.C can see the Lua API
    linkoptions { "-Wl,-E" }
    common("cairn_host", "bin")

  -- the embedding API tested from C, as a host program uses it (tools/test runs it)
  project "cairn_api_tests"
    kind "ConsoleApp"
    targetname "cairn_api_tests"
    files { "spec/capi/*.c" }
    link_core()
    common("cairn_api_tests", "build/tests")

  -- the game server example (examples/game_server, which also has its own Makefile)
  for _, program in ipairs { "game_server", "replay" } do
    project("example_" .. program)
      kind "ConsoleApp"
      targetname(program)
      files { "examples/game_server/" .. program .. ".c", "examples/game_server/common.c",
              "examples/game_server/common.h" }
      link_core()
      common("example_" .. program, "build/examples")
  end

  -- the core tested from C, without Lua (tools/test runs it, CI also under valgrind)
  project "cairn_c_tests"
    kind "ConsoleApp"
    targetname "cairn_c_tests"
    -- only the Lua-free core files: this also proves they need no Lua
    files { "spec/c/*.c" }
    files(lua_free_core)
    links { "lmdb", "msgpackc", "sodium", "zstd", "pq", "pthread" }
    common("cairn_c_tests", "build/tests")

  -- many threads on one store: group commit, map growth (also built with tsan)
  project "cairn_thread_tests"
    kind "ConsoleApp"
    targetname "cairn_thread_tests"
    files { "spec/threads/*.c" }
    files(lua_free_core)
    links { "lmdb", "msgpackc", "sodium", "zstd", "pq", "pthread" }
    common("cairn_thread_tests", "build/tests")

  -- the PostgreSQL engine against a real server: several writer processes, a
  -- tailing reader, lost connections, restarts (tools/test runs it inside
  -- `tools/pg run`, which gives it CAIRN_TEST_PG)
  project "cairn_pg_tests"
    kind "ConsoleApp"
    targetname "cairn_pg_tests"
    files { "spec/pg/*.c" }
    files(lua_free_core)
    links { "lmdb", "msgpackc", "sodium", "zstd", "pq", "pthread" }
    common("cairn_pg_tests", "build/tests")
