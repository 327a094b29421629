/*
 * mapper_verify.c -- checking a whole store (cairn verify): the checks of
 * record content, the same on every engine.
 *
 * The engine walks its structure (recorder.h's verify): it reports what is
 * wrong with its own index (entries naming missing records or other
 * versions, gaps in notification ids, records no index entry names) and
 * hands every event over in stream then version order, every data key and
 * every snapshot. Here each stream's versions must be consecutive, each
 * record's hash must chain from the one before, its encryption flag must
 * match the store, and a snapshot's hash must chain from the event it was
 * taken at. Hashes cover the stored bytes, so all of this works without the
 * key; with the key every seal and data key is opened as well.
 *
 * The DCB index (engines that have one): every entry must name a recorded
 * event of its type, listed as a DCB event; every DCB event must be indexed
 * under its type and, where its payload can be read (a plain store, or the
 * key given), under each of its tags, and carry every tag it is indexed by.
 */
#include <errno.h>
#include <msgpack.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "cairn.h"
#include "mapper.h"
#include "string_id.h"

typedef struct {
    cairn_store *s;
    cairn_verify_report *r;
    int (*progress)(void *, uint64_t, uint64_t);
    void *ctx;
    void (*each)(void *, const char *); /* every problem, when set */
    void *each_ctx;
    uint8_t stream[16], prev[CAIRN_HASH_BYTES];
    uint64_t last_version;
    int in_stream;
} verifier;

