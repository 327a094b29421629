/*
 * lmdb_env.c -- opening LMDB stores: directories, the environment registry
 * (one environment per directory per process, shared by its handles), and
 * the databases, which the first writer makes and every other open only
 * reads (lmdb_engine.h has the layout).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cairn.h"
#include "lmdb_engine.h"

/* The initial map: a writable map's blocks are reserved on disk (lmdb_map.c),
 * so it starts small and grows (doubling, at most 1 GiB a step); a read-only
 * map only takes address space. */
#define WRITEMAP_MAP_SIZE ((size_t)1 << 20)
#define WRITEMAP_MIN_SIZE ((size_t)64 << 10) /* room for a new store's databases */
#define DEFAULT_MAP_SIZE ((size_t)256 << 20)
#define MEMORY_MAP_SIZE ((size_t)64 << 20)

static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static cairn_env *registry;

/* mkdir -p, leaving errno set on failure. */
static int make_dirs(const char *path)
{
    char buf[PATH_MAX];
    size_t len = strlen(path);
    if (len == 0 || len >= sizeof buf) { errno = ENAMETOOLONG; return -1; }
    memcpy(buf, path, len + 1);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/') continue;
        *p = '\0';
        if (mkdir(buf, 0755) != 0 && errno != EEXIST) return -1;
        *p = '/';
    }
    if (mkdir(buf, 0755) != 0 && errno != EEXIST) return -1;
    struct stat st;
    if (stat(buf, &st) != 0) return -1;
    if (!S_ISDIR(st.st_mode)) { errno = ENOTDIR; return -1; }
    return 0;
}

/* Check the format record of an existing store. */
static int check_format(cairn_env *sh, MDB_txn *txn, char *err, size_t errlen)
{
    MDB_val k = { 6, "format" }, v;
    int rc = mdb_get(txn, sh->meta, &k, &v);
    if (rc == 0 && v.mv_size == 4) {
        const uint8_t *p = v.mv_data;
        unsigned fmt = (unsigned)p[0] << 24 | (unsigned)p[1] << 16 | (unsigned)p[2] << 8 | p[3];
        if (fmt == CAIRN_STORE_FORMAT) return 0;
        snprintf(err, errlen, "store %s has format %u; this cairn reads format %d%s", sh->path, fmt,
                 CAIRN_STORE_FORMAT, fmt > CAIRN_STORE_FORMAT ? " (it was written by a newer cairn)" : "");
        return CAIRN_CONFIG;
    }
    if (rc == 0 || rc == MDB_NOTFOUND) {
        snprintf(err, errlen, "store %s has no valid format record", sh->path);
        return CAIRN_CONFIG;
    }
    snprintf(err, errlen, "cannot open store %s: %s", sh->path, mdb_strerror(rc));
    return rc;
}

/* LMDB's default key order (mdb_cmp_memn: bytewise over the shorter length,
 * then the shorter first), compared eight bytes at a step. The same order,
 * so every process and tool agrees on the trees whichever one it uses; a
 * B-tree step compares a dozen keys or more, and for the log's 8-byte and
 * the stream index's 24-byte keys this costs a third of memcmp's call. */
int cairn_lmdb_compare_keys(const MDB_val *a, const MDB_val *b)
{
    const uint8_t *p = a->mv_data, *q = b->mv_data;
    size_t n = a->mv_size < b->mv_size ? a->mv_size : b->mv_size, i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t x = cairn_get_be64(p + i), y = cairn_get_be64(q + i);
        if (x != y) return x < y ? -1 : 1;
    }
    for (; i < n; i++)
        if (p[i] != q[i]) return p[i] < q[i] ? -1 : 1;
    return a->mv_size < b->mv_size ? -1 : a->mv_size > b->mv_size;
}

