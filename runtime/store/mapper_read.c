/*
 * mapper_read.c -- reads: the engine finds the records (recorder.h), the
 * mapper checks their chain and opens them into metadata and msgpack.
 */
#include <stdio.h>
#include <string.h>

#include "cairn.h"
#include "mapper.h"

static const cairn_engine_ops *ops(cairn_store *s) { return s->eng->ops; }

/* Begin a read the engine has started: the key cache follows the store's key state. */
static int began(cairn_store *s, int rc, int reading)
{
    if (rc == CAIRN_OK) rc = cairn_store_keys_begin_read(s);
    if (rc) {
        ops(s)->read_end(s->eng);
        return rc;
    }
    s->reading = reading;
    s->have_prev = 0;
    s->ahead_n = s->ahead_at = 0;
    s->ahead_rc = CAIRN_OK;
    return CAIRN_OK;
}

int cairn_store_read_stream(cairn_store *s, const uint8_t id[16], const cairn_stream_query *q)
{
    cairn_store_read_end(s);
    s->eng->errmsg[0] = '\0';
    s->descending = q->descending;
    s->from_start = !q->has_gt;
    return began(s, ops(s)->read_stream(s->eng, id, q), READ_STREAM);
}

int cairn_store_read_log(cairn_store *s, const cairn_log_query *q)
{
    cairn_store_read_end(s);
    s->eng->errmsg[0] = '\0';
    return began(s, ops(s)->read_log(s->eng, q), READ_LOG);
}

/* The hash the first record of an ascending stream read chains from: its
 * predecessor's in the store -- none when the read started at the stream's
 * beginning (the first record found chains from zeros, as a save began it;
 * looking for one below it would find nothing in this read). */
static int first_prev(cairn_store *s, const cairn_record *rec)
{
    memset(s->prev_hash, 0, CAIRN_HASH_BYTES);
    if (rec->version > 0 && !s->from_start) {
        int rc = ops(s)->event_hash(s->eng, rec->stream_id, rec->version - 1, s->prev_hash);
        if (rc && rc != CAIRN_END) return rc;
    }
    s->have_prev = 1;
    return CAIRN_OK;
}

static int chain_broken(cairn_store *s, const cairn_record *rec)
{
    char what[80];
    cairn_record_describe(rec->stream_id, rec->version, what, sizeof what);
    return cairn_store_fail(s, CAIRN_CORRUPT,
                            "%s (notification %llu) in %s breaks the hash chain: the record or the one before "
                            "it was altered", what, (unsigned long long)rec->notification_id, s->eng->where);
}

/* Read up to CAIRN_READ_AHEAD records ahead; 0 when none (then ahead_rc
 * says why). When the engine fails, that comes first: what was read ahead
 * may have gone with the read (a fault in the map resets it, lmdb_fault.c),
 * so it is not touched again. */
static size_t fetch_ahead(cairn_store *s)
{
    size_t n = 0;
    int rc = CAIRN_OK;
    if (ops(s)->next_many) rc = ops(s)->next_many(s->eng, s->ahead, CAIRN_READ_AHEAD, &n);
    else
        while (n < CAIRN_READ_AHEAD && (rc = ops(s)->next(s->eng, &s->ahead[n])) == CAIRN_OK) n++;
    s->ahead_rc = rc; /* CAIRN_OK: the read-ahead is full, more may follow */
    s->ahead_at = 0;
    s->ahead_n = rc == CAIRN_OK || rc == CAIRN_END ? n : 0;
    return s->ahead_n;
}

/* Read ahead in an ascending stream read and check the records' chain
 * (hashes are not secret, so plain memcmp): each links to the stored hash
 * of the one before, so the links are hashed together. Keeps the ones
 * before a broken link, and what to answer after them. */
static void read_ahead(cairn_store *s)
{
    size_t n = fetch_ahead(s);
    if (n == 0) return;
    int rc;
    if (!s->have_prev && (rc = first_prev(s, &s->ahead[0])) != CAIRN_OK) {
        s->ahead_n = 0;
        s->ahead_rc = rc;
        return;
    }
    cairn_chain_input in[CAIRN_READ_AHEAD];
    for (size_t i = 0; i < n; i++) {
        const cairn_record *r = &s->ahead[i];
        cairn_record_hash_input(i ? s->ahead[i - 1].hash : s->prev_hash, cairn_record_header(r),
                                r->header_len + CAIRN_RECORD_HASH + r->payload_len, &in[i]);
    }
    cairn_chain_hash_many(in, n);
    for (size_t i = 0; i < n; i++)
        if (memcmp(in[i].out, s->ahead[i].hash, CAIRN_HASH_BYTES) != 0) {
            s->ahead_n = i;
            s->ahead_rc = chain_broken(s, &s->ahead[i]);
            break;
        }
    if (s->ahead_n) memcpy(s->prev_hash, s->ahead[s->ahead_n - 1].hash, CAIRN_HASH_BYTES);
}

