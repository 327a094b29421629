/*
 * host.h -- embedding LuaJIT with cairn: a Lua state whose `require "cairn"`
 * finds the framework next to the executable (or installed beside it).
 */
#ifndef CAIRN_HOST_H
#define CAIRN_HOST_H

#include <lua.h>
#include <stddef.h>

/**
 * Decide where cairn's Lua files are: the directory ROOT that holds
 * ROOT/lua/cairn/init.lua (and ROOT/stdlib). The one place that decides it;
 * candidates, first found wins:
 *  1. $CAIRN_HOME;
 *  2. the executable (exe_path, or /proc/self/exe when NULL): its parent
 *     directories up to three levels, each as a tree (DIR/lua/cairn) or as an
 *     installed prefix (DIR/share/cairn) -- bin/cairn, build/tests/x,
 *     build/sanitize/bin/cairn, PREFIX/bin/cairn;
 *  3. the same search from the binary that holds this code (dladdr): finds
 *     PREFIX/share/cairn from PREFIX/lib/libcairn.so (or lib/<triplet>/);
 *  4. CAIRN_DATADIR, when the build defines it (-DCAIRN_DATADIR=\"PREFIX/share/cairn\").
 * @param[out] root receives the directory
 * @return 0, or -1 if none was found (root untouched)
 */
int cairn_host_find_root(const char *exe_path, char *root, size_t len);

/** Prepend extra (';'-separated entries) to package[field] ("path" or "cpath"). */
void cairn_host_add_path(lua_State *L, const char *field, const char *extra);

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
