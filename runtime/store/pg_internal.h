/*
 * pg_internal.h -- what the PostgreSQL engine's files share: the handle,
 * running a statement with binary parameters and results, error messages.
 */
#ifndef CAIRN_PG_INTERNAL_H
#define CAIRN_PG_INTERNAL_H

#include <libpq-fe.h>

#include "pg_store.h"

#define CAIRN_PG_SCHEMA_MAX 48      /* leaves room in a 63-byte NOTIFY channel name */
#define CAIRN_PG_FORMAT 3           /* the schema's version (tables and functions); meta key "format" */
#define CAIRN_PG_FORMAT_READS 1     /* the oldest version a read-only open reads as it is */
#define CAIRN_PG_VIEW_KEY_MAX 510   /* view name + key, as on LMDB */

/* Type oids of the parameters we send (pg_type.h, stable across versions). */
#define PG_BOOL 16
#define PG_BYTEA 17
#define PG_INT8 20
#define PG_TEXT 25
#define PG_BYTEA_ARRAY 1001
#define PG_INT8_ARRAY 1016
#define PG_BOOL_ARRAY 1000
#define PG_UUID 2950
#define PG_UUID_ARRAY 2951

/* The statements (pg_sql.c), made once per handle for its schema. */
enum pg_sql_id {
    PG_SQL_SAVE, PG_SQL_APPEND, PG_SQL_NUMBER, PG_SQL_STREAM_ASC, PG_SQL_STREAM_DESC, PG_SQL_PREPARE, PG_SQL_FORGET,
    PG_SQL_KEYS, PG_SQL_REKEY, PG_SQL_SET_CIPHER, PG_SQL_WALK_EVENTS, PG_SQL_WALK_SNAPSHOTS, PG_SQL_LOG,
    PG_SQL_LOG_TOPICS, PG_SQL_SNAPSHOT, PG_SQL_MAX_ID, PG_SQL_TRACKING, PG_SQL_STAT, PG_SQL_META_GET,
    PG_SQL_META_PUT, PG_SQL_VIEW_WRITE, PG_SQL_VIEW_GET, PG_SQL_VIEW_SCAN, PG_SQL_VIEW_TRACKING,
    PG_SQL_TRACKING_SCAN, PG_SQL_SNAPSHOT_STREAMS, PG_SQL_STREAM_HEADS, PG_SQL_VIEW_CLEAR,
    PG_SQL_VIEW_SCAN_ALL, PG_SQL_DCB_READ, PG_SQL_ONCE_GET, PG_SQL_WALK_DCB,
    PG_SQL_DCB_HAS, PG_SQL_ONCE_BAD, PG_SQL_LOG_IDS, PG_SQL_COUNT
};

struct cairn_pg {
    PGconn *conn;               /* NULL or broken: the next call connects */
    char *conninfo;             /* the URI less cairn's parameters (may hold a password: never shown) */
    char server[256];           /* host:port/database, for messages */
    char schema[CAIRN_PG_SCHEMA_MAX + 1];
    char *qschema;              /* the schema as a quoted SQL identifier */
    char *channel;              /* NOTIFY channel, a quoted identifier (for LISTEN) */
    int read_only;
    int must_exist;             /* open only a store that is there */
    int listening;              /* LISTEN done on this connection */
    char *sql[PG_SQL_COUNT];    /* the statements, with this schema's name in them */
    unsigned char prepared[PG_SQL_COUNT]; /* prepared on this connection (reset when it is new) */
    uint64_t saves, deferred;   /* saves with events; those numbered after their commit */
    int keys_changed;           /* the last failure: what a save depended on moved since it was read
                                 * (the key state, or a stream it took as new): prepare again */
    int walking;                /* a walk's transaction is open (pg_walk.c) */
    int outdated;               /* an older schema a tool's open left as it was (pg_schema_update) */
    int no_dcb;                 /* a tool's open of a store made before DCB events: no dcb, once tables */
    char errmsg[512];
};

