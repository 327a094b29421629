/*
 * pg_engine.c -- the PostgreSQL engine behind recorder.h's interface, over
 * the operations of pg_store.h (one connection per handle, one schema per
 * application).
 *
 * A save is prepare -> seal -> save (recorder.h's "read outside the write
 * transaction" form): cairn_pg_prepare reads the key state, the heads and
 * the snapshot bases in one round trip, the mapper seals, and save() re-checks
 * every head version and the key generation in its own transaction. When
 * the key state moved in between (cairn_pg_keys_changed) it prepares and
 * seals again; a stream that moved is the caller's conflict.
 *
 * A plain store's save that snapshots nothing skips the prepare round trip:
 * each stream's head comes from the handle's head cache (what it saved or
 * read last: a stream's version and that event's hash, immutable once
 * recorded; save() checks the version is still the head), and a stream not
 * in it is sealed as new and save() refuses if it has events; either miss
 * means prepare and seal again.
 *
 * Reads fetch rows in batches (READ_BATCH) and hand them out one by one;
 * the bytes stay valid until read_end. The mapper's view keys ("view \0 key")
 * and view tracking names ("view / app") are split onto the views table's
 * (name, key) and view_tracking's (name, app) columns.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cairn.h"
#include "pg_store.h"
#include "recorder.h"

#define READ_BATCH 1000
#define VIEW_BATCH 256
#define KEY_BATCH 4096
#define PROGRESS_EVERY 65536
#define RETRIES 64          /* key-state changes a save or key change rides out */
#define VIEW_KEY_MAX 512
#define WAIT_POLL_S 0.5     /* a wait that cannot LISTEN sleeps this long */
#define HEAD_CACHE 1024     /* streams whose head a handle remembers (direct-mapped) */

/* A stream's last event as this handle saw it. */
typedef struct {
    uint8_t id[16];
    uint64_t version;
    uint8_t hash[CAIRN_HASH_BYTES];
    int used;
} head_slot;

typedef struct cairn_pgx {
    cairn_engine base;      /* first: a cairn_engine * is a cairn_pgx * */
    cairn_pg *pg;
    char where[320];
    /* the read in progress */
    enum { PREAD_NONE, PREAD_STREAM, PREAD_LOG, PREAD_VIEW } reading;
    cairn_pg_rows rows;     /* the current batch */
    size_t at;              /* the next row of it */
    int more;               /* another batch may follow */
    size_t remaining;       /* rows still wanted (SIZE_MAX: no limit) */
    uint8_t stream_id[16];
    uint64_t from, to;      /* stream versions still to read, inclusive */
    int descending;
    int from_start;         /* an ascending stream read from version 0 ... */
    uint64_t first_version; /* ... whose first row is at this version (UINT64_MAX: none yet) */
    uint64_t next_id, stop; /* log */
    uint64_t *ids;          /* a log read of listed ids: a copy of them, and the next to fetch */
    size_t nids, id_at;
    cairn_pg_bytes *topics;
    size_t ntopics;
    char *topic_mem;
    uint8_t view[VIEW_KEY_MAX], vprefix[VIEW_KEY_MAX], vafter[VIEW_KEY_MAX], vkey[VIEW_KEY_MAX];
    size_t view_len, vprefix_len, vafter_len;
    int has_after;
    int across;             /* a view scan from a point between views: stored keys of every view */
    cairn_pg_rows *held;    /* rows other lookups of this read point into */
    size_t nheld, held_cap;
    uint64_t wake_last;     /* the last id wake_seq saw */
    head_slot *heads;       /* HEAD_CACHE slots, or NULL (out of memory: always prepare) */
} cairn_pgx;

#define PGX(e) ((cairn_pgx *)(e))

/* The pg layer's message, as the handle's. */
static int failed(cairn_pgx *x, int rc)
{
    snprintf(x->base.errmsg, sizeof x->base.errmsg, "%s", cairn_pg_errmsg(x->pg));
    return rc;
}

static int keep(cairn_pgx *x, cairn_pg_rows *rows)
{
    if (x->nheld == x->held_cap) {
        size_t cap = x->held_cap ? x->held_cap * 2 : 4;
        cairn_pg_rows *h = realloc(x->held, cap * sizeof *h);
        if (!h) {
            cairn_pg_rows_free(rows);
            return cairn_engine_fail(&x->base, CAIRN_STORE, "out of memory reading %s", x->where);
        }
        x->held = h;
        x->held_cap = cap;
    }
    x->held[x->nheld++] = *rows;
    return CAIRN_OK;
}

/* Before fetching the next batch of a read: the batch before stays held, as
 * what next() returned from it is valid until read_end. */
static int keep_batch(cairn_pgx *x)
{
    if (!x->rows.n) return CAIRN_OK;
    int rc = keep(x, &x->rows);
    memset(&x->rows, 0, sizeof x->rows);
    return rc;
}

static void pgx_read_end(cairn_engine *e)
{
    cairn_pgx *x = PGX(e);
    cairn_pg_rows_free(&x->rows);
    for (size_t i = 0; i < x->nheld; i++) cairn_pg_rows_free(&x->held[i]);
    x->nheld = 0;
    free(x->topics);
    free(x->topic_mem);
    free(x->ids);
    x->ids = NULL;
    x->nids = x->id_at = 0;
    x->topics = NULL;
    x->topic_mem = NULL;
    x->ntopics = 0;
    x->reading = PREAD_NONE;
    x->at = 0;
    x->more = 0;
}

/* ---- opening ------------------------------------------------------------- */

static int pgx_open(const char *uri, const cairn_engine_options *opt, cairn_engine **out, char *err, size_t errlen)
{
    *out = NULL;
    cairn_pgx *x = calloc(1, sizeof *x);
    if (!x) {
        snprintf(err, errlen, "out of memory opening a PostgreSQL store");
        return CAIRN_STORE;
    }
    cairn_pg_options po = { .read_only = opt->read_only, .must_exist = opt->must_exist || opt->read_only };
    int rc = cairn_pg_open(uri, &po, &x->pg, err, errlen);
    if (rc) {
        free(x);
        return rc;
    }
    x->base.ops = &cairn_pg_engine;
    x->base.name = "postgresql";
    snprintf(x->where, sizeof x->where, "postgresql://%s?schema=%s", cairn_pg_server(x->pg),
             cairn_pg_schema(x->pg));
    x->base.where = x->where;
    x->base.read_only = opt->read_only ? CAIRN_ENGINE_ASKED : 0;
    x->heads = calloc(HEAD_CACHE, sizeof *x->heads);
    *out = &x->base;
    return CAIRN_OK;
}

static void pgx_close(cairn_engine *e)
{
    cairn_pgx *x = PGX(e);
    pgx_read_end(e);
    free(x->held);
    free(x->heads);
    cairn_pg_close(x->pg);
    free(x);
}

/* ---- the key state --------------------------------------------------------- */

static cairn_slice slice(cairn_pg_bytes b) { return (cairn_slice){ (const char *)b.ptr, b.len }; }

static void key_state_of(const cairn_pg_prepared *p, cairn_key_state *ks)
{
    memset(ks, 0, sizeof *ks);
    ks->known = 1;
    ks->cipher = slice(p->ks.cipher);
    ks->keycheck = slice(p->ks.keycheck);
    ks->keygen = p->ks.keygen;
    ks->empty = p->ks.empty;
}

static int pgx_key_state(cairn_engine *e, int (*use)(void *ctx, const cairn_key_state *ks), void *ctx)
{
    cairn_pgx *x = PGX(e);
    cairn_pg_prepared p;
    int rc = cairn_pg_prepare(x->pg, NULL, 0, NULL, 0, 0, &p);
    if (rc) return failed(x, rc);
    cairn_key_state ks;
    key_state_of(&p, &ks);
    rc = use(ctx, &ks);
    cairn_pg_prepared_free(&p);
    return rc;
}

