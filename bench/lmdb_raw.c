/*
 * lmdb_raw.c -- what LMDB alone can do: the references cairn's scenarios are
 * divided by (bench/README.md, "Raw references").
 *
 *   lmdb_raw put   DIR COMMITS full|none [writemap]   one write transaction per put
 *   lmdb_raw batch DIR TXNS [EVENTS [default]]  EVENTS (1,000) events per transaction
 *   lmdb_raw scan  DIR RECORDS PASSES      cursor scan, msgpack-decoding each record
 *
 * DIR must exist and should be empty. Every mode writes records shaped like
 * cairn's events (runtime/store/record.h): a 38-byte header, the topic
 * "Dog.TrickAdded", a 32-byte hash and a msgpack payload {trick = "trick-N"},
 * about 105 bytes. The environment is opened as cairn opens its own
 * (MDB_NOTLS, a 256 MiB map, MDB_NOSYNC unless "full").
 *
 *   put:   each transaction puts one record under a new 8-byte big-endian key
 *          (sync=full: LMDB's default, each commit synced; none: MDB_NOSYNC);
 *          with "writemap" through a writable map (MDB_WRITEMAP), as cairn's
 *          writers do: not a reference bench/run divides by (the is
 *          LMDB's default write path), but what LMDB can do that way.
 *   batch: (MDB_NOSYNC) each transaction appends EVENTS records to a log
 *          (8-byte big-endian ids, MDB_APPEND) and puts a random 24-byte
 *          index key (16-byte id, 8-byte version) -> the record's id in a
 *          second database, as cairn's save does for new aggregates;
 *          through a writable map (MDB_WRITEMAP) as cairn's writers write,
 *          or with "default" through LMDB's default write path (what the
 *          reference measured before cairn's writers took the writable map).
 *   scan:  (MDB_NOSYNC) fills a log with RECORDS records (not timed), then
 *          reads all of them PASSES times, each pass one read transaction and
 *          one cursor: parse the header and msgpack-decode the payload
 *          (msgpack_unpack into a zone cleared per record) of every record.
 *
 * Prints one line: "raw MODE value=RATE unit=... n=... wall_ms=... detail=..."
 * (put: commits/s; batch: events/s over all transactions; scan: records/s,
 * the median of the passes).
 */
#include <lmdb.h>
#include <msgpack.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAP_SIZE ((size_t)256 << 20)
#define TOPIC "Dog.TrickAdded"
#define TOPIC_LEN (sizeof TOPIC - 1)
#define HEADER 38
#define HASH 32
#define RECORD_MAX 256

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static int fail(const char *doing, int rc)
{
    fprintf(stderr, "lmdb_raw: %s: %s\n", doing, mdb_strerror(rc));
    return 1;
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rng(void) /* xorshift64*: random ids without a syscall */
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545f4914f6cdd1dull;
}

static void put_be(uint8_t *p, uint64_t v, int n)
{
    for (int i = n - 1; i >= 0; i--) { p[i] = (uint8_t)(v & 0xff); v >>= 8; }
}

static uint64_t get_be(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++) v = v << 8 | p[i];
    return v;
}

static void random_id(uint8_t id[16])
{
    uint64_t a = rng(), b = rng();
    memcpy(id, &a, 8);
    memcpy(id + 8, &b, 8);
}

/* One record as cairn stores an event (record.h): header, topic, hash, payload. */
static size_t make_record(uint8_t *out, const uint8_t id[16], uint64_t version, uint64_t n)
{
    out[0] = 2; /* record format */
    out[1] = 0; /* flags: plain */
    memcpy(out + 2, id, 16);
    put_be(out + 18, version, 8);
    put_be(out + 26, 1764547200000000ull + n, 8); /* timestamp, µs */
    put_be(out + 34, 1, 2);                        /* class version */
    put_be(out + 36, TOPIC_LEN, 2);
    memcpy(out + HEADER, TOPIC, TOPIC_LEN);
    for (size_t i = 0; i < HASH; i += 8) {
        uint64_t r = rng();
        memcpy(out + HEADER + TOPIC_LEN + i, &r, 8);
    }
    size_t at = HEADER + TOPIC_LEN + HASH;

    /* the payload {trick = "trick-N"} as msgpack: fixmap 1, fixstr "trick", fixstr value */
    char trick[32];
    int len = snprintf(trick, sizeof trick, "trick-%llu", (unsigned long long)n);
    out[at++] = 0x81;
    out[at++] = 0xa5;
    memcpy(out + at, "trick", 5);
    at += 5;
    out[at++] = (uint8_t)(0xa0 | len);
    memcpy(out + at, trick, (size_t)len);
    at += (size_t)len;
    return at;
}

