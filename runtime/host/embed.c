/*
 * embed.c -- the C embedding API (include/cairn.h): runtimes over Lua states
 * made by host.c, driving lua/cairn/embed.lua.
 *
 * Every entry point runs its Lua work inside lua_cpcall, so no Lua error (not
 * even out of memory while pushing an argument) can reach a panic; the Lua
 * function it calls runs under host.c's traceback handler. take_error() is
 * the one place where Lua errors become return codes. What C allocates while Lua
 * runs (the result buffer) belongs to the entry point's context and is freed
 * by the entry point, so a Lua error never leaks it.
 */
#include <errno.h>
#include <stdarg.h>
#include <lauxlib.h>
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cairn.h"
#include "host.h"
#include "lua_codec.h"
#include "lua_error.h"

struct cairn_runtime {
    lua_State *L;
    int embed_ref;      /* the cairn.embed module */
    int env_ref;        /* the env table for App.new */
    int app_ref;        /* the application, or LUA_NOREF */
    char label[256];    /* "module.Application", for messages */
    char errmsg[4096];
};

/* the message of the last failed cairn_runtime_open in this thread */
static __thread char open_errmsg[1024];

/* ---- errors ------------------------------------------------------------ */

__attribute__((format(printf, 3, 4)))
static int fail(cairn_runtime *rt, int rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(rt->errmsg, sizeof rt->errmsg, fmt, ap);
    va_end(ap);
    return rc;
}

/* What an entry point hands its protected body, and gets back. */
typedef struct {
    cairn_runtime *rt;
    const char *module, *application, *method;
    const void *args;
    size_t args_len;
    uint32_t nargs;
    uint64_t start;
    size_t limit;
    msgpack_sbuffer out;        /* the result, owned by the entry point */
    int rc;                     /* the failure, with err "KIND: MESSAGE" */
    char err[3800];
} job;

/* The one place where Lua errors become return codes: the error value on top
 * of L (status from a pcall) becomes j->rc and j->err, and is popped. A cairn
 * error object gives its kind's code (a StoreError the engine's code when it
 * knows it); anything else is CAIRN_LUA. */
static void take_error(lua_State *L, job *j, int status)
{
    int rc = CAIRN_LUA;
    const char *kind = "Lua error", *msg = NULL;
    if (status == LUA_ERRMEM) {
        rc = ENOMEM;
        kind = "out of memory";
    } else if (status == LUA_ERRERR) {
        msg = "error in error handling (the traceback handler failed too: a stack overflow?)";
    } else if (lua_type(L, -1) == LUA_TSTRING) {
        msg = lua_tostring(L, -1);
    } else if (lua_type(L, -1) == LUA_TTABLE) {
        lua_pushliteral(L, "kind");
        lua_rawget(L, -2);
        lua_pushliteral(L, "message");
        lua_rawget(L, -3);
        lua_pushliteral(L, "code");
        lua_rawget(L, -4);
        if (lua_type(L, -3) == LUA_TSTRING && lua_type(L, -2) == LUA_TSTRING) {
            kind = lua_tostring(L, -3);
            msg = lua_tostring(L, -2);
            rc = cairn_error_code(kind);
            if (rc == CAIRN_STORE && lua_type(L, -1) == LUA_TNUMBER && lua_tointeger(L, -1) != 0)
                rc = (int)lua_tointeger(L, -1);
        }
    }
    if (msg) snprintf(j->err, sizeof j->err, "%s: %s", kind, msg);
    else snprintf(j->err, sizeof j->err, "%s", status == LUA_ERRMEM ? kind : "an error object that is not a cairn error");
    j->rc = rc;
    lua_settop(L, 0);
}

/* ---- the protected bodies ---------------------------------------------- */

/* Call embed[name] with the nargs values on top of the stack, under the
 * traceback handler. @return 1, or 0 with the failure in j. */
static int call_embed(lua_State *L, job *j, const char *name, int nargs, int nresults)
{
    lua_rawgeti(L, LUA_REGISTRYINDEX, j->rt->embed_ref);
    lua_getfield(L, -1, name);
    lua_replace(L, -2);
    lua_insert(L, -nargs - 1);
    int status = cairn_host_call(L, nargs, nresults);
    if (status == 0) return 1;
    take_error(L, j, status);
    return 0;
}

static void push_opt_string(lua_State *L, const char *s)
{
    if (s) lua_pushstring(L, s); else lua_pushnil(L);
}

