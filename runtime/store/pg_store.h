/*
 * pg_store.h -- the PostgreSQL engine's operations (libpq), below the mapper.
 * No Lua. Records arrive here as finished bytes (format byte, header, hash,
 * sealed payload: what the mapper makes, the same bytes LMDB stores) and
 * leave as the same bytes; this layer never parses or builds a record.
 *
 * One cairn_pg is one connection to one application's schema: several
 * applications share a database, each in its own schema (docs/POSTGRES.md).
 * A handle is used by one thread at a time. Every function returns CAIRN_OK
 * or an error code; cairn_pg_errmsg() then says what happened in one line
 * that names the server (host, port, database) and never the password.
 * After a lost connection the call fails with CAIRN_STORE and the next call
 * connects again. A failed save records nothing.
 *
 * Reads return a cairn_pg_rows: the rows of one batch, gathered in client
 * memory (the statement and its transaction have ended), valid until
 * cairn_pg_rows_free().
 */
#ifndef CAIRN_PG_STORE_H
#define CAIRN_PG_STORE_H

#include <stddef.h>
#include <stdint.h>

typedef struct cairn_pg cairn_pg;

typedef struct cairn_pg_options {
    const char *schema; /* the application's schema; NULL: the URI's `schema` parameter, else "cairn" */
    int read_only;      /* never create or write: a schema without cairn's tables is CAIRN_CONFIG */
    int must_exist;     /* never create: a schema without cairn's tables is CAIRN_CONFIG (store tools) */
} cairn_pg_options;

/** Bytes borrowed from the caller. */
typedef struct cairn_pg_bytes {
    const uint8_t *ptr;
    size_t len;
} cairn_pg_bytes;

/** One stored record to write: an event (or a snapshot, whose topic is ignored). */
typedef struct cairn_pg_record {
    const uint8_t *stream_id;   /* 16 bytes */
    uint64_t version;
    cairn_pg_bytes topic;       /* what log reads filter on */
    cairn_pg_bytes bytes;       /* the stored record */
} cairn_pg_record;

/** A new stream's data key, as the mapper made it (sealed by the master key). */
typedef struct cairn_pg_key {
    const uint8_t *stream_id;   /* 16 bytes */
    cairn_pg_bytes key;
} cairn_pg_key;

/** One index entry of a DCB event: name is 'a' (every DCB event), 'y' || type or 'g' || tag. */
typedef struct cairn_pg_posting {
    cairn_pg_bytes name;
    size_t event;               /* the batch's events[event] */
    cairn_pg_bytes type;        /* the event's type */
} cairn_pg_posting;

/** A DCB query, flattened (store.h's cairn_dcb_query): names[k] ('y' || type or 'g' || tag)
 *  belongs to item item[k] (1..nitems); an item without names, or no items, match every DCB event. */
typedef struct cairn_pg_query {
    size_t nitems;
    const cairn_pg_bytes *names;
    const uint64_t *item;
    size_t nnames;
    uint64_t after;             /* only events at positions above it */
} cairn_pg_query;

/** What one save records, in one transaction. */
typedef struct cairn_pg_batch {
    const cairn_pg_record *events;  /* a stream's events adjacent, versions consecutive */
    size_t n;
    const cairn_pg_record *snapshots;
    size_t nsnapshots;
    cairn_pg_bytes track_app;   /* ptr NULL: no tracking position */
    uint64_t track_id;          /* the position recorded for track_app */
    uint64_t track_first;       /* its batch's first id (0: track_id): must be above the recorded one */
    const cairn_pg_key *keys;   /* data keys of new streams (a stream that has one: CAIRN_CONFLICT) */
    size_t nkeys;
    int check_keygen;           /* refuse (CAIRN_CONFLICT, cairn_pg_keys_changed) unless the key */
    uint64_t keygen;            /* state is still at this generation (from cairn_pg_prepare) */
    const uint8_t (*new_streams)[16]; /* streams sealed as having no events (no prepare read them): */
    size_t nnew;                /* refuse (CAIRN_CONFLICT, cairn_pg_keys_changed) if one has */
    const cairn_pg_posting *postings; /* DCB events' postings (index entries) */
    size_t npostings;
    const cairn_pg_query *fail_if;    /* NULL, or refuse (CAIRN_CONFLICT) when a DCB event matching it
                                       * was recorded after fail_if->after */
    cairn_pg_bytes once;        /* ptr NULL, or an idempotency key: CAIRN_CONFLICT if saved before */
} cairn_pg_batch;

