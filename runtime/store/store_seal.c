/*
 * store_seal.c -- data at rest: the master key check, per-aggregate data
 * keys (crypto-shredding), and the payload pipeline
 * msgpack -> zstd (optional) -> XChaCha20-Poly1305 (optional) -> hash chain.
 *
 *   meta "cipher"    "xchacha20poly1305" when the store is encrypted
 *   meta "keycheck"  a sealed constant: opening with the wrong key fails here
 *   meta "keygen"    u64, bumped by every forget and rekey (see the cache)
 *   streams          stream id (16 bytes, sorting just before the stream's
 *                    own id || version entries, on the same page) -> the
 *                    stream's data key sealed by the master key (associated
 *                    data: the stream id), or one 0 byte once it was forgotten
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "cairn.h"
#include "store_internal.h"
#include "uuid.h"

#define CIPHER_NAME "xchacha20poly1305"
#define CHECK_TEXT "cairn key check"
#define KEY_AD_PREFIX "cairn data key"
#define KEY_AD_LEN (sizeof KEY_AD_PREFIX - 1 + 16)
#define CACHE_SLOTS 256

/* Unwrapped data keys, in secret memory, direct-mapped by stream id. Every
 * transaction first compares meta "keygen" with the generation the cache was
 * filled under: a forget (or rekey) anywhere, in any process, empties it, so
 * a forgotten key is never used once it is gone. A write that does not
 * commit empties it too, so a key made in it is never taken for a stored one. */
typedef struct cairn_key_cache {
    struct { uint8_t id[16]; uint8_t key[CAIRN_KEY_BYTES]; int used; } slot[CACHE_SLOTS];
    uint64_t generation;
} cairn_key_cache;

void cairn_store_describe(const uint8_t id[16], uint64_t version, char *out, size_t len)
{
    char hex[CAIRN_UUID_STRLEN + 1] = { 0 };
    cairn_uuid_format(id, hex);
    snprintf(out, len, "aggregate %s version %llu", hex, (unsigned long long)version);
}

static const char *where(cairn_store *s)
{
    return s->sh->is_private ? "memory:" : s->sh->path;
}

void cairn_store_keys_reset(cairn_store *s)
{
    if (!s->keys) return;
    sodium_memzero(s->keys, sizeof *s->keys);
    s->keys->generation = UINT64_MAX; /* no stored generation: check again */
}

static uint64_t key_generation(MDB_txn *txn, cairn_env *sh)
{
    MDB_val k = { 6, "keygen" }, v;
    if (mdb_get(txn, sh->meta, &k, &v) != 0 || v.mv_size != 8) return 0;
    return cairn_get_be64(v.mv_data);
}

static int bump_generation(MDB_txn *txn, cairn_env *sh)
{
    uint8_t gen[8];
    cairn_put_be64(gen, key_generation(txn, sh) + 1);
    MDB_val k = { 6, "keygen" }, v = { 8, gen };
    return mdb_put(txn, sh->meta, &k, &v, 0);
}

void cairn_store_keys_begin(cairn_store *s, MDB_txn *txn)
{
    if (!s->keys) return;
    uint64_t gen = key_generation(txn, s->sh);
    if (gen != s->keys->generation) {
        sodium_memzero(s->keys, sizeof *s->keys);
        s->keys->generation = gen;
    }
}

static void key_ad(uint8_t ad[KEY_AD_LEN], const uint8_t id[16])
{
    memcpy(ad, KEY_AD_PREFIX, sizeof KEY_AD_PREFIX - 1);
    memcpy(ad + sizeof KEY_AD_PREFIX - 1, id, 16);
}

static int no_key(cairn_store *s)
{
    return cairn_store_fail(s, CAIRN_CONFIG, "store %s is encrypted: set CAIRN_CIPHER_KEY to read its events",
                            where(s));
}

