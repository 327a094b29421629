/*
 * lmdb_keys.c -- the LMDB side of forget and rekey: data keys are the
 * 16-byte keys of the `streams` database (lmdb_engine.h); what they hold is
 * the mapper's business (mapper_keys.c).
 */
#include <errno.h>
#include <string.h>

#include "cairn.h"
#include "lmdb_engine.h"


typedef struct {
    const uint8_t *id;
    cairn_guard guard;
} forget_ctx;

/* Tombstone the key, bump the key generation, and delete the stream's
 * snapshots (unreadable now). */
static int forget_in(cairn_lmdb *h, MDB_txn *txn, void *ctxp)
{
    forget_ctx *c = ctxp;
    int rc = cairn_lmdb_guarded(h, txn, c->guard);
    if (rc) return rc;
    MDB_val k = { 16, (void *)c->id }, v;
    rc = mdb_get(txn, h->sh->streams, &k, &v);
    if (rc == MDB_NOTFOUND) return CAIRN_NOTFOUND;
    if (rc) return rc;
    if (v.mv_size == 1) return 0; /* forgotten already */
    uint8_t gone = 0;
    v = (MDB_val){ 1, &gone };
    rc = mdb_put(txn, h->sh->streams, &k, &v, 0);
    if (rc == 0) rc = cairn_lmdb_bump_keygen(h, txn);
    if (rc) return rc;
    MDB_cursor *cur;
    rc = mdb_cursor_open(txn, h->sh->snapshots, &cur);
    if (rc) return rc;
    uint8_t start[CAIRN_STREAM_KEY];
    cairn_stream_key(start, c->id, 0);
    k = (MDB_val){ sizeof start, start };
    rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    while (rc == 0 && k.mv_size == CAIRN_STREAM_KEY && memcmp(k.mv_data, c->id, 16) == 0) {
        rc = mdb_cursor_del(cur, 0);
        if (rc == 0) rc = mdb_cursor_get(cur, &k, &v, MDB_GET_CURRENT);
        if (rc == EINVAL) rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    }
    mdb_cursor_close(cur);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

int cairn_lmdb_forget(cairn_engine *e, const uint8_t id[16], cairn_guard guard)
{
    forget_ctx c = { id, guard };
    return cairn_lmdb_write(LMDB(e), "forgetting an aggregate", forget_in, &c);
}

typedef struct {
    int (*rewrap)(void *ctx, const uint8_t id[16], cairn_slice stored, uint8_t out[CAIRN_WRAPPED_KEY_BYTES]);
    void *ctx;
    cairn_slice keycheck;
    cairn_guard guard;
} rekey_ctx;

static int rekey_in(cairn_lmdb *h, MDB_txn *txn, void *ctxp)
{
    rekey_ctx *c = ctxp;
    int rc = cairn_lmdb_guarded(h, txn, c->guard);
    if (rc) return rc;
    MDB_cursor *cur;
    rc = mdb_cursor_open(txn, h->sh->streams, &cur);
    if (rc) return rc;
    MDB_val k, v;
    uint8_t wrapped[CAIRN_WRAPPED_KEY_BYTES];
    /* the key entries are the 16-byte keys among the stream index's entries */
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0; rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (k.mv_size != 16 || v.mv_size == 1) continue;
        rc = c->rewrap(c->ctx, k.mv_data, (cairn_slice){ v.mv_data, v.mv_size }, wrapped);
        if (rc) break;
        v = (MDB_val){ sizeof wrapped, wrapped };
        rc = mdb_cursor_put(cur, &k, &v, MDB_CURRENT);
        if (rc) break;
    }
    mdb_cursor_close(cur);
    if (rc != MDB_NOTFOUND) return rc;
    rc = cairn_lmdb_bump_keygen(h, txn);
    MDB_val mk = { 8, "keycheck" }, mv = { c->keycheck.len, (void *)c->keycheck.ptr };
    return rc ? rc : mdb_put(txn, h->sh->meta, &mk, &mv, 0);
}

int cairn_lmdb_rekey(cairn_engine *e, int (*rewrap)(void *ctx, const uint8_t id[16], cairn_slice stored,
                                                    uint8_t out[CAIRN_WRAPPED_KEY_BYTES]),
                     void *rewrap_ctx, cairn_slice keycheck, cairn_guard guard)
{
    rekey_ctx c = { rewrap, rewrap_ctx, keycheck, guard };
    return cairn_lmdb_write(LMDB(e), "changing the cipher key", rekey_in, &c);
}
