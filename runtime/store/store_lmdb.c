/*
 * store_lmdb.c -- the recorder on LMDB: environments, transactions, the log
 * and the stream index.
 *
 * Layout (named databases in one environment per store directory):
 *   meta      "format" -> u32 big-endian store format
 *   log       notification id (u64 big-endian) -> record (record.h); each event's bytes live here only
 *   streams   stream id (16 bytes) || version (u64 big-endian) -> notification id (u64 big-endian)
 *   tracking  application name -> last notification id processed from it (u64 big-endian)
 *             and (encrypted stores) stream id (16 bytes) -> sealed data key (store_seal.c)
 *   snapshots stream id || version -> record (record.h) of the aggregate's state
 *   views     view name \0 key -> view value (store_views.c)
 *
 * Handles on the same directory share a reference-counted environment. Each
 * handle keeps one read transaction that is reset between reads and renewed
 * for the next; store_txn.c has the transactions and group commit.
 */
#include <dirent.h>
#include <errno.h>
#include <lmdb.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>


#include "cairn.h"
#include "store_internal.h"

#define DEFAULT_MAP_SIZE ((size_t)256 << 20)
#define MEMORY_MAP_SIZE ((size_t)64 << 20)

static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static cairn_env *registry;

/* LMDB reports a short write as EIO (mdb_page_flush): when the store's
 * filesystem has (next to) nothing left, that was a full disk. */
static int disk_is_full(cairn_env *sh)
{
    int fd;
    struct statvfs fs;
    if (mdb_env_get_fd(sh->env, &fd) != 0 || fstatvfs(fd, &fs) != 0) return 0;
    unsigned long long blocks = geteuid() == 0 ? fs.f_bfree : fs.f_bavail;
    return blocks * fs.f_frsize < ((unsigned long long)1 << 20);
}

int cairn_store_lmdb_failure(cairn_store *s, int rc, const char *doing)
{
    const char *path = s->sh->is_private ? "memory:" : s->sh->path;
    if (rc == EIO && disk_is_full(s->sh)) rc = ENOSPC;
    if (rc == ENOSPC)
        return cairn_store_fail(s, rc, "disk full while %s in %s", doing, path);
    if (rc == MDB_CORRUPTED || rc == MDB_PAGE_NOTFOUND)
        return cairn_store_fail(s, CAIRN_CORRUPT, "store %s is corrupt (%s) while %s", path, mdb_strerror(rc),
                                doing);
    return cairn_store_fail(s, rc, "store %s: %s while %s", path, mdb_strerror(rc), doing);
}

int cairn_store_seek_at_or_below(MDB_cursor *cur, const uint8_t id[16], uint64_t version, MDB_val *k, MDB_val *v)
{
    uint8_t key[CAIRN_STREAM_KEY];
    cairn_stream_key(key, id, version);
    *k = (MDB_val){ CAIRN_STREAM_KEY, key };
    int rc = mdb_cursor_get(cur, k, v, MDB_SET_RANGE);
    if (rc == MDB_NOTFOUND) rc = mdb_cursor_get(cur, k, v, MDB_LAST);
    else if (rc == 0 && (k->mv_size != CAIRN_STREAM_KEY || memcmp(k->mv_data, key, CAIRN_STREAM_KEY) != 0))
        rc = mdb_cursor_get(cur, k, v, MDB_PREV);
    if (rc) return rc;
    /* another stream's entry, or a data key (16-byte key) before this stream's */
    if (k->mv_size != CAIRN_STREAM_KEY || memcmp(k->mv_data, id, 16) != 0) return MDB_NOTFOUND;
    return 0;
}

/* The stream's last recorded version, if any, and its index entry (valid
 * until the transaction's next write). */
static int last_version(MDB_cursor *cur, const uint8_t id[16], int *found, uint64_t *last, MDB_val *entry)
{
    MDB_val k;
    int rc = cairn_store_seek_at_or_below(cur, id, UINT64_MAX, &k, entry);
    *found = rc == 0;
    if (rc == MDB_NOTFOUND) return 0;
    if (rc) return rc;
    *last = cairn_get_be64((const uint8_t *)k.mv_data + 16);
    return 0;
}

static int tracking_get(cairn_store *s, MDB_txn *txn, const char *app, size_t len, uint64_t *out)
{
    MDB_val k = { len, (void *)app }, v;
    *out = 0;
    int rc = mdb_get(txn, s->sh->tracking, &k, &v);
    if (rc == MDB_NOTFOUND) return 0;
    if (rc) return rc;
    if (v.mv_size != 8)
        return cairn_store_fail(s, CAIRN_CORRUPT, "the tracking record of %.*s in %s is malformed", (int)len, app,
                                s->sh->path);
    *out = cairn_get_be64(v.mv_data);
    return 0;
}