int cairn_store_data_key(cairn_store *s, MDB_txn *txn, const uint8_t id[16], int create, const uint8_t **key)
{
    if (!s->master) return no_key(s);
    cairn_key_cache *c = s->keys;
    unsigned at = ((unsigned)id[14] << 8 | id[15]) % CACHE_SLOTS; /* ids are random or hashed */
    if (c->slot[at].used && memcmp(c->slot[at].id, id, 16) == 0) { *key = c->slot[at].key; return CAIRN_OK; }
    uint8_t *dk = c->slot[at].key;
    c->slot[at].used = 0;
    uint8_t ad[KEY_AD_LEN];
    key_ad(ad, id);
    MDB_val k = { 16, (void *)id }, v;
    int rc = mdb_get(txn, s->sh->streams, &k, &v);
    if (rc == MDB_NOTFOUND && create) {
        uint8_t wrapped[CAIRN_WRAPPED_KEY_BYTES];
        cairn_random_fill(dk, CAIRN_KEY_BYTES);
        cairn_seal(s->master, ad, sizeof ad, dk, CAIRN_KEY_BYTES, wrapped);
        v = (MDB_val){ sizeof wrapped, wrapped };
        rc = mdb_put(txn, s->sh->streams, &k, &v, MDB_NOOVERWRITE);
        if (rc) { sodium_memzero(dk, CAIRN_KEY_BYTES); return rc; }
    } else if (rc == MDB_NOTFOUND) {
        char what[80];
        cairn_store_describe(id, 0, what, sizeof what);
        return cairn_store_fail(s, CAIRN_CORRUPT, "%.46s has encrypted events but no data key in %s", what,
                                where(s));
    } else if (rc) {
        return rc;
    } else if (v.mv_size == 1) {
        char hex[CAIRN_UUID_STRLEN + 1] = { 0 };
        cairn_uuid_format(id, hex);
        return cairn_store_fail(s, CAIRN_NOTFOUND, "aggregate %s was forgotten (its data key is destroyed) in %s",
                                hex, where(s));
    } else if (v.mv_size != CAIRN_WRAPPED_KEY_BYTES ||
               cairn_open(s->master, ad, sizeof ad, v.mv_data, v.mv_size, dk) != 0) {
        char hex[CAIRN_UUID_STRLEN + 1] = { 0 };
        cairn_uuid_format(id, hex);
        return cairn_store_fail(s, CAIRN_CORRUPT, "the data key of aggregate %s in %s fails authentication", hex,
                                where(s));
    }
    memcpy(c->slot[at].id, id, 16);
    c->slot[at].used = 1;
    *key = dk;
    return CAIRN_OK;
}

/* Make sure a handle buffer holds n bytes. */
static int reserve(uint8_t **buf, size_t *cap, size_t n)
{
    if (*cap >= n) return 0;
    size_t want = *cap ? *cap : 256;
    while (want < n) want *= 2;
    uint8_t *p = realloc(*buf, want);
    if (!p) return ENOMEM;
    *buf = p;
    *cap = want;
    return 0;
}

uint8_t *cairn_store_scratch(cairn_store *s, size_t n)
{
    return reserve(&s->buf, &s->buf_cap, n ? n : 1) ? NULL : s->buf;
}

int cairn_store_put_record(cairn_store *s, MDB_txn *txn, MDB_cursor *cur, MDB_val *key, unsigned put_flags,
                           const cairn_record *rec, const uint8_t prev[CAIRN_HASH_BYTES],
                           uint8_t hash_out[CAIRN_HASH_BYTES])
{
    const uint8_t *payload = rec->payload;
    size_t len = rec->payload_len;
    unsigned flags = 0;
    int rc;
    if (s->compress && len >= CAIRN_COMPRESS_MIN) {
        if (!s->zc && !(s->zc = cairn_compressor_new())) return ENOMEM;
        if ((rc = reserve(&s->buf2, &s->buf2_cap, cairn_compress_bound(len)))) return rc;
        size_t n = cairn_compress(s->zc, payload, len, s->buf2);
        if (n) { payload = s->buf2; len = n; flags |= CAIRN_RECORD_COMPRESSED; }
    }
    const uint8_t *dk = NULL;
    if (s->encrypted) {
        rc = cairn_store_data_key(s, txn, rec->stream_id, 1, &dk);
        if (rc) return rc;
        flags |= CAIRN_RECORD_ENCRYPTED;
    }
    size_t header = cairn_record_header_size(rec->topic_len);
    size_t stored = dk ? len + CAIRN_SEAL_OVERHEAD : len;
    MDB_val v = { header + CAIRN_RECORD_HASH + stored, NULL };
    rc = mdb_cursor_put(cur, key, &v, put_flags | MDB_RESERVE);
    if (rc) return rc;
    uint8_t *out = v.mv_data;
    cairn_record_write_header(rec, flags, out);
    if (dk) cairn_seal(dk, out, header, payload, len, out + header + CAIRN_RECORD_HASH);
    else if (len) memcpy(out + header + CAIRN_RECORD_HASH, payload, len);
    cairn_record_hash(prev, out, v.mv_size, out + header);
    memcpy(hash_out, out + header, CAIRN_HASH_BYTES);
    return CAIRN_OK;
}

