/*
 * mapper_views.c -- materialised views: their stored keys and values, the
 * same on every engine.
 *
 *   plain store   view name \0 key -> 1, then the msgpack value
 *   encrypted     view name \0 H(view name \0 key) -> 3, then, sealed under
 *                 the view key with the stored key as associated data: the
 *                 key's length (u16 big-endian), the key, the msgpack value
 *   tracking      view name "/" application name -> last notification id
 *
 * H is BLAKE2b-256 keyed with a key derived from the view key
 * (mapper_keys.c): an encrypted store holds no view key in plaintext, and a
 * get is still one lookup. What is lost is the order: a scan of an encrypted
 * view reads every entry of the view, keeps those with the prefix and sorts
 * them (cairn_view_scan_start), so it costs the size of the view.
 *
 * Application and view names are identifiers (no "/" and no \0), so view
 * keys never mix across views and view tracking never meets a process
 * application's tracking of the same leader. A view's writes and its
 * tracking position commit in one transaction (cairn_view_write).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "cairn.h"
#include "mapper.h"

#define KEY_MAX 511 /* LMDB's default maximum key size */
#define HASH_LEN 32
#define VALUE_PLAIN 1
#define VALUE_SEALED_V1 2 /* an older cairn's: under a key derived from the master key, the key in plaintext */
#define VALUE_SEALED 3

/* "view \0 key" into buf. */
static int view_key(cairn_store *s, uint8_t buf[KEY_MAX], cairn_slice view, cairn_slice key, size_t *len)
{
    if (view.len + 1 + key.len > KEY_MAX)
        return cairn_store_fail(s, CAIRN_INVALID, "view %.*s: key '%.*s' is too long (at most %d bytes)",
                                (int)view.len, view.ptr, (int)(key.len > 64 ? 64 : key.len), key.ptr,
                                (int)(KEY_MAX - 1 - view.len));
    memcpy(buf, view.ptr, view.len);
    buf[view.len] = 0;
    memcpy(buf + view.len + 1, key.ptr, key.len);
    *len = view.len + 1 + key.len;
    return CAIRN_OK;
}

/* The stored key of an entry: view_key's, or on an encrypted store (view key
 * loaded) view \0 its keyed hash. */
static int stored_key(cairn_store *s, uint8_t buf[KEY_MAX], cairn_slice view, cairn_slice key, size_t *len)
{
    int rc = view_key(s, buf, view, key, len);
    if (rc || !s->encrypted) return rc;
    uint8_t h[HASH_LEN];
    crypto_generichash(h, HASH_LEN, buf, *len, s->view_names, CAIRN_KEY_BYTES);
    memcpy(buf + view.len + 1, h, HASH_LEN);
    *len = view.len + 1 + HASH_LEN;
    return CAIRN_OK;
}

static int tracking_key(cairn_store *s, char buf[KEY_MAX], cairn_slice view, cairn_slice app, size_t *len)
{
    if (view.len + 1 + app.len > KEY_MAX || app.len == 0)
        return cairn_store_fail(s, CAIRN_INVALID, "view %.*s: bad application name", (int)view.len, view.ptr);
    memcpy(buf, view.ptr, view.len);
    buf[view.len] = '/';
    memcpy(buf + view.len + 1, app.ptr, app.len);
    *len = view.len + 1 + app.len;
    return CAIRN_OK;
}

static size_t value_size(cairn_store *s, cairn_slice key, size_t plain_len)
{
    return 1 + plain_len + (s->encrypted ? 2 + key.len + CAIRN_SEAL_OVERHEAD : 0);
}

/* Name an entry in messages: "view V, key K". */
static int fail_value(cairn_store *s, int rc, cairn_slice view, cairn_slice key, const char *what)
{
    return cairn_store_fail(s, rc, "view %.*s, key '%.*s' in %s: %s", (int)view.len, view.ptr,
                            (int)(key.len > 64 ? 64 : key.len), key.ptr, cairn_store_uri(s), what);
}

