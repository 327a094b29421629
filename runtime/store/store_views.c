/*
 * store_views.c -- materialised views: keys and values in the store's `views`
 * database, and how far each view has processed each application's log.
 *
 *   views     view name \0 key -> value (cairn_view_value_seal: plain, or sealed in encrypted stores)
 *   tracking  view name "/" application name -> last notification id (u64 big-endian)
 *
 * Application and view names are identifiers (no "/" and no \0), so view
 * keys never mix across views and view tracking never meets a process
 * application's tracking of the same leader. A view's writes and its
 * tracking position commit in one transaction (cairn_view_write).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cairn.h"
#include "store_internal.h"

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

/* Every view value is stored through this pair. In an encrypted store values
 * are sealed with a key derived from the master key; the stored key (view
 * name \0 key) is the associated data, so a value cannot be moved to
 * another key or view unnoticed. */
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
    uint8_t *out = cairn_store_scratch(s, n);
    if (!out) return ENOMEM;
    if (cairn_open(s->view_key, (const uint8_t *)stored_key.ptr, stored_key.len, stored + 1, len - 1, out) != 0)
        return fail_value(s, CAIRN_CORRUPT, stored_key, "the value fails authentication (altered or moved)");
    plain->ptr = (const char *)out;
    plain->len = n;
    return CAIRN_OK;
}

typedef struct {
    cairn_slice view;
    const cairn_view_op *ops;
    size_t n;
    const cairn_tracking *t;
} write_ctx;

static int view_write_in(cairn_store *s, MDB_txn *txn, void *ctxp)
{
    write_ctx *c = ctxp;
    int rc = 0;
    if (c->t) {
        char tk[KEY_MAX];
        size_t tlen = 0;
        rc = tracking_key(s, tk, c->view, (cairn_slice){ c->t->app, c->t->app_len }, &tlen);
        if (rc) return rc;
        cairn_tracking t = { tk, tlen, c->t->id };
        rc = cairn_store_tracking_put_in(s, txn, &t);
        if (rc) return rc;
    }
    for (size_t i = 0; i < c->n && rc == 0; i++) {
        const cairn_view_op *op = &c->ops[i];
        uint8_t kb[KEY_MAX];
        size_t klen = 0;
        rc = view_key(s, kb, c->view, op->key, &klen);
        if (rc) return rc;
        MDB_val k = { klen, kb };
        if (op->del) {
            rc = mdb_del(txn, s->sh->views, &k, NULL);
            if (rc == MDB_NOTFOUND) rc = 0;
        } else {
            MDB_val v = { cairn_view_value_size(s, op->value.len), NULL };
            rc = mdb_put(txn, s->sh->views, &k, &v, MDB_RESERVE);
            if (rc == 0) rc = cairn_view_value_seal(s, (cairn_slice){ (const char *)kb, klen }, op->value, v.mv_data);
        }
    }
    return rc;
}

int cairn_view_write(cairn_store *s, cairn_slice view, const cairn_view_op *ops, size_t n, const cairn_tracking *t)
{
    s->errmsg[0] = '\0';
    if (n == 0 && !t) return CAIRN_OK;
    if (t && t->id == 0) return cairn_store_fail(s, CAIRN_INVALID, "a tracking record needs an id above 0");
    write_ctx c = { view, ops, n, t };
    return cairn_store_write(s, "writing a view", view_write_in, &c);
}

int cairn_view_tracking_max(cairn_store *s, cairn_slice view, cairn_slice app, uint64_t *out)
{
    char tk[KEY_MAX];
    size_t tlen = 0;
    s->errmsg[0] = '\0';
    int rc = tracking_key(s, tk, view, app, &tlen);
    if (rc) return rc;
    return cairn_store_tracking_max(s, tk, tlen, out);
}

int cairn_view_get(cairn_store *s, cairn_slice view, cairn_slice key, cairn_slice *value, int *found)
{
    uint8_t kb[KEY_MAX];
    size_t klen = 0;
    s->errmsg[0] = '\0';
    *found = 0;
    int rc = view_key(s, kb, view, key, &klen);
    if (rc) return rc;
    rc = cairn_store_begin_read(s);
    if (rc) return rc;
    MDB_val k = { klen, kb }, v;
    rc = mdb_get(s->rtxn, s->sh->views, &k, &v);
    if (rc == MDB_NOTFOUND) return CAIRN_OK;
    if (rc) {
        cairn_store_read_end(s);
        return cairn_store_lmdb_failure(s, rc, "reading a view");
    }
    *found = 1;
    rc = cairn_view_value_open(s, (cairn_slice){ (const char *)kb, klen }, v.mv_data, v.mv_size, value);
    if (rc) cairn_store_read_end(s);
    return rc;
}

int cairn_view_scan_start(cairn_store *s, cairn_view_scan *q)
{
    s->errmsg[0] = '\0';
    q->started = 0;
    if (q->view.len + 1 + q->prefix.len > KEY_MAX || (q->after.ptr && q->view.len + 1 + q->after.len > KEY_MAX))
        return cairn_store_fail(s, CAIRN_INVALID, "view %.*s: scan key too long", (int)q->view.len, q->view.ptr);
    int rc = cairn_store_begin_read(s);
    if (rc) return rc;
    rc = mdb_cursor_open(s->rtxn, s->sh->views, &s->rcur);
    if (rc) {
        s->rcur = NULL;
        cairn_store_read_end(s);
        return cairn_store_lmdb_failure(s, rc, "scanning a view");
    }
    return CAIRN_OK;
}

int cairn_view_scan_next(cairn_store *s, cairn_view_scan *q, cairn_slice *key, cairn_slice *value)
{
    MDB_val k, v;
    int rc;
    if (!q->started) {
        uint8_t kb[KEY_MAX];
        size_t klen = 0;
        q->started = 1;
        int after = q->after.ptr != NULL;
        rc = view_key(s, kb, q->view, after ? q->after : q->prefix, &klen);
        if (rc) return rc;
        k = (MDB_val){ klen, kb };
        rc = mdb_cursor_get(s->rcur, &k, &v, MDB_SET_RANGE);
        if (rc == 0 && after && k.mv_size == klen && memcmp(k.mv_data, kb, klen) == 0)
            rc = mdb_cursor_get(s->rcur, &k, &v, MDB_NEXT);
    } else {
        rc = mdb_cursor_get(s->rcur, &k, &v, MDB_NEXT);
    }
    if (rc == MDB_NOTFOUND) return CAIRN_END;
    if (rc) return cairn_store_lmdb_failure(s, rc, "scanning a view");
    size_t head = q->view.len + 1;
    const char *kp = k.mv_data;
    if (k.mv_size < head + q->prefix.len || memcmp(kp, q->view.ptr, q->view.len) != 0 || kp[q->view.len] != 0 ||
        memcmp(kp + head, q->prefix.ptr, q->prefix.len) != 0)
        return CAIRN_END;
    *key = (cairn_slice){ kp + head, k.mv_size - head };
    return cairn_view_value_open(s, (cairn_slice){ kp, k.mv_size }, v.mv_data, v.mv_size, value);
}
