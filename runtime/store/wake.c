/*
 * wake.c -- waking followers when a store changes, across processes.
 *
 * Beside LMDB's files each store directory holds `wake`: 64 bytes mapped
 * shared by every process that opens the store. Word 0 is a sequence number
 * that every write transaction bumps after it commits; bytes 8..23 hold the
 * newest commit (LMDB's transaction id and the highest notification id,
 * cairn_wake_record_commit) for verify; word 1 counts the
 * processes sleeping on it, so writers make the FUTEX_WAKE system call only
 * when somebody waits. A follower notes the sequence, reads what is new, and
 * sleeps in FUTEX_WAIT until the sequence moves (a futex on a shared file
 * mapping is keyed by inode and offset, so unrelated processes meet there).
 *
 * The file gets its blocks before it is mapped (posix_fallocate, not
 * ftruncate): a write through the map to a hole on a full disk is a SIGBUS.
 * When the file cannot be created, given its blocks or mapped (a read-only directory, a file
 * system without shared mappings, `wake` taken by something else) the store
 * has no wake word and waiting falls back to polling. `memory:` stores get a
 * process-local word: nobody else can write them.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "cairn.h"
#include "mapper.h"
#include "wake.h"

#define WAKE_FILE_SIZE 64
#define POLL_MIN_S 0.001
#define POLL_MAX_S 0.05

struct cairn_wake {
    uint32_t *words;    /* [0] sequence, [1] sleepers */
    int mapped;         /* a shared file mapping (else malloc'd, process-local) */
};

static volatile sig_atomic_t *interrupt_flag;

void cairn_wake_set_interrupt_flag(volatile sig_atomic_t *flag) { interrupt_flag = flag; }

cairn_wake *cairn_wake_open(const char *dir, int create)
{
    cairn_wake *w = calloc(1, sizeof *w);
    if (!w) return NULL;
    if (dir) {
        char path[PATH_MAX];
        if ((size_t)snprintf(path, sizeof path, "%s/wake", dir) < sizeof path) {
            int fd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW | (create ? O_CREAT : 0), 0644);
            struct stat st;
            if (fd >= 0 && (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) ||
                            posix_fallocate(fd, 0, WAKE_FILE_SIZE) != 0)) {
                close(fd);
                fd = -1;
            }
            if (fd >= 0) {
                void *p = mmap(NULL, WAKE_FILE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
                close(fd); /* the mapping keeps the file */
                if (p != MAP_FAILED) {
                    w->words = p;
                    w->mapped = 1;
                    return w;
                }
            }
        }
        free(w);
        return NULL; /* no wake word: followers poll */
    }
    w->words = calloc(2, sizeof *w->words);
    if (!w->words) { free(w); return NULL; }
    return w;
}

void cairn_wake_close(cairn_wake *w)
{
    if (!w) return;
    if (w->mapped) munmap(w->words, WAKE_FILE_SIZE);
    else free(w->words);
    free(w);
}

uint32_t *cairn_wake_words(cairn_wake *w) { return w ? w->words : NULL; }

