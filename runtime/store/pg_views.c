/*
 * pg_views.c -- materialised views on PostgreSQL: a batch of puts and deletes
 * with the view's tracking position in one transaction (the schema's
 * view_write()), lookups, and ordered scans by key prefix.
 */
#include <stdlib.h>
#include <string.h>

#include "cairn.h"
#include "pg_internal.h"

static cairn_pg_bytes op_key(const void *ctx, size_t i) { return ((const cairn_pg_view_op *)ctx)[i].key; }

static cairn_pg_bytes op_value(const void *ctx, size_t i)
{
    const cairn_pg_view_op *op = &((const cairn_pg_view_op *)ctx)[i];
    return op->del ? (cairn_pg_bytes){ NULL, 0 } : op->value;
}

static cairn_pg_bytes op_del(const void *ctx, size_t i)
{
    static const uint8_t yes = 1, no = 0;
    return (cairn_pg_bytes){ ((const cairn_pg_view_op *)ctx)[i].del ? &yes : &no, 1 };
}

int cairn_pg_view_write(cairn_pg *pg, cairn_pg_bytes view, const cairn_pg_view_op *ops, size_t n,
                        cairn_pg_bytes app, uint64_t id, uint64_t first, int check_keygen, uint64_t keygen)
{
    pg->errmsg[0] = '\0';
    int wrc = pg_writable(pg);
    if (wrc) return wrc;
    for (size_t i = 0; i < n; i++)
        if (view.len + ops[i].key.len > CAIRN_PG_VIEW_KEY_MAX)
            return pg_fail(pg, CAIRN_INVALID, "view key %zu: view name and key are %zu bytes, above %d", i + 1,
                           view.len + ops[i].key.len, CAIRN_PG_VIEW_KEY_MAX);
    if (app.ptr && (id == 0 || id > INT64_MAX))
        return pg_fail(pg, CAIRN_INVALID, "tracking position %llu is not from 1 to 2^63-1", (unsigned long long)id);
    if (first == 0) first = id;
    if (app.ptr && first > id)
        return pg_fail(pg, CAIRN_INVALID, "tracking position %llu: its batch starts after it, at %llu",
                       (unsigned long long)id, (unsigned long long)first);
    if (check_keygen && keygen > INT64_MAX)
        return pg_fail(pg, CAIRN_INVALID, "key generation %llu out of range", (unsigned long long)keygen);
    pg_params p = { 0 };
    pg_param_bytes(&p, PG_BYTEA, view.ptr, view.len);
    int rc = pg_param_array(&p, PG_BYTEA_ARRAY, PG_BYTEA, n, op_key, ops);
    if (!rc) rc = pg_param_array(&p, PG_BYTEA_ARRAY, PG_BYTEA, n, op_value, ops);
    if (!rc) rc = pg_param_array(&p, PG_BOOL_ARRAY, PG_BOOL, n, op_del, ops);
    if (app.ptr) {
        pg_param_bytes(&p, PG_BYTEA, app.ptr, app.len);
        pg_param_int8(&p, id);
        pg_param_int8(&p, first);
    } else {
        pg_param_null(&p, PG_BYTEA);
        pg_param_null(&p, PG_INT8);
        pg_param_null(&p, PG_INT8);
    }
    if (check_keygen) pg_param_int8(&p, keygen);
    else pg_param_null(&p, PG_INT8);
    PGresult *r = NULL;
    if (rc) rc = pg_fail(pg, rc, "a view batch too large to send");
    else rc = pg_exec(pg, PG_SQL_VIEW_WRITE, &p, &r);
    pg_params_free(&p);
    if (rc == CAIRN_OK) PQclear(r);
    return rc;
}

