/* compress.c -- see compress.h. */
#include <stdlib.h>
#include <zstd.h>

#include "cairn.h"
#include "compress.h"

/* Level 1: events are small and saves are latency-bound; higher levels cost
 * more time than the bytes they save. */
#define LEVEL 1

struct cairn_compressor {
    ZSTD_CCtx *cctx;
    ZSTD_DCtx *dctx;
};

cairn_compressor *cairn_compressor_new(void)
{
    cairn_compressor *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->cctx = ZSTD_createCCtx();
    c->dctx = ZSTD_createDCtx();
    if (!c->cctx || !c->dctx) { cairn_compressor_free(c); return NULL; }
    return c;
}

void cairn_compressor_free(cairn_compressor *c)
{
    if (!c) return;
    ZSTD_freeCCtx(c->cctx);
    ZSTD_freeDCtx(c->dctx);
    free(c);
}

size_t cairn_compress_bound(size_t len) { return ZSTD_compressBound(len); }

size_t cairn_compress(cairn_compressor *c, const uint8_t *in, size_t len, uint8_t *out)
{
    if (len < CAIRN_COMPRESS_MIN) return 0;
    size_t n = ZSTD_compressCCtx(c->cctx, out, ZSTD_compressBound(len), in, len, LEVEL);
    if (ZSTD_isError(n) || n >= len) return 0;
    return n;
}

int cairn_decompressed_size(const uint8_t *in, size_t len, size_t *out)
{
    unsigned long long n = ZSTD_getFrameContentSize(in, len);
    if (n == ZSTD_CONTENTSIZE_ERROR || n == ZSTD_CONTENTSIZE_UNKNOWN || n > CAIRN_DECOMPRESS_MAX)
        return CAIRN_CORRUPT;
    *out = (size_t)n;
    return CAIRN_OK;
}

int cairn_decompress(cairn_compressor *c, const uint8_t *in, size_t len, uint8_t *out, size_t out_len)
{
    size_t n = ZSTD_decompressDCtx(c->dctx, out, out_len, in, len);
    return ZSTD_isError(n) || n != out_len ? CAIRN_CORRUPT : CAIRN_OK;
}