/** One row of a read. Pointers stay valid until cairn_pg_rows_free(). */
typedef struct cairn_pg_row {
    uint64_t id;                /* notification id (log reads; 0 where not numbered yet) */
    uint64_t version;           /* stream version (stream, head and snapshot reads) */
    const uint8_t *stream_id;   /* 16 bytes (stream, head, snapshot and log reads) */
    cairn_pg_bytes bytes;       /* the record; a view value for view reads */
    cairn_pg_bytes key;         /* view reads: the key; snapshot reads: the event's record; DCB walks: the name */
    cairn_pg_bytes type;        /* DCB walks: the type an index entry records */
} cairn_pg_row;

typedef struct cairn_pg_rows {
    size_t n;
    cairn_pg_row *row;
    void *result;               /* the PGresult the rows point into */
} cairn_pg_rows;

void cairn_pg_rows_free(cairn_pg_rows *rows);

/**
 * Connect to a libpq URI (postgresql:// or postgres://; any libpq parameter,
 * plus `schema=NAME`, which cairn takes out). A writer creates the schema and
 * its tables the first time; a read-only open never does.
 * @return CAIRN_OK; CAIRN_CONFIG (bad URI or schema name, authentication
 *         refused, no cairn store there for a read-only open, newer format);
 *         CAIRN_STORE (server unreachable). On failure *out is NULL and err
 *         holds the message.
 */
int cairn_pg_open(const char *uri, const cairn_pg_options *opt, cairn_pg **out, char *err, size_t errlen)
    __attribute__((warn_unused_result));
void cairn_pg_close(cairn_pg *pg);
const char *cairn_pg_errmsg(const cairn_pg *pg);
/** "host:port/database", as messages name the server. */
const char *cairn_pg_server(const cairn_pg *pg);
const char *cairn_pg_schema(const cairn_pg *pg);
/** The server process of the connection (0: none), for tests that end it. */
int cairn_pg_backend_pid(const cairn_pg *pg);

/**
 * Record a batch in one transaction, or nothing of it. Each stream's first
 * event must follow its recorded head (or start it). Numbers the events:
 * ids go on from the last one given, without gaps, and become visible in id
 * order (docs/POSTGRES.md); returns once they have them.
 * @param[out] first_id the id of events[0] (the rest follow); 0 when n is 0.
 * @return CAIRN_OK, CAIRN_CONFLICT (a stream moved on, or the tracking
 *         position is not above the recorded one; nothing recorded),
 *         CAIRN_INVALID, CAIRN_STORE.
 */
int cairn_pg_append(cairn_pg *pg, const cairn_pg_batch *b, uint64_t *first_id)
    __attribute__((warn_unused_result));

/** The positions of the DCB events matching q (ascending, each once, at most limit; 0: all),
 *  and the log's last id, in one statement (one snapshot). Free ids with free(). */
int cairn_pg_dcb_read(cairn_pg *pg, const cairn_pg_query *q, uint64_t limit, uint64_t **ids, size_t *n,
                      uint64_t *last_id) __attribute__((warn_unused_result));

/** The save of an idempotency key: its first id (0: it recorded no events) and how many.
 *  @return CAIRN_OK, CAIRN_END (never saved), CAIRN_STORE. */
int cairn_pg_once_get(cairn_pg *pg, cairn_pg_bytes key, uint64_t *first_id, uint64_t *n)
    __attribute__((warn_unused_result));

/** Saves with events made through this handle, and how many of them found
 *  the numbering lock taken and were numbered after their commit. */
void cairn_pg_save_stats(const cairn_pg *pg, uint64_t *saves, uint64_t *deferred);

/** A stream's records with from <= version <= to (UINT64_MAX: no bound; versions
 *  may start at 0), ascending or descending, at most limit (0: all). */
