/*
 * lua_error.h -- the one place where C failures become Lua error objects
 * (API.md §6): tables { kind = ..., message = ... } sharing one metatable.
 */
#ifndef CAIRN_LUA_ERROR_H
#define CAIRN_LUA_ERROR_H

#include <lua.h>

#define CAIRN_ERROR_MT "cairn.error"

/** The error kind a return code maps to ("ConcurrencyError", "StoreError", ...). */
const char *cairn_error_kind(int rc);

/** Push an error object. */
void cairn_lua_push_error(lua_State *L, const char *kind, const char *message);

/** Raise an error object; never returns. Call only when C holds nothing. */
int cairn_lua_raise(lua_State *L, const char *kind, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/** Raise the error object for rc with message (or cairn_strerror(rc) if empty). */
int cairn_lua_raise_rc(lua_State *L, int rc, const char *message);

/** Create the shared error metatable (called by luaopen_cairn_core). */
void cairn_lua_error_init(lua_State *L);

#endif
