--- bench/run's tables, from the lines its programs printed (bench/README.md).
--
--   luajit bench/report.lua RESULTS [key=value ...]
--
-- RESULTS holds lines "RUN SOURCE KEY value=... unit=... n=... detail=..."
-- (SOURCE: cairn, raw, proj, verify, peer: the Python library, KEY popo:S1 ...)
-- and bench/peer's "peernote TEXT", "peerinfo ...". key=value: title, runs,
-- quick, peer (a note when the peer did not run).
local huge, sort, concat = math.huge, table.sort, table.concat

local path = arg[1]
if not path then
  io.stderr:write("usage: report.lua RESULTS [title=...] [runs=K] [quick=1] [peer=NOTE]\n")
  os.exit(2)
end
local opt = {}
for i = 2, #arg do
  local k, v = arg[i]:match("^([%w_]+)=(.*)$")
  if k then opt[k] = v end
end

-- values[source][key] = { { run = r, value = v, fields... }, ... }
local values, peer_notes, peer_info = {}, {}, nil
for line in io.lines(path) do
  local word = line:match("^(%S+)")
  if word == "peernote" then
    peer_notes[#peer_notes + 1] = line:sub(10)
  elseif word == "peerinfo" then
    peer_info = line:sub(10)
  else
    local run, source, key, rest = line:match("^(%d+) (%S+) (%S+) (.*)$")
    if run then
      local rec = { run = tonumber(run) }
      for k, v in rest:gmatch("([%w_]+)=(%S*)") do rec[k] = tonumber(v) or v end
      values[source] = values[source] or {}
      values[source][key] = values[source][key] or {}
      local list = values[source][key]
      list[#list + 1] = rec
    end
  end
end

local function median(t)
  if not t or #t == 0 then return nil end
  local s = {}
  for i = 1, #t do s[i] = t[i] end
  sort(s)
  local m = #s
  if m % 2 == 1 then return s[(m + 1) / 2] end
  return (s[m / 2] + s[m / 2 + 1]) / 2
end

local function list(source, key)
  local out = {}
  for _, rec in ipairs((values[source] or {})[key] or {}) do out[#out + 1] = rec.value end
  return out
end

-- value per run; a reference measured twice in a run (put full, before and
-- after S1full) counts as the mean of the two
local function by_run(source, key)
  local sum, n = {}, {}
  for _, rec in ipairs((values[source] or {})[key] or {}) do
    sum[rec.run], n[rec.run] = (sum[rec.run] or 0) + rec.value, (n[rec.run] or 0) + 1
  end
  for run, v in pairs(sum) do sum[run] = v / n[run] end
  return sum
end

local function commas(x)
  local s = ("%.0f"):format(x)
  local neg = s:sub(1, 1) == "-"
  if neg then s = s:sub(2) end
  local r = ""
  while #s > 3 do r = "," .. s:sub(-3) .. r; s = s:sub(1, -4) end
  return (neg and "-" or "") .. s .. r
end

local function num(x, ms)
  if x == nil then return "-" end
  if ms then
    if x < 10 then return ("%.2f"):format(x) end
    return ("%.1f"):format(x)
  end
  if x >= 1e6 then return ("%.2fM"):format(x / 1e6) end
  return commas(x)
end

-- "median (min–max)" of a list
local function spread(t, ms)
  if not t or #t == 0 then return "-" end
  local lo, hi = huge, -huge
  for _, v in ipairs(t) do
    if v < lo then lo = v end
    if v > hi then hi = v end
  end
  if #t == 1 then return num(t[1], ms) end
  return ("%s (%s–%s)"):format(num(median(t), ms), num(lo, ms), num(hi, ms))
end

local function pad(s, w)
  s = tostring(s)
  local len = #s:gsub("[\128-\191]", "") -- count UTF-8 characters, not bytes
  if len >= w then return s end
  return s .. (" "):rep(w - len)
end

local function row(cells, widths)
  local out = {}
  for i, c in ipairs(cells) do out[i] = pad(c, widths[i]) end
  print((concat(out, "  "):gsub("%s+$", "")))
end

local function rule(widths)
  local n = 0
  for _, w in ipairs(widths) do n = n + w + 2 end
  print(("-"):rep(n - 2))
end

-- cairn / reference: the median of the per-run ratios (each run's reference
-- was measured right before or after its scenarios, under the same load).
-- With `events`, cairn's figure is a time per get (ms) of that many events,
-- turned into events/s; with `inverse`, both are times and the ratio is
-- reference / cairn.
local function run_ratio(source, key, ref_source, ref_key, events, inverse)
  local c, r = by_run(source, key), by_run(ref_source, ref_key)
  local ratios = {}
  for run, v in pairs(c) do
    local ref = r[run]
    if ref and v and v > 0 and ref > 0 then
      if inverse then ratios[#ratios + 1] = ref / v
      else ratios[#ratios + 1] = (events and events / (v / 1e3) or v) / ref end
    end
  end
  return median(ratios)
end
local peer_ran = values.peer ~= nil

local quick = opt.quick == "1"
local cairn_n = {}
for key, recs in pairs(values.cairn or {}) do cairn_n[key] = recs[1] and recs[1].n end

print(opt.title or "cairn benchmark")
print(("medians of %s run%s (min–max); cairn on lmdb sync=none unless a row says otherwise; ratios cairn/raw are")
  :format(opt.runs or "?", opt.runs == "1" and "" or "s"))
print("medians of per-run ratios (each run's reference and Python figures measured right beside its scenarios).")
print("The machine is shared with other work: compare ratios within one run, not absolute rates across runs.")
print()

-- scenario rows: key, label, unit, a time in ms?, raw reference key, Python key (popo:KEY)
local function n_of(key, fallback) return cairn_n[key] and commas(cairn_n[key]) or fallback end
local stream = cairn_n.S3 and commas(cairn_n.S3) or "10,000"
local rows = {
  { "S1", "S1 create, 1 save each (" .. n_of("S1", "?") .. ")", "saves/s", false, "put_none", "S1" },
  { "S1c", "S1c S1 + cipher + compressor", "saves/s", false, nil, "S1c" },
  { "S2", "S2 get + add_trick + save (" .. n_of("S2", "?") .. ")", "commands/s", false, "put_none", "S2" },
  { "S2c", "S2c S2 with the aggregate cache", "commands/s", false, "put_none", nil },
  { "S3", "S3 get a " .. stream .. "-event aggregate", "ms/get", true, "scan", "S3" },
  { "S3snap", "S3snap the same from a snapshot", "ms/get", true, nil, "S3snap" },
  { "S3snapd", "S3snapd S3snap, decoding every get", "ms/get", true, nil, "S3snap" },
  { "S4", "S4 log in pages of 1,000 (decoded)", "notifications/s", false, "scan", "S4" },
  { "S4d", "S4d S4 + every event's fields read", "notifications/s", false, "scan", "S4d" },
  { "S5", "S5 one save of " .. (cairn_n.S5 and commas(tonumber(values.cairn.S5[1].detail:match(
    "events_per_save=(%d+)"))) or "?") .. " aggregates", "events/s", false, "batch", "S5" },
  { "P1", "P1 projection catch-up (" .. (values.proj and values.proj.P1 and commas(values.proj.P1[1].n) or "?")
    .. ")", "notifications/s", false, "scan", nil, source = "proj" },
  { "S1full", "S1 with sync=full (" .. n_of("S1full", "?") .. ")", "saves/s", false, "put_full", nil },
}
-- the references (bench/lmdb_raw.c), by key: short name, what, unit
local raw_refs = {
  { "put_none", "put none", "one put per transaction, sync=none", "commits/s" },
  { "put_full", "put full", "one put per transaction, sync=full", "commits/s" },
  { "batch", "batch", "1,000 events per txn: log append + random 24-byte index key", "events/s" },
  { "scan", "scan", "cursor scan, header parsed + payload msgpack-decoded", "records/s" },
}
local raw_name = {}
for _, r in ipairs(raw_refs) do raw_name[r[1]] = r[2] end

local W = { 38, 15, 26, 12, 9, 26, 8 }
row({ "scenario", "unit", "cairn", "reference", "cairn/raw", "Python POPO", "cairn/Py" }, W)
rule(W)
local fig = {} -- figures for the target table
for _, r in ipairs(rows) do
  local key, label, unit, ms, raw_key, py_key = r[1], r[2], r[3], r[4], r[5], r[6]
  local source = r.source or "cairn"
  local c = list(source, key)
  local cm = median(c)
  local ref, ratio = "-", "-"
  if raw_key then
    ref = raw_name[raw_key]
    local events = ms and cairn_n[key] or nil
    local q = run_ratio(source, key, "raw", raw_key, events)
    if q then ratio = ("%.2f"):format(q); fig[key .. "/raw"] = q end
  end
  local py, pyr = "-", "-"
  if py_key then
    local p = list("peer", "popo:" .. py_key)
    if #p > 0 then
      py = spread(p, ms)
      local q = run_ratio(source, key, "peer", "popo:" .. py_key, nil, ms)
      if q then
        pyr = ("%.1f×"):format(q)
        fig[key .. "/py"] = q
      end
    elseif peer_ran then
      py = "skipped (see NOTE)"
    end
  end
  fig[key] = cm
  row({ label, unit, c[1] and spread(c, ms) or "FAILED", ref, ratio, py, pyr }, W)
end
rule(W)
print("S3's cairn/raw is in events/s (events / time per get); S3, S3snap cairn/Py are the Python time / cairn's.")
print("S4: cairn's log read always decodes, so its Python comparison is to the peer's S4d (S4 row: peer S4, raw")
print("bytes, for reference); the issue's S4 targets use cairn S4d against the peer's S4d.")
print()
print("raw LMDB references (bench/lmdb_raw.c, measured in each run; records shaped like cairn's events)")
local R = { 10, 72, 12, 26 }
for _, r in ipairs(raw_refs) do
  local l = list("raw", r[1])
  local rec = values.raw and values.raw[r[1]] and values.raw[r[1]][1]
  row({ r[2], ("%s (%s)"):format(r[3], rec and commas(rec.n) or "?"), r[4], spread(l) }, R)
end
fig["S4/py"] = fig["S4d/py"]
if not peer_ran then
  print("Python: " .. (opt.peer or "not run (bench/run --peer)"))
end
for _, n in ipairs(peer_notes) do print("Python NOTE: " .. n) end
if peer_info then print("Python: " .. peer_info .. ", in-memory (POPO) persistence") end

-- the targets of issue 12
print()
print("issue 12 targets (this run)")
local T = { 48, 10, 11, 24 }
row({ "figure", "now", "target", "verdict" }, T)
rule(T)
local function target(label, v, op, t, fmt)
  local shown, verdict = "-", "no figure"
  if v then
    shown = fmt(v)
    local ok = (op == ">=" and v >= t) or (op == "<=" and v <= t)
    if ok then verdict = "ok"
    elseif op == ">=" then verdict = ("MISS (%.0f%% of target)"):format(100 * v / t)
    else verdict = ("MISS (%.1f× over)"):format(v / t) end
  end
  row({ label, shown, op .. " " .. fmt(t), verdict }, T)
end
local function r2(x) return ("%.2f"):format(x) end
local function x1(x) return ("%.1f×"):format(x) end
local function msf(x) return ("%.2f ms"):format(x) end
-- label, figure, comparison, target, format (issue 12's "Targets" table)
local targets = {
  { "S1 / raw single-put commit rate (sync=none)", "S1/raw", ">=", 0.7, r2 },
  { "S2 / raw single-put commit rate", "S2/raw", ">=", 0.4, r2 },
  { "S3 events/s / raw scan+decode rate", "S3/raw", ">=", 0.5, r2 },
  { "S4d / raw scan+decode rate", "S4d/raw", ">=", 0.4, r2 },
  { "P1 / raw scan+decode rate", "P1/raw", ">=", 0.25, r2 },
  { "S5 / raw 1,000-event batch rate", "S5/raw", ">=", 0.8, r2 },
  { "S3snap (the kept decoded state)", "S3snap", "<=", 0.3, msf },
  { "S3snapd (decoding every get, as the peer)", "S3snapd", "<=", 0.3, msf },
  { "S1 sync=full / raw durable commit rate", "S1full/raw", ">=", 0.8, r2 },
  { "cairn / Python POPO: S1", "S1/py", ">=", 6, x1 },
  { "cairn / Python POPO: S2", "S2/py", ">=", 25, x1 },
  { "cairn / Python POPO: S3", "S3/py", ">=", 50, x1 },
  { "cairn / Python POPO: S3snap (kept state)", "S3snap/py", ">=", 5, x1 },
  { "cairn / Python POPO: S3snapd (decoding)", "S3snapd/py", ">=", 5, x1 },
  { "cairn / Python POPO: S4 (cairn S4d / peer S4d)", "S4/py", ">=", 20, x1 },
  { "cairn / Python POPO: S5", "S5/py", ">=", 10, x1 },
}
for _, t in ipairs(targets) do target(t[1], fig[t[2]], t[3], t[4], t[5]) end
rule(T)
-- issue 16's: S2 with the aggregate cache against S2 without it, the median of per-run ratios
local cached_ratio = run_ratio("cairn", "S2c", "cairn", "S2")
target("S2 with the aggregate cache / S2 (issue 16)", cached_ratio, ">=", 3, x1)
rule(T)
if quick then
  print("--quick: the peer's --quick counts (S1 2,000, S3 1,000 events, S5 2 x 100, P1 100,000), one run:")
  print("a smoke run; the verdicts mean nothing at these sizes.")
end

-- extras: the cost of data at rest, cairn verify, P2/P3
local extras = {}
local s1, s1c = fig.S1, fig.S1c
if s1 and s1c then
  extras[#extras + 1] = { "S1c / S1 (cipher + compressor vs plain)", r2(s1c / s1), ">= 0.75 " ..
    (s1c / s1 >= 0.75 and "ok" or "MISS") }
end
for _, rec in ipairs((values.verify or {}).V or {}) do
  local what = rec.detail == "plain" and "plain store" or ("sealed store, " .. rec.detail:gsub("^sealed,", ""))
  extras[#extras + 1] = { ("cairn verify, %s (%s records)"):format(what, commas(rec.n)),
    commas(rec.value) .. " records/s", rec.detail == "plain" and (rec.value >= 1e6 and ">= 1,000,000 ok"
    or ">= 1,000,000 MISS") or "" }
end
local proj = values.proj or {}
for _, key in ipairs({ "P2", "P2poll", "P3", "P3up" }) do
  for _, rec in ipairs(proj[key] or {}) do
    local label = ({
      P2 = "P2 follower latency across processes", P2poll = "P2poll the same, polling (no wake file)",
      P3 = "P3 leader save + process application", P3up = "P3up process application catching up",
    })[key]
    local shown = rec.unit == "ms_median" and ("%.3f ms median (%s)"):format(rec.value,
      (rec.detail or ""):gsub(",", ", ")) or (commas(rec.value) .. " " .. rec.unit)
    extras[#extras + 1] = { ("%s (%s)"):format(label, commas(rec.n)), shown,
      key == "P2" and (rec.value <= 1 and "<= 1 ms ok" or "<= 1 ms MISS") or "" }
  end
end
if #extras > 0 then
  print()
  print("extras (one run each, except S1c)")
  local E = { 58, 62, 18 }
  for _, e in ipairs(extras) do row(e, E) end
end
