/* lua_error.c -- C return codes to typed Lua error objects (see lua_error.h). */
#include <errno.h>
#include <lauxlib.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "cairn.h"
#include "lua_error.h"

/* The one code <-> kind map. Codes not listed (LMDB's, the system's) are
 * StoreErrors that keep their code for hosts that embed cairn. */
static const struct {
    int rc;
    const char *kind;
} kinds[] = {
    { CAIRN_CONFLICT, "ConcurrencyError" },
    { CAIRN_NOTFOUND, "AggregateNotFound" },
    { CAIRN_CORRUPT, "IntegrityError" },
    { CAIRN_SCHEMA, "SchemaError" },
    { CAIRN_CONFIG, "ConfigError" },
    { ETIMEDOUT, "TimeoutError" },
    { CAIRN_SANDBOX, "SandboxError" },
    { CAIRN_STORE, "StoreError" },
};
#define NKINDS (sizeof kinds / sizeof kinds[0])

const char *cairn_error_kind(int rc)
{
    for (size_t i = 0; i < NKINDS; i++)
        if (kinds[i].rc == rc) return kinds[i].kind;
    return "StoreError";
}

int cairn_error_code(const char *kind)
{
    for (size_t i = 0; i < NKINDS; i++)
        if (strcmp(kinds[i].kind, kind) == 0) return kinds[i].rc;
    return CAIRN_LUA;
}

void cairn_lua_push_error(lua_State *L, const char *kind, const char *message)
{
    lua_createtable(L, 0, 2);
    lua_pushstring(L, kind);
    lua_setfield(L, -2, "kind");
    lua_pushstring(L, message);
    lua_setfield(L, -2, "message");
    luaL_getmetatable(L, CAIRN_ERROR_MT);
    lua_setmetatable(L, -2);
}

void cairn_lua_push_error_rc(lua_State *L, int rc, const char *message)
{
    if (!message || !*message) message = cairn_strerror(rc);
    const char *kind = cairn_error_kind(rc);
    cairn_lua_push_error(L, kind, message);
    if (cairn_error_code(kind) == CAIRN_STORE) {
        /* the engine's own code (MDB_MAP_FULL, ENOSPC...), for hosts that embed cairn */
        lua_pushinteger(L, rc);
        lua_setfield(L, -2, "code");
    }
}

int cairn_lua_raise_rc(lua_State *L, int rc, const char *message)
{
    cairn_lua_push_error_rc(L, rc, message);
    return lua_error(L);
}

int cairn_lua_raise(lua_State *L, int rc, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return cairn_lua_raise_rc(L, rc, msg);
}

static int error_tostring(lua_State *L)
{
    lua_getfield(L, 1, "kind");
    lua_getfield(L, 1, "message");
    lua_pushfstring(L, "%s: %s", luaL_optstring(L, -2, "Error"), luaL_optstring(L, -1, "?"));
    return 1;
}

void cairn_lua_error_init(lua_State *L)
{
    if (luaL_newmetatable(L, CAIRN_ERROR_MT)) {
        lua_pushcfunction(L, error_tostring);
        lua_setfield(L, -2, "__tostring");
    }
    lua_pop(L, 1);
}
