/* lua_event.c -- see lua_event.h. */
#include <lauxlib.h>
#include <string.h>

#include "cairn.h"
#include "lua_error.h"
#include "lua_event.h"
#include "uuid.h"

/* registry keys of the shared metamethods */
static char readonly_key, inspect_key, versions_key, upcaster_key;

static int event_newindex(lua_State *L)
{
    const char *k = lua_tostring(L, 2);
    return luaL_error(L, "events are read-only (cannot set '%s')", k ? k : "?");
}

static int is_meta_key(const char *k, size_t len)
{
    return len >= 2 && k[0] == '_' && k[1] == '_';
}

/* A plain copy of an event's fields; with_header keeps topic, ids and timestamp. */
static void push_fields(lua_State *L, int data, int with_header)
{
    lua_newtable(L);
    lua_pushnil(L);
    while (lua_next(L, data)) {
        size_t len;
        const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tolstring(L, -2, &len) : NULL;
        int skip = k && (is_meta_key(k, len) ||
                         (!with_header && (strcmp(k, "topic") == 0 || strcmp(k, "originator_id") == 0 ||
                                           strcmp(k, "originator_version") == 0 || strcmp(k, "timestamp") == 0)));
        if (skip) { lua_pop(L, 1); continue; }
        lua_pushvalue(L, -2);
        lua_insert(L, -2);
        lua_rawset(L, -4);
    }
}

static int event_inspect(lua_State *L)
{
    if (!lua_getmetatable(L, 1)) return 0;
    push_fields(L, lua_gettop(L), 1);
    return 1;
}

void cairn_event_keys_push(lua_State *L, cairn_event_keys *k)
{
    lua_checkstack(L, EV_SLOTS + 8);
    k->base = lua_gettop(L) + 1;
    lua_pushliteral(L, "topic");
    lua_pushliteral(L, "originator_id");
    lua_pushliteral(L, "originator_version");
    lua_pushliteral(L, "timestamp");
    lua_pushliteral(L, "__index");
    lua_pushliteral(L, "__newindex");
    lua_pushlightuserdata(L, &readonly_key);
    lua_rawget(L, LUA_REGISTRYINDEX);
    lua_pushliteral(L, "__cairn_inspect");
    lua_pushlightuserdata(L, &inspect_key);
    lua_rawget(L, LUA_REGISTRYINDEX);
    lua_pushliteral(L, "id");
    lua_pushliteral(L, "event");
    lua_pushlightuserdata(L, &versions_key);
    lua_rawget(L, LUA_REGISTRYINDEX);
    lua_pushlightuserdata(L, &upcaster_key);
    lua_rawget(L, LUA_REGISTRYINDEX);
}

static void set_slot(lua_State *L, const cairn_event_keys *k, int key, int value_slot)
{
    lua_pushvalue(L, EV_KEY(k, key));
    lua_pushvalue(L, EV_KEY(k, value_slot));
    lua_rawset(L, -3);
}

/* Finish an event: the data table at -1 becomes the metatable of a new proxy,
 * which replaces it on the stack. */
static void seal_event(lua_State *L, const cairn_event_keys *k)
{
    lua_pushvalue(L, EV_KEY(k, EV_INDEX));
    lua_pushvalue(L, -2);
    lua_rawset(L, -3);
    set_slot(L, k, EV_NEWINDEX, EV_READONLY_FN);
    set_slot(L, k, EV_INSPECT, EV_INSPECT_FN);
    lua_createtable(L, 0, 0);
    lua_insert(L, -2);
    lua_setmetatable(L, -2);
}

/* Add topic, originator_id, originator_version and timestamp to the table at -1. */
static void set_header(lua_State *L, const cairn_event_keys *k, const cairn_record *rec, int id_idx)
{
    lua_pushvalue(L, EV_KEY(k, EV_TOPIC));
    lua_pushlstring(L, rec->topic, rec->topic_len);
    lua_rawset(L, -3);
    lua_pushvalue(L, EV_KEY(k, EV_ORIGINATOR_ID));
    if (id_idx) {
        lua_pushvalue(L, id_idx);
    } else {
        char id[CAIRN_UUID_STRLEN];
        cairn_uuid_format(rec->stream_id, id);
        lua_pushlstring(L, id, sizeof id);
    }
    lua_rawset(L, -3);
    lua_pushvalue(L, EV_KEY(k, EV_ORIGINATOR_VERSION));
    lua_pushnumber(L, (lua_Number)rec->version);
    lua_rawset(L, -3);
    lua_pushvalue(L, EV_KEY(k, EV_TIMESTAMP));
    lua_pushnumber(L, (lua_Number)rec->timestamp_us / 1e6);
    lua_rawset(L, -3);
}