int cairn_store_open_payload(cairn_store *s, MDB_txn *txn, cairn_record *rec)
{
    const uint8_t *header = (const uint8_t *)rec->topic - CAIRN_RECORD_FIXED;
    size_t header_len = cairn_record_header_size(rec->topic_len);
    char what[80];
    int rc;
    if (rec->flags & CAIRN_RECORD_ENCRYPTED) {
        if (!s->encrypted) {
            cairn_store_describe(rec->stream_id, rec->version, what, sizeof what);
            return cairn_store_fail(s, CAIRN_CORRUPT, "%s is flagged encrypted in the unencrypted store %s", what,
                                    where(s));
        }
        const uint8_t *dk;
        rc = cairn_store_data_key(s, txn, rec->stream_id, 0, &dk);
        if (rc == CAIRN_NOTFOUND) rec->forgotten = 1;
        if (rc) return rc;
        size_t n = rec->payload_len - CAIRN_SEAL_OVERHEAD;
        if ((rc = reserve(&s->buf, &s->buf_cap, n ? n : 1))) return rc;
        if (cairn_open(dk, header, header_len, rec->payload, rec->payload_len, s->buf) != 0) {
            cairn_store_describe(rec->stream_id, rec->version, what, sizeof what);
            return cairn_store_fail(s, CAIRN_CORRUPT, "%s in %s fails authentication (altered, moved or swapped)",
                                    what, where(s));
        }
        rec->payload = s->buf;
        rec->payload_len = n;
    } else if (s->encrypted) {
        cairn_store_describe(rec->stream_id, rec->version, what, sizeof what);
        return cairn_store_fail(s, CAIRN_CORRUPT, "%s is not encrypted in the encrypted store %s", what, where(s));
    }
    if (rec->flags & CAIRN_RECORD_COMPRESSED) {
        size_t n;
        if (!s->zc && !(s->zc = cairn_compressor_new())) return ENOMEM;
        rc = cairn_decompressed_size(rec->payload, rec->payload_len, &n);
        if (rc == 0) rc = reserve(&s->buf2, &s->buf2_cap, n ? n : 1);
        if (rc == 0) rc = cairn_decompress(s->zc, rec->payload, rec->payload_len, s->buf2, n);
        if (rc == ENOMEM) return rc;
        if (rc) {
            cairn_store_describe(rec->stream_id, rec->version, what, sizeof what);
            return cairn_store_fail(s, CAIRN_CORRUPT, "%s in %s: the compressed payload is malformed", what,
                                    where(s));
        }
        rec->payload = s->buf2;
        rec->payload_len = n;
    }
    return CAIRN_OK;
}

/* --- the master key --- */

static int meta_get(MDB_txn *txn, cairn_env *sh, const char *name, MDB_val *v)
{
    MDB_val k = { strlen(name), (void *)name };
    return mdb_get(txn, sh->meta, &k, v);
}

static int meta_put(MDB_txn *txn, cairn_env *sh, const char *name, const void *data, size_t len)
{
    MDB_val k = { strlen(name), (void *)name }, v = { len, (void *)data };
    return mdb_put(txn, sh->meta, &k, &v, 0);
}

static int write_keycheck(MDB_txn *txn, cairn_env *sh, const uint8_t *key)
{
    uint8_t check[sizeof CHECK_TEXT - 1 + CAIRN_SEAL_OVERHEAD];
    cairn_seal(key, (const uint8_t *)CHECK_TEXT, sizeof CHECK_TEXT - 1, (const uint8_t *)CHECK_TEXT,
               sizeof CHECK_TEXT - 1, check);
    return meta_put(txn, sh, "keycheck", check, sizeof check);
}

static int keycheck_matches(MDB_txn *txn, cairn_env *sh, const uint8_t *key)
{
    MDB_val v;
    uint8_t plain[sizeof CHECK_TEXT - 1];
    if (meta_get(txn, sh, "keycheck", &v) != 0 || v.mv_size != sizeof plain + CAIRN_SEAL_OVERHEAD) return 0;
    int ok = cairn_open(key, (const uint8_t *)CHECK_TEXT, sizeof plain, v.mv_data, v.mv_size, plain) == 0 &&
             memcmp(plain, CHECK_TEXT, sizeof plain) == 0;
    return ok;
}

