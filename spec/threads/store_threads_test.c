/*
 * store_threads_test.c -- many threads on one store, each with handles of
 * its own: group commit (a conflicting save fails alone, the others commit),
 * gap-free ids, the shared environment's reference count, and map growth
 * under concurrent readers. No Lua. `build/tests/cairn_thread_tests [DIR]`;
 * CI also runs it built with ThreadSanitizer (tools/test tsan).
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cairn.h"
#include "store.h"
#include "lmdb_engine.h"
#include "mapper.h"

#define E(expr) do { if (!(expr)) { \
    fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #expr); exit(1); } } while (0)

static int checks;
static pthread_mutex_t checks_lock = PTHREAD_MUTEX_INITIALIZER;
#define CHECK(expr) do { pthread_mutex_lock(&checks_lock); checks++; pthread_mutex_unlock(&checks_lock); \
    E(expr); } while (0)

#define THREADS 8

static char uri[600];

static void stream_id(uint8_t id[16], unsigned a, unsigned b)
{
    memset(id, 0, 16);
    id[0] = (uint8_t)a;
    id[1] = (uint8_t)b;
    id[6] = 0x40; /* a version-4-shaped id */
    id[8] = 0x80;
}

static cairn_record event(const uint8_t id[16], uint64_t version, const char *payload, size_t len)
{
    cairn_record r;
    memset(&r, 0, sizeof r);
    memcpy(r.stream_id, id, 16);
    r.version = version;
    r.timestamp_us = 1700000000000000 + (int64_t)version;
    r.topic = "Tested";
    r.topic_len = 6;
    r.payload = (const uint8_t *)payload;
    r.payload_len = len;
    return r;
}

static int save(cairn_store *s, const uint8_t id[16], uint64_t version, const char *payload, size_t len)
{
    cairn_record ev = event(id, version, payload, len);
    cairn_batch b = { .events = &ev, .n = 1 };
    uint64_t first;
    return cairn_store_append(s, &b, &first);
}

static cairn_store *open_store(cairn_sync_mode sync, size_t map_size)
{
    cairn_store_options opt = { .sync = sync, .map_size = map_size };
    cairn_store *s = NULL;
    char err[512];
    int rc = cairn_store_open(uri, &opt, &s, err, sizeof err);
    if (rc) fprintf(stderr, "open %s: %s\n", uri, err);
    E(rc == CAIRN_OK);
    return s;
}

/* The last version of a stream (0: none), read through s. */
static uint64_t last_version(cairn_store *s, const uint8_t id[16])
{
    cairn_stream_query q = { .descending = 1, .limit = 1 };
    E(cairn_store_read_stream(s, id, &q) == CAIRN_OK);
    cairn_record rec;
    uint64_t v = 0;
    int rc = cairn_store_next(s, &rec);
    if (rc == CAIRN_OK) v = rec.version;
    else E(rc == CAIRN_END);
    cairn_store_read_end(s);
    return v;
}

/* Every notification id from 1 to n exactly once, in order. */
static void check_log(cairn_store *s, uint64_t n)
{
    cairn_log_query q = { .start = 1 };
    CHECK(cairn_store_read_log(s, &q) == CAIRN_OK);
    cairn_record rec;
    uint64_t expect = 1;
    int rc;
    while ((rc = cairn_store_next(s, &rec)) == CAIRN_OK) {
        E(rec.notification_id == expect);
        expect++;
    }
    cairn_store_read_end(s);
    CHECK(rc == CAIRN_END);
    CHECK(expect - 1 == n);
}

/* --- durable saves from 8 threads, each on streams of its own --- */

#define OWN_SAVES 60

static void *save_own_streams(void *arg)
{
    unsigned t = (unsigned)(uintptr_t)arg;
    cairn_store *s = open_store(CAIRN_SYNC_FULL, 0);
    for (unsigned i = 0; i < OWN_SAVES; i++) {
        uint8_t id[16];
        stream_id(id, t + 1, i % 3);
        uint64_t v = last_version(s, id);
        int rc = save(s, id, v + 1, "payload", 7);
        if (rc) fprintf(stderr, "thread %u save %u: %s\n", t, i, cairn_store_errmsg(s));
        E(rc == CAIRN_OK);
    }
    cairn_store_close(s);
    return NULL;
}

static void test_own_streams(void)
{
    pthread_t th[THREADS];
    for (unsigned t = 0; t < THREADS; t++) E(pthread_create(&th[t], NULL, save_own_streams, (void *)(uintptr_t)t) == 0);
    for (unsigned t = 0; t < THREADS; t++) E(pthread_join(th[t], NULL) == 0);
    cairn_store *s = open_store(CAIRN_SYNC_FULL, 0);
    check_log(s, THREADS * OWN_SAVES);
    for (unsigned t = 0; t < THREADS; t++)
        for (unsigned k = 0; k < 3; k++) {
            uint8_t id[16];
            stream_id(id, t + 1, k);
            CHECK(last_version(s, id) == OWN_SAVES / 3);
        }
    cairn_store_close(s);
}

