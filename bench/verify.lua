--- cairn verify throughput: records checked per second.
--
--   bin/cairn run bench/verify.lua [N] [--sealed]
--
-- Fills a temporary store (sync=none) with N events (default 1,000,000) over
-- N/10 aggregates, then times a whole-store check: without the key (hashes,
-- log and index), and for --sealed stores also with it (every seal opened).
-- Prints one line per check: V value=... unit=records/s n=... wall_ms=...
local core = require "cairn.core"
local recorder = require "cairn.recorder"

local now_us, floor = core.now_us, math.floor

local n, sealed = 1000000, false
for _, a in ipairs(arg or {}) do
  if a == "--sealed" then sealed = true
  elseif tonumber(a) then n = floor(tonumber(a))
  else io.stderr:write("usage: verify.lua [N] [--sealed]\n"); os.exit(2) end
end

local p = io.popen("mktemp -d")
local dir = p:read("*l")
p:close()
local uri = "lmdb:" .. dir
local key = sealed and core.keygen() or nil
local store = recorder.open(uri, { sync = "none", cipher_key = key, compressor = sealed and "zstd" or nil })

-- 10 events per aggregate, 1,000 events per save
local payload = core.encode({ name = "Fido", trick = "roll over", level = 3 })
local per_agg, batch_events = 10, 1000
local ts = now_us()
local written = 0
while written < n do
  local batch, k = {}, 0
  local this = math.min(batch_events, n - written)
  for a = 1, this / per_agg do
    local id = core.uuid4()
    for v = 1, per_agg do
      k = recorder.add(batch, k, id, v, ts, v == 1 and "Dog.Registered" or "Dog.TrickAdded", payload, 1)
    end
    if a < 0 then break end
  end
  store:append(batch)
  written = written + this
end
store:close()

local function timed(label, open_key)
  local s = recorder.open(uri, { sync = "none", keyless = true, cipher_key = open_key })
  local t0, c0 = now_us(), os.clock()
  local report = s:verify()
  local wall, cpu = (now_us() - t0) / 1000, (os.clock() - c0) * 1000
  s:close()
  assert(report.problems == 0, report.first)
  print(("V value=%.0f unit=records/s n=%d wall_ms=%.1f cpu_ms=%.1f detail=%s"):format(
    report.records / (wall / 1000), report.records, wall, cpu, label))
end

timed(sealed and "sealed,without-key" or "plain", nil)
if sealed then timed("sealed,with-key", key) end
os.execute("rm -rf '" .. dir .. "'")
