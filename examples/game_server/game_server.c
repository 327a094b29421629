/*
 * game_server.c -- a game server's tick loop over cairn's C embedding API.
 *
 * N worker threads, each with its own cairn runtime on one shared LMDB
 * store, apply simulated player commands every tick: random moves, item
 * pick-ups, and trades between two random players (saved atomically). Two
 * workers that change the same player at once meet a version conflict
 * (CAIRN_CONFLICT); the command is then simply run again. At the end the
 * server prints its throughput and latency percentiles.
 *
 *   game_server [--threads N] [--ticks T | --seconds S] [--commands C]
 *               [--players P] [--tick-ms MS] [--sync full|none] [--seed N]
 *               [--lua-path 'DIR/?.lua'] STORE_DIR
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common.h"

#define MAX_RETRIES 100

static const char *const ITEMS[] = { "sword", "shield", "gem", "potion", "map" };
#define N_ITEMS (sizeof ITEMS / sizeof ITEMS[0])

typedef struct {
    int threads, ticks, commands, players, tick_ms;
    double seconds;
    const char *sync, *lua_path, *store;
    unsigned seed;
    const char *argv0;
    uint8_t (*ids)[16];         /* the players' ids */
} config;

typedef struct {
    const config *cfg;
    int index;
    unsigned rand;
    /* results */
    long moves, pickups, trades, trades_declined, conflicts, failures;
    uint64_t *lat;              /* ns per command, retries included */
    size_t n_lat, cap_lat;
    char first_error[512];
    int open_failed;
} worker;

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int record_latency(worker *w, uint64_t ns)
{
    if (w->n_lat == w->cap_lat) {
        size_t cap = w->cap_lat ? w->cap_lat * 2 : 4096;
        uint64_t *lat = realloc(w->lat, cap * sizeof *lat);
        if (!lat) return ENOMEM;
        w->lat = lat;
        w->cap_lat = cap;
    }
    w->lat[w->n_lat++] = ns;
    return 0;
}

/* One command, run again while it meets a version conflict.
 * @return CAIRN_OK or the error; *declined for a trade the giver could not make */
static int command(worker *w, cairn_runtime *rt, int *declined)
{
    const config *c = w->cfg;
    int kind = (int)(rand_r(&w->rand) % 100);
    int p = (int)(rand_r(&w->rand) % (unsigned)c->players);
    int q = (int)(rand_r(&w->rand) % (unsigned)(c->players - 1));
    if (q >= p) q++;
    const char *item = ITEMS[rand_r(&w->rand) % N_ITEMS];
    int dx = (int)(rand_r(&w->rand) % 3) - 1, dy = (int)(rand_r(&w->rand) % 3) - 1;
    game_args a;
    const char *method;
    if (kind < 60) {
        method = "move";
        args_begin(&a, 3);
        args_uuid(&a, c->ids[p]);
        args_int(&a, dx);
        args_int(&a, dy);
        w->moves++;
    } else if (kind < 85) {
        method = "pick_up";
        args_begin(&a, 2);
        args_uuid(&a, c->ids[p]);
        args_str(&a, item);
        w->pickups++;
    } else {
        method = "trade";
        args_begin(&a, 3);
        args_uuid(&a, c->ids[p]);
        args_uuid(&a, c->ids[q]);
        args_str(&a, item);
        w->trades++;
    }
    cairn_buf result;
    int rc;
    for (int attempt = 0;; attempt++) {
        rc = cairn_call(rt, method, a.sb.data, a.sb.size, &result);
        if (rc != CAIRN_CONFLICT || attempt == MAX_RETRIES) break;
        w->conflicts++;
    }
    args_end(&a);
    if (rc != CAIRN_OK) {
        if (!w->first_error[0])
            snprintf(w->first_error, sizeof w->first_error, "%s (%s)", cairn_errmsg(rt), cairn_strerror(rc));
        return rc;
    }
    /* a trade returns [false] when the giver has no such item: 0x91 0xc2 */
    *declined = result.len == 2 && ((const uint8_t *)result.data)[1] == 0xc2;
    cairn_buf_free(&result);
    return CAIRN_OK;
}

