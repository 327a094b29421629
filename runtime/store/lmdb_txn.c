/*
 * lmdb_txn.c -- transactions on a shared LMDB environment: the map lock,
 * reads, and group commit.
 *
 * Many threads may use one environment, each through handles of its own (one
 * runtime per thread). Two things are shared and need care:
 *
 * The map. LMDB can resize its memory map only while no transaction of the
 * process is active, and a resize unmaps the pages every reader is looking
 * at. So every active transaction holds the environment's map lock shared,
 * and growing the map (ours filled up) or adopting a size another process
 * chose (MDB_MAP_RESIZED) takes it exclusive. A read transaction that is
 * reset between reads holds nothing and is still valid after a resize.
 *
 * The writer. LMDB allows one write transaction at a time, and a durable
 * commit costs an fsync. Saves that arrive while a commit is in progress
 * queue up; the next thread to lead takes the whole queue and commits it as
 * one write transaction with one fsync. A save that fails (a version
 * conflict, a bad event) fails alone: the group runs again without it
 * (commit_group), and the others still commit.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cairn.h"
#include "lmdb_engine.h"

/* How long a thread that must resize the map waits for other threads' reads
 * to end before it gives up with an error rather than hang. */
#define RESIZE_WAIT_S 10

/* Shared holds of map locks by this thread: a thread that holds one must not
 * wait for an exclusive hold (it would wait for itself). */
static __thread int shares_held;

int cairn_env_locks_init(cairn_env *sh)
{
    if (pthread_rwlock_init(&sh->map_lock, NULL) != 0) return ENOMEM;
    if (pthread_mutex_init(&sh->write_lock, NULL) != 0) {
        pthread_rwlock_destroy(&sh->map_lock);
        return ENOMEM;
    }
    pthread_condattr_t monotonic;
    int ok = pthread_condattr_init(&monotonic) == 0;
    if (ok) {
        pthread_condattr_setclock(&monotonic, CLOCK_MONOTONIC);
        ok = pthread_cond_init(&sh->arrived, &monotonic) == 0;
        pthread_condattr_destroy(&monotonic);
    }
    if (ok && pthread_cond_init(&sh->resized, NULL) != 0) {
        pthread_cond_destroy(&sh->arrived);
        ok = 0;
    }
    if (!ok) {
        pthread_mutex_destroy(&sh->write_lock);
        pthread_rwlock_destroy(&sh->map_lock);
        return ENOMEM;
    }
    return 0;
}

void cairn_env_locks_destroy(cairn_env *sh)
{
    pthread_cond_destroy(&sh->resized);
    pthread_cond_destroy(&sh->arrived);
    pthread_mutex_destroy(&sh->write_lock);
    pthread_rwlock_destroy(&sh->map_lock);
}

/* Resizes go first: while one waits, threads that hold no share wait at the
 * gate instead of taking new ones (a thread that holds one goes on, or it
 * would wait for itself). Without this, readers in a loop starve a resize. */
static void map_share(cairn_env *sh)
{
    if (shares_held == 0 && __atomic_load_n(&sh->resizing, __ATOMIC_ACQUIRE)) {
        pthread_mutex_lock(&sh->write_lock);
        while (sh->resizing) pthread_cond_wait(&sh->resized, &sh->write_lock);
        pthread_mutex_unlock(&sh->write_lock);
    }
    pthread_rwlock_rdlock(&sh->map_lock);
    shares_held++;
}

static void set_resizing(cairn_env *sh, int delta)
{
    pthread_mutex_lock(&sh->write_lock);
    __atomic_store_n(&sh->resizing, sh->resizing + delta, __ATOMIC_RELEASE);
    if (sh->resizing == 0) pthread_cond_broadcast(&sh->resized);
    pthread_mutex_unlock(&sh->write_lock);
}

static void map_unshare(cairn_env *sh)
{
    shares_held--;
    pthread_rwlock_unlock(&sh->map_lock);
}

