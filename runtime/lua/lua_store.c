/*
 * lua_store.c -- the store as a Lua userdata (core.open). Its only caller is
 * lua/cairn/recorder.lua. Coarse calls: one per save and one per read batch.
 *
 * Every read gathers its records into C memory owned by a userdata made
 * before the read starts (lua_gather.h; a log read for lua/cairn/log_page.lua
 * copies into a page instead, lua_page.h), ends the read, and only then
 * pushes Lua values: nothing raises and no Lua code runs while the store
 * holds a transaction, a lock or a buffer. Upcasting is the recorder's (Lua, after
 * the read); a read only lists the records that need it.
 */
#include <errno.h>
#include <lauxlib.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cairn.h"
#include "crypto.h"
#include "lua_dcb.h"
#include "lua_error.h"
#include "lua_event.h"
#include "lua_gather.h"
#include "lua_page.h"
#include "lua_replay.h"
#include "lua_store.h"
#include "store.h"
#include "string_id.h"
#include "uuid.h"

#define STORE_MT CAIRN_STORE_MT

typedef struct {
    cairn_store *store;
    cairn_gather spare;     /* the memory of the last read, for the next */
    cairn_page spare_page;  /* likewise, of the last log page */
    int verifying;          /* a verify thread uses the handle (see lverify) */
    void *batch;            /* an append's records and hashes, kept for the next (see batch_room) */
    size_t batch_cap;
    int batch_busy;         /* an append is using batch */
} store_box;

static store_box *check_box(lua_State *L, int idx)
{
    store_box *box = luaL_checkudata(L, idx, STORE_MT);
    if (!box->store) cairn_lua_raise(L, CAIRN_STORE, "the store is closed: it cannot be used after close()");
    if (box->verifying)
        cairn_lua_raise(L, CAIRN_STORE, "the store is being verified: its verify progress function cannot use it");
    return box;
}

cairn_store *cairn_lua_check_store(lua_State *L, int idx)
{
    return check_box(L, idx)->store;
}

cairn_gather *cairn_lua_store_gather(lua_State *L, int idx)
{
    return cairn_gather_new_from(L, &check_box(L, idx)->spare);
}

void cairn_lua_store_gathered(lua_State *L, int idx, cairn_gather *g)
{
    store_box *box = luaL_checkudata(L, idx, STORE_MT);
    if (box->store) cairn_gather_release(g, &box->spare);
    else cairn_gather_free(g);
}

static cairn_store *check_store(lua_State *L)
{
    return cairn_lua_check_store(L, 1);
}

int cairn_lua_raise_store(lua_State *L, cairn_store *s, int rc)
{
    return cairn_lua_raise_rc(L, rc, cairn_store_errmsg(s));
}

/* core.open(uri [, { sync = "full"|"none", map_size = bytes, must_exist = bool,
 *                     cipher_key = base64, compressor = "zstd"|"none", keyless = bool }]) -> store
 * Order: check every argument, make the userdata (its __gc closes), and only
 * then decode the key; from there to its wipe nothing can raise. */
static int lopen(lua_State *L)
{
    size_t uri_len, key_len = 0;
    const char *uri = luaL_checklstring(L, 1, &uri_len);
    /* C would see the URI cut at a NUL and open some other store */
    if (strlen(uri) != uri_len)
        return cairn_lua_raise(L, CAIRN_CONFIG, "bad store URI '%s...': it contains a NUL byte", uri);
    cairn_store_options opt = { .sync = CAIRN_SYNC_FULL };
    const char *b64 = NULL;
    if (!lua_isnoneornil(L, 2)) {
        luaL_checktype(L, 2, LUA_TTABLE);
        lua_getfield(L, 2, "sync");
        const char *sync = lua_tostring(L, -1);
        if (sync && strcmp(sync, "none") == 0) opt.sync = CAIRN_SYNC_NONE;
        else if (sync && strcmp(sync, "full") != 0)
            return cairn_lua_raise(L, CAIRN_CONFIG, "bad sync mode '%s' (expected full or none)", sync);
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
            return cairn_lua_raise(L, CAIRN_CONFIG, "unknown compressor '%s' (expected zstd or none)", comp);
        lua_getfield(L, 2, "cipher_key");
        b64 = lua_tolstring(L, -1, &key_len); /* anchored on the stack until we return */
    }
    store_box *box = lua_newuserdata(L, sizeof *box);
    memset(box, 0, sizeof *box);
    luaL_getmetatable(L, STORE_MT);
    lua_setmetatable(L, -2);
    uint8_t key[CAIRN_KEY_BYTES];
    if (b64) {
        if (cairn_key_decode(b64, key_len, key) != CAIRN_OK) {
            sodium_memzero(key, sizeof key);
            return cairn_lua_raise(L, CAIRN_CONFIG, "the cipher key (CAIRN_CIPHER_KEY) is malformed: expected "
                                                    "the base64 of 32 bytes, as `cairn keygen` prints");
        }
        opt.cipher_key = key;
    }
    char err[512] = "";
    int rc = cairn_store_open(uri, &opt, &box->store, err, sizeof err);
    sodium_memzero(key, sizeof key);
    if (rc) return cairn_lua_raise_rc(L, rc, err);
    return 1;
}

static int lclose(lua_State *L)
{
    store_box *box = luaL_checkudata(L, 1, STORE_MT);
    if (box->verifying)
        return cairn_lua_raise(L, CAIRN_STORE, "the store is being verified: its verify progress function cannot "
                                               "close it");
    cairn_store_close(box->store);
    box->store = NULL;
    cairn_gather_free(&box->spare);
    cairn_page_free(&box->spare_page);
    if (!box->batch_busy) {
        free(box->batch);
        box->batch = NULL;
        box->batch_cap = 0;
    }
    return 0;
}

cairn_tracking *cairn_lua_opt_tracking(lua_State *L, int idx, cairn_tracking *t)
{
    if (lua_isnoneornil(L, idx)) return NULL;
    t->app = luaL_checklstring(L, idx, &t->app_len);
    lua_Number id = luaL_checknumber(L, idx + 1);
    t->id = id < 1 ? 0 : (uint64_t)id;
    t->first = 0;
    return t;
}

/* The batch protocol, C side (lua/cairn/recorder.lua writes it): a flat list
 * of RECORD_STRIDE values per record, in this order (an event id is its 16
 * bytes or its UUID string; event id and metadata false when absent). */
enum { R_ID, R_VERSION, R_TIMESTAMP, R_TOPIC, R_PAYLOAD, R_CLASS_VERSION, R_EVENT_ID, R_METADATA, RECORD_STRIDE };

/* Read n records from the list at idx into recs (numbered from `number` in
 * messages); the strings stay alive in the list. Runs no Lua code and raises
 * nothing: a bad record gives its error kind and message (in err), for the
 * caller to raise once it holds nothing. */
