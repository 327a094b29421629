/*
 * pg_copy.c -- a consistent copy of an application's schema into a new schema
 * of the same database (what `cairn sync --dry-run` processes instead of the
 * real one: the real schema is only read), and dropping such a copy again.
 * Copies are named with CAIRN_PG_COPY_PREFIX, and only such schemas are ever
 * dropped here.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cairn.h"
#include "pg_internal.h"

/* Every table of src into dst (made by schema_sql just before), in one REPEATABLE READ
 * transaction: one snapshot of src. Columns by name, so an older src (readable as it is)
 * copies into dst at this cairn's version. */
static const char copy_sql[] =
    "BEGIN ISOLATION LEVEL REPEATABLE READ;\n"
    "DO $copy$\n"
    "DECLARE t text; cols text;\n"
    "BEGIN\n"
    "  FOR t IN SELECT relname FROM pg_class WHERE relnamespace = '\"%1$s\"'::regnamespace AND relkind = 'r' LOOP\n"
    /* what an older src keeps in a table and dst computes (its counter) is not copied */
    "    CONTINUE WHEN (SELECT relkind FROM pg_class WHERE oid = to_regclass(format('%%I.%%I', '%2$s', t))) = 'v';\n"
    "    SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY a.attnum) INTO cols\n"
    "      FROM pg_attribute a JOIN pg_attribute d ON d.attname = a.attname AND d.attnum > 0\n"
    "       AND NOT d.attisdropped AND d.attrelid = to_regclass(format('%%I.%%I', '%2$s', t))\n"
    "     WHERE a.attrelid = format('%%I.%%I', '%1$s', t)::regclass AND a.attnum > 0 AND NOT a.attisdropped;\n"
    "    IF cols IS NULL THEN\n"
    "      RAISE EXCEPTION 'table %% of schema %1$s has no counterpart in its copy', t;\n"
    "    END IF;\n"
    "    EXECUTE format('TRUNCATE %%I.%%I', '%2$s', t);\n"
    "    EXECUTE format('INSERT INTO %%I.%%I (%%s) SELECT %%s FROM %%I.%%I',\n"
    "                   '%2$s', t, cols, cols, '%1$s', t);\n"
    "  END LOOP;\n"

    "  INSERT INTO \"%2$s\".meta VALUES ('format', '%3$d') ON CONFLICT (key) DO UPDATE SET value = excluded.value;\n"
    "END $copy$;\n"
    "COMMIT;\n";

static int drop_schema(cairn_pg *pg, const char *schema)
{
    char sql[CAIRN_PG_SCHEMA_MAX + 48];
    snprintf(sql, sizeof sql, "DROP SCHEMA IF EXISTS \"%s\" CASCADE", schema);
    PGresult *r;
    int rc = pg_exec_sql(pg, sql, NULL, &r);
    if (rc == CAIRN_OK) PQclear(r);
    return rc;
}

int cairn_pg_copy(cairn_pg *pg, const char *dest)
{
    pg->errmsg[0] = '\0';
    if (!pg_valid_schema(dest) || strncmp(dest, CAIRN_PG_COPY_PREFIX, strlen(CAIRN_PG_COPY_PREFIX)) != 0)
        return pg_fail(pg, CAIRN_CONFIG, "a copy of schema %s goes into a new schema named %s… (of a-z, 0-9 and _, "
                       "at most %d), not \"%.60s\"", pg->schema, CAIRN_PG_COPY_PREFIX, CAIRN_PG_SCHEMA_MAX, dest);
    pg_params p = { 0 };
    pg_param_bytes(&p, PG_TEXT, dest, strlen(dest));
    PGresult *r;
    int rc = pg_exec_sql(pg, "SELECT to_regnamespace($1) IS NOT NULL", &p, &r);
    if (rc) return rc;
    int exists = PQntuples(r) == 1 && PQgetvalue(r, 0, 0)[0] == 1;
    PQclear(r);
    if (exists) return pg_fail(pg, CAIRN_CONFIG, "schema %s exists: a copy goes into a new schema", dest);
    char *make = pg_schema_script(pg, dest);
    size_t len = sizeof copy_sql + 4 * strlen(dest) + 4 * strlen(pg->schema) + 16;
    char *copy = malloc(len);
    if (!make || !copy) {
        free(make);
        free(copy);
        return pg_fail(pg, CAIRN_STORE, "out of memory");
    }
    snprintf(copy, len, copy_sql, pg->schema, dest, CAIRN_PG_FORMAT);
    rc = pg_exec_script(pg, make);
    if (rc == CAIRN_OK) rc = pg_exec_script(pg, copy);
    free(make);
    free(copy);
    if (rc) {
        /* nothing half made stays behind (the message stays the failure's) */
        char msg[sizeof pg->errmsg];
        memcpy(msg, pg->errmsg, sizeof msg);
        (void)drop_schema(pg, dest);
        memcpy(pg->errmsg, msg, sizeof msg);
    }
    return rc;
}

int cairn_pg_drop_copy(const char *uri, char *err, size_t errlen)
{
    cairn_pg *pg;
    int rc = pg_new(uri, NULL, &pg, err, errlen);
    if (rc) return rc;
    if (strncmp(pg->schema, CAIRN_PG_COPY_PREFIX, strlen(CAIRN_PG_COPY_PREFIX)) != 0)
        rc = pg_fail(pg, CAIRN_CONFIG, "schema %s is not a copy (%s…): it is not dropped", pg->schema,
                     CAIRN_PG_COPY_PREFIX);
    else
        rc = drop_schema(pg, pg->schema);
    if (rc) snprintf(err, errlen, "%s", pg->errmsg);
    cairn_pg_close(pg);
    return rc;
}
