/*
 * pg_conn.c -- the PostgreSQL engine's connection: opening a handle from a
 * URI, connecting again after a loss, running one statement with binary
 * parameters and results, and turning libpq's errors into one-line messages
 * that name the server and never the password.
 */
#define _GNU_SOURCE /* memmem */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cairn.h"
#include "pg_internal.h"
#include "record.h"

int pg_fail(cairn_pg *pg, int rc, const char *fmt, ...)
{
    /* the server's name is at most 255 bytes: room is left for the message */
    int n = snprintf(pg->errmsg, sizeof pg->errmsg, "PostgreSQL server %s: ", pg->server);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(pg->errmsg + n, sizeof pg->errmsg - (size_t)n, fmt, ap);
    va_end(ap);
    return rc;
}

int pg_writable(cairn_pg *pg)
{
    if (pg->read_only) return pg_fail(pg, CAIRN_CONFIG, "schema %s is open read-only", pg->schema);
    /* a tool's open left an older schema as it was: its first write brings it up to date */
    return pg->outdated ? pg_schema_update(pg) : CAIRN_OK;
}

/* libpq's messages span lines ("...failed: FATAL: ...\n\tIs the server
 * running...?\n"): their first line, without the "connection to server ...
 * failed:" preamble that repeats the address we name ourselves. */
static void one_line(const char *msg, char *out, size_t outlen)
{
    const char *failed = strstr(msg, "failed: ");
    if (strncmp(msg, "connection to server", 20) == 0 && failed) msg = failed + 8;
    size_t n = strcspn(msg, "\r\n"), j = 0;
    for (size_t i = 0; i < n && j + 1 < outlen; i++)
        if (!(msg[i] == ' ' && (j == 0 || out[j - 1] == ' '))) out[j++] = msg[i];
    while (j > 0 && out[j - 1] == ' ') j--;
    out[j] = '\0';
}

/* Replace each occurrence of secret (when it is set) in msg with "***". */
static void redact(char *msg, size_t cap, const char *secret, size_t len)
{
    if (len == 0) return;
    char *hit;
    while ((hit = memmem(msg, strlen(msg), secret, len))) {
        size_t tail = strlen(hit + len);
        if (len < 3 && hit + 3 + tail >= msg + cap) break;
        memmove(hit + 3, hit + len, tail + 1);
        memcpy(hit, "***", 3);
    }
}

/* Take whatever could be a password out of a message about uri: the
 * userinfo's password and a password= parameter, raw as written. */
static void redact_uri_secrets(char *msg, size_t cap, const char *uri)
{
    const char *auth = strstr(uri, "://");
    if (auth) {
        auth += 3;
        size_t authlen = strcspn(auth, "/?");
        const char *at = memchr(auth, '@', authlen);
        const char *colon = at ? memchr(auth, ':', (size_t)(at - auth)) : NULL;
        if (colon) redact(msg, cap, colon + 1, (size_t)(at - colon - 1));
    }
    for (const char *p = strstr(uri, "password="); p; p = strstr(p + 1, "password="))
        redact(msg, cap, p + 9, strcspn(p + 9, "&#"));
}

/* ---- the URI ------------------------------------------------------------- */

/* Take `schema=NAME` out of the URI's query (libpq refuses parameters it does
 * not know). *schema is set to a malloc'd copy of NAME, or NULL. */
static char *split_uri(const char *uri, char **schema)
{
    *schema = NULL;
    char *out = malloc(strlen(uri) + 1);
    if (!out) return NULL;
    const char *q = strchr(uri, '?');
    if (!q) { strcpy(out, uri); return out; }
    size_t j = (size_t)(q - uri);
    memcpy(out, uri, j);
    char sep = '?';
    for (const char *p = q + 1; *p;) {
        size_t len = strcspn(p, "&");
        if (len > 7 && strncmp(p, "schema=", 7) == 0) {
            free(*schema);
            *schema = strndup(p + 7, len - 7);
        } else if (len > 0) {
            out[j++] = sep;
            memcpy(out + j, p, len);
            j += len;
            sep = '&';
        }
        p += len;
        if (*p == '&') p++;
    }
    out[j] = '\0';
    return out;
}