/* Read the key state and show it to the guard: CAIRN_OK with *p to free, or the guard's refusal. */
static int guarded(cairn_pgx *x, cairn_guard g, cairn_pg_prepared *p)
{
    int rc = cairn_pg_prepare(x->pg, NULL, 0, NULL, 0, 0, p);
    if (rc) return failed(x, rc);
    cairn_key_state ks;
    key_state_of(p, &ks);
    rc = g.check ? g.check(g.ctx, &ks) : CAIRN_OK;
    if (rc) cairn_pg_prepared_free(p);
    return rc;
}

/* A key change refused because the key state moved since it was read: read it and try again. */
static int again(cairn_pgx *x, int rc, int *tries)
{
    return rc == CAIRN_CONFLICT && cairn_pg_keys_changed(x->pg) && ++*tries < RETRIES;
}

static int pgx_set_cipher(cairn_engine *e, cairn_slice cipher, cairn_slice keycheck, cairn_guard guard)
{
    cairn_pgx *x = PGX(e);
    if (e->read_only) return cairn_engine_fail(e, CAIRN_CONFIG, "store %s is open read-only", x->where);
    for (int tries = 0;;) {
        cairn_pg_prepared p;
        int rc = guarded(x, guard, &p);
        if (rc) return rc;
        int encrypted = p.ks.cipher.ptr != NULL, done = 0;
        uint64_t keygen = p.ks.keygen;
        cairn_pg_prepared_free(&p);
        if (encrypted) return CAIRN_OK; /* encrypted meanwhile: the guard checked our key against it */
        rc = cairn_pg_set_cipher(x->pg, (cairn_pg_bytes){ (const uint8_t *)cipher.ptr, cipher.len },
                                 (cairn_pg_bytes){ (const uint8_t *)keycheck.ptr, keycheck.len }, keygen, &done);
        if (rc == CAIRN_OK) return CAIRN_OK; /* done, or encrypted by another: the next look checks */
        if (!again(x, rc, &tries)) return failed(x, rc);
    }
}

/* ---- saving ----------------------------------------------------------------- */

/* A record's hash from its stored bytes (CAIRN_CORRUPT naming it if malformed). */
static int hash_of(cairn_pgx *x, cairn_pg_bytes bytes, const uint8_t *id, uint64_t version, uint8_t out[CAIRN_HASH_BYTES])
{
    cairn_record rec;
    if (cairn_record_parse(bytes.ptr, bytes.len, &rec) != CAIRN_OK || memcmp(rec.stream_id, id, 16) != 0 ||
        rec.version != version) {
        char what[80];
        cairn_record_describe(id, version, what, sizeof what);
        return cairn_engine_fail(&x->base, CAIRN_CORRUPT, "the record of %s in %s is malformed or misplaced", what,
                                 x->where);
    }
    memcpy(out, rec.hash, CAIRN_HASH_BYTES);
    return CAIRN_OK;
}

/* DCB events and queries as pg_store.h takes them: postings and a flattened query, their
 * names prefixed with their kind ('a' every event, 'y' a type, 'g' a tag), in one block. */
typedef struct {
    cairn_pg_posting *postings;
    size_t npostings;
    cairn_pg_query query;
    void *mem;
} cairn_pg_dcb;

static void pg_dcb_free(cairn_pg_dcb *d)
{
    free(d->mem);
    memset(d, 0, sizeof *d);
}

/* kind || name into *at; the bytes written. */
static cairn_pg_bytes prefixed(uint8_t **at, char kind, cairn_slice name)
{
    cairn_pg_bytes b = { *at, 1 + name.len };
    (*at)[0] = (uint8_t)kind;
    if (name.len) memcpy(*at + 1, name.ptr, name.len);
    *at += b.len;
    return b;
}

/* Non-zero: out of memory. */
static int pg_dcb_make(cairn_pg_dcb *d, const cairn_dcb_event *ev, size_t nev, const cairn_dcb_query *q)
{
    size_t npost = 0, nnames = 0, bytes = 0;
    memset(d, 0, sizeof *d);
    for (size_t i = 0; i < nev; i++) {
        npost += 2 + ev[i].ntags;
        bytes += 2 + ev[i].type.len;
        for (size_t t = 0; t < ev[i].ntags; t++) bytes += 1 + ev[i].tags[t].len;
    }
    for (size_t i = 0; q && i < q->nitems; i++) {
        const cairn_dcb_item *it = &q->items[i];
        nnames += it->ntypes + it->ntags;
        for (size_t t = 0; t < it->ntypes; t++) bytes += 1 + it->types[t].len;
        for (size_t t = 0; t < it->ntags; t++) bytes += 1 + it->tags[t].len;
    }
    size_t head = npost * sizeof(cairn_pg_posting) + nnames * (sizeof(cairn_pg_bytes) + sizeof(uint64_t));
    if (!(d->mem = malloc(head + bytes + 1))) return 1;
    d->postings = d->mem;
    cairn_pg_bytes *names = (cairn_pg_bytes *)(d->postings + npost);
    uint64_t *item = (uint64_t *)(names + nnames);
    uint8_t *at = (uint8_t *)(item + nnames);
    static const cairn_slice nothing = { "", 0 };
    for (size_t i = 0; i < nev; i++) {
        cairn_pg_bytes type = { (const uint8_t *)ev[i].type.ptr, ev[i].type.len };
        d->postings[d->npostings++] = (cairn_pg_posting){ prefixed(&at, 'a', nothing), ev[i].event, type };
        d->postings[d->npostings++] = (cairn_pg_posting){ prefixed(&at, 'y', ev[i].type), ev[i].event, type };
        for (size_t t = 0; t < ev[i].ntags; t++)
            d->postings[d->npostings++] = (cairn_pg_posting){ prefixed(&at, 'g', ev[i].tags[t]), ev[i].event, type };
    }
    d->query = (cairn_pg_query){ .nitems = q ? q->nitems : 0, .names = names, .item = item, .after = q ? q->after : 0 };
    for (size_t i = 0; q && i < q->nitems; i++) {
        const cairn_dcb_item *it = &q->items[i];
        for (size_t t = 0; t < it->ntypes; t++) {
            item[d->query.nnames] = i + 1;
            names[d->query.nnames++] = prefixed(&at, 'y', it->types[t]);
        }
        for (size_t t = 0; t < it->ntags; t++) {
            item[d->query.nnames] = i + 1;
            names[d->query.nnames++] = prefixed(&at, 'g', it->tags[t]);
        }
    }
    return 0;
}

/* The parts of one attempt at a save, built from what the mapper sealed. */
typedef struct {
    uint8_t (*ids)[16];
    cairn_pg_snapshot_ref *snaps;
    cairn_pg_record *events, *snapshots;
    cairn_pg_key *keys;
    cairn_pg_dcb dcb;
} save_mem;

static void save_mem_free(save_mem *m)
{
    free(m->ids);
    free(m->snaps);
    free(m->events);
    free(m->snapshots);
    free(m->keys);
    pg_dcb_free(&m->dcb);
}

/* Step 1 from a prepared read: heads, data keys, snapshot bases. */
static int fill_heads(cairn_pgx *x, cairn_write *w, const cairn_pg_prepared *p)
{
    for (size_t i = 0; i < w->nheads; i++) {
        cairn_stream_head *h = &w->heads[i];
        const cairn_pg_row *r = &p->head[i];
        h->found = r->bytes.ptr != NULL;
        h->version = h->found ? r->version : 0;
        h->key = (cairn_slice){ NULL, 0 };
        if (h->found) {
            int rc = hash_of(x, r->bytes, h->id, r->version, h->hash);
            if (rc) return rc;
        }
        if ((w->want & CAIRN_WANT_DATA_KEYS) && r->key.ptr) h->key = slice(r->key);
    }
    for (size_t j = 0; j < w->nsnapshots; j++) {
        const cairn_pg_row *r = &p->base[j];
        w->bases[j].found = r->bytes.ptr != NULL;
        if (w->bases[j].found) {
            int rc = hash_of(x, r->bytes, w->snapshots[j].stream_id, w->snapshots[j].version, w->bases[j].hash);
            if (rc) return rc;
        }
    }
    return CAIRN_OK;
}