static int read_list(lua_State *L, cairn_store *s, int list, cairn_record *recs, size_t n, size_t number,
                     const char *what, char *err, size_t errlen)
{
    for (size_t i = 0; i < n; i++) {
        int base = (int)(i * RECORD_STRIDE);
        for (int j = 1; j <= RECORD_STRIDE; j++) lua_rawgeti(L, list, base + j);
        int at = lua_gettop(L) - RECORD_STRIDE + 1;
        cairn_record *r = &recs[i];
        memset(r, 0, sizeof *r);
        size_t len;
        const char *id = lua_type(L, at + R_ID) == LUA_TSTRING ? lua_tolstring(L, at + R_ID, &len) : NULL;
        if (!id) {
            snprintf(err, errlen, "append: %s %d has no aggregate id", what, (int)(number + i));
            return CAIRN_SCHEMA;
        }
        if (i > 0 && id == recs[i - 1].name) { /* the same string id as the record before (interned) */
            memcpy(r->stream_id, recs[i - 1].stream_id, 16);
            r->name = id;
            r->name_len = len;
        } else if (cairn_uuid_parse(id, len, r->stream_id) != 0) { /* a string id */
            int rc = cairn_store_string_id(s, id, len, 1, r->stream_id);
            if (rc) {
                snprintf(err, errlen, "%s", cairn_store_errmsg(s));
                return rc;
            }
            r->name = id;
            r->name_len = len;
        }
        r->version = (uint64_t)lua_tonumber(L, at + R_VERSION);
        r->timestamp_us = (int64_t)lua_tonumber(L, at + R_TIMESTAMP);
        /* strings only: lua_tolstring would make (allocate) a string of a number */
        if (lua_type(L, at + R_TOPIC) == LUA_TSTRING) r->topic = lua_tolstring(L, at + R_TOPIC, &r->topic_len);
        if (lua_type(L, at + R_PAYLOAD) == LUA_TSTRING)
            r->payload = (const uint8_t *)lua_tolstring(L, at + R_PAYLOAD, &r->payload_len);
        r->class_version = (unsigned)lua_tonumber(L, at + R_CLASS_VERSION);
        if (!r->topic || !r->payload) {
            snprintf(err, errlen, "append: %s %d lacks a topic or payload", what, (int)(number + i));
            return CAIRN_SCHEMA;
        }
        const char *eid = lua_type(L, at + R_EVENT_ID) == LUA_TSTRING ? lua_tolstring(L, at + R_EVENT_ID, &len) : NULL;
        if (eid && len == sizeof r->event_id) memcpy(r->event_id, eid, len); /* its 16 bytes */
        else if ((eid && cairn_uuid_parse(eid, len, r->event_id) != 0) || (!eid && lua_toboolean(L, at + R_EVENT_ID))) {
            snprintf(err, errlen, "append: %s %d has an event_id that is not a UUID", what, (int)(number + i));
            return CAIRN_SCHEMA;
        }
        if (lua_type(L, at + R_METADATA) == LUA_TSTRING)
            r->metadata = (const uint8_t *)lua_tolstring(L, at + R_METADATA, &r->metadata_len);
        else if (lua_toboolean(L, at + R_METADATA)) {
            snprintf(err, errlen, "append: %s %d has metadata that is not msgpack bytes", what, (int)(number + i));
            return CAIRN_SCHEMA;
        }
        lua_pop(L, RECORD_STRIDE);
    }
    return CAIRN_OK;
}

/* A batch is one flat list, or a list of flat lists (app:save of several
 * aggregates hands over each one's pending records as they are, rather than
 * a copy of them all in one list): the number of records it holds, or -1
 * when a list's length is not a whole number of records. */
static long batch_records(lua_State *L, int list, int *nested)
{
    size_t len = lua_objlen(L, list);
    lua_rawgeti(L, list, 1);
    *nested = lua_istable(L, -1);
    lua_pop(L, 1);
    if (!*nested) return len % RECORD_STRIDE ? -1 : (long)(len / RECORD_STRIDE);
    size_t total = 0;
    for (size_t j = 1; j <= len; j++) {
        lua_rawgeti(L, list, (int)j);
        size_t sub = lua_istable(L, -1) ? lua_objlen(L, -1) : 1;
        lua_pop(L, 1);
        if (sub % RECORD_STRIDE) return -1;
        total += sub / RECORD_STRIDE;
    }
    return (long)total;
}

/* read_list over a batch (batch_records): n records in all */
static int read_records(lua_State *L, cairn_store *s, int list, int nested, cairn_record *recs, size_t n,
                        const char *what, char *err, size_t errlen)
{
    if (!nested) return read_list(L, s, list, recs, n, 1, what, err, errlen);
    size_t done = 0;
    for (int j = 1; done < n; j++) {
        lua_rawgeti(L, list, j);
        size_t k = lua_objlen(L, -1) / RECORD_STRIDE;
        int rc = read_list(L, s, lua_gettop(L), recs + done, k, done + 1, what, err, errlen);
        lua_pop(L, 1);
        if (rc) return rc;
        done += k;
    }
    return CAIRN_OK;
}

static void push_hash(lua_State *L, const uint8_t *hash)
{
    /* hashes are not secret: a table, not libsodium's constant-time hex (every save and get pushes one) */
    char hex[CAIRN_HASH_BYTES * 2];
    cairn_hex_format(hash, CAIRN_HASH_BYTES, hex);
    lua_pushlstring(L, hex, sizeof hex);
}

/* Room for an append's records and hashes: the handle's buffer, kept from
 * one append to the next; a userdata of its own (collected) when an append
 * runs inside another (from a finalizer), or when the buffer cannot grow. */
static void *batch_room(lua_State *L, store_box *box, size_t bytes, int *from_box)
{
    *from_box = 0;
    if (!box->batch_busy && bytes <= box->batch_cap) {
        *from_box = box->batch_busy = 1;
        return box->batch;
    }
    if (!box->batch_busy) {
        void *grown = malloc(bytes);
        if (grown) {
            free(box->batch);
            box->batch = grown;
            box->batch_cap = bytes;
            *from_box = box->batch_busy = 1;
            return grown;
        }
    }
    return lua_newuserdata(L, bytes);
}

/* A batch the store refused: raise its error, or return nil and it. */
static int refused(lua_State *L, int raise, int rc, const char *err)
{
    if (raise) return cairn_lua_raise_rc(L, rc, err);
    lua_pushnil(L);
    cairn_lua_push_error_rc(L, rc, err);
    return 2;
}

/* store:append(records [, tracking_app, tracking_id [, snapshots [, extras]]]) -> first id, heads
 * records and snapshots are batches: flat lists in the batch protocol, or
 * lists of them (read_records);
 * heads holds the hash of the last event of each run of one stream, in order.
 * raise 0 (store:try_append): a batch the store refuses gives nil and the
 * error object instead of raising it. */
