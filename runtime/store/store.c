/*
 * store.c -- the façade (store.h): open a store by URI, pick its engine, put
 * the mapper over it; what every engine and the mapper share for messages.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cairn.h"
#include "mapper.h"
#include "pg_store.h"
#include "string_id.h"
#include "uuid.h"

int cairn_engine_fail(cairn_engine *e, int rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->errmsg, sizeof e->errmsg, fmt, ap);
    va_end(ap);
    return rc;
}

int cairn_store_fail(cairn_store *s, int rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->eng->errmsg, sizeof s->eng->errmsg, fmt, ap);
    va_end(ap);
    return rc;
}

int cairn_store_conflict(cairn_store *s, const cairn_record *r, uint64_t version, int has_last, uint64_t last)
{
    char hex[CAIRN_STRING_ID_MAX + 1] = { 0 };
    if (r->name_len) snprintf(hex, sizeof hex, "%.*s", (int)r->name_len, r->name); /* a string id */
    else cairn_uuid_format(r->stream_id, hex);
    if (has_last && version <= last)
        return cairn_store_fail(s, CAIRN_CONFLICT,
                                "aggregate %s: version %llu was already recorded (the stream is at %llu)",
                                hex, (unsigned long long)version, (unsigned long long)last);
    if (has_last)
        return cairn_store_fail(s, CAIRN_CONFLICT,
                                "aggregate %s: version %llu does not follow the recorded version %llu",
                                hex, (unsigned long long)version, (unsigned long long)last);
    return cairn_store_fail(s, CAIRN_CONFLICT, "aggregate %s: version %llu recorded twice in one save",
                            hex, (unsigned long long)version);
}

int cairn_store_read_only(cairn_store *s)
{
    return cairn_store_fail(s, CAIRN_CONFIG, "store %s is open read-only%s", s->eng->where,
                            s->eng->read_only == CAIRN_ENGINE_UNWRITABLE ? " (this user may not write its files)" : "");
}

static int open_failed(char *err, size_t errlen, int rc, const char *fmt, const char *uri)
{
    snprintf(err, errlen, fmt, uri);
    return rc;
}

/* The engine of a URI and what its open takes (NULL location: a private store). */
/* The URI as messages and tools show it: a PostgreSQL URI's password (user:PASSWORD@…,
 * password=…) replaced with *** (malloc'd; NULL: out of memory). */
static char *shown_uri(const char *uri)
{
    if (strncmp(uri, "postgres://", 11) != 0 && strncmp(uri, "postgresql://", 13) != 0) return strdup(uri);
    size_t len = strlen(uri);
    char *out = malloc(len + 4 * 8 + 1), *w = out; /* each password becomes 3 bytes; room for a few */
    if (!out) return NULL;
    const char *auth = strstr(uri, "://") + 3, *p = uri;
    size_t authlen = strcspn(auth, "/?#");
    const char *at = memchr(auth, '@', authlen), *colon = at ? memchr(auth, ':', (size_t)(at - auth)) : NULL;
    int secrets = 0;
    while (*p) {
        const char *skip_to = NULL;
        if (colon && p == colon + 1) skip_to = at;
        else if ((p > uri && (p[-1] == '?' || p[-1] == '&')) && strncmp(p, "password=", 9) == 0) {
            memcpy(w, p, 9);
            w += 9;
            p += 9;
            skip_to = p + strcspn(p, "&#");
        }
        if (skip_to && secrets < 8) {
            memcpy(w, "***", 3);
            w += 3;
            p = skip_to;
            secrets++;
            continue;
        }
        *w++ = *p++;
    }
    *w = '\0';
    return out;
}

static int pick_engine(const char *uri, const cairn_engine_ops **ops, const char **location, char *err,
                       size_t errlen)
{
    if (strcmp(uri, "memory:") == 0) {
        *ops = &cairn_lmdb_engine;
        *location = NULL;
        return CAIRN_OK;
    }
    if (strncmp(uri, "lmdb:", 5) == 0) {
        if (uri[5] == '\0') return open_failed(err, errlen, CAIRN_CONFIG, "bad store URI '%s': lmdb: needs a path", uri);
        *ops = &cairn_lmdb_engine;
        *location = uri + 5;
        return CAIRN_OK;
    }
    if (strncmp(uri, "memory:", 7) == 0)
        return open_failed(err, errlen, CAIRN_CONFIG, "bad store URI '%s': memory: takes no path", uri);
    if (strncmp(uri, "postgres://", 11) == 0 || strncmp(uri, "postgresql://", 13) == 0)
    {
        *ops = &cairn_pg_engine;
        *location = uri; /* a libpq URI, whole */
        return CAIRN_OK;
    }
    return open_failed(err, errlen, CAIRN_CONFIG,
                       "bad store URI '%s': expected memory:, lmdb:PATH or postgresql://…", uri);
}

int cairn_store_open(const char *uri, const cairn_store_options *opt, cairn_store **out,
                     char *err, size_t errlen)
{
    static const cairn_store_options defaults = { .sync = CAIRN_SYNC_FULL };
    if (!opt) opt = &defaults;
    *out = NULL;
    const cairn_engine_ops *ops;
    const char *location;
    int rc = pick_engine(uri, &ops, &location, err, errlen);
    if (rc) return rc;
    cairn_store *s = calloc(1, sizeof *s);
    if (!s || !(s->uri = shown_uri(uri))) {
        free(s);
        return open_failed(err, errlen, ENOMEM, "out of memory opening '%s'", uri);
    }
    s->read_only = opt->read_only;
    cairn_engine_options eo = { .sync = opt->sync, .map_size = opt->map_size, .must_exist = opt->must_exist,
                                .read_only = opt->read_only };
    rc = ops->open(location, &eo, &s->eng, err, errlen);
    if (rc == CAIRN_OK) {
        s->read_only = s->eng->read_only != 0;
        rc = cairn_store_cipher_open(s, opt, err, errlen);
    }
    if (rc) {
        cairn_store_close(s);
        return rc;
    }
    *out = s;
    return CAIRN_OK;
}

void cairn_store_close(cairn_store *s)
{
    if (!s) return;
    if (s->eng) {
        cairn_store_read_end(s);
        s->eng->ops->close(s->eng);
    }
    cairn_view_scan_free(s);
    cairn_store_cipher_close(s);
    cairn_store_save_free(s);
    cairn_compressor_free(s->zc);
    cairn_snap_memo_free(s);
    free(s->buf);
    free(s->buf2);
    free(s->uri);
    free(s);
}

const char *cairn_store_errmsg(const cairn_store *s) { return s->eng->errmsg; }

const char *cairn_store_uri(const cairn_store *s) { return s->uri; }

int cairn_store_copy(cairn_store *s, const char *target)
{
    if (!s->eng->ops->copy) return cairn_store_fail(s, CAIRN_CONFIG, "store %s cannot be copied", s->eng->where);
    return s->eng->ops->copy(s->eng, target);
}

int cairn_store_drop_copy(const char *uri, char *err, size_t errlen)
{
    if (strncmp(uri, "postgres://", 11) != 0 && strncmp(uri, "postgresql://", 13) != 0)
        return open_failed(err, errlen, CAIRN_CONFIG, "'%s' is not a PostgreSQL copy: only those are dropped", uri);
    return cairn_pg_drop_copy(uri, err, errlen);
}

void cairn_store_group_stats(cairn_store *s, uint64_t *groups, uint64_t *saves)
{
    *groups = *saves = 0;
    if (s->eng->ops->group_stats) s->eng->ops->group_stats(s->eng, groups, saves);
}