/* Record how far a follower got; refuses to go back or repeat. */
static int tracking_put(cairn_store *s, MDB_txn *txn, const cairn_tracking *t)
{
    uint64_t last;
    int rc = tracking_get(s, txn, t->app, t->app_len, &last);
    if (rc) return rc;
    if (t->id <= last)
        return cairn_store_fail(s, CAIRN_CONFLICT,
                                "notification %llu of %.*s was already processed (tracked up to %llu)",
                                (unsigned long long)t->id, (int)t->app_len, t->app, (unsigned long long)last);
    uint8_t idv[8];
    cairn_put_be64(idv, t->id);
    MDB_val k = { t->app_len, (void *)t->app }, v = { 8, idv };
    return mdb_put(txn, s->sh->tracking, &k, &v, 0);
}

/* The event an index entry (value v) names, checked to be that event. */
static int event_at(cairn_store *s, MDB_txn *txn, const uint8_t id[16], uint64_t version, const MDB_val *iv,
                    cairn_record *out)
{
    char what[80];
    if (iv->mv_size != 8) {
        cairn_store_describe(id, version, what, sizeof what);
        return cairn_store_fail(s, CAIRN_CORRUPT, "the stream index entry of %s in %s is malformed", what,
                                s->sh->path);
    }
    uint64_t nid = cairn_get_be64(iv->mv_data);
    MDB_val k = { 8, iv->mv_data }, v;
    int rc = mdb_get(txn, s->sh->log, &k, &v);
    if (rc == MDB_NOTFOUND) {
        cairn_store_describe(id, version, what, sizeof what);
        return cairn_store_fail(s, CAIRN_CORRUPT, "the stream index names notification %llu for %s, which is missing",
                                (unsigned long long)nid, what);
    }
    if (rc) return rc;
    if (cairn_record_parse(v.mv_data, v.mv_size, out) != CAIRN_OK) {
        cairn_store_describe(id, version, what, sizeof what);
        return cairn_store_fail(s, CAIRN_CORRUPT, "notification %llu (%s) in %s is not a valid record",
                                (unsigned long long)nid, what, s->sh->path);
    }
    if (memcmp(out->stream_id, id, 16) != 0 || out->version != version) {
        cairn_store_describe(id, version, what, sizeof what);
        return cairn_store_fail(s, CAIRN_CORRUPT,
                                "the stream index names notification %llu for %s, but it holds another event "
                                "(records were moved or swapped)", (unsigned long long)nid, what);
    }
    out->notification_id = nid;
    return CAIRN_OK;
}

int cairn_store_find_event(cairn_store *s, MDB_txn *txn, const uint8_t id[16], uint64_t version,
                           cairn_record *out, uint64_t *notification_id)
{
    uint8_t key[CAIRN_STREAM_KEY];
    cairn_stream_key(key, id, version);
    MDB_val k = { CAIRN_STREAM_KEY, key }, v;
    int rc = mdb_get(txn, s->sh->streams, &k, &v);
    if (rc == MDB_NOTFOUND) return CAIRN_END;
    if (rc == 0) rc = event_at(s, txn, id, version, &v, out);
    if (rc == 0 && notification_id) *notification_id = out->notification_id;
    return rc;
}

typedef struct {
    const cairn_batch *b;
    uint64_t *first_id;
} append_ctx;

