/* lua_codec.c -- see lua_codec.h. */
#include <errno.h>
#include <lauxlib.h>
#include <math.h>
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cairn.h"
#include "lua_codec.h"
#include "record.h"
#include "uuid.h"

#define MAX_DEPTH 64
#define MAX_SAFE_INTEGER 9007199254740992.0 /* 2^53 */
#define CODEC_KEY "cairn.codec"

typedef struct {
    int is_string;
    const char *str;
    size_t len;
    lua_Number num;
} path_elem;

struct cairn_codec {
    /* encoding */
    uint8_t *buf;
    size_t len, cap;
    int oom;
    const void *visiting[MAX_DEPTH];    /* tables on the current path, for cycles */
    path_elem path[MAX_DEPTH];
    int depth;
};

static int codec_gc(lua_State *L)
{
    cairn_codec *c = lua_touserdata(L, 1);
    free(c->buf);
    c->buf = NULL;
    return 0;
}

cairn_codec *cairn_codec_get(lua_State *L)
{
    lua_getfield(L, LUA_REGISTRYINDEX, CODEC_KEY);
    cairn_codec *c = lua_touserdata(L, -1);
    lua_pop(L, 1);
    if (c) return c;
    c = lua_newuserdata(L, sizeof *c);
    memset(c, 0, sizeof *c);
    lua_createtable(L, 0, 1);
    lua_pushcfunction(L, codec_gc);
    lua_setfield(L, -2, "__gc");
    lua_setmetatable(L, -2);
    lua_setfield(L, LUA_REGISTRYINDEX, CODEC_KEY);
    return c;
}

/* ---- encoding ---------------------------------------------------------- */

static int buf_write(void *data, const char *p, size_t n)
{
    cairn_codec *c = data;
    if (c->len + n > c->cap) {
        size_t cap = c->cap ? c->cap : 256;
        while (cap < c->len + n) cap *= 2;
        uint8_t *b = realloc(c->buf, cap);
        if (!b) { c->oom = 1; return -1; }
        c->buf = b;
        c->cap = cap;
    }
    memcpy(c->buf + c->len, p, n);
    c->len += n;
    return 0;
}

typedef struct {
    msgpack_packer pk;
    cairn_codec *c;
    lua_State *L;
    const char *root;
    char *err;
    size_t errlen;
} encoder;

static int fail_at(encoder *e, const char *what)
{
    char path[512];
    size_t n = (size_t)snprintf(path, sizeof path, "%s", e->root);
    for (int i = 0; i < e->c->depth && n < sizeof path; i++) {
        const path_elem *p = &e->c->path[i];
        if (p->is_string)
            n += (size_t)snprintf(path + n, sizeof path - n, ".%.*s", (int)(p->len > 64 ? 64 : p->len), p->str);
        else
            n += (size_t)snprintf(path + n, sizeof path - n, "[%.14g]", p->num);
    }
    snprintf(e->err, e->errlen, "cannot store %s at %s", what, path);
    return CAIRN_SCHEMA;
}

static int encode_value(encoder *e, int idx);

static void pack_number(msgpack_packer *pk, lua_Number n)
{
    /* -0.0 stays a float so its sign survives */
    if (n == floor(n) && fabs(n) <= MAX_SAFE_INTEGER && !(n == 0 && signbit(n)))
        msgpack_pack_int64(pk, (int64_t)n);
    else
        msgpack_pack_double(pk, n);
}

static int is_time(lua_State *L, int idx)
{
    if (!lua_getmetatable(L, idx)) return 0;
    luaL_getmetatable(L, CAIRN_TIME_MT);
    int same = lua_rawequal(L, -1, -2);
    lua_pop(L, 2);
    return same;
}

typedef struct {
    int is_string;
    const char *str;
    size_t len;
    lua_Number num;
    int slot;               /* the key's stack slot, or 0 */
} map_key;

static int key_cmp(const void *a, const void *b)
{
    const map_key *x = a, *y = b;
    if (x->is_string != y->is_string) return x->is_string - y->is_string; /* numbers first */
    if (!x->is_string) return (x->num > y->num) - (x->num < y->num);
    size_t n = x->len < y->len ? x->len : y->len;
    int c = memcmp(x->str, y->str, n);
    if (c) return c;
    return (x->len > y->len) - (x->len < y->len);
}

