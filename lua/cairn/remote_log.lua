--- A notification log served by another process as linked JSON sections
-- (`GET BASE/current`, `GET BASE/FIRST,LAST` -> `{ id, items, previous_id,
-- next_id }`, as examples/http_service serves it), read over HTTP/1.0 with
-- `core.http_get`.
--
-- The log stands where an application stands for its readers: it has a
-- `name` and a `store` (the log itself) with the reading side of a recorder
-- (cairn.recorder: `max_id`, `read_log`, `read_events`, `uri`, `wake_seq`,
-- `close`, with the same options), so a `ProjectionRunner` can run a
-- projection from it (the view tracks its position under `name`, so each
-- notification is applied once, across runs), and a process application can
-- `follow(name, log)` it.
-- @module cairn.remote_log
local core = require "cairn.core"
local json = require "cairn.json"
local log_json = require "cairn.log_json"
local errors = require "cairn.errors"
local select_args = require("cairn.notification_log").select_args

local setmetatable, type, floor, huge, tostring = setmetatable, type, math.floor, math.huge, tostring
local error, ipairs, next = error, ipairs, next
local http_get = core.http_get

local _M = { _VERSION = "0.1.0", SECTION_SIZE = 10, TIMEOUT = 10, MAX_BYTES = 8 * 1024 * 1024 }

local RemoteLog = {}
RemoteLog.__index = RemoteLog
_M.RemoteLog = RemoteLog

