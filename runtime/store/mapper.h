/*
 * mapper.h -- what the mapper's files share: the store handle above an
 * engine. No Lua, no engine internals.
 *
 * The mapper turns events into stored records and back, the same for every
 * engine: the body (metadata, msgpack payload) -> zstd (optional) ->
 * XChaCha20-Poly1305 under the stream's data key (optional) -> the hash
 * chained to the stream's previous event. mapper_keys.c holds the keys,
 * mapper_seal.c the record pipeline, mapper_append.c saves, mapper_read.c
 * reads, mapper_views.c view values, mapper_verify.c `verify`.
 */
#ifndef CAIRN_MAPPER_H
#define CAIRN_MAPPER_H

#include "compress.h"
#include "crypto.h"
#include "recorder.h"
#include "store.h"

/* Records an ascending stream read takes from the engine at once: their
 * chain links are hashed together (crypto.h, cairn_chain_hash_many). */
#define CAIRN_READ_AHEAD 8

/* A handle: the mapper's state over one engine handle. */
struct cairn_store {
    cairn_engine *eng;          /* its errmsg is the handle's */
    char *uri;                  /* as shown: a PostgreSQL password replaced with *** */
    int read_only;
    /* the read in progress */
    enum { READ_NONE, READ_STREAM, READ_LOG } reading;
    int descending;
    int from_start;     /* an ascending stream read from its first record: it has no predecessor */
    uint8_t prev_hash[CAIRN_HASH_BYTES]; /* chain check of an ascending stream read; a snapshot's head */
    uint8_t snap_hash[CAIRN_HASH_BYTES]; /* the stored hash of the snapshot read last */
    int have_prev;
    /* an ascending stream read's records read ahead, checked together (mapper_read.c) */
    cairn_record ahead[CAIRN_READ_AHEAD];
    size_t ahead_n, ahead_at;
    int ahead_rc;       /* the engine's answer after the last one read ahead (CAIRN_OK: none yet) */
    /* data at rest (mapper_keys.c) */
    uint8_t *master;            /* the master key in secret memory, or NULL */
    uint8_t *view_key;          /* the view key, once loaded (cairn_store_view_key), or NULL */
    uint8_t *view_names;        /* derived from it: hashes view entry keys */
    uint8_t *id_key;            /* derived from it: hashes string ids to stream keys (string_id.h) */
    struct cairn_view_sorted *vscan; /* an encrypted view's scan, sorted (mapper_views.c) */
    int encrypted;              /* the store is encrypted (its key state says so) */
    int plain_for_good;         /* this handle saved plaintext events: the store can never become encrypted */
    uint64_t checked_keygen;    /* the keygen under which the key check last matched the master key */
    int compress;
    cairn_compressor *zc;       /* made on first use */
    struct cairn_key_cache *keys; /* unwrapped data keys */
    struct cairn_snap_memo *snaps; /* snapshots verified lately (mapper_snapmemo.c), or NULL */
    uint8_t *buf, *buf2;        /* opened and decompressed bodies of reads */
    size_t buf_cap, buf2_cap;
    struct cairn_save *save;    /* a save's working memory (mapper_append.c), kept between saves */
};