static int body_load(lua_State *L)
{
    job *j = lua_touserdata(L, 1);
    cairn_runtime *rt = j->rt;
    if (rt->app_ref != LUA_NOREF) {
        lua_rawgeti(L, LUA_REGISTRYINDEX, rt->app_ref);
        luaL_unref(L, LUA_REGISTRYINDEX, rt->app_ref);
        rt->app_ref = LUA_NOREF;
        if (!call_embed(L, j, "close", 1, 0)) return 0;
    }
    lua_pushstring(L, j->module);
    push_opt_string(L, j->application);
    lua_rawgeti(L, LUA_REGISTRYINDEX, rt->env_ref);
    if (!call_embed(L, j, "load", 3, 1)) return 0;
    rt->app_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    return 0;
}

/* Append bytes to the job's result. */
static void out_write(lua_State *L, job *j, const void *p, size_t n)
{
    if (msgpack_sbuffer_write(&j->out, p, n) != 0) luaL_error(L, "not enough memory");
}

/* Encode the array at the top of the stack (elements 1..count) into j->out. */
static void encode_array(lua_State *L, job *j, int count, const char *root_fmt)
{
    int t = lua_gettop(L);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &j->out, msgpack_sbuffer_write);
    if (msgpack_pack_array(&pk, (size_t)count) != 0) luaL_error(L, "not enough memory");
    cairn_codec *c = cairn_codec_get(L);
    for (int i = 1; i <= count; i++) {
        char root[64], err[600];
        snprintf(root, sizeof root, root_fmt, i);
        lua_rawgeti(L, t, i);
        const uint8_t *bytes;
        size_t len;
        int rc = cairn_codec_encode(L, c, -1, root, &bytes, &len, err, sizeof err);
        lua_pop(L, 1);
        if (rc) {
            j->rc = rc;
            snprintf(j->err, sizeof j->err, "%s: %s", rc == ENOMEM ? "out of memory" : cairn_error_kind(rc), err);
            return;
        }
        out_write(L, j, bytes, len);
    }
}

/* How many elements a msgpack array header announces; -1 if it is not one. */
static long array_count(const uint8_t *p, size_t len)
{
    if (len >= 1 && (p[0] & 0xf0) == 0x90) return p[0] & 0x0f;
    if (len >= 3 && p[0] == 0xdc) return (long)p[1] << 8 | p[2];
    if (len >= 5 && p[0] == 0xdd)
        return (long)((uint32_t)p[1] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 8 | p[4]);
    return -1;
}

static int body_call(lua_State *L)
{
    job *j = lua_touserdata(L, 1);
    lua_rawgeti(L, LUA_REGISTRYINDEX, j->rt->app_ref);
    lua_pushstring(L, j->method);
    if (j->args_len == 0) {
        lua_createtable(L, 0, 0);
    } else if (cairn_codec_decode(L, j->args, j->args_len) != CAIRN_OK) {
        j->rc = CAIRN_INVALID;
        snprintf(j->err, sizeof j->err, "bad args: not one well-formed msgpack array");
        return 0;
    }
    lua_pushinteger(L, (lua_Integer)j->nargs);
    if (!call_embed(L, j, "call", 4, 1)) return 0;
    lua_getfield(L, -1, "n");
    int n = (int)lua_tointeger(L, -1);
    lua_pop(L, 1);
    encode_array(L, j, n, "result[%d]");
    return 0;
}

static int body_read_log(lua_State *L)
{
    job *j = lua_touserdata(L, 1);
    lua_rawgeti(L, LUA_REGISTRYINDEX, j->rt->app_ref);
    lua_pushnumber(L, (lua_Number)j->start);
    lua_pushnumber(L, (lua_Number)j->limit);
    if (!call_embed(L, j, "read_log", 3, 1)) return 0;
    encode_array(L, j, (int)lua_objlen(L, -1), "notification[%d]");
    return 0;
}

static int body_reload(lua_State *L)
{
    job *j = lua_touserdata(L, 1);
    lua_pushstring(L, j->module);
    call_embed(L, j, "reload", 1, 0);
    return 0;
}

static int body_close(lua_State *L)
{
    job *j = lua_touserdata(L, 1);
    lua_rawgeti(L, LUA_REGISTRYINDEX, j->rt->app_ref);
    luaL_unref(L, LUA_REGISTRYINDEX, j->rt->app_ref);
    j->rt->app_ref = LUA_NOREF;
    call_embed(L, j, "close", 1, 0);
    return 0;
}

/* Run body in protection. Failures come back in j (from Lua or the encoder);
 * an error of the body's own pushes (out of memory) leaves lua_cpcall. */
static int run(cairn_runtime *rt, lua_CFunction body, job *j, const char *what)
{
    rt->errmsg[0] = '\0';
    j->rt = rt;
    int status = lua_cpcall(rt->L, body, j);
    if (status != 0) take_error(rt->L, j, status);
    lua_settop(rt->L, 0);
    if (j->rc) return fail(rt, j->rc, "%s: %s", what, j->err);
    return CAIRN_OK;
}

