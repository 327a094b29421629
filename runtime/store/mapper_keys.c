/*
 * mapper_keys.c -- the keys of an encrypted store, the same on every engine:
 * the master key and its check, per-stream data keys (crypto-shredding),
 * their cache, forget and rekey.
 *
 * Engines keep, for each stream, its data key sealed by the master key (the
 * stream id as associated data), or one 0 byte once it was forgotten; and in
 * their key state the cipher's name, a key check (a constant sealed by the
 * master key: a wrong key is refused at open) and a generation bumped by
 * every forget and rekey.
 *
 * Every write transaction shows the mapper the key state first
 * (cairn_store_check_keys): a handle that opened the store unencrypted may
 * not write into it once another handle has encrypted it, and a handle whose
 * master key no longer opens the key check (the store was rekeyed since) may
 * not write data keys nobody can unwrap. Both are refused as ConfigErrors.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "cairn.h"
#include "mapper.h"
#include "string_id.h"
#include "uuid.h"

#define CIPHER_NAME "xchacha20poly1305"
#define CHECK_TEXT "cairn key check"
#define CHECK_LEN (sizeof CHECK_TEXT - 1 + CAIRN_SEAL_OVERHEAD)
#define KEY_AD_PREFIX "cairn data key"
#define KEY_AD_LEN (sizeof KEY_AD_PREFIX - 1 + 16)
#define CACHE_SLOTS 256

/* Unwrapped data keys, in secret memory, direct-mapped by stream id. The
 * cache is valid for one key generation: a forget (or rekey) anywhere, in any
 * process, empties it, so a forgotten key is never used once it is gone. A
 * write that does not commit empties it too. Writes also compare the stored
 * (wrapped) key with the one the slot was filled from. */
typedef struct cairn_key_cache {
    struct {
        uint8_t id[16];
        uint8_t key[CAIRN_KEY_BYTES];
        uint8_t wrapped[CAIRN_WRAPPED_KEY_BYTES];
        int used;
    } slot[CACHE_SLOTS];
    uint64_t generation;
} cairn_key_cache;

static const char *where(cairn_store *s) { return s->eng->where; }

void cairn_store_keys_reset(cairn_store *s)
{
    if (!s->keys) return;
    sodium_memzero(s->keys, sizeof *s->keys);
    s->keys->generation = UINT64_MAX; /* no stored generation: check again */
}

static void keys_generation(cairn_store *s, uint64_t gen)
{
    if (!s->keys || gen == s->keys->generation) return;
    sodium_memzero(s->keys, sizeof *s->keys);
    s->keys->generation = gen;
}

static int keycheck_matches(cairn_slice check, const uint8_t *key)
{
    uint8_t plain[sizeof CHECK_TEXT - 1];
    if (!check.ptr || check.len != CHECK_LEN) return 0;
    return cairn_open(key, (const uint8_t *)CHECK_TEXT, sizeof plain, (const uint8_t *)check.ptr, check.len,
                      plain) == 0 && memcmp(plain, CHECK_TEXT, sizeof plain) == 0;
}

static void make_keycheck(const uint8_t *key, uint8_t out[CHECK_LEN])
{
    cairn_seal(key, (const uint8_t *)CHECK_TEXT, sizeof CHECK_TEXT - 1, (const uint8_t *)CHECK_TEXT,
               sizeof CHECK_TEXT - 1, out);
}

static int known_cipher(cairn_slice c)
{
    return c.len == sizeof CIPHER_NAME - 1 && memcmp(c.ptr, CIPHER_NAME, c.len) == 0;
}

/* The master key still opens the store's key check (checked again only when
 * the generation moved: a rekey moves it). */
static int key_still_valid(cairn_store *s, const cairn_key_state *ks)
{
    if (!s->master || ks->keygen == s->checked_keygen) return 1;
    if (!keycheck_matches(ks->keycheck, s->master)) return 0;
    s->checked_keygen = ks->keygen;
    return 1;
}

