/*
 * pg_dcb.c -- dynamic consistency boundaries and idempotency keys on
 * PostgreSQL: the `dcb` table's queries (its postings are written by save(),
 * pg_sql.c, under the numbering lock) and the `once` table's keys.
 */
#include <stdlib.h>
#include <string.h>

#include "cairn.h"
#include "pg_internal.h"

static cairn_pg_bytes query_name(const void *ctx, size_t i) { return ((const cairn_pg_query *)ctx)->names[i]; }

static uint64_t query_item(const void *ctx, size_t i) { return ((const cairn_pg_query *)ctx)->item[i]; }

int pg_param_query(pg_params *p, const cairn_pg_query *q)
{
    if (q) pg_param_int8(p, q->after);
    else pg_param_null(p, PG_INT8);
    pg_param_int8(p, q ? q->nitems : 0);
    int rc = pg_param_int8_array(p, q ? q->nnames : 0, query_item, q);
    return rc ? rc : pg_param_array(p, PG_BYTEA_ARRAY, PG_BYTEA, q ? q->nnames : 0, query_name, q);
}

int cairn_pg_dcb_read(cairn_pg *pg, const cairn_pg_query *q, uint64_t limit, uint64_t **ids, size_t *n,
                      uint64_t *last_id)
{
    *ids = NULL;
    *n = 0;
    *last_id = 0;
    pg->errmsg[0] = '\0';
    if (q->after > INT64_MAX || limit > INT64_MAX)
        return pg_fail(pg, CAIRN_INVALID, "DCB read: position or limit out of range");
    if (pg->no_dcb) return cairn_pg_max_id(pg, last_id);
    pg_params p = { 0 };
    int rc = pg_param_query(&p, q);
    if (limit) pg_param_int8(&p, limit);
    else pg_param_null(&p, PG_INT8);
    PGresult *r = NULL;
    if (rc) rc = pg_fail(pg, rc, "a DCB query too large to send");
    else rc = pg_exec(pg, PG_SQL_DCB_READ, &p, &r);
    pg_params_free(&p);
    if (rc) return rc;
    int rows = PQntuples(r);
    uint64_t *out = malloc((rows ? (size_t)rows : 1) * sizeof *out);
    if (!out) {
        PQclear(r);
        return pg_fail(pg, CAIRN_STORE, "out of memory reading DCB events");
    }
    for (int i = 0; i < rows; i++) {
        if (i == 0) *last_id = pg_get_u64(r, 0, 0);
        if (!PQgetisnull(r, i, 1)) out[(*n)++] = pg_get_u64(r, i, 1);
    }
    PQclear(r);
    *ids = out;
    return CAIRN_OK;
}

int cairn_pg_once_get(cairn_pg *pg, cairn_pg_bytes key, uint64_t *first_id, uint64_t *n)
{
    *first_id = *n = 0;
    pg->errmsg[0] = '\0';
    if (pg->no_dcb) return CAIRN_END;
    pg_params p = { 0 };
    pg_param_bytes(&p, PG_BYTEA, key.ptr, key.len);
    PGresult *r;
    int rc = pg_exec(pg, PG_SQL_ONCE_GET, &p, &r);
    if (rc) return rc;
    int found = PQntuples(r) == 1;
    if (found) {
        *first_id = pg_get_u64(r, 0, 0);
        *n = pg_get_u64(r, 0, 1);
    }
    PQclear(r);
    return found ? CAIRN_OK : CAIRN_END;
}

/* ---- verify (inside a walk, pg_walk.c) ---------------------------------------- */

int cairn_pg_walk_dcb(cairn_pg *pg, cairn_pg_bytes after_name, uint64_t after_id, size_t limit, cairn_pg_rows *out)
{
    memset(out, 0, sizeof *out);
    if (!pg->walking) return pg_fail(pg, CAIRN_INVALID, "no walk in progress (cairn_pg_walk_begin)");
    if (pg->no_dcb) return CAIRN_OK;
    pg_params p = { 0 };
    if (after_name.ptr) pg_param_bytes(&p, PG_BYTEA, after_name.ptr, after_name.len);
    else pg_param_null(&p, PG_BYTEA);
    pg_param_int8(&p, after_id > INT64_MAX ? INT64_MAX : after_id);
    if (limit == 0 || limit > INT64_MAX) pg_param_null(&p, PG_INT8);
    else pg_param_int8(&p, limit);
    PGresult *r;
    int rc = pg_exec(pg, PG_SQL_WALK_DCB, &p, &r);
    if (rc) return rc;
    if (pg_rows_take(r, out, 0, 1, 2, 3, 4)) return pg_fail(pg, CAIRN_STORE, "out of memory reading");
    for (size_t i = 0; i < out->n; i++) {
        out->row[i].type.ptr = (const uint8_t *)PQgetvalue(r, (int)i, 5);
        out->row[i].type.len = (size_t)PQgetlength(r, (int)i, 5);
    }
    return CAIRN_OK;
}

int cairn_pg_dcb_has(cairn_pg *pg, cairn_pg_bytes name, uint64_t id, int *found)
{
    *found = 0;
    pg_params p = { 0 };
    pg_param_bytes(&p, PG_BYTEA, name.ptr, name.len);
    pg_param_int8(&p, id > INT64_MAX ? INT64_MAX : id);
    PGresult *r;
    int rc = pg_exec(pg, PG_SQL_DCB_HAS, &p, &r);
    if (rc) return rc;
    *found = PQntuples(r) > 0;
    PQclear(r);
    return CAIRN_OK;
}

int cairn_pg_walk_once_bad(cairn_pg *pg, size_t limit, cairn_pg_rows *out)
{
    memset(out, 0, sizeof *out);
    if (pg->no_dcb) return CAIRN_OK;
    pg_params p = { 0 };
    pg_param_int8(&p, limit ? limit : 1);
    PGresult *r;
    int rc = pg_exec(pg, PG_SQL_ONCE_BAD, &p, &r);
    if (rc) return rc;
    return pg_rows_take(r, out, 0, 1, -1, -1, 2) ? pg_fail(pg, CAIRN_STORE, "out of memory reading") : CAIRN_OK;
}
