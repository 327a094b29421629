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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cairn.h"
#include "threads.h"

static char lua_path[4200], store[4200], sync_setting[32];
static double seconds;

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
    bench_worker *w = arg;
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
    double end = bench_now() + seconds;
    for (;;) {
        double t0 = bench_now();
        if (t0 >= end) break;
        snprintf(name, sizeof name, "dog-%u-%llu", w->index, (unsigned long long)w->count);
        pack_args(&buf, name, NULL);
        if ((rc = cairn_call(rt, "register", buf.data, buf.size, &result)) != 0) fail(rt, "register", rc);
        cairn_buf_free(&result);
        bench_done(w, t0);
    }
    msgpack_sbuffer_destroy(&buf);
    cairn_runtime_close(rt);
    return NULL;
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
    if (threads < 1 || threads > BENCH_MAX_THREADS || seconds <= 0) {
        fprintf(stderr, "api_group_commit: 1..%d threads and a positive duration expected\n", BENCH_MAX_THREADS);
        return 2;
    }
    bench_result r;
    if (bench_run_threads(threads, run, &r) != 0) return 1;
    printf("threads=%d commands=%llu seconds=%.2f rate=%.0f p50_us=%.0f p99_us=%.0f\n", threads,
           (unsigned long long)r.total, r.elapsed_s, (double)r.total / r.elapsed_s, r.p50_us, r.p99_us);
    return 0;
}
