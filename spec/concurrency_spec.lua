-- Several OS processes writing one store at the same time.
local cairn = require "cairn"
local helper = require "helper"
local concurrency = require "reliability.concurrency"
local proc = require "reliability.proc"

local Counter = cairn.aggregate("Counter")
function Counter.create_id(key)
  return cairn.uuid.v5(cairn.uuid.NAMESPACE_URL, "/counters/" .. key)
end
Counter:created("Started", function(self, key)
  self.key = key
  self.value = 0
end)
Counter.increment = Counter:event("Incremented", function(self, by, seq) -- luacheck: ignore 212
  self.value = self.value + 1
end)

local Item = cairn.aggregate("Item")
Item:created("Made", function(self, owner, seq, pad) -- luacheck: ignore 212
  self.owner, self.seq = owner, seq
end)

local Shared = cairn.application("Shared")

-- The child: wait until every child is ready, then N times increment the shared
-- counter (retrying on ConcurrencyError) and create an item of its own. It writes
-- what was acknowledged to acks.<name>: "inc <seq>" and "item <id> <notification id>".
local CHILD = [=[
local cairn = require "cairn"
local dir, uri, name, n, nprocs, sync, map_size, pad_size =
  arg[1], arg[2], arg[3], tonumber(arg[4]), tonumber(arg[5]), arg[6], tonumber(arg[7]), tonumber(arg[8])
local Counter = cairn.aggregate("Counter")
function Counter.create_id(key) return cairn.uuid.v5(cairn.uuid.NAMESPACE_URL, "/counters/" .. key) end
Counter:created("Started", function(self, key) self.key = key; self.value = 0 end)
Counter.increment = Counter:event("Incremented", function(self, by, seq) self.value = self.value + 1 end)
local Item = cairn.aggregate("Item")
Item:created("Made", function(self, owner, seq, pad) self.owner, self.seq = owner, seq end)
local app = cairn.application("Shared").new { store = uri, sync = sync, map_size = map_size }
local ready = assert(io.open(dir .. "/ready." .. name, "w")); ready:close()
local deadline = os.time() + 10
for i = 1, nprocs do
  while true do
    local f = io.open(dir .. "/ready." .. i)
    if f then f:close(); break end
    assert(os.time() < deadline, "the other children did not start")
  end
end
local acks, retries, pad = {}, 0, string.rep("p", pad_size)
-- every child tries to create the same counters: one creation each may succeed
for k = 1, 20 do
  local ok, err = pcall(app.save, app, Counter("race-" .. k))
  if ok then acks[#acks + 1] = "race " .. k
  elseif not cairn.errors.is(err, "ConcurrencyError") then error(err, 0) end
end
local counter_id = Counter.create_id("shared")
for seq = 1, n do
  while true do
    local counter = app.repository:get(counter_id)
    counter:increment(name, seq)
    local ok, err = pcall(app.save, app, counter)
    if ok then break end
    if not cairn.errors.is(err, "ConcurrencyError") then error(err, 0) end
    retries = retries + 1
  end
  acks[#acks + 1] = "inc " .. seq
  local item = Item(name, seq, pad)
  local recordings = app:save(item)
  acks[#acks + 1] = ("item %s %d"):format(item.id, recordings[1].notification_id)
end
app:close()
local out = assert(io.open(dir .. "/acks." .. name, "w"))
out:write(table.concat(acks, "\n"), "\nretries ", retries, "\n")
out:close()
]=]

describe("cairn.application", function()
  describe(":save() from several processes", function()
    local dir, uri

    before_each(function()
      dir = helper.tmpdir()
      uri = helper.store_uri(dir)
      helper.write_file(dir .. "/child.lua", CHILD)
    end)

    after_each(function()
      helper.rmrf(dir)
    end)

    -- start nprocs children at once and wait for all of them; return their acks
    local function run_children(opts)
      local setup = Shared.new { store = uri, sync = "none", map_size = opts.map_size }
      setup:save(Counter("shared"))
      setup:close()
      local cmds = {}
      for i = 1, opts.nprocs do
        local sync = opts.syncs and opts.syncs[i] or "none"
        cmds[#cmds + 1] = ("( %s %s %s %s %d %d %d %s %s %d 2>%s; echo $? >%s ) &"):format(
          helper.luajit_cmd, helper.shell_quote(dir .. "/child.lua"), helper.shell_quote(dir),
          helper.shell_quote(uri), i, opts.n, opts.nprocs, sync, opts.map_size or "''", opts.pad or 0,
          helper.shell_quote(dir .. "/err." .. i), helper.shell_quote(dir .. "/rc." .. i))
      end
      helper.run(table.concat(cmds, " ") .. " wait")
      local acks = {}
      for i = 1, opts.nprocs do
        local rc = helper.read_file(dir .. "/rc." .. i)
        local stderr = helper.read_file(dir .. "/err." .. i) or ""
        assert.are.equal("0", rc and rc:match("%d+"), "child " .. i .. " failed: " .. stderr)
        local a = { incs = {}, items = {}, races = {} }
        for line in assert(helper.read_file(dir .. "/acks." .. i)):gmatch("[^\n]+") do
          local seq = line:match("^inc (%d+)$")
          local id, nid = line:match("^item (%S+) (%d+)$")
          local race = line:match("^race (%d+)$")
          if seq then a.incs[#a.incs + 1] = tonumber(seq)
          elseif race then a.races[#a.races + 1] = tonumber(race)
          elseif id then a.items[#a.items + 1] = { id = id, notification_id = tonumber(nid), seq = #a.items + 1 }
          else a.retries = tonumber(line:match("^retries (%d+)$")) end
        end
        acks[i] = a
      end
      return acks
    end

    local function check(acks, opts)
      local app = Shared.new { store = uri }
      finally(function() app:close() end)
      local total_incs, total_items = 0, 0
      local winners = {}
      for i, a in ipairs(acks) do
        assert.are.equal(opts.n, #a.incs)
        assert.are.equal(opts.n, #a.items)
        total_incs, total_items = total_incs + #a.incs, total_items + #a.items
        for _, k in ipairs(a.races) do
          assert.is_nil(winners[k], "counter race-" .. k .. " created twice")
          winners[k] = i
        end
      end

      -- each contested creation succeeded exactly once
      for k = 1, 20 do
        assert.is_not_nil(winners[k], "nobody created race-" .. k)
        local c = app.repository:get(Counter.create_id("race-" .. k))
        assert.are.equal(1, c.version)
      end

      -- no lost update
      local counter = app.repository:get(Counter.create_id("shared"))
      assert.are.equal(total_incs, counter.value)
      assert.are.equal(total_incs + 1, counter.version)

      -- ids 1..max without gaps, and nothing more than what was acknowledged
      local max = app:max_notification_id()
      assert.are.equal(1 + 20 + total_incs + total_items, max)
      local log = app.log:select(1, max + 10)
      assert.are.equal(max, #log)
      for i, n in ipairs(log) do
        assert.are.equal(i, n.id)
      end

      -- every acknowledged increment is in the log exactly once
      local seen = {}
      for _, n in ipairs(log) do
        if n.topic == "Counter.Incremented" then
          local key = n.event.by .. ":" .. n.event.seq
          assert.is_nil(seen[key], "recorded twice: " .. key)
          seen[key] = true
        end
      end
      for i, a in ipairs(acks) do
        for _, seq in ipairs(a.incs) do
          assert.is_true(seen[i .. ":" .. seq], "lost increment " .. i .. ":" .. seq)
        end
      end

      -- every acknowledged item is where its recording said
      for i, a in ipairs(acks) do
        for _, item in ipairs(a.items) do
          local n = log[item.notification_id]
          assert.are.equal(item.id, n.originator_id)
          assert.are.equal("Item.Made", n.topic)
          local got = app.repository:get(item.id)
          assert.are.equal(tostring(i), got.owner)
          assert.are.equal(item.seq, got.seq)
        end
      end
    end

    it("loses no update when three processes increment one counter", function()
      local opts = { nprocs = 3, n = 300, syncs = { "full", "none", "none" } }
      check(run_children(opts), opts)
    end)

    it("loses no update while the processes grow the map (LMDB only)", function()
      uri = helper.store_uri(dir, "store", "lmdb")
      local opts = { nprocs = 3, n = 300, map_size = 65536, pad = 4000 }
      check(run_children(opts), opts)
    end)
  end)

  describe(":save() on shared aggregates while readers read (spec/reliability/concurrency.lua)", function()
    it("counts every acknowledged command once, and readers never see part of a save", function()
      local dir = helper.tmpdir()
      finally(function() helper.rmrf(dir) end)
      local f = concurrency.run { procs = 4, commands = 100, tallies = 3, readers = 2, timeout = 120,
        store = helper.store_uri(dir) }
      assert.are.same({}, f.messages)
      assert.are.equal(0, f.violations)
      assert.are.equal(400, f.commands)
      assert.is_true(f.reads > 0)
    end)

    it("counts writers that stop acknowledging as a deadlock, and stops them", function()
      -- writers frozen with SIGSTOP make no progress, as deadlocked ones would not
      local dir = helper.tmpdir()
      finally(function() helper.rmrf(dir) end)
      local f = concurrency.run { procs = 2, commands = 1e6, readers = 1, stall = 1, store = helper.store_uri(dir),
        on_start = function(writers)
          proc.sleep(0.5)
          for _, w in ipairs(writers) do proc.kill(w.pid, proc.SIGSTOP) end
        end }
      assert.are.equal(1, f.deadlocks)
      assert.matches("no writer acknowledged a command for %d+ s %(deadlock%?%)", f.messages[1])
    end)
  end)
  describe(":save() of several aggregates from several processes, in opposite orders", function()
    -- Each child saves the same four counters, incremented, in one save, odd children in
    -- one order and even ones in the other, retrying after a ConcurrencyError. It writes
    -- "ok N" (saves that returned) and every refusal's message to out.<i>.
    local CROSSING = [=[
local cairn = require "cairn"
local dir, uri, me = arg[1], arg[2], tonumber(arg[3])
local Counter = cairn.aggregate("Counter")
function Counter.create_id(key) return cairn.uuid.v5(cairn.uuid.NAMESPACE_URL, "/counters/" .. key) end
Counter:created("Started", function(self, key) self.key = key; self.value = 0 end)
Counter.increment = Counter:event("Incremented", function(self, by, seq) self.value = self.value + 1 end)
local app = cairn.application("Shared").new { store = uri }
while not io.open(dir .. "/go") do require("cairn.core").sleep(0.01) end
local keys = me % 2 == 1 and { "a", "b", "c", "d" } or { "d", "c", "b", "a" }
local saved, refusals = 0, {}
for seq = 1, 40 do
  while true do
    local counters = {}
    for i, k in ipairs(keys) do
      counters[i] = app.repository:get(Counter.create_id(k))
      counters[i]:increment(me, seq)
    end
    local ok, err = pcall(app.save, app, unpack(counters))
    if ok then saved = saved + 1; break end
    if not cairn.errors.is(err, "ConcurrencyError") then error(err, 0) end
    refusals[#refusals + 1] = err.message
  end
end
app:close()
local out = assert(io.open(dir .. "/out." .. me, "w"))
out:write("ok ", saved, "\n", table.concat(refusals, "\n"), "\n")
out:close()
]=]

    it("meet as ConcurrencyErrors at the first stream they share, never a deadlock or a StoreError", function()
      local dir = helper.tmpdir()
      finally(function() helper.rmrf(dir) end)
      local uri = helper.store_uri(dir)
      local setup = Shared.new { store = uri }
      for _, k in ipairs { "a", "b", "c", "d" } do setup:save(Counter(k)) end
      setup:close()
      local n = 8
      local code, err = helper.race_processes(CROSSING, dir, uri, n)
      assert.are.equal(0, code, err)
      assert.are.equal("", err)
      local saved, refusals = 0, 0
      for i = 1, n do
        local out = assert(helper.read_file(dir .. "/out." .. i), "child " .. i .. " wrote nothing")
        saved = saved + tonumber(out:match("^ok (%d+)"))
        for line in out:gmatch("\n([^\n]+)") do
          refusals = refusals + 1
          -- a stream that moved on, or the unique index: not the server breaking a deadlock
          assert.is_nil(line:find("deadlock", 1, true), line)
          assert.matches("aggregate [%x-]+", line)
        end
      end
      assert.are.equal(n * 40, saved)
      local app = Shared.new { store = uri }
      finally(function() app:close() end)
      for _, k in ipairs { "a", "b", "c", "d" } do
        assert.are.equal(saved, app.repository:get(Counter.create_id(k)).value)
      end
      -- the processes did meet (else this proves nothing): on LMDB saves take turns and never refuse
      if helper.engine == "postgresql" then assert.is_true(refusals > 0, "no save met another") end
    end)
  end)
end)
