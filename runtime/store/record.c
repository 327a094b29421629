/* record.c -- writing and parsing the stored record format (see record.h). */
#include <string.h>

#include "cairn.h"
#include "crypto.h"
#include "record.h"

void cairn_record_write_header(const cairn_record *rec, unsigned flags, uint8_t *out)
{
    unsigned cv = rec->class_version ? rec->class_version : 1;
    out[0] = CAIRN_RECORD_FORMAT;
    out[1] = (uint8_t)flags;
    memcpy(out + 2, rec->stream_id, 16);
    cairn_put_be64(out + 18, rec->version);
    cairn_put_be64(out + 26, (uint64_t)rec->timestamp_us);
    out[34] = (uint8_t)(cv >> 8);
    out[35] = (uint8_t)cv;
    out[36] = (uint8_t)(rec->topic_len >> 8);
    out[37] = (uint8_t)rec->topic_len;
    memcpy(out + CAIRN_RECORD_FIXED, rec->topic, rec->topic_len);
}

int cairn_record_parse(const uint8_t *buf, size_t len, cairn_record *out)
{
    if (len < CAIRN_RECORD_FIXED + CAIRN_RECORD_HASH || buf[0] != CAIRN_RECORD_FORMAT ||
        (buf[1] & ~(CAIRN_RECORD_COMPRESSED | CAIRN_RECORD_ENCRYPTED)) != 0)
        return CAIRN_CORRUPT;
    size_t topic_len = (size_t)buf[36] << 8 | buf[37];
    unsigned cv = (unsigned)buf[34] << 8 | buf[35];
    size_t header = cairn_record_header_size(topic_len);
    if (topic_len == 0 || cv == 0 || len - CAIRN_RECORD_HASH < header) return CAIRN_CORRUPT;
    size_t payload_len = len - header - CAIRN_RECORD_HASH;
    if ((buf[1] & CAIRN_RECORD_ENCRYPTED) && payload_len < CAIRN_SEAL_OVERHEAD) return CAIRN_CORRUPT;
    memset(out, 0, sizeof *out);
    memcpy(out->stream_id, buf + 2, 16);
    out->version = cairn_get_be64(buf + 18);
    out->timestamp_us = (int64_t)cairn_get_be64(buf + 26);
    out->class_version = cv;
    out->flags = buf[1];
    out->topic = (const char *)buf + CAIRN_RECORD_FIXED;
    out->topic_len = topic_len;
    out->hash = buf + header;
    out->payload = buf + header + CAIRN_RECORD_HASH;
    out->payload_len = payload_len;
    return CAIRN_OK;
}

void cairn_record_hash(const uint8_t prev[CAIRN_RECORD_HASH], const uint8_t *buf, size_t len,
                       uint8_t out[CAIRN_RECORD_HASH])
{
    size_t header = cairn_record_header_size((size_t)buf[36] << 8 | buf[37]);
    cairn_chain_hash(prev, buf, header, buf + header + CAIRN_RECORD_HASH, len - header - CAIRN_RECORD_HASH, out);
}