/* --- one stream, eight writers racing for each version --- */

#define RACE_SAVES 40

typedef struct { unsigned t; int saved, conflicts; } racer;

static void *race_one_stream(void *arg)
{
    racer *r = arg;
    cairn_store *s = open_store(CAIRN_SYNC_NONE, 0);
    uint8_t id[16];
    stream_id(id, 200, 0);
    while (r->saved < RACE_SAVES) {
        uint64_t v = last_version(s, id);
        int rc = save(s, id, v + 1, "race", 4);
        if (rc == CAIRN_OK) {
            r->saved++;
        } else {
            E(rc == CAIRN_CONFLICT);
            E(strstr(cairn_store_errmsg(s), "was already recorded") != NULL);
            r->conflicts++;
        }
    }
    cairn_store_close(s);
    return NULL;
}

static void test_one_stream(uint64_t before)
{
    pthread_t th[THREADS];
    racer rs[THREADS];
    for (unsigned t = 0; t < THREADS; t++) {
        rs[t] = (racer){ t, 0, 0 };
        E(pthread_create(&th[t], NULL, race_one_stream, &rs[t]) == 0);
    }
    for (unsigned t = 0; t < THREADS; t++) E(pthread_join(th[t], NULL) == 0);
    cairn_store *s = open_store(CAIRN_SYNC_NONE, 0);
    uint8_t id[16];
    stream_id(id, 200, 0);
    CHECK(last_version(s, id) == THREADS * RACE_SAVES);
    check_log(s, before + THREADS * RACE_SAVES);
    cairn_store_close(s);
}

/* --- a group with a conflicting save: it fails alone --- */

#define GROUP 6

typedef struct { unsigned t; int rc; char msg[512]; } grouped;

static void *save_in_group(void *arg)
{
    grouped *g = arg;
    cairn_store *s = open_store(CAIRN_SYNC_FULL, 0);
    uint8_t id[16];
    /* follower 0 saves version 1 of a stream that already has it */
    stream_id(id, g->t == 0 ? 1 : 100 + g->t, 0);
    g->rc = save(s, id, 1, "grouped", 7);
    snprintf(g->msg, sizeof g->msg, "%s", cairn_store_errmsg(s));
    cairn_store_close(s);
    return NULL;
}

/* The leader's write: hold the writer until every follower has queued. */
static int hold_writer(cairn_lmdb *h, MDB_txn *txn, void *ctx)
{
    (void)txn;
    (void)ctx;
    for (;;) {
        pthread_mutex_lock(&h->sh->write_lock);
        int n = h->sh->waiting;
        pthread_mutex_unlock(&h->sh->write_lock);
        if (n == GROUP) return 0;
        usleep(1000);
    }
}

static void *lead(void *arg)
{
    cairn_store *s = arg;
    E(cairn_lmdb_write(LMDB(s->eng), "holding the writer", hold_writer, NULL) == CAIRN_OK);
    return NULL;
}

static void test_group_failure_is_alone(void)
{
    cairn_store *leader = open_store(CAIRN_SYNC_FULL, 0);
    uint64_t groups0, saves0;
    cairn_store_group_stats(leader, &groups0, &saves0);
    pthread_t lt, th[GROUP];
    E(pthread_create(&lt, NULL, lead, leader) == 0);
    /* the leader holds the writer (its group of one runs) before anyone queues */
    for (;;) {
        cairn_env *sh = LMDB(leader->eng)->sh;
        pthread_mutex_lock(&sh->write_lock);
        int leading = sh->committing;
        pthread_mutex_unlock(&sh->write_lock);
        if (leading) break;
        usleep(1000);
    }
    grouped gs[GROUP];
    for (unsigned t = 0; t < GROUP; t++) {
        gs[t] = (grouped){ t, -1, "" };
        E(pthread_create(&th[t], NULL, save_in_group, &gs[t]) == 0);
    }
    E(pthread_join(lt, NULL) == 0);
    for (unsigned t = 0; t < GROUP; t++) E(pthread_join(th[t], NULL) == 0);
    for (unsigned t = 1; t < GROUP; t++) CHECK(gs[t].rc == CAIRN_OK);
    CHECK(gs[0].rc == CAIRN_CONFLICT);
    CHECK(strstr(gs[0].msg, "version 1 was already recorded") != NULL);
    uint64_t groups1, saves1;
    cairn_store_group_stats(leader, &groups1, &saves1);
    CHECK(groups1 - groups0 == 2); /* the leader alone, then all six together */
    CHECK(saves1 - saves0 == GROUP + 1);
    for (unsigned t = 1; t < GROUP; t++) {
        uint8_t id[16];
        stream_id(id, 100 + t, 0);
        CHECK(last_version(leader, id) == 1);
    }
    cairn_store_close(leader);
}

/* --- map growth while other threads read --- */

#define GROW_WRITERS 3
#define GROW_SAVES 150
#define GROW_PAYLOAD 3000

static volatile int growing_done;

