/*
 * mapper_append.c -- a save: what the mapper does before the engine's
 * transaction (check the batch's shape, find its streams, build and compress
 * every body, size every stored record) and inside it (seal_batch: check the
 * key state and the versions, seal, chain). The engine does the rest
 * (recorder.h).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cairn.h"
#include "mapper.h"

/* One record of the batch, prepared before the transaction. */
typedef struct {
    cairn_slice body;       /* what gets sealed */
    unsigned flags;
    size_t at, len;         /* where its stored bytes go in the output */
    uint32_t head;          /* its stream in heads[] */
} prep;

/* The mapper's view of a stream of the batch. */
typedef struct {
    int has_events;         /* the batch has events of it (else only snapshots) */
    uint64_t first;         /* the version of its first event in the batch */
    size_t first_at;        /* that event's index in the batch */
    uint64_t last;          /* of its last event in the batch so far */
    const uint8_t *chain;   /* while sealing: the hash its next event links to */
    uint64_t waits_on;      /* the round of links its last event's hash is in */
} head_info;

/* The save's buffers (cairn_save.mem). */
enum { M_PREPS, M_HEADS, M_INFO, M_BASES, M_STORED, M_BODIES, M_OUT, M_TABLE, M_KEYS, M_ORDER, M_COUNT };

/* A save's working memory, kept on the handle between saves. */
typedef struct cairn_save {
    uint8_t *mem[M_COUNT];
    size_t cap[M_COUNT];
    cairn_store *s;
    const cairn_batch *b;
    prep *preps;
    head_info *info;
    uint8_t *out, *hashes;
    uint32_t *table;        /* open addressing: stream id -> heads index + 1 */
    size_t table_size;
} cairn_save;

static void *room(cairn_save *sv, int which, size_t bytes)
{
    return cairn_store_reserve(&sv->mem[which], &sv->cap[which], bytes ? bytes : 1) ? NULL : sv->mem[which];
}

void cairn_store_save_free(cairn_store *s)
{
    if (!s->save) return;
    for (int i = 0; i < M_COUNT; i++) free(s->save->mem[i]);
    free(s->save);
    s->save = NULL;
}

/* The fields every stored record needs: a topic and a class version that fit. */
static int check_record(cairn_store *s, const cairn_record *r, const char *what, size_t i)
{
    if (r->topic_len == 0 || r->topic_len > CAIRN_TOPIC_MAX)
        return cairn_store_fail(s, CAIRN_INVALID, "%s %zu: topic must be 1 to %d bytes", what, i + 1,
                                CAIRN_TOPIC_MAX);
    if (r->class_version > CAIRN_CLASS_VERSION_MAX)
        return cairn_store_fail(s, CAIRN_INVALID, "%s %zu: class version %u is above %d", what, i + 1,
                                r->class_version, CAIRN_CLASS_VERSION_MAX);
    if (r->metadata_len > CAIRN_METADATA_MAX || (r->metadata_len && !r->metadata))
        return cairn_store_fail(s, CAIRN_INVALID, "%s %zu: bad metadata", what, i + 1);
    return CAIRN_OK;
}

/* The batch's shape, before any transaction. */
static int bad_name(cairn_slice name)
{
    return name.len == 0 || name.len > CAIRN_DCB_NAME_MAX || !name.ptr;
}

static int check_names(cairn_store *s, const cairn_slice *names, size_t n, const char *what)
{
    for (size_t i = 0; i < n; i++)
        if (bad_name(names[i]))
            return cairn_store_fail(s, CAIRN_INVALID, "a DCB %s must be 1 to %d bytes", what, CAIRN_DCB_NAME_MAX);
    return CAIRN_OK;
}

