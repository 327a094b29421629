/*
 * pg_append.c -- a save on PostgreSQL: one call of the schema's append()
 * (events only, the common save) or save() function with the batch as binary
 * arrays (one round trip, one transaction),
 * then, only when another save held the numbering lock, one call of number()
 * that waits for the ids (pg_sql.c and docs/POSTGRES.md explain why).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cairn.h"
#include "pg_internal.h"
#include "record.h"

static cairn_pg_bytes rec_stream(const void *ctx, size_t i)
{
    return (cairn_pg_bytes){ ((const cairn_pg_record *)ctx)[i].stream_id, 16 };
}

static cairn_pg_bytes rec_topic(const void *ctx, size_t i) { return ((const cairn_pg_record *)ctx)[i].topic; }

static cairn_pg_bytes rec_bytes(const void *ctx, size_t i) { return ((const cairn_pg_record *)ctx)[i].bytes; }

static cairn_pg_bytes new_stream(const void *ctx, size_t i)
{
    return (cairn_pg_bytes){ ((const uint8_t (*)[16])ctx)[i], 16 };
}

static uint64_t rec_version(const void *ctx, size_t i) { return ((const cairn_pg_record *)ctx)[i].version; }

static cairn_pg_bytes posting_name(const void *ctx, size_t i) { return ((const cairn_pg_posting *)ctx)[i].name; }

static cairn_pg_bytes posting_type(const void *ctx, size_t i) { return ((const cairn_pg_posting *)ctx)[i].type; }

static uint64_t posting_event(const void *ctx, size_t i) { return ((const cairn_pg_posting *)ctx)[i].event; }

static int check_records(cairn_pg *pg, const cairn_pg_record *r, size_t n, const char *what, int events)
{
    for (size_t i = 0; i < n; i++) {
        if (!r[i].stream_id || !r[i].bytes.len || (events && !r[i].topic.len) || r[i].version > INT64_MAX)
            return pg_fail(pg, CAIRN_INVALID, "%s %zu: needs a stream id, a version from 0 to 2^63-1, %s bytes",
                           what, i + 1, events ? "a topic and its" : "its");
        if (events && i > 0 && memcmp(r[i].stream_id, r[i - 1].stream_id, 16) == 0 &&
            r[i].version != r[i - 1].version + 1)
            return pg_fail(pg, CAIRN_CONFLICT, "event %zu: version %llu does not follow version %llu in one save",
                           i + 1, (unsigned long long)r[i].version, (unsigned long long)r[i - 1].version);
    }
    return CAIRN_OK;
}

/* Events and nothing else (no snapshots, tracking, data keys, key state, DCB events,
 * condition or idempotency key): the schema's append() alone, with five parameters. */
static int is_plain(const cairn_pg_batch *b)
{
    return b->n > 0 && !b->nsnapshots && !b->track_app.ptr && !b->nkeys && !b->check_keygen && !b->npostings &&
           !b->fail_if && !b->once.ptr;
}

/* The events' arrays: stream ids, versions, topics, record bytes. */
static int event_params(const cairn_pg_batch *b, pg_params *p)
{
    int rc = pg_param_array(p, PG_UUID_ARRAY, PG_UUID, b->n, rec_stream, b->events);
    if (!rc) rc = pg_param_int8_array(p, b->n, rec_version, b->events);
    if (!rc) rc = pg_param_array(p, PG_BYTEA_ARRAY, PG_BYTEA, b->n, rec_topic, b->events);
    if (!rc) rc = pg_param_array(p, PG_BYTEA_ARRAY, PG_BYTEA, b->n, rec_bytes, b->events);
    return rc;
}

/* The parameters of append(): the events, and the streams sealed as new. */
static int append_params(const cairn_pg_batch *b, pg_params *p)
{
    int rc = event_params(b, p);
    if (!rc) rc = pg_param_array(p, PG_UUID_ARRAY, PG_UUID, b->nnew, new_stream, b->new_streams);
    return rc;
}

/* The parameters of save(): the events, the snapshots, tracking, new data keys, the
 * key state's generation, the streams sealed as new, DCB postings, the condition and
 * the idempotency key. */
