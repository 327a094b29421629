--- Store tools: `cairn events|log|stat|export|import` on any store URI.
-- @module cairn.store_tools
local core = require "cairn.core"
local errors = require "cairn.errors"
local json = require "cairn.json"
local time = require "cairn.time"
local cli = require "cairn.cli"

local io_write, tonumber, floor = io.write, tonumber, math.floor

local _M = { _VERSION = "0.1.0" }

local HELP = {
  events = [[
usage: cairn events URI AGGREGATE_ID

Prints the aggregate's events, oldest first, one per line:
version, timestamp (UTC), topic and fields as JSON.
]],
  log = [[
usage: cairn log URI [--from N] [--limit M]

Prints notifications in id order from N (default 1), at most M (default all):
id, aggregate id, version, topic and fields as JSON.
]],
  stat = [[
usage: cairn stat URI

Prints what the store holds: engine, events, streams, last notification id, size.
]],
  export = [[
usage: cairn export URI [FILE]

Writes every event as one JSON object per line, in notification order, to FILE
or stdout: {"fields":{...},"id":N,"originator_id":"...","originator_version":V,
"timestamp":"2026-11-22T09:34:10.123456Z","topic":"Dog.Registered"}, plus
"class_version":N for events stored at a class version other than 1 and
"forgotten":true (and no fields) for events of forgotten aggregates.
Strings that are not UTF-8 become {"$bytes":BASE64}, times {"$time":MICROSECONDS}.
An encrypted store needs its key in CAIRN_CIPHER_KEY (as do events and log).
]],
  import = [[
usage: cairn import URI [FILE]

Loads JSON lines written by `cairn export` (from FILE or stdin) into an EMPTY
store, keeping notification ids, aggregate ids, versions and timestamps. The
whole input is checked before anything is written. With CAIRN_CIPHER_KEY
(and CAIRN_COMPRESSOR=zstd) set, the new store is encrypted (and compressed):
the way to encrypt a plain store is to export it and import it.
]],
}

function _M.help(cmd)
  return HELP[cmd]
end

local PAGE = 1000

-- Tools take the key of an encrypted store from CAIRN_CIPHER_KEY.
local function open_existing(uri)
  return core.open(uri, { must_exist = true, sync = "none", cipher_key = os.getenv("CAIRN_CIPHER_KEY") })
end
_M.open_existing = open_existing

local function iso(us)
  return time.from_us(us):iso()
end

local function fields_json(n)
  if n.forgotten then return "(forgotten)" end
  return json.encode(core.event_fields(n.event or n))
end

