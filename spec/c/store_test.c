/*
 * store_test.c -- the recorder, record format and UUIDs tested from C, with
 * no Lua: `build/tests/cairn_c_tests [DIR]` (DIR: where to put LMDB stores).
 * One E() check macro, as LMDB's mtest.c has; exits 1 at the first failure.
 * Helper modes for the Lua specs: --corrupt PATH ID payload|header, --flip-snapshot PATH,
 * --format PATH N (write store format N), --hold-write PATH (begin a write
 * transaction, print "held" and stop itself with SIGSTOP, as a writer stopped
 * in the middle of a commit).
 */
#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <lmdb.h>
#include <sodium.h>

#include "cairn.h"
#include "crypto.h"
#include "lmdb_engine.h"
#include "record.h"
#include "store.h"
#include "string_id.h"
#include "uuid.h"

#define E(expr) do { if (!(expr)) { \
    fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #expr); exit(1); } } while (0)

static int checks;
#define CHECK(expr) do { checks++; E(expr); } while (0)

static cairn_record event(const uint8_t id[16], uint64_t version, const char *topic, const char *payload)
{
    cairn_record r;
    memset(&r, 0, sizeof r);
    memcpy(r.stream_id, id, 16);
    r.version = version;
    r.timestamp_us = 1700000000000000 + (int64_t)version;
    r.topic = topic;
    r.topic_len = strlen(topic);
    r.payload = (const uint8_t *)payload;
    r.payload_len = strlen(payload);
    return r;
}

static size_t count_stream(cairn_store *s, const uint8_t id[16], const cairn_stream_query *q, uint64_t *versions)
{
    cairn_record rec;
    size_t n = 0;
    CHECK(cairn_store_read_stream(s, id, q) == CAIRN_OK);
    int rc;
    while ((rc = cairn_store_next(s, &rec)) == CAIRN_OK) {
        CHECK(memcmp(rec.stream_id, id, 16) == 0);
        if (versions) versions[n] = rec.version;
        n++;
    }
    CHECK(rc == CAIRN_END);
    cairn_store_read_end(s);
    return n;
}

static int append(cairn_store *s, const cairn_record *ev, size_t n, uint64_t *first)
{
    cairn_batch b = { .events = ev, .n = n };
    return cairn_store_append(s, &b, first);
}

/* A store at uri with sync=none, zstd when compress, sealed under key (or plain). */
static cairn_store *open_with(const char *uri, int compress, const uint8_t *key)
{
    char err[512];
    cairn_store *s = NULL;
    cairn_store_options opt = { .sync = CAIRN_SYNC_NONE, .compress = compress, .cipher_key = key };
    CHECK(cairn_store_open(uri, &opt, &s, err, sizeof err) == CAIRN_OK);
    return s;
}

static int track(cairn_store *s, const char *app, uint64_t id, const cairn_record *ev, size_t n)
{
    cairn_tracking t = { app, strlen(app), id, 0 };
    cairn_batch b = { .events = ev, .n = n, .tracking = &t };
    uint64_t first;
    return cairn_store_append(s, &b, &first);
}

static void test_tracking(const char *uri)
{
    char err[512];
    cairn_store *s = NULL;
    CHECK(cairn_store_open(uri, NULL, &s, err, sizeof err) == CAIRN_OK);
    uint64_t at = 99;
    CHECK(cairn_store_tracking_max(s, "School", 6, &at) == CAIRN_OK && at == 0);
    /* a position alone, then with events: both recorded */
    CHECK(track(s, "School", 3, NULL, 0) == CAIRN_OK);
    uint8_t a[16];
    cairn_uuid_v4(a);
    cairn_record ev = event(a, 1, "T.Made", "\x80");
    CHECK(track(s, "School", 5, &ev, 1) == CAIRN_OK);
    CHECK(cairn_store_tracking_max(s, "School", 6, &at) == CAIRN_OK && at == 5);
    /* the same notification again, or an earlier one, records nothing */
    cairn_record ev2 = event(a, 2, "T.Changed", "\x80");
    CHECK(track(s, "School", 5, &ev2, 1) == CAIRN_CONFLICT);
    CHECK(strstr(cairn_store_errmsg(s), "notification 5 of School was already processed") != NULL);
    CHECK(track(s, "School", 4, NULL, 0) == CAIRN_CONFLICT);
    uint64_t max;
    CHECK(cairn_store_max_id(s, &max) == CAIRN_OK && max == 1);
    /* a conflicting event leaves the position where it was */
    CHECK(track(s, "School", 9, &ev, 1) == CAIRN_CONFLICT);
    CHECK(cairn_store_tracking_max(s, "School", 6, &at) == CAIRN_OK && at == 5);
    /* positions are per application */
    CHECK(cairn_store_tracking_max(s, "Other", 5, &at) == CAIRN_OK && at == 0);
    CHECK(track(s, "", 1, NULL, 0) == CAIRN_INVALID);
    /* records that cannot be stored are refused before any transaction */
    cairn_record big = event(a, 2, "T.Changed", "\x80");
    big.class_version = CAIRN_CLASS_VERSION_MAX + 1;
    CHECK(append(s, &big, 1, &max) == CAIRN_INVALID);
    CHECK(strstr(cairn_store_errmsg(s), "event 1: class version 65536 is above 65535") != NULL);
    cairn_record untitled = event(a, 1, "", "\x80");
    cairn_batch snap_only = { .snapshots = &untitled, .nsnapshots = 1 };
    CHECK(cairn_store_append(s, &snap_only, &max) == CAIRN_INVALID);
    CHECK(strstr(cairn_store_errmsg(s), "snapshot 1: topic must be 1 to 65535 bytes") != NULL);
    cairn_store_close(s);
}

static void test_store(const char *uri)
{
    char err[512];
    cairn_store *s = NULL;
    cairn_store_options opt = { .sync = CAIRN_SYNC_NONE };
    CHECK(cairn_store_open(uri, &opt, &s, err, sizeof err) == CAIRN_OK);
    uint8_t a[16], b[16];
    cairn_uuid_v4(a);
    cairn_uuid_v4(b);
    uint64_t first = 0, max = 99;
    CHECK(cairn_store_max_id(s, &max) == CAIRN_OK && max == 0);

    /* a batch over two streams gets consecutive ids from 1 */
    cairn_record batch[] = {
        event(a, 1, "T.Made", "\x80"), event(a, 2, "T.Changed", "\x81\xa1x\x01"), event(b, 1, "T.Made", "\x80"),
    };
    CHECK(append(s, batch, 3, &first) == CAIRN_OK && first == 1);
    CHECK(cairn_store_max_id(s, &max) == CAIRN_OK && max == 3);

    /* a stale version anywhere rejects the whole batch */
    cairn_record stale[] = { event(b, 2, "T.Changed", "\x80"), event(a, 2, "T.Changed", "\x80") };
    CHECK(append(s, stale, 2, &first) == CAIRN_CONFLICT);
    CHECK(strstr(cairn_store_errmsg(s), "version 2 was already recorded") != NULL);
    CHECK(cairn_store_max_id(s, &max) == CAIRN_OK && max == 3);
    /* so does a gap, and versions that are not consecutive within a batch */
    cairn_record gap[] = { event(a, 4, "T.Changed", "\x80") };
    CHECK(append(s, gap, 1, &first) == CAIRN_CONFLICT);
    cairn_record jump[] = { event(b, 2, "T.Changed", "\x80"), event(b, 4, "T.Changed", "\x80") };
    CHECK(append(s, jump, 2, &first) == CAIRN_CONFLICT);
    CHECK(cairn_store_max_id(s, &max) == CAIRN_OK && max == 3);

    /* stream reads: ranges, descending, limits */
    cairn_record more[] = { event(a, 3, "T.Changed", "\x80"), event(a, 4, "T.Changed", "\x80") };
    CHECK(append(s, more, 2, &first) == CAIRN_OK && first == 4);
    uint64_t v[8];
    cairn_stream_query all = { 0 };
    CHECK(count_stream(s, a, &all, v) == 4 && v[0] == 1 && v[3] == 4);
    cairn_stream_query range = { .gt = 1, .has_gt = 1, .lte = 3, .has_lte = 1 };
    CHECK(count_stream(s, a, &range, v) == 2 && v[0] == 2 && v[1] == 3);
    cairn_stream_query desc = { .descending = 1, .limit = 2 };
    CHECK(count_stream(s, a, &desc, v) == 2 && v[0] == 4 && v[1] == 3);
    cairn_stream_query desc_lte = { .descending = 1, .lte = 2, .has_lte = 1 };
    CHECK(count_stream(s, a, &desc_lte, v) == 2 && v[0] == 2 && v[1] == 1);
    uint8_t none[16];
    cairn_uuid_v4(none);
    CHECK(count_stream(s, none, &all, NULL) == 0);

    /* log reads: start, stop, topics (the limit counts matches only) */
    cairn_slice topics[] = { { "T.Made", 6 } };
    cairn_log_query lq = { .start = 1, .limit = 10, .topics = topics, .ntopics = 1 };
    CHECK(cairn_store_read_log(s, &lq) == CAIRN_OK);
    cairn_record rec;
    CHECK(cairn_store_next(s, &rec) == CAIRN_OK && rec.notification_id == 1);
    CHECK(cairn_store_next(s, &rec) == CAIRN_OK && rec.notification_id == 3);
    CHECK(cairn_store_next(s, &rec) == CAIRN_END);
    cairn_store_read_end(s);
    cairn_log_query stop = { .start = 2, .stop = 4 };
    CHECK(cairn_store_read_log(s, &stop) == CAIRN_OK);
    size_t n = 0;
    while (cairn_store_next(s, &rec) == CAIRN_OK) n++;
    cairn_store_read_end(s);
    CHECK(n == 3);

    cairn_store_stats st;
    CHECK(cairn_store_stat(s, &st) == CAIRN_OK && st.events == 5 && st.streams == 2 && st.max_notification_id == 5);
    cairn_store_close(s);
}

