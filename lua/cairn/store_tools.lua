--- Store tools: `cairn events|log|stat|export|import` on any store URI.
-- @module cairn.store_tools
local core = require "cairn.core"
local errors = require "cairn.errors"
local event = require "cairn.event"
local json = require "cairn.json"
local log_json = require "cairn.log_json"
local recorder = require "cairn.recorder"
local time = require "cairn.time"
local cli = require "cairn.cli"
local cli_store = require "cairn.cli_store"
local progress = require "cairn.progress"

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
  export = [[
usage: cairn export [URI] [FILE|-]

Writes every event as one JSON object per line, in notification order, to FILE
(standard output when FILE is - or not given):
{"fields":{...},"id":N,"originator_id":"...","originator_version":V,
"timestamp":"2026-11-22T09:34:10.123456Z","topic":"Dog.Registered"}, plus
"class_version":N for events stored at a class version other than 1 and
"forgotten":true (and empty fields) for events of forgotten aggregates.
"fields" is always an object ({} for an event without fields).
Strings that are not UTF-8 become {"$bytes":BASE64}, times {"$time":MICROSECONDS}.
On a terminal, a progress bar with the rate and time left goes to stderr.
]] .. STORE_NOTE,
  import = [[
usage: cairn import URI [FILE|-]

Loads JSON lines written by `cairn export` (from FILE, or standard input when
FILE is - or not given) into an EMPTY store, which it creates, keeping
notification ids, aggregate ids, versions and timestamps. The whole input is
checked before anything is written; input without a single event is an error
and creates nothing. With CAIRN_CIPHER_KEY (and CAIRN_COMPRESSOR=zstd) set,
the new store is encrypted (and compressed). To encrypt a plain store:

  export CAIRN_CIPHER_KEY=$(cairn keygen)    # keep it safe
  cairn export lmdb:PLAIN | cairn import lmdb:ENCRYPTED

On a terminal, progress bars with the rate and time left go to stderr.
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

local function export_cmd(args)
  local uri, rest = cli_store.split(args, 1, "optionally a FILE")
  local store = open_existing(uri)
  local ok, err = pcall(function()
    local out, owned = cli_store.output(rest[1])
    local total = store:max_id()
    local bar = progress.new("exporting", "events")
    local from, buf = 1, {}
    -- DCB events are marked, so that an import indexes them again (engines without DCB have none)
    local has_dcb = pcall(store.dcb_read, store, {}, 0, 1)
    while true do
      local page = store:read_log { from = from, limit = PAGE }
      if #page == 0 then break end
      local dcb = {}
      if has_dcb then
        for _, id in ipairs((store:dcb_read({}, from - 1, #page))) do dcb[id] = true end
      end
      for i = 1, #page do
        local item = log_json.item(page[i])
        item.dcb = dcb[item.id]
        buf[i] = json.encode(item)
      end
      buf[#page + 1] = ""
      local written, werr = out:write(table.concat(buf, "\n", 1, #page + 1))
      if not written then error("cannot write the export: " .. tostring(werr), 0) end
      for i = #page + 1, #buf do buf[i] = nil end
      from = page[#page].id + 1
      bar:update(from - 1, total)
    end
    bar:finish(true)
    if owned then
      local closed, cerr = out:close()
      if not closed then error("cannot write the export: " .. tostring(cerr), 0) end
    else
      out:flush()
    end
  end)
  store:close()
  if not ok then error(err, 0) end
  return 0
end

local function bad_line(n, fmt, ...)
  errors.raise("SchemaError", "line %d: " .. fmt, n, ...)
end

-- A DCB event of an export (`"dcb": true`): its type and tags, checked.
local function dcb_entry(line_no, rec, n)
  if rec.dcb ~= true then bad_line(line_no, "dcb must be true when present") end
  local tags = n.event.tags
  if #n.topic > 255 then bad_line(line_no, "a DCB event's type must be 1 to 255 bytes") end
  if type(tags) ~= "table" then bad_line(line_no, "a DCB event needs its tags (fields.tags)") end
  for i = 1, #tags do
    if type(tags[i]) ~= "string" or #tags[i] == 0 or #tags[i] > 255 then
      bad_line(line_no, "DCB tag %d must be a string of 1 to 255 bytes", i)
    end
  end
  if n.originator_version ~= 1 then bad_line(line_no, "a DCB event is version 1 of a stream of its own") end
  return { type = n.topic, tags = tags }
end

local function import_cmd(args)
  local uri, rest = cli_store.split(args, 1, "optionally a FILE")
  local input, owned, size = cli_store.input(rest[1])
  -- check everything before writing anything
  local batch, count, line_no, last_version, dcb_events = {}, 0, 0, {}, {}
  local bar, bytes = progress.new("checking", "lines"), 0
  for line in input:lines() do
    line_no = line_no + 1
    bytes = bytes + #line + 1
    bar:update(size and bytes or line_no, size)
    if line:match("%S") then
      local rec, err = json.decode(line, log_json.DECODE)
      if rec == nil then bad_line(line_no, "%s", err) end
      if type(rec) ~= "table" or rec[1] ~= nil then bad_line(line_no, "expected a JSON object") end
      count = count + 1
      if rec.id ~= count then bad_line(line_no, "notification id %s should be %d (ids start at 1, no gaps)",
        tostring(rec.id), count) end
      local n, payload, us, metadata = log_json.notification(rec)
      if not n then bad_line(line_no, "%s", payload) end
      local id = n.originator_id
      local last = last_version[id]
      if last and n.originator_version ~= last + 1 then
        bad_line(line_no, "aggregate %s version %d does not follow version %d", id, n.originator_version, last)
      end
      last_version[id] = n.originator_version
      if n.forgotten then
        bad_line(line_no, "aggregate %s version %d was forgotten: its fields are gone, so it cannot be imported",
          id, n.originator_version)
      end
      if rec.dcb ~= nil then dcb_events[count] = dcb_entry(line_no, rec, n) end
      recorder.add(batch, #batch, id, n.originator_version, us, n.topic, payload, n.class_version or 1,
        n.event.event_id, metadata)
    end
  end
  bar:finish()
  if owned then input:close() end
  if count == 0 then
    errors.raise("SchemaError", "nothing to import: the input %s no events (an export writes one JSON object per line)",
      line_no == 0 and "is empty, so it holds" or "holds")
  end
  local store = recorder.open(uri, { sync = "full", cipher_key = os.getenv("CAIRN_CIPHER_KEY"),
                                     compressor = os.getenv("CAIRN_COMPRESSOR") })
  if store:max_id() ~= 0 then
    store:close()
    errors.raise("ConfigError", "%s is not empty: import needs an empty store (name a new one)", uri)
  end
  -- write in chunks so a big import does not become one huge transaction
  local CHUNK = 10000 * 6
  bar = progress.new("importing", "events")
  for start = 1, #batch, CHUNK do
    local chunk = {}
    for i = start, math.min(start + CHUNK - 1, #batch) do chunk[#chunk + 1] = batch[i] end
    local expected = (start - 1) / recorder.STRIDE + 1
    local dcb = {}
    for k = expected, expected + #chunk / recorder.STRIDE - 1 do
      local d = dcb_events[k]
      if d then dcb[#dcb + 1] = { event = k - expected + 1, type = d.type, tags = d.tags } end
    end
    local first = store:append(chunk, dcb[1] and { dcb = dcb } or nil)
    if first ~= expected then
      store:close()
      errors.raise("StoreError", "import gave id %d to notification %d; another writer is using %s",
        first, expected, uri)
    end
    bar:update(math.min(start + CHUNK - 1, #batch) / 6, count)
  end
  bar:finish(true)
  store:close()
  io.stderr:write(("imported %d events into %s\n"):format(count, uri))
  return 0
end

local HANDLERS = { events = events_cmd, log = log_cmd, stat = stat_cmd, export = export_cmd, import = import_cmd }

function _M.main(cmd, args)
  return HANDLERS[cmd](args)
end

return _M
