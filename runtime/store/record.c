/* record.c -- writing and parsing the stored record format (see record.h). */
#include <stdio.h>
#include <string.h>

#include "cairn.h"
#include "crypto.h"
#include "record.h"
#include "uuid.h"

void cairn_record_describe(const uint8_t id[16], uint64_t version, char *out, size_t len)
{
    char hex[CAIRN_UUID_STRLEN + 1] = { 0 };
    cairn_uuid_format(id, hex);
    snprintf(out, len, "aggregate %s version %llu", hex, (unsigned long long)version);
}

/* Where the topic length sits in a header of each format. */
static size_t fixed_size(unsigned format)
{
    return format == CAIRN_RECORD_FORMAT_V2 ? CAIRN_RECORD_FIXED_V2 : CAIRN_RECORD_FIXED;
}

void cairn_record_write_header(const cairn_record *rec, unsigned flags, uint8_t *out)
{
    unsigned cv = rec->class_version ? rec->class_version : 1;
    unsigned format = rec->format ? rec->format : CAIRN_RECORD_FORMAT;
    size_t fixed = fixed_size(format);
    out[0] = (uint8_t)format;
    out[1] = (uint8_t)flags;
    memcpy(out + 2, rec->stream_id, 16);
    cairn_put_be64(out + 18, rec->version);
    cairn_put_be64(out + 26, (uint64_t)rec->timestamp_us);
    out[34] = (uint8_t)(cv >> 8);
    out[35] = (uint8_t)cv;
    if (format != CAIRN_RECORD_FORMAT_V2) memcpy(out + 36, rec->event_id, 16);
    out[fixed - 2] = (uint8_t)(rec->topic_len >> 8);
    out[fixed - 1] = (uint8_t)rec->topic_len;
    memcpy(out + fixed, rec->topic, rec->topic_len);
}

int cairn_record_parse(const uint8_t *buf, size_t len, cairn_record *out)
{
    if (len < 1 || (buf[0] != CAIRN_RECORD_FORMAT && buf[0] != CAIRN_RECORD_FORMAT_V2)) return CAIRN_CORRUPT;
    unsigned format = buf[0];
    size_t fixed = fixed_size(format);
    unsigned known = CAIRN_RECORD_COMPRESSED | CAIRN_RECORD_ENCRYPTED |
                     (format == CAIRN_RECORD_FORMAT ? CAIRN_RECORD_METADATA | CAIRN_RECORD_STRING_ID : 0);
    if (len < fixed + CAIRN_RECORD_HASH || (buf[1] & ~known) != 0) return CAIRN_CORRUPT;
    size_t topic_len = (size_t)buf[fixed - 2] << 8 | buf[fixed - 1];
    unsigned cv = (unsigned)buf[34] << 8 | buf[35];
    size_t header = fixed + topic_len;
    if (topic_len == 0 || cv == 0 || len - CAIRN_RECORD_HASH < header) return CAIRN_CORRUPT;
    size_t payload_len = len - header - CAIRN_RECORD_HASH;
    if ((buf[1] & CAIRN_RECORD_ENCRYPTED) && payload_len < CAIRN_SEAL_OVERHEAD) return CAIRN_CORRUPT;
    memset(out, 0, sizeof *out);
    out->format = format;
    memcpy(out->stream_id, buf + 2, 16);
    out->version = cairn_get_be64(buf + 18);
    out->timestamp_us = (int64_t)cairn_get_be64(buf + 26);
    out->class_version = cv;
    if (format != CAIRN_RECORD_FORMAT_V2) memcpy(out->event_id, buf + 36, 16);
    out->flags = buf[1];
    out->topic = (const char *)buf + fixed;
    out->topic_len = topic_len;
    out->header_len = header;
    out->hash = buf + header;
    out->payload = buf + header + CAIRN_RECORD_HASH;
    out->payload_len = payload_len;
    return CAIRN_OK;
}

size_t cairn_record_body_size(const cairn_record *rec)
{
    return (rec->name_len ? 1 + rec->name_len : 0) + (rec->metadata_len ? 4 + rec->metadata_len : 0) +
           rec->payload_len;
}

void cairn_record_write_body(const cairn_record *rec, uint8_t *out)
{
    if (rec->name_len) {
        out[0] = (uint8_t)rec->name_len;
        memcpy(out + 1, rec->name, rec->name_len);
        out += 1 + rec->name_len;
    }
    if (rec->metadata_len) {
        out[0] = (uint8_t)(rec->metadata_len >> 24);
        out[1] = (uint8_t)(rec->metadata_len >> 16);
        out[2] = (uint8_t)(rec->metadata_len >> 8);
        out[3] = (uint8_t)rec->metadata_len;
        memcpy(out + 4, rec->metadata, rec->metadata_len);
        out += 4 + rec->metadata_len;
    }
    if (rec->payload_len) memcpy(out, rec->payload, rec->payload_len);
}

int cairn_record_split_body(cairn_record *rec, const uint8_t *body, size_t len)
{
    rec->metadata = NULL;
    rec->metadata_len = 0;
    rec->name = NULL;
    rec->name_len = 0;
    if (rec->flags & CAIRN_RECORD_STRING_ID) {
        if (len < 1 || body[0] == 0 || body[0] > len - 1) return CAIRN_CORRUPT;
        rec->name = (const char *)body + 1;
        rec->name_len = body[0];
        len -= 1 + rec->name_len;
        body += 1 + rec->name_len;
    }
    if (rec->flags & CAIRN_RECORD_METADATA) {
        if (len < 4) return CAIRN_CORRUPT;
        size_t m = (size_t)body[0] << 24 | (size_t)body[1] << 16 | (size_t)body[2] << 8 | body[3];
        if (m == 0 || m > len - 4) return CAIRN_CORRUPT;
        rec->metadata = body + 4;
        rec->metadata_len = m;
        body += 4 + m;
        len -= 4 + m;
    }
    rec->payload = body;
    rec->payload_len = len;
    return CAIRN_OK;
}

void cairn_record_hash_input(const uint8_t prev[CAIRN_RECORD_HASH], const uint8_t *buf, size_t len,
                             struct cairn_chain_input *in)
{
    size_t fixed = fixed_size(buf[0]);
    size_t header = fixed + ((size_t)buf[fixed - 2] << 8 | buf[fixed - 1]);
    in->prev = prev;
    in->a = buf;
    in->a_len = header;
    in->b = buf + header + CAIRN_RECORD_HASH;
    in->b_len = len - header - CAIRN_RECORD_HASH;
}

void cairn_record_hash(const uint8_t prev[CAIRN_RECORD_HASH], const uint8_t *buf, size_t len,
                       uint8_t out[CAIRN_RECORD_HASH])
{
    cairn_chain_input in;
    cairn_record_hash_input(prev, buf, len, &in);
    cairn_chain_hash(in.prev, in.a, in.a_len, in.b, in.b_len, out);
}