static void test_lmdb_reopen_and_refusals(const char *dir)
{
    char uri[600], err[512];
    snprintf(uri, sizeof uri, "lmdb:%s/reopen", dir);
    cairn_store *s = NULL;
    cairn_store_options opt = { .sync = CAIRN_SYNC_FULL, .map_size = 65536 };
    CHECK(cairn_store_open(uri, &opt, &s, err, sizeof err) == CAIRN_OK);
    /* two handles on one directory share the environment */
    cairn_store *s2 = NULL;
    CHECK(cairn_store_open(uri, &opt, &s2, err, sizeof err) == CAIRN_OK);
    uint8_t id[16];
    cairn_uuid_v4(id);
    /* a 64 KiB map grows by itself */
    static char big[20000];
    memset(big, 'x', sizeof big - 1);
    big[0] = (char)0xda; big[1] = (char)0x4e; big[2] = (char)0x1c; /* str16 of 19996 bytes */
    uint64_t first;
    for (uint64_t v = 1; v <= 40; v++) {
        cairn_record r = event(id, v, "T.Big", big);
        CHECK(append(v % 2 ? s : s2, &r, 1, &first) == CAIRN_OK && first == v);
    }
    cairn_store_close(s);
    cairn_store_close(s2);
    CHECK(cairn_store_open(uri, &opt, &s, err, sizeof err) == CAIRN_OK);
    uint64_t max;
    CHECK(cairn_store_max_id(s, &max) == CAIRN_OK && max == 40);
    cairn_store_close(s);

    /* (a PostgreSQL URI whose port is no number: a setting to fix, not a server away) */
    const char *bad[] = { "nope:x", "lmdb:", "memory:x", "postgres://h:x/db" };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        s = (cairn_store *)1;
        CHECK(cairn_store_open(bad[i], NULL, &s, err, sizeof err) == CAIRN_CONFIG && s == NULL && err[0]);
    }
    cairn_store_options must = { .sync = CAIRN_SYNC_FULL, .must_exist = 1 };
    snprintf(uri, sizeof uri, "lmdb:%s/absent", dir);
    CHECK(cairn_store_open(uri, &must, &s, err, sizeof err) == CAIRN_CONFIG);
    CHECK(strstr(err, "no store at") != NULL);
}

static void test_record_and_uuid(void)
{
    uint8_t id[16], buf[128];
    CHECK(cairn_uuid_parse("6ba7b811-9dad-11d1-80b4-00c04fd430c8", 36, id) == 0);
    uint8_t v5[16];
    cairn_uuid_v5(id, "/dogs/Fido", 10, v5);
    char text[CAIRN_UUID_STRLEN + 1] = { 0 };
    cairn_uuid_format(v5, text);
    CHECK(strcmp(text, "1e1d7398-8986-57af-bb01-11a89b2f8b02") == 0); /* Python's uuid5 */
    CHECK(cairn_uuid_parse("6BA7B811-9DAD-11D1-80B4-00C04FD430C8", 36, id) == 0);
    CHECK(!cairn_uuid_is_canonical("6BA7B811-9DAD-11D1-80B4-00C04FD430C8", 36));
    CHECK(cairn_uuid_parse("6ba7b811-9dad-11d1-80b4-00c04fd430cg", 36, id) != 0);
    CHECK(cairn_uuid_parse("6ba7b8119dad-11d1-80b4-00c04fd430c8-", 36, id) != 0);
    /* every byte value at every position formats as printf's %02x, and parses back */
    for (int k = 0; k < 256; k += 16) {
        uint8_t raw[16], back[16];
        char want[CAIRN_UUID_STRLEN + 1];
        for (int i = 0; i < 16; i++) raw[i] = (uint8_t)(k + i * 17);
        snprintf(want, sizeof want, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
                 raw[0], raw[1], raw[2], raw[3], raw[4], raw[5], raw[6], raw[7], raw[8], raw[9], raw[10], raw[11],
                 raw[12], raw[13], raw[14], raw[15]);
        cairn_uuid_format(raw, text);
        CHECK(strcmp(text, want) == 0);
        CHECK(cairn_uuid_parse(text, 36, back) == 0 && memcmp(back, raw, 16) == 0);
    }
    /* classify: parse and case in one pass; a bad digit anywhere, even among upper-case ones, is no UUID */
    uint8_t raw[16];
    CHECK(cairn_uuid_classify("6ba7b811-9dad-11d1-80b4-00c04fd430c8", 36, raw) == 1);
    CHECK(raw[0] == 0x6b && raw[15] == 0xc8);
    CHECK(cairn_uuid_classify("6ba7b811-9dad-11D1-80b4-00c04fd430c8", 36, raw) == 2);
    CHECK(raw[6] == 0x11 && raw[7] == 0xd1);
    CHECK(cairn_uuid_classify("6BA7B811-9DAD-11D1-80B4-00C04FD430CG", 36, raw) == 0);
    CHECK(cairn_uuid_classify("g000000000-0000-0000-0000-0000000000", 36, raw) == 0);
    CHECK(cairn_uuid_classify("00000000-0000-0000-0000-00000000000\xff", 36, raw) == 0);
    CHECK(cairn_uuid_classify("00000000-0000-0000-0000-000000000000", 35, raw) == 0);
    CHECK(cairn_uuid_classify("00000000-0000-0000-0000-000000000000", 36, NULL) == 1);
    CHECK(!cairn_uuid_is_canonical("00000000-0000-0000-0000-00000000000 ", 36));
    /* hex of a hash: two lower-case digits a byte */
    const uint8_t bytes[4] = { 0x00, 0x9f, 0xa0, 0xff };
    char hex[9] = { 0 };
    cairn_hex_format(bytes, sizeof bytes, hex);
    CHECK(strcmp(hex, "009fa0ff") == 0);
    for (int k = 0; k < 256; k += 32) { /* a hash's 32 bytes: every byte value at every position, as %02x */
        uint8_t hash[32];
        char got[65] = { 0 }, want[65];
        for (int i = 0; i < 32; i++) hash[i] = (uint8_t)(k + i * 9);
        for (int i = 0; i < 32; i++) snprintf(want + 2 * i, 3, "%02x", hash[i]);
        cairn_hex_format(hash, sizeof hash, got);
        CHECK(strcmp(got, want) == 0);
    }

    /* a record as stores write it: header, hash, payload */
    cairn_record r = event(id, 7, "Dog.Registered", "\x81\xa4name\xa4" "Fido");
    r.class_version = 3;
    size_t header = cairn_record_header_size(r.topic_len), len = header + CAIRN_RECORD_HASH + r.payload_len;
    CHECK(len <= sizeof buf);
    cairn_record_write_header(&r, 0, buf);
    memcpy(buf + header + CAIRN_RECORD_HASH, r.payload, r.payload_len);
    uint8_t zero[CAIRN_RECORD_HASH] = { 0 };
    cairn_record_hash(zero, buf, len, buf + header);
    cairn_record back;
    CHECK(cairn_record_parse(buf, len, &back) == CAIRN_OK);
    CHECK(back.version == 7 && back.topic_len == 14 && back.payload_len == r.payload_len && back.class_version == 3);
    CHECK(back.hash == buf + header && memcmp(back.payload, r.payload, r.payload_len) == 0);
    /* the hash covers every byte but itself */
    uint8_t h1[CAIRN_RECORD_HASH], h2[CAIRN_RECORD_HASH];
    cairn_record_hash(zero, buf, len, h1);
    buf[len - 1] ^= 1;
    cairn_record_hash(zero, buf, len, h2);
    CHECK(memcmp(h1, h2, sizeof h1) != 0);
    buf[len - 1] ^= 1;
    /* every truncation, a wrong format byte, unknown flags and class version 0 are refused */
    for (size_t cut = 0; cut < header + CAIRN_RECORD_HASH; cut++) CHECK(cairn_record_parse(buf, cut, &back) == CAIRN_CORRUPT);
    const size_t bad_at[] = { 0, 1, 34 };
    const uint8_t bad_value[] = { 1, 16, 0 };
    for (size_t i = 0; i < 3; i++) {
        uint8_t keep = buf[bad_at[i]], keep2 = buf[35];
        buf[bad_at[i]] = bad_value[i];
        if (bad_at[i] == 34) buf[35] = 0;
        CHECK(cairn_record_parse(buf, len, &back) == CAIRN_CORRUPT);
        buf[bad_at[i]] = keep;
        buf[35] = keep2;
    }
    /* an encrypted record too short to hold its seal */
    buf[1] = CAIRN_RECORD_ENCRYPTED;
    CHECK(cairn_record_parse(buf, len, &back) == CAIRN_CORRUPT);
}

