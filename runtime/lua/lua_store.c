/*
 * lua_store.c -- the store as a Lua userdata (core.open). Coarse calls: one
 * call per save and per read batch; each read pushes all its results.
 */
#include <lauxlib.h>
#include <sodium.h>
#include <string.h>

#include "cairn.h"
#include "crypto.h"
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

/* core.open(uri [, { sync = "full"|"none", map_size = bytes, must_exist = bool,
 *                     cipher_key = base64, compressor = "zstd"|"none", keyless = bool }]) -> store */
static int lopen(lua_State *L)
{
    size_t uri_len;
    const char *uri = luaL_checklstring(L, 1, &uri_len);
    /* C would see the URI cut at a NUL and open some other store */
    if (strlen(uri) != uri_len)
        return cairn_lua_raise(L, "ConfigError", "bad store URI '%s...': it contains a NUL byte", uri);
    cairn_store_options opt = { .sync = CAIRN_SYNC_FULL };
    uint8_t key[CAIRN_KEY_BYTES];
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
        lua_getfield(L, 2, "keyless");
        opt.keyless = lua_toboolean(L, -1);
        lua_getfield(L, 2, "compressor");
        const char *comp = lua_tostring(L, -1);
        if (comp && strcmp(comp, "zstd") == 0) opt.compress = 1;
        else if (comp && strcmp(comp, "none") != 0)
            return cairn_lua_raise(L, "ConfigError", "unknown compressor '%s' (expected zstd or none)", comp);
        lua_getfield(L, 2, "cipher_key");
        size_t len;
        const char *b64 = lua_tolstring(L, -1, &len);
        if (b64) {
            if (cairn_key_decode(b64, len, key) != CAIRN_OK)
                return cairn_lua_raise(L, "ConfigError", "the cipher key (CAIRN_CIPHER_KEY) is malformed: expected "
                                                         "the base64 of 32 bytes, as `cairn keygen` prints");
            opt.cipher_key = key;
        }
        lua_pop(L, 6);
    }
    store_box *box = lua_newuserdata(L, sizeof *box);
    box->store = NULL;
    luaL_getmetatable(L, STORE_MT);
    lua_setmetatable(L, -2);
    char err[512] = "";
    int rc = cairn_store_open(uri, &opt, &box->store, err, sizeof err);
    sodium_memzero(key, sizeof key);
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

/* Read a flat list of 6-tuples (id, version, timestamp_us, topic, payload,
 * class_version) into recs; the strings stay alive in the list. */
static void read_records(lua_State *L, int list, cairn_record *recs, size_t n, const char *what)
{
    for (size_t i = 0; i < n; i++) {
        int base = (int)(i * 6);
        for (int j = 1; j <= 6; j++) lua_rawgeti(L, list, base + j);
        size_t id_len;
        const char *id = lua_tolstring(L, -6, &id_len);
        memset(&recs[i], 0, sizeof recs[i]);
        if (!id || cairn_uuid_parse(id, id_len, recs[i].stream_id) != 0)
            luaL_error(L, "append: %s %d has no valid aggregate id", what, (int)i + 1);
        recs[i].version = (uint64_t)lua_tonumber(L, -5);
        recs[i].timestamp_us = (int64_t)lua_tonumber(L, -4);
        recs[i].topic = lua_tolstring(L, -3, &recs[i].topic_len);
        recs[i].payload = (const uint8_t *)lua_tolstring(L, -2, &recs[i].payload_len);
        recs[i].class_version = (unsigned)lua_tonumber(L, -1);
        if (!recs[i].topic || !recs[i].payload) luaL_error(L, "append: %s %d lacks a topic or payload", what, (int)i + 1);
        lua_pop(L, 6);
    }
}

static void push_hash(lua_State *L, const uint8_t *hash)
{
    char hex[CAIRN_HASH_BYTES * 2 + 1];
    sodium_bin2hex(hex, sizeof hex, hash, CAIRN_HASH_BYTES);
    lua_pushlstring(L, hex, CAIRN_HASH_BYTES * 2);
}

/* store:append(batch [, tracking_app, tracking_id [, snapshots]]) -> first id, heads
 * batch and snapshots are flat lists of 6-tuples (see read_records); heads
 * holds the hash of the last event of each run of one stream, in order. */
