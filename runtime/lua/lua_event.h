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

/* Interned keys and shared metamethods, pushed once per batch so building each
 * event costs no string interning: slot numbers below are offsets from base. */
enum {
    EV_TOPIC, EV_ORIGINATOR_ID, EV_ORIGINATOR_VERSION, EV_TIMESTAMP,
    EV_INDEX, EV_NEWINDEX, EV_READONLY_FN, EV_INSPECT, EV_INSPECT_FN, EV_ID, EV_EVENT,
    EV_VERSIONS, EV_UPCASTER,   /* set by core.set_upcaster: topic -> class version, and the upcast function */
    EV_SLOTS
};

typedef struct cairn_event_keys {
    int base; /* stack index of the first slot */
} cairn_event_keys;

/** Push the EV_SLOTS values of a batch; pop them with lua_pop(L, EV_SLOTS) when done. */
void cairn_event_keys_push(lua_State *L, cairn_event_keys *k);

/** The stack index of a slot. */
#define EV_KEY(k, slot) ((k)->base + (slot))

/* push_event left a Lua error value on the stack (an upcaster failed). */
#define CAIRN_LUA_ERRORED (-41990)

/** plain: the data table with room for the metamethods, for callers that seal
 *  events themselves (followers, lua/cairn/event_batch.lua). */
#define CAIRN_EVENT_UNSEALED 2

/**
 * Push the event for a stored record: read-only (sealed), or, when plain, just
 * the data table (for replay, where no event object reaches user code).
 * id_idx, when not 0, is a stack index holding the originator id string. A
 * record stored at an older class version than its event class has now is
 * upcast first; a forgotten record (payload NULL) has no fields.
 * @return CAIRN_OK; CAIRN_CORRUPT (nothing pushed) if the payload is
 *         malformed; CAIRN_LUA_ERRORED with only the error value pushed.
 */
int cairn_lua_push_event(lua_State *L, const cairn_event_keys *k, const cairn_record *rec, int id_idx,
                         int plain);

/** Register core.make_event, core.event_fields, core.is_event into the table at -1. */
void cairn_lua_event_init(lua_State *L);

#endif