/* A store's environment opened with plain LMDB, a write transaction begun on
 * one of its databases: the helper modes change stores behind cairn's back. */
static MDB_env *open_raw(const char *path, const char *db, MDB_txn **txn, MDB_dbi *dbi)
{
    MDB_env *env;
    E(mdb_env_create(&env) == 0 && mdb_env_set_maxdbs(env, 16) == 0);
    E(mdb_env_open(env, path, 0, 0644) == 0);
    E(mdb_txn_begin(env, NULL, 0, txn) == 0 && mdb_dbi_open(*txn, db, 0, dbi) == 0);
    return env;
}

/* Overwrite the payload of notification `id` in an LMDB store with bytes
 * that are not msgpack, or cut its header short (how = "payload" | "header"):
 * the Lua specs use this to check that reads refuse corrupt records. */
static int corrupt(const char *path, uint64_t id, const char *how)
{
    MDB_txn *txn;
    MDB_dbi log;
    MDB_env *env = open_raw(path, "log", &txn, &log);
    uint8_t key[8];
    cairn_put_be64(key, id);
    MDB_val k = { 8, key }, v;
    E(mdb_get(txn, log, &k, &v) == 0);
    uint8_t copy[4096];
    E(v.mv_size <= sizeof copy);
    memcpy(copy, v.mv_data, v.mv_size);
    size_t len = v.mv_size;
    if (strcmp(how, "header") == 0) {
        len = 20;
    } else {
        cairn_record rec;
        E(cairn_record_parse(copy, len, &rec) == CAIRN_OK && rec.payload_len > 0);
        copy[rec.payload - copy] = 0xc1; /* never used in msgpack */
    }
    v = (MDB_val){ len, copy };
    E(mdb_put(txn, log, &k, &v, 0) == 0 && mdb_txn_commit(txn) == 0);
    mdb_env_close(env);
    return 0;
}

static int swap_or_delete(const char *path, uint64_t a, uint64_t b);

/* The log's and stream index's key order is LMDB's default one exactly (any
 * process or tool may open the store with either): mdb_cmp on a database
 * with the default order agrees on every pair, in sign, for keys of 0..26
 * bytes that share prefixes of every length. */
static void test_key_order(const char *dir)
{
    char path[512];
    snprintf(path, sizeof path, "%s/key_order", dir);
    E(mkdir(path, 0755) == 0);
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    E(mdb_env_create(&env) == 0 && mdb_env_set_maxdbs(env, 2) == 0 && mdb_env_open(env, path, 0, 0644) == 0);
    E(mdb_txn_begin(env, NULL, 0, &txn) == 0 && mdb_dbi_open(txn, "plain", MDB_CREATE, &dbi) == 0);
    uint8_t a[26], b[26];
    unsigned seed = 12345;
    for (int t = 0; t < 200000; t++) {
        size_t la = (size_t)(t % 27), lb = (size_t)((t / 27) % 27), common = (size_t)((t / 729) % 27);
        for (size_t i = 0; i < sizeof a; i++) {
            seed = seed * 1103515245u + 12345u;
            a[i] = (uint8_t)(seed >> 16);
            b[i] = i < common ? a[i] : (uint8_t)(seed >> 8);
            if ((seed >> 28) == 0) b[i] = a[i]; /* now and then an equal byte past the common prefix */
        }
        MDB_val ka = { la, a }, kb = { lb, b };
        int want = mdb_cmp(txn, dbi, &ka, &kb), got = cairn_lmdb_compare_keys(&ka, &kb);
        CHECK((want > 0) == (got > 0) && (want < 0) == (got < 0));
    }
    mdb_txn_abort(txn);
    mdb_env_close(env);
}

/* A stream read checks its chain a group of records at a time, but hands
 * out only checked records: with notification 6 of a 12-event stream
 * altered, a read gives versions 1 to 5 and then CAIRN_CORRUPT naming 6;
 * the same from after version 2 (its first record's predecessor looked up),
 * and a read that ends before it sees no damage. */
static void test_chain_read_ahead(const char *dir)
{
    char uri[600], path[512];
    snprintf(path, sizeof path, "%s/read_ahead", dir);
    snprintf(uri, sizeof uri, "lmdb:%s", path);
    cairn_store *s = open_with(uri, 0, NULL);
    uint8_t a[16];
    cairn_uuid_v4(a);
    cairn_record ev[12];
    for (int i = 0; i < 12; i++) ev[i] = event(a, (uint64_t)i + 1, i ? "T.Changed" : "T.Made", "\x81\xa1x\x01");
    uint64_t first = 0;
    CHECK(append(s, ev, 12, &first) == CAIRN_OK && first == 1);
    cairn_store_close(s);
    E(corrupt(path, 6, "payload") == 0);
    s = open_with(uri, 0, NULL);
    cairn_stream_query from_start = { 0 }, after2 = { .gt = 2, .has_gt = 1 }, upto5 = { .lte = 5, .has_lte = 1 };
    const cairn_stream_query *qs[] = { &from_start, &after2 };
    for (int q = 0; q < 2; q++) {
        CHECK(cairn_store_read_stream(s, a, qs[q]) == CAIRN_OK);
        cairn_record rec;
        uint64_t want = q ? 3 : 1;
        int rc;
        while ((rc = cairn_store_next(s, &rec)) == CAIRN_OK) CHECK(rec.version == want++);
        CHECK(rc == CAIRN_CORRUPT && want == 6);
        CHECK(strstr(cairn_store_errmsg(s), "version 6 (notification 6)") != NULL);
        CHECK(strstr(cairn_store_errmsg(s), "breaks the hash chain") != NULL);
        CHECK(cairn_store_next(s, &rec) == CAIRN_CORRUPT); /* and stays so */
        cairn_store_read_end(s);
    }
    uint64_t v[8];
    CHECK(count_stream(s, a, &upto5, v) == 5 && v[4] == 5);
    cairn_store_close(s);
    /* the engine failing (the index names notification 10, which is gone) comes
     * before the records read ahead with it: the read may have gone with them */
    E(swap_or_delete(path, 10, 0) == 0);
    s = open_with(uri, 0, NULL);
    cairn_stream_query after7 = { .gt = 7, .has_gt = 1 };
    CHECK(cairn_store_read_stream(s, a, &after7) == CAIRN_OK);
    cairn_record rec;
    CHECK(cairn_store_next(s, &rec) == CAIRN_CORRUPT);
    CHECK(strstr(cairn_store_errmsg(s), "notification 10") != NULL);
    cairn_store_read_end(s);
    cairn_store_close(s);
}

/* Flip one bit of the last byte of the first snapshot record in an LMDB
 * store (the end of its msgpack state, still msgpack), or flip it back: the
 * Lua specs check that a snapshot read catches the change. */
static int flip_snapshot(const char *path)
{
    MDB_txn *txn;
    MDB_dbi snaps;
    MDB_env *env = open_raw(path, "snapshots", &txn, &snaps);
    MDB_cursor *cur;
    MDB_val k, v;
    E(mdb_cursor_open(txn, snaps, &cur) == 0 && mdb_cursor_get(cur, &k, &v, MDB_FIRST) == 0);
    static uint8_t copy[1 << 20];
    E(v.mv_size <= sizeof copy);
    memcpy(copy, v.mv_data, v.mv_size);
    copy[v.mv_size - 1] ^= 0x01;
    v.mv_data = copy;
    E(mdb_cursor_put(cur, &k, &v, MDB_CURRENT) == 0);
    mdb_cursor_close(cur);
    E(mdb_txn_commit(txn) == 0);
    mdb_env_close(env);
    return 0;
}

/* Write format `fmt` into a store's meta database, as a newer cairn would:
 * the Lua specs check that such a store is refused and left unchanged. */
static int set_format(const char *path, unsigned fmt)
{
    MDB_txn *txn;
    MDB_dbi meta;
    MDB_env *env = open_raw(path, "meta", &txn, &meta);
    uint8_t v[4] = { (uint8_t)(fmt >> 24), (uint8_t)(fmt >> 16), (uint8_t)(fmt >> 8), (uint8_t)fmt };
    MDB_val k = { 6, "format" }, d = { 4, v };
    E(mdb_put(txn, meta, &k, &d, 0) == 0 && mdb_txn_commit(txn) == 0);
    mdb_env_close(env);
    return 0;
}

