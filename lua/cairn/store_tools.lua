--- Store tools: `cairn events|log|stat` on any store URI (export and import: cairn.cli_backup).
-- @module cairn.store_tools
local core = require "cairn.core"
local errors = require "cairn.errors"
local event = require "cairn.event"
local json = require "cairn.json"
local time = require "cairn.time"
local cli = require "cairn.cli"
local cli_store = require "cairn.cli_store"

local io_write, tonumber, floor = io.write, tonumber, math.floor

local _M = { _VERSION = "0.1.0" }

-- Said once, in every tool's help: where the store comes from.
local STORE_NOTE = [[

URI is memory:, lmdb:PATH or postgresql://...; without one, CAIRN_STORE
names the store (exit 2 when neither does). The store must exist: the tools
never create one they are asked to read. An encrypted store takes its key
from CAIRN_CIPHER_KEY; a plain store reads whether or not a key is set.
]]

local HELP = {
  events = [[
usage: cairn events [URI] AGGREGATE_ID

Prints the aggregate's events, oldest first, one per line:
version, timestamp (UTC), topic and fields as JSON.
]] .. STORE_NOTE,
  log = [[
usage: cairn log [URI] [--from N] [--limit M]

Prints notifications in id order from N (default 1), at most M (default all):
id, aggregate id, version, topic and fields as JSON.
]] .. STORE_NOTE,
  stat = [[
usage: cairn stat [URI]

Prints what the store holds: engine, events, streams, last notification id, size.
]] .. STORE_NOTE,
}

function _M.help(cmd)
  return HELP[cmd]
end

local PAGE = 1000

local open_existing = cli_store.open_existing

local function iso(us)
  return time.from_us(us):iso()
end

local function fields_json(ev, forgotten)
  if forgotten then return "(forgotten)" end
  return json.encode(json.object(event.fields(ev)))
end

local function events_cmd(args)
  local uri, rest = cli_store.split(args, 1, "an AGGREGATE_ID")
  local id = rest[1]
  if not id then cli.usage_error("no AGGREGATE_ID given") end
  local canonical = core.uuid_normalize(id)
  if not canonical then cli.usage_error("'%s' is not an aggregate id (a UUID)", id) end
  local store = open_existing(uri)
  local events = store:read_stream(canonical)
  if #events == 0 then
    store:close()
    errors.raise("AggregateNotFound", "aggregate %s not found in %s", canonical, uri)
  end
  for i = 1, #events do
    local e = events[i]
    io_write(("%d\t%s\t%s\t%s\n"):format(e.originator_version, iso(floor(e.timestamp * 1e6 + 0.5)),
      e.topic, fields_json(e)))
  end
  store:close()
  return 0
end

local function count_option(opts, name, default)
  local v = opts[name]
  if v == nil then return default end
  local n = tonumber(v)
  if not n or n < 0 or n % 1 ~= 0 then cli.usage_error("--%s must be a whole number (got '%s')", name, v) end
  return n
end

local function log_cmd(args)
  local opts, rest = cli.parse_options(args, { from = "value", limit = "value" })
  local uri = cli_store.split(rest, 0)
  local from = count_option(opts, "from", 1)
  local limit = count_option(opts, "limit", math.huge)
  if from < 1 then from = 1 end
  local store = open_existing(uri)
  local left = limit
  while left > 0 do
    local page = store:read_log { from = from, limit = left < PAGE and left or PAGE }
    for i = 1, #page do
      local n = page[i]
      io_write(("%d\t%s\t%d\t%s\t%s\n"):format(n.id, n.originator_id, n.originator_version, n.topic,
        fields_json(n.event, n.forgotten)))
    end
    if #page == 0 then break end
    left = left - #page
    from = page[#page].id + 1
  end
  store:close()
  return 0
end

local function stat_cmd(args)
  local store = open_existing((cli_store.split(args, 0)))
  local st = store:stat()
  store:close()
  io_write(("store: %s\nengine: %s\nformat: %d\nevents: %d\nstreams: %d\nmax_notification_id: %d\n"):format(
    st.uri, st.engine, st.format, st.events, st.streams, st.max_notification_id))
  if st.engine == "lmdb" then
    io_write(("used_bytes: %d\nmap_size: %d\n"):format(st.used_bytes, st.map_size))
  end
  return 0
end

local HANDLERS = { events = events_cmd, log = log_cmd, stat = stat_cmd }

function _M.main(cmd, args)
  return HANDLERS[cmd](args)
end

return _M
