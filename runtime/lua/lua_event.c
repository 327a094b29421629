/* lua_event.c -- see lua_event.h. */
#include <lauxlib.h>
#include <string.h>

#include "cairn.h"
#include "lua_error.h"
#include "lua_event.h"
#include "string_id.h"
#include "uuid.h"

void cairn_event_keys_push(lua_State *L, cairn_event_keys *k)
{
    lua_checkstack(L, EV_SLOTS + CAIRN_CODEC_NAMES_N + 8);
    k->base = lua_gettop(L) + 1;
    lua_pushliteral(L, "topic");
    lua_pushliteral(L, "originator_id");
    lua_pushliteral(L, "originator_version");
    lua_pushliteral(L, "timestamp");
    lua_pushliteral(L, "event_id");
    lua_pushliteral(L, "metadata");
    for (int i = 0; i < EV_TOPICS_N; i++) {
        lua_pushnil(L);
        k->topic[i] = NULL;
        k->topic_len[i] = 0;
    }
    k->next_topic = 0;
    cairn_codec_names_push(L, &k->names);
}

/* Push the topic string, from the cache when it is one of the recent ones.
 * The cached pointers must stay valid while k is in use (a gather's bytes,
 * make_event's argument). */
static void push_topic(lua_State *L, cairn_event_keys *k, const char *topic, size_t len)
{
    for (int i = 0; i < EV_TOPICS_N; i++)
        if (k->topic[i] && k->topic_len[i] == len && memcmp(k->topic[i], topic, len) == 0) {
            lua_pushvalue(L, EV_KEY(k, EV_TOPICS + i));
            return;
        }
    int i = k->next_topic;
    k->next_topic = (i + 1) % EV_TOPICS_N;
    lua_pushlstring(L, topic, len);
    lua_pushvalue(L, -1);
    lua_replace(L, EV_KEY(k, EV_TOPICS + i));
    k->topic[i] = topic;
    k->topic_len[i] = len;
}

static int is_zero(const uint8_t id[16])
{
    for (int i = 0; i < 16; i++)
        if (id[i]) return 0;
    return 1;
}

static void push_uuid(lua_State *L, const uint8_t id[16])
{
    char s[CAIRN_UUID_STRLEN];
    cairn_uuid_format(id, s);
    lua_pushlstring(L, s, sizeof s);
}

/* Add topic, originator_id, originator_version and timestamp to the table at
 * -1. The originator id: the string at id_idx when not 0, else the string id
 * name (name_len not 0), else stream_id as a UUID. */
static void set_header(lua_State *L, cairn_event_keys *k, const char *topic, size_t topic_len, int id_idx,
                       const char *name, size_t name_len, const uint8_t stream_id[16], uint64_t version,
                       int64_t timestamp_us)
{
    lua_pushvalue(L, EV_KEY(k, EV_TOPIC));
    push_topic(L, k, topic, topic_len);
    lua_rawset(L, -3);
    lua_pushvalue(L, EV_KEY(k, EV_ORIGINATOR_ID));
    if (id_idx) lua_pushvalue(L, id_idx);
    else if (name_len) lua_pushlstring(L, name, name_len);
    else push_uuid(L, stream_id);
    lua_rawset(L, -3);
    lua_pushvalue(L, EV_KEY(k, EV_ORIGINATOR_VERSION));
    lua_pushnumber(L, (lua_Number)version);
    lua_rawset(L, -3);
    lua_pushvalue(L, EV_KEY(k, EV_TIMESTAMP));
    lua_pushnumber(L, (lua_Number)timestamp_us / 1e6);
    lua_rawset(L, -3);
}

/* Set event.metadata to a table decoded from the msgpack map p (empty when len is 0). */
static int set_metadata(lua_State *L, const cairn_event_keys *k, const uint8_t *p, size_t len)
{
    lua_pushvalue(L, EV_KEY(k, EV_METADATA));
    lua_createtable(L, 0, len && (p[0] & 0xf0) == 0x80 ? p[0] & 0x0f : 0);
    if (len) {
        int rc = cairn_codec_decode_into(L, p, len, -1);
        if (rc) { lua_pop(L, 2); return rc; }
    }
    lua_rawset(L, -3);
    return CAIRN_OK;
}

