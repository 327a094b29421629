/*
 * lmdb_views.c -- views on LMDB: stored keys and values in the `views`
 * database, a view's tracking positions in `tracking`, written together in
 * one transaction (mapper_views.c builds the keys and seals the values).
 */
#include <string.h>

#include "cairn.h"
#include "lmdb_engine.h"


typedef struct {
    const cairn_view_put *puts;
    size_t n;
    const cairn_tracking *t;
    cairn_guard guard;
} write_ctx;

static int view_write_in(cairn_lmdb *h, MDB_txn *txn, void *ctxp)
{
    write_ctx *c = ctxp;
    int rc = cairn_lmdb_guarded(h, txn, c->guard);
    if (rc == 0 && c->t) rc = cairn_lmdb_tracking_put(h, txn, c->t);
    for (size_t i = 0; i < c->n && rc == 0; i++) {
        const cairn_view_put *p = &c->puts[i];
        MDB_val k = { p->key.len, (void *)p->key.ptr };
        if (p->del) {
            rc = mdb_del(txn, h->sh->views, &k, NULL);
            if (rc == MDB_NOTFOUND) rc = 0;
        } else {
            MDB_val v = { p->value.len, (void *)p->value.ptr };
            rc = mdb_put(txn, h->sh->views, &k, &v, 0);
        }
    }
    return rc;
}

int cairn_lmdb_view_write(cairn_engine *e, const cairn_view_put *puts, size_t n, const cairn_tracking *t,
                          cairn_guard guard)
{
    write_ctx c = { puts, n, t, guard };
    return cairn_lmdb_write(LMDB(e), "writing a view", view_write_in, &c);
}

int cairn_lmdb_view_get(cairn_engine *e, cairn_slice key, cairn_slice *value, int *found)
{
    cairn_lmdb *h = LMDB(e);
    *found = 0;
    int rc = cairn_lmdb_begin_read(h);
    if (rc) return rc;
    MDB_val k = { key.len, (void *)key.ptr }, v;
    rc = mdb_get(h->rtxn, h->sh->views, &k, &v);
    if (rc == MDB_NOTFOUND) return CAIRN_OK;
    if (rc == 0) cairn_lmdb_probe(&v);
    if (rc) {
        cairn_lmdb_read_end(e);
        return cairn_lmdb_failure(h, rc, "reading a view");
    }
    *found = 1;
    *value = (cairn_slice){ v.mv_data, v.mv_size };
    return CAIRN_OK;
}

int cairn_lmdb_view_scan(cairn_engine *e, cairn_slice from, int after)
{
    cairn_lmdb *h = LMDB(e);
    int rc = cairn_lmdb_begin_read(h);
    if (rc) return rc;
    rc = mdb_cursor_open(h->rtxn, h->sh->views, &h->rcur);
    MDB_val k = { from.len, (void *)from.ptr }, v;
    if (rc == 0) rc = mdb_cursor_get(h->rcur, &k, &v, MDB_SET_RANGE);
    if (rc == 0 && after && k.mv_size == from.len && memcmp(k.mv_data, from.ptr, from.len) == 0)
        rc = mdb_cursor_get(h->rcur, &k, &v, MDB_NEXT);
    h->reading = LREAD_VIEW;
    h->started = 0; /* the cursor stands on the first entry (if any) */
    if (rc == MDB_NOTFOUND) {
        h->remaining = 0;
        return CAIRN_OK;
    }
    if (rc) {
        if (h->rcur) { mdb_cursor_close(h->rcur); h->rcur = NULL; }
        cairn_lmdb_read_end(e);
        return cairn_lmdb_failure(h, rc, "scanning a view");
    }
    h->remaining = 1;
    return CAIRN_OK;
}

int cairn_lmdb_view_next(cairn_engine *e, cairn_slice *key, cairn_slice *value)
{
    cairn_lmdb *h = LMDB(e);
    if (h->reading != LREAD_VIEW || h->remaining == 0) return CAIRN_END;
    MDB_val k, v;
    int rc = mdb_cursor_get(h->rcur, &k, &v, h->started ? MDB_NEXT : MDB_GET_CURRENT);
    h->started = 1;
    if (rc == MDB_NOTFOUND) { h->remaining = 0; return CAIRN_END; }
    if (rc == 0) cairn_lmdb_probe(&v);
    if (rc) return cairn_lmdb_failure(h, rc, "scanning a view");
    *key = (cairn_slice){ k.mv_data, k.mv_size };
    *value = (cairn_slice){ v.mv_data, v.mv_size };
    return CAIRN_OK;
}
