/* uuid.c -- parsing, formatting and generating UUIDs (RFC 4122 versions 4 and 5). */
#include <sodium.h>
#include <string.h>

#include "uuid.h"

static int hexval(int c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static int is_dash_position(size_t i)
{
    return i == 8 || i == 13 || i == 18 || i == 23;
}

int cairn_uuid_parse(const char *s, size_t len, uint8_t out[16])
{
    if (len != CAIRN_UUID_STRLEN) return -1;
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        if (is_dash_position(i)) {
            if (s[i] != '-') return -1;
            continue;
        }
        int hi = hexval((unsigned char)s[i]), lo = hexval((unsigned char)s[i + 1]);
        if (hi < 0 || lo < 0 || is_dash_position(i + 1)) return -1;
        out[n++] = (uint8_t)(hi << 4 | lo);
        i++;
    }
    return 0;
}

int cairn_uuid_is_canonical(const char *s, size_t len)
{
    if (len != CAIRN_UUID_STRLEN) return 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (is_dash_position(i)) {
            if (c != '-') return 0;
        } else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
            return 0;
        }
    }
    return 1;
}

void cairn_uuid_format(const uint8_t in[16], char out[CAIRN_UUID_STRLEN])
{
    static const char digits[] = "0123456789abcdef";
    size_t o = 0;
    for (size_t i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10) out[o++] = '-';
        out[o++] = digits[in[i] >> 4];
        out[o++] = digits[in[i] & 15];
    }
}

static void set_version(uint8_t u[16], int version)
{
    u[6] = (uint8_t)((u[6] & 0x0f) | (version << 4));
    u[8] = (uint8_t)((u[8] & 0x3f) | 0x80); /* RFC 4122 variant */
}

void cairn_uuid_v4(uint8_t out[16])
{
    randombytes_buf(out, 16);
    set_version(out, 4);
}

/* SHA-1 is needed only for version 5 UUIDs (libsodium has no SHA-1). */
typedef struct {
    uint32_t h[5];
    uint64_t length;
    uint8_t block[64];
    size_t used;
} sha1_ctx;

static uint32_t rol(uint32_t x, int n) { return (x << n) | (x >> (32 - n)); }

static void sha1_block(sha1_ctx *c, const uint8_t *p)
{
    uint32_t w[80];
    for (int i = 0; i < 16; i++)
        w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 |
               (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
    for (int i = 16; i < 80; i++) w[i] = rol(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
    uint32_t a = c->h[0], b = c->h[1], d = c->h[3], e = c->h[4], cc = c->h[2];
    for (int i = 0; i < 80; i++) {
        uint32_t f, k;
        if (i < 20) { f = (b & cc) | (~b & d); k = 0x5a827999; }
        else if (i < 40) { f = b ^ cc ^ d; k = 0x6ed9eba1; }
        else if (i < 60) { f = (b & cc) | (b & d) | (cc & d); k = 0x8f1bbcdc; }
        else { f = b ^ cc ^ d; k = 0xca62c1d6; }
        uint32_t t = rol(a, 5) + f + e + k + w[i];
        e = d; d = cc; cc = rol(b, 30); b = a; a = t;
    }
    c->h[0] += a; c->h[1] += b; c->h[2] += cc; c->h[3] += d; c->h[4] += e;
}

static void sha1_update(sha1_ctx *c, const uint8_t *p, size_t n)
{
    c->length += n;
    while (n > 0) {
        size_t take = 64 - c->used < n ? 64 - c->used : n;
        memcpy(c->block + c->used, p, take);
        c->used += take; p += take; n -= take;
        if (c->used == 64) { sha1_block(c, c->block); c->used = 0; }
    }
}

static void sha1_final(sha1_ctx *c, uint8_t out[20])
{
    uint64_t bits = c->length * 8;
    uint8_t pad = 0x80, zero = 0, len[8];
    sha1_update(c, &pad, 1);
    while (c->used != 56) sha1_update(c, &zero, 1);
    for (int i = 0; i < 8; i++) len[i] = (uint8_t)(bits >> (56 - 8 * i));
    sha1_update(c, len, 8);
    for (int i = 0; i < 5; i++) {
        out[4 * i] = (uint8_t)(c->h[i] >> 24); out[4 * i + 1] = (uint8_t)(c->h[i] >> 16);
        out[4 * i + 2] = (uint8_t)(c->h[i] >> 8); out[4 * i + 3] = (uint8_t)c->h[i];
    }
}

void cairn_uuid_v5(const uint8_t ns[16], const void *name, size_t len, uint8_t out[16])
{
    sha1_ctx c = { { 0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476, 0xc3d2e1f0 }, 0, { 0 }, 0 };
    uint8_t digest[20];
    sha1_update(&c, ns, 16);
    sha1_update(&c, name, len);
    sha1_final(&c, digest);
    memcpy(out, digest, 16);
    set_version(out, 5);
}