int cairn_lua_push_event(lua_State *L, cairn_event_keys *k, const cairn_gather *g, const cairn_gathered *r,
                         int id_idx, cairn_event_kind kind)
{
    const uint8_t *payload = (const uint8_t *)cairn_gather_bytes(g, r->payload);
    /* room for the fields (a fixmap's count) and the header, so the table is
     * never rehashed while it is filled */
    int fields = r->has_payload && r->payload_len && (payload[0] & 0xf0) == 0x80 ? payload[0] & 0x0f : 4;
    lua_createtable(L, 0, fields + (kind == CAIRN_EVENT_FULL ? 6 : kind == CAIRN_EVENT_DCB ? 2 : 4));
    if (r->has_payload) {
        int rc = cairn_codec_decode_fields(L, payload, r->payload_len, -1, &k->names);
        if (rc) { lua_pop(L, 1); return rc; }
    }
    if (kind == CAIRN_EVENT_DCB) {
        lua_pushliteral(L, "position");
        lua_pushnumber(L, (lua_Number)r->notification_id);
        lua_rawset(L, -3);
        lua_pushliteral(L, "type");
        push_topic(L, k, cairn_gather_bytes(g, r->topic), r->topic_len);
        lua_rawset(L, -3);
        return CAIRN_OK;
    }
    set_header(L, k, cairn_gather_bytes(g, r->topic), r->topic_len, id_idx, cairn_gather_bytes(g, r->name),
               r->name_len, r->stream_id, r->version, r->timestamp_us);
    if (kind == CAIRN_EVENT_FULL) {
        if (!is_zero(r->event_id)) { /* records written before event ids have none */
            lua_pushvalue(L, EV_KEY(k, EV_EVENT_ID));
            push_uuid(L, r->event_id);
            lua_rawset(L, -3);
        }
        int rc = set_metadata(L, k, (const uint8_t *)cairn_gather_bytes(g, r->metadata), r->metadata_len);
        if (rc) { lua_pop(L, 1); return rc; }
    }
    return CAIRN_OK;
}

/* make_event's upvalues: the header's names, made once (EV_TOPIC..EV_METADATA + 1),
 * then the state's codec (a light userdata: the registry keeps it). */
#define HEADER_KEY(slot) lua_upvalueindex((slot) + 1)
#define CODEC_UPVALUE lua_upvalueindex(EV_METADATA + 2)

static int is_meta_key(const char *k, size_t len)
{
    return len >= 2 && k[0] == '_' && k[1] == '_';
}

/* Encode the table at idx and push the bytes; raises SchemaError naming root. */
static void push_encoded(lua_State *L, int idx, const char *root)
{
    const uint8_t *bytes;
    size_t len;
    char err[600];
    int rc = cairn_codec_encode(L, lua_touserdata(L, CODEC_UPVALUE), idx, root, &bytes, &len, err, sizeof err);
    if (rc) cairn_lua_raise_rc(L, rc, err); /* the codec holds nothing once it returns */
    lua_pushlstring(L, (const char *)bytes, len);
}

/* event[HEADER_KEY(slot)] = the value at -1 (popped); the event is at ev. */
static void set_header_field(lua_State *L, int ev, int slot)
{
    lua_pushvalue(L, HEADER_KEY(slot));
    lua_insert(L, -2);
    lua_rawset(L, ev);
}

/* core.make_event(topic, originator_id, version, timestamp_us, fields [, fresh [, metadata [, event_id]]])
 *   -> event, payload, metadata bytes (nil when there is no metadata), the event id's 16 bytes
 * Encodes the fields (and metadata) now, so a value that cannot be stored
 * fails at trigger time, and builds the event from the encoded bytes, so
 * apply functions see exactly what a later replay will see. When the caller
 * built the fields table itself (fresh) and it holds no tables, decoding
 * would give back the same values, so the table itself becomes the event.
 * Without event_id (a UUID string, e.g. from an import) the event gets a
 * random one. Every trigger runs this: the header's names are upvalues, the
 * topic and id the caller's own strings, so it makes no string but the
 * payload, the event id (as text and as bytes) and the metadata's. */
