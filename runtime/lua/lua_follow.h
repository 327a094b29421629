/* lua_follow.h -- waits, signals and copies for followers (lua_follow.c). */
#ifndef CAIRN_LUA_FOLLOW_H
#define CAIRN_LUA_FOLLOW_H

#include <lua.h>

/** Register core.wait, trap_signals, ... into the table at -1 and the store
 *  methods wake_seq and copy (after cairn_lua_store_init). */
void cairn_lua_follow_init(lua_State *L);

#endif
