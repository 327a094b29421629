--- The store and file arguments of the command-line tools (API.md §7,
-- "Operating a store"): a tool gets its store from its argument or
-- CAIRN_STORE and never falls back to `memory:`; it opens a store it reads
-- without creating one; a key in the environment does not lock a user out
-- of a plain store; `-` is standard input or output.
-- @module cairn.cli_store
local errors = require "cairn.errors"
local recorder = require "cairn.recorder"
local cli = require "cairn.cli"

local os_getenv, pcall, type = os.getenv, pcall, type

local _M = { _VERSION = "0.1.0" }

--- Does s look like a store URI (a scheme and a colon) rather than a file or id?
function _M.looks_like_uri(s)
  return type(s) == "string" and s:match("^%a[%w+.%-]*:") ~= nil
end

--- A usage error unless uri is one the tools know: `memory:`, `lmdb:PATH`
-- or a PostgreSQL connection URI.
function _M.check_uri(uri)
  if uri == "memory:" or uri:match("^postgres") then return uri end
  local path = uri:match("^lmdb:(.*)$")
  if path then
    if path == "" then cli.usage_error("'lmdb:' is not a store URI: it needs a directory, lmdb:PATH") end
    return uri
  end
  cli.usage_error("'%s' is not a store URI (memory:, lmdb:PATH, postgresql://…)", uri)
end

--- The store a tool works on: the given URI, else CAIRN_STORE; a usage
-- error (exit 2) when there is neither.
function _M.uri(given)
  if given == nil then
    given = os_getenv("CAIRN_STORE")
    if given == nil or given == "" then
      cli.usage_error("no store given: name one (lmdb:PATH) or set CAIRN_STORE")
    end
  end
  return _M.check_uri(given)
end

--- Split positional arguments into the store URI and the rest: the first
-- argument when it looks like a URI (or there are more arguments than the
-- command takes besides the URI), otherwise CAIRN_STORE.
-- @param rest positional arguments
-- @param max_rest how many arguments may follow the URI
-- @param what those arguments, for the usage message ("AGGREGATE_ID")
-- @return uri, the arguments after it
function _M.split(rest, max_rest, what)
  local uri, others = nil, {}
  local from = 1
  -- a first argument that is no URI is the store only when it cannot be anything else
  if _M.looks_like_uri(rest[1]) or #rest > max_rest then
    uri, from = rest[1], 2
  end
  for i = from, #rest do others[#others + 1] = rest[i] end
  uri = _M.uri(uri)
  if #others > max_rest then
    if max_rest == 0 then
      cli.usage_error("unexpected argument '%s': the command takes one store URI", others[1])
    end
    cli.usage_error("unexpected argument '%s': the command takes a store URI and %s", others[max_rest + 1], what)
  end
  return uri, others
end

local function key_of_env()
  local key = os_getenv("CAIRN_CIPHER_KEY")
  if key == "" then return nil end
  return key
end

-- Is the open (keyless) store one whose events are readable without a key?
local function readable_without_key(store)
  if store:max_id() == 0 then return true end
  local ok, err = pcall(store.read_log, store, { limit = 1 })
  if ok then return true end
  if errors.is(err, "ConfigError") then return false end
  error(err, 0)
end

-- Open an existing store without its key (hashes and counts readable).
local function open_keyless(uri)
  local ok, store = pcall(recorder.open, uri, { must_exist = true, sync = "none", keyless = true })
  if ok then return store end
  if errors.is(store, "ConfigError") and store.message:match("^no store at ") then
    errors.raise("ConfigError", "%s (check the %s: the tools never create a store they read)", store.message,
      uri:match("^postgres") and "URI's schema" or "path")
  end
  error(store, 0)
end

--- Does the existing store at uri need its key to read its events?
function _M.needs_key(uri)
  local store = open_keyless(uri)
  local ok, plain = pcall(readable_without_key, store)
  store:close()
  if not ok then error(plain, 0) end
  return not plain
end

--- Open an existing store to read it, never creating one. An encrypted store
-- takes its key from CAIRN_CIPHER_KEY (without it, its counts and hashes can
-- be read, its events not); a plain one opens whether or not a key is set, so
-- that a key exported in the shell does not lock a user out of plain stores.
-- @param uri a checked store URI
function _M.open_existing(uri)
  local key = key_of_env()
  local store = open_keyless(uri)
  if not key or readable_without_key(store) then return store end
  store:close()
  return recorder.open(uri, { must_exist = true, sync = "none", cipher_key = key })
end

--- Open the existing store at uri (as open_existing), call fn(store), and
-- close the store whether fn returns or raises.
-- @return what fn returns
function _M.with_store(uri, fn)
  local store = _M.open_existing(uri)
  local ok, result = pcall(fn, store)
  store:close()
  if not ok then error(result, 0) end
  return result
end

--- Where a tool writes: FILE, or standard output for nil and `-`.
-- @return the file, and whether the caller must close it
function _M.output(file)
  if file == nil or file == "-" then return io.stdout, false end
  local f, err = io.open(file, "wb")
  if not f then error("cannot write " .. err, 0) end
  return f, true
end

--- Where a tool reads: FILE, or standard input for nil and `-`.
-- @return the file, whether the caller must close it, and its size in bytes (nil for stdin)
function _M.input(file)
  if file == nil or file == "-" then return io.stdin, false, nil end
  local f, err = io.open(file, "rb")
  if not f then error("cannot read " .. err, 0) end
  local size = f:seek("end")
  f:seek("set", 0)
  -- a directory opens on Linux and fails on the first read
  local probe, read_err = f:read(0)
  if probe == nil and read_err then
    f:close()
    error(("cannot read %s: %s"):format(file, read_err), 0)
  end
  return f, true, size
end

return _M