/* One attempt at recording a batch; cairn_store_write commits or aborts. */
static int append_in(cairn_store *s, MDB_txn *txn, void *ctxp)
{
    append_ctx *ctx = ctxp;
    const cairn_record *ev = ctx->b->events;
    size_t n = ctx->b->n;
    cairn_env *sh = s->sh;
    MDB_cursor *scur = NULL, *lcur = NULL;
    int rc = ctx->b->tracking ? tracking_put(s, txn, ctx->b->tracking) : 0;
    if (rc) return rc;
    rc = mdb_cursor_open(txn, sh->streams, &scur);
    if (rc == 0) rc = mdb_cursor_open(txn, sh->log, &lcur);
    if (rc) goto done;

    MDB_val k, v;
    uint64_t next_id = 1;
    rc = mdb_cursor_get(lcur, &k, &v, MDB_LAST);
    if (rc == 0 && k.mv_size == 8) next_id = cairn_get_be64(k.mv_data) + 1;
    else if (rc != MDB_NOTFOUND && rc != 0) goto done;
    rc = 0;
    *ctx->first_id = next_id;

    uint8_t prev[CAIRN_HASH_BYTES];
    for (size_t i = 0; i < n; i++) {
        int starts_run = i == 0 || memcmp(ev[i].stream_id, ev[i - 1].stream_id, 16) != 0;
        if (starts_run) {
            int found;
            uint64_t last = 0;
            MDB_val entry;
            rc = last_version(scur, ev[i].stream_id, &found, &last, &entry);
            if (rc) goto done;
            /* this transaction sees its own writes, so a stream repeated
             * later in the batch is checked against its earlier run */
            if (found && ev[i].version != last + 1) {
                rc = cairn_store_conflict(s, ev[i].stream_id, ev[i].version, 1, last);
                goto done;
            }
            /* the new events chain from the last one's hash (zeros: a new stream) */
            memset(prev, 0, sizeof prev);
            if (found) {
                cairn_record before;
                rc = event_at(s, txn, ev[i].stream_id, last, &entry, &before);
                if (rc) goto done;
                memcpy(prev, before.hash, sizeof prev);
            }
        }
        uint8_t idkey[8], skey[CAIRN_STREAM_KEY];
        cairn_put_be64(idkey, next_id);
        k = (MDB_val){ 8, idkey };
        rc = cairn_store_put_record(s, txn, lcur, &k, MDB_APPEND, &ev[i], prev, prev);
        if (rc) goto done;
        if (ctx->b->hashes) memcpy(ctx->b->hashes + i * CAIRN_HASH_BYTES, prev, CAIRN_HASH_BYTES);
        cairn_stream_key(skey, ev[i].stream_id, ev[i].version);
        k = (MDB_val){ CAIRN_STREAM_KEY, skey };
        v = (MDB_val){ 8, idkey };
        rc = mdb_cursor_put(scur, &k, &v, MDB_NOOVERWRITE);
        if (rc == MDB_KEYEXIST) {
            rc = cairn_store_conflict(s, ev[i].stream_id, ev[i].version, 0, 0);
            goto done;
        }
        if (rc) goto done;
        next_id++;
    }
    if (ctx->b->nsnapshots) rc = cairn_store_put_snapshots(s, txn, ctx->b->snapshots, ctx->b->nsnapshots);
done:
    if (scur) mdb_cursor_close(scur);
    if (lcur) mdb_cursor_close(lcur);
    return rc;
}

int cairn_store_append(cairn_store *s, const cairn_batch *b, uint64_t *first_id)
{
    s->errmsg[0] = '\0';
    *first_id = 0;
    if (b->n == 0 && !b->tracking && b->nsnapshots == 0) return cairn_store_fail(s, CAIRN_INVALID, "nothing to append");
    int rc = cairn_store_check_batch(s, b);
    if (rc != CAIRN_OK) return rc;
    append_ctx ctx = { b, first_id };
    return cairn_store_write(s, "saving", append_in, &ctx);
}

int cairn_store_tracking_max(cairn_store *s, const char *app, size_t app_len, uint64_t *out)
{
    s->errmsg[0] = '\0';
    int rc = cairn_store_begin_read(s);
    if (rc) return rc;
    rc = tracking_get(s, s->rtxn, app, app_len, out);
    cairn_store_read_end(s);
    if (CAIRN_IS_OWN_CODE(rc)) return rc;
    return rc ? cairn_store_lmdb_failure(s, rc, "reading a tracking record") : CAIRN_OK;
}

int cairn_store_max_id(cairn_store *s, uint64_t *out)
{
    int rc = cairn_store_begin_read(s);
    if (rc) return rc;
    MDB_cursor *cur;
    MDB_val k, v;
    rc = mdb_cursor_open(s->rtxn, s->sh->log, &cur);
    if (rc == 0) {
        rc = mdb_cursor_get(cur, &k, &v, MDB_LAST);
        mdb_cursor_close(cur);
    }
    *out = 0;
    if (rc == 0 && k.mv_size == 8) *out = cairn_get_be64(k.mv_data);
    cairn_store_read_end(s);
    if (rc && rc != MDB_NOTFOUND) return cairn_store_lmdb_failure(s, rc, "reading the log");
    return CAIRN_OK;
}

static int open_read_cursor(cairn_store *s, MDB_dbi dbi)
{
    int rc = cairn_store_begin_read(s);
    if (rc) return rc;
    rc = mdb_cursor_open(s->rtxn, dbi, &s->rcur);
    if (rc) {
        s->rcur = NULL;
        cairn_store_read_end(s);
        return cairn_store_lmdb_failure(s, rc, "starting a read");
    }
    s->started = 0;
    return CAIRN_OK;
}

