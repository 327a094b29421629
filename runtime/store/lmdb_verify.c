/*
 * lmdb_verify.c -- the LMDB walks of `verify` (mapper_verify.c checks what
 * they hand over).
 *
 * One walk of the stream index in key order fetches, for every entry, the
 * log record it names and checks it exists, is well formed and holds that
 * very stream version; data keys sit in the index too. A record matches only
 * its own index key, so index entries name distinct records; with as many
 * entries as records, log and index agree one to one. A walk of the log's
 * keys checks that ids run 1, 2, 3... without gaps. Snapshots come last.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "cairn.h"
#include "lmdb_engine.h"

#define PROGRESS_EVERY 65536

static void problem(const cairn_verify_walk *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void problem(const cairn_verify_walk *w, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    w->problem(w->ctx, msg);
}

static int walk_index(cairn_lmdb *h, const cairn_verify_walk *w, uint64_t total, uint64_t *entries)
{
    MDB_cursor *cur;
    int rc = cairn_lmdb_local_cursor(h, h->sh->streams, &cur);
    if (rc) return rc;
    MDB_val k, iv, lv;
    for (rc = mdb_cursor_get(cur, &k, &iv, MDB_FIRST); rc == 0; rc = mdb_cursor_get(cur, &k, &iv, MDB_NEXT)) {
        if (k.mv_size == 16) { w->key(w->ctx, k.mv_data, (cairn_slice){ iv.mv_data, iv.mv_size }); continue; }
        ++*entries;
        if (*entries % PROGRESS_EVERY == 0 && w->progress(w->ctx, *entries, total)) { rc = EINTR; break; }
        if (k.mv_size != CAIRN_STREAM_KEY || iv.mv_size != 8) {
            problem(w, "the stream index has a malformed entry (entry %llu)", (unsigned long long)*entries);
            w->event(w->ctx, NULL, 0, 0, CAIRN_VERIFY_MALFORMED, NULL, NULL, 0);
            continue;
        }
        const uint8_t *id = k.mv_data;
        uint64_t version = cairn_get_be64(id + 16), nid = cairn_get_be64(iv.mv_data);
        MDB_val lk = { 8, iv.mv_data };
        cairn_record rec;
        int got = mdb_get(h->rtxn, h->sh->log, &lk, &lv);
        if (got && got != MDB_NOTFOUND) { rc = got; break; }
        int found = got == MDB_NOTFOUND ? CAIRN_VERIFY_MISSING
                    : cairn_record_parse(lv.mv_data, lv.mv_size, &rec) != CAIRN_OK ? CAIRN_VERIFY_MALFORMED
                    : memcmp(rec.stream_id, id, 16) != 0 || rec.version != version ? CAIRN_VERIFY_MISPLACED
                    : CAIRN_VERIFY_OK;
        if (found == CAIRN_VERIFY_OK || found == CAIRN_VERIFY_MISPLACED) rec.notification_id = nid;
        int usable = found == CAIRN_VERIFY_OK || found == CAIRN_VERIFY_MISPLACED;
        w->event(w->ctx, id, version, nid, found, usable ? &rec : NULL, usable ? lv.mv_data : NULL,
                 usable ? lv.mv_size : 0);
    }
    cairn_lmdb_local_close(h, cur);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

/* Notification ids must run 1, 2, 3... with every record named by the index. */
static int walk_log(cairn_lmdb *h, const cairn_verify_walk *w, uint64_t index_entries)
{
    MDB_cursor *cur;
    int rc = cairn_lmdb_local_cursor(h, h->sh->log, &cur);
    if (rc) return rc;
    MDB_val k, val;
    uint64_t expect = 1, count = 0;
    for (rc = mdb_cursor_get(cur, &k, &val, MDB_FIRST); rc == 0; rc = mdb_cursor_get(cur, &k, &val, MDB_NEXT)) {
        count++;
        uint64_t id = k.mv_size == 8 ? cairn_get_be64(k.mv_data) : 0;
        if (k.mv_size != 8) problem(w, "the log has a malformed key after notification %llu", (unsigned long long)(expect - 1));
        else if (id != expect)
            problem(w, "notification ids jump from %llu to %llu (a gap)", (unsigned long long)(expect - 1),
                    (unsigned long long)id);
        expect = id + 1;
    }
    cairn_lmdb_local_close(h, cur);
    if (rc != MDB_NOTFOUND) return rc;
    if (count == index_entries) return 0;
    /* find the first record the index does not name */
    rc = cairn_lmdb_local_cursor(h, h->sh->log, &cur);
    if (rc) return rc;
    for (rc = mdb_cursor_get(cur, &k, &val, MDB_FIRST); rc == 0; rc = mdb_cursor_get(cur, &k, &val, MDB_NEXT)) {
        cairn_record rec, named;
        uint64_t id = k.mv_size == 8 ? cairn_get_be64(k.mv_data) : 0;
        if (cairn_record_parse(val.mv_data, val.mv_size, &rec) != CAIRN_OK) {
            problem(w, "notification %llu: the record is malformed and the stream index does not name it",
                    (unsigned long long)id);
            continue;
        }
        int got = cairn_lmdb_find_event(h, h->rtxn, rec.stream_id, rec.version, &named);
        if (got == CAIRN_END || (got == 0 && named.notification_id != id)) {
            char desc[80];
            cairn_record_describe(rec.stream_id, rec.version, desc, sizeof desc);
            problem(w, "notification %llu (%s) is not in the stream index", (unsigned long long)id, desc);
        }
    }
    cairn_lmdb_local_close(h, cur);
    problem(w, "the log holds %llu records but the stream index %llu entries", (unsigned long long)count,
            (unsigned long long)index_entries);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

static int walk_snapshots(cairn_lmdb *h, const cairn_verify_walk *w)
{
    MDB_cursor *cur;
    int rc = cairn_lmdb_local_cursor(h, h->sh->snapshots, &cur);
    if (rc) return rc;
    MDB_val k, val;
    for (rc = mdb_cursor_get(cur, &k, &val, MDB_FIRST); rc == 0; rc = mdb_cursor_get(cur, &k, &val, MDB_NEXT)) {
        cairn_record snap, ev;
        if (k.mv_size != CAIRN_STREAM_KEY || cairn_record_parse(val.mv_data, val.mv_size, &snap) != CAIRN_OK) {
            problem(w, "a snapshot record is malformed");
            w->snapshot(w->ctx, NULL, NULL, 0, NULL);
            continue;
        }
        if (memcmp(snap.stream_id, k.mv_data, 16) != 0 || snap.version != cairn_get_be64((const uint8_t *)k.mv_data + 16)) {
            char desc[80];
            cairn_record_describe(k.mv_data, cairn_get_be64((const uint8_t *)k.mv_data + 16), desc, sizeof desc);
            problem(w, "the snapshot of %s: it holds another stream or version", desc);
            w->snapshot(w->ctx, NULL, NULL, 0, NULL);
            continue;
        }
        int got = cairn_lmdb_find_event(h, h->rtxn, snap.stream_id, snap.version, &ev);
        w->snapshot(w->ctx, &snap, val.mv_data, val.mv_size, got == CAIRN_OK ? ev.hash : NULL);
    }
    cairn_lmdb_local_close(h, cur);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

/* The DCB index (lmdb_dcb.c): every entry to w->dcb_entry with the event it names; idempotency records. */

static int verify_has(void *hctx, char kind, cairn_slice name, uint64_t id)
{
    cairn_lmdb *h = hctx;
    if (name.len > CAIRN_DCB_NAME_MAX) return 0;
    return cairn_lmdb_dcb_has(h->rtxn, h->sh->index, kind, name, id) == 0;
}

/* An idempotency record: its save's events must be in the log. */
static void verify_once(const cairn_verify_walk *w, const MDB_val *k, const MDB_val *v, uint64_t last)
{
    int len = (int)k->mv_size - 2;
    const char *key = (const char *)k->mv_data + 2;
    if (v->mv_size != 16) {
        problem(w, "the idempotency record of '%.*s' is malformed", len, key);
        return;
    }
    uint64_t first = cairn_get_be64(v->mv_data), n = cairn_get_be64((const uint8_t *)v->mv_data + 8);
    if (n && (first == 0 || first > last || n > last - first + 1))
        problem(w, "the idempotency record of '%.*s' names notifications %llu to %llu; the log ends at %llu",
                       len, key, (unsigned long long)first, (unsigned long long)(first + n - 1),
                       (unsigned long long)last);
}

static int walk_dcb(cairn_lmdb *h, const cairn_verify_walk *w)
{
    if (h->sh->no_index) return 0;
    uint64_t last;
    int rc = cairn_lmdb_last_id(h, &last);
    MDB_cursor *cur;
    if (rc || (rc = cairn_lmdb_local_cursor(h, h->sh->index, &cur)) != 0) return rc;
    MDB_val k, v;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0; rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        const uint8_t *key = k.mv_data;
        char kind = k.mv_size >= 2 ? (char)key[0] : 0;
        size_t name_len = k.mv_size >= 2 ? key[1] : 0;
        if (kind == 'o' && k.mv_size == 2 + name_len) {
            verify_once(w, &k, &v, last);
            continue;
        }
        if ((kind != 'a' && kind != 'y' && kind != 'g') || k.mv_size != 2 + name_len + 8 ||
            (kind == 'a' && name_len != 0)) {
            problem(w, "the DCB index has a malformed entry (%zu bytes, kind 0x%02x)", k.mv_size,
                           (unsigned)(uint8_t)kind);
            continue;
        }
        uint64_t id = cairn_get_be64(key + 2 + name_len);
        uint8_t idkey[8];
        cairn_put_be64(idkey, id);
        MDB_val lk = { 8, idkey }, lv;
        cairn_record rec;
        int got = mdb_get(h->rtxn, h->sh->log, &lk, &lv);
        if (got && got != MDB_NOTFOUND) {
            rc = got;
            break;
        }
        if (got == 0) cairn_lmdb_probe(&lv);
        int usable = got == 0 && cairn_record_parse(lv.mv_data, lv.mv_size, &rec) == CAIRN_OK;
        if (usable) rec.notification_id = id;
        cairn_slice name = { (const char *)key + 2, name_len };
        cairn_slice type = { kind == 'g' ? v.mv_data : NULL, kind == 'g' ? v.mv_size : 0 };
        w->dcb_entry(w->ctx, kind, name, id, type, usable ? &rec : NULL, verify_has, h);
    }
    cairn_lmdb_local_close(h, cur);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

/* A store that opens at an older commit than one made: LMDB picks the newer
 * of its two meta pages, so one damaged meta page silently rolls it back to
 * the commit before. The wake file records each commit after it (wake.c), so
 * the newest commit LMDB knows of, read after it, is at least as new -- unless
 * the data file lost commits. (With sync=none a power loss may lose commits
 * too; that is what this reports then.) */
static void check_rollback(cairn_lmdb *h, const cairn_verify_walk *w, uint64_t recorded, uint64_t recorded_max)
{
    MDB_envinfo info;
    if (mdb_env_info(h->sh->env, &info) != 0 || info.me_last_txnid >= recorded) return;
    uint64_t max_id = 0;
    if (cairn_lmdb_last_id(h, &max_id)) max_id = 0;
    char lost[96] = "";
    if (recorded_max == max_id + 1)
        snprintf(lost, sizeof lost, " (notification id %llu)", (unsigned long long)recorded_max);
    else if (recorded_max > max_id)
        snprintf(lost, sizeof lost, " (notification ids %llu to %llu)", (unsigned long long)max_id + 1,
                 (unsigned long long)recorded_max);
    problem(w, "store rolled back: it opens at commit %llu, but commit %llu was made (recorded in %s/wake); "
            "the commits after %llu are gone%s -- a damaged meta page makes LMDB open the commit before: restore "
            "the store from a copy", (unsigned long long)info.me_last_txnid, (unsigned long long)recorded,
            h->sh->path, (unsigned long long)info.me_last_txnid, lost);
}

int cairn_lmdb_verify(cairn_engine *e, const cairn_verify_walk *w)
{
    cairn_lmdb *h = LMDB(e);
    uint64_t recorded = 0, recorded_max = 0;
    int has_record = cairn_wake_last_commit(h->sh->wake, &recorded, &recorded_max); /* before the read */
    int rc = cairn_lmdb_begin_read(h);
    if (rc) return rc;
    if (has_record) check_rollback(h, w, recorded, recorded_max);
    MDB_stat st;
    uint64_t entries = 0, total = 0;
    rc = mdb_stat(h->rtxn, h->sh->log, &st);
    if (rc == 0) {
        total = st.ms_entries;
        rc = walk_index(h, w, total, &entries);
    }
    if (rc == 0) rc = walk_log(h, w, entries);
    if (rc == 0) rc = walk_snapshots(h, w);
    if (rc == 0) rc = walk_dcb(h, w);
    if (rc == 0) rc = cairn_lmdb_read_still_valid(h, "verifying");
    if (rc == 0) w->progress(w->ctx, total, total);
    cairn_lmdb_read_end(e);
    return cairn_lmdb_failure(h, rc, "verifying");
}
