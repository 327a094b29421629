/* crypto.c -- see crypto.h. */
#include <pthread.h>
#include <sodium.h>
#include <string.h>

#include "blake2b_x4.h"
#include "cairn.h"
#include "crypto.h"

static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static int init_result = -1;

static void init_sodium(void)
{
    init_result = sodium_init() < 0 ? -1 : 0;
}

int cairn_crypto_init(void)
{
    pthread_once(&init_once, init_sodium);
    return init_result;
}

/* Random bytes taken from libsodium 4 KiB at a time: one getrandom per 256
 * ids or nonces instead of one each. A forked child must not reuse its
 * parent's pool (two processes would make the same ids), so fork empties it. */
static uint8_t pool[4096];
static size_t pool_left;
static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t pool_once = PTHREAD_ONCE_INIT;

static void forget_pool(void)
{
    sodium_memzero(pool, sizeof pool);
    pool_left = 0;
}

static void watch_forks(void)
{
    pthread_atfork(NULL, NULL, forget_pool);
}

void cairn_random_fill(uint8_t *out, size_t n)
{
    pthread_once(&pool_once, watch_forks);
    pthread_mutex_lock(&pool_lock);
    if (pool_left < n) {
        randombytes_buf(pool, sizeof pool);
        pool_left = sizeof pool;
    }
    uint8_t *from = pool + sizeof pool - pool_left;
    memcpy(out, from, n);
    sodium_memzero(from, n);
    pool_left -= n;
    pthread_mutex_unlock(&pool_lock);
}

uint8_t *cairn_secret_new(void)
{
    if (cairn_crypto_init() != 0) return NULL;
    return sodium_malloc(CAIRN_KEY_BYTES);
}

void cairn_secret_free(uint8_t *key)
{
    if (key) sodium_free(key);
}

int cairn_key_decode(const char *b64, size_t len, uint8_t out[CAIRN_KEY_BYTES])
{
    uint8_t buf[CAIRN_KEY_BYTES + 8];
    size_t got = 0;
    const char *end = NULL;
    int ok = cairn_crypto_init() == 0 &&
             sodium_base642bin(buf, sizeof buf, b64, len, NULL, &got, &end, sodium_base64_VARIANT_ORIGINAL) == 0 &&
             end == b64 + len && got == CAIRN_KEY_BYTES;
    if (ok) memcpy(out, buf, CAIRN_KEY_BYTES);
    else sodium_memzero(out, CAIRN_KEY_BYTES);
    sodium_memzero(buf, sizeof buf);
    return ok ? CAIRN_OK : CAIRN_CONFIG;
}

void cairn_key_generate(char out[CAIRN_KEY_B64_LEN + 1])
{
    uint8_t key[CAIRN_KEY_BYTES];
    randombytes_buf(key, sizeof key);
    sodium_bin2base64(out, CAIRN_KEY_B64_LEN + 1, key, sizeof key, sodium_base64_VARIANT_ORIGINAL);
    sodium_memzero(key, sizeof key);
}

void cairn_seal(const uint8_t key[CAIRN_KEY_BYTES], const uint8_t *ad, size_t ad_len, const uint8_t *in,
                size_t len, uint8_t *out)
{
    cairn_random_fill(out, CAIRN_NONCE_BYTES);
    crypto_aead_xchacha20poly1305_ietf_encrypt(out + CAIRN_NONCE_BYTES, NULL, in, len, ad, ad_len, NULL, out, key);
}

int cairn_open(const uint8_t key[CAIRN_KEY_BYTES], const uint8_t *ad, size_t ad_len, const uint8_t *in,
               size_t len, uint8_t *out)
{
    if (len < CAIRN_SEAL_OVERHEAD) return -1;
    if (crypto_aead_xchacha20poly1305_ietf_decrypt(out, NULL, NULL, in + CAIRN_NONCE_BYTES, len - CAIRN_NONCE_BYTES,
                                                   ad, ad_len, in, key) != 0) {
        sodium_memzero(out, len - CAIRN_SEAL_OVERHEAD);
        return -1;
    }
    return 0;
}

/* BLAKE2b's state after init (no key, 32-byte output) is the same for every
 * chain hash: made once and copied, which costs a fraction of the init (a
 * read checks one chain hash per event). The state holds no pointers. */
