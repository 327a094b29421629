--- `cairn sync`, `cairn follow` and `cairn project`: systems and projections
-- from the command line (API.md §5, §7).
-- @module cairn.cli_system
local core = require "cairn.core"
local errors = require "cairn.errors"
local cli = require "cairn.cli"
local cli_store = require "cairn.cli_store"
local config = require "cairn.config"
local follow = require "cairn.follow"
local progress = require "cairn.progress"
local projection = require "cairn.projection"
local recorder = require "cairn.recorder"
local runner = require "cairn.runner"
local cairn_uuid = require "cairn.uuid"

local io_stderr, io_stdout, tonumber, tostring, type = io.stderr, io.stdout, tonumber, tostring, type
local ipairs, pairs, pcall = ipairs, pairs, pcall
local getmetatable = getmetatable

local _M = { _VERSION = "0.1.0" }

local HELP = {
  sync = [[
usage: cairn sync SYSTEM_MODULE [--dry-run] [-v 0..3] [FOLLOWER...]

Lets the followers of a system (all, or those named) process what their
leaders recorded since their tracked positions, then exits. Each follower
succeeds or fails on its own: a failing one is reported and the others still
run. SYSTEM_MODULE (a module name or a .lua file) returns a cairn.system, a
SingleThreadedRunner (its env is used), or { system = ..., env = {...} };
stores come from the env and CAIRN_STORE (lmdb:DIR gives each application
lmdb:DIR/<AppName>); without a store it exits 2, never using memory:. The
leaders' stores must exist; a follower's store is made on its first sync.

  -n, --dry-run        process everything, then roll it back (the followers'
                       stores are copied, the copies processed and removed)
  -v, --verbosity N    0 errors only, 1 one line per follower (default),
                       2 also per leader, 3 also every notification

Exit status: 0 all followers synchronised, 1 a follower failed, 2 usage error.
]],
  follow = [[
usage: cairn follow SYSTEM_MODULE FOLLOWER [--idle-timeout S]

Runs one follower of a system in this process: it catches up with its
leaders, then processes new notifications as they are recorded (also by other
processes), until SIGINT or SIGTERM (or S seconds without anything new).
It stops between transactions, so nothing is half done.
Exit status: 0 stopped, 1 failure, 2 usage error.
]],
  status = [[
usage: cairn status SYSTEM_MODULE

Prints, for each follower of the system and each of its leaders, one line
(under a header): the follower, the leader, the follower's position (the last
notification of the leader it processed), the leader's newest notification
id, and the lag between them (what a `cairn sync` would process). Stores come
from the env and CAIRN_STORE as for `cairn sync`; nothing is created (a
follower without a store yet is at 0).
Exit status: 0 success, 1 failure, 2 usage error.
]],
  project = [[
usage: cairn project MODULE [--app URI] --view URI [--name APP] [--rebuild] [--follow] [--idle-timeout S]

Runs the projection that MODULE (a module name or a .lua file) returns, from
the notification log of the store --app (default: <APP>_CAIRN_STORE or
CAIRN_STORE; it must exist) into the view store --view (which may be the
same URI; made on the first run when its parent directory exists). APP is
the application's name the view tracks (default: the projection's
`application` option). Without --follow it catches up and exits; with it, it
keeps following until SIGINT or SIGTERM. --rebuild first empties the view
(its keys and tracking positions, in one transaction), so the whole log is
replayed into it (after a change to the projection's handlers).
Exit status: 0 success, 1 failure, 2 usage error.
]],
}

function _M.help(cmd)
  return HELP[cmd]
end

-- A module name, or a .lua file whose directory is searched first by require.
local function load_module(spec)
  if spec:match("%.lua$") or spec:find("/", 1, true) then
    local chunk, err = loadfile(spec)
    if not chunk then errors.raise("ConfigError", "cannot load %s: %s", spec, err) end
    local dir = spec:match("^(.*)/[^/]*$") or "."
    package.path = dir .. "/?.lua;" .. dir .. "/?/init.lua;" .. package.path
    return chunk()
  end
  return require(spec)
end

-- The system and env a SYSTEM_MODULE gives.
local function load_system(spec)
  local m = load_module(spec)
  if type(m) == "table" and m.nodes then return m, {} end
  if type(m) == "table" and type(m.system) == "table" and m.system.nodes then return m.system, m.env or {} end
  errors.raise("ConfigError", "%s returns no system (a cairn.system, a runner, or { system = ..., env = ... })", spec)
