/*
 * lmdb_append.c -- saves on LMDB: one write transaction (group-committed
 * with other threads' saves, lmdb_txn.c) that reads what the batch depends
 * on, lets the mapper seal it (recorder.h), and writes the records under
 * gap-free notification ids; and the key state every transaction checks.
 */
#include <string.h>

#include "cairn.h"
#include "lmdb_engine.h"
#include "uuid.h"

static int meta_get(cairn_lmdb *h, MDB_txn *txn, const char *name, cairn_slice *out)
{
    MDB_val k = { strlen(name), (void *)name }, v;
    int rc = mdb_get(txn, h->sh->meta, &k, &v);
    *out = rc == 0 ? (cairn_slice){ v.mv_data, v.mv_size } : (cairn_slice){ NULL, 0 };
    return rc == MDB_NOTFOUND ? 0 : rc;
}

static int meta_put(cairn_lmdb *h, MDB_txn *txn, const char *name, cairn_slice value)
{
    MDB_val k = { strlen(name), (void *)name }, v = { value.len, (void *)value.ptr };
    return mdb_put(txn, h->sh->meta, &k, &v, 0);
}

int cairn_lmdb_key_state_in(cairn_lmdb *h, MDB_txn *txn, cairn_key_state *ks)
{
    cairn_slice gen;
    memset(ks, 0, sizeof *ks);
    ks->known = 1;
    int rc = meta_get(h, txn, "cipher", &ks->cipher);
    if (rc == 0 && ks->cipher.ptr) rc = meta_get(h, txn, "keycheck", &ks->keycheck);
    if (rc == 0) rc = meta_get(h, txn, "keygen", &gen);
    if (rc == 0 && gen.len == 8) ks->keygen = cairn_get_be64((const uint8_t *)gen.ptr);
    MDB_stat st;
    if (rc == 0) rc = mdb_stat(txn, h->sh->log, &st);
    if (rc == 0) ks->empty = st.ms_entries == 0;
    return rc;
}

int cairn_lmdb_bump_keygen(cairn_lmdb *h, MDB_txn *txn)
{
    cairn_slice gen;
    int rc = meta_get(h, txn, "keygen", &gen);
    if (rc) return rc;
    uint8_t next[8];
    cairn_put_be64(next, (gen.len == 8 ? cairn_get_be64((const uint8_t *)gen.ptr) : 0) + 1);
    return meta_put(h, txn, "keygen", (cairn_slice){ (const char *)next, 8 });
}

int cairn_lmdb_key_state(cairn_engine *e, int (*use)(void *ctx, const cairn_key_state *ks), void *ctx)
{
    cairn_lmdb *h = LMDB(e);
    int own = !h->ractive;
    int rc = own ? cairn_lmdb_begin_read(h) : CAIRN_OK;
    if (rc) return rc;
    cairn_key_state ks;
    rc = cairn_lmdb_key_state_in(h, h->rtxn, &ks);
    if (rc == 0) rc = cairn_lmdb_read_still_valid(h, "reading the key state");
    if (rc == 0) rc = use(ctx, &ks);
    else rc = cairn_lmdb_failure(h, rc, "reading the key state");
    if (own) cairn_lmdb_read_end(e);
    return rc;
}

/* A guard's check of the key state at the start of a write transaction. */
static int guarded(cairn_lmdb *h, MDB_txn *txn, cairn_guard g)
{
    cairn_key_state ks;
    int rc = cairn_lmdb_key_state_in(h, txn, &ks);
    if (rc) return rc;
    return g.check ? g.check(g.ctx, &ks) : CAIRN_OK;
}

typedef struct {
    cairn_slice cipher, keycheck;
    cairn_guard guard;
} cipher_ctx;

static int set_cipher_in(cairn_lmdb *h, MDB_txn *txn, void *ctxp)
{
    cipher_ctx *c = ctxp;
    cairn_key_state ks;
    int rc = cairn_lmdb_key_state_in(h, txn, &ks);
    if (rc == 0) rc = c->guard.check(c->guard.ctx, &ks);
    if (rc || ks.cipher.ptr) return rc; /* encrypted meanwhile: the guard checked our key against it */
    rc = meta_put(h, txn, "cipher", c->cipher);
    return rc ? rc : meta_put(h, txn, "keycheck", c->keycheck);
}