static int lappend(lua_State *L)
{
    cairn_store *s = check_store(L);
    luaL_checktype(L, 2, LUA_TTABLE);
    cairn_tracking tracking, *t = cairn_lua_opt_tracking(L, 3, &tracking);
    size_t len = lua_objlen(L, 2), slen = 0;
    if (!lua_isnoneornil(L, 5)) {
        luaL_checktype(L, 5, LUA_TTABLE);
        slen = lua_objlen(L, 5);
    }
    if ((len == 0 && !t && slen == 0) || len % 6 != 0 || slen % 6 != 0)
        return luaL_error(L, "append: batch must hold 6 values per event");
    size_t n = len / 6, ns = slen / 6;
    /* userdata, so the arrays are collected even if an argument check raises */
    cairn_record *ev = lua_newuserdata(L, (n + ns ? n + ns : 1) * sizeof *ev);
    uint8_t *hashes = lua_newuserdata(L, (n ? n : 1) * CAIRN_HASH_BYTES);
    read_records(L, 2, ev, n, "event");
    if (ns) read_records(L, 5, ev + n, ns, "snapshot");
    uint64_t first = 0;
    cairn_batch batch = { ev, n, t, ev + n, ns, hashes };
    int rc = cairn_store_append(s, &batch, &first);
    if (rc) return raise_store(L, s, rc);
    lua_pushnumber(L, (lua_Number)first);
    lua_newtable(L);
    int runs = 0;
    for (size_t i = 0; i < n; i++)
        if (i + 1 == n || memcmp(ev[i].stream_id, ev[i + 1].stream_id, 16) != 0) {
            push_hash(L, hashes + i * CAIRN_HASH_BYTES);
            lua_rawseti(L, -2, ++runs);
        }
    return 2;
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
 * notifications, or give followers flat parts (FLAT_PARTS). Stream reads also
 * push the hash of the last record read. */
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
    uint8_t head[CAIRN_HASH_BYTES];
    int have_head = 0;
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
            if (rec.forgotten) {
                lua_pushboolean(L, 1);
                lua_setfield(L, -3, "forgotten");
            }
            if (rec.class_version != 1) { /* the stored one; the event may be upcast */
                lua_pushnumber(L, rec.class_version);
                lua_setfield(L, -3, "class_version");
            }
            lua_pushvalue(L, EV_KEY(&k, EV_EVENT));
            rc = cairn_lua_push_event(L, &k, &rec, id_at, plain);
            if (rc) break;
            lua_rawset(L, -4);
            lua_pop(L, 1); /* the id string */
        } else {
            rc = cairn_lua_push_event(L, &k, &rec, id_idx, plain);
            if (rc) break;
            memcpy(head, rec.hash, sizeof head);
            have_head = 1;
        }
        lua_rawseti(L, -2, ++n);
    }
    cairn_store_read_end(s);
    if (rc == CAIRN_END) {
        lua_replace(L, k.base);
        lua_settop(L, k.base);
        if (as_notifications) return 1;
        if (have_head) push_hash(L, head);
        else lua_pushnil(L);
        return 2;
    }
    if (rc == CAIRN_LUA_ERRORED) return lua_error(L);
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

/* The aggregate id argument at idx as 16 bytes; returns the string (and its length). */
static const char *parse_id(lua_State *L, int idx, uint8_t raw[16], size_t *len)
{
    const char *id = luaL_checklstring(L, idx, len);
    if (cairn_uuid_parse(id, *len, raw) != 0)
        cairn_lua_raise(L, "AggregateNotFound", "'%s' is not an aggregate id (not a UUID)", id);
    return id;
}

/* store:read_stream(id [, gt, lte, descending, limit, plain]) -> { event, ... }, head
 * plain: data tables instead of read-only events (for replay) */
