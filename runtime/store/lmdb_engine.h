/*
 * lmdb_engine.h -- what the LMDB engine's files share: the per-directory
 * environment, the handle, transactions. No Lua, no crypto, no compression:
 * the engine stores and returns record bytes (recorder.h).
 *
 * Layout (named databases in one environment per store directory):
 *   meta      "format" -> u32 big-endian store format; "cipher", "keycheck",
 *             "keygen" (the key state, recorder.h)
 *   log       notification id (u64 big-endian) -> record (record.h); each event's bytes live here only
 *   streams   stream id (16 bytes) || version (u64 big-endian) -> notification id (u64 big-endian)
 *             and (encrypted stores) stream id (16 bytes) -> its stored data key; it sorts
 *             just before the stream's own entries, on the same page
 *   tracking  application name (or view "/" application) -> last notification id processed (u64 big-endian)
 *   snapshots stream id || version -> record (record.h) of the aggregate's state
 *   views     stored view key -> stored view value (mapper_views.c)
 *   index     DCB events by type and tag, idempotency keys (lmdb_dcb.c); stores made
 *             before it get it from their first writer
 *
 * Every store is an LMDB environment. `memory:` is one in a private
 * directory that is unlinked as soon as it is open: the same code and the
 * same rules, nothing left behind, and nothing another process can open.
 *
 * lmdb_env.c opens environments (the registry, directories, database setup),
 * lmdb_txn.c runs transactions (the map lock, reads, group commit),
 * lmdb_error.c names failures, lmdb_append.c saves and the key state,
 * lmdb_read.c reads, lmdb_views.c views, lmdb_keys.c forget and rekey,
 * lmdb_dcb.c DCB queries and idempotency keys, lmdb_verify.c the walks of
 * verify, lmdb_stat.c statistics and copies, lmdb_fault.c damaged pages met
 * by reads (errors instead of signals), lmdb_map.c the writable map's size
 * and disk blocks.
 */
#ifndef CAIRN_LMDB_ENGINE_H
#define CAIRN_LMDB_ENGINE_H

#include <lmdb.h>
#include <pthread.h>
#include <setjmp.h>

#include "recorder.h"
#include "wake.h"

#define CAIRN_STORE_FORMAT 2
#define CAIRN_STREAM_KEY 24   /* stream id (16) || version (u64 big-endian) */

/* Is rc one of cairn's own codes (whose message is already set)? */
#define CAIRN_IS_OWN_CODE(rc) ((rc) <= -41000 && (rc) > -42000)

/* One environment per directory per process, shared by its handles (LMDB
 * forbids opening an environment twice in one process). */
typedef struct cairn_env {
    char *path;                 /* realpath of the directory (a private one for memory:) */
    int is_private;             /* memory: never shared, never in the registry */
    int read_only;              /* opened MDB_RDONLY: this process cannot write the files */
    int unlocked;               /* opened MDB_NOLOCK: the lock file could not be written (lmdb_env.c) */
    int damaged;                /* a read met a broken page: writes are refused (lmdb_fault.c) */
    unsigned psize;             /* the page size */
    int writemap;               /* opened MDB_WRITEMAP: its size agreed and its blocks reserved (lmdb_map.c) */
    int map_fd;                 /* lmdb_map.c: our descriptor of data.mdb, flocked while a map size is set (-1: none) */
    size_t used, written;       /* lmdb_txn.c: bytes of pages in use at the last commit, and bytes
                                 * written since the writer last looked at what it has mapped */
    size_t grown;               /* lmdb_txn.c: bytes of pages the last commit added (the next one's
                                 * likely need, for growing the map ahead of it) */
    size_t mapped;              /* bytes of files the process had mapped after it last let them go */
    MDB_env *env;
    MDB_dbi meta, log, streams, tracking, snapshots, views, index;
    int no_index;               /* a store made before `index`, opened by a reader only */
    cairn_wake *wake;           /* NULL: no wake word, followers poll */
    int refs;                   /* handles open on it (under the registry lock) */
    struct cairn_env *next;
    /* lmdb_txn.c: threads sharing the environment */
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
    uint64_t txn_log_last;      /* the leader's write transaction: the last notification id an
                                 * append wrote in it (0: none), so the commit need not look it up */
} cairn_env;