/* Set the map size (0: adopt the size recorded in the store) with no
 * transaction active in the process. */
static int resize_map(cairn_lmdb *h, size_t size, const char *doing)
{
    cairn_env *sh = h->sh;
    if (shares_held > 0)
        return cairn_engine_fail(&h->base, CAIRN_INVALID,
                                 "cannot resize the map of %s while %s: this thread has a read open",
                                 h->base.where, doing);
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += RESIZE_WAIT_S;
    set_resizing(sh, 1);
    int locked = pthread_rwlock_timedwrlock(&sh->map_lock, &until) == 0;
    if (!locked) {
        set_resizing(sh, -1);
        return cairn_engine_fail(&h->base, EBUSY,
                                 "cannot resize the map of %s while %s: another thread kept a read open",
                                 h->base.where, doing);
    }
    int rc = 0;
    size_t got;
    if (sh->writemap) {
        rc = cairn_lmdb_map_grow(sh, size, &got); /* agreed with the other processes (lmdb_map.c) */
    } else if (size == 0) {
        rc = mdb_env_set_mapsize(sh->env, 0);
    } else {
        MDB_envinfo info;
        rc = mdb_env_info(sh->env, &info);
        if (rc == 0 && info.me_mapsize < size) rc = mdb_env_set_mapsize(sh->env, size);
    }
    pthread_rwlock_unlock(&sh->map_lock);
    set_resizing(sh, -1);
    return rc;
}

/* Begin a transaction holding the map lock shared (released by the caller
 * when the transaction ends), adopting a map another process has grown. */
static int begin_txn(cairn_lmdb *h, unsigned flags, MDB_txn **txn, const char *doing)
{
    int rc = 0;
    for (int tries = 0; tries < 100; tries++) {
        map_share(h->sh);
        rc = mdb_txn_begin(h->sh->env, NULL, flags, txn);
        if (rc == 0) return 0;
        map_unshare(h->sh);
        if (rc != MDB_MAP_RESIZED) break;
        rc = resize_map(h, 0, doing);
        if (rc) break;
    }
    return rc == EBUSY ? rc : cairn_lmdb_failure(h, rc, doing);
}

int cairn_lmdb_begin_read(cairn_lmdb *h)
{
    cairn_lmdb_read_end(&h->base);
    int rc;
    if (h->rtxn) {
        map_share(h->sh);
        rc = mdb_txn_renew(h->rtxn);
        if (rc == 0) {
            h->ractive = 1;
            h->unlocked_txnid = mdb_txn_id(h->rtxn);
            return CAIRN_OK;
        }
        map_unshare(h->sh);
        mdb_txn_abort(h->rtxn);
        h->rtxn = NULL;
    }
    rc = begin_txn(h, MDB_RDONLY, &h->rtxn, "starting a read");
    if (rc) { h->rtxn = NULL; return rc; }
    h->ractive = 1;
    h->unlocked_txnid = mdb_txn_id(h->rtxn);
    return CAIRN_OK;
}

int cairn_lmdb_read_still_valid(cairn_lmdb *h, const char *doing)
{
    MDB_envinfo info;
    if (!h->sh->unlocked || !h->ractive) return CAIRN_OK;
    if (mdb_env_info(h->sh->env, &info) == 0 && info.me_last_txnid == h->unlocked_txnid) return CAIRN_OK;
    return cairn_engine_fail(&h->base, CAIRN_STORE,
                             "store %s changed while %s without its lock file (this user may not write "
                             "lock.mdb, so reads cannot hold a snapshot): try again", h->base.where, doing);
}

/* Reads leave the pages they touched mapped into the process, so a scan of a
 * large store would count the whole file as resident. Every RELEASE_AFTER
 * bytes read, the handle lets the mapped pages go (they stay in the page
 * cache; any reader touching one again maps it back from there). Safe for
 * LMDB's shared file mapping, read-only or writable (a page written and not
 * yet on disk stays dirty in the page cache), also while other handles read
 * or write. */
