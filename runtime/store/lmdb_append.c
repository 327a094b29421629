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

/* The head is the event of the stream index entry (k, entry): its version and hash. */
static int found_head(cairn_lmdb *h, MDB_txn *txn, cairn_stream_head *head, const MDB_val *k, const MDB_val *entry)
{
    cairn_record last;
    head->version = cairn_get_be64((const uint8_t *)k->mv_data + 16);
    int rc = cairn_lmdb_event_at(h, txn, NULL, head->id, head->version, entry, &last);
    if (rc) return rc;
    head->found = 1;
    memcpy(head->hash, last.hash, CAIRN_HASH_BYTES);
    return 0;
}

/* A stream's head by a look-up in the stream index: its last entry. */
static int seek_head(cairn_lmdb *h, MDB_txn *txn, cairn_stream_head *head, MDB_cursor *scur)
{
    MDB_val k, entry;
    int rc = cairn_lmdb_seek_at_or_below(scur, head->id, UINT64_MAX, &k, &entry);
    if (rc == MDB_NOTFOUND) return 0;
    return rc ? rc : found_head(h, txn, head, &k, &entry);
}

/* Is the cursor's entry one of stream id's (not another stream's, nor id's data key)? */
static int same_stream(const MDB_val *k, const uint8_t id[16])
{
    return k->mv_size == CAIRN_STREAM_KEY && memcmp(k->mv_data, id, 16) == 0;
}

/* A stream's head found by inserting the index entry of its first event of
 * the batch (version first, notification id nid): the insert's own descent
 * finds the neighbours, so the head costs no look-up of its own. The entry
 * before the new one is the head when it is the stream's; an entry there
 * already, or one of the stream after it (a stream that starts later), is a
 * conflict: then the head is looked up as before, for seal to report (its
 * version is first or later). So after a seal that found no conflict, the
 * first event of every stream of the batch is in the index. */
static int insert_head(cairn_lmdb *h, MDB_txn *txn, cairn_stream_head *head, MDB_cursor *scur, uint64_t first,
                       uint64_t nid)
{
    uint8_t skey[CAIRN_STREAM_KEY], idv[8];
    cairn_stream_key(skey, head->id, first);
    cairn_put_be64(idv, nid);
    MDB_val k = { CAIRN_STREAM_KEY, skey }, v = { 8, idv };
    int rc = mdb_cursor_put(scur, &k, &v, MDB_NOOVERWRITE);
    if (rc == MDB_KEYEXIST) return seek_head(h, txn, head, scur);
    if (rc) return rc;
    /* the cursor is at the new entry: a later one of the stream means it started after first */
    rc = mdb_cursor_get(scur, &k, &v, MDB_NEXT);
    if (rc == 0 && same_stream(&k, head->id)) return seek_head(h, txn, head, scur);
    if (rc != 0 && rc != MDB_NOTFOUND) return rc;
    /* back to the new entry (NEXT at the end stays on it), then the one before */
    if (rc == 0 && (rc = mdb_cursor_get(scur, &k, &v, MDB_PREV)) != 0) return rc;
    rc = mdb_cursor_get(scur, &k, &v, MDB_PREV);
    if (rc == MDB_NOTFOUND || (rc == 0 && !same_stream(&k, head->id))) return 0; /* a new stream */
    return rc ? rc : found_head(h, txn, head, &k, &v);
}

/* Step 1: the heads of the batch's streams and the bases of its snapshots.
 * The index entry of each stream's first event of the batch is inserted here
 * (first_id: the notification id of the batch's first event). */