static head_slot *head_slot_of(cairn_pgx *x, const uint8_t id[16])
{
    uint32_t h;
    memcpy(&h, id + 12, 4); /* ids are random or hashed */
    return &x->heads[h % HEAD_CACHE];
}

/* Remember a stream's last event from its stored bytes. */
static void remember(cairn_pgx *x, const uint8_t *bytes, size_t len)
{
    cairn_record rec;
    if (!x->heads || cairn_record_parse(bytes, len, &rec) != CAIRN_OK) return;
    head_slot *slot = head_slot_of(x, rec.stream_id);
    memcpy(slot->id, rec.stream_id, 16);
    slot->version = rec.version;
    memcpy(slot->hash, rec.hash, CAIRN_HASH_BYTES);
    slot->used = 1;
}

/* Step 1 without a round trip, when the save needs nothing but heads: each from
 * the cache when it holds the version before the batch's first, else sealed as
 * new (listed in new_ids for save() to check). 0: not possible, prepare. */
static int heads_from_cache(cairn_pgx *x, cairn_write *w, uint8_t (*new_ids)[16], size_t *nnew)
{
    *nnew = 0;
    if (!x->heads || w->want || w->nsnapshots || w->n == 0) return 0;
    /* heads are the batch's streams in the order their first events come */
    size_t k = 0;
    for (size_t i = 0; i < w->n && k < w->nheads; i++) {
        cairn_stream_head *h = &w->heads[k];
        if (memcmp(w->events[i].stream_id, h->id, 16) != 0) continue;
        head_slot *slot = head_slot_of(x, h->id);
        h->key = (cairn_slice){ NULL, 0 };
        h->found = slot->used && memcmp(slot->id, h->id, 16) == 0 && w->events[i].version > 0 &&
                   slot->version == w->events[i].version - 1;
        if (h->found) {
            h->version = slot->version;
            memcpy(h->hash, slot->hash, CAIRN_HASH_BYTES);
        } else {
            h->version = 0;
            memcpy(new_ids[(*nnew)++], h->id, 16);
        }
        k++;
    }
    return k == w->nheads;
}

static int pgx_append(cairn_engine *e, cairn_write *w, uint64_t *first_id)
{
    cairn_pgx *x = PGX(e);
    *first_id = 0;
    save_mem m = { 0 };
    m.ids = malloc((w->nheads ? w->nheads : 1) * sizeof *m.ids);
    m.snaps = malloc((w->nsnapshots ? w->nsnapshots : 1) * sizeof *m.snaps);
    m.events = malloc((w->n ? w->n : 1) * sizeof *m.events);
    m.snapshots = malloc((w->nsnapshots ? w->nsnapshots : 1) * sizeof *m.snapshots);
    m.keys = malloc((w->nheads ? w->nheads : 1) * sizeof *m.keys);
    int rc = CAIRN_OK, cached = 1;
    if (!m.ids || !m.snaps || !m.events || !m.snapshots || !m.keys) {
        save_mem_free(&m);
        return cairn_engine_fail(e, CAIRN_STORE, "out of memory saving to %s", x->where);
    }
    for (size_t j = 0; j < w->nsnapshots; j++)
        m.snaps[j] = (cairn_pg_snapshot_ref){ w->snapshots[j].stream_id, w->snapshots[j].version };
    if (pg_dcb_make(&m.dcb, w->dcb, w->ndcb, w->fail_if)) {
        save_mem_free(&m);
        return cairn_engine_fail(e, CAIRN_STORE, "out of memory saving to %s", x->where);
    }
    for (int tries = 0;;) {
        cairn_pg_prepared p;
        size_t nnew = 0;
        /* m.ids doubles as the list of streams sealed as new on the cached path */
        cached = cached && heads_from_cache(x, w, m.ids, &nnew);
        if (cached) {
            memset(&p, 0, sizeof p);
        } else {
            nnew = 0;
            for (size_t i = 0; i < w->nheads; i++) memcpy(m.ids[i], w->heads[i].id, 16);
            rc = cairn_pg_prepare(x->pg, (const uint8_t (*)[16])m.ids, w->nheads, m.snaps, w->nsnapshots,
                                  (w->want & CAIRN_WANT_DATA_KEYS) != 0, &p);
            if (rc) {
                rc = failed(x, rc);
                break;
            }
        }
        cairn_key_state ks = { 0 };
        if (w->want & CAIRN_WANT_KEY_STATE) key_state_of(&p, &ks);
        rc = cached ? CAIRN_OK : fill_heads(x, w, &p);
        if (rc == CAIRN_OK) rc = w->seal(w, &ks);
        if (rc) {
            cairn_pg_prepared_free(&p);
            break;
        }
        for (size_t i = 0; i < w->n; i++)
            m.events[i] = (cairn_pg_record){ w->events[i].stream_id, w->events[i].version,
                                             { (const uint8_t *)w->events[i].topic, w->events[i].topic_len },
                                             { (const uint8_t *)w->stored[i].ptr, w->stored[i].len } };
        for (size_t j = 0; j < w->nsnapshots; j++)
            m.snapshots[j] = (cairn_pg_record){ w->snapshots[j].stream_id, w->snapshots[j].version,
                                                { NULL, 0 },
                                                { (const uint8_t *)w->stored[w->n + j].ptr, w->stored[w->n + j].len } };
        size_t nkeys = 0;
        for (size_t i = 0; i < w->nheads; i++)
            if (w->heads[i].put_key)
                m.keys[nkeys++] = (cairn_pg_key){ w->heads[i].id, { w->heads[i].new_key, CAIRN_WRAPPED_KEY_BYTES } };
        cairn_pg_batch b = { .events = m.events, .n = w->n, .snapshots = m.snapshots, .nsnapshots = w->nsnapshots,
                             .keys = m.keys, .nkeys = nkeys, .check_keygen = (w->want & CAIRN_WANT_KEY_STATE) != 0,
                             .keygen = p.ks.keygen, .new_streams = (const uint8_t (*)[16])m.ids,
                             .nnew = nnew, .postings = m.dcb.postings, .npostings = m.dcb.npostings,
                             .fail_if = w->fail_if ? &m.dcb.query : NULL,
                             .once = { (const uint8_t *)w->once.ptr, w->once.len } };
        if (w->tracking) {
            b.track_app = (cairn_pg_bytes){ (const uint8_t *)w->tracking->app, w->tracking->app_len };
            b.track_id = w->tracking->id;
            b.track_first = w->tracking->first;
        }
        rc = cairn_pg_append(x->pg, &b, first_id);
        cairn_pg_prepared_free(&p);
        if (rc == CAIRN_OK) {
            for (size_t i = 0; i < w->n; i++) remember(x, (const uint8_t *)w->stored[i].ptr, w->stored[i].len);
            break;
        }
        if (!again(x, rc, &tries)) {
            rc = failed(x, rc);
            break;
        }
        cached = 0; /* the cache or a guess was wrong: read what the save depends on */
    }
    save_mem_free(&m);
    return rc;
}

/* ---- reads ------------------------------------------------------------------ */