/* DCB events, the append condition and the idempotency key (store.h). */
static int check_dcb(cairn_store *s, const cairn_batch *b)
{
    if ((b->ndcb || b->fail_if) && !s->eng->ops->dcb_read)
        return cairn_store_fail(s, CAIRN_CONFIG, "the %s engine does not record DCB events yet", s->eng->name);
    if (b->once.ptr && !s->eng->ops->once_get)
        return cairn_store_fail(s, CAIRN_CONFIG, "the %s engine does not record idempotent saves yet", s->eng->name);
    if (b->once.ptr && (b->once.len == 0 || b->once.len > CAIRN_ONCE_KEY_MAX))
        return cairn_store_fail(s, CAIRN_INVALID, "an idempotency key must be 1 to %d bytes", CAIRN_ONCE_KEY_MAX);
    for (size_t i = 0; i < b->ndcb; i++) {
        const cairn_dcb_event *d = &b->dcb[i];
        if (d->event >= b->n || (i > 0 && d->event <= b->dcb[i - 1].event))
            return cairn_store_fail(s, CAIRN_INVALID, "DCB event %zu names no event of the batch", i + 1);
        if (bad_name(d->type))
            return cairn_store_fail(s, CAIRN_INVALID, "a DCB type must be 1 to %d bytes", CAIRN_DCB_NAME_MAX);
        int rc = check_names(s, d->tags, d->ntags, "tag");
        if (rc) return rc;
    }
    for (size_t i = 0; b->fail_if && i < b->fail_if->nitems; i++) {
        const cairn_dcb_item *it = &b->fail_if->items[i];
        int rc = check_names(s, it->types, it->ntypes, "type");
        if (rc == 0) rc = check_names(s, it->tags, it->ntags, "tag");
        if (rc) return rc;
    }
    return CAIRN_OK;
}

/* A record of a string id must be keyed by that id's key (string_id.h);
 * prev: the record before it in the batch, whose key was checked. */
static int check_string_id(cairn_store *s, const cairn_record *r, const cairn_record *prev, const char *what,
                           size_t i)
{
    if (!r->name_len) return CAIRN_OK;
    if (prev && prev->name_len == r->name_len && memcmp(prev->stream_id, r->stream_id, 16) == 0 &&
        memcmp(prev->name, r->name, r->name_len) == 0)
        return CAIRN_OK;
    uint8_t key[16];
    int rc = cairn_store_string_id(s, r->name, r->name_len, 1, key);
    if (rc) return rc;
    if (memcmp(key, r->stream_id, 16) != 0)
        return cairn_store_fail(s, CAIRN_INVALID, "%s %zu: its stream id is not the key of its string id", what,
                                i + 1);
    return CAIRN_OK;
}

static int check_batch(cairn_store *s, const cairn_batch *b)
{
    const cairn_record *ev = b->events;
    for (size_t i = 0; i < b->n; i++) {
        int rc = check_record(s, &ev[i], "event", i);
        if (rc == CAIRN_OK) rc = check_string_id(s, &ev[i], i ? &ev[i - 1] : NULL, "event", i);
        if (rc) return rc;
        if (memcmp(ev[i].stream_id, CAIRN_VIEW_KEY_ID, 16) == 0)
            return cairn_store_fail(s, CAIRN_INVALID, "event %zu: its aggregate id is reserved for cairn's view key",
                                    i + 1);
        if (i > 0 && memcmp(ev[i].stream_id, ev[i - 1].stream_id, 16) == 0 &&
            ev[i].version != ev[i - 1].version + 1)
            return cairn_store_conflict(s, &ev[i], ev[i].version, 0, 0);
    }
    for (size_t i = 0; i < b->nsnapshots; i++) {
        int rc = check_record(s, &b->snapshots[i], "snapshot", i);
        if (rc == CAIRN_OK) rc = check_string_id(s, &b->snapshots[i], NULL, "snapshot", i);
        if (rc) return rc;
    }
    if (b->tracking && (b->tracking->app_len == 0 || b->tracking->app_len > 511 || b->tracking->id == 0))
        return cairn_store_fail(s, CAIRN_INVALID, "a tracking record needs an application name and an id above 0");
    if (b->tracking && b->tracking->first > b->tracking->id)
        return cairn_store_fail(s, CAIRN_INVALID, "a tracking record's batch starts at %llu, after its id %llu",
                                (unsigned long long)b->tracking->first, (unsigned long long)b->tracking->id);
    return check_dcb(s, b);
}

