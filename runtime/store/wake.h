/*
 * wake.h -- waking followers when a store changes, across processes (wake.c).
 * No Lua. An engine keeps a wake word per store; the waits work on the words
 * of any engine (recorder.h's wake_word).
 */
#ifndef CAIRN_WAKE_H
#define CAIRN_WAKE_H

#include <stdint.h>

typedef struct cairn_wake cairn_wake;

/* The wake word of a directory (NULL dir: process-local). Without create, an
 * absent `wake` file is not made. Returns NULL when there can be none. */
cairn_wake *cairn_wake_open(const char *dir, int create);
void cairn_wake_close(cairn_wake *w);

/* The word pair: [0] sequence, [1] sleepers. */
uint32_t *cairn_wake_words(cairn_wake *w);

/* Tell sleepers the store changed: called after every commit. */
void cairn_wake_bump(cairn_wake *w);

/* The newest commit made, recorded outside the data file so that verify can
 * see a store that opens at an older one (one damaged meta page rolls LMDB
 * back to the commit before). Writers record each commit after it: the
 * engine's transaction id and its highest notification id (each an atomic
 * maximum: commits of several processes may record out of order). */
void cairn_wake_record_commit(cairn_wake *w, uint64_t txnid, uint64_t max_id);
/* What was recorded: 1 with both set, 0 when nothing was (no wake file, an
 * older cairn's, a process-local word). */
int cairn_wake_last_commit(cairn_wake *w, uint64_t *txnid, uint64_t *max_id);

#endif