static void problem(verifier *v, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void problem(verifier *v, const char *fmt, ...)
{
    if (v->r->problems++ > 0 && !v->each) return;
    char msg[sizeof v->r->first];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (v->r->problems == 1) memcpy(v->r->first, msg, sizeof msg);
    if (v->each) v->each(v->each_ctx, msg);
}

static void on_problem(void *ctx, const char *msg) { problem(ctx, "%s", msg); }

/* A problem with one event: "aggregate <id> version <v> (notification <n>): ..." */
static void event_problem(verifier *v, const uint8_t id[16], uint64_t version, uint64_t nid, const char *what)
{
    char desc[80];
    cairn_record_describe(id, version, desc, sizeof desc);
    problem(v, "%s (notification %llu): %s", desc, (unsigned long long)nid, what);
}

/* With the key, open the record's seal (a forgotten stream has none to
 * open); in a plain store, open a record that holds a string id. Then a
 * string id must be one and hash to the record's stream key. */
static void check_seal(verifier *v, cairn_record *rec, const char *what)
{
    cairn_store *s = v->s;
    if (s->encrypted ? !s->master : !(rec->flags & CAIRN_RECORD_STRING_ID)) return;
    int rc = cairn_store_open_payload(s, rec);
    if (rc == CAIRN_NOTFOUND && rec->forgotten) return;
    if (rc) { problem(v, "%s: %s", what, s->eng->errmsg); return; }
    if (!rec->name_len) return;
    uint8_t key[16];
    const char *bad = cairn_string_id_problem(rec->name, rec->name_len);
    if (bad) { problem(v, "%s: its string id %s", what, bad); return; }
    if (s->encrypted && !s->id_key) {
        problem(v, "%s: holds a string id, but the store has no view key", what);
        return;
    }
    cairn_string_id_key(s->encrypted ? s->id_key : NULL, rec->name, rec->name_len, key);
    if (memcmp(key, rec->stream_id, 16) != 0)
        problem(v, "%s: its string id '%.*s' is not the one its stream key was made from", what, (int)rec->name_len,
                rec->name);
}

static void on_event(void *ctx, const uint8_t *id, uint64_t version, uint64_t nid, int found,
                     const cairn_record *in, const uint8_t *bytes, size_t len)
{
    verifier *v = ctx;
    cairn_store *s = v->s;
    if (!id) { v->in_stream = 0; return; } /* a malformed index entry (the engine said so) */
    if (!v->in_stream || memcmp(v->stream, id, 16) != 0) {
        memcpy(v->stream, id, 16);
        memset(v->prev, 0, sizeof v->prev);
        v->in_stream = 1;
        v->r->streams++;
    } else if (version != v->last_version + 1) {
        event_problem(v, id, version, nid, "the stream skips versions after the one before");
    }
    v->last_version = version;
    if (found == CAIRN_VERIFY_MISSING) {
        event_problem(v, id, version, nid, "the stream index names a notification that is missing");
        return;
    }
    if (found == CAIRN_VERIFY_MALFORMED) {
        event_problem(v, id, version, nid, "the record is malformed (bad format byte, flags or lengths)");
        return;
    }
    v->r->records++;
    if (found == CAIRN_VERIFY_MISPLACED) {
        event_problem(v, id, version, nid, "the record there belongs to another stream or version (moved or swapped)");
        return;
    }
    cairn_record rec = *in;
    if (!(rec.flags & CAIRN_RECORD_ENCRYPTED) != !s->encrypted)
        event_problem(v, id, version, nid, s->encrypted ? "the record is not encrypted in an encrypted store"
                                                        : "the record is flagged encrypted in a plain store");
    uint8_t want[CAIRN_HASH_BYTES];
    cairn_record_hash(v->prev, bytes, len, want);
    if (memcmp(want, rec.hash, CAIRN_HASH_BYTES) != 0)
        event_problem(v, id, version, nid, "the hash chain is broken (this record or the one before it was altered)");
    memcpy(v->prev, rec.hash, CAIRN_HASH_BYTES);
    if ((s->encrypted && s->master) || (rec.flags & CAIRN_RECORD_STRING_ID)) {
        char what[120], desc[80];
        cairn_record_describe(id, version, desc, sizeof desc);
        snprintf(what, sizeof what, "%s (notification %llu)", desc, (unsigned long long)nid);
        check_seal(v, &rec, what);
    }
}

/* A data key entry (encrypted stores): well formed, and with the key, it opens. */
static void on_key(void *ctx, const uint8_t id[16], cairn_slice stored)
{
    verifier *v = ctx;
    cairn_store *s = v->s;
    if (!s->encrypted || (stored.len != 1 && stored.len != CAIRN_WRAPPED_KEY_BYTES)) {
        char desc[80];
        cairn_record_describe(id, 0, desc, sizeof desc);
        problem(v, "the data key entry of %.46s is malformed or in a plain store", desc);
        return;
    }
    if (stored.len == 1 || !s->master) return;
    const uint8_t *key;
    v->r->keys_checked++;
    if (cairn_store_unwrap_key(s, id, stored, &key) != CAIRN_OK) problem(v, "%s", s->eng->errmsg);
}

static void on_snapshot(void *ctx, const cairn_record *in, const uint8_t *bytes, size_t len,
                        const uint8_t *event_hash)
{
    verifier *v = ctx;
    v->r->snapshots++;
    if (!in) return; /* malformed: the engine reported it */
    cairn_record snap = *in;
    char what[120], desc[80];
    cairn_record_describe(snap.stream_id, snap.version, desc, sizeof desc);
    snprintf(what, sizeof what, "the snapshot of %s", desc);
    if (!event_hash) { problem(v, "%s: there is no valid event at its version", what); return; }
    uint8_t want[CAIRN_HASH_BYTES];
    cairn_record_hash(event_hash, bytes, len, want);
    if (memcmp(want, snap.hash, CAIRN_HASH_BYTES) != 0) problem(v, "%s: it fails its hash check", what);
    else check_seal(v, &snap, what);
}

static int same(cairn_slice a, const char *b, size_t blen) { return a.len == blen && memcmp(a.ptr, b, blen) == 0; }

#define DCB_TAGS_MAX 1024

/* The tags a DCB event's payload carries (its `tags` field): *n of them into
 * tags, pointing into u (destroy it after). 0: read; non-zero: the payload
 * cannot be read here (encrypted without the key, forgotten, malformed; the
 * walk of the events reports what is wrong with it). */
static int event_tags(verifier *v, const cairn_record *in, msgpack_unpacked *u, cairn_slice *tags, size_t *n)
{
    cairn_store *s = v->s;
    *n = 0;
    if (s->encrypted && !s->master) return 1;
    cairn_record rec = *in;
    if (cairn_store_open_payload(s, &rec) != CAIRN_OK) {
        s->eng->errmsg[0] = '\0';
        return 1;
    }
    if (msgpack_unpack_next(u, (const char *)rec.payload, rec.payload_len, NULL) != MSGPACK_UNPACK_SUCCESS ||
        u->data.type != MSGPACK_OBJECT_MAP)
        return 1;
    const msgpack_object_map *m = &u->data.via.map;
    for (uint32_t i = 0; i < m->size; i++) {
        const msgpack_object *k = &m->ptr[i].key, *val = &m->ptr[i].val;
        if (k->type != MSGPACK_OBJECT_STR || k->via.str.size != 4 || memcmp(k->via.str.ptr, "tags", 4) != 0) continue;
        if (val->type != MSGPACK_OBJECT_ARRAY) return 1;
        for (uint32_t t = 0; t < val->via.array.size && *n < DCB_TAGS_MAX; t++) {
            const msgpack_object *tag = &val->via.array.ptr[t];
            if (tag->type != MSGPACK_OBJECT_STR) return 1;
            tags[(*n)++] = (cairn_slice){ tag->via.str.ptr, tag->via.str.size };
        }
    }
    return 0;
}

static void on_dcb_entry(void *ctx, char kind, cairn_slice name, uint64_t id, cairn_slice type,
                         const cairn_record *rec, int (*has)(void *hctx, char kind, cairn_slice name, uint64_t id),
                         void *hctx)
{
    verifier *v = ctx;
    unsigned long long nid = (unsigned long long)id;
    const char *what = kind == 'a' ? "every DCB event" : kind == 'y' ? "type" : "tag";
    if (!rec) {
        problem(v, "the DCB index entry (%s '%.*s') names notification %llu, which is not recorded", what,
                (int)name.len, name.ptr, nid);
        return;
    }
    cairn_slice topic = { rec->topic, rec->topic_len };
    if ((kind == 'y' && !same(name, topic.ptr, topic.len)) || (type.ptr && !same(type, topic.ptr, topic.len))) {
        problem(v, "the DCB index entry (%s '%.*s') says notification %llu is of type '%.*s'; it is '%.*s'", what,
                (int)name.len, name.ptr, nid, (int)(kind == 'y' ? name.len : type.len),
                kind == 'y' ? name.ptr : type.ptr, (int)topic.len, topic.ptr);
        return;
    }
    static const cairn_slice none = { "", 0 };
    if (kind != 'a' && has(hctx, 'a', none, id) == 0)
        problem(v, "the DCB index entry (%s '%.*s') names notification %llu, which is not indexed as a DCB event",
                what, (int)name.len, name.ptr, nid);
    if (kind == 'a' && has(hctx, 'y', topic, id) == 0)
        problem(v, "DCB event %llu is not indexed by its type '%.*s'", nid, (int)topic.len, topic.ptr);
    if (kind == 'y') return;
    cairn_slice tags[DCB_TAGS_MAX];
    size_t n;
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    if (event_tags(v, rec, &u, tags, &n) == 0) {
        if (kind == 'a') {
            for (size_t t = 0; t < n; t++)
                if (has(hctx, 'g', tags[t], id) == 0)
                    problem(v, "DCB event %llu is not indexed by its tag '%.*s'", nid, (int)tags[t].len, tags[t].ptr);
        } else {
            size_t t = 0;
            while (t < n && !same(name, tags[t].ptr, tags[t].len)) t++;
            if (t == n)
                problem(v, "the DCB index entry (tag '%.*s') names notification %llu, which does not carry that tag",
                        (int)name.len, name.ptr, nid);
        }
    }
    msgpack_unpacked_destroy(&u);
}

static int on_progress(void *ctx, uint64_t done, uint64_t total)
{
    verifier *v = ctx;
    return v->progress ? v->progress(v->ctx, done, total) : 0;
}

int cairn_store_verify(cairn_store *s, cairn_verify_report *report,
                       int (*progress)(void *ctx, uint64_t done, uint64_t total), void *ctx)
{
    return cairn_store_verify_each(s, report, progress, ctx, NULL, NULL);
}

int cairn_store_verify_each(cairn_store *s, cairn_verify_report *report,
                            int (*progress)(void *ctx, uint64_t done, uint64_t total), void *ctx,
                            void (*each)(void *each_ctx, const char *problem), void *each_ctx)
{
    memset(report, 0, sizeof *report);
    cairn_store_read_end(s);
    s->eng->errmsg[0] = '\0';
    verifier v = { .s = s, .r = report, .progress = progress, .ctx = ctx, .each = each, .each_ctx = each_ctx };
    cairn_verify_walk w = { &v, on_problem, on_event, on_key, on_snapshot, on_progress, on_dcb_entry };
    cairn_store_keys_reset(s); /* unwrap every data key again, none from the cache */
    /* string ids are checked against their keys (check_seal): the key they are
     * hashed with comes from the view key, read before the walk's read starts */
    int rc = s->encrypted && s->master ? cairn_store_view_key(s, 0) : CAIRN_OK;
    if (rc != CAIRN_OK && rc != CAIRN_END) return rc;
    rc = s->eng->ops->verify(s->eng, &w);
    cairn_store_keys_reset(s);
    return rc;
}
