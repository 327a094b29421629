/*
 * replay.c -- a player's state at any past version, rebuilt from the events
 * of the game_server's store (the application's `player_at(who, version)`).
 *
 *   replay [--lua-path 'DIR/?.lua'] STORE_DIR PLAYER [VERSION]
 *
 * PLAYER is a name (player3) or an id; without VERSION, the current state.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"

static int64_t as_int(const msgpack_object *o)
{
    if (!o) return 0;
    if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER) return (int64_t)o->via.u64;
    if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) return o->via.i64;
    return 0;
}

static void print_str(const msgpack_object *o)
{
    if (o && o->type == MSGPACK_OBJECT_STR) printf("%.*s", (int)o->via.str.size, o->via.str.ptr);
    else printf("?");
}

static void print_uuid(const msgpack_object *o)
{
    if (!o || o->type != MSGPACK_OBJECT_EXT || o->via.ext.size != 16) { printf("?"); return; }
    const unsigned char *b = (const unsigned char *)o->via.ext.ptr;
    for (int i = 0; i < 16; i++) printf("%s%02x", i == 4 || i == 6 || i == 8 || i == 10 ? "-" : "", b[i]);
}

/* Call `method(who [, version])` and decode the player map into u. */
static const msgpack_object *get_player(cairn_runtime *rt, const char *method, const char *who, long version,
                                        cairn_buf *b, msgpack_unpacked *u)
{
    game_args a;
    args_begin(&a, version > 0 ? 2 : 1);
    args_str(&a, who);
    if (version > 0) args_int(&a, version);
    int rc = cairn_call(rt, method, a.sb.data, a.sb.size, b);
    args_end(&a);
    msgpack_unpacked_init(u);
    if (rc != CAIRN_OK) {
        fprintf(stderr, "replay: %s (%s)\n", cairn_errmsg(rt), cairn_strerror(rc));
        return NULL;
    }
    msgpack_unpacked_destroy(u);
    if (result_decode(b, u) != 0 || u->data.via.array.size != 1 || u->data.via.array.ptr[0].type != MSGPACK_OBJECT_MAP) {
        fprintf(stderr, "replay: %s did not return a player\n", method);
        return NULL;
    }
    return &u->data.via.array.ptr[0];
}

int main(int argc, char **argv)
{
    const char *lua_path = NULL, *pos[3] = { NULL, NULL, NULL };
    int n = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--lua-path") == 0 && i + 1 < argc) lua_path = argv[++i];
        else if (n < 3 && argv[i][0] != '-') pos[n++] = argv[i];
        else n = 99;
    }
    long version = n == 3 ? strtol(pos[2], NULL, 10) : 0;
    if (n < 2 || n > 3 || (n == 3 && version < 1)) {
        fprintf(stderr, "usage: replay [--lua-path 'DIR/?.lua'] STORE_DIR PLAYER [VERSION]\n");
        return 2;
    }
    /* reading needs no fsync; it also never writes */
    cairn_runtime *rt = game_open(argv[0], lua_path, pos[0], "none");
    if (!rt) return 1;
    int code = 1;
    cairn_buf now_buf = { NULL, 0 }, at_buf = { NULL, 0 };
    msgpack_unpacked now_u, at_u;
    const msgpack_object *now = get_player(rt, "player", pos[1], 0, &now_buf, &now_u);
    const msgpack_object *at = now ? get_player(rt, "player_at", pos[1], version, &at_buf, &at_u) : NULL;
    if (at) {
        print_str(map_get(at, "name"));
        printf(" (id ");
        print_uuid(map_get(at, "id"));
        printf(") at version %lld of %lld\n", (long long)as_int(map_get(at, "version")),
               (long long)as_int(map_get(now, "version")));
        printf("  position: (%lld, %lld), moves: %lld\n", (long long)as_int(map_get(at, "x")),
               (long long)as_int(map_get(at, "y")), (long long)as_int(map_get(at, "moves")));
        printf("  items:");
        const msgpack_object *items = map_get(at, "items");
        uint32_t count = items && items->type == MSGPACK_OBJECT_MAP ? items->via.map.size : 0;
        for (uint32_t i = 0; i < count; i++) {
            printf("%s ", i ? "," : "");
            print_str(&items->via.map.ptr[i].key);
            printf(" %lld", (long long)as_int(&items->via.map.ptr[i].val));
        }
        printf("%s\n", count ? "" : " none");
        code = 0;
    }
    if (now) msgpack_unpacked_destroy(&at_u);
    msgpack_unpacked_destroy(&now_u);
    cairn_buf_free(&now_buf);
    cairn_buf_free(&at_buf);
    cairn_runtime_close(rt);
    return code;
}