static int append_batch(lua_State *L, int raise)
{
    store_box *box = check_box(L, 1);
    cairn_store *s = box->store;
    luaL_checktype(L, 2, LUA_TTABLE);
    cairn_tracking tracking, *t = cairn_lua_opt_tracking(L, 3, &tracking);
    int nested, snested = 0;
    long events = batch_records(L, 2, &nested), snaps = 0;
    if (!lua_isnoneornil(L, 5)) {
        luaL_checktype(L, 5, LUA_TTABLE);
        snaps = batch_records(L, 5, &snested);
    }
    int once = lua_istable(L, 6) && (lua_getfield(L, 6, "once"), !lua_isnil(L, -1));
    if (lua_istable(L, 6)) lua_pop(L, 1);
    char err[600];
    if ((events == 0 && !t && snaps == 0 && !once) || events < 0 || snaps < 0) {
        snprintf(err, sizeof err, "append: a batch holds %d values per record", RECORD_STRIDE);
        return refused(L, raise, CAIRN_SCHEMA, err);
    }
    size_t n = (size_t)events, ns = (size_t)snaps;
    cairn_batch batch = { .n = n, .tracking = t, .nsnapshots = ns };
    cairn_dcb_query fail_if;
    cairn_lua_batch_extras(L, 6, &batch, &fail_if); /* extras: DCB events, condition, idempotency key */
    /* from here until the heads are made nothing raises while the box's buffer is in use */
    size_t recs = n + ns ? n + ns : 1, bytes = recs * sizeof(cairn_record) + (n ? n : 1) * CAIRN_HASH_BYTES;
    int from_box;
    cairn_record *ev = batch_room(L, box, bytes, &from_box);
    uint8_t *hashes = (uint8_t *)(ev + recs);
    int rc = read_records(L, s, 2, nested, ev, n, "event", err, sizeof err);
    if (rc == CAIRN_OK && ns) rc = read_records(L, s, 5, snested, ev + n, ns, "snapshot", err, sizeof err);
    uint64_t first = 0;
    batch.events = ev;
    batch.snapshots = ev + n;
    batch.hashes = hashes;
    if (rc == CAIRN_OK) {
        rc = cairn_store_append(s, &batch, &first);
        if (rc) snprintf(err, sizeof err, "%s", cairn_store_errmsg(s));
    }
    if (rc) {
        if (from_box) box->batch_busy = 0;
        return refused(L, raise, rc, err);
    }
    /* the heads, from a copy: making strings may run a finalizer that appends */
    size_t runs = 0;
    for (size_t i = 0; i < n; i++)
        if (i + 1 == n || memcmp(ev[i].stream_id, ev[i + 1].stream_id, 16) != 0)
            memmove(hashes + runs++ * CAIRN_HASH_BYTES, hashes + i * CAIRN_HASH_BYTES, CAIRN_HASH_BYTES);
    uint8_t few[4 * CAIRN_HASH_BYTES];
    uint8_t *heads = !from_box ? hashes : runs <= 4 ? few : lua_newuserdata(L, runs * CAIRN_HASH_BYTES);
    if (from_box) {
        memcpy(heads, hashes, runs * CAIRN_HASH_BYTES);
        box->batch_busy = 0;
    }
    lua_pushnumber(L, (lua_Number)first);
    lua_createtable(L, (int)runs, 0);
    for (size_t i = 0; i < runs; i++) {
        push_hash(L, heads + i * CAIRN_HASH_BYTES);
        lua_rawseti(L, -2, (int)i + 1);
    }
    return 2;
}

static int lappend(lua_State *L)
{
    return append_batch(L, 1);
}

/* store:try_append(...) -> what store:append returns; or nil and the error
 * object of a batch the store refused (a save checks it without a pcall) */
static int ltry_append(lua_State *L)
{
    return append_batch(L, 0);
}

static int lmax_id(lua_State *L)
{
    cairn_store *s = check_store(L);
    uint64_t id;
    int rc = cairn_store_max_id(s, &id);
    if (rc) return cairn_lua_raise_store(L, s, rc);
    lua_pushnumber(L, (lua_Number)id);
    return 1;
}

/* What went wrong while a read was open, kept for raising after it ends. */
typedef struct {
    int rc;
    char msg[512];
    cairn_record at;    /* the record being read, for a malformed-payload message */
    int malformed;      /* keep() found a record's payload malformed: bad is that record */
    cairn_record bad;   /* (only its numbers: its pointers go stale with the read) */
} read_failure;

/* Keep a record of an open read: CAIRN_OK, ENOMEM, or CAIRN_CORRUPT for a malformed payload. */
typedef int (*keep_fn)(void *into, const cairn_record *rec);

static int keep_gathered(void *g, const cairn_record *rec) { return cairn_gather_record(g, rec); }

/* Keep every record of the read in progress, then end the read. After a
 * malformed record the read goes on without keeping, so that a store error
 * further on is the one raised, as when the payloads are decoded later. */
static void read_all(cairn_store *s, keep_fn keep, void *into, read_failure *f)
{
    cairn_record rec;
    memset(&rec, 0, sizeof rec);
    f->malformed = 0;
    while ((f->rc = cairn_store_next(s, &rec)) == CAIRN_OK) {
        int rc = f->malformed ? CAIRN_OK : keep(into, &rec);
        if (rc == CAIRN_CORRUPT) {
            f->malformed = 1;
            f->bad = rec;
        } else if (rc != CAIRN_OK) {
            f->rc = ENOMEM;
            break;
        }
    }
    if (f->rc != CAIRN_END) {
        snprintf(f->msg, sizeof f->msg, "%s", f->rc == ENOMEM ? "out of memory gathering a read"
                                                              : cairn_store_errmsg(s));
        f->at = rec; /* its pointers go stale with the read: only the numbers are used */
    }
    cairn_store_read_end(s);
}

/* Gather every record of the read in progress into g, then end the read. */
static void gather_read(cairn_store *s, cairn_gather *g, read_failure *f)
{
    read_all(s, keep_gathered, g, f);
}

static int raise_read(lua_State *L, const read_failure *f)
{
    if (f->rc == CAIRN_CORRUPT && !*f->msg) {
        char id[CAIRN_UUID_STRLEN + 1] = { 0 };
        cairn_uuid_format(f->at.stream_id, id);
        return cairn_lua_raise(L, CAIRN_CORRUPT, "aggregate %s version %llu (notification %llu): the stored "
                               "record is malformed", id, (unsigned long long)f->at.version,
                               (unsigned long long)f->at.notification_id);
    }
    return cairn_lua_raise_rc(L, f->rc, f->msg);
}

/* A record whose payload or metadata does not decode. */
static int raise_malformed_at(lua_State *L, const uint8_t stream_id[16], uint64_t version, uint64_t notification_id)
{
    char id[CAIRN_UUID_STRLEN + 1] = { 0 };
    cairn_uuid_format(stream_id, id);
    return cairn_lua_raise(L, CAIRN_CORRUPT, "aggregate %s version %llu (notification %llu): the stored payload "
                           "is malformed", id, (unsigned long long)version, (unsigned long long)notification_id);
}

