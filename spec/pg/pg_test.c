/*
 * pg_test.c -- the PostgreSQL engine against a real server, from C, no Lua:
 *   build/tests/cairn_pg_tests [TEST]          all tests, or one (needs CAIRN_TEST_PG)
 *   build/tests/cairn_pg_tests --bench 1,4,8 S  writer processes saving for S
 *                                               seconds each round: saves/s, gap check
 *   build/tests/cairn_pg_tests --lag N          save-to-follower lag across processes
 * `tools/pg run build/tests/cairn_pg_tests` gives it a private cluster
 * (CAIRN_TEST_PG, its URI; CAIRN_TEST_PG_DIR, for the restart test).
 * Without CAIRN_TEST_PG it says so and exits 0 when CAIRN_TEST_PG_OPTIONAL is set,
 * else 1. One E() check macro, as LMDB's mtest.c has; exits 1 at the first failure.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "cairn.h"
#include "pg_store.h"
#include "record.h"
#include "uuid.h"

#define E(expr) do { if (!(expr)) { \
    fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #expr); exit(1); } } while (0)
#define OK(call) do { int rc_ = (call); if (rc_ != CAIRN_OK) { \
    fprintf(stderr, "%s:%d: %s -> %d (%s)\n", __FILE__, __LINE__, #call, rc_, pg ? cairn_pg_errmsg(pg) : ""); \
    exit(1); } } while (0)

static const char *uri;   /* CAIRN_TEST_PG */
static char err[512];

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* "URI" with extra libpq parameters appended. */
static const char *with(const char *extra)
{
    static char buf[1024];
    snprintf(buf, sizeof buf, "%s%s%s", uri, strchr(uri, '?') ? "&" : "?", extra);
    return buf;
}

static void sql(PGconn *c, const char *q);

#define SCHEMA_VERSION 3 /* what this cairn writes (runtime/store/pg_internal.h: CAIRN_PG_FORMAT) */

/* A plain libpq connection for what the tests do around the engine. */
static PGconn *raw(void)
{
    PGconn *c = PQconnectdb(uri);
    E(PQstatus(c) == CONNECTION_OK);
    sql(c, "SET client_min_messages = warning");
    return c;
}

static void sql(PGconn *c, const char *q)
{
    PGresult *r = PQexec(c, q);
    if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK) {
        fprintf(stderr, "%s: %s", q, PQerrorMessage(c));
        exit(1);
    }
    PQclear(r);
}

static long long sql_int(PGconn *c, const char *q)
{
    PGresult *r = PQexec(c, q);
    E(PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1);
    long long v = atoll(PQgetvalue(r, 0, 0));
    PQclear(r);
    return v;
}

static void drop_schema(const char *schema)
{
    char q[256];
    PGconn *c = raw();
    snprintf(q, sizeof q, "DROP SCHEMA IF EXISTS %s CASCADE", schema);
    sql(c, q);
    PQfinish(c);
}

static cairn_pg *open_schema(const char *schema, int read_only)
{
    cairn_pg_options o = { .schema = schema, .read_only = read_only };
    cairn_pg *pg = NULL;
    int rc = cairn_pg_open(uri, &o, &pg, err, sizeof err);
    if (rc) {
        fprintf(stderr, "open %s: %d %s\n", schema, rc, err);
        exit(1);
    }
    return pg;
}

static void make_id(uint8_t id[16], unsigned a, unsigned b)
{
    memset(id, 0, 16);
    memcpy(id, &a, sizeof a);
    memcpy(id + 8, &b, sizeof b);
    id[6] = 0x40; /* a version-4 UUID shape, for looks */
}

static cairn_pg_record rec(const uint8_t *id, uint64_t version, const char *topic, const char *bytes)
{
    cairn_pg_record r = { .stream_id = id, .version = version };
    r.topic = (cairn_pg_bytes){ (const uint8_t *)topic, strlen(topic) };
    r.bytes = (cairn_pg_bytes){ (const uint8_t *)bytes, strlen(bytes) };
    return r;
}

static cairn_pg_bytes str(const char *s) { return (cairn_pg_bytes){ (const uint8_t *)s, strlen(s) }; }

static int bytes_are(cairn_pg_bytes b, const char *s) { return b.len == strlen(s) && memcmp(b.ptr, s, b.len) == 0; }

static size_t stream_len(cairn_pg *pg, const uint8_t id[16])
{
    cairn_pg_rows rows;
    OK(cairn_pg_read_stream(pg, id, 0, UINT64_MAX, 0, 0, &rows));
    size_t n = rows.n;
    cairn_pg_rows_free(&rows);
    return n;
}

/* ---- opening, schemas --------------------------------------------------- */

/* Make a schema look as a cairn of version 1 (no pos, no number()) or 2 left it:
 * the seq identity for a primary key, a counter table at the highest id. */
static void as_older(PGconn *c, const char *schema, int version)
{
    static const char *const steps[] = {
        "ALTER TABLE %s.events ADD COLUMN seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, "
        "REPLICA IDENTITY DEFAULT",
        "DROP VIEW %s.counter",
        "CREATE TABLE %s.counter (one boolean PRIMARY KEY DEFAULT true CHECK (one), last bigint NOT NULL)",
        "INSERT INTO %1$s.counter SELECT true, coalesce(max(id), 0) FROM %1$s.events",
        "ALTER TABLE %s.events DROP COLUMN pos", /* version 1 only, from here */
        "DROP FUNCTION %s.number(uuid, bigint)",
    };
    char q[300];
    for (int i = 0; i < (version == 1 ? 6 : 4); i++) {
        snprintf(q, sizeof q, steps[i], schema);
        sql(c, q);
    }
    snprintf(q, sizeof q, "UPDATE %s.meta SET value = '%d' WHERE key = 'format'", schema, version);
    sql(c, q);
}

/* ... brought up to date: this cairn's version, pos, no seq, the counter a view, number() */
static void check_current(PGconn *c)
{
    E(sql_int(c, "SELECT convert_from(value, 'UTF8')::int FROM t_open.meta WHERE key = 'format'") == SCHEMA_VERSION);
    E(sql_int(c, "SELECT count(*) FROM information_schema.columns WHERE table_schema = 't_open' "
                 "AND table_name = 'events' AND column_name IN ('pos', 'seq')") == 1);
    E(sql_int(c, "SELECT count(*) FROM information_schema.columns WHERE table_schema = 't_open' "
                 "AND table_name = 'events' AND column_name = 'pos'") == 1);
    E(sql_int(c, "SELECT count(*) FROM pg_class WHERE oid = 't_open.counter'::regclass AND relkind = 'v'") == 1);
    E(sql_int(c, "SELECT count(*) FROM pg_proc WHERE proname = 'number' AND "
                 "pronamespace = 't_open'::regnamespace") == 1);
}

