/* lua_error.c -- C return codes to typed Lua error objects (see lua_error.h). */
#include <errno.h>
#include <lauxlib.h>
#include <lmdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "cairn.h"
#include "lua_error.h"

const char *cairn_error_kind(int rc)
{
    switch (rc) {
    case CAIRN_CONFLICT: return "ConcurrencyError";
    case CAIRN_NOTFOUND: return "AggregateNotFound";
    case CAIRN_CORRUPT: return "IntegrityError";
    case CAIRN_SCHEMA: return "SchemaError";
    case CAIRN_CONFIG: return "ConfigError";
    default: return "StoreError";
    }
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

int cairn_lua_raise(lua_State *L, const char *kind, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    cairn_lua_push_error(L, kind, msg);
    return lua_error(L);
}

int cairn_lua_raise_rc(lua_State *L, int rc, const char *message)
{
    if (!message || !*message) message = cairn_strerror(rc);
    const char *kind = cairn_error_kind(rc);
    cairn_lua_push_error(L, kind, message);
    if (strcmp(kind, "StoreError") == 0) {
        /* the engine's own code (MDB_MAP_FULL, ENOSPC...), for hosts that embed cairn */
        lua_pushinteger(L, rc);
        lua_setfield(L, -2, "code");
    }
    return lua_error(L);
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
