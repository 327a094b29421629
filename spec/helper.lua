--- Shared helpers for the specs: temporary directories, both store engines,
-- and child processes that can `require "cairn"`.
local _M = {}

local function shell_quote(s)
  return "'" .. tostring(s):gsub("'", [['\'']]) .. "'"
end
_M.shell_quote = shell_quote

local function read_all(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("*a")
  f:close()
  return s
end
_M.read_file = read_all

function _M.write_file(path, data)
  local f = assert(io.open(path, "wb"))
  f:write(data)
  f:close()
end

-- The repository root, as an absolute path (this file lives in ROOT/spec/).
_M.root = (function()
  local src = debug.getinfo(1, "S").source:sub(2)
  local dir = src:match("^(.*)/spec/[^/]*$") or "."
  if dir:sub(1, 1) ~= "/" then
    local p = io.popen("pwd")
    local cwd = p:read("*l")
    p:close()
    dir = dir == "." and cwd or cwd .. "/" .. dir
  end
  return dir
end)()

_M.cairn_bin = os.getenv("CAIRN_BIN") or _M.root .. "/bin/cairn"

--- The dog school example's directory, and its modules (training_school,
-- counts, counters, system) as the specs and the CLI children load them.
_M.SCHOOL = _M.root .. "/examples/training_school"
function _M.school(module)
  if not package.path:find(_M.SCHOOL, 1, true) then package.path = _M.SCHOOL .. "/?.lua;" .. package.path end
  return require(module)
end

-- `luajit -e '<paths>'`: append a script path (or `-e CODE`) and arguments.
_M.luajit_cmd = (function()
  local r = _M.root
  local setup = ("package.path=%q..package.path; package.cpath=%q..package.cpath"):format(
    r .. "/lua/?.lua;" .. r .. "/lua/?/init.lua;" .. r .. "/stdlib/?.lua;" .. r .. "/stdlib/?/init.lua;",
    r .. "/lib/?.so;")
  return (os.getenv("LUAJIT") or "luajit") .. " -e " .. shell_quote(setup)
end)()

--- A new, empty temporary directory.
function _M.tmpdir()
  local path = os.tmpname()
  os.remove(path)
  os.execute("mkdir -p " .. shell_quote(path))
  local probe = io.open(path .. "/.probe", "w")
  assert(probe, "could not create temporary directory " .. path)
  probe:close()
  os.remove(path .. "/.probe")
  return path
end

--- The C test program, which also damages stores on purpose (--corrupt, --swap, --delete).
_M.tests_bin = os.getenv("CAIRN_C_TESTS") or _M.root .. "/build/tests/cairn_c_tests"

