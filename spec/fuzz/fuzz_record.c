/*
 * fuzz_record.c -- libFuzzer target for the stored-record parser (record.c,
 * formats 2 and 3) and what a reader does next: check the hash, open a sealed
 * body, decompress a compressed one, split off the metadata, decode the
 * msgpack into the event's fields.
 * A record that parses must lie inside the buffer and its header must write
 * back to the same bytes; anything else must be CAIRN_CORRUPT, never a crash.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cairn.h"
#include "compress.h"
#include "crypto.h"
#include "fuzz_lua.h"
#include "lua_codec.h"
#include "record.h"

#define CHECK(expr) do { if (!(expr)) { fprintf(stderr, "fuzz_record: %s\n", #expr); abort(); } } while (0)

static const uint8_t KEY[CAIRN_KEY_BYTES] = { 1, 2, 3, 4, 5, 6, 7, 8 };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cairn_record rec;
    memset(&rec, 0, sizeof rec);
    int rc = cairn_record_parse(data, size, &rec);
    CHECK(rc == CAIRN_OK || rc == CAIRN_CORRUPT);
    if (rc != CAIRN_OK) return 0;
    size_t header = rec.header_len;
    CHECK(rec.format == CAIRN_RECORD_FORMAT || rec.format == CAIRN_RECORD_FORMAT_V2);
    CHECK((const uint8_t *)rec.topic + rec.topic_len == data + header && rec.topic_len > 0);
    CHECK(cairn_record_header(&rec) == data);
    CHECK(rec.hash == data + header && rec.payload == data + header + CAIRN_RECORD_HASH);
    CHECK(rec.payload + rec.payload_len == data + size);
    uint8_t *copy = malloc(header);
    CHECK(copy != NULL);
    cairn_record_write_header(&rec, rec.flags, copy);
    CHECK(memcmp(copy, data, header) == 0);
    free(copy);
    uint8_t zero[CAIRN_RECORD_HASH] = { 0 }, hash[CAIRN_RECORD_HASH];
    cairn_record_hash(zero, data, size, hash);

    const uint8_t *payload = rec.payload;
    size_t len = rec.payload_len;
    uint8_t *opened = NULL, *inflated = NULL;
    if (rec.flags & CAIRN_RECORD_ENCRYPTED) {
        opened = malloc(len - CAIRN_SEAL_OVERHEAD + 1);
        CHECK(opened != NULL);
        if (cairn_open(KEY, data, header, payload, len, opened) != 0) goto done; /* forged: refused */
        payload = opened;
        len -= CAIRN_SEAL_OVERHEAD;
    }
    if (rec.flags & CAIRN_RECORD_COMPRESSED) {
        size_t n;
        if (cairn_decompressed_size(payload, len, &n) != CAIRN_OK || n > ((size_t)1 << 24)) goto done;
        cairn_compressor *z = cairn_compressor_new();
        inflated = malloc(n + 1);
        CHECK(z != NULL && inflated != NULL);
        rc = cairn_decompress(z, payload, len, inflated, n);
        cairn_compressor_free(z);
        CHECK(rc == CAIRN_OK || rc == CAIRN_CORRUPT);
        if (rc != CAIRN_OK) goto done;
        payload = inflated;
        len = n;
    }
    if (cairn_record_split_body(&rec, payload, len) != CAIRN_OK) goto done; /* bad metadata: refused */
    CHECK(rec.payload + rec.payload_len == payload + len);
    payload = rec.payload;
    len = rec.payload_len;
    lua_State *L = fuzz_lua_open();
    lua_newtable(L);
    rc = cairn_codec_decode_into(L, payload, len, -1);
    CHECK(rc == CAIRN_OK || rc == CAIRN_CORRUPT);
    lua_close(L);
done:
    free(opened);
    free(inflated);
    return 0;
}
