/*
 * fuzz_lua.h -- a fresh Lua state per input for the fuzz targets, with
 * cairn.core loaded and the framework on package.path (CAIRN_ROOT, the
 * repository, is set by tools/fuzz). Closing the state after each input runs
 * every __gc, so whatever the core still holds is freed and LeakSanitizer
 * reports only real leaks. (A malloc-backed Lua allocator would not do:
 * LuaJIT keeps its pointers tagged, which LeakSanitizer cannot follow.)
 */
#ifndef CAIRN_FUZZ_LUA_H
#define CAIRN_FUZZ_LUA_H

#include <lauxlib.h>
#include <lualib.h>
#include <stdio.h>
#include <stdlib.h>

int luaopen_cairn_core(lua_State *L);

static lua_State *fuzz_lua_open(void)
{
    lua_State *L = luaL_newstate();
    if (!L) { fprintf(stderr, "fuzz: cannot make a Lua state\n"); abort(); }
    luaL_openlibs(L);
    lua_getglobal(L, "package");
    lua_pushstring(L, CAIRN_ROOT "/lua/?.lua;" CAIRN_ROOT "/lua/?/init.lua;" CAIRN_ROOT "/stdlib/?.lua;"
                      CAIRN_ROOT "/stdlib/?/init.lua");
    lua_setfield(L, -2, "path");
    lua_getfield(L, -1, "preload");
    lua_pushcfunction(L, luaopen_cairn_core);
    lua_setfield(L, -2, "cairn.core");
    lua_pop(L, 2);
    /* load the core (it registers the metatables the codec uses) */
    lua_getglobal(L, "require");
    lua_pushliteral(L, "cairn.core");
    if (lua_pcall(L, 1, 0, 0)) { fprintf(stderr, "fuzz: %s\n", lua_tostring(L, -1)); abort(); }
    return L;
}

#endif