/* "host:port/database" from the connection parameters, as libpq will use them. */
static void describe_server(const PQconninfoOption *opts, char *out, size_t len)
{
    const char *host = NULL, *hostaddr = NULL, *port = NULL, *db = NULL, *user = NULL;
    for (const PQconninfoOption *o = opts; o && o->keyword; o++) {
        if (!o->val || !*o->val) continue;
        if (strcmp(o->keyword, "host") == 0) host = o->val;
        else if (strcmp(o->keyword, "hostaddr") == 0) hostaddr = o->val;
        else if (strcmp(o->keyword, "port") == 0) port = o->val;
        else if (strcmp(o->keyword, "dbname") == 0) db = o->val;
        else if (strcmp(o->keyword, "user") == 0) user = o->val;
    }
    if (!host) host = hostaddr ? hostaddr : "(default socket)";
    snprintf(out, len, "%s:%s/%s", host, port ? port : "5432", db ? db : user ? user : "(default database)");
}

/* A schema name that is a plain SQL identifier, as the name of a channel too. */
static int valid_schema(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > CAIRN_PG_SCHEMA_MAX || (s[0] >= '0' && s[0] <= '9')) return 0;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_')) return 0;
    return strncmp(s, "pg_", 3) != 0;
}

/* ---- connecting ---------------------------------------------------------- */

/* Whether a failed connection reached a server that said no (a setting to
 * fix: password, role, database) rather than no server (one to wait for). */
static int refused_by_server(const char *msg)
{
    /* libpq checks some settings only when it connects ("invalid integer value ... for
     * connection option \"port\"", "invalid sslmode value"): a setting to fix too */
    if (strncmp(msg, "invalid ", 8) == 0) return 1;
    if (!strstr(msg, "FATAL:")) return 0;
    return !strstr(msg, "starting up") && !strstr(msg, "shutting down") && !strstr(msg, "too many") &&
           !strstr(msg, "recovery mode");
}

/* A library prints nothing: the server's notices ("... already exists,
 * skipping") are dropped. */
static void ignore_notice(void *ctx, const char *msg)
{
    (void)ctx;
    (void)msg;
}

int pg_connect(cairn_pg *pg)
{
    if (pg->conn && PQstatus(pg->conn) == CONNECTION_OK) return CAIRN_OK;
    if (pg->conn) PQfinish(pg->conn);
    pg->listening = 0;
    memset(pg->prepared, 0, sizeof pg->prepared);
    /* later keywords override earlier ones: the URI's own settings win. TCP
     * keepalives notice a server gone from the network in about a minute, not
     * the system's two hours. */
    const char *const keys[] = { "connect_timeout", "keepalives_idle", "keepalives_interval", "keepalives_count",
                                 "fallback_application_name", "dbname", NULL };
    const char *const vals[] = { "10", "30", "10", "3", "cairn", pg->conninfo, NULL };
    pg->conn = PQconnectdbParams(keys, vals, 1);
    if (!pg->conn) return pg_fail(pg, CAIRN_STORE, "out of memory connecting");
    if (PQstatus(pg->conn) != CONNECTION_OK) {
        char line[380];
        one_line(PQerrorMessage(pg->conn), line, sizeof line);
        redact_uri_secrets(line, sizeof line, pg->conninfo);
        int refused = refused_by_server(line);
        PQfinish(pg->conn);
        pg->conn = NULL;
        return pg_fail(pg, refused ? CAIRN_CONFIG : CAIRN_STORE, "cannot connect: %s%s", line,
                       refused ? "" : " (is the server running and accepting connections?)");
    }
    PQsetNoticeProcessor(pg->conn, ignore_notice, NULL);
    if (pg->read_only) {
        PGresult *r = PQexec(pg->conn, "SET default_transaction_read_only = on");
        int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
        PQclear(r);
        if (!ok) {
            char line[380];
            one_line(PQerrorMessage(pg->conn), line, sizeof line);
            return pg_fail(pg, CAIRN_STORE, "%s", line);
        }
    }
    return CAIRN_OK;
}