/* Open the named databases with `flags` in txn (MDB_CREATE: make missing ones). */
static int open_dbis(cairn_env *sh, MDB_txn *txn, unsigned flags)
{
    int rc = mdb_dbi_open(txn, "log", flags, &sh->log);
    if (rc == 0) rc = mdb_dbi_open(txn, "streams", flags, &sh->streams);
    /* the trees every read and save walks: the quicker compare (set before any use) */
    if (rc == 0) rc = mdb_set_compare(txn, sh->log, cairn_lmdb_compare_keys);
    if (rc == 0) rc = mdb_set_compare(txn, sh->streams, cairn_lmdb_compare_keys);
    if (rc == 0) rc = mdb_dbi_open(txn, "tracking", flags, &sh->tracking);
    if (rc == 0) rc = mdb_dbi_open(txn, "snapshots", flags, &sh->snapshots);
    if (rc == 0) rc = mdb_dbi_open(txn, "views", flags, &sh->views);
    if (rc == 0) {
        /* added later (lmdb_dcb.c): a store made before has it from its first writer */
        rc = mdb_dbi_open(txn, "index", flags, &sh->index);
        sh->no_index = rc == MDB_NOTFOUND;
        if (sh->no_index) rc = 0;
    }
    return rc;
}

/* An environment without our meta database: empty (a new store) or someone else's. */
static int foreign_data(MDB_txn *txn, int *foreign)
{
    MDB_dbi main;
    MDB_stat st;
    int rc = mdb_dbi_open(txn, NULL, 0, &main);
    if (rc == 0) rc = mdb_stat(txn, main, &st);
    *foreign = rc == 0 && st.ms_entries > 0;
    return rc;
}

/*
 * Open the named databases. Every open first does it in a read transaction
 * (write 0), so that opening a store writes nothing: it works beside a
 * writer stopped in the middle of a commit, and for a user who may only read
 * the files. *is_new is then set when the store has yet to be made, which
 * the first writer does in a write transaction (write 1: the meta record and
 * every database; another process may have made them meanwhile).
 */
static int setup_databases(cairn_env *sh, int write, int *is_new, char *err, size_t errlen)
{
    MDB_txn *txn = NULL;
    *is_new = 0;
    int rc = mdb_txn_begin(sh->env, NULL, write ? 0 : MDB_RDONLY, &txn);
    if (rc == 0) rc = mdb_dbi_open(txn, "meta", 0, &sh->meta);
    if (rc == MDB_NOTFOUND) {
        int foreign = 0;
        rc = foreign_data(txn, &foreign);
        if (rc == 0 && foreign) rc = MDB_INCOMPATIBLE;
        else if (rc == 0 && !write) rc = MDB_NOTFOUND;
        else if (rc == 0) rc = mdb_dbi_open(txn, "meta", MDB_CREATE, &sh->meta);
        if (rc == 0) {
            uint8_t fmt[4] = { 0, 0, 0, CAIRN_STORE_FORMAT };
            MDB_val k = { 6, "format" }, v = { 4, fmt };
            rc = mdb_put(txn, sh->meta, &k, &v, 0);
        }
    } else if (rc == 0) {
        rc = check_format(sh, txn, err, errlen);
    }
    if (rc == 0) rc = open_dbis(sh, txn, write ? MDB_CREATE : 0);
    if (rc == MDB_NOTFOUND && !write) {
        mdb_txn_abort(txn);
        *is_new = 1; /* the store, or one of its databases, is for the first writer to make */
        return 0;
    }
    if (rc == 0) {
        rc = mdb_txn_commit(txn); /* a read transaction's commit keeps its database handles */
        txn = NULL;
    }
    /* only `index` missing: a writer makes it, a reader goes without */
    if (rc == 0 && sh->no_index && !write) *is_new = 2;
    if (rc == 0) return 0;
    if (txn) mdb_txn_abort(txn);
    if (rc == MDB_INCOMPATIBLE) {
        snprintf(err, errlen, "%s is an LMDB environment but not a cairn store", sh->path);
        return CAIRN_CONFIG;
    }
    if (rc == MDB_CORRUPTED || rc == MDB_PAGE_NOTFOUND) {
        snprintf(err, errlen, "store %s damaged at a page LMDB finds broken (%s), while opening it", sh->path,
                 mdb_strerror(rc));
        return CAIRN_CORRUPT;
    }
    if (!CAIRN_IS_OWN_CODE(rc)) snprintf(err, errlen, "cannot open store %s: %s", sh->path, mdb_strerror(rc));
    return rc;
}

/* The read-only first step of setup_databases, guarded: the first pages a
 * store's open reads may be damaged (lmdb_fault.c). */
