--- Backups: `cairn export` and `cairn import` (API.md §7). An export is JSON
-- lines holding everything a store keeps (events, snapshots, views, tracking
-- positions); an import restores it into a new store, so a restored
-- follower goes on where it was. Both stream in pages: memory stays bounded
-- whatever the size of the store.
--
-- An import into `lmdb:PATH` builds the store beside it (`.NAME.importing`)
-- and moves it into place only when complete: a killed import leaves no
-- half store, and the next import clears what it left. A lock file
-- (`.NAME.importing.lock`) keeps two imports into one target apart.
-- @module cairn.cli_backup
local core = require "cairn.core"
local errors = require "cairn.errors"
local json = require "cairn.json"
local log_json = require "cairn.log_json"
local recorder = require "cairn.recorder"
local time = require "cairn.time"
local cli = require "cairn.cli"
local cli_store = require "cairn.cli_store"
local progress = require "cairn.progress"

local type, pcall, error, tostring, ipairs = type, pcall, error, tostring, ipairs
local os_getenv, os_remove, os_rename, io_stderr = os.getenv, os.remove, os.rename, io.stderr
local encode, aggregate_id = core.encode, core.aggregate_id

local _M = { _VERSION = "0.1.0" }

local STORE_NOTE = [[

URI is memory:, lmdb:PATH or postgresql://...; without one, CAIRN_STORE
names the store (exit 2 when neither does). An encrypted store takes its key
from CAIRN_CIPHER_KEY; a plain store reads whether or not a key is set.
]]

local FORMAT = [[
One JSON object per line. Events come first, in notification order, as
{"event_id":"...","fields":{...},"id":N,"originator_id":"...",
"originator_version":V,"timestamp":"2026-11-22T09:34:10.123456Z",
"topic":"Dog.Registered"}, plus "metadata" when the event has any,
"class_version":N for events stored at a class version other than 1 and
"forgotten":true (and empty fields) for events of forgotten aggregates;
"fields" is always an object ({} for an event without fields). Then, each
with a "kind":
  {"kind":"snapshot","originator_id":"...","originator_version":V,
   "class_name":"Dog","class_version":N,"timestamp":"...","state":{...}}
                      the newest snapshot of each aggregate
  {"kind":"view","view":"Fines","key":"...","value":...}
                      every key of every view
  {"kind":"tracking","application":"Library","id":N}
                      how far this store's follower has processed a leader
  {"kind":"tracking","view":"Fines","application":"Library","id":N}
                      how far a view has processed an application's log
Strings that are not UTF-8 become {"$bytes":BASE64}, times {"$time":MICROSECONDS}.
]]

local HELP = {
  export = [[
usage: cairn export [URI] [FILE|-] [--salvage]

Writes a complete backup of the store to FILE (standard output when FILE is
- or not given): its events, snapshots, views and tracking positions, so
that `cairn import` restores a store that goes on where this one was.
The store is verified first (as `cairn verify`): one that fails its checks
is not exported (exit 1, naming the first problem), so a backup never
launders corruption. With --salvage the problems are reported, records that
fail their checks are left out, each named on stderr, and the export goes
on (an import refuses the gap: a salvaged export is for reading).
On a terminal, a progress bar with the rate and time left goes to stderr.

]] .. FORMAT .. STORE_NOTE,
  import = [[
usage: cairn import URI [FILE|-]

Restores a backup written by `cairn export` (from FILE, or standard input
when FILE is - or not given) into a NEW store, keeping notification ids,
aggregate ids, versions, timestamps, snapshots, views and tracking positions.
Lines without a "kind" are events (so exports of older versions import).
For lmdb:PATH the store is built beside PATH and moved there only when all
of it is in: a failed or killed import leaves no store at PATH (run it
again), and two imports into one PATH at once are refused. PATH must not
exist yet. Input without a single record is an
error and creates nothing. With CAIRN_CIPHER_KEY (and CAIRN_COMPRESSOR=zstd)
set, the new store is encrypted (and compressed). To encrypt a plain store:

  export CAIRN_CIPHER_KEY=$(cairn keygen)    # keep it safe
  cairn export lmdb:PLAIN | cairn import lmdb:ENCRYPTED

On a terminal, a progress bar with the rate and time left goes to stderr.

]] .. FORMAT .. STORE_NOTE,
}

