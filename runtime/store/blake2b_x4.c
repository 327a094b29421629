/*
 * blake2b_x4.c -- see blake2b_x4.h. BLAKE2b (RFC 7693) with the four
 * messages side by side in the 64-bit lanes of AVX2 registers: word i of
 * the state is one register holding word i of each message's state, so one
 * instruction does the same step for all four. Compiled for AVX2 on x86-64
 * only; cairn_blake2b_x4_available() says whether this CPU runs it.
 */
#include <string.h>

#include "blake2b_x4.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

static const uint64_t IV[8] = {
    0x6a09e667f3bcc908ULL, 0xbb67ae8584caa73bULL, 0x3c6ef372fe94f82bULL, 0xa54ff53a5f1d36f1ULL,
    0x510e527fade682d1ULL, 0x9b05688c2b3e6c1fULL, 0x1f83d9abfb41bd6bULL, 0x5be0cd19137e2179ULL,
};

static const uint8_t SIGMA[12][16] = {
    { 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15 },
    { 14, 10, 4, 8, 9, 15, 13, 6, 1, 12, 0, 2, 11, 7, 5, 3 },
    { 11, 8, 12, 0, 5, 2, 15, 13, 10, 14, 3, 6, 7, 1, 9, 4 },
    { 7, 9, 3, 1, 13, 12, 11, 14, 2, 6, 5, 10, 4, 0, 15, 8 },
    { 9, 0, 5, 7, 2, 4, 10, 15, 14, 1, 11, 12, 6, 8, 3, 13 },
    { 2, 12, 6, 10, 0, 11, 8, 3, 4, 13, 7, 5, 15, 14, 1, 9 },
    { 12, 5, 1, 15, 14, 13, 4, 10, 0, 7, 6, 3, 9, 2, 8, 11 },
    { 13, 11, 7, 14, 12, 1, 3, 9, 5, 0, 15, 4, 8, 6, 2, 10 },
    { 6, 15, 14, 9, 11, 3, 0, 8, 12, 2, 13, 7, 1, 4, 10, 5 },
    { 10, 2, 8, 4, 7, 6, 1, 5, 15, 11, 9, 14, 3, 12, 13, 0 },
    { 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15 },
    { 14, 10, 4, 8, 9, 15, 13, 6, 1, 12, 0, 2, 11, 7, 5, 3 },
};

#define AVX2 __attribute__((target("avx2")))

AVX2 static inline __m256i rotr32(__m256i x) { return _mm256_shuffle_epi32(x, _MM_SHUFFLE(2, 3, 0, 1)); }
AVX2 static inline __m256i rotr24(__m256i x)
{
    const __m256i m = _mm256_setr_epi8(3, 4, 5, 6, 7, 0, 1, 2, 11, 12, 13, 14, 15, 8, 9, 10, 3, 4, 5, 6, 7, 0, 1, 2,
                                       11, 12, 13, 14, 15, 8, 9, 10);
    return _mm256_shuffle_epi8(x, m);
}
AVX2 static inline __m256i rotr16(__m256i x)
{
    const __m256i m = _mm256_setr_epi8(2, 3, 4, 5, 6, 7, 0, 1, 10, 11, 12, 13, 14, 15, 8, 9, 2, 3, 4, 5, 6, 7, 0, 1,
                                       10, 11, 12, 13, 14, 15, 8, 9);
    return _mm256_shuffle_epi8(x, m);
}
AVX2 static inline __m256i rotr63(__m256i x) { return _mm256_or_si256(_mm256_srli_epi64(x, 63), _mm256_add_epi64(x, x)); }

#define G(a, b, c, d, x, y)                                          \
    do {                                                             \
        v[a] = _mm256_add_epi64(_mm256_add_epi64(v[a], v[b]), x);    \
        v[d] = rotr32(_mm256_xor_si256(v[d], v[a]));                 \
        v[c] = _mm256_add_epi64(v[c], v[d]);                         \
        v[b] = rotr24(_mm256_xor_si256(v[b], v[c]));                 \
        v[a] = _mm256_add_epi64(_mm256_add_epi64(v[a], v[b]), y);    \
        v[d] = rotr16(_mm256_xor_si256(v[d], v[a]));                 \
        v[c] = _mm256_add_epi64(v[c], v[d]);                         \
        v[b] = rotr63(_mm256_xor_si256(v[b], v[c]));                 \
    } while (0)

AVX2 void cairn_blake2b_x4(const uint64_t block[4][16], const size_t len[4], uint8_t out[4][32])
{
    __m256i m[16];
    for (int i = 0; i < 16; i++)
        m[i] = _mm256_set_epi64x((long long)block[3][i], (long long)block[2][i], (long long)block[1][i],
                                 (long long)block[0][i]);
    /* h: the IV with the parameter block (32-byte digest, no key, fanout 1, depth 1) */
    __m256i h[8], v[16];
    for (int i = 0; i < 8; i++) h[i] = _mm256_set1_epi64x((long long)(IV[i] ^ (i == 0 ? 0x01010020ULL : 0)));
    for (int i = 0; i < 8; i++) {
        v[i] = h[i];
        v[i + 8] = _mm256_set1_epi64x((long long)IV[i]);
    }
    /* one block, the last: counter = the length, final flag set */
    v[12] = _mm256_xor_si256(v[12], _mm256_set_epi64x((long long)len[3], (long long)len[2], (long long)len[1],
                                                      (long long)len[0]));
    v[14] = _mm256_xor_si256(v[14], _mm256_set1_epi64x(-1));
    /* unrolled: the message words each step takes are then fixed operands */
#pragma GCC unroll 12
    for (int r = 0; r < 12; r++) {
        const uint8_t *s = SIGMA[r];
        G(0, 4, 8, 12, m[s[0]], m[s[1]]);
        G(1, 5, 9, 13, m[s[2]], m[s[3]]);
        G(2, 6, 10, 14, m[s[4]], m[s[5]]);
        G(3, 7, 11, 15, m[s[6]], m[s[7]]);
        G(0, 5, 10, 15, m[s[8]], m[s[9]]);
        G(1, 6, 11, 12, m[s[10]], m[s[11]]);
        G(2, 7, 8, 13, m[s[12]], m[s[13]]);
        G(3, 4, 9, 14, m[s[14]], m[s[15]]);
    }
    /* the digest: the first four words of h ^ v[i] ^ v[i + 8], per lane */
    uint64_t words[4][4];
    for (int i = 0; i < 4; i++) {
        __m256i w = _mm256_xor_si256(h[i], _mm256_xor_si256(v[i], v[i + 8]));
        uint64_t lane[4];
        _mm256_storeu_si256((__m256i *)lane, w);
        for (int k = 0; k < 4; k++) words[k][i] = lane[k];
    }
    for (int k = 0; k < 4; k++) memcpy(out[k], words[k], 32); /* little-endian words: the digest bytes */
}

int cairn_blake2b_x4_available(void)
{
    static int known = -1; /* any thread may find it out first: each finds the same */
    int k = __atomic_load_n(&known, __ATOMIC_RELAXED);
    if (k < 0) {
        __builtin_cpu_init();
        k = __builtin_cpu_supports("avx2") ? 1 : 0;
        __atomic_store_n(&known, k, __ATOMIC_RELAXED);
    }
    return k;
}

#else

void cairn_blake2b_x4(const uint64_t block[4][16], const size_t len[4], uint8_t out[4][32])
{
    (void)block;
    (void)len;
    (void)out;
}

int cairn_blake2b_x4_available(void) { return 0; }

#endif
