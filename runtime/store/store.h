/*
 * store.h -- the store as its callers (the binding, the C tools) use it: open
 * by URI, save, read, follow. No Lua. Underneath, the mapper (mapper.h: record
 * format, compression, encryption, hash chains) sits on an engine behind the
 * recorder interface (recorder.h): LMDB for `memory:` and `lmdb:PATH`.
 *
 * A handle is used by one thread at a time; threads each open their own
 * handle, and handles on one directory share one LMDB environment. Saves made
 * through several handles at the same moment are committed together, in one
 * transaction with one fsync (group commit), each checked on its own. Every
 * function returns CAIRN_OK or an error code; on error, cairn_store_errmsg()
 * describes it, naming the store and the aggregate concerned.
 */
#ifndef CAIRN_STORE_H
#define CAIRN_STORE_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "record.h"

typedef struct cairn_store cairn_store;

typedef enum { CAIRN_SYNC_FULL = 0, CAIRN_SYNC_NONE = 1 } cairn_sync_mode;

typedef struct cairn_store_options {
    cairn_sync_mode sync;   /* full: fsync each commit; none: the OS decides */
    size_t map_size;        /* initial LMDB map size in bytes; 0: default */
    int must_exist;         /* fail with CAIRN_CONFIG instead of creating a new store */
    int read_only;          /* only read: never write (saves etc. are CAIRN_CONFIG), never create
                             * (implies must_exist), start no write transaction, also for a
                             * user who may not write the store's files */
    const uint8_t *cipher_key; /* 32-byte master key, or NULL; copied into secret memory */
    int compress;           /* zstd-compress payloads above a small threshold */
    int keyless;            /* open an encrypted store without its key (verify: hashes only) */
} cairn_store_options;

/** A range of one stream's versions: gt < version <= lte. */
typedef struct cairn_stream_query {
    uint64_t gt;            /* used when has_gt */
    uint64_t lte;           /* used when has_lte */
    int has_gt, has_lte;
    int descending;
    size_t limit;           /* 0: no limit */
} cairn_stream_query;

typedef struct cairn_slice {
    const char *ptr;
    size_t len;
} cairn_slice;

/** A range of the notification log: start <= id (<= stop), matching topics. */
typedef struct cairn_log_query {
    uint64_t start;
    uint64_t stop;          /* 0: no upper bound */
    size_t limit;           /* 0: no limit; counts matching records only */
    const cairn_slice *topics;
    size_t ntopics;         /* 0: every topic */
    const uint64_t *ids;    /* nids > 0: exactly these ids (ascending; those that exist), in one read; */
    size_t nids;            /* start, stop and limit are then ignored */
} cairn_log_query;

typedef struct cairn_store_stat {
    const char *engine;     /* "memory" or "lmdb" (valid while the store is open) */
    uint64_t events;
    uint64_t streams;
    uint64_t max_notification_id;
    uint64_t map_size;      /* lmdb only */
    uint64_t used_bytes;    /* bytes of pages in use; postgresql: the schema's tables and indexes */
    unsigned format;        /* the store's format; postgresql: the schema's version */
} cairn_store_stats;

/**
 * Open a store by URI. On failure *out is NULL and err holds a message.
 * @return CAIRN_OK, CAIRN_CONFIG (bad URI, not a store, newer format) or a
 *         system/LMDB error.
 */
int cairn_store_open(const char *uri, const cairn_store_options *opt, cairn_store **out,
                     char *err, size_t errlen) __attribute__((warn_unused_result));

/** Close a store; NULL is allowed. Any read in progress is ended. */
void cairn_store_close(cairn_store *s);

/** How far a follower has processed a leader's log. */
typedef struct cairn_tracking {
    const char *app;        /* the leader application's name */
    size_t app_len;
    uint64_t id;            /* the notification id processed */
    uint64_t first;         /* the first notification of the batch that id ends (0: id alone):
                             * refused (CAIRN_CONFLICT) when the recorded position is at or above it */
} cairn_tracking;

