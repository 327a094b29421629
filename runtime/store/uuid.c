/* uuid.c -- parsing, formatting and generating UUIDs (RFC 4122 versions 4 and 5). */
#include <string.h>

#include "crypto.h"
#include "uuid.h"

/* Digit values with flags: DIGIT on every hex digit, UPPER on 'A'..'F';
 * 0 (no DIGIT) for anything else. Ids are parsed on every save and read, so
 * a pair is two look-ups and no test: the flags are checked once at the end. */
enum { DIGIT = 0x80, UPPER = 0x10 };
static const uint8_t HEX[256] = {
    ['0'] = DIGIT | 0, ['1'] = DIGIT | 1, ['2'] = DIGIT | 2, ['3'] = DIGIT | 3, ['4'] = DIGIT | 4,
    ['5'] = DIGIT | 5, ['6'] = DIGIT | 6, ['7'] = DIGIT | 7, ['8'] = DIGIT | 8, ['9'] = DIGIT | 9,
    ['a'] = DIGIT | 10, ['b'] = DIGIT | 11, ['c'] = DIGIT | 12, ['d'] = DIGIT | 13, ['e'] = DIGIT | 14,
    ['f'] = DIGIT | 15,
    ['A'] = DIGIT | UPPER | 10, ['B'] = DIGIT | UPPER | 11, ['C'] = DIGIT | UPPER | 12,
    ['D'] = DIGIT | UPPER | 13, ['E'] = DIGIT | UPPER | 14, ['F'] = DIGIT | UPPER | 15,
};


/* 1 canonical (lower case), 2 a UUID with upper-case digits, 0 not a UUID;
 * out (when given) gets the bytes, also of a string that turns out not to be one */
static int classify(const char *s, size_t len, uint8_t *out)
{
    if (len != CAIRN_UUID_STRLEN || s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-') return 0;
    const unsigned char *u = (const unsigned char *)s;
    uint8_t scratch[16], *o = out ? out : scratch;
    unsigned all = DIGIT, any = 0;
    /* written out: constant offsets, no loop (every save parses its streams' ids) */
#define PAIR_AT(i, at)                                                  \
    do {                                                                \
        unsigned hi = HEX[u[at]], lo = HEX[u[(at) + 1]];                \
        all &= hi & lo;                                                 \
        any |= hi | lo;                                                 \
        o[i] = (uint8_t)((hi & 15) << 4 | (lo & 15));                   \
    } while (0)
    PAIR_AT(0, 0); PAIR_AT(1, 2); PAIR_AT(2, 4); PAIR_AT(3, 6); PAIR_AT(4, 9); PAIR_AT(5, 11);
    PAIR_AT(6, 14); PAIR_AT(7, 16); PAIR_AT(8, 19); PAIR_AT(9, 21); PAIR_AT(10, 24); PAIR_AT(11, 26);
    PAIR_AT(12, 28); PAIR_AT(13, 30); PAIR_AT(14, 32); PAIR_AT(15, 34);
#undef PAIR_AT
    if (!(all & DIGIT)) return 0;
    return any & UPPER ? 2 : 1;
}

int cairn_uuid_parse(const char *s, size_t len, uint8_t out[16])
{
    return classify(s, len, out) ? 0 : -1;
}

int cairn_uuid_is_canonical(const char *s, size_t len)
{
    return classify(s, len, NULL) == 1;
}

int cairn_uuid_classify(const char *s, size_t len, uint8_t out[16])
{
    return classify(s, len, out);
}

#if defined(__SSE2__)
#include <emmintrin.h>

/* 16 bytes as 32 digits at once (SSE2 is part of x86-64): the nibbles
 * interleaved, then '0' + d, plus 'a' - '0' - 10 where d > 9. About a
 * quarter of the instructions of a table copy per byte. */
static void hex16(const uint8_t in[16], char out[32])
{
    const __m128i low = _mm_set1_epi8(0x0f), nine = _mm_set1_epi8(9);
    const __m128i zero = _mm_set1_epi8('0'), gap = _mm_set1_epi8('a' - '0' - 10);
    __m128i v = _mm_loadu_si128((const __m128i *)in);
    __m128i hi = _mm_and_si128(_mm_srli_epi16(v, 4), low), lo = _mm_and_si128(v, low);
    __m128i a = _mm_unpacklo_epi8(hi, lo), b = _mm_unpackhi_epi8(hi, lo); /* bytes 0-7, 8-15 */
    a = _mm_add_epi8(_mm_add_epi8(a, zero), _mm_and_si128(_mm_cmpgt_epi8(a, nine), gap));
    b = _mm_add_epi8(_mm_add_epi8(b, zero), _mm_and_si128(_mm_cmpgt_epi8(b, nine), gap));
    _mm_storeu_si128((__m128i *)out, a);
    _mm_storeu_si128((__m128i *)(out + 16), b);
}

/* the digits, then the dashes set after */
void cairn_uuid_format(const uint8_t in[16], char out[CAIRN_UUID_STRLEN])
{
    char d[32];
    hex16(in, d);
    memcpy(out, d, 8);
    memcpy(out + 9, d + 8, 4);
    memcpy(out + 14, d + 12, 4);
    memcpy(out + 19, d + 16, 4);
    memcpy(out + 24, d + 20, 12);
    out[8] = out[13] = out[18] = out[23] = '-';
}

void cairn_hex_format(const uint8_t *in, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    size_t i = 0;
    for (; i + 16 <= n; i += 16) hex16(in + i, out + 2 * i); /* a hash: two steps */
    for (; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
}
#else
/* The two digits of every byte value, so formatting (once per event a read
 * returns, once per head a save returns) is a copy per byte rather than two
 * look-ups and a branch. */
#define DIGITS2(h) h "0", h "1", h "2", h "3", h "4", h "5", h "6", h "7", \
                   h "8", h "9", h "a", h "b", h "c", h "d", h "e", h "f"
static const char PAIRS[256][3] = {
    DIGITS2("0"), DIGITS2("1"), DIGITS2("2"), DIGITS2("3"), DIGITS2("4"), DIGITS2("5"), DIGITS2("6"), DIGITS2("7"),
    DIGITS2("8"), DIGITS2("9"), DIGITS2("a"), DIGITS2("b"), DIGITS2("c"), DIGITS2("d"), DIGITS2("e"), DIGITS2("f"),
};
#undef DIGITS2

/* Offsets of the 16 byte pairs in the 36-character form. */
static const uint8_t PAIR[16] = { 0, 2, 4, 6, 9, 11, 14, 16, 19, 21, 24, 26, 28, 30, 32, 34 };

void cairn_hex_format(const uint8_t *in, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++) memcpy(out + 2 * i, PAIRS[in[i]], 2);
}

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
