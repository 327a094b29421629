/*
 * store_lmdb.c -- the LMDB recorder.
 *
 * Layout (named databases in one environment per store directory):
 *   meta     "format" -> u32 big-endian store format
 *   log      notification id (u64 big-endian) -> record (record.h); each event's bytes live here only
 *   streams  stream id (16 bytes) || version (u64 big-endian) -> notification id (u64 big-endian)
 *
 * LMDB forbids opening one environment twice in a process, so handles on the
 * same directory share a reference-counted environment. Each handle keeps one
 * read transaction that is reset between reads and renewed for the next.
 */
#include <errno.h>
#include <lmdb.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cairn.h"
#include "store_internal.h"

#define STORE_FORMAT 1
#define DEFAULT_MAP_SIZE ((size_t)256 << 20)
#define STREAM_KEY 24

typedef struct lmdb_store lmdb_store;

/* One environment per directory per process, shared by its handles. */
typedef struct shared_env {
    char *path;                 /* realpath of the directory */
    MDB_env *env;
    MDB_dbi meta, log, streams;
    int refs;
    lmdb_store *handles;        /* so a map resize can end every handle's read */
    struct shared_env *next;
} shared_env;

struct lmdb_store {
    cairn_store base;
    shared_env *sh;
    cairn_sync_mode sync;
    lmdb_store *next_handle;
    /* the read in progress */
    MDB_txn *rtxn;              /* NULL, or reset/active read transaction */
    int ractive;
    MDB_cursor *rcur;
    enum { READ_NONE, READ_STREAM, READ_LOG } reading;
    int started, descending;
    size_t remaining;
    uint8_t stream_id[16];
    uint64_t gt, lte;           /* stream bounds, inclusive lte */
    int has_gt;
    cairn_log_query lq;
};

static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static shared_env *registry;

static void stream_key(uint8_t key[STREAM_KEY], const uint8_t id[16], uint64_t version)
{
    memcpy(key, id, 16);
    cairn_put_be64(key + 16, version);
}

static int lmdb_failure(lmdb_store *ls, int rc, const char *doing)
{
    const char *path = ls->sh->path;
    if (rc == ENOSPC)
        return cairn_store_fail(&ls->base, rc, "disk full while %s in %s", doing, path);
    if (rc == MDB_CORRUPTED || rc == MDB_PAGE_NOTFOUND)
        return cairn_store_fail(&ls->base, CAIRN_CORRUPT, "store %s is corrupt (%s) while %s", path,
                                mdb_strerror(rc), doing);
    return cairn_store_fail(&ls->base, rc, "store %s: %s while %s", path, mdb_strerror(rc), doing);
}

/* End every handle's read snapshot: LMDB resizes the map only when this
 * process has no transaction open. */
static void release_reads(shared_env *sh)
{
    for (lmdb_store *h = sh->handles; h; h = h->next_handle) {
        if (h->rcur) { mdb_cursor_close(h->rcur); h->rcur = NULL; }
        if (h->rtxn) { mdb_txn_abort(h->rtxn); h->rtxn = NULL; }
        h->ractive = 0;
        h->reading = READ_NONE;
    }
}

/* Begin a transaction, adopting a map another process has grown (it may grow
 * again between adopting and beginning, hence the loop). */
static int begin_txn(lmdb_store *ls, unsigned flags, MDB_txn **txn)
{
    int rc;
    for (int tries = 0; tries < 100; tries++) {
        rc = mdb_txn_begin(ls->sh->env, NULL, flags, txn);
        if (rc != MDB_MAP_RESIZED) return rc;
        release_reads(ls->sh);
        rc = mdb_env_set_mapsize(ls->sh->env, 0);
        if (rc) return rc;
    }
    return rc;
}

/* Double the map: called after MDB_MAP_FULL with no transaction open. */
static int grow_map(lmdb_store *ls)
{
    MDB_envinfo info;
    int rc = mdb_env_info(ls->sh->env, &info);
    if (rc) return rc;
    release_reads(ls->sh);
    size_t size = info.me_mapsize;
    size_t step = size < ((size_t)1 << 30) ? size : ((size_t)1 << 30);
    return mdb_env_set_mapsize(ls->sh->env, size + step);
}