static int setup_databases_guarded(cairn_env *sh, int *is_new, char *err, size_t errlen)
{
    cairn_fault_frame f;
    cairn_fault_enter(&f);
    if (sigsetjmp(f.jb, 0)) {
        cairn_fault_leave(&f);
        snprintf(err, errlen, "store %s damaged at the pages that name its databases: restore it from a copy",
                 sh->path);
        sh->damaged = 1;
        return CAIRN_CORRUPT;
    }
    int rc = setup_databases(sh, 0, is_new, err, errlen);
    cairn_fault_leave(&f);
    return rc;
}

/* LMDB makes lock.mdb with ftruncate (a file of holes) and writes it through
 * a shared map: on a full disk that write finds no block and the process
 * dies with SIGBUS. Give the file its blocks first, so that a full disk is an
 * error here. The size is LMDB's for its default 126 readers (a bigger file
 * only gives more reader slots). Where the directory may not be written,
 * LMDB opens read-only instead (env_open_flags): nothing to do. */
#define LOCK_FILE_BYTES 8192
static int reserve_lock_file(const char *lock, char *err, size_t errlen)
{
    int fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (fd < 0) return 0;
    struct stat st;
    off_t size = fstat(fd, &st) == 0 && st.st_size > LOCK_FILE_BYTES ? st.st_size : LOCK_FILE_BYTES;
    int rc = posix_fallocate(fd, 0, size);
    close(fd);
    if (rc != ENOSPC && rc != EDQUOT) return 0; /* done, or a file system without fallocate: as before */
    snprintf(err, errlen, "disk full: cannot make the lock file %s (%s)", lock, strerror(rc));
    return ENOSPC;
}

/* A fresh directory for a memory: store, under $TMPDIR or /tmp. */
static int private_dir(char *out, size_t len, char *err, size_t errlen)
{
    const char *tmp = getenv("TMPDIR");
    if (!tmp || !*tmp) tmp = "/tmp";
    if ((size_t)snprintf(out, len, "%s/cairn-memory-XXXXXX", tmp) >= len || !mkdtemp(out)) {
        int e = errno ? errno : ENAMETOOLONG;
        snprintf(err, errlen, "cannot make a memory: store in %s: %s", tmp, strerror(e));
        return e;
    }
    return 0;
}

/* Remove a memory: store's files once LMDB has them open. */
static void unlink_private(const char *dir)
{
    char file[PATH_MAX + 16];
    if ((size_t)snprintf(file, sizeof file, "%s/data.mdb", dir) < sizeof file) unlink(file);
    if ((size_t)snprintf(file, sizeof file, "%s/lock.mdb", dir) < sizeof file) unlink(file);
    rmdir(dir);
}

/* A data file shorter than its last committed page (truncated by a copy, a
 * full disk or a crash with sync=none) would make LMDB read past its end
 * through the map, which kills the process with SIGBUS: refuse it here. */
static int check_file_size(cairn_env *sh, size_t before, char *err, size_t errlen)
{
    MDB_envinfo info;
    MDB_stat st;
    int fd;
    struct stat fs;
    if (mdb_env_info(sh->env, &info) || mdb_env_stat(sh->env, &st) || mdb_env_get_fd(sh->env, &fd) ||
        fstat(fd, &fs) != 0)
        return 0; /* nothing to compare with: let LMDB report what it finds */
    /* a writable map's open has set the file's size to the map's: judge the size it had
     * (an empty file is a new store, which LMDB has just begun) */
    unsigned long long size = sh->writemap ? before : (unsigned long long)fs.st_size;
    unsigned long long need = ((unsigned long long)info.me_last_pgno + 1) * st.ms_psize;
    if (size >= need || (sh->writemap && before == 0)) return 0;
    snprintf(err, errlen, "store %s is damaged: its data file is truncated (%llu bytes, the last commit needs %llu)",
             sh->path, size, need);
    return CAIRN_CORRUPT;
}

/* Open the LMDB environment of a directory. A read-only open that may not
 * write the files (a user with read permission only, a read-only mount)
 * falls back to MDB_RDONLY, and, when even lock.mdb cannot be written, to
 * MDB_NOLOCK (see cairn_lmdb_read_still_valid and docs/ARCHITECTURE.md);
 * so does one whose lock file could not be given its blocks (!lock_ok). */
