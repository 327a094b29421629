/*
 * lmdb_dcb.c -- dynamic consistency boundaries and idempotency keys on LMDB
 * (store.h): the `index` database, written in the save's own transaction.
 *
 *   'a' 0 || id                 -> ""   every DCB event
 *   'y' len || type || id       -> ""   DCB events by type
 *   'g' len || tag || id        -> type  DCB events by tag, with the event's type
 *   'o' len || key              -> first id || n (u64 big-endian each): an idempotent save
 *
 * (id: the notification id, u64 big-endian; len: one byte.) The postings of
 * one type or tag are adjacent and in id order, so a query reads only the
 * entries that can match, from its `after` on: an item with tags walks its
 * first tag's postings (which name the event's type) and looks the other
 * tags up; an item of types only walks each type's; the empty query walks 'a'.
 */
#include <stdlib.h>
#include <string.h>

#include "cairn.h"
#include "lmdb_engine.h"

#define POSTING_MAX (2 + CAIRN_DCB_NAME_MAX + 8)

/* kind || len || name [|| id] into out; returns the length (without id when !with_id). */
static size_t posting_key(uint8_t *out, char kind, cairn_slice name, int with_id, uint64_t id)
{
    out[0] = (uint8_t)kind;
    out[1] = (uint8_t)name.len;
    if (name.len) memcpy(out + 2, name.ptr, name.len);
    size_t len = 2 + name.len;
    if (with_id) {
        cairn_put_be64(out + len, id);
        len += 8;
    }
    return len;
}

int cairn_lmdb_dcb_has(MDB_txn *txn, MDB_dbi dbi, char kind, cairn_slice name, uint64_t id)
{
    uint8_t key[POSTING_MAX];
    MDB_val k = { posting_key(key, kind, name, 1, id), key }, v;
    return mdb_get(txn, dbi, &k, &v); /* 0: there, MDB_NOTFOUND: not */
}

/* Does event id (a posting of the walked tag list, whose value is the
 * event's type) match the item's other conditions? */
static int matches_rest(MDB_txn *txn, MDB_dbi dbi, const cairn_dcb_item *it, size_t from_tag, uint64_t id,
                        const MDB_val *type, int *yes)
{
    *yes = 0;
    if (it->ntypes) {
        size_t t = 0;
        while (t < it->ntypes && !(it->types[t].len == type->mv_size &&
                                   memcmp(it->types[t].ptr, type->mv_data, type->mv_size) == 0))
            t++;
        if (t == it->ntypes) return 0;
    }
    for (size_t t = from_tag; t < it->ntags; t++) {
        int rc = cairn_lmdb_dcb_has(txn, dbi, 'g', it->tags[t], id);
        if (rc == MDB_NOTFOUND) return 0;
        if (rc) return rc;
    }
    *yes = 1;
    return 0;
}

/* Walk one posting list above `after`: found(ctx, id) for each event that
 * also matches check (NULL: all); stops after limit hits (0: none) or when
 * found returns non-zero (returned as is). */
static int walk(MDB_txn *txn, MDB_dbi dbi, MDB_cursor *cur, char kind, cairn_slice name, uint64_t after,
                uint64_t limit, const cairn_dcb_item *check, size_t from_tag, int (*found)(void *ctx, uint64_t id),
                void *ctx)
{
    if (after == UINT64_MAX) return 0;
    uint8_t key[POSTING_MAX];
    size_t plen = posting_key(key, kind, name, 1, after + 1) - 8;
    MDB_val k = { plen + 8, key }, v;
    uint64_t hits = 0;
    int rc;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0; rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (k.mv_size != plen + 8 || memcmp(k.mv_data, key, plen) != 0) break;
        uint64_t id = cairn_get_be64((const uint8_t *)k.mv_data + plen);
        int yes = 1;
        if (check && (rc = matches_rest(txn, dbi, check, from_tag, id, &v, &yes)) != 0) break;
        if (!yes) continue;
        if ((rc = found(ctx, id)) != 0) break;
        if (limit && ++hits == limit) break;
    }
    return rc == MDB_NOTFOUND ? 0 : rc;
}

static const cairn_slice NO_NAME = { "", 0 };

/* Every event matching item, above after: at most limit of each list walked. */
static int walk_item(MDB_txn *txn, MDB_dbi dbi, MDB_cursor *cur, const cairn_dcb_item *it, uint64_t after,
                     uint64_t limit, int (*found)(void *ctx, uint64_t id), void *ctx)
{
    if (it->ntags) return walk(txn, dbi, cur, 'g', it->tags[0], after, limit, it, 1, found, ctx);
    if (it->ntypes == 0) return walk(txn, dbi, cur, 'a', NO_NAME, after, limit, NULL, 0, found, ctx);
    for (size_t t = 0; t < it->ntypes; t++) {
        int rc = walk(txn, dbi, cur, 'y', it->types[t], after, limit, NULL, 0, found, ctx);
        if (rc) return rc;
    }
    return 0;
}

/* cur: a cursor on dbi in txn, for the walks */
static int walk_query(MDB_txn *txn, MDB_dbi dbi, MDB_cursor *cur, const cairn_dcb_query *q, uint64_t limit,
                      int (*found)(void *ctx, uint64_t id), void *ctx)
{
    if (q->nitems == 0) return walk(txn, dbi, cur, 'a', NO_NAME, q->after, limit, NULL, 0, found, ctx);
    for (size_t i = 0; i < q->nitems; i++) {
        int rc = walk_item(txn, dbi, cur, &q->items[i], q->after, limit, found, ctx);
        if (rc) return rc;
    }
    return 0;
}

enum { FOUND_ONE = 1 };