/* memory: stores are private to their handle and leave no files behind */
/* The chain hashes of a batch (four at a time where the CPU can) are the
 * one-by-one ones, for every length around the one-block limit, in every
 * lane, with inputs that do not fit a block mixed in. */
static void test_chain_hash_many(void)
{
    uint8_t bytes[600];
    for (size_t i = 0; i < sizeof bytes; i++) bytes[i] = (uint8_t)(i * 131 + 7);
    cairn_chain_input in[9];
    for (size_t n = 1; n <= 9; n++)
        for (size_t len = 0; len <= 230; len++) {
            for (size_t i = 0; i < n; i++) {
                size_t total = (len + i * 37) % 231; /* a and b: some empty, some over a block together */
                in[i].prev = bytes + i;
                in[i].a = bytes + 40 + i;
                in[i].a_len = total / 2 + (i % 3);
                in[i].b = bytes + 300 + i;
                in[i].b_len = total - total / 2;
                memset(in[i].out, 0, sizeof in[i].out);
            }
            cairn_chain_hash_many(in, n);
            for (size_t i = 0; i < n; i++) {
                uint8_t want[CAIRN_HASH_BYTES];
                cairn_chain_hash(in[i].prev, in[i].a, in[i].a_len, in[i].b, in[i].b_len, want);
                CHECK(memcmp(want, in[i].out, CAIRN_HASH_BYTES) == 0);
            }
        }
    /* and against libsodium's one-shot BLAKE2b-256 of the joined bytes (32 zeros, "abc") */
    uint8_t abc_block[CAIRN_HASH_BYTES + 3];
    memset(abc_block, 0, sizeof abc_block);
    cairn_chain_input two[2];
    for (int i = 0; i < 2; i++) {
        two[i].prev = abc_block; /* 32 zero bytes */
        two[i].a = (const uint8_t *)"ab";
        two[i].a_len = 2;
        two[i].b = (const uint8_t *)"c";
        two[i].b_len = 1;
    }
    cairn_chain_hash_many(two, 2);
    uint8_t want[CAIRN_HASH_BYTES];
    memcpy(abc_block + CAIRN_HASH_BYTES, "abc", 3);
    E(crypto_generichash(want, sizeof want, abc_block, sizeof abc_block, NULL, 0) == 0);
    CHECK(memcmp(want, two[0].out, CAIRN_HASH_BYTES) == 0 && memcmp(want, two[1].out, CAIRN_HASH_BYTES) == 0);
}

static void test_memory_private(const char *dir)
{
    char err[512];
    setenv("TMPDIR", dir, 1);
    cairn_store *a = NULL, *b = NULL;
    CHECK(cairn_store_open("memory:", NULL, &a, err, sizeof err) == CAIRN_OK);
    CHECK(cairn_store_open("memory:", NULL, &b, err, sizeof err) == CAIRN_OK);
    uint8_t id[16];
    cairn_uuid_v4(id);
    cairn_record r = event(id, 1, "T.Made", "\x80");
    uint64_t first, max = 9;
    CHECK(append(a, &r, 1, &first) == CAIRN_OK);
    CHECK(cairn_store_max_id(b, &max) == CAIRN_OK && max == 0);
    cairn_store_stats st;
    CHECK(cairn_store_stat(a, &st) == CAIRN_OK && strcmp(st.engine, "memory") == 0 && st.events == 1);
    DIR *d = opendir(dir);
    int left = 0;
    for (struct dirent *e; d && (e = readdir(d));) left += strncmp(e->d_name, "cairn-memory", 12) == 0;
    if (d) closedir(d);
    CHECK(left == 0);
    cairn_store_close(a);
    cairn_store_close(b);
    /* an unusable temporary directory is a clear error */
    setenv("TMPDIR", "/nonexistent/cairn", 1);
    CHECK(cairn_store_open("memory:", NULL, &a, err, sizeof err) != CAIRN_OK && a == NULL);
    CHECK(strstr(err, "cannot make a memory: store in /nonexistent/cairn") != NULL);
    unsetenv("TMPDIR");
}

/* Swap the log records of notifications a and b, or (b == 0) delete a's:
 * the specs check that reads and `cairn verify` notice. */
static int swap_or_delete(const char *path, uint64_t a, uint64_t b)
{
    MDB_txn *txn;
    MDB_dbi log;
    MDB_env *env = open_raw(path, "log", &txn, &log);
    uint8_t ka[8], kb[8];
    cairn_put_be64(ka, a);
    cairn_put_be64(kb, b);
    MDB_val k1 = { 8, ka }, k2 = { 8, kb }, v1, v2;
    if (b == 0) {
        E(mdb_del(txn, log, &k1, NULL) == 0);
    } else {
        static uint8_t c1[65536], c2[65536];
        E(mdb_get(txn, log, &k1, &v1) == 0 && v1.mv_size <= sizeof c1);
        memcpy(c1, v1.mv_data, v1.mv_size);
        E(mdb_get(txn, log, &k2, &v2) == 0 && v2.mv_size <= sizeof c2);
        memcpy(c2, v2.mv_data, v2.mv_size);
        MDB_val n1 = { v2.mv_size, c2 }, n2 = { v1.mv_size, c1 };
        E(mdb_put(txn, log, &k1, &n1, 0) == 0 && mdb_put(txn, log, &k2, &n2, 0) == 0);
    }
    E(mdb_txn_commit(txn) == 0);
    mdb_env_close(env);
    return 0;
}

/* hex digits into out (at most cap bytes); the number of bytes. */
static size_t unhex(const char *hex, uint8_t *out, size_t cap)
{
    size_t n = 0;
    for (; hex[0] && hex[1] && n < cap; hex += 2) {
        unsigned b;
        E(sscanf(hex, "%2x", &b) == 1);
        out[n++] = (uint8_t)b;
    }
    return n;
}

/* Damage the DCB index on purpose: put key (hex) -> value (hex), or delete
 * the key when value is NULL (the specs check that verify reports it). */
static int index_edit(const char *path, const char *key_hex, const char *value_hex)
{
    MDB_txn *txn;
    MDB_dbi index;
    MDB_env *env = open_raw(path, "index", &txn, &index);
    static uint8_t kb[1024], vb[1024];
    MDB_val k = { unhex(key_hex, kb, sizeof kb), kb };
    MDB_val v = { value_hex ? unhex(value_hex, vb, sizeof vb) : 0, vb };
    E((value_hex ? mdb_put(txn, index, &k, &v, 0) : mdb_del(txn, index, &k, NULL)) == 0);
    E(mdb_txn_commit(txn) == 0);
    mdb_env_close(env);
    return 0;
}

#define SL(s) ((cairn_slice){ (s), sizeof(s) - 1 })

static const uint8_t KEY1[32] = { 1, 1, 1 }, KEY2[32] = { 2, 2, 2 };

/* views: writes and tracking in one transaction, ordered scans, a wake word
 * that moves after each commit */
