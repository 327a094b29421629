/*
 * lua_codec.h -- Lua values <-> msgpack bytes, by API.md §2's value rules.
 *
 * Encoding is deterministic (map keys sorted: numbers, then strings bytewise)
 * so the same fields always give the same bytes. Integral numbers up to 2^53
 * are msgpack integers, other numbers float64; canonical lower-case UUID
 * strings are ext 1 (16 bytes); cairn.time values are ext 2 (int64 µs).
 * Neither direction raises a Lua error: failures come back as codes.
 */
#ifndef CAIRN_LUA_CODEC_H
#define CAIRN_LUA_CODEC_H

#include <lua.h>
#include <stddef.h>
#include <stdint.h>

#define CAIRN_TIME_MT "cairn.time"
#define CAIRN_EXT_UUID 1
#define CAIRN_EXT_TIME 2

typedef struct cairn_codec cairn_codec;

/** The codec context of this Lua state (created on first use, freed with the state). */
cairn_codec *cairn_codec_get(lua_State *L);

/**
 * Encode the value at idx. On success *out and *len point into the context's
 * buffer, valid until the next encode. On failure (CAIRN_SCHEMA) err names the
 * offending path, starting with `root`.
 */
int cairn_codec_encode(lua_State *L, cairn_codec *c, int idx, const char *root,
                       const uint8_t **out, size_t *len, char *err, size_t errlen);

/** Decode one value and push it. CAIRN_CORRUPT (nothing pushed) if malformed. */
int cairn_codec_decode(lua_State *L, const uint8_t *p, size_t len);

/** Decode a msgpack map into the table at idx (fields of an event). */
int cairn_codec_decode_into(lua_State *L, const uint8_t *p, size_t len, int idx);

/** Field names seen lately in a batch of events, each kept in a stack slot so
 *  that the next event with the same name pushes that string rather than
 *  interning its bytes again. The names point into bytes that must stay put
 *  while the cache is in use (a read's gathered records). */
#define CAIRN_CODEC_NAMES_N 8
typedef struct cairn_codec_names {
    int base; /* stack index of the first of CAIRN_CODEC_NAMES_N slots */
    const char *name[CAIRN_CODEC_NAMES_N];
    size_t len[CAIRN_CODEC_NAMES_N];
    int next;
} cairn_codec_names;

/** Push the CAIRN_CODEC_NAMES_N empty slots of a names cache. */
void cairn_codec_names_push(lua_State *L, cairn_codec_names *c);

/** cairn_codec_decode_into, taking top-level field names from the cache c. */
int cairn_codec_decode_fields(lua_State *L, const uint8_t *p, size_t len, int idx, cairn_codec_names *c);

/** Where a replay puts a field's value: its slot (0-based) among the
 *  fields its event class takes, or -1 to drop it; `at` is the field's
 *  position in the stored map (a hint: the same for every event of a class). */
typedef int (*cairn_codec_slot_fn)(void *ctx, uint32_t at, const char *name, size_t len);

/** The free stack slots cairn_codec_decode_slots needs (a time value takes 3). */
#define CAIRN_CODEC_SLOTS_STACK 3

/**
 * Decode an event's msgpack map (the fields; an empty array is no fields)
 * into the array at dest: the value of the field `slot_of` puts in slot k
 * goes to dest[base + k]. CAIRN_CORRUPT (nothing left pushed) if malformed;
 * CAIRN_END if a key is not a string (the caller then builds a table).
 * The caller makes sure of CAIRN_CODEC_SLOTS_STACK free stack slots.
 */
int cairn_codec_decode_slots(lua_State *L, const uint8_t *p, size_t len, int dest, int base,
                             cairn_codec_slot_fn slot_of, void *ctx);

/** Push a cairn.time value for µs since the epoch. */
void cairn_codec_push_time(lua_State *L, int64_t us);

#endif