int cairn_store_check_keys(cairn_store *s, const cairn_key_state *ks)
{
    if (!ks->known) return CAIRN_OK;
    int encrypted = ks->cipher.ptr != NULL;
    if (encrypted && !s->encrypted)
        return cairn_store_fail(s, CAIRN_CONFIG,
                                "store %s was encrypted after this handle opened it without a key: open it again "
                                "with CAIRN_CIPHER_KEY set", where(s));
    if (!encrypted && s->encrypted)
        return cairn_store_fail(s, CAIRN_CORRUPT, "store %s has lost its cipher record", where(s));
    if (encrypted && !key_still_valid(s, ks))
        return cairn_store_fail(s, CAIRN_CONFIG,
                                "the cipher key of store %s was changed (cairn rekey) after this handle opened it: "
                                "open it again with the new key", where(s));
    keys_generation(s, ks->keygen);
    return CAIRN_OK;
}

static int read_check(void *ctx, const cairn_key_state *ks)
{
    cairn_store *s = ctx;
    if (ks->cipher.ptr && s->master && !key_still_valid(s, ks))
        return cairn_store_fail(s, CAIRN_CONFIG,
                                "the cipher key of store %s was changed (cairn rekey) after this handle opened it: "
                                "open it again with the new key", where(s));
    keys_generation(s, ks->keygen);
    return CAIRN_OK;
}

