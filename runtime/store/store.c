/* store.c -- opening stores by URI and what every engine shares. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cairn.h"
#include "store_internal.h"
#include "uuid.h"

int cairn_store_fail(cairn_store *s, int rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->errmsg, sizeof s->errmsg, fmt, ap);
    va_end(ap);
    return rc;
}

int cairn_store_conflict(cairn_store *s, const uint8_t id[16], uint64_t version,
                         int has_last, uint64_t last)
{
    char hex[CAIRN_UUID_STRLEN + 1] = { 0 };
    cairn_uuid_format(id, hex);
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

/* The fields every stored record needs: a topic and a class version that fit. */
static int check_record(cairn_store *s, const cairn_record *r, const char *what, size_t i)
{
    if (r->topic_len == 0 || r->topic_len > CAIRN_TOPIC_MAX)
        return cairn_store_fail(s, CAIRN_INVALID, "%s %zu: topic must be 1 to %d bytes", what, i + 1,
                                CAIRN_TOPIC_MAX);
    if (r->class_version > CAIRN_CLASS_VERSION_MAX)
        return cairn_store_fail(s, CAIRN_INVALID, "%s %zu: class version %u is above %d", what, i + 1,
                                r->class_version, CAIRN_CLASS_VERSION_MAX);
    return CAIRN_OK;
}

int cairn_store_check_batch(cairn_store *s, const cairn_batch *b)
{
    const cairn_record *ev = b->events;
    for (size_t i = 0; i < b->n; i++) {
        int rc = check_record(s, &ev[i], "event", i);
        if (rc) return rc;
        if (i > 0 && memcmp(ev[i].stream_id, ev[i - 1].stream_id, 16) == 0 &&
            ev[i].version != ev[i - 1].version + 1)
            return cairn_store_conflict(s, ev[i].stream_id, ev[i].version, 0, 0);
    }
    for (size_t i = 0; i < b->nsnapshots; i++) {
        int rc = check_record(s, &b->snapshots[i], "snapshot", i);
        if (rc) return rc;
    }
    if (b->tracking && (b->tracking->app_len == 0 || b->tracking->app_len > 511 || b->tracking->id == 0))
        return cairn_store_fail(s, CAIRN_INVALID, "a tracking record needs an application name and an id above 0");
    return CAIRN_OK;
}

int cairn_store_topic_matches(const cairn_log_query *q, const cairn_record *rec)
{
    if (q->ntopics == 0) return 1;
    for (size_t i = 0; i < q->ntopics; i++)
        if (q->topics[i].len == rec->topic_len && memcmp(q->topics[i].ptr, rec->topic, rec->topic_len) == 0)
            return 1;
    return 0;
}

static int open_failed(char *err, size_t errlen, int rc, const char *fmt, const char *uri)
{
    snprintf(err, errlen, fmt, uri);
    return rc;
}

void cairn_stream_key(uint8_t key[CAIRN_STREAM_KEY], const uint8_t id[16], uint64_t version)
{
    memcpy(key, id, 16);
    cairn_put_be64(key + 16, version);
}

int cairn_store_open(const char *uri, const cairn_store_options *opt, cairn_store **out,
                     char *err, size_t errlen)
{
    static const cairn_store_options defaults = { .sync = CAIRN_SYNC_FULL };
    if (!opt) opt = &defaults;
    *out = NULL;
    int rc;
    if (strcmp(uri, "memory:") == 0) {
        rc = cairn_store_env_open(NULL, opt, out, err, errlen);
    } else if (strncmp(uri, "lmdb:", 5) == 0) {
        if (uri[5] == '\0')
            return open_failed(err, errlen, CAIRN_CONFIG, "bad store URI '%s': lmdb: needs a path", uri);
        rc = cairn_store_env_open(uri + 5, opt, out, err, errlen);
    } else if (strncmp(uri, "memory:", 7) == 0) {
        return open_failed(err, errlen, CAIRN_CONFIG, "bad store URI '%s': memory: takes no path", uri);
    } else if (strncmp(uri, "postgres://", 11) == 0 || strncmp(uri, "postgresql://", 13) == 0) {
        return open_failed(err, errlen, CAIRN_CONFIG,
                           "store URI '%s': PostgreSQL stores are not available in this build", uri);
    } else {
        return open_failed(err, errlen, CAIRN_CONFIG,
                           "bad store URI '%s': expected memory: or lmdb:PATH", uri);
    }
    if (rc != CAIRN_OK) return rc;
    (*out)->uri = strdup(uri);
    if (!(*out)->uri) {
        cairn_store_close(*out);
        *out = NULL;
        return open_failed(err, errlen, ENOMEM, "out of memory opening '%s'", uri);
    }
    return CAIRN_OK;
}

const char *cairn_store_errmsg(const cairn_store *s) { return s->errmsg; }

const char *cairn_store_uri(const cairn_store *s) { return s->uri; }
