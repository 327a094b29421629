/* record.c -- writing and parsing the stored record format (see record.h). */
#include <string.h>

#include "cairn.h"
#include "record.h"

void cairn_put_be64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--) { p[i] = (uint8_t)v; v >>= 8; }
}

uint64_t cairn_get_be64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v = v << 8 | p[i];
    return v;
}

size_t cairn_record_size(const cairn_record *rec)
{
    return CAIRN_RECORD_HEADER + rec->topic_len + rec->payload_len;
}

void cairn_record_write(const cairn_record *rec, uint8_t *out)
{
    out[0] = CAIRN_RECORD_FORMAT;
    out[1] = 0;
    memcpy(out + 2, rec->stream_id, 16);
    cairn_put_be64(out + 18, rec->version);
    cairn_put_be64(out + 26, (uint64_t)rec->timestamp_us);
    out[34] = (uint8_t)(rec->topic_len >> 8);
    out[35] = (uint8_t)rec->topic_len;
    memcpy(out + CAIRN_RECORD_HEADER, rec->topic, rec->topic_len);
    if (rec->payload_len)
        memcpy(out + CAIRN_RECORD_HEADER + rec->topic_len, rec->payload, rec->payload_len);
}

int cairn_record_parse(const uint8_t *buf, size_t len, cairn_record *out)
{
    if (len < CAIRN_RECORD_HEADER || buf[0] != CAIRN_RECORD_FORMAT || buf[1] != 0)
        return CAIRN_CORRUPT;
    size_t topic_len = (size_t)buf[34] << 8 | buf[35];
    if (topic_len == 0 || len - CAIRN_RECORD_HEADER < topic_len) return CAIRN_CORRUPT;
    memcpy(out->stream_id, buf + 2, 16);
    out->version = cairn_get_be64(buf + 18);
    out->timestamp_us = (int64_t)cairn_get_be64(buf + 26);
    out->topic = (const char *)buf + CAIRN_RECORD_HEADER;
    out->topic_len = topic_len;
    out->payload = buf + CAIRN_RECORD_HEADER + topic_len;
    out->payload_len = len - CAIRN_RECORD_HEADER - topic_len;
    return CAIRN_OK;
}
