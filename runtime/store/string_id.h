/*
 * string_id.h -- string aggregate ids (`cairn.aggregate(name, { id = "string" })`).
 * No Lua, no engine.
 *
 * Every layer below the binding keys a stream by 16 bytes. A string id's
 * stream key is a 16-byte BLAKE2b hash of the string marked as a version 8
 * UUID (RFC 9562: version nibble 8, variant bits 10), so it is never a random
 * (version 4) id; in an encrypted store the hash is keyed (mapper_keys.c), so
 * the stored key does not let anyone test guesses of a natural key. The
 * string itself travels in each record's sealed body (record.h,
 * CAIRN_RECORD_STRING_ID). Text that parses as a UUID is that UUID, not a
 * string id: one namespace, as in the Python library.
 */
#ifndef CAIRN_STRING_ID_H
#define CAIRN_STRING_ID_H

#include <stddef.h>
#include <stdint.h>

#define CAIRN_STRING_ID_MAX 255

/**
 * Check a string id: 1 to CAIRN_STRING_ID_MAX bytes of valid UTF-8.
 * @return NULL when it is one, else what is wrong with it ("is empty", ...).
 */
const char *cairn_string_id_problem(const char *s, size_t len);

/** The stream key of a (checked) string id: keyed with key (32 bytes) when
 *  key is not NULL. */
void cairn_string_id_key(const uint8_t *key, const char *s, size_t len, uint8_t out[16]);

#endif