/* A handle: one user of an environment, with its own read transaction. */
typedef struct cairn_lmdb {
    cairn_engine base;          /* first: a cairn_engine * is a cairn_lmdb * */
    cairn_env *sh;
    cairn_sync_mode sync;
    int read_only;              /* this handle never writes */
    /* the read in progress: a read transaction reset between reads */
    MDB_txn *rtxn;
    int ractive;
    MDB_cursor *rcur;
    MDB_cursor *lcur;           /* a stream read's cursor on the log: each next record is near the last */
    uint64_t lcur_at;           /* the notification lcur stands on (0: not placed) */
    size_t walked;              /* record bytes read since this handle last let the map's pages go */
    enum { LREAD_NONE, LREAD_STREAM, LREAD_LOG, LREAD_VIEW } reading;
    int started, descending;
    size_t remaining;
    uint8_t stream_id[16];
    uint64_t gt, lte;           /* stream bounds, inclusive lte */
    int has_gt;
    cairn_log_query lq;
    size_t id_at;               /* a log read of listed ids: the next one to look up */
    uint64_t unlocked_txnid;    /* MDB_NOLOCK reads: the commit the read began at */
    MDB_cursor *local[4];       /* cursors a read opened for itself (closed after a fault) */
} cairn_lmdb;

#define LMDB(e) ((cairn_lmdb *)(e))

/* --- lmdb_error.c --- */

/* Turn an LMDB or system error met while `doing` something into a message
 * (cairn's own codes pass through: their message is set). */
int cairn_lmdb_failure(cairn_lmdb *h, int rc, const char *doing);

/* --- lmdb_fault.c: reads of a damaged data file fail instead of crashing --- */

typedef struct cairn_fault_frame {
    sigjmp_buf jb;
    struct cairn_fault_frame *prev;
} cairn_fault_frame;

/* Install the fault handlers (once per process) and env's assertion hook. */
void cairn_lmdb_fault_setup(MDB_env *env);
void cairn_fault_enter(cairn_fault_frame *f);
void cairn_fault_leave(cairn_fault_frame *f);
/* After the jump: end the read, mark the environment damaged, set the message. CAIRN_CORRUPT. */
int cairn_lmdb_fault(cairn_lmdb *h, cairn_fault_frame *f, const char *doing);
/* CAIRN_CORRUPT for a write on an environment a read found damaged. */
int cairn_lmdb_refuse_damaged(cairn_lmdb *h, const char *doing);
/* A cursor of the read in progress that the read closes itself
 * (cairn_lmdb_local_close), or, should the read fault, lmdb_fault.c does. */
int cairn_lmdb_local_cursor(cairn_lmdb *h, MDB_dbi dbi, MDB_cursor **cur);
void cairn_lmdb_local_close(cairn_lmdb *h, MDB_cursor *cur);
/* The log's last notification id (0: empty), inside the read in progress. */
int cairn_lmdb_last_id(cairn_lmdb *h, uint64_t *out);

/* Touch every page of a value a read returns, inside the read's guard: a
 * damaged node size would otherwise send the mapper past the data file. */
void cairn_lmdb_probe(const MDB_val *v);

/* `return call;` with SIGSEGV, SIGBUS and LMDB assertions inside it turned
 * into CAIRN_CORRUPT "store ... damaged at ..." (see lmdb_fault.c). */
#define CAIRN_LMDB_GUARDED(h, doing, call)                                                                  \
    do {                                                                                                    \
        cairn_fault_frame fault_frame_;                                                                     \
        cairn_fault_enter(&fault_frame_);                                                                   \
        if (sigsetjmp(fault_frame_.jb, 0)) return cairn_lmdb_fault((h), &fault_frame_, (doing));            \
        int guarded_rc_ = (call);                                                                           \
        cairn_fault_leave(&fault_frame_);                                                                   \
        return guarded_rc_;                                                                                 \
    } while (0)

/* --- lmdb_env.c --- */

/* LMDB's default key order (bytewise, then the shorter first), quicker: the
 * log and the stream index use it (mdb_set_compare at open). */
int cairn_lmdb_compare_keys(const MDB_val *a, const MDB_val *b);

int cairn_lmdb_open(const char *path, const cairn_engine_options *opt, cairn_engine **out, char *err,
                    size_t errlen);
void cairn_lmdb_close(cairn_engine *e);

/* --- lmdb_map.c: the writable map --- */

/* Before a writer's mdb_env_open: take the map lock and agree on the map
 * size, *size (the one asked for) raised to the data file's size; *file_size
 * gets the file's size before LMDB sets it. 1: open with MDB_WRITEMAP at
 * *size, reserve its blocks (cairn_lmdb_map_reserve: on failure open again
 * without it), then call cairn_lmdb_map_end; 0: no lock taken, open without
 * MDB_WRITEMAP (data.mdb not writable here). */