/* The stored value of key (value_size bytes at out). */
static int value_seal(cairn_store *s, cairn_slice stored_key, cairn_slice key, cairn_slice plain, uint8_t *out)
{
    if (!s->encrypted) {
        out[0] = VALUE_PLAIN;
        memcpy(out + 1, plain.ptr, plain.len);
        return CAIRN_OK;
    }
    size_t n = 2 + key.len + plain.len;
    if (cairn_store_reserve(&s->buf2, &s->buf2_cap, n)) return cairn_store_fail(s, ENOMEM, "out of memory");
    s->buf2[0] = (uint8_t)(key.len >> 8);
    s->buf2[1] = (uint8_t)key.len;
    memcpy(s->buf2 + 2, key.ptr, key.len);
    memcpy(s->buf2 + 2 + key.len, plain.ptr, plain.len);
    out[0] = VALUE_SEALED;
    cairn_seal(s->view_key, (const uint8_t *)stored_key.ptr, stored_key.len, s->buf2, n, out + 1);
    return CAIRN_OK;
}

/* Open a stored value: its key (an encrypted store's; a plain store's is in
 * the stored key) and msgpack value, valid until the next open. `named` is
 * the entry in messages (its key when known). */
static int value_open(cairn_store *s, cairn_slice view, cairn_slice named, cairn_slice stored_key, const uint8_t *stored,
                      size_t len, cairn_slice *key, cairn_slice *plain)
{
    if (len >= 1 && stored[0] == VALUE_PLAIN && !s->encrypted) {
        *plain = (cairn_slice){ (const char *)stored + 1, len - 1 };
        return CAIRN_OK;
    }
    if (len >= 1 && stored[0] == VALUE_SEALED_V1)
        return fail_value(s, CAIRN_CONFIG, view, named,
                          "written by an older cairn (keys in plaintext): delete the view's store and run its "
                          "projection again");
    if (len < 1 + CAIRN_SEAL_OVERHEAD + 2 || stored[0] != VALUE_SEALED || !s->encrypted)
        return fail_value(s, CAIRN_CORRUPT, view, named, "the stored value is malformed");
    size_t n = len - 1 - CAIRN_SEAL_OVERHEAD;
    if (cairn_store_reserve(&s->buf, &s->buf_cap, n)) return cairn_store_fail(s, ENOMEM, "out of memory");
    if (cairn_open(s->view_key, (const uint8_t *)stored_key.ptr, stored_key.len, stored + 1, len - 1, s->buf) != 0)
        return fail_value(s, CAIRN_CORRUPT, view, named, "the value fails authentication (altered or moved)");
    size_t klen = (size_t)s->buf[0] << 8 | s->buf[1];
    if (2 + klen > n) return fail_value(s, CAIRN_CORRUPT, view, named, "the stored value is malformed");
    *key = (cairn_slice){ (const char *)s->buf + 2, klen };
    *plain = (cairn_slice){ (const char *)s->buf + 2 + klen, n - 2 - klen };
    return CAIRN_OK;
}

static int write_check(void *ctx, const cairn_key_state *ks)
{
    return cairn_store_check_keys(ctx, ks);
}

