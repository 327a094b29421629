/*
 * lua_store.c -- the store as a Lua userdata (core.open). Coarse calls: one
 * call per save and per read batch; each read pushes all its results.
 */
#include <lauxlib.h>
#include <string.h>

#include "cairn.h"
#include "lua_error.h"
#include "lua_event.h"
#include "lua_store.h"
#include "store.h"
#include "uuid.h"

#define STORE_MT CAIRN_STORE_MT

typedef struct {
    cairn_store *store;
} store_box;

cairn_store *cairn_lua_check_store(lua_State *L, int idx)
{
    store_box *box = luaL_checkudata(L, idx, STORE_MT);
    if (!box->store) luaL_error(L, "the store is closed");
    return box->store;
}

static cairn_store *check_store(lua_State *L)
{
    return cairn_lua_check_store(L, 1);
}

static int raise_store(lua_State *L, cairn_store *s, int rc)
{
    return cairn_lua_raise_rc(L, rc, cairn_store_errmsg(s));
}

/* core.open(uri [, { sync = "full"|"none", map_size = bytes, must_exist = bool }]) -> store */
static int lopen(lua_State *L)
{
    const char *uri = luaL_checkstring(L, 1);
    cairn_store_options opt = { CAIRN_SYNC_FULL, 0, 0 };
    if (!lua_isnoneornil(L, 2)) {
        luaL_checktype(L, 2, LUA_TTABLE);
        lua_getfield(L, 2, "sync");
        const char *sync = lua_tostring(L, -1);
        if (sync && strcmp(sync, "none") == 0) opt.sync = CAIRN_SYNC_NONE;
        else if (sync && strcmp(sync, "full") != 0)
            return cairn_lua_raise(L, "ConfigError", "bad sync mode '%s' (expected full or none)", sync);
        lua_getfield(L, 2, "map_size");
        if (lua_isnumber(L, -1)) opt.map_size = (size_t)lua_tonumber(L, -1);
        lua_getfield(L, 2, "must_exist");
        opt.must_exist = lua_toboolean(L, -1);
        lua_pop(L, 3);
    }
    store_box *box = lua_newuserdata(L, sizeof *box);
    box->store = NULL;
    luaL_getmetatable(L, STORE_MT);
    lua_setmetatable(L, -2);
    char err[512] = "";
    int rc = cairn_store_open(uri, &opt, &box->store, err, sizeof err);
    if (rc) return cairn_lua_raise_rc(L, rc, err);
    return 1;
}

static int lclose(lua_State *L)
{
    store_box *box = luaL_checkudata(L, 1, STORE_MT);
    cairn_store_close(box->store);
    box->store = NULL;
    return 0;
}

cairn_tracking *cairn_lua_opt_tracking(lua_State *L, int idx, cairn_tracking *t)
{
    if (lua_isnoneornil(L, idx)) return NULL;
    t->app = luaL_checklstring(L, idx, &t->app_len);
    lua_Number id = luaL_checknumber(L, idx + 1);
    t->id = id < 1 ? 0 : (uint64_t)id;
    return t;
}

/* store:append(batch [, tracking_app, tracking_id]) -> first notification id
 * batch is flat: id, version, timestamp_us, topic, payload, id, version, ...
 * With a tracking position, the batch may be empty. */
static int lappend(lua_State *L)
{
    cairn_store *s = check_store(L);
    luaL_checktype(L, 2, LUA_TTABLE);
    cairn_tracking tracking, *t = cairn_lua_opt_tracking(L, 3, &tracking);
    size_t len = lua_objlen(L, 2);
    if ((len == 0 && !t) || len % 5 != 0) return luaL_error(L, "append: batch must hold 5 values per event");
    size_t n = len / 5;
    /* a userdata, so the array is collected even if an argument check raises */
    cairn_record *ev = lua_newuserdata(L, (n ? n : 1) * sizeof *ev);
    for (size_t i = 0; i < n; i++) {
        int base = (int)(i * 5);
        for (int j = 1; j <= 5; j++) lua_rawgeti(L, 2, base + j);
        size_t id_len;
        const char *id = lua_tolstring(L, -5, &id_len);
        memset(&ev[i], 0, sizeof ev[i]);
        if (!id || cairn_uuid_parse(id, id_len, ev[i].stream_id) != 0)
            return luaL_error(L, "append: event %d has no valid aggregate id", (int)i + 1);
        ev[i].version = (uint64_t)lua_tonumber(L, -4);
        ev[i].timestamp_us = (int64_t)lua_tonumber(L, -3);
        ev[i].topic = lua_tolstring(L, -2, &ev[i].topic_len);
        ev[i].payload = (const uint8_t *)lua_tolstring(L, -1, &ev[i].payload_len);
        if (!ev[i].topic || !ev[i].payload) return luaL_error(L, "append: event %d lacks a topic or payload", (int)i + 1);
        lua_pop(L, 5); /* the strings stay alive in the batch table */
    }
    uint64_t first = 0;
    cairn_batch batch = { ev, n, t };
    int rc = cairn_store_append(s, &batch, &first);
    if (rc) return raise_store(L, s, rc);
    lua_pushnumber(L, (lua_Number)first);
    return 1;
}

