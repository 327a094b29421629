/*
 * fuzz_import.c -- libFuzzer target for `cairn import` (cli_backup.lua and
 * the JSON parser, cairn/json.lua) driven through an embedded LuaJIT state:
 * the input is the JSON-lines file, the store a fresh memory: store. Every
 * input must import or fail with a typed cairn error (ConfigError,
 * SchemaError, ...); a plain Lua error ("attempt to index a nil value") is
 * an unclear failure and aborts.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz_lua.h"

static const char *HARNESS =
    "local tools = require 'cairn.cli_backup'\n"
    "local errors = require 'cairn.errors'\n"
    "io.stderr = assert(io.open('/dev/null', 'w'))\n"
    "return function(path)\n"
    "  local ok, err = pcall(tools.main, 'import', { 'memory:', path })\n"
    "  if ok or errors.is(err) then return true end\n"
    "  return false, tostring(err)\n"
    "end\n";

static char path[64];

static void cleanup(void) { unlink(path); }

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    lua_State *L = fuzz_lua_open();
    if (luaL_loadstring(L, HARNESS) || lua_pcall(L, 0, 1, 0)) {
        fprintf(stderr, "fuzz_import: %s\n", lua_tostring(L, -1));
        abort();
    }
    if (!path[0]) {
        const char *tmp = getenv("TMPDIR");
        snprintf(path, sizeof path, "%s/cairn-fuzz-import-%d", tmp && strlen(tmp) < 30 ? tmp : "/tmp",
                 (int)getpid());
        atexit(cleanup);
    }
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, size, f) != size || fclose(f) != 0) { perror(path); abort(); }
    lua_pushstring(L, path);
    if (lua_pcall(L, 1, 2, 0)) {
        fprintf(stderr, "fuzz_import: the harness failed: %s\n", lua_tostring(L, -1));
        abort();
    }
    if (!lua_toboolean(L, -2)) {
        fprintf(stderr, "fuzz_import: unclear error: %s\n", lua_tostring(L, -1));
        abort();
    }
    lua_close(L);
    return 0;
}
