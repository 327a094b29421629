/* lua_dcb.h -- DCB queries and idempotency keys in the store binding. */
#ifndef CAIRN_LUA_DCB_H
#define CAIRN_LUA_DCB_H

#include <lua.h>

#include "store.h"

/** Add store:dcb_read and store:once_get to the store metatable. */
void cairn_lua_dcb_init(lua_State *L);

/** What store:append takes besides records, from the table at idx (nil:
 *  nothing): `once` (an idempotency key), `dcb` (the batch's DCB events:
 *  `{ event = index, type =, tags = }`), `fail_if` (a query) and `after`.
 *  Arrays are pushed on the stack; keep it until the append returns. */
void cairn_lua_batch_extras(lua_State *L, int idx, cairn_batch *b, cairn_dcb_query *fail_if);

#endif
