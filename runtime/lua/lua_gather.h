/*
 * lua_gather.h -- what a read returns, copied out of the store into C memory
 * owned by a Lua userdata.
 *
 * The binding's reads follow one order (DESIGN.md, boundary rules): create
 * the gather userdata (with its __gc) BEFORE the read starts, copy every
 * record into it while the read is open -- C calls only, nothing that raises
 * or runs Lua -- end the read, and only then push Lua values from the copy.
 * A Lua error while pushing (out of memory, a malformed payload) then leaks
 * nothing and holds no transaction or lock: the userdata's __gc frees the copy.
 */
#ifndef CAIRN_LUA_GATHER_H
#define CAIRN_LUA_GATHER_H

#include <lua.h>
#include <stddef.h>
#include <stdint.h>

#include "record.h"

/** One gathered record; the byte fields are offsets into the gather's bytes. */
typedef struct cairn_gathered {
    uint64_t notification_id, version;
    int64_t timestamp_us;
    uint8_t stream_id[16];
    uint8_t event_id[16];
    uint8_t hash[CAIRN_RECORD_HASH];
    unsigned class_version;
    int forgotten, has_hash, has_payload;
    size_t topic, topic_len;        /* also a view entry's key */
    size_t payload, payload_len;    /* also a view entry's value */
    size_t metadata, metadata_len;
    size_t name, name_len;          /* the string id (name_len 0: a UUID id, or forgotten) */
} cairn_gathered;

typedef struct cairn_gather {
    cairn_gathered *recs;
    size_t n, cap;
    char *bytes;
    size_t len, bytes_cap;
} cairn_gather;

/** Push a new, empty gather userdata (raises only for lack of memory, before
 *  any read starts). */
cairn_gather *cairn_gather_new(lua_State *L);

/** Copy a record (topic, payload, metadata, hash) into g. Raises nothing.
 *  @return CAIRN_OK or ENOMEM. */
int cairn_gather_record(cairn_gather *g, const cairn_record *rec);

/** Copy a key and a value (a view entry) into g. @return CAIRN_OK or ENOMEM. */
int cairn_gather_entry(cairn_gather *g, const char *key, size_t key_len, const char *value, size_t value_len);

/** The bytes at an offset of g. */
static inline const char *cairn_gather_bytes(const cairn_gather *g, size_t off) { return g->bytes + off; }

/** Free what g holds now (its __gc does the same, later, if a raise comes first). */
void cairn_gather_free(cairn_gather *g);

/** Push a new gather userdata that takes over the memory kept in *spare
 *  (emptied), so a store's reads reuse one buffer instead of growing a new one. */
cairn_gather *cairn_gather_new_from(lua_State *L, cairn_gather *spare);

/** Done with g: keep its memory in *spare for the next read when *spare is
 *  empty and the memory is not large, else free it. */
void cairn_gather_release(cairn_gather *g, cairn_gather *spare);

/** Register the gather metatable (called by luaopen_cairn_core). */
void cairn_lua_gather_init(lua_State *L);

#endif
