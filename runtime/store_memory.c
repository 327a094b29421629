/*
 * store_memory.c -- the `memory:` recorder: the same semantics as LMDB, in
 * process memory, gone at close. Records are kept in the stored record format
 * so both engines share one parser.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>

#include "cairn.h"
#include "store_internal.h"

typedef struct {
    uint8_t *bytes;
    size_t len;
} mem_record;

/* A stream's versions are consecutive (appends enforce it), so the version of
 * ids[k] is first_version + k. */
typedef struct {
    uint8_t id[16];
    int used;
    uint64_t first_version;
    uint64_t *ids;
    size_t n, cap;
    /* scratch for checking one batch: the version this batch has reached */
    uint64_t batch, batch_last;
    size_t batch_count;
} mem_stream;

typedef struct {
    cairn_store base;
    mem_record *log;            /* log[i] holds notification id i + 1 */
    size_t nlog, caplog;
    mem_stream *streams;        /* open addressing, power-of-two slots */
    size_t nslots, nstreams;
    uint64_t payload_bytes;
    uint64_t batches;           /* tags mem_stream.batch */
    /* the read in progress */
    enum { READ_NONE, READ_STREAM, READ_LOG } reading;
    const mem_stream *rstream;
    size_t pos, end;            /* stream: index range [pos, end); log: next index, last+1 */
    int descending;
    size_t remaining;           /* records still allowed by the limit; SIZE_MAX: no limit */
    cairn_log_query lq;
} mem_store;

static size_t slot_of(const uint8_t id[16], size_t nslots)
{
    uint64_t h;
    memcpy(&h, id, 8);
    h ^= h >> 29;
    h *= 0xbf58476d1ce4e5b9ULL;
    h ^= h >> 32;
    return (size_t)h & (nslots - 1);
}

static mem_stream *find_stream(mem_store *m, const uint8_t id[16])
{
    if (m->nslots == 0) return NULL;
    for (size_t i = slot_of(id, m->nslots);; i = (i + 1) & (m->nslots - 1)) {
        mem_stream *st = &m->streams[i];
        if (!st->used) return NULL;
        if (memcmp(st->id, id, 16) == 0) return st;
    }
}

/* Grow the table so that `extra` more streams fit at under 50% load. */
static int reserve_streams(mem_store *m, size_t extra)
{
    size_t want = m->nslots ? m->nslots : 64;
    while ((m->nstreams + extra) * 2 > want) want *= 2;
    if (want == m->nslots) return CAIRN_OK;
    mem_stream *slots = calloc(want, sizeof *slots);
    if (!slots) return ENOMEM;
    for (size_t i = 0; i < m->nslots; i++) {
        if (!m->streams[i].used) continue;
        size_t j = slot_of(m->streams[i].id, want);
        while (slots[j].used) j = (j + 1) & (want - 1);
        slots[j] = m->streams[i];
    }
    free(m->streams);
    m->streams = slots;
    m->nslots = want;
    return CAIRN_OK;
}

static mem_stream *add_stream(mem_store *m, const uint8_t id[16], uint64_t first_version)
{
    size_t i = slot_of(id, m->nslots);
    while (m->streams[i].used) i = (i + 1) & (m->nslots - 1);
    mem_stream *st = &m->streams[i];
    memcpy(st->id, id, 16);
    st->used = 1;
    st->first_version = first_version;
    m->nstreams++;
    return st;
}

static int grow_ids(mem_stream *st, size_t extra)
{
    if (st->n + extra <= st->cap) return CAIRN_OK;
    size_t cap = st->cap ? st->cap : 4;
    while (cap < st->n + extra) cap *= 2;
    uint64_t *ids = realloc(st->ids, cap * sizeof *ids);
    if (!ids) return ENOMEM;
    st->ids = ids;
    st->cap = cap;
    return CAIRN_OK;
}

static int mem_append(cairn_store *s, const cairn_record *ev, size_t n, uint64_t *first_id)
{
    mem_store *m = (mem_store *)s;
    /* 1. check every stream's expected version before recording anything,
     * reserving room for each stream's new ids on the way.
     * Streams met for the first time are added empty (an empty stream is the
     * same as none), so a stream's scratch fields can remember the version this
     * batch has reached when it appears again later in the batch. */
    if (reserve_streams(m, n) != CAIRN_OK) goto oom;
    uint64_t tag = ++m->batches;
    for (size_t i = 0, run; i < n; i += run) {
        run = 1;
        while (i + run < n && memcmp(ev[i + run].stream_id, ev[i].stream_id, 16) == 0) run++;
        mem_stream *st = find_stream(m, ev[i].stream_id);
        if (!st) st = add_stream(m, ev[i].stream_id, ev[i].version);
        int found = 1;
        uint64_t last = 0;
        if (st->batch == tag) last = st->batch_last;
        else if (st->n > 0) last = st->first_version + st->n - 1;
        else found = 0;
        if (found && ev[i].version != last + 1)
            return cairn_store_conflict(s, ev[i].stream_id, ev[i].version, 1, last);
        if (st->batch != tag) st->batch_count = 0;
        st->batch = tag;
        st->batch_last = ev[i + run - 1].version;
        st->batch_count += run;
        /* capacity only: taking it early changes nothing a reader can see */
        if (grow_ids(st, st->batch_count) != CAIRN_OK) goto oom;
    }
    /* 2. take the rest of the memory, so that a failure leaves the store as it was */
    if (m->nlog + n > m->caplog) {
        size_t cap = m->caplog ? m->caplog : 1024;
        while (cap < m->nlog + n) cap *= 2;
        mem_record *log = realloc(m->log, cap * sizeof *log);
        if (!log) goto oom;
        m->log = log;
        m->caplog = cap;
    }
    for (size_t i = 0; i < n; i++) {
        size_t len = cairn_record_size(&ev[i]);
        uint8_t *bytes = malloc(len);
        if (!bytes) {
            while (i-- > 0) free(m->log[m->nlog + i].bytes);
            goto oom;
        }
        cairn_record_write(&ev[i], bytes);
        m->log[m->nlog + i] = (mem_record){ bytes, len };
    }
    /* 3. nothing can fail from here on */
    uint64_t first = m->nlog + 1;
    for (size_t i = 0; i < n; i++) {
        mem_stream *st = find_stream(m, ev[i].stream_id);
        if (st->n == 0) st->first_version = ev[i].version;
        st->ids[st->n++] = first + i;
        m->payload_bytes += ev[i].payload_len;
    }
    m->nlog += n;
    *first_id = first;
    return CAIRN_OK;
oom:
    return cairn_store_fail(s, ENOMEM, "out of memory recording %zu events in %s", n, s->uri);
}