static void test_open(void)
{
    cairn_pg *pg = NULL;
    drop_schema("t_open");
    cairn_pg_options ro = { .schema = "t_open", .read_only = 1 };
    /* a read-only tool on a database without cairn's tables: ConfigError naming the server, nothing made */
    E(cairn_pg_open(uri, &ro, &pg, err, sizeof err) == CAIRN_CONFIG && !pg);
    E(strstr(err, "no store at postgresql://") && strstr(err, "/postgres?schema=t_open") && !strchr(err, '\n'));
    PGconn *c = raw();
    E(sql_int(c, "SELECT count(*) FROM pg_namespace WHERE nspname = 't_open'") == 0);
    /* bad schema names, and what is not a PostgreSQL URI */
    cairn_pg_options bad = { .schema = "Bad-Name" };
    E(cairn_pg_open(uri, &bad, &pg, err, sizeof err) == CAIRN_CONFIG && strstr(err, "schema name"));
    bad.schema = "pg_catalog";
    E(cairn_pg_open(uri, &bad, &pg, err, sizeof err) == CAIRN_CONFIG && strstr(err, "schema name"));
    E(cairn_pg_open("lmdb:/tmp/x", NULL, &pg, err, sizeof err) == CAIRN_CONFIG && strstr(err, "not a PostgreSQL URI"));
    E(cairn_pg_open("postgresql://[::1", NULL, &pg, err, sizeof err) == CAIRN_CONFIG && strstr(err, "bad PostgreSQL URI"));
    /* libpq quotes the part it cannot parse: never the password */
    E(cairn_pg_open("postgresql://u:se%zzcret@h/db", NULL, &pg, err, sizeof err) == CAIRN_CONFIG);
    E(strstr(err, "bad PostgreSQL URI") && !strstr(err, "se%zzcret"));
    E(cairn_pg_open("postgresql://h/db?password=se%zzcret", NULL, &pg, err, sizeof err) == CAIRN_CONFIG);
    E(strstr(err, "bad PostgreSQL URI") && !strstr(err, "se%zzcret"));
    /* the first writer creates the schema; then a reader may open it; schema= in the URI names it */
    pg = open_schema("t_open", 0);
    E(strcmp(cairn_pg_schema(pg), "t_open") == 0);
    cairn_pg_close(pg);
    E(sql_int(c, "SELECT count(*) FROM information_schema.tables WHERE table_schema = 't_open'") == 11); /* with dcb and once */
    pg = NULL;
    cairn_pg_options ro2 = { .read_only = 1 };
    OK(cairn_pg_open(with("schema=t_open"), &ro2, &pg, err, sizeof err));
    E(strcmp(cairn_pg_schema(pg), "t_open") == 0);
    /* a read-only handle does not write, even by mistake */
    E(cairn_pg_meta_put(pg, "x", str("y")) == CAIRN_CONFIG && strstr(cairn_pg_errmsg(pg), "open read-only"));
    uint8_t id[16];
    make_id(id, 1, 1);
    cairn_pg_record ev = rec(id, 1, "T", "x");
    cairn_pg_batch b = { .events = &ev, .n = 1 };
    uint64_t first;
    E(cairn_pg_append(pg, &b, &first) == CAIRN_CONFIG && strstr(cairn_pg_errmsg(pg), "open read-only"));
    cairn_pg_view_op op = { str("k"), str("v"), 0 };
    E(cairn_pg_view_write(pg, str("v"), &op, 1, (cairn_pg_bytes){ NULL, 0 }, 0, 0, 0, 0) == CAIRN_CONFIG);
    E(cairn_pg_forget(pg, id, 0, 0) == CAIRN_CONFIG);

    cairn_pg_close(pg);
    /* a schema an older cairn left (version 1: no pos column, its own functions) is read as it is
     * by a reader, which writes nothing, and brought up to date by a writer's open */
    as_older(c, "t_open", 1);
    pg = NULL;
    OK(cairn_pg_open(with("schema=t_open"), &ro2, &pg, err, sizeof err));
    uint64_t max;
    OK(cairn_pg_max_id(pg, &max));
    cairn_pg_close(pg);
    E(sql_int(c, "SELECT convert_from(value, 'UTF8')::int FROM t_open.meta WHERE key = 'format'") == 1);
    /* a tool's open (must_exist) leaves it too, until it writes */
    cairn_pg_options tool = { .schema = "t_open", .must_exist = 1 };
    pg = NULL;
    OK(cairn_pg_open(uri, &tool, &pg, err, sizeof err));
    OK(cairn_pg_max_id(pg, &max));
    E(sql_int(c, "SELECT convert_from(value, 'UTF8')::int FROM t_open.meta WHERE key = 'format'") == 1);
    OK(cairn_pg_append(pg, &b, &first));
    E(first == 1);
    cairn_pg_close(pg);
    check_current(c);
    /* and a writer's open at once, from version 1 and from version 2; ids go on */
    for (int v = 1; v <= 2; v++) {
        as_older(c, "t_open", v);
        E(sql_int(c, "SELECT last FROM t_open.counter") == v);
        cairn_pg_options rw = { .schema = "t_open" };
        pg = NULL;
        OK(cairn_pg_open(uri, &rw, &pg, err, sizeof err));
        check_current(c);
        make_id(id, 1, (uint8_t)(v + 1));
        OK(cairn_pg_append(pg, &b, &first));
        E(first == (uint64_t)v + 1);
        OK(cairn_pg_max_id(pg, &max));
        E(max == (uint64_t)v + 1);
        cairn_pg_close(pg);
    }
    /* an older schema whose counter does not match its ids is not brought up to date */
    as_older(c, "t_open", 2);
    sql(c, "UPDATE t_open.counter SET last = 7");
    cairn_pg_options rw = { .schema = "t_open" };
    pg = NULL;
    E(cairn_pg_open(uri, &rw, &pg, err, sizeof err) == CAIRN_STORE && strstr(err, "the counter is at 7, the highest "
      "id is 3"));
    E(sql_int(c, "SELECT convert_from(value, 'UTF8')::int FROM t_open.meta WHERE key = 'format'") == 2);
    sql(c, "UPDATE t_open.counter SET last = 3");
    pg = NULL;
    OK(cairn_pg_open(uri, &rw, &pg, err, sizeof err));
    cairn_pg_close(pg);
    check_current(c);
    /* a schema of a newer cairn is refused, by writers and readers, naming both versions; left as it is */
    sql(c, "UPDATE t_open.meta SET value = '9' WHERE key = 'format'");
    pg = NULL;
    E(cairn_pg_open(uri, &rw, &pg, err, sizeof err) == CAIRN_CONFIG && strstr(err, "version 9") &&
      strstr(err, "newer than this cairn knows (3)"));
    E(cairn_pg_open(uri, &ro, &pg, err, sizeof err) == CAIRN_CONFIG && strstr(err, "version 9"));
    E(sql_int(c, "SELECT convert_from(value, 'UTF8')::int FROM t_open.meta WHERE key = 'format'") == 9);
    PQfinish(c);
    drop_schema("t_open");
    printf("ok - open: read-only opens create nothing, writers create the schema and update an older one, "
           "names and versions checked\n");
}

/* ---- saves and reads ---------------------------------------------------- */

static void test_append(void)
{
    drop_schema("t_append");
    cairn_pg *pg = open_schema("t_append", 0);
    uint8_t a[16], b[16];
    make_id(a, 2, 1);
    make_id(b, 2, 2);
    uint64_t first, max;
    /* two streams in one save, a snapshot beside them */
    cairn_pg_record ev[3] = { rec(a, 1, "Created", "a1"), rec(a, 2, "Renamed", "a2"), rec(b, 1, "Created", "b1") };
    cairn_pg_record snap = rec(a, 2, "", "state-a2");
    cairn_pg_batch batch = { .events = ev, .n = 3, .snapshots = &snap, .nsnapshots = 1 };
    OK(cairn_pg_append(pg, &batch, &first));
    E(first == 1);
    OK(cairn_pg_max_id(pg, &max));
    E(max == 3);
    cairn_pg_rows rows;
    OK(cairn_pg_read_stream(pg, a, 0, UINT64_MAX, 0, 0, &rows));
    E(rows.n == 2 && rows.row[0].version == 1 && rows.row[1].version == 2 && rows.row[1].id == 2);
    E(bytes_are(rows.row[0].bytes, "a1") && memcmp(rows.row[0].stream_id, a, 16) == 0);
    cairn_pg_rows_free(&rows);
    OK(cairn_pg_read_stream(pg, a, 0, UINT64_MAX, 1, 1, &rows));
    E(rows.n == 1 && rows.row[0].version == 2);
    cairn_pg_rows_free(&rows);
    OK(cairn_pg_read_snapshot(pg, a, UINT64_MAX, &rows));
    E(rows.n == 1 && rows.row[0].version == 2 && bytes_are(rows.row[0].bytes, "state-a2"));
    E(bytes_are(rows.row[0].key, "a2")); /* the event it was taken at, in the same read */
    cairn_pg_rows_free(&rows);
    OK(cairn_pg_read_snapshot(pg, a, 1, &rows));
    E(rows.n == 0);
    cairn_pg_rows_free(&rows);

    /* a stale stream rejects the whole batch: nothing of the fresh one is kept */
    cairn_pg_record stale[2] = { rec(b, 2, "Renamed", "b2"), rec(a, 2, "Renamed", "a2 again") };
    cairn_pg_batch sb = { .events = stale, .n = 2 };
    E(cairn_pg_append(pg, &sb, &first) == CAIRN_CONFLICT);
    E(strstr(cairn_pg_errmsg(pg), "version 2 was already recorded (the stream is at 2)"));
    E(stream_len(pg, b) == 1);
    cairn_pg_record ahead = rec(a, 5, "Renamed", "a5");
    cairn_pg_batch ab = { .events = &ahead, .n = 1 };
    E(cairn_pg_append(pg, &ab, &first) == CAIRN_CONFLICT && strstr(cairn_pg_errmsg(pg), "does not follow"));
    cairn_pg_record gap[2] = { rec(b, 2, "X", "b2"), rec(b, 4, "X", "b4") };
    cairn_pg_batch gb = { .events = gap, .n = 2 };
    E(cairn_pg_append(pg, &gb, &first) == CAIRN_CONFLICT);
    OK(cairn_pg_max_id(pg, &max));
    E(max == 3);

    /* tracking: recorded with the events, must rise; a repeat records nothing */
    cairn_pg_record t1 = rec(b, 2, "Renamed", "b2");
    cairn_pg_batch tb = { .events = &t1, .n = 1, .track_app = str("leader"), .track_id = 7 };
    OK(cairn_pg_append(pg, &tb, &first));
    E(first == 4);
    uint64_t pos;
    OK(cairn_pg_tracking_max(pg, str("leader"), &pos));
    E(pos == 7);
    cairn_pg_record t2 = rec(b, 3, "Renamed", "b3");
    tb.events = &t2;
    E(cairn_pg_append(pg, &tb, &first) == CAIRN_CONFLICT && strstr(cairn_pg_errmsg(pg), "processed before"));
    E(stream_len(pg, b) == 2);
    OK(cairn_pg_tracking_max(pg, str("other"), &pos));
    E(pos == 0);
    /* tracking alone, snapshots alone */
    cairn_pg_batch only = { .track_app = str("leader"), .track_id = 8 };
    OK(cairn_pg_append(pg, &only, &first));
    E(first == 0);
    OK(cairn_pg_tracking_max(pg, str("leader"), &pos));
    E(pos == 8);
    /* a batch that began at or below the position (a writer that read an older one) records nothing */
    cairn_pg_batch overlap = { .events = &t2, .n = 1, .track_app = str("leader"), .track_id = 20, .track_first = 8 };
    E(cairn_pg_append(pg, &overlap, &first) == CAIRN_CONFLICT && strstr(cairn_pg_errmsg(pg), "processed before"));
    E(stream_len(pg, b) == 2);
    overlap.track_first = 21;
    E(cairn_pg_append(pg, &overlap, &first) == CAIRN_INVALID);
    OK(cairn_pg_tracking_max(pg, str("leader"), &pos));
    E(pos == 8);

    /* the log: from, to, limit, topics */
    OK(cairn_pg_read_log(pg, 2, 0, NULL, 0, 0, &rows));
    E(rows.n == 3 && rows.row[0].id == 2 && rows.row[2].id == 4 && bytes_are(rows.row[2].bytes, "b2"));
    cairn_pg_rows_free(&rows);
    OK(cairn_pg_read_log(pg, 1, 2, NULL, 0, 0, &rows));
    E(rows.n == 2);
    cairn_pg_rows_free(&rows);
    cairn_pg_bytes topics[1] = { str("Renamed") };
    OK(cairn_pg_read_log(pg, 1, 0, topics, 1, 1, &rows));
    E(rows.n == 1 && rows.row[0].id == 2);
    cairn_pg_rows_free(&rows);
    OK(cairn_pg_read_log(pg, 3, 0, topics, 1, 0, &rows));
    E(rows.n == 1 && rows.row[0].id == 4);
    cairn_pg_rows_free(&rows);

    /* what a save depends on, in one read: heads (in the order asked), the events snapshots were taken at */
    uint8_t ids[3][16];
    memcpy(ids[0], a, 16);
    make_id(ids[1], 9, 9);
    memcpy(ids[2], b, 16);
    cairn_pg_snapshot_ref refs[2] = { { a, 1 }, { b, 7 } };
    cairn_pg_prepared prep;
    OK(cairn_pg_prepare(pg, (const uint8_t (*)[16])ids, 3, refs, 2, 1, &prep));
    E(prep.nheads == 3 && prep.head[0].version == 2 && bytes_are(prep.head[0].bytes, "a2"));
    E(prep.head[1].version == 0 && !prep.head[1].bytes.ptr && !prep.head[1].key.ptr);
    E(prep.head[2].version == 2 && bytes_are(prep.head[2].bytes, "b2"));
    E(prep.nbases == 2 && bytes_are(prep.base[0].bytes, "a1") && !prep.base[1].bytes.ptr);
    E(!prep.ks.cipher.ptr && prep.ks.keygen == 0 && !prep.ks.empty);
    cairn_pg_prepared_free(&prep);

    cairn_pg_stats st;
    OK(cairn_pg_stat(pg, &st));
    E(st.events == 4 && st.streams == 2 && st.snapshots == 1 && st.max_id == 4 && st.pending == 0);

    /* bad input is refused before anything is sent */
    /* (versions may start at 0, as on LMDB: above 2^63-1 is what PostgreSQL cannot hold) */
    cairn_pg_record bad = rec(a, (uint64_t)INT64_MAX + 1, "X", "x");
    cairn_pg_batch bb = { .events = &bad, .n = 1 };
    E(cairn_pg_append(pg, &bb, &first) == CAIRN_INVALID);
    bad = rec(a, 3, "", "x");
    E(cairn_pg_append(pg, &bb, &first) == CAIRN_INVALID);
    /* meta values */
    OK(cairn_pg_meta_put(pg, "keycheck", str("kc")));
    OK(cairn_pg_meta_get(pg, "keycheck", &rows));
    E(rows.n == 1 && bytes_are(rows.row[0].bytes, "kc"));
    cairn_pg_rows_free(&rows);
    cairn_pg_close(pg);
    drop_schema("t_append");
    printf("ok - append: multi-stream saves, conflicts reject the whole batch, tracking, snapshots, log reads\n");
}