/* Fetch the next batch of the read in progress into x->rows. */
static int fetch(cairn_pgx *x)
{
    cairn_pg_rows_free(&x->rows);
    x->at = 0;
    size_t want = x->remaining < READ_BATCH ? x->remaining : READ_BATCH;
    int rc;
    if (x->reading == PREAD_LOG && x->nids) { /* listed ids: the next READ_BATCH of them */
        size_t n = x->nids - x->id_at < READ_BATCH ? x->nids - x->id_at : READ_BATCH;
        rc = cairn_pg_read_log_ids(x->pg, x->ids + x->id_at, n, x->topics, x->ntopics, &x->rows);
        x->id_at += n;
        x->more = x->id_at < x->nids;
        return rc ? failed(x, rc) : CAIRN_OK;
    }
    if (x->reading == PREAD_STREAM)
        rc = cairn_pg_read_stream(x->pg, x->stream_id, x->from, x->to, x->descending, want, &x->rows);
    else
        rc = cairn_pg_read_log(x->pg, x->next_id, x->stop, x->topics, x->ntopics, want, &x->rows);
    if (rc) {
        x->more = 0;
        return failed(x, rc);
    }
    x->more = x->rows.n == want;
    if (x->remaining != SIZE_MAX) x->remaining -= x->rows.n;
    if (x->remaining == 0) x->more = 0;
    if (x->rows.n == 0) return CAIRN_OK;
    const cairn_pg_row *last = &x->rows.row[x->rows.n - 1];
    if (x->reading == PREAD_STREAM && x->first_version == UINT64_MAX) x->first_version = x->rows.row[0].version;
    if (x->reading == PREAD_LOG) x->next_id = last->id + 1;
    else if (x->descending && last->version == 0) x->more = 0;
    else if (x->descending) x->to = last->version - 1;
    else if (last->version == UINT64_MAX) x->more = 0;
    else x->from = last->version + 1;
    if (x->reading == PREAD_STREAM && x->from > x->to) x->more = 0;
    return CAIRN_OK;
}

static int pgx_read_stream(cairn_engine *e, const uint8_t id[16], const cairn_stream_query *q)
{
    cairn_pgx *x = PGX(e);
    pgx_read_end(e);
    memcpy(x->stream_id, id, 16);
    x->from = q->has_gt ? q->gt + 1 : 0;
    x->to = q->has_lte ? q->lte : UINT64_MAX;
    x->descending = q->descending;
    x->from_start = !q->descending && x->from == 0;
    x->first_version = UINT64_MAX;
    x->remaining = q->limit ? q->limit : SIZE_MAX;
    x->reading = PREAD_STREAM;
    if ((q->has_gt && q->gt == UINT64_MAX) || x->from > x->to) return CAIRN_OK; /* nothing in range */
    x->more = 1;
    return CAIRN_OK;
}

static int pgx_read_log(cairn_engine *e, const cairn_log_query *q)
{
    cairn_pgx *x = PGX(e);
    pgx_read_end(e);
    x->next_id = q->start ? q->start : 1;
    x->stop = q->stop;
    x->remaining = q->limit ? q->limit : SIZE_MAX;
    if (q->ntopics) {
        size_t bytes = 0;
        for (size_t i = 0; i < q->ntopics; i++) bytes += q->topics[i].len;
        x->topics = malloc(q->ntopics * sizeof *x->topics);
        x->topic_mem = malloc(bytes ? bytes : 1);
        if (!x->topics || !x->topic_mem) {
            pgx_read_end(e);
            return cairn_engine_fail(e, CAIRN_STORE, "out of memory reading %s", x->where);
        }
        char *at = x->topic_mem;
        for (size_t i = 0; i < q->ntopics; i++) {
            memcpy(at, q->topics[i].ptr, q->topics[i].len);
            x->topics[i] = (cairn_pg_bytes){ (const uint8_t *)at, q->topics[i].len };
            at += q->topics[i].len;
        }
        x->ntopics = q->ntopics;
    }
    if (q->nids) {
        if (!(x->ids = malloc(q->nids * sizeof *x->ids))) {
            pgx_read_end(e);
            return cairn_engine_fail(e, CAIRN_STORE, "out of memory reading %s", x->where);
        }
        memcpy(x->ids, q->ids, q->nids * sizeof *x->ids);
        x->nids = q->nids;
    }
    x->reading = PREAD_LOG;
    x->more = 1;
    return CAIRN_OK;
}

static int pgx_next(cairn_engine *e, cairn_record *out)
{
    cairn_pgx *x = PGX(e);
    if (x->reading != PREAD_STREAM && x->reading != PREAD_LOG) return CAIRN_END;
    if (x->at == x->rows.n) {
        if (!x->more) return CAIRN_END;
        int rc = keep_batch(x);
        if (rc) return rc;
        rc = fetch(x);
        while (rc == CAIRN_OK && x->rows.n == 0 && x->more && x->nids) rc = fetch(x); /* none of a batch there */
        if (rc) return rc;
        if (x->rows.n == 0) return CAIRN_END;
    }
    const cairn_pg_row *r = &x->rows.row[x->at++];
    char what[80];
    if (!r->stream_id || cairn_record_parse(r->bytes.ptr, r->bytes.len, out) != CAIRN_OK) {
        if (r->stream_id) cairn_record_describe(r->stream_id, r->version, what, sizeof what);
        else snprintf(what, sizeof what, "notification %llu", (unsigned long long)r->id);
        return cairn_engine_fail(e, CAIRN_CORRUPT, "%s in %s is not a valid record", what, x->where);
    }
    if (memcmp(out->stream_id, r->stream_id, 16) != 0 || out->version != r->version) {
        cairn_record_describe(r->stream_id, r->version, what, sizeof what);
        return cairn_engine_fail(e, CAIRN_CORRUPT,
                                 "the row of %s in %s holds another event (records were moved or swapped)", what,
                                 x->where);
    }
    out->notification_id = r->id;
    if (x->reading == PREAD_STREAM && !x->descending) remember(x, r->bytes.ptr, r->bytes.len);
    return CAIRN_OK;
}

static int pgx_dcb_read(cairn_engine *e, const cairn_dcb_query *q, uint64_t limit,
                        int (*found)(void *ctx, uint64_t id), void *ctx, uint64_t *last_id)
{
    cairn_pgx *x = PGX(e);
    cairn_pg_dcb d = { 0 };
    uint64_t *ids = NULL;
    size_t n = 0;
    *last_id = 0;
    if (pg_dcb_make(&d, NULL, 0, q)) return cairn_engine_fail(e, CAIRN_STORE, "out of memory reading %s", x->where);
    int rc = cairn_pg_dcb_read(x->pg, &d.query, limit, &ids, &n, last_id);
    pg_dcb_free(&d);
    if (rc) return failed(x, rc);
    for (size_t i = 0; i < n && rc == CAIRN_OK; i++) rc = found(ctx, ids[i]);
    free(ids);
    return rc;
}

static int pgx_once_get(cairn_engine *e, cairn_slice key, uint64_t *first_id, uint64_t *n)
{
    cairn_pgx *x = PGX(e);
    int rc = cairn_pg_once_get(x->pg, (cairn_pg_bytes){ (const uint8_t *)key.ptr, key.len }, first_id, n);
    return rc && rc != CAIRN_END ? failed(x, rc) : rc;
}

static int pgx_event_hash(cairn_engine *e, const uint8_t id[16], uint64_t version, uint8_t out[CAIRN_HASH_BYTES])
{
    cairn_pgx *x = PGX(e);
    /* The chain check asks for the event before the first one an ascending read gives
     * (mapper_read.c). When that read started at version 0, its statement saw nothing below
     * its first row, and nothing can be recorded below a stream's first event later (save()
     * refuses a version that does not follow the head): no round trip to learn that. */
    if (x->reading == PREAD_STREAM && x->from_start && version < x->first_version &&
        memcmp(id, x->stream_id, 16) == 0)
        return CAIRN_END;
    cairn_pg_rows rows;
    int rc = cairn_pg_read_stream(x->pg, id, version, version, 0, 1, &rows);
    if (rc) return failed(x, rc);
    rc = rows.n == 0 ? CAIRN_END : hash_of(x, rows.row[0].bytes, id, version, out);
    cairn_pg_rows_free(&rows);
    return rc;
}

static int pgx_data_key(cairn_engine *e, const uint8_t id[16], cairn_slice *stored)
{
    cairn_pgx *x = PGX(e);
    cairn_pg_prepared p;
    int rc = cairn_pg_prepare(x->pg, (const uint8_t (*)[16])id, 1, NULL, 0, 1, &p);
    if (rc) return failed(x, rc);
    if (!p.head[0].key.ptr) {
        cairn_pg_prepared_free(&p);
        return CAIRN_END;
    }
    *stored = slice(p.head[0].key);
    rc = keep(x, &p.rows); /* valid until read_end */
    memset(&p.rows, 0, sizeof p.rows);
    return rc;
}

