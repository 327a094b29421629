/*
 * lmdb_read.c -- the LMDB engine's reads: stream ranges through the stream
 * index, log ranges with topic filters, snapshots, data keys, tracking.
 * Each read runs in the handle's read transaction and stays open until
 * cairn_lmdb_read_end; what it returns points into the map until then.
 */
#include <stdio.h>
#include <string.h>

#include "cairn.h"
#include "lmdb_engine.h"

void cairn_stream_key(uint8_t key[CAIRN_STREAM_KEY], const uint8_t id[16], uint64_t version)
{
    memcpy(key, id, 16);
    cairn_put_be64(key + 16, version);
}

int cairn_lmdb_seek_at_or_below(MDB_cursor *cur, const uint8_t id[16], uint64_t version, MDB_val *k, MDB_val *v)
{
    uint8_t key[CAIRN_STREAM_KEY];
    cairn_stream_key(key, id, version);
    *k = (MDB_val){ CAIRN_STREAM_KEY, key };
    int rc = mdb_cursor_get(cur, k, v, MDB_SET_RANGE);
    if (rc == MDB_NOTFOUND) rc = mdb_cursor_get(cur, k, v, MDB_LAST);
    else if (rc == 0 && (k->mv_size != CAIRN_STREAM_KEY || memcmp(k->mv_data, key, CAIRN_STREAM_KEY) != 0))
        rc = mdb_cursor_get(cur, k, v, MDB_PREV);
    if (rc) return rc;
    /* another stream's entry, or a data key (16-byte key) before this stream's */
    if (k->mv_size != CAIRN_STREAM_KEY || memcmp(k->mv_data, id, 16) != 0) return MDB_NOTFOUND;
    return 0;
}

/* Find notification k in the log: through log_cur when there is one (see cairn_lmdb_event_at). */
static int log_lookup(cairn_lmdb *h, MDB_txn *txn, MDB_cursor *log_cur, MDB_val *k, MDB_val *v)
{
    if (!log_cur) return mdb_get(txn, h->sh->log, k, v);
    uint64_t nid = cairn_get_be64(k->mv_data);
    if (h->lcur_at && (nid == h->lcur_at + 1 || nid + 1 == h->lcur_at)) {
        MDB_val ck, cv;
        int rc = mdb_cursor_get(log_cur, &ck, &cv, nid > h->lcur_at ? MDB_NEXT : MDB_PREV);
        if (rc == 0 && ck.mv_size == 8 && cairn_get_be64(ck.mv_data) == nid) {
            *v = cv;
            h->lcur_at = nid;
            return 0;
        }
        if (rc && rc != MDB_NOTFOUND) return rc;
    }
    int rc = mdb_cursor_get(log_cur, k, v, MDB_SET_KEY);
    h->lcur_at = rc == 0 ? nid : 0;
    return rc;
}

int cairn_lmdb_event_at(cairn_lmdb *h, MDB_txn *txn, MDB_cursor *log_cur, const uint8_t id[16], uint64_t version,
                        const MDB_val *iv, cairn_record *out)
{
    cairn_engine *e = &h->base;
    char what[80];
    if (iv->mv_size != 8) {
        cairn_record_describe(id, version, what, sizeof what);
        return cairn_engine_fail(e, CAIRN_CORRUPT, "the stream index entry of %s in %s is malformed", what, e->where);
    }
    uint64_t nid = cairn_get_be64(iv->mv_data);
    MDB_val k = { 8, iv->mv_data }, v;
    int rc = log_lookup(h, txn, log_cur, &k, &v);
    if (rc == MDB_NOTFOUND) {
        cairn_record_describe(id, version, what, sizeof what);
        return cairn_engine_fail(e, CAIRN_CORRUPT, "the stream index names notification %llu for %s, which is missing",
                                 (unsigned long long)nid, what);
    }
    if (rc == 0) cairn_lmdb_probe(&v);
    if (rc) return rc;
    if (cairn_record_parse(v.mv_data, v.mv_size, out) != CAIRN_OK) {
        cairn_record_describe(id, version, what, sizeof what);
        return cairn_engine_fail(e, CAIRN_CORRUPT, "notification %llu (%s) in %s is not a valid record",
                                 (unsigned long long)nid, what, e->where);
    }
    if (memcmp(out->stream_id, id, 16) != 0 || out->version != version) {
        cairn_record_describe(id, version, what, sizeof what);
        return cairn_engine_fail(e, CAIRN_CORRUPT,
                                 "the stream index names notification %llu for %s, but it holds another event "
                                 "(records were moved or swapped)", (unsigned long long)nid, what);
    }
    out->notification_id = nid;
    return CAIRN_OK;
}

