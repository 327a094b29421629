/*
 * store_internal.h -- what the store's source files share: the LMDB handle,
 * the per-directory environment, and the transaction helpers. No Lua.
 *
 * Every store is an LMDB environment. `memory:` is one in a private directory
 * that is unlinked as soon as it is open: the same code and the same rules,
 * nothing left behind, and nothing another process can open.
 */
#ifndef CAIRN_STORE_INTERNAL_H
#define CAIRN_STORE_INTERNAL_H

#include <lmdb.h>
#include <pthread.h>

#include "compress.h"
#include "crypto.h"
#include "store.h"

#define CAIRN_STORE_FORMAT 2
#define CAIRN_STREAM_KEY 24   /* stream id (16) || version (u64 big-endian) */

/* Is rc one of cairn's own codes (whose message is already set)? */
#define CAIRN_IS_OWN_CODE(rc) ((rc) <= -41000 && (rc) > -42000)

/* One environment per directory per process, shared by its handles (LMDB
 * forbids opening an environment twice in one process). */
typedef struct cairn_env {
    char *path;                 /* realpath of the directory (a private one for memory:) */
    int is_private;             /* memory: never shared, never in the registry */
    MDB_env *env;
    MDB_dbi meta, log, streams, tracking, snapshots;
    MDB_dbi views;              /* store_views.c */
    struct cairn_wake *wake;    /* store_wake.c; NULL: no wake word, followers poll */
    int refs;                   /* handles open on it (under the registry lock) */
    struct cairn_env *next;
    /* store_txn.c: threads sharing the environment */
    pthread_rwlock_t map_lock;  /* shared by active transactions, exclusive to resize the map */
    int resizing;               /* threads waiting to resize the map (see map_share) */
    pthread_mutex_t write_lock; /* guards the fields below and resizing's changes */
    pthread_cond_t resized;     /* resizing went back to 0 */
    struct write_req *queue, **queue_tail; /* saves waiting for the next group commit */
    int waiting;                /* saves in the queue */
    int last_group;             /* saves in the last group taken */
    int gathering;              /* a leader waits on `arrived` for more saves */
    pthread_cond_t arrived;     /* a save queued while gathering */
    int committing;             /* a thread is leading a group commit */
    int nosync;                 /* MDB_NOSYNC is set on the environment now (changed only by a leader) */
    uint64_t groups, grouped;   /* group commits made, saves in them */
} cairn_env;

/* A handle: one user of an environment, with its own read transaction. */
struct cairn_store {
    cairn_env *sh;
    char *uri;
    cairn_sync_mode sync;
    char errmsg[512];
    /* the read in progress: a read transaction reset between reads */
    MDB_txn *rtxn;
    int ractive;
    MDB_cursor *rcur;
    enum { READ_NONE, READ_STREAM, READ_LOG } reading;
    int started, descending;
    size_t remaining;
    uint8_t stream_id[16];
    uint64_t gt, lte;           /* stream bounds, inclusive lte */
    int has_gt;
    cairn_log_query lq;
    uint8_t prev_hash[CAIRN_HASH_BYTES]; /* chain check of an ascending stream read */
    int have_prev;
    /* data at rest (store_seal.c) */
    uint8_t *master;            /* the master key in secret memory, or NULL */
    uint8_t *view_key;          /* derived from it for view values (store_views.c), or NULL */
    int encrypted;              /* the store is encrypted (its meta says so) */
    int compress;
    cairn_compressor *zc;       /* made on first use */
    struct cairn_key_cache *keys; /* unwrapped data keys (store_seal.c) */
    uint8_t *buf, *buf2;        /* payloads opened and decompressed by reads */
    size_t buf_cap, buf2_cap;
};