int cairn_pg_view_get(cairn_pg *pg, cairn_pg_bytes view, cairn_pg_bytes key, cairn_pg_rows *out)
{
    memset(out, 0, sizeof *out);
    pg_params p = { 0 };
    pg_param_bytes(&p, PG_BYTEA, view.ptr, view.len);
    pg_param_bytes(&p, PG_BYTEA, key.ptr, key.len);
    PGresult *r;
    int rc = pg_exec(pg, PG_SQL_VIEW_GET, &p, &r);
    if (rc) return rc;
    if (pg_rows_take(r, out, -1, -1, -1, 1, 0)) return pg_fail(pg, CAIRN_STORE, "out of memory reading");
    return CAIRN_OK;
}

/* The first key above every key that starts with prefix: prefix with its last
 * byte below 0xff raised by one (and what follows it dropped). 0: none (the
 * prefix is empty or all 0xff). */
static size_t prefix_end(cairn_pg_bytes prefix, uint8_t *out)
{
    size_t n = prefix.len;
    while (n > 0 && prefix.ptr[n - 1] == 0xff) n--;
    if (n == 0) return 0;
    memcpy(out, prefix.ptr, n);
    out[n - 1]++;
    return n;
}

int cairn_pg_view_scan(cairn_pg *pg, cairn_pg_bytes view, cairn_pg_bytes prefix, cairn_pg_bytes after,
                       size_t limit, cairn_pg_rows *out)
{
    memset(out, 0, sizeof *out);
    if (prefix.len > CAIRN_PG_VIEW_KEY_MAX)
        return pg_fail(pg, CAIRN_INVALID, "view prefix of %zu bytes, above %d", prefix.len, CAIRN_PG_VIEW_KEY_MAX);
    uint8_t end[CAIRN_PG_VIEW_KEY_MAX];
    size_t end_len = prefix_end(prefix, end);
    pg_params p = { 0 };
    pg_param_bytes(&p, PG_BYTEA, view.ptr, view.len);
    pg_param_bytes(&p, PG_BYTEA, prefix.ptr, prefix.len);
    if (end_len) pg_param_bytes(&p, PG_BYTEA, end, end_len);
    else pg_param_null(&p, PG_BYTEA);
    if (after.ptr) pg_param_bytes(&p, PG_BYTEA, after.ptr, after.len);
    else pg_param_null(&p, PG_BYTEA);
    if (limit == 0 || limit > INT64_MAX) pg_param_null(&p, PG_INT8);
    else pg_param_int8(&p, limit);
    PGresult *r;
    int rc = pg_exec(pg, PG_SQL_VIEW_SCAN, &p, &r);
    if (rc) return rc;
    if (pg_rows_take(r, out, -1, -1, -1, 1, 0)) return pg_fail(pg, CAIRN_STORE, "out of memory reading");
    return CAIRN_OK;
}

int cairn_pg_view_scan_all(cairn_pg *pg, cairn_pg_bytes from, cairn_pg_bytes after, size_t limit, cairn_pg_rows *out)
{
    memset(out, 0, sizeof *out);
    pg_params p = { 0 };
    pg_param_bytes(&p, PG_BYTEA, from.ptr, from.len);
    if (after.ptr) pg_param_bytes(&p, PG_BYTEA, after.ptr, after.len);
    else pg_param_null(&p, PG_BYTEA);
    if (limit == 0 || limit > INT64_MAX) pg_param_null(&p, PG_INT8);
    else pg_param_int8(&p, limit);
    PGresult *r;
    int rc = pg_exec(pg, PG_SQL_VIEW_SCAN_ALL, &p, &r);
    if (rc) return rc;
    if (pg_rows_take(r, out, -1, -1, -1, 1, 0)) return pg_fail(pg, CAIRN_STORE, "out of memory reading");
    return CAIRN_OK;
}

int cairn_pg_view_tracking_max(cairn_pg *pg, cairn_pg_bytes view, cairn_pg_bytes app, uint64_t *out)
{
    pg_params p = { 0 };
    pg_param_bytes(&p, PG_BYTEA, view.ptr, view.len);
    pg_param_bytes(&p, PG_BYTEA, app.ptr, app.len);
    return pg_one_u64(pg, PG_SQL_VIEW_TRACKING, &p, out);
}
