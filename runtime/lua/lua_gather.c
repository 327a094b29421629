/* lua_gather.c -- see lua_gather.h. */
#include <errno.h>
#include <lauxlib.h>
#include <stdlib.h>
#include <string.h>

#include "cairn.h"
#include "lua_gather.h"

#define GATHER_MT "cairn.gather"

static int gather_gc(lua_State *L)
{
    cairn_gather_free(luaL_checkudata(L, 1, GATHER_MT));
    return 0;
}

cairn_gather *cairn_gather_new(lua_State *L)
{
    cairn_gather *g = lua_newuserdata(L, sizeof *g);
    memset(g, 0, sizeof *g);
    luaL_getmetatable(L, GATHER_MT);
    lua_setmetatable(L, -2);
    return g;
}

void cairn_gather_free(cairn_gather *g)
{
    free(g->recs);
    free(g->bytes);
    memset(g, 0, sizeof *g);
}

/* what a spare may keep between reads; a larger read frees its memory */
#define SPARE_BYTES ((size_t)1 << 20)
#define SPARE_RECS ((size_t)4096)

cairn_gather *cairn_gather_new_from(lua_State *L, cairn_gather *spare)
{
    cairn_gather *g = cairn_gather_new(L);
    *g = *spare;
    g->n = g->len = 0;
    memset(spare, 0, sizeof *spare);
    return g;
}

void cairn_gather_release(cairn_gather *g, cairn_gather *spare)
{
    if (!spare->recs && !spare->bytes && g->cap <= SPARE_RECS && g->bytes_cap <= SPARE_BYTES) {
        *spare = *g;
        memset(g, 0, sizeof *g);
    } else {
        cairn_gather_free(g);
    }
}

/* Append n bytes; *off gets where they start. */
static int add_bytes(cairn_gather *g, const void *p, size_t n, size_t *off)
{
    if (g->len + n > g->bytes_cap) {
        size_t cap = g->bytes_cap ? g->bytes_cap : 4096;
        while (cap < g->len + n) {
            if (cap > SIZE_MAX / 2) return ENOMEM;
            cap *= 2;
        }
        char *b = realloc(g->bytes, cap);
        if (!b) return ENOMEM;
        g->bytes = b;
        g->bytes_cap = cap;
    }
    *off = g->len;
    if (n) memcpy(g->bytes + g->len, p, n);
    g->len += n;
    return CAIRN_OK;
}

static cairn_gathered *add_rec(cairn_gather *g)
{
    if (g->n == g->cap) {
        size_t cap = g->cap ? g->cap * 2 : 64;
        if (cap > SIZE_MAX / sizeof *g->recs) return NULL;
        cairn_gathered *r = realloc(g->recs, cap * sizeof *r);
        if (!r) return NULL;
        g->recs = r;
        g->cap = cap;
    }
    cairn_gathered *r = &g->recs[g->n];
    memset(r, 0, sizeof *r);
    return r;
}

int cairn_gather_record(cairn_gather *g, const cairn_record *rec)
{
    cairn_gathered *r = add_rec(g);
    if (!r) return ENOMEM;
    r->notification_id = rec->notification_id;
    r->version = rec->version;
    r->timestamp_us = rec->timestamp_us;
    memcpy(r->stream_id, rec->stream_id, 16);
    memcpy(r->event_id, rec->event_id, 16);
    r->class_version = rec->class_version;
    r->forgotten = rec->forgotten;
    if (rec->hash) {
        memcpy(r->hash, rec->hash, CAIRN_RECORD_HASH);
        r->has_hash = 1;
    }
    /* a topic equal to the record before's is stored once: a stream's events
     * come in runs of one topic, and equal offsets tell the reader so */
    const cairn_gathered *prev = g->n ? r - 1 : NULL;
    if (prev && prev->topic_len == rec->topic_len && memcmp(g->bytes + prev->topic, rec->topic, rec->topic_len) == 0)
        r->topic = prev->topic;
    else if (add_bytes(g, rec->topic, rec->topic_len, &r->topic))
        return ENOMEM;
    r->topic_len = rec->topic_len;
    if (rec->payload) {
        if (add_bytes(g, rec->payload, rec->payload_len, &r->payload)) return ENOMEM;
        r->payload_len = rec->payload_len;
        r->has_payload = 1;
    }
    if (rec->metadata && rec->metadata_len) {
        if (add_bytes(g, rec->metadata, rec->metadata_len, &r->metadata)) return ENOMEM;
        r->metadata_len = rec->metadata_len;
    }
    if (rec->name_len) {
        if (add_bytes(g, rec->name, rec->name_len, &r->name)) return ENOMEM;
        r->name_len = rec->name_len;
    }
    g->n++;
    return CAIRN_OK;
}

int cairn_gather_entry(cairn_gather *g, const char *key, size_t key_len, const char *value, size_t value_len)
{
    cairn_gathered *r = add_rec(g);
    if (!r) return ENOMEM;
    if (add_bytes(g, key, key_len, &r->topic) || add_bytes(g, value, value_len, &r->payload)) return ENOMEM;
    r->topic_len = key_len;
    r->payload_len = value_len;
    r->has_payload = 1;
    g->n++;
    return CAIRN_OK;
}

void cairn_lua_gather_init(lua_State *L)
{
    if (luaL_newmetatable(L, GATHER_MT)) {
        lua_pushcfunction(L, gather_gc);
        lua_setfield(L, -2, "__gc");
    }
    lua_pop(L, 1);
}
