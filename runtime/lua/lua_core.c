/*
 * lua_core.c -- luaopen_cairn_core: the C core as the Lua module "cairn.core".
 * The framework in lua/cairn/ is its only intended caller.
 */
#include <lauxlib.h>
/* LuaJIT 2.1's API (luaL_setfuncs, luaL_traceback): built against plain Lua 5.1
 * headers (luarocks' default LUA_INCDIR on Debian) this stops here, rather than
 * compiling implicit declarations */
#include <luajit.h>
#include <sodium.h>
#include <time.h>
#include <unistd.h>

#include "cairn.h"
#include "crypto.h"
#include "lua_codec.h"
#include "lua_dcb.h"
#include "lua_error.h"
#include "lua_event.h"
#include "lua_follow.h"
#include "lua_gather.h"
#include "lua_http.h"
#include "lua_limits.h"
#include "lua_lock.h"
#include "lua_page.h"
#include "lua_store.h"
#include "lua_view.h"
#include "string_id.h"
#include "uuid.h"

static int lencode(lua_State *L)
{
    luaL_checkany(L, 1);
    const char *root = luaL_optstring(L, 2, "value");
    const uint8_t *out;
    size_t len;
    char err[600];
    int rc = cairn_codec_encode(L, cairn_codec_get(L), 1, root, &out, &len, err, sizeof err);
    if (rc) return cairn_lua_raise_rc(L, rc, err);
    lua_pushlstring(L, (const char *)out, len);
    return 1;
}

static int ldecode(lua_State *L)
{
    size_t len;
    const char *p = luaL_checklstring(L, 1, &len);
    int rc = cairn_codec_decode(L, (const uint8_t *)p, len);
    if (rc) return cairn_lua_raise_rc(L, rc, rc == CAIRN_CORRUPT ? "malformed msgpack value" : NULL);
    return 1;
}

static void push_uuid(lua_State *L, const uint8_t id[16])
{
    char s[CAIRN_UUID_STRLEN];
    cairn_uuid_format(id, s);
    lua_pushlstring(L, s, sizeof s);
}

static int luuid4(lua_State *L)
{
    uint8_t id[16];
    cairn_uuid_v4(id);
    push_uuid(L, id);
    return 1;
}

static int luuid5(lua_State *L)
{
    size_t ns_len, name_len;
    const char *ns = luaL_checklstring(L, 1, &ns_len);
    const char *name = luaL_checklstring(L, 2, &name_len);
    uint8_t raw_ns[16], id[16];
    if (cairn_uuid_parse(ns, ns_len, raw_ns) != 0)
        return luaL_argerror(L, 1, "namespace must be a UUID string");
    cairn_uuid_v5(raw_ns, name, name_len, id);
    push_uuid(L, id);
    return 1;
}

/* core.uuid_normalize(s) -> canonical lower-case form, or nil if s is not a UUID */
static int luuid_normalize(lua_State *L)
{
    size_t len;
    const char *s = lua_tolstring(L, 1, &len);
    uint8_t id[16];
    if (lua_type(L, 1) != LUA_TSTRING || cairn_uuid_parse(s, len, id) != 0) return 0;
    push_uuid(L, id);
    return 1;
}

/* core.aggregate_id(s) -> s as an aggregate id: a UUID's canonical form, or
 * the string id itself; or nil and what is wrong with it (string_id.h) */
static int laggregate_id(lua_State *L)
{
    if (lua_type(L, 1) != LUA_TSTRING) { /* checked first: lua_tolstring would turn a number into one */
        lua_pushnil(L);
        lua_pushfstring(L, "is a %s, not a string", luaL_typename(L, 1));
        return 2;
    }
    size_t len;
    const char *s = lua_tolstring(L, 1, &len);
    uint8_t id[16];
    int kind = cairn_uuid_classify(s, len, id);
    if (kind == 1) { /* canonical already: the same string, not a new one made of it */
        lua_settop(L, 1);
        return 1;
    }
    if (kind == 2) {
        push_uuid(L, id);
        return 1;
    }
    const char *problem = cairn_string_id_problem(s, len);
    if (problem) {
        lua_pushnil(L);
        lua_pushstring(L, problem);
        return 2;
    }
    lua_settop(L, 1);
    return 1;
}

static int lnow_us(lua_State *L)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    lua_pushnumber(L, (lua_Number)((int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000));
    return 1;
}

static int lrandom_bytes(lua_State *L)
{
    int n = (int)luaL_checkinteger(L, 1);
    luaL_argcheck(L, n >= 0 && n <= 65536, 1, "0 to 65536 bytes");
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    char chunk[256];
    while (n > 0) {
        int take = n < (int)sizeof chunk ? n : (int)sizeof chunk;
        randombytes_buf(chunk, (size_t)take);
        luaL_addlstring(&b, chunk, (size_t)take);
        n -= take;
    }
    luaL_pushresult(&b);
    return 1;
}

/* core.keygen() -> a fresh master key, base64 of 32 random bytes */
static int lkeygen(lua_State *L)
{
    char key[CAIRN_KEY_B64_LEN + 1];
    cairn_key_generate(key);
    lua_pushlstring(L, key, CAIRN_KEY_B64_LEN);
    sodium_memzero(key, sizeof key);
    return 1;
}

/* core.isatty(fd) -> is the descriptor (0, 1, 2) a terminal? (progress bars) */
static int lisatty(lua_State *L)
{
    lua_pushboolean(L, isatty((int)luaL_checkinteger(L, 1)));
    return 1;
}

int luaopen_cairn_core(lua_State *L)
{
    if (cairn_crypto_init() != 0) return cairn_lua_raise(L, CAIRN_STORE, "cairn: libsodium failed to initialise");
    static const luaL_Reg fns[] = {
        { "encode", lencode },
        { "keygen", lkeygen },
        { "isatty", lisatty },
        { "decode", ldecode },
        { "uuid4", luuid4 },
        { "uuid5", luuid5 },
        { "uuid_normalize", luuid_normalize },
        { "aggregate_id", laggregate_id },
        { "now_us", lnow_us },
        { "random_bytes", lrandom_bytes },
        { NULL, NULL },
    };
    cairn_lua_error_init(L);
    cairn_lua_gather_init(L);
    luaL_newmetatable(L, CAIRN_TIME_MT);
    lua_pop(L, 1);
    lua_newtable(L);
    luaL_setfuncs(L, fns, 0);
    cairn_lua_event_init(L);
    cairn_lua_store_init(L);
    cairn_lua_page_init(L);
    cairn_lua_view_init(L);
    cairn_lua_dcb_init(L);
    cairn_lua_follow_init(L);
    cairn_lua_http_init(L);
    cairn_lua_limits_init(L);
    cairn_lua_lock_init(L);
    luaL_getmetatable(L, CAIRN_ERROR_MT);
    lua_setfield(L, -2, "error_metatable");
    luaL_getmetatable(L, CAIRN_TIME_MT);
    lua_setfield(L, -2, "time_metatable");
    lua_pushstring(L, CAIRN_VERSION_STRING);
    lua_setfield(L, -2, "version");
    return 1;
}
