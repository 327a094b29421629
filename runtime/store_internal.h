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

#include "store.h"

#define CAIRN_STORE_FORMAT 1
#define CAIRN_STREAM_KEY 24   /* stream id (16) || version (u64 big-endian) */

/* Is rc one of cairn's own codes (whose message is already set)? */
#define CAIRN_IS_OWN_CODE(rc) ((rc) <= -41000 && (rc) > -42000)

/* One environment per directory per process, shared by its handles (LMDB
 * forbids opening an environment twice in one process). */
typedef struct cairn_env {
    char *path;                 /* realpath of the directory (a private one for memory:) */
    int is_private;             /* memory: never shared, never in the registry */
    MDB_env *env;
    MDB_dbi meta, log, streams, tracking;
    MDB_dbi views;              /* store_views.c */
    struct cairn_wake *wake;    /* store_wake.c; NULL: no wake word, followers poll */
    int refs;
    cairn_store *handles;       /* so a map resize can end every handle's read */
    struct cairn_env *next;
} cairn_env;

/* A handle: one user of an environment, with its own read transaction. */
struct cairn_store {
    cairn_env *sh;
    char *uri;
    cairn_sync_mode sync;
    cairn_store *next_handle;
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
};

/* Record an error message on s and return rc. */
int cairn_store_fail(cairn_store *s, int rc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Turn an LMDB or system error met while `doing` something into a message. */
int cairn_store_lmdb_failure(cairn_store *s, int rc, const char *doing);

/* Check a batch's shape before any transaction: ids, contiguous versions, topics. */
int cairn_store_check_batch(cairn_store *s, const cairn_record *ev, size_t n);

/* Describe a version conflict the same way everywhere. */
int cairn_store_conflict(cairn_store *s, const uint8_t id[16], uint64_t version, int has_last, uint64_t last);

/* Does a record match a log query's topic filter? */
int cairn_store_topic_matches(const cairn_log_query *q, const cairn_record *rec);

void cairn_stream_key(uint8_t key[CAIRN_STREAM_KEY], const uint8_t id[16], uint64_t version);

/* Open the handle for a directory (NULL: a private memory: environment). */
int cairn_store_env_open(const char *path, const cairn_store_options *opt, cairn_store **out, char *err,
                         size_t errlen);

/* Start (or restart) the handle's read snapshot in s->rtxn; end it with
 * cairn_store_read_end(). */
int cairn_store_begin_read(cairn_store *s);

/*
 * Run fn in one write transaction and commit it, growing the map and trying
 * again when it fills. fn returns 0 to commit, or an error (its own message
 * set with cairn_store_fail for CAIRN_* codes) to abort.
 */
typedef int (*cairn_write_fn)(cairn_store *s, MDB_txn *txn, void *ctx);
int cairn_store_write(cairn_store *s, const char *doing, cairn_write_fn fn, void *ctx);

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
