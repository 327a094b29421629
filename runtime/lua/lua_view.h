/* lua_view.h -- view methods on the store userdata (lua_view.c). */
#ifndef CAIRN_LUA_VIEW_H
#define CAIRN_LUA_VIEW_H

#include <lua.h>

/** Add the view methods to the store metatable (after cairn_lua_store_init). */
void cairn_lua_view_init(lua_State *L);

#endif
