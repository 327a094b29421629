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

#include <stddef.h>
#include <stdint.h>

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
/** Lua code failed: a module that does not load, an error raised by domain
 *  code, an unknown method (embedding API). */
#define CAIRN_LUA (-41009)
/** The storage engine failed and no more precise code is known (embedding API;
 *  LMDB's and the system's codes, e.g. MDB_MAP_FULL or ENOSPC, come back as themselves). */
#define CAIRN_STORE (-41010)
/** Sandboxed domain code broke a rule or exceeded a bound (SandboxError): it
 *  ran too many VM instructions or needed too much memory in one call, or
 *  asked for what a sandbox does not give (a module, a setting, a store). */
#define CAIRN_SANDBOX (-41011)

/**
 * Describe a return code.
 * @param[in] rc a code returned by any cairn function.
 * @return a static string; never NULL.
 */
const char *cairn_strerror(int rc);

/**
 * @defgroup embed The embedding API
 *
 * A C program runs cairn domain code (Lua modules with aggregates and an
 * application, see API.md) through a runtime: one Lua state with cairn
 * loaded, one application, one store handle.
 *
 * @par Threads
 * A runtime must only be used by one thread at a time: its functions are not
 * synchronised. Use one runtime per thread; runtimes are independent of each
 * other and may be used concurrently. A runtime may be handed to another
 * thread if the hand-over synchronises (a mutex, a queue), as LMDB's
 * MDB_NOTLS handles may. Runtimes in one process that open the same LMDB
 * directory share one LMDB environment, reference-counted: closing one
 * leaves the others working.
 *
 * @par Errors
 * Every function returns CAIRN_OK (0) or an error code, never aborts and
 * never raises: Lua errors, version conflicts and store failures all come
 * back as codes, with a message from cairn_errmsg(). The codes:
 *  - CAIRN_CONFLICT   a save met a version conflict (ConcurrencyError): get
 *                     the aggregates again and retry the command;
 *  - CAIRN_NOTFOUND   no such aggregate (AggregateNotFound);
 *  - CAIRN_SCHEMA     a value cannot be stored or returned (SchemaError);
 *  - CAIRN_CONFIG     bad configuration: store URI, env setting, cipher key,
 *                     cairn's Lua files not found (ConfigError);
 *  - CAIRN_CORRUPT    a record fails its integrity checks (IntegrityError);
 *  - CAIRN_STORE      the storage engine failed (StoreError); when the engine's
 *                     own code is known it is returned instead (MDB_MAP_FULL,
 *                     ENOSPC, EIO...);
 *  - ETIMEDOUT        a wait timed out (TimeoutError);
 *  - CAIRN_SANDBOX    sandboxed domain code broke a rule or a bound (SandboxError,
 *                     only with cairn_runtime_options.sandbox);
 *  - CAIRN_LUA        any other Lua error: a module that fails to load or
 *                     to compile, an error raised by domain code, an unknown
 *                     method, a module without the named application class;
 *  - CAIRN_INVALID    the caller broke the contract: NULL where a value is
 *                     required, args that are not a msgpack array, a call
 *                     before cairn_runtime_load;
 *  - ENOMEM           out of memory.
 * After an error the runtime stays usable.
 * @{
 */

/** An opaque runtime: a Lua state with cairn, an application and its store. */
typedef struct cairn_runtime cairn_runtime;

/** Options for cairn_runtime_open(). Every field may be NULL. The strings
 *  are copied (into the runtime's Lua state) during the call. */