static int pgx_read_snapshot(cairn_engine *e, const uint8_t id[16], int has_lte, uint64_t lte, cairn_record *out,
                             uint8_t event_hash[CAIRN_HASH_BYTES])
{
    cairn_pgx *x = PGX(e);
    pgx_read_end(e);
    cairn_pg_rows rows;
    int rc = cairn_pg_read_snapshot(x->pg, id, has_lte ? lte : UINT64_MAX, &rows);
    if (rc) return failed(x, rc);
    if (rows.n == 0) {
        cairn_pg_rows_free(&rows);
        return CAIRN_END;
    }
    const cairn_pg_row *r = &rows.row[0];
    char what[80];
    cairn_record_describe(id, r->version, what, sizeof what);
    if (cairn_record_parse(r->bytes.ptr, r->bytes.len, out) != CAIRN_OK || memcmp(out->stream_id, id, 16) != 0 ||
        out->version != r->version)
        rc = cairn_engine_fail(e, CAIRN_CORRUPT, "the snapshot of %s in %s is malformed or misplaced", what, x->where);
    else if (!r->key.ptr)
        rc = cairn_engine_fail(e, CAIRN_CORRUPT, "the snapshot of %s in %s was taken at an event that is missing",
                               what, x->where);
    else
        rc = hash_of(x, r->key, id, r->version, event_hash);
    if (rc) {
        cairn_pg_rows_free(&rows);
        return rc;
    }
    return keep(x, &rows);
}

static int pgx_max_id(cairn_engine *e, uint64_t *out)
{
    cairn_pgx *x = PGX(e);
    int rc = cairn_pg_max_id(x->pg, out);
    return rc ? failed(x, rc) : CAIRN_OK;
}

/* A view tracking name "view/app": its two parts (0: a process application's name). */
static int split_tracking(cairn_slice name, cairn_pg_bytes *view, cairn_pg_bytes *app)
{
    const char *slash = memchr(name.ptr, '/', name.len);
    if (!slash) return 0;
    *view = (cairn_pg_bytes){ (const uint8_t *)name.ptr, (size_t)(slash - name.ptr) };
    *app = (cairn_pg_bytes){ (const uint8_t *)slash + 1, name.len - (size_t)(slash - name.ptr) - 1 };
    return 1;
}

static int pgx_tracking_get(cairn_engine *e, cairn_slice name, uint64_t *out)
{
    cairn_pgx *x = PGX(e);
    cairn_pg_bytes view, app;
    int rc = split_tracking(name, &view, &app)
                 ? cairn_pg_view_tracking_max(x->pg, view, app, out)
                 : cairn_pg_tracking_max(x->pg, (cairn_pg_bytes){ (const uint8_t *)name.ptr, name.len }, out);
    return rc ? failed(x, rc) : CAIRN_OK;
}

static int pgx_stat(cairn_engine *e, cairn_store_stats *out)
{
    cairn_pgx *x = PGX(e);
    cairn_pg_stats st;
    int rc = cairn_pg_stat(x->pg, &st);
    if (rc) return failed(x, rc);
    out->engine = e->name;
    out->events = st.events;
    out->streams = st.streams;
    out->max_notification_id = st.max_id;
    out->used_bytes = st.bytes;
    out->format = (unsigned)st.version;
    return CAIRN_OK;
}

/* ---- the store tools' pages ------------------------------------------------------ */

static int pgx_tracking_scan(cairn_engine *e, cairn_slice after, size_t limit,
                             int (*each)(void *ctx, cairn_slice name, uint64_t id), void *ctx)
{
    cairn_pgx *x = PGX(e);
    pgx_read_end(e);
    if (limit == 0) return CAIRN_OK;
    cairn_pg_rows rows;
    int rc = cairn_pg_tracking_scan(x->pg, (cairn_pg_bytes){ (const uint8_t *)after.ptr, after.len }, limit, &rows);
    if (rc) return failed(x, rc);
    for (size_t i = 0; i < rows.n && rc == CAIRN_OK; i++) rc = each(ctx, slice(rows.row[i].bytes), rows.row[i].id);
    cairn_pg_rows_free(&rows);
    return rc;
}

/* A page of stream ids (and their last versions when versions is not NULL). */
static int stream_page(cairn_pgx *x, int heads, const uint8_t *after, size_t limit, uint8_t (*ids)[16],
                       uint64_t *versions, size_t *n)
{
    *n = 0;
    pgx_read_end(&x->base);
    if (limit == 0) return CAIRN_OK;
    cairn_pg_rows rows;
    int rc = heads ? cairn_pg_stream_heads(x->pg, after, limit, &rows)
                   : cairn_pg_snapshot_streams(x->pg, after, limit, &rows);
    if (rc) return failed(x, rc);
    for (size_t i = 0; i < rows.n && i < limit; i++) {
        if (!rows.row[i].stream_id) {
            rc = cairn_engine_fail(&x->base, CAIRN_CORRUPT, "a stream id in %s is malformed", x->where);
            break;
        }
        memcpy(ids[*n], rows.row[i].stream_id, 16);
        if (versions) versions[*n] = rows.row[i].version;
        ++*n;
    }
    cairn_pg_rows_free(&rows);
    return rc;
}

static int pgx_snapshot_streams(cairn_engine *e, const uint8_t *after, size_t limit, uint8_t (*ids)[16], size_t *n)
{
    return stream_page(PGX(e), 0, after, limit, ids, NULL, n);
}

static int pgx_stream_heads(cairn_engine *e, const uint8_t *after, size_t limit, uint8_t (*ids)[16],
                            uint64_t *versions, size_t *n)
{
    return stream_page(PGX(e), 1, after, limit, ids, versions, n);
}

/* ---- views ------------------------------------------------------------------- */

/* A stored view key "view \0 key": its two parts (CAIRN_INVALID when it has no \0). */
static int split_view_key(cairn_pgx *x, cairn_slice stored, cairn_pg_bytes *view, cairn_pg_bytes *key)
{
    const char *nul = memchr(stored.ptr, 0, stored.len);
    if (!nul) return cairn_engine_fail(&x->base, CAIRN_INVALID, "a view key without its view's name");
    *view = (cairn_pg_bytes){ (const uint8_t *)stored.ptr, (size_t)(nul - stored.ptr) };
    *key = (cairn_pg_bytes){ (const uint8_t *)nul + 1, stored.len - (size_t)(nul - stored.ptr) - 1 };
    return CAIRN_OK;
}

static int pgx_view_write(cairn_engine *e, const cairn_view_put *puts, size_t n, const cairn_tracking *t,
                          cairn_guard guard)
{
    cairn_pgx *x = PGX(e);
    cairn_pg_view_op *ops = malloc((n ? n : 1) * sizeof *ops);
    if (!ops) return cairn_engine_fail(e, CAIRN_STORE, "out of memory writing a view to %s", x->where);
    cairn_pg_bytes view = { NULL, 0 }, app = { NULL, 0 }, tview;
    int rc = CAIRN_OK;
    for (size_t i = 0; i < n && rc == CAIRN_OK; i++) {
        cairn_pg_bytes v = { NULL, 0 }, k = { NULL, 0 };
        rc = split_view_key(x, puts[i].key, &v, &k);
        if (rc == CAIRN_OK && view.ptr && (v.len != view.len || memcmp(v.ptr, view.ptr, v.len) != 0))
            rc = cairn_engine_fail(e, CAIRN_INVALID, "one view write names two views");
        view = v;
        ops[i] = (cairn_pg_view_op){ k, { (const uint8_t *)puts[i].value.ptr, puts[i].value.len }, puts[i].del };
    }
    if (rc == CAIRN_OK && t) {
        if (!split_tracking((cairn_slice){ t->app, t->app_len }, &tview, &app) ||
            (view.ptr && (tview.len != view.len || memcmp(tview.ptr, view.ptr, view.len) != 0)))
            rc = cairn_engine_fail(e, CAIRN_INVALID, "a view's tracking names another view");
        view = tview;
    }
    /* the guard sees the key state, and the write commits only while it is still that
     * one: a rekey or an encryption in between is seen by the guard on the next try */
    for (int tries = 0; rc == CAIRN_OK && view.ptr;) {
        cairn_pg_prepared p;
        rc = guarded(x, guard, &p);
        if (rc) break;
        uint64_t keygen = p.ks.keygen;
        cairn_pg_prepared_free(&p);
        rc = cairn_pg_view_write(x->pg, view, ops, n, app, t ? t->id : 0, t ? t->first : 0, 1, keygen);
        if (rc == CAIRN_OK) break;
        if (!again(x, rc, &tries)) {
            rc = failed(x, rc);
            break;
        }
        rc = CAIRN_OK;
    }
    free(ops);
    return rc;
}