static void *grow_writer(void *arg)
{
    unsigned t = (unsigned)(uintptr_t)arg;
    cairn_store *s = open_store(CAIRN_SYNC_NONE, 64 << 10);
    char *payload = malloc(GROW_PAYLOAD);
    E(payload != NULL);
    memset(payload, 'a' + (int)t, GROW_PAYLOAD);
    uint8_t id[16];
    stream_id(id, 50 + t, 0);
    for (unsigned i = 0; i < GROW_SAVES; i++) {
        int rc = save(s, id, i + 1, payload, GROW_PAYLOAD);
        if (rc) fprintf(stderr, "grow writer %u save %u: %s\n", t, i, cairn_store_errmsg(s));
        E(rc == CAIRN_OK);
    }
    free(payload);
    cairn_store_close(s);
    return NULL;
}

static void *grow_reader(void *arg)
{
    (void)arg;
    cairn_store *s = open_store(CAIRN_SYNC_NONE, 64 << 10);
    uint8_t id[16];
    stream_id(id, 50, 0);
    uint64_t seen = 0;
    while (!__atomic_load_n(&growing_done, __ATOMIC_ACQUIRE)) {
        cairn_stream_query q = { 0 };
        E(cairn_store_read_stream(s, id, &q) == CAIRN_OK);
        cairn_record rec;
        uint64_t n = 0;
        while (cairn_store_next(s, &rec) == CAIRN_OK) {
            E(rec.payload_len == GROW_PAYLOAD && rec.payload[0] == 'a');
            n++;
        }
        cairn_store_read_end(s);
        E(n >= seen); /* a later read never sees fewer */
        seen = n;
        /* a pause between whole-stream reads: readers that never pause
         * leave the writers little time where threads take turns (valgrind) */
        usleep(2000);
    }
    cairn_store_close(s);
    return NULL;
}

static void test_map_growth(const char *base)
{
    snprintf(uri, sizeof uri, "lmdb:%s/grow", base);
    pthread_t w[GROW_WRITERS], r[2];
    for (unsigned t = 0; t < 2; t++) E(pthread_create(&r[t], NULL, grow_reader, NULL) == 0);
    for (unsigned t = 0; t < GROW_WRITERS; t++) E(pthread_create(&w[t], NULL, grow_writer, (void *)(uintptr_t)t) == 0);
    for (unsigned t = 0; t < GROW_WRITERS; t++) E(pthread_join(w[t], NULL) == 0);
    __atomic_store_n(&growing_done, 1, __ATOMIC_RELEASE);
    for (unsigned t = 0; t < 2; t++) E(pthread_join(r[t], NULL) == 0);
    cairn_store *s = open_store(CAIRN_SYNC_NONE, 0);
    cairn_store_stats st;
    CHECK(cairn_store_stat(s, &st) == CAIRN_OK);
    CHECK(st.map_size > (64 << 10)); /* it grew */
    check_log(s, GROW_WRITERS * GROW_SAVES);
    cairn_store_close(s);
}

/* --- handles opened and closed by many threads on one environment --- */

static void *open_close(void *arg)
{
    (void)arg;
    for (int i = 0; i < 30; i++) {
        cairn_store *s = open_store(CAIRN_SYNC_NONE, 0);
        uint8_t id[16];
        stream_id(id, 1, 0);
        E(last_version(s, id) == OWN_SAVES / 3);
        cairn_store_close(s);
    }
    return NULL;
}

static void test_shared_environment(const char *base)
{
    snprintf(uri, sizeof uri, "lmdb:%s/own", base);
    cairn_store *keep = open_store(CAIRN_SYNC_NONE, 0);
    pthread_t th[THREADS];
    for (unsigned t = 0; t < THREADS; t++) E(pthread_create(&th[t], NULL, open_close, NULL) == 0);
    for (unsigned t = 0; t < THREADS; t++) E(pthread_join(th[t], NULL) == 0);
    uint8_t id[16];
    stream_id(id, 2, 1);
    CHECK(last_version(keep, id) == OWN_SAVES / 3); /* the kept handle still works */
    cairn_store_close(keep);
}

int main(int argc, char **argv)
{
    char dir[] = "/tmp/cairn_thread_tests.XXXXXX";
    const char *base = argc > 1 ? argv[1] : mkdtemp(dir);
    E(base != NULL);
    snprintf(uri, sizeof uri, "lmdb:%s/own", base);
    fprintf(stderr, "%s\n", "test_own_streams");
    test_own_streams();
    fprintf(stderr, "%s\n", "test_one_stream");
    test_one_stream(THREADS * OWN_SAVES);
    fprintf(stderr, "%s\n", "test_group_failure_is_alone");
    test_group_failure_is_alone();
    fprintf(stderr, "%s\n", "test_shared_environment");
    test_shared_environment(base);
    fprintf(stderr, "%s\n", "test_map_growth");
    test_map_growth(base);
    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", base);
    if (argc <= 1 && system(cmd) != 0) fprintf(stderr, "could not remove %s\n", base);
    printf("%d passed, 0 failed\n", checks);
    return 0;
}
