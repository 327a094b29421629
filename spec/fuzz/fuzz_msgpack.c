/*
 * fuzz_msgpack.c -- libFuzzer target for the msgpack decoder (lua_codec.c),
 * which reads every stored payload. Any input must decode or be refused with
 * CAIRN_CORRUPT; what decodes must encode, and the encoding must be a fixed
 * point (decode then encode gives the same bytes), since equal values must
 * always encode to equal bytes.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cairn.h"
#include "fuzz_lua.h"
#include "lua_codec.h"

#define CHECK(expr) do { if (!(expr)) { fprintf(stderr, "fuzz_msgpack: %s\n", #expr); abort(); } } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    lua_State *L = fuzz_lua_open();
    cairn_codec *c = cairn_codec_get(L);
    char err[512];
    const uint8_t *out;
    size_t len;

    /* fields of an event, as replay reads them */
    lua_newtable(L);
    int rc = cairn_codec_decode_into(L, data, size, -1);
    CHECK(rc == CAIRN_OK || rc == CAIRN_CORRUPT);
    lua_settop(L, 0);

    rc = cairn_codec_decode(L, data, size);
    CHECK(rc == CAIRN_OK || rc == CAIRN_CORRUPT);
    if (rc == CAIRN_OK) {
        rc = cairn_codec_encode(L, c, -1, "value", &out, &len, err, sizeof err);
        if (rc != CAIRN_OK) fprintf(stderr, "fuzz_msgpack: a decoded value does not encode: %s\n", err);
        CHECK(rc == CAIRN_OK);
        uint8_t *first = malloc(len ? len : 1);
        CHECK(first != NULL);
        memcpy(first, out, len);
        size_t first_len = len;
        lua_settop(L, 0);
        CHECK(cairn_codec_decode(L, first, first_len) == CAIRN_OK);
        CHECK(cairn_codec_encode(L, c, -1, "value", &out, &len, err, sizeof err) == CAIRN_OK);
        CHECK(len == first_len && memcmp(out, first, len) == 0);
        free(first);
    }
    lua_close(L);
    return 0;
}