#define RELEASE_AFTER ((size_t)4 << 20)

static void release_map(cairn_env *sh)
{
#ifdef __linux__
    /* LMDB does not say where it mapped the file: find the mapping of its inode */
    mdb_filehandle_t fd;
    struct stat st;
    if (mdb_env_get_fd(sh->env, &fd) || fstat(fd, &st)) return;
    FILE *maps = fopen("/proc/self/maps", "r");
    if (!maps) return;
    char line[512];
    while (fgets(line, sizeof line, maps)) {
        unsigned long lo, hi, off, ino;
        unsigned major, minor;
        char perms[8];
        /* only a shared mapping: dropping a private one's pages would drop its changes */
        if (sscanf(line, "%lx-%lx %7s %lx %x:%x %lu", &lo, &hi, perms, &off, &major, &minor, &ino) == 7 &&
            perms[3] == 's' && ino == (unsigned long)st.st_ino && major == major(st.st_dev) &&
            minor == minor(st.st_dev))
            madvise((void *)lo, hi - lo, MADV_DONTNEED); /* advice: nothing to do if refused */
    }
    fclose(maps);
#else
    (void)sh;
#endif
}

/* A writable map keeps the pages a writer touched mapped as well, and a
 * random insert into the stream index maps far more than its page (the page
 * cache keeps large folios, and a fault maps a whole one): an import of
 * 1,000,000 events would end with most of the file resident. So the writer
 * counts what it writes, and every WRITE_CHECK bytes it looks at how much
 * of files the process has mapped (statm's "shared"); past WRITE_RELEASE_AFTER more
 * than after its last release, it lets the map's pages go, also in the middle
 * of a write transaction (safe for a shared mapping: the pages and their
 * changes stay in the page cache, and a touch maps them back). */
#define WRITE_CHECK ((size_t)256 << 10)
#define WRITE_RELEASE_AFTER ((size_t)32 << 20)

static size_t mapped_file_bytes(void)
{
#ifdef __linux__
    char buf[128];
    int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    unsigned long size, resident, shared;
    if (n <= 0) return 0;
    buf[n] = '\0';
    if (sscanf(buf, "%lu %lu %lu", &size, &resident, &shared) != 3) return 0;
    return (size_t)shared * (size_t)sysconf(_SC_PAGESIZE);
#else
    return 0;
#endif
}

void cairn_lmdb_touched(cairn_env *sh, size_t bytes)
{
    if (!sh->writemap || (sh->written += bytes) < WRITE_CHECK) return;
    sh->written = 0;
    if (mapped_file_bytes() < sh->mapped + WRITE_RELEASE_AFTER) return;
    release_map(sh);
    sh->mapped = mapped_file_bytes();
}

/* After a commit: what it added to the file (views, snapshots, tracking). */
static void count_growth(cairn_env *sh)
{
    MDB_envinfo info;
    if (mdb_env_info(sh->env, &info) != 0) return;
    size_t used = ((size_t)info.me_last_pgno + 1) * sh->psize;
    if (used > sh->used && sh->used) cairn_lmdb_touched(sh, used - sh->used);
    sh->grown = used > sh->used && sh->used ? used - sh->used : 0;
    sh->used = used;
}

/* After a commit through the writable map: when a commit like it would not
 * fit in the map any more, grow the map now (as MDB_MAP_FULL would: doubling,
 * at most 1 GiB a step), so that the next one does not fail at the end of
 * its work and run again (a save of 1,000 events sealed and written twice).
 * Only when no transaction of the process is open and no thread waits to
 * open one, without waiting: otherwise, and on any failure, the map grows
 * as before when a commit meets MDB_MAP_FULL. */