int cairn_store_read_stream(cairn_store *s, const uint8_t id[16], const cairn_stream_query *q)
{
    int rc = open_read_cursor(s, s->sh->streams);
    if (rc) return rc;
    s->reading = READ_STREAM;
    memcpy(s->stream_id, id, 16);
    s->has_gt = q->has_gt;
    s->gt = q->gt;
    s->lte = q->has_lte ? q->lte : UINT64_MAX;
    s->descending = q->descending;
    s->remaining = q->limit ? q->limit : SIZE_MAX;
    s->have_prev = 0;
    if (q->has_gt && q->gt == UINT64_MAX) s->remaining = 0;
    return CAIRN_OK;
}

int cairn_store_read_log(cairn_store *s, const cairn_log_query *q)
{
    int rc = open_read_cursor(s, s->sh->log);
    if (rc) return rc;
    s->reading = READ_LOG;
    s->lq = *q;
    s->remaining = q->limit ? q->limit : SIZE_MAX;
    return CAIRN_OK;
}

static int parse_value(cairn_store *s, uint64_t id, const MDB_val *v, cairn_record *out)
{
    int rc = cairn_record_parse(v->mv_data, v->mv_size, out);
    if (rc) return cairn_store_fail(s, rc, "notification %llu in %s is not a valid record", (unsigned long long)id,
                                    s->sh->path);
    out->notification_id = id;
    return CAIRN_OK;
}

/* Check a stream record against the previous one read (ascending reads;
 * hashes are not secret, so plain memcmp):
 * the first one read is checked against its predecessor in the store. */
static int check_chain(cairn_store *s, cairn_record *rec, size_t len)
{
    int rc;
    if (!s->have_prev) {
        if (rec->version > 0) {
            cairn_record before;
            rc = cairn_store_find_event(s, s->rtxn, rec->stream_id, rec->version - 1, &before, NULL);
            if (rc == CAIRN_END) memset(s->prev_hash, 0, CAIRN_HASH_BYTES);
            else if (rc) return rc;
            else memcpy(s->prev_hash, before.hash, CAIRN_HASH_BYTES);
        } else {
            memset(s->prev_hash, 0, CAIRN_HASH_BYTES);
        }
        s->have_prev = 1;
    }
    uint8_t want[CAIRN_HASH_BYTES];
    cairn_record_hash(s->prev_hash, (const uint8_t *)rec->topic - CAIRN_RECORD_FIXED, len, want);
    if (memcmp(want, rec->hash, CAIRN_HASH_BYTES) != 0) {
        char what[80];
        cairn_store_describe(rec->stream_id, rec->version, what, sizeof what);
        return cairn_store_fail(s, CAIRN_CORRUPT,
                                "%s (notification %llu) in %s breaks the hash chain: the record or the one before "
                                "it was altered", what, (unsigned long long)rec->notification_id, s->sh->path);
    }
    memcpy(s->prev_hash, rec->hash, CAIRN_HASH_BYTES);
    return CAIRN_OK;
}

/* Position the stream cursor on the next index entry within bounds. */
static int stream_step(cairn_store *s, MDB_val *k, MDB_val *v)
{
    int rc;
    if (!s->started) {
        uint8_t key[CAIRN_STREAM_KEY];
        s->started = 1;
        if (s->descending) {
            rc = cairn_store_seek_at_or_below(s->rcur, s->stream_id, s->lte, k, v);
        } else {
            cairn_stream_key(key, s->stream_id, s->has_gt ? s->gt + 1 : 0);
            *k = (MDB_val){ CAIRN_STREAM_KEY, key };
            rc = mdb_cursor_get(s->rcur, k, v, MDB_SET_RANGE);
        }
    } else {
        rc = mdb_cursor_get(s->rcur, k, v, s->descending ? MDB_PREV : MDB_NEXT);
    }
    if (rc) return rc;
    if (k->mv_size != CAIRN_STREAM_KEY || memcmp(k->mv_data, s->stream_id, 16) != 0) return MDB_NOTFOUND;
    uint64_t version = cairn_get_be64((const uint8_t *)k->mv_data + 16);
    if (version > s->lte || (s->has_gt && version <= s->gt)) return MDB_NOTFOUND;
    return 0;
}

