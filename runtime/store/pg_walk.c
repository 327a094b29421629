/*
 * pg_walk.c -- reading the whole store as of one moment, in batches (verify,
 * export): one REPEATABLE READ, READ ONLY transaction held open on the
 * handle between cairn_pg_walk_begin and cairn_pg_walk_end, with keyset
 * pagination in (stream id, version) order over the primary keys.
 */
#include <string.h>

#include "cairn.h"
#include "pg_internal.h"

int cairn_pg_walk_begin(cairn_pg *pg)
{
    if (pg->walking) return pg_fail(pg, CAIRN_INVALID, "a walk is in progress on this handle");
    /* the snapshot is taken by the first query, not by BEGIN: take it now */
    int rc = pg_exec_script(pg, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SELECT 1");
    if (rc) return rc;
    pg->walking = 1;
    return CAIRN_OK;
}

void cairn_pg_walk_end(cairn_pg *pg)
{
    if (!pg->walking) return;
    pg->walking = 0;
    /* a lost connection took the transaction with it: nothing to end */
    if (pg->conn && PQstatus(pg->conn) == CONNECTION_OK && PQtransactionStatus(pg->conn) != PQTRANS_IDLE)
        PQclear(PQexec(pg->conn, "ROLLBACK"));
}

static int walk(cairn_pg *pg, enum pg_sql_id which, const uint8_t *after_stream, uint64_t after_version,
                size_t limit, cairn_pg_rows *out)
{
    static const uint8_t first[16] = { 0 };
    memset(out, 0, sizeof *out);
    if (!pg->walking) return pg_fail(pg, CAIRN_INVALID, "no walk in progress (cairn_pg_walk_begin)");
    pg_params p = { 0 };
    /* from the first: after (nil UUID, version 0), below every stored key (versions start at 1) */
    pg_param_bytes(&p, PG_UUID, after_stream ? after_stream : first, 16);
    pg_param_int8(&p, after_stream && after_version <= INT64_MAX ? after_version : 0);
    if (limit == 0 || limit > INT64_MAX) pg_param_null(&p, PG_INT8);
    else pg_param_int8(&p, limit);
    PGresult *r;
    int rc = pg_exec(pg, which, &p, &r);
    if (rc) return rc;
    rc = which == PG_SQL_WALK_EVENTS ? pg_rows_take(r, out, 0, 1, 2, 3, -1) : pg_rows_take(r, out, -1, 0, 1, 2, -1);
    return rc ? pg_fail(pg, CAIRN_STORE, "out of memory reading") : CAIRN_OK;
}

int cairn_pg_walk_events(cairn_pg *pg, const uint8_t *after_stream, uint64_t after_version, size_t limit,
                         cairn_pg_rows *out)
{
    return walk(pg, PG_SQL_WALK_EVENTS, after_stream, after_version, limit, out);
}

int cairn_pg_walk_snapshots(cairn_pg *pg, const uint8_t *after_stream, uint64_t after_version, size_t limit,
                            cairn_pg_rows *out)
{
    return walk(pg, PG_SQL_WALK_SNAPSHOTS, after_stream, after_version, limit, out);
}