/** The first notification id a tracking position covers. */
static inline uint64_t cairn_tracking_first(const cairn_tracking *t) { return t->first ? t->first : t->id; }

/**
 * Dynamic consistency boundaries (API.md §9). An event matches an item when
 * its type is one of `types` (any type when ntypes is 0) and it carries every
 * one of `tags` (ntags 0: no tag needed). A query matches an event when one
 * of its items does; a query of no items matches every DCB event. Types and
 * tags are 1 to CAIRN_DCB_NAME_MAX bytes.
 */
#define CAIRN_DCB_NAME_MAX 255

typedef struct cairn_dcb_item {
    const cairn_slice *types;
    size_t ntypes;
    const cairn_slice *tags;
    size_t ntags;
} cairn_dcb_item;

typedef struct cairn_dcb_query {
    const cairn_dcb_item *items;
    size_t nitems;
    uint64_t after;         /* only events at positions (notification ids) above it */
} cairn_dcb_query;

/** events[event] of a batch is a DCB event with this type and these tags. */
typedef struct cairn_dcb_event {
    size_t event;
    cairn_slice type;
    const cairn_slice *tags;
    size_t ntags;
} cairn_dcb_event;

/** An idempotency key: 1 to CAIRN_ONCE_KEY_MAX bytes. */
#define CAIRN_ONCE_KEY_MAX 255

/** What one save records, all in one transaction. */
typedef struct cairn_batch {
    const cairn_record *events;
    size_t n;
    const cairn_tracking *tracking;   /* NULL, or a position recorded with the events */
    const cairn_record *snapshots;    /* aggregate states (topic: the class name) at versions */
    size_t nsnapshots;                /* recorded with the events, or alone */
    uint8_t *hashes;                  /* NULL, or [out] n * 32 bytes: each event's hash */
    const cairn_dcb_event *dcb;       /* the batch's DCB events, indexed by type and tag */
    size_t ndcb;
    const cairn_dcb_query *fail_if;   /* NULL, or CAIRN_CONFLICT (nothing recorded) when an
                                       * event matching it was recorded after fail_if->after */
    cairn_slice once;                 /* ptr NULL, or an idempotency key: CAIRN_CONFLICT (nothing
                                       * recorded) if it was saved before */
} cairn_batch;

/**
 * Record a batch in one transaction, or nothing of it. Events of one stream
 * must be adjacent and have consecutive versions; the first event of each
 * stream must follow that stream's last recorded version (or start the stream).
 * A tracking position's batch (first, or id alone) must start above the one
 * recorded for its application, so a notification is processed once.
 * @param[out] first_id the notification id given to events[0]; the rest follow.
 * @return CAIRN_OK, CAIRN_CONFLICT (nothing recorded), CAIRN_INVALID, or a
 *         system/LMDB error (nothing recorded).
 */
int cairn_store_append(cairn_store *s, const cairn_batch *b, uint64_t *first_id)
    __attribute__((warn_unused_result));

/**
 * The newest snapshot of a stream at or below a version (any, when !has_lte).
 * out->hash is the hash of the event it was taken at (the aggregate's head).
 * known (or NULL): the stored hash of a snapshot record the caller opened
 * before (cairn_store_snapshot_hash); when the record found is that one,
 * checked as always, *same is set and out has no body (no payload, metadata
 * or name): it is not unsealed or inflated again, only its data key looked up.
 * On CAIRN_OK the read stays open: out is valid until cairn_store_read_end().
 * @return CAIRN_OK, CAIRN_END (none), CAIRN_CORRUPT, CAIRN_NOTFOUND (forgotten).
 */
int cairn_store_read_snapshot(cairn_store *s, const uint8_t id[16], int has_lte, uint64_t lte,
                              const uint8_t known[CAIRN_RECORD_HASH], cairn_record *out, int *same)
    __attribute__((warn_unused_result));

