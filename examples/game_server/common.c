/* common.c -- see common.h. */
#define _GNU_SOURCE
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common.h"

static int has_game(const char *dir)
{
    char probe[PATH_MAX + 64];
    struct stat st;
    snprintf(probe, sizeof probe, "%s/game.lua", dir);
    return stat(probe, &st) == 0;
}

/* The program's directory, or DIR/examples/game_server for an ancestor DIR. */
static int find_game_dir(const char *argv0, char *out, size_t len)
{
    char buf[PATH_MAX];
    if (!realpath(argv0, buf) && !realpath("/proc/self/exe", buf)) return -1;
    for (int up = 0; up < 4; up++) {
        char *slash = strrchr(buf, '/');
        if (!slash) return -1;
        *slash = '\0';
        char dir[PATH_MAX];
        snprintf(dir, sizeof dir, "%.*s", PATH_MAX - 32, buf);
        if (up == 0 && has_game(dir)) return snprintf(out, len, "%s", dir) >= (int)len ? -1 : 0;
        snprintf(dir, sizeof dir, "%.*s/examples/game_server", PATH_MAX - 32, buf);
        if (has_game(dir)) return snprintf(out, len, "%s", dir) >= (int)len ? -1 : 0;
    }
    return -1;
}

cairn_runtime *game_open(const char *argv0, const char *lua_path, const char *store_dir, const char *sync)
{
    char path[PATH_MAX + 16], dir[PATH_MAX];
    if (!lua_path) {
        if (find_game_dir(argv0, dir, sizeof dir) != 0) {
            fprintf(stderr, "cannot find game.lua near %s: give --lua-path 'DIR/?.lua'\n", argv0);
            return NULL;
        }
        snprintf(path, sizeof path, "%s/?.lua", dir);
        lua_path = path;
    }
    char store[PATH_MAX + 8], sync_setting[64];
    snprintf(store, sizeof store, "lmdb:%s", store_dir);
    snprintf(sync_setting, sizeof sync_setting, "CAIRN_SYNC=%s", sync);
    const char *const env[] = { sync_setting, NULL };
    cairn_runtime_options opt = { .lua_path = lua_path, .store = store, .env = env };
    cairn_runtime *rt;
    int rc = cairn_runtime_open(&opt, &rt);
    if (rc != CAIRN_OK) {
        fprintf(stderr, "%s\n", cairn_errmsg(NULL));
        return NULL;
    }
    rc = cairn_runtime_load(rt, "game", "Game");
    if (rc != CAIRN_OK) {
        fprintf(stderr, "%s (%s)\n", cairn_errmsg(rt), cairn_strerror(rc));
        cairn_runtime_close(rt);
        return NULL;
    }
    return rt;
}

void args_begin(game_args *a, uint32_t n)
{
    msgpack_sbuffer_init(&a->sb);
    msgpack_packer_init(&a->pk, &a->sb, msgpack_sbuffer_write);
    msgpack_pack_array(&a->pk, n);
}

void args_uuid(game_args *a, const uint8_t id[16])
{
    msgpack_pack_ext(&a->pk, 16, 1);
    msgpack_pack_ext_body(&a->pk, id, 16);
}

void args_str(game_args *a, const char *s)
{
    msgpack_pack_str(&a->pk, strlen(s));
    msgpack_pack_str_body(&a->pk, s, strlen(s));
}

void args_int(game_args *a, int64_t v)
{
    msgpack_pack_int64(&a->pk, v);
}

void args_end(game_args *a)
{
    msgpack_sbuffer_destroy(&a->sb);
}

int result_decode(const cairn_buf *b, msgpack_unpacked *u)
{
    size_t off = 0;
    msgpack_unpacked_init(u);
    if (msgpack_unpack_next(u, b->data, b->len, &off) != MSGPACK_UNPACK_SUCCESS) return -1;
    return u->data.type == MSGPACK_OBJECT_ARRAY ? 0 : -1;
}

const msgpack_object *map_get(const msgpack_object *map, const char *key)
{
    if (map->type != MSGPACK_OBJECT_MAP) return NULL;
    size_t n = strlen(key);
    for (uint32_t i = 0; i < map->via.map.size; i++) {
        const msgpack_object *k = &map->via.map.ptr[i].key;
        if (k->type == MSGPACK_OBJECT_STR && k->via.str.size == n && memcmp(k->via.str.ptr, key, n) == 0)
            return &map->via.map.ptr[i].val;
    }
    return NULL;
}
