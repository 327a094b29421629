/*
 * store_verify.c -- checking a whole store (cairn verify).
 *
 * One walk of the stream index in key order checks, for every entry, that the
 * log record it names exists, is well formed and holds that very stream
 * version, that each stream's versions are consecutive, and that each
 * record's hash chains from the one before. A record matches only its own
 * index key, so index entries name distinct records; with as many entries as
 * records, log and index agree one to one. A walk of the log's keys checks
 * that ids run 1, 2, 3... without gaps; data keys sit in the index too.
 * Snapshots come last.
 * Hashes cover the stored bytes, so all of this works without the key; with
 * the key every seal is opened as well.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>


#include "cairn.h"
#include "store_internal.h"

#define PROGRESS_EVERY 65536

typedef struct {
    cairn_store *s;
    cairn_verify_report *r;
    int (*progress)(void *, uint64_t, uint64_t);
    void *ctx;
    uint64_t total;
} verifier;

static void problem(verifier *v, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void problem(verifier *v, const char *fmt, ...)
{
    if (v->r->problems++ > 0) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(v->r->first, sizeof v->r->first, fmt, ap);
    va_end(ap);
}

/* A problem with one event: "aggregate <id> version <v> (notification <n>): ..." */
static void event_problem(verifier *v, const uint8_t id[16], uint64_t version, uint64_t nid, const char *what)
{
    char desc[80];
    cairn_store_describe(id, version, desc, sizeof desc);
    problem(v, "%s (notification %llu): %s", desc, (unsigned long long)nid, what);
}

/* With the key, open the record's seal (a forgotten stream has none to open). */
static void check_seal(verifier *v, cairn_record *rec, const char *what)
{
    cairn_store *s = v->s;
    if (!s->encrypted || !s->master) return;
    int rc = cairn_store_open_payload(s, s->rtxn, rec);
    if (rc == CAIRN_NOTFOUND && rec->forgotten) return;
    if (rc) problem(v, "%s: %s", what, s->errmsg);
}

/* A data key entry (encrypted stores): well formed, and with the key, it opens. */
static void check_key(verifier *v, const uint8_t id[16], const MDB_val *val)
{
    cairn_store *s = v->s;
    char desc[80];
    if (!s->encrypted || (val->mv_size != 1 && val->mv_size != CAIRN_WRAPPED_KEY_BYTES)) {
        cairn_store_describe(id, 0, desc, sizeof desc);
        problem(v, "the data key entry of %.46s is malformed or in a plain store", desc);
        return;
    }
    if (val->mv_size == 1 || !s->master) return;
    const uint8_t *key;
    v->r->keys_checked++;
    if (cairn_store_data_key(s, s->rtxn, id, 0, &key) != CAIRN_OK) problem(v, "%s", s->errmsg);
}