static int pgx_view_get(cairn_engine *e, cairn_slice key, cairn_slice *value, int *found)
{
    cairn_pgx *x = PGX(e);
    pgx_read_end(e);
    *found = 0;
    cairn_pg_bytes view = { NULL, 0 }, k = { NULL, 0 };
    int rc = split_view_key(x, key, &view, &k);
    if (rc) return rc;
    cairn_pg_rows rows;
    rc = cairn_pg_view_get(x->pg, view, k, &rows);
    if (rc) return failed(x, rc);
    if (rows.n == 0) {
        cairn_pg_rows_free(&rows);
        return CAIRN_OK;
    }
    *found = 1;
    *value = slice(rows.row[0].bytes);
    return keep(x, &rows);
}

static int pgx_view_scan(cairn_engine *e, cairn_slice from, int after)
{
    cairn_pgx *x = PGX(e);
    pgx_read_end(e);
    cairn_pg_bytes view = { NULL, 0 }, k = { NULL, 0 };
    x->across = !memchr(from.ptr, 0, from.len);
    if (x->across) {
        /* no view's name in it ("", or "name \1" past a view: listing the views): every stored
         * key at or after it, which are the keys of the views named `from` or later */
        if (from.len > sizeof x->view) return cairn_engine_fail(e, CAIRN_INVALID, "a view scan from a key too long");
        memcpy(x->view, from.ptr, from.len);
        x->view_len = from.len;
        x->has_after = 0;
        x->reading = PREAD_VIEW;
        x->more = 1;
        return CAIRN_OK;
    }
    int rc = split_view_key(x, from, &view, &k);
    if (rc) return rc;
    memcpy(x->view, view.ptr, view.len);
    x->view_len = view.len;
    /* from a prefix: keys that start with it; after a key: every later key of the view
     * (the mapper stops at the first one without its prefix) */
    x->vprefix_len = after ? 0 : k.len;
    if (!after) memcpy(x->vprefix, k.ptr, k.len);
    x->has_after = after;
    x->vafter_len = after ? k.len : 0;
    if (after) memcpy(x->vafter, k.ptr, k.len);
    x->reading = PREAD_VIEW;
    x->more = 1;
    return CAIRN_OK;
}

static int pgx_view_next(cairn_engine *e, cairn_slice *key, cairn_slice *value)
{
    cairn_pgx *x = PGX(e);
    if (x->reading != PREAD_VIEW) return CAIRN_END;
    if (x->at == x->rows.n) {
        if (!x->more) return CAIRN_END;
        int rc = keep_batch(x);
        if (rc) return rc;
        cairn_pg_bytes view = { x->view, x->view_len }, after = { x->has_after ? x->vafter : NULL, x->vafter_len };
        rc = x->across ? cairn_pg_view_scan_all(x->pg, view, after, VIEW_BATCH, &x->rows)
                       : cairn_pg_view_scan(x->pg, view, (cairn_pg_bytes){ x->vprefix, x->vprefix_len }, after,
                                            VIEW_BATCH, &x->rows);
        x->at = 0;
        if (rc) {
            x->more = 0;
            return failed(x, rc);
        }
        x->more = x->rows.n == VIEW_BATCH;
        if (x->rows.n == 0) return CAIRN_END;
        cairn_pg_bytes last = x->rows.row[x->rows.n - 1].key;
        if (x->across) { /* the next batch: after this view's key */
            cairn_pg_bytes name = { NULL, 0 };
            rc = split_view_key(x, slice(last), &name, &last);
            if (rc) return rc;
            memcpy(x->view, name.ptr, name.len);
            x->view_len = name.len;
        }
        if (last.len > sizeof x->vafter) return cairn_engine_fail(e, CAIRN_CORRUPT, "a view key too long");
        memcpy(x->vafter, last.ptr, last.len);
        x->vafter_len = last.len;
        x->has_after = 1;
    }
    const cairn_pg_row *r = &x->rows.row[x->at++];
    if (x->across) { /* the stored key as it is */
        *key = slice(r->key);
        *value = slice(r->bytes);
        return CAIRN_OK;
    }
    if (x->view_len + 1 + r->key.len > sizeof x->vkey) return cairn_engine_fail(e, CAIRN_CORRUPT, "a view key too long");
    /* the stored key as the mapper made it: view \0 key (valid until the next call) */
    memcpy(x->vkey, x->view, x->view_len);
    x->vkey[x->view_len] = 0;
    memcpy(x->vkey + x->view_len + 1, r->key.ptr, r->key.len);
    *key = (cairn_slice){ (const char *)x->vkey, x->view_len + 1 + r->key.len };
    *value = slice(r->bytes);
    return CAIRN_OK;
}

/* The mapper clears a view by its stored prefixes: "view \0" for its keys, "view /" for its
 * tracking; here both are the view's name. */
static int pgx_view_clear(cairn_engine *e, cairn_slice keys_prefix, cairn_slice tracking_prefix, cairn_guard guard)
{
    cairn_pgx *x = PGX(e);
    cairn_pg_bytes view = { NULL, 0 }, rest = { NULL, 0 };
    int rc = split_view_key(x, keys_prefix, &view, &rest);
    if (rc) return rc;
    if (rest.len != 0 || tracking_prefix.len != view.len + 1 || memcmp(tracking_prefix.ptr, view.ptr, view.len) != 0 ||
        tracking_prefix.ptr[view.len] != '/')
        return cairn_engine_fail(e, CAIRN_INVALID, "a view clear must name one view's keys and tracking");
    cairn_pg_prepared p;
    rc = guarded(x, guard, &p);
    if (rc) return rc;
    cairn_pg_prepared_free(&p);
    rc = cairn_pg_view_clear(x->pg, view);
    return rc ? failed(x, rc) : CAIRN_OK;
}

/* ---- key changes --------------------------------------------------------------- */

static int pgx_forget(cairn_engine *e, const uint8_t id[16], cairn_guard guard)
{
    cairn_pgx *x = PGX(e);
    for (int tries = 0;;) {
        cairn_pg_prepared p;
        int rc = guarded(x, guard, &p);
        if (rc) return rc;
        uint64_t keygen = p.ks.keygen;
        cairn_pg_prepared_free(&p);
        rc = cairn_pg_forget(x->pg, id, 1, keygen);
        if (rc == CAIRN_OK) return CAIRN_OK;
        if (rc == CAIRN_NOTFOUND) {
            e->errmsg[0] = '\0'; /* the mapper names the aggregate */
            return rc;
        }
        if (!again(x, rc, &tries)) return failed(x, rc);
    }
}

/* One attempt at a rekey: every live data key read and rewrapped, then
 * replaced at once if the key state is still at keygen. */
