/* lua_page.c -- see lua_page.h. The tape follows lua_codec.c's decoder rule
 * for rule (what it accepts, what it refuses as malformed), so both read
 * paths give the same values. */
#include <errno.h>
#include <lauxlib.h>
#include <stdlib.h>
#include <string.h>

#include "cairn.h"
#include "lua_codec.h"
#include "lua_page.h"
#include "uuid.h"

#define PAGE_MT CAIRN_PAGE_MT
#define MAX_DEPTH 64        /* as lua_codec.c: whatever decodes can be stored again */
#define SYM_MAX 64          /* longer strings are not interned */

/* An entry of the page's string index: in use when its gen is the page's
 * (so a new page empties the index without touching it). */
typedef struct cairn_page_slot {
    uint32_t hash, gen;
    int32_t sym;
    int32_t reserved;   /* the string is a header field's name */
} cairn_page_slot;

/* ---- memory ------------------------------------------------------------ */

/* Make room for `more` elements of `size` bytes after `used` in *arr. */
static int grow_to(void *arrp, size_t *cap, size_t used, size_t more, size_t size)
{
    void **arr = arrp;
    size_t c = *cap ? *cap : 64;
    while (c < used + more) {
        if (c > SIZE_MAX / 2 / size) return ENOMEM;
        c *= 2;
    }
    void *a = realloc(*arr, c * size);
    if (!a) return ENOMEM;
    *arr = a;
    *cap = c;
    return CAIRN_OK;
}

static inline int grow(void *arr, size_t *cap, size_t used, size_t more, size_t size)
{
    return used + more <= *cap ? CAIRN_OK : grow_to(arr, cap, used, more, size);
}

/* Append n bytes (or, with src NULL, room for them); *off gets where they start. */
static inline char *add_bytes(cairn_page *p, const void *src, size_t n, size_t *off)
{
    if (grow(&p->bytes, &p->bytes_cap, p->len, n, 1)) return NULL;
    char *at = p->bytes + p->len;
    if (src && n) memcpy(at, src, n);
    *off = p->len;
    p->len += n;
    return at;
}

static inline cairn_page_tok *add_tok(cairn_page *p, int32_t type, int32_t n, double v)
{
    if (p->ntoks >= INT32_MAX || grow(&p->toks, &p->toks_cap, p->ntoks, 1, sizeof *p->toks)) return NULL;
    cairn_page_tok *t = &p->toks[p->ntoks++];
    t->type = type;
    t->n = n;
    t->v = v;
    return t;
}

/* ---- strings: each distinct one once per page --------------------------- */

/* Loads of a fixed size (no call), overlapping when the length is not a multiple. */
static uint32_t hash_bytes(const char *s, size_t len)
{
    uint64_t h = 0x9e3779b97f4a7c15ull ^ len, a, b;
    if (len >= 8) {
        for (size_t i = 0; i + 8 < len; i += 8) {
            memcpy(&a, s + i, 8);
            h = (h ^ a) * 0xff51afd7ed558ccdull;
            h ^= h >> 29;
        }
        memcpy(&b, s + len - 8, 8);
    } else if (len >= 4) {
        uint32_t x, y;
        memcpy(&x, s, 4);
        memcpy(&y, s + len - 4, 4);
        b = (uint64_t)x << 32 | y;
    } else {
        b = len ? (uint64_t)(uint8_t)s[0] << 16 | (uint64_t)(uint8_t)s[len / 2] << 8 | (uint8_t)s[len - 1] : 0;
    }
    h = (h ^ b) * 0xc4ceb9fe1a85ec53ull;
    return (uint32_t)(h ^ h >> 32);
}

/* The header fields' names, by length (none is longer than 18 bytes): a new
 * string of a length no name has is compared with nothing. */
static int is_header_name(const char *s, size_t len)
{
    switch (len) {
    case 4: return memcmp(s, "type", 4) == 0;
    case 5: return memcmp(s, "topic", 5) == 0;
    case 8: return memcmp(s, "event_id", 8) == 0 || memcmp(s, "metadata", 8) == 0 || memcmp(s, "position", 8) == 0;
    case 9: return memcmp(s, "timestamp", 9) == 0;
    case 13: return memcmp(s, "originator_id", 13) == 0;
    case 18: return memcmp(s, "originator_version", 18) == 0;
    default: return 0;
    }
}

static void slot_put(cairn_page_slot *slots, size_t cap, cairn_page_slot e)
{
    size_t i = e.hash & (cap - 1);
    while (slots[i].gen == e.gen) i = (i + 1) & (cap - 1);
    slots[i] = e;
}