static void *work(void *arg)
{
    worker *w = arg;
    const config *c = w->cfg;
    cairn_runtime *rt = game_open(c->argv0, c->lua_path, c->store, c->sync);
    if (!rt) { w->open_failed = 1; return NULL; }
    uint64_t start = now_ns(), deadline = c->seconds > 0 ? start + (uint64_t)(c->seconds * 1e9) : 0;
    for (int tick = 0; deadline ? now_ns() < deadline : tick < c->ticks; tick++) {
        uint64_t tick_start = now_ns();
        for (int i = 0; i < c->commands; i++) {
            uint64_t t0 = now_ns();
            int declined = 0;
            if (command(w, rt, &declined) != CAIRN_OK) w->failures++;
            else if (declined) w->trades_declined++;
            if (record_latency(w, now_ns() - t0) != 0) { w->failures++; break; }
        }
        if (c->tick_ms > 0) {
            uint64_t spent = now_ns() - tick_start, budget = (uint64_t)c->tick_ms * 1000000u;
            if (spent < budget) {
                struct timespec ts = { (time_t)((budget - spent) / 1000000000u), (long)((budget - spent) % 1000000000u) };
                nanosleep(&ts, NULL);
            }
        }
    }
    cairn_runtime_close(rt);
    return NULL;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

static double percentile_us(const uint64_t *sorted, size_t n, double q)
{
    return n ? (double)sorted[(size_t)(q * (double)(n - 1) + 0.5)] / 1000.0 : 0;
}

static void usage(void)
{
    fprintf(stderr,
            "usage: game_server [--threads N] [--ticks T | --seconds S] [--commands C] [--players P]\n"
            "                   [--tick-ms MS] [--sync full|none] [--seed N] [--lua-path 'DIR/?.lua'] STORE_DIR\n"
            "  --threads N     worker threads, each with its own runtime (4)\n"
            "  --ticks T       ticks per worker (100); --seconds S runs for S seconds instead\n"
            "  --commands C    commands per worker per tick (10)\n"
            "  --players P     players in the world, shared by all workers (32)\n"
            "  --tick-ms MS    pace ticks to MS milliseconds (0: as fast as possible)\n"
            "  --sync MODE     full: fsync every commit; none: leave it to the OS (none)\n");
    exit(2);
}

/* Join the players (main thread, its own runtime) and keep their ids. */
static int join_players(cairn_runtime *rt, config *c)
{
    for (int i = 0; i < c->players; i++) {
        char name[32];
        snprintf(name, sizeof name, "player%d", i + 1);
        game_args a;
        args_begin(&a, 3);
        args_str(&a, name);
        args_int(&a, i % 8);
        args_int(&a, i / 8);
        cairn_buf b;
        int rc = cairn_call(rt, "join", a.sb.data, a.sb.size, &b);
        args_end(&a);
        if (rc != CAIRN_OK) {
            fprintf(stderr, "join %s: %s\n", name, cairn_errmsg(rt));
            return -1;
        }
        msgpack_unpacked u;
        const msgpack_object *id = result_decode(&b, &u) == 0 && u.data.via.array.size == 1 ? &u.data.via.array.ptr[0] : NULL;
        int ok = id && id->type == MSGPACK_OBJECT_EXT && id->via.ext.type == 1 && id->via.ext.size == 16;
        if (ok) memcpy(c->ids[i], id->via.ext.ptr, 16);
        msgpack_unpacked_destroy(&u);
        cairn_buf_free(&b);
        if (!ok) {
            fprintf(stderr, "join %s: the result is not [uuid]\n", name);
            return -1;
        }
    }
    return 0;
}

int main(int argc, char **argv)
{
    config c = { .threads = 4, .ticks = 100, .commands = 10, .players = 32, .sync = "none",
                 .seed = 1, .argv0 = argv[0] };
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (a[0] != '-') { if (c.store) usage(); c.store = a; continue; }
        if (!v) usage();
        i++;
        if (strcmp(a, "--threads") == 0) c.threads = atoi(v);
        else if (strcmp(a, "--ticks") == 0) c.ticks = atoi(v);
        else if (strcmp(a, "--seconds") == 0) c.seconds = atof(v);
        else if (strcmp(a, "--commands") == 0) c.commands = atoi(v);
        else if (strcmp(a, "--players") == 0) c.players = atoi(v);
        else if (strcmp(a, "--tick-ms") == 0) c.tick_ms = atoi(v);
        else if (strcmp(a, "--sync") == 0) c.sync = v;
        else if (strcmp(a, "--seed") == 0) c.seed = (unsigned)strtoul(v, NULL, 10);
        else if (strcmp(a, "--lua-path") == 0) c.lua_path = v;
        else usage();
    }
    if (!c.store || c.threads < 1 || c.ticks < 1 || c.commands < 1 || c.players < 2 || c.tick_ms < 0 ||
        (strcmp(c.sync, "full") != 0 && strcmp(c.sync, "none") != 0))
        usage();

    cairn_runtime *rt = game_open(argv[0], c.lua_path, c.store, c.sync);
    if (!rt) return 1;
    c.ids = calloc((size_t)c.players, sizeof *c.ids);
    worker *w = calloc((size_t)c.threads, sizeof *w);
    pthread_t *th = calloc((size_t)c.threads, sizeof *th);
    int code = 1;
    if (!c.ids || !w || !th) { fprintf(stderr, "out of memory\n"); goto done; }
    if (join_players(rt, &c) != 0) goto done;

    uint64_t start = now_ns();
    int started = 0;
    for (int i = 0; i < c.threads; i++) {
        w[i] = (worker){ .cfg = &c, .index = i, .rand = c.seed * 7919u + (unsigned)i };
        if (pthread_create(&th[i], NULL, work, &w[i]) != 0) { fprintf(stderr, "cannot start thread %d\n", i); break; }
        started++;
    }
    for (int i = 0; i < started; i++) pthread_join(th[i], NULL);
    double elapsed = (double)(now_ns() - start) / 1e9;

    long moves = 0, pickups = 0, trades = 0, declined = 0, conflicts = 0, failures = 0;
    size_t n = 0;
    for (int i = 0; i < started; i++) {
        moves += w[i].moves, pickups += w[i].pickups, trades += w[i].trades;
        declined += w[i].trades_declined, conflicts += w[i].conflicts, failures += w[i].failures;
        failures += w[i].open_failed;
        n += w[i].n_lat;
        if (w[i].first_error[0]) fprintf(stderr, "thread %d: first error: %s\n", i, w[i].first_error);
    }
    uint64_t *all = malloc((n ? n : 1) * sizeof *all);
    if (!all) { fprintf(stderr, "out of memory\n"); goto done; }
    size_t k = 0;
    for (int i = 0; i < started; i++) {
        if (w[i].n_lat) memcpy(all + k, w[i].lat, w[i].n_lat * sizeof *all);
        k += w[i].n_lat;
    }
    qsort(all, n, sizeof *all, cmp_u64);

    cairn_buf b;
    long last_id = -1;
    if (cairn_call(rt, "max_notification_id", NULL, 0, &b) == CAIRN_OK) {
        msgpack_unpacked u;
        if (result_decode(&b, &u) == 0 && u.data.via.array.size == 1)
            last_id = (long)u.data.via.array.ptr[0].via.u64;
        msgpack_unpacked_destroy(&u);
        cairn_buf_free(&b);
    }
    printf("game_server: %d threads, %d players, %s, sync %s\n", started, c.players,
           c.seconds > 0 ? "timed run" : "fixed ticks", c.sync);
    printf("commands: %zu (moves %ld, pick-ups %ld, trades %ld of which declined %ld)\n", n, moves, pickups, trades,
           declined);
    printf("conflicts retried: %ld, failed: %ld\n", conflicts, failures);
    printf("elapsed: %.3f s, throughput: %.0f commands/s\n", elapsed, elapsed > 0 ? (double)n / elapsed : 0);
    printf("latency (us): p50 %.0f p90 %.0f p99 %.0f max %.0f\n", percentile_us(all, n, 0.50),
           percentile_us(all, n, 0.90), percentile_us(all, n, 0.99), n ? (double)all[n - 1] / 1000.0 : 0);
    printf("last notification id: %ld\n", last_id);
    free(all);
    code = failures == 0 && started == c.threads ? 0 : 1;
done:
    for (int i = 0; w && i < c.threads; i++) free(w[i].lat);
    free(th);
    free(w);
    free(c.ids);
    cairn_runtime_close(rt);
    return code;
}