int cairn_pg_read_stream(cairn_pg *pg, const uint8_t id[16], uint64_t from, uint64_t to, int descending,
                         size_t limit, cairn_pg_rows *out) __attribute__((warn_unused_result));

/* ---- Keys and what a save depends on (pg_keys.c) ------------------------
 * recorder.h's save reads, seals and writes in one engine transaction. Here
 * the reads come first (cairn_pg_prepare, one round trip, no transaction
 * left open while the mapper seals), and the save re-checks in its own
 * transaction what they found: each stream's head version (so the head's
 * hash is the one read) and, when asked, the key state's generation, under
 * a lock that forget, rekey and set_cipher take exclusively. When the key
 * state moved, the save fails with CAIRN_CONFLICT and cairn_pg_keys_changed()
 * is true: prepare and seal again. */

typedef struct cairn_pg_key_state {
    cairn_pg_bytes cipher;      /* ptr NULL: not encrypted */
    cairn_pg_bytes keycheck;
    uint64_t keygen;            /* bumped by every forget, rekey and set_cipher */
    int empty;                  /* no events recorded */
} cairn_pg_key_state;

/** A snapshot a save records: the event it was taken at is looked up. */
typedef struct cairn_pg_snapshot_ref {
    const uint8_t *stream_id;
    uint64_t version;
} cairn_pg_snapshot_ref;

typedef struct cairn_pg_prepared {
    cairn_pg_key_state ks;
    /* one per stream asked, in order: version 0 when it has no events, else
     * its last version and that record (bytes); key: its data key (asked
     * for with want_keys; ptr NULL: none, len 1: forgotten) */
    const cairn_pg_row *head;
    size_t nheads;
    /* one per snapshot asked, in order: bytes.ptr NULL when the event at its
     * version is not recorded, else that event's record */
    const cairn_pg_row *base;
    size_t nbases;
    cairn_pg_rows rows;         /* what the above point into */
} cairn_pg_prepared;

/** Read the key state, the heads of n streams (with their data keys when
 *  want_keys) and the events m snapshots were taken at, in one round trip.
 *  n = m = 0 reads the key state alone. Free with cairn_pg_prepared_free(). */
int cairn_pg_prepare(cairn_pg *pg, const uint8_t (*ids)[16], size_t n, const cairn_pg_snapshot_ref *snaps,
                     size_t m, int want_keys, cairn_pg_prepared *out) __attribute__((warn_unused_result));
void cairn_pg_prepared_free(cairn_pg_prepared *p);

/** After a CAIRN_CONFLICT: was it the key state moving, or a stream taken as new having
 *  events (prepare again), not a stream that moved on? */
int cairn_pg_keys_changed(const cairn_pg *pg);

/** Forget a stream: its data key becomes one 0 byte and its snapshots go, if
 *  the key state is still at keygen (when check_keygen).
 *  @return CAIRN_OK (also when forgotten before), CAIRN_NOTFOUND (no data key),
 *          CAIRN_CONFLICT (the key state moved), CAIRN_STORE. */
int cairn_pg_forget(cairn_pg *pg, const uint8_t id[16], int check_keygen, uint64_t keygen)
    __attribute__((warn_unused_result));

/** Data keys in stream id order, after `after` (NULL: from the first), at most limit (0: all):
 *  rows with stream_id and bytes = the stored key. */
int cairn_pg_read_keys(cairn_pg *pg, const uint8_t *after, size_t limit, cairn_pg_rows *out)
    __attribute__((warn_unused_result));

/** Replace every live (not forgotten) data key with keys[i] and the key
 *  check, in one transaction, if the key state is still at keygen and the
 *  live keys are exactly those given. @return CAIRN_OK, CAIRN_CONFLICT
 *  (something changed: read the keys again), CAIRN_STORE. */
int cairn_pg_rekey(cairn_pg *pg, const cairn_pg_key *keys, size_t n, cairn_pg_bytes keycheck, uint64_t keygen)
    __attribute__((warn_unused_result));

/** Make an empty plain store encrypted, if the key state is still at keygen.
 *  *done is 0 when it was encrypted already (read the key state again).
 *  @return CAIRN_OK, CAIRN_CONFLICT (events or a key change came in between), CAIRN_STORE. */