int cairn_lmdb_map_begin(cairn_env *sh, const char *dir, size_t *size, size_t *file_size);
int cairn_lmdb_map_reserve(cairn_env *sh, size_t size);
void cairn_lmdb_map_end(cairn_env *sh);
void cairn_lmdb_map_close(cairn_env *sh);

/* With no transaction of the process active: grow a writable map to at
 * least want (0: to the file's size, which another process grew), never
 * below the file, blocks reserved first; a disk without room for want gets
 * a smaller step. *got: the new size. ENOSPC: no room at all (unchanged). */
int cairn_lmdb_map_grow(cairn_env *sh, size_t want, size_t *got);

/* --- lmdb_txn.c --- */

int cairn_env_locks_init(cairn_env *sh);
void cairn_env_locks_destroy(cairn_env *sh);

/* Start (or restart) the handle's read snapshot in h->rtxn; end it with
 * cairn_lmdb_read_end(). While it is active the map cannot be resized, so
 * every read ends before the call that began it returns. */
int cairn_lmdb_begin_read(cairn_lmdb *h);
void cairn_lmdb_read_end(cairn_engine *e);

/* Without LMDB's lock (a reader that may not write lock.mdb) nothing stops a
 * writer from reusing the pages a read looks at: a read that a commit
 * overtook must not be trusted. CAIRN_OK, or a StoreError saying so. */
int cairn_lmdb_read_still_valid(cairn_lmdb *h, const char *doing);

/*
 * Run fn in a write transaction and commit it, growing the map and trying
 * again when it fills. fn returns 0 to commit, or an error (its message set
 * for CAIRN_* codes) to abort. Calls from several threads at once are
 * committed together (group commit): fn may then run on another thread,
 * inside the same transaction as other saves, while this one waits.
 */
typedef int (*cairn_lmdb_write_fn)(cairn_lmdb *h, MDB_txn *txn, void *ctx);
int cairn_lmdb_write(cairn_lmdb *h, const char *doing, cairn_lmdb_write_fn fn, void *ctx);

/* Inside a write: count bytes it touched (a random look-up or insert: a
 * page) in a writable map, whose pages are let go when the process holds
 * many mapped (resident memory, lmdb_txn.c). */
void cairn_lmdb_touched(cairn_env *sh, size_t bytes);

/* --- shared helpers --- */

void cairn_stream_key(uint8_t key[CAIRN_STREAM_KEY], const uint8_t id[16], uint64_t version);

/* Position cur (over a database keyed stream id || version: streams,
 * snapshots) on the entry of stream id with the greatest version <= version;
 * k and v get that entry. MDB_NOTFOUND if the stream has none. */
int cairn_lmdb_seek_at_or_below(MDB_cursor *cur, const uint8_t id[16], uint64_t version, MDB_val *k, MDB_val *v);

/* The stored record of a stream version via the index entry iv, parsed and
 * checked to be that version; CAIRN_CORRUPT (message set) if not. With a log
 * cursor (h->lcur, in txn), the look-up starts from where the cursor stands:
 * the neighbour is one step (a stream saved in one batch is one scan of the
 * log), and LMDB searches only the current leaf page when the key is on it. */
int cairn_lmdb_event_at(cairn_lmdb *h, MDB_txn *txn, MDB_cursor *log_cur, const uint8_t id[16], uint64_t version,
                        const MDB_val *iv, cairn_record *out);

/* The same, looked up by stream version; CAIRN_END if the index has none. */
int cairn_lmdb_find_event(cairn_lmdb *h, MDB_txn *txn, const uint8_t id[16], uint64_t version, cairn_record *out);

/* The key state inside txn (lmdb_append.c). */
int cairn_lmdb_key_state_in(cairn_lmdb *h, MDB_txn *txn, cairn_key_state *ks);

/* The key state of txn shown to a guard (the start of every write but saves). */
int cairn_lmdb_guarded(cairn_lmdb *h, MDB_txn *txn, cairn_guard g);

/* Bump meta "keygen" (forget, rekey). */
int cairn_lmdb_bump_keygen(cairn_lmdb *h, MDB_txn *txn);

/* lmdb_dcb.c: inside a save's transaction, its append condition (before it
 * writes) and its index entries (after its events got ids from first_id). */
