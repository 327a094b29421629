/*
 * threads.h -- what the threaded benchmarks share: run a function on N
 * threads, each counting its operations and their latencies, and sum up
 * (total, wall time, p50/p99). Header-only; each benchmark is one program.
 */
#ifndef CAIRN_BENCH_THREADS_H
#define CAIRN_BENCH_THREADS_H

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BENCH_MAX_THREADS 64
#define BENCH_MAX_SAMPLES 200000

typedef struct bench_worker {
    unsigned index;             /* 1..N */
    uint64_t count;             /* operations done */
    double *latency_us;         /* the first BENCH_MAX_SAMPLES of them */
    size_t nlat;
} bench_worker;

typedef struct bench_result {
    uint64_t total;
    double elapsed_s, p50_us, p99_us;
} bench_result;

static inline double bench_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* One operation that began at t0 is done. */
static inline void bench_done(bench_worker *w, double t0)
{
    if (w->nlat < BENCH_MAX_SAMPLES) w->latency_us[w->nlat++] = (bench_now() - t0) * 1e6;
    w->count++;
}

static inline int bench_by_value(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Run fn(worker) on `threads` threads and sum up. 0, or -1 if out of memory
 * or a thread cannot start. */
static inline int bench_run_threads(int threads, void *(*fn)(void *), bench_result *out)
{
    bench_worker ws[BENCH_MAX_THREADS];
    pthread_t th[BENCH_MAX_THREADS];
    if (threads < 1 || threads > BENCH_MAX_THREADS) return -1;
    double t0 = bench_now();
    for (int i = 0; i < threads; i++) {
        ws[i] = (bench_worker){ (unsigned)i + 1, 0, malloc(BENCH_MAX_SAMPLES * sizeof(double)), 0 };
        if (!ws[i].latency_us || pthread_create(&th[i], NULL, fn, &ws[i]) != 0) return -1;
    }
    size_t nlat = 0;
    out->total = 0;
    for (int i = 0; i < threads; i++) {
        pthread_join(th[i], NULL);
        out->total += ws[i].count;
        nlat += ws[i].nlat;
    }
    out->elapsed_s = bench_now() - t0;
    double *all = malloc((nlat ? nlat : 1) * sizeof(double));
    if (!all) return -1;
    size_t at = 0;
    for (int i = 0; i < threads; i++) {
        memcpy(all + at, ws[i].latency_us, ws[i].nlat * sizeof(double));
        at += ws[i].nlat;
        free(ws[i].latency_us);
    }
    qsort(all, nlat, sizeof(double), bench_by_value);
    out->p50_us = nlat ? all[nlat / 2] : 0.0;
    out->p99_us = nlat ? all[nlat * 99 / 100] : 0.0;
    free(all);
    return 0;
}

#endif