static int mem_max_id(cairn_store *s, uint64_t *out)
{
    *out = ((mem_store *)s)->nlog;
    return CAIRN_OK;
}

static void mem_read_end(cairn_store *s)
{
    ((mem_store *)s)->reading = READ_NONE;
}

static int mem_read_stream(cairn_store *s, const uint8_t *id, const cairn_stream_query *q)
{
    mem_store *m = (mem_store *)s;
    m->reading = READ_STREAM;
    m->rstream = find_stream(m, id);
    m->pos = m->end = 0;
    m->descending = q->descending;
    m->remaining = q->limit ? q->limit : SIZE_MAX;
    const mem_stream *st = m->rstream;
    if (!st || st->n == 0) return CAIRN_OK;
    /* translate the version range into an index range [lo, hi) */
    uint64_t first = st->first_version, last = first + st->n - 1;
    uint64_t lo = first, hi = last;
    if (q->has_gt && q->gt >= lo) lo = q->gt + 1;
    if (q->has_lte && q->lte < hi) hi = q->lte;
    if (q->has_gt && q->gt == UINT64_MAX) return CAIRN_OK;
    if (lo > hi || lo > last || (q->has_lte && q->lte < first)) return CAIRN_OK;
    m->pos = (size_t)(lo - first);
    m->end = (size_t)(hi - first) + 1;
    return CAIRN_OK;
}

static int mem_read_log(cairn_store *s, const cairn_log_query *q)
{
    mem_store *m = (mem_store *)s;
    m->reading = READ_LOG;
    m->lq = *q;
    m->pos = q->start > 0 ? (size_t)(q->start - 1) : 0;
    m->end = m->nlog;
    if (q->stop && q->stop < m->end) m->end = (size_t)q->stop;
    m->remaining = q->limit ? q->limit : SIZE_MAX;
    return CAIRN_OK;
}

static int parse_log_entry(mem_store *m, size_t index, cairn_record *out)
{
    int rc = cairn_record_parse(m->log[index].bytes, m->log[index].len, out);
    if (rc != CAIRN_OK)
        return cairn_store_fail(&m->base, rc, "notification %zu in %s is not a valid record", index + 1,
                                m->base.uri);
    out->notification_id = index + 1;
    return CAIRN_OK;
}

static int mem_next(cairn_store *s, cairn_record *out)
{
    mem_store *m = (mem_store *)s;
    if (m->remaining == 0 || m->pos >= m->end) return CAIRN_END;
    if (m->reading == READ_STREAM) {
        size_t k = m->descending ? m->end - 1 : m->pos;
        if (m->descending) m->end--; else m->pos++;
        m->remaining--;
        return parse_log_entry(m, (size_t)(m->rstream->ids[k] - 1), out);
    }
    if (m->reading != READ_LOG) return CAIRN_END;
    while (m->pos < m->end) {
        int rc = parse_log_entry(m, m->pos++, out);
        if (rc != CAIRN_OK) return rc;
        if (cairn_store_topic_matches(&m->lq, out)) {
            m->remaining--;
            return CAIRN_OK;
        }
    }
    return CAIRN_END;
}

static int mem_stat(cairn_store *s, cairn_store_stats *out)
{
    mem_store *m = (mem_store *)s;
    out->engine = "memory";
    out->events = m->nlog;
    out->max_notification_id = m->nlog;
    for (size_t i = 0; i < m->nslots; i++)
        if (m->streams[i].used && m->streams[i].n > 0) out->streams++;
    out->used_bytes = m->payload_bytes;
    return CAIRN_OK;
}

static void mem_close(cairn_store *s)
{
    mem_store *m = (mem_store *)s;
    for (size_t i = 0; i < m->nlog; i++) free(m->log[i].bytes);
    for (size_t i = 0; i < m->nslots; i++) free(m->streams[i].ids);
    free(m->log);
    free(m->streams);
    free(m);
}

static const cairn_store_ops mem_ops = {
    mem_append, mem_max_id, mem_read_stream, mem_read_log, mem_next, mem_read_end, mem_stat, mem_close,
};

int cairn_store_memory_open(const cairn_store_options *opt, cairn_store **out, char *err, size_t errlen)
{
    (void)opt;
    mem_store *m = calloc(1, sizeof *m);
    if (!m) {
        snprintf(err, errlen, "out of memory opening memory:");
        return ENOMEM;
    }
    m->base.ops = &mem_ops;
    *out = &m->base;
    return CAIRN_OK;
}
