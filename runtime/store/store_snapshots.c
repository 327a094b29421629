/*
 * store_snapshots.c -- aggregate states stored beside their streams.
 *
 *   snapshots  stream id || version -> record (record.h): topic the aggregate
 *              class, class version the state's version, payload the state
 *
 * A snapshot's hash chains from the hash of the event it was taken at, so a
 * snapshot that does not belong to its stream's history fails to read, and
 * its seal uses the stream's data key, so forgetting the stream forgets it.
 */
#include <string.h>


#include "cairn.h"
#include "store_internal.h"

int cairn_store_put_snapshots(cairn_store *s, MDB_txn *txn, const cairn_record *snaps, size_t n)
{
    MDB_cursor *cur;
    int rc = mdb_cursor_open(txn, s->sh->snapshots, &cur);
    if (rc) return rc;
    for (size_t i = 0; i < n && rc == 0; i++) {
        cairn_record ev;
        rc = cairn_store_find_event(s, txn, snaps[i].stream_id, snaps[i].version, &ev, NULL);
        if (rc == CAIRN_END) {
            char what[80];
            cairn_store_describe(snaps[i].stream_id, snaps[i].version, what, sizeof what);
            rc = cairn_store_fail(s, CAIRN_NOTFOUND, "cannot snapshot %s: there is no such event", what);
        }
        if (rc) break;
        uint8_t head[CAIRN_HASH_BYTES], ignored[CAIRN_HASH_BYTES], key[CAIRN_STREAM_KEY];
        memcpy(head, ev.hash, sizeof head);
        cairn_stream_key(key, snaps[i].stream_id, snaps[i].version);
        MDB_val k = { sizeof key, key };
        rc = cairn_store_put_record(s, txn, cur, &k, 0, &snaps[i], head, ignored);
    }
    mdb_cursor_close(cur);
    return rc;
}

int cairn_store_read_snapshot(cairn_store *s, const uint8_t id[16], int has_lte, uint64_t lte, cairn_record *out)
{
    s->errmsg[0] = '\0';
    int rc = cairn_store_begin_read(s);
    if (rc) return rc;
    MDB_cursor *cur;
    MDB_val k, v;
    rc = mdb_cursor_open(s->rtxn, s->sh->snapshots, &cur);
    if (rc == 0) {
        rc = cairn_store_seek_at_or_below(cur, id, has_lte ? lte : UINT64_MAX, &k, &v);
        mdb_cursor_close(cur);
    }
    if (rc == MDB_NOTFOUND) { cairn_store_read_end(s); return CAIRN_END; }
    if (rc) { cairn_store_read_end(s); return cairn_store_lmdb_failure(s, rc, "reading a snapshot"); }
    uint64_t version = cairn_get_be64((const uint8_t *)k.mv_data + 16);
    char what[80];
    cairn_store_describe(id, version, what, sizeof what);
    if (cairn_record_parse(v.mv_data, v.mv_size, out) != CAIRN_OK || memcmp(out->stream_id, id, 16) != 0 ||
        out->version != version) {
        cairn_store_read_end(s);
        return cairn_store_fail(s, CAIRN_CORRUPT, "the snapshot of %s in %s is not a valid record", what,
                                s->sh->path);
    }
    cairn_record ev;
    rc = cairn_store_find_event(s, s->rtxn, id, version, &ev, NULL);
    if (rc == CAIRN_END)
        rc = cairn_store_fail(s, CAIRN_CORRUPT, "the snapshot of %s in %s has no event at its version", what,
                              s->sh->path);
    if (rc == 0) {
        uint8_t want[CAIRN_HASH_BYTES];
        cairn_record_hash(ev.hash, v.mv_data, v.mv_size, want);
        if (memcmp(want, out->hash, CAIRN_HASH_BYTES) != 0)
            rc = cairn_store_fail(s, CAIRN_CORRUPT, "the snapshot of %s in %s fails its hash check (altered)", what,
                                  s->sh->path);
    }
    if (rc == 0) {
        memcpy(s->prev_hash, ev.hash, CAIRN_HASH_BYTES); /* the head, kept past the read */
        rc = cairn_store_open_payload(s, s->rtxn, out);
    }
    if (rc == 0) {
        out->hash = s->prev_hash;
        return CAIRN_OK; /* the read stays open until cairn_store_read_end */
    }
    cairn_store_read_end(s);
    return CAIRN_IS_OWN_CODE(rc) ? rc : cairn_store_lmdb_failure(s, rc, "reading a snapshot");
}