static int raise_malformed(lua_State *L, const cairn_gathered *r)
{
    return raise_malformed_at(L, r->stream_id, r->version, r->notification_id);
}

/* The list of records that are not plain (forgotten, stored at a class
 * version other than 1, or whose topic's current version is not 1): flat
 * (index, stored class version, forgotten) triples, for the recorder to
 * upcast and to mark notifications. */
typedef struct {
    int versions;   /* stack index of topic -> current class version, or 0 */
    int list;       /* stack index of the list */
    int n;
} odd_list;

/* versions: the topics whose current class version is not 1; when it is
 * empty (no versioned class), records need no look-up at all */
static int versions_index(lua_State *L, int idx)
{
    if (!lua_istable(L, idx)) return 0;
    lua_pushnil(L);
    if (!lua_next(L, idx)) return 0;
    lua_pop(L, 2);
    return idx;
}

static void note_odd(lua_State *L, odd_list *o, const cairn_gather *g, const cairn_gathered *r, int i)
{
    int odd = r->forgotten || r->class_version != 1;
    if (!odd && o->versions) {
        lua_pushlstring(L, cairn_gather_bytes(g, r->topic), r->topic_len);
        lua_rawget(L, o->versions);
        lua_Number current = lua_tonumber(L, -1);
        lua_pop(L, 1);
        odd = current != 0 && current != r->class_version;
    }
    if (!odd) return;
    lua_pushinteger(L, i);
    lua_rawseti(L, o->list, ++o->n);
    lua_pushinteger(L, (lua_Integer)r->class_version);
    lua_rawseti(L, o->list, ++o->n);
    lua_pushboolean(L, r->forgotten);
    lua_rawseti(L, o->list, ++o->n);
}

/* The option value at idx as a count (0 for none or below). */
static uint64_t to_u64(lua_State *L, int idx)
{
    lua_Number n = lua_tonumber(L, idx);
    return n <= 0 ? 0 : (uint64_t)n;
}

static uint64_t field_u64(lua_State *L, int t, const char *k, int *present)
{
    lua_getfield(L, t, k);
    *present = !lua_isnil(L, -1);
    uint64_t n = to_u64(L, -1);
    lua_pop(L, 1);
    return n;
}

static int field_bool(lua_State *L, int t, const char *k)
{
    lua_getfield(L, t, k);
    int b = lua_toboolean(L, -1);
    lua_pop(L, 1);
    return b;
}

/* The aggregate id argument at idx as 16 bytes: a UUID, or the key of a
 * string id. Returns 1, or 0 when no stream of that string id can exist yet
 * (an encrypted store with no string ids); *string says it is a string id. */
static int parse_id(lua_State *L, cairn_store *s, int idx, uint8_t raw[16], int *string)
{
    size_t len;
    const char *id = luaL_checklstring(L, idx, &len);
    *string = cairn_uuid_parse(id, len, raw) != 0;
    if (!*string) return 1;
    int rc = cairn_store_string_id(s, id, len, 0, raw);
    if (rc == CAIRN_END) return 0;
    if (rc == CAIRN_SCHEMA) return cairn_lua_raise(L, CAIRN_NOTFOUND, "no such aggregate: %s", cairn_store_errmsg(s));
    if (rc) return cairn_lua_raise_store(L, s, rc);
    return 1;
}

/* A stream read's options from the table at t. A table without a metatable
 * (the recorder's) is read in one pass over its fields: five look-ups by
 * name cost about what reading a one-event stream's record does. */
static void stream_options(lua_State *L, int t, cairn_stream_query *q, int *has_limit, int *replay)
{
    if (lua_getmetatable(L, t)) {
        lua_pop(L, 1);
        q->gt = field_u64(L, t, "after", &q->has_gt);
        q->lte = field_u64(L, t, "upto", &q->has_lte);
        q->descending = field_bool(L, t, "reverse");
        q->limit = (size_t)field_u64(L, t, "limit", has_limit);
        *replay = field_bool(L, t, "replay");
        return;
    }
    *has_limit = *replay = 0;
    lua_pushnil(L);
    while (lua_next(L, t)) {
        size_t len = 0;
        const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tolstring(L, -2, &len) : "";
        if (len == 5 && memcmp(k, "after", 5) == 0) q->gt = to_u64(L, -1), q->has_gt = 1;
        else if (len == 4 && memcmp(k, "upto", 4) == 0) q->lte = to_u64(L, -1), q->has_lte = 1;
        else if (len == 5 && memcmp(k, "limit", 5) == 0) q->limit = (size_t)to_u64(L, -1), *has_limit = 1;
        else if (len == 7 && memcmp(k, "reverse", 7) == 0) q->descending = lua_toboolean(L, -1);
        else if (len == 6 && memcmp(k, "replay", 6) == 0) *replay = lua_toboolean(L, -1);
        lua_pop(L, 1);
    }
}

/* store:read_stream(id, { after, upto, limit, reverse, replay } [, versions [, fields]]) -> events, head, odd
 * versions: topic -> current class version; replay: events without event_id
 * and metadata (for rebuilding aggregates, where no event reaches user code).
 * With fields (topic -> list of field names) a replay read that can be is
 * given as columns instead (lua_replay.h): -> nil, head, nil, runs, first,
 * stamps, values (the recorder makes them its columns table). */
