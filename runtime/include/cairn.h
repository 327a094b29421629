/*
 * cairn.h -- the public C interface of cairn.
 *
 * Return codes follow LMDB's convention: 0 (CAIRN_OK) is success; errno values
 * (ENOMEM, ENOSPC, EACCES, ...) are reused for operating-system failures;
 * LMDB's own codes (MDB_*, -30800 .. -30780) pass through unchanged; cairn's
 * own codes live in the range below, well away from both.
 */
#ifndef CAIRN_H
#define CAIRN_H

#ifdef __cplusplus
extern "C" {
#endif

#define CAIRN_VERSION_STRING "0.1.0"

/** Success. */
#define CAIRN_OK 0
/** A save expected a stream version that is no longer (or not yet) current. */
#define CAIRN_CONFLICT (-41001)
/** No such aggregate / record. */
#define CAIRN_NOTFOUND (-41002)
/** A stored record is malformed or fails its checks. */
#define CAIRN_CORRUPT (-41003)
/** A value cannot be stored (wrong type, cycle, too deep, too big). */
#define CAIRN_SCHEMA (-41004)
/** Bad configuration: bad URI, bad option, not a cairn store, newer store format. */
#define CAIRN_CONFIG (-41005)
/** A read reached its end (used by cursors, never reported to users). */
#define CAIRN_END (-41006)
/** A caller passed arguments that break the interface contract. */
#define CAIRN_INVALID (-41007)
/** A wait was interrupted by a signal the process asked to be told about. */
#define CAIRN_INTERRUPTED (-41008)

/**
 * Describe a return code.
 * @param[in] rc a code returned by any cairn function.
 * @return a static string; never NULL.
 */
const char *cairn_strerror(int rc);

#ifdef __cplusplus
}
#endif

#endif /* CAIRN_H */
