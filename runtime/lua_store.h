/* lua_store.h -- the store binding (core.open and store methods). */
#ifndef CAIRN_LUA_STORE_H
#define CAIRN_LUA_STORE_H

#include <lua.h>

/** Register the store metatable and core.open into the table at -1. */
void cairn_lua_store_init(lua_State *L);

#endif
