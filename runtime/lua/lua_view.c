/*
 * lua_view.c -- the view methods of a store (store:view_get, view_write,
 * view_scan, view_tracking_max). Values arrive and leave as msgpack: the
 * framework (lua/cairn/view.lua) encodes them with core.encode, so a value a
 * view cannot hold fails before anything is written.
 */
#include <errno.h>
#include <lauxlib.h>
#include <stdio.h>
#include <string.h>

#include "cairn.h"
#include "lua_codec.h"
#include "lua_error.h"
#include "lua_gather.h"
#include "lua_store.h"
#include "lua_view.h"
#include "store.h"

static cairn_slice check_slice(lua_State *L, int idx)
{
    cairn_slice sl;
    sl.ptr = luaL_checklstring(L, idx, &sl.len);
    return sl;
}

/* Push a gathered view value, decoded (the read has ended). */
static void push_value(lua_State *L, cairn_slice view, const cairn_gather *g, const cairn_gathered *r)
{
    if (cairn_codec_decode(L, (const uint8_t *)cairn_gather_bytes(g, r->payload), r->payload_len) != CAIRN_OK) {
        const char *key = cairn_gather_bytes(g, r->topic);
        cairn_lua_raise(L, CAIRN_CORRUPT, "view %.*s: the value of key '%.*s' is malformed", (int)view.len,
                        view.ptr, (int)(r->topic_len > 64 ? 64 : r->topic_len), key);
    }
}

/* store:view_get(view, key) -> value or nil */
static int lview_get(lua_State *L)
{
    cairn_store *s = cairn_lua_check_store(L, 1);
    cairn_slice view = check_slice(L, 2), key = check_slice(L, 3), v;
    cairn_gather *g = cairn_lua_store_gather(L, 1);
    int found;
    int rc = cairn_view_get(s, view, key, &v, &found);
    if (rc == CAIRN_OK && found && cairn_gather_entry(g, key.ptr, key.len, v.ptr, v.len) != CAIRN_OK) rc = ENOMEM;
    char msg[512];
    snprintf(msg, sizeof msg, "%s", rc == ENOMEM ? "out of memory reading a view" : cairn_store_errmsg(s));
    cairn_store_read_end(s);
    if (rc) return cairn_lua_raise_rc(L, rc, msg);
    if (!found) { cairn_lua_store_gathered(L, 1, g); lua_pushnil(L); return 1; }
    push_value(L, view, g, &g->recs[0]);
    cairn_lua_store_gathered(L, 1, g);
    return 1;
}

/* store:view_write(view, { key, msgpack|false, ... } [, app, id [, first]]): false deletes;
 * first: the batch's first notification id (refused if app's position is at or above it) */
static int lview_write(lua_State *L)
{
    cairn_store *s = cairn_lua_check_store(L, 1);
    cairn_slice view = check_slice(L, 2);
    luaL_checktype(L, 3, LUA_TTABLE);
    cairn_tracking t, *tp = cairn_lua_opt_tracking(L, 4, &t);
    if (tp && !lua_isnoneornil(L, 6)) {
        lua_Number first = luaL_checknumber(L, 6);
        t.first = first < 1 ? 0 : (uint64_t)first;
    }
    size_t len = lua_objlen(L, 3);
    if (len % 2) return cairn_lua_raise(L, CAIRN_SCHEMA, "view_write: ops must come in key, value pairs");
    size_t n = len / 2;
    /* a userdata, so the array is collected even if a check below raises */
    cairn_view_op *ops = lua_newuserdata(L, (n ? n : 1) * sizeof *ops);
    for (size_t i = 0; i < n; i++) {
        lua_rawgeti(L, 3, (int)(2 * i + 1));
        lua_rawgeti(L, 3, (int)(2 * i + 2));
        memset(&ops[i], 0, sizeof ops[i]);
        if (lua_type(L, -2) != LUA_TSTRING) return cairn_lua_raise(L, CAIRN_SCHEMA, "view_write: keys must be strings");
        ops[i].key.ptr = lua_tolstring(L, -2, &ops[i].key.len);
        if (lua_type(L, -1) == LUA_TSTRING) ops[i].value.ptr = lua_tolstring(L, -1, &ops[i].value.len);
        else ops[i].del = 1;
        lua_pop(L, 2); /* the strings stay alive in the ops table */
    }
    int rc = cairn_view_write(s, view, ops, n, tp);
    if (rc) return cairn_lua_raise_store(L, s, rc);
    return 0;
}