static int lmax_id(lua_State *L)
{
    cairn_store *s = check_store(L);
    uint64_t id;
    int rc = cairn_store_max_id(s, &id);
    if (rc) return raise_store(L, s, rc);
    lua_pushnumber(L, (lua_Number)id);
    return 1;
}

/* Push every record of the read in progress; log reads wrap them as
 * notifications, or give followers flat parts (FLAT_PARTS). */
#define FLAT_PARTS 2
static int push_records(lua_State *L, cairn_store *s, int as_notifications, int id_idx, int plain)
{
    cairn_event_keys k;
    cairn_event_keys_push(L, &k);
    uint8_t last_stream[16];
    int have_last = 0, last_at = lua_gettop(L) + 1;
    lua_pushnil(L); /* the last stream's id string */
    lua_newtable(L);
    int n = 0, rc;
    cairn_record rec;
    while ((rc = cairn_store_next(s, &rec)) == CAIRN_OK) {
        if (as_notifications == FLAT_PARTS) {
            /* followers: id, data table, id, data table, ... (no notification
             * tables); the framework seals them in Lua (cairn.event_batch),
             * where LuaJIT compiles the stores. Runs of one stream share their
             * id string. */
            if (!have_last || memcmp(last_stream, rec.stream_id, 16) != 0) {
                char id[CAIRN_UUID_STRLEN];
                cairn_uuid_format(rec.stream_id, id);
                lua_pushlstring(L, id, sizeof id);
                lua_replace(L, last_at);
                memcpy(last_stream, rec.stream_id, 16);
                have_last = 1;
            }
            lua_pushnumber(L, (lua_Number)rec.notification_id);
            lua_rawseti(L, -2, ++n);
            rc = cairn_lua_push_event(L, &k, &rec, last_at, CAIRN_EVENT_UNSEALED);
            if (rc) break;
        } else if (as_notifications) {
            lua_createtable(L, 0, 5);
            char id[CAIRN_UUID_STRLEN];
            cairn_uuid_format(rec.stream_id, id);
            lua_pushlstring(L, id, sizeof id);
            int id_at = lua_gettop(L);
            lua_pushvalue(L, EV_KEY(&k, EV_ID));
            lua_pushnumber(L, (lua_Number)rec.notification_id);
            lua_rawset(L, -4);
            lua_pushvalue(L, EV_KEY(&k, EV_ORIGINATOR_ID));
            lua_pushvalue(L, id_at);
            lua_rawset(L, -4);
            lua_pushvalue(L, EV_KEY(&k, EV_ORIGINATOR_VERSION));
            lua_pushnumber(L, (lua_Number)rec.version);
            lua_rawset(L, -4);
            lua_pushvalue(L, EV_KEY(&k, EV_TOPIC));
            lua_pushlstring(L, rec.topic, rec.topic_len);
            lua_rawset(L, -4);
            lua_pushvalue(L, EV_KEY(&k, EV_EVENT));
            rc = cairn_lua_push_event(L, &k, &rec, id_at, plain);
            if (rc) break;
            lua_rawset(L, -4);
            lua_pop(L, 1); /* the id string */
        } else {
            rc = cairn_lua_push_event(L, &k, &rec, id_idx, plain);
            if (rc) break;
        }
        lua_rawseti(L, -2, ++n);
    }
    cairn_store_read_end(s);
    if (rc == CAIRN_END) {
        lua_replace(L, k.base);
        lua_settop(L, k.base);
        return 1;
    }
    if (rc == CAIRN_CORRUPT && !*cairn_store_errmsg(s)) {
        char id[CAIRN_UUID_STRLEN + 1] = { 0 };
        cairn_uuid_format(rec.stream_id, id);
        return cairn_lua_raise(L, "IntegrityError",
                               "aggregate %s version %llu (notification %llu): the stored payload is malformed", id,
                               (unsigned long long)rec.version, (unsigned long long)rec.notification_id);
    }
    return raise_store(L, s, rc);
}

static uint64_t opt_u64(lua_State *L, int idx, int *present)
{
    *present = !lua_isnoneornil(L, idx);
    if (!*present) return 0;
    lua_Number n = luaL_checknumber(L, idx);
    return n <= 0 ? 0 : (uint64_t)n;
}

/* store:read_stream(id [, gt, lte, descending, limit, plain]) -> { event, ... }
 * plain: data tables instead of read-only events (for replay) */
