/* uuid.c -- parsing, formatting and generating UUIDs (RFC 4122 versions 4 and 5). */
#include <string.h>

#include "crypto.h"
#include "uuid.h"

/* Digit values; 16 marks an upper-case digit, -1 anything else. Ids are
 * parsed on every save and read, so this is a table, not a chain of tests. */
static const int8_t HEX[256] = {
    ['0'] = 0, ['1'] = 1, ['2'] = 2, ['3'] = 3, ['4'] = 4, ['5'] = 5, ['6'] = 6, ['7'] = 7,
    ['8'] = 8, ['9'] = 9, ['a'] = 10, ['b'] = 11, ['c'] = 12, ['d'] = 13, ['e'] = 14, ['f'] = 15,
    ['A'] = 16 + 10, ['B'] = 16 + 11, ['C'] = 16 + 12, ['D'] = 16 + 13, ['E'] = 16 + 14, ['F'] = 16 + 15,
};
#define HEX_INVALID(c) (HEX[(unsigned char)(c)] == 0 && (c) != '0')

/* Offsets of the 16 byte pairs in the 36-character form. */
static const uint8_t PAIR[16] = { 0, 2, 4, 6, 9, 11, 14, 16, 19, 21, 24, 26, 28, 30, 32, 34 };

/* 1 canonical (lower case), 2 a UUID with upper-case digits, 0 not a UUID */
static int classify(const char *s, size_t len, uint8_t *out)
{
    if (len != CAIRN_UUID_STRLEN || s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-') return 0;
    int upper = 0;
    for (int i = 0; i < 16; i++) {
        char a = s[PAIR[i]], b = s[PAIR[i] + 1];
        if (HEX_INVALID(a) || HEX_INVALID(b)) return 0;
        int hi = HEX[(unsigned char)a], lo = HEX[(unsigned char)b];
        upper |= (hi | lo) & 16;
        if (out) out[i] = (uint8_t)((hi & 15) << 4 | (lo & 15));
    }
    return upper ? 2 : 1;
}

int cairn_uuid_parse(const char *s, size_t len, uint8_t out[16])
{
    return classify(s, len, out) ? 0 : -1;
}

int cairn_uuid_is_canonical(const char *s, size_t len)
{
    return classify(s, len, NULL) == 1;
}

#if defined(__SSE2__)
#include <emmintrin.h>

/* All 32 digits at once (SSE2 is part of x86-64): the nibbles interleaved,
 * then '0' + d, plus 'a' - '0' - 10 where d > 9; the dashes set after.
 * About a quarter of the instructions of a table copy per byte. */
void cairn_uuid_format(const uint8_t in[16], char out[CAIRN_UUID_STRLEN])
{
    const __m128i low = _mm_set1_epi8(0x0f), nine = _mm_set1_epi8(9);
    const __m128i zero = _mm_set1_epi8('0'), gap = _mm_set1_epi8('a' - '0' - 10);
    __m128i v = _mm_loadu_si128((const __m128i *)in);
    __m128i hi = _mm_and_si128(_mm_srli_epi16(v, 4), low), lo = _mm_and_si128(v, low);
    __m128i a = _mm_unpacklo_epi8(hi, lo), b = _mm_unpackhi_epi8(hi, lo); /* bytes 0-7, 8-15 */
    a = _mm_add_epi8(_mm_add_epi8(a, zero), _mm_and_si128(_mm_cmpgt_epi8(a, nine), gap));
    b = _mm_add_epi8(_mm_add_epi8(b, zero), _mm_and_si128(_mm_cmpgt_epi8(b, nine), gap));
    char da[16], db[16];
    _mm_storeu_si128((__m128i *)da, a);
    _mm_storeu_si128((__m128i *)db, b);
    memcpy(out, da, 8);
    memcpy(out + 9, da + 8, 4);
    memcpy(out + 14, da + 12, 4);
    memcpy(out + 19, db, 4);
    memcpy(out + 24, db + 4, 12);
    out[8] = out[13] = out[18] = out[23] = '-';
}
#else
/* The two digits of every byte value, so formatting (once per event a read
 * returns) is a copy per byte rather than two look-ups and a branch. */
#define DIGITS2(h) h "0", h "1", h "2", h "3", h "4", h "5", h "6", h "7", \
                   h "8", h "9", h "a", h "b", h "c", h "d", h "e", h "f"
static const char PAIRS[256][3] = {
    DIGITS2("0"), DIGITS2("1"), DIGITS2("2"), DIGITS2("3"), DIGITS2("4"), DIGITS2("5"), DIGITS2("6"), DIGITS2("7"),
    DIGITS2("8"), DIGITS2("9"), DIGITS2("a"), DIGITS2("b"), DIGITS2("c"), DIGITS2("d"), DIGITS2("e"), DIGITS2("f"),
};
#undef DIGITS2

void cairn_uuid_format(const uint8_t in[16], char out[CAIRN_UUID_STRLEN])
{
    for (size_t i = 0; i < 16; i++) memcpy(out + PAIR[i], PAIRS[in[i]], 2);
    out[8] = out[13] = out[18] = out[23] = '-';
}
#endif

static void set_version(uint8_t u[16], int version)
{
    u[6] = (uint8_t)((u[6] & 0x0f) | (version << 4));
    u[8] = (uint8_t)((u[8] & 0x3f) | 0x80); /* RFC 4122 variant */
}

void cairn_uuid_v4(uint8_t out[16])
{
    cairn_random_fill(out, 16);
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
