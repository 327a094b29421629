/*
 * api_group_commit.c -- durable application commands from several threads,
 * through the embedding API: each thread has its own runtime (its own Lua
 * state) with the training school loaded on one lmdb store, and registers
 * new dogs (one aggregate created and saved per call) for SECONDS.
 *
 *   api_group_commit ROOT DIR THREADS SECONDS [full|none]
 *
 * ROOT is the source tree (for examples/training_school). Prints one line:
 *   threads=N commands=C seconds=T rate=R p50_us=.. p99_us=..
 */
#include <msgpack.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cairn.h"

#define MAX_THREADS 64
#define MAX_SAMPLES 100000

static char lua_path[4200], store[4200], sync_setting[32];
static double seconds;

typedef struct {
    unsigned index;
    uint64_t commands;
    double *latency_us;
    size_t nlat;
} worker;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void fail(cairn_runtime *rt, const char *what, int rc)
{
    fprintf(stderr, "api_group_commit: %s: %s: %s\n", what, cairn_strerror(rc), rt ? cairn_errmsg(rt) : "");
    exit(1);
}

/* msgpack of [name] or [name, trick] */
static void pack_args(msgpack_sbuffer *buf, const char *name, const char *trick)
{
    msgpack_packer pk;
    msgpack_sbuffer_clear(buf);
    msgpack_packer_init(&pk, buf, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, trick ? 2 : 1);
    msgpack_pack_str(&pk, strlen(name));
    msgpack_pack_str_body(&pk, name, strlen(name));
    if (trick) {
        msgpack_pack_str(&pk, strlen(trick));
        msgpack_pack_str_body(&pk, trick, strlen(trick));
    }
}

static void *run(void *arg)
{
    worker *w = arg;
    const char *env[] = { sync_setting, NULL };
    cairn_runtime_options opt = { .lua_path = lua_path, .store = store, .env = env };
    cairn_runtime *rt;
    int rc = cairn_runtime_open(&opt, &rt);
    if (rc) fail(NULL, "open", rc);
    if ((rc = cairn_runtime_load(rt, "training_school", "TrainingSchool")) != 0) fail(rt, "load", rc);
    char name[48];
    msgpack_sbuffer buf;
    msgpack_sbuffer_init(&buf);
    cairn_buf result;
    double end = now() + seconds;
    for (;;) {
        double t0 = now();
        if (t0 >= end) break;
        snprintf(name, sizeof name, "dog-%u-%llu", w->index, (unsigned long long)w->commands);
        pack_args(&buf, name, NULL);
        if ((rc = cairn_call(rt, "register", buf.data, buf.size, &result)) != 0) fail(rt, "register", rc);
        cairn_buf_free(&result);
        if (w->nlat < MAX_SAMPLES) w->latency_us[w->nlat++] = (now() - t0) * 1e6;
        w->commands++;
    }
    msgpack_sbuffer_destroy(&buf);
    cairn_runtime_close(rt);
    return NULL;
}

static int by_value(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    if (argc < 5) {
        fprintf(stderr, "usage: api_group_commit ROOT DIR THREADS SECONDS [full|none]\n");
        return 2;
    }
    snprintf(lua_path, sizeof lua_path, "%s/examples/training_school/?.lua", argv[1]);
    snprintf(store, sizeof store, "lmdb:%s", argv[2]);
    int threads = atoi(argv[3]);
    seconds = atof(argv[4]);
    snprintf(sync_setting, sizeof sync_setting, "CAIRN_SYNC=%s", argc > 5 ? argv[5] : "full");
    if (threads < 1 || threads > MAX_THREADS || seconds <= 0) {
        fprintf(stderr, "api_group_commit: 1..%d threads and a positive duration expected\n", MAX_THREADS);
        return 2;
    }
    worker ws[MAX_THREADS];
    pthread_t th[MAX_THREADS];
    double t0 = now();
    for (int i = 0; i < threads; i++) {
        ws[i] = (worker){ (unsigned)i + 1, 0, malloc(MAX_SAMPLES * sizeof(double)), 0 };
        if (!ws[i].latency_us || pthread_create(&th[i], NULL, run, &ws[i]) != 0) return 1;
    }
    uint64_t total = 0;
    size_t nlat = 0;
    for (int i = 0; i < threads; i++) {
        pthread_join(th[i], NULL);
        total += ws[i].commands;
        nlat += ws[i].nlat;
    }
    double elapsed = now() - t0;
    double *all = malloc((nlat ? nlat : 1) * sizeof(double));
    if (!all) return 1;
    size_t at = 0;
    for (int i = 0; i < threads; i++) {
        memcpy(all + at, ws[i].latency_us, ws[i].nlat * sizeof(double));
        at += ws[i].nlat;
        free(ws[i].latency_us);
    }
    qsort(all, nlat, sizeof(double), by_value);
    printf("threads=%d commands=%llu seconds=%.2f rate=%.0f p50_us=%.0f p99_us=%.0f\n", threads,
           (unsigned long long)total, elapsed, (double)total / elapsed, nlat ? all[nlat / 2] : 0.0,
           nlat ? all[nlat * 99 / 100] : 0.0);
    free(all);
    return 0;
}
