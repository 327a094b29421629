/*
 * repl.c -- line editing for `cairn repl`: GNU readline with a history file,
 * and Ctrl-C interrupting a running line, as Lua's lua.c does it. Registered
 * by the host as the Lua module "cairn.readline"; not part of libcairn.
 */
#include <lauxlib.h>
#include <readline/history.h>
#include <readline/readline.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include "host.h"

static lua_State *running;

static void interrupted_hook(lua_State *L, lua_Debug *ar)
{
    (void)ar;
    lua_sethook(L, NULL, 0, 0);
    luaL_error(L, "interrupted");
}

static void on_sigint(int sig)
{
    signal(sig, SIG_DFL); /* a second Ctrl-C ends the process */
    if (running) lua_sethook(running, interrupted_hook, LUA_MASKCALL | LUA_MASKRET | LUA_MASKCOUNT, 1);
}

/* readline.readline(prompt) -> line, or nil at end of input */
static int lreadline(lua_State *L)
{
    char *line = readline(luaL_optstring(L, 1, "> "));
    if (!line) return 0;
    lua_pushstring(L, line);
    free(line);
    return 1;
}

static int ladd_history(lua_State *L)
{
    add_history(luaL_checkstring(L, 1));
    return 0;
}

static int lread_history(lua_State *L)
{
    lua_pushboolean(L, read_history(luaL_checkstring(L, 1)) == 0);
    return 1;
}

static int lwrite_history(lua_State *L)
{
    const char *file = luaL_checkstring(L, 1);
    stifle_history(1000);
    lua_pushboolean(L, write_history(file) == 0);
    return 1;
}

/* readline.isatty() -> is standard input a terminal? */
static int lisatty(lua_State *L)
{
    lua_pushboolean(L, isatty(STDIN_FILENO));
    return 1;
}

/* readline.protected_call(fn, ...) -> ok, results... ; Ctrl-C while fn runs raises "interrupted" */
static int lprotected_call(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TFUNCTION);
    int nargs = lua_gettop(L) - 1;
    running = L;
    void (*old)(int) = signal(SIGINT, on_sigint);
    int status = cairn_host_call(L, nargs, LUA_MULTRET);
    signal(SIGINT, old);
    lua_sethook(L, NULL, 0, 0);
    running = NULL;
    lua_pushboolean(L, status == 0);
    lua_insert(L, 1);
    return lua_gettop(L);
}

int luaopen_cairn_readline(lua_State *L)
{
    static const luaL_Reg fns[] = {
        { "readline", lreadline },
        { "add_history", ladd_history },
        { "read_history", lread_history },
        { "write_history", lwrite_history },
        { "protected_call", lprotected_call },
        { "isatty", lisatty },
        { NULL, NULL },
    };
    lua_newtable(L);
    luaL_setfuncs(L, fns, 0);
    return 1;
}
