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
    if (!s || !(s->uri = strdup(uri))) {
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
    free(s->buf);
    free(s->buf2);
    free(s->uri);
    free(s);
}

const char *cairn_store_errmsg(const cairn_store *s) { return s->eng->errmsg; }

const char *cairn_store_uri(const cairn_store *s) { return s->uri; }

int cairn_store_copy(cairn_store *s, const char *dir)
{
    if (!s->eng->ops->copy)
        return cairn_store_fail(s, CAIRN_CONFIG, "store %s cannot be copied to a directory", s->eng->where);
    return s->eng->ops->copy(s->eng, dir);
}

void cairn_store_group_stats(cairn_store *s, uint64_t *groups, uint64_t *saves)
{
    *groups = *saves = 0;
    if (s->eng->ops->group_stats) s->eng->ops->group_stats(s->eng, groups, saves);
}