/* The heads index of a stream, added when new. */
static uint32_t head_of(cairn_save *sv, cairn_write *w, const uint8_t id[16])
{
    uint32_t hv;
    memcpy(&hv, id + 12, 4); /* ids are random or hashed */
    size_t mask = sv->table_size - 1;
    for (size_t at = hv & mask;; at = (at + 1) & mask) {
        uint32_t e = sv->table[at];
        if (e == 0) {
            cairn_stream_head *h = &w->heads[w->nheads];
            memset(h, 0, sizeof *h);
            memcpy(h->id, id, 16);
            memset(&sv->info[w->nheads], 0, sizeof sv->info[0]);
            sv->table[at] = (uint32_t)++w->nheads;
            return (uint32_t)(w->nheads - 1);
        }
        if (memcmp(w->heads[e - 1].id, id, 16) == 0) return e - 1;
    }
}

/* Saves of this many streams or more hand the engine their heads in id order. */
#define ORDER_MIN 8

/* The first n heads (those with events) in the order of their ids, for the
 * engine's stream index (w->order): a new stream's index entry is inserted
 * as its head is looked up, and LMDB inserts a key on the page its cursor
 * is on without a descent from the root, so a save of many new aggregates
 * in id order walks the index once rather than once per aggregate. The
 * order is an optimisation only (any order gives the same result), so it is
 * by the ids' first 4 bytes, finer than any index's pages, sorted by radix
 * (4 passes, no comparisons); without the memory it is left out. */
static void order_heads(cairn_save *sv, cairn_write *w, size_t n)
{
    w->order = NULL;
    w->norder = 0;
    if (n < ORDER_MIN || n > UINT32_MAX) return;
    uint64_t *keys = room(sv, M_KEYS, 2 * n * sizeof *keys); /* the keys, and the scratch of a pass */
    uint32_t *order = room(sv, M_ORDER, n * sizeof *order);
    if (!keys || !order) return;
    uint64_t *from = keys, *to = keys + n;
    for (size_t i = 0; i < n; i++) {
        const uint8_t *id = w->heads[i].id;
        uint64_t top = (uint64_t)id[0] << 24 | (uint64_t)id[1] << 16 | (uint64_t)id[2] << 8 | id[3];
        from[i] = top << 32 | i;
    }
    for (int shift = 32; shift < 64; shift += 8) { /* least significant byte of the 4 first */
        size_t count[257] = { 0 };
        for (size_t i = 0; i < n; i++) count[((from[i] >> shift) & 0xff) + 1]++;
        for (int d = 0; d < 256; d++) count[d + 1] += count[d];
        for (size_t i = 0; i < n; i++) to[count[(from[i] >> shift) & 0xff]++] = from[i];
        uint64_t *t = from;
        from = to;
        to = t;
    }
    for (size_t i = 0; i < n; i++) order[i] = (uint32_t)from[i];
    w->order = order;
    w->norder = n;
}

/* Find the batch's streams and check that a stream met again later in the
 * batch goes on where its earlier run stopped. */
static int plan_heads(cairn_save *sv, cairn_write *w)
{
    const cairn_batch *b = sv->b;
    size_t records = b->n + b->nsnapshots;
    size_t size = 16;
    while (size < 2 * records) size *= 2;
    sv->table = room(sv, M_TABLE, size * sizeof *sv->table);
    w->heads = room(sv, M_HEADS, records * sizeof *w->heads);
    sv->info = room(sv, M_INFO, records * sizeof *sv->info);
    if (!sv->table || !w->heads || !sv->info) return ENOMEM;
    memset(sv->table, 0, size * sizeof *sv->table);
    sv->table_size = size;
    w->nheads = 0;
    for (size_t i = 0; i < b->n; i++) {
        const cairn_record *ev = &b->events[i];
        uint32_t h = head_of(sv, w, ev->stream_id);
        head_info *hi = &sv->info[h];
        if (hi->has_events && ev->version != hi->last + 1)
            return cairn_store_conflict(sv->s, ev, ev->version, 1, hi->last);
        if (!hi->has_events) {
            hi->first = ev->version;
            hi->first_at = i;
            w->heads[h].has_events = 1;
            w->heads[h].first_at = i;
        }
        hi->has_events = 1;
        hi->last = ev->version;
        sv->preps[i].head = h;
    }
    order_heads(sv, w, w->nheads);
    for (size_t j = 0; j < b->nsnapshots; j++) sv->preps[b->n + j].head = head_of(sv, w, b->snapshots[j].stream_id);
    return CAIRN_OK;
}

