/*
 * recorder.h -- the one storage interface: the operations an engine provides,
 * as a table of functions (as SQLite's sqlite3_io_methods). No Lua.
 *
 *   store.h (the façade the binding calls)
 *     -> the mapper (mapper_*.c): record format, msgpack bodies, zstd, AEAD,
 *        hash chains, data keys; the same for every engine
 *       -> an engine (cairn_engine_ops): LMDB (lmdb_*.c; `memory:` is a
 *          private LMDB), PostgreSQL (pg_engine.c over pg_store.h)
 *
 * Engines store and return record bytes (record.h) without looking inside
 * the body: they parse headers (for keys, topics and the checks that their
 * own index agrees with what a record says), but never compress, seal, hash
 * or decode. The mapper never sees an engine's transactions, keys or pages.
 *
 * Operations are coarse: one call per save, one read per range, so that an
 * engine across a network can save in one or two round trips. A save is one
 * engine transaction in three steps:
 *   1. the engine reads what the batch depends on: the key state (below), for
 *      each stream of the batch its head (last version and that event's hash)
 *      and its stored data key, and for each snapshot the hash of the event it
 *      was taken at, if recorded before;
 *   2. it calls w->seal (the mapper's part, pure computation, no I/O): it
 *      checks the key state and the expected versions, makes data keys for
 *      new streams, and produces every stored record, chained to the heads;
 *   3. the engine writes the new data keys, the records under notification
 *      ids it assigns (gap-free, in batch order), the snapshots and the
 *      tracking position, and commits; or nothing of it.
 * An engine may also read step 1 outside its write transaction (one round
 * trip, nothing held while the mapper seals) if step 3 re-checks, inside
 * it, that what step 1 read still holds (each stream's head version, and the
 * key generation when the mapper asked for the key state), and on a change
 * reads again and calls seal again: seal may be called any number of times
 * (group commit reruns it too) and depends only on what the engine shows it.
 *
 * Every operation returns CAIRN_OK, CAIRN_END where noted, a CAIRN_* code
 * with e->errmsg set, or an engine/system code with e->errmsg set. Reads
 * (read_stream/read_log + next, read_snapshot, view_get, view_scan_*) keep
 * one read open on the handle until read_end; the bytes they return are
 * valid until then. Other operations begin and end their own transaction.
 */
#ifndef CAIRN_RECORDER_H
#define CAIRN_RECORDER_H

#include <stddef.h>
#include <stdint.h>

#include "crypto.h"
#include "record.h"
#include "store.h"

typedef struct cairn_engine_ops cairn_engine_ops;

/** The part every engine handle starts with (engines embed it first). */
typedef struct cairn_engine {
    const cairn_engine_ops *ops;
    const char *name;       /* "lmdb", "memory", ... (stat's engine) */
    const char *where;      /* the store named in messages (a path, "memory:"), never a password */
    int read_only;          /* the handle never writes: 0, CAIRN_ENGINE_ASKED or CAIRN_ENGINE_UNWRITABLE */
    char errmsg[512];       /* the last error on this handle */
} cairn_engine;

enum { CAIRN_ENGINE_ASKED = 1, CAIRN_ENGINE_UNWRITABLE = 2 };

