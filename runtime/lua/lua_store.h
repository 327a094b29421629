/* lua_store.h -- the store binding (core.open and store methods). */
#ifndef CAIRN_LUA_STORE_H
#define CAIRN_LUA_STORE_H

#include <lauxlib.h>
#include <lua.h>

/** Register the store metatable, core.open, core.RECORD_STRIDE and core.RECORD_FORMAT into the table at -1. */
void cairn_lua_store_init(lua_State *L);

/** The open store at idx (raises a StoreError if it is closed). */
typedef struct cairn_store cairn_store;
cairn_store *cairn_lua_check_store(lua_State *L, int idx);

/** A new gather userdata (pushed) for a read of the store at idx, reusing
 *  the memory of its last read; hand it back with cairn_lua_store_gathered. */
typedef struct cairn_gather cairn_gather;
cairn_gather *cairn_lua_store_gather(lua_State *L, int idx);
void cairn_lua_store_gathered(lua_State *L, int idx, cairn_gather *g);

/** Raise the error object for rc with the store's message. */
int cairn_lua_raise_store(lua_State *L, cairn_store *s, int rc);

/** The tracking position given as (app, id) at idx, idx + 1, in *t; NULL if
 *  there is none (nil at idx). Raises on bad arguments. */
typedef struct cairn_tracking cairn_tracking;
cairn_tracking *cairn_lua_opt_tracking(lua_State *L, int idx, cairn_tracking *t);

/** The name of the store metatable, for bindings that add methods. */
#define CAIRN_STORE_MT "cairn.store"

/** Add methods (a NULL-terminated list) to the store's (registered) metatable. */
void cairn_lua_store_methods(lua_State *L, const luaL_Reg *methods);

#endif