static int encode_table(encoder *e, int idx)
{
    lua_State *L = e->L;
    cairn_codec *c = e->c;
    const void *self = lua_topointer(L, idx);
    for (int i = 0; i < c->depth; i++)
        if (c->visiting[i] == self) return fail_at(e, "a table that contains itself (a cycle)");
    if (c->depth >= MAX_DEPTH) return fail_at(e, "a value nested more than 64 deep");
    if (is_time(L, idx)) {
        lua_getfield(L, idx, "us");
        lua_Number us = lua_tonumber(L, -1);
        lua_pop(L, 1);
        /* outside int64 the cast below is undefined (NaN fails this too) */
        if (!(us >= -9223372036854775808.0 && us < 9223372036854775808.0))
            return fail_at(e, "a time outside the range of 64-bit microseconds");
        uint8_t b[8];
        cairn_put_be64(b, (uint64_t)(int64_t)us);
        msgpack_pack_ext(&e->pk, 8, CAIRN_EXT_TIME);
        msgpack_pack_ext_body(&e->pk, b, 8);
        return CAIRN_OK;
    }
    if (lua_getmetatable(L, idx)) {
        lua_pop(L, 1);
        return fail_at(e, "a table with a metatable (an object, not plain data)");
    }
    if (!lua_checkstack(L, 8)) return fail_at(e, "a value too deeply nested for the Lua stack");

    /* one pass over the keys: count them, check for an array 1..n */
    size_t n = lua_objlen(L, idx), count = 0;
    int is_array = 1;
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        lua_pop(L, 1);
        count++;
        if (is_array) {
            if (lua_type(L, -1) != LUA_TNUMBER) is_array = 0;
            else {
                lua_Number k = lua_tonumber(L, -1);
                if (k != floor(k) || k < 1 || k > (lua_Number)n) is_array = 0;
            }
        }
    }
    if (count != n) is_array = 0;
    if (count == 0) is_array = 1;

    c->visiting[c->depth] = self;
    int rc = CAIRN_OK;
    if (is_array) {
        msgpack_pack_array(&e->pk, count);
        for (size_t i = 1; i <= count && rc == CAIRN_OK; i++) {
            c->path[c->depth] = (path_elem){ 0, NULL, 0, (lua_Number)i };
            c->depth++;
            lua_rawgeti(L, idx, (int)i);
            rc = encode_value(e, lua_gettop(L));
            lua_pop(L, 1);
            c->depth--;
        }
        return rc;
    }
    /* a map: sort the keys so equal tables encode to equal bytes */
    map_key small[16];
    map_key *keys = count <= 16 ? small : malloc(count * sizeof *keys);
    if (!keys) { c->oom = 1; return ENOMEM; }
    size_t k = 0;
    /* a small map's keys stay on the stack (slots base..), so its values are
     * read back without interning each key string again */
    int base = lua_gettop(L) + 1, kept = keys == small && lua_checkstack(L, (int)count + 8);
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        lua_pop(L, 1);
        int t = lua_type(L, -1);
        if (kept) {
            lua_pushvalue(L, -1);
            lua_insert(L, -2);
        }
        if (t == LUA_TSTRING) {
            keys[k].is_string = 1;
            keys[k].str = lua_tolstring(L, -1, &keys[k].len); /* anchored by the table */
        } else if (t == LUA_TNUMBER) {
            keys[k].is_string = 0;
            keys[k].num = lua_tonumber(L, -1);
        } else {
            lua_pop(L, 1);
            rc = fail_at(e, t == LUA_TBOOLEAN ? "a boolean table key" : "a table key that is not a string or number");
            goto done;
        }
        keys[k].slot = kept ? base + (int)k : 0;
        k++;
    }
    if (count > 1) qsort(keys, count, sizeof *keys, key_cmp);
    msgpack_pack_map(&e->pk, count);
    for (size_t i = 0; i < count && rc == CAIRN_OK; i++) {
        if (keys[i].is_string) {
            msgpack_pack_str(&e->pk, keys[i].len);
            msgpack_pack_str_body(&e->pk, keys[i].str, keys[i].len);
        } else {
            pack_number(&e->pk, keys[i].num);
        }
        if (keys[i].slot) lua_pushvalue(L, keys[i].slot);
        else if (keys[i].is_string) lua_pushlstring(L, keys[i].str, keys[i].len);
        else lua_pushnumber(L, keys[i].num);
        c->path[c->depth] = (path_elem){ keys[i].is_string, keys[i].str, keys[i].len, keys[i].num };
        c->depth++;
        lua_rawget(L, idx);
        rc = encode_value(e, lua_gettop(L));
        lua_pop(L, 1);
        c->depth--;
    }