static int lread_stream(lua_State *L)
{
    cairn_store *s = check_store(L);
    uint8_t raw[16];
    int string, exists = parse_id(L, s, 2, raw, &string);
    luaL_checktype(L, 3, LUA_TTABLE);
    int versions = versions_index(L, 4);
    int fields = lua_istable(L, 5) ? 5 : 0;
    cairn_stream_query q = { 0 };
    int has_limit, replay;
    stream_options(L, 3, &q, &has_limit, &replay);
    cairn_event_kind kind = replay ? CAIRN_EVENT_REPLAY : CAIRN_EVENT_FULL;
    lua_settop(L, 5);
    if ((has_limit && q.limit == 0) || !exists) { lua_newtable(L); lua_pushnil(L); lua_newtable(L); return 3; }
    cairn_gather *g = cairn_lua_store_gather(L, 1);  /* 6 */
    read_failure f;
    int rc = cairn_store_read_stream(s, raw, &q);
    if (rc) { cairn_store_read_end(s); return cairn_lua_raise_store(L, s, rc); }
    gather_read(s, g, &f);
    if (f.rc != CAIRN_END) return raise_read(L, &f);
    /* the read has ended: from here on, Lua values */
    /* columns carry no originator id: a string-id stream read by its key
     * comes as events, which name it by its string */
    if (kind == CAIRN_EVENT_REPLAY && fields && !q.descending && (string || !g->n || !g->recs[0].name_len)) {
        size_t bad = 0;
        int cols = lua_gettop(L) + 1;
        rc = cairn_lua_push_columns(L, g, fields, versions, &bad); /* cols .. cols + 3 */
        if (rc == CAIRN_CORRUPT) return raise_malformed(L, &g->recs[bad]);
        if (rc == CAIRN_OK) {
            lua_pushnil(L);
            if (g->recs[g->n - 1].has_hash) push_hash(L, g->recs[g->n - 1].hash);
            else lua_pushnil(L);
            lua_pushnil(L);
            for (int i = cols; i < cols + 4; i++) lua_pushvalue(L, i);
            cairn_lua_store_gathered(L, 1, g);
            return 7;
        }
    }
    cairn_event_keys k;
    cairn_event_keys_push(L, &k);
    lua_createtable(L, (int)g->n, 0);
    int events = lua_gettop(L);
    lua_newtable(L);
    odd_list o = { versions, lua_gettop(L), 0 };
    /* the argument is the events' originator id when it is what they were saved
     * under: a string id, or a canonical UUID that is not a string id's key */
    size_t len;
    const char *id = lua_tolstring(L, 2, &len);
    int id_idx = string || (cairn_uuid_is_canonical(id, len) && !(g->n && g->recs[0].name_len)) ? 2 : 0;
    for (size_t i = 0; i < g->n; i++) {
        const cairn_gathered *r = &g->recs[i];
        if (cairn_lua_push_event(L, &k, g, r, id_idx, kind) != CAIRN_OK) return raise_malformed(L, r);
        lua_rawseti(L, events, (int)i + 1);
        note_odd(L, &o, g, r, (int)i + 1);
    }
    lua_pushvalue(L, events);
    if (g->n && g->recs[g->n - 1].has_hash) push_hash(L, g->recs[g->n - 1].hash);
    else lua_pushnil(L);
    lua_pushvalue(L, o.list);
    cairn_lua_store_gathered(L, 1, g);
    return 3;
}

/* store:stream_head(id) -> version (0: no events), head (the last event's
 * hash, as read_stream gives it; nil when none), forgotten (true when the
 * stream's data key was destroyed) */
static int lstream_head(lua_State *L)
{
    cairn_store *s = check_store(L);
    uint8_t raw[16];
    int string;
    if (!parse_id(L, s, 2, raw, &string)) { /* a string id no stream can have yet */
        lua_pushnumber(L, 0);
        lua_pushnil(L);
        lua_pushboolean(L, 0);
        return 3;
    }
    uint64_t version;
    uint8_t hash[CAIRN_HASH_BYTES];
    int forgotten;
    int rc = cairn_store_stream_head(s, raw, &version, hash, &forgotten);
    if (rc) return cairn_lua_raise_store(L, s, rc);
    lua_pushnumber(L, (lua_Number)version);
    if (version) push_hash(L, hash);
    else lua_pushnil(L);
    lua_pushboolean(L, forgotten);
    return 3;
}

/* store:read_log({ from, stop, limit, topics, ids } [, versions]) -> ids, events, odd
 * (ids: read exactly these notification ids, ascending, instead of from..stop;
 * replay: events without event_id and metadata, for reads no user sees whole;
 * dcb: DCB events' tables { position, type, data, tags }, see lua_event.h)
 * ids[i] is the notification id of events[i]. */
/* The id at index i (0-based) of the ids list at idx: a whole number >= 1 */
static uint64_t ids_at(lua_State *L, int idx, size_t i)
{
    lua_rawgeti(L, idx, (int)i + 1);
    lua_Number v = lua_tonumber(L, -1);
    lua_pop(L, 1);
    if (!(v >= 1 && v < 9007199254740992.0) || v != (lua_Number)(uint64_t)v)
        cairn_lua_raise(L, CAIRN_SCHEMA, "read_log: ids must be whole numbers >= 1, ascending");
    return (uint64_t)v;
}

/* The query table of a log read (argument 2, with the stack at 3) into q
 * and *kind; what q points to (topics, ids) is anchored on the stack.
 * Returns 1 when nothing can match (a limit or stop of 0, an empty ids list). */
static int log_query(lua_State *L, cairn_log_query *q, cairn_event_kind *kind)
{
    memset(q, 0, sizeof *q);
    int present;
    q->start = field_u64(L, 2, "from", &present);
    if (q->start < 1) q->start = 1;
    q->limit = (size_t)field_u64(L, 2, "limit", &present);
    int empty = present && q->limit == 0;
    q->stop = field_u64(L, 2, "stop", &present);
    empty = empty || (present && q->stop == 0);
    lua_getfield(L, 2, "topics");       /* 4 */
    if (!lua_isnil(L, 4)) {
        luaL_argcheck(L, lua_istable(L, 4), 2, "topics must be a list of strings");
        q->ntopics = lua_objlen(L, 4);
        cairn_slice *topics = lua_newuserdata(L, (q->ntopics ? q->ntopics : 1) * sizeof *topics);
        for (size_t i = 0; i < q->ntopics; i++) {
            lua_rawgeti(L, 4, (int)i + 1);
            topics[i].ptr = lua_tolstring(L, -1, &topics[i].len);
            if (!topics[i].ptr) return cairn_lua_raise(L, CAIRN_SCHEMA, "read_log: topics must be strings");
            lua_pop(L, 1); /* anchored by the topics table */
        }
        q->topics = topics; /* an empty list filters nothing, as in the Python library */
    }
    *kind = field_bool(L, 2, "dcb")      ? CAIRN_EVENT_DCB
            : field_bool(L, 2, "replay") ? CAIRN_EVENT_REPLAY
                                         : CAIRN_EVENT_FULL;
    lua_getfield(L, 2, "ids");          /* exactly these ids (ascending), in one read */
    int want = lua_gettop(L);
    size_t nids = lua_istable(L, want) ? lua_objlen(L, want) : 0;
    uint64_t *listed = nids ? lua_newuserdata(L, nids * sizeof *listed) : NULL; /* anchored on the stack */
    for (size_t i = 0; i < nids; i++) { /* checked before any read */
        listed[i] = ids_at(L, want, i);
        if (i > 0 && listed[i] <= listed[i - 1])
            return cairn_lua_raise(L, CAIRN_SCHEMA, "read_log: ids must be ascending");
    }
    q->ids = listed;
    q->nids = nids;
    return empty || (lua_istable(L, want) && nids == 0);
}