static int walk_index(verifier *v, uint64_t *entries)
{
    cairn_store *s = v->s;
    MDB_cursor *cur;
    int rc = mdb_cursor_open(s->rtxn, s->sh->streams, &cur);
    if (rc) return rc;
    MDB_val k, iv, lv;
    uint8_t stream[16], prev[CAIRN_HASH_BYTES];
    uint64_t last_version = 0;
    int in_stream = 0;
    for (rc = mdb_cursor_get(cur, &k, &iv, MDB_FIRST); rc == 0; rc = mdb_cursor_get(cur, &k, &iv, MDB_NEXT)) {
        if (k.mv_size == 16) { check_key(v, k.mv_data, &iv); continue; }
        ++*entries;
        if (v->progress && *entries % PROGRESS_EVERY == 0 && v->progress(v->ctx, *entries, v->total)) { rc = EINTR; break; }
        if (k.mv_size != CAIRN_STREAM_KEY || iv.mv_size != 8) {
            problem(v, "the stream index has a malformed entry (entry %llu)", (unsigned long long)*entries);
            in_stream = 0;
            continue;
        }
        const uint8_t *id = k.mv_data;
        uint64_t version = cairn_get_be64(id + 16), nid = cairn_get_be64(iv.mv_data);
        if (!in_stream || memcmp(stream, id, 16) != 0) {
            memcpy(stream, id, 16);
            memset(prev, 0, sizeof prev);
            in_stream = 1;
            v->r->streams++;
        } else if (version != last_version + 1) {
            event_problem(v, id, version, nid, "the stream skips versions after the one before");
        }
        last_version = version;
        MDB_val lk = { 8, iv.mv_data };
        int got = mdb_get(s->rtxn, s->sh->log, &lk, &lv);
        if (got == MDB_NOTFOUND) {
            event_problem(v, id, version, nid, "the stream index names a notification that is missing");
            continue;
        }
        if (got) { rc = got; break; }
        cairn_record rec;
        if (cairn_record_parse(lv.mv_data, lv.mv_size, &rec) != CAIRN_OK) {
            event_problem(v, id, version, nid, "the record is malformed (bad format byte, flags or lengths)");
            continue;
        }
        v->r->records++;
        if (memcmp(rec.stream_id, id, 16) != 0 || rec.version != version) {
            event_problem(v, id, version, nid, "the record there belongs to another stream or version (moved or swapped)");
            continue;
        }
        if (!(rec.flags & CAIRN_RECORD_ENCRYPTED) != !s->encrypted)
            event_problem(v, id, version, nid, s->encrypted ? "the record is not encrypted in an encrypted store"
                                                            : "the record is flagged encrypted in a plain store");
        uint8_t want[CAIRN_HASH_BYTES];
        cairn_record_hash(prev, lv.mv_data, lv.mv_size, want);
        if (memcmp(want, rec.hash, CAIRN_HASH_BYTES) != 0)
            event_problem(v, id, version, nid, "the hash chain is broken (this record or the one before it was altered)");
        memcpy(prev, rec.hash, CAIRN_HASH_BYTES);
        rec.notification_id = nid;
        if (s->encrypted && s->master) {
            char what[120], desc[80];
            cairn_store_describe(id, version, desc, sizeof desc);
            snprintf(what, sizeof what, "%s (notification %llu)", desc, (unsigned long long)nid);
            check_seal(v, &rec, what);
        }
    }
    mdb_cursor_close(cur);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

/* Notification ids must run 1, 2, 3... with every record named by the index. */
static int walk_log(verifier *v, uint64_t index_entries)
{
    cairn_store *s = v->s;
    MDB_cursor *cur;
    int rc = mdb_cursor_open(s->rtxn, s->sh->log, &cur);
    if (rc) return rc;
    MDB_val k, val;
    uint64_t expect = 1, count = 0;
    for (rc = mdb_cursor_get(cur, &k, &val, MDB_FIRST); rc == 0; rc = mdb_cursor_get(cur, &k, &val, MDB_NEXT)) {
        count++;
        uint64_t id = k.mv_size == 8 ? cairn_get_be64(k.mv_data) : 0;
        if (k.mv_size != 8) problem(v, "the log has a malformed key after notification %llu", (unsigned long long)(expect - 1));
        else if (id != expect)
            problem(v, "notification ids jump from %llu to %llu (a gap)", (unsigned long long)(expect - 1),
                    (unsigned long long)id);
        expect = id + 1;
    }
    mdb_cursor_close(cur);
    if (rc != MDB_NOTFOUND) return rc;
    if (count == index_entries) return 0;
    /* find the first record the index does not name */
    rc = mdb_cursor_open(s->rtxn, s->sh->log, &cur);
    if (rc) return rc;
    for (rc = mdb_cursor_get(cur, &k, &val, MDB_FIRST); rc == 0; rc = mdb_cursor_get(cur, &k, &val, MDB_NEXT)) {
        cairn_record rec;
        uint64_t id = k.mv_size == 8 ? cairn_get_be64(k.mv_data) : 0;
        if (cairn_record_parse(val.mv_data, val.mv_size, &rec) != CAIRN_OK) {
            problem(v, "notification %llu: the record is malformed and the stream index does not name it",
                    (unsigned long long)id);
            continue;
        }
        cairn_record named;
        int got = cairn_store_find_event(s, s->rtxn, rec.stream_id, rec.version, &named, NULL);
        if (got == CAIRN_END || (got == 0 && named.notification_id != id)) {
            char desc[80];
            cairn_store_describe(rec.stream_id, rec.version, desc, sizeof desc);
            problem(v, "notification %llu (%s) is not in the stream index", (unsigned long long)id, desc);
        }
    }
    mdb_cursor_close(cur);
    if (count != index_entries)
        problem(v, "the log holds %llu records but the stream index %llu entries", (unsigned long long)count,
                (unsigned long long)index_entries);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

static int walk_snapshots(verifier *v)
{
    cairn_store *s = v->s;
    MDB_cursor *cur;
    int rc = mdb_cursor_open(s->rtxn, s->sh->snapshots, &cur);
    if (rc) return rc;
    MDB_val k, val;
    for (rc = mdb_cursor_get(cur, &k, &val, MDB_FIRST); rc == 0; rc = mdb_cursor_get(cur, &k, &val, MDB_NEXT)) {
        v->r->snapshots++;
        cairn_record snap, ev;
        if (k.mv_size != CAIRN_STREAM_KEY || cairn_record_parse(val.mv_data, val.mv_size, &snap) != CAIRN_OK) {
            problem(v, "a snapshot record is malformed");
            continue;
        }
        char what[120], desc[80];
        cairn_store_describe(k.mv_data, cairn_get_be64((const uint8_t *)k.mv_data + 16), desc, sizeof desc);
        snprintf(what, sizeof what, "the snapshot of %s", desc);
        if (memcmp(snap.stream_id, k.mv_data, 16) != 0 || snap.version != cairn_get_be64((const uint8_t *)k.mv_data + 16)) {
            problem(v, "%s: it holds another stream or version", what);
            continue;
        }
        int got = cairn_store_find_event(s, s->rtxn, snap.stream_id, snap.version, &ev, NULL);
        if (got) { problem(v, "%s: there is no valid event at its version", what); continue; }
        uint8_t want[CAIRN_HASH_BYTES];
        cairn_record_hash(ev.hash, val.mv_data, val.mv_size, want);
        if (memcmp(want, snap.hash, CAIRN_HASH_BYTES) != 0) problem(v, "%s: it fails its hash check", what);
        else check_seal(v, &snap, what);
    }
    mdb_cursor_close(cur);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

int cairn_store_verify(cairn_store *s, cairn_verify_report *report,
                       int (*progress)(void *ctx, uint64_t done, uint64_t total), void *ctx)
{
    memset(report, 0, sizeof *report);
    s->errmsg[0] = '\0';
    int rc = cairn_store_begin_read(s);
    if (rc) return rc;
    cairn_store_keys_reset(s); /* unwrap every data key again, none from the cache */
    verifier v = { s, report, progress, ctx, 0 };
    MDB_stat st;
    uint64_t entries = 0;
    rc = mdb_stat(s->rtxn, s->sh->log, &st);
    if (rc == 0) {
        v.total = st.ms_entries;
        rc = walk_index(&v, &entries);
    }
    if (rc == 0) rc = walk_log(&v, entries);
    if (rc == 0) rc = walk_snapshots(&v);
    if (rc == 0 && progress) progress(ctx, v.total, v.total);
    cairn_store_read_end(s);
    return rc ? cairn_store_lmdb_failure(s, rc, "verifying") : CAIRN_OK;
}