int cairn_store_keys_begin_read(cairn_store *s)
{
    if (!s->keys) return CAIRN_OK;
    return s->eng->ops->key_state(s->eng, read_check, s);
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

static unsigned slot_of(const uint8_t id[16]) { return ((unsigned)id[14] << 8 | id[15]) % CACHE_SLOTS; } /* ids are random or hashed */

int cairn_store_unwrap_key(cairn_store *s, const uint8_t id[16], cairn_slice stored, const uint8_t **key)
{
    cairn_key_cache *c = s->keys;
    unsigned at = slot_of(id);
    uint8_t ad[KEY_AD_LEN];
    char hex[CAIRN_UUID_STRLEN + 1] = { 0 };
    c->slot[at].used = 0;
    if (stored.len == 1) {
        cairn_uuid_format(id, hex);
        return cairn_store_fail(s, CAIRN_NOTFOUND, "aggregate %s was forgotten (its data key is destroyed) in %s",
                                hex, where(s));
    }
    key_ad(ad, id);
    if (stored.len != CAIRN_WRAPPED_KEY_BYTES ||
        cairn_open(s->master, ad, sizeof ad, (const uint8_t *)stored.ptr, stored.len, c->slot[at].key) != 0) {
        cairn_uuid_format(id, hex);
        return cairn_store_fail(s, CAIRN_CORRUPT, "the data key of aggregate %s in %s fails authentication", hex,
                                where(s));
    }
    memcpy(c->slot[at].id, id, 16);
    memcpy(c->slot[at].wrapped, stored.ptr, CAIRN_WRAPPED_KEY_BYTES);
    c->slot[at].used = 1;
    *key = c->slot[at].key;
    return CAIRN_OK;
}

int cairn_store_open_key(cairn_store *s, const uint8_t id[16], cairn_slice stored, const uint8_t **key)
{
    if (!s->master) return no_key(s);
    cairn_key_cache *c = s->keys;
    unsigned at = slot_of(id);
    if (c->slot[at].used && memcmp(c->slot[at].id, id, 16) == 0) { *key = c->slot[at].key; return CAIRN_OK; }
    if (!stored.ptr) {
        int rc = s->eng->ops->data_key(s->eng, id, &stored);
        if (rc == CAIRN_END) {
            char what[80];
            cairn_record_describe(id, 0, what, sizeof what);
            return cairn_store_fail(s, CAIRN_CORRUPT, "%.46s has encrypted events but no data key in %s", what,
                                    where(s));
        }
        if (rc) return rc;
    }
    return cairn_store_unwrap_key(s, id, stored, key);
}

int cairn_store_write_key(cairn_store *s, cairn_stream_head *head, const uint8_t **key)
{
    if (!s->master) return no_key(s);
    cairn_key_cache *c = s->keys;
    unsigned at = slot_of(head->id);
    if (head->key.ptr) {
        if (c->slot[at].used && memcmp(c->slot[at].id, head->id, 16) == 0 &&
            head->key.len == CAIRN_WRAPPED_KEY_BYTES &&
            memcmp(c->slot[at].wrapped, head->key.ptr, CAIRN_WRAPPED_KEY_BYTES) == 0) {
            *key = c->slot[at].key;
            return CAIRN_OK;
        }
        return cairn_store_unwrap_key(s, head->id, head->key, key);
    }
    /* a new stream: a fresh key, stored with the batch */
    uint8_t ad[KEY_AD_LEN];
    key_ad(ad, head->id);
    cairn_random_fill(c->slot[at].key, CAIRN_KEY_BYTES);
    cairn_seal(s->master, ad, sizeof ad, c->slot[at].key, CAIRN_KEY_BYTES, head->new_key);
    memcpy(c->slot[at].id, head->id, 16);
    memcpy(c->slot[at].wrapped, head->new_key, CAIRN_WRAPPED_KEY_BYTES);
    c->slot[at].used = 1;
    head->put_key = 1;
    *key = c->slot[at].key;
    return CAIRN_OK;
}

/* --- opening --- */

typedef struct {
    cairn_store *s;
    char *err;
    size_t errlen;
    int wants_cipher;       /* a key was given for a store that is not encrypted yet */
} open_ctx;

/* Check the store's encryption against the key given (or none). */
static int open_check(void *ctxp, const cairn_key_state *ks)
{
    open_ctx *ctx = ctxp;
    cairn_store *s = ctx->s;
    s->encrypted = ks->cipher.ptr != NULL;
    ctx->wants_cipher = 0;
    if (s->encrypted && !known_cipher(ks->cipher)) {
        snprintf(ctx->err, ctx->errlen, "store %s uses a cipher this cairn does not know", where(s));
        return CAIRN_CONFIG;
    }
    if (s->encrypted && s->master) {
        if (!keycheck_matches(ks->keycheck, s->master)) {
            snprintf(ctx->err, ctx->errlen, "store %s: the cipher key (CAIRN_CIPHER_KEY) is not this store's key",
                     where(s));
            return CAIRN_CONFIG;
        }
        s->checked_keygen = ks->keygen;
        return CAIRN_OK;
    }
    if (!s->master) return CAIRN_OK;
    if (!ks->empty) {
        snprintf(ctx->err, ctx->errlen,
                 "store %s holds unencrypted events, so it cannot be opened with a cipher key; "
                 "export it and import it into a new store with the key set", where(s));
        return CAIRN_CONFIG;
    }
    ctx->wants_cipher = 1;
    s->checked_keygen = ks->keygen;
    return CAIRN_OK;
}

static int lock_key(cairn_store *s, const uint8_t *given, char *err, size_t errlen)
{
    if (!(s->master = cairn_secret_new()) || !(s->keys = sodium_malloc(sizeof *s->keys))) {
        snprintf(err, errlen, "cannot lock memory for the cipher key of %s", where(s));
        return ENOMEM;
    }
    memcpy(s->master, given, CAIRN_KEY_BYTES);
    sodium_mprotect_readonly(s->master);
    cairn_store_keys_reset(s);
    return CAIRN_OK;
}

int cairn_store_cipher_open(cairn_store *s, const cairn_store_options *opt, char *err, size_t errlen)
{
    s->compress = opt->compress;
    int rc;
    if (opt->cipher_key && (rc = lock_key(s, opt->cipher_key, err, errlen)) != CAIRN_OK) return rc;
    open_ctx ctx = { s, err, errlen, 0 };
    err[0] = '\0';
    rc = s->eng->ops->key_state(s->eng, open_check, &ctx);
    if (rc == CAIRN_OK && ctx.wants_cipher && !s->read_only) {
        /* the first writer with a key makes the empty store encrypted; the
         * check runs again inside that transaction (another may have won) */
        uint8_t check[CHECK_LEN];
        make_keycheck(s->master, check);
        cairn_guard g = { open_check, &ctx };
        rc = s->eng->ops->set_cipher(s->eng, (cairn_slice){ CIPHER_NAME, sizeof CIPHER_NAME - 1 },
                                     (cairn_slice){ (const char *)check, sizeof check }, g);
        if (rc == CAIRN_OK) s->encrypted = 1;
    }
    if (rc == CAIRN_OK && s->encrypted && !s->master && !opt->keyless) {
        snprintf(err, errlen, "store %s is encrypted: set CAIRN_CIPHER_KEY to open it", where(s));
        return CAIRN_CONFIG;
    }
    if (rc && !*err) snprintf(err, errlen, "%s", s->eng->errmsg);
    return rc;
}

void cairn_store_cipher_close(cairn_store *s)
{
    cairn_secret_free(s->master);
    cairn_secret_free(s->view_key);
    cairn_secret_free(s->view_names);
    cairn_secret_free(s->id_key);
    s->master = s->view_key = s->view_names = s->id_key = NULL;
    if (s->keys) sodium_free(s->keys);
    s->keys = NULL;
}

/* --- the view key ---
 *
 * Views of an encrypted store are sealed under one random view key, stored
 * as the data key of a reserved stream (VIEW_KEY_ID, which no aggregate may
 * use): wrapped by the master key like every data key, so rekey re-wraps it
 * and views stay readable; forget refuses it. The first view write makes it
 * (inside its own write transaction, which sees one another process made
 * meanwhile). Keys of view entries are hashed with a key derived from it
 * (mapper_views.c), and so are string aggregate ids (cairn_store_string_id):
 * rekey leaves it as it is, so stream keys stay where they are. */

const uint8_t CAIRN_VIEW_KEY_ID[16] = { 'c', 'a', 'i', 'r', 'n', ' ', 'v', 'i', 'e', 'w', ' ', 'k', 'e', 'y', 0, 0 };

typedef struct {
    cairn_store *s;
    uint8_t wrapped[CAIRN_WRAPPED_KEY_BYTES];
    int have;
} view_key_ctx;

/* The append's seal step for the reserved stream: keep its key, or make one. */
static int view_key_seal(cairn_write *w, const cairn_key_state *ks)
{
    view_key_ctx *c = w->ctx;
    int rc = cairn_store_check_keys(c->s, ks);
    if (rc) return rc;
    cairn_stream_head *head = &w->heads[0];
    head->put_key = 0;
    if (head->key.ptr) {
        if (head->key.len != CAIRN_WRAPPED_KEY_BYTES)
            return cairn_store_fail(c->s, CAIRN_CORRUPT, "the view key of %s is malformed", where(c->s));
        memcpy(c->wrapped, head->key.ptr, CAIRN_WRAPPED_KEY_BYTES);
    } else {
        uint8_t key[CAIRN_KEY_BYTES], ad[KEY_AD_LEN];
        key_ad(ad, CAIRN_VIEW_KEY_ID);
        cairn_random_fill(key, sizeof key);
        cairn_seal(c->s->master, ad, sizeof ad, key, sizeof key, head->new_key);
        sodium_memzero(key, sizeof key);
        memcpy(c->wrapped, head->new_key, CAIRN_WRAPPED_KEY_BYTES);
        head->put_key = 1;
    }
    c->have = 1;
    return CAIRN_OK;
}

/* The stored (wrapped) view key, read in a read of its own (have 0: none yet). */
static int read_view_key(cairn_store *s, view_key_ctx *c)
{
    cairn_stream_query q = { .limit = 1 };
    cairn_slice stored;
    int rc = s->eng->ops->read_stream(s->eng, CAIRN_VIEW_KEY_ID, &q);
    if (rc == CAIRN_OK) rc = s->eng->ops->data_key(s->eng, CAIRN_VIEW_KEY_ID, &stored);
    if (rc == CAIRN_OK && stored.len != CAIRN_WRAPPED_KEY_BYTES)
        rc = cairn_store_fail(s, CAIRN_CORRUPT, "the view key of %s is malformed", where(s));
    if (rc == CAIRN_OK) {
        memcpy(c->wrapped, stored.ptr, CAIRN_WRAPPED_KEY_BYTES);
        c->have = 1;
    }
    s->eng->ops->read_end(s->eng);
    return rc == CAIRN_END ? CAIRN_OK : rc;
}

static void forget_view_key(cairn_store *s)
{
    cairn_secret_free(s->view_key);
    cairn_secret_free(s->view_names);
    cairn_secret_free(s->id_key);
    s->view_key = s->view_names = s->id_key = NULL;
}

int cairn_store_view_key(cairn_store *s, int create)
{
    if (s->view_key) return CAIRN_OK;
    if (!s->master) return no_key(s);
    view_key_ctx c = { .s = s };
    int rc = read_view_key(s, &c);
    if (rc) return rc;
    if (!c.have && !create) return CAIRN_END;
    if (!c.have) {
        if (s->read_only) return cairn_store_read_only(s);
        cairn_stream_head head = { .key = { NULL, 0 } };
        memcpy(head.id, CAIRN_VIEW_KEY_ID, 16);
        cairn_write w = { .heads = &head, .nheads = 1, .want = CAIRN_WANT_KEY_STATE | CAIRN_WANT_DATA_KEYS,
                          .seal = view_key_seal, .ctx = &c };
        uint64_t first;
        rc = s->eng->ops->append(s->eng, &w, &first);
        if (rc) return rc;
    }
    uint8_t ad[KEY_AD_LEN];
    key_ad(ad, CAIRN_VIEW_KEY_ID);
    s->view_key = cairn_secret_new();
    s->view_names = cairn_secret_new();
    s->id_key = cairn_secret_new();
    if (!s->view_key || !s->view_names || !s->id_key) {
        forget_view_key(s);
        return cairn_store_fail(s, ENOMEM, "cannot lock memory for the view key of %s", where(s));
    }
    if (cairn_open(s->master, ad, sizeof ad, c.wrapped, sizeof c.wrapped, s->view_key) != 0) {
        forget_view_key(s);
        return cairn_store_fail(s, CAIRN_CORRUPT, "the view key of %s fails authentication", where(s));
    }
    /* view entry keys and string ids are hashed under keys of their own, derived from it */
    crypto_generichash(s->view_names, CAIRN_KEY_BYTES, (const uint8_t *)"cairn view key names", 20, s->view_key,
                       CAIRN_KEY_BYTES);
    crypto_generichash(s->id_key, CAIRN_KEY_BYTES, (const uint8_t *)"cairn string ids", 16, s->view_key,
                       CAIRN_KEY_BYTES);
    sodium_mprotect_readonly(s->view_key);
    sodium_mprotect_readonly(s->view_names);
    sodium_mprotect_readonly(s->id_key);
    return CAIRN_OK;
}

int cairn_store_string_id(cairn_store *s, const char *name, size_t len, int create, uint8_t out[16])
{
    const char *problem = cairn_string_id_problem(name, len);
    if (problem) {
        int cut = len > 64; /* enough to tell which id */
        return cairn_store_fail(s, CAIRN_SCHEMA, "the aggregate id '%.*s%s' %s (a string id is 1 to %d bytes "
                                "of UTF-8)", cut ? 64 : (int)len, name ? name : "", cut ? "..." : "", problem,
                                CAIRN_STRING_ID_MAX);
    }
    if (s->encrypted) {
        int rc = cairn_store_view_key(s, create);
        if (rc) return rc;
    }
    cairn_string_id_key(s->encrypted ? s->id_key : NULL, name, len, out);
    return CAIRN_OK;
}

/* --- forgetting and rekeying --- */

static int write_check(void *ctx, const cairn_key_state *ks)
{
    return cairn_store_check_keys(ctx, ks);
}

int cairn_store_forget(cairn_store *s, const uint8_t id[16])
{
    s->eng->errmsg[0] = '\0';
    if (s->read_only) return cairn_store_read_only(s);
    if (!s->encrypted)
        return cairn_store_fail(s, CAIRN_CONFIG,
                                "store %s is not encrypted: forgetting an aggregate needs CAIRN_CIPHER_KEY set "
                                "when the store is made", where(s));
    if (!s->master) return no_key(s);
    if (memcmp(id, CAIRN_VIEW_KEY_ID, 16) == 0)
        return cairn_store_fail(s, CAIRN_INVALID, "that id holds the view key of %s, not an aggregate", where(s));
    cairn_guard g = { write_check, s };
    int rc = s->eng->ops->forget(s->eng, id, g);
    if (rc == CAIRN_NOTFOUND && !s->eng->errmsg[0]) {
        char hex[CAIRN_UUID_STRLEN + 1] = { 0 };
        cairn_uuid_format(id, hex);
        return cairn_store_fail(s, CAIRN_NOTFOUND, "aggregate %s not found in %s", hex, where(s));
    }
    return rc;
}

typedef struct {
    cairn_store *s;
    const uint8_t *fresh;
    int (*progress)(void *ctx, uint64_t done, uint64_t total); /* NULL: none */
    void *progress_ctx;
    uint64_t done, total;
    uint64_t reported;      /* the highest done reported: an attempt run again reports no less */
} rekey_ctx;

#define REKEY_PROGRESS_EVERY 1000 /* data keys between two progress calls */

static int rewrap(void *ctxp, const uint8_t id[16], cairn_slice stored, uint8_t out[CAIRN_WRAPPED_KEY_BYTES])
{
    rekey_ctx *ctx = ctxp;
    uint8_t dk[CAIRN_KEY_BYTES], ad[KEY_AD_LEN];
    key_ad(ad, id);
    if (stored.len != CAIRN_WRAPPED_KEY_BYTES ||
        cairn_open(ctx->s->master, ad, sizeof ad, (const uint8_t *)stored.ptr, stored.len, dk)) {
        char hex[CAIRN_UUID_STRLEN + 1] = { 0 };
        cairn_uuid_format(id, hex);
        return cairn_store_fail(ctx->s, CAIRN_CORRUPT, "the data key of aggregate %s in %s fails authentication",
                                hex, where(ctx->s));
    }
    cairn_seal(ctx->fresh, ad, sizeof ad, dk, sizeof dk, out);
    sodium_memzero(dk, sizeof dk);
    /* progress only reports: the rekey is one transaction, finished or not at all */
    if (ctx->progress && ++ctx->done % REKEY_PROGRESS_EVERY == 0 && ctx->done > ctx->reported) {
        ctx->reported = ctx->done;
        (void)ctx->progress(ctx->progress_ctx, ctx->done, ctx->total > ctx->done ? ctx->total : ctx->done);
    }
    return CAIRN_OK;
}

/* The guard of every attempt at a rekey: an engine runs it again (a retry,
 * a map grown meanwhile) from its first data key, so the count starts over. */
static int rekey_check(void *ctxp, const cairn_key_state *ks)
{
    rekey_ctx *ctx = ctxp;
    ctx->done = 0;
    return cairn_store_check_keys(ctx->s, ks);
}

int cairn_store_rekey(cairn_store *s, const uint8_t new_key[32])
{
    return cairn_store_rekey_progress(s, new_key, NULL, NULL);
}

int cairn_store_rekey_progress(cairn_store *s, const uint8_t new_key[32],
                               int (*progress)(void *ctx, uint64_t done, uint64_t total), void *progress_ctx)
{
    s->eng->errmsg[0] = '\0';
    if (s->read_only) return cairn_store_read_only(s);
    if (!s->encrypted)
        return cairn_store_fail(s, CAIRN_CONFIG, "store %s is not encrypted, so it has no key to change", where(s));
    if (!s->master) return no_key(s);
    uint8_t check[CHECK_LEN];
    make_keycheck(new_key, check);
    rekey_ctx ctx = { s, new_key, progress, progress_ctx, 0, 0, 0 };
    if (progress) {
        /* the total, for the progress: one data key per stream of an encrypted store */
        cairn_store_stats st;
        memset(&st, 0, sizeof st);
        if (s->eng->ops->stat(s->eng, &st) == CAIRN_OK) ctx.total = st.streams;
        s->eng->errmsg[0] = '\0';
    }
    cairn_guard g = { rekey_check, &ctx };
    int rc = s->eng->ops->rekey(s->eng, rewrap, &ctx, (cairn_slice){ (const char *)check, sizeof check }, g);
    if (rc) return rc;
    if (progress) (void)progress(progress_ctx, ctx.done, ctx.done);
    sodium_mprotect_readwrite(s->master);
    memcpy(s->master, new_key, CAIRN_KEY_BYTES);
    sodium_mprotect_readonly(s->master);
    cairn_store_keys_reset(s);
    return CAIRN_OK;
}