/* Replace the fields table at -1 by what the upcaster makes of it, when the
 * record's class version is older than its event class's. */
static int upcast(lua_State *L, const cairn_event_keys *k, const cairn_record *rec)
{
    /* class version 0: an event just triggered, at its class's current version */
    if (rec->class_version == 0 || !lua_istable(L, EV_KEY(k, EV_VERSIONS))) return CAIRN_OK;
    lua_pushlstring(L, rec->topic, rec->topic_len);
    lua_rawget(L, EV_KEY(k, EV_VERSIONS));
    unsigned current = lua_isnumber(L, -1) ? (unsigned)lua_tonumber(L, -1) : 0;
    lua_pop(L, 1);
    if (current == 0 || current == rec->class_version) return CAIRN_OK;
    lua_pushvalue(L, EV_KEY(k, EV_UPCASTER));
    lua_pushlstring(L, rec->topic, rec->topic_len);
    lua_pushnumber(L, rec->class_version);
    lua_pushvalue(L, -4);
    lua_pushnumber(L, (lua_Number)rec->version);
    if (lua_pcall(L, 4, 1, 0) != 0) {
        lua_replace(L, -2); /* the error replaces the fields */
        return CAIRN_LUA_ERRORED;
    }
    lua_replace(L, -2);
    return CAIRN_OK;
}

int cairn_lua_push_event(lua_State *L, const cairn_event_keys *k, const cairn_record *rec, int id_idx, int plain)
{
    /* room for the fields (a fixmap's count), the header and, unless plain,
     * the metamethods, so the table is never rehashed while it is filled */
    int fields = rec->payload_len && (rec->payload[0] & 0xf0) == 0x80 ? rec->payload[0] & 0x0f : 4;
    lua_createtable(L, 0, fields + (plain == 1 ? 4 : 7));
    if (rec->payload) {
        int rc = cairn_codec_decode_into(L, rec->payload, rec->payload_len, -1);
        if (rc) { lua_pop(L, 1); return rc; }
        rc = upcast(L, k, rec);
        if (rc) return rc;
    }
    set_header(L, k, rec, id_idx);
    if (!plain) seal_event(L, k);
    return CAIRN_OK;
}

static const char *const reserved[] = { "topic", "originator_id", "originator_version", "timestamp" };

/* core.make_event(topic, originator_id, version, timestamp_us, fields [, fresh]) -> event, payload
 * Encodes the fields now, so a value that cannot be stored fails at trigger
 * time, and builds the event from the encoded bytes, so apply functions see
 * exactly what a later replay will see. When the caller built the fields
 * table itself (fresh) and it holds no tables, decoding would give back the
 * same values, so the table itself becomes the event's data. */
