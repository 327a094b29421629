/*
 * lua_event.h -- events as Lua sees them (API.md §2): plain tables, one per
 * event, with topic, originator_id, originator_version, timestamp, event_id,
 * metadata and the payload fields. Nothing is shared with what is recorded:
 * changing an event table changes nothing stored.
 */
#ifndef CAIRN_LUA_EVENT_H
#define CAIRN_LUA_EVENT_H

#include <lua.h>

#include "lua_codec.h"
#include "lua_gather.h"

/* Interned keys, pushed once per batch so building each event costs no
 * string interning: slot numbers below are offsets from base. */
enum {
    EV_TOPIC, EV_ORIGINATOR_ID, EV_ORIGINATOR_VERSION, EV_TIMESTAMP, EV_EVENT_ID, EV_METADATA,
    EV_TOPICS, /* the cache of recent topic strings: EV_TOPICS_N slots */
    EV_TOPICS_N = 4,
    EV_SLOTS = EV_TOPICS + EV_TOPICS_N
};

typedef struct cairn_event_keys {
    int base; /* stack index of the first slot */
    /* the topics in the cache slots (a batch's events share a few topics, so
     * most events reuse a string instead of interning one) */
    const char *topic[EV_TOPICS_N];
    size_t topic_len[EV_TOPICS_N];
    int next_topic;
    cairn_codec_names names; /* the payload's field names, likewise */
} cairn_event_keys;

/** Push the EV_SLOTS keys of a batch, then the slots of its names cache. */
void cairn_event_keys_push(lua_State *L, cairn_event_keys *k);

/** The stack index of a slot. */
#define EV_KEY(k, slot) ((k)->base + (slot))

/** What an event table holds: everything, or (for replay, where no event
 *  reaches user code) the header without event_id and metadata, or (a DCB
 *  event, API.md §9) `position` (its notification id), `type` (its topic) and
 *  its payload's fields (`data`, `tags`), the table app.events:read hands out. */
typedef enum { CAIRN_EVENT_FULL, CAIRN_EVENT_REPLAY, CAIRN_EVENT_DCB } cairn_event_kind;

/**
 * Push the event of a gathered record (g holds it; the read has ended).
 * id_idx, when not 0, is a stack index holding the originator id string. A
 * forgotten record (no payload) has no fields.
 * @return CAIRN_OK; CAIRN_CORRUPT (nothing pushed) if the payload or the
 *         metadata is malformed. Raises only for lack of memory.
 */
int cairn_lua_push_event(lua_State *L, cairn_event_keys *k, const cairn_gather *g, const cairn_gathered *r,
                         int id_idx, cairn_event_kind kind);

/** Register core.make_event into the table at -1. */
void cairn_lua_event_init(lua_State *L);

#endif
