/*
 * lmdb_raw.c -- the raw LMDB commit rate, as a baseline for cairn's store.
 *
 *   lmdb_raw DIR COMMITS full|none
 *
 * Opens an LMDB environment in DIR (which must exist and should be empty) and
 * does COMMITS write transactions, each putting one 200-byte value under a new
 * 8-byte big-endian key. "full" uses LMDB's default flags (each commit is
 * synced to disk); "none" opens the environment with MDB_NOSYNC.
 * Prints one line: "raw commits=N wall_us=T rate=R" (R in commits/s).
 */
#include <lmdb.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define VALUE_SIZE 200

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static int fail(const char *doing, int rc)
{
    fprintf(stderr, "lmdb_raw: %s: %s\n", doing, mdb_strerror(rc));
    return 1;
}

int main(int argc, char **argv)
{
    if (argc != 4 || (strcmp(argv[3], "full") != 0 && strcmp(argv[3], "none") != 0)) {
        fprintf(stderr, "usage: lmdb_raw DIR COMMITS full|none\n");
        return 2;
    }
    const char *dir = argv[1];
    long commits = strtol(argv[2], NULL, 10);
    if (commits <= 0) {
        fprintf(stderr, "lmdb_raw: COMMITS must be a positive number\n");
        return 2;
    }
    unsigned int flags = strcmp(argv[3], "none") == 0 ? MDB_NOSYNC : 0;

    MDB_env *env;
    MDB_dbi dbi;
    MDB_txn *txn;
    int rc = mdb_env_create(&env);
    if (rc) return fail("mdb_env_create", rc);
    rc = mdb_env_set_mapsize(env, (size_t)256 << 20);
    if (rc) return fail("mdb_env_set_mapsize", rc);
    rc = mdb_env_open(env, dir, flags, 0644);
    if (rc) return fail("mdb_env_open", rc);
    rc = mdb_txn_begin(env, NULL, 0, &txn);
    if (rc) return fail("mdb_txn_begin", rc);
    rc = mdb_dbi_open(txn, NULL, 0, &dbi);
    if (rc) return fail("mdb_dbi_open", rc);
    rc = mdb_txn_commit(txn);
    if (rc) return fail("mdb_txn_commit", rc);

    unsigned char value[VALUE_SIZE];
    for (size_t i = 0; i < sizeof value; i++) value[i] = (unsigned char)(i * 31 + 7);
    unsigned char keybuf[8];

    double start = now_us();
    for (long n = 1; n <= commits; n++) {
        uint64_t k = (uint64_t)n;
        for (int b = 7; b >= 0; b--) { keybuf[b] = (unsigned char)(k & 0xff); k >>= 8; }
        MDB_val key = { sizeof keybuf, keybuf }, val = { sizeof value, value };
        rc = mdb_txn_begin(env, NULL, 0, &txn);
        if (rc) return fail("mdb_txn_begin", rc);
        rc = mdb_put(txn, dbi, &key, &val, 0);
        if (rc) { mdb_txn_abort(txn); return fail("mdb_put", rc); }
        rc = mdb_txn_commit(txn);
        if (rc) return fail("mdb_txn_commit", rc);
    }
    double wall = now_us() - start;
    mdb_env_close(env);

    printf("raw commits=%ld wall_us=%.0f rate=%.1f\n", commits, wall, (double)commits / (wall / 1e6));
    return 0;
}