end

-- Split -v N / -vN / -n from the rest, for parse_options.
local function short_options(args)
  local out, i = {}, 1
  while i <= #args do
    local a = args[i]
    if a == "-v" then
      out[#out + 1] = "--verbosity"
      i = i + 1
      out[#out + 1] = args[i] or cli.usage_error("-v needs a level")
    elseif a:match("^%-v%d$") then
      out[#out + 1] = "--verbosity=" .. a:sub(3)
    elseif a == "-n" then
      out[#out + 1] = "--dry-run"
    else
      out[#out + 1] = a
    end
    i = i + 1
  end
  return out
end

-- An application's existing store, with its key when it is encrypted
-- (CAIRN_CIPHER_KEY, or <APP>_CAIRN_CIPHER_KEY).
local function open_existing(uri, app_config)
  return recorder.open(uri, { must_exist = true, sync = "none", cipher_key = app_config:get("CAIRN_CIPHER_KEY") })
end

-- The store an application of the system uses. The tools never fall back
-- to memory:, where a sync would "succeed" and keep nothing: without
-- CAIRN_STORE (or <APP>_CAIRN_STORE, or the module's env) it is a usage error.
local function store_uri(system, env, name)
  if not config.new(name, env):get("CAIRN_STORE") then
    cli.usage_error("no store for %s: set CAIRN_STORE=lmdb:DIR (each application is then lmdb:DIR/%s) or %s",
      name, name, name:upper() .. "_CAIRN_STORE")
  end
  local e = system:application_env(name, env)
  return cli_store.check_uri(config.new(name, e):get("CAIRN_STORE")), e
end

-- Open the stores of a follower's leaders, which must exist: a typo in a
-- path then fails before the follower's own store is created.
local function check_leaders(system, env, name)
  for _, leader in ipairs(system.follows[name]) do
    local uri, e = store_uri(system, env, leader)
    open_existing(uri, config.new(leader, e)):close()
  end
end

-- A progress bar on stderr when it is a terminal and the catch-up is long
-- (10,000 notifications or more from where it started); left on screen at the end.
local function progress_bar(label)
  local bar = progress.new(label)
  if not bar.on then return nil end
  local first
  return function(pos, max)
    first = first or pos
    if max - first < 10000 then return end
    bar:update(pos, max)
    if pos >= max then bar:finish(true) end
  end
end

local function message_of(err)
  return (tostring(err):gsub("\n.*", ""))
end

local function shell_quote(s)
  return "'" .. s:gsub("'", [['\'']]) .. "'"
end

-- A private directory (mode 0700, made by mkdtemp through mktemp -d) for a
-- dry run's copies, under $TMPDIR or /tmp.
local function private_tmpdir()
  local base = os.getenv("TMPDIR")
  if not base or base == "" then base = "/tmp" end
  local p = io.popen("mktemp -d " .. shell_quote(base .. "/cairn-sync.XXXXXX") .. " 2>/dev/null")
  local dir = p and p:read("*l")
  if p then p:close() end
  if not dir or dir == "" then
    errors.raise("StoreError", "cannot make a private temporary directory in %s for the dry run", base)
  end
  return dir
end

-- A new schema name for a dry run's copy of a PostgreSQL store (pg_copy.c: cairn_dry_…).
local function pg_copy_name()
  return "cairn_dry_" .. cairn_uuid.v4():gsub("-", ""):sub(1, 20)
end

-- The URI with its schema= parameter set to schema (added when it has none).
local function with_schema(uri, schema)
  local base, fragment = uri:match("^([^#]*)(.*)$")
  local replaced, n = base:gsub("([?&])schema=[^&]*", "%1schema=" .. schema)
  if n == 0 then replaced = base .. (base:find("?", 1, true) and "&" or "?") .. "schema=" .. schema end
  return replaced .. fragment
end

local function sync(args)
  local opts, rest = cli.parse_options(short_options(args), { ["dry-run"] = "flag", verbosity = "value" })
  local verbosity = tonumber(opts.verbosity or "1")
  if not verbosity or verbosity < 0 or verbosity > 3 or verbosity % 1 ~= 0 then
    cli.usage_error("the verbosity is 0, 1, 2 or 3")
  end
  if not rest[1] then cli.usage_error("a SYSTEM_MODULE is needed") end
  local system, env = load_system(rest[1])
  local selected = {}
  if #rest > 1 then
    local wanted = {}
    for i = 2, #rest do
      local name = rest[i]
      if not system.nodes[name] then cli.usage_error("the system has no application named %s", name) end
      if #system.follows[name] == 0 then cli.usage_error("%s follows nothing", name) end
      wanted[name] = true
    end
    for _, name in ipairs(system.followers) do if wanted[name] then selected[#selected + 1] = name end end
  else
    selected = system.followers
  end
  local is_selected = {}
  for _, name in ipairs(selected) do is_selected[name] = true end

  -- a dry run works on copies of the followers' stores: for LMDB in a private
  -- directory, for PostgreSQL in new schemas cairn_dry_… of the same database;
  -- removed at the end, also after SIGINT or SIGTERM (they only stop the run,
  -- between notifications); only SIGKILL leaves them behind
  local tmp, app_env = nil, function(name) return system:application_env(name, env) end
  local pg_copies = {} -- the URIs of the PostgreSQL copies, to drop
  local stop_requested
  if opts["dry-run"] then
    core.trap_signals()
    stop_requested = function() return core.signal_caught() ~= nil end
    local made, dir = pcall(private_tmpdir)
    if not made then core.restore_signals(); error(dir, 0) end
    tmp = dir
    app_env = function(name)
      local e = system:application_env(name, env)
      if not is_selected[name] then return e end
      local copy = {}
      for k, v in pairs(e) do copy[k] = v end
      local app_config = config.new(name, e)
      local uri = store_uri(system, env, name)
      -- a follower without a store yet starts from an empty copy
      local ok, original = pcall(open_existing, uri, app_config)
      if not ok and not (errors.is(original, "ConfigError") and original.message:match("^no store at ")) then
        error(original, 0)
      end
      local target, copy_uri
      if uri:match("^postgres") then
        target = pg_copy_name()
        copy_uri = with_schema(uri, target)
        pg_copies[#pg_copies + 1] = copy_uri -- dropped at the end, whatever happens from here
      else
        target = tmp .. "/" .. name
        copy_uri = "lmdb:" .. target
        os.execute("mkdir -p " .. shell_quote(target))
      end
      if ok then
        local copied, err = pcall(original.copy, original, target)
        original:close()
        if not copied then error(err, 0) end
      end
      copy[name:upper() .. "_CAIRN_STORE"] = copy_uri -- wins over CAIRN_STORE
      return copy
    end
  end

  -- followers open (and may create) their own stores; other leaders must exist
  local apps, failed = {}, 0
  local function open(name)
    if not apps[name] then
      local e = app_env(name)
      if is_selected[name] then
        apps[name] = system:get_app_cls(name).new(e)
      else
        local app_config = config.new(name, e)
        local uri = cli_store.check_uri(app_config:get("CAIRN_STORE"))
        apps[name] = { name = name, store = open_existing(uri, app_config) }
        apps[name].close = function(a) a.store:close() end
      end
    end
    return apps[name]
  end
  -- every store is named before anything is opened
  for _, name in ipairs(selected) do
    for _, leader in ipairs(system.follows[name]) do store_uri(system, env, leader) end
    store_uri(system, env, name)
  end
  local ok_all, err_all = pcall(function()
    for _, name in ipairs(selected) do
      if stop_requested and stop_requested() then break end
      local ok, err = pcall(function()
        -- leaders first: a leader that is not there fails before the follower's store is made
        for _, leader in ipairs(system.follows[name]) do open(leader) end
        local app = open(name)
        for _, leader in ipairs(system.follows[name]) do app:follow(leader, open(leader)) end
        local read, recorded = 0, 0
        for _, leader in ipairs(system.follows[name]) do
          local from = app.store:tracking_max(leader)
          local r, e = app:pull_and_process(leader, {
            on_progress = progress_bar(name .. " <- " .. leader),
            should_stop = stop_requested,
            trace = verbosity >= 3 and function(l, id, topic)
              io_stdout:write(("%s: %s #%d %s\n"):format(name, l, id, topic))
            end or nil,
          })
          if verbosity >= 2 then
            io_stdout:write(("%s: %s %d..%d, %d notifications, %d new events\n"):format(name, leader, from,
              from + r, r, e))
          end
          read, recorded = read + r, recorded + e
        end
        if verbosity >= 1 then
          io_stdout:write(("%s: synchronised (%d notifications processed, %d new events)%s\n"):format(name, read,
            recorded, tmp and ", rolled back" or ""))
        end
      end)
      if not ok then
        failed = failed + 1
        io_stderr:write(("cairn sync: %s failed: %s\n"):format(name, message_of(err)))
      end
    end
  end)
  for _, app in pairs(apps) do pcall(app.close, app) end
  for _, copy_uri in ipairs(pg_copies) do
    local dropped, err = pcall(core.drop_copy, copy_uri)
    if not dropped then
      io_stderr:write(("cairn sync: the dry run's copy %s is left (%s): drop it with DROP SCHEMA %s CASCADE\n")
        :format(copy_uri:match("schema=([%w_]+)"), message_of(err), copy_uri:match("schema=([%w_]+)")))
    end
  end
  if tmp then
    os.execute("rm -rf " .. shell_quote(tmp))
    local sig = core.signal_caught()
    core.restore_signals()
    if sig then
      io_stderr:write(("cairn sync: stopped by signal %d; the dry run's copies are removed\n"):format(sig))
      return 128 + sig
    end
  end
  if not ok_all then error(err_all, 0) end
  if failed > 0 and verbosity >= 1 then
    io_stderr:write(("cairn sync: %d of %d followers failed\n"):format(failed, #selected))
  end
  return failed > 0 and 1 or 0
end

local function idle_timeout(opts)
  if opts["idle-timeout"] == nil then return nil end
  local s = tonumber(opts["idle-timeout"])
  if not s or s < 0 then cli.usage_error("--idle-timeout takes seconds") end
  return s
end

local function follow_cmd(args)
  local opts, rest = cli.parse_options(args, { ["idle-timeout"] = "value" })
  if not rest[1] or not rest[2] or rest[3] then cli.usage_error("needs SYSTEM_MODULE and FOLLOWER") end
  local system, env = load_system(rest[1])
  local name = rest[2]
  if not system.nodes[name] then cli.usage_error("the system has no application named %s", name) end
  if #system.follows[name] == 0 then cli.usage_error("%s follows nothing", name) end
  local names = { name }
  for _, l in ipairs(system.follows[name]) do if l ~= name then names[#names + 1] = l end end
  check_leaders(system, env, name)
  store_uri(system, env, name)
  local apps = runner.make_apps(system, env, names)
  local app = apps[name]
  local stores = {}
  for _, l in ipairs(system.follows[name]) do
    app:follow(l, apps[l])
    stores[#stores + 1] = apps[l].store
  end
  io_stdout:write(("%s: following %s\n"):format(name, table.concat(system.follows[name], ", ")))
  io_stdout:flush()
  local read, recorded = 0, 0
  local pull_opts = { should_stop = function() return core.signal_caught() ~= nil end }
  local ok, why = pcall(follow.loop, stores, function()
    local r, e = app:pull_all(pull_opts)
    read, recorded = read + r, recorded + e
    return r
  end, function() return false end, { signals = true, idle_timeout = idle_timeout(opts),
    reconnect = follow.server_away(name) })
  for _, a in pairs(apps) do pcall(a.close, a) end
  if not ok then error(why, 0) end
  io_stdout:write(("%s: stopped (%s); %d notifications processed, %d new events\n"):format(name, why, read,
    recorded))
  return 0
end

-- The view store is made on the first run, once the application's store has
-- opened; its directory's parent must exist, so a typo'd path fails instead
-- of growing directories. A new view store is announced on stderr.
local function prepare_view(uri, app_config)
  local ok = pcall(function() open_existing(uri, app_config):close() end)
  if ok then return end
  local path = uri:match("^lmdb:(.*)$")
  if not path then return end
  local parent = path:match("^(.*)/[^/]+/*$") or "."
  local probe = io.open(parent .. "/.", "rb")
  if not probe then
    errors.raise("ConfigError", "cannot make the view store %s: the directory %s does not exist", uri, parent)
  end
  probe:close()
  io_stderr:write(("cairn project: making the view store %s\n"):format(uri))
end

local function project(args)
  local opts, rest = cli.parse_options(args, { app = "value", view = "value", name = "value", follow = "flag",
    ["idle-timeout"] = "value", rebuild = "flag" })
  if not rest[1] then cli.usage_error("no MODULE given (a projection's module name or .lua file)") end
  if rest[2] then cli.usage_error("unexpected argument '%s': project takes one MODULE", rest[2]) end
  if not opts.view then cli.usage_error("no --view URI given (the store the view is kept in)") end
  cli_store.check_uri(opts.view)
  if opts.app then cli_store.check_uri(opts.app) end
  local proj = load_module(rest[1])
  if getmetatable(proj) ~= getmetatable(projection.define("probe")) then
    errors.raise("ConfigError", "%s returns no projection (cairn.projection)", rest[1])
  end
  local name = opts.name or proj.application
  if not name then cli.usage_error("the projection names no application: give --name APP") end
  -- an encrypted application (and its view store) take their key from the environment
  local app_config = config.new(name)
  local app_uri = opts.app or app_config:get("CAIRN_STORE")
  if not app_uri then cli.usage_error("no --app URI given, and neither %s_CAIRN_STORE nor CAIRN_STORE is set",
    name:upper()) end
  local store = open_existing(cli_store.check_uri(app_uri), app_config)
  local ok_view, view_err = pcall(prepare_view, opts.view, app_config)
  if not ok_view then store:close(); error(view_err, 0) end
  local app = { name = name, store = store, env = app_config }
  local ok, r = pcall(projection.Runner.new, { application = app, projection = proj, view = opts.view })
  if not ok then store:close(); error(r, 0) end
  r.on_progress = progress_bar(proj.name)
  if opts.rebuild then
    -- keys and tracking go in one transaction: a view is never half emptied
    local cleared, err = pcall(r.view.store.view_clear, r.view.store, r.view.name)
    if not cleared then r:close(); store:close(); error(err, 0) end
  end
  local read = 0
  local ok2, why = pcall(function()
    if opts.follow then
      local n0 = r.view:max_tracking_id(name)
      -- a PostgreSQL server that goes away is waited for; the view's tracking says where to resume
      local result = r:follow { signals = true, idle_timeout = idle_timeout(opts) }
      read = r.view:max_tracking_id(name) - n0
      return result
    end
    read = r:run()
    return "caught up"
  end)
  local at = ok2 and r.view:max_tracking_id(name)
  r:close()
  store:close()
  if not ok2 then error(why, 0) end
  io_stdout:write(("%s: %s at notification %d of %s (%d read)\n"):format(proj.name,
    why == "caught up" and why or "stopped (" .. why .. ")", at, name, read))
  return 0
end

-- An application's store to read, or nil when it has none yet (a follower
-- that never ran), never creating one.
local function open_if_there(uri, app_config)
  local ok, store = pcall(open_existing, uri, app_config)
  if ok then return store end
  if errors.is(store, "ConfigError") and store.message:match("^no store at ") then return nil end
  error(store, 0)
end

local function status(args)
  local _, rest = cli.parse_options(args, {})
  if not rest[1] then cli.usage_error("no SYSTEM_MODULE given") end
  if rest[2] then cli.usage_error("unexpected argument '%s': the command takes one SYSTEM_MODULE", rest[2]) end
  local system, env = load_system(rest[1])
  local newest = {} -- leader name -> its newest notification id
  local function leader_max(leader)
    if newest[leader] == nil then
      local uri, e = store_uri(system, env, leader)
      local store = open_if_there(uri, config.new(leader, e))
      newest[leader] = store and store:max_id() or 0
      if store then store:close() end
    end
    return newest[leader]
  end
  local rows = {}
  for _, name in ipairs(system.followers) do
    local uri, e = store_uri(system, env, name)
    local store = open_if_there(uri, config.new(name, e))
    for _, leader in ipairs(system.follows[name]) do
      local position = store and store:tracking_max(leader) or 0
      local top = leader_max(leader)
      rows[#rows + 1] = ("%s\t%s\t%d\t%d\t%d%s\n"):format(name, leader, position, top, top - position,
        store and "" or " (no store yet)")
    end
    if store then store:close() end
  end
  io_stdout:write("follower\tleader\tposition\tleader's newest\tlag\n", table.concat(rows))
  return 0
end

local COMMANDS = { sync = sync, follow = follow_cmd, project = project, status = status }

function _M.main(cmd, args)
  return COMMANDS[cmd](args)
end

return _M