static int first_match(void *ctx, uint64_t id)
{
    *(uint64_t *)ctx = id;
    return FOUND_ONE;
}

/* In a save's transaction, before it writes: refuse it when an event matching
 * w->fail_if was recorded after its position. */
int cairn_lmdb_dcb_check(cairn_lmdb *h, MDB_txn *txn, const cairn_write *w)
{
    if (!w->fail_if || h->sh->no_index) return 0;
    uint64_t id = 0;
    MDB_cursor *cur;
    int rc = mdb_cursor_open(txn, h->sh->index, &cur);
    if (rc) return rc;
    rc = walk_query(txn, h->sh->index, cur, w->fail_if, 1, first_match, &id);
    mdb_cursor_close(cur);
    if (rc != FOUND_ONE) return rc;
    return cairn_engine_fail(&h->base, CAIRN_CONFLICT,
                             "an event matching the append condition was recorded after position %llu "
                             "(at %llu): nothing was recorded",
                             (unsigned long long)w->fail_if->after, (unsigned long long)id);
}

static int put_posting(MDB_txn *txn, MDB_dbi dbi, char kind, cairn_slice name, uint64_t id, cairn_slice value)
{
    uint8_t key[POSTING_MAX];
    MDB_val k = { posting_key(key, kind, name, 1, id), key }, v = { value.len, (void *)value.ptr };
    return mdb_put(txn, dbi, &k, &v, 0);
}

static int index_unavailable(cairn_lmdb *h)
{
    return cairn_engine_fail(&h->base, CAIRN_CONFIG,
                             "store %s was made before DCB events and idempotent saves: open it once for "
                             "writing with this version", h->base.where);
}

/* In a save's transaction, after its events got ids from first_id on: the
 * postings of its DCB events and its idempotency key. */
int cairn_lmdb_dcb_index(cairn_lmdb *h, MDB_txn *txn, const cairn_write *w, uint64_t first_id)
{
    if (!w->ndcb && !w->once.ptr) return 0;
    if (h->sh->no_index) return index_unavailable(h);
    MDB_dbi dbi = h->sh->index;
    for (size_t i = 0; i < w->ndcb; i++) {
        const cairn_dcb_event *d = &w->dcb[i];
        uint64_t id = first_id + d->event;
        int rc = put_posting(txn, dbi, 'a', NO_NAME, id, NO_NAME);
        if (rc == 0) rc = put_posting(txn, dbi, 'y', d->type, id, NO_NAME);
        for (size_t t = 0; rc == 0 && t < d->ntags; t++) rc = put_posting(txn, dbi, 'g', d->tags[t], id, d->type);
        if (rc) return rc;
    }
    if (!w->once.ptr) return 0;
    uint8_t key[POSTING_MAX], val[16];
    MDB_val k = { posting_key(key, 'o', w->once, 0, 0), key }, v = { 16, val };
    cairn_put_be64(val, first_id);
    cairn_put_be64(val + 8, w->n);
    int rc = mdb_put(txn, dbi, &k, &v, MDB_NOOVERWRITE);
    if (rc == MDB_KEYEXIST)
        return cairn_engine_fail(&h->base, CAIRN_CONFLICT, "the save of idempotency key '%.*s' was recorded before",
                                 (int)w->once.len, w->once.ptr);
    return rc;
}

int cairn_lmdb_dcb_read(cairn_engine *e, const cairn_dcb_query *q, uint64_t limit,
                        int (*found)(void *ctx, uint64_t id), void *ctx, uint64_t *last_id)
{
    cairn_lmdb *h = LMDB(e);
    *last_id = 0;
    int rc = cairn_lmdb_begin_read(h);
    if (rc) return rc;
    MDB_cursor *cur;
    rc = cairn_lmdb_last_id(h, last_id);
    if (rc == 0 && !h->sh->no_index && (rc = cairn_lmdb_local_cursor(h, h->sh->index, &cur)) == 0) {
        rc = walk_query(h->rtxn, h->sh->index, cur, q, limit, found, ctx);
        cairn_lmdb_local_close(h, cur);
    }
    if (rc == 0) rc = cairn_lmdb_read_still_valid(h, "reading DCB events");
    cairn_lmdb_read_end(e);
    return cairn_lmdb_failure(h, rc, "reading DCB events");
}

int cairn_lmdb_once_get(cairn_engine *e, cairn_slice key, uint64_t *first_id, uint64_t *n)
{
    cairn_lmdb *h = LMDB(e);
    *first_id = *n = 0;
    if (h->sh->no_index) return CAIRN_END;
    int rc = cairn_lmdb_begin_read(h);
    if (rc) return rc;
    uint8_t kb[POSTING_MAX];
    MDB_val k = { posting_key(kb, 'o', key, 0, 0), kb }, v;
    rc = mdb_get(h->rtxn, h->sh->index, &k, &v);
    if (rc == 0 && v.mv_size != 16)
        rc = cairn_engine_fail(e, CAIRN_CORRUPT, "the idempotency record of '%.*s' in %s is malformed",
                               (int)key.len, key.ptr, e->where);
    else if (rc == 0) {
        *first_id = cairn_get_be64(v.mv_data);
        *n = cairn_get_be64((const uint8_t *)v.mv_data + 8);
    }
    int missing = rc == MDB_NOTFOUND;
    if (missing) rc = 0;
    if (rc == 0) rc = cairn_lmdb_read_still_valid(h, "reading an idempotency record");
    cairn_lmdb_read_end(e);
    if (rc) return cairn_lmdb_failure(h, rc, "reading an idempotency record");
    return missing ? CAIRN_END : CAIRN_OK;
}