int pg_valid_schema(const char *s) { return valid_schema(s); }

int pg_new(const char *uri, const cairn_pg_options *opt, cairn_pg **out, char *err, size_t errlen)
{
    *out = NULL;
    if (strncmp(uri, "postgresql://", 13) != 0 && strncmp(uri, "postgres://", 11) != 0) {
        snprintf(err, errlen, "not a PostgreSQL URI (postgresql://… or postgres://…)");
        return CAIRN_CONFIG;
    }
    cairn_pg *pg = calloc(1, sizeof *pg);
    char *uri_schema = NULL;
    if (!pg || !(pg->conninfo = split_uri(uri, &uri_schema))) {
        free(pg);
        snprintf(err, errlen, "out of memory opening a PostgreSQL store");
        return CAIRN_STORE;
    }
    pg->read_only = opt && opt->read_only;
    pg->must_exist = pg->read_only || (opt && opt->must_exist);
    const char *schema = opt && opt->schema ? opt->schema : uri_schema ? uri_schema : "cairn";
    char *perr = NULL;
    PQconninfoOption *opts = PQconninfoParse(pg->conninfo, &perr);
    int rc = CAIRN_OK;
    if (!opts) {
        /* libpq's message names the offending part; the URI itself is never shown */
        char line[300];
        one_line(perr ? perr : "out of memory", line, sizeof line);
        redact_uri_secrets(line, sizeof line, uri);
        snprintf(err, errlen, "bad PostgreSQL URI: %s", line);
        rc = CAIRN_CONFIG;
    } else {
        describe_server(opts, pg->server, sizeof pg->server);
        PQconninfoFree(opts);
        if (!valid_schema(schema)) {
            snprintf(err, errlen, "PostgreSQL server %s: schema name \"%.60s\" must be 1 to %d of a-z, 0-9 "
                     "and _, not starting with a digit or pg_", pg->server, schema, CAIRN_PG_SCHEMA_MAX);
            rc = CAIRN_CONFIG;
        }
    }
    PQfreemem(perr);
    if (rc == CAIRN_OK) {
        strcpy(pg->schema, schema);
        rc = pg_connect(pg);
        if (rc) snprintf(err, errlen, "%s", pg->errmsg);
    }
    free(uri_schema);
    if (rc) {
        cairn_pg_close(pg);
        return rc;
    }
    *out = pg;
    return CAIRN_OK;
}

int cairn_pg_open(const char *uri, const cairn_pg_options *opt, cairn_pg **out, char *err, size_t errlen)
{
    cairn_pg *pg;
    int rc = pg_new(uri, opt, &pg, err, errlen);
    if (rc) return rc;
    rc = pg_sql_make(pg);
    if (rc == CAIRN_OK) rc = pg_schema_open(pg);
    if (rc) {
        snprintf(err, errlen, "%s", pg->errmsg);
        cairn_pg_close(pg);
        return rc;
    }
    *out = pg;
    return CAIRN_OK;
}

void cairn_pg_close(cairn_pg *pg)
{
    if (!pg) return;
    if (pg->conn) PQfinish(pg->conn);
    for (int i = 0; i < PG_SQL_COUNT; i++) free(pg->sql[i]);
    if (pg->qschema) PQfreemem(pg->qschema);
    if (pg->channel) PQfreemem(pg->channel);
    if (pg->conninfo) {
        memset(pg->conninfo, 0, strlen(pg->conninfo)); /* it may hold a password */
        free(pg->conninfo);
    }
    free(pg);
}