/* Build every body and size every stored record. */
static int plan_records(cairn_save *sv, cairn_write *w)
{
    cairn_store *s = sv->s;
    const cairn_batch *b = sv->b;
    size_t records = b->n + b->nsnapshots, need = 0, total = 0;
    for (size_t i = 0; i < records; i++)
        need += cairn_store_body_bound(s, i < b->n ? &b->events[i] : &b->snapshots[i - b->n]);
    uint8_t *bodies = room(sv, M_BODIES, need);
    w->stored = room(sv, M_STORED, records * sizeof *w->stored);
    if (!bodies || !w->stored) return ENOMEM;
    for (size_t i = 0; i < records; i++) {
        const cairn_record *r = i < b->n ? &b->events[i] : &b->snapshots[i - b->n];
        prep *p = &sv->preps[i];
        int rc = cairn_store_prepare_body(s, r, bodies, &p->body, &p->flags);
        if (rc) return rc;
        bodies += cairn_store_body_bound(s, r);
        p->at = total;
        p->len = cairn_store_stored_size(r, p->body.len, s->encrypted);
        total += p->len;
    }
    sv->out = room(sv, M_OUT, total + (size_t)b->n * CAIRN_HASH_BYTES);
    if (!sv->out) return ENOMEM;
    sv->hashes = sv->out + total;
    for (size_t i = 0; i < records; i++) w->stored[i] = (cairn_slice){ (const char *)sv->out + sv->preps[i].at, sv->preps[i].len };
    return CAIRN_OK;
}

/* The hash of the event a snapshot was taken at: recorded before the batch,
 * or one of the batch's own. */
static const uint8_t *snapshot_base(cairn_save *sv, cairn_write *w, size_t j)
{
    if (w->bases[j].found) return w->bases[j].hash;
    const cairn_record *snap = &sv->b->snapshots[j];
    for (size_t i = 0; i < sv->b->n; i++)
        if (sv->b->events[i].version == snap->version && memcmp(sv->b->events[i].stream_id, snap->stream_id, 16) == 0)
            return sv->hashes + i * CAIRN_HASH_BYTES;
    return NULL;
}

/* The chain links of a batch's events, hashed a group at a time so that
 * cairn_chain_hash_many can take four side by side (in S5's saves of new
 * aggregates every link is independent). An event whose stream's last hash
 * is still waiting in the group hashes the group first. */
enum { LINK_GROUP = 8 };
typedef struct {
    cairn_chain_input in[LINK_GROUP];
    uint8_t *slot[LINK_GROUP]; /* where each record keeps its hash */
    size_t event[LINK_GROUP];
    size_t n;
    uint64_t round;            /* counts the groups hashed, from 1 */
} links;

static void hash_links(cairn_save *sv, links *l)
{
    cairn_chain_hash_many(l->in, l->n);
    for (size_t j = 0; j < l->n; j++) {
        memcpy(l->slot[j], l->in[j].out, CAIRN_HASH_BYTES);
        memcpy(sv->hashes + l->event[j] * CAIRN_HASH_BYTES, l->in[j].out, CAIRN_HASH_BYTES);
    }
    l->n = 0;
    l->round++;
}

/* Event i's link: its stored bytes are written, its hash waits in l. */
static void add_link(cairn_save *sv, links *l, size_t i, uint8_t *slot)
{
    const prep *p = &sv->preps[i];
    head_info *hi = &sv->info[p->head];
    if (hi->waits_on == l->round) hash_links(sv, l); /* it links to a hash not made yet */
    uint8_t *rec = sv->out + p->at;
    cairn_record_hash_input(hi->chain, rec, p->len, &l->in[l->n]);
    l->slot[l->n] = slot;
    l->event[l->n++] = i;
    hi->chain = slot;
    hi->waits_on = l->round;
    if (l->n == LINK_GROUP) hash_links(sv, l);
}

/* What a new stream's first event links to. */
static const uint8_t NO_HEAD[CAIRN_HASH_BYTES];