done:
    lua_settop(L, base - 1); /* the kept keys */
    if (keys != small) free(keys);
    return rc;
}

static int encode_value(encoder *e, int idx)
{
    lua_State *L = e->L;
    switch (lua_type(L, idx)) {
    case LUA_TNIL: msgpack_pack_nil(&e->pk); return CAIRN_OK;
    case LUA_TBOOLEAN:
        if (lua_toboolean(L, idx)) msgpack_pack_true(&e->pk); else msgpack_pack_false(&e->pk);
        return CAIRN_OK;
    case LUA_TNUMBER: pack_number(&e->pk, lua_tonumber(L, idx)); return CAIRN_OK;
    case LUA_TSTRING: {
        size_t len;
        const char *s = lua_tolstring(L, idx, &len);
        if (cairn_uuid_is_canonical(s, len)) {
            uint8_t id[16];
            cairn_uuid_parse(s, len, id);
            msgpack_pack_ext(&e->pk, 16, CAIRN_EXT_UUID);
            msgpack_pack_ext_body(&e->pk, id, 16);
        } else {
            msgpack_pack_str(&e->pk, len);
            msgpack_pack_str_body(&e->pk, s, len);
        }
        return CAIRN_OK;
    }
    case LUA_TTABLE: return encode_table(e, idx);
    default: {
        char what[64];
        snprintf(what, sizeof what, "a %s", lua_typename(L, lua_type(L, idx)));
        return fail_at(e, what);
    }
    }
}

int cairn_codec_encode(lua_State *L, cairn_codec *c, int idx, const char *root,
                       const uint8_t **out, size_t *len, char *err, size_t errlen)
{
    if (idx < 0) idx = lua_gettop(L) + idx + 1;
    encoder e = { .c = c, .L = L, .root = root, .err = err, .errlen = errlen };
    msgpack_packer_init(&e.pk, c, buf_write);
    c->len = 0;
    c->oom = 0;
    c->depth = 0;
    int top = lua_gettop(L);
    int rc = encode_value(&e, idx);
    lua_settop(L, top);
    if (rc == CAIRN_OK && c->oom) rc = ENOMEM;
    if (rc == ENOMEM) snprintf(err, errlen, "out of memory encoding %s", root);
    *out = c->buf;
    *len = c->len;
    return rc;
}

/* ---- decoding ---------------------------------------------------------- */

void cairn_codec_push_time(lua_State *L, int64_t us)
{
    lua_createtable(L, 0, 1);
    lua_pushnumber(L, (lua_Number)us);
    lua_setfield(L, -2, "us");
    luaL_getmetatable(L, CAIRN_TIME_MT);
    lua_setmetatable(L, -2);
}

/* A direct msgpack reader that pushes Lua values as it goes: no intermediate
 * objects, no allocation besides the Lua values themselves. */
typedef struct {
    const uint8_t *p, *end;
} reader;

static int need(reader *r, size_t n) { return (size_t)(r->end - r->p) >= n; }

static uint64_t read_be(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++) v = v << 8 | p[i];
    return v;
}

static int push_value(lua_State *L, reader *r, int depth);

static int push_str(lua_State *L, reader *r, size_t len)
{
    if (!need(r, len)) return CAIRN_CORRUPT;
    lua_pushlstring(L, (const char *)r->p, len);
    r->p += len;
    return CAIRN_OK;
}

