/* host.c -- see host.h. */
#define _GNU_SOURCE /* dladdr */
#include <dlfcn.h>
#include <lauxlib.h>
#include <limits.h>
#include <lualib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "host.h"

int luaopen_cairn_core(lua_State *L);

static int exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

static int has_framework(const char *dir, const char *sub, char *root, size_t len)
{
    char probe[PATH_MAX + 64];
    snprintf(probe, sizeof probe, "%s%s/lua/cairn/init.lua", dir, sub);
    if (!exists(probe)) return 0;
    snprintf(root, len, "%s%s", dir, sub);
    return 1;
}

/* Does dir or one of its ancestors (up to three levels) hold the framework, as
 * a source/build tree (ROOT/lua/cairn) or an installed prefix (PREFIX/share/cairn)? */
static int search_up(const char *file, char *root, size_t len)
{
    char buf[PATH_MAX];
    if (!realpath(file, buf)) return -1;
    for (int up = 0; up < 4; up++) {
        char *slash = strrchr(buf, '/');
        if (!slash) return -1;
        *slash = '\0';
        if (up == 0) continue; /* the file's own directory */
        if (has_framework(buf, "", root, len) || has_framework(buf, "/share/cairn", root, len)) return 0;
    }
    return -1;
}

int cairn_host_find_root(const char *exe_path, char *root, size_t len)
{
    const char *home = getenv("CAIRN_HOME");
    if (home && *home && has_framework(home, "", root, len)) return 0;
    if (search_up(exe_path ? exe_path : "/proc/self/exe", root, len) == 0) return 0;
    /* the binary that holds this code: libcairn.so, or the program it is linked into */
    Dl_info info;
    if (dladdr((void *)cairn_host_find_root, &info) && info.dli_fname && strchr(info.dli_fname, '/') &&
        search_up(info.dli_fname, root, len) == 0)
        return 0;
#ifdef CAIRN_DATADIR
    if (has_framework(CAIRN_DATADIR, "", root, len)) return 0;
#endif
    return -1;
}

void cairn_host_add_path(lua_State *L, const char *field, const char *extra)
{
    lua_getglobal(L, "package");
    lua_getfield(L, -1, field);
    lua_pushfstring(L, "%s;%s", extra, lua_tostring(L, -1));
    lua_setfield(L, -3, field);
    lua_pop(L, 2);
}

/* cairn_host_new's work, in protection: a failure (out of memory) cannot panic */
static int setup_state(lua_State *L)
{
    const char *exe_path = lua_touserdata(L, 1);
    luaL_openlibs(L);
    char root[PATH_MAX + 64];
    if (cairn_host_find_root(exe_path, root, sizeof root) == 0) {
        lua_pushfstring(L, "%s/lua/?.lua;%s/lua/?/init.lua;%s/stdlib/?.lua;%s/stdlib/?/init.lua",
                        root, root, root, root);
        cairn_host_add_path(L, "path", lua_tostring(L, -1));
        lua_pop(L, 1);
    }
    /* the core is linked into the host; no core.so needed */
    lua_getglobal(L, "package");
    lua_getfield(L, -1, "preload");
    lua_pushcfunction(L, luaopen_cairn_core);
    lua_setfield(L, -2, "cairn.core");
    lua_pop(L, 2);
    return 0;
}

lua_State *cairn_host_new(const char *exe_path)
{
    lua_State *L = luaL_newstate();
    if (!L) return NULL;
    if (lua_cpcall(L, setup_state, (void *)exe_path) != 0) {
        lua_close(L);
        return NULL;
    }
    return L;
}

static int traceback(lua_State *L)
{
    if (!lua_isstring(L, 1) && !lua_isnoneornil(L, 1)) {
        /* error objects (tables) are kept as they are for the caller */
        if (luaL_callmeta(L, 1, "__tostring") && lua_isstring(L, -1)) {
            lua_pop(L, 1);
            return 1;
        }
        return 1;
    }
    luaL_traceback(L, L, lua_tostring(L, 1), 1);
    return 1;
}

int cairn_host_call(lua_State *L, int nargs, int nresults)
{
    int base = lua_gettop(L) - nargs;
    lua_pushcfunction(L, traceback);
    lua_insert(L, base);
    int status = lua_pcall(L, nargs, nresults, base);
    lua_remove(L, base);
    return status;
}

int cairn_host_main(lua_State *L, int argc, char **argv)
{
    lua_getglobal(L, "require");
    lua_pushliteral(L, "cairn.cli");
    if (cairn_host_call(L, 1, 1) != 0) {
        fprintf(stderr, "cairn: cannot load the command line: %s\n", lua_tostring(L, -1));
        return 1;
    }
    lua_getfield(L, -1, "main");
    lua_createtable(L, argc, 0);
    for (int i = 0; i < argc; i++) {
        lua_pushstring(L, argv[i]);
        lua_rawseti(L, -2, i);
    }
    if (cairn_host_call(L, 1, 1) != 0) {
        const char *msg = lua_tostring(L, -1);
        fprintf(stderr, "cairn: %s\n", msg ? msg : "(error object is not a string)");
        return 1;
    }
    int code = lua_isnumber(L, -1) ? (int)lua_tointeger(L, -1) : 0;
    lua_pop(L, 2);
    return code;
}