/* The stream's last recorded version, if any. */
static int last_version(MDB_cursor *cur, const uint8_t id[16], int *found, uint64_t *last)
{
    uint8_t key[STREAM_KEY];
    stream_key(key, id, UINT64_MAX);
    MDB_val k = { STREAM_KEY, key }, v;
    int rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    if (rc == 0) rc = mdb_cursor_get(cur, &k, &v, MDB_PREV);
    else if (rc == MDB_NOTFOUND) rc = mdb_cursor_get(cur, &k, &v, MDB_LAST);
    *found = 0;
    if (rc == MDB_NOTFOUND) return 0;
    if (rc) return rc;
    if (k.mv_size == STREAM_KEY && memcmp(k.mv_data, id, 16) == 0) {
        *found = 1;
        *last = cairn_get_be64((const uint8_t *)k.mv_data + 16);
    }
    return 0;
}

/* One attempt at recording a batch; the caller commits or aborts. */
static int append_in(lmdb_store *ls, MDB_txn *txn, const cairn_record *ev, size_t n, uint64_t *first_id)
{
    shared_env *sh = ls->sh;
    MDB_cursor *scur = NULL, *lcur = NULL;
    int rc = mdb_cursor_open(txn, sh->streams, &scur);
    if (rc == 0) rc = mdb_cursor_open(txn, sh->log, &lcur);
    if (rc) goto done;

    MDB_val k, v;
    uint64_t next_id = 1;
    rc = mdb_cursor_get(lcur, &k, &v, MDB_LAST);
    if (rc == 0 && k.mv_size == 8) next_id = cairn_get_be64(k.mv_data) + 1;
    else if (rc != MDB_NOTFOUND && rc != 0) goto done;
    *first_id = next_id;

    for (size_t i = 0; i < n; i++) {
        int starts_run = i == 0 || memcmp(ev[i].stream_id, ev[i - 1].stream_id, 16) != 0;
        if (starts_run) {
            int found;
            uint64_t last = 0;
            rc = last_version(scur, ev[i].stream_id, &found, &last);
            if (rc) goto done;
            /* this transaction sees its own writes, so a stream repeated
             * later in the batch is checked against its earlier run */
            if (found && ev[i].version != last + 1) {
                rc = cairn_store_conflict(&ls->base, ev[i].stream_id, ev[i].version, 1, last);
                goto done;
            }
        }
        uint8_t idkey[8], skey[STREAM_KEY];
        cairn_put_be64(idkey, next_id);
        k = (MDB_val){ 8, idkey };
        v = (MDB_val){ cairn_record_size(&ev[i]), NULL };
        rc = mdb_cursor_put(lcur, &k, &v, MDB_APPEND | MDB_RESERVE);
        if (rc) goto done;
        cairn_record_write(&ev[i], v.mv_data);
        stream_key(skey, ev[i].stream_id, ev[i].version);
        k = (MDB_val){ STREAM_KEY, skey };
        v = (MDB_val){ 8, idkey };
        rc = mdb_cursor_put(scur, &k, &v, MDB_NOOVERWRITE);
        if (rc == MDB_KEYEXIST) {
            rc = cairn_store_conflict(&ls->base, ev[i].stream_id, ev[i].version, 0, 0);
            goto done;
        }
        if (rc) goto done;
        next_id++;
    }
done:
    if (scur) mdb_cursor_close(scur);
    if (lcur) mdb_cursor_close(lcur);
    return rc;
}

