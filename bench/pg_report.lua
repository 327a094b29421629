--- bench/run --pg's table, from the lines bench/pg_run collected.
--
--   luajit bench/pg_report.lua RESULTS [title=...] [runs=K] [peer=NOTE]
--
-- RESULTS holds "RUN cairn KEY value=..." (bench/scenarios.lua, bench/projection.lua),
-- "RUN peer KEY value=..." (bench.py's postgres results), "RUN peercheck S6_Pn ok=1 rows=N"
-- and "peernote TEXT". Ratios are the medians of the per-run ratios (issue 13's targets).
local sort, concat, huge = table.sort, table.concat, math.huge

local path, opt = arg[1], {}
for i = 2, #arg do
  local k, v = arg[i]:match("^([%w_]+)=(.*)$")
  if k then opt[k] = v end
end
assert(path, "usage: pg_report.lua RESULTS [title=...] [runs=K] [peer=NOTE]")

-- runs[source][key][run] = record
local runs, notes = { cairn = {}, peer = {}, peercheck = {} }, {}
for line in io.lines(path) do
  if line:match("^peernote ") then
    notes[#notes + 1] = line:sub(10)
  else
    local run, source, key, rest = line:match("^(%d+) (%S+) (%S+) (.*)$")
    if run and runs[source] then
      local rec = {}
      for k, v in rest:gmatch("([%w_]+)=(%S*)") do rec[k] = tonumber(v) or v end
      runs[source][key] = runs[source][key] or {}
      local before = runs[source][key][tonumber(run)]
      -- a reference measured twice in a run (fsync: before the scenarios and after S6): the mean
      if before and before.value and rec.value then rec.value = (before.value + rec.value) / 2 end
      runs[source][key][tonumber(run)] = rec
    end
  end
end

local function median(t)
  if #t == 0 then return nil end
  local s = {}
  for i = 1, #t do s[i] = t[i] end
  sort(s)
  local m = #s
  return m % 2 == 1 and s[(m + 1) / 2] or (s[m / 2] + s[m / 2 + 1]) / 2
end

local function values(source, key)
  local out = {}
  for _, rec in pairs(runs[source][key] or {}) do out[#out + 1] = rec.value end
  return out
end

local function fmt(v, unit)
  if v == nil then return "—" end
  if unit == "ms" or v < 100 then return ("%.2f"):format(v) end
  local s = ("%.0f"):format(v)
  return (s:reverse():gsub("(%d%d%d)", "%1,"):reverse():gsub("^,", ""))
end

local function cell(t, unit)
  if #t == 0 then return "—" end
  local lo, hi = huge, -huge
  for _, v in ipairs(t) do lo, hi = math.min(lo, v), math.max(hi, v) end
  if #t == 1 then return fmt(t[1], unit) end
  return ("%s (%s–%s)"):format(fmt(median(t), unit), fmt(lo, unit), fmt(hi, unit))
end

-- per-run ratio a/b (for times: b/a, faster is more), their median
local function ratio(src_a, key_a, src_b, key_b, lower_better)
  local out = {}
  for run, rec in pairs(runs[src_a][key_a] or {}) do
    local other = (runs[src_b][key_b] or {})[run]
    if other and rec.value > 0 and other.value > 0 then
      out[#out + 1] = lower_better and other.value / rec.value or rec.value / other.value
    end
  end
  return median(out), out
end

local rows = {
  { "S1", "create: 1 event/aggregate, 1 save each", "saves/s", 5 },
  { "S1c", "S1 + cipher + compressor", "saves/s" },
  { "S2", "command: get + add_trick + save", "commands/s", 10 },
  { "S3", "get a 10,000-event aggregate", "ms", nil, true },
  { "S3snap", "the same from a snapshot", "ms", nil, true },
  { "S4", "read the log, pages of 1,000", "notifications/s" },
  { "S4d", "the same, decoded", "notifications/s", 30 },
  { "S5", "one save of 1,000 new aggregates", "events/s", 20 },
  { "P1", "projection catch-up (cairn only)", "notifications/s" },
  { "S6_P1", "S6: 1 process saving", "saves/s" },
  { "S6_P4", "S6: 4 processes saving at once", "saves/s" },
  { "S6_P8", "S6: 8 processes saving at once", "saves/s" },
}

print("# " .. (opt.title or "cairn on PostgreSQL"))
print(("\nmedians (min–max) of %s run(s); the Python library: %s\n"):format(opt.runs or "?", opt.peer or "?"))
print("| scenario | what | unit | cairn | Python library | cairn ÷ Python | target | |")
print("|---|---|---|---|---|---|---|---|")
local misses, judged = 0, 0
for _, row in ipairs(rows) do
  local key, what, unit, target, lower = row[1], row[2], row[3], row[4], row[5]
  local r = ratio("cairn", key, "peer", key, lower)
  local verdict = ""
  if target and r then
    judged = judged + 1
    verdict = r >= target and "ok" or ("MISS (%.0f%% of it)"):format(100 * r / target)
    if r < target then misses = misses + 1 end
  end
  print(("| %s | %s | %s | %s | %s | %s | %s | %s |"):format(key, what, unit == "ms" and "ms (lower is better)" or unit,
    cell(values("cairn", key), unit), cell(values("peer", key), unit),
    r and ("%.1f×%s"):format(r, lower and " faster" or "") or "—", target and ("≥ %d×"):format(target) or "",
    verdict))
end

-- S6's scaling: 8 processes over 1, per run, each side
local function scaling(source)
  local out = {}
  for run, rec in pairs(runs[source].S6_P8 or {}) do
    local one = (runs[source].S6_P1 or {})[run]
    if one and one.value > 0 then out[#out + 1] = rec.value / one.value end
  end
  return out
end
local cs, ps = scaling("cairn"), scaling("peer")
local c8 = median(cs)
local verdict = c8 and (c8 >= 3 and "ok" or ("MISS (%.0f%% of it)"):format(100 * c8 / 3)) or ""
if c8 then judged = judged + 1 end
if c8 and c8 < 3 then misses = misses + 1 end
print(("| S6 8÷1 | 8 processes' total ÷ 1 process's | ratio | %s | %s | | ≥ 3× (cairn) | %s |"):format(
  cs[1] and cell(cs) .. "×" or "—", ps[1] and cell(ps) .. "×" or "—", verdict))

-- references measured in each run, and a scenario over each (per-run ratios)
local function reference(key, scenario, label, what, ratio_label, ratio_what)
  local refs, of = {}, {}
  for run, rec in pairs(runs.cairn[key] or {}) do
    refs[#refs + 1] = rec.value
    local sc = (runs.cairn[scenario] or {})[run]
    if sc then of[#of + 1] = sc.value / rec.value end
  end
  print(("| %s | %s | per s | %s | | | | |"):format(label, what, cell(refs)))
  print(("| %s | %s | ratio | %s | | | | |"):format(ratio_label, ratio_what, of[1] and cell(of) or "—"))
end
-- the disk's ceiling for a save that waits for its own commit
reference("fsync", "S1", "fsync", "pg_test_fsync: one 8 kB fdatasync after another, this disk", "S1 ÷ fsync",
  "cairn's S1 over that ceiling (1.0: a save costs one fsync, nothing else)")
-- PostgreSQL's own ceilings: one event-sized row per commit, and S5's batch in one INSERT
reference("insert", "S1", "raw insert", "pgbench: one INSERT of an event-sized row per commit, 1 client, TCP",
  "S1 ÷ raw insert", "cairn's S1 over PostgreSQL's own one-row commit rate (1.0: a save costs that insert)")
reference("insert_batch", "S5", "raw batch",
  "pgbench: one INSERT of S5's batch of event-sized rows per commit (rows/s)",
  "S5 ÷ raw batch", "cairn's S5 over that (its events carry two indexes and the bytes from the client)")

-- the gap checks
local checks = {}
for _, p in ipairs({ 1, 4, 8 }) do
  local key, c, k = "S6_P" .. p, 0, 0
  for _, rec in pairs(runs.cairn[key] or {}) do
    c = c + 1
    if tostring(rec.detail):match("gaps=0,duplicates=0") then k = k + 1 end
  end
  local pc, pk = 0, 0
  for _, rec in pairs(runs.peercheck[key] or {}) do
    pc = pc + 1
    if rec.ok == 1 then pk = pk + 1 end
  end
  checks[#checks + 1] = ("P=%d: cairn %d/%d, Python %d/%d"):format(p, k, c, pk, pc)
end
print("\nS6 gap and duplicate check (the log is exactly 1..N, each save once), runs passed: " .. concat(checks, "; "))
for _, n in ipairs(notes) do print("peer note: " .. n) end
print(("\nissue 13's targets: %d judged (the ratios need the Python library's run), %d missed"):format(judged,
  misses))
