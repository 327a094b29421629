/*
 * signals.c -- SIGINT and SIGTERM as a request to stop, for long-running
 * followers: the handler only records the signal; waits in wake.c
 * return early when it is set, and the Lua loop stops between batches. No Lua.
 */
#include <signal.h>
#include <string.h>

#include "signals.h"
#include "store.h"

static volatile sig_atomic_t caught;
static struct sigaction saved_int, saved_term;
static int trapped;

static void on_signal(int sig) { caught = sig; }

void cairn_signals_trap(void)
{
    if (trapped) return;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0; /* no SA_RESTART: a sleeping wait returns at once */
    sigaction(SIGINT, &sa, &saved_int);
    sigaction(SIGTERM, &sa, &saved_term);
    cairn_wake_set_interrupt_flag(&caught);
    trapped = 1;
}

void cairn_signals_restore(void)
{
    if (!trapped) return;
    sigaction(SIGINT, &saved_int, NULL);
    sigaction(SIGTERM, &saved_term, NULL);
    trapped = 0;
}

int cairn_signals_caught(void) { return caught; }

void cairn_signals_clear(void) { caught = 0; }