static int lread_stream(lua_State *L)
{
    cairn_store *s = check_store(L);
    size_t len;
    const char *id = luaL_checklstring(L, 2, &len);
    uint8_t raw[16];
    if (cairn_uuid_parse(id, len, raw) != 0)
        return cairn_lua_raise(L, "AggregateNotFound", "'%s' is not an aggregate id (not a UUID)", id);
    cairn_stream_query q = { 0 };
    q.gt = opt_u64(L, 3, &q.has_gt);
    if (q.has_gt && luaL_checknumber(L, 3) < 0) q.has_gt = 0;
    q.lte = opt_u64(L, 4, &q.has_lte);
    q.descending = lua_toboolean(L, 5);
    int has_limit;
    q.limit = (size_t)opt_u64(L, 6, &has_limit);
    if (has_limit && q.limit == 0) { lua_newtable(L); return 1; }
    int rc = cairn_store_read_stream(s, raw, &q);
    if (rc) return raise_store(L, s, rc);
    int canonical = cairn_uuid_is_canonical(id, len);
    return push_records(L, s, 0, canonical ? 2 : 0, lua_toboolean(L, 7));
}

/* store:read_log(start [, limit, stop, topics, flat]) -> { notification, ... }
 * flat: { id, unsealed event data, ... } instead, for followers
 * (cairn.event_batch seals the events) */
static int lread_log(lua_State *L)
{
    cairn_store *s = check_store(L);
    cairn_log_query q = { 0 };
    int flat = lua_toboolean(L, 6);
    lua_Number start = luaL_checknumber(L, 2);
    q.start = start < 1 ? 1 : (uint64_t)start;
    int present;
    q.limit = (size_t)opt_u64(L, 3, &present);
    if (present && q.limit == 0) { lua_newtable(L); return 1; }
    q.stop = opt_u64(L, 4, &present);
    if (present && q.stop == 0) { lua_newtable(L); return 1; }
    if (!lua_isnoneornil(L, 5)) {
        luaL_checktype(L, 5, LUA_TTABLE);
        q.ntopics = lua_objlen(L, 5);
        cairn_slice *topics = lua_newuserdata(L, (q.ntopics ? q.ntopics : 1) * sizeof *topics);
        for (size_t i = 0; i < q.ntopics; i++) {
            lua_rawgeti(L, 5, (int)i + 1);
            topics[i].ptr = lua_tolstring(L, -1, &topics[i].len);
            if (!topics[i].ptr) return luaL_error(L, "topics must be strings");
            lua_pop(L, 1); /* anchored by the topics table */
        }
        q.topics = topics; /* an empty list filters nothing, as in the Python library */
    }
    int rc = cairn_store_read_log(s, &q);
    if (rc) return raise_store(L, s, rc);
    return push_records(L, s, flat ? FLAT_PARTS : 1, 0, 0);
}

/* store:tracking_max(app_name) -> the last notification id of app_name processed here (0: none) */
static int ltracking_max(lua_State *L)
{
    cairn_store *s = check_store(L);
    size_t len;
    const char *app = luaL_checklstring(L, 2, &len);
    uint64_t id;
    int rc = cairn_store_tracking_max(s, app, len, &id);
    if (rc) return raise_store(L, s, rc);
    lua_pushnumber(L, (lua_Number)id);
    return 1;
}

static void set_number(lua_State *L, const char *k, uint64_t v)
{
    lua_pushnumber(L, (lua_Number)v);
    lua_setfield(L, -2, k);
}

static int lstat(lua_State *L)
{
    cairn_store *s = check_store(L);
    cairn_store_stats st;
    int rc = cairn_store_stat(s, &st);
    if (rc) return raise_store(L, s, rc);
    lua_createtable(L, 0, 8);
    lua_pushstring(L, st.engine);
    lua_setfield(L, -2, "engine");
    lua_pushstring(L, cairn_store_uri(s));
    lua_setfield(L, -2, "uri");
    set_number(L, "events", st.events);
    set_number(L, "streams", st.streams);
    set_number(L, "max_notification_id", st.max_notification_id);
    set_number(L, "map_size", st.map_size);
    set_number(L, "used_bytes", st.used_bytes);
    set_number(L, "format", st.format);
    return 1;
}

static int luri(lua_State *L)
{
    lua_pushstring(L, cairn_store_uri(check_store(L)));
    return 1;
}

static int ltostring(lua_State *L)
{
    store_box *box = luaL_checkudata(L, 1, STORE_MT);
    lua_pushfstring(L, "cairn.store(%s)", box->store ? cairn_store_uri(box->store) : "closed");
    return 1;
}

void cairn_lua_store_init(lua_State *L)
{
    static const luaL_Reg methods[] = {
        { "append", lappend },
        { "max_id", lmax_id },
        { "tracking_max", ltracking_max },
        { "read_stream", lread_stream },
        { "read_log", lread_log },
        { "stat", lstat },
        { "uri", luri },
        { "close", lclose },
        { NULL, NULL },
    };
    if (luaL_newmetatable(L, STORE_MT)) {
        lua_newtable(L);
        luaL_setfuncs(L, methods, 0);
        lua_setfield(L, -2, "__index");
        lua_pushcfunction(L, lclose);
        lua_setfield(L, -2, "__gc");
        lua_pushcfunction(L, ltostring);
        lua_setfield(L, -2, "__tostring");
    }
    lua_pop(L, 1);
    lua_pushcfunction(L, lopen);
    lua_setfield(L, -2, "open");
}
