/*
 * lua_error.h -- the one place where C failures become Lua error objects
 * (API.md §6): tables { kind = ..., message = ... } sharing one metatable.
 * The map between return codes and error kinds lives here and nowhere else:
 * C code raises with a code, never with a kind string of its own.
 */
#ifndef CAIRN_LUA_ERROR_H
#define CAIRN_LUA_ERROR_H

#include <lua.h>

#define CAIRN_ERROR_MT "cairn.error"

/** The error kind a return code maps to ("ConcurrencyError", "StoreError", ...). */
const char *cairn_error_kind(int rc);

/** The return code of an error kind (embedding API); CAIRN_LUA for a kind
 *  that is not cairn's. */
int cairn_error_code(const char *kind);

/** Push an error object of a kind (one of the map's kinds). */
void cairn_lua_push_error(lua_State *L, const char *kind, const char *message);

/** Raise the error object for rc, its message built from fmt; never returns.
 *  Call only when C holds nothing (no transaction, lock, buffer or key). */
int cairn_lua_raise(lua_State *L, int rc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/** Push the error object for rc with message (or cairn_strerror(rc) if empty). */
void cairn_lua_push_error_rc(lua_State *L, int rc, const char *message);

/** Raise the error object for rc with message (or cairn_strerror(rc) if empty). */
int cairn_lua_raise_rc(lua_State *L, int rc, const char *message);

/** Create the shared error metatable (called by luaopen_cairn_core). */
void cairn_lua_error_init(lua_State *L);

#endif