/* The next record of a log read, read ahead where the engine reads many in
 * one step (LMDB: one fault guard for CAIRN_READ_AHEAD records instead of
 * one each). Log reads check no chain: a record's hash is checked when its
 * stream is read, and by cairn verify. The end is the engine's answer to a
 * next() after the last record was used, as without the read-ahead: a read
 * that cannot pin its snapshot (read-only, no lock file) checks then that
 * no commit overtook it, so after every record's bytes were read. */
static int next_logged(cairn_store *s, cairn_record *out)
{
    if (!ops(s)->next_many) return ops(s)->next(s->eng, out);
    if (s->ahead_at == s->ahead_n) {
        if (s->ahead_rc == CAIRN_OK) fetch_ahead(s);
        if (s->ahead_at == s->ahead_n)
            return s->ahead_rc == CAIRN_END ? ops(s)->next(s->eng, out) : s->ahead_rc;
    }
    *out = s->ahead[s->ahead_at++];
    return CAIRN_OK;
}

/* The next record of an ascending stream read, its chain checked. */
static int next_checked(cairn_store *s, cairn_record *out)
{
    if (s->ahead_at == s->ahead_n) {
        if (s->ahead_rc != CAIRN_OK) return s->ahead_rc;
        read_ahead(s);
        if (s->ahead_n == 0) return s->ahead_rc;
    }
    *out = s->ahead[s->ahead_at++];
    return CAIRN_OK;
}

int cairn_store_next(cairn_store *s, cairn_record *out)
{
    if (s->reading == READ_NONE) return CAIRN_END;
    if (s->reading == READ_STREAM && !s->descending) {
        int rc = next_checked(s, out);
        return rc ? rc : cairn_store_open_payload(s, out);
    }
    int rc = s->reading == READ_LOG ? next_logged(s, out) : ops(s)->next(s->eng, out);
    if (rc) return rc;
    if (s->reading == READ_STREAM) return cairn_store_open_payload(s, out);
    rc = cairn_store_open_payload(s, out);
    if (rc == CAIRN_NOTFOUND && out->forgotten) {
        /* forgotten: the notification keeps its ids and topic */
        s->eng->errmsg[0] = '\0';
        out->payload = NULL;
        out->payload_len = 0;
        out->metadata = NULL;
        out->metadata_len = 0;
        return CAIRN_OK;
    }
    return rc;
}

int cairn_store_stream_head(cairn_store *s, const uint8_t id[16], uint64_t *version, uint8_t hash[CAIRN_HASH_BYTES],
                            int *forgotten)
{
    cairn_store_read_end(s);
    s->eng->errmsg[0] = '\0';
    *version = 0;
    *forgotten = 0;
    const cairn_stream_query q = { .descending = 1, .limit = 1 };
    int rc = began(s, ops(s)->read_stream(s->eng, id, &q), READ_STREAM);
    if (rc) return rc;
    cairn_record last;
    rc = ops(s)->next(s->eng, &last);
    if (rc == CAIRN_OK) {
        *version = last.version;
        memcpy(hash, last.hash, CAIRN_HASH_BYTES);
        if (last.flags & CAIRN_RECORD_ENCRYPTED) {
            /* the data key as a read would take it: the key cache follows forgets anywhere */
            const uint8_t *dk;
            rc = cairn_store_open_key(s, id, (cairn_slice){ NULL, 0 }, &dk);
            if (rc == CAIRN_NOTFOUND) {
                *forgotten = 1;
                s->eng->errmsg[0] = '\0';
                rc = CAIRN_OK;
            }
        }
    } else if (rc == CAIRN_END) {
        rc = CAIRN_OK;
    }
    cairn_store_read_end(s);
    return rc;
}

void cairn_store_read_end(cairn_store *s)
{
    ops(s)->read_end(s->eng);
    s->reading = READ_NONE;
}

/* A snapshot record the caller holds opened already (same bytes, checked):
 * only whether it still opens -- a sealed one's data key, which forgetting
 * destroys -- without unsealing or inflating its body again. */
static int still_opens(cairn_store *s, cairn_record *out)
{
    out->payload = out->metadata = NULL;
    out->name = NULL;
    out->payload_len = out->metadata_len = out->name_len = 0;
    if (!(out->flags & CAIRN_RECORD_ENCRYPTED)) return CAIRN_OK;
    const uint8_t *dk;
    int rc = cairn_store_open_key(s, out->stream_id, (cairn_slice){ NULL, 0 }, &dk);
    if (rc == CAIRN_NOTFOUND) out->forgotten = 1;
    return rc;
}

