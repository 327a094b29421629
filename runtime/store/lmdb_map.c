/*
 * lmdb_map.c -- the writable map (MDB_WRITEMAP): one map size that every
 * process agrees on, and disk blocks reserved before LMDB writes through it.
 *
 * With MDB_WRITEMAP a transaction writes its pages straight into the shared
 * file mapping: a commit copies no page and makes no system call (sync=full
 * adds LMDB's msync). Two dangers come with it, both because LMDB sets the
 * data file's size to its map size at every open and resize (ftruncate):
 *
 * - A process opening with a smaller map than another one grew to would cut
 *   the file short under the other's pages (its next write there is a SIGBUS,
 *   or pages it wrote vanish before its commit points at them). So a writer
 *   sets its map size only here, holding an flock on data.mdb while LMDB
 *   truncates, and never below the file's size: the file never gets smaller,
 *   and a process that finds it bigger than its map adopts its size.
 * - ftruncate makes a file of holes, and a write through a map into a hole
 *   on a full disk is a SIGBUS. So the map's blocks are reserved (fallocate)
 *   before anything is written through it: at open right after LMDB has
 *   opened the file (so a file that is not a store is left as it was), still
 *   under the lock; when it grows, before LMDB extends the file over them
 *   (FALLOC_FL_KEEP_SIZE). A full disk is "disk full" when the map grows,
 *   never a signal inside a commit.
 *
 * Where the blocks cannot be reserved at open (a file system without
 * fallocate, a disk too full for the map asked for, data.mdb not writable)
 * the environment opens as before, without MDB_WRITEMAP: LMDB then writes
 * with pwrite, which fails cleanly. Processes with and without the writable
 * map share a store safely on Linux, where both go through one page cache.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cairn.h"
#include "lmdb_engine.h"

/* How long an open or a resize waits for another process's resize. */
#define MAP_LOCK_WAIT_MS 10000
/* The smallest growth tried when the disk has no room for a bigger one. */
#define MIN_GROWTH ((size_t)64 << 10)

static size_t page_round(size_t n)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    return (n + page - 1) / page * page;
}

/* The map lock: an flock on our own descriptor of data.mdb (LMDB locks only
 * lock.mdb, with fcntl, so this neither meets nor breaks its locks). Bounded:
 * a process stopped in the middle of a resize makes this fail, not hang. */
static int lock_map(int fd)
{
    for (int waited = 0;; waited++) {
        if (flock(fd, LOCK_EX | LOCK_NB) == 0) return 0;
        if (errno == EINTR) continue;
        if (errno != EWOULDBLOCK) return errno;
        if (waited >= MAP_LOCK_WAIT_MS) return EBUSY;
        struct timespec ms = { 0, 1000000 };
        nanosleep(&ms, NULL);
    }
}

static void unlock_map(int fd) { flock(fd, LOCK_UN); }

/* Give the file its blocks up to size, its length unchanged. */
static int reserve(int fd, off_t from, off_t size)
{
    if (size <= from) return 0;
    return fallocate(fd, FALLOC_FL_KEEP_SIZE, from, size - from) == 0 ? 0 : errno;
}

int cairn_lmdb_map_begin(cairn_env *sh, const char *dir, size_t *size, size_t *file_size)
{
    char data[PATH_MAX];
    sh->map_fd = -1;
    if ((size_t)snprintf(data, sizeof data, "%s/data.mdb", dir) >= sizeof data) return 0;
    for (int tries = 0; tries < 10; tries++) {
        int fd = open(data, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
        if (fd < 0) return 0; /* not writable here: LMDB decides (and reports) */
        struct stat st, now;
        if (lock_map(fd) != 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
            close(fd);
            return 0;
        }
        /* a store removed and made again meanwhile: lock the file that is there now */
        if (st.st_nlink == 0 || stat(data, &now) != 0 || now.st_ino != st.st_ino || now.st_dev != st.st_dev) {
            close(fd);
            continue;
        }
        size_t want = page_round(*size > (size_t)st.st_size ? *size : (size_t)st.st_size);
        sh->map_fd = fd;
        *size = want;
        *file_size = (size_t)st.st_size;
        return 1; /* locked until cairn_lmdb_map_end, after mdb_env_open */
    }
    return 0;
}

int cairn_lmdb_map_reserve(cairn_env *sh, size_t size)
{
    return reserve(sh->map_fd, 0, (off_t)size);
}

void cairn_lmdb_map_end(cairn_env *sh)
{
    if (sh->map_fd >= 0) unlock_map(sh->map_fd);
}

void cairn_lmdb_map_close(cairn_env *sh)
{
    if (sh->map_fd >= 0) close(sh->map_fd);
    sh->map_fd = -1;
}

int cairn_lmdb_map_grow(cairn_env *sh, size_t want, size_t *got)
{
    MDB_envinfo info;
    int rc = mdb_env_info(sh->env, &info);
    if (rc) return rc;
    size_t now = info.me_mapsize;
    if ((rc = lock_map(sh->map_fd)) != 0) return rc;
    struct stat st;
    if (fstat(sh->map_fd, &st) != 0) {
        rc = errno;
        unlock_map(sh->map_fd);
        return rc;
    }
    size_t file = (size_t)st.st_size, size = page_round(want > now ? want : now);
    if (file >= size) {
        size = file; /* another process grew it: adopt its size */
    } else {
        /* reserve what is new; on a disk with too little room for it, a smaller step */
        size_t base = file > now ? file : now;
        while ((rc = reserve(sh->map_fd, (off_t)file, (off_t)size)) == ENOSPC || rc == EDQUOT) {
            size_t step = (size - base) / 2;
            if (step < MIN_GROWTH || size <= base) break;
            size = page_round(base + step);
        }
    }
    if (rc == 0 && size != now) rc = mdb_env_set_mapsize(sh->env, size);
    unlock_map(sh->map_fd);
    if (rc == EDQUOT) rc = ENOSPC;
    if (rc == 0) *got = size;
    return rc;
}
