/* lua_lock.h -- exclusive lock files for tools that must run alone (lua_lock.c). */
#ifndef CAIRN_LUA_LOCK_H
#define CAIRN_LUA_LOCK_H

#include <lua.h>

/** Add lock_file to the core table on top of the stack. */
void cairn_lua_lock_init(lua_State *L);

#endif