/* ---- DCB postings and conditions, reads of listed ids, idempotency keys (pg_dcb.c) ---- */

static void test_dcb(void)
{
    drop_schema("t_dcb");
    cairn_pg *pg = open_schema("t_dcb", 0);
    uint8_t id[3][16];
    for (int i = 0; i < 3; i++) make_id(id[i], 9, i + 1);
    /* two DCB events: 1 Defined {course:c1}, 2 Subscribed {course:c1, student:s1} */
    cairn_pg_record ev[2] = { rec(id[0], 1, "Defined", "e1"), rec(id[1], 1, "Subscribed", "e2") };
    cairn_pg_posting post[] = {
        { str("a"), 0, str("Defined") }, { str("yDefined"), 0, str("Defined") }, { str("gcourse:c1"), 0, str("Defined") },
        { str("a"), 1, str("Subscribed") }, { str("ySubscribed"), 1, str("Subscribed") },
        { str("gcourse:c1"), 1, str("Subscribed") }, { str("gstudent:s1"), 1, str("Subscribed") },
    };
    cairn_pg_batch batch = { .events = ev, .n = 2, .postings = post, .npostings = 7 };
    uint64_t first, last, *ids;
    size_t n;
    OK(cairn_pg_append(pg, &batch, &first));
    E(first == 1);
    /* one item, tags course:c1 and student:s1: event 2 only; types only; every DCB event */
    cairn_pg_bytes both[] = { str("gcourse:c1"), str("gstudent:s1") }, sub[] = { str("ySubscribed") };
    uint64_t item1[] = { 1, 1 };
    cairn_pg_query q = { .nitems = 1, .names = both, .item = item1, .nnames = 2 };
    OK(cairn_pg_dcb_read(pg, &q, 0, &ids, &n, &last));
    E(n == 1 && ids[0] == 2 && last == 2);
    free(ids);
    cairn_pg_query qt = { .nitems = 1, .names = sub, .item = item1, .nnames = 1, .after = 2 };
    OK(cairn_pg_dcb_read(pg, &qt, 0, &ids, &n, &last));
    E(n == 0 && last == 2);
    free(ids);
    cairn_pg_query all = { 0 };
    OK(cairn_pg_dcb_read(pg, &all, 1, &ids, &n, &last));
    E(n == 1 && ids[0] == 1);
    free(ids);
    /* a condition that matches after position 1 refuses the append, recording nothing */
    cairn_pg_record more = rec(id[2], 1, "Subscribed", "e3");
    cairn_pg_posting mp[] = { { str("a"), 0, str("Subscribed") }, { str("ySubscribed"), 0, str("Subscribed") } };
    q.after = 1;
    cairn_pg_batch cond = { .events = &more, .n = 1, .postings = mp, .npostings = 2, .fail_if = &q };
    E(cairn_pg_append(pg, &cond, &first) == CAIRN_CONFLICT);
    E(strstr(cairn_pg_errmsg(pg), "recorded after position 1 (at 2)"));
    OK(cairn_pg_max_id(pg, &last));
    E(last == 2);
    q.after = 2;
    cond.once = str("key-1");
    OK(cairn_pg_append(pg, &cond, &first));
    E(first == 3);
    /* the key: recorded with the save; a second save of it is refused */
    uint64_t kf, kn;
    OK(cairn_pg_once_get(pg, str("key-1"), &kf, &kn));
    E(kf == 3 && kn == 1);
    E(cairn_pg_once_get(pg, str("key-2"), &kf, &kn) == CAIRN_END);
    cairn_pg_batch again = { .once = str("key-1") };
    E(cairn_pg_append(pg, &again, &first) == CAIRN_CONFLICT && strstr(cairn_pg_errmsg(pg), "recorded before"));
    /* listed ids, those that exist, in one read */
    uint64_t want[] = { 1, 3, 7 };
    cairn_pg_rows rows;
    OK(cairn_pg_read_log_ids(pg, want, 3, NULL, 0, &rows));
    E(rows.n == 2 && rows.row[0].id == 1 && rows.row[1].id == 3 && bytes_are(rows.row[1].bytes, "e3"));
    cairn_pg_rows_free(&rows);
    cairn_pg_close(pg);
    drop_schema("t_dcb");
    printf("ok - dcb: postings, queries, conditions, keys, listed ids\n");
}

/* ---- keys: encryption state, data keys, forget, rekey ------------------- */