static crypto_generichash_blake2b_state chain_start;
static pthread_once_t chain_once = PTHREAD_ONCE_INIT;

static void init_chain_start(void)
{
    crypto_generichash_blake2b_init(&chain_start, NULL, 0, CAIRN_HASH_BYTES);
}

void cairn_chain_hash(const uint8_t prev[CAIRN_HASH_BYTES], const uint8_t *a, size_t a_len, const uint8_t *b,
                      size_t b_len, uint8_t out[CAIRN_HASH_BYTES])
{
    pthread_once(&chain_once, init_chain_start);
    crypto_generichash_blake2b_state st;
    memcpy(&st, &chain_start, sizeof st);
    /* a record's bytes fit a block or two: one update of them together costs
     * less than three (BLAKE2b buffers two blocks before compressing anyway) */
    uint8_t joined[256];
    if (a_len + b_len <= sizeof joined - CAIRN_HASH_BYTES) {
        memcpy(joined, prev, CAIRN_HASH_BYTES);
        memcpy(joined + CAIRN_HASH_BYTES, a, a_len);
        if (b_len) memcpy(joined + CAIRN_HASH_BYTES + a_len, b, b_len);
        crypto_generichash_blake2b_update(&st, joined, CAIRN_HASH_BYTES + a_len + b_len);
    } else {
        crypto_generichash_blake2b_update(&st, prev, CAIRN_HASH_BYTES);
        crypto_generichash_blake2b_update(&st, a, a_len);
        crypto_generichash_blake2b_update(&st, b, b_len);
    }
    crypto_generichash_blake2b_final(&st, out, CAIRN_HASH_BYTES);
}

/* An input as one zero-padded block (and its length); 0 if it does not fit one. */
static int to_lane(const cairn_chain_input *in, uint64_t block[16], size_t *len)
{
    size_t n = CAIRN_HASH_BYTES + in->a_len + in->b_len;
    if (in->a_len > CAIRN_BLAKE2B_BLOCK || in->b_len > CAIRN_BLAKE2B_BLOCK || n > CAIRN_BLAKE2B_BLOCK) return 0;
    uint8_t *p = (uint8_t *)block;
    memcpy(p, in->prev, CAIRN_HASH_BYTES);
    if (in->a_len) memcpy(p + CAIRN_HASH_BYTES, in->a, in->a_len);
    if (in->b_len) memcpy(p + CAIRN_HASH_BYTES + in->a_len, in->b, in->b_len);
    memset(p + n, 0, CAIRN_BLAKE2B_BLOCK - n);
    *len = n;
    return 1;
}

/* The digests of the k (1..4) inputs put in lanes. */
static void hash_lanes(uint64_t block[4][16], size_t len[4], cairn_chain_input *lane[4], int k)
{
    if (k == 1) { /* alone: the one-message path costs less than four lanes */
        cairn_chain_hash(lane[0]->prev, lane[0]->a, lane[0]->a_len, lane[0]->b, lane[0]->b_len, lane[0]->out);
        return;
    }
    uint8_t out[4][32];
    for (int j = k; j < 4; j++) {
        memset(block[j], 0, sizeof block[j]);
        len[j] = 0;
    }
    cairn_blake2b_x4((const uint64_t(*)[16])block, len, out);
    for (int j = 0; j < k; j++) memcpy(lane[j]->out, out[j], CAIRN_HASH_BYTES);
}

void cairn_chain_hash_many(cairn_chain_input *in, size_t n)
{
    int x4 = n > 1 && cairn_blake2b_x4_available();
    uint64_t block[4][16];
    size_t len[4];
    cairn_chain_input *lane[4];
    int k = 0;
    for (size_t i = 0; i < n; i++) {
        if (x4 && to_lane(&in[i], block[k], &len[k])) {
            lane[k++] = &in[i];
            if (k == 4) {
                hash_lanes(block, len, lane, k);
                k = 0;
            }
        } else {
            cairn_chain_hash(in[i].prev, in[i].a, in[i].a_len, in[i].b, in[i].b_len, in[i].out);
        }
    }
    if (k) hash_lanes(block, len, lane, k);
}