/* Keep the index at most half full. */
static int slots_room(cairn_page *p)
{
    if ((size_t)p->nstrs + 1 <= p->slots_cap / 2) return CAIRN_OK;
    size_t cap = p->slots_cap ? p->slots_cap * 2 : 256;
    if (cap > SIZE_MAX / sizeof *p->slots) return ENOMEM;
    cairn_page_slot *s = calloc(cap, sizeof *s);
    if (!s) return ENOMEM;
    for (size_t i = 0; i < p->slots_cap; i++)
        if (p->slots[i].gen == p->gen) slot_put(s, cap, p->slots[i]);
    free(p->slots);
    p->slots = s;
    p->slots_cap = cap;
    return CAIRN_OK;
}

/* The number (1-based) of the page's string s, added if it is new; 0 for lack of memory. */
static int32_t intern(cairn_page *p, const char *s, size_t len, int *reserved)
{
    if (slots_room(p)) return 0;
    uint32_t h = hash_bytes(s, len);
    size_t i = h & (p->slots_cap - 1);
    for (; p->slots[i].gen == p->gen; i = (i + 1) & (p->slots_cap - 1)) {
        const cairn_page_slot *e = &p->slots[i];
        const cairn_page_str *str = &p->strs[e->sym - 1];
        if (e->hash == h && (size_t)str->len == len && memcmp(p->bytes + (size_t)str->off, s, len) == 0) {
            if (reserved) *reserved |= e->reserved;
            return e->sym;
        }
    }
    size_t n = (size_t)p->nstrs, off;
    if (n >= INT32_MAX || grow(&p->strs, &p->strs_cap, n, 1, sizeof *p->strs)) return 0;
    if (!add_bytes(p, s, len, &off)) return 0;
    p->strs[n].off = (double)off;
    p->strs[n].len = (double)len;
    p->nstrs = (double)(n + 1);
    cairn_page_slot e = { h, p->gen, (int32_t)(n + 1), is_header_name(s, len) };
    p->slots[i] = e;
    if (reserved) *reserved |= e.reserved;
    return e.sym;
}

/* ---- the tape: lua_codec.c's decoder, writing tokens -------------------- */

typedef struct {
    const uint8_t *p, *end;
    cairn_page *pg;
    int reserved;       /* a top-level key is a header field's name */
} tape;

static int need(const tape *t, size_t n) { return (size_t)(t->end - t->p) >= n; }

static uint64_t read_be(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++) v = v << 8 | p[i];
    return v;
}

static int tape_value(tape *t, int depth);

static int tape_num(tape *t, double v) { return add_tok(t->pg, CAIRN_TOK_NUM, 0, v) ? CAIRN_OK : ENOMEM; }

static int tape_str(tape *t, size_t len)
{
    if (!need(t, len)) return CAIRN_CORRUPT;
    size_t off;
    if (len > INT32_MAX || !add_bytes(t->pg, t->p, len, &off)) return ENOMEM;
    t->p += len;
    return add_tok(t->pg, CAIRN_TOK_STR, (int32_t)len, (double)off) ? CAIRN_OK : ENOMEM;
}

static int tape_ext(tape *t, int8_t type, size_t len)
{
    if (!need(t, len)) return CAIRN_CORRUPT;
    const uint8_t *body = t->p;
    t->p += len;
    if (type == CAIRN_EXT_UUID && len == 16) {
        size_t off;
        char *at = add_bytes(t->pg, NULL, CAIRN_UUID_STRLEN, &off);
        if (!at) return ENOMEM;
        cairn_uuid_format(body, at);
        return add_tok(t->pg, CAIRN_TOK_STR, CAIRN_UUID_STRLEN, (double)off) ? CAIRN_OK : ENOMEM;
    }
    if (type == CAIRN_EXT_TIME && len == 8) {
        int64_t us = (int64_t)cairn_get_be64(body);
        if ((double)us >= 9223372036854775808.0) return CAIRN_CORRUPT; /* as lua_codec.c */
        return add_tok(t->pg, CAIRN_TOK_TIME, 0, (double)us) ? CAIRN_OK : ENOMEM;
    }
    return CAIRN_CORRUPT;
}

/* tape_value, with a short string taken before the dispatch */
static int tape_item(tape *t, int depth)
{
    if (need(t, 1) && (*t->p & 0xe0) == 0xa0) {
        size_t len = *t->p++ & 0x1f;
        return tape_str(t, len);
    }
    return tape_value(t, depth);
}