static void test_keys(void)
{
    drop_schema("t_keys");
    cairn_pg *pg = open_schema("t_keys", 0);
    cairn_pg_prepared prep;
    OK(cairn_pg_prepare(pg, NULL, 0, NULL, 0, 0, &prep));
    E(!prep.ks.cipher.ptr && prep.ks.keygen == 0 && prep.ks.empty);
    cairn_pg_prepared_free(&prep);
    /* an empty store becomes encrypted once; a stale generation is refused */
    int done;
    OK(cairn_pg_set_cipher(pg, str("xchacha20poly1305"), str("check-1"), 0, &done));
    E(done);
    E(cairn_pg_set_cipher(pg, str("other"), str("check-x"), 0, &done) == CAIRN_CONFLICT && cairn_pg_keys_changed(pg));
    OK(cairn_pg_set_cipher(pg, str("other"), str("check-x"), 1, &done));
    E(!done);
    OK(cairn_pg_prepare(pg, NULL, 0, NULL, 0, 0, &prep));
    E(bytes_are(prep.ks.cipher, "xchacha20poly1305") && bytes_are(prep.ks.keycheck, "check-1") && prep.ks.keygen == 1);
    cairn_pg_prepared_free(&prep);

    /* saves add data keys for new streams, at the generation they were prepared at */
    uint8_t a[16], b[16], c[16];
    make_id(a, 8, 1);
    make_id(b, 8, 2);
    make_id(c, 8, 3);
    cairn_pg_record ev[2] = { rec(a, 1, "Created", "a1"), rec(b, 1, "Created", "b1") };
    cairn_pg_record snap = rec(a, 1, "", "state-a1");
    cairn_pg_key keys[2] = { { a, str("key-a") }, { b, str("key-b") } };
    cairn_pg_batch batch = { .events = ev, .n = 2, .snapshots = &snap, .nsnapshots = 1, .keys = keys, .nkeys = 2,
                             .check_keygen = 1, .keygen = 0 };
    uint64_t first;
    E(cairn_pg_append(pg, &batch, &first) == CAIRN_CONFLICT && cairn_pg_keys_changed(pg));
    E(stream_len(pg, a) == 0);
    batch.keygen = 1;
    OK(cairn_pg_append(pg, &batch, &first));
    E(first == 1 && !cairn_pg_keys_changed(pg));
    /* a stream's key is made once: a second "new" key for it is a conflict, not a key change */
    cairn_pg_record c1 = rec(c, 1, "Created", "c1");
    cairn_pg_key again[2] = { { c, str("key-c") }, { a, str("key-a2") } };
    cairn_pg_batch twice = { .events = &c1, .n = 1, .keys = again, .nkeys = 2, .check_keygen = 1, .keygen = 1 };
    E(cairn_pg_append(pg, &twice, &first) == CAIRN_CONFLICT && !cairn_pg_keys_changed(pg));
    E(stream_len(pg, c) == 0);
    uint8_t ids[2][16];
    memcpy(ids[0], a, 16);
    memcpy(ids[1], c, 16);
    OK(cairn_pg_prepare(pg, (const uint8_t (*)[16])ids, 2, NULL, 0, 1, &prep));
    E(bytes_are(prep.head[0].key, "key-a") && !prep.head[1].key.ptr && !prep.ks.empty);
    cairn_pg_prepared_free(&prep);
    cairn_pg_rows rows;
    OK(cairn_pg_read_snapshot(pg, a, UINT64_MAX, &rows));
    E(rows.n == 1);
    cairn_pg_rows_free(&rows);

    /* forget: the key becomes one 0 byte, the snapshots go, the generation moves */
    E(cairn_pg_forget(pg, a, 1, 0) == CAIRN_CONFLICT && cairn_pg_keys_changed(pg));
    OK(cairn_pg_forget(pg, a, 1, 1));
    OK(cairn_pg_forget(pg, a, 0, 0)); /* forgotten before: fine */
    E(cairn_pg_forget(pg, c, 0, 0) == CAIRN_NOTFOUND && strstr(cairn_pg_errmsg(pg), "has no data key"));
    OK(cairn_pg_read_snapshot(pg, a, UINT64_MAX, &rows));
    E(rows.n == 0);
    cairn_pg_rows_free(&rows);
    OK(cairn_pg_prepare(pg, (const uint8_t (*)[16])ids, 1, NULL, 0, 1, &prep));
    E(prep.head[0].key.len == 1 && prep.head[0].key.ptr[0] == 0 && prep.ks.keygen == 2);
    E(prep.head[0].version == 1); /* the events stay: the log keeps their ids */
    cairn_pg_prepared_free(&prep);

    /* rekey: every live key at once; a key added after they were read refuses it */
    OK(cairn_pg_read_keys(pg, NULL, 0, &rows));
    E(rows.n == 2);
    cairn_pg_key live[1];
    size_t nlive = 0;
    for (size_t i = 0; i < rows.n; i++)
        if (rows.row[i].bytes.len > 1) live[nlive++] = (cairn_pg_key){ rows.row[i].stream_id, str("rewrapped") };
    E(nlive == 1 && memcmp(live[0].stream_id, b, 16) == 0);
    cairn_pg_key ck = { c, str("key-c") };
    cairn_pg_batch newc = { .events = &c1, .n = 1, .keys = &ck, .nkeys = 1, .check_keygen = 1, .keygen = 2 };
    OK(cairn_pg_append(pg, &newc, &first));
    E(cairn_pg_rekey(pg, live, nlive, str("check-2"), 2) == CAIRN_CONFLICT && cairn_pg_keys_changed(pg));
    cairn_pg_rows_free(&rows);
    OK(cairn_pg_read_keys(pg, NULL, 0, &rows));
    cairn_pg_key all[3];
    nlive = 0;
    for (size_t i = 0; i < rows.n; i++)
        if (rows.row[i].bytes.len > 1) all[nlive++] = (cairn_pg_key){ rows.row[i].stream_id, str("rewrapped") };
    E(nlive == 2);
    E(cairn_pg_rekey(pg, all, nlive, str("check-2"), 1) == CAIRN_CONFLICT);
    OK(cairn_pg_rekey(pg, all, nlive, str("check-2"), 2));
    cairn_pg_rows_free(&rows);
    OK(cairn_pg_read_keys(pg, NULL, 1, &rows));
    E(rows.n == 1);
    const uint8_t *after = rows.row[0].stream_id;
    cairn_pg_rows more;
    OK(cairn_pg_read_keys(pg, after, 0, &more));
    E(more.n == 2);
    cairn_pg_rows_free(&more);
    cairn_pg_rows_free(&rows);
    OK(cairn_pg_prepare(pg, (const uint8_t (*)[16])ids, 2, NULL, 0, 1, &prep));
    E(bytes_are(prep.ks.keycheck, "check-2") && prep.ks.keygen == 3 && prep.head[0].key.len == 1 &&
      bytes_are(prep.head[1].key, "rewrapped"));
    cairn_pg_prepared_free(&prep);
    cairn_pg_close(pg);
    drop_schema("t_keys");

    /* a plain store that holds events stays plain */
    drop_schema("t_plain");
    pg = open_schema("t_plain", 0);
    OK(cairn_pg_append(pg, &(cairn_pg_batch){ .events = &c1, .n = 1 }, &first));
    E(cairn_pg_set_cipher(pg, str("xchacha20poly1305"), str("check-1"), 0, &done) == CAIRN_CONFLICT);
    E(strstr(cairn_pg_errmsg(pg), "holds events"));
    cairn_pg_close(pg);
    drop_schema("t_plain");
    printf("ok - keys: encryption state, data keys with saves, forget, rekey, each refused after a key change\n");
}

/* ---- a consistent walk ------------------------------------------------- */

static void test_walk(void)
{
    drop_schema("t_walk");
    cairn_pg *pg = open_schema("t_walk", 0), *w = open_schema("t_walk", 0);
    uint8_t a[16], b[16];
    make_id(a, 10, 1);
    make_id(b, 10, 2);
    cairn_pg_record ev[3] = { rec(b, 1, "Created", "b1"), rec(a, 1, "Created", "a1"), rec(a, 2, "Renamed", "a2") };
    cairn_pg_record snap = rec(a, 2, "", "state");
    uint64_t first;
    OK(cairn_pg_append(pg, &(cairn_pg_batch){ .events = ev, .n = 3, .snapshots = &snap, .nsnapshots = 1 }, &first));
    OK(cairn_pg_walk_begin(pg));
    E(cairn_pg_walk_begin(pg) == CAIRN_INVALID);
    /* a save made during the walk is not in it */
    cairn_pg_record a3 = rec(a, 3, "Renamed", "a3");
    OK(cairn_pg_append(w, &(cairn_pg_batch){ .events = &a3, .n = 1 }, &first));
    E(first == 4);
    /* one event at a time, in stream then version order */
    const uint8_t *after = NULL;
    uint64_t after_version = 0, seen = 0;
    uint8_t last[16];
    for (;;) {
        cairn_pg_rows rows;
        OK(cairn_pg_walk_events(pg, after, after_version, 1, &rows));
        if (rows.n == 0) {
            cairn_pg_rows_free(&rows);
            break;
        }
        E(rows.n == 1);
        seen++;
        memcpy(last, rows.row[0].stream_id, 16);
        after = last;
        after_version = rows.row[0].version;
        cairn_pg_rows_free(&rows);
    }
    E(seen == 3);
    cairn_pg_stats st;
    OK(cairn_pg_stat(pg, &st));
    E(st.events == 3 && st.max_id == 3);
    cairn_pg_rows rows;
    OK(cairn_pg_walk_snapshots(pg, NULL, 0, 0, &rows));
    E(rows.n == 1 && rows.row[0].version == 2 && bytes_are(rows.row[0].bytes, "state"));
    cairn_pg_rows_free(&rows);
    cairn_pg_walk_end(pg);
    OK(cairn_pg_stat(pg, &st));
    E(st.events == 4);
    E(cairn_pg_walk_events(pg, NULL, 0, 0, &rows) == CAIRN_INVALID);
    /* a walk whose connection is lost fails, without reconnecting behind its back */
    OK(cairn_pg_walk_begin(pg));
    PGconn *c = raw();
    char q[64];
    snprintf(q, sizeof q, "SELECT pg_terminate_backend(%d)", cairn_pg_backend_pid(pg));
    sql(c, q);
    PQfinish(c);
    E(cairn_pg_walk_events(pg, NULL, 0, 0, &rows) == CAIRN_STORE);
    E(cairn_pg_walk_events(pg, NULL, 0, 0, &rows) == CAIRN_STORE && strstr(cairn_pg_errmsg(pg), "during a walk"));
    cairn_pg_walk_end(pg);
    OK(cairn_pg_stat(pg, &st)); /* connected again */
    E(st.events == 4);
    cairn_pg_close(w);
    cairn_pg_close(pg);
    drop_schema("t_walk");
    printf("ok - walk: batches in stream order, one snapshot throughout, no reconnect in the middle\n");
}

/* ---- applications kept apart -------------------------------------------- */

static void test_apps_apart(void)
{
    drop_schema("t_app_a");
    drop_schema("t_app_b");
    cairn_pg *pa = open_schema("t_app_a", 0), *pb = open_schema("t_app_b", 0), *pg = pa;
    uint8_t id[16];
    make_id(id, 3, 1);
    cairn_pg_record ev = rec(id, 1, "Created", "in a");
    cairn_pg_batch b = { .events = &ev, .n = 1 };
    uint64_t first;
    OK(cairn_pg_append(pa, &b, &first));
    E(first == 1);
    ev = rec(id, 1, "Created", "in b"); /* the same stream id: another application's stream */
    pg = pb;
    OK(cairn_pg_append(pb, &b, &first));
    E(first == 1);
    cairn_pg_rows rows;
    OK(cairn_pg_read_log(pb, 1, 0, NULL, 0, 0, &rows));
    E(rows.n == 1 && bytes_are(rows.row[0].bytes, "in b"));
    cairn_pg_rows_free(&rows);
    cairn_pg_close(pa);
    cairn_pg_close(pb);
    drop_schema("t_app_a");
    drop_schema("t_app_b");
    printf("ok - applications: two schemas in one database, ids and streams apart\n");
}

/* ---- views -------------------------------------------------------------- */

