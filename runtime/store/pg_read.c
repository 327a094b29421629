/*
 * pg_read.c -- reads on PostgreSQL: a stream's range, streams' heads, the
 * log in batches (topic filter on the server), snapshots, tracking, stats,
 * meta. Each is one statement in its own transaction, gathered whole into
 * client memory before it returns (cairn_pg_rows).
 */
#include <string.h>

#include "cairn.h"
#include "pg_internal.h"
#include "record.h"

#define INT8_MAX_VALUE ((uint64_t)INT64_MAX)

static int take(cairn_pg *pg, PGresult *r, cairn_pg_rows *out, int id, int version, int stream, int bytes,
                int key)
{
    int rc = pg_rows_take(r, out, id, version, stream, bytes, key);
    return rc ? pg_fail(pg, rc, "out of memory reading") : CAIRN_OK;
}

static void param_limit(pg_params *p, size_t limit)
{
    if (limit == 0 || limit > INT8_MAX_VALUE) pg_param_null(p, PG_INT8);
    else pg_param_int8(p, limit);
}

static int bounded(uint64_t v) { return v > 0 && v <= INT8_MAX_VALUE; }

int cairn_pg_read_stream(cairn_pg *pg, const uint8_t id[16], uint64_t from, uint64_t to, int descending,
                         size_t limit, cairn_pg_rows *out)
{
    memset(out, 0, sizeof *out);
    pg_params p = { 0 };
    pg_param_bytes(&p, PG_UUID, id, 16);
    pg_param_int8(&p, from > INT8_MAX_VALUE ? INT8_MAX_VALUE : from);
    pg_param_int8(&p, to > INT8_MAX_VALUE ? INT8_MAX_VALUE : to);
    param_limit(&p, limit);
    PGresult *r;
    int rc = pg_exec(pg, descending ? PG_SQL_STREAM_DESC : PG_SQL_STREAM_ASC, &p, &r);
    return rc ? rc : take(pg, r, out, 0, 1, 2, 3, -1);
}

static cairn_pg_bytes bytes_elem(const void *ctx, size_t i) { return ((const cairn_pg_bytes *)ctx)[i]; }

static uint64_t u64_elem(const void *ctx, size_t i) { return ((const uint64_t *)ctx)[i]; }

int cairn_pg_read_log_ids(cairn_pg *pg, const uint64_t *ids, size_t n, const cairn_pg_bytes *topics, size_t ntopics,
                          cairn_pg_rows *out)
{
    memset(out, 0, sizeof *out);
    pg_params p = { 0 };
    int rc = pg_param_int8_array(&p, n, u64_elem, ids);
    if (!rc) {
        if (ntopics) rc = pg_param_array(&p, PG_BYTEA_ARRAY, PG_BYTEA, ntopics, bytes_elem, topics);
        else pg_param_null(&p, PG_BYTEA_ARRAY);
    }
    PGresult *r = NULL;
    if (rc) rc = pg_fail(pg, rc, "too many ids or topics in one read");
    else rc = pg_exec(pg, PG_SQL_LOG_IDS, &p, &r);
    pg_params_free(&p);
    return rc ? rc : take(pg, r, out, 0, 1, 2, 3, -1);
}

int cairn_pg_read_log(cairn_pg *pg, uint64_t start, uint64_t stop, const cairn_pg_bytes *topics,
                      size_t ntopics, size_t limit, cairn_pg_rows *out)
{
    memset(out, 0, sizeof *out);
    pg_params p = { 0 };
    pg_param_int8(&p, start > INT8_MAX_VALUE ? INT8_MAX_VALUE : start);
    pg_param_int8(&p, bounded(stop) ? stop : INT8_MAX_VALUE);
    param_limit(&p, limit);
    int rc = ntopics ? pg_param_array(&p, PG_BYTEA_ARRAY, PG_BYTEA, ntopics, bytes_elem, topics) : CAIRN_OK;
    PGresult *r = NULL;
    if (rc) rc = pg_fail(pg, rc, "too many topics in one read");
    else rc = pg_exec(pg, ntopics ? PG_SQL_LOG_TOPICS : PG_SQL_LOG, &p, &r);
    pg_params_free(&p);
    return rc ? rc : take(pg, r, out, 0, 1, 2, 3, -1);
}

int cairn_pg_read_snapshot(cairn_pg *pg, const uint8_t id[16], uint64_t lte, cairn_pg_rows *out)
{
    memset(out, 0, sizeof *out);
    pg_params p = { 0 };
    pg_param_bytes(&p, PG_UUID, id, 16);
    pg_param_int8(&p, lte > INT8_MAX_VALUE ? INT8_MAX_VALUE : lte);
    PGresult *r;
    int rc = pg_exec(pg, PG_SQL_SNAPSHOT, &p, &r);
    return rc ? rc : take(pg, r, out, -1, 0, 1, 2, 3);
}

int pg_one_u64(cairn_pg *pg, enum pg_sql_id which, const pg_params *p, uint64_t *out)
{
    *out = 0;
    PGresult *r;
    int rc = pg_exec(pg, which, p, &r);
    if (rc) return rc;
    if (PQntuples(r) > 0) *out = pg_get_u64(r, 0, 0);
    PQclear(r);
    return CAIRN_OK;
}

int cairn_pg_max_id(cairn_pg *pg, uint64_t *out) { return pg_one_u64(pg, PG_SQL_MAX_ID, NULL, out); }

int cairn_pg_tracking_max(cairn_pg *pg, cairn_pg_bytes app, uint64_t *out)
{
    pg_params p = { 0 };
    pg_param_bytes(&p, PG_BYTEA, app.ptr, app.len);
    return pg_one_u64(pg, PG_SQL_TRACKING, &p, out);
}

int cairn_pg_stat(cairn_pg *pg, cairn_pg_stats *out)
{
    memset(out, 0, sizeof *out);
    PGresult *r;
    int rc = pg_exec(pg, PG_SQL_STAT, NULL, &r);
    if (rc) return rc;
    out->events = pg_get_u64(r, 0, 0);
    out->streams = pg_get_u64(r, 0, 1);
    out->snapshots = pg_get_u64(r, 0, 2);
    out->max_id = pg_get_u64(r, 0, 3);
    out->pending = pg_get_u64(r, 0, 4);
    PQclear(r);
    return CAIRN_OK;
}

int cairn_pg_meta_get(cairn_pg *pg, const char *key, cairn_pg_rows *out)
{
    memset(out, 0, sizeof *out);
    pg_params p = { 0 };
    pg_param_bytes(&p, PG_TEXT, key, strlen(key));
    PGresult *r;
    int rc = pg_exec(pg, PG_SQL_META_GET, &p, &r);
    return rc ? rc : take(pg, r, out, -1, -1, -1, 0, -1);
}

int cairn_pg_meta_put(cairn_pg *pg, const char *key, cairn_pg_bytes value)
{
    int rc = pg_writable(pg);
    if (rc) return rc;
    pg_params p = { 0 };
    pg_param_bytes(&p, PG_TEXT, key, strlen(key));
    pg_param_bytes(&p, PG_BYTEA, value.ptr, value.len);
    PGresult *r;
    rc = pg_exec(pg, PG_SQL_META_PUT, &p, &r);
    if (rc == CAIRN_OK) PQclear(r);
    return rc;
}
