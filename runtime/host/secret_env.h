/* secret_env.h -- key material out of the executable's environment and core dumps (secret_env.c). */
#ifndef CAIRN_SECRET_ENV_H
#define CAIRN_SECRET_ENV_H

#include <lua.h>

/**
 * Move every *CIPHER_KEY variable of the environment into locked memory:
 * wipe its value in place, unset it, and make the process non-dumpable when
 * there was one. Call once, first thing in main, before any thread starts.
 * @return how many were hidden, or -1 (out of memory, libsodium failed)
 */
int cairn_secret_env_hide(void);

/** Make os.getenv, os.execute and io.popen of L see the hidden keys (see secret_env.c). */
void cairn_secret_env_install(lua_State *L);

#endif