static unsigned writemap; /* MDB_WRITEMAP, or 0 */

static int open_env(const char *dir, int sync, MDB_env **env)
{
    int rc = mdb_env_create(env);
    if (rc) return fail("mdb_env_create", rc);
    rc = mdb_env_set_maxdbs(*env, 4);
    if (rc == 0) rc = mdb_env_set_mapsize(*env, MAP_SIZE);
    if (rc == 0) rc = mdb_env_open(*env, dir, MDB_NOTLS | (sync ? 0 : MDB_NOSYNC) | writemap, 0644);
    if (rc) {
        mdb_env_close(*env);
        return fail("mdb_env_open", rc);
    }
    return 0;
}

static int open_dbs(MDB_env *env, MDB_dbi *log, MDB_dbi *index)
{
    MDB_txn *txn;
    int rc = mdb_txn_begin(env, NULL, 0, &txn);
    if (rc) return fail("mdb_txn_begin", rc);
    rc = mdb_dbi_open(txn, "log", MDB_CREATE, log);
    if (rc == 0 && index) rc = mdb_dbi_open(txn, "streams", MDB_CREATE, index);
    if (rc) {
        mdb_txn_abort(txn);
        return fail("mdb_dbi_open", rc);
    }
    rc = mdb_txn_commit(txn);
    return rc ? fail("mdb_txn_commit", rc) : 0;
}

/* put: COMMITS transactions of one record each. */
static int run_put(const char *dir, long commits, int sync)
{
    MDB_env *env;
    MDB_dbi log;
    if (open_env(dir, sync, &env) || open_dbs(env, &log, NULL)) return 1;
    uint8_t rec[RECORD_MAX], id[16], key[8];
    double start = now_us();
    for (long n = 1; n <= commits; n++) {
        random_id(id);
        size_t len = make_record(rec, id, 1, (uint64_t)n);
        put_be(key, (uint64_t)n, 8);
        MDB_val k = { sizeof key, key }, v = { len, rec };
        MDB_txn *txn;
        int rc = mdb_txn_begin(env, NULL, 0, &txn);
        if (rc) { mdb_env_close(env); return fail("mdb_txn_begin", rc); }
        rc = mdb_put(txn, log, &k, &v, 0);
        if (rc) { mdb_txn_abort(txn); mdb_env_close(env); return fail("mdb_put", rc); }
        rc = mdb_txn_commit(txn);
        if (rc) { mdb_env_close(env); return fail("mdb_txn_commit", rc); }
    }
    double wall = now_us() - start;
    mdb_env_close(env);
    printf("raw put_%s%s value=%.1f unit=commits/s n=%ld wall_ms=%.1f detail=one_record_per_txn\n",
           sync ? "full" : "none", writemap ? "_writemap" : "", (double)commits / (wall / 1e6), commits, wall / 1e3);
    return 0;
}