static int env_open_flags(cairn_env *sh, const char *path, unsigned flags, size_t map, int read_only, int lock_ok)
{
    int rc = lock_ok ? mdb_env_open(sh->env, path, flags, 0644) : ENOSPC;
    if (!read_only || (rc != EACCES && rc != EPERM && rc != EROFS && rc != ENOSPC)) return rc;
    /* a failed mdb_env_open leaves the environment unusable: make it again */
    unsigned tries[] = { MDB_RDONLY, MDB_RDONLY | MDB_NOLOCK };
    for (size_t i = lock_ok ? 0 : 1; i < 2; i++) {
        mdb_env_close(sh->env);
        sh->env = NULL;
        rc = mdb_env_create(&sh->env);
        if (rc == 0) rc = mdb_env_set_maxdbs(sh->env, 16);
        if (rc == 0) rc = mdb_env_set_mapsize(sh->env, map);
        if (rc == 0) rc = mdb_env_open(sh->env, path, (flags & ~MDB_NOSYNC) | tries[i], 0444);
        if (rc == 0) {
            sh->read_only = 1;
            sh->unlocked = (tries[i] & MDB_NOLOCK) != 0;
            return 0;
        }
        if (rc != EACCES && rc != EPERM && rc != EROFS) return rc;
    }
    return rc;
}

