/*
 * record.h -- the stored form of one event (or snapshot). No Lua, no LMDB.
 *
 *   offset  size  field
 *        0     1  record format (CAIRN_RECORD_FORMAT)
 *        1     1  flags: CAIRN_RECORD_COMPRESSED, CAIRN_RECORD_ENCRYPTED
 *        2    16  stream (aggregate) id
 *       18     8  stream version, big-endian
 *       26     8  timestamp, microseconds since the epoch, big-endian two's complement
 *       34     2  class version of the payload (for upcasting), big-endian, >= 1
 *       36     2  topic length n, big-endian, >= 1
 *       38     n  topic bytes
 *     38+n    32  hash: BLAKE2b-256(previous hash || bytes 0..38+n || payload)
 *     70+n     *  payload: a msgpack map, zstd-compressed if flagged, then
 *                 sealed (nonce || ciphertext || tag) if flagged
 *
 * Bytes 0..38+n, the header, are the associated data of the seal, so a
 * record cannot be moved to another stream, version or topic unnoticed. For
 * events the previous hash is the hash of the stream's previous event (zeros
 * for its first); for snapshots it is the hash of the event they were taken at.
 */
#ifndef CAIRN_RECORD_H
#define CAIRN_RECORD_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define CAIRN_RECORD_FORMAT 2
#define CAIRN_RECORD_FIXED 38          /* bytes before the topic */
#define CAIRN_RECORD_HASH 32
#define CAIRN_TOPIC_MAX 65535
#define CAIRN_CLASS_VERSION_MAX 65535
#define CAIRN_RECORD_COMPRESSED 1
#define CAIRN_RECORD_ENCRYPTED 2

/** One event as it is written or read. Pointers borrow the caller's memory. */
typedef struct cairn_record {
    uint64_t notification_id;   /* set by readers of the log; 0 on input */
    uint8_t stream_id[16];
    uint64_t version;
    int64_t timestamp_us;
    unsigned class_version;     /* 0 on input means 1 */
    unsigned flags;             /* how the payload is stored (set by parse) */
    const uint8_t *hash;        /* set by parse and by reads; ignored on input */
    const char *topic;
    size_t topic_len;
    const uint8_t *payload;     /* on input and from reads: the msgpack map */
    size_t payload_len;
    int forgotten;              /* set by log reads: the payload is gone for good */
    uint8_t event_id[16];       /* the event's id, given when it was triggered (all zero: none) */
    const uint8_t *metadata;    /* the event's metadata as a msgpack map; NULL (or len 0): empty */
    size_t metadata_len;
} cairn_record;

/** Bytes of a record's header (everything before the hash). */
static inline size_t cairn_record_header_size(size_t topic_len) { return CAIRN_RECORD_FIXED + topic_len; }

/** Write the header of rec (with these flags) into out. */
void cairn_record_write_header(const cairn_record *rec, unsigned flags, uint8_t *out);

/**
 * Parse a stored record. On success out points into buf (payload: the stored,
 * possibly compressed and sealed, bytes) and stays valid as long as buf does.
 * @return CAIRN_OK, or CAIRN_CORRUPT if buf is not a well-formed record.
 */
int cairn_record_parse(const uint8_t *buf, size_t len, cairn_record *out);

/** The chain hash of a stored record of len bytes, given the previous hash. */
void cairn_record_hash(const uint8_t prev[CAIRN_RECORD_HASH], const uint8_t *buf, size_t len,
                       uint8_t out[CAIRN_RECORD_HASH]);

/** Big-endian helpers shared by the recorders' keys (inline: every key and
 * record header goes through them). */
static inline void cairn_put_be64(uint8_t *p, uint64_t v)
{
    v = __builtin_bswap64(v);
    memcpy(p, &v, 8);
}

static inline uint64_t cairn_get_be64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return __builtin_bswap64(v);
}

#endif