int cairn_lmdb_set_cipher(cairn_engine *e, cairn_slice cipher, cairn_slice keycheck, cairn_guard guard)
{
    cipher_ctx c = { cipher, keycheck, guard };
    return cairn_lmdb_write(LMDB(e), "opening", set_cipher_in, &c);
}

int cairn_lmdb_tracking_put(cairn_lmdb *h, MDB_txn *txn, const cairn_tracking *t)
{
    cairn_engine *e = &h->base;
    MDB_val k = { t->app_len, (void *)t->app }, v;
    uint64_t last = 0;
    int rc = mdb_get(txn, h->sh->tracking, &k, &v);
    if (rc == 0 && v.mv_size != 8)
        return cairn_engine_fail(e, CAIRN_CORRUPT, "the tracking record of %.*s in %s is malformed", (int)t->app_len,
                                 t->app, e->where);
    if (rc == 0) last = cairn_get_be64(v.mv_data);
    else if (rc != MDB_NOTFOUND) return rc;
    /* the whole batch must be new: a writer that read an older position redid some of it */
    uint64_t first = cairn_tracking_first(t);
    if (first <= last)
        return cairn_engine_fail(e, CAIRN_CONFLICT,
                                 "notification %llu of %.*s was already processed (tracked up to %llu)",
                                 (unsigned long long)first, (int)t->app_len, t->app, (unsigned long long)last);
    uint8_t idv[8];
    cairn_put_be64(idv, t->id);
    v = (MDB_val){ 8, idv };
    return mdb_put(txn, h->sh->tracking, &k, &v, 0);
}

/* Step 1: the heads of the batch's streams and the bases of its snapshots. */
static int read_heads(cairn_lmdb *h, MDB_txn *txn, cairn_write *w, MDB_cursor *scur)
{
    for (size_t i = 0; i < w->nheads; i++) {
        cairn_stream_head *head = &w->heads[i];
        MDB_val k, entry;
        cairn_lmdb_touched(h->sh, h->sh->psize); /* the index page of a random id, and its last event's */
        head->found = 0;
        head->key = (cairn_slice){ NULL, 0 };
        int rc = cairn_lmdb_seek_at_or_below(scur, head->id, UINT64_MAX, &k, &entry);
        if (rc == 0) {
            cairn_record last;
            head->version = cairn_get_be64((const uint8_t *)k.mv_data + 16);
            rc = cairn_lmdb_event_at(h, txn, NULL, head->id, head->version, &entry, &last);
            if (rc) return rc;
            head->found = 1;
            memcpy(head->hash, last.hash, CAIRN_HASH_BYTES);
        } else if (rc != MDB_NOTFOUND) {
            return rc;
        }
        if (!(w->want & CAIRN_WANT_DATA_KEYS)) continue;
        k = (MDB_val){ 16, head->id };
        rc = mdb_get(txn, h->sh->streams, &k, &entry);
        if (rc == 0) head->key = (cairn_slice){ entry.mv_data, entry.mv_size };
        else if (rc != MDB_NOTFOUND) return rc;
    }
    for (size_t j = 0; j < w->nsnapshots; j++) {
        cairn_record ev;
        int rc = cairn_lmdb_find_event(h, txn, w->snapshots[j].stream_id, w->snapshots[j].version, &ev);
        w->bases[j].found = rc == CAIRN_OK;
        if (rc == CAIRN_OK) memcpy(w->bases[j].hash, ev.hash, CAIRN_HASH_BYTES);
        else if (rc != CAIRN_END) return rc;
    }
    return 0;
}

typedef struct {
    cairn_write *w;
    uint64_t *first_id;
} append_ctx;