int cairn_lmdb_find_event(cairn_lmdb *h, MDB_txn *txn, const uint8_t id[16], uint64_t version, cairn_record *out)
{
    uint8_t key[CAIRN_STREAM_KEY];
    cairn_stream_key(key, id, version);
    MDB_val k = { CAIRN_STREAM_KEY, key }, v;
    int rc = mdb_get(txn, h->sh->streams, &k, &v);
    if (rc == MDB_NOTFOUND) return CAIRN_END;
    if (rc == 0) rc = cairn_lmdb_event_at(h, txn, NULL, id, version, &v, out);
    return rc;
}

static int open_read_cursor(cairn_lmdb *h, MDB_dbi dbi, const char *doing)
{
    int rc = cairn_lmdb_begin_read(h);
    if (rc) return rc;
    rc = mdb_cursor_open(h->rtxn, dbi, &h->rcur);
    if (rc) {
        h->rcur = NULL;
        cairn_lmdb_read_end(&h->base);
        return cairn_lmdb_failure(h, rc, doing);
    }
    h->started = 0;
    return CAIRN_OK;
}

int cairn_lmdb_read_stream(cairn_engine *e, const uint8_t id[16], const cairn_stream_query *q)
{
    cairn_lmdb *h = LMDB(e);
    int rc = open_read_cursor(h, h->sh->streams, "reading a stream");
    if (rc) return rc;
    rc = mdb_cursor_open(h->rtxn, h->sh->log, &h->lcur);
    if (rc) {
        h->lcur = NULL;
        cairn_lmdb_read_end(&h->base);
        return cairn_lmdb_failure(h, rc, "reading a stream");
    }
    h->lcur_at = 0;
    h->reading = LREAD_STREAM;
    memcpy(h->stream_id, id, 16);
    h->has_gt = q->has_gt;
    h->gt = q->gt;
    h->lte = q->has_lte ? q->lte : UINT64_MAX;
    h->descending = q->descending;
    h->remaining = q->limit ? q->limit : SIZE_MAX;
    if (q->has_gt && q->gt == UINT64_MAX) h->remaining = 0;
    return CAIRN_OK;
}

int cairn_lmdb_read_log(cairn_engine *e, const cairn_log_query *q)
{
    cairn_lmdb *h = LMDB(e);
    int rc = open_read_cursor(h, h->sh->log, "reading the log");
    if (rc) return rc;
    h->reading = LREAD_LOG;
    h->lq = *q;
    h->id_at = 0;
    h->remaining = q->limit && !q->nids ? q->limit : SIZE_MAX;
    return CAIRN_OK;
}

/* Position the stream cursor on the next index entry within bounds. */
static int stream_step(cairn_lmdb *h, MDB_val *k, MDB_val *v)
{
    int rc;
    if (!h->started) {
        uint8_t key[CAIRN_STREAM_KEY];
        h->started = 1;
        if (h->descending) {
            rc = cairn_lmdb_seek_at_or_below(h->rcur, h->stream_id, h->lte, k, v);
        } else {
            cairn_stream_key(key, h->stream_id, h->has_gt ? h->gt + 1 : 0);
            *k = (MDB_val){ CAIRN_STREAM_KEY, key };
            rc = mdb_cursor_get(h->rcur, k, v, MDB_SET_RANGE);
        }
    } else {
        rc = mdb_cursor_get(h->rcur, k, v, h->descending ? MDB_PREV : MDB_NEXT);
    }
    if (rc) return rc;
    if (k->mv_size != CAIRN_STREAM_KEY || memcmp(k->mv_data, h->stream_id, 16) != 0) return MDB_NOTFOUND;
    uint64_t version = cairn_get_be64((const uint8_t *)k->mv_data + 16);
    if (version > h->lte || (h->has_gt && version <= h->gt)) return MDB_NOTFOUND;
    return 0;
}

