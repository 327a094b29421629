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
usage: cairn stat [URI] [--topics]

Prints what the store holds: engine, format, whether it is encrypted, events,
streams, last notification id, its size (LMDB: in use and its map size;
PostgreSQL: the schema's tables and indexes), how
many aggregates have snapshots, each view with its number of keys, and each
tracking position (how far this store's followers and views have processed
their leaders' logs). --topics adds the number of events of each topic (it
reads the whole log).
]] .. STORE_NOTE,
  streams = [[
usage: cairn streams [URI] [--after ID] [--limit M]

Prints the store's aggregates (streams) in id order, one per line: the
aggregate id and its last version, separated by a tab. Read a page at a
time; --after starts after that aggregate id (to go on from the last line
of a previous page), --limit prints at most M.
]] .. STORE_NOTE,
  view = [[
usage: cairn view [URI] [PREFIX] [--view NAME] [--limit M]

Prints the keys of the store's views that start with PREFIX (all keys
without it), in key order, one per line: view name, key and value as JSON,
separated by tabs. --view keeps one view; --limit prints at most M keys.
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
  local canonical, problem = core.aggregate_id(id)
  if not canonical then cli.usage_error("'%s' is not an aggregate id: it %s", id, problem) end
  local store = open_existing(uri)
  local events = store:read_stream(canonical)
  if #events == 0 then
    local shown = store:uri() -- without a password
    store:close()
    errors.raise("AggregateNotFound", "aggregate %s not found in %s", canonical, shown)
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
  cli_store.with_store(uri, function(store)
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
    if opts.follow then
      follow.loop({ store }, step, function() return left <= 0 end, { signals = true })
    else
      step()
    end
  end)
  return 0
end

-- 1536 as "1.5 KiB"
local function human(bytes)
  local units, n, i = { "bytes", "KiB", "MiB", "GiB", "TiB" }, bytes, 1
  while n >= 1024 and i < #units do n, i = n / 1024, i + 1 end
  return i == 1 and ("%d bytes"):format(n) or ("%.1f %s"):format(n, units[i])
end

-- Call fn(item) for every item of a paged listing (store:view_names, ...).
local function each_page(list, fn, stride)
  local after
  repeat
    local page = list(after)
    for i = 1, #page, stride or 1 do fn(page[i], page[i + 1]) end
    after = page[#page - (stride or 1) + 1]
  until #page == 0
end

-- How many keys a view holds (a walk over them, a page at a time).
local function count_keys(store, view)
  local n, after = 0, nil
  repeat
    local page = store:view_scan(view, { after = after, limit = PAGE })
    n = n + #page / 2
    after = page[#page - 1]
  until #page == 0
  return n
end

local function topic_counts(store)
  local counts, order, from = {}, {}, 1
  while true do
    local page = store:read_log { from = from, limit = PAGE }
    if #page == 0 then break end
    for i = 1, #page do
      local t = page[i].topic
      if not counts[t] then order[#order + 1] = t end
      counts[t] = (counts[t] or 0) + 1
    end
    from = page[#page].id + 1
  end
  table.sort(order)
  return counts, order
end

local function stat_cmd(args)
  local opts, rest = cli.parse_options(args, { topics = "flag" })
  local uri = cli_store.split(rest, 0)
  local encrypted = cli_store.needs_key(uri)
  cli_store.with_store(uri, function(store)
    local st = store:stat()
    io_write(("store: %s\nengine: %s\nformat: %d\nencrypted: %s\nevents: %d\nstreams: %d\nmax_notification_id: %d\n")
      :format(st.uri, st.engine, st.format, encrypted and "yes" or "no", st.events, st.streams,
        st.max_notification_id))
    if st.engine == "lmdb" then
      io_write(("size: %s in use, map %s\n"):format(human(st.used_bytes), human(st.map_size)))
    elseif st.engine == "postgresql" then
      io_write(("size: %s (the schema's tables and indexes)\n"):format(human(st.used_bytes)))
    end
    local snapshots = 0
    each_page(function(after) return store:snapshot_streams { after = after } end,
      function() snapshots = snapshots + 1 end)
    io_write(("snapshots: %d aggregates\n"):format(snapshots))
    each_page(function(after) return store:view_names { after = after } end, function(view)
      local counted, n = pcall(count_keys, store, view)
      if counted then
        io_write(("view %s: %d keys\n"):format(view, n))
      elseif errors.is(n, "ConfigError") then -- encrypted, opened without its key
        io_write(("view %s: keys not counted (set CAIRN_CIPHER_KEY)\n"):format(view))
      else
        error(n, 0)
      end
    end)
    each_page(function(after) return store:tracking_scan { after = after } end, function(name, id)
      local view, app = name:match("^(.-)/(.*)$")
      if view then
        io_write(("tracking: view %s has processed %s up to %d\n"):format(view, app, id))
      else
        io_write(("tracking: processed %s up to %d\n"):format(name, id))
      end
    end, 2)
    if opts.topics then
      local counts, order = topic_counts(store)
      for i = 1, #order do io_write(("topic %s: %d\n"):format(order[i], counts[order[i]])) end
    end
  end)
  return 0
end

-- The aggregate id of a listed stream key: a version 8 UUID is the key of a
-- string id (API.md §9), which its events carry (unless it was forgotten).
local function stream_name(store, key)
  if key:sub(15, 15) ~= "8" then return key end
  local ok, last = pcall(store.read_stream, store, key, { reverse = true, limit = 1 })
  return ok and last[1] and last[1].originator_id or key
end

local function streams_cmd(args)
  local opts, rest = cli.parse_options(args, { after = "value", limit = "value" })
  local uri = cli_store.split(rest, 0)
  local after = opts.after
  if after then
    local problem
    after, problem = core.aggregate_id(after)
    if not after then cli.usage_error("--after must be an aggregate id: '%s' %s", opts.after, problem) end
  end
  local left = count_option(opts, "limit", math.huge)
  cli_store.with_store(uri, function(store)
    while left > 0 do
      local page = store:streams { after = after, limit = left < PAGE and left or PAGE }
      if #page == 0 then break end
      local buf = {}
      for i = 1, #page, 2 do buf[#buf + 1] = ("%s\t%d\n"):format(stream_name(store, page[i]), page[i + 1]) end
      io_write(table.concat(buf))
      left, after = left - #page / 2, page[#page - 1]
    end
  end)
  return 0
end

local function view_cmd(args)
  local opts, rest = cli.parse_options(args, { view = "value", limit = "value" })
  local uri, others = cli_store.split(rest, 1, "optionally a key PREFIX")
  local prefix = others[1] or ""
  local left = count_option(opts, "limit", math.huge)
  cli_store.with_store(uri, function(store)
    local function print_view(view)
      local after
      while left > 0 do
        local page = store:view_scan(view, { prefix = prefix, after = after, limit = left < PAGE and left or PAGE })
        if #page == 0 then break end
        local buf = {}
        for i = 1, #page, 2 do buf[#buf + 1] = ("%s\t%s\t%s\n"):format(view, page[i], json.encode(page[i + 1])) end
        io_write(table.concat(buf))
        left, after = left - #page / 2, page[#page - 1]
      end
    end
    if opts.view then
      print_view(opts.view)
    else
      each_page(function(after) return store:view_names { after = after } end, print_view)
    end
  end)
  return 0
end

local HANDLERS = { events = events_cmd, log = log_cmd, stat = stat_cmd, view = view_cmd, streams = streams_cmd }

function _M.main(cmd, args)
  return HANDLERS[cmd](args)
end

return _M