static int lread_log(lua_State *L)
{
    cairn_store *s = check_store(L);
    luaL_checktype(L, 2, LUA_TTABLE);
    int versions = versions_index(L, 3);
    lua_settop(L, 3);
    cairn_log_query q;
    cairn_event_kind kind;
    if (log_query(L, &q, &kind)) { lua_newtable(L); lua_newtable(L); lua_newtable(L); return 3; }
    cairn_gather *g = cairn_lua_store_gather(L, 1);
    read_failure f;
    int rc = cairn_store_read_log(s, &q);
    if (rc) { cairn_store_read_end(s); return cairn_lua_raise_store(L, s, rc); }
    gather_read(s, g, &f);
    if (f.rc != CAIRN_END) return raise_read(L, &f);
    cairn_event_keys k;
    cairn_event_keys_push(L, &k);
    int last_at = lua_gettop(L) + 1;
    lua_pushnil(L); /* the last stream's id string: runs of one stream share it */
    lua_createtable(L, (int)g->n, 0);
    int ids = lua_gettop(L);
    lua_createtable(L, (int)g->n, 0);
    int events = lua_gettop(L);
    lua_newtable(L);
    odd_list o = { versions, lua_gettop(L), 0 };
    const cairn_gathered *last_stream = NULL;
    for (size_t i = 0; i < g->n; i++) {
        const cairn_gathered *r = &g->recs[i];
        if (kind != CAIRN_EVENT_DCB && (!last_stream || memcmp(last_stream->stream_id, r->stream_id, 16) != 0 ||
                                        last_stream->name_len != r->name_len)) {
            char id[CAIRN_UUID_STRLEN];
            if (r->name_len) lua_pushlstring(L, cairn_gather_bytes(g, r->name), r->name_len);
            else {
                cairn_uuid_format(r->stream_id, id);
                lua_pushlstring(L, id, sizeof id);
            }
            lua_replace(L, last_at);
            last_stream = r;
        }
        lua_pushnumber(L, (lua_Number)r->notification_id);
        lua_rawseti(L, ids, (int)i + 1);
        if (cairn_lua_push_event(L, &k, g, r, last_at, kind) != CAIRN_OK) return raise_malformed(L, r);
        lua_rawseti(L, events, (int)i + 1);
        note_odd(L, &o, g, r, (int)i + 1);
    }
    cairn_lua_store_gathered(L, 1, g);
    return 3;
}

static int keep_paged(void *p, const cairn_record *rec) { return cairn_page_add(p, rec); }

/* store:read_page({ from, stop, limit, topics, ids, replay, dcb }) -> page, or nothing when the query is empty
 * The read of read_log as a page for lua/cairn/log_page.lua (lua_page.h);
 * hand it back with store:release_page(page) once its tables are built. */
static int lread_page(lua_State *L)
{
    store_box *box = check_box(L, 1);
    cairn_store *s = box->store;
    luaL_checktype(L, 2, LUA_TTABLE);
    lua_settop(L, 3);
    cairn_log_query q;
    cairn_event_kind kind;
    if (log_query(L, &q, &kind)) return 0;
    cairn_page *p = cairn_page_new_from(L, &box->spare_page, kind);
    read_failure f;
    int rc = cairn_store_read_log(s, &q);
    if (rc) {
        cairn_store_read_end(s);
        cairn_page_release(p, &box->spare_page);
        return cairn_lua_raise_store(L, s, rc);
    }
    read_all(s, keep_paged, p, &f);
    if (f.rc != CAIRN_END || f.malformed) cairn_page_release(p, &box->spare_page);
    if (f.rc != CAIRN_END) return raise_read(L, &f);
    if (f.malformed) return raise_malformed_at(L, f.bad.stream_id, f.bad.version, f.bad.notification_id);
    return 1;
}

/* store:release_page(page): its memory back to the store, for the next page */
static int lrelease_page(lua_State *L)
{
    store_box *box = luaL_checkudata(L, 1, STORE_MT);
    cairn_page *p = luaL_checkudata(L, 2, CAIRN_PAGE_MT);
    if (box->store) cairn_page_release(p, &box->spare_page);
    else cairn_page_free(p);
    return 0;
}

static void set_number(lua_State *L, const char *k, uint64_t v)
{
    lua_pushnumber(L, (lua_Number)v);
    lua_setfield(L, -2, k);
}

/* store:read_snapshot(id [, upto [, known]]) -> nil | state (plain table), version, class_version, head,
 * timestamp_us, class name, string id (nil: a UUID id), record hash, state bytes.
 * known: the record hash of a snapshot read before; when the snapshot found (checked as
 * always) is that record, its body is not opened or decoded again: the state comes back
 * as `true` and the string id as nil (the caller has both from before). */
static int lread_snapshot(lua_State *L)
{
    cairn_store *s = check_store(L);
    uint8_t raw[16];
    int string;
    if (!parse_id(L, s, 2, raw, &string)) { lua_pushnil(L); return 1; }
    int has_lte = !lua_isnoneornil(L, 3);
    lua_Number upto = has_lte ? luaL_checknumber(L, 3) : 0;
    uint64_t lte = upto <= 0 ? 0 : (uint64_t)upto;
    size_t known_len = 0;
    const char *known = lua_isnoneornil(L, 4) ? NULL : luaL_checklstring(L, 4, &known_len);
    lua_settop(L, 4);
    cairn_gather *g = cairn_lua_store_gather(L, 1);
    cairn_record rec;
    int same;
    int rc = cairn_store_read_snapshot(s, raw, has_lte, lte,
                                       known_len == CAIRN_HASH_BYTES ? (const uint8_t *)known : NULL, &rec, &same);
    uint8_t token[CAIRN_HASH_BYTES];
    if (rc == CAIRN_OK) {
        memcpy(token, cairn_store_snapshot_hash(s), CAIRN_HASH_BYTES);
        if (cairn_gather_record(g, &rec) != CAIRN_OK) rc = ENOMEM;
    }
    char msg[512];
    snprintf(msg, sizeof msg, "%s", rc == ENOMEM ? "out of memory reading a snapshot" : cairn_store_errmsg(s));
    cairn_store_read_end(s);
    if (rc == CAIRN_END) { cairn_lua_store_gathered(L, 1, g); lua_pushnil(L); return 1; }
    if (rc) return cairn_lua_raise_rc(L, rc, msg);
    const cairn_gathered *r = &g->recs[0];
    size_t state_bytes = same ? 0 : r->payload_len;
    if (same) {
        lua_pushboolean(L, 1);
    } else {
        lua_createtable(L, 0, 8);
        if (cairn_codec_decode_into(L, (const uint8_t *)cairn_gather_bytes(g, r->payload), r->payload_len, -1)) {
            char id[CAIRN_UUID_STRLEN + 1] = { 0 };
            cairn_uuid_format(raw, id);
            return cairn_lua_raise(L, CAIRN_CORRUPT, "the snapshot of aggregate %s version %llu is malformed", id,
                                   (unsigned long long)r->version);
        }
    }
    lua_pushnumber(L, (lua_Number)r->version);
    lua_pushnumber(L, r->class_version);
    push_hash(L, r->hash);
    lua_pushnumber(L, (lua_Number)r->timestamp_us);
    lua_pushlstring(L, cairn_gather_bytes(g, r->topic), r->topic_len);
    if (r->name_len) lua_pushlstring(L, cairn_gather_bytes(g, r->name), r->name_len);
    else lua_pushnil(L);
    lua_pushlstring(L, (const char *)token, sizeof token);
    lua_pushnumber(L, (lua_Number)state_bytes);
    cairn_lua_store_gathered(L, 1, g);
    return 9;
}