/* batch: TXNS transactions of EVENTS events: log append + random index key. */
static int run_batch(const char *dir, long txns, long events)
{
    MDB_env *env;
    MDB_dbi log, index;
    if (open_env(dir, 0, &env) || open_dbs(env, &log, &index)) return 1;
    uint8_t rec[RECORD_MAX], id[16], key[8], ikey[24];
    uint64_t next = 1;
    double start = now_us();
    for (long t = 0; t < txns; t++) {
        MDB_txn *txn;
        MDB_cursor *lc, *ic;
        int rc = mdb_txn_begin(env, NULL, 0, &txn);
        if (rc) { mdb_env_close(env); return fail("mdb_txn_begin", rc); }
        rc = mdb_cursor_open(txn, log, &lc);
        if (rc == 0) {
            rc = mdb_cursor_open(txn, index, &ic);
            if (rc) mdb_cursor_close(lc);
        }
        if (rc) { mdb_txn_abort(txn); mdb_env_close(env); return fail("mdb_cursor_open", rc); }
        for (long e = 0; e < events && rc == 0; e++, next++) {
            random_id(id);
            size_t len = make_record(rec, id, 1, next);
            put_be(key, next, 8);
            MDB_val k = { sizeof key, key }, v = { len, rec };
            rc = mdb_cursor_put(lc, &k, &v, MDB_APPEND);
            if (rc) break;
            memcpy(ikey, id, 16);
            put_be(ikey + 16, 1, 8);
            MDB_val ik = { sizeof ikey, ikey }, iv = { sizeof key, key };
            rc = mdb_cursor_put(ic, &ik, &iv, MDB_NOOVERWRITE);
        }
        mdb_cursor_close(ic);
        mdb_cursor_close(lc);
        if (rc) { mdb_txn_abort(txn); mdb_env_close(env); return fail("mdb_cursor_put", rc); }
        rc = mdb_txn_commit(txn);
        if (rc) { mdb_env_close(env); return fail("mdb_txn_commit", rc); }
    }
    double wall = now_us() - start;
    mdb_env_close(env);
    printf("raw batch%s value=%.1f unit=events/s n=%ld wall_ms=%.1f detail=txns=%ld,events_per_txn=%ld\n",
           writemap ? "" : "_default", (double)(txns * events) / (wall / 1e6), txns * events, wall / 1e3, txns,
           events);
    return 0;
}

