/*
 * mapper_snapmemo.c -- snapshots this handle verified lately, kept as the
 * bytes that passed the hash check and the head they were checked against.
 *
 * A snapshot read checks BLAKE2b(head, record) against the record's stored
 * hash: for a large state that hash is most of the read's work in C. The
 * same bytes under the same head hash the same, so a record that compares
 * equal, byte for byte, to one that passed needs no second hash; any change
 * of the stored bytes or of the event it sits on fails the comparison and is
 * hashed (and caught) as before. A byte comparison costs a small fraction of
 * the hash.
 */
#include <stdlib.h>
#include <string.h>

#include "mapper.h"

#define MEMO_N 8                  /* snapshots kept; the least recently used makes room */
#define MEMO_MIN 4096             /* below this the hash costs less than a copy is worth */
#define MEMO_MAX ((size_t)4 << 20) /* a larger record is hashed every time: no 4 MiB copy held per slot */

struct cairn_snap_memo {
    struct {
        uint8_t id[16];
        uint8_t head[CAIRN_HASH_BYTES];
        uint8_t *bytes;
        size_t len;
        uint64_t used;
    } e[MEMO_N];
    uint64_t clock;
};

int cairn_snap_memo_holds(cairn_store *s, const uint8_t id[16], const uint8_t *rec, size_t len,
                          const uint8_t head[CAIRN_HASH_BYTES])
{
    cairn_snap_memo *m = s->snaps;
    if (!m || len < MEMO_MIN) return 0;
    for (int i = 0; i < MEMO_N; i++)
        if (m->e[i].bytes && memcmp(m->e[i].id, id, 16) == 0) {
            if (m->e[i].len != len || memcmp(m->e[i].head, head, CAIRN_HASH_BYTES) != 0 ||
                memcmp(m->e[i].bytes, rec, len) != 0)
                return 0;
            m->e[i].used = ++m->clock;
            return 1;
        }
    return 0;
}

void cairn_snap_memo_keep(cairn_store *s, const uint8_t id[16], const uint8_t *rec, size_t len,
                          const uint8_t head[CAIRN_HASH_BYTES])
{
    if (len < MEMO_MIN || len > MEMO_MAX) return;
    if (!s->snaps && !(s->snaps = calloc(1, sizeof *s->snaps))) return; /* a memo is an extra: none, no harm */
    cairn_snap_memo *m = s->snaps;
    int slot = 0;
    for (int i = 0; i < MEMO_N; i++) {
        if (m->e[i].bytes && memcmp(m->e[i].id, id, 16) == 0) { slot = i; break; }
        if (!m->e[i].bytes || (m->e[slot].bytes && m->e[i].used < m->e[slot].used)) slot = i;
    }
    uint8_t *b = m->e[slot].len >= len ? m->e[slot].bytes : realloc(m->e[slot].bytes, len);
    if (!b) return; /* the old bytes stay as they were, under their own id */
    memcpy(b, rec, len);
    memcpy(m->e[slot].id, id, 16);
    memcpy(m->e[slot].head, head, CAIRN_HASH_BYTES);
    m->e[slot].bytes = b;
    m->e[slot].len = len;
    m->e[slot].used = ++m->clock;
}

void cairn_snap_memo_free(cairn_store *s)
{
    if (!s->snaps) return;
    for (int i = 0; i < MEMO_N; i++) free(s->snaps->e[i].bytes);
    free(s->snaps);
    s->snaps = NULL;
}
