/* string_id.c -- checking string aggregate ids and hashing them to stream keys (see string_id.h). */
#include <sodium.h>

#include "string_id.h"

/* Valid UTF-8 (RFC 3629): no overlong forms, no surrogates, nothing above U+10FFFF. */
static int valid_utf8(const unsigned char *p, size_t len)
{
    size_t i = 0;
    while (i < len) {
        unsigned c = p[i];
        size_t n;
        unsigned lo = 0x80, hi = 0xbf;
        if (c < 0x80) { i++; continue; }
        if (c >= 0xc2 && c <= 0xdf) n = 1;
        else if (c >= 0xe0 && c <= 0xef) {
            n = 2;
            if (c == 0xe0) lo = 0xa0;
            if (c == 0xed) hi = 0x9f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            n = 3;
            if (c == 0xf0) lo = 0x90;
            if (c == 0xf4) hi = 0x8f;
        } else return 0;
        if (len - i - 1 < n) return 0;
        if (p[i + 1] < lo || p[i + 1] > hi) return 0;
        for (size_t k = 2; k <= n; k++)
            if (p[i + k] < 0x80 || p[i + k] > 0xbf) return 0;
        i += n + 1;
    }
    return 1;
}

const char *cairn_string_id_problem(const char *s, size_t len)
{
    if (!s || len == 0) return "is empty";
    if (len > CAIRN_STRING_ID_MAX) return "is longer than 255 bytes";
    if (!valid_utf8((const unsigned char *)s, len)) return "is not valid UTF-8";
    return NULL;
}

void cairn_string_id_key(const uint8_t *key, const char *s, size_t len, uint8_t out[16])
{
    static const char domain[] = "cairn string id";
    crypto_generichash_state st;
    crypto_generichash_init(&st, key, key ? 32 : 0, 16);
    crypto_generichash_update(&st, (const unsigned char *)domain, sizeof domain); /* with its NUL */
    crypto_generichash_update(&st, (const unsigned char *)s, len);
    crypto_generichash_final(&st, out, 16);
    out[6] = (uint8_t)((out[6] & 0x0f) | 0x80); /* version 8 */
    out[8] = (uint8_t)((out[8] & 0x3f) | 0x80); /* variant 10 */
}