static void test_views(void)
{
    drop_schema("t_views");
    cairn_pg *pg = open_schema("t_views", 0);
    cairn_pg_view_op ops[5] = {
        { str("user:1"), str("v1"), 0 }, { str("user:2"), str("v2"), 0 }, { str("user:3"), str("v3"), 0 },
        { str("other"), str("o"), 0 }, { str("user:2"), str(""), 1 }, /* later op wins: user:2 is gone */
    };
    OK(cairn_pg_view_write(pg, str("users"), ops, 5, str("app"), 3, 0, 0, 0));
    cairn_pg_rows rows;
    OK(cairn_pg_view_get(pg, str("users"), str("user:1"), &rows));
    E(rows.n == 1 && bytes_are(rows.row[0].bytes, "v1") && bytes_are(rows.row[0].key, "user:1"));
    cairn_pg_rows_free(&rows);
    OK(cairn_pg_view_get(pg, str("users"), str("user:2"), &rows));
    E(rows.n == 0);
    cairn_pg_rows_free(&rows);
    OK(cairn_pg_view_get(pg, str("others"), str("user:1"), &rows));
    E(rows.n == 0);
    cairn_pg_rows_free(&rows);
    OK(cairn_pg_view_scan(pg, str("users"), str("user:"), (cairn_pg_bytes){ NULL, 0 }, 0, &rows));
    E(rows.n == 2 && bytes_are(rows.row[0].key, "user:1") && bytes_are(rows.row[1].key, "user:3"));
    cairn_pg_rows_free(&rows);
    OK(cairn_pg_view_scan(pg, str("users"), str("user:"), str("user:1"), 0, &rows));
    E(rows.n == 1 && bytes_are(rows.row[0].key, "user:3"));
    cairn_pg_rows_free(&rows);
    OK(cairn_pg_view_scan(pg, str("users"), str(""), (cairn_pg_bytes){ NULL, 0 }, 2, &rows));
    E(rows.n == 2 && bytes_are(rows.row[0].key, "other"));
    cairn_pg_rows_free(&rows);
    /* a prefix ending in 0xff bytes */
    static const uint8_t k1[] = { 'p', 0xff, 0xff, 1 }, k2[] = { 'q' }, pre[] = { 'p', 0xff, 0xff };
    cairn_pg_view_op ff[2] = { { { k1, 4 }, str("1"), 0 }, { { k2, 1 }, str("2"), 0 } };
    OK(cairn_pg_view_write(pg, str("bin"), ff, 2, (cairn_pg_bytes){ NULL, 0 }, 0, 0, 0, 0));
    OK(cairn_pg_view_scan(pg, str("bin"), (cairn_pg_bytes){ pre, 3 }, (cairn_pg_bytes){ NULL, 0 }, 0, &rows));
    E(rows.n == 1 && rows.row[0].key.len == 4);
    cairn_pg_rows_free(&rows);
    /* tracking must rise; a refused batch writes nothing */
    cairn_pg_view_op late = { str("user:9"), str("v9"), 0 };
    E(cairn_pg_view_write(pg, str("users"), &late, 1, str("app"), 3, 0, 0, 0) == CAIRN_CONFLICT);
    OK(cairn_pg_view_get(pg, str("users"), str("user:9"), &rows));
    E(rows.n == 0);
    cairn_pg_rows_free(&rows);
    uint64_t pos;
    OK(cairn_pg_view_tracking_max(pg, str("users"), str("app"), &pos));
    E(pos == 3);
    /* ... and a batch must start above it: 3..10 overlaps, 4..10 follows */
    E(cairn_pg_view_write(pg, str("users"), &late, 1, str("app"), 10, 3, 0, 0) == CAIRN_CONFLICT);
    OK(cairn_pg_view_get(pg, str("users"), str("user:9"), &rows));
    E(rows.n == 0);
    cairn_pg_rows_free(&rows);
    OK(cairn_pg_view_write(pg, str("users"), &late, 1, str("app"), 10, 4, 0, 0));
    OK(cairn_pg_view_tracking_max(pg, str("users"), str("app"), &pos));
    E(pos == 10);
    char big[600];
    memset(big, 'k', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    cairn_pg_view_op too_long = { str(big), str("v"), 0 };
    E(cairn_pg_view_write(pg, str("users"), &too_long, 1, (cairn_pg_bytes){ NULL, 0 }, 0, 0, 0, 0) == CAIRN_INVALID);
    /* values sealed under a key state that moved before the write (another handle made the
     * store encrypted in between): refused in the write's own transaction, nothing stored */
    cairn_pg_prepared prep;
    OK(cairn_pg_prepare(pg, NULL, 0, NULL, 0, 0, &prep));
    uint64_t seen_gen = prep.ks.keygen;
    cairn_pg_prepared_free(&prep);
    cairn_pg *other = open_schema("t_views", 0);
    int done = 0;
    OK(cairn_pg_set_cipher(other, str("xchacha20poly1305"), str("check"), seen_gen, &done));
    E(done);
    cairn_pg_close(other);
    cairn_pg_view_op stale = { str("user:5"), str("plain"), 0 };
    E(cairn_pg_view_write(pg, str("users"), &stale, 1, str("app"), 11, 0, 1, seen_gen) == CAIRN_CONFLICT);
    E(cairn_pg_keys_changed(pg));
    OK(cairn_pg_view_get(pg, str("users"), str("user:5"), &rows));
    E(rows.n == 0);
    cairn_pg_rows_free(&rows);
    OK(cairn_pg_view_tracking_max(pg, str("users"), str("app"), &pos));
    E(pos == 10);
    OK(cairn_pg_view_write(pg, str("users"), &stale, 1, str("app"), 11, 0, 1, seen_gen + 1));
    cairn_pg_close(pg);
    drop_schema("t_views");
    printf("ok - views: batches with tracking, last op wins, prefix scans, the key state checked in the write\n");
}

/* The store tools' pages: tracking positions of both kinds in name order, the streams that hold
 * snapshots, every stream with its last version, each a page at a time; a view listed across
 * views, and cleared with its tracking. */
static void test_lists(void)
{
    drop_schema("t_lists");
    cairn_pg *pg = open_schema("t_lists", 0);
    uint8_t a[16], b[16], c[16];
    make_id(a, 20, 1);
    make_id(b, 20, 2);
    make_id(c, 20, 3);
    cairn_pg_record ev[5] = { rec(a, 1, "T", "a1"), rec(a, 2, "T", "a2"), rec(b, 1, "T", "b1"), rec(c, 1, "T", "c1"),
                              rec(c, 2, "T", "c2") };
    cairn_pg_record snaps[3] = { rec(a, 1, "", "sa1"), rec(a, 2, "", "sa2"), rec(c, 2, "", "sc2") };
    uint64_t first;
    OK(cairn_pg_append(pg, &(cairn_pg_batch){ .events = ev, .n = 5, .snapshots = snaps, .nsnapshots = 3 }, &first));
    /* stream heads, one page of two, then the rest */
    cairn_pg_rows rows;
    OK(cairn_pg_stream_heads(pg, NULL, 2, &rows));
    E(rows.n == 2 && memcmp(rows.row[0].stream_id, a, 16) == 0 && rows.row[0].version == 2 &&
      memcmp(rows.row[1].stream_id, b, 16) == 0 && rows.row[1].version == 1);
    cairn_pg_rows_free(&rows);
    OK(cairn_pg_stream_heads(pg, b, 2, &rows));
    E(rows.n == 1 && memcmp(rows.row[0].stream_id, c, 16) == 0 && rows.row[0].version == 2);
    cairn_pg_rows_free(&rows);
    OK(cairn_pg_stream_heads(pg, c, 0, &rows));
    E(rows.n == 0);
    cairn_pg_rows_free(&rows);
    /* streams with snapshots: a once (two snapshots), then c */
    OK(cairn_pg_snapshot_streams(pg, NULL, 1, &rows));
    E(rows.n == 1 && memcmp(rows.row[0].stream_id, a, 16) == 0);
    cairn_pg_rows_free(&rows);
    OK(cairn_pg_snapshot_streams(pg, a, 0, &rows));
    E(rows.n == 1 && memcmp(rows.row[0].stream_id, c, 16) == 0);
    cairn_pg_rows_free(&rows);
    /* tracking: applications' and views' ("view/app") in one byte order */
    PGconn *raw_c = raw();
    sql(raw_c, "INSERT INTO t_lists.tracking VALUES ('Zed', 9), ('Able', 4)");
    PQfinish(raw_c);
    cairn_pg_view_op put[2] = { { str("k1"), str("v1"), 0 }, { str("k2"), str("v2"), 0 } };
    OK(cairn_pg_view_write(pg, str("Counts"), put, 2, str("App"), 5, 0, 0, 0));
    OK(cairn_pg_view_write(pg, str("Other"), put, 1, str("App"), 2, 0, 0, 0));
    OK(cairn_pg_tracking_scan(pg, (cairn_pg_bytes){ NULL, 0 }, 0, &rows));
    E(rows.n == 4 && bytes_are(rows.row[0].bytes, "Able") && rows.row[0].id == 4 &&
      bytes_are(rows.row[1].bytes, "Counts/App") && rows.row[1].id == 5 && bytes_are(rows.row[2].bytes, "Other/App") &&
      bytes_are(rows.row[3].bytes, "Zed") && rows.row[3].id == 9);
    cairn_pg_rows_free(&rows);
    OK(cairn_pg_tracking_scan(pg, str("Counts/App"), 1, &rows));
    E(rows.n == 1 && bytes_are(rows.row[0].bytes, "Other/App") && rows.row[0].id == 2);
    cairn_pg_rows_free(&rows);
    /* across views: from the start, from a name, after a key of the first view */
    static const char k1[] = "Counts\0k1", k2[] = "Counts\0k2", o1[] = "Other\0k1";
    OK(cairn_pg_view_scan_all(pg, str(""), (cairn_pg_bytes){ NULL, 0 }, 0, &rows));
    E(rows.n == 3 && rows.row[0].key.len == 9 && memcmp(rows.row[0].key.ptr, k1, 9) == 0 &&
      memcmp(rows.row[1].key.ptr, k2, 9) == 0 && rows.row[2].key.len == 8 && memcmp(rows.row[2].key.ptr, o1, 8) == 0 &&
      bytes_are(rows.row[2].bytes, "v1"));
    cairn_pg_rows_free(&rows);
    OK(cairn_pg_view_scan_all(pg, str("Counts\1"), (cairn_pg_bytes){ NULL, 0 }, 1, &rows));
    E(rows.n == 1 && memcmp(rows.row[0].key.ptr, o1, 8) == 0);
    cairn_pg_rows_free(&rows);
    OK(cairn_pg_view_scan_all(pg, str("Counts"), str("k1"), 0, &rows));
    E(rows.n == 2 && memcmp(rows.row[0].key.ptr, k2, 9) == 0);
    cairn_pg_rows_free(&rows);
    /* clearing a view takes its keys and tracking, nothing of another's */
    OK(cairn_pg_view_clear(pg, str("Counts")));
    OK(cairn_pg_view_scan(pg, str("Counts"), str(""), (cairn_pg_bytes){ NULL, 0 }, 0, &rows));
    E(rows.n == 0);
    cairn_pg_rows_free(&rows);
    uint64_t pos;
    OK(cairn_pg_view_tracking_max(pg, str("Counts"), str("App"), &pos));
    E(pos == 0);
    OK(cairn_pg_view_tracking_max(pg, str("Other"), str("App"), &pos));
    E(pos == 2);
    OK(cairn_pg_tracking_scan(pg, (cairn_pg_bytes){ NULL, 0 }, 0, &rows));
    E(rows.n == 3);
    cairn_pg_rows_free(&rows);
    cairn_pg_close(pg);
    cairn_pg *ro = open_schema("t_lists", 1);
    E(cairn_pg_view_clear(ro, str("Other")) == CAIRN_CONFIG);
    cairn_pg_close(ro);
    drop_schema("t_lists");
    printf("ok - lists: stream heads, snapshot streams, tracking and views across, by page; view clear\n");
}

/* A dry run's copy: every table, consistently, into a new schema cairn_dry_…, whose saves go on
 * from the original's ids while the original stays as it was; only such schemas are dropped. */
static void test_copy(void)
{
    drop_schema("t_copy");
    drop_schema("cairn_dry_t1");
    cairn_pg *pg = open_schema("t_copy", 0);
    uint8_t a[16], b[16];
    make_id(a, 7, 1);
    make_id(b, 7, 2);
    cairn_pg_record evs[3] = { rec(a, 1, "T", "a1"), rec(a, 2, "T", "a2"), rec(b, 1, "U", "b1") };
    cairn_pg_record snap = rec(a, 2, "", "state");
    cairn_pg_batch batch = { .events = evs, .n = 3, .snapshots = &snap, .nsnapshots = 1,
                             .track_app = str("Leader"), .track_id = 5 };
    uint64_t first;
    OK(cairn_pg_append(pg, &batch, &first));
    cairn_pg_view_op op = { str("k"), str("v"), 0 };
    OK(cairn_pg_view_write(pg, str("Counts"), &op, 1, str("Leader"), 5, 0, 0, 0));
    /* names: a copy goes into a new schema named cairn_dry_… */
    E(cairn_pg_copy(pg, "t_other") == CAIRN_CONFIG && strstr(cairn_pg_errmsg(pg), "cairn_dry_"));
    E(cairn_pg_copy(pg, "cairn_dry_Bad") == CAIRN_CONFIG);
    OK(cairn_pg_copy(pg, "cairn_dry_t1"));
    E(cairn_pg_copy(pg, "cairn_dry_t1") == CAIRN_CONFIG && strstr(cairn_pg_errmsg(pg), "exists"));
    cairn_pg *copy = open_schema("cairn_dry_t1", 0);
    cairn_pg_rows rows;
    OK(cairn_pg_read_log(copy, 1, 0, NULL, 0, 0, &rows));
    E(rows.n == 3 && rows.row[2].id == 3 && bytes_are(rows.row[2].bytes, "b1"));
    cairn_pg_rows_free(&rows);
    OK(cairn_pg_read_snapshot(copy, a, UINT64_MAX, &rows));
    E(rows.n == 1 && bytes_are(rows.row[0].bytes, "state"));
    cairn_pg_rows_free(&rows);
    uint64_t pos;
    OK(cairn_pg_tracking_max(copy, str("Leader"), &pos));
    E(pos == 5);
    OK(cairn_pg_view_get(copy, str("Counts"), str("k"), &rows));
    E(rows.n == 1 && bytes_are(rows.row[0].bytes, "v"));
    cairn_pg_rows_free(&rows);
    /* the copy's saves go on from its ids; the original does not see them */
    cairn_pg_record next = rec(b, 2, "U", "b2");
    cairn_pg_batch nb = { .events = &next, .n = 1 };
    OK(cairn_pg_append(copy, &nb, &first));
    E(first == 4);
    uint64_t max;
    OK(cairn_pg_max_id(pg, &max));
    E(max == 3);
    cairn_pg_close(copy);
    /* only copies are dropped */
    char err2[512];
    E(cairn_pg_drop_copy(with("schema=t_copy"), err2, sizeof err2) == CAIRN_CONFIG && strstr(err2, "not a copy"));
    OK(cairn_pg_max_id(pg, &max));
    OK(cairn_pg_drop_copy(with("schema=cairn_dry_t1"), err2, sizeof err2));
    OK(cairn_pg_drop_copy(with("schema=cairn_dry_t1"), err2, sizeof err2)); /* gone already: fine */
    PGconn *c = raw();
    E(sql_int(c, "SELECT count(*) FROM pg_namespace WHERE nspname = 'cairn_dry_t1'") == 0);
    /* a schema an older cairn left is copied (columns by name) into one of this version, and left as it is */
    as_older(c, "t_copy", 1);
    cairn_pg_close(pg);
    cairn_pg_options tool = { .schema = "t_copy", .must_exist = 1 };
    pg = NULL;
    OK(cairn_pg_open(uri, &tool, &pg, err, sizeof err));
    OK(cairn_pg_copy(pg, "cairn_dry_t1"));
    E(sql_int(c, "SELECT convert_from(value, 'UTF8')::int FROM t_copy.meta WHERE key = 'format'") == 1);
    E(sql_int(c, "SELECT convert_from(value, 'UTF8')::int FROM cairn_dry_t1.meta WHERE key = 'format'") ==
      SCHEMA_VERSION);
    E(sql_int(c, "SELECT count(*) FROM cairn_dry_t1.events") == 3);
    E(sql_int(c, "SELECT last FROM cairn_dry_t1.counter") == 3);
    OK(cairn_pg_drop_copy(with("schema=cairn_dry_t1"), err2, sizeof err2));
    PQfinish(c);
    cairn_pg_close(pg);
    drop_schema("t_copy");
    printf("ok - copy: a dry run's copy holds every table, goes on from the ids, leaves the original; only copies "
           "are dropped\n");
}

/* ---- failures ----------------------------------------------------------- */

/* A save run on another thread, so the test can end its connection midway. */
typedef struct bg_save {
    cairn_pg *pg;
    cairn_pg_batch batch;
    uint64_t first;
    int rc;
    pthread_t thread;
} bg_save;

static void *bg_run(void *arg)
{
    bg_save *s = arg;
    s->rc = cairn_pg_append(s->pg, &s->batch, &s->first);
    return NULL;
}

/* Begin a transaction on c that records version 1 of stream id and stays
 * open: a save of that version waits for it (ROLLBACK ends it). */
static void hold_first_version(PGconn *c, const char *schema, const uint8_t id[16])
{
    char text[CAIRN_UUID_STRLEN + 1] = { 0 }, q[256];
    cairn_uuid_format(id, text);
    sql(c, "BEGIN");
    snprintf(q, sizeof q, "INSERT INTO %s.events (stream_id, version, topic, record) VALUES ('%s', 1, 'x', 'x')",
             schema, text);
    sql(c, q);
}

/* Wait until backend pid waits for a lock, then end it as an operator would. */
static void terminate_when_waiting(PGconn *c, int pid)
{
    char q[256];
    snprintf(q, sizeof q, "SELECT count(*) FROM pg_stat_activity WHERE pid = %d AND wait_event_type = 'Lock'",
             pid);
    double deadline = now_s() + 10;
    while (sql_int(c, q) == 0) {
        E(now_s() < deadline);
        usleep(2000);
    }
    snprintf(q, sizeof q, "SELECT pg_terminate_backend(%d)", pid);
    sql(c, q);
}

static void check_log_whole(cairn_pg *pg)
{
    cairn_pg_rows rows;
    cairn_pg_stats st;
    OK(cairn_pg_stat(pg, &st));
    OK(cairn_pg_read_log(pg, 1, 0, NULL, 0, 0, &rows));
    E(rows.n == st.events && st.max_id == st.events && st.pending == 0);
    for (size_t i = 0; i < rows.n; i++) E(rows.row[i].id == i + 1);
    cairn_pg_rows_free(&rows);
}

static void test_failures(void)
{
    cairn_pg *pg = NULL;
    /* server down at open: StoreError naming the server, never the password */
    E(cairn_pg_open("postgresql://cairn_pw:hunter2@127.0.0.1:1/postgres", NULL, &pg, err, sizeof err) == CAIRN_STORE);
    E(!pg && strstr(err, "PostgreSQL server 127.0.0.1:1/postgres: cannot connect") && !strstr(err, "hunter2"));
    E(!strchr(err, '\n'));
    /* a wrong password: ConfigError naming the server, not the password */
    E(cairn_pg_open(with("user=cairn_pw&password=Wr0ngPa55"), NULL, &pg, err, sizeof err) == CAIRN_CONFIG);
    E(strstr(err, "PostgreSQL server ") && strstr(err, "password authentication failed") && !strstr(err, "Wr0ngPa55"));
    E(!strchr(err, '\n'));
    cairn_pg_options o = { .schema = "t_fail" };
    drop_schema("t_fail");
    OK(cairn_pg_open(with("user=cairn_pw&password=secret"), &o, &pg, err, sizeof err));
    cairn_pg_close(pg);

    /* connection lost mid-save (the backend ended while it waits for a row
     * lock): StoreError, nothing recorded, the next call connects again */
    pg = open_schema("t_fail", 0);
    PGconn *c = raw();
    uint8_t x[16], y[16], z[16];
    make_id(x, 5, 1);
    make_id(y, 5, 2);
    make_id(z, 5, 3);
    char q[512];
    hold_first_version(c, "t_fail", x);
    cairn_pg_record ev[2] = { rec(y, 1, "Created", "y1"), rec(x, 1, "Created", "x1") };
    bg_save s = { .pg = pg, .batch = { .events = ev, .n = 2 } };
    int pid = cairn_pg_backend_pid(pg);
    E(pid > 0);
    E(pthread_create(&s.thread, NULL, bg_run, &s) == 0);
    terminate_when_waiting(c, pid);
    E(pthread_join(s.thread, NULL) == 0);
    E(s.rc == CAIRN_STORE && strstr(cairn_pg_errmsg(pg), "PostgreSQL server ") &&
      strstr(cairn_pg_errmsg(pg), "connection lost"));
    sql(c, "ROLLBACK");
    E(stream_len(pg, y) == 0); /* this call connected again */
    E(cairn_pg_backend_pid(pg) != pid);
    uint64_t first;
    OK(cairn_pg_append(pg, &s.batch, &first));
    E(first == 1);

    /* lost after its commit, while waiting for ids: the save is recorded
     * whole, the error says so, and the next save numbers it */
    sql(c, "BEGIN");
    sql(c, "SELECT pg_advisory_xact_lock(t_fail.numbering_lock())");
    cairn_pg_record zev = rec(z, 1, "Created", "z1");
    bg_save s2 = { .pg = pg, .batch = { .events = &zev, .n = 1 } };
    pid = cairn_pg_backend_pid(pg);
    E(pthread_create(&s2.thread, NULL, bg_run, &s2) == 0);
    terminate_when_waiting(c, pid);
    E(pthread_join(s2.thread, NULL) == 0);
    E(s2.rc == CAIRN_STORE && strstr(cairn_pg_errmsg(pg), "after the save was recorded"));
    sql(c, "ROLLBACK");
    cairn_pg_stats st;
    OK(cairn_pg_stat(pg, &st));
    E(st.pending == 1 && stream_len(pg, z) == 1);
    cairn_pg_record y2 = rec(y, 2, "Renamed", "y2");
    cairn_pg_batch b = { .events = &y2, .n = 1 };
    OK(cairn_pg_append(pg, &b, &first));
    E(first == 4); /* z1 took 3 */
    check_log_whole(pg);
    PQfinish(c);
    printf("ok - failures: server down, wrong password, connection lost mid-save and after commit\n");

    /* the server restarted: the next call fails naming the server, the one after connects again */
    const char *dir = getenv("CAIRN_TEST_PG_DIR");
    if (!dir) {
        printf("ok - restart: skipped (no CAIRN_TEST_PG_DIR)\n");
    } else {
        int newer;
        OK(cairn_pg_wait(pg, 0, 0.01, &newer)); /* listening */
        E(newer);
        snprintf(q, sizeof q, "tools/pg restart %s", dir);
        E(system(q) == 0);
        cairn_pg_record y3 = rec(y, 3, "Renamed", "y3");
        b.events = &y3;
        int rc = cairn_pg_append(pg, &b, &first);
        E(rc == CAIRN_STORE && strstr(cairn_pg_errmsg(pg), "PostgreSQL server ") && !strchr(cairn_pg_errmsg(pg), '\n'));
        E(stream_len(pg, y) == 2);
        OK(cairn_pg_append(pg, &b, &first));
        E(first == 5);
        /* a follower waiting through a restart: one failed wait, then it listens again */
        E(system(q) == 0);
        E(cairn_pg_wait(pg, 5, 0.5, &newer) == CAIRN_STORE);
        OK(cairn_pg_wait(pg, 4, 0.5, &newer));
        E(newer);
        check_log_whole(pg);
        printf("ok - restart: one StoreError naming the server, then connected again; followers listen again\n");
    }
    /* a statement timeout (from the URI's options) while the save waits for a row lock:
     * StoreError, nothing recorded, and the same connection goes on */
    cairn_pg *timed = NULL;
    OK(cairn_pg_open(with("schema=t_fail&options=-c%20statement_timeout%3D200"), NULL, &timed, err, sizeof err));
    c = raw();
    uint8_t w[16];
    make_id(w, 5, 4);
    hold_first_version(c, "t_fail", w);
    cairn_pg_record wev[2] = { rec(z, 2, "Renamed", "z2"), rec(w, 1, "Created", "w1") };
    cairn_pg_batch wb = { .events = wev, .n = 2 };
    int tpid = cairn_pg_backend_pid(timed);
    E(cairn_pg_append(timed, &wb, &first) == CAIRN_STORE);
    E(strstr(cairn_pg_errmsg(timed), "statement timeout") && strstr(cairn_pg_errmsg(timed), "57014"));
    sql(c, "ROLLBACK");
    PQfinish(c);
    E(stream_len(timed, z) == 1 && cairn_pg_backend_pid(timed) == tpid);
    OK(cairn_pg_append(timed, &wb, &first));
    cairn_pg_close(timed);
    check_log_whole(pg);
    printf("ok - statement timeout: StoreError, nothing recorded, the connection goes on\n");
    cairn_pg_close(pg);
    drop_schema("t_fail");
}

/* ---- wake-ups ----------------------------------------------------------- */

/* A follower asleep in cairn_pg_wait wakes when another process saves. */
static void test_wake(void)
{
    drop_schema("t_wake");
    cairn_pg *pg = open_schema("t_wake", 0);
    cairn_pg_close(pg);
    pg = open_schema("t_wake", 1);
    int newer;
    double t0 = now_s();
    OK(cairn_pg_wait(pg, 0, 0.2, &newer)); /* nothing: a timeout */
    E(!newer && now_s() - t0 >= 0.19);
    clock_t cpu0 = clock();
    pid_t child = fork();
    E(child >= 0);
    if (child == 0) {
        usleep(300000);
        cairn_pg *w = open_schema("t_wake", 0);
        uint8_t id[16];
        make_id(id, 6, 1);
        cairn_pg_record ev = rec(id, 1, "Created", "w");
        cairn_pg_batch b = { .events = &ev, .n = 1 };
        uint64_t first;
        if (cairn_pg_append(w, &b, &first)) _exit(1);
        cairn_pg_close(w);
        _exit(0);
    }
    t0 = now_s();
    OK(cairn_pg_wait(pg, 0, 10, &newer));
    double waited = now_s() - t0;
    double cpu = (double)(clock() - cpu0) / CLOCKS_PER_SEC;
    int status;
    E(waitpid(child, &status, 0) == child && WIFEXITED(status) && WEXITSTATUS(status) == 0);
    E(newer && waited < 5 && cpu < 0.05);
    cairn_pg_close(pg);
    drop_schema("t_wake");
    printf("ok - wake: a reader asleep in LISTEN woke after %.0f ms, using %.1f ms of CPU\n", waited * 1000,
           cpu * 1000);
}

/* ---- gap-free ids, visible in order: writer processes and a tailing reader ---- */

#define MAX_SAVES 100000

/* The first id each save was given, as its writer was told: [writer][save],
 * shared by the writer processes and the reader (a MAP_SHARED mapping). */
static uint64_t *told_first;

/* Each event's bytes name who saved it: "w<writer> s<save> e<index>". */
static void writer(const char *schema, int w, int saves, double seconds, int fd)
{
    cairn_pg *pg = open_schema(schema, 0);
    unsigned seed = (unsigned)(getpid() * 7919 + w);
    long done = 0;
    double end = now_s() + seconds;
    for (int s = 0; seconds > 0 ? now_s() < end : s < saves; s++) {
        /* 1 to 3 events, over one or two new streams */
        int n = seconds > 0 ? 1 : 1 + (int)(rand_r(&seed) % 3);
        uint8_t ids[2][16];
        make_id(ids[0], 1000 + (unsigned)w, (unsigned)s * 2);
        make_id(ids[1], 1000 + (unsigned)w, (unsigned)s * 2 + 1);
        char bytes[3][48];
        cairn_pg_record ev[3];
        for (int i = 0; i < n; i++) {
            snprintf(bytes[i], sizeof bytes[i], "w%d s%d e%d", w, s, i);
            ev[i] = rec(ids[i == 2], (uint64_t)(i == 2 ? 1 : i + 1), "Saved", bytes[i]);
        }
        cairn_pg_batch b = { .events = ev, .n = (size_t)n };
        uint64_t first;
        OK(cairn_pg_append(pg, &b, &first));
        E(first > 0 && s < MAX_SAVES);
        told_first[(size_t)w * MAX_SAVES + (size_t)s] = first;
        done++;
    }
    uint64_t report[2];
    cairn_pg_save_stats(pg, &report[0], &report[1]);
    E((long)report[0] == done);
    cairn_pg_close(pg);
    E(write(fd, report, sizeof report) == (ssize_t)sizeof report);
    _exit(0);
}

/* The tailing reader's state: every id exactly once, in order, each batch
 * going on exactly where the last one stopped. */
typedef struct tailer {
    cairn_pg *pg;
    int writers;
    char *seen;           /* [writer][save][event] */
    uint64_t last;
    long wakes;
    size_t prev_at;       /* the event read last, and its id */
    uint64_t last_id_of_prev;
    uint64_t *first_id;   /* [writer][save]: the id the reader saw its first event under */
} tailer;


static void tail_step(tailer *t, double wait_s)
{
    cairn_pg *pg = t->pg;
    int newer;
    OK(cairn_pg_wait(pg, t->last, wait_s, &newer));
    t->wakes++;
    cairn_pg_rows rows;
    OK(cairn_pg_read_log(pg, t->last + 1, 0, NULL, 0, 1000, &rows));
    for (size_t i = 0; i < rows.n; i++) {
        if (rows.row[i].id != t->last + 1) {
            fprintf(stderr, "reader: id %llu after %llu\n", (unsigned long long)rows.row[i].id,
                    (unsigned long long)t->last);
            exit(1);
        }
        t->last = rows.row[i].id;
        int w, s, e;
        char text[48];
        E(rows.row[i].bytes.len < sizeof text);
        memcpy(text, rows.row[i].bytes.ptr, rows.row[i].bytes.len);
        text[rows.row[i].bytes.len] = '\0';
        E(sscanf(text, "w%d s%d e%d", &w, &s, &e) == 3 && w < t->writers && s < MAX_SAVES && e < 3);
        size_t at = ((size_t)w * MAX_SAVES + (size_t)s) * 3 + (size_t)e;
        char *mark = &t->seen[at];
        E(!*mark);
        *mark = 1;
        /* a save's events have consecutive ids, in its order */
        if (e > 0 && !(t->seen[at - 1] && t->last_id_of_prev == t->last - 1 && t->prev_at == at - 1)) {
            fprintf(stderr, "reader: w%d s%d e%d got id %llu, not right after e%d\n", w, s, e,
                    (unsigned long long)t->last, e - 1);
            exit(1);
        }
        t->prev_at = at;
        t->last_id_of_prev = t->last;
        if (e == 0) t->first_id[(size_t)w * MAX_SAVES + (size_t)s] = t->last;
    }
    cairn_pg_rows_free(&rows);
}

/* Run `writers` writer processes (each `saves` saves, or saving for `seconds`);
 * with `tailing`, read the log beside them as it grows. Afterwards read the
 * whole log: ids 1..N without gaps or duplicates, N the events saved. */
static long run_writers(const char *schema, int writers, int saves, double seconds, int tailing, double *elapsed,
                        long *deferred)
{
    drop_schema(schema);
    cairn_pg_close(open_schema(schema, 0)); /* made before the writers start */
    int fds[2];
    E(pipe(fds) == 0);
    pid_t pids[64];
    E(writers <= 64);
    size_t told_size = sizeof *told_first * (size_t)writers * MAX_SAVES;
    told_first = mmap(NULL, told_size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    E(told_first != MAP_FAILED);
    double t0 = now_s();
    for (int w = 0; w < writers; w++) {
        pids[w] = fork();
        E(pids[w] >= 0);
        if (pids[w] == 0) {
            close(fds[0]);
            writer(schema, w, saves, seconds, fds[1]);
        }
    }
    close(fds[1]);
    tailer t = { .writers = writers };
    t.seen = calloc((size_t)writers * MAX_SAVES * 3, 1);
    t.first_id = calloc((size_t)writers * MAX_SAVES, sizeof *t.first_id);
    E(t.seen && t.first_id);
    if (tailing) {
        t.pg = open_schema(schema, 1);
        int running = writers;
        while (running > 0) {
            tail_step(&t, 0.2);
            int status;
            while (waitpid(-1, &status, WNOHANG) > 0) {
                E(WIFEXITED(status) && WEXITSTATUS(status) == 0);
                running--;
            }
        }
    }
    long total_saves = 0;
    *deferred = 0;
    for (int w = 0; w < writers; w++) {
        uint64_t report[2];
        E(read(fds[0], report, sizeof report) == (ssize_t)sizeof report);
        total_saves += (long)report[0];
        *deferred += (long)report[1];
    }
    *elapsed = now_s() - t0;
    close(fds[0]);
    if (!tailing) {
        for (int w = 0; w < writers; w++) {
            int status;
            E(waitpid(pids[w], &status, 0) == pids[w] && WIFEXITED(status) && WEXITSTATUS(status) == 0);
        }
        t.pg = open_schema(schema, 1);
    }
    /* the rest of the log, then the whole of it once more from 1 */
    cairn_pg_stats st;
    cairn_pg *pg = t.pg;
    OK(cairn_pg_stat(pg, &st));
    E(st.pending == 0 && st.max_id == st.events);
    long tailed = (long)t.last;
    while (t.last < st.events) tail_step(&t, 0);
    E(t.last == st.events);
    size_t marks = 0;
    for (size_t i = 0; i < (size_t)writers * MAX_SAVES * 3; i++) marks += (size_t)t.seen[i];
    E(marks == st.events);
    /* each writer was told the id its save's first event has in the log */
    for (size_t i = 0; i < (size_t)writers * MAX_SAVES; i++) E(told_first[i] == t.first_id[i]);
    if (tailing)
        fprintf(stderr, "  %d writers, %ld saves, %llu events; the reader saw %ld while they ran, %ld wake-ups\n",
                writers, total_saves, (unsigned long long)st.events, tailed, t.wakes);
    free(t.seen);
    free(t.first_id);
    munmap(told_first, told_size);
    cairn_pg_close(pg);
    drop_schema(schema);
    return total_saves;
}

static void test_gap_free(void)
{
    /* CAIRN_TEST_PG_WRITERS=8 CAIRN_TEST_PG_SAVES=2000 for a longer run */
    int writers = getenv("CAIRN_TEST_PG_WRITERS") ? atoi(getenv("CAIRN_TEST_PG_WRITERS")) : 4;
    int each = getenv("CAIRN_TEST_PG_SAVES") ? atoi(getenv("CAIRN_TEST_PG_SAVES")) : 150;
    E(writers > 0 && writers <= 64 && each > 0 && each < MAX_SAVES);
    double elapsed;
    long deferred;
    long saves = run_writers("t_gaps", writers, each, 0, 1, &elapsed, &deferred);
    E(saves == (long)writers * each);
    fprintf(stderr, "  %ld of %ld saves were numbered after their commit\n", deferred, saves);
    E(deferred > 0); /* both ways of numbering were taken */
    printf("ok - ids: %d writer processes, a tailing reader saw every id once, in order, no gaps, each save's "
           "events together under the ids its writer was told\n", writers);
}

/* S6: 1, 4 and 8 processes each saving one new aggregate per save. */
static int bench(const char *list, double seconds)
{
    printf("writers  saves  seconds  saves/s  numbered after commit  (durable settings; ids checked 1..N)\n");
    for (const char *p = list; *p;) {
        int writers = atoi(p);
        E(writers > 0);
        double elapsed;
        long deferred;
        long saves = run_writers("bench_s6", writers, 0, seconds, 0, &elapsed, &deferred);
        printf("%7d %6ld %8.2f %8.0f %21.0f%%\n", writers, saves, elapsed, (double)saves / elapsed,
               100.0 * (double)deferred / (double)saves);
        p += strcspn(p, ",");
        if (*p == ',') p++;
    }
    return 0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* S7-style: one process saves a new aggregate every 20 ms, another follows
 * through LISTEN/NOTIFY; lag = the follower reading the event − the save
 * returning (CLOCK_MONOTONIC is shared by the processes of one host). */
static int lag(int n)
{
    drop_schema("bench_lag");
    cairn_pg_close(open_schema("bench_lag", 0));
    double *t = mmap(NULL, sizeof(double) * 2 * ((size_t)n + 1), PROT_READ | PROT_WRITE,
                     MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    E(t != MAP_FAILED);
    double *returned = t, *seen = t + n + 1;
    pid_t follower = fork();
    E(follower >= 0);
    if (follower == 0) {
        cairn_pg *pg = open_schema("bench_lag", 1);
        uint64_t last = 0;
        while (last < (uint64_t)n) {
            int newer;
            OK(cairn_pg_wait(pg, last, 5, &newer));
            cairn_pg_rows rows;
            OK(cairn_pg_read_log(pg, last + 1, 0, NULL, 0, 100, &rows));
            double now = now_s();
            for (size_t i = 0; i < rows.n; i++) {
                E(rows.row[i].id == last + 1 && rows.row[i].id <= (uint64_t)n);
                last = rows.row[i].id;
                seen[last] = now;
            }
            cairn_pg_rows_free(&rows);
        }
        cairn_pg_close(pg);
        _exit(0);
    }
    cairn_pg *pg = open_schema("bench_lag", 0);
    usleep(200000); /* the follower listens */
    for (int i = 1; i <= n; i++) {
        uint8_t id[16];
        make_id(id, 7, (unsigned)i);
        cairn_pg_record ev = rec(id, 1, "Created", "lag");
        cairn_pg_batch b = { .events = &ev, .n = 1 };
        uint64_t first;
        OK(cairn_pg_append(pg, &b, &first));
        returned[first] = now_s();
        usleep(20000);
    }
    int status;
    E(waitpid(follower, &status, 0) == follower && WIFEXITED(status) && WEXITSTATUS(status) == 0);
    struct rusage ru;
    getrusage(RUSAGE_CHILDREN, &ru);
    double *ms = malloc(sizeof(double) * (size_t)n);
    E(ms);
    for (int i = 1; i <= n; i++) ms[i - 1] = (seen[i] - returned[i]) * 1000;
    qsort(ms, (size_t)n, sizeof *ms, cmp_double);
    printf("follower lag over %d saves, 20 ms apart: median %.2f ms, p90 %.2f ms, p99 %.2f ms, max %.2f ms; "
           "follower CPU %.0f ms\n", n, ms[n / 2], ms[n * 9 / 10], ms[n * 99 / 100], ms[n - 1],
           ((double)ru.ru_utime.tv_sec + (double)ru.ru_stime.tv_sec) * 1000 +
               ((double)ru.ru_utime.tv_usec + (double)ru.ru_stime.tv_usec) / 1000);
    free(ms);
    munmap(t, sizeof(double) * 2 * ((size_t)n + 1));
    cairn_pg_close(pg);
    drop_schema("bench_lag");
    return 0;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IONBF, 0);
    uri = getenv("CAIRN_TEST_PG");
    if (!uri || !*uri) {
        fprintf(stderr, "cairn_pg_tests: CAIRN_TEST_PG is not set (tools/pg run build/tests/cairn_pg_tests)\n");
        return getenv("CAIRN_TEST_PG_OPTIONAL") ? 0 : 1;
    }
    if (argc == 4 && strcmp(argv[1], "--bench") == 0) return bench(argv[2], atof(argv[3]));
    if (argc == 3 && strcmp(argv[1], "--lag") == 0) return lag(atoi(argv[2]));
    static const struct { const char *name; void (*run)(void); } tests[] = {
        { "open", test_open }, { "append", test_append }, { "keys", test_keys }, { "walk", test_walk },
        { "apps", test_apps_apart }, { "views", test_views }, { "lists", test_lists }, { "copy", test_copy },
        { "dcb", test_dcb },
        { "wake", test_wake }, { "failures", test_failures }, { "ids", test_gap_free },
    };
    int ran = 0;
    for (size_t i = 0; i < sizeof tests / sizeof tests[0]; i++) {
        if (argc > 1 && strcmp(argv[1], tests[i].name) != 0) continue;
        tests[i].run();
        ran++;
    }
    if (!ran) {
        fprintf(stderr, "usage: cairn_pg_tests [open|append|keys|walk|apps|views|lists|copy|dcb|wake|failures|ids] | --bench 1,4,8 SECONDS"
                " | --lag N\n");
        return 2;
    }
    return 0;
}