/* Parameters of one statement, in binary form. */
#define PG_PARAMS_MAX 24
typedef struct pg_params {
    int n;
    Oid type[PG_PARAMS_MAX];
    const char *value[PG_PARAMS_MAX];
    int len[PG_PARAMS_MAX];
    int fmt[PG_PARAMS_MAX];
    char scratch[PG_PARAMS_MAX][8]; /* int8 values */
    char *owned[PG_PARAMS_MAX]; /* arrays built for this statement */
} pg_params;

void pg_param_bytes(pg_params *p, Oid type, const void *ptr, size_t len);
void pg_param_int8(pg_params *p, uint64_t v);
void pg_param_null(pg_params *p, Oid type);
/* A one-dimensional array of n elements of elem_type; elem(i) gives element i. */
int pg_param_array(pg_params *p, Oid array_type, Oid elem_type, size_t n,
                   cairn_pg_bytes (*elem)(const void *ctx, size_t i), const void *ctx);
/* An int8[] of n values, value(i) giving element i. */
int pg_param_int8_array(pg_params *p, size_t n, uint64_t (*value)(const void *ctx, size_t i), const void *ctx);
/* A DCB query's four parameters: after (NULL: no query), the number of items, each name's
 * item, the names (pg_dcb.c). */
int pg_param_query(pg_params *p, const cairn_pg_query *q);
/* Elements of a cairn_pg_key array: its stream ids, its keys. */
cairn_pg_bytes pg_key_stream(const void *ctx, size_t i);
cairn_pg_bytes pg_key_bytes(const void *ctx, size_t i);
void pg_params_free(pg_params *p);

/* Run statement `which`; on success *res holds a PGRES_TUPLES_OK/COMMAND_OK result (binary
 * columns). On failure sets pg->errmsg, maps the error to a code, frees
 * everything. Connects first when the connection is missing or broken. */
int pg_exec(cairn_pg *pg, enum pg_sql_id which, const pg_params *p, PGresult **res);
/* The same for SQL text (schema setup). */
int pg_exec_sql(cairn_pg *pg, const char *sql, const pg_params *p, PGresult **res);
/* Several statements without parameters (the schema's creation). */
int pg_exec_script(cairn_pg *pg, const char *sql);
/* CAIRN_OK, or CAIRN_CONFIG for a handle opened read-only (as LMDB says it). */
int pg_writable(cairn_pg *pg);
/* Set the message ("PostgreSQL server S: ...") and return rc. */
int pg_fail(cairn_pg *pg, int rc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* (Re)connect if needed: CAIRN_OK or an error with the message set. */
int pg_connect(cairn_pg *pg);
/* A connected handle for the URI's schema (opt->schema when set), without looking at the
 * schema: cairn_pg_open goes on to make its statements and open the schema. */
int pg_new(const char *uri, const cairn_pg_options *opt, cairn_pg **out, char *err, size_t errlen);
/* A schema name cairn accepts: 1 to CAIRN_PG_SCHEMA_MAX of a-z, 0-9, _, not a digit or pg_ first. */
int pg_valid_schema(const char *s);

/* A statement whose answer is one int8 (0 when there is no row, or NULL). */
int pg_one_u64(cairn_pg *pg, enum pg_sql_id which, const pg_params *p, uint64_t *out);

/* Binary result helpers. */
uint64_t pg_get_u64(const PGresult *r, int row, int col);
int pg_rows_take(PGresult *r, cairn_pg_rows *out, int id_col, int version_col, int stream_col,
                 int bytes_col, int key_col);

/* pg_sql.c: make pg->sql (CAIRN_OK or out of memory); check the schema's
 * tables, creating them first for a writer. */
int pg_sql_make(cairn_pg *pg);
/* schema_sql for another schema of the same database, expanded (malloc'd; NULL: out of memory). */
char *pg_schema_script(cairn_pg *pg, const char *schema);
int pg_schema_open(cairn_pg *pg);
/* Make the schema or bring an older one up to date (a writer's open; the first write of a
 * tool's open that found it older). */
int pg_schema_update(cairn_pg *pg);

#endif
