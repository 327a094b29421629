/*
 * group_commit.c -- durable saves from several threads on one store.
 *
 *   group_commit DIR THREADS SECONDS [full|none]
 *
 * Each thread opens its own handle on lmdb:DIR (as each runtime of a host
 * does) and saves one event at a time to streams of its own, each save
 * checked for version conflicts, for SECONDS. Prints one line:
 *   threads=N saves=S seconds=T rate=R groups=G mean_group=M p50_us=.. p99_us=..
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cairn.h"
#include "store.h"
#include "threads.h"

static char uri[4200];
static cairn_sync_mode sync_mode = CAIRN_SYNC_FULL;
static double seconds;

static void *run(void *arg)
{
    bench_worker *w = arg;
    cairn_store_options opt = { .sync = sync_mode };
    cairn_store *s;
    char err[512];
    if (cairn_store_open(uri, &opt, &s, err, sizeof err) != CAIRN_OK) {
        fprintf(stderr, "group_commit: %s\n", err);
        exit(1);
    }
    /* a payload the size of a small msgpack event (a dog's trick) */
    static const char payload[] = "\x81\xa5trick\xa9roll over";
    uint8_t id[16] = { 0 };
    id[0] = (uint8_t)w->index;
    id[6] = 0x40;
    id[8] = 0x80;
    uint64_t version = 0;
    double end = bench_now() + seconds;
    for (;;) {
        double t0 = bench_now();
        if (t0 >= end) break;
        cairn_record ev;
        memset(&ev, 0, sizeof ev);
        memcpy(ev.stream_id, id, 16);
        ev.version = ++version;
        ev.timestamp_us = (int64_t)(t0 * 1e6);
        ev.topic = "TrickAdded";
        ev.topic_len = 10;
        ev.payload = (const uint8_t *)payload;
        ev.payload_len = sizeof payload - 1;
        cairn_batch b = { .events = &ev, .n = 1 };
        uint64_t first;
        if (cairn_store_append(s, &b, &first) != CAIRN_OK) {
            fprintf(stderr, "group_commit: %s\n", cairn_store_errmsg(s));
            exit(1);
        }
        bench_done(w, t0);
    }
    cairn_store_close(s);
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: group_commit DIR THREADS SECONDS [full|none]\n");
        return 2;
    }
    snprintf(uri, sizeof uri, "lmdb:%s", argv[1]);
    int threads = atoi(argv[2]);
    seconds = atof(argv[3]);
    if (argc > 4 && strcmp(argv[4], "none") == 0) sync_mode = CAIRN_SYNC_NONE;
    if (threads < 1 || threads > BENCH_MAX_THREADS || seconds <= 0) {
        fprintf(stderr, "group_commit: 1..%d threads and a positive duration expected\n", BENCH_MAX_THREADS);
        return 2;
    }
    /* one handle kept open for the statistics of the shared environment */
    cairn_store_options opt = { .sync = sync_mode };
    cairn_store *stats;
    char err[512];
    if (cairn_store_open(uri, &opt, &stats, err, sizeof err) != CAIRN_OK) {
        fprintf(stderr, "group_commit: %s\n", err);
        return 1;
    }
    uint64_t groups0, saves0;
    cairn_store_group_stats(stats, &groups0, &saves0);
    bench_result r;
    if (bench_run_threads(threads, run, &r) != 0) return 1;
    uint64_t groups1, saves1;
    cairn_store_group_stats(stats, &groups1, &saves1);
    uint64_t groups = groups1 - groups0;
    printf("threads=%d saves=%llu seconds=%.2f rate=%.0f groups=%llu mean_group=%.2f p50_us=%.0f p99_us=%.0f\n",
           threads, (unsigned long long)r.total, r.elapsed_s, (double)r.total / r.elapsed_s, (unsigned long long)groups,
           groups ? (double)(saves1 - saves0) / (double)groups : 0.0, r.p50_us, r.p99_us);
    cairn_store_close(stats);
    return 0;
}