--- Flip one bit of the byte at `offset` (default 0) after every occurrence of
-- `needle` in a file (LMDB may hold old copies of a page too).
-- @return how many places were changed
function _M.flip_in_file(path, needle, offset)
  local data = assert(read_all(path))
  local parts, count, from = {}, 0, 1
  while true do
    local at = data:find(needle, from, true)
    if not at then break end
    local pos = at + (offset or 0)
    parts[#parts + 1] = data:sub(from, pos - 1)
    parts[#parts + 1] = string.char(bit.bxor(data:byte(pos), 1))
    from = pos + 1
    count = count + 1
  end
  parts[#parts + 1] = data:sub(from)
  _M.write_file(path, table.concat(parts))
  return count
end

--- Hex to bytes.
function _M.unhex(hex)
  return (hex:gsub("..", function(h) return string.char(tonumber(h, 16)) end))
end

--- The store engines the specs can run against. Behaviour every engine shares is specified
-- once and runs on the engine under test: CAIRN_TEST_ENGINE (default lmdb). Specs about one
-- engine's files (data.mdb damage, a full disk, map growth, lock files) name that engine.
-- An engine gives a fresh store for one test: fresh(dir, name) returns the URI of a store no
-- one has written yet (a test's stores are told apart by name; dir is the test's temporary
-- directory), remove(uri), when present, deletes what fresh made outside dir; stored(uri)
-- returns every byte the engine keeps for the store, for specs that look for plaintext.
-- PostgreSQL: the test server is CAIRN_TEST_PG (tools/pg run sets it); each fresh store is
-- a schema of its own, named at random, on that server.
local function pg_server()
  return assert(os.getenv("CAIRN_TEST_PG"),
    "CAIRN_TEST_ENGINE=postgresql needs CAIRN_TEST_PG (run the specs through tools/pg run)")
end

local function random_hex(bytes)
  local f = assert(io.open("/dev/urandom", "rb"))
  local raw = f:read(bytes)
  f:close()
  return (raw:gsub(".", function(c) return ("%02x"):format(c:byte()) end))
end

-- Run SQL on the test server with psql; its output, without the trailing newline.
local function psql(sql)
  local uri = pg_server()
  local host, port = uri:match("host=([^&]+)"), uri:match("port=(%d+)")
  local p = assert(io.popen(("psql -X -q -At -h %s -p %s -U postgres -d postgres -c %s 2>&1"):format(
    shell_quote(host), port, shell_quote(sql))))
  local out = p:read("*a")
  p:close()
  return (out:gsub("\n$", ""))
end
--- Run SQL on the PostgreSQL test server (psql as the superuser); its output.
_M.pg_sql = psql

local engines = {
  lmdb = {
    fresh = function(dir, name) return "lmdb:" .. dir .. "/" .. name end,
    stored = function(uri) return assert(read_all(uri:match("^lmdb:(.*)$") .. "/data.mdb"), "no store at " .. uri) end,
  },
  postgresql = {
    fresh = function() return pg_server() .. "&schema=t" .. random_hex(8) end,
    remove = function(uri)
      -- a system's applications live in schemas named after the base's (cairn.system)
      local schema = uri:match("schema=([%w_]+)")
      psql(("DO $$DECLARE s text; BEGIN FOR s IN SELECT nspname FROM pg_namespace WHERE nspname = '%s' "
        .. "OR nspname LIKE '%s\\_%%' LOOP EXECUTE format('DROP SCHEMA %%I CASCADE', s); END LOOP; END $$"):format(
        schema, schema))
    end,
    stored = function(uri)
      local schema = assert(uri:match("schema=([%w_]+)"), "no schema in " .. uri)
      local hex = psql(("SELECT encode(string_agg(b, ''::bytea), 'hex') FROM ("
        .. "SELECT topic || record AS b FROM %s.events UNION ALL SELECT record FROM %s.snapshots "
        .. "UNION ALL SELECT key FROM %s.keys UNION ALL SELECT name || key || value FROM %s.views "
        .. "UNION ALL SELECT app FROM %s.tracking UNION ALL SELECT value FROM %s.meta) t"):format(
        schema, schema, schema, schema, schema, schema))
      return (hex:gsub("%s", ""):gsub("..", function(h) return string.char(tonumber(h, 16)) end))
    end,
  },
}

--- The engine under test.
_M.engine = os.getenv("CAIRN_TEST_ENGINE") or "lmdb"
if not engines[_M.engine] then
  local names = {}
  for name in pairs(engines) do names[#names + 1] = name end
  table.sort(names)
  error(("CAIRN_TEST_ENGINE=%s: unknown engine (expected %s)"):format(_M.engine, table.concat(names, " or ")), 0)
end

local made = {} -- dir -> engine .. ":" .. name -> URI, for store_uri and rmrf

--- A fresh store URI for one test, on the engine under test (or `engine`): nothing is
-- recorded there before the test; the same dir and name give the same store. Also a
-- system's store: the system gives each application its own. `helper.rmrf(dir)` removes it.
-- @param dir the test's temporary directory (helper.tmpdir())
-- @param[opt] name tells a test's stores apart (default "store")
-- @param[opt] engine another engine than the one under test
function _M.store_uri(dir, name, engine)
  engine, name = engine or _M.engine, name or "store"
  assert(engines[engine], "unknown engine " .. tostring(engine))
  made[dir] = made[dir] or {}
  local key = engine .. ":" .. name
  made[dir][key] = made[dir][key] or engines[engine].fresh(dir, name)
  return made[dir][key]
end

--- The store a system whose store is `base` (a store_uri) gives its application `name`,
-- by the system's own rule (cairn.system: application_env).
function _M.member_uri(base, name)
  local cairn = require "cairn"
  return cairn.system({ pipes = { { cairn.application(name) } } }):application_env(name, { store = base }).CAIRN_STORE
end

--- Every byte the engine keeps for the store at uri (made by store_uri), to show what is
-- and is not stored in plain text.
function _M.stored_bytes(uri)
  local engine = uri:match("^(%a+):")
  return assert(engines[engine], "not a store of the specs' engines: " .. uri).stored(uri)
end

--- Remove a file or directory tree (only under the temporary directory), and the stores
-- store_uri made for it.
function _M.rmrf(path)
  if not path then return end
  for key, uri in pairs(made[path] or {}) do
    local remove = engines[key:match("^[^:]*")].remove
    if remove then remove(uri) end
  end
  made[path] = nil
  if path:match("^/tmp/") then os.execute("rm -rf " .. shell_quote(path)) end
end

--- Run a shell command; return its exit code, stdout and stderr.
function _M.run(cmd)
  local dir = _M.tmpdir()
  local out, err, rc = dir .. "/out", dir .. "/err", dir .. "/rc"
  os.execute(("( %s ) >%s 2>%s; echo $? >%s"):format(cmd, shell_quote(out), shell_quote(err), shell_quote(rc)))
  local code = tonumber(read_all(rc) or "")
  local stdout, stderr = read_all(out) or "", read_all(err) or ""
  _M.rmrf(dir)
  return code, stdout, stderr
end

--- The non-empty lines of text, in order.
function _M.lines(text)
  local out = {}
  for line in text:gmatch("[^\n]+") do out[#out + 1] = line end
  return out
end

--- Run a Lua script in n `cairn run` processes at once: each gets the arguments
-- dir, uri and its number (1..n) and should wait for the file dir/go before it
-- starts, so that they race. Returns the shell's exit code once all have
-- ended, and what they wrote to stderr.
function _M.race_processes(script, dir, uri, n)
  local child = dir .. "/child.lua"
  _M.write_file(child, script)
  local cmd = {}
  for i = 1, n do
    cmd[#cmd + 1] = ("%s run %s %s %s %d &"):format(shell_quote(_M.cairn_bin), shell_quote(child), shell_quote(dir),
      shell_quote(uri), i)
  end
  local code, _, err = _M.run(table.concat(cmd, " ") .. " sleep 0.3; touch " .. shell_quote(dir .. "/go") .. "; wait")
  return code, err
end

--- Assert that err is a cairn error of this kind (naming what it was if not); returns err.
function _M.assert_kind(kind, err)
  -- this module is required, not run by busted: luassert is not its global assert
  require("luassert").is_true(require("cairn.errors").is(err, kind),
    ("expected %s, got %s"):format(kind, tostring(err)))
  return err
end

--- pcall fn and return the error it raised (failing the test if it did not raise).
function _M.error_of(fn, ...)
  local ok, err = pcall(fn, ...)
  assert(not ok, "expected an error, but the call succeeded")
  return err
end

--- Assert that fn() raises a cairn error of this kind (API.md §6) whose message contains
-- `text` (plain text, when given): a crash such as a nil index cannot pass for it.
-- Plain Lua errors (a caller's bad argument) are checked by their exact message instead,
-- with `assert.has_error(fn, "message")`.
-- @return the error
function _M.assert_error_kind(kind, fn, text)
  local err = _M.assert_kind(kind, _M.error_of(fn))
  if text then
    require("luassert").is_truthy(err.message:find(text, 1, true),
      ("expected the %s's message to contain %q, got %q"):format(kind, text, err.message))
  end
  return err
end

--- Run body(ctx) once per engine, inside describe("(memory:)") and describe("(lmdb:)") (or
-- the engine under test's name), or for the engines listed.
-- Before each test ctx.dir is a fresh temporary directory and ctx.uri a fresh store URI;
-- ctx.store(name) another one (memory: is made anew by each open);
-- ctx.open(App [, env]) opens an application on ctx.uri (sync = "none"), closed after the test.
function _M.each_store(body, list)
  -- busted's describe/before_each live in the calling spec's environment
  local spec_env = getfenv(2)
  local describe, before_each, after_each = spec_env.describe, spec_env.before_each, spec_env.after_each
  for _, engine in ipairs(list or { "memory", _M.engine }) do
    describe("(" .. engine .. ":)", function()
      local ctx = { engine = engine }
      local opened
      function ctx.store(name)
        return engine == "memory" and "memory:" or _M.store_uri(ctx.dir, name, engine)
      end
      before_each(function()
        opened = {}
        ctx.dir = _M.tmpdir()
        ctx.uri = ctx.store("store")
      end)
      after_each(function()
        for i = #opened, 1, -1 do pcall(opened[i].close, opened[i]) end
        _M.rmrf(ctx.dir)
      end)
      --- Open an application of class App on this test's store.
      function ctx.open(App, env)
        local e = { store = ctx.uri, sync = "none" }
        for k, v in pairs(env or {}) do e[k] = v end
        local app = App.new(e)
        opened[#opened + 1] = app
        return app
      end
      body(ctx)
    end)
  end
end

return _M
