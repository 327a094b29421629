--- Log reads built in compiled Lua: the binding copies a read into a flat
-- page (runtime/lua/lua_page.h: numbers, formatted UUIDs, the page's distinct
-- strings, payloads as a tape of typed tokens) and ends the read; this module
-- reads the page through LuaJIT's FFI and makes the event tables with table
-- constructors, which the trace compiler turns into a few stores each, where
-- the classic path (`store:read_log`) pays a C API call per field.
--
-- Both paths give the same values: ids, events and the odd list (records
-- that are forgotten or need upcasting) as `store:read_log` returns them. The
-- classic path stays for when the FFI is missing, the JIT is off (interpreted
-- FFI accesses cost more than the C API), or `CAIRN_NO_FFI=1` is set.
-- Internal: cairn.recorder is its only user (and the only caller of the
-- binding's `read_page`/`release_page`).
-- @module cairn.log_page
local core = require "cairn.core"
local new_tab = require "table.new"

local setmetatable, next, os_getenv = setmetatable, next, os.getenv

local _M = { _VERSION = "0.1.0" }

local has_ffi, ffi = pcall(require, "ffi")
local jit_status = jit and jit.status

--- Is the page path used? (false: the FFI is missing, or `CAIRN_NO_FFI=1`;
-- it is also left out while the JIT is off). Specs switch it to run both paths.
_M.enabled = has_ffi and jit_status ~= nil and os_getenv("CAIRN_NO_FFI") ~= "1"

if not has_ffi then
  function _M.on() return false end
  return _M
end

-- The layout of lua_page.h (checked against the binding's sizes below).
if not pcall(ffi.typeof, "struct cairn_page") then
  ffi.cdef [[
    struct cairn_page_tok { int32_t type, n; double v; };
    struct cairn_page_rec {
      double id, version, timestamp, event_id;
      int32_t topic, originator, fields, nfields, metadata, nmetadata, class_version, forgotten, reserved, pad;
    };
    struct cairn_page_str { double off, len; };
    struct cairn_page {
      double n, nstrs;
      const struct cairn_page_rec *recs;
      const struct cairn_page_tok *toks;
      const struct cairn_page_str *strs;
      const char *bytes;
    };
  ]]
end
do
  local layout = ("tok %d rec %d str %d page %d"):format(ffi.sizeof("struct cairn_page_tok"),
    ffi.sizeof("struct cairn_page_rec"), ffi.sizeof("struct cairn_page_str"), ffi.sizeof("struct cairn_page"))
  assert(core.PAGE_LAYOUT == layout, "cairn.log_page and the C binding disagree on the page layout")
end

local fstr, cast = ffi.string, ffi.cast
local PAGE = ffi.typeof("const struct cairn_page *")
local time_mt = core.time_metatable
local UUID_LEN = 36

-- token types (lua_page.h)
local TOK_NIL, TOK_FALSE, TOK_TRUE, TOK_NUM, TOK_STR, TOK_SYM, TOK_ARRAY, TOK_TIME = 0, 1, 2, 3, 4, 5, 6, 8
-- what a read's events hold (lua_event.h)
local FULL, REPLAY, DCB = 1, 2, 3

--- Is the page path to be taken now?
function _M.on()
  return _M.enabled and jit_status() == true
end

-- The value at tape index k: returns it and the index after it.
local function value(T, k, B, strs)
  local t = T[k]
  local ty = t.type
  if ty == TOK_STR then return fstr(B + t.v, t.n), k + 1 end
  if ty == TOK_NUM then return t.v, k + 1 end
  if ty == TOK_SYM then return strs[t.n], k + 1 end
  if ty == TOK_TRUE then return true, k + 1 end
  if ty == TOK_FALSE then return false, k + 1 end
  if ty == TOK_NIL then return nil, k + 1 end
  if ty == TOK_TIME then return setmetatable({ us = t.v }, time_mt), k + 1 end
  local n = t.n
  k = k + 1
  if ty == TOK_ARRAY then
    local a = new_tab(n, 0)
    for i = 1, n do a[i], k = value(T, k, B, strs) end
    return a, k
  end
  local m = new_tab(0, n) -- TOK_MAP
  for _ = 1, n do
    local key
    key, k = value(T, k, B, strs)
    m[key], k = value(T, k, B, strs)
  end
  return m, k
end

-- Set the n pairs from tape index k on into t (an event's fields, its metadata).
local function set_fields(t, T, k, n, B, strs)
  for _ = 1, n do
    local kt, key = T[k]
    if kt.type == TOK_SYM then key = strs[kt.n]; k = k + 1 else key, k = value(T, k, B, strs) end
    local vt = T[k]
    local ty = vt.type
    if ty == TOK_STR then t[key] = fstr(B + vt.v, vt.n); k = k + 1
    elseif ty == TOK_NUM then t[key] = vt.v; k = k + 1
    else t[key], k = value(T, k, B, strs) end
  end
end

local function metadata(r, T, B, strs)
  local meta = {}
  if r.nmetadata > 0 then set_fields(meta, T, r.metadata, r.nmetadata, B, strs) end
  return meta
end

-- An event table sized for its fields and header, filled in the classic
-- path's order (fields, then the header over them): for events with more
-- fields than a constructor's table has room for (it would grow), and for
-- fields named like header fields (the two paths then agree).
local function sized_event(r, kind, topic, T, B, strs, header)
  local nf = r.nfields
  local ev = new_tab(0, nf + header)
  if nf > 0 then set_fields(ev, T, r.fields, nf, B, strs) end
  if kind == DCB then
    ev.position, ev.type = r.id, topic
    return ev
  end
  ev.topic, ev.originator_id, ev.originator_version, ev.timestamp = topic, strs[r.originator], r.version, r.timestamp
  if kind == FULL then
    if r.event_id >= 0 then ev.event_id = fstr(B + r.event_id, UUID_LEN) end
    ev.metadata = metadata(r, T, B, strs)
  end
  return ev
end

-- ids, events, odd (flat index, stored class version, forgotten triples) of
-- a page; or, given notify(id, event, 1) (cairn.recorder's notification),
-- notifications and odd.
local function build(P, kind, versions, notify)
  local n, R, T, B = P.n, P.recs, P.toks, P.bytes
  local nstrs, S = P.nstrs, P.strs
  local strs = new_tab(nstrs, 0)
  for j = 1, nstrs do
    local s = S[j - 1]
    strs[j] = fstr(B + s.off, s.len)
  end
  local ids, events, odd, nodd = not notify and new_tab(n, 0), new_tab(n, 0), {}, 0
  if versions and next(versions) == nil then versions = nil end -- no versioned class: no look-ups
  -- the header's fields, and how many more the constructor's table holds (its hash part is a power of 2)
  local header = kind == FULL and 6 or kind == REPLAY and 4 or 2
  local room = kind == FULL and 2 or 0
  for i = 1, n do
    local r = R[i - 1]
    local topic = strs[r.topic]
    local ev
    if r.reserved ~= 0 or r.nfields > room then
      ev = sized_event(r, kind, topic, T, B, strs, header)
    else
      if kind == FULL then
        local eid = r.event_id
        ev = { topic = topic, originator_id = strs[r.originator], originator_version = r.version,
               timestamp = r.timestamp, event_id = eid >= 0 and fstr(B + eid, UUID_LEN) or nil,
               metadata = metadata(r, T, B, strs) }
      elseif kind == REPLAY then
        ev = { topic = topic, originator_id = strs[r.originator], originator_version = r.version,
               timestamp = r.timestamp }
      else
        ev = { position = r.id, type = topic }
      end
      local nf = r.nfields
      if nf > 0 then set_fields(ev, T, r.fields, nf, B, strs) end
    end
    if notify then events[i] = notify(r.id, ev, 1) else ids[i], events[i] = r.id, ev end
    local cv, forgotten = r.class_version, r.forgotten ~= 0
    local current = versions and versions[topic]
    if forgotten or cv ~= 1 or (current and current ~= 0 and current ~= cv) then
      odd[nodd + 1], odd[nodd + 2], odd[nodd + 3] = i, cv, forgotten
      nodd = nodd + 3
    end
  end
  if notify then return events, odd end
  return ids, events, odd
end

--- The tables of a page: what `store:read_page(q)` returned, which the
-- caller keeps (and hands back) until this returns.
-- @param page the page userdata
-- @param q the query it was read with (`replay`, `dcb`: what its events hold)
-- @param[opt] versions topic -> current class version
-- @param[opt] notify a function (id, event, 1) -> notification
-- @return ids, events, odd as `store:read_log` gives them; given notify,
--   the notifications and odd
function _M.build(page, q, versions, notify)
  local a, b, c = build(cast(PAGE, page), q.dcb and DCB or q.replay and REPLAY or FULL, versions, notify)
  return a, b, c -- not a tail call: page stays on the stack while its memory is read
end

return _M
