/*
 * common.h -- what game_server.c and replay.c share: opening a runtime on
 * the game's store, and building msgpack arguments.
 */
#ifndef GAME_COMMON_H
#define GAME_COMMON_H

#include <cairn.h>
#include <msgpack.h>
#include <stdint.h>

/* Where game.lua is: lua_path if given, else the program's directory or an
 * examples/game_server directory above it (in-tree builds). Then open a
 * runtime on lmdb:STORE_DIR with CAIRN_SYNC=sync and load game.Game.
 * Prints the failure and returns NULL. */
cairn_runtime *game_open(const char *argv0, const char *lua_path, const char *store_dir, const char *sync);

/* msgpack arguments for cairn_call */
typedef struct {
    msgpack_sbuffer sb;
    msgpack_packer pk;
} game_args;

void args_begin(game_args *a, uint32_t n);
void args_uuid(game_args *a, const uint8_t id[16]);   /* ext 1, as cairn encodes UUIDs */
void args_str(game_args *a, const char *s);
void args_int(game_args *a, int64_t v);
void args_end(game_args *a);                            /* frees the buffer */

/* Decode a cairn_call result (a msgpack array); the caller destroys u. */
int result_decode(const cairn_buf *b, msgpack_unpacked *u);

/* The value of key in a msgpack map, or NULL. */
const msgpack_object *map_get(const msgpack_object *map, const char *key);

#endif