/* store:forget(id): destroy the aggregate's data key */
static int lforget(lua_State *L)
{
    cairn_store *s = check_store(L);
    uint8_t raw[16];
    int string;
    if (!parse_id(L, s, 2, raw, &string))
        return cairn_lua_raise(L, CAIRN_NOTFOUND, "aggregate %s not found in %s", lua_tostring(L, 2),
                               cairn_store_uri(s));
    int rc = cairn_store_forget(s, raw);
    if (rc == CAIRN_NOTFOUND && string) /* named by its string, not its key */
        return cairn_lua_raise(L, CAIRN_NOTFOUND, "aggregate %s not found in %s", lua_tostring(L, 2),
                               cairn_store_uri(s));
    if (rc) return cairn_lua_raise_store(L, s, rc);
    return 0;
}

/* Keep a problem's message (C memory only, on the verify thread or inside the walk). */
typedef struct { cairn_gather *g; int failed; } problems_ctx;

static void keep_problem(void *ctxp, const char *msg)
{
    problems_ctx *c = ctxp;
    if (!c->failed && cairn_gather_entry(c->g, msg, strlen(msg), "", 0) != CAIRN_OK) c->failed = 1;
}

/* A verify (or a rekey) with a progress function runs on a thread of its
 * own: the check holds one read (a rekey one write transaction) and the map
 * lock from start to end, and the progress function is Lua, which must not
 * run while C holds them. The job's thread posts its progress and goes on;
 * this thread, holding nothing, calls the function with the latest figures.
 * The handle belongs to the job's thread meanwhile (box->verifying refuses
 * other uses). */
typedef struct {
    cairn_store *s;
    cairn_verify_report report;
    void (*each)(void *, const char *); /* every problem (verify --all), or NULL */
    void *each_ctx;
    const uint8_t *new_key;             /* set: the job is a rekey to this key */
    int rc;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    uint64_t done, total;
    int posted, finished, stop;
} verify_job;

static int post_progress(void *ctx, uint64_t done, uint64_t total)
{
    verify_job *j = ctx;
    pthread_mutex_lock(&j->mu);
    j->done = done;
    j->total = total;
    j->posted = 1;
    int stop = j->stop;
    pthread_cond_signal(&j->cv);
    pthread_mutex_unlock(&j->mu);
    return stop;
}

static void *verify_thread(void *arg)
{
    verify_job *j = arg;
    j->rc = j->new_key ? cairn_store_rekey_progress(j->s, j->new_key, post_progress, j)
                       : cairn_store_verify_each(j->s, &j->report, post_progress, j, j->each, j->each_ctx);
    pthread_mutex_lock(&j->mu);
    j->finished = 1;
    pthread_cond_signal(&j->cv);
    pthread_mutex_unlock(&j->mu);
    return NULL;
}

/* Run the check (or, with new_key, the rekey) on its thread, calling the
 * progress function at idx (only ever through lua_pcall, so nothing jumps
 * past the join) with what it posts; an error in the function stops a check
 * (a rekey goes on: it is one transaction). */
static int verify_with_progress(lua_State *L, store_box *box, int fn, cairn_verify_report *out,
                                void (*each)(void *, const char *), void *each_ctx, const uint8_t *new_key)
{
    verify_job j;
    memset(&j, 0, sizeof j);
    j.s = box->store;
    j.each = each;
    j.each_ctx = each_ctx;
    j.new_key = new_key;
    if (!lua_checkstack(L, 4) || pthread_mutex_init(&j.mu, NULL) != 0) return ENOMEM;
    if (pthread_cond_init(&j.cv, NULL) != 0) { pthread_mutex_destroy(&j.mu); return ENOMEM; }
    pthread_t th;
    box->verifying = 1;
    int rc = pthread_create(&th, NULL, verify_thread, &j);
    if (rc == 0) {
        pthread_mutex_lock(&j.mu);
        while (!j.finished || j.posted) {
            while (!j.posted && !j.finished) pthread_cond_wait(&j.cv, &j.mu);
            if (!j.posted) continue;
            uint64_t done = j.done, total = j.total;
            j.posted = 0;
            pthread_mutex_unlock(&j.mu);
            lua_pushvalue(L, fn);
            lua_pushnumber(L, (lua_Number)done);
            lua_pushnumber(L, (lua_Number)total);
            int failed = lua_pcall(L, 2, 0, 0) != 0;
            if (failed) lua_pop(L, 1);
            pthread_mutex_lock(&j.mu);
            if (failed) j.stop = 1;
        }
        pthread_mutex_unlock(&j.mu);
        pthread_join(th, NULL);
        rc = j.rc;
        if (out) *out = j.report;
    }
    box->verifying = 0;
    pthread_cond_destroy(&j.cv);
    pthread_mutex_destroy(&j.mu);
    return rc;
}

/* store:rekey(new_base64_key [, progress(done, total)]): re-wrap every data key under a new master key */
static int lrekey(lua_State *L)
{
    store_box *box = check_box(L, 1);
    cairn_store *s = box->store;
    size_t len;
    const char *b64 = luaL_checklstring(L, 2, &len);
    int with_progress = lua_isfunction(L, 3);
    uint8_t key[CAIRN_KEY_BYTES];
    if (cairn_key_decode(b64, len, key) != CAIRN_OK) {
        sodium_memzero(key, sizeof key);
        return cairn_lua_raise(L, CAIRN_CONFIG, "the new cipher key is malformed: expected the base64 of 32 bytes, "
                                                "as `cairn keygen` prints");
    }
    int rc = with_progress ? verify_with_progress(L, box, 3, NULL, NULL, NULL, key) : cairn_store_rekey(s, key);
    sodium_memzero(key, sizeof key);
    if (rc) return cairn_lua_raise_store(L, s, rc);
    return 0;
}

/* store:verify([progress(done, total) [, all]]) -> { records, streams, snapshots, keys_checked, problems,
 * first [, all = { every problem }] } */