int cairn_pg_set_cipher(cairn_pg *pg, cairn_pg_bytes cipher, cairn_pg_bytes keycheck, uint64_t keygen, int *done)
    __attribute__((warn_unused_result));

/** Log records with start <= id (<= stop when stop > 0) whose topic is one of
 *  topics (all when ntopics is 0), ascending, at most limit (0: all). */
int cairn_pg_read_log(cairn_pg *pg, uint64_t start, uint64_t stop, const cairn_pg_bytes *topics,
                      size_t ntopics, size_t limit, cairn_pg_rows *out) __attribute__((warn_unused_result));

/** Log records with these ids (ascending; those that exist) whose topic is one of topics (all
 *  when ntopics is 0), ascending. */
int cairn_pg_read_log_ids(cairn_pg *pg, const uint64_t *ids, size_t n, const cairn_pg_bytes *topics, size_t ntopics,
                          cairn_pg_rows *out) __attribute__((warn_unused_result));

/** The newest snapshot of a stream at or below lte (any: UINT64_MAX): 0 or
 *  1 row; key: the record of the event it was taken at (ptr NULL: none). */
int cairn_pg_read_snapshot(cairn_pg *pg, const uint8_t id[16], uint64_t lte, cairn_pg_rows *out)
    __attribute__((warn_unused_result));

/** The last notification id given (0: none). */
int cairn_pg_max_id(cairn_pg *pg, uint64_t *out) __attribute__((warn_unused_result));

/** The last position of app recorded as processed (0: none). */
int cairn_pg_tracking_max(cairn_pg *pg, cairn_pg_bytes app, uint64_t *out) __attribute__((warn_unused_result));

typedef struct cairn_pg_stats {
    uint64_t events, streams, snapshots, max_id, pending;  /* pending: committed, not numbered yet */
} cairn_pg_stats;
int cairn_pg_stat(cairn_pg *pg, cairn_pg_stats *out) __attribute__((warn_unused_result));

/** A value of the store's meta table (the mapper's key check, format...). */
int cairn_pg_meta_get(cairn_pg *pg, const char *key, cairn_pg_rows *out) __attribute__((warn_unused_result));
int cairn_pg_meta_put(cairn_pg *pg, const char *key, cairn_pg_bytes value) __attribute__((warn_unused_result));

/* ---- A consistent walk of the whole store (pg_walk.c): verify, export -----
 * Between cairn_pg_walk_begin and cairn_pg_walk_end every read of the handle
 * (these, cairn_pg_read_keys, cairn_pg_stat, ...) sees one snapshot: one
 * REPEATABLE READ, READ ONLY transaction. Writers are not blocked. A lost
 * connection ends the walk (CAIRN_STORE); end it anyway. */
int cairn_pg_walk_begin(cairn_pg *pg) __attribute__((warn_unused_result));
/** Events (or snapshots) in stream, then version order, after (after_stream,
 *  after_version) (after_stream NULL: from the first), at most limit (0: all). */
int cairn_pg_walk_events(cairn_pg *pg, const uint8_t *after_stream, uint64_t after_version, size_t limit,
                         cairn_pg_rows *out) __attribute__((warn_unused_result));
int cairn_pg_walk_snapshots(cairn_pg *pg, const uint8_t *after_stream, uint64_t after_version, size_t limit,
                            cairn_pg_rows *out) __attribute__((warn_unused_result));
void cairn_pg_walk_end(cairn_pg *pg);
/** Inside a walk: DCB index entries in (name, id) order after (after_name, after_id) (after_name.ptr
 *  NULL: from the first), at most limit: rows with id, key = the name ('a', 'y' || type, 'g' || tag),
 *  type, and the event recorded at that id (stream_id, version, bytes; bytes.ptr NULL: none). */
int cairn_pg_walk_dcb(cairn_pg *pg, cairn_pg_bytes after_name, uint64_t after_id, size_t limit, cairn_pg_rows *out)
    __attribute__((warn_unused_result));
/** Inside a walk: is there a DCB index entry (name, id)? */
int cairn_pg_dcb_has(cairn_pg *pg, cairn_pg_bytes name, uint64_t id, int *found) __attribute__((warn_unused_result));
/** Inside a walk: idempotency records whose events are not all in the log (at most limit): rows
 *  with key = the key, id = its first id, version = its count. */