/**
 * The stored hash of the snapshot record the last cairn_store_read_snapshot
 * returned (CAIRN_OK), kept until the next one. It names the record: two
 * snapshot reads that passed their checks with equal hashes read equal
 * records (the same state, head and metadata).
 */
const uint8_t *cairn_store_snapshot_hash(const cairn_store *s);

/**
 * The stream key of a string aggregate id (string_id.h): its hash, keyed in
 * an encrypted store with a key derived from the view key (made first when
 * create is set and the store has none). Records of a string id carry it as
 * cairn_record.name beside this key in stream_id.
 * @return CAIRN_OK; CAIRN_SCHEMA when name is empty, above 255 bytes or not
 *         UTF-8; CAIRN_END (!create) when no stream of a string id can exist
 *         yet; CAIRN_CONFIG when the handle has no key for the store.
 */
int cairn_store_string_id(cairn_store *s, const char *name, size_t len, int create, uint8_t out[16])
    __attribute__((warn_unused_result));

/**
 * Destroy a stream's data key (encrypted stores only): its events and
 * snapshots become unreadable for good; the log keeps their ids and topics.
 * @return CAIRN_OK (also if forgotten before), CAIRN_NOTFOUND, CAIRN_CONFIG.
 */
int cairn_store_forget(cairn_store *s, const uint8_t id[16]) __attribute__((warn_unused_result));

/** Re-wrap every data key under a new master key, in one transaction. */
int cairn_store_rekey(cairn_store *s, const uint8_t new_key[32]) __attribute__((warn_unused_result));

/** The same, calling progress (may be NULL; its return value is ignored: the
 *  rekey is one transaction) now and then with the data keys re-wrapped so
 *  far and their total, from inside the transaction: it must not call back
 *  into the store, raise or block for long. */
int cairn_store_rekey_progress(cairn_store *s, const uint8_t new_key[32],
                               int (*progress)(void *ctx, uint64_t done, uint64_t total), void *progress_ctx)
    __attribute__((warn_unused_result));

/** What cairn_store_verify found. */
typedef struct cairn_verify_report {
    uint64_t records, streams, snapshots, keys_checked, problems;
    char first[512];        /* the first problem, naming the record ("" if none) */
} cairn_verify_report;

/**
 * Check the whole store: every stream's hash chain, the log and the stream
 * index agreeing one to one, notification ids without gaps, every record's
 * format, snapshots; with the key also every seal. progress (may be NULL) is
 * called now and then with the records checked so far and the total; a
 * non-zero return stops the check.
 * @return CAIRN_OK when the check ran (problems are in the report), or an error.
 */
int cairn_store_verify(cairn_store *s, cairn_verify_report *report,
                       int (*progress)(void *ctx, uint64_t done, uint64_t total), void *ctx)
    __attribute__((warn_unused_result));

/** cairn_store_verify, also giving every problem's message to each() as it
 *  is found (each must not raise or call back into the store). */
int cairn_store_verify_each(cairn_store *s, cairn_verify_report *report,
                            int (*progress)(void *ctx, uint64_t done, uint64_t total), void *ctx,
                            void (*each)(void *each_ctx, const char *problem), void *each_ctx)
    __attribute__((warn_unused_result));

/**
 * The positions of the DCB events matching q, ascending, at most limit (0: no
 * limit), handed to found() (non-zero stops and is returned); *last_id is the
 * log's highest notification id in the same read.
 */
int cairn_store_dcb_read(cairn_store *s, const cairn_dcb_query *q, uint64_t limit,
                         int (*found)(void *ctx, uint64_t id), void *ctx, uint64_t *last_id)
    __attribute__((warn_unused_result));

/**
 * The save recorded under an idempotency key: the id of its first event and
 * how many it recorded. @return CAIRN_OK, CAIRN_END (no such key).
 */