static void test_views(const char *uri, const uint8_t *key)
{
    char err[512];
    cairn_store *s = NULL;
    cairn_store_options o = { .sync = CAIRN_SYNC_FULL, .cipher_key = key };
    CHECK(cairn_store_open(uri, &o, &s, err, sizeof err) == CAIRN_OK);
    cairn_view_op ops[] = {
        { SL("b"), SL("\x02"), 0 }, { SL("a"), SL("\x01"), 0 }, { SL("c"), SL("\x03"), 0 }, { SL("x"), SL(""), 1 },
    };
    cairn_tracking t = { "App", 3, 7, 0 };
    uint32_t seq0 = 0, seq1 = 0;
    int has_wake = cairn_store_wake_seq(s, &seq0);
    CHECK(has_wake == 1);
    CHECK(cairn_view_write(s, SL("V"), ops, 4, &t) == CAIRN_OK);
    /* (an encrypted store's first view write makes its view key first: one commit more) */
    CHECK(cairn_store_wake_seq(s, &seq1) == 1 && seq1 == seq0 + (key ? 2 : 1));
    uint64_t at = 0;
    CHECK(cairn_view_tracking_max(s, SL("V"), SL("App"), &at) == CAIRN_OK && at == 7);
    CHECK(cairn_view_tracking_max(s, SL("W"), SL("App"), &at) == CAIRN_OK && at == 0);
    CHECK(cairn_store_tracking_max(s, "App", 3, &at) == CAIRN_OK && at == 0); /* apart from process tracking */
    /* the position must rise: nothing of a repeated batch is written */
    cairn_view_op again = { SL("d"), SL("\x04"), 0 };
    CHECK(cairn_view_write(s, SL("V"), &again, 1, &t) == CAIRN_CONFLICT);
    cairn_slice v;
    int found = 0;
    CHECK(cairn_view_get(s, SL("V"), SL("d"), &v, &found) == CAIRN_OK && !found);
    cairn_store_read_end(s);
    CHECK(cairn_view_get(s, SL("V"), SL("b"), &v, &found) == CAIRN_OK && found && v.len == 1 && v.ptr[0] == 2);
    cairn_store_read_end(s);
    /* a batch must start above the position: one that ends above it but began at or
     * below it (a writer that read an older position) is refused whole */
    cairn_tracking overlap = { "App", 3, 20, 7 }, next = { "App", 3, 20, 8 }, inverted = { "App", 3, 20, 21 };
    CHECK(cairn_view_write(s, SL("V"), &again, 1, &overlap) == CAIRN_CONFLICT);
    CHECK(cairn_view_tracking_max(s, SL("V"), SL("App"), &at) == CAIRN_OK && at == 7);
    CHECK(cairn_view_get(s, SL("V"), SL("d"), &v, &found) == CAIRN_OK && !found);
    cairn_store_read_end(s);
    CHECK(cairn_view_write(s, SL("V"), &again, 1, &inverted) == CAIRN_INVALID);
    CHECK(cairn_view_write(s, SL("V"), &again, 1, &next) == CAIRN_OK);
    CHECK(cairn_view_tracking_max(s, SL("V"), SL("App"), &at) == CAIRN_OK && at == 20);
    CHECK(cairn_view_get(s, SL("V"), SL("d"), &v, &found) == CAIRN_OK && found && v.len == 1 && v.ptr[0] == 4);
    cairn_store_read_end(s);
    cairn_view_op undo_d = { SL("d"), SL(""), 1 };
    cairn_tracking after = { "App", 3, 21, 0 };
    CHECK(cairn_view_write(s, SL("V"), &undo_d, 1, &after) == CAIRN_OK);
    cairn_view_scan q = { SL("V"), SL(""), { NULL, 0 }, 0 };
    CHECK(cairn_view_scan_start(s, &q) == CAIRN_OK);
    cairn_slice k;
    char seen[8] = { 0 };
    int n = 0, rc;
    while ((rc = cairn_view_scan_next(s, &q, &k, &v)) == CAIRN_OK) seen[n++] = k.ptr[0];
    cairn_store_read_end(s);
    CHECK(rc == CAIRN_END && n == 3 && memcmp(seen, "abc", 3) == 0);
    q = (cairn_view_scan){ SL("V"), SL(""), SL("a"), 0 };
    CHECK(cairn_view_scan_start(s, &q) == CAIRN_OK);
    CHECK(cairn_view_scan_next(s, &q, &k, &v) == CAIRN_OK && k.len == 1 && k.ptr[0] == 'b');
    cairn_store_read_end(s);
    /* a wait returns when the word has moved since it was seen, else after its timeout */
    cairn_store *const one[] = { s };
    CHECK(cairn_store_wait(one, &seq0, 1, 5.0, 0.01) == CAIRN_OK);
    char big[600];
    memset(big, 'k', sizeof big);
    cairn_view_op too_long = { { big, sizeof big }, SL("\x01"), 0 };
    CHECK(cairn_view_write(s, SL("V"), &too_long, 1, NULL) == CAIRN_INVALID);
    if (key) {
        /* the stream that holds the view key is no aggregate's: not forgotten, not written */
        static const uint8_t view_key_id[16] = "cairn view key";
        CHECK(cairn_store_forget(s, view_key_id) == CAIRN_INVALID);
        cairn_record ev = event(view_key_id, 1, "T.Made", "\x80");
        uint64_t first;
        CHECK(append(s, &ev, 1, &first) == CAIRN_INVALID);
        cairn_verify_report r;
        CHECK(cairn_store_verify(s, &r, NULL, NULL) == CAIRN_OK && r.problems == 0 && r.keys_checked == 1);
    }
    cairn_store_close(s);
}

#define MAP1 "\x81\xa1k\x01"    /* msgpack {k = 1} */

/* event ids and metadata are stored and read back, plain, compressed and sealed */
static void test_event_ids_and_metadata(const char *uri, int compress, const uint8_t *key)
{
    cairn_store *s = open_with(uri, compress, key);
    uint8_t a[16];
    cairn_uuid_v4(a);
    static char big[200];
    memset(big, 'x', sizeof big - 1);
    big[0] = (char)0x81; big[1] = (char)0xa1; big[2] = 'b'; big[3] = (char)0xd9; big[4] = (char)(sizeof big - 6);
    cairn_record ev[] = { event(a, 1, "T.Made", big), event(a, 2, "T.Changed", "\x80") };
    cairn_uuid_v4(ev[0].event_id);
    cairn_uuid_v4(ev[1].event_id);
    ev[0].metadata = (const uint8_t *)MAP1;
    ev[0].metadata_len = 4;
    uint64_t first;
    CHECK(append(s, ev, 2, &first) == CAIRN_OK);
    cairn_stream_query all = { 0 };
    cairn_record rec;
    CHECK(cairn_store_read_stream(s, a, &all) == CAIRN_OK);
    CHECK(cairn_store_next(s, &rec) == CAIRN_OK && rec.format == CAIRN_RECORD_FORMAT);
    CHECK(memcmp(rec.event_id, ev[0].event_id, 16) == 0);
    CHECK(rec.metadata_len == 4 && memcmp(rec.metadata, MAP1, 4) == 0);
    CHECK(rec.payload_len == strlen(big) && memcmp(rec.payload, big, rec.payload_len) == 0);
    CHECK(!compress || (rec.flags & CAIRN_RECORD_COMPRESSED));
    CHECK(!key || (rec.flags & CAIRN_RECORD_ENCRYPTED));
    CHECK(cairn_store_next(s, &rec) == CAIRN_OK && memcmp(rec.event_id, ev[1].event_id, 16) == 0);
    CHECK(rec.metadata == NULL && rec.metadata_len == 0 && rec.payload_len == 1);
    cairn_store_read_end(s);
    cairn_log_query lq = { .start = first };
    CHECK(cairn_store_read_log(s, &lq) == CAIRN_OK);
    CHECK(cairn_store_next(s, &rec) == CAIRN_OK && memcmp(rec.event_id, ev[0].event_id, 16) == 0);
    CHECK(rec.metadata_len == 4 && memcmp(rec.metadata, MAP1, 4) == 0);
    cairn_store_read_end(s);
    cairn_verify_report r;
    CHECK(cairn_store_verify(s, &r, NULL, NULL) == CAIRN_OK && r.problems == 0 && r.records >= 2);
    cairn_store_close(s);
}

/* String ids: keys are version 8 UUIDs, keyed in encrypted stores (and
 * stable across rekey); the string comes back from reads; a record whose key
 * is not its string's is refused; invalid strings are refused. */
/* snapshot reads: a record read again (byte comparison, no second hash) and
 * one the caller names as known (no body opened), plain, compressed or sealed */
static void test_snapshot_reads(const char *uri, int compress, const uint8_t *key)
{
    cairn_store *s = open_with(uri, compress, key);
    uint8_t a[16];
    cairn_uuid_v4(a);
    static char state[6000]; /* a map of one 5,990-byte string: large enough to be kept verified */
    memset(state, 'x', sizeof state - 1);
    state[0] = (char)0x81; state[1] = (char)0xa1; state[2] = 's'; state[3] = (char)0xda;
    state[4] = (char)((sizeof state - 7) >> 8); state[5] = (char)((sizeof state - 7) & 0xff);
    cairn_record ev = event(a, 1, "T.Made", "\x80"), snap = event(a, 1, "T", state);
    cairn_batch b = { .events = &ev, .n = 1, .snapshots = &snap, .nsnapshots = 1 };
    uint64_t first;
    CHECK(cairn_store_append(s, &b, &first) == CAIRN_OK);
    uint8_t known[CAIRN_RECORD_HASH], other[CAIRN_RECORD_HASH] = { 0 };
    cairn_record rec;
    int same = -1;
    for (int round = 0; round < 2; round++) { /* hashed, then compared with the bytes kept */
        CHECK(cairn_store_read_snapshot(s, a, 0, 0, NULL, &rec, &same) == CAIRN_OK && same == 0);
        CHECK(rec.payload_len == sizeof state - 1 && memcmp(rec.payload, state, rec.payload_len) == 0);
        memcpy(known, cairn_store_snapshot_hash(s), sizeof known);
        cairn_store_read_end(s);
    }
    CHECK(cairn_store_read_snapshot(s, a, 0, 0, other, &rec, &same) == CAIRN_OK && same == 0);
    CHECK(rec.payload_len == sizeof state - 1);
    cairn_store_read_end(s);
    CHECK(cairn_store_read_snapshot(s, a, 0, 0, known, &rec, &same) == CAIRN_OK && same == 1);
    CHECK(rec.payload == NULL && rec.payload_len == 0 && rec.version == 1);
    CHECK(memcmp(cairn_store_snapshot_hash(s), known, sizeof known) == 0);
    cairn_store_read_end(s);
    if (key) { /* forgotten: refused, also when known */
        CHECK(cairn_store_forget(s, a) == CAIRN_OK);
        CHECK(cairn_store_read_snapshot(s, a, 0, 0, known, &rec, &same) != CAIRN_OK);
        cairn_store_read_end(s);
    }
    cairn_store_close(s);
}