function _M.help(cmd)
  return HELP[cmd]
end

local PAGE = 1000

-- ---------------------------------------------------------------- export

-- Write the lines of buf[1..n] and empty it.
local function flush_lines(out, buf, n)
  if n == 0 then return 0 end
  buf[n + 1] = ""
  local written, werr = out:write(table.concat(buf, "\n", 1, n + 1))
  if not written then error("cannot write the export: " .. tostring(werr), 0) end
  for i = 1, n + 1 do buf[i] = nil end
  return 0
end

-- A page of the log from `from`; with salvage, a record that fails its checks
-- is named on stderr and left out. Returns the page and where the next begins.
local function log_page(store, from, salvage, skipped)
  if not salvage then
    local page = store:read_log { from = from, limit = PAGE }
    return page, #page > 0 and page[#page].id + 1 or nil
  end
  local ok, page = pcall(store.read_log, store, { from = from, limit = PAGE })
  if ok then return page, #page > 0 and page[#page].id + 1 or nil end
  -- one at a time until past the bad record
  ok, page = pcall(store.read_log, store, { from = from, limit = 1 })
  if ok then return page, #page > 0 and page[#page].id + 1 or nil end
  if from > store:max_id() then error(page, 0) end
  skipped[#skipped + 1] = from
  io_stderr:write(("cairn export: skipped notification %d: %s\n"):format(from, cli.message_of(page)))
  return {}, from + 1
end

local function export_events(store, out, salvage, bar)
  local total, from, buf, skipped = store:max_id(), 1, {}, {}
  -- DCB events are marked, so that an import indexes them again (engines without DCB have none)
  local has_dcb = pcall(store.dcb_read, store, {}, 0, 1)
  while from do
    local page, next_from = log_page(store, from, salvage, skipped)
    local dcb = {}
    if has_dcb and #page > 0 then
      for _, id in ipairs((store:dcb_read({}, page[1].id - 1, page[#page].id - page[1].id + 1))) do dcb[id] = true end
    end
    for i = 1, #page do
      local item = log_json.item(page[i])
      item.dcb = dcb[item.id]
      buf[i] = json.encode(item)
    end
    flush_lines(out, buf, #page)
    from = next_from
    if from then bar:update(from - 1, total) end
  end
  return skipped
end

local function export_snapshots(store, out)
  local after, buf, n = nil, {}, 0
  repeat
    local ids = store:snapshot_streams { after = after }
    for i = 1, #ids do
      local s = store:read_snapshot(ids[i])
      if s then
        n = n + 1
        buf[n] = json.encode {
          kind = "snapshot", originator_id = s.originator_id, originator_version = s.version, class_name = s.class_name,
          class_version = s.class_version, timestamp = time.from_us(s.timestamp_us):iso(),
          state = json.object(s.state),
        }
      end
    end
    n = flush_lines(out, buf, n)
    after = ids[#ids]
  until #ids == 0
end

local function export_views(store, out)
  local after_view, buf = nil, {}
  repeat
    local names = store:view_names { after = after_view }
    for i = 1, #names do
      local view, after = names[i], nil
      repeat
        local entries = store:view_scan(view, { after = after, limit = PAGE })
        local n = 0
        for j = 1, #entries, 2 do
          n = n + 1
          buf[n] = json.encode { kind = "view", view = view, key = entries[j], value = entries[j + 1] }
        end
        flush_lines(out, buf, n)
        after = entries[#entries - 1]
      until #entries == 0
    end
    after_view = names[#names]
  until #names == 0
end

local function export_tracking(store, out)
  local after, buf = nil, {}
  repeat
    local page = store:tracking_scan { after = after }
    local n = 0
    for i = 1, #page, 2 do
      local name, id = page[i], page[i + 1]
      local view, app = name:match("^(.-)/(.*)$")
      n = n + 1
      buf[n] = json.encode { kind = "tracking", view = view, application = app or name, id = id }
    end
    flush_lines(out, buf, n)
    after = page[#page - 1]
  until #page == 0
end

-- A backup never launders corruption: the whole store is verified first (log
-- reads of a plain store do not re-check hash chains). With salvage, the
-- problems are reported and the export goes on.
local function verify_first(store, salvage)
  local bar = progress.new("verifying", "records")
  local report = store:verify(function(done, total) bar:update(done, total) end)
  bar:finish()
  if report.problems == 0 then return end
  local what = ("%d problem%s, the first: %s"):format(report.problems, report.problems == 1 and "" or "s",
    report.first)
  if not salvage then
    errors.raise("IntegrityError", "%s fails its checks (%s); nothing exported: `cairn verify` names them, "
      .. "`cairn export --salvage` exports what still reads", store:uri(), what)
  end
  io_stderr:write(("cairn export: --salvage: the store fails its checks (%s)\n"):format(what))
end

local function export_cmd(args)
  local opts, positional = cli.parse_options(args, { salvage = "flag" })
  local uri, rest = cli_store.split(positional, 1, "optionally a FILE")
  cli_store.with_store(uri, function(store)
    verify_first(store, opts.salvage)
    local out, owned = cli_store.output(rest[1])
    local bar = progress.new("exporting", "events")
    local skipped = export_events(store, out, opts.salvage, bar)
    export_snapshots(store, out)
    export_views(store, out)
    export_tracking(store, out)
    bar:finish(true)
    if owned then
      local closed, cerr = out:close()
      if not closed then error("cannot write the export: " .. tostring(cerr), 0) end
    else
      out:flush()
    end
    if #skipped > 0 then
      io_stderr:write(("cairn export: --salvage left out %d notification%s that failed %s checks\n"):format(
        #skipped, #skipped == 1 and "" or "s", #skipped == 1 and "its" or "their"))
    end
  end)
  return 0
end

-- ---------------------------------------------------------------- import

local function bad_line(n, fmt, ...)
  errors.raise("SchemaError", "line %d: " .. fmt, n, ...)
end

-- Is there anything at path (a file or a directory)?
local function exists(path)
  return os_rename(path, path) ~= nil
end

-- Remove a store directory an import left (its LMDB files, then the directory).
local function remove_store_dir(dir)
  for _, f in ipairs { "data.mdb", "lock.mdb", "wake" } do os_remove(dir .. "/" .. f) end
  if exists(dir) then
    local ok, err = os_remove(dir)
    if not ok then errors.raise("StoreError", "cannot remove the unfinished import %s: %s", dir, err) end
  end
end

-- Where an import builds its store: for lmdb:PATH, a temporary store beside
-- PATH, taken under a lock; otherwise the store itself.
-- @return the URI to write, and a place table (nil when not lmdb)
local function prepare(uri)
  local path = uri:match("^lmdb:(.*)$")
  if not path then return uri, nil end
  path = path:gsub("(.)/+$", "%1")
  if exists(path .. "/data.mdb") then
    local store = cli_store.open_existing(uri)
    local empty = store:max_id() == 0
    store:close()
    if not empty then errors.raise("ConfigError", "%s is not empty: import needs a new store (name one)", uri) end
    errors.raise("ConfigError", "%s is an existing store: import makes a new one (remove it or name another)", uri)
  end
  if exists(path) then
    errors.raise("ConfigError",
      "%s exists and is not a store: import makes a new store (name a path that does not exist)", path)
  end
  local dir, base = path:match("^(.*/)([^/]+)$")
  if not dir then dir, base = "", path end
  local place = { path = path, tmp = dir .. "." .. base .. ".importing" }
  place.lock_path = place.tmp .. ".lock"
  place.lock = core.lock_file(place.lock_path)
  if not place.lock then
    errors.raise("ConfigError", "another import into %s is running (it holds %s)", uri, place.lock_path)
  end
  remove_store_dir(place.tmp) -- what a killed import left
  return "lmdb:" .. place.tmp, place
end

-- Move the finished store into place.
local function move_into_place(place, uri)
  local ok, err = os_rename(place.tmp, place.path)
  if not ok then
    errors.raise("ConfigError", "cannot move the imported store to %s (%s): something was made there during the import",
      uri, err)
  end
end

local function release(place, failed)
  if not place then return end
  if failed then pcall(remove_store_dir, place.tmp) end
  os_remove(place.lock_path)
  place.lock:unlock()
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

local EVENTS_PER_SAVE = 2000

-- The import's writer: pending events, snapshots and view entries, written in
-- bounded batches, in the order that the store needs (an event before a
-- snapshot taken at it).
local Writer = {}
Writer.__index = Writer

local function new_writer(store, uri)
  return setmetatable({ store = store, uri = uri, events = {}, dcb = {}, next_id = 1, snaps = {},
                        view = nil, ops = {}, counts = { event = 0, snapshot = 0, view = 0, tracking = 0 } },
                      Writer)
end

function Writer:flush_events()
  if #self.events == 0 then return end
  local first = self.store:append(self.events, self.dcb[1] and { dcb = self.dcb } or nil)
  if first ~= self.next_id then
    errors.raise("StoreError", "import gave id %d to notification %d; another writer is using %s", first,
      self.next_id, self.uri)
  end
  self.next_id = self.next_id + #self.events / recorder.STRIDE
  self.events, self.dcb = {}, {}
end

function Writer:flush_snapshots()
  if #self.snaps == 0 then return end
  self:flush_events()
  self.store:append({}, { snapshots = self.snaps })
  self.snaps = {}
end

function Writer:flush_view()
  if #self.ops == 0 then return end
  self.store:view_write(self.view, self.ops)
  self.ops = {}
end

function Writer:flush()
  self:flush_events()
  self:flush_snapshots()
  self:flush_view()
end

function Writer:event(rec, line_no, last_version)
  local c = self.counts
  c.event = c.event + 1
  if rec.id ~= c.event then
    bad_line(line_no, "notification id %s should be %d (ids start at 1, no gaps)", tostring(rec.id), c.event)
  end
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
  if rec.dcb ~= nil then
    local d = dcb_entry(line_no, rec, n)
    d.event = #self.events / recorder.STRIDE + 1
    self.dcb[#self.dcb + 1] = d
  end
  recorder.add(self.events, #self.events, id, n.originator_version, us, n.topic, payload, n.class_version or 1,
    n.event.event_id, metadata)
  if #self.events >= EVENTS_PER_SAVE * recorder.STRIDE then self:flush_events() end
end

local function whole(v) return type(v) == "number" and v >= 0 and v % 1 == 0 and v <= 2 ^ 53 end

function Writer:snapshot(rec, line_no)
  local id, problem = aggregate_id(rec.originator_id)
  if not id then bad_line(line_no, "originator_id %s", problem) end
  if not whole(rec.originator_version) or rec.originator_version < 1 then
    bad_line(line_no, "originator_version must be a whole number from 1 to 2^53")
  end
  if type(rec.class_name) ~= "string" or rec.class_name == "" then bad_line(line_no, "class_name must be a string") end
  if not whole(rec.class_version) or rec.class_version < 1 or rec.class_version > 65535 then
    bad_line(line_no, "class_version must be a whole number from 1 to 65535")
  end
  local t = time.parse_iso(rec.timestamp)
  if not t then bad_line(line_no, "timestamp must look like 2026-11-22T09:34:10.123456Z") end
  if type(rec.state) ~= "table" then bad_line(line_no, "state must be an object") end
  local ok, state = pcall(encode, rec.state)
  if not ok then bad_line(line_no, "state: %s", cli.message_of(state)) end
  self.counts.snapshot = self.counts.snapshot + 1
  recorder.add(self.snaps, #self.snaps, id, rec.originator_version, t.us, rec.class_name, state, rec.class_version)
  if #self.snaps >= PAGE * recorder.STRIDE then self:flush_snapshots() end
end

local function check_name(v, what, line_no)
  if type(v) ~= "string" or not v:match("^[%w_.%-]+$") then
    bad_line(line_no, "%s must be a name (letters, digits, _ . -)", what)
  end
end

function Writer:view_entry(rec, line_no)
  check_name(rec.view, "view", line_no)
  if type(rec.key) ~= "string" then bad_line(line_no, "key must be a string") end
  if rec.value == nil then bad_line(line_no, "value is missing") end
  local ok, value = pcall(encode, rec.value)
  if not ok then bad_line(line_no, "value: %s", cli.message_of(value)) end
  if rec.view ~= self.view then
    self:flush_view()
    self.view = rec.view
  end
  self.counts.view = self.counts.view + 1
  local ops = self.ops
  ops[#ops + 1], ops[#ops + 2] = rec.key, value
  if #ops >= 2 * PAGE then self:flush_view() end
end

function Writer:tracking(rec, line_no, positions)
  check_name(rec.application, "application", line_no)
  if rec.view ~= nil then check_name(rec.view, "view", line_no) end
  if not whole(rec.id) or rec.id < 1 then bad_line(line_no, "id must be a whole number from 1 to 2^53") end
  self.counts.tracking = self.counts.tracking + 1
  positions[#positions + 1] = rec
end

-- Tracking positions last: nothing is processed twice, nothing skipped.
function Writer:write_tracking(positions)
  for i = 1, #positions do
    local p = positions[i]
    local position = { application = p.application, id = p.id }
    if p.view then
      self.store:view_write(p.view, {}, position)
    else
      self.store:append({}, { tracking = position })
    end
  end
end

local KINDS = { snapshot = Writer.snapshot, view = Writer.view_entry }

local function read_into(writer, input, size)
  local bar, bytes, line_no, last_version, positions = progress.new("importing", "bytes"), 0, 0, {}, {}
  for line in input:lines() do
    line_no = line_no + 1
    bytes = bytes + #line + 1
    bar:update(size and bytes or line_no, size)
    if line:match("%S") then
      local rec, err = json.decode(line, log_json.DECODE)
      if rec == nil then bad_line(line_no, "%s", err) end
      if type(rec) ~= "table" or rec[1] ~= nil then bad_line(line_no, "expected a JSON object") end
      local kind = rec.kind
      if kind == nil or kind == "event" then
        rec.kind = nil
        writer:event(rec, line_no, last_version)
      elseif kind == "tracking" then
        writer:tracking(rec, line_no, positions)
      elseif KINDS[kind] then
        KINDS[kind](writer, rec, line_no)
      else
        bad_line(line_no, "unknown kind '%s' (event, snapshot, view or tracking)", tostring(kind))
      end
    end
  end
  local c = writer.counts
  if c.event + c.snapshot + c.view + c.tracking == 0 then
    errors.raise("SchemaError", "nothing to import: the input %s no events (an export writes one JSON object per line)",
      line_no == 0 and "is empty, so it holds" or "holds")
  end
  writer:flush()
  writer:write_tracking(positions)
  bar:finish(true)
end

local function import_cmd(args)
  local uri, rest = cli_store.split(args, 1, "optionally a FILE")
  local input, owned, size = cli_store.input(rest[1])
  local write_uri, place = prepare(uri)
  local store
  local ok, err = pcall(function()
    store = recorder.open(write_uri, { sync = "full", cipher_key = os_getenv("CAIRN_CIPHER_KEY"),
                                       compressor = os_getenv("CAIRN_COMPRESSOR") })
    if not place and store:max_id() ~= 0 then
      errors.raise("ConfigError", "%s is not empty: import needs an empty store (name a new one)", store:uri())
    end
    local writer = new_writer(store, uri)
    read_into(writer, input, size)
    store:close()
    store = nil
    if place then move_into_place(place, uri) end
    local c = writer.counts
    io_stderr:write(("imported %d events into %s"):format(c.event, uri))
    if c.snapshot + c.view + c.tracking > 0 then
      io_stderr:write((" (%d snapshots, %d view keys, %d tracking positions)"):format(c.snapshot, c.view, c.tracking))
    end
    io_stderr:write("\n")
  end)
  if store then pcall(store.close, store) end
  if owned then input:close() end
  release(place, not ok)
  if not ok then error(err, 0) end
  return 0
end

local HANDLERS = { export = export_cmd, import = import_cmd }

function _M.main(cmd, args)
  return HANDLERS[cmd](args)
end

return _M
