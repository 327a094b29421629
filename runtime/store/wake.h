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

#endif