static int rekey_once(cairn_pgx *x, int (*rewrap)(void *ctx, const uint8_t id[16], cairn_slice stored,
                                                  uint8_t out[CAIRN_WRAPPED_KEY_BYTES]),
                      void *rewrap_ctx, cairn_slice keycheck, uint64_t keygen)
{
    size_t n = 0, cap = 0;
    cairn_pg_key *keys = NULL;
    uint8_t *mem = NULL; /* ids and wrapped keys: 16 + CAIRN_WRAPPED_KEY_BYTES each */
    uint8_t after[16];
    int rc = CAIRN_OK, have_after = 0;
    for (;;) {
        cairn_pg_rows rows;
        rc = cairn_pg_read_keys(x->pg, have_after ? after : NULL, KEY_BATCH, &rows);
        if (rc) {
            rc = failed(x, rc);
            break;
        }
        for (size_t i = 0; i < rows.n && rc == CAIRN_OK; i++) {
            const cairn_pg_row *r = &rows.row[i];
            if (!r->stream_id || r->bytes.len <= 1) continue; /* forgotten */
            if (n == cap) {
                cap = cap ? cap * 2 : 64;
                uint8_t *m2 = realloc(mem, cap * (16 + CAIRN_WRAPPED_KEY_BYTES));
                if (!m2) {
                    rc = cairn_engine_fail(&x->base, CAIRN_STORE, "out of memory changing the key of %s", x->where);
                    break;
                }
                mem = m2;
            }
            uint8_t *slot = mem + n * (16 + CAIRN_WRAPPED_KEY_BYTES);
            memcpy(slot, r->stream_id, 16);
            rc = rewrap(rewrap_ctx, r->stream_id, slice(r->bytes), slot + 16);
            n++;
        }
        size_t got = rows.n;
        if (got) memcpy(after, rows.row[got - 1].stream_id, 16);
        have_after = 1;
        cairn_pg_rows_free(&rows);
        if (rc || got < KEY_BATCH) break;
    }
    if (rc == CAIRN_OK && !(keys = malloc((n ? n : 1) * sizeof *keys)))
        rc = cairn_engine_fail(&x->base, CAIRN_STORE, "out of memory changing the key of %s", x->where);
    if (rc == CAIRN_OK) {
        for (size_t i = 0; i < n; i++) {
            uint8_t *slot = mem + i * (16 + CAIRN_WRAPPED_KEY_BYTES);
            keys[i] = (cairn_pg_key){ slot, { slot + 16, CAIRN_WRAPPED_KEY_BYTES } };
        }
        rc = cairn_pg_rekey(x->pg, keys, n, (cairn_pg_bytes){ (const uint8_t *)keycheck.ptr, keycheck.len }, keygen);
    }
    free(keys);
    free(mem);
    return rc;
}

static int pgx_rekey(cairn_engine *e, int (*rewrap)(void *ctx, const uint8_t id[16], cairn_slice stored,
                                                    uint8_t out[CAIRN_WRAPPED_KEY_BYTES]),
                     void *rewrap_ctx, cairn_slice keycheck, cairn_guard guard)
{
    cairn_pgx *x = PGX(e);
    for (int tries = 0;;) {
        cairn_pg_prepared p;
        int rc = guarded(x, guard, &p);
        if (rc) return rc;
        uint64_t keygen = p.ks.keygen;
        cairn_pg_prepared_free(&p);
        rc = rekey_once(x, rewrap, rewrap_ctx, keycheck, keygen);
        if (rc == CAIRN_OK || !again(x, rc, &tries)) return rc && !e->errmsg[0] ? failed(x, rc) : rc;
        e->errmsg[0] = '\0';
    }
}

/* ---- verify: one consistent walk ---------------------------------------------------- */

typedef struct {
    cairn_pgx *x;
    const cairn_verify_walk *w;
    uint64_t total, done, numbered, top;
} walk_state;

enum walk_kind { WALK_EVENTS, WALK_SNAPSHOTS, WALK_KEYS };

/* Every row of one kind, in (stream, version) order, a batch at a time (keyset
 * pagination after the last row), each handed to each(); a non-zero return stops. */
static int walk_rows(walk_state *ws, enum walk_kind kind, int (*each)(walk_state *ws, const cairn_pg_row *r))
{
    cairn_pgx *x = ws->x;
    uint8_t after[16];
    uint64_t after_version = 0;
    int have_after = 0;
    size_t batch = kind == WALK_KEYS ? KEY_BATCH : READ_BATCH;
    for (;;) {
        cairn_pg_rows rows;
        const uint8_t *from = have_after ? after : NULL;
        int rc = kind == WALK_EVENTS      ? cairn_pg_walk_events(x->pg, from, after_version, batch, &rows)
                 : kind == WALK_SNAPSHOTS ? cairn_pg_walk_snapshots(x->pg, from, after_version, batch, &rows)
                                          : cairn_pg_read_keys(x->pg, from, batch, &rows);
        if (rc) return failed(x, rc);
        for (size_t i = 0; i < rows.n && rc == CAIRN_OK; i++)
            if (rows.row[i].stream_id) rc = each(ws, &rows.row[i]);
        size_t got = rows.n;
        if (got && rows.row[got - 1].stream_id) {
            memcpy(after, rows.row[got - 1].stream_id, 16);
            after_version = rows.row[got - 1].version;
            have_after = 1;
        }
        cairn_pg_rows_free(&rows);
        if (rc || got < batch) return rc;
    }
}

static int walk_event(walk_state *ws, const cairn_pg_row *r)
{
    cairn_record rec;
    int found = cairn_record_parse(r->bytes.ptr, r->bytes.len, &rec) != CAIRN_OK ? CAIRN_VERIFY_MALFORMED
                : memcmp(rec.stream_id, r->stream_id, 16) != 0 || rec.version != r->version ? CAIRN_VERIFY_MISPLACED
                : CAIRN_VERIFY_OK;
    int usable = found != CAIRN_VERIFY_MALFORMED;
    if (usable) rec.notification_id = r->id;
    if (r->id) ws->numbered++;
    if (r->id > ws->top) ws->top = r->id;
    ws->w->event(ws->w->ctx, r->stream_id, r->version, r->id, found, usable ? &rec : NULL, usable ? r->bytes.ptr : NULL,
                 usable ? r->bytes.len : 0);
    if (++ws->done % PROGRESS_EVERY == 0 && ws->w->progress(ws->w->ctx, ws->done, ws->total))
        return cairn_engine_fail(&ws->x->base, CAIRN_INTERRUPTED, "verify of %s stopped", ws->x->where);
    return CAIRN_OK;
}

static int walk_key(walk_state *ws, const cairn_pg_row *r)
{
    ws->w->key(ws->w->ctx, r->stream_id, slice(r->bytes));
    return CAIRN_OK;
}

static int walk_snapshot(walk_state *ws, const cairn_pg_row *r)
{
    cairn_pgx *x = ws->x;
    cairn_record snap;
    if (cairn_record_parse(r->bytes.ptr, r->bytes.len, &snap) != CAIRN_OK || memcmp(snap.stream_id, r->stream_id, 16) != 0 ||
        snap.version != r->version) {
        char desc[80], msg[160];
        cairn_record_describe(r->stream_id, r->version, desc, sizeof desc);
        snprintf(msg, sizeof msg, "the snapshot of %s is malformed or holds another stream or version", desc);
        ws->w->problem(ws->w->ctx, msg);
        ws->w->snapshot(ws->w->ctx, NULL, NULL, 0, NULL);
        return CAIRN_OK;
    }
    /* the event it was taken at, in the walk's snapshot too */
    uint8_t hash[CAIRN_HASH_BYTES];
    cairn_pg_rows ev;
    int rc = cairn_pg_read_stream(x->pg, r->stream_id, r->version, r->version, 0, 1, &ev);
    if (rc) return failed(x, rc);
    int have = ev.n == 1 && hash_of(x, ev.row[0].bytes, r->stream_id, r->version, hash) == CAIRN_OK;
    cairn_pg_rows_free(&ev);
    x->base.errmsg[0] = '\0'; /* a bad event is verify's finding, not this walk's failure */
    ws->w->snapshot(ws->w->ctx, &snap, r->bytes.ptr, r->bytes.len, have ? hash : NULL);
    return CAIRN_OK;
}