/** Record a message on e and return rc (for engines and the mapper alike). */
int cairn_engine_fail(cairn_engine *e, int rc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/** How an engine opens a store. */
typedef struct cairn_engine_options {
    cairn_sync_mode sync;
    size_t map_size;        /* LMDB: initial map size; 0: default */
    int must_exist;         /* CAIRN_CONFIG instead of creating a store; when this user may not
                             * write the store, open it read-only (CAIRN_ENGINE_UNWRITABLE) */
    int read_only;          /* never write (implies must_exist) */
} cairn_engine_options;

/**
 * What a store says about its encryption, read inside every transaction (and
 * checked by the mapper in every write: a handle may not write under a key
 * or a cipher state that changed since it looked). Slices point into the
 * transaction's data.
 */
typedef struct cairn_key_state {
    int known;              /* 0: not read (the mapper did not ask for it) */
    cairn_slice cipher;     /* ptr NULL: the store is not encrypted */
    cairn_slice keycheck;   /* the master key's check value */
    uint64_t keygen;        /* bumped by every forget and rekey */
    int empty;              /* no events recorded */
} cairn_key_state;

/** A stream a batch writes to (or snapshots), as the engine found it. */
typedef struct cairn_stream_head {
    uint8_t id[16];         /* in */
    int has_events;         /* in: the batch has events of it (else only a snapshot or a data key) */
    size_t first_at;        /* in: the index of its first event in the batch; heads with events come
                             * first, in the order of their first events */
    int found;              /* out: the stream has events */
    uint64_t version;       /* out: its last version */
    uint8_t hash[CAIRN_HASH_BYTES]; /* out: that event's hash */
    cairn_slice key;        /* out: its stored data key (ptr NULL: none; len 1: forgotten) */
    int put_key;            /* set by seal: store new_key as the stream's data key */
    uint8_t new_key[CAIRN_WRAPPED_KEY_BYTES];
} cairn_stream_head;

/** What the engine found for a snapshot before the batch. */
typedef struct cairn_snapshot_base {
    int found;              /* the event at the snapshot's version was recorded before */
    uint8_t hash[CAIRN_HASH_BYTES];
} cairn_snapshot_base;

/** What the mapper needs read in step 1 besides the heads (a plain store that
 *  holds events can never become encrypted: its saves need neither). */
enum { CAIRN_WANT_KEY_STATE = 1, CAIRN_WANT_DATA_KEYS = 2 };

/** One save, as the mapper hands it to the engine (see the steps above). */
typedef struct cairn_write {
    const cairn_record *events;     /* stream_id, version as given; the rest is the mapper's */
    size_t n;
    const cairn_record *snapshots;
    size_t nsnapshots;
    const cairn_tracking *tracking; /* NULL, or a position whose batch starts above the recorded one */
    const cairn_dcb_event *dcb;     /* events to index by type and tag (store.h), with their ids */
    size_t ndcb;
    const cairn_dcb_query *fail_if; /* NULL, or checked in step 3 before anything is written:
                                     * CAIRN_CONFLICT when a DCB event matching it is recorded */
    cairn_slice once;               /* ptr NULL, or an idempotency key, recorded in step 3 with
                                     * the first id and n (CAIRN_CONFLICT if recorded before) */
    unsigned want;                  /* what step 1 must read besides heads: CAIRN_WANT_* */
    cairn_stream_head *heads;       /* every distinct stream of events and snapshots */
    size_t nheads;
    const uint32_t *order;          /* NULL, or the first norder heads (those with events) as indexes
                                     * into heads, in the order of their ids: an engine whose index
                                     * takes inserts in key order more cheaply may visit them so */
    size_t norder;
    cairn_snapshot_base *bases;     /* one per snapshot, filled by the engine */
    /* the mapper's step; on CAIRN_OK stored[i] holds the bytes of events[i],
     * stored[n + j] those of snapshots[j] (valid until the next seal) */
    int (*seal)(struct cairn_write *w, const cairn_key_state *ks);
    cairn_slice *stored;
    void *ctx;
} cairn_write;

/** Called at the start of every other write transaction with its key state; non-zero refuses it. */
typedef struct cairn_guard {
    int (*check)(void *ctx, const cairn_key_state *ks);
    void *ctx;
} cairn_guard;

/** One view write: key and value as stored (the mapper builds and seals them). */
typedef struct cairn_view_put {
    cairn_slice key;
    cairn_slice value;
    int del;
} cairn_view_put;

enum { CAIRN_VERIFY_OK, CAIRN_VERIFY_MISSING, CAIRN_VERIFY_MALFORMED, CAIRN_VERIFY_MISPLACED };

/** What the engine shows `verify` of its structure; it reports what is wrong
 *  with its own index and keys through problem(), the rest through the others. */
typedef struct cairn_verify_walk {
    void *ctx;
    void (*problem)(void *ctx, const char *msg);
    /* every entry of the stream index, in stream then version order: id NULL
     * for an entry too malformed to name a stream; how the record it names was
     * found (rec and bytes set for CAIRN_VERIFY_OK and _MISPLACED) */
    void (*event)(void *ctx, const uint8_t *id, uint64_t version, uint64_t notification_id, int found,
                  const cairn_record *rec, const uint8_t *bytes, size_t len);
    /* every stored data key */
    void (*key)(void *ctx, const uint8_t id[16], cairn_slice stored);
    /* every snapshot (snap NULL: one the engine found malformed and reported);
     * event_hash: the hash of the event at its version, NULL if there is none */
    void (*snapshot)(void *ctx, const cairn_record *snap, const uint8_t *bytes, size_t len,
                     const uint8_t *event_hash);
    /* now and then: the events walked so far of total; non-zero stops */
    int (*progress)(void *ctx, uint64_t done, uint64_t total);
    /* every entry of the DCB index (engines with dcb_read): its kind ('a' every DCB
     * event, 'y' by type, 'g' by tag), its name (the type or tag; "" for 'a'), the
     * notification id it names, the type it records (ptr NULL: it records none), and
     * the record at that id (NULL: there is none); has() looks up another entry of
     * that id in the same read (1: there, 0: not, < 0: the engine failed and said so
     * through problem()). The engine checks the idempotency keys itself. */
    void (*dcb_entry)(void *ctx, char kind, cairn_slice name, uint64_t id, cairn_slice type, const cairn_record *rec,
                      int (*has)(void *hctx, char kind, cairn_slice name, uint64_t id), void *hctx);
} cairn_verify_walk;

struct cairn_engine_ops {
    /* open a store at location (the URI after its scheme; NULL: a private memory: store) */
    int (*open)(const char *location, const cairn_engine_options *opt, cairn_engine **out, char *err,
                size_t errlen);
    void (*close)(cairn_engine *e);

    /* call use() with the key state, inside the read in progress or a read of its own */
    int (*key_state)(cairn_engine *e, int (*use)(void *ctx, const cairn_key_state *ks), void *ctx);
    /* make the store encrypted (cipher name and key check), if it is empty and not encrypted yet;
     * the guard sees the key state first (and may refuse) */
    int (*set_cipher)(cairn_engine *e, cairn_slice cipher, cairn_slice keycheck, cairn_guard guard);

    /* a save: the three steps above, in one transaction; first_id: the id of events[0] */
    int (*append)(cairn_engine *e, cairn_write *w, uint64_t *first_id);

    /* reads: records come parsed from next() (CAIRN_END when done); stream reads
     * check each record is the stream version the index names; log reads
     * filter topics and count the limit in matches */
    int (*read_stream)(cairn_engine *e, const uint8_t id[16], const cairn_stream_query *q);
    int (*read_log)(cairn_engine *e, const cairn_log_query *q);
    int (*next)(cairn_engine *e, cairn_record *out);
    /* optional: next() up to max times into out[0..], *n of them given; returns
     * what the last call returned (CAIRN_OK: max given). A stream read's
     * read-ahead takes records this way when an engine offers it (fewer steps
     * per record: one fault guard for the lot on LMDB) */
    int (*next_many)(cairn_engine *e, cairn_record *out, size_t max, size_t *n);
    /* inside the read in progress: the hash of a stream's event (CAIRN_END: none),
     * and a stream's stored data key (CAIRN_END: none) */
    int (*event_hash)(cairn_engine *e, const uint8_t id[16], uint64_t version, uint8_t out[CAIRN_HASH_BYTES]);
    int (*data_key)(cairn_engine *e, const uint8_t id[16], cairn_slice *stored);
    /* the newest snapshot at or below a version (CAIRN_END: none), with the
     * hash of the event it was taken at (CAIRN_CORRUPT if that is missing);
     * the read stays open */
    int (*read_snapshot)(cairn_engine *e, const uint8_t id[16], int has_lte, uint64_t lte, cairn_record *out,
                         uint8_t event_hash[CAIRN_HASH_BYTES]);
    void (*read_end)(cairn_engine *e);

    int (*max_id)(cairn_engine *e, uint64_t *out);
    /* optional (NULL: not offered): DCB and idempotency, as cairn_store_dcb_read
     * and cairn_store_once_get (store.h) describe them, each in one read */
    int (*dcb_read)(cairn_engine *e, const cairn_dcb_query *q, uint64_t limit,
                    int (*found)(void *ctx, uint64_t id), void *ctx, uint64_t *last_id);
    int (*once_get)(cairn_engine *e, cairn_slice key, uint64_t *first_id, uint64_t *n);
    int (*tracking_get)(cairn_engine *e, cairn_slice name, uint64_t *out);
    int (*stat)(cairn_engine *e, cairn_store_stats *out);
    /* pages for backups and the tools, each in one read: the tracking
     * positions (application names, and views' "view/application") after
     * `after` (ptr NULL: from the first) in name order, at most limit, each
     * given to each() (non-zero stops with that code); and the streams that
     * hold snapshots, ids after `after` (NULL: from the first) in id order,
     * at most limit into ids, *n of them */
    int (*tracking_scan)(cairn_engine *e, cairn_slice after, size_t limit,
                         int (*each)(void *ctx, cairn_slice name, uint64_t id), void *ctx);
    int (*snapshot_streams)(cairn_engine *e, const uint8_t *after, size_t limit, uint8_t (*ids)[16], size_t *n);
    /* and the streams with their last versions (forgotten ones too), ids after `after` (NULL: from
     * the first) in id order, at most limit into ids and versions, *n of them */
    int (*stream_heads)(cairn_engine *e, const uint8_t *after, size_t limit, uint8_t (*ids)[16], uint64_t *versions,
                        size_t *n);

    /* views: puts and deletes with a tracking position (NULL: none), in one transaction */
    int (*view_write)(cairn_engine *e, const cairn_view_put *puts, size_t n, const cairn_tracking *t,
                      cairn_guard guard);
    /* optional (NULL: not offered): delete every stored view key that starts
     * with keys_prefix and every tracking position whose name starts with
     * tracking_prefix, in one transaction (a view rebuilt from scratch) */
    int (*view_clear)(cairn_engine *e, cairn_slice keys_prefix, cairn_slice tracking_prefix, cairn_guard guard);
    /* a stored key's value (found 0: none); the read stays open */
    int (*view_get)(cairn_engine *e, cairn_slice key, cairn_slice *value, int *found);
    /* keys from `from` on (after it when `after`); next gives CAIRN_END at the end */
    int (*view_scan)(cairn_engine *e, cairn_slice from, int after);
    int (*view_next)(cairn_engine *e, cairn_slice *key, cairn_slice *value);

    /* destroy a stream's data key and its snapshots (CAIRN_NOTFOUND: no key) */
    int (*forget)(cairn_engine *e, const uint8_t id[16], cairn_guard guard);
    /* rewrap every stored data key with rewrap() and store the new key check, in one transaction */
    int (*rekey)(cairn_engine *e, int (*rewrap)(void *ctx, const uint8_t id[16], cairn_slice stored,
                                                uint8_t out[CAIRN_WRAPPED_KEY_BYTES]),
                 void *rewrap_ctx, cairn_slice keycheck, cairn_guard guard);

    /* walk everything for verify, in one read */
    int (*verify)(cairn_engine *e, const cairn_verify_walk *w);

    /* following: the wake word pair ([0] sequence bumped after every commit,
     * [1] sleepers) shared by every process, or NULL (followers poll) */
    uint32_t *(*wake_word)(cairn_engine *e);
    /* optional, for engines without a shared word (PostgreSQL: LISTEN/NOTIFY):
     * the change sequence as this handle knows it (0: none, poll), and a
     * sleep until it differs from seen, at most timeout_s (CAIRN_OK, or
     * CAIRN_INTERRUPTED when a trapped signal arrived) */
    int (*wake_seq)(cairn_engine *e, uint32_t *seq);
    int (*wait)(cairn_engine *e, uint32_t seen, double timeout_s);
    /* optional (NULL: not offered): a consistent copy into target, an empty directory
     * (LMDB) or a new schema of the same database (PostgreSQL, cairn_pg_copy) */
    int (*copy)(cairn_engine *e, const char *target);
    void (*group_stats)(cairn_engine *e, uint64_t *groups, uint64_t *saves);
};

/** The engines of this build. */
extern const cairn_engine_ops cairn_lmdb_engine;
extern const cairn_engine_ops cairn_pg_engine;    /* pg_engine.c: postgresql:// and postgres:// URIs */

#endif