int cairn_view_write(cairn_store *s, cairn_slice view, const cairn_view_op *ops, size_t n, const cairn_tracking *t)
{
    s->eng->errmsg[0] = '\0';
    if (n == 0 && !t) return CAIRN_OK;
    if (s->read_only) return cairn_store_read_only(s);
    if (t && t->id == 0) return cairn_store_fail(s, CAIRN_INVALID, "a tracking record needs an id above 0");
    if (t && t->first > t->id)
        return cairn_store_fail(s, CAIRN_INVALID, "a tracking record's batch starts at %llu, after its id %llu",
                                (unsigned long long)t->first, (unsigned long long)t->id);
    char tk[KEY_MAX];
    cairn_tracking track;
    if (t) {
        size_t tlen = 0;
        int rc = tracking_key(s, tk, view, (cairn_slice){ t->app, t->app_len }, &tlen);
        if (rc) return rc;
        track = (cairn_tracking){ tk, tlen, t->id, t->first };
    }
    int rc = s->encrypted ? cairn_store_view_key(s, 1) : CAIRN_OK;
    if (rc) return rc;
    /* every stored key and sealed value, in one block */
    size_t bytes = n * sizeof(cairn_view_put);
    for (size_t i = 0; i < n; i++)
        bytes += KEY_MAX + (ops[i].del ? 0 : value_size(s, ops[i].key, ops[i].value.len));
    uint8_t *mem = malloc(bytes ? bytes : 1);
    if (!mem) return cairn_store_fail(s, ENOMEM, "out of memory writing a view to %s", s->eng->where);
    cairn_view_put *puts = (cairn_view_put *)mem;
    uint8_t *at = mem + n * sizeof *puts;
    for (size_t i = 0; i < n && rc == CAIRN_OK; i++) {
        size_t klen = 0;
        rc = stored_key(s, at, view, ops[i].key, &klen);
        if (rc) break;
        puts[i] = (cairn_view_put){ { (const char *)at, klen }, { NULL, 0 }, ops[i].del };
        at += klen;
        if (!ops[i].del) {
            size_t vlen = value_size(s, ops[i].key, ops[i].value.len);
            rc = value_seal(s, puts[i].key, ops[i].key, ops[i].value, at);
            puts[i].value = (cairn_slice){ (const char *)at, vlen };
            at += vlen;
        }
    }
    if (rc == CAIRN_OK) {
        cairn_guard g = { write_check, s };
        rc = s->eng->ops->view_write(s->eng, puts, n, t ? &track : NULL, g);
    }
    free(mem);
    return rc;
}

int cairn_view_tracking_max(cairn_store *s, cairn_slice view, cairn_slice app, uint64_t *out)
{
    char tk[KEY_MAX];
    size_t tlen = 0;
    s->eng->errmsg[0] = '\0';
    int rc = tracking_key(s, tk, view, app, &tlen);
    if (rc) return rc;
    return cairn_store_tracking_max(s, tk, tlen, out);
}

int cairn_view_get(cairn_store *s, cairn_slice view, cairn_slice key, cairn_slice *value, int *found)
{
    uint8_t kb[KEY_MAX];
    size_t klen = 0;
    cairn_store_read_end(s);
    s->eng->errmsg[0] = '\0';
    *found = 0;
    int rc = s->encrypted ? cairn_store_view_key(s, 0) : CAIRN_OK;
    if (rc == CAIRN_END) return CAIRN_OK; /* no view written yet */
    if (rc == CAIRN_OK) rc = stored_key(s, kb, view, key, &klen);
    if (rc) return rc;
    cairn_slice skey = { (const char *)kb, klen }, stored, held = key;
    rc = s->eng->ops->view_get(s->eng, skey, &stored, found);
    if (rc || !*found) return rc;
    rc = value_open(s, view, key, skey, (const uint8_t *)stored.ptr, stored.len, &held, value);
    if (rc == CAIRN_OK && (held.len != key.len || memcmp(held.ptr, key.ptr, key.len) != 0))
        rc = fail_value(s, CAIRN_CORRUPT, view, key, "the entry holds another key");
    return rc;
}

/* --- scans --- */

/* An encrypted view's scan: the matching entries, sorted by key. */
typedef struct view_entry {
    uint8_t *mem;           /* key, then value */
    size_t klen, vlen;
} view_entry;

typedef struct cairn_view_sorted {
    view_entry *e;
    size_t n, cap, at;
} cairn_view_sorted;

void cairn_view_scan_free(cairn_store *s)
{
    cairn_view_sorted *v = s->vscan;
    if (!v) return;
    for (size_t i = 0; i < v->n; i++) free(v->e[i].mem);
    free(v->e);
    free(v);
    s->vscan = NULL;
}

static int entry_cmp(const void *a, const void *b)
{
    const view_entry *x = a, *y = b;
    size_t n = x->klen < y->klen ? x->klen : y->klen;
    int c = memcmp(x->mem, y->mem, n);
    return c ? c : (x->klen > y->klen) - (x->klen < y->klen);
}