/* Record an error message on s and return rc. */
int cairn_store_fail(cairn_store *s, int rc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Turn an LMDB or system error met while `doing` something into a message. */
int cairn_store_lmdb_failure(cairn_store *s, int rc, const char *doing);

/* Check a batch's shape before any transaction: topics and class versions
 * of events and snapshots, contiguous versions, the tracking position. */
int cairn_store_check_batch(cairn_store *s, const cairn_batch *b);

/* Describe a version conflict the same way everywhere. */
int cairn_store_conflict(cairn_store *s, const uint8_t id[16], uint64_t version, int has_last, uint64_t last);

/* Does a record match a log query's topic filter? */
int cairn_store_topic_matches(const cairn_log_query *q, const cairn_record *rec);

void cairn_stream_key(uint8_t key[CAIRN_STREAM_KEY], const uint8_t id[16], uint64_t version);

/* Position cur (over a database keyed stream id || version: streams,
 * snapshots) on the entry of stream id with the greatest version <= version;
 * k and v get that entry. MDB_NOTFOUND if the stream has none. */
int cairn_store_seek_at_or_below(MDB_cursor *cur, const uint8_t id[16], uint64_t version, MDB_val *k, MDB_val *v);

/* Open the handle for a directory (NULL: a private memory: environment). */
int cairn_store_env_open(const char *path, const cairn_store_options *opt, cairn_store **out, char *err,
                         size_t errlen);

/* --- store_txn.c: transactions on a shared environment --- */

/* Make and destroy an environment's locks (at open and at its last close). */
int cairn_env_locks_init(cairn_env *sh);
void cairn_env_locks_destroy(cairn_env *sh);

/* Start (or restart) the handle's read snapshot in s->rtxn; end it with
 * cairn_store_read_end(). While it is active the map cannot be resized, so
 * every read ends before the call that began it returns. */
int cairn_store_begin_read(cairn_store *s);

/*
 * Run fn in a write transaction and commit it, growing the map and trying
 * again when it fills. fn returns 0 to commit, or an error (its own message
 * set with cairn_store_fail for CAIRN_* codes) to abort. Calls from several
 * threads at once are committed together (group commit): fn may then run on
 * another thread, inside a nested transaction, while this one waits.
 */
typedef int (*cairn_write_fn)(cairn_store *s, MDB_txn *txn, void *ctx);
int cairn_store_write(cairn_store *s, const char *doing, cairn_write_fn fn, void *ctx);

/* --- store_seal.c: keys and payloads --- */

/* Set up the handle's cipher from opt at open: check the key against the
 * store, or mark a new store encrypted. */
int cairn_store_cipher_open(cairn_store *s, const cairn_store_options *opt, char *err, size_t errlen);
void cairn_store_cipher_close(cairn_store *s);

/* At the start of every transaction: keep the cached data keys only if no
 * key was forgotten since they were cached. */
void cairn_store_keys_begin(cairn_store *s, MDB_txn *txn);

/* Empty the data key cache (after a write that did not commit). */
void cairn_store_keys_reset(cairn_store *s);

/* The data key of a stream, made and stored when create is set and the
 * stream has none. CAIRN_NOTFOUND if the stream was forgotten. */
int cairn_store_data_key(cairn_store *s, MDB_txn *txn, const uint8_t id[16], int create, const uint8_t **key);

/* Write rec (payload: msgpack) as a stored record under key in cur's
 * database: compressed and sealed as the store says, hashed after prev.
 * hash_out receives the record's hash. */
int cairn_store_put_record(cairn_store *s, MDB_txn *txn, MDB_cursor *cur, MDB_val *key, unsigned put_flags,
                           const cairn_record *rec, const uint8_t prev[CAIRN_HASH_BYTES],
                           uint8_t hash_out[CAIRN_HASH_BYTES]);

/* Turn a parsed record's stored payload into its msgpack bytes (in the
 * handle's buffers, valid until the next read). CAIRN_NOTFOUND if its stream
 * was forgotten (rec->forgotten is then set). */
int cairn_store_open_payload(cairn_store *s, MDB_txn *txn, cairn_record *rec);

/* The handle's read buffer with room for n bytes (valid until the next read), or NULL. */
uint8_t *cairn_store_scratch(cairn_store *s, size_t n);

/* Describe a record for messages: "aggregate <id> version <v>". */
void cairn_store_describe(const uint8_t id[16], uint64_t version, char *out, size_t len);

/* The stored record of a stream version (via the index), parsed; CAIRN_END if none. */
int cairn_store_find_event(cairn_store *s, MDB_txn *txn, const uint8_t id[16], uint64_t version,
                           cairn_record *out, uint64_t *notification_id);

/* --- store_snapshots.c --- */

/* Write snapshots of events recorded (in this transaction or before). */
int cairn_store_put_snapshots(cairn_store *s, MDB_txn *txn, const cairn_record *snaps, size_t n);

/* Record a tracking position inside a write transaction (must rise). */
int cairn_store_tracking_put_in(cairn_store *s, MDB_txn *txn, const cairn_tracking *t);

/* The wake word of a directory (store_wake.c); NULL dir: process-local.
 * Returns NULL when there can be none. */
typedef struct cairn_wake cairn_wake;
cairn_wake *cairn_wake_open(const char *dir);
void cairn_wake_close(cairn_wake *w);
/* Tell sleepers the store changed: called after every commit. */
void cairn_wake_bump(cairn_wake *w);

#endif