static int lmdb_append(cairn_store *s, const cairn_record *ev, size_t n, uint64_t *first_id)
{
    lmdb_store *ls = (lmdb_store *)s;
    for (;;) {
        MDB_txn *txn = NULL;
        int rc = begin_txn(ls, 0, &txn);
        if (rc) return lmdb_failure(ls, rc, "starting a save");
        rc = append_in(ls, txn, ev, n, first_id);
        if (rc == 0) {
            /* NOSYNC is per environment; set it for this handle's commit */
            mdb_env_set_flags(ls->sh->env, MDB_NOSYNC, ls->sync == CAIRN_SYNC_NONE);
            rc = mdb_txn_commit(txn);
        } else {
            mdb_txn_abort(txn);
        }
        if (rc == MDB_MAP_FULL) {
            rc = grow_map(ls);
            if (rc == 0) continue;
            return lmdb_failure(ls, rc, "growing the map");
        }
        if (rc == CAIRN_CONFLICT) return rc;
        if (rc) return lmdb_failure(ls, rc, "saving");
        return CAIRN_OK;
    }
}

/* Start (or restart) this handle's read snapshot. */
static int begin_read(lmdb_store *ls)
{
    if (ls->rcur) { mdb_cursor_close(ls->rcur); ls->rcur = NULL; }
    if (ls->ractive) { mdb_txn_reset(ls->rtxn); ls->ractive = 0; }
    int rc;
    if (ls->rtxn) {
        rc = mdb_txn_renew(ls->rtxn);
        if (rc) { mdb_txn_abort(ls->rtxn); ls->rtxn = NULL; }
    }
    if (!ls->rtxn) {
        rc = begin_txn(ls, MDB_RDONLY, &ls->rtxn);
        if (rc) { ls->rtxn = NULL; return lmdb_failure(ls, rc, "starting a read"); }
    }
    ls->ractive = 1;
    return CAIRN_OK;
}

static void lmdb_read_end(cairn_store *s)
{
    lmdb_store *ls = (lmdb_store *)s;
    if (ls->rcur) { mdb_cursor_close(ls->rcur); ls->rcur = NULL; }
    if (ls->ractive) { mdb_txn_reset(ls->rtxn); ls->ractive = 0; }
    ls->reading = READ_NONE;
}

static int lmdb_max_id(cairn_store *s, uint64_t *out)
{
    lmdb_store *ls = (lmdb_store *)s;
    int rc = begin_read(ls);
    if (rc) return rc;
    MDB_cursor *cur;
    MDB_val k, v;
    rc = mdb_cursor_open(ls->rtxn, ls->sh->log, &cur);
    if (rc == 0) {
        rc = mdb_cursor_get(cur, &k, &v, MDB_LAST);
        mdb_cursor_close(cur);
    }
    *out = 0;
    if (rc == 0 && k.mv_size == 8) *out = cairn_get_be64(k.mv_data);
    lmdb_read_end(s);
    if (rc && rc != MDB_NOTFOUND) return lmdb_failure(ls, rc, "reading the log");
    return CAIRN_OK;
}

static int open_read_cursor(lmdb_store *ls, MDB_dbi dbi)
{
    int rc = begin_read(ls);
    if (rc) return rc;
    rc = mdb_cursor_open(ls->rtxn, dbi, &ls->rcur);
    if (rc) {
        ls->rcur = NULL;
        lmdb_read_end(&ls->base);
        return lmdb_failure(ls, rc, "starting a read");
    }
    ls->started = 0;
    return CAIRN_OK;
}

static int lmdb_read_stream(cairn_store *s, const uint8_t *id, const cairn_stream_query *q)
{
    lmdb_store *ls = (lmdb_store *)s;
    int rc = open_read_cursor(ls, ls->sh->streams);
    if (rc) return rc;
    ls->reading = READ_STREAM;
    memcpy(ls->stream_id, id, 16);
    ls->has_gt = q->has_gt;
    ls->gt = q->gt;
    ls->lte = q->has_lte ? q->lte : UINT64_MAX;
    ls->descending = q->descending;
    ls->remaining = q->limit ? q->limit : SIZE_MAX;
    if (q->has_gt && q->gt == UINT64_MAX) ls->remaining = 0;
    return CAIRN_OK;
}

static int lmdb_read_log(cairn_store *s, const cairn_log_query *q)
{
    lmdb_store *ls = (lmdb_store *)s;
    int rc = open_read_cursor(ls, ls->sh->log);
    if (rc) return rc;
    ls->reading = READ_LOG;
    ls->lq = *q;
    ls->remaining = q->limit ? q->limit : SIZE_MAX;
    return CAIRN_OK;
}

