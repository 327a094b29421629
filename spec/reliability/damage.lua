--- The damage test: random damage to a store's data.mdb (a zeroed page,
-- flipped bits, random bytes, a zeroed page header, a truncated file), then
-- every read-only store tool on it. LMDB does not checksum its pages: each
-- tool must end with exit 0 or 1 (an error saying "damaged", "corrupt" or
-- what verify found) -- never a signal (SIGSEGV, SIGBUS, an LMDB assertion's
-- SIGABRT), never a hang.
--
--   cairn run spec/reliability/damage.lua [ROUNDS [SEED]]
-- As a module: require("reliability.damage").run { rounds = n, ... } -> figures
local spec_dir = debug.getinfo(1, "S").source:match("^@(.*)/reliability/[^/]*$") or "spec"
package.path = spec_dir .. "/?.lua;" .. package.path
local proc = require "reliability.proc"

local _M = {}

local PAGE = 4096
local TIMEOUT_S = 60

-- A store of `streams` aggregates with a few events each (several B-tree
-- levels in every database); returns one aggregate id for `cairn events`.
local function make_store(uri, streams)
  local model = require "reliability.model"
  local app = model.App.new { store = uri }
  local id
  for s = 1, streams do
    local item = model.Item("w", s, 3)
    for _ = 1, 2 do item:touch("w", s, 3) end
    app:save(item)
    id = id or item.id
  end
  app:close()
  return tostring(id)
end

local function read_file(path)
  local f = assert(io.open(path, "rb"))
  local data = f:read("*a")
  f:close()
  return data
end

local function write_file(path, data)
  local f = assert(io.open(path, "wb"))
  f:write(data)
  f:close()
end

-- The kinds of damage, each f(bytes, page) -> damaged bytes, description.
local function splice(bytes, at, with) return bytes:sub(1, at) .. with .. bytes:sub(at + #with + 1) end
local function random_bytes(n)
  local t = {}
  for i = 1, n do t[i] = string.char(math.random(0, 255)) end
  return table.concat(t)
end
local DAMAGES = {
  function(bytes, page) return splice(bytes, page * PAGE, ("\0"):rep(PAGE)), "page " .. page .. " zeroed" end,
  function(bytes, page)
    for _ = 1, math.random(1, 8) do
      local at = page * PAGE + math.random(0, PAGE - 1)
      local b = bytes:byte(at + 1)
      bytes = splice(bytes, at, string.char(bit.bxor(b, bit.lshift(1, math.random(0, 7)))))
    end
    return bytes, "bits flipped in page " .. page
  end,
  function(bytes, page) return splice(bytes, page * PAGE, random_bytes(PAGE)), "page " .. page .. " random" end,
  function(bytes, page)
    return splice(bytes, page * PAGE, random_bytes(16)), "header of page " .. page .. " random"
  end,
  function(bytes, page) return bytes:sub(1, page * PAGE), "truncated at page " .. page end,
}

--- Run the damage test. opts: rounds (20), seed, streams (400), dir (kept if
-- given), say (progress printer). Returns the figures; figures.messages
-- explains violations.
function _M.run(opts)
  opts = opts or {}
  local rounds, seed = opts.rounds or 20, opts.seed or os.time()
  local say = opts.say or function() end
  math.randomseed(seed)
  local dir = opts.dir or proc.tmpdir()
  local base = dir .. "/base"
  local id = make_store("lmdb:" .. base, opts.streams or 400)
  local clean = read_file(base .. "/data.mdb")
  local pages = #clean / PAGE
  local store = dir .. "/damaged"
  local uri = "lmdb:" .. store
  local tools = {
    { "verify", uri }, { "stat", uri }, { "log", uri, "--limit", "100000" }, { "export", uri },
    { "events", uri, id },
  }
  local figures = { seed = seed, rounds = rounds, runs = 0, errors = 0, signals = 0, hangs = 0, violations = 0,
                    messages = {} }
  local started = proc.now()
  local function violation(msg)
    figures.violations = figures.violations + 1
    figures.messages[#figures.messages + 1] = msg
  end
  for round = 1, rounds do
    local kind = math.random(#DAMAGES)
    local bytes, what = DAMAGES[kind](clean, math.random(2, pages - 1)) -- pages 0 and 1: the meta pages
    os.execute("rm -rf " .. proc.quote(store) .. " && mkdir " .. proc.quote(store))
    write_file(store .. "/data.mdb", bytes)
    for _, t in ipairs(tools) do
      local args = {}
      for i, a in ipairs(t) do args[i] = proc.quote(a) end
      local err = dir .. "/err"
      local pid = proc.spawn(("%s %s >/dev/null 2>%s"):format(proc.quote(proc.cairn_bin), table.concat(args, " "),
        proc.quote(err)))
      local how, code = proc.wait_for(pid, TIMEOUT_S)
      figures.runs = figures.runs + 1
      local line = (read_file(err):match("[^\n]*") or "")
      local label = ("round %d (%s): cairn %s"):format(round, what, t[1])
      if how == "timeout" then
        figures.hangs = figures.hangs + 1
        violation(label .. " did not end in " .. TIMEOUT_S .. " s")
      elseif how == "signal" then
        figures.signals = figures.signals + 1
        violation(("%s died of signal %d: %s"):format(label, code, line))
      elseif code ~= 0 and code ~= 1 then
        violation(("%s exited %d: %s"):format(label, code, line))
      elseif code == 1 then
        figures.errors = figures.errors + 1
        -- verify names what it found on stdout; the others say why on stderr, in one line
        if t[1] ~= "verify" and line == "" then violation(label .. " failed without a message") end
      end
    end
    say(("round %d: %s, %d violations"):format(round, what, figures.violations))
  end
  if not opts.dir then proc.rmrf(dir) end
  figures.seconds = proc.now() - started
  return figures
end

if arg and arg[0] and arg[0]:match("damage%.lua$") then
  local figures = _M.run {
    rounds = tonumber(arg[1]), seed = tonumber(arg[2]),
    say = os.getenv("CAIRN_RELIABILITY_VERBOSE") and function(s) io.stderr:write(s, "\n") end,
  }
  for _, k in ipairs { "seed", "rounds", "runs", "errors", "signals", "hangs", "violations", "seconds" } do
    io.stdout:write(("%s: %s\n"):format(k, tostring(figures[k])))
  end
  for _, m in ipairs(figures.messages) do io.stderr:write("violation: ", m, "\n") end
  os.exit(figures.violations == 0 and 0 or 1)
end

return _M
