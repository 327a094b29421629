/* lua_http.h -- core.http_get, the binding of http_client.c (lua_http.c). */
#ifndef CAIRN_LUA_HTTP_H
#define CAIRN_LUA_HTTP_H

#include <lua.h>

/** Register core.http_get into the table at -1. */
void cairn_lua_http_init(lua_State *L);

#endif
