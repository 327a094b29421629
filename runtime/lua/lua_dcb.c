/*
 * lua_dcb.c -- DCB queries and idempotency keys in the store binding:
 * store:dcb_read(query, after, limit), store:once_get(key), and what
 * store:append takes besides its records (cairn_lua_batch_extras). The
 * framework (lua/cairn/events.lua, lua/cairn/application.lua) checks the
 * shapes first and names what is wrong; these checks are the last guard.
 */
#include <lauxlib.h>
#include <stdlib.h>
#include <string.h>

#include "cairn.h"
#include "lua_dcb.h"
#include "lua_error.h"
#include "lua_store.h"
#include "store.h"

/* The strings of the array at idx into out (they stay alive in the array). */
static size_t read_names(lua_State *L, int idx, cairn_slice *out, const char *what)
{
    size_t n = lua_objlen(L, idx);
    for (size_t i = 0; i < n; i++) {
        lua_rawgeti(L, idx, (int)i + 1);
        if (lua_type(L, -1) != LUA_TSTRING) cairn_lua_raise(L, CAIRN_SCHEMA, "a DCB %s must be a string", what);
        if (out) out[i].ptr = lua_tolstring(L, -1, &out[i].len);
        lua_pop(L, 1);
    }
    return n;
}

/* The length of t[field] when it is a table (0 when nil). */
static size_t field_len(lua_State *L, int t, const char *field, const char *what)
{
    lua_getfield(L, t, field);
    size_t n = 0;
    if (lua_type(L, -1) == LUA_TTABLE) n = lua_objlen(L, -1);
    else if (!lua_isnil(L, -1)) cairn_lua_raise(L, CAIRN_SCHEMA, "a DCB %s must be an array of strings", what);
    lua_pop(L, 1);
    return n;
}

/* The names of t[field] into out; returns how many. */
static size_t field_names(lua_State *L, int t, const char *field, cairn_slice *out, const char *what)
{
    lua_getfield(L, t, field);
    size_t n = lua_istable(L, -1) ? read_names(L, lua_gettop(L), out, what) : 0;
    lua_pop(L, 1);
    return n;
}

/* The query (an array of items) at idx into q; its arrays are a userdata pushed on the stack. */
static void read_query(lua_State *L, int idx, uint64_t after, cairn_dcb_query *q)
{
    if (lua_type(L, idx) != LUA_TTABLE) cairn_lua_raise(L, CAIRN_SCHEMA, "a DCB query must be an array of items");
    size_t n = lua_objlen(L, idx), names = 0;
    for (size_t i = 0; i < n; i++) {
        lua_rawgeti(L, idx, (int)i + 1);
        if (!lua_istable(L, -1)) cairn_lua_raise(L, CAIRN_SCHEMA, "a DCB query item must be a table");
        names += field_len(L, lua_gettop(L), "types", "type") + field_len(L, lua_gettop(L), "tags", "tag");
        lua_pop(L, 1);
    }
    size_t bytes = n * sizeof(cairn_dcb_item) + names * sizeof(cairn_slice);
    char *mem = lua_newuserdata(L, bytes ? bytes : 1);
    cairn_dcb_item *items = (cairn_dcb_item *)mem;
    cairn_slice *slices = (cairn_slice *)(mem + n * sizeof(cairn_dcb_item));
    for (size_t i = 0; i < n; i++) {
        lua_rawgeti(L, idx, (int)i + 1);
        int t = lua_gettop(L);
        items[i].types = slices;
        items[i].ntypes = field_names(L, t, "types", slices, "type");
        slices += items[i].ntypes;
        items[i].tags = slices;
        items[i].ntags = field_names(L, t, "tags", slices, "tag");
        slices += items[i].ntags;
        lua_pop(L, 1);
    }
    q->items = items;
    q->nitems = n;
    q->after = after;
}

static uint64_t check_position(lua_State *L, int idx, const char *what)
{
    lua_Number v = luaL_optnumber(L, idx, 0);
    if (!(v >= 0 && v < 9007199254740992.0) || v != (lua_Number)(uint64_t)v)
        cairn_lua_raise(L, CAIRN_SCHEMA, "%s must be a whole number >= 0", what);
    return (uint64_t)v;
}

/* The DCB events listed at idx ({ event =, type =, tags = } each); pushes their arrays. */
static size_t read_events(lua_State *L, int idx, size_t nrecords, const cairn_dcb_event **out)
{
    size_t n = lua_objlen(L, idx), names = 0;
    for (size_t i = 0; i < n; i++) {
        lua_rawgeti(L, idx, (int)i + 1);
        if (!lua_istable(L, -1)) cairn_lua_raise(L, CAIRN_SCHEMA, "a DCB event entry must be a table");
        names += field_len(L, lua_gettop(L), "tags", "tag");
        lua_pop(L, 1);
    }
    char *mem = lua_newuserdata(L, n * sizeof(cairn_dcb_event) + names * sizeof(cairn_slice) + 1);
    cairn_dcb_event *events = (cairn_dcb_event *)mem;
    cairn_slice *slices = (cairn_slice *)(mem + n * sizeof(cairn_dcb_event));
    for (size_t i = 0; i < n; i++) {
        lua_rawgeti(L, idx, (int)i + 1);
        int t = lua_gettop(L);
        lua_getfield(L, t, "event");
        lua_Number at = lua_tonumber(L, -1);
        if (!(at >= 1 && at <= (lua_Number)nrecords) || at != (lua_Number)(size_t)at)
            cairn_lua_raise(L, CAIRN_SCHEMA, "DCB event %d names no event of the batch", (int)i + 1);
        events[i].event = (size_t)at - 1;
        lua_getfield(L, t, "type");
        if (lua_type(L, -1) != LUA_TSTRING) cairn_lua_raise(L, CAIRN_SCHEMA, "a DCB type must be a string");
        events[i].type.ptr = lua_tolstring(L, -1, &events[i].type.len);
        lua_pop(L, 2);
        events[i].tags = slices;
        events[i].ntags = field_names(L, t, "tags", slices, "tag");
        slices += events[i].ntags;
        lua_pop(L, 1);
    }
    *out = events;
    return n;
}