/* The mapper's step inside the engine's transaction (recorder.h). */
static int seal_batch(cairn_write *w, const cairn_key_state *ks)
{
    cairn_save *sv = w->ctx;
    cairn_store *s = sv->s;
    const cairn_batch *b = sv->b;
    int rc = cairn_store_check_keys(s, ks);
    if (rc) return rc;
    for (size_t h = 0; h < w->nheads; h++) {
        cairn_stream_head *head = &w->heads[h];
        head_info *hi = &sv->info[h];
        head->put_key = 0;
        if (hi->has_events && head->found && hi->first != head->version + 1)
            return cairn_store_conflict(s, &b->events[hi->first_at], hi->first, 1, head->version);
        hi->chain = head->found ? head->hash : NO_HEAD; /* the engine's heads stay put while sealing */
        hi->waits_on = 0;
    }
    links l = { .n = 0, .round = 1 };
    size_t records = b->n + b->nsnapshots;
    for (size_t i = 0; i < records; i++) {
        prep *p = &sv->preps[i];
        cairn_stream_head *head = &w->heads[p->head];
        const cairn_record *r = i < b->n ? &b->events[i] : &b->snapshots[i - b->n];
        if (i == b->n && l.n) hash_links(sv, &l); /* the snapshots' bases may be the batch's events */
        const uint8_t *prev = NULL;
        if (i >= b->n && !(prev = snapshot_base(sv, w, i - b->n))) {
            char what[80];
            cairn_record_describe(r->stream_id, r->version, what, sizeof what);
            return cairn_store_fail(s, CAIRN_NOTFOUND, "cannot snapshot %s: there is no such event", what);
        }
        const uint8_t *dk = NULL;
        if (s->encrypted) {
            rc = cairn_store_write_key(s, head, &dk);
            if (rc) return rc;
            if (head->put_key) head->key = (cairn_slice){ (const char *)head->new_key, CAIRN_WRAPPED_KEY_BYTES };
        }
        uint8_t *slot = cairn_store_seal_body(r, p->flags, p->body, dk, sv->out + p->at);
        if (i < b->n) add_link(sv, &l, i, slot);
        else cairn_record_hash(prev, sv->out + p->at, p->len, slot);
    }
    if (l.n) hash_links(sv, &l);
    return CAIRN_OK;
}

int cairn_store_append(cairn_store *s, const cairn_batch *b, uint64_t *first_id)
{
    s->eng->errmsg[0] = '\0';
    *first_id = 0;
    if (s->read_only) return cairn_store_read_only(s);
    if (b->n == 0 && !b->tracking && b->nsnapshots == 0 && !b->once.ptr)
        return cairn_store_fail(s, CAIRN_INVALID, "nothing to append");
    int rc = check_batch(s, b);
    if (rc) return rc;
    if (!s->save && !(s->save = calloc(1, sizeof *s->save))) return cairn_store_fail(s, ENOMEM, "out of memory");
    cairn_save *sv = s->save;
    sv->s = s;
    sv->b = b;
    size_t records = b->n + b->nsnapshots;
    cairn_write w = { .events = b->events, .n = b->n, .snapshots = b->snapshots, .nsnapshots = b->nsnapshots,
                      .tracking = b->tracking, .dcb = b->dcb, .ndcb = b->ndcb, .fail_if = b->fail_if,
                      .once = b->once, .seal = seal_batch, .ctx = sv };
    if (s->encrypted) w.want = CAIRN_WANT_KEY_STATE | CAIRN_WANT_DATA_KEYS;
    else if (!s->plain_for_good) w.want = CAIRN_WANT_KEY_STATE;
    sv->preps = room(sv, M_PREPS, records * sizeof *sv->preps);
    w.bases = room(sv, M_BASES, b->nsnapshots * sizeof *w.bases);
    if (!sv->preps || !w.bases) return cairn_store_fail(s, ENOMEM, "out of memory saving to %s", s->eng->where);
    rc = plan_heads(sv, &w);
    if (rc == CAIRN_OK) rc = plan_records(sv, &w);
    if (rc == ENOMEM) return cairn_store_fail(s, ENOMEM, "out of memory saving to %s", s->eng->where);
    if (rc) return rc;
    rc = s->eng->ops->append(s->eng, &w, first_id);
    if (rc) {
        cairn_store_keys_reset(s); /* keys made in a transaction that did not commit were never stored */
        return rc;
    }
    if (b->hashes && b->n) memcpy(b->hashes, sv->hashes, b->n * CAIRN_HASH_BYTES);
    if (b->n && !s->encrypted) s->plain_for_good = 1; /* a store with plaintext events is never encrypted */
    return CAIRN_OK;
}