static int push_ext(lua_State *L, reader *r, int8_t type, size_t len)
{
    if (!need(r, len)) return CAIRN_CORRUPT;
    const uint8_t *body = r->p;
    r->p += len;
    if (type == CAIRN_EXT_UUID && len == 16) {
        char s[CAIRN_UUID_STRLEN];
        cairn_uuid_format(body, s);
        lua_pushlstring(L, s, sizeof s);
        return CAIRN_OK;
    }
    if (type == CAIRN_EXT_TIME && len == 8) {
        int64_t us = (int64_t)cairn_get_be64(body);
        /* the encoder never writes these: as doubles they round to 2^63, which it refuses */
        if ((lua_Number)us >= 9223372036854775808.0) return CAIRN_CORRUPT;
        cairn_codec_push_time(L, us);
        return CAIRN_OK;
    }
    return CAIRN_CORRUPT;
}

/* push_value, with a short string (most keys, values and list items) taken
 * before the dispatch: decoding a 10,000-name list cost 15% less. */
static inline int push_item(lua_State *L, reader *r, int depth)
{
    if (need(r, 1) && (*r->p & 0xe0) == 0xa0) {
        size_t len = *r->p & 0x1f;
        if (!need(r, len + 1)) return CAIRN_CORRUPT;
        lua_pushlstring(L, (const char *)r->p + 1, len);
        r->p += len + 1;
        return CAIRN_OK;
    }
    return push_value(L, r, depth);
}

void cairn_codec_names_push(lua_State *L, cairn_codec_names *c)
{
    c->base = lua_gettop(L) + 1;
    for (int i = 0; i < CAIRN_CODEC_NAMES_N; i++) {
        lua_pushnil(L);
        c->name[i] = NULL;
        c->len[i] = 0;
    }
    c->next = 0;
}

/* Push the name of len bytes at r (checked to be there), from the cache when
 * it holds it; otherwise intern it and keep it in the oldest slot. */
static void push_name(lua_State *L, reader *r, size_t len, cairn_codec_names *c)
{
    const char *s = (const char *)r->p;
    r->p += len;
    for (int i = 0; i < CAIRN_CODEC_NAMES_N; i++)
        if (c->len[i] == len && c->name[i] && memcmp(c->name[i], s, len) == 0) {
            lua_pushvalue(L, c->base + i);
            return;
        }
    int i = c->next;
    c->next = (i + 1) % CAIRN_CODEC_NAMES_N;
    lua_pushlstring(L, s, len);
    lua_pushvalue(L, -1);
    lua_replace(L, c->base + i);
    c->name[i] = s;
    c->len[i] = len;
}

/* Read n key/value pairs into the table at the top of the stack; names, when
 * not NULL, caches the short string keys (the top level of an event only). */
static int read_pairs(lua_State *L, reader *r, uint32_t n, int depth, cairn_codec_names *names)
{
    if (!lua_checkstack(L, 4)) return CAIRN_CORRUPT; /* a key and a value (a time takes 3) at a time */
    for (uint32_t i = 0; i < n; i++) {
        int rc;
        if (need(r, 1) && (*r->p & 0xe0) == 0xa0) { /* a short string key, the usual case */
            size_t len = *r->p++ & 0x1f;
            if (names && need(r, len)) push_name(L, r, len, names);
            else if ((rc = push_str(L, r, len))) return rc;
            rc = push_item(L, r, depth + 1);
            if (rc) { lua_pop(L, 1); return rc; }
            lua_rawset(L, -3);
            continue;
        }
        rc = push_value(L, r, depth + 1);
        if (rc) return rc;
        int kt = lua_type(L, -1);
        if (kt != LUA_TSTRING && kt != LUA_TNUMBER) { lua_pop(L, 1); return CAIRN_CORRUPT; }
        if (kt == LUA_TNUMBER) {
            lua_Number k = lua_tonumber(L, -1);
            if (k != k) { lua_pop(L, 1); return CAIRN_CORRUPT; } /* NaN key */
        }
        rc = push_value(L, r, depth + 1);
        if (rc) { lua_pop(L, 1); return rc; }
        lua_rawset(L, -3);
    }
    return CAIRN_OK;
}

/* Containers nest at most MAX_DEPTH deep, as the encoder allows: whatever
 * decodes can be stored again. */
