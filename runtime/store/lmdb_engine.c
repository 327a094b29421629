/* lmdb_engine.c -- the LMDB engine's table of operations (recorder.h). Every
 * read runs guarded: a damaged page fails it instead of killing the process
 * (lmdb_fault.c). */
#include "cairn.h"
#include "lmdb_engine.h"

/* guarded_NAME(PARAMS): cairn_lmdb_NAME(ARGS) inside CAIRN_LMDB_GUARDED */
#define GUARDED(name, doing, params, args)                                 \
    static int guarded_##name params                                       \
    {                                                                      \
        CAIRN_LMDB_GUARDED(LMDB(e), doing, cairn_lmdb_##name args);        \
    }

GUARDED(key_state, "reading the key state",
        (cairn_engine *e, int (*use)(void *ctx, const cairn_key_state *ks), void *ctx), (e, use, ctx))
GUARDED(read_stream, "reading a stream", (cairn_engine *e, const uint8_t id[16], const cairn_stream_query *q),
        (e, id, q))
GUARDED(read_log, "reading the log", (cairn_engine *e, const cairn_log_query *q), (e, q))
GUARDED(next, "reading records", (cairn_engine *e, cairn_record *out), (e, out))
GUARDED(next_many, "reading records", (cairn_engine *e, cairn_record *out, size_t max, size_t *n),
        (e, out, max, n))
GUARDED(event_hash, "reading a stream",
        (cairn_engine *e, const uint8_t id[16], uint64_t version, uint8_t out[CAIRN_HASH_BYTES]),
        (e, id, version, out))
GUARDED(data_key, "reading a data key", (cairn_engine *e, const uint8_t id[16], cairn_slice *stored),
        (e, id, stored))
GUARDED(read_snapshot, "reading a snapshot",
        (cairn_engine *e, const uint8_t id[16], int has_lte, uint64_t lte, cairn_record *out,
         uint8_t event_hash[CAIRN_HASH_BYTES]),
        (e, id, has_lte, lte, out, event_hash))
GUARDED(max_id, "reading the log", (cairn_engine *e, uint64_t *out), (e, out))
GUARDED(dcb_read, "reading DCB events",
        (cairn_engine *e, const cairn_dcb_query *q, uint64_t limit, int (*found)(void *ctx, uint64_t id), void *ctx,
         uint64_t *last_id),
        (e, q, limit, found, ctx, last_id))
GUARDED(once_get, "reading an idempotency record",
        (cairn_engine *e, cairn_slice key, uint64_t *first_id, uint64_t *n), (e, key, first_id, n))
GUARDED(tracking_get, "reading a tracking record", (cairn_engine *e, cairn_slice name, uint64_t *out),
        (e, name, out))
GUARDED(tracking_scan, "reading the tracking records",
        (cairn_engine *e, cairn_slice after, size_t limit, int (*each)(void *ctx, cairn_slice name, uint64_t id),
         void *ctx),
        (e, after, limit, each, ctx))
GUARDED(snapshot_streams, "listing snapshots",
        (cairn_engine *e, const uint8_t *after, size_t limit, uint8_t (*ids)[16], size_t *n), (e, after, limit, ids, n))
GUARDED(stream_heads, "listing streams",
        (cairn_engine *e, const uint8_t *after, size_t limit, uint8_t (*ids)[16], uint64_t *versions, size_t *n),
        (e, after, limit, ids, versions, n))
GUARDED(stat, "reading statistics", (cairn_engine *e, cairn_store_stats *out), (e, out))
GUARDED(view_get, "reading a view", (cairn_engine *e, cairn_slice key, cairn_slice *value, int *found),
        (e, key, value, found))
GUARDED(view_scan, "scanning a view", (cairn_engine *e, cairn_slice from, int after), (e, from, after))
GUARDED(view_next, "scanning a view", (cairn_engine *e, cairn_slice *key, cairn_slice *value), (e, key, value))
GUARDED(verify, "verifying", (cairn_engine *e, const cairn_verify_walk *w), (e, w))

const cairn_engine_ops cairn_lmdb_engine = {
    .open = cairn_lmdb_open,
    .close = cairn_lmdb_close,
    .key_state = guarded_key_state,
    .set_cipher = cairn_lmdb_set_cipher,
    .append = cairn_lmdb_append,
    .read_stream = guarded_read_stream,
    .read_log = guarded_read_log,
    .next = guarded_next,
    .next_many = guarded_next_many,
    .event_hash = guarded_event_hash,
    .data_key = guarded_data_key,
    .read_snapshot = guarded_read_snapshot,
    .read_end = cairn_lmdb_read_end,
    .max_id = guarded_max_id,
    .dcb_read = guarded_dcb_read,
    .once_get = guarded_once_get,
    .tracking_get = guarded_tracking_get,
    .tracking_scan = guarded_tracking_scan,
    .snapshot_streams = guarded_snapshot_streams,
    .stream_heads = guarded_stream_heads,
    .stat = guarded_stat,
    .view_write = cairn_lmdb_view_write,
    .view_clear = cairn_lmdb_view_clear,
    .view_get = guarded_view_get,
    .view_scan = guarded_view_scan,
    .view_next = guarded_view_next,
    .forget = cairn_lmdb_forget,
    .rekey = cairn_lmdb_rekey,
    .verify = guarded_verify,
    .wake_word = cairn_lmdb_wake_word,
    .copy = cairn_lmdb_copy,
    .group_stats = cairn_lmdb_group_stats,
};