const char *cairn_pg_errmsg(const cairn_pg *pg) { return pg->errmsg; }
const char *cairn_pg_server(const cairn_pg *pg) { return pg->server; }
const char *cairn_pg_schema(const cairn_pg *pg) { return pg->schema; }
int cairn_pg_backend_pid(const cairn_pg *pg) { return pg->conn ? PQbackendPID(pg->conn) : 0; }
int cairn_pg_keys_changed(const cairn_pg *pg) { return pg->keys_changed; }

/* ---- statements ---------------------------------------------------------- */

/* Our own SQLSTATEs, raised by the schema's functions (pg_sql.c). */
#define SQLSTATE_STALE_STREAM "CN002"
#define SQLSTATE_STALE_TRACKING "CN001"
#define SQLSTATE_KEYS_CHANGED "CN003"
#define SQLSTATE_NO_KEY "CN004"
#define SQLSTATE_NOT_NEW "CN005"
#define SQLSTATE_DCB_CONDITION "CN006"
#define SQLSTATE_ONCE_TAKEN "CN007"
#define SQLSTATE_NEWER_SCHEMA "CNV01"

/* Two saves raced for one stream version (or one new stream's data key) and met at the
 * unique index: the one that waited is refused whole. Named as the version check names
 * it, from the server's detail: Key (stream_id, version)=(ID, V) already exists. */
static int unique_violation(cairn_pg *pg, const PGresult *r, const char *line)
{
    const char *constraint = PQresultErrorField(r, PG_DIAG_CONSTRAINT_NAME);
    const char *detail = PQresultErrorField(r, PG_DIAG_MESSAGE_DETAIL);
    const char *key = detail ? strstr(detail, ")=(") : NULL;
    if (!constraint || !key) return pg_fail(pg, CAIRN_CONFLICT, "%s", line);
    key += 3;
    int keylen = (int)strcspn(key, ")");
    if (strcmp(constraint, "events_stream_version") == 0) {
        const char *comma = memchr(key, ',', (size_t)keylen);
        if (comma)
            return pg_fail(pg, CAIRN_CONFLICT, "aggregate %.*s: version %.*s was recorded by a concurrent save "
                           "(nothing of this one was recorded)", (int)(comma - key), key,
                           keylen - (int)(comma - key) - 2, comma + 2);
    } else if (strcmp(constraint, "keys_pkey") == 0) {
        return pg_fail(pg, CAIRN_CONFLICT, "aggregate %.*s was created by a concurrent save (nothing of this one "
                       "was recorded)", keylen, key);
    }
    return pg_fail(pg, CAIRN_CONFLICT, "%s", line);
}

