/*
 * lmdb_fault.c -- a damaged data file read as an error, not a signal death.
 *
 * LMDB does not checksum its pages: a zeroed page, flipped bits in a page
 * header or a node's size make it follow pointers out of the file (SIGSEGV,
 * or SIGBUS past the end of the file inside the map) or fail one of its
 * assertions (abort). Reads therefore run guarded (CAIRN_LMDB_GUARDED,
 * lmdb_engine.c): a SIGSEGV, a SIGBUS or an LMDB assertion met by a thread
 * inside a guarded read jumps back out of LMDB, and the read fails with
 * "store ... damaged at ..." (CAIRN_CORRUPT). A value a read returns is
 * touched inside the guard (cairn_lmdb_probe): a damaged size would otherwise
 * send the mapper, outside it, past the data file.
 *
 * What makes the jump safe: a read changes nothing shared. It runs in a read
 * transaction, which holds no LMDB mutex while it walks pages (the reader
 * table's mutex is held only while a slot is taken, in mdb_txn_begin, which
 * reads no data page), and its cursors and transaction live in this
 * process's heap, which the damaged pages cannot reach. After the jump the
 * read's cursors are closed (those it opened for itself are registered:
 * cairn_lmdb_local_cursor) and its transaction is reset (lmdb_txn.c) as
 * after any read, and the environment refuses writes from then on (a write on a damaged tree could
 * spread the damage). Writes are never guarded: a fault inside a write
 * transaction holds LMDB's writer mutex, and dying releases it.
 *
 * Faults outside guarded reads (or in other threads) go to the handler that
 * was installed before ours (called from ours), or to the default action.
 */
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "cairn.h"
#include "lmdb_engine.h"

static __thread cairn_fault_frame *frame;      /* the innermost guarded read of this thread */
static __thread int fault_sig;
static __thread uintptr_t fault_addr;
static __thread char fault_assert[160];

static struct sigaction saved_segv, saved_bus;
static pthread_once_t installed = PTHREAD_ONCE_INIT;

static void on_fault(int sig, siginfo_t *si, void *uc)
{
    cairn_fault_frame *f = frame;
    if (f && (si->si_code > 0)) { /* a fault of this thread's guarded read (not a kill(2) of the signal) */
        frame = f->prev;
        fault_sig = sig;
        fault_addr = (uintptr_t)si->si_addr;
        fault_assert[0] = '\0';
        siglongjmp(f->jb, 1);
    }
    /* not ours: the handler installed before ours (a host's) takes it; with
     * none, the default action, by putting it back and faulting again */
    const struct sigaction *prev = sig == SIGSEGV ? &saved_segv : &saved_bus;
    if ((prev->sa_flags & SA_SIGINFO) && prev->sa_sigaction) {
        prev->sa_sigaction(sig, si, uc);
    } else if (prev->sa_handler != SIG_DFL && prev->sa_handler != SIG_IGN) {
        prev->sa_handler(sig);
    } else {
        signal(sig, SIG_DFL);
        if (si->si_code <= 0) raise(sig);
    }
}

/* LMDB calls this before abort() when one of its assertions fails. */
static void on_assert(MDB_env *env, const char *msg)
{
    (void)env;
    cairn_fault_frame *f = frame;
    if (!f) return; /* LMDB aborts */
    frame = f->prev;
    fault_sig = 0;
    fault_addr = 0;
    snprintf(fault_assert, sizeof fault_assert, "%s", msg);
    siglongjmp(f->jb, 1);
}

static void install(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_fault;
    sigemptyset(&sa.sa_mask);
    /* NODEFER: the jump leaves the handler without restoring the signal mask */
    sa.sa_flags = SA_SIGINFO | SA_NODEFER;
    sigaction(SIGSEGV, &sa, &saved_segv);
    sigaction(SIGBUS, &sa, &saved_bus);
}

void cairn_lmdb_fault_setup(MDB_env *env)
{
    pthread_once(&installed, install);
    mdb_env_set_assert(env, on_assert);
}