static int parse_value(lmdb_store *ls, uint64_t id, const MDB_val *v, cairn_record *out)
{
    int rc = cairn_record_parse(v->mv_data, v->mv_size, out);
    if (rc) return cairn_store_fail(&ls->base, rc, "notification %llu in %s is not a valid record",
                                    (unsigned long long)id, ls->sh->path);
    out->notification_id = id;
    return CAIRN_OK;
}

/* Position the stream cursor on the next index entry within bounds. */
static int stream_step(lmdb_store *ls, MDB_val *k, MDB_val *v)
{
    int rc;
    if (!ls->started) {
        uint8_t key[STREAM_KEY];
        ls->started = 1;
        if (ls->descending) {
            stream_key(key, ls->stream_id, ls->lte);
            *k = (MDB_val){ STREAM_KEY, key };
            rc = mdb_cursor_get(ls->rcur, k, v, MDB_SET_RANGE);
            if (rc == MDB_NOTFOUND) rc = mdb_cursor_get(ls->rcur, k, v, MDB_LAST);
            else if (rc == 0 && (k->mv_size != STREAM_KEY || memcmp(k->mv_data, key, STREAM_KEY) != 0))
                rc = mdb_cursor_get(ls->rcur, k, v, MDB_PREV);
        } else {
            stream_key(key, ls->stream_id, ls->has_gt ? ls->gt + 1 : 0);
            *k = (MDB_val){ STREAM_KEY, key };
            rc = mdb_cursor_get(ls->rcur, k, v, MDB_SET_RANGE);
        }
    } else {
        rc = mdb_cursor_get(ls->rcur, k, v, ls->descending ? MDB_PREV : MDB_NEXT);
    }
    if (rc) return rc;
    if (k->mv_size != STREAM_KEY || memcmp(k->mv_data, ls->stream_id, 16) != 0) return MDB_NOTFOUND;
    uint64_t version = cairn_get_be64((const uint8_t *)k->mv_data + 16);
    if (version > ls->lte || (ls->has_gt && version <= ls->gt)) return MDB_NOTFOUND;
    return 0;
}

static int lmdb_next(cairn_store *s, cairn_record *out)
{
    lmdb_store *ls = (lmdb_store *)s;
    if (ls->reading == READ_NONE || ls->remaining == 0) return CAIRN_END;
    MDB_val k, v;
    int rc;
    if (ls->reading == READ_STREAM) {
        rc = stream_step(ls, &k, &v);
        if (rc == MDB_NOTFOUND) return CAIRN_END;
        if (rc) return lmdb_failure(ls, rc, "reading a stream");
        if (v.mv_size != 8) return cairn_store_fail(s, CAIRN_CORRUPT, "stream index entry in %s is malformed",
                                                     ls->sh->path);
        uint64_t id = cairn_get_be64(v.mv_data);
        MDB_val idk = { 8, v.mv_data };
        rc = mdb_get(ls->rtxn, ls->sh->log, &idk, &v);
        if (rc == MDB_NOTFOUND)
            return cairn_store_fail(s, CAIRN_CORRUPT, "stream index in %s names notification %llu, which is missing",
                                    ls->sh->path, (unsigned long long)id);
        if (rc) return lmdb_failure(ls, rc, "reading a stream");
        ls->remaining--;
        return parse_value(ls, id, &v, out);
    }
    for (;;) {
        if (!ls->started) {
            uint8_t key[8];
            cairn_put_be64(key, ls->lq.start);
            k = (MDB_val){ 8, key };
            ls->started = 1;
            rc = mdb_cursor_get(ls->rcur, &k, &v, MDB_SET_RANGE);
        } else {
            rc = mdb_cursor_get(ls->rcur, &k, &v, MDB_NEXT);
        }
        if (rc == MDB_NOTFOUND) return CAIRN_END;
        if (rc) return lmdb_failure(ls, rc, "reading the log");
        if (k.mv_size != 8) return cairn_store_fail(s, CAIRN_CORRUPT, "log key in %s is malformed", ls->sh->path);
        uint64_t id = cairn_get_be64(k.mv_data);
        if (ls->lq.stop && id > ls->lq.stop) return CAIRN_END;
        rc = parse_value(ls, id, &v, out);
        if (rc) return rc;
        if (cairn_store_topic_matches(&ls->lq, out)) {
            ls->remaining--;
            return CAIRN_OK;
        }
    }
}