/* Decode one stored record: its header fields and its msgpack payload. */
static int decode_record(const uint8_t *p, size_t len, msgpack_zone *zone, uint64_t *check)
{
    if (len < HEADER + HASH || p[0] != 2) return -1;
    uint8_t id[16];
    memcpy(id, p + 2, 16);
    uint64_t version = get_be(p + 18, 8), ts = get_be(p + 26, 8);
    size_t topic_len = (size_t)get_be(p + 36, 2);
    size_t at = HEADER + topic_len + HASH;
    if (at > len) return -1;
    msgpack_object obj;
    size_t off = 0;
    if (msgpack_unpack((const char *)p + at, len - at, &off, zone, &obj) != MSGPACK_UNPACK_SUCCESS ||
        obj.type != MSGPACK_OBJECT_MAP)
        return -1;
    uint64_t sum = version + ts + id[0] + topic_len;
    for (uint32_t i = 0; i < obj.via.map.size; i++) {
        const msgpack_object_kv *kv = &obj.via.map.ptr[i];
        if (kv->key.type == MSGPACK_OBJECT_STR) sum += kv->key.via.str.size;
        if (kv->val.type == MSGPACK_OBJECT_STR) sum += kv->val.via.str.size;
    }
    msgpack_zone_clear(zone);
    *check += sum;
    return 0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* scan: fill RECORDS records (1,000 per transaction), then PASSES timed scans. */
static int run_scan(const char *dir, long records, long passes)
{
    MDB_env *env;
    MDB_dbi log;
    if (open_env(dir, 0, &env) || open_dbs(env, &log, NULL)) return 1;
    uint8_t rec[RECORD_MAX], id[16], key[8];
    int rc = 0;
    for (long n = 1; n <= records && rc == 0;) {
        MDB_txn *txn;
        rc = mdb_txn_begin(env, NULL, 0, &txn);
        if (rc) break;
        for (long e = 0; e < 1000 && n <= records && rc == 0; e++, n++) {
            if ((n - 1) % 10 == 0) random_id(id); /* ten events per aggregate */
            size_t len = make_record(rec, id, (uint64_t)((n - 1) % 10 + 1), (uint64_t)n);
            put_be(key, (uint64_t)n, 8);
            MDB_val k = { sizeof key, key }, v = { len, rec };
            rc = mdb_put(txn, log, &k, &v, MDB_APPEND);
        }
        if (rc) mdb_txn_abort(txn);
        else rc = mdb_txn_commit(txn);
    }
    if (rc) { mdb_env_close(env); return fail("filling the log", rc); }

    double *rates = calloc((size_t)passes, sizeof *rates);
    msgpack_zone zone;
    if (!rates || !msgpack_zone_init(&zone, 4096)) {
        free(rates);
        mdb_env_close(env);
        fprintf(stderr, "lmdb_raw: out of memory\n");
        return 1;
    }
    uint64_t check = 0;
    double total = 0;
    for (long pass = 0; pass < passes && rc == 0; pass++) {
        double start = now_us();
        MDB_txn *txn;
        MDB_cursor *cur;
        rc = mdb_txn_begin(env, NULL, MDB_RDONLY, &txn);
        if (rc) break;
        rc = mdb_cursor_open(txn, log, &cur);
        if (rc) { mdb_txn_abort(txn); break; }
        MDB_val k, v;
        long seen = 0;
        for (int op = MDB_FIRST; (rc = mdb_cursor_get(cur, &k, &v, op)) == 0; op = MDB_NEXT) {
            if (decode_record(v.mv_data, v.mv_size, &zone, &check)) { rc = MDB_CORRUPTED; break; }
            seen++;
        }
        mdb_cursor_close(cur);
        mdb_txn_abort(txn);
        if (rc == MDB_NOTFOUND) rc = seen == records ? 0 : MDB_CORRUPTED;
        double wall = now_us() - start;
        total += wall;
        rates[pass] = (double)records / (wall / 1e6);
    }
    msgpack_zone_destroy(&zone);
    mdb_env_close(env);
    if (rc) { free(rates); return fail("scanning the log", rc); }
    qsort(rates, (size_t)passes, sizeof *rates, cmp_double);
    double median = passes % 2 ? rates[passes / 2] : (rates[passes / 2 - 1] + rates[passes / 2]) / 2;
    printf("raw scan value=%.1f unit=records/s n=%ld wall_ms=%.1f detail=passes=%ld,min=%.0f,max=%.0f,check=%llu\n",
           median, records, total / 1e3, passes, rates[0], rates[passes - 1], (unsigned long long)(check % 1000));
    free(rates);
    return 0;
}

static long positive(const char *s, const char *what)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (*s == '\0' || *end != '\0' || v <= 0) {
        fprintf(stderr, "lmdb_raw: %s must be a positive number (got '%s')\n", what, s);
        exit(2);
    }
    return v;
}

static int usage(void)
{
    fprintf(stderr, "usage: lmdb_raw put DIR COMMITS full|none [writemap]\n"
                    "       lmdb_raw batch DIR TXNS [EVENTS [default]]\n"
                    "       lmdb_raw scan DIR RECORDS PASSES\n");
    return 2;
}

int main(int argc, char **argv)
{
    if (argc < 4) return usage();
    const char *mode = argv[1], *dir = argv[2];
    if (strcmp(mode, "put") == 0 && (argc == 5 || (argc == 6 && strcmp(argv[5], "writemap") == 0))) {
        if (strcmp(argv[4], "full") != 0 && strcmp(argv[4], "none") != 0) return usage();
        writemap = argc == 6 ? MDB_WRITEMAP : 0;
        return run_put(dir, positive(argv[3], "COMMITS"), strcmp(argv[4], "full") == 0);
    }
    if (strcmp(mode, "batch") == 0 && (argc == 4 || argc == 5 || (argc == 6 && strcmp(argv[5], "default") == 0))) {
        writemap = argc == 6 ? 0 : MDB_WRITEMAP;
        return run_batch(dir, positive(argv[3], "TXNS"), argc >= 5 ? positive(argv[4], "EVENTS") : 1000);
    }
    if (strcmp(mode, "scan") == 0 && argc == 5)
        return run_scan(dir, positive(argv[3], "RECORDS"), positive(argv[4], "PASSES"));
    return usage();
}