static int save_params(const cairn_pg_batch *b, pg_params *p)
{
    int rc = event_params(b, p);
    if (!rc) rc = pg_param_array(p, PG_UUID_ARRAY, PG_UUID, b->nsnapshots, rec_stream, b->snapshots);
    if (!rc) rc = pg_param_int8_array(p, b->nsnapshots, rec_version, b->snapshots);
    if (!rc) rc = pg_param_array(p, PG_BYTEA_ARRAY, PG_BYTEA, b->nsnapshots, rec_bytes, b->snapshots);
    if (rc) return rc;
    if (b->track_app.ptr) {
        pg_param_bytes(p, PG_BYTEA, b->track_app.ptr, b->track_app.len);
        pg_param_int8(p, b->track_id);
        pg_param_int8(p, b->track_first ? b->track_first : b->track_id);
    } else {
        pg_param_null(p, PG_BYTEA);
        pg_param_null(p, PG_INT8);
        pg_param_null(p, PG_INT8);
    }
    rc = pg_param_array(p, PG_UUID_ARRAY, PG_UUID, b->nkeys, pg_key_stream, b->keys);
    if (!rc) rc = pg_param_array(p, PG_BYTEA_ARRAY, PG_BYTEA, b->nkeys, pg_key_bytes, b->keys);
    if (rc) return rc;
    if (b->check_keygen) pg_param_int8(p, b->keygen);
    else pg_param_null(p, PG_INT8);
    rc = pg_param_array(p, PG_UUID_ARRAY, PG_UUID, b->nnew, new_stream, b->new_streams);
    if (!rc) rc = pg_param_array(p, PG_BYTEA_ARRAY, PG_BYTEA, b->npostings, posting_name, b->postings);
    if (!rc) rc = pg_param_int8_array(p, b->npostings, posting_event, b->postings);
    if (!rc) rc = pg_param_array(p, PG_BYTEA_ARRAY, PG_BYTEA, b->npostings, posting_type, b->postings);
    if (!rc) rc = pg_param_query(p, b->fail_if);
    if (rc) return rc;
    if (b->once.ptr) pg_param_bytes(p, PG_BYTEA, b->once.ptr, b->once.len);
    else pg_param_null(p, PG_BYTEA);
    return CAIRN_OK;
}

int cairn_pg_append(cairn_pg *pg, const cairn_pg_batch *b, uint64_t *first_id)
{
    *first_id = 0;
    pg->errmsg[0] = '\0';
    int rc = pg_writable(pg);
    if (!rc) rc = check_records(pg, b->events, b->n, "event", 1);
    if (!rc) rc = check_records(pg, b->snapshots, b->nsnapshots, "snapshot", 0);
    if (rc) return rc;
    if (b->track_app.ptr && (b->track_id == 0 || b->track_id > INT64_MAX))
        return pg_fail(pg, CAIRN_INVALID, "tracking position %llu is not from 1 to 2^63-1",
                       (unsigned long long)b->track_id);
    if (b->track_app.ptr && b->track_first > b->track_id)
        return pg_fail(pg, CAIRN_INVALID, "tracking position %llu: its batch starts after it, at %llu",
                       (unsigned long long)b->track_id, (unsigned long long)b->track_first);
    for (size_t i = 0; i < b->nkeys; i++)
        if (!b->keys[i].stream_id || b->keys[i].key.len < 2)
            return pg_fail(pg, CAIRN_INVALID, "data key %zu: needs a stream id and a sealed key", i + 1);
    for (size_t i = 0; i < b->npostings; i++)
        if (b->postings[i].event >= b->n || !b->postings[i].name.len)
            return pg_fail(pg, CAIRN_INVALID, "DCB posting %zu names no event of the batch", i + 1);
    if (b->fail_if && b->fail_if->after > INT64_MAX)
        return pg_fail(pg, CAIRN_INVALID, "append condition: position %llu out of range",
                       (unsigned long long)b->fail_if->after);
    if (pg->no_dcb && (b->npostings || b->fail_if || b->once.ptr))
        return pg_fail(pg, CAIRN_CONFIG, "schema %s was made before DCB events and idempotent saves: open it once "
                       "for writing with this version", pg->schema);
    if (b->check_keygen && b->keygen > INT64_MAX)
        return pg_fail(pg, CAIRN_INVALID, "key generation %llu out of range", (unsigned long long)b->keygen);
    pg_params p = { 0 };
    int plain = is_plain(b);
    rc = plain ? append_params(b, &p) : save_params(b, &p);
    PGresult *r = NULL;
    if (rc) rc = pg_fail(pg, rc, "a batch too large to send");
    else rc = pg_exec(pg, plain ? PG_SQL_APPEND : PG_SQL_SAVE, &p, &r);
    pg_params_free(&p);
    if (rc) return rc;
    uint64_t first = pg_get_u64(r, 0, 0);
    PQclear(r);
    if (b->n > 0) pg->saves++;
    if (first == 0 && b->n > 0) {
        pg->deferred++;
        /* committed without ids: another save was numbering; wait for ours */
        pg_params q = { 0 };
        pg_param_bytes(&q, PG_UUID, b->events[0].stream_id, 16);
        pg_param_int8(&q, b->events[0].version);
        if ((rc = pg_exec(pg, PG_SQL_NUMBER, &q, &r))) {
            /* the events are recorded, whole; the next save or writer's open numbers them */
            size_t len = strlen(pg->errmsg);
            snprintf(pg->errmsg + len, sizeof pg->errmsg - len,
                     " (after the save was recorded, before it had its ids)");
            return rc;
        }
        first = pg_get_u64(r, 0, 0);
        PQclear(r);
    }
    *first_id = first;
    return CAIRN_OK;
}

void cairn_pg_save_stats(const cairn_pg *pg, uint64_t *saves, uint64_t *deferred)
{
    *saves = pg->saves;
    *deferred = pg->deferred;
}