/* Record an error message on s and return rc. */
int cairn_store_fail(cairn_store *s, int rc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Refuse a write on a read-only handle (CAIRN_CONFIG, saying why). */
int cairn_store_read_only(cairn_store *s);

/* Describe a version conflict the same way everywhere. */
int cairn_store_conflict(cairn_store *s, const cairn_record *r, uint64_t version, int has_last, uint64_t last);

/* Make sure a buffer holds n bytes (0 or ENOMEM). */
int cairn_store_reserve(uint8_t **buf, size_t *cap, size_t n);

/* Free a save's working memory (mapper_append.c). */
void cairn_store_save_free(cairn_store *s);

/* --- mapper_keys.c --- */

/* The stream id that holds the view key as its data key (no aggregate's). */
extern const uint8_t CAIRN_VIEW_KEY_ID[16];

/* Load the view key of an encrypted store into s->view_key (create: make it
 * if the store has none yet). CAIRN_OK, CAIRN_END (none, !create) or an error. */
int cairn_store_view_key(cairn_store *s, int create);

/* Free an encrypted view scan's entries (mapper_views.c). */
void cairn_view_scan_free(cairn_store *s);

/* Set up the handle's cipher from opt at open: check the key against the
 * store, or mark a new store encrypted. */
int cairn_store_cipher_open(cairn_store *s, const cairn_store_options *opt, char *err, size_t errlen);
void cairn_store_cipher_close(cairn_store *s);

/* Inside every write: refuse to write when the store's encryption or key
 * changed since this handle looked (another process encrypted it, or
 * rekeyed it), and empty the key cache when a key was forgotten. */
int cairn_store_check_keys(cairn_store *s, const cairn_key_state *ks);

/* At the start of a read: empty the key cache if a key was forgotten since. */
int cairn_store_keys_begin_read(cairn_store *s);

/* Empty the data key cache (after a write that did not commit). */
void cairn_store_keys_reset(cairn_store *s);

/* The data key of a stream for a read (stored: what the engine holds, or ptr
 * NULL). CAIRN_NOTFOUND if the stream was forgotten. */
int cairn_store_open_key(cairn_store *s, const uint8_t id[16], cairn_slice stored, const uint8_t **key);

/* Unwrap a stored data key (into the cache); CAIRN_NOTFOUND if forgotten,
 * CAIRN_CORRUPT if it does not open. */
int cairn_store_unwrap_key(cairn_store *s, const uint8_t id[16], cairn_slice stored, const uint8_t **key);

/* The data key of a stream for a write: unwrapped from head->key, or made
 * (head->put_key and new_key then say what to store). */
int cairn_store_write_key(cairn_store *s, cairn_stream_head *head, const uint8_t **key);

/* --- mapper_seal.c --- */

/* Room prepare_body needs for rec (0: the body is rec's own payload). */
size_t cairn_store_body_bound(const cairn_store *s, const cairn_record *rec);

/* rec's body as it will be sealed: metadata and payload, compressed when the
 * handle compresses and that makes it smaller; built in room when it is not
 * rec->payload as it is. flags gets CAIRN_RECORD_METADATA/_COMPRESSED. */
int cairn_store_prepare_body(cairn_store *s, const cairn_record *rec, uint8_t *room, cairn_slice *body,
                             unsigned *flags);

/* Bytes a record with this body takes stored. */
size_t cairn_store_stored_size(const cairn_record *rec, size_t body_len, int sealed);

/* Write rec as stored bytes into out: its header and the body sealed under
 * dk (when dk is set). Returns where its chain hash goes (CAIRN_RECORD_HASH
 * bytes between the two), for the caller to fill: cairn_record_hash, or
 * cairn_chain_hash_many for a batch's links side by side. */
uint8_t *cairn_store_seal_body(const cairn_record *rec, unsigned flags, cairn_slice body, const uint8_t *dk,
                               uint8_t *out);

/* Turn a parsed record's stored body into its metadata and msgpack payload
 * (in the handle's buffers, valid until the next read). CAIRN_NOTFOUND if
 * its stream was forgotten (rec->forgotten is then set). */
int cairn_store_open_payload(cairn_store *s, cairn_record *rec);

/* --- mapper_snapmemo.c --- */

typedef struct cairn_snap_memo cairn_snap_memo;

/* Is the snapshot record rec (len bytes as stored) byte for byte one that
 * passed its hash check against this head on this handle? */
int cairn_snap_memo_holds(cairn_store *s, const uint8_t id[16], const uint8_t *rec, size_t len,
                          const uint8_t head[CAIRN_HASH_BYTES]);

/* Keep a copy of a snapshot record that passed its hash check (records of 4 KiB
 * to 4 MiB; the least recently used of 8 makes room; no memory, no copy). */
void cairn_snap_memo_keep(cairn_store *s, const uint8_t id[16], const uint8_t *rec, size_t len,
                          const uint8_t head[CAIRN_HASH_BYTES]);

void cairn_snap_memo_free(cairn_store *s);

#endif
