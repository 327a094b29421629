/*
 * lua_http.c -- core.http_get(url [, timeout_s [, max_bytes]]) -> status, body, headers
 * The binding of http_client.c for cairn.remote_log. Any status code is a
 * result; failing to get a response at all raises: ConfigError (bad URL),
 * TimeoutError (deadline), StoreError (refused, too large, not HTTP).
 */
#include <lauxlib.h>
#include <string.h>

#include "cairn.h"
#include "http_client.h"
#include "lua_error.h"
#include "lua_http.h"

#define RESPONSE_MT "cairn.http_response"
#define DEFAULT_MAX_BYTES ((size_t)8 << 20)

/* the response box frees what it owns when collected, so a raise while
 * pushing its parts (out of memory) leaks nothing */
static int response_gc(lua_State *L)
{
    cairn_http_response_free(luaL_checkudata(L, 1, RESPONSE_MT));
    return 0;
}

/* { lower-case name = value } from the header lines */
static void push_headers(lua_State *L, const cairn_http_response *r)
{
    lua_newtable(L);
    const char *line = r->head;
    while (*line) {
        const char *end = strstr(line, "\r\n");
        if (!end) end = line + strlen(line);
        const char *colon = memchr(line, ':', (size_t)(end - line));
        if (colon && colon > line) {
            luaL_Buffer b;
            luaL_buffinit(L, &b);
            for (const char *c = line; c < colon; c++)
                luaL_addchar(&b, (*c >= 'A' && *c <= 'Z') ? (char)(*c + 32) : *c);
            luaL_pushresult(&b);
            const char *v = colon + 1, *ve = end;
            while (v < ve && (*v == ' ' || *v == '\t')) v++;
            while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t')) ve--;
            lua_pushlstring(L, v, (size_t)(ve - v));
            lua_rawset(L, -3);
        }
        line = *end ? end + 2 : end;
    }
}

static int lhttp_get(lua_State *L)
{
    const char *url = luaL_checkstring(L, 1);
    double timeout = luaL_optnumber(L, 2, 10);
    lua_Number max = luaL_optnumber(L, 3, (lua_Number)DEFAULT_MAX_BYTES);
    luaL_argcheck(L, timeout > 0, 2, "timeout in seconds > 0 expected");
    luaL_argcheck(L, max >= 1 && max <= (lua_Number)((size_t)1 << 31), 3, "1 to 2^31 bytes expected");
    cairn_http_response *r = lua_newuserdata(L, sizeof *r);
    memset(r, 0, sizeof *r);
    luaL_getmetatable(L, RESPONSE_MT);
    lua_setmetatable(L, -2);
    char err[512];
    int rc = cairn_http_get(url, timeout, (size_t)max, r, err, sizeof err);
    if (rc) return cairn_lua_raise(L, rc, "%s", err); /* ConfigError, TimeoutError or StoreError */
    lua_pushinteger(L, r->status);
    lua_pushlstring(L, r->body, r->body_len);
    push_headers(L, r);
    cairn_http_response_free(r);
    return 3;
}

void cairn_lua_http_init(lua_State *L)
{
    if (luaL_newmetatable(L, RESPONSE_MT)) {
        lua_pushcfunction(L, response_gc);
        lua_setfield(L, -2, "__gc");
    }
    lua_pop(L, 1);
    static const luaL_Reg fns[] = {
        { "http_get", lhttp_get },
        { NULL, NULL },
    };
    luaL_setfuncs(L, fns, 0);
}