static int map_error(cairn_pg *pg, PGresult *r)
{
    const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    const char *primary = r ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    char line[380];
    one_line(primary ? primary : PQerrorMessage(pg->conn), line, sizeof line);
    /* the server ended the session (terminated, shutting down) or the link broke: the next
     * call starts a new connection, even when libpq has not noticed the end yet */
    int ended = state && (strncmp(state, "08", 2) == 0 || strcmp(state, "57P01") == 0 ||
                          strcmp(state, "57P02") == 0 || strcmp(state, "57P03") == 0);
    if (ended || PQstatus(pg->conn) != CONNECTION_OK) {
        PQfinish(pg->conn);
        pg->conn = NULL;
        return pg_fail(pg, CAIRN_STORE, "connection lost (%s); the next call connects again", line);
    }
    if (!state) return pg_fail(pg, CAIRN_STORE, "%s", line);
    if (strcmp(state, SQLSTATE_STALE_STREAM) == 0 || strcmp(state, SQLSTATE_STALE_TRACKING) == 0 ||
        strcmp(state, SQLSTATE_DCB_CONDITION) == 0 || strcmp(state, SQLSTATE_ONCE_TAKEN) == 0)
        return pg_fail(pg, CAIRN_CONFLICT, "%s", line);
    if (strcmp(state, SQLSTATE_KEYS_CHANGED) == 0 || strcmp(state, SQLSTATE_NOT_NEW) == 0) {
        pg->keys_changed = 1;
        return pg_fail(pg, CAIRN_CONFLICT, "%s", line);
    }
    if (strcmp(state, SQLSTATE_NO_KEY) == 0) return pg_fail(pg, CAIRN_NOTFOUND, "%s", line);
    if (strcmp(state, SQLSTATE_NEWER_SCHEMA) == 0) return pg_fail(pg, CAIRN_CONFIG, "%s", line);
    if (strcmp(state, "23505") == 0) return unique_violation(pg, r, line);
    /* deadlock_detected: two writers took the same rows (stream versions, view keys) in
     * different orders; the server aborted this one, so nothing of it was recorded */
    if (strcmp(state, "40P01") == 0)
        return pg_fail(pg, CAIRN_CONFLICT, "a concurrent write took the same rows first, nothing was recorded (%s)",
                       line);
    if (strncmp(state, "28", 2) == 0 || strcmp(state, "42501") == 0) /* authorization, privilege */
        return pg_fail(pg, CAIRN_CONFIG, "%s", line);
    if (strcmp(state, "42P01") == 0 || strcmp(state, "3F000") == 0 || strcmp(state, "42883") == 0)
        return pg_fail(pg, CAIRN_CONFIG, "schema %s has no cairn store (%s)", pg->schema, line);
    return pg_fail(pg, CAIRN_STORE, "%s (SQLSTATE %s)", line, state);
}

/* A statement's result: CAIRN_OK with *res, or the error mapped (r freed). */
static int finish(cairn_pg *pg, PGresult *r, PGresult **res)
{
    ExecStatusType st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
    if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK) {
        *res = r;
        return CAIRN_OK;
    }
    int rc = map_error(pg, r);
    PQclear(r);
    return rc;
}

/* Connect when needed; a walk's reads must share its snapshot: no silent reconnect in the middle. */
static int ready(cairn_pg *pg, PGresult **res)
{
    *res = NULL;
    pg->keys_changed = 0;
    if (pg->walking && (!pg->conn || PQstatus(pg->conn) != CONNECTION_OK))
        return pg_fail(pg, CAIRN_STORE, "connection lost during a walk; end it and walk again");
    return pg_connect(pg);
}

int pg_exec_sql(cairn_pg *pg, const char *sql, const pg_params *p, PGresult **res)
{
    int rc = ready(pg, res);
    if (rc) return rc;
    PGresult *r = p ? PQexecParams(pg->conn, sql, p->n, p->type, p->value, p->len, p->fmt, 1)
                    : PQexecParams(pg->conn, sql, 0, NULL, NULL, NULL, NULL, 1);
    return finish(pg, r, res);
}

int pg_exec_script(cairn_pg *pg, const char *sql)
{
    int rc = pg_connect(pg);
    if (rc) return rc;
    PGresult *r = PQexec(pg->conn, sql);
    ExecStatusType st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
    rc = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK ? CAIRN_OK : map_error(pg, r);
    PQclear(r);
    /* a failed script leaves its transaction aborted: end it */
    if (rc && PQstatus(pg->conn) == CONNECTION_OK && PQtransactionStatus(pg->conn) != PQTRANS_IDLE)
        PQclear(PQexec(pg->conn, "ROLLBACK"));
    return rc;
}

/* The hot statements are prepared once per connection (named c<n>), so each call is
 * Bind/Execute with no parse or analysis on the server, and the plan is cached. The
 * others (pages with "$1 IS NULL OR key > $1", where only a plan made for the values
 * uses the index's bound) are planned each time. */