/* A map key: a string of at most SYM_MAX bytes is one of the page's strings. */
static int tape_key(tape *t, int depth, int top)
{
    size_t len = 0;
    int n = -1;
    if (need(t, 1)) {
        uint8_t b = *t->p;
        if ((b & 0xe0) == 0xa0) { len = b & 0x1f; n = 0; }
        else if ((b == 0xd9 || b == 0xc4) && need(t, 2)) { len = t->p[1]; n = 1; }
        else if ((b == 0xda || b == 0xc5) && need(t, 3)) { len = (size_t)read_be(t->p + 1, 2); n = 2; }
    }
    if (n >= 0 && len <= SYM_MAX && need(t, 1 + (size_t)n + len)) {
        t->p += 1 + n;
        int32_t sym = intern(t->pg, (const char *)t->p, len, top ? &t->reserved : NULL);
        if (!sym) return ENOMEM;
        t->p += len;
        return add_tok(t->pg, CAIRN_TOK_SYM, sym, 0) ? CAIRN_OK : ENOMEM;
    }
    if (n == 0) { /* a short string key too long to intern */
        t->p++;
        return tape_str(t, len);
    }
    size_t at = t->pg->ntoks;
    int rc = tape_value(t, depth + 1);
    if (rc) return rc;
    const cairn_page_tok *k = &t->pg->toks[at];
    if (k->type == CAIRN_TOK_STR) return CAIRN_OK;
    if (k->type == CAIRN_TOK_NUM && k->v == k->v) return CAIRN_OK;
    return CAIRN_CORRUPT; /* not a string or a number, or NaN */
}

static int tape_pairs(tape *t, uint32_t n, int depth, int top)
{
    for (uint32_t i = 0; i < n; i++) {
        int rc = tape_key(t, depth, top);
        if (!rc) rc = tape_item(t, depth + 1);
        if (rc) return rc;
    }
    return CAIRN_OK;
}

static int tape_array(tape *t, uint32_t n, int depth)
{
    if (depth >= MAX_DEPTH || !need(t, n)) return CAIRN_CORRUPT; /* every element takes at least a byte */
    if (n > INT32_MAX) return ENOMEM;
    if (!add_tok(t->pg, CAIRN_TOK_ARRAY, (int32_t)n, 0)) return ENOMEM;
    for (uint32_t i = 0; i < n; i++) {
        int rc = tape_item(t, depth + 1);
        if (rc) return rc;
    }
    return CAIRN_OK;
}

static int tape_map(tape *t, uint32_t n, int depth)
{
    if (depth >= MAX_DEPTH || !need(t, (size_t)n * 2)) return CAIRN_CORRUPT;
    if (n > INT32_MAX) return ENOMEM;
    if (!add_tok(t->pg, CAIRN_TOK_MAP, (int32_t)n, 0)) return ENOMEM;
    return tape_pairs(t, n, depth, 0);
}