/* A save hashes its chain links a group at a time, four side by side where
 * streams are independent; a stream's next event waits for its previous
 * one's hash. Streams of 1 to 4 events, one record over a BLAKE2b block, a
 * snapshot taken at one of the batch's events, then a second save onto some
 * of the same streams: every stream reads back whole (each link checked),
 * with the hashes the save handed back, and the snapshot chains from its event. */
static void test_batch_chains(const char *uri, int compress, const uint8_t *key)
{
    enum { STREAMS = 11, MAXN = 4 };
    static const int lens[STREAMS] = { 1, 3, 1, 1, 1, 2, 4, 1, 1, 2, 1 };
    static char big[200];
    memset(big, 'b', sizeof big - 1);
    big[0] = (char)0x81; big[1] = (char)0xa1; big[2] = 'b'; big[3] = (char)0xd9; big[4] = (char)(sizeof big - 6);
    cairn_store *s = open_with(uri, compress, key);
    uint8_t ids[STREAMS][16];
    cairn_record ev[STREAMS * MAXN];
    uint8_t hashes[STREAMS * MAXN][CAIRN_RECORD_HASH];
    for (int round = 0; round < 2; round++) {
        size_t n = 0;
        for (int k = 0; k < STREAMS; k++) {
            if (round == 0) cairn_uuid_v4(ids[k]);
            else if (k % 3) continue; /* the second save: every third stream */
            for (int v = 1; v <= lens[k]; v++)
                ev[n++] = event(ids[k], (uint64_t)(round * lens[k] + v), v == 1 && round == 0 ? "T.Made" : "T.Changed",
                                k == 6 && v == 2 ? big : "\x81\xa1x\x01");
        }
        /* at an event of the batch: the second of a 3-event stream, then the first of the save onto a stream */
        const uint8_t *sid = round ? ids[3] : ids[1];
        cairn_record snap = event(sid, 2, "T", "\x81\xa1s\x02");
        cairn_batch b = { .events = ev, .n = n, .hashes = &hashes[0][0], .snapshots = &snap, .nsnapshots = 1 };
        uint64_t first;
        CHECK(cairn_store_append(s, &b, &first) == CAIRN_OK);
        /* the save's hashes are the stored ones, and each stream reads back in full */
        size_t at = 0;
        for (int k = 0; k < STREAMS; k++) {
            if (round == 1 && k % 3) continue;
            cairn_stream_query q = { .gt = (uint64_t)lens[k], .has_gt = round == 1 };
            CHECK(cairn_store_read_stream(s, ids[k], &q) == CAIRN_OK);
            cairn_record rec;
            int rc, got = 0;
            while ((rc = cairn_store_next(s, &rec)) == CAIRN_OK) {
                CHECK(memcmp(rec.hash, hashes[at + (size_t)got], CAIRN_RECORD_HASH) == 0);
                got++;
            }
            CHECK(rc == CAIRN_END && got == lens[k]);
            cairn_store_read_end(s);
            at += (size_t)lens[k];
        }
        CHECK(at == n);
        cairn_record rec;
        int same = 0;
        CHECK(cairn_store_read_snapshot(s, sid, 0, 0, NULL, &rec, &same) == CAIRN_OK);
        CHECK(rec.version == snap.version);
        cairn_store_read_end(s);
    }
    cairn_store_close(s);
}

static void test_string_ids(const char *uri, const uint8_t *key)
{
    char err[512];
    cairn_store *s = NULL;
    cairn_store_options opt = { .sync = CAIRN_SYNC_NONE, .compress = 1, .cipher_key = key };
    CHECK(cairn_store_open(uri, &opt, &s, err, sizeof err) == CAIRN_OK);
    static const char name[] = "order-2026-00017";
    uint8_t id[16], plain[16], again[16];
    CHECK(cairn_store_string_id(s, name, sizeof name - 1, 1, id) == CAIRN_OK);
    CHECK(id[6] >> 4 == 8 && id[8] >> 6 == 2); /* RFC 9562: version 8, variant 10 */
    cairn_string_id_key(NULL, name, sizeof name - 1, plain);
    CHECK(!key == !memcmp(id, plain, 16)); /* keyed only when encrypted */
    char longest[CAIRN_STRING_ID_MAX + 1];
    memset(longest, 'x', sizeof longest);
    CHECK(cairn_store_string_id(s, longest, sizeof longest - 1, 1, again) == CAIRN_OK);
    CHECK(cairn_store_string_id(s, longest, sizeof longest, 1, again) == CAIRN_SCHEMA);
    CHECK(strstr(cairn_store_errmsg(s), "longer than 255 bytes") != NULL);
    CHECK(cairn_store_string_id(s, "", 0, 1, again) == CAIRN_SCHEMA);
    CHECK(cairn_store_string_id(s, "\xc0\xaf", 2, 1, again) == CAIRN_SCHEMA); /* an overlong '/' */
    CHECK(cairn_store_string_id(s, "\xf4\x90\x80\x80", 4, 1, again) == CAIRN_SCHEMA); /* above U+10FFFF */
    CHECK(cairn_store_string_id(s, "\xe2\x82\xac", 3, 1, again) == CAIRN_OK); /* the euro sign */
    cairn_record ev[] = { event(id, 1, "Order.Placed", "\x80"), event(id, 2, "Order.Shipped", "\x80") };
    ev[0].name = ev[1].name = name;
    ev[0].name_len = ev[1].name_len = sizeof name - 1;
    ev[1].metadata = (const uint8_t *)MAP1;
    ev[1].metadata_len = 4;
    uint64_t first, max;
    CHECK(append(s, ev, 2, &first) == CAIRN_OK);
    cairn_stream_query all = { 0 };
    cairn_record rec;
    CHECK(cairn_store_read_stream(s, id, &all) == CAIRN_OK);
    for (int i = 0; i < 2; i++) {
        CHECK(cairn_store_next(s, &rec) == CAIRN_OK && (rec.flags & CAIRN_RECORD_STRING_ID));
        CHECK(rec.name_len == sizeof name - 1 && memcmp(rec.name, name, rec.name_len) == 0);
        CHECK(rec.payload_len == 1 && rec.metadata_len == (i ? 4u : 0u));
    }
    cairn_store_read_end(s);
    /* a record keyed by anything but its string's key is refused, with nothing recorded */
    cairn_record wrong = event(plain, 1, "Order.Placed", "\x80");
    static const char other[] = "order-2026-00018";
    wrong.name = other;
    wrong.name_len = sizeof other - 1;
    if (!key) cairn_uuid_v4(wrong.stream_id);
    CHECK(append(s, &wrong, 1, &first) == CAIRN_INVALID);
    CHECK(cairn_store_max_id(s, &max) == CAIRN_OK && max == 2);
    cairn_verify_report r;
    CHECK(cairn_store_verify(s, &r, NULL, NULL) == CAIRN_OK && r.problems == 0 && r.records == 2);
    if (key && strncmp(uri, "lmdb:", 5) == 0) { /* rekey keeps the keys of string ids (memory: opens anew) */
        CHECK(cairn_store_rekey(s, KEY2) == CAIRN_OK);
        cairn_store_close(s);
        opt.cipher_key = KEY2;
        CHECK(cairn_store_open(uri, &opt, &s, err, sizeof err) == CAIRN_OK);
        CHECK(cairn_store_string_id(s, name, sizeof name - 1, 0, again) == CAIRN_OK && memcmp(again, id, 16) == 0);
        CHECK(count_stream(s, again, &all, NULL) == 2);
    }
    cairn_store_close(s);
}

/* Add a format-2 record (the format before event ids) as version 1 of a new
 * stream, as a store written by an earlier cairn holds it. */
static void put_format2(const char *path, const uint8_t id[16], uint64_t nid)
{
    MDB_txn *txn;
    MDB_dbi log, streams;
    MDB_env *env = open_raw(path, "log", &txn, &log);
    E(mdb_dbi_open(txn, "streams", 0, &streams) == 0);
    cairn_record r = event(id, 1, "T.Old", "\x81\xa1v\x02");
    r.format = CAIRN_RECORD_FORMAT_V2;
    uint8_t buf[128], zero[CAIRN_RECORD_HASH] = { 0 };
    size_t header = CAIRN_RECORD_FIXED_V2 + r.topic_len, len = header + CAIRN_RECORD_HASH + r.payload_len;
    cairn_record_write_header(&r, 0, buf);
    memcpy(buf + header + CAIRN_RECORD_HASH, r.payload, r.payload_len);
    cairn_record_hash(zero, buf, len, buf + header);
    uint8_t key[8], skey[24];
    cairn_put_be64(key, nid);
    memcpy(skey, id, 16);
    cairn_put_be64(skey + 16, 1);
    MDB_val k = { 8, key }, v = { len, buf }, sk = { 24, skey }, sv = { 8, key };
    E(mdb_put(txn, log, &k, &v, 0) == 0 && mdb_put(txn, streams, &sk, &sv, 0) == 0 && mdb_txn_commit(txn) == 0);
    mdb_env_close(env);
}

