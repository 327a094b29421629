/* main.c -- argv -> host -> exit code, nothing else. */
#include <lauxlib.h>
#include <stdio.h>

#include "host.h"
#include "secret_env.h"

int luaopen_cairn_readline(lua_State *L);

int main(int argc, char **argv)
{
    if (cairn_secret_env_hide() < 0) {
        fprintf(stderr, "cairn: cannot keep the cipher keys of the environment in locked memory\n");
        return 1;
    }
    lua_State *L = cairn_host_new(NULL);
    if (!L) {
        fprintf(stderr, "cairn: cannot create a Lua state (out of memory)\n");
        return 1;
    }
    cairn_secret_env_install(L);
    lua_getglobal(L, "package");
    lua_getfield(L, -1, "preload");
    lua_pushcfunction(L, luaopen_cairn_readline);
    lua_setfield(L, -2, "cairn.readline");
    lua_pop(L, 2);
    int code = cairn_host_main(L, argc, argv);
    lua_close(L);
    return code;
}