void cairn_lua_batch_extras(lua_State *L, int idx, cairn_batch *b, cairn_dcb_query *fail_if)
{
    if (lua_isnoneornil(L, idx)) return;
    luaL_checktype(L, idx, LUA_TTABLE);
    lua_getfield(L, idx, "once");
    if (!lua_isnil(L, -1)) {
        if (lua_type(L, -1) != LUA_TSTRING) cairn_lua_raise(L, CAIRN_SCHEMA, "an idempotency key must be a string");
        b->once.ptr = lua_tolstring(L, -1, &b->once.len);
    }
    lua_getfield(L, idx, "dcb");
    if (lua_istable(L, -1)) b->ndcb = read_events(L, lua_gettop(L), b->n, &b->dcb);
    lua_getfield(L, idx, "after");
    uint64_t after = check_position(L, lua_gettop(L), "after");
    lua_getfield(L, idx, "fail_if");
    if (!lua_isnil(L, -1)) {
        read_query(L, lua_gettop(L), after, fail_if);
        b->fail_if = fail_if;
    }
    /* what was pushed stays on the stack until the append returns */
}

typedef struct {
    lua_State *L;
    int list;
    int n;
} collect_ctx;

static int collect(void *ctxp, uint64_t id)
{
    collect_ctx *c = ctxp;
    lua_pushnumber(c->L, (lua_Number)id);
    lua_rawseti(c->L, c->list, ++c->n);
    return 0;
}

/* Sort ids[0..n) by merging the ascending runs they come in (each walk of
 * the index gives its postings in id order, so a query of k lists is k runs):
 * linear for the usual few runs; tmp holds n ids. */
static void sort_runs(uint64_t *ids, uint64_t *tmp, size_t n)
{
    for (;;) {
        size_t runs = 0, out = 0;
        for (size_t a = 0; a < n;) {
            size_t b = a + 1;
            while (b < n && ids[b - 1] <= ids[b]) b++;
            size_t c = b < n ? b + 1 : b;
            while (c < n && ids[c - 1] <= ids[c]) c++;
            size_t i = a, j = b;
            while (i < b && j < c) tmp[out++] = ids[i] <= ids[j] ? ids[i++] : ids[j++];
            while (i < b) tmp[out++] = ids[i++];
            while (j < c) tmp[out++] = ids[j++];
            runs++;
            a = c;
        }
        memcpy(ids, tmp, n * sizeof *ids);
        if (runs <= 1) return;
    }
}

/* store:dcb_read(query, after, limit) -> positions (ascending, unique, at most limit), the log's last id
 * (every item gives at most limit positions, so the union's first limit are all there) */
static int ldcb_read(lua_State *L)
{
    cairn_store *s = cairn_lua_check_store(L, 1);
    uint64_t after = check_position(L, 3, "after");
    uint64_t limit = check_position(L, 4, "limit");
    cairn_dcb_query q;
    read_query(L, 2, after, &q);
    lua_newtable(L);
    collect_ctx c = { L, lua_gettop(L), 0 };
    uint64_t last = 0;
    /* the callback only sets numbers in a table: nothing in it raises but an
     * out-of-memory, which Lua cannot recover from anyway */
    int rc = cairn_store_dcb_read(s, &q, limit, collect, &c, &last);
    if (rc) return cairn_lua_raise_store(L, s, rc);
    if (q.nitems > 1 && c.n > 1) {
        /* several items: in order, without repeats, at most limit */
        uint64_t *ids = lua_newuserdata(L, 2 * (size_t)c.n * sizeof *ids);
        for (int i = 0; i < c.n; i++) {
            lua_rawgeti(L, c.list, i + 1);
            ids[i] = (uint64_t)lua_tonumber(L, -1);
            lua_pop(L, 1);
        }
        sort_runs(ids, ids + c.n, (size_t)c.n);
        int w = 0;
        for (int i = 0; i < c.n && !(limit && (uint64_t)w == limit); i++) {
            if (i > 0 && ids[i] == ids[i - 1]) continue;
            lua_pushnumber(L, (lua_Number)ids[i]);
            lua_rawseti(L, c.list, ++w);
        }
        for (int i = c.n; i > w; i--) {
            lua_pushnil(L);
            lua_rawseti(L, c.list, i);
        }
        lua_pop(L, 1);
    }
    lua_pushvalue(L, c.list);
    lua_pushnumber(L, (lua_Number)last);
    return 2;
}

/* store:once_get(key) -> first id, number of events; nil when the key was never saved */
static int lonce_get(lua_State *L)
{
    cairn_store *s = cairn_lua_check_store(L, 1);
    cairn_slice key;
    key.ptr = luaL_checklstring(L, 2, &key.len);
    uint64_t first, n;
    int rc = cairn_store_once_get(s, key, &first, &n);
    if (rc == CAIRN_END) return 0;
    if (rc) return cairn_lua_raise_store(L, s, rc);
    lua_pushnumber(L, (lua_Number)first);
    lua_pushnumber(L, (lua_Number)n);
    return 2;
}

void cairn_lua_dcb_init(lua_State *L)
{
    static const luaL_Reg methods[] = {
        { "dcb_read", ldcb_read },
        { "once_get", lonce_get },
        { NULL, NULL },
    };
    cairn_lua_store_methods(L, methods);
}
