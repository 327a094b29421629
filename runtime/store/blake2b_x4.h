/*
 * blake2b_x4.h -- BLAKE2b with a 32-byte digest (no key) of four messages
 * of at most one block (128 bytes) each, computed together: the same
 * digests as libsodium's crypto_generichash, for about a third of the work
 * per message. A stream read checks one chain hash per event, each of a
 * previous hash and a record that fit a block, and each link can be checked
 * on its own (the stored hashes are the inputs), so they go four at a time.
 */
#ifndef CAIRN_BLAKE2B_X4_H
#define CAIRN_BLAKE2B_X4_H

#include <stddef.h>
#include <stdint.h>

#define CAIRN_BLAKE2B_BLOCK 128

/** Whether this CPU runs cairn_blake2b_x4 (x86-64 with AVX2). */
int cairn_blake2b_x4_available(void);

/** The digests of four messages: message k is the first len[k] (<= 128)
 *  bytes of block[k], whose other bytes are zero. Only when available. */
void cairn_blake2b_x4(const uint64_t block[4][16], const size_t len[4], uint8_t out[4][32]);

#endif