int cairn_store_next(cairn_store *s, cairn_record *out)
{
    if (s->reading == READ_NONE || s->remaining == 0) return CAIRN_END;
    MDB_val k, v;
    int rc;
    if (s->reading == READ_STREAM) {
        rc = stream_step(s, &k, &v);
        if (rc == MDB_NOTFOUND) return CAIRN_END;
        if (rc) return cairn_store_lmdb_failure(s, rc, "reading a stream");
        uint64_t version = cairn_get_be64((const uint8_t *)k.mv_data + 16);
        rc = event_at(s, s->rtxn, s->stream_id, version, &v, out);
        if (rc) return CAIRN_IS_OWN_CODE(rc) ? rc : cairn_store_lmdb_failure(s, rc, "reading a stream");
        s->remaining--;
        if (!s->descending) {
            size_t len = (size_t)(out->payload - (const uint8_t *)out->topic) + CAIRN_RECORD_FIXED + out->payload_len;
            rc = check_chain(s, out, len);
            if (rc) return rc;
        }
        return cairn_store_open_payload(s, s->rtxn, out);
    }
    for (;;) {
        if (!s->started) {
            uint8_t key[8];
            cairn_put_be64(key, s->lq.start);
            k = (MDB_val){ 8, key };
            s->started = 1;
            rc = mdb_cursor_get(s->rcur, &k, &v, MDB_SET_RANGE);
        } else {
            rc = mdb_cursor_get(s->rcur, &k, &v, MDB_NEXT);
        }
        if (rc == MDB_NOTFOUND) return CAIRN_END;
        if (rc) return cairn_store_lmdb_failure(s, rc, "reading the log");
        if (k.mv_size != 8) return cairn_store_fail(s, CAIRN_CORRUPT, "log key in %s is malformed", s->sh->path);
        uint64_t id = cairn_get_be64(k.mv_data);
        if (s->lq.stop && id > s->lq.stop) return CAIRN_END;
        rc = parse_value(s, id, &v, out);
        if (rc) return rc;
        if (cairn_store_topic_matches(&s->lq, out)) {
            s->remaining--;
            rc = cairn_store_open_payload(s, s->rtxn, out);
            if (rc == CAIRN_NOTFOUND && out->forgotten) {
                /* forgotten: the notification keeps its ids and topic */
                s->errmsg[0] = '\0';
                out->payload = NULL;
                out->payload_len = 0;
                return CAIRN_OK;
            }
            return rc;
        }
    }
}

int cairn_store_stat(cairn_store *s, cairn_store_stats *out)
{
    memset(out, 0, sizeof *out);
    out->engine = s->sh->is_private ? "memory" : "lmdb";
    out->format = CAIRN_STORE_FORMAT;
    int rc = cairn_store_begin_read(s);
    if (rc) return rc;
    MDB_stat st;
    MDB_envinfo info;
    MDB_cursor *cur = NULL;
    rc = mdb_stat(s->rtxn, s->sh->log, &st);
    if (rc) goto done;
    out->events = st.ms_entries;
    rc = mdb_env_info(s->sh->env, &info);
    if (rc) goto done;
    out->map_size = info.me_mapsize;
    out->used_bytes = (uint64_t)(info.me_last_pgno + 1) * st.ms_psize;
    /* count streams by jumping from each stream to the next */
    rc = mdb_cursor_open(s->rtxn, s->sh->streams, &cur);
    if (rc) goto done;
    MDB_val k, v;
    rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
    while (rc == 0) {
        if (k.mv_size == 16) { rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT); continue; } /* a data key */
        out->streams++;
        uint8_t key[CAIRN_STREAM_KEY];
        if (k.mv_size != CAIRN_STREAM_KEY) { rc = MDB_CORRUPTED; break; }
        cairn_stream_key(key, k.mv_data, UINT64_MAX);
        k = (MDB_val){ CAIRN_STREAM_KEY, key };
        rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
        if (rc == 0 && memcmp(k.mv_data, key, CAIRN_STREAM_KEY) == 0) rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    }
    if (rc == MDB_NOTFOUND) rc = 0;
    if (rc == 0) {
        MDB_cursor *lc;
        rc = mdb_cursor_open(s->rtxn, s->sh->log, &lc);
        if (rc == 0) {
            rc = mdb_cursor_get(lc, &k, &v, MDB_LAST);
            if (rc == 0 && k.mv_size == 8) out->max_notification_id = cairn_get_be64(k.mv_data);
            if (rc == MDB_NOTFOUND) rc = 0;
            mdb_cursor_close(lc);
        }
    }
done:
    if (cur) mdb_cursor_close(cur);
    cairn_store_read_end(s);
    return rc ? cairn_store_lmdb_failure(s, rc, "reading statistics") : CAIRN_OK;
}

