/* lmdb_error.c -- LMDB and system failures of the LMDB engine as messages. */
#include <errno.h>
#include <lmdb.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "cairn.h"
#include "lmdb_engine.h"

/* LMDB reports a short write as EIO (mdb_page_flush): when the store's
 * filesystem has (next to) nothing left, that was a full disk. */
static int disk_is_full(cairn_env *sh)
{
    int fd;
    struct statvfs fs;
    if (mdb_env_get_fd(sh->env, &fd) != 0 || fstatvfs(fd, &fs) != 0) return 0;
    unsigned long long blocks = geteuid() == 0 ? fs.f_bfree : fs.f_bavail;
    return blocks * fs.f_frsize < ((unsigned long long)1 << 20);
}

int cairn_lmdb_failure(cairn_lmdb *h, int rc, const char *doing)
{
    if (rc == CAIRN_OK || CAIRN_IS_OWN_CODE(rc)) return rc;
    cairn_engine *e = &h->base;
    if (rc == EIO && disk_is_full(h->sh)) rc = ENOSPC;
    if (rc == ENOSPC) return cairn_engine_fail(e, rc, "disk full while %s in %s", doing, e->where);
    if (rc == MDB_CORRUPTED || rc == MDB_PAGE_NOTFOUND)
        return cairn_engine_fail(e, CAIRN_CORRUPT, "store %s damaged at a page LMDB finds broken (%s), while %s",
                                 e->where, mdb_strerror(rc), doing);
    return cairn_engine_fail(e, rc, "store %s: %s while %s", e->where, mdb_strerror(rc), doing);
}
