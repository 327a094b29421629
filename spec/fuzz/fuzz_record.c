/*
 * fuzz_record.c -- libFuzzer target for the stored-record parser (record.c)
 * and what a reader does next: decode the payload into the event's fields.
 * A record that parses must lie inside the buffer and write back to the
 * same bytes; anything else must be CAIRN_CORRUPT, never a crash.
 * (When records gain compression and encryption, their opening goes here.)
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cairn.h"
#include "fuzz_lua.h"
#include "lua_codec.h"
#include "record.h"

#define CHECK(expr) do { if (!(expr)) { fprintf(stderr, "fuzz_record: %s\n", #expr); abort(); } } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cairn_record rec;
    memset(&rec, 0, sizeof rec);
    int rc = cairn_record_parse(data, size, &rec);
    CHECK(rc == CAIRN_OK || rc == CAIRN_CORRUPT);
    if (rc != CAIRN_OK) return 0;
    CHECK((const uint8_t *)rec.topic >= data && rec.topic_len > 0);
    CHECK((const uint8_t *)rec.topic + rec.topic_len <= data + size);
    CHECK(rec.payload + rec.payload_len == data + size);
    size_t n = cairn_record_size(&rec);
    CHECK(n == size);
    uint8_t *copy = malloc(n);
    CHECK(copy != NULL);
    cairn_record_write(&rec, copy);
    CHECK(memcmp(copy, data, n) == 0);
    free(copy);

    lua_State *L = fuzz_lua_open();
    lua_newtable(L);
    rc = cairn_codec_decode_into(L, rec.payload, rec.payload_len, -1);
    CHECK(rc == CAIRN_OK || rc == CAIRN_CORRUPT);
    lua_close(L);
    return 0;
}
