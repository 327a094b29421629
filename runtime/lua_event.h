/*
 * lua_event.h -- events as Lua sees them: read-only tables with topic,
 * originator_id, originator_version, timestamp and the payload fields.
 *
 * An event is an empty proxy whose metatable is the data table itself
 * (__index points at it), which costs two tables per event instead of three.
 */
#ifndef CAIRN_LUA_EVENT_H
#define CAIRN_LUA_EVENT_H

#include <lua.h>

#include "lua_codec.h"
#include "record.h"

/** Push the event for a stored record; CAIRN_CORRUPT (nothing pushed) if its payload is malformed. */
int cairn_lua_push_event(lua_State *L, cairn_codec *c, const cairn_record *rec, int id_idx);

/** Register core.make_event, core.event_fields, core.is_event into the table at -1. */
void cairn_lua_event_init(lua_State *L);

#endif
