--- Store tools: `cairn events|log|stat` on any store URI (export and import: cairn.cli_backup).
-- @module cairn.store_tools
local core = require "cairn.core"
local errors = require "cairn.errors"
local event = require "cairn.event"
local follow = require "cairn.follow"
local json = require "cairn.json"
local log_json = require "cairn.log_json"
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
usage: cairn log [URI] [--from N] [--limit M] [--topic T]... [--json] [--follow]

Prints notifications in id order from N (default 1), at most M (default all),
one per line: id, timestamp (UTC, ISO 8601 with microseconds), aggregate id,
version, topic and fields as JSON, separated by tabs, under a header line
when standard output is a terminal.

  --topic T   only notifications of topic T (repeat it for several topics)
  --json      each notification as a JSON object, as `cairn export` writes it
  --follow    after the last one, wait for new notifications and print them
              as they are recorded (also by other processes), until SIGINT
              or SIGTERM (or M are printed)
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

local LOG_HEADER = "id\ttimestamp\taggregate\tversion\ttopic\tfields\n"

local function log_line(n)
  return ("%d\t%s\t%s\t%d\t%s\t%s\n"):format(n.id, iso(floor(n.event.timestamp * 1e6 + 0.5)), n.originator_id,
    n.originator_version, n.topic, fields_json(n.event, n.forgotten))
end

local function json_line(n)
  return json.encode(log_json.item(n)) .. "\n"
end

local function log_cmd(args)
  local opts, rest = cli.parse_options(args, { from = "value", limit = "value", topic = "list", json = "flag",
                                               follow = "flag" })
  local uri = cli_store.split(rest, 0)
  local from = count_option(opts, "from", 1)
  local left = count_option(opts, "limit", math.huge)
  if from < 1 then from = 1 end
  local topics = opts.topic
  local line = opts.json and json_line or log_line
  local store = open_existing(uri)
  if not opts.json and core.isatty(1) then io_write(LOG_HEADER) end
  -- print what there is from `from` on, a page at a time; how many printed
  local function step()
    local printed, last = 0, store:max_id()
    while left > 0 and from <= last do
      local page = store:read_log { from = from, stop = last, limit = left < PAGE and left or PAGE, topics = topics }
      -- past what a topic filter skipped: every id up to `last` was looked at
      if #page == 0 then from = last + 1 break end
      local buf = {}
      for i = 1, #page do buf[i] = line(page[i]) end
      io_write(table.concat(buf))
      printed, left, from = printed + #page, left - #page, page[#page].id + 1
    end
    io.stdout:flush()
    return printed
  end
  local ok, err = pcall(function()
    if opts.follow then
      follow.loop({ store }, step, function() return left <= 0 end, { signals = true })
    else
      step()
    end
  end)
  store:close()
  if not ok then error(err, 0) end
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
