/*
 * lua_limits.c -- a memory ceiling for sandboxed calls (lua/cairn/sandbox.lua).
 *
 * The state's allocator is wrapped (once, on first use) by one that counts the
 * bytes in use and, while a ceiling is set, refuses to grow past it: LuaJIT
 * then raises "not enough memory", which the sandbox turns into a SandboxError.
 * A count hook cannot do this: one `s = s .. s` or string.rep allocates in a
 * single instruction. The wrapper only forwards when no ceiling is set. Its
 * state lives in a userdata anchored in the registry, whose __gc puts the
 * original allocator back when the state closes (LuaJIT frees its arena
 * differently when its own allocator is in place).
 */
#include <lauxlib.h>
#include <limits.h>

#include "lua_limits.h"

#define LIMITS_KEY "cairn.memory_limiter"

typedef struct {
    lua_Alloc f;        /* the state's own allocator */
    void *ud;
    long long in_use;   /* bytes allocated minus bytes freed since the wrapper went in */
    long long ceiling;  /* growth beyond this is refused; LLONG_MAX: none */
    int refused;        /* an allocation was refused since the ceiling was set */
} limiter;

static void *limited_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    limiter *m = ud;
    long long delta = (long long)nsize - (ptr ? (long long)osize : 0);
    if (nsize > 0 && delta > 0 && m->in_use + delta > m->ceiling) {
        m->refused = 1;
        return NULL;
    }
    void *p = m->f(m->ud, ptr, osize, nsize);
    if (p || nsize == 0) m->in_use += delta;
    return p;
}

static int limiter_gc(lua_State *L)
{
    limiter *m = lua_touserdata(L, 1);
    void *ud;
    if (m->f && lua_getallocf(L, &ud) == limited_alloc && ud == m) lua_setallocf(L, m->f, m->ud);
    m->f = NULL;
    return 0;
}

static limiter *get_limiter(lua_State *L)
{
    lua_getfield(L, LUA_REGISTRYINDEX, LIMITS_KEY);
    limiter *m = lua_touserdata(L, -1);
    lua_pop(L, 1);
    if (m) return m;
    m = lua_newuserdata(L, sizeof *m);
    m->f = NULL;
    lua_createtable(L, 0, 1);
    lua_pushcfunction(L, limiter_gc);
    lua_setfield(L, -2, "__gc");
    lua_setmetatable(L, -2);
    lua_setfield(L, LUA_REGISTRYINDEX, LIMITS_KEY);
    m->f = lua_getallocf(L, &m->ud);
    m->in_use = 0;
    m->ceiling = LLONG_MAX;
    m->refused = 0;
    lua_setallocf(L, limited_alloc, m);
    return m;
}

/* core.memory_limit(bytes): from now on, refuse to grow more than bytes above
 * what is in use now. core.memory_limit(false): lift it.
 * @return whether an allocation was refused since the ceiling was set */
static int lmemory_limit(lua_State *L)
{
    limiter *m = get_limiter(L);
    int refused = m->refused;
    if (lua_toboolean(L, 1)) {
        lua_Number bytes = luaL_checknumber(L, 1);
        luaL_argcheck(L, bytes >= 0 && bytes < 9e15, 1, "a number of bytes expected");
        m->ceiling = m->in_use + (long long)bytes;
        m->refused = 0;
    } else {
        m->ceiling = LLONG_MAX;
    }
    lua_pushboolean(L, refused);
    return 1;
}

/* core.memory_refused() -> was an allocation refused under the current ceiling? */
static int lmemory_refused(lua_State *L)
{
    limiter *m = get_limiter(L);
    lua_pushboolean(L, m->ceiling != LLONG_MAX && m->refused);
    return 1;
}

void cairn_lua_limits_init(lua_State *L)
{
    static const luaL_Reg fns[] = {
        { "memory_limit", lmemory_limit },
        { "memory_refused", lmemory_refused },
        { NULL, NULL },
    };
    luaL_setfuncs(L, fns, 0);
}