static int tape_value(tape *t, int depth)
{
    if (depth > MAX_DEPTH || !need(t, 1)) return CAIRN_CORRUPT;
    uint8_t b = *t->p++;
    if (b <= 0x7f) return tape_num(t, b);
    if (b >= 0xe0) return tape_num(t, (int8_t)b);
    if ((b & 0xf0) == 0x80) return tape_map(t, b & 0x0f, depth);
    if ((b & 0xf0) == 0x90) return tape_array(t, b & 0x0f, depth);
    if ((b & 0xe0) == 0xa0) return tape_str(t, b & 0x1f);
    static const uint8_t size_of[32] = {
        /* c0 */ 0, 0, 0, 0, 1, 2, 4, 1, 2, 4, 4, 8, 1, 2, 4, 8,
        /* d0 */ 1, 2, 4, 8, 1, 2, 4, 8, 16, 1, 2, 4, 2, 4, 2, 4,
    };
    int n = size_of[b - 0xc0];
    if (!need(t, (size_t)n)) return CAIRN_CORRUPT;
    const uint8_t *p = t->p;
    uint64_t len;
    switch (b) {
    case 0xc0: return add_tok(t->pg, CAIRN_TOK_NIL, 0, 0) ? CAIRN_OK : ENOMEM;
    case 0xc2: return add_tok(t->pg, CAIRN_TOK_FALSE, 0, 0) ? CAIRN_OK : ENOMEM;
    case 0xc3: return add_tok(t->pg, CAIRN_TOK_TRUE, 0, 0) ? CAIRN_OK : ENOMEM;
    case 0xc4: case 0xc5: case 0xc6: /* bin */
    case 0xd9: case 0xda: case 0xdb: /* str */
        len = read_be(p, n);
        t->p += n;
        return tape_str(t, (size_t)len);
    case 0xc7: case 0xc8: case 0xc9: /* ext 8/16/32: length, then type */
        len = read_be(p, n);
        if (!need(t, (size_t)n + 1)) return CAIRN_CORRUPT;
        t->p += n + 1;
        return tape_ext(t, (int8_t)p[n], (size_t)len);
    case 0xca: {
        uint32_t u = (uint32_t)read_be(p, 4);
        float f;
        memcpy(&f, &u, 4);
        t->p += 4;
        return tape_num(t, f);
    }
    case 0xcb: {
        uint64_t u = read_be(p, 8);
        double d;
        memcpy(&d, &u, 8);
        t->p += 8;
        return tape_num(t, d);
    }
    case 0xcc: case 0xcd: case 0xce: case 0xcf:
        t->p += n;
        return tape_num(t, (double)read_be(p, n));
    case 0xd0: t->p += 1; return tape_num(t, (int8_t)p[0]);
    case 0xd1: t->p += 2; return tape_num(t, (int16_t)read_be(p, 2));
    case 0xd2: t->p += 4; return tape_num(t, (int32_t)read_be(p, 4));
    case 0xd3: t->p += 8; return tape_num(t, (double)(int64_t)read_be(p, 8));
    case 0xd4: case 0xd5: case 0xd6: case 0xd7: case 0xd8: /* fixext: type, then 1..16 bytes */
        t->p += 1;
        return tape_ext(t, (int8_t)p[0], (size_t)1 << (b - 0xd4));
    case 0xdc: case 0xdd: t->p += n; return tape_array(t, (uint32_t)read_be(p, n), depth);
    case 0xde: case 0xdf: t->p += n; return tape_map(t, (uint32_t)read_be(p, n), depth);
    default: return CAIRN_CORRUPT; /* 0xc1 is never used */
    }
}

/* An event's fields (or metadata) map onto the tape: *first gets the tape
 * index of its first key, *n its pairs (an empty array is no fields, as in
 * lua_codec.c's fields_count). */
static int tape_fields(cairn_page *pg, const uint8_t *bytes, size_t len, int32_t *first, int32_t *n, int *reserved)
{
    tape t = { bytes, bytes + len, pg, 0 };
    uint32_t pairs;
    *first = (int32_t)pg->ntoks;
    if (len == 1 && bytes[0] == 0x90) { *n = 0; return CAIRN_OK; }
    if (!need(&t, 1)) return CAIRN_CORRUPT;
    uint8_t b = *t.p++;
    if ((b & 0xf0) == 0x80) pairs = b & 0x0f;
    else if (b == 0xde && need(&t, 2)) { pairs = (uint32_t)read_be(t.p, 2); t.p += 2; }
    else if (b == 0xdf && need(&t, 4)) { pairs = (uint32_t)read_be(t.p, 4); t.p += 4; }
    else return CAIRN_CORRUPT;
    if (!need(&t, (size_t)pairs * 2)) return CAIRN_CORRUPT; /* every pair takes at least two bytes */
    if (pairs > INT32_MAX) return ENOMEM;
    int rc = tape_pairs(&t, pairs, 0, 1);
    if (rc) return rc;
    if (t.p != t.end) return CAIRN_CORRUPT; /* trailing bytes */
    *n = (int32_t)pairs;
    if (reserved) *reserved = t.reserved;
    return CAIRN_OK;
}

/* ---- records ------------------------------------------------------------ */

static int is_zero(const uint8_t id[16])
{
    for (int i = 0; i < 16; i++)
        if (id[i]) return 0;
    return 1;
}

/* The originator id's string: the string id, else the stream id as a UUID;
 * a run of one stream's records shares it. */
static int32_t originator(cairn_page *p, const cairn_record *rec)
{
    if (p->last_originator && p->last_name_len == rec->name_len && memcmp(p->last_id, rec->stream_id, 16) == 0)
        return p->last_originator;
    char uuid[CAIRN_UUID_STRLEN];
    int32_t sym;
    if (rec->name_len) {
        sym = intern(p, rec->name, rec->name_len, NULL);
    } else {
        cairn_uuid_format(rec->stream_id, uuid);
        sym = intern(p, uuid, sizeof uuid, NULL);
    }
    memcpy(p->last_id, rec->stream_id, 16);
    p->last_name_len = rec->name_len;
    p->last_originator = sym;
    return sym;
}

