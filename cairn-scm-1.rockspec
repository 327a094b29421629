-- cairn as a LuaRocks rock: the C core as the module `cairn.core` and the
-- Lua framework and standard library as `cairn`, `cairn.*`.
--
-- From a checkout, build and install it with LuaJIT's headers:
--   luarocks make LUA_INCDIR=/usr/include/luajit-2.1 [--tree TREE]
-- cairn's C code uses LuaJIT 2.1's API (luaL_setfuncs & co.) and is loaded
-- into a LuaJIT process. Debian's luarocks is configured for Lua 5.1, whose
-- headers (LUA_INCDIR=/usr/include/lua5.1) lack those functions, hence the
-- variable; a luarocks configured for LuaJIT needs no flags.
-- `luarocks make` builds in the checkout: it leaves runtime/*/*.o and
-- cairn/core.so there (both git-ignored).
rockspec_format = "3.0"
package = "cairn"
version = "scm-1"

-- No published repository yet: the rock is built from a checkout with
-- `luarocks make`, which does not fetch this. Set the real URL (and a
-- description.license, which `luarocks lint` asks for) when there is one.
source = {
  url = "git+file://.",
}

description = {
  summary = "Event sourcing for LuaJIT, in C, on LMDB",
  detailed = [[
    Aggregates whose command methods trigger events, applications with a
    repository and a gap-free notification log, optimistic concurrency,
    projections into materialised views and process applications, stored in
    LMDB with msgpack, libsodium encryption and zstd compression. Modelled on
    the Python eventsourcing library.
  ]],
}

dependencies = {
  "lua >= 5.1, < 5.2", -- LuaJIT 2.1 (the C module is built against its headers)
}

external_dependencies = {
  LMDB = { header = "lmdb.h", library = "lmdb" },
  MSGPACK = { header = "msgpack.h", library = "msgpackc" },
  SODIUM = { header = "sodium.h", library = "sodium" },
  ZSTD = { header = "zstd.h", library = "zstd" },
  -- libpq (Debian libpq-dev) keeps its headers in include/postgresql/
  PQ = { header = "postgresql/libpq-fe.h", library = "pq" },
}

-- The C core: every runtime/*/*.c except the executable's own host/main.c,
-- host/repl.c and host/secret_env.c (as premake5.lua's cairn_lua_module). Add new runtime files here.
local core_sources = {
  "runtime/host/embed.c",
  "runtime/host/host.c",
  "runtime/lua/lua_codec.c",
  "runtime/lua/lua_core.c",
  "runtime/lua/lua_dcb.c",
  "runtime/lua/lua_error.c",
  "runtime/lua/lua_event.c",
  "runtime/lua/lua_follow.c",
  "runtime/lua/lua_gather.c",
  "runtime/lua/lua_http.c",
  "runtime/lua/lua_limits.c",
  "runtime/lua/lua_lock.c",
  "runtime/lua/lua_page.c",
  "runtime/lua/lua_replay.c",
  "runtime/lua/lua_store.c",
  "runtime/lua/lua_view.c",
  "runtime/net/http_client.c",
  "runtime/store/blake2b_x4.c",
  "runtime/store/compress.c",
  "runtime/store/crypto.c",
  "runtime/store/error.c",
  "runtime/store/lmdb_append.c",
  "runtime/store/lmdb_dcb.c",
  "runtime/store/lmdb_engine.c",
  "runtime/store/lmdb_env.c",
  "runtime/store/lmdb_error.c",
  "runtime/store/lmdb_fault.c",
  "runtime/store/lmdb_keys.c",
  "runtime/store/lmdb_map.c",
  "runtime/store/lmdb_read.c",
  "runtime/store/lmdb_stat.c",
  "runtime/store/lmdb_txn.c",
  "runtime/store/lmdb_verify.c",
  "runtime/store/lmdb_views.c",
  "runtime/store/mapper_append.c",
  "runtime/store/mapper_keys.c",
  "runtime/store/mapper_read.c",
  "runtime/store/mapper_seal.c",
  "runtime/store/mapper_snapmemo.c",
  "runtime/store/mapper_verify.c",
  "runtime/store/mapper_views.c",
  "runtime/store/pg_append.c",
  "runtime/store/pg_conn.c",
  "runtime/store/pg_copy.c",
  "runtime/store/pg_dcb.c",
  "runtime/store/pg_engine.c",
  "runtime/store/pg_keys.c",
  "runtime/store/pg_list.c",
  "runtime/store/pg_read.c",
  "runtime/store/pg_sql.c",
  "runtime/store/pg_views.c",
  "runtime/store/pg_walk.c",
  "runtime/store/pg_wake.c",
  "runtime/store/record.c",
  "runtime/store/signals.c",
  "runtime/store/store.c",
  "runtime/store/string_id.c",
  "runtime/store/uuid.c",
  "runtime/store/wake.c",

}

-- The Lua modules: lua/cairn/*.lua (init.lua is `cairn`) and stdlib/cairn/*.lua.
local lua_modules = {
  "aggregate", "application", "cli", "cli_keys", "cli_run", "cli_system", "config", "embed", "errors",
  "event", "follow", "guard", "log_json", "log_page", "notification_log", "process", "progress", "projection",
  "recorder", "reload", "remote_log", "repl",
  "repository", "runner", "sandbox", "snapshot_store", "store_tools", "system", "view",
}
local stdlib_modules = { "inspect", "json", "schema", "time", "uuid" }

local modules = {
  cairn = "lua/cairn/init.lua",
  ["cairn.core"] = {
    sources = core_sources,
    incdirs = { "runtime/store", "runtime/net", "runtime/lua", "runtime/host", "runtime/include", "$(LMDB_INCDIR)", "$(MSGPACK_INCDIR)", "$(SODIUM_INCDIR)",
                "$(ZSTD_INCDIR)", "$(PQ_INCDIR)/postgresql" },
    libdirs = { "$(LMDB_LIBDIR)", "$(MSGPACK_LIBDIR)", "$(SODIUM_LIBDIR)", "$(ZSTD_LIBDIR)", "$(PQ_LIBDIR)" },
    libraries = { "lmdb", "msgpackc", "sodium", "zstd", "pq", "m" },
  },
}
-- (a rockspec runs in an empty environment: no ipairs)
for i = 1, #lua_modules do modules["cairn." .. lua_modules[i]] = "lua/cairn/" .. lua_modules[i] .. ".lua" end
for i = 1, #stdlib_modules do
  modules["cairn." .. stdlib_modules[i]] = "stdlib/cairn/" .. stdlib_modules[i] .. ".lua"
end

build = {
  type = "builtin",
  modules = modules,
}