static int slice_after(cairn_slice k, cairn_slice after)
{
    size_t n = k.len < after.len ? k.len : after.len;
    int c = memcmp(k.ptr, after.ptr, n);
    return c > 0 || (c == 0 && k.len > after.len);
}

static int keep_entry(cairn_view_sorted *v, cairn_slice k, cairn_slice val)
{
    if (v->n == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 64;
        view_entry *e = realloc(v->e, cap * sizeof *e);
        if (!e) return ENOMEM;
        v->e = e;
        v->cap = cap;
    }
    uint8_t *mem = malloc(k.len + val.len + 1);
    if (!mem) return ENOMEM;
    memcpy(mem, k.ptr, k.len);
    memcpy(mem + k.len, val.ptr, val.len);
    v->e[v->n++] = (view_entry){ mem, k.len, val.len };
    return CAIRN_OK;
}

/* Read every entry of an encrypted view, keep those the scan wants, sort them. */
static int gather_sorted(cairn_store *s, cairn_view_scan *q)
{
    cairn_view_sorted *v = calloc(1, sizeof *v);
    if (!v) return cairn_store_fail(s, ENOMEM, "out of memory scanning a view");
    s->vscan = v;
    int rc = cairn_store_view_key(s, 0);
    if (rc == CAIRN_END) return CAIRN_OK; /* no view written yet */
    if (rc) return rc;
    uint8_t kb[KEY_MAX];
    size_t head = q->view.len + 1;
    memcpy(kb, q->view.ptr, q->view.len);
    kb[q->view.len] = 0;
    rc = s->eng->ops->view_scan(s->eng, (cairn_slice){ (const char *)kb, head }, 0);
    cairn_slice sk, sv, k, val;
    while (rc == CAIRN_OK && (rc = s->eng->ops->view_next(s->eng, &sk, &sv)) == CAIRN_OK) {
        if (sk.len < head || memcmp(sk.ptr, kb, head) != 0) { rc = CAIRN_END; break; }
        cairn_slice named = { sk.ptr + head, 0 };
        rc = value_open(s, q->view, named, sk, (const uint8_t *)sv.ptr, sv.len, &k, &val);
        if (rc) break;
        if (k.len < q->prefix.len || memcmp(k.ptr, q->prefix.ptr, q->prefix.len) != 0) continue;
        if (q->after.ptr && !slice_after(k, q->after)) continue;
        if (keep_entry(v, k, val)) rc = cairn_store_fail(s, ENOMEM, "out of memory scanning a view");
    }
    s->eng->ops->read_end(s->eng);
    if (rc != CAIRN_END) return rc;
    if (v->n) qsort(v->e, v->n, sizeof *v->e, entry_cmp); /* v->e is NULL when nothing matched */
    return CAIRN_OK;
}

int cairn_view_scan_start(cairn_store *s, cairn_view_scan *q)
{
    cairn_store_read_end(s);
    cairn_view_scan_free(s);
    s->eng->errmsg[0] = '\0';
    q->started = 0;
    if (q->view.len + 1 + q->prefix.len > KEY_MAX || (q->after.ptr && q->view.len + 1 + q->after.len > KEY_MAX))
        return cairn_store_fail(s, CAIRN_INVALID, "view %.*s: scan key too long", (int)q->view.len, q->view.ptr);
    if (s->encrypted) {
        int rc = gather_sorted(s, q);
        if (rc) { cairn_view_scan_free(s); return rc; }
        q->started = 1;
        return CAIRN_OK;
    }
    uint8_t kb[KEY_MAX];
    size_t klen = 0;
    int after = q->after.ptr != NULL;
    int rc = view_key(s, kb, q->view, after ? q->after : q->prefix, &klen);
    if (rc) return rc;
    q->started = 1;
    return s->eng->ops->view_scan(s->eng, (cairn_slice){ (const char *)kb, klen }, after);
}

