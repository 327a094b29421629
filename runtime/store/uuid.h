/* uuid.h -- UUIDs as 16 bytes and as canonical lower-case strings. No Lua. */
#ifndef CAIRN_UUID_H
#define CAIRN_UUID_H

#include <stddef.h>
#include <stdint.h>

#define CAIRN_UUID_STRLEN 36

/** Parse a canonical UUID string (36 chars, either case). 0 on success, -1 if not a UUID. */
int cairn_uuid_parse(const char *s, size_t len, uint8_t out[16]);

/** True if s is a canonical lower-case UUID string: the form stored as 16 bytes. */
int cairn_uuid_is_canonical(const char *s, size_t len);

/** Parse and classify in one pass: 1 a canonical lower-case UUID, 2 one with
 * upper-case digits, 0 not a UUID. out gets the 16 bytes when the result is
 * not 0 (its content is unspecified otherwise). */
int cairn_uuid_classify(const char *s, size_t len, uint8_t out[16]);

/** Format 16 bytes as 36 lower-case characters (no terminator written). */
void cairn_uuid_format(const uint8_t in[16], char out[CAIRN_UUID_STRLEN]);

/** Format n bytes as 2n lower-case hex digits (no terminator written); hashes
 * are not secret, so this is a table look-up per byte, not constant time. */
void cairn_hex_format(const uint8_t *in, size_t n, char *out);

/** A random (version 4) UUID from libsodium's CSPRNG. */
void cairn_uuid_v4(uint8_t out[16]);

/** A name-based (version 5, SHA-1) UUID. */
void cairn_uuid_v5(const uint8_t ns[16], const void *name, size_t len, uint8_t out[16]);

#endif