typedef struct {
    char *err;
    size_t errlen;
} open_ctx;

/* Check (or, for an empty plain store given a key, set up) encryption. */
static int cipher_in(cairn_store *s, MDB_txn *txn, void *ctxp)
{
    open_ctx *ctx = ctxp;
    MDB_val v;
    int rc = meta_get(txn, s->sh, "cipher", &v);
    if (rc && rc != MDB_NOTFOUND) return rc;
    s->encrypted = rc == 0;
    if (s->encrypted && (v.mv_size != sizeof CIPHER_NAME - 1 || memcmp(v.mv_data, CIPHER_NAME, v.mv_size) != 0)) {
        snprintf(ctx->err, ctx->errlen, "store %s uses a cipher this cairn does not know", where(s));
        return CAIRN_CONFIG;
    }
    if (s->encrypted && s->master) {
        if (!keycheck_matches(txn, s->sh, s->master)) {
            snprintf(ctx->err, ctx->errlen, "store %s: the cipher key (CAIRN_CIPHER_KEY) is not this store's key",
                     where(s));
            return CAIRN_CONFIG;
        }
        return 0;
    }
    if (!s->master) return 0;
    MDB_stat st;
    rc = mdb_stat(txn, s->sh->log, &st);
    if (rc) return rc;
    if (st.ms_entries > 0) {
        snprintf(ctx->err, ctx->errlen,
                 "store %s holds unencrypted events, so it cannot be opened with a cipher key; "
                 "export it and import it into a new store with the key set", where(s));
        return CAIRN_CONFIG;
    }
    rc = meta_put(txn, s->sh, "cipher", CIPHER_NAME, sizeof CIPHER_NAME - 1);
    if (rc == 0) rc = write_keycheck(txn, s->sh, s->master);
    if (rc == 0) s->encrypted = 1;
    return rc;
}

int cairn_store_cipher_open(cairn_store *s, const cairn_store_options *opt, char *err, size_t errlen)
{
    s->compress = opt->compress;
    if (opt->cipher_key) {
        if (!(s->master = cairn_secret_new()) || !(s->keys = sodium_malloc(sizeof *s->keys))) {
            snprintf(err, errlen, "cannot lock memory for the cipher key of %s", where(s));
            return ENOMEM;
        }
        memcpy(s->master, opt->cipher_key, CAIRN_KEY_BYTES);
        if (!(s->view_key = cairn_secret_new())) {
            snprintf(err, errlen, "cannot lock memory for the cipher key of %s", where(s));
            return ENOMEM;
        }
        /* view values get their own key: BLAKE2b keyed with the master key */
        crypto_generichash(s->view_key, CAIRN_KEY_BYTES, (const uint8_t *)"cairn view key", 14, s->master,
                           CAIRN_KEY_BYTES);
        sodium_mprotect_readonly(s->master);
        sodium_mprotect_readonly(s->view_key);
        cairn_store_keys_reset(s);
    }
    open_ctx ctx = { err, errlen };
    int rc;
    if (opt->cipher_key) {
        rc = cairn_store_write(s, "opening", cipher_in, &ctx);
    } else {
        rc = cairn_store_begin_read(s);
        if (rc == 0) rc = cipher_in(s, s->rtxn, &ctx);
        cairn_store_read_end(s);
    }
    if (rc == 0 && s->encrypted && !s->master && !opt->keyless) {
        snprintf(err, errlen, "store %s is encrypted: set CAIRN_CIPHER_KEY to open it", where(s));
        return CAIRN_CONFIG;
    }
    if (rc && !*err) snprintf(err, errlen, "%s", s->errmsg);
    return rc;
}

void cairn_store_cipher_close(cairn_store *s)
{
    cairn_secret_free(s->master);
    cairn_secret_free(s->view_key);
    s->master = s->view_key = NULL;
    if (s->keys) sodium_free(s->keys);
    s->keys = NULL;
    cairn_compressor_free(s->zc);
    s->zc = NULL;
    free(s->buf);
    free(s->buf2);
    s->buf = s->buf2 = NULL;
    s->buf_cap = s->buf2_cap = 0;
}

/* --- forgetting and rekeying --- */