int cairn_store_once_get(cairn_store *s, cairn_slice key, uint64_t *first_id, uint64_t *n)
    __attribute__((warn_unused_result));

/** The last notification id of app recorded as processed (0: none). */
int cairn_store_tracking_max(cairn_store *s, const char *app, size_t app_len, uint64_t *out)
    __attribute__((warn_unused_result));

/**
 * A page of the tracking positions (followers' "application", views'
 * "view/application") named after `after` (ptr NULL: from the first), in
 * name order, at most limit, each given to each() (non-zero stops the page
 * with that code; each() must not raise). CAIRN_CONFIG for an engine without it.
 */
int cairn_store_tracking_scan(cairn_store *s, cairn_slice after, size_t limit,
                              int (*each)(void *ctx, cairn_slice name, uint64_t id), void *ctx)
    __attribute__((warn_unused_result));

/** A page of the streams holding snapshots: ids after `after` (NULL: from the
 *  first) in id order, at most limit into ids; *n of them. */
int cairn_store_snapshot_streams(cairn_store *s, const uint8_t *after, size_t limit, uint8_t (*ids)[16], size_t *n)
    __attribute__((warn_unused_result));

/** A page of the streams with their last versions: ids after `after` (NULL:
 *  from the first) in id order, at most limit into ids and versions; *n of them. */
int cairn_store_stream_heads(cairn_store *s, const uint8_t *after, size_t limit, uint8_t (*ids)[16],
                             uint64_t *versions, size_t *n) __attribute__((warn_unused_result));

/** A stream's head, in one short read: its last version (0: no events) and
 *  that event's hash; *forgotten set when its data key was destroyed. No
 *  payload is opened and no chain checked: a cache asks whether what it holds
 *  is still the newest. */
int cairn_store_stream_head(cairn_store *s, const uint8_t id[16], uint64_t *version, uint8_t hash[32],
                            int *forgotten) __attribute__((warn_unused_result));

/** The highest notification id, 0 when the log is empty. */
int cairn_store_max_id(cairn_store *s, uint64_t *out) __attribute__((warn_unused_result));

/**
 * Start reading a stream or the log. Records come from cairn_store_next();
 * they stay valid until the next call on this store. Starting a read ends
 * any read still in progress.
 */
int cairn_store_read_stream(cairn_store *s, const uint8_t id[16], const cairn_stream_query *q)
    __attribute__((warn_unused_result));
int cairn_store_read_log(cairn_store *s, const cairn_log_query *q)
    __attribute__((warn_unused_result));

/** @return CAIRN_OK with *out filled, CAIRN_END when done, or an error. */
int cairn_store_next(cairn_store *s, cairn_record *out) __attribute__((warn_unused_result));

/** End the read in progress, if any. */
void cairn_store_read_end(cairn_store *s);

int cairn_store_stat(cairn_store *s, cairn_store_stats *out) __attribute__((warn_unused_result));

/** The message for the last error on s (empty if none). */
const char *cairn_store_errmsg(const cairn_store *s);

/** The URI the store was opened with, as messages show it (a PostgreSQL password is ***). */
const char *cairn_store_uri(const cairn_store *s);

/* ---- Views (mapper_views.c) ----------------------------------------------
 * A view is a named key/value space in a store, with its own tracking of the
 * applications it follows. Keys are bytes (view name + key at most 510
 * bytes); values are msgpack bytes. On an encrypted store keys and values
 * are sealed (mapper_views.c): gets stay one lookup, scans read the view. */

/** One write of a view batch: a put of value, or a delete. */
typedef struct cairn_view_op {
    cairn_slice key;
    cairn_slice value;      /* msgpack bytes; ignored by a delete */
    int del;
} cairn_view_op;

/**
 * Apply ops to view and record the tracking position (t->app is the
 * followed application; NULL: none) in one transaction, or nothing.
 * @return CAIRN_OK, CAIRN_CONFLICT (the recorded position is at or above
 *         the batch's first id: nothing written), CAIRN_INVALID (key too
 *         long), or a system/LMDB error.
 */
