/* lua_limits.h -- a memory ceiling for sandboxed calls (lua_limits.c). */
#ifndef CAIRN_LUA_LIMITS_H
#define CAIRN_LUA_LIMITS_H

#include <lua.h>

/** Add memory_limit and memory_refused to the core table on top of the stack. */
void cairn_lua_limits_init(lua_State *L);

#endif