/* Is the record's topic the previous record's? (Runs of one topic are common.) */
static int same_topic(const cairn_page *p, const cairn_record *rec)
{
    if (!p->last_topic) return 0;
    const cairn_page_str *t = &p->strs[p->last_topic - 1];
    return (size_t)t->len == rec->topic_len && memcmp(p->bytes + (size_t)t->off, rec->topic, rec->topic_len) == 0;
}

int cairn_page_add(cairn_page *p, const cairn_record *rec)
{
    size_t n = (size_t)p->n;
    if (grow(&p->recs, &p->cap, n, 1, sizeof *p->recs)) return ENOMEM;
    cairn_page_rec *r = &p->recs[n];
    memset(r, 0, sizeof *r);
    r->id = (double)rec->notification_id;
    r->version = (double)rec->version;
    r->timestamp = (double)rec->timestamp_us / 1e6;
    r->class_version = (int32_t)rec->class_version;
    r->forgotten = rec->forgotten != 0;
    r->event_id = -1;
    r->topic = same_topic(p, rec) ? p->last_topic : intern(p, rec->topic, rec->topic_len, NULL);
    if (!r->topic) return ENOMEM;
    p->last_topic = r->topic;
    if (p->kind != CAIRN_EVENT_DCB && !(r->originator = originator(p, rec))) return ENOMEM;
    if (p->kind == CAIRN_EVENT_FULL && !is_zero(rec->event_id)) { /* records written before event ids have none */
        size_t off;
        char *at = add_bytes(p, NULL, CAIRN_UUID_STRLEN, &off);
        if (!at) return ENOMEM;
        cairn_uuid_format(rec->event_id, at);
        r->event_id = (double)off;
    }
    int rc;
    if (rec->payload && (rc = tape_fields(p, rec->payload, rec->payload_len, &r->fields, &r->nfields, &r->reserved)))
        return rc;
    if (p->kind == CAIRN_EVENT_FULL && rec->metadata && rec->metadata_len &&
        (rc = tape_fields(p, rec->metadata, rec->metadata_len, &r->metadata, &r->nmetadata, NULL)))
        return rc;
    p->n = (double)(n + 1);
    return CAIRN_OK;
}

/* ---- the userdata ------------------------------------------------------- */

void cairn_page_free(cairn_page *p)
{
    free(p->recs);
    free(p->toks);
    free(p->strs);
    free(p->bytes);
    free(p->slots);
    memset(p, 0, sizeof *p);
}

static int page_gc(lua_State *L)
{
    cairn_page_free(luaL_checkudata(L, 1, PAGE_MT));
    return 0;
}

cairn_page *cairn_page_new_from(lua_State *L, cairn_page *spare, cairn_event_kind kind)
{
    cairn_page *p = lua_newuserdata(L, sizeof *p);
    *p = *spare;
    memset(spare, 0, sizeof *spare);
    luaL_getmetatable(L, PAGE_MT);
    lua_setmetatable(L, -2);
    p->n = p->nstrs = 0;
    p->ntoks = p->len = 0;
    if (++p->gen == 0) { /* after 2^32 pages: empty the index for real */
        if (p->slots) memset(p->slots, 0, p->slots_cap * sizeof *p->slots);
        p->gen = 1;
    }
    p->kind = kind;
    p->last_originator = p->last_topic = 0;
    return p;
}

/* what a spare may keep between reads; a larger read frees its memory */
#define SPARE_BYTES ((size_t)1 << 20)
#define SPARE_ITEMS ((size_t)1 << 14)

void cairn_page_release(cairn_page *p, cairn_page *spare)
{
    int empty = !spare->recs && !spare->toks && !spare->strs && !spare->bytes && !spare->slots;
    if (empty && p->cap <= SPARE_ITEMS && p->toks_cap <= 4 * SPARE_ITEMS &&
        p->strs_cap <= SPARE_ITEMS && p->slots_cap <= 4 * SPARE_ITEMS && p->bytes_cap <= SPARE_BYTES) {
        *spare = *p;
        memset(p, 0, sizeof *p);
    } else {
        cairn_page_free(p);
    }
}

void cairn_lua_page_init(lua_State *L)
{
    if (luaL_newmetatable(L, PAGE_MT)) {
        lua_pushcfunction(L, page_gc);
        lua_setfield(L, -2, "__gc");
    }
    lua_pop(L, 1);
    /* the sizes log_page.lua's ffi.cdef must agree with */
    lua_pushfstring(L, "tok %d rec %d str %d page %d", (int)sizeof(cairn_page_tok), (int)sizeof(cairn_page_rec),
                    (int)sizeof(cairn_page_str), (int)offsetof(cairn_page, cap));
    lua_setfield(L, -2, "PAGE_LAYOUT");
}