static int forget_in(cairn_store *s, MDB_txn *txn, void *idp)
{
    const uint8_t *id = idp;
    char hex[CAIRN_UUID_STRLEN + 1] = { 0 };
    cairn_uuid_format(id, hex);
    MDB_val k = { 16, (void *)id }, v;
    int rc = mdb_get(txn, s->sh->streams, &k, &v);
    if (rc == MDB_NOTFOUND)
        return cairn_store_fail(s, CAIRN_NOTFOUND, "aggregate %s not found in %s", hex, where(s));
    if (rc) return rc;
    if (v.mv_size == 1) return 0; /* forgotten already */
    uint8_t gone = 0;
    v = (MDB_val){ 1, &gone };
    rc = mdb_put(txn, s->sh->streams, &k, &v, 0);
    if (rc == 0) rc = bump_generation(txn, s->sh);
    if (rc) return rc;
    /* its snapshots are unreadable now; remove them too */
    MDB_cursor *cur;
    rc = mdb_cursor_open(txn, s->sh->snapshots, &cur);
    if (rc) return rc;
    uint8_t start[CAIRN_STREAM_KEY];
    cairn_stream_key(start, id, 0);
    k = (MDB_val){ sizeof start, start };
    rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    while (rc == 0 && k.mv_size == CAIRN_STREAM_KEY && memcmp(k.mv_data, id, 16) == 0) {
        rc = mdb_cursor_del(cur, 0);
        if (rc == 0) rc = mdb_cursor_get(cur, &k, &v, MDB_GET_CURRENT);
        if (rc == EINVAL) rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    }
    mdb_cursor_close(cur);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

int cairn_store_forget(cairn_store *s, const uint8_t id[16])
{
    s->errmsg[0] = '\0';
    if (!s->encrypted)
        return cairn_store_fail(s, CAIRN_CONFIG,
                                "store %s is not encrypted: forgetting an aggregate needs CAIRN_CIPHER_KEY set "
                                "when the store is made", where(s));
    if (!s->master) return no_key(s);
    return cairn_store_write(s, "forgetting an aggregate", forget_in, (void *)id);
}

static int rekey_in(cairn_store *s, MDB_txn *txn, void *newp)
{
    const uint8_t *fresh = newp;
    MDB_cursor *cur;
    int rc = mdb_cursor_open(txn, s->sh->streams, &cur);
    if (rc) return rc;
    MDB_val k, v;
    uint8_t dk[CAIRN_KEY_BYTES], ad[KEY_AD_LEN], wrapped[CAIRN_WRAPPED_KEY_BYTES];
    /* the key entries are the 16-byte keys among the stream index's entries */
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0; rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (k.mv_size != 16 || v.mv_size == 1) continue;
        key_ad(ad, k.mv_data);
        if (v.mv_size != CAIRN_WRAPPED_KEY_BYTES || cairn_open(s->master, ad, sizeof ad, v.mv_data, v.mv_size, dk)) {
            char hex[CAIRN_UUID_STRLEN + 1] = { 0 };
            cairn_uuid_format(k.mv_data, hex);
            rc = cairn_store_fail(s, CAIRN_CORRUPT, "the data key of aggregate %s in %s fails authentication", hex,
                                  where(s));
            break;
        }
        cairn_seal(fresh, ad, sizeof ad, dk, sizeof dk, wrapped);
        v = (MDB_val){ sizeof wrapped, wrapped };
        rc = mdb_cursor_put(cur, &k, &v, MDB_CURRENT);
        if (rc) break;
    }
    sodium_memzero(dk, sizeof dk);
    mdb_cursor_close(cur);
    if (rc != MDB_NOTFOUND) return rc;
    rc = bump_generation(txn, s->sh);
    return rc ? rc : write_keycheck(txn, s->sh, fresh);
}

int cairn_store_rekey(cairn_store *s, const uint8_t new_key[32])
{
    s->errmsg[0] = '\0';
    if (!s->encrypted)
        return cairn_store_fail(s, CAIRN_CONFIG, "store %s is not encrypted, so it has no key to change", where(s));
    if (!s->master) return no_key(s);
    int rc = cairn_store_write(s, "changing the cipher key", rekey_in, (void *)new_key);
    if (rc) return rc;
    sodium_mprotect_readwrite(s->master);
    memcpy(s->master, new_key, CAIRN_KEY_BYTES);
    sodium_mprotect_readonly(s->master);
    cairn_store_keys_reset(s);
    return CAIRN_OK;
}