static int lread_stream(lua_State *L)
{
    cairn_store *s = check_store(L);
    size_t len;
    uint8_t raw[16];
    const char *id = parse_id(L, 2, raw, &len);
    cairn_stream_query q = { 0 };
    q.gt = opt_u64(L, 3, &q.has_gt);
    if (q.has_gt && luaL_checknumber(L, 3) < 0) q.has_gt = 0;
    q.lte = opt_u64(L, 4, &q.has_lte);
    q.descending = lua_toboolean(L, 5);
    int has_limit;
    q.limit = (size_t)opt_u64(L, 6, &has_limit);
    if (has_limit && q.limit == 0) { lua_newtable(L); lua_pushnil(L); return 2; }
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

static void set_number(lua_State *L, const char *k, uint64_t v)
{
    lua_pushnumber(L, (lua_Number)v);
    lua_setfield(L, -2, k);
}

/* store:read_snapshot(id [, lte]) -> nil | state (plain table), version, class_version, head, timestamp_us,
 * class name */
static int lread_snapshot(lua_State *L)
{
    cairn_store *s = check_store(L);
    uint8_t raw[16];
    size_t len;
    parse_id(L, 2, raw, &len);
    int has_lte;
    uint64_t lte = opt_u64(L, 3, &has_lte);
    cairn_record rec;
    int rc = cairn_store_read_snapshot(s, raw, has_lte, lte, &rec);
    if (rc == CAIRN_END) { lua_pushnil(L); return 1; }
    if (rc) return raise_store(L, s, rc);
    lua_createtable(L, 0, 8);
    rc = cairn_codec_decode_into(L, rec.payload, rec.payload_len, -1);
    if (rc) {
        cairn_store_read_end(s);
        char id[CAIRN_UUID_STRLEN + 1] = { 0 };
        cairn_uuid_format(raw, id);
        return cairn_lua_raise(L, "IntegrityError", "the snapshot of aggregate %s version %llu is malformed", id,
                               (unsigned long long)rec.version);
    }
    lua_pushnumber(L, (lua_Number)rec.version);
    lua_pushnumber(L, rec.class_version);
    push_hash(L, rec.hash);
    lua_pushnumber(L, (lua_Number)rec.timestamp_us);
    lua_pushlstring(L, rec.topic, rec.topic_len);
    cairn_store_read_end(s);
    return 6;
}

/* store:forget(id): destroy the aggregate's data key */
static int lforget(lua_State *L)
{
    cairn_store *s = check_store(L);
    uint8_t raw[16];
    size_t len;
    parse_id(L, 2, raw, &len);
    int rc = cairn_store_forget(s, raw);
    if (rc) return raise_store(L, s, rc);
    return 0;
}

/* store:rekey(new_base64_key): re-wrap every data key under a new master key */
static int lrekey(lua_State *L)
{
    cairn_store *s = check_store(L);
    size_t len;
    const char *b64 = luaL_checklstring(L, 2, &len);
    uint8_t key[CAIRN_KEY_BYTES];
    if (cairn_key_decode(b64, len, key) != CAIRN_OK)
        return cairn_lua_raise(L, "ConfigError", "the new cipher key is malformed: expected the base64 of 32 bytes, "
                                                 "as `cairn keygen` prints");
    int rc = cairn_store_rekey(s, key);
    sodium_memzero(key, sizeof key);
    if (rc) return raise_store(L, s, rc);
    return 0;
}

typedef struct {
    lua_State *L;
    int fn;
} progress_ctx;

/* Call the Lua progress function; an error in it stops the check. */
static int verify_progress(void *ctxp, uint64_t done, uint64_t total)
{
    progress_ctx *c = ctxp;
    lua_pushvalue(c->L, c->fn);
    lua_pushnumber(c->L, (lua_Number)done);
    lua_pushnumber(c->L, (lua_Number)total);
    if (lua_pcall(c->L, 2, 0, 0) != 0) { lua_pop(c->L, 1); return 1; }
    return 0;
}

/* store:verify([progress(done, total)]) -> { records, streams, snapshots, keys_checked, problems, first } */
static int lverify(lua_State *L)
{
    cairn_store *s = check_store(L);
    progress_ctx ctx = { L, 2 };
    int with_progress = lua_isfunction(L, 2);
    cairn_verify_report r;
    int rc = cairn_store_verify(s, &r, with_progress ? verify_progress : NULL, &ctx);
    if (rc) return raise_store(L, s, rc);
    lua_createtable(L, 0, 6);
    set_number(L, "records", r.records);
    set_number(L, "streams", r.streams);
    set_number(L, "snapshots", r.snapshots);
    set_number(L, "keys_checked", r.keys_checked);
    set_number(L, "problems", r.problems);
    if (r.problems) {
        lua_pushstring(L, r.first);
        lua_setfield(L, -2, "first");
    }
    return 1;
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
        { "read_snapshot", lread_snapshot },
        { "forget", lforget },
        { "rekey", lrekey },
        { "verify", lverify },
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
