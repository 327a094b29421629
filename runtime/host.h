/*
 * host.h -- embedding LuaJIT with cairn: a Lua state whose `require "cairn"`
 * finds the framework next to the executable (or installed beside it).
 */
#ifndef CAIRN_HOST_H
#define CAIRN_HOST_H

#include <lua.h>

/**
 * Create a Lua state with the standard libraries, cairn.core preloaded and
 * package.path pointing at the Lua files that belong to the executable at
 * exe_path (NULL: /proc/self/exe). Returns NULL if out of memory.
 */
lua_State *cairn_host_new(const char *exe_path);

/**
 * Call the function at the top of the stack with nargs arguments below it,
 * under a traceback message handler (as lua.c's docall does).
 * @return 0 or a Lua status; on error the message is on the stack.
 */
int cairn_host_call(lua_State *L, int nargs, int nresults);

/** Run `require("cairn.cli").main(argv)`; returns the process exit code. */
int cairn_host_main(lua_State *L, int argc, char **argv);

#endif
