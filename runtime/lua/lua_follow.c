/*
 * lua_follow.c -- what followers need from C: the stores' change counters
 * and a wait on them (store_wake.c), SIGINT/SIGTERM as a stop request
 * (signals.c), dry-run copies, and whether stderr is a terminal.
 */
#include <lauxlib.h>
#include <time.h>

#include "cairn.h"
#include "lua_error.h"
#include "lua_follow.h"
#include "lua_store.h"
#include "signals.h"
#include "store.h"

/* store:wake_seq() -> the change counter, or nil when the store has none (poll) */
static int lwake_seq(lua_State *L)
{
    uint32_t seq;
    if (!cairn_store_wake_seq(cairn_lua_check_store(L, 1), &seq)) return 0;
    lua_pushnumber(L, seq);
    return 1;
}

/* store:copy(target): a compact copy into an empty directory (lmdb:) or a new schema
 * cairn_dry_… of the same database (postgresql://) */
static int lcopy(lua_State *L)
{
    cairn_store *s = cairn_lua_check_store(L, 1);
    int rc = cairn_store_copy(s, luaL_checkstring(L, 2));
    if (rc) return cairn_lua_raise_rc(L, rc, cairn_store_errmsg(s));
    return 0;
}

/* core.drop_copy(uri): drop the PostgreSQL copy (schema cairn_dry_…) a URI names */
static int ldrop_copy(lua_State *L)
{
    char err[512];
    int rc = cairn_store_drop_copy(luaL_checkstring(L, 1), err, sizeof err);
    if (rc) return cairn_lua_raise_rc(L, rc, err);
    return 0;
}

/* core.wait({ store, ... }, { seq, ... }, timeout_s [, poll_s]) -> true, or false if a trapped signal came */
static int lwait(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    luaL_checktype(L, 2, LUA_TTABLE);
    double timeout = luaL_checknumber(L, 3), poll = luaL_optnumber(L, 4, 0.01);
    int n = (int)lua_objlen(L, 1);
    luaL_argcheck(L, n >= 1 && n <= 16, 1, "1 to 16 stores");
    cairn_store *stores[16];
    uint32_t seen[16];
    for (int i = 0; i < n; i++) {
        lua_rawgeti(L, 1, i + 1);
        stores[i] = cairn_lua_check_store(L, -1);
        lua_rawgeti(L, 2, i + 1);
        seen[i] = (uint32_t)lua_tonumber(L, -1);
        lua_pop(L, 2);
    }
    if (timeout < 0) timeout = 0;
    int rc = cairn_store_wait(stores, seen, (size_t)n, timeout, poll > 0 ? poll : 0.01);
    lua_pushboolean(L, rc != CAIRN_INTERRUPTED);
    return 1;
}

static int ltrap_signals(lua_State *L)
{
    (void)L;
    cairn_signals_trap();
    return 0;
}

static int lrestore_signals(lua_State *L)
{
    (void)L;
    cairn_signals_restore();
    return 0;
}

/* core.signal_caught([clear]) -> the signal number caught, or nil */
static int lsignal_caught(lua_State *L)
{
    int sig = cairn_signals_caught();
    if (lua_toboolean(L, 1)) cairn_signals_clear();
    if (!sig) return 0;
    lua_pushinteger(L, sig);
    return 1;
}

static int lsleep(lua_State *L)
{
    double s = luaL_checknumber(L, 1);
    if (s > 0) {
        struct timespec ts = { (time_t)s, (long)((s - (double)(time_t)s) * 1e9) };
        nanosleep(&ts, NULL);
    }
    return 0;
}

void cairn_lua_follow_init(lua_State *L)
{
    static const luaL_Reg methods[] = {
        { "wake_seq", lwake_seq },
        { "copy", lcopy },
        { NULL, NULL },
    };
    static const luaL_Reg fns[] = {
        { "wait", lwait },
        { "trap_signals", ltrap_signals },
        { "restore_signals", lrestore_signals },
        { "signal_caught", lsignal_caught },
        { "sleep", lsleep },
        { "drop_copy", ldrop_copy },
        { NULL, NULL },
    };
    luaL_setfuncs(L, fns, 0);
    cairn_lua_store_methods(L, methods);
}