static int lverify(lua_State *L)
{
    store_box *box = check_box(L, 1);
    cairn_store *s = box->store;
    int all = lua_toboolean(L, 3);
    lua_settop(L, 3);
    problems_ctx pc = { all ? cairn_gather_new(L) : NULL, 0 };
    cairn_verify_report r;
    int rc = lua_isfunction(L, 2) ? verify_with_progress(L, box, 2, &r, all ? keep_problem : NULL, &pc, NULL)
                                  : cairn_store_verify_each(s, &r, NULL, NULL, all ? keep_problem : NULL, &pc);
    if (rc) return cairn_lua_raise_store(L, s, rc);
    if (pc.failed) return cairn_lua_raise(L, CAIRN_STORE, "out of memory keeping the problems verify found");
    lua_createtable(L, 0, 7);
    set_number(L, "records", r.records);
    set_number(L, "streams", r.streams);
    set_number(L, "snapshots", r.snapshots);
    set_number(L, "keys_checked", r.keys_checked);
    set_number(L, "problems", r.problems);
    if (r.problems) {
        lua_pushstring(L, r.first);
        lua_setfield(L, -2, "first");
    }
    if (all) {
        lua_createtable(L, (int)pc.g->n, 0);
        for (size_t i = 0; i < pc.g->n; i++) {
            lua_pushlstring(L, cairn_gather_bytes(pc.g, pc.g->recs[i].topic), pc.g->recs[i].topic_len);
            lua_rawseti(L, -2, (int)i + 1);
        }
        lua_setfield(L, -2, "all");
        cairn_gather_free(pc.g);
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
    if (rc) return cairn_lua_raise_store(L, s, rc);
    lua_pushnumber(L, (lua_Number)id);
    return 1;
}

static int gather_tracking(void *ctx, cairn_slice name, uint64_t id)
{
    char be[8];
    for (int i = 0; i < 8; i++) be[i] = (char)(id >> (56 - 8 * i));
    return cairn_gather_entry(ctx, name.ptr, name.len, be, sizeof be);
}

/* store:tracking_scan([after [, limit]]) -> { name, id, name, id, ... } in name order
 * (followers' application names, views' "view/application") */
static int ltracking_scan(lua_State *L)
{
    cairn_store *s = check_store(L);
    cairn_slice after = { NULL, 0 };
    if (!lua_isnoneornil(L, 2)) after.ptr = luaL_checklstring(L, 2, &after.len);
    lua_Integer limit = luaL_optinteger(L, 3, 1000);
    luaL_argcheck(L, limit >= 0, 3, "limit >= 0 expected");
    lua_settop(L, 3);
    cairn_gather *g = cairn_lua_store_gather(L, 1);
    int rc = cairn_store_tracking_scan(s, after, (size_t)limit, gather_tracking, g);
    char msg[512];
    snprintf(msg, sizeof msg, "%s", rc == ENOMEM ? "out of memory listing tracking positions" : cairn_store_errmsg(s));
    if (rc) return cairn_lua_raise_rc(L, rc, msg);
    lua_createtable(L, (int)(2 * g->n), 0);
    for (size_t i = 0; i < g->n; i++) {
        const cairn_gathered *r = &g->recs[i];
        const uint8_t *be = (const uint8_t *)cairn_gather_bytes(g, r->payload);
        uint64_t id = 0;
        for (int j = 0; j < 8; j++) id = id << 8 | be[j];
        lua_pushlstring(L, cairn_gather_bytes(g, r->topic), r->topic_len);
        lua_rawseti(L, -2, (int)(2 * i + 1));
        lua_pushnumber(L, (lua_Number)id);
        lua_rawseti(L, -2, (int)(2 * i + 2));
    }
    cairn_lua_store_gathered(L, 1, g);
    return 1;
}

#define ID_PAGE 1000

/* A page of aggregate ids from after (argument 2) on, at most limit (argument 3): those holding
 * snapshots, or (with_versions) every stream with its last version after its id. */
static int id_page(lua_State *L, int with_versions)
{
    cairn_store *s = check_store(L);
    uint8_t after[16], ids[ID_PAGE][16];
    uint64_t versions[ID_PAGE];
    int has_after = !lua_isnoneornil(L, 2), string; /* pages go in key order: string ids by their keys */
    if (has_after && !parse_id(L, s, 2, after, &string))
        return cairn_lua_raise(L, CAIRN_NOTFOUND, "aggregate %s not found in %s", lua_tostring(L, 2),
                               cairn_store_uri(s));
    lua_Integer limit = luaL_optinteger(L, 3, ID_PAGE);
    luaL_argcheck(L, limit >= 0 && limit <= ID_PAGE, 3, "limit from 0 to 1000 expected");
    size_t n = 0;
    int rc = with_versions ? cairn_store_stream_heads(s, has_after ? after : NULL, (size_t)limit, ids, versions, &n)
                           : cairn_store_snapshot_streams(s, has_after ? after : NULL, (size_t)limit, ids, &n);
    if (rc) return cairn_lua_raise_store(L, s, rc);
    int step = with_versions ? 2 : 1;
    lua_createtable(L, (int)(step * n), 0);
    for (size_t i = 0; i < n; i++) {
        char id[CAIRN_UUID_STRLEN];
        cairn_uuid_format(ids[i], id);
        lua_pushlstring(L, id, sizeof id);
        lua_rawseti(L, -2, (int)(step * i + 1));
        if (with_versions) {
            lua_pushnumber(L, (lua_Number)versions[i]);
            lua_rawseti(L, -2, (int)(step * i + 2));
        }
    }
    return 1;
}

/* store:snapshot_streams([after [, limit]]) -> { id, ... }: the aggregates holding snapshots, in id order */
static int lsnapshot_streams(lua_State *L) { return id_page(L, 0); }

/* store:streams([after [, limit]]) -> { id, version, ... }: the aggregates with their last versions, in id order */
static int lstreams(lua_State *L) { return id_page(L, 1); }

static int lstat(lua_State *L)
{
    cairn_store *s = check_store(L);
    cairn_store_stats st;
    int rc = cairn_store_stat(s, &st);
    if (rc) return cairn_lua_raise_store(L, s, rc);
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

void cairn_lua_store_methods(lua_State *L, const luaL_Reg *methods)
{
    luaL_getmetatable(L, CAIRN_STORE_MT);
    lua_getfield(L, -1, "__index");
    luaL_setfuncs(L, methods, 0);
    lua_pop(L, 2);
}

void cairn_lua_store_init(lua_State *L)
{
    static const luaL_Reg methods[] = {
        { "append", lappend },
        { "try_append", ltry_append },
        { "max_id", lmax_id },
        { "tracking_max", ltracking_max },
        { "tracking_scan", ltracking_scan },
        { "snapshot_streams", lsnapshot_streams },
        { "streams", lstreams },
        { "read_snapshot", lread_snapshot },
        { "forget", lforget },
        { "rekey", lrekey },
        { "verify", lverify },
        { "read_stream", lread_stream },
        { "stream_head", lstream_head },
        { "read_log", lread_log },
        { "read_page", lread_page },
        { "release_page", lrelease_page },
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
    lua_pushinteger(L, RECORD_STRIDE);
    lua_setfield(L, -2, "RECORD_STRIDE");
    lua_pushinteger(L, CAIRN_RECORD_FORMAT); /* the record format the store writes */
    lua_setfield(L, -2, "RECORD_FORMAT");
}