int cairn_view_write(cairn_store *s, cairn_slice view, const cairn_view_op *ops, size_t n,
                     const cairn_tracking *t) __attribute__((warn_unused_result));

/** Empty a view: delete its keys and its tracking positions, in one
 *  transaction (a rebuild replays the log into it from the start). */
int cairn_view_clear(cairn_store *s, cairn_slice view) __attribute__((warn_unused_result));

/** How far view has processed app's log (0: not at all). */
int cairn_view_tracking_max(cairn_store *s, cairn_slice view, cairn_slice app, uint64_t *out)
    __attribute__((warn_unused_result));

/**
 * Look a key up. *value points into the store until cairn_store_read_end(s),
 * which the caller calls whatever the result.
 */
int cairn_view_get(cairn_store *s, cairn_slice view, cairn_slice key, cairn_slice *value, int *found)
    __attribute__((warn_unused_result));

/** An ordered walk over a view's keys that start with prefix (after `after`, if set). */
typedef struct cairn_view_scan {
    cairn_slice view, prefix;
    cairn_slice after;      /* ptr NULL: from the first key with the prefix */
    int started;
} cairn_view_scan;

/** Start a scan (CAIRN_OK or an error); entries come from cairn_view_scan_next
 *  (CAIRN_OK, CAIRN_END when done, or an error; key and value valid until the
 *  next call); end it with cairn_store_read_end. */
int cairn_view_scan_start(cairn_store *s, cairn_view_scan *q) __attribute__((warn_unused_result));
int cairn_view_scan_next(cairn_store *s, cairn_view_scan *q, cairn_slice *key, cairn_slice *value)
    __attribute__((warn_unused_result));

/** A page of the names of views holding keys, after `after` (ptr NULL: from
 *  the first) in name order, at most limit, each given to each() (non-zero
 *  stops with that code). */
int cairn_view_names(cairn_store *s, cairn_slice after, size_t limit,
                     int (*each)(void *ctx, cairn_slice view), void *ctx) __attribute__((warn_unused_result));

/* ---- Following (wake.c) --------------------------------------------------- */

/** The store's change counter, bumped after every commit by any process.
 *  @return 1 with *seq set, or 0 when the store has no wake word (poll). */
int cairn_store_wake_seq(cairn_store *s, uint32_t *seq);

/**
 * Sleep until the change counter of any of the n stores (n <= 16) differs
 * from seen[i], for at most timeout_s; one store whose engine waits its own
 * way (recorder.h's wait) waits that way; otherwise a store without a wake
 * word makes it a sleep of poll_s. Wake-ups may be spurious: look again
 * afterwards.
 * @return CAIRN_OK, CAIRN_INTERRUPTED when a trapped signal arrived, or
 *         CAIRN_INVALID for n outside 1..16.
 */
int cairn_store_wait(cairn_store *const *stores, const uint32_t *seen, size_t n, double timeout_s, double poll_s);

/** Where a wait looks for "a trapped signal arrived" (signals.c sets it). */
void cairn_wake_set_interrupt_flag(volatile sig_atomic_t *flag);

/** Group commits made on the store's environment by this process so far, and
 *  the saves they held (saves / groups is the mean group size). */
void cairn_store_group_stats(cairn_store *s, uint64_t *groups, uint64_t *saves);

/** A compact, consistent copy of the store into target: an empty directory (lmdb:), or a
 *  new schema of the same database named cairn_dry_… (postgresql://). */
int cairn_store_copy(cairn_store *s, const char *target) __attribute__((warn_unused_result));

/** Drop the PostgreSQL copy (cairn_store_copy) a URI names, whose schema is cairn_dry_…;
 *  no such schema is fine. CAIRN_CONFIG for any other URI. */
int cairn_store_drop_copy(const char *uri, char *err, size_t errlen) __attribute__((warn_unused_result));

#endif
