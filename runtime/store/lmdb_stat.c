/* lmdb_stat.c -- what an LMDB store holds (cairn stat), and its wake word. */
#include <string.h>

#include "cairn.h"
#include "lmdb_engine.h"

/* Count streams by jumping from each stream to the next (data keys, the
 * 16-byte keys, are not streams). */
static int count_streams(cairn_lmdb *h, uint64_t *out)
{
    MDB_cursor *cur;
    int rc = cairn_lmdb_local_cursor(h, h->sh->streams, &cur);
    if (rc) return rc;
    MDB_val k, v;
    rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
    while (rc == 0) {
        if (k.mv_size == 16) { rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT); continue; }
        ++*out;
        uint8_t key[CAIRN_STREAM_KEY];
        if (k.mv_size != CAIRN_STREAM_KEY) { rc = MDB_CORRUPTED; break; }
        cairn_stream_key(key, k.mv_data, UINT64_MAX);
        k = (MDB_val){ CAIRN_STREAM_KEY, key };
        rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
        if (rc == 0 && memcmp(k.mv_data, key, CAIRN_STREAM_KEY) == 0) rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    }
    cairn_lmdb_local_close(h, cur);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

int cairn_lmdb_stat(cairn_engine *e, cairn_store_stats *out)
{
    cairn_lmdb *h = LMDB(e);
    out->engine = e->name;
    out->format = CAIRN_STORE_FORMAT;
    int rc = cairn_lmdb_begin_read(h);
    if (rc) return rc;
    MDB_stat st;
    MDB_envinfo info;
    rc = mdb_stat(h->rtxn, h->sh->log, &st);
    if (rc == 0) {
        out->events = st.ms_entries;
        rc = mdb_env_info(h->sh->env, &info);
    }
    if (rc == 0) {
        out->map_size = info.me_mapsize;
        out->used_bytes = (uint64_t)(info.me_last_pgno + 1) * st.ms_psize;
        rc = count_streams(h, &out->streams);
    }
    if (rc == 0) {
        MDB_cursor *lc;
        MDB_val k, v;
        rc = cairn_lmdb_local_cursor(h, h->sh->log, &lc);
        if (rc == 0) {
            rc = mdb_cursor_get(lc, &k, &v, MDB_LAST);
            if (rc == 0 && k.mv_size == 8) out->max_notification_id = cairn_get_be64(k.mv_data);
            if (rc == MDB_NOTFOUND) rc = 0;
            cairn_lmdb_local_close(h, lc);
        }
    }
    if (rc == 0) rc = cairn_lmdb_read_still_valid(h, "reading statistics");
    cairn_lmdb_read_end(e);
    return cairn_lmdb_failure(h, rc, "reading statistics");
}

uint32_t *cairn_lmdb_wake_word(cairn_engine *e)
{
    return cairn_wake_words(LMDB(e)->sh->wake);
}
