/*
 * lua_page.h -- a page of the log laid out flat for LuaJIT's FFI.
 *
 * A log read copies each record into a page while the read is open (C calls
 * only, nothing that raises or runs Lua), ends the read, and hands the page
 * (a userdata) to lua/cairn/log_page.lua, which builds the event tables with
 * table constructors in compiled Lua instead of a C API call per field.
 *
 * What C does once per page or per record stays in C: the notification
 * numbers come as doubles, UUIDs are formatted into the page's bytes, each
 * distinct topic, originator id and field name of the page is one entry of
 * its strings (made into a Lua string once per page), and the payload and
 * metadata msgpack are checked and flattened into a tape of typed tokens, so
 * that Lua never parses bytes and a malformed payload is found before any Lua
 * runs. The layout is declared again (ffi.cdef) in log_page.lua, which checks
 * the sizes core.PAGE_LAYOUT gives.
 */
#ifndef CAIRN_LUA_PAGE_H
#define CAIRN_LUA_PAGE_H

#include <lua.h>
#include <stddef.h>
#include <stdint.h>

#include "lua_event.h"
#include "record.h"

#define CAIRN_PAGE_MT "cairn.page"

/* A token's type. */
enum {
    CAIRN_TOK_NIL, CAIRN_TOK_FALSE, CAIRN_TOK_TRUE,
    CAIRN_TOK_NUM,      /* v: the number */
    CAIRN_TOK_STR,      /* v: byte offset, n: length */
    CAIRN_TOK_SYM,      /* n: the number (1-based) of one of the page's strings */
    CAIRN_TOK_ARRAY,    /* n: items; they follow */
    CAIRN_TOK_MAP,      /* n: pairs (key, value); they follow */
    CAIRN_TOK_TIME      /* v: microseconds since the epoch (a cairn.time value) */
};

/** One value of a payload or metadata, in msgpack order. */
typedef struct cairn_page_tok {
    int32_t type;
    int32_t n;
    double v;
} cairn_page_tok;

/** One notification. Fields Lua reads are doubles and int32s (plain numbers to it). */
typedef struct cairn_page_rec {
    double id, version, timestamp;  /* notification id, originator version, seconds since the epoch */
    double event_id;                /* byte offset of the formatted event id (36 bytes); -1: none */
    int32_t topic, originator;      /* string numbers; originator 0 for DCB reads */
    int32_t fields, nfields;        /* the payload's pairs: tape index of the first key, count */
    int32_t metadata, nmetadata;    /* the metadata's pairs, likewise (0: empty) */
    int32_t class_version;
    int32_t forgotten;              /* 1: its key is destroyed, it has no fields */
    int32_t reserved;               /* 1: a field is named as a header field (the header wins) */
    int32_t pad;
} cairn_page_rec;

/** One of the page's distinct strings. */
typedef struct cairn_page_str {
    double off, len;
} cairn_page_str;

/** The page. Lua sees the part before `cap` (log_page.lua declares only it). */
typedef struct cairn_page {
    double n, nstrs;                /* records, strings */
    cairn_page_rec *recs;
    cairn_page_tok *toks;
    cairn_page_str *strs;
    char *bytes;
    /* C's own from here */
    size_t cap, ntoks, toks_cap, strs_cap, len, bytes_cap;
    struct cairn_page_slot *slots;  /* the strings by hash, for interning */
    size_t slots_cap;
    uint32_t gen;                   /* this page's, in the slots in use */
    cairn_event_kind kind;
    const uint8_t *last_stream;     /* the previous record's stream and originator string */
    uint8_t last_id[16];
    size_t last_name_len;
    int32_t last_originator;
    int32_t last_topic;
} cairn_page;

/** Push a new, empty page userdata that takes the memory kept in *spare
 *  (emptied), for a read whose events are of the given kind. Raises only for
 *  lack of memory, before the read starts. */
cairn_page *cairn_page_new_from(lua_State *L, cairn_page *spare, cairn_event_kind kind);

/** Copy a record of an open read into p. Raises nothing.
 *  @return CAIRN_OK; ENOMEM; CAIRN_CORRUPT when its payload or metadata is
 *          malformed (nothing of it kept). */
int cairn_page_add(cairn_page *p, const cairn_record *rec);

/** Done with p: keep its memory in *spare when *spare is empty and the memory
 *  is not large, else free it. */
void cairn_page_release(cairn_page *p, cairn_page *spare);

/** Free what p holds (its __gc does the same, later, if a raise comes first). */
void cairn_page_free(cairn_page *p);

/** Register the page metatable and core.PAGE_LAYOUT into the table at -1. */
void cairn_lua_page_init(lua_State *L);

#endif