static int read_heads(cairn_lmdb *h, MDB_txn *txn, cairn_write *w, MDB_cursor *scur, uint64_t first_id)
{
    /* first, before the index holds entries of events not yet in the log */
    for (size_t j = 0; j < w->nsnapshots; j++) {
        cairn_record ev;
        int rc = cairn_lmdb_find_event(h, txn, w->snapshots[j].stream_id, w->snapshots[j].version, &ev);
        w->bases[j].found = rc == CAIRN_OK;
        if (rc == CAIRN_OK) memcpy(w->bases[j].hash, ev.hash, CAIRN_HASH_BYTES);
        else if (rc != CAIRN_END) return rc;
    }
    for (size_t n = 0; n < w->nheads; n++) {
        /* in id order when the mapper gives one: the cursor then mostly stays on its page */
        cairn_stream_head *head = &w->heads[n < w->norder ? w->order[n] : n];
        cairn_lmdb_touched(h->sh, h->sh->psize); /* the index page of a random id, and its last event's */
        head->found = 0;
        head->key = (cairn_slice){ NULL, 0 };
        int rc = head->has_events && head->first_at < w->n
                     ? insert_head(h, txn, head, scur, w->events[head->first_at].version, first_id + head->first_at)
                     : seek_head(h, txn, head, scur);
        if (rc) return rc;
    }
    /* after the inserts: a data key's bytes stay where they are until the next write */
    for (size_t i = 0; (w->want & CAIRN_WANT_DATA_KEYS) && i < w->nheads; i++) {
        MDB_val k = { 16, w->heads[i].id }, entry;
        int rc = mdb_get(txn, h->sh->streams, &k, &entry);
        if (rc == 0) w->heads[i].key = (cairn_slice){ entry.mv_data, entry.mv_size };
        else if (rc != MDB_NOTFOUND) return rc;
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
    MDB_val k, v;
    uint64_t next_id = 1;
    if (rc == 0 && sh->txn_log_last) {
        next_id = sh->txn_log_last + 1; /* an append before this one in the group's transaction */
    } else if (rc == 0) {
        rc = mdb_cursor_get(lcur, &k, &v, MDB_LAST);
        if (rc == 0 && k.mv_size == 8) next_id = cairn_get_be64(k.mv_data) + 1;
        if (rc == MDB_NOTFOUND) rc = 0;
    }
    if (rc == 0) rc = read_heads(h, txn, w, scur, next_id);
    if (rc == 0) rc = w->seal(w, &ks);
    if (rc == 0) rc = cairn_lmdb_dcb_check(h, txn, w);
    if (rc) goto done;

    /* step 3: new data keys, then the records under the next ids (the index
     * entry of each stream's first event is in since step 1) */
    for (size_t i = 0; i < w->nheads; i++) {
        if (!w->heads[i].put_key) continue;
        k = (MDB_val){ 16, w->heads[i].id };
        v = (MDB_val){ CAIRN_WRAPPED_KEY_BYTES, w->heads[i].new_key };
        if ((rc = mdb_put(txn, sh->streams, &k, &v, MDB_NOOVERWRITE)) != 0) goto done;
    }
    *ctx->first_id = next_id;
    size_t hk = 0; /* the next head whose first event is ahead */
    for (size_t i = 0; i < w->n; i++, next_id++) {
        uint8_t idkey[8], skey[CAIRN_STREAM_KEY];
        cairn_put_be64(idkey, next_id);
        k = (MDB_val){ 8, idkey };
        v = (MDB_val){ w->stored[i].len, (void *)w->stored[i].ptr };
        if ((rc = mdb_cursor_put(lcur, &k, &v, MDB_APPEND)) != 0) goto done;
        if (hk < w->nheads && w->heads[hk].has_events && w->heads[hk].first_at == i) {
            const cairn_stream_head *head = &w->heads[hk++];
            if (head->found && head->version + 1 != w->events[i].version) { /* seal lets no such batch pass */
                rc = cairn_engine_fail(&h->base, CAIRN_CONFLICT, "a save was sealed on a stale stream head");
                goto done;
            }
            cairn_lmdb_touched(sh, w->stored[i].len);
            continue;
        }
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
    if (w->n) sh->txn_log_last = next_id - 1;
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