/* mkdir -p, leaving errno set on failure. */
static int make_dirs(const char *path)
{
    char buf[PATH_MAX];
    size_t len = strlen(path);
    if (len == 0 || len >= sizeof buf) { errno = ENAMETOOLONG; return -1; }
    memcpy(buf, path, len + 1);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/') continue;
        *p = '\0';
        if (mkdir(buf, 0755) != 0 && errno != EEXIST) return -1;
        *p = '/';
    }
    if (mkdir(buf, 0755) != 0 && errno != EEXIST) return -1;
    struct stat st;
    if (stat(buf, &st) != 0) return -1;
    if (!S_ISDIR(st.st_mode)) { errno = ENOTDIR; return -1; }
    return 0;
}

/* Open the named databases, creating them in a new store, and check the format. */
static int init_databases(cairn_env *sh, char *err, size_t errlen)
{
    MDB_txn *txn;
    int rc = mdb_txn_begin(sh->env, NULL, 0, &txn);
    if (rc) {
        snprintf(err, errlen, "cannot open store %s: %s", sh->path, mdb_strerror(rc));
        return rc;
    }
    rc = mdb_dbi_open(txn, "meta", 0, &sh->meta);
    if (rc == MDB_NOTFOUND) {
        /* a new store, unless the environment already holds someone else's data */
        MDB_dbi main;
        MDB_stat st;
        rc = mdb_dbi_open(txn, NULL, 0, &main);
        if (rc == 0) rc = mdb_stat(txn, main, &st);
        if (rc == 0 && st.ms_entries > 0) {
            mdb_txn_abort(txn);
            snprintf(err, errlen, "%s is an LMDB environment but not a cairn store", sh->path);
            return CAIRN_CONFIG;
        }
        if (rc == 0) rc = mdb_dbi_open(txn, "meta", MDB_CREATE, &sh->meta);
        if (rc == 0) {
            uint8_t fmt[4] = { 0, 0, 0, CAIRN_STORE_FORMAT };
            MDB_val k = { 6, "format" }, v = { 4, fmt };
            rc = mdb_put(txn, sh->meta, &k, &v, 0);
        }
    } else if (rc == 0) {
        MDB_val k = { 6, "format" }, v;
        rc = mdb_get(txn, sh->meta, &k, &v);
        if (rc == 0 && v.mv_size == 4) {
            const uint8_t *p = v.mv_data;
            unsigned fmt = (unsigned)p[0] << 24 | (unsigned)p[1] << 16 | (unsigned)p[2] << 8 | p[3];
            if (fmt != CAIRN_STORE_FORMAT) {
                mdb_txn_abort(txn);
                snprintf(err, errlen, "store %s has format %u; this cairn reads format %d%s", sh->path, fmt,
                         CAIRN_STORE_FORMAT, fmt > CAIRN_STORE_FORMAT ? " (it was written by a newer cairn)" : "");
                return CAIRN_CONFIG;
            }
        } else if (rc == 0 || rc == MDB_NOTFOUND) {
            mdb_txn_abort(txn);
            snprintf(err, errlen, "store %s has no valid format record", sh->path);
            return CAIRN_CONFIG;
        }
    } else if (rc == MDB_INCOMPATIBLE) {
        mdb_txn_abort(txn);
        snprintf(err, errlen, "%s is an LMDB environment but not a cairn store", sh->path);
        return CAIRN_CONFIG;
    }
    if (rc == 0) rc = mdb_dbi_open(txn, "log", MDB_CREATE, &sh->log);
    if (rc == 0) rc = mdb_dbi_open(txn, "streams", MDB_CREATE, &sh->streams);
    if (rc == 0) rc = mdb_dbi_open(txn, "tracking", MDB_CREATE, &sh->tracking);
    if (rc == 0) rc = mdb_dbi_open(txn, "snapshots", MDB_CREATE, &sh->snapshots);
    if (rc == 0) rc = mdb_dbi_open(txn, "views", MDB_CREATE, &sh->views);
    if (rc) {
        mdb_txn_abort(txn);
        snprintf(err, errlen, "cannot open store %s: %s", sh->path, mdb_strerror(rc));
        return rc == MDB_INCOMPATIBLE ? CAIRN_CONFIG : rc;
    }
    rc = mdb_txn_commit(txn);
    if (rc) snprintf(err, errlen, "cannot open store %s: %s", sh->path, mdb_strerror(rc));
    return rc;
}

/* A fresh directory for a memory: store, under $TMPDIR or /tmp. */
static int private_dir(char *out, size_t len, char *err, size_t errlen)
{
    const char *tmp = getenv("TMPDIR");
    if (!tmp || !*tmp) tmp = "/tmp";
    if ((size_t)snprintf(out, len, "%s/cairn-memory-XXXXXX", tmp) >= len || !mkdtemp(out)) {
        int e = errno ? errno : ENAMETOOLONG;
        snprintf(err, errlen, "cannot make a memory: store in %s: %s", tmp, strerror(e));
        return e;
    }
    return 0;
}