/* run() for a body that encodes a result: on success the caller of the API
 * gets the buffer, on failure it is freed here. */
static int run_into(cairn_runtime *rt, lua_CFunction body, job *j, const char *what, cairn_buf *out)
{
    msgpack_sbuffer_init(&j->out);
    int rc = run(rt, body, j, what);
    if (rc != CAIRN_OK) {
        msgpack_sbuffer_destroy(&j->out);
        return rc;
    }
    out->data = j->out.data;
    out->len = j->out.size;
    return CAIRN_OK;
}

/* ---- opening ----------------------------------------------------------- */

typedef struct {
    const cairn_runtime_options *opt;
    cairn_runtime *rt;
    int rc;
} open_job;

/* The sandbox's options table for embed.use_sandbox, on top of the stack. */
static void push_sandbox_options(lua_State *L, const cairn_runtime_options *opt)
{
    lua_createtable(L, 0, 5);
    lua_pushstring(L, opt->lua_path && *opt->lua_path ? opt->lua_path : "./?.lua");
    lua_setfield(L, -2, "path");
    if (opt->sandbox_instructions) {
        lua_pushnumber(L, (lua_Number)opt->sandbox_instructions);
        lua_setfield(L, -2, "instructions");
    }
    if (opt->sandbox_memory) {
        lua_pushnumber(L, (lua_Number)opt->sandbox_memory);
        lua_setfield(L, -2, "memory");
    }
    lua_newtable(L);
    int n = 0;
    for (const char *const *m = opt->sandbox_allow; m && *m; m++) {
        lua_pushstring(L, *m);
        lua_rawseti(L, -2, ++n);
    }
    lua_setfield(L, -2, "allow");
    lua_pushliteral(L, "sandbox");
    lua_setfield(L, -2, "name");
}

static int body_open(lua_State *L)
{
    open_job *o = lua_touserdata(L, 1);
    const cairn_runtime_options *opt = o->opt;
    int sandboxed = opt && opt->sandbox;
    if (!sandboxed && opt && opt->lua_path && *opt->lua_path) cairn_host_add_path(L, "path", opt->lua_path);
    if (opt && opt->lua_cpath && *opt->lua_cpath) cairn_host_add_path(L, "cpath", opt->lua_cpath);
    lua_newtable(L);
    for (const char *const *e = opt ? opt->env : NULL; e && *e; e++) {
        const char *eq = strchr(*e, '=');
        if (!eq || eq == *e) {
            o->rc = CAIRN_INVALID;
            snprintf(open_errmsg, sizeof open_errmsg, "cairn_runtime_open: env entry '%.200s' is not NAME=value", *e);
            return 0;
        }
        lua_pushlstring(L, *e, (size_t)(eq - *e));
        lua_pushstring(L, eq + 1);
        lua_rawset(L, -3);
    }
    if (opt && opt->store) {
        lua_pushstring(L, opt->store);
        lua_setfield(L, -2, "CAIRN_STORE");
    }
    o->rt->env_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_getglobal(L, "require");
    lua_pushliteral(L, "cairn.embed");
    int status = cairn_host_call(L, 1, 1);
    if (status != 0) {
        o->rc = status == LUA_ERRMEM ? ENOMEM : CAIRN_CONFIG;
        snprintf(open_errmsg, sizeof open_errmsg,
                 "cairn_runtime_open: cannot load cairn's Lua files (set CAIRN_HOME to the directory that holds "
                 "lua/cairn/init.lua, or give lua_path): %s",
                 lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "out of memory");
        return 0;
    }
    if (sandboxed) {
        lua_getfield(L, -1, "use_sandbox");
        push_sandbox_options(L, opt);
        status = cairn_host_call(L, 1, 0);
        if (status != 0) {
            o->rc = status == LUA_ERRMEM ? ENOMEM : CAIRN_CONFIG;
            snprintf(open_errmsg, sizeof open_errmsg, "cairn_runtime_open: bad sandbox options: %s",
                     lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "see the sandbox_* fields");
            return 0;
        }
    }
    o->rt->embed_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    return 0;
}