static int open_env(const char *path, const cairn_engine_options *opt, cairn_env **out, char *err, size_t errlen)
{
    cairn_env *sh = calloc(1, sizeof *sh);
    if (!sh || cairn_env_locks_init(sh) != 0) {
        free(sh);
        snprintf(err, errlen, "out of memory opening %s", path ? path : "memory:");
        return ENOMEM;
    }
    sh->queue_tail = &sh->queue;
    sh->map_fd = -1;
    char dir[PATH_MAX], lock[PATH_MAX + 16];
    int rc = 0, had_lock = 1, is_new = 0, lock_ok = 1;
    size_t file_size = 0; /* the data file's size before a writable map's open set it */
    if (!path) {
        rc = private_dir(dir, sizeof dir, err, errlen);
        if (rc) { cairn_env_locks_destroy(sh); free(sh); return rc; }
        sh->is_private = 1;
        path = dir;
    }
    int read_only = (opt->read_only || opt->must_exist) && !sh->is_private; /* may fall back to reading */
    sh->path = strdup(path);
    rc = sh->path ? mdb_env_create(&sh->env) : ENOMEM;
    if (rc == 0) rc = mdb_env_set_maxdbs(sh->env, 16);
    size_t map = opt->map_size ? opt->map_size : sh->is_private ? MEMORY_MAP_SIZE : DEFAULT_MAP_SIZE;
    if (rc == 0) rc = mdb_env_set_mapsize(sh->env, map);
    if (rc) {
        snprintf(err, errlen, "cannot open store %s: %s", path, mdb_strerror(rc));
        goto fail;
    }
    /* a refused directory keeps no lock file of ours */
    struct stat ls;
    if (!sh->is_private && (size_t)snprintf(lock, sizeof lock, "%s/lock.mdb", path) < sizeof lock) {
        had_lock = stat(lock, &ls) == 0;
        if ((rc = reserve_lock_file(lock, err, errlen)) != 0) {
            if (!had_lock) unlink(lock);
            if (!read_only) goto fail;
            lock_ok = 0; /* a reader goes on without the lock file */
        }
    }
    /* A writer writes through the map when its size is agreed and its blocks
     * reserved (lmdb_map.c); the tools (must_exist) mostly read, and open as before. */
    if (!read_only) {
        size_t agreed = opt->map_size ? opt->map_size : WRITEMAP_MAP_SIZE;
        if (agreed < WRITEMAP_MIN_SIZE) agreed = WRITEMAP_MIN_SIZE;
        sh->writemap = cairn_lmdb_map_begin(sh, path, &agreed, &file_size);
        if (sh->writemap) map = agreed;
        if (sh->writemap && (rc = mdb_env_set_mapsize(sh->env, map)) != 0) {
            snprintf(err, errlen, "cannot open store %s: %s", path, mdb_strerror(rc));
            goto fail;
        }
    }
    /* MDB_NOTLS: read transactions belong to handles, not threads */
    sh->nosync = opt->sync == CAIRN_SYNC_NONE || sh->is_private;
    unsigned flags = MDB_NOTLS | (sh->nosync ? MDB_NOSYNC : 0) | (sh->writemap ? MDB_WRITEMAP : 0);
    rc = env_open_flags(sh, path, flags, map, read_only, lock_ok);
    if (rc == 0 && sh->writemap && cairn_lmdb_map_reserve(sh, map) != 0) {
        /* no room on the disk for the map's blocks (or no fallocate here): nothing
         * was written through it; open again to write with pwrite, as before */
        mdb_env_close(sh->env);
        sh->env = NULL;
        sh->writemap = 0;
        rc = mdb_env_create(&sh->env);
        if (rc == 0) rc = mdb_env_set_maxdbs(sh->env, 16);
        if (rc == 0) rc = mdb_env_set_mapsize(sh->env, map);
        if (rc == 0) rc = mdb_env_open(sh->env, path, flags & ~MDB_WRITEMAP, 0644);
    }
    if (rc) {
        if (rc == MDB_INVALID || rc == MDB_VERSION_MISMATCH || rc == EISDIR) {
            snprintf(err, errlen, "%s does not hold an LMDB store (%s)", path, mdb_strerror(rc));
            rc = CAIRN_CONFIG;
        } else {
            snprintf(err, errlen, "cannot open store %s: %s", path, mdb_strerror(rc));
        }
        goto fail;
    }
    MDB_stat est;
    sh->psize = mdb_env_stat(sh->env, &est) == 0 ? est.ms_psize : 0;
    cairn_lmdb_fault_setup(sh->env);
    if (sh->is_private) unlink_private(path);
    else if ((rc = check_file_size(sh, file_size, err, errlen)) != 0) goto fail;
    rc = setup_databases_guarded(sh, &is_new, err, errlen);
    if (rc == 0 && is_new == 2 && (opt->read_only || sh->read_only)) is_new = 0;
    if (rc == 0 && is_new && opt->read_only && !sh->is_private) {
        snprintf(err, errlen, "no store at %s", path);
        rc = CAIRN_CONFIG;
    }
    if (rc == 0 && is_new) rc = setup_databases(sh, 1, &is_new, err, errlen);
    /* Until here no writer through the map could grow the file and commit past
     * its old end (the check above, and the first transactions, which would
     * meet MDB_MAP_RESIZED): other processes may resize again */
    cairn_lmdb_map_end(sh);
    if (rc) goto fail;
    sh->wake = cairn_wake_open(sh->is_private ? NULL : path, !sh->read_only); /* NULL: followers poll */
    *out = sh;
    return CAIRN_OK;
fail:
    if (sh->env) mdb_env_close(sh->env);
    cairn_lmdb_map_end(sh);
    cairn_lmdb_map_close(sh);
    if (sh->is_private) unlink_private(path);
    else if (!had_lock && (rc == CAIRN_CONFIG || rc == CAIRN_CORRUPT || rc == ENOSPC)) unlink(lock);
    cairn_env_locks_destroy(sh);
    free(sh->path);
    free(sh);
    return rc;
}

static void env_release(cairn_env *sh)
{
    if (--sh->refs > 0) return;
    for (cairn_env **e = &registry; *e; e = &(*e)->next)
        if (*e == sh) { *e = sh->next; break; }
    mdb_env_close(sh->env);
    cairn_lmdb_map_close(sh);
    cairn_wake_close(sh->wake);
    cairn_env_locks_destroy(sh);
    free(sh->path);
    free(sh);
}

void cairn_lmdb_close(cairn_engine *e)
{
    cairn_lmdb *h = LMDB(e);
    cairn_env *sh = h->sh;
    cairn_lmdb_read_end(e);
    if (h->rtxn) mdb_txn_abort(h->rtxn);
    pthread_mutex_lock(&registry_lock);
    env_release(sh);
    pthread_mutex_unlock(&registry_lock);
    free(h);
}

/* Does a directory without a store hold files of its own (a typo'd path, a
 * project folder)? Then it is not silently made a store. 1 yes, 0 no. */