static int lmdb_stat(cairn_store *s, cairn_store_stats *out)
{
    lmdb_store *ls = (lmdb_store *)s;
    out->engine = "lmdb";
    out->format = STORE_FORMAT;
    int rc = begin_read(ls);
    if (rc) return rc;
    MDB_stat st;
    MDB_envinfo info;
    MDB_cursor *cur = NULL;
    rc = mdb_stat(ls->rtxn, ls->sh->log, &st);
    if (rc) goto done;
    out->events = st.ms_entries;
    rc = mdb_env_info(ls->sh->env, &info);
    if (rc) goto done;
    out->map_size = info.me_mapsize;
    out->used_bytes = (uint64_t)(info.me_last_pgno + 1) * st.ms_psize;
    /* count streams by jumping from each stream to the next */
    rc = mdb_cursor_open(ls->rtxn, ls->sh->streams, &cur);
    if (rc) goto done;
    MDB_val k, v;
    rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
    while (rc == 0) {
        out->streams++;
        uint8_t key[STREAM_KEY];
        if (k.mv_size != STREAM_KEY) { rc = MDB_CORRUPTED; break; }
        stream_key(key, k.mv_data, UINT64_MAX);
        k = (MDB_val){ STREAM_KEY, key };
        rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
        if (rc == 0 && memcmp(k.mv_data, key, STREAM_KEY) == 0) rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    }
    if (rc == MDB_NOTFOUND) rc = 0;
    if (rc == 0) {
        MDB_cursor *lc;
        rc = mdb_cursor_open(ls->rtxn, ls->sh->log, &lc);
        if (rc == 0) {
            rc = mdb_cursor_get(lc, &k, &v, MDB_LAST);
            if (rc == 0 && k.mv_size == 8) out->max_notification_id = cairn_get_be64(k.mv_data);
            if (rc == MDB_NOTFOUND) rc = 0;
            mdb_cursor_close(lc);
        }
    }
done:
    if (cur) mdb_cursor_close(cur);
    lmdb_read_end(s);
    return rc ? lmdb_failure(ls, rc, "reading statistics") : CAIRN_OK;
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
static int init_databases(shared_env *sh, char *err, size_t errlen)
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
            uint8_t fmt[4] = { 0, 0, 0, STORE_FORMAT };
            MDB_val k = { 6, "format" }, v = { 4, fmt };
            rc = mdb_put(txn, sh->meta, &k, &v, 0);
        }
    } else if (rc == 0) {
        MDB_val k = { 6, "format" }, v;
        rc = mdb_get(txn, sh->meta, &k, &v);
        if (rc == 0 && v.mv_size == 4) {
            const uint8_t *p = v.mv_data;
            unsigned fmt = (unsigned)p[0] << 24 | (unsigned)p[1] << 16 | (unsigned)p[2] << 8 | p[3];
            if (fmt != STORE_FORMAT) {
                mdb_txn_abort(txn);
                snprintf(err, errlen, "store %s has format %u; this cairn reads format %d%s", sh->path, fmt,
                         STORE_FORMAT, fmt > STORE_FORMAT ? " (it was written by a newer cairn)" : "");
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
    if (rc) {
        mdb_txn_abort(txn);
        snprintf(err, errlen, "cannot open store %s: %s", sh->path, mdb_strerror(rc));
        return rc == MDB_INCOMPATIBLE ? CAIRN_CONFIG : rc;
    }
    rc = mdb_txn_commit(txn);
    if (rc) snprintf(err, errlen, "cannot open store %s: %s", sh->path, mdb_strerror(rc));
    return rc;
}

static int open_env(const char *path, const cairn_store_options *opt, shared_env **out, char *err, size_t errlen)
{
    shared_env *sh = calloc(1, sizeof *sh);
    if (!sh) { snprintf(err, errlen, "out of memory opening %s", path); return ENOMEM; }
    sh->path = strdup(path);
    int rc = sh->path ? mdb_env_create(&sh->env) : ENOMEM;
    if (rc == 0) rc = mdb_env_set_maxdbs(sh->env, 16);
    if (rc == 0) rc = mdb_env_set_mapsize(sh->env, opt->map_size ? opt->map_size : DEFAULT_MAP_SIZE);
    if (rc) {
        snprintf(err, errlen, "cannot open store %s: %s", path, mdb_strerror(rc));
        goto fail;
    }
    /* MDB_NOTLS: read transactions belong to handles, not threads */
    rc = mdb_env_open(sh->env, path, MDB_NOTLS | (opt->sync == CAIRN_SYNC_NONE ? MDB_NOSYNC : 0), 0644);
    if (rc) {
        if (rc == MDB_INVALID || rc == MDB_VERSION_MISMATCH) {
            snprintf(err, errlen, "%s does not hold an LMDB store (%s)", path, mdb_strerror(rc));
            rc = CAIRN_CONFIG;
        } else {
            snprintf(err, errlen, "cannot open store %s: %s", path, mdb_strerror(rc));
        }
        goto fail;
    }
    rc = init_databases(sh, err, errlen);
    if (rc) goto fail;
    *out = sh;
    return CAIRN_OK;
fail:
    if (sh->env) mdb_env_close(sh->env);
    free(sh->path);
    free(sh);
    return rc;
}

static void lmdb_close(cairn_store *s)
{
    lmdb_store *ls = (lmdb_store *)s;
    shared_env *sh = ls->sh;
    lmdb_read_end(s);
    if (ls->rtxn) mdb_txn_abort(ls->rtxn);
    pthread_mutex_lock(&registry_lock);
    for (lmdb_store **h = &sh->handles; *h; h = &(*h)->next_handle)
        if (*h == ls) { *h = ls->next_handle; break; }
    if (--sh->refs == 0) {
        for (shared_env **e = &registry; *e; e = &(*e)->next)
            if (*e == sh) { *e = sh->next; break; }
        mdb_env_close(sh->env);
        free(sh->path);
        free(sh);
    }
    pthread_mutex_unlock(&registry_lock);
    free(ls);
}

static const cairn_store_ops lmdb_ops = {
    lmdb_append, lmdb_max_id, lmdb_read_stream, lmdb_read_log, lmdb_next, lmdb_read_end, lmdb_stat, lmdb_close,
};

int cairn_store_lmdb_open(const char *path, const cairn_store_options *opt, cairn_store **out,
                          char *err, size_t errlen)
{
    if (opt->must_exist) {
        char data[PATH_MAX];
        struct stat st;
        if ((size_t)snprintf(data, sizeof data, "%s/data.mdb", path) >= sizeof data || stat(data, &st) != 0) {
            snprintf(err, errlen, "no store at %s", path);
            return CAIRN_CONFIG;
        }
    }
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
    lmdb_store *ls = calloc(1, sizeof *ls);
    if (!ls) { snprintf(err, errlen, "out of memory opening %s", path); return ENOMEM; }
    pthread_mutex_lock(&registry_lock);
    shared_env *sh = registry;
    while (sh && strcmp(sh->path, real) != 0) sh = sh->next;
    int rc = CAIRN_OK;
    if (!sh) {
        rc = open_env(real, opt, &sh, err, errlen);
        if (rc == CAIRN_OK) { sh->next = registry; registry = sh; }
    }
    if (rc == CAIRN_OK) {
        sh->refs++;
        ls->next_handle = sh->handles;
        sh->handles = ls;
    }
    pthread_mutex_unlock(&registry_lock);
    if (rc != CAIRN_OK) { free(ls); return rc; }
    ls->base.ops = &lmdb_ops;
    ls->sh = sh;
    ls->sync = opt->sync;
    *out = &ls->base;
    return CAIRN_OK;
}