/* has() of the DCB walk: one look-up in the walk's snapshot. */
static int walk_dcb_has(void *hctx, char kind, cairn_slice name, uint64_t id)
{
    walk_state *ws = hctx;
    uint8_t key[1 + CAIRN_DCB_NAME_MAX];
    if (name.len > CAIRN_DCB_NAME_MAX) return 0;
    key[0] = (uint8_t)kind;
    memcpy(key + 1, name.ptr, name.len);
    int found, rc = cairn_pg_dcb_has(ws->x->pg, (cairn_pg_bytes){ key, 1 + name.len }, id, &found);
    if (rc == CAIRN_OK) return found;
    ws->w->problem(ws->w->ctx, cairn_pg_errmsg(ws->x->pg));
    return -1;
}

/* Every DCB index entry to w->dcb_entry, with the event it names; then the idempotency records. */
static int walk_dcb(walk_state *ws)
{
    cairn_pgx *x = ws->x;
    uint8_t after[1 + CAIRN_DCB_NAME_MAX];
    cairn_pg_bytes after_name = { NULL, 0 };
    uint64_t after_id = 0;
    for (;;) {
        cairn_pg_rows rows;
        int rc = cairn_pg_walk_dcb(x->pg, after_name, after_id, READ_BATCH, &rows);
        if (rc) return failed(x, rc);
        for (size_t i = 0; i < rows.n; i++) {
            const cairn_pg_row *r = &rows.row[i];
            cairn_record rec;
            int usable = r->bytes.ptr && r->stream_id && cairn_record_parse(r->bytes.ptr, r->bytes.len, &rec) == CAIRN_OK;
            if (usable) rec.notification_id = r->id;
            char kind = r->key.len ? (char)r->key.ptr[0] : 0;
            if ((kind != 'a' && kind != 'y' && kind != 'g') || (kind == 'a') != (r->key.len == 1)) {
                char msg[120];
                snprintf(msg, sizeof msg, "the DCB index has a malformed entry (notification %llu)",
                         (unsigned long long)r->id);
                ws->w->problem(ws->w->ctx, msg);
                continue;
            }
            cairn_slice name = { (const char *)r->key.ptr + 1, r->key.len - 1 };
            ws->w->dcb_entry(ws->w->ctx, kind, name, r->id, slice(r->type), usable ? &rec : NULL, walk_dcb_has, ws);
        }
        size_t got = rows.n;
        if (got) {
            const cairn_pg_row *last = &rows.row[got - 1];
            size_t len = last->key.len < sizeof after ? last->key.len : sizeof after;
            memcpy(after, last->key.ptr, len);
            after_name = (cairn_pg_bytes){ after, len };
            after_id = last->id;
        }
        cairn_pg_rows_free(&rows);
        if (got < READ_BATCH) break;
    }
    cairn_pg_rows bad;
    int rc = cairn_pg_walk_once_bad(x->pg, 100, &bad);
    if (rc) return failed(x, rc);
    for (size_t i = 0; i < bad.n; i++) {
        char msg[400];
        snprintf(msg, sizeof msg, "the idempotency record of '%.*s' names notifications %llu to %llu, not all recorded",
                 (int)bad.row[i].key.len, (const char *)bad.row[i].key.ptr, (unsigned long long)bad.row[i].id,
                 (unsigned long long)(bad.row[i].id + bad.row[i].version - 1));
        ws->w->problem(ws->w->ctx, msg);
    }
    cairn_pg_rows_free(&bad);
    return CAIRN_OK;
}

static int pgx_verify(cairn_engine *e, const cairn_verify_walk *w)
{
    cairn_pgx *x = PGX(e);
    pgx_read_end(e);
    int rc = cairn_pg_walk_begin(x->pg);
    if (rc) return failed(x, rc);
    cairn_pg_stats st;
    walk_state ws = { .x = x, .w = w };
    rc = cairn_pg_stat(x->pg, &st);
    if (rc) rc = failed(x, rc);
    ws.total = st.events;
    if (rc == CAIRN_OK) rc = walk_rows(&ws, WALK_EVENTS, walk_event);
    /* ids are unique (an index says so): numbered ones from 1 to the counter, as many as it says, run without gaps */
    if (rc == CAIRN_OK && (ws.numbered != st.max_id || ws.top > st.max_id)) {
        char msg[200];
        snprintf(msg, sizeof msg, "notification ids have gaps: %llu numbered events, the highest id %llu, the counter %llu",
                 (unsigned long long)ws.numbered, (unsigned long long)ws.top, (unsigned long long)st.max_id);
        w->problem(w->ctx, msg);
    }
    if (rc == CAIRN_OK) rc = walk_rows(&ws, WALK_KEYS, walk_key);
    if (rc == CAIRN_OK) rc = walk_rows(&ws, WALK_SNAPSHOTS, walk_snapshot);
    if (rc == CAIRN_OK) rc = walk_dcb(&ws);
    if (rc == CAIRN_OK) w->progress(w->ctx, ws.total, ws.total);
    cairn_pg_walk_end(x->pg);
    return rc;
}

/* ---- following: LISTEN/NOTIFY --------------------------------------------------------- */

/* ---- a dry run's copy: a new schema of the same database ---------------------------- */

static int pgx_copy(cairn_engine *e, const char *schema)
{
    cairn_pgx *x = PGX(e);
    int rc = cairn_pg_copy(x->pg, schema);
    return rc ? failed(x, rc) : CAIRN_OK;
}

static uint32_t *pgx_wake_word(cairn_engine *e)
{
    (void)e;
    return NULL;
}

static int pgx_wake_seq(cairn_engine *e, uint32_t *seq)
{
    cairn_pgx *x = PGX(e);
    uint64_t max;
    if (cairn_pg_max_id(x->pg, &max)) return 0; /* the server is away: poll, the read says why */
    x->wake_last = max;
    *seq = (uint32_t)max;
    return 1;
}

static int pgx_wait(cairn_engine *e, uint32_t seen, double timeout_s)
{
    cairn_pgx *x = PGX(e);
    /* seen is the low half of an id wake_seq gave; the whole id when it was the last one */
    uint64_t seen_id = (uint32_t)x->wake_last == seen ? x->wake_last : seen;
    int newer;
    int rc = cairn_pg_wait(x->pg, seen_id, timeout_s, &newer);
    if (rc == CAIRN_OK) return CAIRN_OK;
    /* no LISTEN (the server is away, or a hot standby refuses it): sleep a while, as a
     * poll, rather than let the follower spin; its next read says what is wrong */
    double s = timeout_s < WAIT_POLL_S ? timeout_s : WAIT_POLL_S;
    struct timespec ts = { (time_t)s, (long)((s - (double)(time_t)s) * 1e9) };
    nanosleep(&ts, NULL); /* a signal ends it early */
    return failed(x, rc);
}

const cairn_engine_ops cairn_pg_engine = {
    .open = pgx_open,
    .close = pgx_close,
    .key_state = pgx_key_state,
    .set_cipher = pgx_set_cipher,
    .append = pgx_append,
    .read_stream = pgx_read_stream,
    .read_log = pgx_read_log,
    .next = pgx_next,
    .event_hash = pgx_event_hash,
    .data_key = pgx_data_key,
    .read_snapshot = pgx_read_snapshot,
    .read_end = pgx_read_end,
    .max_id = pgx_max_id,
    .dcb_read = pgx_dcb_read,
    .once_get = pgx_once_get,
    .tracking_get = pgx_tracking_get,
    .stat = pgx_stat,
    .tracking_scan = pgx_tracking_scan,
    .snapshot_streams = pgx_snapshot_streams,
    .stream_heads = pgx_stream_heads,
    .view_write = pgx_view_write,
    .view_clear = pgx_view_clear,
    .view_get = pgx_view_get,
    .view_scan = pgx_view_scan,
    .view_next = pgx_view_next,
    .forget = pgx_forget,
    .rekey = pgx_rekey,
    .verify = pgx_verify,
    .copy = pgx_copy,
    .wake_word = pgx_wake_word,
    .wake_seq = pgx_wake_seq,
    .wait = pgx_wait,
};