static int lmake_event(lua_State *L)
{
    size_t topic_len, id_len, eid_len = 0;
    const char *topic = luaL_checklstring(L, 1, &topic_len);
    const char *id = luaL_checklstring(L, 2, &id_len);
    lua_Number version = luaL_checknumber(L, 3);
    lua_Number ts = luaL_checknumber(L, 4);
    luaL_checktype(L, 5, LUA_TTABLE);
    int reuse = lua_toboolean(L, 6);
    if (!lua_isnoneornil(L, 7)) luaL_checktype(L, 7, LUA_TTABLE);
    const char *eid = lua_isnoneornil(L, 8) ? NULL : luaL_checklstring(L, 8, &eid_len);
    lua_settop(L, 8);
    uint8_t event_id[16];
    int kind = cairn_uuid_classify(id, id_len, event_id);
    if (kind != 1) { /* then a string id (string_id.h) */
        const char *problem = kind == 2 ? "is a UUID in upper case" : cairn_string_id_problem(id, id_len);
        if (problem)
            return cairn_lua_raise(L, CAIRN_SCHEMA, "aggregate id '%.64s' %s (ids are lower-case UUIDs or strings "
                                   "of 1 to %d bytes of UTF-8)", id, problem, CAIRN_STRING_ID_MAX);
    }
    if (version < 0 || version != (lua_Number)(uint64_t)version)
        return cairn_lua_raise(L, CAIRN_SCHEMA, "%s: version must be a whole number >= 0", topic);
    if (topic_len == 0 || topic_len > CAIRN_TOPIC_MAX)
        return cairn_lua_raise(L, CAIRN_SCHEMA, "event topic must be 1 to %d bytes", CAIRN_TOPIC_MAX);
    if (!(ts >= -9223372036854775808.0 && ts < 9223372036854775808.0))
        return cairn_lua_raise(L, CAIRN_SCHEMA, "%s: the timestamp is out of range", topic);
    if (eid && cairn_uuid_classify(eid, eid_len, event_id) != 1)
        return cairn_lua_raise(L, CAIRN_SCHEMA, "%s: event_id '%s' is not a lower-case UUID", topic, eid);
    if (!eid) cairn_uuid_v4(event_id);
    lua_pushnil(L);
    while (lua_next(L, 5)) {
        if (lua_type(L, -1) == LUA_TTABLE) reuse = 0;
        lua_pop(L, 1);
        if (lua_type(L, -1) != LUA_TSTRING)
            return cairn_lua_raise(L, CAIRN_SCHEMA, "%s: event fields must have string names", topic);
        size_t len;
        const char *k = lua_tolstring(L, -1, &len);
        int reserved = is_meta_key(k, len);
        for (int slot = EV_TOPIC; slot <= EV_METADATA && !reserved; slot++)
            reserved = lua_rawequal(L, -1, HEADER_KEY(slot)); /* interned: the same string */
        if (reserved) return cairn_lua_raise(L, CAIRN_SCHEMA, "%s: field name '%s' is reserved", topic, k);
    }
    push_encoded(L, 5, topic);                          /* 9: payload */
    int has_metadata = !lua_isnoneornil(L, 7);
    if (has_metadata) {
        lua_pushnil(L);
        has_metadata = lua_next(L, 7) != 0;              /* an empty table is no metadata */
        if (has_metadata) lua_pop(L, 2);
    }
    if (has_metadata) push_encoded(L, 7, "metadata");   /* 10: metadata bytes */
    else lua_pushnil(L);
    if (reuse) {
        lua_pushvalue(L, 5);
    } else {
        size_t len;
        const uint8_t *payload = (const uint8_t *)lua_tolstring(L, 9, &len);
        lua_createtable(L, 0, (len && (payload[0] & 0xf0) == 0x80 ? payload[0] & 0x0f : 4) + 6);
        if (cairn_codec_decode_into(L, payload, len, -1) != CAIRN_OK)
            return cairn_lua_raise(L, CAIRN_CORRUPT, "%s: the fields could not be decoded after encoding", topic);
    }
    int ev = lua_gettop(L);                             /* 11: the event */
    lua_pushvalue(L, 1);
    set_header_field(L, ev, EV_TOPIC);
    lua_pushvalue(L, 2);
    set_header_field(L, ev, EV_ORIGINATOR_ID);
    lua_pushnumber(L, version);
    set_header_field(L, ev, EV_ORIGINATOR_VERSION);
    lua_pushnumber(L, (lua_Number)(int64_t)ts / 1e6);
    set_header_field(L, ev, EV_TIMESTAMP);
    push_uuid(L, event_id);
    set_header_field(L, ev, EV_EVENT_ID);
    size_t mlen = 0;
    const uint8_t *meta = has_metadata ? (const uint8_t *)lua_tolstring(L, 10, &mlen) : NULL;
    lua_createtable(L, 0, mlen && (meta[0] & 0xf0) == 0x80 ? meta[0] & 0x0f : 0);
    if (mlen && cairn_codec_decode_into(L, meta, mlen, -1) != CAIRN_OK)
        return cairn_lua_raise(L, CAIRN_CORRUPT, "%s: the metadata could not be decoded after encoding", topic);
    set_header_field(L, ev, EV_METADATA);
    lua_replace(L, 8);      /* event */
    lua_settop(L, 10);      /* event, payload, metadata bytes */
    lua_pushlstring(L, (const char *)event_id, sizeof event_id);
    return 4;
}

void cairn_lua_event_init(lua_State *L)
{
    static const char *const header[] = { "topic", "originator_id", "originator_version", "timestamp", "event_id",
                                          "metadata" };
    for (int slot = EV_TOPIC; slot <= EV_METADATA; slot++) lua_pushstring(L, header[slot - EV_TOPIC]);
    lua_pushlightuserdata(L, cairn_codec_get(L));
    lua_pushcclosure(L, lmake_event, EV_METADATA - EV_TOPIC + 2);
    lua_setfield(L, -2, "make_event");
}