/* Remove a memory: store's files once LMDB has them open. */
static void unlink_private(const char *dir)
{
    char file[PATH_MAX + 16];
    if ((size_t)snprintf(file, sizeof file, "%s/data.mdb", dir) < sizeof file) unlink(file);
    if ((size_t)snprintf(file, sizeof file, "%s/lock.mdb", dir) < sizeof file) unlink(file);
    rmdir(dir);
}

/* A data file shorter than its last committed page (truncated by a copy, a
 * full disk or a crash with sync=none) would make LMDB read past its end
 * through the map, which kills the process with SIGBUS: refuse it here. */
static int check_file_size(cairn_env *sh, char *err, size_t errlen)
{
    MDB_envinfo info;
    MDB_stat st;
    int fd;
    struct stat fs;
    if (mdb_env_info(sh->env, &info) || mdb_env_stat(sh->env, &st) || mdb_env_get_fd(sh->env, &fd) ||
        fstat(fd, &fs) != 0)
        return 0; /* nothing to compare with: let LMDB report what it finds */
    unsigned long long need = ((unsigned long long)info.me_last_pgno + 1) * st.ms_psize;
    if ((unsigned long long)fs.st_size >= need) return 0;
    snprintf(err, errlen, "store %s is damaged: its data file is truncated (%llu bytes, the last commit needs %llu)",
             sh->path, (unsigned long long)fs.st_size, need);
    return CAIRN_CORRUPT;
}

static int open_env(const char *path, const cairn_store_options *opt, cairn_env **out, char *err, size_t errlen)
{
    cairn_env *sh = calloc(1, sizeof *sh);
    if (!sh || cairn_env_locks_init(sh) != 0) {
        free(sh);
        snprintf(err, errlen, "out of memory opening %s", path ? path : "memory:");
        return ENOMEM;
    }
    sh->queue_tail = &sh->queue;
    char dir[PATH_MAX], lock[PATH_MAX + 16];
    int rc = 0, had_lock = 1;
    if (!path) {
        rc = private_dir(dir, sizeof dir, err, errlen);
        if (rc) { cairn_env_locks_destroy(sh); free(sh); return rc; }
        sh->is_private = 1;
        path = dir;
    }
    sh->path = strdup(path);
    rc = sh->path ? mdb_env_create(&sh->env) : ENOMEM;
    if (rc == 0) rc = mdb_env_set_maxdbs(sh->env, 16);
    size_t map = opt->map_size ? opt->map_size : sh->is_private ? MEMORY_MAP_SIZE : DEFAULT_MAP_SIZE;
    if (rc == 0) rc = mdb_env_set_mapsize(sh->env, map);
    if (rc) {
        snprintf(err, errlen, "cannot open store %s: %s", path, mdb_strerror(rc));
        goto fail;
    }
    /* a refused directory keeps no lock file of ours */
    struct stat ls;
    if (!sh->is_private && (size_t)snprintf(lock, sizeof lock, "%s/lock.mdb", path) < sizeof lock)
        had_lock = stat(lock, &ls) == 0;
    /* MDB_NOTLS: read transactions belong to handles, not threads */
    sh->nosync = opt->sync == CAIRN_SYNC_NONE || sh->is_private;
    unsigned flags = MDB_NOTLS | (sh->nosync ? MDB_NOSYNC : 0);
    rc = mdb_env_open(sh->env, path, flags, 0644);
    if (rc) {
        if (rc == MDB_INVALID || rc == MDB_VERSION_MISMATCH || rc == EISDIR) {
            snprintf(err, errlen, "%s does not hold an LMDB store (%s)", path, mdb_strerror(rc));
            rc = CAIRN_CONFIG;
        } else {
            snprintf(err, errlen, "cannot open store %s: %s", path, mdb_strerror(rc));
        }
        goto fail;
    }
    if (sh->is_private) unlink_private(path);
    else if ((rc = check_file_size(sh, err, errlen)) != 0) goto fail;
    rc = init_databases(sh, err, errlen);
    if (rc) goto fail;
    sh->wake = cairn_wake_open(sh->is_private ? NULL : path); /* NULL: followers poll */
    *out = sh;
    return CAIRN_OK;
fail:
    if (sh->env) mdb_env_close(sh->env);
    if (sh->is_private) unlink_private(path);
    else if (!had_lock && (rc == CAIRN_CONFIG || rc == CAIRN_CORRUPT)) unlink(lock);
    cairn_env_locks_destroy(sh);
    free(sh->path);
    free(sh);
    return rc;
}