static void grow_ahead(cairn_env *sh)
{
    MDB_envinfo info;
    if (!sh->writemap || sh->grown == 0 || shares_held > 0 || mdb_env_info(sh->env, &info) != 0) return;
    size_t size = info.me_mapsize, step = size < ((size_t)1 << 30) ? size : ((size_t)1 << 30);
    if (sh->used + 2 * sh->grown <= size) return;
    if (__atomic_load_n(&sh->resizing, __ATOMIC_ACQUIRE) || pthread_rwlock_trywrlock(&sh->map_lock) != 0) return;
    size_t got;
    (void)cairn_lmdb_map_grow(sh, size + step, &got); /* agreed with the other processes (lmdb_map.c) */
    pthread_rwlock_unlock(&sh->map_lock);
}

void cairn_lmdb_read_end(cairn_engine *e)
{
    cairn_lmdb *h = LMDB(e);
    if (h->rcur) { mdb_cursor_close(h->rcur); h->rcur = NULL; }
    if (h->lcur) { mdb_cursor_close(h->lcur); h->lcur = NULL; }
    if (h->ractive && h->walked >= RELEASE_AFTER) {
        release_map(h->sh); /* while the map is shared: no resize moves it meanwhile */
        h->walked = 0;
    }
    if (h->ractive) {
        mdb_txn_reset(h->rtxn);
        h->ractive = 0;
        map_unshare(h->sh);
    }
    h->reading = LREAD_NONE;
}

int cairn_lmdb_copy(cairn_engine *e, const char *dir)
{
    cairn_lmdb *h = LMDB(e);
    e->errmsg[0] = '\0';
    map_share(h->sh); /* the copy reads through a transaction of its own */
    int rc = mdb_env_copy2(h->sh->env, dir, MDB_CP_COMPACT);
    map_unshare(h->sh);
    return rc ? cairn_engine_fail(e, rc, "cannot copy %s to %s: %s", e->where, dir, mdb_strerror(rc)) : CAIRN_OK;
}

/* --- group commit --- */

#define PENDING 1           /* a request's rc before its group has settled it */
#define MAX_ROUNDS 8        /* groups a leader commits before it hands over */
#define GATHER_NS 50000     /* a leader gathers saves while each comes within this of the last */
#define GATHER_MAX_NS 500000 /* and for no longer than this */

/* A save waiting for (or in) a group commit; it lives on its thread's stack. */
typedef struct write_req {
    cairn_lmdb *h;
    const char *doing;
    cairn_lmdb_write_fn fn;
    void *ctx;
    int rc;
    int done;
    pthread_cond_t wake;        /* done, or its turn to lead */
    struct write_req *next;
} write_req;

/* NOSYNC is a flag of the environment, not of a transaction: the leader sets
 * it for its commit, and only when the mode changes (handles of one process
 * usually share one mode, so it is set once, at open). */
static void set_sync(cairn_env *sh, int nosync)
{
    if (sh->nosync == nosync) return;
    mdb_env_set_flags(sh->env, MDB_NOSYNC, nosync);
    sh->nosync = nosync;
}

/* Does the save ask for an fsync? (memory: stores never do) */
static int wants_fsync(const cairn_env *sh, const write_req *r)
{
    return !sh->is_private && r->h->sync != CAIRN_SYNC_NONE;
}

/* Settle every pending request of the group with rc (and r's message). */
static void settle_all(write_req *group, write_req *from, int rc)
{
    for (write_req *r = group; r; r = r->next) {
        if (r->rc != PENDING) continue;
        r->rc = rc;
        if (r != from) cairn_engine_fail(&r->h->base, rc, "%s", from->h->base.errmsg);
    }
}