void cairn_fault_enter(cairn_fault_frame *f)
{
    f->prev = frame;
    frame = f;
}

void cairn_fault_leave(cairn_fault_frame *f) { frame = f->prev; }

/* Where this process maps the data file (LMDB does not say: mdb_env_info's
 * me_mapaddr is only set for MDB_FIXEDMAP). Read after a fault only. */
static int data_map(cairn_env *sh, uintptr_t *lo, uintptr_t *hi)
{
    char want[PATH_MAX + 16], line[PATH_MAX + 128];
    snprintf(want, sizeof want, "%s/data.mdb", sh->path);
    FILE *maps = fopen("/proc/self/maps", "r");
    if (!maps) return 0;
    int found = 0;
    while (!found && fgets(line, sizeof line, maps)) {
        unsigned long a, b;
        char *name = strchr(line, '/');
        if (!name || sscanf(line, "%lx-%lx", &a, &b) != 2) continue;
        name[strcspn(name, "\n")] = '\0';
        if (strcmp(name, want) == 0) { *lo = a; *hi = b; found = 1; }
    }
    fclose(maps);
    return found;
}

/* The place of a fault, for the message. */
static void describe(cairn_env *sh, char *out, size_t len)
{
    uintptr_t lo = 0, hi = 0;
    if (fault_assert[0])
        snprintf(out, len, "a page that fails LMDB's check (%s)", fault_assert);
    else if (sh->psize && data_map(sh, &lo, &hi) && fault_addr >= lo && fault_addr < hi)
        snprintf(out, len, "page %" PRIuPTR "%s", (fault_addr - lo) / sh->psize,
                 fault_sig == SIGBUS ? " (past the end of the data file)" : "");
    else
        snprintf(out, len, "a page that points outside the data file (%s at %#" PRIxPTR ")",
                 fault_sig == SIGBUS ? "SIGBUS" : "SIGSEGV", fault_addr);
}

int cairn_lmdb_fault(cairn_lmdb *h, cairn_fault_frame *f, const char *doing)
{
    frame = f->prev;
    char where[256];
    describe(h->sh, where, sizeof where);
    __atomic_store_n(&h->sh->damaged, 1, __ATOMIC_RELEASE);
    for (size_t i = 0; i < sizeof h->local / sizeof h->local[0]; i++)
        if (h->local[i]) cairn_lmdb_local_close(h, h->local[i]);
    cairn_lmdb_read_end(&h->base);
    return cairn_engine_fail(&h->base, CAIRN_CORRUPT, "store %s damaged at %s, while %s", h->base.where, where,
                             doing);
}

int cairn_lmdb_refuse_damaged(cairn_lmdb *h, const char *doing)
{
    return cairn_engine_fail(&h->base, CAIRN_CORRUPT,
                             "store %s is damaged (a read met a broken page): not %s; run `cairn verify` and "
                             "restore it from a copy", h->base.where, doing);
}

void cairn_lmdb_probe(const MDB_val *v)
{
    const volatile char *p = v->mv_data;
    if (v->mv_size == 0) return;
    for (size_t i = 0; i < v->mv_size; i += 4096) (void)p[i];
    (void)p[v->mv_size - 1];
}

int cairn_lmdb_local_cursor(cairn_lmdb *h, MDB_dbi dbi, MDB_cursor **cur)
{
    int rc = mdb_cursor_open(h->rtxn, dbi, cur);
    if (rc) return rc;
    for (size_t i = 0; i < sizeof h->local / sizeof h->local[0]; i++)
        if (!h->local[i]) { h->local[i] = *cur; return 0; }
    return 0; /* more than the slots: closed by its read only (none of ours nests that deep) */
}

void cairn_lmdb_local_close(cairn_lmdb *h, MDB_cursor *cur)
{
    for (size_t i = 0; i < sizeof h->local / sizeof h->local[0]; i++)
        if (h->local[i] == cur) h->local[i] = NULL;
    mdb_cursor_close(cur);
}