static void env_release(cairn_env *sh)
{
    if (--sh->refs > 0) return;
    for (cairn_env **e = &registry; *e; e = &(*e)->next)
        if (*e == sh) { *e = sh->next; break; }
    mdb_env_close(sh->env);
    cairn_wake_close(sh->wake);
    cairn_env_locks_destroy(sh);
    free(sh->path);
    free(sh);
}

void cairn_store_close(cairn_store *s)
{
    if (!s) return;
    cairn_env *sh = s->sh;
    cairn_store_read_end(s);
    if (s->rtxn) mdb_txn_abort(s->rtxn);
    cairn_store_cipher_close(s);
    pthread_mutex_lock(&registry_lock);
    env_release(sh);
    pthread_mutex_unlock(&registry_lock);
    free(s->uri);
    free(s);
}

/* Does a directory without a store hold files of its own (a typo'd path, a
 * project folder)? Then it is not silently made a store. 1 yes, 0 no. */
static int holds_other_files(const char *path, char *err, size_t errlen)
{
    char data[PATH_MAX];
    struct stat st;
    if ((size_t)snprintf(data, sizeof data, "%s/data.mdb", path) >= sizeof data || stat(data, &st) == 0) return 0;
    DIR *dir = opendir(path);
    if (!dir) return 0; /* missing: it is made below */
    const char *other = NULL;
    struct dirent *e;
    while (!other && (e = readdir(dir)) != NULL) {
        const char *n = e->d_name;
        if (strcmp(n, ".") && strcmp(n, "..") && strcmp(n, "lock.mdb") && strcmp(n, "wake")) other = n;
    }
    if (other)
        snprintf(err, errlen, "%s holds other files (%s) and no store: name a new or empty directory for a store",
                 path, other);
    closedir(dir);
    return other != NULL;
}

/* Find or open the shared environment of a directory. */
static int find_env(const char *path, const cairn_store_options *opt, cairn_env **out, char *err, size_t errlen)
{
    if (opt->must_exist) {
        char data[PATH_MAX];
        struct stat st;
        if ((size_t)snprintf(data, sizeof data, "%s/data.mdb", path) >= sizeof data || stat(data, &st) != 0) {
            snprintf(err, errlen, "no store at %s", path);
            return CAIRN_CONFIG;
        }
    }
    if (holds_other_files(path, err, errlen)) return CAIRN_CONFIG;
    if (make_dirs(path) != 0) {
        int e = errno;
        snprintf(err, errlen, "cannot use %s as a store directory: %s", path, strerror(e));
        return e == ENOTDIR || e == ENAMETOOLONG ? CAIRN_CONFIG : e;
    }
    char real[PATH_MAX];
    if (!realpath(path, real)) {
        int e = errno;
        snprintf(err, errlen, "cannot resolve store path %s: %s", path, strerror(e));
        return e;
    }
    cairn_env *sh = registry;
    while (sh && strcmp(sh->path, real) != 0) sh = sh->next;
    if (sh) { *out = sh; return CAIRN_OK; }
    int rc = open_env(real, opt, &sh, err, errlen);
    if (rc) return rc;
    sh->next = registry;
    registry = sh;
    *out = sh;
    return CAIRN_OK;
}

int cairn_store_env_open(const char *path, const cairn_store_options *opt, cairn_store **out, char *err,
                         size_t errlen)
{
    cairn_store *s = calloc(1, sizeof *s);
    if (!s) { snprintf(err, errlen, "out of memory opening %s", path ? path : "memory:"); return ENOMEM; }
    cairn_env *sh = NULL;
    int rc;
    pthread_mutex_lock(&registry_lock);
    rc = path ? find_env(path, opt, &sh, err, errlen) : open_env(NULL, opt, &sh, err, errlen);
    if (rc == CAIRN_OK) {
        sh->refs++;
    }
    pthread_mutex_unlock(&registry_lock);
    if (rc != CAIRN_OK) { free(s); return rc; }
    s->sh = sh;
    s->sync = sh->is_private ? CAIRN_SYNC_NONE : opt->sync;
    rc = cairn_store_cipher_open(s, opt, err, errlen);
    if (rc) { cairn_store_close(s); return rc; }
    *out = s;
    return CAIRN_OK;
}

/* The tracking helpers for the store's other files (views track per view). */
int cairn_store_tracking_put_in(cairn_store *s, MDB_txn *txn, const cairn_tracking *t)
{
    return tracking_put(s, txn, t);
}
