/*
 * pg_list.c -- the store tools' pages on PostgreSQL (export, stat, streams,
 * project --rebuild): tracking positions, the streams that hold snapshots,
 * every stream with its last version, and clearing a view. Each page is one
 * statement in its own transaction, gathered into client memory.
 */
#include <string.h>

#include "cairn.h"
#include "pg_internal.h"

static void param_limit(pg_params *p, size_t limit)
{
    if (limit == 0 || limit > INT64_MAX) pg_param_null(p, PG_INT8);
    else pg_param_int8(p, limit);
}

static int take(cairn_pg *pg, int rc, PGresult *r, cairn_pg_rows *out, int id, int version, int stream, int bytes)
{
    if (rc) return rc;
    return pg_rows_take(r, out, id, version, stream, bytes, -1) ? pg_fail(pg, CAIRN_STORE, "out of memory reading")
                                                                : CAIRN_OK;
}

int cairn_pg_tracking_scan(cairn_pg *pg, cairn_pg_bytes after, size_t limit, cairn_pg_rows *out)
{
    memset(out, 0, sizeof *out);
    pg_params p = { 0 };
    if (after.ptr) pg_param_bytes(&p, PG_BYTEA, after.ptr, after.len);
    else pg_param_null(&p, PG_BYTEA);
    param_limit(&p, limit);
    PGresult *r = NULL;
    int rc = pg_exec(pg, PG_SQL_TRACKING_SCAN, &p, &r);
    return take(pg, rc, r, out, 0, -1, -1, 1);
}

/* A page of streams after `after`: past all of its versions, or from the first. */
static int streams_after(cairn_pg *pg, enum pg_sql_id which, const uint8_t *after, size_t limit, cairn_pg_rows *out)
{
    static const uint8_t nil[16] = { 0 };
    memset(out, 0, sizeof *out);
    pg_params p = { 0 };
    pg_param_bytes(&p, PG_UUID, after ? after : nil, 16);
    pg_param_int8(&p, after ? (uint64_t)INT64_MAX : (uint64_t)-1); /* int8 -1: below every version */
    param_limit(&p, limit);
    PGresult *r = NULL;
    int rc = pg_exec(pg, which, &p, &r);
    return which == PG_SQL_STREAM_HEADS ? take(pg, rc, r, out, -1, 0, 1, -1) : take(pg, rc, r, out, -1, -1, 0, -1);
}

int cairn_pg_snapshot_streams(cairn_pg *pg, const uint8_t *after, size_t limit, cairn_pg_rows *out)
{
    return streams_after(pg, PG_SQL_SNAPSHOT_STREAMS, after, limit, out);
}

int cairn_pg_stream_heads(cairn_pg *pg, const uint8_t *after, size_t limit, cairn_pg_rows *out)
{
    return streams_after(pg, PG_SQL_STREAM_HEADS, after, limit, out);
}

int cairn_pg_view_clear(cairn_pg *pg, cairn_pg_bytes view)
{
    pg->errmsg[0] = '\0';
    int wrc = pg_writable(pg);
    if (wrc) return wrc;
    pg_params p = { 0 };
    pg_param_bytes(&p, PG_BYTEA, view.ptr, view.len);
    PGresult *r = NULL;
    int rc = pg_exec(pg, PG_SQL_VIEW_CLEAR, &p, &r);
    if (rc == CAIRN_OK) PQclear(r);
    return rc;
}
