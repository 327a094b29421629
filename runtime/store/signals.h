/* signals.h -- SIGINT/SIGTERM as a stop request for followers (signals.c). */
#ifndef CAIRN_SIGNALS_H
#define CAIRN_SIGNALS_H

/** Catch SIGINT and SIGTERM: they then only set a flag (and end waits). */
void cairn_signals_trap(void);
/** Put back the handlers cairn_signals_trap replaced. */
void cairn_signals_restore(void);
/** The signal caught since the last clear (0: none). */
int cairn_signals_caught(void);
void cairn_signals_clear(void);

#endif
