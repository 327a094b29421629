/*
 * compress.h -- zstd for payloads. No Lua.
 *
 * Payloads above CAIRN_COMPRESS_MIN bytes are compressed when that makes them
 * smaller; each record's flags say whether it is, so stores hold both kinds.
 */
#ifndef CAIRN_COMPRESS_H
#define CAIRN_COMPRESS_H

#include <stddef.h>
#include <stdint.h>

#define CAIRN_COMPRESS_MIN 128
#define CAIRN_DECOMPRESS_MAX ((size_t)1 << 31)   /* refuse frames claiming more */

typedef struct cairn_compressor cairn_compressor;

/** A compression context, reused across calls; NULL if out of memory. */
cairn_compressor *cairn_compressor_new(void);
void cairn_compressor_free(cairn_compressor *c);

/** Bytes out must have room for when compressing len bytes. */
size_t cairn_compress_bound(size_t len);

/**
 * Compress in into out (cairn_compress_bound(len) bytes).
 * @return the compressed size, or 0 if compression would not make it smaller.
 */
size_t cairn_compress(cairn_compressor *c, const uint8_t *in, size_t len, uint8_t *out);

/** The decompressed size a frame declares. @return CAIRN_OK or CAIRN_CORRUPT. */
int cairn_decompressed_size(const uint8_t *in, size_t len, size_t *out) __attribute__((warn_unused_result));

/** Decompress a whole frame into exactly out_len bytes. @return CAIRN_OK or CAIRN_CORRUPT. */
int cairn_decompress(cairn_compressor *c, const uint8_t *in, size_t len, uint8_t *out, size_t out_len)
    __attribute__((warn_unused_result));

#endif