int cairn_view_scan_next(cairn_store *s, cairn_view_scan *q, cairn_slice *key, cairn_slice *value)
{
    if (s->encrypted) {
        cairn_view_sorted *v = s->vscan;
        if (!v || v->at >= v->n) return CAIRN_END;
        view_entry *e = &v->e[v->at++];
        *key = (cairn_slice){ (const char *)e->mem, e->klen };
        *value = (cairn_slice){ (const char *)e->mem + e->klen, e->vlen };
        return CAIRN_OK;
    }
    cairn_slice k, v;
    int rc = s->eng->ops->view_next(s->eng, &k, &v);
    if (rc) return rc;
    size_t head = q->view.len + 1;
    if (k.len < head + q->prefix.len || memcmp(k.ptr, q->view.ptr, q->view.len) != 0 || k.ptr[q->view.len] != 0 ||
        memcmp(k.ptr + head, q->prefix.ptr, q->prefix.len) != 0)
        return CAIRN_END;
    *key = (cairn_slice){ k.ptr + head, k.len - head };
    cairn_slice unused;
    return value_open(s, q->view, *key, k, (const uint8_t *)v.ptr, v.len, &unused, value);
}

int cairn_view_names(cairn_store *s, cairn_slice after, size_t limit,
                     int (*each)(void *ctx, cairn_slice view), void *ctx)
{
    char from[KEY_MAX + 1];
    size_t from_len = 0;
    s->eng->errmsg[0] = '\0';
    if (after.ptr) {
        if (after.len >= KEY_MAX) return cairn_store_fail(s, CAIRN_INVALID, "a view name is at most %d bytes", KEY_MAX - 1);
        /* past every "after \0 key": names are identifiers, so "after \1" sorts before the next view */
        memcpy(from, after.ptr, after.len);
        from[after.len] = 1;
        from_len = after.len + 1;
    }
    int rc = CAIRN_OK;
    for (size_t n = 0; n < limit && rc == CAIRN_OK; n++) {
        cairn_store_read_end(s);
        rc = s->eng->ops->view_scan(s->eng, (cairn_slice){ from, from_len }, 0);
        cairn_slice k, v;
        if (rc == CAIRN_OK) rc = s->eng->ops->view_next(s->eng, &k, &v);
        if (rc != CAIRN_OK) break;
        size_t name_len = strnlen(k.ptr, k.len);
        if (name_len == k.len || name_len == 0) {
            rc = cairn_store_fail(s, CAIRN_CORRUPT, "a stored view key in %s is malformed", cairn_store_uri(s));
            break;
        }
        memcpy(from, k.ptr, name_len);
        from[name_len] = 1;
        from_len = name_len + 1;
        cairn_store_read_end(s);
        rc = each(ctx, (cairn_slice){ from, name_len });
    }
    cairn_store_read_end(s);
    return rc == CAIRN_END ? CAIRN_OK : rc;
}

int cairn_view_clear(cairn_store *s, cairn_slice view)
{
    s->eng->errmsg[0] = '\0';
    if (s->read_only) return cairn_store_read_only(s);
    if (!s->eng->ops->view_clear)
        return cairn_store_fail(s, CAIRN_CONFIG, "store %s cannot clear a view (this engine does not offer it)",
                                s->eng->where);
    if (view.len == 0 || view.len + 1 > KEY_MAX || memchr(view.ptr, '/', view.len) || memchr(view.ptr, 0, view.len))
        return cairn_store_fail(s, CAIRN_INVALID, "'%.*s' is not a view name", (int)(view.len > 64 ? 64 : view.len),
                                view.ptr);
    char keys[KEY_MAX], tracking[KEY_MAX];
    memcpy(keys, view.ptr, view.len);
    keys[view.len] = 0;
    memcpy(tracking, view.ptr, view.len);
    tracking[view.len] = '/';
    cairn_guard g = { write_check, s };
    cairn_store_read_end(s);
    return s->eng->ops->view_clear(s->eng, (cairn_slice){ keys, view.len + 1 }, (cairn_slice){ tracking, view.len + 1 },
                                   g);
}
