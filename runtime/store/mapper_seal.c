/*
 * mapper_seal.c -- one record's way into its stored bytes and back:
 * body (metadata, msgpack) -> zstd (optional) -> XChaCha20-Poly1305 under
 * the stream's data key (optional) -> hash chain. See record.h.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cairn.h"
#include "mapper.h"

int cairn_store_reserve(uint8_t **buf, size_t *cap, size_t n)
{
    if (*cap >= n) return 0;
    size_t want = *cap ? *cap : 256;
    while (want < n) want *= 2;
    uint8_t *p = realloc(*buf, want);
    if (!p) return ENOMEM;
    *buf = p;
    *cap = want;
    return 0;
}

size_t cairn_store_body_bound(const cairn_store *s, const cairn_record *rec)
{
    size_t raw = cairn_record_body_size(rec);
    size_t need = rec->metadata_len || rec->name_len ? raw : 0;
    if (s->compress && raw >= CAIRN_COMPRESS_MIN) need += cairn_compress_bound(raw);
    return need;
}

int cairn_store_prepare_body(cairn_store *s, const cairn_record *rec, uint8_t *room, cairn_slice *body,
                             unsigned *flags)
{
    size_t raw_len = cairn_record_body_size(rec);
    const uint8_t *raw = rec->payload;
    *flags = 0;
    if (rec->metadata_len || rec->name_len) {
        cairn_record_write_body(rec, room);
        raw = room;
        room += raw_len;
        if (rec->metadata_len) *flags |= CAIRN_RECORD_METADATA;
        if (rec->name_len) *flags |= CAIRN_RECORD_STRING_ID;
    }
    *body = (cairn_slice){ (const char *)raw, raw_len };
    if (s->compress && raw_len >= CAIRN_COMPRESS_MIN) {
        if (!s->zc && !(s->zc = cairn_compressor_new())) return ENOMEM;
        size_t n = cairn_compress(s->zc, raw, raw_len, room);
        if (n) {
            *body = (cairn_slice){ (const char *)room, n };
            *flags |= CAIRN_RECORD_COMPRESSED;
        }
    }
    return CAIRN_OK;
}

size_t cairn_store_stored_size(const cairn_record *rec, size_t body_len, int sealed)
{
    return cairn_record_header_size(rec->topic_len) + CAIRN_RECORD_HASH + body_len +
           (sealed ? CAIRN_SEAL_OVERHEAD : 0);
}

uint8_t *cairn_store_seal_body(const cairn_record *rec, unsigned flags, cairn_slice body, const uint8_t *dk,
                               uint8_t *out)
{
    size_t header = cairn_record_header_size(rec->topic_len);
    cairn_record fmt = *rec;
    fmt.format = CAIRN_RECORD_FORMAT;
    if (dk) flags |= CAIRN_RECORD_ENCRYPTED;
    cairn_record_write_header(&fmt, flags, out);
    uint8_t *stored = out + header + CAIRN_RECORD_HASH;
    if (dk) cairn_seal(dk, out, header, (const uint8_t *)body.ptr, body.len, stored);
    else if (body.len) memcpy(stored, body.ptr, body.len);
    return out + header;
}

int cairn_store_open_payload(cairn_store *s, cairn_record *rec)
{
    const uint8_t *header = cairn_record_header(rec);
    char what[80];
    int rc;
    if (rec->flags & CAIRN_RECORD_ENCRYPTED) {
        if (!s->encrypted) {
            cairn_record_describe(rec->stream_id, rec->version, what, sizeof what);
            return cairn_store_fail(s, CAIRN_CORRUPT, "%s is flagged encrypted in the unencrypted store %s", what,
                                    s->eng->where);
        }
        const uint8_t *dk;
        rc = cairn_store_open_key(s, rec->stream_id, (cairn_slice){ NULL, 0 }, &dk);
        if (rc == CAIRN_NOTFOUND) rec->forgotten = 1;
        if (rc) return rc;
        size_t n = rec->payload_len - CAIRN_SEAL_OVERHEAD;
        if ((rc = cairn_store_reserve(&s->buf, &s->buf_cap, n ? n : 1))) return rc;
        if (cairn_open(dk, header, rec->header_len, rec->payload, rec->payload_len, s->buf) != 0) {
            cairn_record_describe(rec->stream_id, rec->version, what, sizeof what);
            return cairn_store_fail(s, CAIRN_CORRUPT, "%s in %s fails authentication (altered, moved or swapped)",
                                    what, s->eng->where);
        }
        rec->payload = s->buf;
        rec->payload_len = n;
    } else if (s->encrypted) {
        cairn_record_describe(rec->stream_id, rec->version, what, sizeof what);
        return cairn_store_fail(s, CAIRN_CORRUPT, "%s is not encrypted in the encrypted store %s", what,
                                s->eng->where);
    }
    if (rec->flags & CAIRN_RECORD_COMPRESSED) {
        size_t n;
        if (!s->zc && !(s->zc = cairn_compressor_new())) return ENOMEM;
        rc = cairn_decompressed_size(rec->payload, rec->payload_len, &n);
        if (rc == 0) rc = cairn_store_reserve(&s->buf2, &s->buf2_cap, n ? n : 1);
        if (rc == 0) rc = cairn_decompress(s->zc, rec->payload, rec->payload_len, s->buf2, n);
        if (rc == ENOMEM) return rc;
        if (rc) {
            cairn_record_describe(rec->stream_id, rec->version, what, sizeof what);
            return cairn_store_fail(s, CAIRN_CORRUPT, "%s in %s: the compressed payload is malformed", what,
                                    s->eng->where);
        }
        rec->payload = s->buf2;
        rec->payload_len = n;
    }
    if (cairn_record_split_body(rec, rec->payload, rec->payload_len) != CAIRN_OK) {
        cairn_record_describe(rec->stream_id, rec->version, what, sizeof what);
        return cairn_store_fail(s, CAIRN_CORRUPT, "%s in %s: its string id or metadata is malformed", what,
                                s->eng->where);
    }
    return CAIRN_OK;
}
