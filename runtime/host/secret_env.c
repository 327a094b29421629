/*
 * secret_env.c -- key material out of the `cairn` process's environment and
 * core dumps (issue 14 item 7).
 *
 * At start, every variable whose name ends in CIPHER_KEY (CAIRN_CIPHER_KEY,
 * CAIRN_NEW_CIPHER_KEY, <APP>_CAIRN_CIPHER_KEY) is copied into locked memory
 * (sodium_malloc: mlock'ed, MADV_DONTDUMP, guard pages), its value is wiped
 * where it lay (the bytes /proc/PID/environ shows) and it is unset. When one
 * was found the process also becomes non-dumpable (PR_SET_DUMPABLE 0: no core
 * dump, no ptrace by other processes of the user).
 *
 * The Lua state still sees the keys: os.getenv returns them, and os.execute
 * and io.popen put them back into the environment for the child they start
 * (wiping and unsetting them again once it is started), so scripts, later
 * opens and child processes behave as before. Executable only: a program that
 * embeds cairn owns its environment.
 */
#define _GNU_SOURCE
#include <lauxlib.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>

#include "host.h"

extern char **environ;

#define MAX_SECRETS 16
#define MAX_NAME 128

static struct {
    char name[MAX_NAME];
    char *value; /* sodium_malloc'd, NUL-terminated; never freed (lives as long as the process) */
    size_t len;
} secrets[MAX_SECRETS];
static int nsecrets;

static int is_secret_name(const char *name, size_t len)
{
    static const char suffix[] = "CIPHER_KEY";
    size_t n = sizeof suffix - 1;
    return len >= n && len < MAX_NAME && memcmp(name + len - n, suffix, n) == 0;
}

/* Wipe the value of name in the environment, then unset it. */
static void conceal(const char *name)
{
    char *v = getenv(name);
    if (v) sodium_memzero(v, strlen(v));
    unsetenv(name);
}

int cairn_secret_env_hide(void)
{
    if (sodium_init() < 0) return -1;
    char **e = environ;
    while (e && *e) {
        char *eq = strchr(*e, '=');
        size_t nlen = eq ? (size_t)(eq - *e) : 0;
        if (!eq || !is_secret_name(*e, nlen) || nsecrets == MAX_SECRETS) {
            e++;
            continue;
        }
        size_t vlen = strlen(eq + 1);
        char *copy = sodium_malloc(vlen + 1);
        if (!copy) return -1;
        memcpy(copy, eq + 1, vlen + 1);
        memcpy(secrets[nsecrets].name, *e, nlen);
        secrets[nsecrets].name[nlen] = '\0';
        secrets[nsecrets].value = copy;
        secrets[nsecrets].len = vlen;
        conceal(secrets[nsecrets].name); /* environ shifts down: look at *e again */
        nsecrets++;
    }
    if (nsecrets) prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
    return nsecrets;
}

static const char *find_secret(const char *name, size_t *len)
{
    for (int i = 0; i < nsecrets; i++)
        if (strcmp(secrets[i].name, name) == 0) {
            *len = secrets[i].len;
            return secrets[i].value;
        }
    return NULL;
}

/* os.getenv(name): the environment's value, else a hidden key's */
static int lgetenv(lua_State *L)
{
    const char *name = luaL_checkstring(L, 1);
    const char *v = getenv(name);
    size_t len = 0;
    if (v) {
        lua_pushstring(L, v);
    } else if ((v = find_secret(name, &len)) != NULL) {
        lua_pushlstring(L, v, len);
    } else {
        lua_pushnil(L);
    }
    return 1;
}

/* os.execute / io.popen (upvalue 1) with the hidden keys in the environment
 * while the child starts */
static int lspawn(lua_State *L)
{
    for (int i = 0; i < nsecrets; i++)
        if (!getenv(secrets[i].name)) setenv(secrets[i].name, secrets[i].value, 1);
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    int status = lua_pcall(L, lua_gettop(L) - 1, LUA_MULTRET, 0);
    for (int i = 0; i < nsecrets; i++) conceal(secrets[i].name);
    if (status != 0) return lua_error(L);
    return lua_gettop(L);
}

static void wrap(lua_State *L, const char *lib, const char *fn, lua_CFunction with)
{
    lua_getglobal(L, lib);
    lua_getfield(L, -1, fn);
    lua_pushcclosure(L, with, 1);
    lua_setfield(L, -2, fn);
    lua_pop(L, 1);
}

void cairn_secret_env_install(lua_State *L)
{
    if (nsecrets == 0) return;
    wrap(L, "os", "getenv", lgetenv);
    wrap(L, "os", "execute", lspawn);
    wrap(L, "io", "popen", lspawn);
}