static int worth_preparing(enum pg_sql_id which)
{
    switch (which) {
    case PG_SQL_SAVE: case PG_SQL_APPEND: case PG_SQL_NUMBER: case PG_SQL_STREAM_ASC: case PG_SQL_STREAM_DESC: case PG_SQL_PREPARE:
    case PG_SQL_LOG: case PG_SQL_LOG_TOPICS: case PG_SQL_SNAPSHOT: case PG_SQL_MAX_ID: case PG_SQL_TRACKING:
    case PG_SQL_VIEW_WRITE: case PG_SQL_VIEW_GET: case PG_SQL_VIEW_TRACKING:
        return 1;
    default:
        return 0;
    }
}

int pg_exec(cairn_pg *pg, enum pg_sql_id which, const pg_params *p, PGresult **res)
{
    static const pg_params none = { 0 };
    if (!worth_preparing(which)) return pg_exec_sql(pg, pg->sql[which], p, res);
    if (!p) p = &none;
    int rc = ready(pg, res);
    if (rc) return rc;
    char name[16];
    snprintf(name, sizeof name, "c%d", (int)which);
    for (int attempt = 0;; attempt++) {
        if (!pg->prepared[which]) {
            PGresult *r = PQprepare(pg->conn, name, pg->sql[which], p->n, p->type);
            if ((rc = finish(pg, r, &r))) return rc;
            PQclear(r);
            pg->prepared[which] = 1;
        }
        PGresult *r = PQexecPrepared(pg->conn, name, p->n, p->value, p->len, p->fmt, 1);
        /* a function the statement calls was replaced with another result type (a newer
         * cairn's schema): the server refused before running it; prepare it again, once */
        const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
        if (attempt == 0 && state && strcmp(state, "0A000") == 0 && PQstatus(pg->conn) == CONNECTION_OK &&
            PQtransactionStatus(pg->conn) == PQTRANS_IDLE) {
            PQclear(r);
            char drop[32];
            snprintf(drop, sizeof drop, "DEALLOCATE %s", name);
            PQclear(PQexec(pg->conn, drop));
            pg->prepared[which] = 0;
            continue;
        }
        return finish(pg, r, res);
    }
}

/* ---- parameters ---------------------------------------------------------- */

void pg_param_bytes(pg_params *p, Oid type, const void *ptr, size_t len)
{
    int i = p->n++;
    p->type[i] = type;
    p->value[i] = len ? (const char *)ptr : "";
    p->len[i] = (int)len;
    p->fmt[i] = 1;
}

void pg_param_int8(pg_params *p, uint64_t v)
{
    cairn_put_be64((uint8_t *)p->scratch[p->n], v);
    pg_param_bytes(p, PG_INT8, p->scratch[p->n], 8);
}

void pg_param_null(pg_params *p, Oid type)
{
    int i = p->n++;
    p->type[i] = type;
    p->value[i] = NULL;
    p->len[i] = 0;
    p->fmt[i] = 1;
}

static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24); p[1] = (uint8_t)(v >> 16); p[2] = (uint8_t)(v >> 8); p[3] = (uint8_t)v;
}

/* The binary array format (array_send): ndim, has-nulls flag, element type,
 * then per dimension its length and lower bound, then each element as a
 * 32-bit length and its bytes. */
int pg_param_array(pg_params *p, Oid array_type, Oid elem_type, size_t n,
                   cairn_pg_bytes (*elem)(const void *ctx, size_t i), const void *ctx)
{
    size_t size = n ? 20 : 12;
    for (size_t i = 0; i < n; i++) {
        size_t len = elem(ctx, i).len;
        if (len > 0x3fffffff) return CAIRN_INVALID;
        size += 4 + len;
    }
    if (size > 0x3fffffff) return CAIRN_INVALID;
    uint8_t *buf = malloc(size), *w = buf;
    if (!buf) return CAIRN_STORE;
    put_be32(w, n ? 1 : 0); put_be32(w + 4, 0); put_be32(w + 8, elem_type); w += 12;
    if (n) { put_be32(w, (uint32_t)n); put_be32(w + 4, 1); w += 8; }
    for (size_t i = 0; i < n; i++) {
        cairn_pg_bytes b = elem(ctx, i);
        put_be32(w, (uint32_t)b.len);
        if (b.len) memcpy(w + 4, b.ptr, b.len);
        w += 4 + b.len;
    }
    p->owned[p->n] = (char *)buf;
    pg_param_bytes(p, array_type, buf, size);
    return CAIRN_OK;
}