typedef struct cairn_runtime_options {
    /** Extra package.path entries, ';'-separated, searched before cairn's own
     *  (where domain modules are: "./?.lua;/srv/game/?.lua"). */
    const char *lua_path;
    /** Extra package.cpath entries, ';'-separated (Lua C modules). */
    const char *lua_cpath;
    /** The store URI, e.g. "lmdb:./data" or "memory:" (API.md §3
     *  CAIRN_STORE); NULL: the env's CAIRN_STORE, else the process
     *  environment's, else "memory:". Given here, it is the env's
     *  CAIRN_STORE (a prefixed GAME_CAIRN_STORE still goes first, as always). */
    const char *store;
    /** NULL-terminated array of "NAME=value" settings, the env table given to
     *  `App.new` (API.md §3): CAIRN_STORE, CAIRN_CIPHER_KEY, CAIRN_COMPRESSOR
     *  (zstd|none), CAIRN_SNAPSHOTTING (y|n), CAIRN_SYNC (full|none),
     *  CAIRN_MAP_SIZE, or the same prefixed with the application's upper-case
     *  name (GAME_CAIRN_SYNC), which takes precedence. Settings not given are
     *  read from the process environment. */
    const char *const *env;
    /** Nonzero: load the domain modules in a sandbox (cairn.sandbox, docs/API.md
     *  §10), for code the program does not trust (mods, tenants). The
     *  modules are then looked for only on lua_path (default "./?.lua"), which
     *  is not added to package.path; they get no os, io, ffi, debug, bytecode
     *  loading nor other modules, and every call into them (loading, methods
     *  called with cairn_call, apply functions, policies, projection handlers)
     *  is bounded. A broken rule or bound is CAIRN_SANDBOX. 0: trusted code. */
    int sandbox;
    /** VM instructions per call into sandboxed code; 0: 10,000,000. */
    unsigned long long sandbox_instructions;
    /** Bytes of memory a call into sandboxed code may add; 0: 64 MiB. */
    size_t sandbox_memory;
    /** NULL-terminated module names that sandboxed modules may require besides
     *  their own and cairn's (loaded as trusted code); NULL: none. */
    const char *const *sandbox_allow;
} cairn_runtime_options;

/** A buffer of bytes that cairn allocated and the caller owns. */
typedef struct cairn_buf {
    void *data; /**< the bytes (malloc'd), or NULL */
    size_t len; /**< how many */
} cairn_buf;

/**
 * Create a runtime: a Lua state with the standard libraries and cairn loaded.
 * cairn's Lua files are found as the `cairn` executable finds them:
 * $CAIRN_HOME, then a source tree or PREFIX/share/cairn near the program or
 * near libcairn.so (see docs/EMBEDDING.md); opt->lua_path may point at them too.
 * The store is not opened yet: cairn_runtime_load() does that.
 * @param[in] opt the options, or NULL for none (copied; need not outlive the call)
 * @param[out] out receives the runtime, or NULL on failure. The caller owns it
 *   and releases it with cairn_runtime_close().
 * @return CAIRN_OK, or:
 *  - CAIRN_INVALID  out is NULL, or an env entry has no '=';
 *  - CAIRN_CONFIG   cairn's Lua files were not found or do not load;
 *  - ENOMEM         out of memory.
 * @note On failure there is no runtime to ask: cairn_errmsg(NULL) gives the
 *   message, in the thread that called cairn_runtime_open().
 */
int cairn_runtime_open(const cairn_runtime_options *opt, cairn_runtime **out)
    __attribute__((warn_unused_result));

/**
 * Load a domain module and make its application, over the runtime's store.
 * The convention: `require(module)` returns either a table of which
 * `application` names a field that is an application class
 * (`return { Player = Player, Game = Game }`, application "Game"), or, when
 * application is NULL, an application class itself (`return Game`). The
 * class is instantiated with `App.new(env)` (the options' env and store),
 * which opens the store. Loading again replaces the runtime's application
 * (the old one's store handle is closed first).
 * @param[in] rt the runtime
 * @param[in] module a Lua module name, found on package.path ("game", "shop.orders")
 * @param[in] application the name of the class in the module's table, or NULL
 * @return CAIRN_OK, or:
 *  - CAIRN_INVALID  rt or module is NULL;
 *  - CAIRN_LUA      the module is not found, does not compile, raises while
 *                   it runs, or has no such application class;
 *  - CAIRN_CONFIG   bad store URI or setting, wrong cipher key;
 *  - CAIRN_CORRUPT, CAIRN_STORE, LMDB and system codes: the store cannot be opened;
 *  - ENOMEM.
 *  On failure the runtime has no application.
 */
int cairn_runtime_load(cairn_runtime *rt, const char *module, const char *application)
    __attribute__((warn_unused_result));

