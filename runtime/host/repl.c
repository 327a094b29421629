/*
 * repl.c -- line editing for `cairn repl`: GNU readline (its callback
 * interface, so that Ctrl-C at the prompt clears the line instead of ending
 * the process), tab completion asked of a Lua function, and Ctrl-C
 * interrupting a running line, as Lua's lua.c does it. The history file is
 * kept by lua/cairn/repl.lua (multi-line entries whole). Registered by the
 * host as the Lua module "cairn.readline"; not part of libcairn.
 */
#include <errno.h>
#include <lauxlib.h>
#include <readline/history.h>
#include <readline/readline.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
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

/* --- reading a line --- */

static char *read_line;
static int read_done;
static volatile sig_atomic_t prompt_interrupted;

static void on_line(char *line)
{
    read_line = line;
    read_done = 1;
    rl_callback_handler_remove();
}

static void on_sigint_at_prompt(int sig)
{
    (void)sig;
    prompt_interrupted = 1;
}

/* readline.readline(prompt) -> line; nil at end of input; false when Ctrl-C
 * cleared the line */
static int lreadline(lua_State *L)
{
    const char *prompt = luaL_optstring(L, 1, "> ");
    struct sigaction sa, old;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint_at_prompt; /* no SA_RESTART: select() returns at once */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old);
    read_line = NULL;
    read_done = 0;
    prompt_interrupted = 0;
    int interrupted = 0;
    rl_callback_handler_install(prompt, on_line);
    while (!read_done) {
        int fd = fileno(rl_instream ? rl_instream : stdin);
        fd_set in;
        FD_ZERO(&in);
        FD_SET(fd, &in);
        int n = select(fd + 1, &in, NULL, NULL, NULL);
        if (prompt_interrupted) {
            /* Ctrl-C: show it after the line, forget the line, stay in the REPL */
            rl_point = rl_end;
            rl_redisplay();
            fputs("^C", rl_outstream ? rl_outstream : stdout);
            rl_crlf();
            rl_free_line_state();
            rl_callback_sigcleanup();
            rl_callback_handler_remove();
            interrupted = 1;
            break;
        }
        if (n < 0) {
            if (errno == EINTR) continue;
            rl_callback_handler_remove();
            break;
        }
        rl_callback_read_char();
    }
    sigaction(SIGINT, &old, NULL);
    if (interrupted) {
        lua_pushboolean(L, 0);
        return 1;
    }
    if (!read_line) return 0;
    lua_pushstring(L, read_line);
    free(read_line);
    return 1;
}

/* --- completion --- */

static lua_State *completer_state;
static int completer_ref = LUA_NOREF;
static char **candidates;
static size_t ncandidates, next_candidate;

static void free_candidates(void)
{
    for (size_t i = next_candidate; i < ncandidates; i++) free(candidates[i]);
    free(candidates);
    candidates = NULL;
    ncandidates = next_candidate = 0;
}

/* Ask the Lua completer (word, line before the word) for the candidates. */
static void gather(const char *text, int start)
{
    lua_State *L = completer_state;
    free_candidates();
    if (!L || completer_ref == LUA_NOREF) return;
    int top = lua_gettop(L);
    lua_rawgeti(L, LUA_REGISTRYINDEX, completer_ref);
    lua_pushstring(L, text);
    lua_pushlstring(L, rl_line_buffer, (size_t)start);
    if (lua_pcall(L, 2, 1, 0) == 0 && lua_istable(L, -1)) {
        size_t n = lua_objlen(L, -1);
        candidates = calloc(n ? n : 1, sizeof *candidates);
        for (size_t i = 0; candidates && i < n; i++) {
            lua_rawgeti(L, -1, (int)i + 1);
            const char *s = lua_tostring(L, -1);
            if (s && (candidates[ncandidates] = strdup(s)) != NULL) ncandidates++;
            lua_pop(L, 1);
        }
    }
    lua_settop(L, top);
}

static char *generator(const char *text, int state)
{
    (void)text;
    (void)state;
    if (next_candidate < ncandidates) return candidates[next_candidate++];
    return NULL;
}

static char **attempt_completion(const char *text, int start, int end)
{
    (void)end;
    rl_attempted_completion_over = 1; /* never file names */
    rl_completion_append_character = '\0';
    gather(text, start);
    return rl_completion_matches(text, generator);
}

/* readline.set_completer(fn): fn(word, line_before) -> { candidate, ... } */
static int lset_completer(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TFUNCTION);
    if (completer_ref != LUA_NOREF) luaL_unref(L, LUA_REGISTRYINDEX, completer_ref);
    lua_pushvalue(L, 1);
    completer_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    completer_state = L;
    /* '.' and ':' stay inside the word, so "app.repository:g" completes whole */
    rl_basic_word_break_characters = " \t\n\"'`@$><=;|&{([,+-*/%^~#";
    rl_attempted_completion_function = attempt_completion;
    return 0;
}

static int ladd_history(lua_State *L)
{
    add_history(luaL_checkstring(L, 1));
    return 0;
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
        { "set_completer", lset_completer },
        { "protected_call", lprotected_call },
        { "isatty", lisatty },
        { NULL, NULL },
    };
    rl_catch_signals = 0; /* SIGINT at the prompt is handled above */
    lua_newtable(L);
    luaL_setfuncs(L, fns, 0);
    return 1;
}