static int topic_matches(const cairn_log_query *q, const cairn_record *rec)
{
    if (q->ntopics == 0) return 1;
    for (size_t i = 0; i < q->ntopics; i++)
        if (q->topics[i].len == rec->topic_len && memcmp(q->topics[i].ptr, rec->topic, rec->topic_len) == 0)
            return 1;
    return 0;
}

/* The end of a read: without the lock file, only if no commit overtook it. */
static int at_end(cairn_lmdb *h, const char *doing)
{
    int rc = cairn_lmdb_read_still_valid(h, doing);
    return rc ? rc : CAIRN_END;
}

int cairn_lmdb_next(cairn_engine *e, cairn_record *out)
{
    cairn_lmdb *h = LMDB(e);
    MDB_val k, v;
    int rc;
    if (h->reading == LREAD_STREAM) {
        if (h->remaining == 0) return at_end(h, "reading a stream");
        rc = stream_step(h, &k, &v);
        if (rc == MDB_NOTFOUND) return at_end(h, "reading a stream");
        if (rc) return cairn_lmdb_failure(h, rc, "reading a stream");
        uint64_t version = cairn_get_be64((const uint8_t *)k.mv_data + 16);
        rc = cairn_lmdb_event_at(h, h->rtxn, h->lcur, h->stream_id, version, &v, out);
        if (rc) return cairn_lmdb_failure(h, rc, "reading a stream");
        h->walked += out->header_len + out->payload_len;
        h->remaining--;
        return CAIRN_OK;
    }
    if (h->reading != LREAD_LOG) return CAIRN_END;
    if (h->remaining == 0) return at_end(h, "reading the log");
    for (;;) {
        uint8_t key[8];
        if (h->lq.nids) { /* the next listed id that is there */
            rc = MDB_NOTFOUND;
            while (rc == MDB_NOTFOUND && h->id_at < h->lq.nids) {
                cairn_put_be64(key, h->lq.ids[h->id_at++]);
                k = (MDB_val){ 8, key };
                rc = mdb_cursor_get(h->rcur, &k, &v, MDB_SET_KEY);
            }
        } else if (!h->started) {
            cairn_put_be64(key, h->lq.start);
            k = (MDB_val){ 8, key };
            h->started = 1;
            rc = mdb_cursor_get(h->rcur, &k, &v, MDB_SET_RANGE);
        } else {
            rc = mdb_cursor_get(h->rcur, &k, &v, MDB_NEXT);
        }
        if (rc == MDB_NOTFOUND) return at_end(h, "reading the log");
        if (rc) return cairn_lmdb_failure(h, rc, "reading the log");
        if (k.mv_size != 8) return cairn_engine_fail(e, CAIRN_CORRUPT, "log key in %s is malformed", e->where);
        uint64_t id = cairn_get_be64(k.mv_data);
        if (!h->lq.nids && h->lq.stop && id > h->lq.stop) return at_end(h, "reading the log");
        cairn_lmdb_probe(&v);
        if (cairn_record_parse(v.mv_data, v.mv_size, out) != CAIRN_OK)
            return cairn_engine_fail(e, CAIRN_CORRUPT, "notification %llu in %s is not a valid record",
                                     (unsigned long long)id, e->where);
        out->notification_id = id;
        h->walked += v.mv_size;
        if (topic_matches(&h->lq, out)) {
            h->remaining--;
            return CAIRN_OK;
        }
    }
}

int cairn_lmdb_next_many(cairn_engine *e, cairn_record *out, size_t max, size_t *n)
{
    int rc = CAIRN_OK;
    for (*n = 0; *n < max && (rc = cairn_lmdb_next(e, &out[*n])) == CAIRN_OK; ++*n) {}
    return rc;
}

int cairn_lmdb_event_hash(cairn_engine *e, const uint8_t id[16], uint64_t version, uint8_t out[CAIRN_HASH_BYTES])
{
    cairn_lmdb *h = LMDB(e);
    cairn_record rec;
    int rc = cairn_lmdb_find_event(h, h->rtxn, id, version, &rec);
    if (rc) return cairn_lmdb_failure(h, rc, "reading a stream");
    memcpy(out, rec.hash, CAIRN_HASH_BYTES);
    return CAIRN_OK;
}

