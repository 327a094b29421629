--- What the reliability drivers check on a store, incrementally: read what
-- was recorded since the last check and compare it with what the writers
-- acknowledged. Each check adds a message to `violations`; later checks
-- (`cairn verify`, projections resuming) go in `_M.store_checks`.
local model = require "reliability.model"
local proc = require "reliability.proc"

local _M = {}

local PAGE = 5000
local MAX_MESSAGES = 20

--- A fresh checking state for the store at uri.
function _M.new(uri)
  return {
    uri = uri, checked = 0, batches = {}, versions = {}, counted = {}, touched = {},
    events = 0, acks = 0, violations = 0, messages = {},
  }
end

function _M.violation(st, fmt, ...)
  st.violations = st.violations + 1
  if #st.messages < MAX_MESSAGES then st.messages[#st.messages + 1] = fmt:format(...) end
end
local violation = _M.violation

-- Read the log from where the last check stopped: ids without gaps, each
-- stream's versions consecutive, each save's events adjacent.
local function read_new(st, app)
  local expected = st.checked + 1
  while true do
    local page = app.log:select(expected, PAGE)
    if #page == 0 then break end
    for _, n in ipairs(page) do
      if n.id ~= expected then
        violation(st, "notification ids jump from %d to %d", expected - 1, n.id)
      end
      expected = n.id + 1
      local last = st.versions[n.originator_id] or 0
      if n.originator_version ~= last + 1 then
        violation(st, "aggregate %s: version %d follows %d (notification %d)", n.originator_id,
          n.originator_version, last, n.id)
      end
      st.versions[n.originator_id] = n.originator_version
      st.touched[n.originator_id] = true
      local e = n.event
      if e.writer then
        local key = e.writer .. "/" .. e.batch
        local b = st.batches[key]
        if not b then
          st.batches[key] = { first = n.id, count = 1, n = e.n }
        elseif n.id ~= b.first + b.count then
          violation(st, "save %s is not contiguous: notification %d after %d..%d", key, n.id, b.first,
            b.first + b.count - 1)
        else
          b.count = b.count + 1
        end
        if n.topic == "RelTally.Counted" then st.counted[n.originator_id] = (st.counted[n.originator_id] or 0) + 1 end
      end
      st.events = st.events + 1
    end
  end
  st.checked = expected - 1
end

--- Check everything recorded since the last call, with no writer running:
-- saves whole, ids gap-free, every new ack present, every touched aggregate
-- loading at its last version. `ack_files` maps writer names to files of
-- `ack BATCH FIRST N` lines.
function _M.check(st, ack_files)
  local app = model.App.new { store = st.uri }
  local ok, err = pcall(function()
    local before = st.checked
    read_new(st, app)
    local max = app:max_notification_id()
    if max ~= st.checked then violation(st, "max_notification_id is %d but the log ends at %d", max, st.checked) end
    for key, b in pairs(st.batches) do
      if b.first + b.count - 1 > before and b.count ~= b.n then
        violation(st, "save %s is partial: %d of %d events recorded", key, b.count, b.n)
      end
    end
    for writer, file in pairs(ack_files) do
      local text = proc.read_file(file) or ""
      -- a line cut short by the kill is no acknowledgement
      for batch, first, n in text:gmatch("ack (%d+) (%d+) (%d+)[^\n]*\n") do
        st.acks = st.acks + 1
        local b = st.batches[writer .. "/" .. batch]
        first, n = tonumber(first), tonumber(n)
        if not b then
          violation(st, "acknowledged save %s/%s (notification %d) is missing", writer, batch, first)
        elseif b.first ~= first or b.count ~= n then
          violation(st, "acknowledged save %s/%s was %d events from %d, recorded %d from %d", writer, batch, n,
            first, b.count, b.first)
        end
      end
    end
    for id in pairs(st.touched) do
      local got, agg = pcall(app.repository.get, app.repository, id)
      if not got then
        violation(st, "aggregate %s does not load: %s", id, tostring(agg))
      elseif agg.version ~= st.versions[id] then
        violation(st, "aggregate %s loads at version %d, its last event is %d", id, agg.version, st.versions[id])
      elseif agg.count and agg.count ~= (st.counted[id] or 0) then
        violation(st, "tally %s counts %d, the log has %d counts", id, agg.count, st.counted[id] or 0)
      end
    end
    st.touched = {}
  end)
  app:close()
  if not ok then violation(st, "checking failed: %s", tostring(err)) end
end

-- The store tools agree with what the log says.
local function cli_tools(st)
  local path = os.tmpname()
  local cmd = ("%s export %s > %s"):format(proc.quote(proc.cairn_bin), proc.quote(st.uri), proc.quote(path))
  local code = os.execute(cmd)
  local lines = 0
  for _ in (proc.read_file(path) or ""):gmatch("\n") do lines = lines + 1 end
  os.remove(path)
  if code ~= 0 and code ~= true then violation(st, "cairn export failed (%s)", tostring(code)) end
  if lines ~= st.checked then violation(st, "cairn export wrote %d events, the log has %d", lines, st.checked) end
  local p = io.popen(("%s stat %s"):format(proc.quote(proc.cairn_bin), proc.quote(st.uri)))
  local stat = p:read("*a")
  p:close()
  local events = tonumber(stat:match("events: (%d+)"))
  if events ~= st.checked then
    violation(st, "cairn stat says %s events, the log has %d", tostring(events), st.checked)
  end
end

--- Whole-store checks run at the end of a driver, after the incremental ones.
-- Add `cairn verify` and projection checks here as those features land.
_M.store_checks = { cli_tools }

function _M.finish(st)
  -- read once more through a fresh open: a writer killed between LMDB's meta
  -- page and the lock file's txnid leaves a durable (unacknowledged) save that
  -- handles of an environment kept open may see only later; it must be whole
  _M.check(st, {})
  for _, fn in ipairs(_M.store_checks) do fn(st) end
end

return _M