static int holds_other_files(const char *path, char *err, size_t errlen)
{
    char data[PATH_MAX];
    struct stat st;
    if ((size_t)snprintf(data, sizeof data, "%s/data.mdb", path) >= sizeof data || stat(data, &st) == 0) return 0;
    DIR *dir = opendir(path);
    if (!dir) return 0; /* missing: it is made below */
    const char *other = NULL;
    struct dirent *e;
    while (!other && (e = readdir(dir)) != NULL) {
        const char *n = e->d_name;
        /* a store's own files; data.mdb may appear after the stat above when
         * another process is making the store right now */
        if (strcmp(n, ".") && strcmp(n, "..") && strcmp(n, "data.mdb") && strcmp(n, "lock.mdb") &&
            strcmp(n, "wake"))
            other = n;
    }
    if (other)
        snprintf(err, errlen, "%s holds other files (%s) and no store: name a new or empty directory for a store",
                 path, other);
    closedir(dir);
    return other != NULL;
}

/* Find or open the shared environment of a directory. */
static int find_env(const char *path, const cairn_engine_options *opt, cairn_env **out, char *err, size_t errlen)
{
    if (opt->must_exist || opt->read_only) {
        char data[PATH_MAX];
        struct stat st;
        if ((size_t)snprintf(data, sizeof data, "%s/data.mdb", path) >= sizeof data || stat(data, &st) != 0) {
            snprintf(err, errlen, "no store at %s", path);
            return CAIRN_CONFIG;
        }
    } else if (holds_other_files(path, err, errlen)) {
        return CAIRN_CONFIG;
    } else if (make_dirs(path) != 0) {
        int e = errno;
        snprintf(err, errlen, "cannot use %s as a store directory: %s", path, strerror(e));
        return e == ENOTDIR || e == ENAMETOOLONG ? CAIRN_CONFIG : e;
    }
    char real[PATH_MAX];
    if (!realpath(path, real)) {
        int e = errno;
        snprintf(err, errlen, "cannot resolve store path %s: %s", path, strerror(e));
        return e;
    }
    cairn_env *sh = registry;
    while (sh && strcmp(sh->path, real) != 0) sh = sh->next;
    if (sh) {
        if (sh->read_only && !opt->read_only && !opt->must_exist) {
            snprintf(err, errlen, "store %s is open read-only in this process (its files are not writable here)",
                     real);
            return CAIRN_CONFIG;
        }
        /* a writer joining an environment first opened to read: it needs the wake word */
        if (!opt->read_only && !sh->wake) sh->wake = cairn_wake_open(sh->path, 1);
        *out = sh;
        return CAIRN_OK;
    }
    int rc = open_env(real, opt, &sh, err, errlen);
    if (rc) return rc;
    sh->next = registry;
    registry = sh;
    *out = sh;
    return CAIRN_OK;
}

int cairn_lmdb_open(const char *path, const cairn_engine_options *opt, cairn_engine **out, char *err,
                    size_t errlen)
{
    cairn_lmdb *h = calloc(1, sizeof *h);
    if (!h) { snprintf(err, errlen, "out of memory opening %s", path ? path : "memory:"); return ENOMEM; }
    cairn_env *sh = NULL;
    int rc;
    pthread_mutex_lock(&registry_lock);
    rc = path ? find_env(path, opt, &sh, err, errlen) : open_env(NULL, opt, &sh, err, errlen);
    if (rc == CAIRN_OK) sh->refs++;
    pthread_mutex_unlock(&registry_lock);
    if (rc != CAIRN_OK) { free(h); return rc; }
    h->base.ops = &cairn_lmdb_engine;
    h->base.name = sh->is_private ? "memory" : "lmdb";
    h->base.where = sh->is_private ? "memory:" : sh->path;
    h->sh = sh;
    h->sync = sh->is_private ? CAIRN_SYNC_NONE : opt->sync;
    h->read_only = opt->read_only || sh->read_only;
    h->base.read_only = sh->read_only && !sh->is_private ? CAIRN_ENGINE_UNWRITABLE : opt->read_only ? CAIRN_ENGINE_ASKED : 0;
    *out = &h->base;
    return CAIRN_OK;
}