static int push_array(lua_State *L, reader *r, uint32_t n, int depth)
{
    if (depth >= MAX_DEPTH || !need(r, n)) return CAIRN_CORRUPT; /* every element takes at least a byte */
    if (!lua_checkstack(L, 4)) return CAIRN_CORRUPT; /* the table and one element (a time takes 3) */
    lua_createtable(L, (int)n, 0);
    for (uint32_t i = 0; i < n; i++) {
        int rc = push_item(L, r, depth + 1);
        if (rc) { lua_pop(L, 1); return rc; }
        lua_rawseti(L, -2, (int)i + 1);
    }
    return CAIRN_OK;
}

static int push_map(lua_State *L, reader *r, uint32_t n, int depth)
{
    if (depth >= MAX_DEPTH || !need(r, (size_t)n * 2)) return CAIRN_CORRUPT;
    lua_createtable(L, 0, (int)n);
    int rc = read_pairs(L, r, n, depth, NULL);
    if (rc) lua_pop(L, 1);
    return rc;
}

static int push_value(lua_State *L, reader *r, int depth)
{
    /* room for the value itself was checked by whoever holds the stack: the
     * containers (push_array, read_pairs) and the entry points */
    if (depth > MAX_DEPTH || !need(r, 1)) return CAIRN_CORRUPT;
    uint8_t b = *r->p++;
    if (b <= 0x7f) { lua_pushnumber(L, b); return CAIRN_OK; }
    if (b >= 0xe0) { lua_pushnumber(L, (int8_t)b); return CAIRN_OK; }
    if ((b & 0xf0) == 0x80) return push_map(L, r, b & 0x0f, depth);
    if ((b & 0xf0) == 0x90) return push_array(L, r, b & 0x0f, depth);
    if ((b & 0xe0) == 0xa0) return push_str(L, r, b & 0x1f);
    static const uint8_t size_of[32] = {
        /* c0 */ 0, 0, 0, 0, 1, 2, 4, 1, 2, 4, 4, 8, 1, 2, 4, 8,
        /* d0 */ 1, 2, 4, 8, 1, 2, 4, 8, 16, 1, 2, 4, 2, 4, 2, 4,
    };
    int n = size_of[b - 0xc0];
    if (!need(r, (size_t)n)) return CAIRN_CORRUPT;
    const uint8_t *p = r->p;
    uint64_t len;
    switch (b) {
    case 0xc0: lua_pushnil(L); return CAIRN_OK;
    case 0xc2: lua_pushboolean(L, 0); return CAIRN_OK;
    case 0xc3: lua_pushboolean(L, 1); return CAIRN_OK;
    case 0xc4: case 0xc5: case 0xc6: /* bin */
    case 0xd9: case 0xda: case 0xdb: /* str */
        len = read_be(p, n);
        r->p += n;
        return push_str(L, r, (size_t)len);
    case 0xc7: case 0xc8: case 0xc9: /* ext 8/16/32: length, then type */
        len = read_be(p, n);
        if (!need(r, (size_t)n + 1)) return CAIRN_CORRUPT;
        r->p += n + 1;
        return push_ext(L, r, (int8_t)p[n], (size_t)len);
    case 0xca: {
        uint32_t u = (uint32_t)read_be(p, 4);
        float f;
        memcpy(&f, &u, 4);
        r->p += 4;
        lua_pushnumber(L, f);
        return CAIRN_OK;
    }
    case 0xcb: {
        uint64_t u = read_be(p, 8);
        double d;
        memcpy(&d, &u, 8);
        r->p += 8;
        lua_pushnumber(L, d);
        return CAIRN_OK;
    }
    case 0xcc: case 0xcd: case 0xce: case 0xcf:
        r->p += n;
        lua_pushnumber(L, (lua_Number)read_be(p, n));
        return CAIRN_OK;
    case 0xd0: r->p += 1; lua_pushnumber(L, (int8_t)p[0]); return CAIRN_OK;
    case 0xd1: r->p += 2; lua_pushnumber(L, (int16_t)read_be(p, 2)); return CAIRN_OK;
    case 0xd2: r->p += 4; lua_pushnumber(L, (int32_t)read_be(p, 4)); return CAIRN_OK;
    case 0xd3: r->p += 8; lua_pushnumber(L, (lua_Number)(int64_t)read_be(p, 8)); return CAIRN_OK;
    case 0xd4: case 0xd5: case 0xd6: case 0xd7: case 0xd8: /* fixext: type, then 1..16 bytes */
        r->p += 1;
        return push_ext(L, r, (int8_t)p[0], (size_t)1 << (b - 0xd4));
    case 0xdc: case 0xdd: r->p += n; return push_array(L, r, (uint32_t)read_be(p, n), depth);
    case 0xde: case 0xdf: r->p += n; return push_map(L, r, (uint32_t)read_be(p, n), depth);
    default: return CAIRN_CORRUPT; /* 0xc1 is never used */
    }
}

