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

/** What one save records, in one transaction. */
typedef struct cairn_pg_batch {
    const cairn_pg_record *events;  /* a stream's events adjacent, versions consecutive */
    size_t n;
    const cairn_pg_record *snapshots;
    size_t nsnapshots;
    cairn_pg_bytes track_app;   /* ptr NULL: no tracking position */
    uint64_t track_id;          /* must be above the one recorded for track_app */
} cairn_pg_batch;

/** One row of a read. Pointers stay valid until cairn_pg_rows_free(). */
typedef struct cairn_pg_row {
    uint64_t id;                /* notification id (log reads; 0 where not numbered yet) */
    uint64_t version;           /* stream version (stream, head and snapshot reads) */
    const uint8_t *stream_id;   /* 16 bytes (stream, head, snapshot and log reads) */
    cairn_pg_bytes bytes;       /* the record; a view value for view reads */
    cairn_pg_bytes key;         /* view reads: the key */
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

/** Saves with events made through this handle, and how many of them found
 *  the numbering lock taken and were numbered after their commit. */
void cairn_pg_save_stats(const cairn_pg *pg, uint64_t *saves, uint64_t *deferred);

/** A stream's records with gt < version (<= lte when lte > 0), ascending or
 *  descending, at most limit (0: all). */
int cairn_pg_read_stream(cairn_pg *pg, const uint8_t id[16], uint64_t gt, uint64_t lte, int descending,
                         size_t limit, cairn_pg_rows *out) __attribute__((warn_unused_result));

/** The newest record of each of n streams (streams with none are left out),
 *  in one round trip: the mapper chains new events to their hashes. */
int cairn_pg_read_heads(cairn_pg *pg, const uint8_t (*ids)[16], size_t n, cairn_pg_rows *out)
    __attribute__((warn_unused_result));

/** Log records with start <= id (<= stop when stop > 0) whose topic is one of
 *  topics (all when ntopics is 0), ascending, at most limit (0: all). */
int cairn_pg_read_log(cairn_pg *pg, uint64_t start, uint64_t stop, const cairn_pg_bytes *topics,
                      size_t ntopics, size_t limit, cairn_pg_rows *out) __attribute__((warn_unused_result));

/** The newest snapshot of a stream at or below lte (any when lte is 0): 0 or 1 row. */
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

/* ---- Views (pg_views.c): named key/value spaces with their own tracking ---- */

typedef struct cairn_pg_view_op {
    cairn_pg_bytes key, value;  /* value ignored by a delete */
    int del;
} cairn_pg_view_op;

/** Apply ops in order (a later op on a key wins) and record the tracking
 *  position (app.ptr NULL: none) in one transaction, or nothing.
 *  @return CAIRN_OK, CAIRN_CONFLICT (position not above the recorded one),
 *          CAIRN_INVALID (view name + key above 510 bytes), CAIRN_STORE. */
int cairn_pg_view_write(cairn_pg *pg, cairn_pg_bytes view, const cairn_pg_view_op *ops, size_t n,
                        cairn_pg_bytes app, uint64_t id) __attribute__((warn_unused_result));
/** 0 or 1 row (key, bytes = the value). */
int cairn_pg_view_get(cairn_pg *pg, cairn_pg_bytes view, cairn_pg_bytes key, cairn_pg_rows *out)
    __attribute__((warn_unused_result));
/** Keys starting with prefix, above `after` (ptr NULL: from the first), in
 *  byte order, at most limit (0: all). */
int cairn_pg_view_scan(cairn_pg *pg, cairn_pg_bytes view, cairn_pg_bytes prefix, cairn_pg_bytes after,
                       size_t limit, cairn_pg_rows *out) __attribute__((warn_unused_result));
int cairn_pg_view_tracking_max(cairn_pg *pg, cairn_pg_bytes view, cairn_pg_bytes app, uint64_t *out)
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