/* store:view_scan(view, prefix [, after, limit]) -> { key, value, key, value, ... } */
static int lview_scan(lua_State *L)
{
    cairn_store *s = cairn_lua_check_store(L, 1);
    cairn_view_scan q;
    memset(&q, 0, sizeof q);
    q.view = check_slice(L, 2);
    q.prefix = check_slice(L, 3);
    if (!lua_isnoneornil(L, 4)) q.after = check_slice(L, 4);
    lua_Integer limit = luaL_optinteger(L, 5, 1000);
    luaL_argcheck(L, limit >= 0, 5, "limit >= 0 expected");
    lua_settop(L, 5);
    cairn_gather *g = cairn_lua_store_gather(L, 1);
    int rc = cairn_view_scan_start(s, &q);
    cairn_slice k, v;
    while (rc == CAIRN_OK && g->n < (size_t)limit && (rc = cairn_view_scan_next(s, &q, &k, &v)) == CAIRN_OK)
        if (cairn_gather_entry(g, k.ptr, k.len, v.ptr, v.len) != CAIRN_OK) rc = ENOMEM;
    char msg[512];
    snprintf(msg, sizeof msg, "%s", rc == ENOMEM ? "out of memory scanning a view" : cairn_store_errmsg(s));
    cairn_store_read_end(s);
    if (rc != CAIRN_OK && rc != CAIRN_END) return cairn_lua_raise_rc(L, rc, msg);
    lua_createtable(L, (int)(2 * g->n), 0);
    for (size_t i = 0; i < g->n; i++) {
        const cairn_gathered *r = &g->recs[i];
        lua_pushlstring(L, cairn_gather_bytes(g, r->topic), r->topic_len);
        lua_rawseti(L, -2, (int)(2 * i + 1));
        push_value(L, q.view, g, r);
        lua_rawseti(L, -2, (int)(2 * i + 2));
    }
    cairn_lua_store_gathered(L, 1, g);
    return 1;
}

/* store:view_tracking_max(view, app) -> id (0: nothing processed) */
static int lview_tracking_max(lua_State *L)
{
    cairn_store *s = cairn_lua_check_store(L, 1);
    uint64_t id;
    int rc = cairn_view_tracking_max(s, check_slice(L, 2), check_slice(L, 3), &id);
    if (rc) return cairn_lua_raise_store(L, s, rc);
    lua_pushnumber(L, (lua_Number)id);
    return 1;
}

/* store:view_clear(view): delete the view's keys and tracking positions in one transaction */
static int lview_clear(lua_State *L)
{
    cairn_store *s = cairn_lua_check_store(L, 1);
    int rc = cairn_view_clear(s, check_slice(L, 2));
    if (rc) return cairn_lua_raise_store(L, s, rc);
    return 0;
}

static int gather_name(void *ctx, cairn_slice view)
{
    return cairn_gather_entry(ctx, view.ptr, view.len, "", 0);
}

/* store:view_names([after [, limit]]) -> { name, ... }: the views holding keys, in name order */
static int lview_names(lua_State *L)
{
    cairn_store *s = cairn_lua_check_store(L, 1);
    cairn_slice after = { NULL, 0 };
    if (!lua_isnoneornil(L, 2)) after = check_slice(L, 2);
    lua_Integer limit = luaL_optinteger(L, 3, 1000);
    luaL_argcheck(L, limit >= 0, 3, "limit >= 0 expected");
    lua_settop(L, 3);
    cairn_gather *g = cairn_lua_store_gather(L, 1);
    int rc = cairn_view_names(s, after, (size_t)limit, gather_name, g);
    char msg[512];
    snprintf(msg, sizeof msg, "%s", rc == ENOMEM ? "out of memory listing views" : cairn_store_errmsg(s));
    if (rc) return cairn_lua_raise_rc(L, rc, msg);
    lua_createtable(L, (int)g->n, 0);
    for (size_t i = 0; i < g->n; i++) {
        lua_pushlstring(L, cairn_gather_bytes(g, g->recs[i].topic), g->recs[i].topic_len);
        lua_rawseti(L, -2, (int)i + 1);
    }
    cairn_lua_store_gathered(L, 1, g);
    return 1;
}

void cairn_lua_view_init(lua_State *L)
{
    static const luaL_Reg methods[] = {
        { "view_get", lview_get },
        { "view_write", lview_write },
        { "view_scan", lview_scan },
        { "view_tracking_max", lview_tracking_max },
        { "view_names", lview_names },
        { "view_clear", lview_clear },
        { NULL, NULL },
    };
    cairn_lua_store_methods(L, methods);
}