int cairn_codec_decode(lua_State *L, const uint8_t *p, size_t len)
{
    reader r = { p, p + len };
    int top = lua_gettop(L);
    if (!lua_checkstack(L, 3)) return CAIRN_CORRUPT; /* one value (a time takes 3) */
    int rc = push_value(L, &r, 0);
    if (rc == CAIRN_OK && r.p != r.end) rc = CAIRN_CORRUPT; /* trailing bytes */
    if (rc) lua_settop(L, top);
    return rc;
}

/* The number of pairs of an event's fields map at r (events without fields
 * are stored as an empty array: 0). */
static int fields_count(reader *r, uint32_t *n)
{
    if (r->end - r->p == 1 && r->p[0] == 0x90) {
        r->p++;
        *n = 0;
        return CAIRN_OK;
    }
    if (!need(r, 1)) return CAIRN_CORRUPT;
    uint8_t b = *r->p++;
    if ((b & 0xf0) == 0x80) *n = b & 0x0f;
    else if (b == 0xde && need(r, 2)) { *n = (uint32_t)read_be(r->p, 2); r->p += 2; }
    else if (b == 0xdf && need(r, 4)) { *n = (uint32_t)read_be(r->p, 4); r->p += 4; }
    else return CAIRN_CORRUPT;
    return CAIRN_OK;
}

int cairn_codec_decode_into(lua_State *L, const uint8_t *p, size_t len, int idx)
{
    return cairn_codec_decode_fields(L, p, len, idx, NULL);
}

int cairn_codec_decode_fields(lua_State *L, const uint8_t *p, size_t len, int idx, cairn_codec_names *c)
{
    reader r = { p, p + len };
    uint32_t n;
    if (fields_count(&r, &n) != CAIRN_OK) return CAIRN_CORRUPT;
    if (idx < 0) idx = lua_gettop(L) + idx + 1;
    int top = lua_gettop(L);
    lua_pushvalue(L, idx);
    int rc = read_pairs(L, &r, n, 0, c);
    if (rc == CAIRN_OK && r.p != r.end) rc = CAIRN_CORRUPT;
    lua_settop(L, top);
    return rc;
}

int cairn_codec_decode_slots(lua_State *L, const uint8_t *p, size_t len, int dest, int base,
                             cairn_codec_slot_fn slot_of, void *ctx)
{
    reader r = { p, p + len };
    uint32_t n;
    if (fields_count(&r, &n) != CAIRN_OK) return CAIRN_CORRUPT;
    if (!need(&r, (size_t)n * 2)) return CAIRN_CORRUPT;
    for (uint32_t i = 0; i < n; i++) {
        if (!need(&r, 1)) return CAIRN_CORRUPT;
        size_t klen;
        uint8_t b = *r.p;
        if ((b & 0xe0) == 0xa0) { klen = b & 0x1f; r.p += 1; }
        else if (b == 0xd9 && need(&r, 2)) { klen = r.p[1]; r.p += 2; }
        else return CAIRN_END; /* field names are short strings; anything else takes the table path */
        if (!need(&r, klen)) return CAIRN_CORRUPT;
        int slot = slot_of(ctx, i, (const char *)r.p, klen);
        r.p += klen;
        int rc = push_item(L, &r, 1);
        if (rc) return rc;
        if (slot >= 0) lua_rawseti(L, dest, base + slot);
        else lua_pop(L, 1);
    }
    return r.p == r.end ? CAIRN_OK : CAIRN_CORRUPT;
}
