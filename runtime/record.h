/*
 * record.h -- the stored form of one event. No Lua, no LMDB.
 *
 * Every recorder stores an event as one record, byte for byte the same in
 * every engine, so tools and fuzzers have one parser to trust:
 *
 *   offset  size  field
 *        0     1  format version (CAIRN_RECORD_FORMAT)
 *        1     1  flags (reserved for compression/encryption; 0 today)
 *        2    16  stream (aggregate) id
 *       18     8  stream version, big-endian
 *       26     8  timestamp, microseconds since the epoch, big-endian two's complement
 *       34     2  topic length, big-endian
 *       36     n  topic bytes
 *     36+n     *  payload: the event's fields as one msgpack map
 */
#ifndef CAIRN_RECORD_H
#define CAIRN_RECORD_H

#include <stddef.h>
#include <stdint.h>

#define CAIRN_RECORD_FORMAT 1
#define CAIRN_RECORD_HEADER 36
#define CAIRN_TOPIC_MAX 65535

/** One event as it is written or read. Pointers borrow the caller's memory. */
typedef struct cairn_record {
    uint64_t notification_id;   /* set by readers of the log; 0 on input */
    uint8_t stream_id[16];
    uint64_t version;
    int64_t timestamp_us;
    const char *topic;
    size_t topic_len;
    const uint8_t *payload;
    size_t payload_len;
} cairn_record;

/** Bytes needed to store rec. */
size_t cairn_record_size(const cairn_record *rec);

/** Write rec into out, which has cairn_record_size(rec) bytes. */
void cairn_record_write(const cairn_record *rec, uint8_t *out);

/**
 * Parse a stored record. On success the out record points into buf and stays
 * valid as long as buf does.
 * @return CAIRN_OK, or CAIRN_CORRUPT if buf is not a well-formed record.
 */
int cairn_record_parse(const uint8_t *buf, size_t len, cairn_record *out);

/** Big-endian helpers shared by the recorders' keys. */
void cairn_put_be64(uint8_t *p, uint64_t v);
uint64_t cairn_get_be64(const uint8_t *p);

#endif
