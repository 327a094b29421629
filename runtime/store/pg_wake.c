/*
 * pg_wake.c -- waking followers through LISTEN/NOTIFY. Every numbering
 * transaction NOTIFYs the application's channel (cairn_<schema>) with the
 * last id it gave; the notification is delivered when it commits, to every
 * connection listening, on any host. A waiting follower sleeps in poll() on
 * its connection's socket: no CPU while nothing happens.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cairn.h"
#include "pg_internal.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Take the notifications that arrived: the highest id they announce (0: none). */
static uint64_t drain(PGconn *conn)
{
    uint64_t top = 0;
    PGnotify *n;
    while ((n = PQnotifies(conn))) {
        uint64_t id = strtoull(n->extra, NULL, 10);
        if (id > top) top = id;
        PQfreemem(n);
    }
    return top;
}

int cairn_pg_wait(cairn_pg *pg, uint64_t seen, double timeout_s, int *newer)
{
    *newer = 0;
    int rc = pg_connect(pg);
    if (rc) return rc;
    if (!pg->listening) {
        char sql[CAIRN_PG_SCHEMA_MAX + 32];
        snprintf(sql, sizeof sql, "LISTEN cairn_%s", pg->schema);
        PGresult *r;
        if ((rc = pg_exec_sql(pg, sql, NULL, &r))) return rc;
        PQclear(r);
        pg->listening = 1;
    }
    /* listening first, then looking: a commit in between is seen by one or the other */
    drain(pg->conn);
    uint64_t max;
    if ((rc = cairn_pg_max_id(pg, &max))) return rc;
    if (max > seen) {
        *newer = 1;
        return CAIRN_OK;
    }
    double deadline = now_s() + timeout_s;
    for (;;) {
        double left = deadline - now_s();
        if (left <= 0) return CAIRN_OK;
        struct pollfd fd = { .fd = PQsocket(pg->conn), .events = POLLIN };
        int ready = poll(&fd, 1, left > 1e6 ? 1000000000 : (int)(left * 1000.0) + 1);
        if (ready < 0 && errno == EINTR) return CAIRN_OK; /* a signal: let the caller look */
        if (ready < 0) return pg_fail(pg, CAIRN_STORE, "waiting for notifications: %s", strerror(errno));
        if (ready == 0) continue;
        if (!PQconsumeInput(pg->conn) || PQstatus(pg->conn) != CONNECTION_OK)
            return pg_fail(pg, CAIRN_STORE, "connection lost while waiting; the next call connects again");
        if (drain(pg->conn) > seen) {
            *newer = 1;
            return CAIRN_OK;
        }
    }
}
