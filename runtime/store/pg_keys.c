/*
 * pg_keys.c -- what a save depends on, read in one round trip (the key
 * state, streams' heads and data keys, the events snapshots were taken at),
 * and the key changes: forget, rekey, making a store encrypted. Each change
 * runs under the schema's keys lock, exclusive, and refuses when the key
 * state moved since the caller read it (pg_sql.c).
 */
#include <stdlib.h>
#include <string.h>

#include "cairn.h"
#include "pg_internal.h"
#include "record.h"

static cairn_pg_bytes id_elem(const void *ctx, size_t i)
{
    return (cairn_pg_bytes){ ((const uint8_t (*)[16])ctx)[i], 16 };
}

static cairn_pg_bytes snap_id(const void *ctx, size_t i)
{
    return (cairn_pg_bytes){ ((const cairn_pg_snapshot_ref *)ctx)[i].stream_id, 16 };
}

static uint64_t snap_version(const void *ctx, size_t i)
{
    return ((const cairn_pg_snapshot_ref *)ctx)[i].version;
}

int cairn_pg_prepare(cairn_pg *pg, const uint8_t (*ids)[16], size_t n, const cairn_pg_snapshot_ref *snaps,
                     size_t m, int want_keys, cairn_pg_prepared *out)
{
    memset(out, 0, sizeof *out);
    static const uint8_t yes = 1, no = 0;
    pg_params p = { 0 };
    int rc = pg_param_array(&p, PG_UUID_ARRAY, PG_UUID, n, id_elem, ids);
    pg_param_bytes(&p, PG_BOOL, want_keys ? &yes : &no, 1);
    if (!rc) rc = pg_param_array(&p, PG_UUID_ARRAY, PG_UUID, m, snap_id, snaps);
    if (!rc) rc = pg_param_int8_array(&p, m, snap_version, snaps);
    PGresult *r = NULL;
    if (rc) rc = pg_fail(pg, rc, "a batch too large to send");
    else rc = pg_exec(pg, PG_SQL_PREPARE, &p, &r);
    pg_params_free(&p);
    if (rc) return rc;
    /* columns: kind, ord, stream_id, version, record, key, flag */
    if ((size_t)PQntuples(r) != 1 + n + m) {
        PQclear(r);
        return pg_fail(pg, CAIRN_STORE, "the key state is missing from schema %s", pg->schema);
    }
    if (pg_rows_take(r, &out->rows, -1, 3, 2, 4, 5)) return pg_fail(pg, CAIRN_STORE, "out of memory reading");
    const cairn_pg_row *ks = &out->rows.row[0];
    out->ks.keygen = ks->version;
    out->ks.cipher = ks->bytes;
    out->ks.keycheck = ks->key;
    out->ks.empty = PQgetvalue(r, 0, 6)[0] == 1;
    out->head = out->rows.row + 1;
    out->nheads = n;
    out->base = out->rows.row + 1 + n;
    out->nbases = m;
    return CAIRN_OK;
}

void cairn_pg_prepared_free(cairn_pg_prepared *p)
{
    cairn_pg_rows_free(&p->rows);
    memset(p, 0, sizeof *p);
}

int cairn_pg_forget(cairn_pg *pg, const uint8_t id[16], int check_keygen, uint64_t keygen)
{
    int wrc = pg_writable(pg);
    if (wrc) return wrc;
    pg_params p = { 0 };
    pg_param_bytes(&p, PG_UUID, id, 16);
    if (check_keygen) pg_param_int8(&p, keygen);
    else pg_param_null(&p, PG_INT8);
    PGresult *r;
    int rc = pg_exec(pg, PG_SQL_FORGET, &p, &r);
    if (rc == CAIRN_OK) PQclear(r);
    return rc;
}

int cairn_pg_read_keys(cairn_pg *pg, const uint8_t *after, size_t limit, cairn_pg_rows *out)
{
    memset(out, 0, sizeof *out);
    pg_params p = { 0 };
    if (after) pg_param_bytes(&p, PG_UUID, after, 16);
    else pg_param_null(&p, PG_UUID);
    if (limit == 0 || limit > INT64_MAX) pg_param_null(&p, PG_INT8);
    else pg_param_int8(&p, limit);
    PGresult *r;
    int rc = pg_exec(pg, PG_SQL_KEYS, &p, &r);
    if (rc) return rc;
    return pg_rows_take(r, out, -1, -1, 0, 1, -1) ? pg_fail(pg, CAIRN_STORE, "out of memory reading") : CAIRN_OK;
}

int cairn_pg_rekey(cairn_pg *pg, const cairn_pg_key *keys, size_t n, cairn_pg_bytes keycheck, uint64_t keygen)
{
    int wrc = pg_writable(pg);
    if (wrc) return wrc;
    pg_params p = { 0 };
    int rc = pg_param_array(&p, PG_UUID_ARRAY, PG_UUID, n, pg_key_stream, keys);
    if (!rc) rc = pg_param_array(&p, PG_BYTEA_ARRAY, PG_BYTEA, n, pg_key_bytes, keys);
    pg_param_bytes(&p, PG_BYTEA, keycheck.ptr, keycheck.len);
    pg_param_int8(&p, keygen);
    PGresult *r = NULL;
    if (rc) rc = pg_fail(pg, rc, "too many keys to send");
    else rc = pg_exec(pg, PG_SQL_REKEY, &p, &r);
    pg_params_free(&p);
    if (rc == CAIRN_OK) PQclear(r);
    return rc;
}

int cairn_pg_set_cipher(cairn_pg *pg, cairn_pg_bytes cipher, cairn_pg_bytes keycheck, uint64_t keygen, int *done)
{
    *done = 0;
    int wrc = pg_writable(pg);
    if (wrc) return wrc;
    pg_params p = { 0 };
    pg_param_bytes(&p, PG_BYTEA, cipher.ptr, cipher.len);
    pg_param_bytes(&p, PG_BYTEA, keycheck.ptr, keycheck.len);
    pg_param_int8(&p, keygen);
    PGresult *r;
    int rc = pg_exec(pg, PG_SQL_SET_CIPHER, &p, &r);
    if (rc) return rc;
    *done = PQntuples(r) == 1 && PQgetvalue(r, 0, 0)[0] == 1;
    PQclear(r);
    return CAIRN_OK;
}
