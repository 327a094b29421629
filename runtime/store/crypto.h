/*
 * crypto.h -- the cryptography cairn uses, all from libsodium. No Lua.
 *
 *   - XChaCha20-Poly1305 (IETF AEAD) with a random 24-byte nonce: record
 *     payloads under a per-aggregate data key, data keys under the master key;
 *   - BLAKE2b-256: the hash chain of each stream.
 *
 * Key material lives in cairn_secret buffers (sodium_malloc: guarded, locked,
 * zeroed when freed) and is wiped from every temporary on every path.
 */
#ifndef CAIRN_CRYPTO_H
#define CAIRN_CRYPTO_H

#include <stddef.h>
#include <stdint.h>

#define CAIRN_KEY_BYTES 32
#define CAIRN_HASH_BYTES 32
#define CAIRN_NONCE_BYTES 24
#define CAIRN_TAG_BYTES 16
#define CAIRN_SEAL_OVERHEAD (CAIRN_NONCE_BYTES + CAIRN_TAG_BYTES)
#define CAIRN_WRAPPED_KEY_BYTES (CAIRN_KEY_BYTES + CAIRN_SEAL_OVERHEAD)
#define CAIRN_KEY_B64_LEN 44    /* base64 (with padding) of 32 bytes */

/** Initialise libsodium once; 0 on success. Safe to call from any thread. */
int cairn_crypto_init(void) __attribute__((warn_unused_result));

/** Fill out (n <= 64) from a pool of CSPRNG bytes refilled 4 KiB at a time;
 * the bytes handed out are wiped from the pool, and fork empties it. */
void cairn_random_fill(uint8_t *out, size_t n);

/** A key in locked, guarded memory; free with cairn_secret_free (which wipes it). */
uint8_t *cairn_secret_new(void);
void cairn_secret_free(uint8_t *key);

/**
 * Decode a master key: base64 (standard alphabet, padded) of exactly 32 bytes.
 * @return CAIRN_OK, or CAIRN_CONFIG if it is not one (out is then wiped).
 */
int cairn_key_decode(const char *b64, size_t len, uint8_t out[CAIRN_KEY_BYTES])
    __attribute__((warn_unused_result));

/** A fresh random master key as base64: out has CAIRN_KEY_B64_LEN + 1 bytes. */
void cairn_key_generate(char out[CAIRN_KEY_B64_LEN + 1]);

/**
 * Seal: out = nonce || ciphertext || tag, len + CAIRN_SEAL_OVERHEAD bytes.
 * ad binds the ciphertext to where it is stored.
 */
void cairn_seal(const uint8_t key[CAIRN_KEY_BYTES], const uint8_t *ad, size_t ad_len, const uint8_t *in,
                size_t len, uint8_t *out);

/**
 * Open what cairn_seal made. out has len - CAIRN_SEAL_OVERHEAD bytes.
 * @return 0, or -1 if the bytes, the key or the associated data are not the
 *         ones that were sealed (out is then wiped).
 */
int cairn_open(const uint8_t key[CAIRN_KEY_BYTES], const uint8_t *ad, size_t ad_len, const uint8_t *in,
               size_t len, uint8_t *out) __attribute__((warn_unused_result));

/** The chain hash: BLAKE2b-256(prev || a || b). */
void cairn_chain_hash(const uint8_t prev[CAIRN_HASH_BYTES], const uint8_t *a, size_t a_len, const uint8_t *b,
                      size_t b_len, uint8_t out[CAIRN_HASH_BYTES]);

/** One chain hash of a batch: the inputs, and out for the digest. */
typedef struct cairn_chain_input {
    const uint8_t *prev, *a, *b;
    size_t a_len, b_len;
    uint8_t out[CAIRN_HASH_BYTES];
} cairn_chain_input;

/** cairn_chain_hash of each of n inputs: those that fit one BLAKE2b block
 *  four at a time where the CPU can (blake2b_x4.h), the others one by one. */
void cairn_chain_hash_many(cairn_chain_input *in, size_t n);

#endif