static int lmake_event(lua_State *L)
{
    size_t topic_len, id_len;
    const char *topic = luaL_checklstring(L, 1, &topic_len);
    const char *id = luaL_checklstring(L, 2, &id_len);
    lua_Number version = luaL_checknumber(L, 3);
    lua_Number ts = luaL_checknumber(L, 4);
    luaL_checktype(L, 5, LUA_TTABLE);
    int reuse = lua_toboolean(L, 6);
    lua_settop(L, 5);
    cairn_record rec;
    memset(&rec, 0, sizeof rec);
    if (!cairn_uuid_is_canonical(id, id_len) || cairn_uuid_parse(id, id_len, rec.stream_id) != 0)
        return cairn_lua_raise(L, "SchemaError", "aggregate id '%s' is not a lower-case UUID", id);
    if (version < 0 || version != (lua_Number)(uint64_t)version)
        return cairn_lua_raise(L, "SchemaError", "%s: version must be a whole number >= 0", topic);
    if (topic_len == 0 || topic_len > CAIRN_TOPIC_MAX)
        return cairn_lua_raise(L, "SchemaError", "event topic must be 1 to %d bytes", CAIRN_TOPIC_MAX);
    lua_pushnil(L);
    while (lua_next(L, 5)) {
        if (lua_type(L, -1) == LUA_TTABLE) reuse = 0;
        lua_pop(L, 1);
        if (lua_type(L, -1) != LUA_TSTRING)
            return cairn_lua_raise(L, "SchemaError", "%s: event fields must have string names", topic);
        size_t len;
        const char *k = lua_tolstring(L, -1, &len);
        for (size_t i = 0; i < sizeof reserved / sizeof *reserved; i++)
            if (strcmp(k, reserved[i]) == 0 || is_meta_key(k, len))
                return cairn_lua_raise(L, "SchemaError", "%s: field name '%s' is reserved", topic, k);
    }
    cairn_codec *c = cairn_codec_get(L);
    const uint8_t *payload;
    size_t payload_len;
    char err[600];
    int rc = cairn_codec_encode(L, c, 5, topic, &payload, &payload_len, err, sizeof err);
    if (rc) return cairn_lua_raise_rc(L, rc, err);
    lua_pushlstring(L, (const char *)payload, payload_len);
    rec.version = (uint64_t)version;
    rec.timestamp_us = (int64_t)ts;
    rec.topic = topic;
    rec.topic_len = topic_len;
    rec.payload = (const uint8_t *)lua_tostring(L, -1);
    rec.payload_len = payload_len;
    cairn_event_keys keys;
    cairn_event_keys_push(L, &keys);
    if (reuse) {
        lua_pushvalue(L, 5);
        set_header(L, &keys, &rec, 2);
        seal_event(L, &keys);
    } else {
        rc = cairn_lua_push_event(L, &keys, &rec, 2, 0);
        if (rc) return cairn_lua_raise_rc(L, rc, "an event could not be decoded after encoding");
    }
    lua_replace(L, keys.base);       /* event */
    lua_settop(L, keys.base);
    lua_insert(L, -2);               /* event, payload */
    return 2;
}

/* core.event_fields(event) -> a plain table of the payload fields, or nil if not an event */
static int levent_fields(lua_State *L)
{
    if (!lua_getmetatable(L, 1)) return 0;
    lua_getfield(L, -1, "__newindex");
    lua_pushlightuserdata(L, &readonly_key);
    lua_rawget(L, LUA_REGISTRYINDEX);
    if (!lua_rawequal(L, -1, -2)) return 0;
    lua_pop(L, 2);
    push_fields(L, lua_gettop(L), 0);
    return 1;
}

/* core.set_upcaster(versions, fn): versions maps topics to their current
 * class version; fn(topic, stored_version, fields, aggregate_version) returns
 * the fields upcast to the current version (or raises). */
static int lset_upcaster(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    luaL_checktype(L, 2, LUA_TFUNCTION);
    lua_pushlightuserdata(L, &versions_key);
    lua_pushvalue(L, 1);
    lua_rawset(L, LUA_REGISTRYINDEX);
    lua_pushlightuserdata(L, &upcaster_key);
    lua_pushvalue(L, 2);
    lua_rawset(L, LUA_REGISTRYINDEX);
    return 0;
}

static int lis_event(lua_State *L)
{
    int yes = 0;
    if (lua_type(L, 1) == LUA_TTABLE && lua_getmetatable(L, 1)) {
        lua_getfield(L, -1, "__newindex");
        lua_pushlightuserdata(L, &readonly_key);
        lua_rawget(L, LUA_REGISTRYINDEX);
        yes = lua_rawequal(L, -1, -2);
    }
    lua_pushboolean(L, yes);
    return 1;
}

void cairn_lua_event_init(lua_State *L)
{
    lua_pushlightuserdata(L, &readonly_key);
    lua_pushcfunction(L, event_newindex);
    lua_rawset(L, LUA_REGISTRYINDEX);
    lua_pushlightuserdata(L, &inspect_key);
    lua_pushcfunction(L, event_inspect);
    lua_rawset(L, LUA_REGISTRYINDEX);
    static const luaL_Reg fns[] = {
        { "make_event", lmake_event },
        { "event_fields", levent_fields },
        { "is_event", lis_event },
        { "set_upcaster", lset_upcaster },
        { NULL, NULL },
    };
    luaL_setfuncs(L, fns, 0);
}