int cairn_lmdb_dcb_check(cairn_lmdb *h, MDB_txn *txn, const cairn_write *w);
int cairn_lmdb_dcb_index(cairn_lmdb *h, MDB_txn *txn, const cairn_write *w, uint64_t first_id);
int cairn_lmdb_dcb_read(cairn_engine *e, const cairn_dcb_query *q, uint64_t limit,
                        int (*found)(void *ctx, uint64_t id), void *ctx, uint64_t *last_id);
int cairn_lmdb_once_get(cairn_engine *e, cairn_slice key, uint64_t *first_id, uint64_t *n);
/* Is there a posting kind || name || id in the index (0: yes, MDB_NOTFOUND: no)? */
int cairn_lmdb_dcb_has(MDB_txn *txn, MDB_dbi dbi, char kind, cairn_slice name, uint64_t id);

/* A tracking position inside a write transaction (its batch must start above the recorded one). */
int cairn_lmdb_tracking_put(cairn_lmdb *h, MDB_txn *txn, const cairn_tracking *t);

/* The engine's operations (lmdb_engine.c gathers them). */
int cairn_lmdb_key_state(cairn_engine *e, int (*use)(void *ctx, const cairn_key_state *ks), void *ctx);
int cairn_lmdb_set_cipher(cairn_engine *e, cairn_slice cipher, cairn_slice keycheck, cairn_guard guard);
int cairn_lmdb_append(cairn_engine *e, cairn_write *w, uint64_t *first_id);
int cairn_lmdb_read_stream(cairn_engine *e, const uint8_t id[16], const cairn_stream_query *q);
int cairn_lmdb_read_log(cairn_engine *e, const cairn_log_query *q);
int cairn_lmdb_next(cairn_engine *e, cairn_record *out);
int cairn_lmdb_next_many(cairn_engine *e, cairn_record *out, size_t max, size_t *n);
int cairn_lmdb_event_hash(cairn_engine *e, const uint8_t id[16], uint64_t version, uint8_t out[CAIRN_HASH_BYTES]);
int cairn_lmdb_data_key(cairn_engine *e, const uint8_t id[16], cairn_slice *stored);
int cairn_lmdb_read_snapshot(cairn_engine *e, const uint8_t id[16], int has_lte, uint64_t lte, cairn_record *out,
                             uint8_t event_hash[CAIRN_HASH_BYTES]);
int cairn_lmdb_max_id(cairn_engine *e, uint64_t *out);
int cairn_lmdb_tracking_get(cairn_engine *e, cairn_slice name, uint64_t *out);
int cairn_lmdb_tracking_scan(cairn_engine *e, cairn_slice after, size_t limit,
                             int (*each)(void *ctx, cairn_slice name, uint64_t id), void *ctx);
int cairn_lmdb_stream_heads(cairn_engine *e, const uint8_t *after, size_t limit, uint8_t (*ids)[16],
                            uint64_t *versions, size_t *n);
int cairn_lmdb_snapshot_streams(cairn_engine *e, const uint8_t *after, size_t limit, uint8_t (*ids)[16], size_t *n);
int cairn_lmdb_stat(cairn_engine *e, cairn_store_stats *out);
int cairn_lmdb_view_write(cairn_engine *e, const cairn_view_put *puts, size_t n, const cairn_tracking *t,
                          cairn_guard guard);
int cairn_lmdb_view_clear(cairn_engine *e, cairn_slice keys_prefix, cairn_slice tracking_prefix, cairn_guard guard);
int cairn_lmdb_view_get(cairn_engine *e, cairn_slice key, cairn_slice *value, int *found);
int cairn_lmdb_view_scan(cairn_engine *e, cairn_slice from, int after);
int cairn_lmdb_view_next(cairn_engine *e, cairn_slice *key, cairn_slice *value);
int cairn_lmdb_forget(cairn_engine *e, const uint8_t id[16], cairn_guard guard);
int cairn_lmdb_rekey(cairn_engine *e, int (*rewrap)(void *ctx, const uint8_t id[16], cairn_slice stored,
                                                    uint8_t out[CAIRN_WRAPPED_KEY_BYTES]),
                     void *rewrap_ctx, cairn_slice keycheck, cairn_guard guard);
int cairn_lmdb_verify(cairn_engine *e, const cairn_verify_walk *w);
uint32_t *cairn_lmdb_wake_word(cairn_engine *e);
int cairn_lmdb_copy(cairn_engine *e, const char *dir);
void cairn_lmdb_group_stats(cairn_engine *e, uint64_t *groups, uint64_t *saves);

#endif
