/*
 * mapper_views.c -- materialised views: their stored keys and values, the
 * same on every engine.
 *
 *   stored key    view name \0 key -> a format byte, then the msgpack value
 *                 (1, plain) or the value sealed under the view key with the
 *                 stored key as associated data (2, encrypted stores)
 *   tracking      view name "/" application name -> last notification id
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

#include "cairn.h"
#include "mapper.h"

#define KEY_MAX 511 /* LMDB's default maximum key size */
#define VALUE_PLAIN 1
#define VALUE_SEALED 2  /* encrypted stores: nonce || ciphertext || tag under the view key */

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

size_t cairn_view_value_size(cairn_store *s, size_t plain_len)
{
    return 1 + plain_len + (s->encrypted ? CAIRN_SEAL_OVERHEAD : 0);
}

/* Name a stored key in messages: "view V, key K". */
static int fail_value(cairn_store *s, int rc, cairn_slice stored_key, const char *what)
{
    size_t view_len = strnlen(stored_key.ptr, stored_key.len);
    size_t key_at = view_len < stored_key.len ? view_len + 1 : stored_key.len;
    size_t key_len = stored_key.len - key_at;
    return cairn_store_fail(s, rc, "view %.*s, key '%.*s' in %s: %s", (int)view_len, stored_key.ptr,
                            (int)(key_len > 64 ? 64 : key_len), stored_key.ptr + key_at, cairn_store_uri(s), what);
}

int cairn_view_value_seal(cairn_store *s, cairn_slice stored_key, cairn_slice plain, uint8_t *out)
{
    if (!s->encrypted) {
        out[0] = VALUE_PLAIN;
        memcpy(out + 1, plain.ptr, plain.len);
        return CAIRN_OK;
    }
    if (!s->view_key) return fail_value(s, CAIRN_CONFIG, stored_key, "the store is encrypted: set CAIRN_CIPHER_KEY");
    out[0] = VALUE_SEALED;
    cairn_seal(s->view_key, (const uint8_t *)stored_key.ptr, stored_key.len, (const uint8_t *)plain.ptr, plain.len,
               out + 1);
    return CAIRN_OK;
}

int cairn_view_value_open(cairn_store *s, cairn_slice stored_key, const uint8_t *stored, size_t len,
                          cairn_slice *plain)
{
    if (len >= 1 && stored[0] == VALUE_PLAIN) {
        plain->ptr = (const char *)stored + 1;
        plain->len = len - 1;
        return CAIRN_OK;
    }
    if (len < 1 + CAIRN_SEAL_OVERHEAD || stored[0] != VALUE_SEALED)
        return fail_value(s, CAIRN_CORRUPT, stored_key, "the stored value is malformed");
    if (!s->view_key) return fail_value(s, CAIRN_CONFIG, stored_key, "the store is encrypted: set CAIRN_CIPHER_KEY");
    size_t n = len - 1 - CAIRN_SEAL_OVERHEAD;
    if (cairn_store_reserve(&s->buf, &s->buf_cap, n ? n : 1)) return ENOMEM;
    if (cairn_open(s->view_key, (const uint8_t *)stored_key.ptr, stored_key.len, stored + 1, len - 1, s->buf) != 0)
        return fail_value(s, CAIRN_CORRUPT, stored_key, "the value fails authentication (altered or moved)");
    plain->ptr = (const char *)s->buf;
    plain->len = n;
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
    char tk[KEY_MAX];
    cairn_tracking track;
    if (t) {
        size_t tlen = 0;
        int rc = tracking_key(s, tk, view, (cairn_slice){ t->app, t->app_len }, &tlen);
        if (rc) return rc;
        track = (cairn_tracking){ tk, tlen, t->id };
    }
    /* every stored key and sealed value, in one block */
    size_t bytes = n * sizeof(cairn_view_put);
    for (size_t i = 0; i < n; i++) bytes += KEY_MAX + (ops[i].del ? 0 : cairn_view_value_size(s, ops[i].value.len));
    uint8_t *mem = malloc(bytes ? bytes : 1);
    if (!mem) return cairn_store_fail(s, ENOMEM, "out of memory writing a view to %s", s->eng->where);
    cairn_view_put *puts = (cairn_view_put *)mem;
    uint8_t *at = mem + n * sizeof *puts;
    int rc = CAIRN_OK;
    for (size_t i = 0; i < n && rc == CAIRN_OK; i++) {
        size_t klen = 0;
        rc = view_key(s, at, view, ops[i].key, &klen);
        if (rc) break;
        puts[i] = (cairn_view_put){ { (const char *)at, klen }, { NULL, 0 }, ops[i].del };
        at += klen;
        if (!ops[i].del) {
            size_t vlen = cairn_view_value_size(s, ops[i].value.len);
            rc = cairn_view_value_seal(s, puts[i].key, ops[i].value, at);
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
    int rc = view_key(s, kb, view, key, &klen);
    if (rc) return rc;
    cairn_slice stored_key = { (const char *)kb, klen }, stored;
    rc = s->eng->ops->view_get(s->eng, stored_key, &stored, found);
    if (rc || !*found) return rc;
    return cairn_view_value_open(s, stored_key, (const uint8_t *)stored.ptr, stored.len, value);
}

int cairn_view_scan_start(cairn_store *s, cairn_view_scan *q)
{
    cairn_store_read_end(s);
    s->eng->errmsg[0] = '\0';
    q->started = 0;
    if (q->view.len + 1 + q->prefix.len > KEY_MAX || (q->after.ptr && q->view.len + 1 + q->after.len > KEY_MAX))
        return cairn_store_fail(s, CAIRN_INVALID, "view %.*s: scan key too long", (int)q->view.len, q->view.ptr);
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
    cairn_slice k, v;
    int rc = s->eng->ops->view_next(s->eng, &k, &v);
    if (rc) return rc;
    size_t head = q->view.len + 1;
    if (k.len < head + q->prefix.len || memcmp(k.ptr, q->view.ptr, q->view.len) != 0 || k.ptr[q->view.len] != 0 ||
        memcmp(k.ptr + head, q->prefix.ptr, q->prefix.len) != 0)
        return CAIRN_END;
    *key = (cairn_slice){ k.ptr + head, k.len - head };
    return cairn_view_value_open(s, k, (const uint8_t *)v.ptr, v.len, value);
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