int cairn_lmdb_data_key(cairn_engine *e, const uint8_t id[16], cairn_slice *stored)
{
    cairn_lmdb *h = LMDB(e);
    MDB_val k = { 16, (void *)id }, v;
    int rc = mdb_get(h->rtxn, h->sh->streams, &k, &v);
    if (rc == MDB_NOTFOUND) return CAIRN_END;
    if (rc == 0) cairn_lmdb_probe(&v);
    if (rc) return cairn_lmdb_failure(h, rc, "reading a data key");
    *stored = (cairn_slice){ v.mv_data, v.mv_size };
    return CAIRN_OK;
}

int cairn_lmdb_read_snapshot(cairn_engine *e, const uint8_t id[16], int has_lte, uint64_t lte, cairn_record *out,
                             uint8_t event_hash[CAIRN_HASH_BYTES])
{
    cairn_lmdb *h = LMDB(e);
    int rc = cairn_lmdb_begin_read(h);
    if (rc) return rc;
    MDB_cursor *cur;
    MDB_val k, v;
    rc = cairn_lmdb_local_cursor(h, h->sh->snapshots, &cur);
    if (rc == 0) {
        rc = cairn_lmdb_seek_at_or_below(cur, id, has_lte ? lte : UINT64_MAX, &k, &v);
        cairn_lmdb_local_close(h, cur);
    }
    if (rc == MDB_NOTFOUND) return CAIRN_END;
    if (rc == 0) cairn_lmdb_probe(&v);
    if (rc) return cairn_lmdb_failure(h, rc, "reading a snapshot");
    uint64_t version = cairn_get_be64((const uint8_t *)k.mv_data + 16);
    char what[80];
    cairn_record_describe(id, version, what, sizeof what);
    if (cairn_record_parse(v.mv_data, v.mv_size, out) != CAIRN_OK || memcmp(out->stream_id, id, 16) != 0 ||
        out->version != version)
        return cairn_engine_fail(e, CAIRN_CORRUPT, "the snapshot of %s in %s is not a valid record", what, e->where);
    cairn_record ev;
    rc = cairn_lmdb_find_event(h, h->rtxn, id, version, &ev);
    if (rc == CAIRN_END)
        return cairn_engine_fail(e, CAIRN_CORRUPT, "the snapshot of %s in %s has no event at its version", what,
                                 e->where);
    if (rc) return cairn_lmdb_failure(h, rc, "reading a snapshot");
    memcpy(event_hash, ev.hash, CAIRN_HASH_BYTES);
    return CAIRN_OK;
}

int cairn_lmdb_last_id(cairn_lmdb *h, uint64_t *out)
{
    MDB_cursor *cur;
    MDB_val k, v;
    *out = 0;
    int rc = cairn_lmdb_local_cursor(h, h->sh->log, &cur);
    if (rc) return rc;
    rc = mdb_cursor_get(cur, &k, &v, MDB_LAST);
    if (rc == 0 && k.mv_size == 8) *out = cairn_get_be64(k.mv_data);
    if (rc == MDB_NOTFOUND) rc = 0;
    cairn_lmdb_local_close(h, cur);
    return rc;
}

int cairn_lmdb_max_id(cairn_engine *e, uint64_t *out)
{
    cairn_lmdb *h = LMDB(e);
    *out = 0;
    int rc = cairn_lmdb_begin_read(h);
    if (rc) return rc;
    rc = cairn_lmdb_last_id(h, out);
    if (rc == 0) rc = cairn_lmdb_read_still_valid(h, "reading the log");
    cairn_lmdb_read_end(e);
    return cairn_lmdb_failure(h, rc, "reading the log");
}

