/* lua_replay.c -- see lua_replay.h. */
#include <string.h>

#include "cairn.h"
#include "lua_codec.h"
#include "lua_replay.h"

#define TOPICS_MAX 8    /* distinct topics in one read (a class defines a few) */
#define FIELDS_MAX 64   /* field names of one event class (apply's parameters) */

/* A topic of the read, with its field names (pointers into the strings of
 * the caller's field lists, which stay anchored on the stack). */
typedef struct {
    const char *topic;
    size_t topic_len;
    int topic_slot;     /* stack index of the topic string */
    int n;
    const char *name[FIELDS_MAX];
    size_t len[FIELDS_MAX];
    int hint[FIELDS_MAX]; /* the slot the k-th stored field went to last time (stored order is stable) */
} topic_fields;

typedef struct {
    topic_fields t[TOPICS_MAX];
    int n;
    int last;           /* the entry found last: runs of one topic are the rule */
} columns;

static int slot_of(void *ctx, uint32_t at, const char *name, size_t len)
{
    topic_fields *t = ctx;
    if (at < FIELDS_MAX) {
        int h = t->hint[at];
        if (h >= 0 && t->len[h] == len && memcmp(t->name[h], name, len) == 0) return h;
    }
    for (int i = 0; i < t->n; i++)
        if (t->len[i] == len && memcmp(t->name[i], name, len) == 0) {
            if (at < FIELDS_MAX) t->hint[at] = i;
            return i;
        }
    return -1; /* a stored field the class no longer takes */
}

/* The topic's entry, made the first time (its string stays on the stack);
 * NULL when the read cannot be columns: no field list, or a topic to upcast. */
static topic_fields *lookup(lua_State *L, columns *c, int fields, int versions, const char *topic, size_t len)
{
    const topic_fields *last = &c->t[c->last];
    if (c->n && last->topic_len == len && memcmp(last->topic, topic, len) == 0) return &c->t[c->last];
    for (int i = 0; i < c->n; i++)
        if (c->t[i].topic_len == len && memcmp(c->t[i].topic, topic, len) == 0) {
            c->last = i;
            return &c->t[i];
        }
    if (c->n == TOPICS_MAX) return NULL;
    lua_pushlstring(L, topic, len);
    int slot = lua_gettop(L);
    if (versions) {
        lua_pushvalue(L, slot);
        lua_rawget(L, versions);
        lua_Number current = lua_tonumber(L, -1);
        lua_pop(L, 1);
        if (current != 0 && current != 1) { lua_pop(L, 1); return NULL; }
    }
    lua_pushvalue(L, slot);
    lua_rawget(L, fields);
    size_t n = lua_istable(L, -1) ? lua_objlen(L, -1) : FIELDS_MAX + 1;
    if (n > FIELDS_MAX) { lua_pop(L, 2); return NULL; }
    topic_fields *t = &c->t[c->n];
    for (size_t k = 0; k < n; k++) {
        lua_rawgeti(L, -1, (int)k + 1);
        int is_string = lua_type(L, -1) == LUA_TSTRING;
        t->name[k] = is_string ? lua_tolstring(L, -1, &t->len[k]) : NULL; /* anchored by the list */
        lua_pop(L, 1);
        if (!is_string) { lua_pop(L, 2); return NULL; }
    }
    lua_pop(L, 1); /* the list; the topic string stays */
    for (int k = 0; k < FIELDS_MAX; k++) t->hint[k] = -1;
    t->topic = topic;
    t->topic_len = len;
    t->topic_slot = slot;
    t->n = (int)n;
    c->last = c->n++;
    return t;
}

/* Does record i start a run (its topic is not the one before's)? The gather
 * stores a topic equal to the one before once, so equal offsets say it. */
static int starts_run(const cairn_gather *g, size_t i)
{
    if (i == 0) return 1;
    const cairn_gathered *r = &g->recs[i], *p = &g->recs[i - 1];
    return r->topic != p->topic &&
           (r->topic_len != p->topic_len ||
            memcmp(cairn_gather_bytes(g, r->topic), cairn_gather_bytes(g, p->topic), r->topic_len) != 0);
}

static topic_fields *topic_of(lua_State *L, columns *c, const cairn_gather *g, size_t i, int fields, int versions)
{
    const cairn_gathered *r = &g->recs[i];
    return lookup(L, c, fields, versions, cairn_gather_bytes(g, r->topic), r->topic_len);
}

int cairn_lua_push_columns(lua_State *L, const cairn_gather *g, int fields, int versions, size_t *bad)
{
    if (g->n == 0 || g->n > (size_t)INT32_MAX) return CAIRN_END;
    int top = lua_gettop(L);
    /* the topics, the five tables, and what decoding one value takes */
    if (!lua_checkstack(L, TOPICS_MAX + 12 + CAIRN_CODEC_SLOTS_STACK)) return CAIRN_END;
    columns c;
    c.n = c.last = 0;
    /* first pass: every record plain and in version order, every topic known */
    uint64_t first = g->recs[0].version;
    size_t total = 0, runs = 0;
    topic_fields *t = NULL;
    for (size_t i = 0; i < g->n; i++) {
        const cairn_gathered *r = &g->recs[i];
        if (r->forgotten || r->class_version != 1 || !r->has_payload || r->version != first + i) t = NULL;
        else if (starts_run(g, i)) t = topic_of(L, &c, g, i, fields, versions), runs++;
        if (!t) { lua_settop(L, top); return CAIRN_END; }
        total += (size_t)t->n;
    }
    if (total > (size_t)INT32_MAX || runs > (size_t)INT32_MAX / 2) { lua_settop(L, top); return CAIRN_END; }
    lua_createtable(L, (int)runs * 2, 0);
    int run_list = lua_gettop(L);
    lua_createtable(L, (int)g->n, 0);
    int stamps = lua_gettop(L);
    lua_createtable(L, (int)total, 0);
    int values = lua_gettop(L);
    int base = 1, run = 0, count = 0;
    for (size_t i = 0; i < g->n; i++) {
        const cairn_gathered *r = &g->recs[i];
        if (starts_run(g, i)) {
            if (run) {
                lua_pushinteger(L, count);
                lua_rawseti(L, run_list, 2 * run);
            }
            t = topic_of(L, &c, g, i, fields, versions); /* found in the first pass */
            lua_pushvalue(L, t->topic_slot);
            lua_rawseti(L, run_list, 2 * run + 1);
            run++;
            count = 0;
        }
        count++;
        lua_pushnumber(L, (lua_Number)r->timestamp_us / 1e6);
        lua_rawseti(L, stamps, (int)i + 1);
        int rc = cairn_codec_decode_slots(L, (const uint8_t *)cairn_gather_bytes(g, r->payload), r->payload_len,
                                          values, base, slot_of, t);
        if (rc) {
            lua_settop(L, top);
            if (rc != CAIRN_END) *bad = i;
            return rc == CAIRN_END ? CAIRN_END : CAIRN_CORRUPT;
        }
        base += t->n;
    }
    lua_pushinteger(L, count);
    lua_rawseti(L, run_list, 2 * run);
    /* the four values in their places (over the topic strings): copied above
     * everything (values is at top + 4 or higher), then each put in place */
    lua_pushvalue(L, run_list);
    lua_pushnumber(L, (lua_Number)first);
    lua_pushvalue(L, stamps);
    lua_pushvalue(L, values);
    for (int i = 4; i >= 1; i--) lua_replace(L, top + i);
    lua_settop(L, top + 4);
    return CAIRN_OK;
}