/**
 * Call a method of the application: `app:method(args...)`.
 * @param[in] rt a runtime with an application (cairn_runtime_load())
 * @param[in] method the method's name (any function the application object has)
 * @param[in] args a msgpack array of the arguments (NULL with args_len 0: none).
 *   Values decode as they do from the store: ext 1 (16 bytes) is a UUID
 *   string, ext 2 (int64 big-endian µs) a cairn.time, nil elements stay nil.
 * @param[in] args_len its length in bytes
 * @param[out] result on success, a msgpack array with one element per value
 *   the method returned (an empty array for none), encoded as cairn encodes
 *   event fields (maps with sorted keys, UUID strings as ext 1, times as
 *   ext 2). An event becomes a map of its payload fields plus topic,
 *   originator_id, originator_version and timestamp; an aggregate a map of
 *   its fields (id, version, created_on, modified_on, head, its state);
 *   string aggregate ids are msgpack strings, in arguments and results. The
 *   caller owns result->data and releases it with cairn_buf_free(). On
 *   failure result is {NULL, 0}.
 * @return CAIRN_OK, or:
 *  - CAIRN_INVALID  rt, method or result is NULL; args is not one well-formed
 *                   msgpack array; no application is loaded;
 *  - CAIRN_LUA      no such method, or the method raised a Lua error;
 *  - CAIRN_CONFLICT, CAIRN_NOTFOUND, CAIRN_SCHEMA, CAIRN_CONFIG,
 *    CAIRN_CORRUPT, CAIRN_STORE (or the engine's code), ETIMEDOUT: the
 *    method raised that kind of cairn error (CAIRN_SCHEMA also when a result
 *    cannot be encoded: a function, an object, a cycle);
 *  - ENOMEM.
 *  A failed save records nothing (API.md §3), so a command that failed with
 *  CAIRN_CONFLICT can be retried as it is.
 */
int cairn_call(cairn_runtime *rt, const char *method, const void *args, size_t args_len, cairn_buf *result)
    __attribute__((warn_unused_result));

/**
 * Read the application's notification log (API.md §3 `app.log:select`).
 * @param[in] rt a runtime with an application
 * @param[in] start the first notification id (ids start at 1)
 * @param[in] limit the most notifications to read (0: none)
 * @param[out] out on success, a msgpack array of maps { id,
 *   originator_id, originator_version, topic, event } (event as in
 *   cairn_call()), in id order; owned by the caller (cairn_buf_free()).
 * @return CAIRN_OK, or CAIRN_INVALID (NULL rt or out, start 0, no
 *   application), CAIRN_CORRUPT, CAIRN_STORE (or the engine's code), ENOMEM.
 */
int cairn_read_log(cairn_runtime *rt, uint64_t start, size_t limit, cairn_buf *out)
    __attribute__((warn_unused_result));

/**
 * Load a domain module again from its file (Lua `cairn.reload(module)`): the
 * application classes it defines are updated in place, so the runtime's
 * application calls the new methods from the next cairn_call() on; its
 * aggregate classes replace the old ones, so aggregates read afterwards (also
 * from events recorded before) replay with the new code. The store stays open.
 * A module that fails to load leaves everything as it was.
 * Other runtimes are not affected: each reloads its own Lua state.
 * @param[in] rt the runtime
 * @param[in] module the module's name
 * @return CAIRN_OK, or CAIRN_INVALID (NULL rt or module), CAIRN_LUA (the
 *   module fails to compile or to run; the old one stays), ENOMEM.
 */
int cairn_reload(cairn_runtime *rt, const char *module) __attribute__((warn_unused_result));

/**
 * The message of the last call on rt that failed: what was done (method,
 * module), the error kind and its message, e.g. "call Game:trade:
 * ConcurrencyError: ...". Never contains key material.
 * @param[in] rt the runtime, or NULL for the last failed cairn_runtime_open()
 *   of the calling thread
 * @return a string owned by cairn, valid until the next call on rt (or the
 *   next cairn_runtime_open() in the thread); "" after a call that succeeded.
 */
const char *cairn_errmsg(const cairn_runtime *rt);

/**
 * Release a buffer's memory and set it to {NULL, 0}. NULL and empty buffers
 * are fine; freeing twice is harmless.
 */
void cairn_buf_free(cairn_buf *buf);

/**
 * Close a runtime: close its application's store handle (the shared LMDB
 * environment stays open while other runtimes use it) and free the Lua state.
 * @param[in] rt the runtime, or NULL (nothing is done). It must not be used afterwards.
 */
void cairn_runtime_close(cairn_runtime *rt);

/** @} */

#ifdef __cplusplus
}
#endif

#endif /* CAIRN_H */