/* An int8[] parameter: the same layout, 8-byte big-endian elements. */
int pg_param_int8_array(pg_params *p, size_t n, uint64_t (*value)(const void *ctx, size_t i), const void *ctx)
{
    if (n > 0x3ffffff) return CAIRN_INVALID;
    size_t size = (n ? 20 : 12) + 12 * n;
    uint8_t *buf = malloc(size), *w = buf;
    if (!buf) return CAIRN_STORE;
    put_be32(w, n ? 1 : 0); put_be32(w + 4, 0); put_be32(w + 8, PG_INT8); w += 12;
    if (n) { put_be32(w, (uint32_t)n); put_be32(w + 4, 1); w += 8; }
    for (size_t i = 0; i < n; i++, w += 12) {
        put_be32(w, 8);
        cairn_put_be64(w + 4, value(ctx, i));
    }
    p->owned[p->n] = (char *)buf;
    pg_param_bytes(p, PG_INT8_ARRAY, buf, size);
    return CAIRN_OK;
}

cairn_pg_bytes pg_key_stream(const void *ctx, size_t i)
{
    return (cairn_pg_bytes){ ((const cairn_pg_key *)ctx)[i].stream_id, 16 };
}

cairn_pg_bytes pg_key_bytes(const void *ctx, size_t i) { return ((const cairn_pg_key *)ctx)[i].key; }

void pg_params_free(pg_params *p)
{
    for (int i = 0; i < p->n; i++) free(p->owned[i]);
}

/* ---- results ------------------------------------------------------------- */

uint64_t pg_get_u64(const PGresult *r, int row, int col)
{
    if (PQgetisnull(r, row, col) || PQgetlength(r, row, col) != 8) return 0;
    return cairn_get_be64((const uint8_t *)PQgetvalue(r, row, col));
}

static cairn_pg_bytes get_bytes(const PGresult *r, int row, int col)
{
    cairn_pg_bytes b = { NULL, 0 };
    if (col < 0 || PQgetisnull(r, row, col)) return b;
    b.ptr = (const uint8_t *)PQgetvalue(r, row, col);
    b.len = (size_t)PQgetlength(r, row, col);
    return b;
}

int pg_rows_take(PGresult *r, cairn_pg_rows *out, int id_col, int version_col, int stream_col,
                 int bytes_col, int key_col)
{
    memset(out, 0, sizeof *out);
    size_t n = (size_t)PQntuples(r);
    out->row = calloc(n ? n : 1, sizeof *out->row);
    if (!out->row) {
        PQclear(r);
        return CAIRN_STORE;
    }
    for (size_t i = 0; i < n; i++) {
        cairn_pg_row *row = &out->row[i];
        if (id_col >= 0) row->id = pg_get_u64(r, (int)i, id_col);
        if (version_col >= 0) row->version = pg_get_u64(r, (int)i, version_col);
        if (stream_col >= 0 && PQgetlength(r, (int)i, stream_col) == 16)
            row->stream_id = (const uint8_t *)PQgetvalue(r, (int)i, stream_col);
        row->bytes = get_bytes(r, (int)i, bytes_col);
        row->key = get_bytes(r, (int)i, key_col);
    }
    out->n = n;
    out->result = r;
    return CAIRN_OK;
}

void cairn_pg_rows_free(cairn_pg_rows *rows)
{
    if (!rows) return;
    PQclear(rows->result);
    free(rows->row);
    memset(rows, 0, sizeof *rows);
}