/* format-2 records are read (no event id, no metadata) and chained onto */
static void test_format2_records(const char *dir)
{
    char uri[700], path[600], err[512];
    snprintf(path, sizeof path, "%s/format2", dir);
    snprintf(uri, sizeof uri, "lmdb:%s", path);
    cairn_store *s = NULL;
    CHECK(cairn_store_open(uri, NULL, &s, err, sizeof err) == CAIRN_OK);
    cairn_store_close(s);
    uint8_t id[16];
    cairn_uuid_v4(id);
    put_format2(path, id, 1);
    CHECK(cairn_store_open(uri, NULL, &s, err, sizeof err) == CAIRN_OK);
    cairn_record next = event(id, 2, "T.New", "\x80"), rec;
    cairn_uuid_v4(next.event_id);
    uint64_t first;
    CHECK(append(s, &next, 1, &first) == CAIRN_OK && first == 2);
    cairn_stream_query all = { 0 };
    CHECK(cairn_store_read_stream(s, id, &all) == CAIRN_OK);
    static const uint8_t none[16];
    CHECK(cairn_store_next(s, &rec) == CAIRN_OK && rec.format == CAIRN_RECORD_FORMAT_V2 && rec.version == 1);
    CHECK(memcmp(rec.event_id, none, 16) == 0 && rec.metadata == NULL && rec.payload_len == 4);
    CHECK(cairn_store_next(s, &rec) == CAIRN_OK && rec.format == CAIRN_RECORD_FORMAT);
    CHECK(memcmp(rec.event_id, next.event_id, 16) == 0);
    CHECK(cairn_store_next(s, &rec) == CAIRN_END);
    cairn_store_read_end(s);
    cairn_verify_report r;
    CHECK(cairn_store_verify(s, &r, NULL, NULL) == CAIRN_OK && r.problems == 0 && r.records == 2);
    cairn_store_close(s);
}

/* Reads that a stopped writer or missing write permission must not stop. */
static void read_everything(const char *uri, const cairn_store_options *opt, uint64_t events, int refuses_writes)
{
    char err[512];
    cairn_store *s = NULL;
    CHECK(cairn_store_open(uri, opt, &s, err, sizeof err) == CAIRN_OK);
    cairn_store_stats st;
    CHECK(cairn_store_stat(s, &st) == CAIRN_OK && st.events == events);
    cairn_log_query lq = { .start = 1 };
    cairn_record rec;
    uint64_t n = 0;
    int rc;
    CHECK(cairn_store_read_log(s, &lq) == CAIRN_OK);
    while ((rc = cairn_store_next(s, &rec)) == CAIRN_OK) n++;
    cairn_store_read_end(s);
    CHECK(rc == CAIRN_END && n == events);
    cairn_verify_report r;
    CHECK(cairn_store_verify(s, &r, NULL, NULL) == CAIRN_OK && r.problems == 0 && r.records == events);
    /* a read-only handle refuses writes, saying so */
    if (refuses_writes) {
        uint8_t id[16];
        cairn_uuid_v4(id);
        cairn_record ev = event(id, 1, "T.Made", "\x80");
        uint64_t first;
        CHECK(append(s, &ev, 1, &first) == CAIRN_CONFIG);
        CHECK(strstr(cairn_store_errmsg(s), "is open read-only") != NULL);
    }
    cairn_store_close(s);
}

static void fill(const char *uri, uint64_t n)
{
    char err[512];
    cairn_store *s = NULL;
    CHECK(cairn_store_open(uri, NULL, &s, err, sizeof err) == CAIRN_OK);
    uint8_t id[16];
    cairn_uuid_v4(id);
    for (uint64_t v = 1; v <= n; v++) {
        cairn_record ev = event(id, v, "T.Made", "\x80");
        uint64_t first;
        CHECK(append(s, &ev, 1, &first) == CAIRN_OK);
    }
    cairn_store_close(s);
}

/* Begin a write transaction on a store and stop: a writer stopped in the
 * middle of a commit (SIGSTOP, a debugger). Prints "held" once it holds it. */
__attribute__((noreturn)) static void hold_write(const char *path)
{
    MDB_txn *txn;
    MDB_dbi log;
    open_raw(path, "log", &txn, &log);
    /* a stopped process whose group is orphaned gets SIGHUP and SIGCONT: it
     * then pauses, and still holds the transaction */
    signal(SIGHUP, SIG_IGN);
    printf("held\n");
    fflush(stdout);
    raise(SIGSTOP);
    for (;;) pause();
}

static void fail_on_hang(int sig) { (void)sig; write(2, "store_test: a read hung\n", 24); _exit(1); }

/* opens and reads start no write transaction: a stopped writer stops none of them */
static void test_beside_stopped_writer(const char *dir)
{
    char uri[700], path[600];
    snprintf(path, sizeof path, "%s/stopped", dir);
    snprintf(uri, sizeof uri, "lmdb:%s", path);
    fill(uri, 3);
    int out[2];
    E(pipe(out) == 0);
    pid_t writer = fork();
    E(writer >= 0);
    if (writer == 0) {
        dup2(out[1], 1);
        hold_write(path);
    }
    close(out[1]);
    char held[8] = { 0 };
    E(read(out[0], held, 5) == 5 && strcmp(held, "held\n") == 0);
    int status;
    E(waitpid(writer, &status, WUNTRACED) == writer && WIFSTOPPED(status));
    signal(SIGALRM, fail_on_hang);
    alarm(30);
    cairn_store_options ro = { .read_only = 1 }, tool = { .must_exist = 1 }, plain = { .sync = CAIRN_SYNC_FULL };
    read_everything(uri, &ro, 3, 1);
    read_everything(uri, &tool, 3, 0);
    read_everything(uri, &plain, 3, 0);
    alarm(0);
    kill(writer, SIGKILL);
    E(waitpid(writer, &status, 0) == writer);
    close(out[0]);
    /* the writer's death releases LMDB's writer lock: saves go on */
    fill(uri, 2);
    read_everything(uri, &ro, 5, 1);
}

/* a user who may only read the store's files opens it read-only and reads */
static void test_without_write_permission(const char *dir)
{
    char uri[700], path[600], err[512];
    snprintf(path, sizeof path, "%s/readonly", dir);
    snprintf(uri, sizeof uri, "lmdb:%s", path);
    fill(uri, 4);
    E(chmod(dir, 0755) == 0);
    int ready[2], committed[2], as_nobody = geteuid() == 0;
    E(pipe(ready) == 0 && pipe(committed) == 0);
    pid_t reader = fork();
    E(reader >= 0);
    if (reader == 0) {
        /* root may write anything: become nobody; others lose write permission */
        if (geteuid() == 0) {
            E(setgid(65534) == 0 && setuid(65534) == 0);
        } else {
            char file[700];
            snprintf(file, sizeof file, "%s/data.mdb", path);
            E(chmod(file, 0444) == 0);
            snprintf(file, sizeof file, "%s/lock.mdb", path);
            E(chmod(file, 0444) == 0);
            E(chmod(path, 0555) == 0);
        }
        cairn_store_options ro = { .read_only = 1 }, tool = { .must_exist = 1 };
        read_everything(uri, &ro, 4, 1);
        read_everything(uri, &tool, 4, 1); /* the tools' open falls back to reading only */
        cairn_store *s = NULL;
        cairn_store_options writer = { .sync = CAIRN_SYNC_FULL };
        E(cairn_store_open(uri, &writer, &s, err, sizeof err) != CAIRN_OK && strstr(err, "denied") != NULL);
        if (as_nobody) {
            /* nobody may not even write lock.mdb: a read cannot pin its snapshot, so a
             * read that commits overtook is refused rather than trusted */
            cairn_store_options ro = { .read_only = 1 };
            cairn_record rec;
            uint64_t n = 0;
            int rc;
            E(cairn_store_open(uri, &ro, &s, err, sizeof err) == CAIRN_OK);
            cairn_log_query lq = { .start = 1 };
            E(cairn_store_read_log(s, &lq) == CAIRN_OK && cairn_store_next(s, &rec) == CAIRN_OK);
            E(write(ready[1], "r", 1) == 1);
            char c;
            E(read(committed[0], &c, 1) == 1);
            while ((rc = cairn_store_next(s, &rec)) == CAIRN_OK) n++;
            E(rc == CAIRN_STORE && strstr(cairn_store_errmsg(s), "changed while reading the log") != NULL);
            cairn_store_close(s);
        }
        _exit(0);
    }
    if (as_nobody) {
        char c;
        E(read(ready[0], &c, 1) == 1);
        fill(uri, 2); /* two commits while the reader reads */
        E(write(committed[1], "c", 1) == 1);
    }
    int status;
    E(waitpid(reader, &status, 0) == reader && WIFEXITED(status) && WEXITSTATUS(status) == 0);
    close(ready[0]); close(ready[1]); close(committed[0]); close(committed[1]);
    if (geteuid() != 0) {
        E(chmod(path, 0755) == 0);
    }
    read_everything(uri, &(cairn_store_options){ .read_only = 1 }, as_nobody ? 6 : 4, 1);
}