void cairn_wake_bump(cairn_wake *w)
{
    if (!w) return;
    __atomic_add_fetch(&w->words[0], 1, __ATOMIC_SEQ_CST);
    if (__atomic_load_n(&w->words[1], __ATOMIC_SEQ_CST) > 0)
        syscall(SYS_futex, &w->words[0], FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
}

/* The commit words: u64 at bytes 8 and 16 of the (page-aligned) mapping. */
static uint64_t *commit_words(cairn_wake *w) { return w && w->mapped ? (uint64_t *)(void *)(w->words + 2) : NULL; }

static void atomic_max(uint64_t *word, uint64_t v)
{
    uint64_t old = __atomic_load_n(word, __ATOMIC_RELAXED);
    while (old < v && !__atomic_compare_exchange_n(word, &old, v, 1, __ATOMIC_SEQ_CST, __ATOMIC_RELAXED)) {}
}

void cairn_wake_record_commit(cairn_wake *w, uint64_t txnid, uint64_t max_id)
{
    uint64_t *c = commit_words(w);
    if (!c) return;
    atomic_max(&c[0], txnid);
    atomic_max(&c[1], max_id);
}

int cairn_wake_last_commit(cairn_wake *w, uint64_t *txnid, uint64_t *max_id)
{
    uint64_t *c = commit_words(w);
    if (!c) return 0;
    *txnid = __atomic_load_n(&c[0], __ATOMIC_SEQ_CST);
    *max_id = __atomic_load_n(&c[1], __ATOMIC_SEQ_CST);
    return *txnid != 0;
}

int cairn_store_wake_seq(cairn_store *s, uint32_t *seq)
{
    uint32_t *words = s->eng->ops->wake_word(s->eng);
    if (!words) return s->eng->ops->wake_seq ? s->eng->ops->wake_seq(s->eng, seq) : 0;
    *seq = __atomic_load_n(&words[0], __ATOMIC_SEQ_CST);
    return 1;
}

static void sleep_s(double s)
{
    struct timespec ts = { (time_t)s, (long)((s - (double)(time_t)s) * 1e9) };
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR && !(interrupt_flag && *interrupt_flag)) {}
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* futex_waitv (Linux 5.16): sleep until any of several words moves. */
#ifndef SYS_futex_waitv
#define SYS_futex_waitv 449
#endif
struct waitv_entry { uint64_t val, uaddr; uint32_t flags, reserved; };
#define WAITV_U32 2

int cairn_store_wait(cairn_store *const *stores, const uint32_t *seen, size_t n, double timeout_s, double poll_s)
{
    enum { MAX = 16 };
    if (n == 0 || n > MAX) return CAIRN_INVALID;
    if (interrupt_flag && *interrupt_flag) return CAIRN_INTERRUPTED;
    uint32_t *words[MAX];
    const cairn_engine_ops *one = stores[0]->eng->ops;
    if (n == 1 && one->wait && !one->wake_word(stores[0]->eng)) { /* the engine's own way to wait */
        int rc = one->wait(stores[0]->eng, seen[0], timeout_s);
        /* a signal ends its sleep early: say whether it was a trapped one */
        return rc == CAIRN_OK && interrupt_flag && *interrupt_flag ? CAIRN_INTERRUPTED : rc;
    }
    for (size_t i = 0; i < n; i++) {
        words[i] = stores[i]->eng->ops->wake_word(stores[i]->eng);
        if (!words[i]) { /* one store without a wake word: poll them all */
            sleep_s(timeout_s < poll_s ? timeout_s : poll_s);
            return interrupt_flag && *interrupt_flag ? CAIRN_INTERRUPTED : CAIRN_OK;
        }
    }
    for (size_t i = 0; i < n; i++) __atomic_add_fetch(&words[i][1], 1, __ATOMIC_SEQ_CST);
    int changed = 0;
    for (size_t i = 0; i < n; i++)
        if (__atomic_load_n(&words[i][0], __ATOMIC_SEQ_CST) != seen[i]) changed = 1;
    int rc = 0;
    if (!changed) {
        if (n == 1) {
            struct timespec ts = { (time_t)timeout_s, (long)((timeout_s - (double)(time_t)timeout_s) * 1e9) };
            rc = (int)syscall(SYS_futex, &words[0][0], FUTEX_WAIT, seen[0], &ts, NULL, 0);
        } else {
            struct waitv_entry wv[MAX];
            for (size_t i = 0; i < n; i++)
                wv[i] = (struct waitv_entry){ seen[i], (uint64_t)(uintptr_t)&words[i][0], WAITV_U32, 0 };
            struct timespec abs;
            clock_gettime(CLOCK_MONOTONIC, &abs);
            double t = (double)abs.tv_nsec / 1e9 + timeout_s;
            abs.tv_sec += (time_t)t;
            abs.tv_nsec = (long)((t - (double)(time_t)t) * 1e9);
            rc = (int)syscall(SYS_futex_waitv, wv, (unsigned)n, 0, &abs, CLOCK_MONOTONIC);
            if (rc < 0 && errno == ENOSYS) { /* an old kernel: poll */
                double until = now_s() + timeout_s;
                rc = 0;
                for (double d = POLL_MIN_S; now_s() < until; d = d * 2 < POLL_MAX_S ? d * 2 : POLL_MAX_S) {
                    int moved = 0;
                    for (size_t i = 0; i < n; i++)
                        if (__atomic_load_n(&words[i][0], __ATOMIC_SEQ_CST) != seen[i]) moved = 1;
                    if (moved || (interrupt_flag && *interrupt_flag)) break;
                    sleep_s(d);
                }
            }
        }
    }
    for (size_t i = 0; i < n; i++) __atomic_sub_fetch(&words[i][1], 1, __ATOMIC_SEQ_CST);
    (void)rc; /* woken, timed out, interrupted or the word had moved: the caller looks again */
    return interrupt_flag && *interrupt_flag ? CAIRN_INTERRUPTED : CAIRN_OK;
}