int cairn_lmdb_tracking_get(cairn_engine *e, cairn_slice name, uint64_t *out)
{
    cairn_lmdb *h = LMDB(e);
    *out = 0;
    int rc = cairn_lmdb_begin_read(h);
    if (rc) return rc;
    MDB_val k = { name.len, (void *)name.ptr }, v;
    rc = mdb_get(h->rtxn, h->sh->tracking, &k, &v);
    if (rc == 0 && v.mv_size != 8)
        rc = cairn_engine_fail(e, CAIRN_CORRUPT, "the tracking record of %.*s in %s is malformed", (int)name.len,
                               name.ptr, e->where);
    else if (rc == 0) *out = cairn_get_be64(v.mv_data);
    else if (rc == MDB_NOTFOUND) rc = 0;
    if (rc == 0) rc = cairn_lmdb_read_still_valid(h, "reading a tracking record");
    cairn_lmdb_read_end(e);
    return cairn_lmdb_failure(h, rc, "reading a tracking record");
}

int cairn_lmdb_tracking_scan(cairn_engine *e, cairn_slice after, size_t limit,
                             int (*each)(void *ctx, cairn_slice name, uint64_t id), void *ctx)
{
    cairn_lmdb *h = LMDB(e);
    int rc = cairn_lmdb_begin_read(h);
    if (rc) return rc;
    MDB_cursor *cur;
    rc = mdb_cursor_open(h->rtxn, h->sh->tracking, &cur);
    if (rc == 0) {
        MDB_val k = { after.len, (void *)after.ptr }, v;
        rc = mdb_cursor_get(cur, &k, &v, after.ptr ? MDB_SET_RANGE : MDB_FIRST);
        if (rc == 0 && after.ptr && k.mv_size == after.len && memcmp(k.mv_data, after.ptr, after.len) == 0)
            rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
        for (size_t n = 0; rc == 0 && n < limit; n++) {
            if (v.mv_size != 8) {
                rc = cairn_engine_fail(e, CAIRN_CORRUPT, "the tracking record of %.*s in %s is malformed",
                                       (int)k.mv_size, (const char *)k.mv_data, e->where);
                break;
            }
            rc = each(ctx, (cairn_slice){ k.mv_data, k.mv_size }, cairn_get_be64(v.mv_data));
            if (rc == 0) rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
        }
        if (rc == MDB_NOTFOUND) rc = 0;
        mdb_cursor_close(cur);
    }
    if (rc == 0) rc = cairn_lmdb_read_still_valid(h, "reading the tracking records");
    cairn_lmdb_read_end(e);
    return cairn_lmdb_failure(h, rc, "reading the tracking records");
}

int cairn_lmdb_snapshot_streams(cairn_engine *e, const uint8_t *after, size_t limit, uint8_t (*ids)[16], size_t *n)
{
    cairn_lmdb *h = LMDB(e);
    *n = 0;
    int rc = cairn_lmdb_begin_read(h);
    if (rc) return rc;
    MDB_cursor *cur;
    rc = mdb_cursor_open(h->rtxn, h->sh->snapshots, &cur);
    if (rc == 0) {
        uint8_t from[CAIRN_STREAM_KEY];
        MDB_val k = { sizeof from, from }, v;
        /* the first key past every version of `after`: its id, then the largest version */
        if (after) cairn_stream_key(from, after, UINT64_MAX);
        rc = mdb_cursor_get(cur, &k, &v, after ? MDB_SET_RANGE : MDB_FIRST);
        if (rc == 0 && after && k.mv_size >= 16 && memcmp(k.mv_data, after, 16) == 0)
            rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
        while (rc == 0 && *n < limit) {
            if (k.mv_size != CAIRN_STREAM_KEY) {
                rc = cairn_engine_fail(e, CAIRN_CORRUPT, "a snapshot key in %s is malformed", e->where);
                break;
            }
            memcpy(ids[(*n)++], k.mv_data, 16);
            /* on to the next stream: past this one's last version */
            cairn_stream_key(from, k.mv_data, UINT64_MAX);
            k = (MDB_val){ sizeof from, from };
            rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
            if (rc == 0 && memcmp(k.mv_data, from, 16) == 0) rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
        }
        if (rc == MDB_NOTFOUND) rc = 0;
        mdb_cursor_close(cur);
    }
    if (rc == 0) rc = cairn_lmdb_read_still_valid(h, "listing snapshots");
    cairn_lmdb_read_end(e);
    return cairn_lmdb_failure(h, rc, "listing snapshots");
}