/* One attempt at recording a batch; cairn_lmdb_write commits or aborts. */
static int append_in(cairn_lmdb *h, MDB_txn *txn, void *ctxp)
{
    append_ctx *ctx = ctxp;
    cairn_write *w = ctx->w;
    cairn_env *sh = h->sh;
    MDB_cursor *scur = NULL, *lcur = NULL, *pcur = NULL;
    cairn_key_state ks = { 0 };
    int rc = w->want & CAIRN_WANT_KEY_STATE ? cairn_lmdb_key_state_in(h, txn, &ks) : 0;
    if (rc == 0 && w->tracking) rc = cairn_lmdb_tracking_put(h, txn, w->tracking);
    if (rc == 0) rc = mdb_cursor_open(txn, sh->streams, &scur);
    if (rc == 0) rc = mdb_cursor_open(txn, sh->log, &lcur);
    if (rc == 0) rc = read_heads(h, txn, w, scur);
    if (rc == 0) rc = w->seal(w, &ks);
    if (rc == 0) rc = cairn_lmdb_dcb_check(h, txn, w);
    if (rc) goto done;

    /* step 3: new data keys, then the records under the next ids */
    MDB_val k, v;
    for (size_t i = 0; i < w->nheads; i++) {
        if (!w->heads[i].put_key) continue;
        k = (MDB_val){ 16, w->heads[i].id };
        v = (MDB_val){ CAIRN_WRAPPED_KEY_BYTES, w->heads[i].new_key };
        if ((rc = mdb_put(txn, sh->streams, &k, &v, MDB_NOOVERWRITE)) != 0) goto done;
    }
    uint64_t next_id = 1;
    rc = mdb_cursor_get(lcur, &k, &v, MDB_LAST);
    if (rc == 0 && k.mv_size == 8) next_id = cairn_get_be64(k.mv_data) + 1;
    else if (rc != MDB_NOTFOUND && rc != 0) goto done;
    rc = 0;
    *ctx->first_id = next_id;
    for (size_t i = 0; i < w->n; i++, next_id++) {
        uint8_t idkey[8], skey[CAIRN_STREAM_KEY];
        cairn_put_be64(idkey, next_id);
        k = (MDB_val){ 8, idkey };
        v = (MDB_val){ w->stored[i].len, (void *)w->stored[i].ptr };
        if ((rc = mdb_cursor_put(lcur, &k, &v, MDB_APPEND)) != 0) goto done;
        cairn_stream_key(skey, w->events[i].stream_id, w->events[i].version);
        k = (MDB_val){ CAIRN_STREAM_KEY, skey };
        v = (MDB_val){ 8, idkey };
        rc = mdb_cursor_put(scur, &k, &v, MDB_NOOVERWRITE);
        if (rc == MDB_KEYEXIST) {
            char hex[CAIRN_UUID_STRLEN + 1] = { 0 };
            cairn_uuid_format(w->events[i].stream_id, hex);
            rc = cairn_engine_fail(&h->base, CAIRN_CONFLICT, "aggregate %s: version %llu recorded twice in one save",
                                   hex, (unsigned long long)w->events[i].version);
        }
        if (rc) goto done;
        /* the record, and the page of the stream index a random id lands on */
        cairn_lmdb_touched(sh, w->stored[i].len + sh->psize);
    }
    if ((rc = cairn_lmdb_dcb_index(h, txn, w, *ctx->first_id)) != 0) goto done;
    if (w->nsnapshots && (rc = mdb_cursor_open(txn, sh->snapshots, &pcur)) != 0) goto done;
    for (size_t j = 0; j < w->nsnapshots; j++) {
        uint8_t key[CAIRN_STREAM_KEY];
        cairn_stream_key(key, w->snapshots[j].stream_id, w->snapshots[j].version);
        k = (MDB_val){ sizeof key, key };
        v = (MDB_val){ w->stored[w->n + j].len, (void *)w->stored[w->n + j].ptr };
        if ((rc = mdb_cursor_put(pcur, &k, &v, 0)) != 0) goto done;
    }
done:
    if (pcur) mdb_cursor_close(pcur);
    if (lcur) mdb_cursor_close(lcur);
    if (scur) mdb_cursor_close(scur);
    return rc;
}

int cairn_lmdb_append(cairn_engine *e, cairn_write *w, uint64_t *first_id)
{
    append_ctx ctx = { w, first_id };
    return cairn_lmdb_write(LMDB(e), "saving", append_in, &ctx);
}

/* The guard of other writes, for lmdb_views.c and lmdb_keys.c. */
int cairn_lmdb_guarded(cairn_lmdb *h, MDB_txn *txn, cairn_guard g)
{
    return guarded(h, txn, g);
}