/* a read-only open makes nothing: no store, no directory */
static void test_read_only_makes_nothing(const char *dir)
{
    char uri[700], path[600], err[512];
    snprintf(path, sizeof path, "%s/absent/store", dir);
    snprintf(uri, sizeof uri, "lmdb:%s", path);
    cairn_store *s = NULL;
    cairn_store_options ro = { .read_only = 1 };
    CHECK(cairn_store_open(uri, &ro, &s, err, sizeof err) == CAIRN_CONFIG && strstr(err, "no store at") != NULL);
    struct stat st;
    CHECK(stat(path, &st) != 0);
}


/* a handle opened before a rekey may not write under the old key (issue 14) */
static void test_stale_key_after_rekey(const char *uri)
{
    char err[512];
    cairn_store *a = NULL, *b = NULL;
    cairn_store_options k1 = { .sync = CAIRN_SYNC_NONE, .cipher_key = KEY1 };
    CHECK(cairn_store_open(uri, &k1, &a, err, sizeof err) == CAIRN_OK);
    uint8_t x[16], y[16];
    cairn_uuid_v4(x);
    cairn_uuid_v4(y);
    cairn_record ev = event(x, 1, "T.Made", "\x80");
    uint64_t first;
    CHECK(append(a, &ev, 1, &first) == CAIRN_OK);
    CHECK(cairn_store_open(uri, &k1, &b, err, sizeof err) == CAIRN_OK);
    CHECK(cairn_store_rekey(b, KEY2) == CAIRN_OK);
    /* a new stream's data key would be wrapped by the old key: refused */
    cairn_record other = event(y, 1, "T.Made", "\x80");
    CHECK(append(a, &other, 1, &first) == CAIRN_CONFIG);
    CHECK(strstr(cairn_store_errmsg(a), "was changed (cairn rekey) after this handle opened it") != NULL);
    cairn_record more = event(x, 2, "T.Changed", "\x80");
    CHECK(append(a, &more, 1, &first) == CAIRN_CONFIG);
    cairn_stream_query all = { 0 };
    CHECK(cairn_store_read_stream(a, x, &all) == CAIRN_CONFIG);
    cairn_store_close(a);
    /* the rekeying handle goes on, and everything reads under the new key */
    CHECK(append(b, &other, 1, &first) == CAIRN_OK);
    cairn_store_options k2 = { .sync = CAIRN_SYNC_NONE, .cipher_key = KEY2 };
    CHECK(cairn_store_open(uri, &k2, &a, err, sizeof err) == CAIRN_OK);
    cairn_verify_report r;
    CHECK(cairn_store_verify(a, &r, NULL, NULL) == CAIRN_OK && r.problems == 0 && r.records == 2 && r.keys_checked == 2);
    cairn_store_close(a);
    cairn_store_close(b);
}

/* a handle that opened a store without a key writes no plaintext into it
 * once another has made it encrypted (issue 14) */
static void test_no_plaintext_after_encryption(const char *uri)
{
    char err[512];
    cairn_store *plain = NULL, *sealed = NULL;
    cairn_store_options none = { .sync = CAIRN_SYNC_NONE }, k1 = { .sync = CAIRN_SYNC_NONE, .cipher_key = KEY1 };
    CHECK(cairn_store_open(uri, &none, &plain, err, sizeof err) == CAIRN_OK);
    CHECK(cairn_store_open(uri, &k1, &sealed, err, sizeof err) == CAIRN_OK);
    uint8_t x[16];
    cairn_uuid_v4(x);
    cairn_record ev = event(x, 1, "T.Made", "\x80");
    uint64_t first;
    CHECK(append(plain, &ev, 1, &first) == CAIRN_CONFIG);
    CHECK(strstr(cairn_store_errmsg(plain), "was encrypted after this handle opened it") != NULL);
    cairn_view_op op = { SL("k"), SL("\x01"), 0 };
    CHECK(cairn_view_write(plain, SL("V"), &op, 1, NULL) == CAIRN_CONFIG);
    CHECK(append(sealed, &ev, 1, &first) == CAIRN_OK);
    cairn_verify_report r;
    CHECK(cairn_store_verify(sealed, &r, NULL, NULL) == CAIRN_OK && r.problems == 0 && r.records == 1);
    cairn_store_close(plain);
    cairn_store_close(sealed);
}

int main(int argc, char **argv)
{
    if (argc == 5 && strcmp(argv[1], "--corrupt") == 0)
        return corrupt(argv[2], strtoull(argv[3], NULL, 10), argv[4]);
    if (argc == 5 && strcmp(argv[1], "--swap") == 0)
        return swap_or_delete(argv[2], strtoull(argv[3], NULL, 10), strtoull(argv[4], NULL, 10));
    if (argc == 4 && strcmp(argv[1], "--delete") == 0)
        return swap_or_delete(argv[2], strtoull(argv[3], NULL, 10), 0);
    if (argc == 4 && strcmp(argv[1], "--index-del") == 0) return index_edit(argv[2], argv[3], NULL);
    if (argc == 5 && strcmp(argv[1], "--index-put") == 0) return index_edit(argv[2], argv[3], argv[4]);
    if (argc == 3 && strcmp(argv[1], "--hold-write") == 0) hold_write(argv[2]);
    if (argc == 3 && strcmp(argv[1], "--flip-snapshot") == 0) return flip_snapshot(argv[2]);
    if (argc == 4 && strcmp(argv[1], "--format") == 0)
        return set_format(argv[2], (unsigned)strtoul(argv[3], NULL, 10));
    /* a helper mode this build lacks (or with the wrong arguments) is not a DIR:
     * taken as one, the whole run would fill a directory named after the option */
    if (argc > 2 || (argc == 2 && argv[1][0] == '-')) {
        fprintf(stderr, "usage: %s [DIR] | --corrupt PATH ID payload|header | --swap PATH ID ID | --delete PATH ID"
                        " | --index-del PATH KEY | --index-put PATH KEY VALUE | --hold-write PATH"
                        " | --flip-snapshot PATH | --format PATH N\n", argv[0]);
        return 2;
    }
    char dir[] = "/tmp/cairn_c_tests.XXXXXX";
    const char *base = argc > 1 ? argv[1] : mkdtemp(dir);
    E(base != NULL);
    char uri[600];
    test_record_and_uuid();
    test_chain_hash_many();
    test_store("memory:");
    test_tracking("memory:");
    snprintf(uri, sizeof uri, "lmdb:%s/store", base);
    test_store(uri);
    test_lmdb_reopen_and_refusals(base);
    test_views("memory:", NULL);
    test_views("memory:", KEY1);
    snprintf(uri, sizeof uri, "lmdb:%s/views", base);
    test_views(uri, NULL);
    snprintf(uri, sizeof uri, "lmdb:%s/sealed-views", base);
    test_views(uri, KEY1);
    test_memory_private(base);
    test_chain_read_ahead(base);
    test_key_order(base);
    test_event_ids_and_metadata("memory:", 0, NULL);
    test_event_ids_and_metadata("memory:", 1, NULL);
    test_event_ids_and_metadata("memory:", 1, KEY1);
    snprintf(uri, sizeof uri, "lmdb:%s/sealed", base);
    test_event_ids_and_metadata(uri, 0, KEY1);
    test_format2_records(base);
    test_snapshot_reads("memory:", 0, NULL);
    test_snapshot_reads("memory:", 1, KEY1);
    test_snapshot_reads(uri, 1, KEY1);
    test_snapshot_reads(uri, 0, KEY1);
    test_batch_chains("memory:", 0, NULL);
    test_batch_chains("memory:", 1, KEY1);
    snprintf(uri, sizeof uri, "lmdb:%s/batch-chains", base);
    test_batch_chains(uri, 0, NULL);
    snprintf(uri, sizeof uri, "lmdb:%s/batch-chains-sealed", base);
    test_batch_chains(uri, 1, KEY1);
    test_string_ids("memory:", NULL);
    test_string_ids("memory:", KEY1);
    snprintf(uri, sizeof uri, "lmdb:%s/string-ids", base);
    test_string_ids(uri, KEY1);
    test_read_only_makes_nothing(base);
    test_beside_stopped_writer(base);
    test_without_write_permission(base);
    snprintf(uri, sizeof uri, "lmdb:%s/rekeyed", base);
    test_stale_key_after_rekey(uri);
    snprintf(uri, sizeof uri, "lmdb:%s/encrypted-later", base);
    test_no_plaintext_after_encryption(uri);
    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", base);
    if (argc <= 1 && system(cmd) != 0) fprintf(stderr, "could not remove %s\n", base);
    printf("%d passed, 0 failed\n", checks);
    return 0;
}
