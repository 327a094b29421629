/*
 * lua_lock.c -- core.lock_file(path): an exclusive advisory lock (flock) on a
 * file, created if needed, so that two runs of a tool on the same target
 * (two imports into one store) cannot overlap. The kernel drops the lock when
 * the process ends, also on kill -9, so a killed run never blocks the next.
 */
#include <errno.h>
#include <fcntl.h>
#include <lauxlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "cairn.h"
#include "lua_error.h"
#include "lua_lock.h"

#define LOCK_MT "cairn.lock_file"

typedef struct { int fd; } lock_box;

static int lunlock(lua_State *L)
{
    lock_box *b = luaL_checkudata(L, 1, LOCK_MT);
    if (b->fd >= 0) {
        close(b->fd); /* closing the last descriptor releases the flock */
        b->fd = -1;
    }
    return 0;
}

/* core.lock_file(path) -> a lock (lock:unlock(), or when collected), or nil
 * when another process holds it; raises a StoreError when the file cannot be
 * opened */
static int llock_file(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    lock_box *b = lua_newuserdata(L, sizeof *b);
    b->fd = -1;
    luaL_getmetatable(L, LOCK_MT);
    lua_setmetatable(L, -2);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) return cairn_lua_raise(L, CAIRN_STORE, "cannot open the lock file %s: %s", path, strerror(errno));
    b->fd = fd;
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int err = errno;
        close(fd);
        b->fd = -1;
        if (err == EWOULDBLOCK) {
            lua_pushnil(L);
            return 1;
        }
        return cairn_lua_raise(L, CAIRN_STORE, "cannot lock %s: %s", path, strerror(err));
    }
    return 1;
}

void cairn_lua_lock_init(lua_State *L)
{
    luaL_newmetatable(L, LOCK_MT);
    lua_pushcfunction(L, lunlock);
    lua_setfield(L, -2, "__gc");
    lua_newtable(L);
    lua_pushcfunction(L, lunlock);
    lua_setfield(L, -2, "unlock");
    lua_setfield(L, -2, "__index");
    lua_pop(L, 1);
    lua_pushcfunction(L, llock_file);
    lua_setfield(L, -2, "lock_file");
}