int cairn_store_read_snapshot(cairn_store *s, const uint8_t id[16], int has_lte, uint64_t lte,
                              const uint8_t known[CAIRN_RECORD_HASH], cairn_record *out, int *same)
{
    *same = 0;
    cairn_store_read_end(s);
    s->eng->errmsg[0] = '\0';
    uint8_t head[CAIRN_HASH_BYTES];
    int rc = ops(s)->read_snapshot(s->eng, id, has_lte, lte, out, head);
    if (rc == CAIRN_END) { ops(s)->read_end(s->eng); return CAIRN_END; }
    if (rc == CAIRN_OK) rc = cairn_store_keys_begin_read(s);
    if (rc == CAIRN_OK) {
        /* the whole record as stored: header, hash, body */
        const uint8_t *bytes = cairn_record_header(out);
        size_t len = out->header_len + CAIRN_RECORD_HASH + out->payload_len;
        uint8_t want[CAIRN_HASH_BYTES];
        if (!cairn_snap_memo_holds(s, id, bytes, len, head)) {
            cairn_record_hash(head, bytes, len, want);
            if (memcmp(want, out->hash, CAIRN_HASH_BYTES) != 0) {
                char what[80];
                cairn_record_describe(id, out->version, what, sizeof what);
                rc = cairn_store_fail(s, CAIRN_CORRUPT, "the snapshot of %s in %s fails its hash check (altered)",
                                      what, s->eng->where);
            } else {
                cairn_snap_memo_keep(s, id, bytes, len, head);
            }
        }
    }
    if (rc == CAIRN_OK) {
        memcpy(s->snap_hash, out->hash, CAIRN_HASH_BYTES);
        memcpy(s->prev_hash, head, CAIRN_HASH_BYTES); /* the head, kept past the read */
        *same = known && memcmp(known, s->snap_hash, CAIRN_HASH_BYTES) == 0;
        rc = *same ? still_opens(s, out) : cairn_store_open_payload(s, out);
    }
    if (rc == CAIRN_OK) {
        out->hash = s->prev_hash;
        return CAIRN_OK; /* the read stays open until cairn_store_read_end */
    }
    ops(s)->read_end(s->eng);
    return rc;
}

const uint8_t *cairn_store_snapshot_hash(const cairn_store *s) { return s->snap_hash; }

int cairn_store_tracking_max(cairn_store *s, const char *app, size_t app_len, uint64_t *out)
{
    s->eng->errmsg[0] = '\0';
    return ops(s)->tracking_get(s->eng, (cairn_slice){ app, app_len }, out);
}

static int not_offered(cairn_store *s, const char *what)
{
    return cairn_store_fail(s, CAIRN_CONFIG, "store %s cannot list its %s (this engine does not offer it)",
                            s->eng->where, what);
}

int cairn_store_tracking_scan(cairn_store *s, cairn_slice after, size_t limit,
                              int (*each)(void *ctx, cairn_slice name, uint64_t id), void *ctx)
{
    cairn_store_read_end(s);
    s->eng->errmsg[0] = '\0';
    if (!ops(s)->tracking_scan) return not_offered(s, "tracking positions");
    return ops(s)->tracking_scan(s->eng, after, limit, each, ctx);
}

int cairn_store_snapshot_streams(cairn_store *s, const uint8_t *after, size_t limit, uint8_t (*ids)[16], size_t *n)
{
    cairn_store_read_end(s);
    s->eng->errmsg[0] = '\0';
    *n = 0;
    if (!ops(s)->snapshot_streams) return not_offered(s, "snapshots");
    return ops(s)->snapshot_streams(s->eng, after, limit, ids, n);
}

int cairn_store_stream_heads(cairn_store *s, const uint8_t *after, size_t limit, uint8_t (*ids)[16],
                             uint64_t *versions, size_t *n)
{
    cairn_store_read_end(s);
    s->eng->errmsg[0] = '\0';
    *n = 0;
    if (!ops(s)->stream_heads) return not_offered(s, "streams");
    return ops(s)->stream_heads(s->eng, after, limit, ids, versions, n);
}

int cairn_store_max_id(cairn_store *s, uint64_t *out)
{
    s->eng->errmsg[0] = '\0';
    return ops(s)->max_id(s->eng, out);
}

int cairn_store_dcb_read(cairn_store *s, const cairn_dcb_query *q, uint64_t limit,
                         int (*found)(void *ctx, uint64_t id), void *ctx, uint64_t *last_id)
{
    s->eng->errmsg[0] = '\0';
    *last_id = 0;
    if (!ops(s)->dcb_read)
        return cairn_store_fail(s, CAIRN_CONFIG, "the %s engine does not record DCB events yet", s->eng->name);
    return ops(s)->dcb_read(s->eng, q, limit, found, ctx, last_id);
}

int cairn_store_once_get(cairn_store *s, cairn_slice key, uint64_t *first_id, uint64_t *n)
{
    s->eng->errmsg[0] = '\0';
    *first_id = *n = 0;
    if (!ops(s)->once_get)
        return cairn_store_fail(s, CAIRN_CONFIG, "the %s engine does not record idempotent saves yet", s->eng->name);
    return ops(s)->once_get(s->eng, key, first_id, n);
}

int cairn_store_stat(cairn_store *s, cairn_store_stats *out)
{
    s->eng->errmsg[0] = '\0';
    memset(out, 0, sizeof *out);
    return ops(s)->stat(s->eng, out);
}
