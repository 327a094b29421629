/*
 * record.h -- the stored form of one event (or snapshot). No Lua, no engine.
 * Every engine stores these bytes as they are, so records move between
 * engines (export/import, copies) and `verify` checks them the same way.
 *
 * Format 3 (written since event ids and metadata were added):
 *
 *   offset  size  field
 *        0     1  record format (3)
 *        1     1  flags: CAIRN_RECORD_COMPRESSED, CAIRN_RECORD_ENCRYPTED, CAIRN_RECORD_METADATA,
 *                 CAIRN_RECORD_STRING_ID
 *        2    16  stream (aggregate) id; of a string id, its key (string_id.h)
 *       18     8  stream version, big-endian
 *       26     8  timestamp, microseconds since the epoch, big-endian two's complement
 *       34     2  class version of the payload (for upcasting), big-endian, >= 1
 *       36    16  event id (all zero: none)
 *       52     2  topic length n, big-endian, >= 1
 *       54     n  topic bytes
 *     54+n    32  hash: BLAKE2b-256(previous hash || bytes 0..54+n || stored body)
 *     86+n     *  the stored body: the body, zstd-compressed if flagged, then
 *                 sealed (nonce || ciphertext || tag) if flagged
 *
 * The body is the event's msgpack map; with CAIRN_RECORD_METADATA it is
 * preceded by the metadata: its length (u32 big-endian) and a msgpack map;
 * with CAIRN_RECORD_STRING_ID, before that, the aggregate's string id: its
 * length (one byte, 1..255) and its UTF-8 bytes. Metadata and a string id may
 * carry user data (a natural key such as an e-mail address), so they are
 * compressed and sealed with the payload; the event id is in the header, so
 * it is authenticated.
 *
 * Format 2 (still read) has no event id: the topic length is at 36, the topic
 * at 38, and the body is the msgpack map alone. Readers give its event_id as
 * all zero and its metadata as empty.
 *
 * The header (everything before the hash) is the associated data of the
 * seal, so a record cannot be moved to another stream, version, topic or
 * event id unnoticed. For events the previous hash is the hash of the
 * stream's previous event (zeros for its first); for snapshots it is the hash
 * of the event they were taken at.
 */
#ifndef CAIRN_RECORD_H
#define CAIRN_RECORD_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define CAIRN_RECORD_FORMAT 3          /* the format written */
#define CAIRN_RECORD_FORMAT_V2 2       /* the format before event ids, still read */
#define CAIRN_RECORD_FIXED 54          /* bytes before the topic (format 3) */
#define CAIRN_RECORD_FIXED_V2 38       /* bytes before the topic (format 2) */
#define CAIRN_RECORD_HASH 32
#define CAIRN_TOPIC_MAX 65535
#define CAIRN_CLASS_VERSION_MAX 65535
#define CAIRN_RECORD_COMPRESSED 1
#define CAIRN_RECORD_ENCRYPTED 2
#define CAIRN_RECORD_METADATA 4        /* the body starts with metadata (format 3) */
#define CAIRN_RECORD_STRING_ID 8       /* the body starts with the string id (format 3) */
#define CAIRN_METADATA_MAX 0x7fffffff

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
    const char *name;           /* the aggregate's string id (its key is stream_id); NULL: a UUID id */
    size_t name_len;
    unsigned format;            /* set by parse; on input 0 means CAIRN_RECORD_FORMAT */
    size_t header_len;          /* set by parse: bytes before the hash */
} cairn_record;

/** Bytes of a format-3 record's header (everything before the hash). */
static inline size_t cairn_record_header_size(size_t topic_len) { return CAIRN_RECORD_FIXED + topic_len; }

/** The header of a parsed record (the seal's associated data). */
static inline const uint8_t *cairn_record_header(const cairn_record *rec) { return rec->hash - rec->header_len; }

/** Write the header of rec (with these flags) into out, in rec's format
 * (format 0: the current one; header_size of its topic bytes). */
void cairn_record_write_header(const cairn_record *rec, unsigned flags, uint8_t *out);

/** Bytes of rec's body before compression and sealing (string id, metadata, payload). */
size_t cairn_record_body_size(const cairn_record *rec);

/** Write rec's body into out (cairn_record_body_size bytes). */
void cairn_record_write_body(const cairn_record *rec, uint8_t *out);

/**
 * Split an opened body (decompressed, unsealed) of a record with these
 * flags into rec's string id, metadata and payload; all point into body.
 * @return CAIRN_OK, or CAIRN_CORRUPT if the string id or metadata do not fit.
 */
int cairn_record_split_body(cairn_record *rec, const uint8_t *body, size_t len)
    __attribute__((warn_unused_result));

/**
 * Parse a stored record of format 2 or 3. On success out points into buf
 * (payload: the stored body, possibly compressed and sealed; metadata: none
 * until cairn_record_split_body) and stays valid as long as buf does.
 * @return CAIRN_OK, or CAIRN_CORRUPT if buf is not a well-formed record.
 */
int cairn_record_parse(const uint8_t *buf, size_t len, cairn_record *out);

/** Describe a record for messages: "aggregate <id> version <v>". */
void cairn_record_describe(const uint8_t id[16], uint64_t version, char *out, size_t len);

struct cairn_chain_input; /* crypto.h */

/** What the chain hash of a stored record of len bytes takes, given the
 *  previous hash (for cairn_chain_hash_many). */
void cairn_record_hash_input(const uint8_t prev[CAIRN_RECORD_HASH], const uint8_t *buf, size_t len,
                             struct cairn_chain_input *in);

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