int cairn_runtime_open(const cairn_runtime_options *opt, cairn_runtime **out)
{
    open_errmsg[0] = '\0';
    if (!out) {
        snprintf(open_errmsg, sizeof open_errmsg, "cairn_runtime_open: out is NULL");
        return CAIRN_INVALID;
    }
    *out = NULL;
    cairn_runtime *rt = calloc(1, sizeof *rt);
    if (!rt) {
        snprintf(open_errmsg, sizeof open_errmsg, "cairn_runtime_open: out of memory");
        return ENOMEM;
    }
    rt->embed_ref = rt->env_ref = rt->app_ref = LUA_NOREF;
    rt->L = cairn_host_new(NULL);
    if (!rt->L) {
        free(rt);
        snprintf(open_errmsg, sizeof open_errmsg, "cairn_runtime_open: cannot create a Lua state (out of memory)");
        return ENOMEM;
    }
    open_job o = { .opt = opt, .rt = rt };
    if (lua_cpcall(rt->L, body_open, &o) != 0) {
        o.rc = ENOMEM; /* only the pushes of body_open can fail, for want of memory */
        snprintf(open_errmsg, sizeof open_errmsg, "cairn_runtime_open: out of memory");
    }
    if (o.rc != CAIRN_OK) {
        lua_close(rt->L);
        free(rt);
        return o.rc;
    }
    lua_settop(rt->L, 0);
    *out = rt;
    return CAIRN_OK;
}

/* ---- the API ----------------------------------------------------------- */

int cairn_runtime_load(cairn_runtime *rt, const char *module, const char *application)
{
    if (!rt) return CAIRN_INVALID;
    if (!module) return fail(rt, CAIRN_INVALID, "cairn_runtime_load: module is NULL");
    job j = { .module = module, .application = application };
    char what[256];
    snprintf(what, sizeof what, "load %s%s%s", module, application ? "." : "", application ? application : "");
    int rc = run(rt, body_load, &j, what);
    snprintf(rt->label, sizeof rt->label, "%s", rc == CAIRN_OK ? what + 5 : "");
    return rc;
}

int cairn_call(cairn_runtime *rt, const char *method, const void *args, size_t args_len, cairn_buf *result)
{
    if (result) { result->data = NULL; result->len = 0; }
    if (!rt) return CAIRN_INVALID;
    rt->errmsg[0] = '\0';
    if (!method || !result) return fail(rt, CAIRN_INVALID, "cairn_call: %s is NULL", method ? "result" : "method");
    if (!args && args_len) return fail(rt, CAIRN_INVALID, "call %s: args is NULL but args_len is %zu", method, args_len);
    if (rt->app_ref == LUA_NOREF)
        return fail(rt, CAIRN_INVALID, "call %s: no application is loaded (cairn_runtime_load)", method);
    long n = 0;
    if (args_len) {
        n = array_count(args, args_len);
        if (n < 0) return fail(rt, CAIRN_INVALID, "call %s: args must be a msgpack array", method);
    }
    job j = { .method = method, .args = args, .args_len = args_len, .nargs = (uint32_t)n };
    char what[sizeof rt->label + 128];
    snprintf(what, sizeof what, "call %s:%.100s", rt->label, method);
    return run_into(rt, body_call, &j, what, result);
}

int cairn_read_log(cairn_runtime *rt, uint64_t start, size_t limit, cairn_buf *out)
{
    if (out) { out->data = NULL; out->len = 0; }
    if (!rt) return CAIRN_INVALID;
    rt->errmsg[0] = '\0';
    if (!out) return fail(rt, CAIRN_INVALID, "cairn_read_log: out is NULL");
    if (start == 0) return fail(rt, CAIRN_INVALID, "cairn_read_log: notification ids start at 1");
    if (rt->app_ref == LUA_NOREF)
        return fail(rt, CAIRN_INVALID, "cairn_read_log: no application is loaded (cairn_runtime_load)");
    job j = { .start = start, .limit = limit };
    return run_into(rt, body_read_log, &j, "read_log", out);
}

int cairn_reload(cairn_runtime *rt, const char *module)
{
    if (!rt) return CAIRN_INVALID;
    if (!module) return fail(rt, CAIRN_INVALID, "cairn_reload: module is NULL");
    job j = { .module = module };
    char what[256];
    snprintf(what, sizeof what, "reload %s", module);
    return run(rt, body_reload, &j, what);
}

const char *cairn_errmsg(const cairn_runtime *rt)
{
    return rt ? rt->errmsg : open_errmsg;
}

void cairn_buf_free(cairn_buf *buf)
{
    if (!buf) return;
    free(buf->data);
    buf->data = NULL;
    buf->len = 0;
}

void cairn_runtime_close(cairn_runtime *rt)
{
    if (!rt) return;
    if (rt->app_ref != LUA_NOREF) {
        job j = { .rc = 0 };
        /* a store that fails to close is closed by the state's collector anyway */
        (void)run(rt, body_close, &j, "close");
    }
    lua_close(rt->L);
    free(rt);
}
