/*
 * lua_replay.h -- a stream read for rebuilding an aggregate, as columns: the
 * events' topics, timestamps and field values in arrays, with no table per
 * event (a table and its keys were most of what a replay read cost).
 */
#ifndef CAIRN_LUA_REPLAY_H
#define CAIRN_LUA_REPLAY_H

#include <lua.h>
#include <stddef.h>

#include "lua_gather.h"

/**
 * Push the columns of the gathered records (the read has ended), four
 * values: runs = { topic, count, topic, count, ... }, first (the version of
 * the first), stamps = {...} (seconds), values = {...}: runs gives the
 * events' topics (count events of topic, then the next run), and the values
 * of event i are its fields in the order of `fields[topic]` (a list of
 * names), event after event. (No table around them: the recorder makes one.)
 * fields: stack index of topic -> list of field names; versions: stack index
 * of topic -> current class version (topics not at 1), or 0.
 * @return CAIRN_OK (pushed); CAIRN_END (nothing pushed: a record is not plain
 *   -- forgotten, to be upcast, a topic with no field list, versions not
 *   consecutive, over 8 topics -- so the caller builds event tables);
 *   CAIRN_CORRUPT (nothing pushed): record *bad's payload is malformed.
 *   Raises only for lack of memory.
 */
int cairn_lua_push_columns(lua_State *L, const cairn_gather *g, int fields, int versions, size_t *bad);

#endif