--- Read the log at a base URL.
-- @param url `http://HOST[:PORT]/PATH`, the sections being `PATH/current` and `PATH/FIRST,LAST`
-- @param[opt] opts `name` (the application's name, under which views and
--   followers track their position; default: the URL), `timeout` (seconds
--   per request, default 10), `section_size` (the server's, default 10),
--   `max_bytes` (largest response, default 8 MiB), `poll_interval` (seconds
--   between looks when a runner follows the log, default 0.5)
-- @raise ConfigError for a URL that is not http://
function _M.new(url, opts)
  if type(url) ~= "string" then error("bad argument #1 to 'remote_log' (URL expected)", 2) end
  if not url:match("^[hH][tT][tT][pP]://") then
    errors.raise("ConfigError", "'%s' is not an http:// URL (only http:// is supported)", url)
  end
  opts = opts or {}
  if opts.name ~= nil and (type(opts.name) ~= "string" or opts.name == "") then
    error("bad option 'name' to 'remote_log' (application name expected)", 2)
  end
  for _, k in ipairs { "timeout", "section_size", "max_bytes", "poll_interval" } do
    local v = opts[k]
    if v ~= nil and (type(v) ~= "number" or v <= 0) then
      error(("bad option '%s' to 'remote_log' (number > 0 expected)"):format(k), 2)
    end
  end
  url = url:gsub("/+$", "")
  local self = setmetatable({
    url = url, name = opts.name or url, timeout = opts.timeout or _M.TIMEOUT,
    section_size = opts.section_size or _M.SECTION_SIZE, max_bytes = opts.max_bytes or _M.MAX_BYTES,
    poll_interval = opts.poll_interval or 0.5,
  }, RemoteLog)
  self.store = self
  return self
end

local function bad(url, fmt, ...)
  errors.raise("StoreError", "%s: " .. fmt, url, ...)
end

local function optional_id(v)
  return v == nil or (type(v) == "string" and v:match("^%d+,%d+$") ~= nil)
end

--- One section, its items as notifications.
-- @param section_id `"current"` or `"FIRST,LAST"`
-- @return `{ id, items, previous_id, next_id }`
-- @raise StoreError (refused, not 200, malformed), TimeoutError
function RemoteLog:section(section_id)
  if type(section_id) ~= "string" or not (section_id == "current" or section_id:match("^%d+,%d+$")) then
    error("bad argument #1 to 'section' (section id expected)", 2)
  end
  local url = self.url .. "/" .. section_id
  local status, body = http_get(url, self.timeout, self.max_bytes)
  if status ~= 200 then
    local doc = json.decode(body)
    local said = type(doc) == "table" and type(doc.message) == "string" and ": " .. doc.message or ""
    bad(url, "HTTP status %d%s", status, said)
  end
  local doc, err = json.decode(body, log_json.DECODE)
  if type(doc) ~= "table" then bad(url, "not a log section (%s)", err or "not a JSON object") end
  local items = doc.items == nil and {} or doc.items
  if type(items) ~= "table" or not optional_id(doc.id) or not optional_id(doc.previous_id)
    or not optional_id(doc.next_id) then
    bad(url, "not a log section (expected { id, items, previous_id, next_id })")
  end
  if (next(items) ~= nil and items[1] == nil) or (doc.id == nil and #items > 0) then
    bad(url, "not a log section (items must be an array, and a section with items must have an id)")
  end
  local out = {}
  for i = 1, #items do
    local n, why = log_json.notification(items[i])
    if not n then bad(url, "item %d: %s", i, why) end
    if i > 1 and n.id ~= out[i - 1].id + 1 then bad(url, "item %d: notification ids are not consecutive", i) end
    out[i] = n
  end
  return { id = doc.id, items = out, previous_id = doc.previous_id, next_id = doc.next_id }
end

--- The newest notification id (0 when the log is empty): the current section's last.
function RemoteLog:max_id()
  local items = self:section("current").items
  return #items > 0 and items[#items].id or 0
end

--- The URL, where a store would give its URI.
function RemoteLog:uri()
  return self.url
end

--- No change counter: followers poll a remote log (every `poll_interval` seconds).
function RemoteLog.wake_seq()
  return nil
end

local function wanted(topics)
  if not topics then return nil end
  local set = {}
  for i = 1, #topics do set[topics[i]] = true end
  return set
end

-- Notifications start..stop (at most limit, of the topics), walking the
-- sections forward from the one holding start by their next_id links.
local function read(self, start, limit, stop, topics)
  local out, size, only = {}, self.section_size, wanted(topics)
  limit, stop = limit or huge, stop or huge
  if limit <= 0 or stop < start then return out end
  -- the section that holds start, however the server numbers the ones it links
  local first = floor((start - 1) / size) * size + 1
  local section_id = ("%d,%d"):format(first, first + size - 1)
  while section_id do
    local section = self:section(section_id)
    local items = section.items
    for i = 1, #items do
      local n = items[i]
      if n.id > stop then return out end
      if n.id >= start and (not only or only[n.topic]) then
        out[#out + 1] = n
        if #out >= limit then return out end
      end
    end
    section_id = #items > 0 and section.next_id or nil
  end
  return out
end

--- Notifications in id order from `start` (inclusive), as `app.log:select` gives them.
-- @param start the first notification id (>= 1)
-- @param limit the most notifications to return
-- @param[opt] opts `stop` (last id, inclusive), `topics` (only these topics)
-- @return array of `{ id, originator_id, originator_version, topic, event }`
function RemoteLog:select(start, limit, opts)
  local stop, topics = select_args(start, limit, opts)
  return read(self, start, limit, stop, topics)
end

--- Notifications, as a recorder's `read_log` gives them.
-- @param[opt] q `from` (default 1), `stop`, `limit`, `topics`
function RemoteLog:read_log(q)
  q = q or {}
  return read(self, q.from or 1, q.limit, q.stop, q.topics)
end

--- The log as two arrays (ids, events), as a recorder's `read_events` gives them.
function RemoteLog:read_events(q)
  local ns = self:read_log(q)
  local ids, events = {}, {}
  for i = 1, #ns do ids[i], events[i] = ns[i].id, ns[i].event end
  return ids, events
end

--- Nothing to close (each request has its own connection).
function RemoteLog.close()
end

function RemoteLog:__tostring()
  return "remote_log(" .. tostring(self.url) .. ")"
end

return _M