local function events_cmd(args)
  local uri, id = args[1], args[2]
  if not uri or not id or args[3] then cli.usage_error("needs URI and AGGREGATE_ID") end
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
  if #rest ~= 1 then cli.usage_error("needs one URI") end
  local from = count_option(opts, "from", 1)
  local limit = count_option(opts, "limit", math.huge)
  if from < 1 then from = 1 end
  local store = open_existing(rest[1])
  local left = limit
  while left > 0 do
    local page = store:read_log(from, left < PAGE and left or PAGE)
    for i = 1, #page do
      local n = page[i]
      io_write(("%d\t%s\t%d\t%s\t%s\n"):format(n.id, n.originator_id, n.originator_version, n.topic,
        fields_json(n)))
    end
    if #page == 0 then break end
    left = left - #page
    from = page[#page].id + 1
  end
  store:close()
  return 0
end

local function stat_cmd(args)
  if #args ~= 1 then cli.usage_error("needs one URI") end
  local store = open_existing(args[1])
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
  if #args < 1 or #args > 2 then cli.usage_error("needs URI and optionally FILE") end
  local store = open_existing(args[1])
  local out = io.stdout
  if args[2] then
    out = assert(io.open(args[2], "wb"))
  end
  local from, buf = 1, {}
  while true do
    local page = store:read_log(from, PAGE)
    if #page == 0 then break end
    for i = 1, #page do
      local n = page[i]
      buf[i] = json.encode({
        id = n.id, originator_id = n.originator_id, originator_version = n.originator_version,
        topic = n.topic, timestamp = iso(floor(n.event.timestamp * 1e6 + 0.5)),
        fields = core.event_fields(n.event), forgotten = n.forgotten,
        class_version = n.class_version ~= 1 and n.class_version or nil,
      })
    end
    buf[#page + 1] = ""
    out:write(table.concat(buf, "\n", 1, #page + 1))
    for i = #page + 1, #buf do buf[i] = nil end
    from = page[#page].id + 1
  end
  store:close()
  if out ~= io.stdout then out:close() end
  return 0
end

-- days since 1970-01-01 of a civil date (proleptic Gregorian; H. Hinnant's algorithm)
local function days_from_civil(y, m, d)
  if m <= 2 then y = y - 1 end
  local era = floor(y / 400)
  local yoe = y - era * 400
  local mp = (m + 9) % 12
  local doy = floor((153 * mp + 2) / 5) + d - 1
  local doe = yoe * 365 + floor(yoe / 4) - floor(yoe / 100) + doy
  return era * 146097 + doe - 719468
end

-- "2026-11-22T09:34:10.123456Z" -> microseconds since the epoch
local function parse_iso(s)
  if type(s) ~= "string" then return nil end
  local y, mo, d, h, mi, sec, frac = s:match("^(%d%d%d%d)%-(%d%d)%-(%d%d)T(%d%d):(%d%d):(%d%d)%.?(%d*)Z$")
  if not y then return nil end
  y, mo, d, h, mi, sec = tonumber(y), tonumber(mo), tonumber(d), tonumber(h), tonumber(mi), tonumber(sec)
  if mo < 1 or mo > 12 or d < 1 or d > 31 or h > 23 or mi > 59 or sec > 60 or #frac > 6 then return nil end
  local us = tonumber((frac .. "000000"):sub(1, 6))
  return ((days_from_civil(y, mo, d) * 24 + h) * 60 + mi) * 60 * 1e6 + sec * 1e6 + us
end

local function bad_line(n, fmt, ...)
  errors.raise("SchemaError", "line %d: " .. fmt, n, ...)
end

local function whole(v) return type(v) == "number" and v >= 0 and v % 1 == 0 end

local function import_cmd(args)
  if #args < 1 or #args > 2 then cli.usage_error("needs URI and optionally FILE") end
  local input = io.stdin
  if args[2] then
    local err
    input, err = io.open(args[2], "rb")
    if not input then errors.raise("ConfigError", "cannot read %s", err) end
  end
  -- check everything before writing anything
  local batch, count, line_no, last_version = {}, 0, 0, {}
  -- a time is whole microseconds that a double holds exactly (found by fuzzing:
  -- a string here raised a bare Lua error, 1e300 reached C as an int64 overflow)
  local decode_opts = { time = function(us)
    if type(us) ~= "number" or us % 1 ~= 0 or us > 2 ^ 53 or us < -2 ^ 53 then
      return nil, "a time must be whole microseconds within 2^53 of the epoch"
    end
    return time.from_us(us)
  end }
  for line in input:lines() do
    line_no = line_no + 1
    if line:match("%S") then
      local rec, err = json.decode(line, decode_opts)
      if rec == nil then bad_line(line_no, "%s", err) end
      if type(rec) ~= "table" or rec[1] ~= nil then bad_line(line_no, "expected a JSON object") end
      count = count + 1
      if rec.id ~= count then bad_line(line_no, "notification id %s should be %d (ids start at 1, no gaps)",
        tostring(rec.id), count) end
      local id = core.uuid_normalize(rec.originator_id)
      if not id then bad_line(line_no, "originator_id is not a UUID") end
      if not whole(rec.originator_version) then bad_line(line_no, "originator_version must be a whole number") end
      local last = last_version[id]
      if last and rec.originator_version ~= last + 1 then
        bad_line(line_no, "aggregate %s version %d does not follow version %d", id, rec.originator_version, last)
      end
      last_version[id] = rec.originator_version
      if type(rec.topic) ~= "string" or rec.topic == "" then bad_line(line_no, "topic must be a string") end
      local us = parse_iso(rec.timestamp)
      if not us then bad_line(line_no, "timestamp must look like 2026-11-22T09:34:10.123456Z") end
      if rec.forgotten then
        bad_line(line_no, "aggregate %s version %d was forgotten: its fields are gone, so it cannot be imported",
          id, rec.originator_version)
      end
      local class_version = rec.class_version == nil and 1 or rec.class_version
      if not whole(class_version) or class_version < 1 or class_version > 65535 then
        bad_line(line_no, "class_version must be a whole number from 1 to 65535")
      end
      local fields = rec.fields == nil and {} or rec.fields
      if type(fields) ~= "table" then bad_line(line_no, "fields must be an object") end
      local ok, ev_or_err, payload = pcall(core.make_event, rec.topic, id, rec.originator_version, us, fields)
      if not ok then bad_line(line_no, "%s", errors.is(ev_or_err) and ev_or_err.message or tostring(ev_or_err)) end
      local n = #batch
      batch[n + 1], batch[n + 2], batch[n + 3], batch[n + 4], batch[n + 5], batch[n + 6] =
        id, rec.originator_version, us, rec.topic, payload, class_version
    end
  end
  if input ~= io.stdin then input:close() end
  local store = core.open(args[1], { sync = "full", cipher_key = os.getenv("CAIRN_CIPHER_KEY"),
                                     compressor = os.getenv("CAIRN_COMPRESSOR") })
  if store:max_id() ~= 0 then
    store:close()
    errors.raise("ConfigError", "%s is not empty: import needs an empty store", args[1])
  end
  -- write in chunks so a big import does not become one huge transaction
  local CHUNK = 10000 * 6
  for start = 1, #batch, CHUNK do
    local chunk = {}
    for i = start, math.min(start + CHUNK - 1, #batch) do chunk[#chunk + 1] = batch[i] end
    local first = store:append(chunk)
    local expected = (start - 1) / 6 + 1
    if first ~= expected then
      store:close()
      errors.raise("StoreError", "import gave id %d to notification %d; another writer is using %s",
        first, expected, args[1])
    end
  end
  store:close()
  io.stderr:write(("imported %d events into %s\n"):format(count, args[1]))
  return 0
end

local HANDLERS = { events = events_cmd, log = log_cmd, stat = stat_cmd, export = export_cmd, import = import_cmd }

function _M.main(cmd, args)
  return HANDLERS[cmd](args)
end

_M.parse_iso = parse_iso

return _M