int cairn_pg_walk_once_bad(cairn_pg *pg, size_t limit, cairn_pg_rows *out) __attribute__((warn_unused_result));

/* ---- Views (pg_views.c): named key/value spaces with their own tracking ---- */

typedef struct cairn_pg_view_op {
    cairn_pg_bytes key, value;  /* value ignored by a delete */
    int del;
} cairn_pg_view_op;

/** Apply ops in order (a later op on a key wins) and record the tracking
 *  position id (app.ptr NULL: none) of a batch starting at first (0: id)
 *  in one transaction, or nothing.
 *  @return CAIRN_OK, CAIRN_CONFLICT (recorded position at or above first),
 *          CAIRN_INVALID (view name + key above 510 bytes), CAIRN_STORE. */
int cairn_pg_view_write(cairn_pg *pg, cairn_pg_bytes view, const cairn_pg_view_op *ops, size_t n,
                        cairn_pg_bytes app, uint64_t id, uint64_t first) __attribute__((warn_unused_result));
/** 0 or 1 row (key, bytes = the value). */
int cairn_pg_view_get(cairn_pg *pg, cairn_pg_bytes view, cairn_pg_bytes key, cairn_pg_rows *out)
    __attribute__((warn_unused_result));
/** Keys starting with prefix, above `after` (ptr NULL: from the first), in
 *  byte order, at most limit (0: all). */
int cairn_pg_view_scan(cairn_pg *pg, cairn_pg_bytes view, cairn_pg_bytes prefix, cairn_pg_bytes after,
                       size_t limit, cairn_pg_rows *out) __attribute__((warn_unused_result));
/** Keys of every view whose name is `from` or later, in (name, key) order, after
 *  (from, after) when after.ptr is set, at most limit (0: all): rows with key = the
 *  stored key "name \0 key" and bytes = the value. */
int cairn_pg_view_scan_all(cairn_pg *pg, cairn_pg_bytes from, cairn_pg_bytes after, size_t limit, cairn_pg_rows *out)
    __attribute__((warn_unused_result));
int cairn_pg_view_tracking_max(cairn_pg *pg, cairn_pg_bytes view, cairn_pg_bytes app, uint64_t *out)
    __attribute__((warn_unused_result));

/** Delete a view's keys and its tracking positions in one transaction (a rebuild). */
int cairn_pg_view_clear(cairn_pg *pg, cairn_pg_bytes view) __attribute__((warn_unused_result));

/* ---- The store tools' pages (pg_list.c) -------------------------------------
 * At most limit rows (0: all) after `after` (ptr NULL: from the first). */

/** Tracking positions by name as the mapper spells them ("app", a view's
 *  "view/app"), in byte order: rows with id and bytes = the name. */
int cairn_pg_tracking_scan(cairn_pg *pg, cairn_pg_bytes after, size_t limit, cairn_pg_rows *out)
    __attribute__((warn_unused_result));
/** The streams that hold snapshots, in id order: rows with stream_id. */
int cairn_pg_snapshot_streams(cairn_pg *pg, const uint8_t *after, size_t limit, cairn_pg_rows *out)
    __attribute__((warn_unused_result));
/** Every stream with events (forgotten ones too), in id order: rows with stream_id and
 *  version = its last. */
int cairn_pg_stream_heads(cairn_pg *pg, const uint8_t *after, size_t limit, cairn_pg_rows *out)
    __attribute__((warn_unused_result));

/* ---- Wake-ups (pg_wake.c): LISTEN/NOTIFY ---------------------------------- */

/**
 * Wait until the log holds an id above `seen`, for at most timeout_s, asleep
 * in poll() on the connection's socket (no CPU while idle). Listens first,
 * then looks, so a commit in between is not missed. *newer is set when an id
 * above seen exists; a wake-up may also end early (a signal, a reconnect).
 * @return CAIRN_OK or CAIRN_STORE.
 */
int cairn_pg_wait(cairn_pg *pg, uint64_t seen, double timeout_s, int *newer) __attribute__((warn_unused_result));

#endif