/* The highest notification id in txn (0: none), recorded with each commit. */
static int last_log_id(cairn_env *sh, MDB_txn *txn, uint64_t *out)
{
    MDB_cursor *cur;
    MDB_val k, v;
    int rc = mdb_cursor_open(txn, sh->log, &cur);
    if (rc) return rc;
    rc = mdb_cursor_get(cur, &k, &v, MDB_LAST);
    if (rc == 0 && k.mv_size == 8) *out = cairn_get_be64(k.mv_data);
    mdb_cursor_close(cur);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

/*
 * Commit a group in one write transaction; sets every request's rc. The
 * saves run one after another in the transaction, each seeing the ones
 * before it. When one fails, the transaction is aborted, that save is
 * settled with its error, and the others run again without it: a failure
 * is rare, and this costs nothing when there is none (nested transactions
 * would cost an allocation of LMDB's dirty list for every save).
 */
static void commit_group(cairn_env *sh, write_req *group)
{
    for (write_req *r = group; r; r = r->next) r->rc = PENDING;
    for (;;) {
        write_req *first = NULL;
        int nosync = 1;
        for (write_req *r = group; r; r = r->next) {
            if (r->rc != PENDING) continue;
            if (!first) first = r;
            if (wants_fsync(sh, r)) nosync = 0;
        }
        if (!first) return; /* every save failed */
        MDB_txn *txn = NULL;
        int rc = begin_txn(first->h, 0, &txn, first->doing);
        if (rc) { settle_all(group, first, rc); return; }
        write_req *failed = NULL;
        sh->txn_log_last = 0;
        for (write_req *r = first; r && !failed; r = r->next) {
            if (r->rc != PENDING) continue;
            rc = r->fn(r->h, txn, r->ctx);
            if (rc) failed = r;
        }
        uint64_t max_id = 0;
        if (!failed) {
            /* only appends write the log, and the last one to write saw the others' ids */
            max_id = sh->txn_log_last;
            rc = max_id ? 0 : last_log_id(sh, txn, &max_id);
            set_sync(sh, nosync);
            if (rc == 0) rc = mdb_txn_commit(txn);
            else mdb_txn_abort(txn);
        } else {
            mdb_txn_abort(txn);
        }
        if (!failed && rc == 0 && sh->writemap) count_growth(sh); /* while shared: the map stays put */
        map_unshare(sh);
        if (!failed && rc == 0) grow_ahead(sh);
        if (rc == MDB_MAP_FULL) {
            /* double the map (by at most 1 GiB) and run the pending saves again */
            MDB_envinfo info;
            rc = mdb_env_info(sh->env, &info);
            size_t size = info.me_mapsize, step = size < ((size_t)1 << 30) ? size : ((size_t)1 << 30);
            if (rc == 0) rc = resize_map(first->h, size + step, "growing the map");
            if (rc == 0) continue;
            if (rc != EBUSY) rc = cairn_lmdb_failure(first->h, rc, "growing the map");
            settle_all(group, first, rc);
            return;
        }
        if (failed) {
            failed->rc = cairn_lmdb_failure(failed->h, rc, failed->doing);
            continue; /* the others again, without it */
        }
        if (rc) {
            settle_all(group, first, cairn_lmdb_failure(first->h, rc, first->doing));
            return;
        }
        for (write_req *r = group; r; r = r->next)
            if (r->rc == PENDING) r->rc = CAIRN_OK;
        /* after the commit, what LMDB says it is (a transaction that changed
         * nothing commits nothing): never ahead of the data file */
        MDB_envinfo info;
        if (mdb_env_info(sh->env, &info) == 0) cairn_wake_record_commit(sh->wake, info.me_last_txnid, max_id);
        cairn_wake_bump(sh->wake); /* after the commit: followers may look now */
        return;
    }
}

/* Take everything queued (under write_lock). When saves come from several
 * threads, the threads of the last group are most likely on their way back
 * with their next save: gather arrivals while they keep coming (each within
 * GATHER_NS of the last, for at most GATHER_MAX_NS), since one fsync for
 * all costs far less than one each. A lone writer never waits, and nobody
 * waits when no fsync is to be shared (sync=none). */
static int any_durable(const cairn_env *sh)
{
    for (const write_req *r = sh->queue; r; r = r->next)
        if (wants_fsync(sh, r)) return 1;
    return 0;
}

static write_req *take_queue(cairn_env *sh)
{
    if ((sh->waiting > 1 || sh->last_group > 1) && any_durable(sh)) {
        struct timespec start, until;
        clock_gettime(CLOCK_MONOTONIC, &start);
        sh->gathering = 1;
        for (;;) {
            int before = sh->waiting;
            clock_gettime(CLOCK_MONOTONIC, &until);
            long spent = (long)(until.tv_sec - start.tv_sec) * 1000000000L + (until.tv_nsec - start.tv_nsec);
            if (spent >= GATHER_MAX_NS) break;
            until.tv_nsec += GATHER_NS;
            if (until.tv_nsec >= 1000000000L) { until.tv_sec++; until.tv_nsec -= 1000000000L; }
            while (sh->waiting == before && pthread_cond_timedwait(&sh->arrived, &sh->write_lock, &until) == 0) {}
            if (sh->waiting == before) break; /* nobody came in time */
        }
        sh->gathering = 0;
    }
    if (sh->waiting > 0) sh->last_group = sh->waiting; /* an empty take says nothing */
    write_req *group = sh->queue;
    sh->queue = NULL;
    sh->queue_tail = &sh->queue;
    sh->waiting = 0;
    return group;
}

int cairn_lmdb_write(cairn_lmdb *h, const char *doing, cairn_lmdb_write_fn fn, void *ctx)
{
    cairn_env *sh = h->sh;
    write_req req = { .h = h, .doing = doing, .fn = fn, .ctx = ctx };
    if (h->read_only || sh->read_only)
        return cairn_engine_fail(&h->base, CAIRN_CONFIG, "store %s is open read-only%s", h->base.where,
                                 sh->read_only ? " (this user may not write its files)" : "");
    if (__atomic_load_n(&sh->damaged, __ATOMIC_ACQUIRE)) return cairn_lmdb_refuse_damaged(h, doing);
    /* a condition of its own: the leader wakes exactly the saves it settled */
    if (pthread_cond_init(&req.wake, NULL) != 0)
        return cairn_engine_fail(&h->base, ENOMEM, "out of memory while %s", doing);
    pthread_mutex_lock(&sh->write_lock);
    *sh->queue_tail = &req;
    sh->queue_tail = &req.next;
    sh->waiting++;
    if (sh->gathering) pthread_cond_signal(&sh->arrived);
    while (!req.done && sh->committing) pthread_cond_wait(&req.wake, &sh->write_lock);
    if (!req.done) {
        /* Lead: commit everything queued so far, this save among it. Saves
         * that queue meanwhile form the next group; the leader commits a few
         * more groups itself rather than wait for a waiter to wake and lead. */
        sh->committing = 1;
        write_req *group = take_queue(sh);
        for (int round = 0; group; round++) {
            pthread_mutex_unlock(&sh->write_lock);
            commit_group(sh, group);
            pthread_mutex_lock(&sh->write_lock);
            sh->groups++;
            for (write_req *r = group; r; r = r->next) { /* the waiters need the lock to return */
                r->done = 1;
                sh->grouped++;
                if (r != &req) pthread_cond_signal(&r->wake);
            }
            group = round + 1 < MAX_ROUNDS ? take_queue(sh) : NULL;
        }
        sh->committing = 0;
        if (sh->queue) pthread_cond_signal(&sh->queue->wake); /* the first waiter leads the rest */
    }
    pthread_mutex_unlock(&sh->write_lock);
    pthread_cond_destroy(&req.wake);
    return req.rc;
}

void cairn_lmdb_group_stats(cairn_engine *e, uint64_t *groups, uint64_t *saves)
{
    cairn_env *sh = LMDB(e)->sh;
    pthread_mutex_lock(&sh->write_lock);
    *groups = sh->groups;
    *saves = sh->grouped;
    pthread_mutex_unlock(&sh->write_lock);
}
