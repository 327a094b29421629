/* store_internal.h -- what store.c shares with the engines (store_*.c). */
#ifndef CAIRN_STORE_INTERNAL_H
#define CAIRN_STORE_INTERNAL_H

#include "store.h"

typedef struct cairn_store_ops {
    int (*append)(cairn_store *, const cairn_record *, size_t, uint64_t *);
    int (*max_id)(cairn_store *, uint64_t *);
    int (*read_stream)(cairn_store *, const uint8_t *, const cairn_stream_query *);
    int (*read_log)(cairn_store *, const cairn_log_query *);
    int (*next)(cairn_store *, cairn_record *);
    void (*read_end)(cairn_store *);
    int (*stat)(cairn_store *, cairn_store_stats *);
    void (*close)(cairn_store *);
} cairn_store_ops;

/* The part every engine's store begins with. */
struct cairn_store {
    const cairn_store_ops *ops;
    char *uri;
    char errmsg[512];
};

/* Record an error message on s and return rc. */
int cairn_store_fail(cairn_store *s, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Check a batch's shape before any engine touches it: ids, contiguous versions, topics. */
int cairn_store_check_batch(cairn_store *s, const cairn_record *ev, size_t n);

/* Describe a version conflict the same way in every engine. */
int cairn_store_conflict(cairn_store *s, const uint8_t id[16], uint64_t version,
                         int has_last, uint64_t last);

/* Does a record match a log query's topic filter? */
int cairn_store_topic_matches(const cairn_log_query *q, const cairn_record *rec);

int cairn_store_memory_open(const cairn_store_options *opt, cairn_store **out, char *err, size_t errlen);
int cairn_store_lmdb_open(const char *path, const cairn_store_options *opt, cairn_store **out,
                          char *err, size_t errlen);

#endif
