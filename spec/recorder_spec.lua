-- cairn.recorder: the one Lua module over the C store (named options, the
-- batch protocol, notifications), and the boundary rule behind it: a read
-- holds no transaction, lock or buffer while Lua runs, so a Lua failure in
-- the middle of one leaves every other handle free to work.
local cairn = require "cairn"
local core = require "cairn.core"
local recorder = require "cairn.recorder"
local helper = require "helper"

local assert_kind, error_of = helper.assert_kind, helper.error_of

-- Records of one stream (versions 1..n) in the batch protocol.
local function stream_batch(id, n, topic, class_version, fields)
  local batch, k = {}, 0
  for v = 1, n do
    k = recorder.add(batch, k, id, v, 1700000000000000 + v, topic or "Rec.Noted", core.encode(fields or { n = v }),
      class_version or 1)
  end
  return batch
end

describe("cairn.recorder", function()
  local dir, rec
  before_each(function()
    dir = helper.tmpdir()
    rec = recorder.open("lmdb:" .. dir .. "/store", { sync = "none" })
  end)
  after_each(function()
    rec:close()
    helper.rmrf(dir)
  end)

  describe(":read_stream()", function()
    it("takes named options: after, upto, limit, reverse", function()
      local id = cairn.uuid.v4()
      rec:append(stream_batch(id, 5))
      local function versions(events)
        local v = {}
        for i = 1, #events do v[i] = events[i].originator_version end
        return v
      end
      assert.are.same({ 1, 2, 3, 4, 5 }, versions((rec:read_stream(id))))
      assert.are.same({ 3, 4 }, versions((rec:read_stream(id, { after = 2, upto = 4 }))))
      assert.are.same({ 5, 4 }, versions((rec:read_stream(id, { reverse = true, limit = 2 }))))
      assert.are.same({}, versions((rec:read_stream(id, { limit = 0 }))))
      local events, head = rec:read_stream(id)
      assert.matches("^%x+$", head)
      assert.are.equal(64, #head)
      assert.are.equal(3, events[3].n)
    end)

    it("finds each event whether its records are neighbours in the log or not, both ways", function()
      -- a's versions 1-3 in one batch, then interleaved with b's, then 2 more in one batch:
      -- the read steps along the log where it can and searches where it cannot
      local a, b = cairn.uuid.v4(), cairn.uuid.v4()
      local function one(id, v, n)
        local batch, k = {}, 0
        for i = v, v + n - 1 do
          k = recorder.add(batch, k, id, i, 1700000000000000 + i, "Rec.Noted", core.encode({ n = i }), 1)
        end
        rec:append(batch)
      end
      one(a, 1, 3)
      for v = 1, 4 do one(b, v, 1); one(a, v + 3, 1) end
      one(a, 8, 2)
      local function seen(events)
        local v = {}
        for i = 1, #events do v[i] = events[i].originator_version .. "=" .. events[i].n end
        return table.concat(v, " ")
      end
      assert.are.equal("1=1 2=2 3=3 4=4 5=5 6=6 7=7 8=8 9=9", seen((rec:read_stream(a))))
      assert.are.equal("9=9 8=8 7=7 6=6 5=5 4=4 3=3 2=2 1=1", seen((rec:read_stream(a, { reverse = true }))))
      assert.are.equal("1=1 2=2 3=3 4=4", seen((rec:read_stream(b))))
      assert.are.equal("4=4 3=3", seen((rec:read_stream(b, { reverse = true, limit = 2 }))))
      assert.are.equal("3=3 4=4 5=5", seen((rec:read_stream(a, { after = 2, upto = 5 }))))
    end)

    it("refuses options that are not whole numbers, naming them", function()
      local err = error_of(rec.read_stream, rec, cairn.uuid.v4(), { after = -1 })
      assert.matches("bad option 'after' to 'read_stream'", err)
      err = error_of(rec.read_stream, rec, cairn.uuid.v4(), { limit = "ten" })
      assert.matches("bad option 'limit' to 'read_stream'", err)
    end)
  end)

  describe(":read_log() and :read_events()", function()
    it("take from, stop, limit and topics, and shape notifications in one way", function()
      local a, b = cairn.uuid.v4(), cairn.uuid.v4()
      rec:append(stream_batch(a, 3))
      rec:append(stream_batch(b, 2, "Rec.Other"))
      local ns = rec:read_log { from = 2, stop = 4 }
      assert.are.equal(3, #ns)
      local n = ns[1]
      assert.are.same({ 2, a, 2, "Rec.Noted" }, { n.id, n.originator_id, n.originator_version, n.topic })
      assert.are.equal(2, ns[1].event.n)
      assert.are.equal(4, ns[3].id)
      local only = rec:read_log { topics = { "Rec.Other" }, limit = 1 }
      assert.are.equal(1, #only)
      assert.are.equal(4, only[1].id)
      local ids, events = rec:read_events { from = 4 }
      assert.are.same({ 4, 5 }, ids)
      assert.are.equal(b, events[2].originator_id)
      local err = error_of(rec.read_log, rec, { topics = "Rec.Other" })
      assert.matches("bad option 'topics' to 'read_log'", err)
    end)

    it("reports a class version other than 1 with the notification", function()
      rec:append(stream_batch(cairn.uuid.v4(), 1, "Rec.Versioned", 3))
      assert.are.equal(3, rec:read_log()[1].class_version)
      assert.is_nil(rec:read_log { limit = 1 }[1].forgotten)
    end)

    it("gives each event its own fields when a batch has more field names than the names cache", function()
      -- events 1..40 with fields f(i % 13) and g(i % 11), names of several lengths;
      -- the read caches recent names, and must evict and compare them correctly
      local id, batch, k = cairn.uuid.v4(), {}, 0
      for v = 1, 40 do
        local fields = { ["f" .. v % 13] = v, ["g_" .. string.rep("x", v % 11)] = -v, shared = "s" .. v }
        k = recorder.add(batch, k, id, v, 1700000000000000 + v, "Rec.Noted", core.encode(fields), 1)
      end
      rec:append(batch)
      local ns = rec:read_log()
      assert.are.equal(40, #ns)
      for v = 1, 40 do
        local e = ns[v].event
        local names = {}
        for name in pairs(e) do names[#names + 1] = name end
        assert.are.equal(8, #names) -- 5 header fields (no event_id given) and 3 of its own
        assert.are.same({ v, -v, "s" .. v }, { e["f" .. v % 13], e["g_" .. string.rep("x", v % 11)], e.shared })
      end
    end)
  end)

  describe(":append()", function()
    it("takes the batch protocol of recorder.add and a tracking position", function()
      local first, heads = rec:append(stream_batch(cairn.uuid.v4(), 2),
        { tracking = { application = "Leader", id = 7 } })
      assert.are.equal(1, first)
      assert.are.equal(1, #heads)
      assert.are.equal(7, rec:tracking_max("Leader"))
      local err = error_of(rec.append, rec, {}, { tracking = { application = "Leader", id = 7 } })
      assert_kind("ConcurrencyError", err)
    end)

    -- A save finds each stream's head by inserting the index entry of its first
    -- event and looking at the neighbours (lmdb_append.c): every way a stream
    -- can be ahead of, behind or beside the batch, at both ends of the index.
    describe("finds each stream's head where the batch's first event goes", function()
      local function one(id, v, n)
        local batch, k = {}, 0
        for i = v, v + n - 1 do
          k = recorder.add(batch, k, id, i, 1700000000000000 + i, "Rec.Noted", core.encode({ n = i }), 1)
        end
        return batch
      end
      local low, high = "00000000-0000-4000-8000-000000000000", "ffffffff-ffff-4fff-bfff-ffffffffffff"
      local function conflict(batch, pattern)
        local err = assert_kind("ConcurrencyError", error_of(rec.append, rec, batch))
        if pattern then assert.matches(pattern, err.message) end
      end

      it("continues a stream from its head, chained, for ids at both ends of the index", function()
        local mid = cairn.uuid.v4()
        for _, id in ipairs({ low, mid, high }) do rec:append(one(id, 1, 2)) end
        for _, id in ipairs({ high, low, mid }) do rec:append(one(id, 3, 2)) end
        local three = {}
        for _, id in ipairs({ low, mid, high }) do
          for _, v in ipairs(one(id, 5, 1)) do three[#three + 1] = v end
        end
        local _, heads = rec:append(three)
        assert.are.equal(3, #heads)
        for _, id in ipairs({ low, mid, high }) do
          local events, head = rec:read_stream(id)
          assert.are.equal(5, #events)
          assert.are.equal(5, events[5].n)
          assert.are.equal(heads[id == low and 1 or id == mid and 2 or 3], head)
        end
        local report = rec:verify()
        assert.are.equal(0, report.problems, report.first)
        assert.are.equal(15, report.records)
      end)

      it("refuses a version recorded before, a gap and a stale save, and records nothing of the batch", function()
        for _, id in ipairs({ low, high }) do
          rec:append(one(id, 1, 3))
          conflict(one(id, 3, 1), "version 3")                    -- recorded before: its entry is there
          conflict(one(id, 1, 1))                                 -- a new aggregate over an old one
          conflict(one(id, 5, 1), "version 5")                    -- a gap after the head (v3)
        end
        local fresh = cairn.uuid.v4()
        local batch = one(fresh, 1, 1)
        for _, v in ipairs(one(low, 2, 1)) do batch[#batch + 1] = v end
        conflict(batch)
        assert.are.equal(0, #rec:read_stream(fresh))             -- the fresh stream's entry went with the rest
        rec:append(one(fresh, 1, 1))
        assert.are.equal(1, #rec:read_stream(fresh))
        assert.are.equal(0, rec:verify().problems)
      end)

      it("refuses a stream that starts at a later version than the batch's first event", function()
        for _, id in ipairs({ low, cairn.uuid.v4(), high }) do
          rec:append(one(id, 5, 2))
          conflict(one(id, 1, 1), "is at 6")
          conflict(one(id, 4, 1), "is at 6")
          rec:append(one(id, 7, 1))
          assert.are.equal(3, #rec:read_stream(id))
        end
        assert.are.equal(0, rec:verify().problems)
      end)

      it("does the same in an encrypted store, where each stream has a data key beside its entries", function()
        local enc = recorder.open("lmdb:" .. dir .. "/enc", { sync = "none", cipher_key = core.keygen() })
        finally(function() enc:close() end)
        for _, id in ipairs({ low, high }) do
          enc:append(one(id, 1, 2))
          enc:append(one(id, 3, 1))
          assert_kind("ConcurrencyError", error_of(enc.append, enc, one(id, 1, 1)))
          assert_kind("ConcurrencyError", error_of(enc.append, enc, one(id, 5, 1)))
          assert.are.equal(3, #enc:read_stream(id))
        end
        local report = enc:verify()
        assert.are.equal(0, report.problems, report.first)
        assert.are.equal(6, report.records)
      end)
    end)

    it("try_append gives what the store refuses as nil and the error object, and raises nothing", function()
      local id = cairn.uuid.v4()
      local first, heads = rec:try_append(stream_batch(id, 2))
      assert.are.equal(1, first)
      assert.are.same({ select(2, rec:read_stream(id)) }, heads)
      local none, err = rec:try_append(stream_batch(id, 1))
      assert.is_nil(none)
      assert.matches("version 1", assert_kind("ConcurrencyError", err).message, 1, true)
      none, err = rec:try_append({ id, 3 })
      assert.is_nil(none)
      assert.matches("8 values per record", assert_kind("SchemaError", err).message, 1, true)
      local bad = stream_batch(cairn.uuid.v4(), 1)
      bad[4] = false
      none, err = rec:try_append(bad)
      assert.is_nil(none)
      assert.matches("lacks a topic", assert_kind("SchemaError", err).message, 1, true)
      assert.are.equal(2, #rec:read_log())
    end)

    it("takes a batch of batches (app:save of several aggregates) as their concatenation", function()
      local a, b, c = cairn.uuid.v4(), "account-7", cairn.uuid.v4()
      local first, heads = rec:try_append({ stream_batch(a, 2), stream_batch(b, 1), {}, stream_batch(c, 3) })
      assert.are.equal(1, first)
      assert.are.same({ select(2, rec:read_stream(a)), select(2, rec:read_stream(b)), select(2, rec:read_stream(c)) },
        heads)
      local log = rec:read_log()
      assert.are.equal(6, #log)
      assert.are.same({ a, a, b, c, c, c }, { log[1].originator_id, log[2].originator_id, log[3].originator_id,
        log[4].originator_id, log[5].originator_id, log[6].originator_id })
      -- the same checks as a flat batch: a conflict in one part refuses all, nothing recorded
      local none, err = rec:try_append({ stream_batch(cairn.uuid.v4(), 1), stream_batch(a, 1) })
      assert.is_nil(none)
      assert.matches("version 1", assert_kind("ConcurrencyError", err).message, 1, true)
      none, err = rec:try_append({ stream_batch(cairn.uuid.v4(), 1), { a, 3 } })
      assert.is_nil(none)
      assert.matches("8 values per record", assert_kind("SchemaError", err).message, 1, true)
      none, err = rec:try_append({ stream_batch(cairn.uuid.v4(), 1), "not a batch" })
      assert.is_nil(none)
      assert.matches("8 values per record", assert_kind("SchemaError", err).message, 1, true)
      local bad = stream_batch(cairn.uuid.v4(), 2)
      bad[12] = false
      none, err = rec:try_append({ stream_batch(cairn.uuid.v4(), 1), bad })
      assert.is_nil(none)
      -- numbered across the parts: the second part's second record is the third
      assert.matches("event 3 lacks a topic", assert_kind("SchemaError", err).message, 1, true)
      assert.are.equal(6, #rec:read_log())
    end)

    it("records a save of many streams, new and old, whatever order their index entries go in", function()
      -- from 8 streams on the engine inserts the index entries in id order: the same result as batch order
      local old = {}
      for i = 1, 12 do
        old[i] = cairn.uuid.v4()
        rec:append(stream_batch(old[i], i % 3 + 1))
      end
      local parts, ids = {}, {}
      for i = 1, 40 do
        local id = i % 4 == 0 and old[i / 4] or cairn.uuid.v4()
        local from = i % 4 == 0 and (i / 4) % 3 + 1 or 0
        local batch, k = {}, 0
        for v = from + 1, from + 2 do
          k = recorder.add(batch, k, id, v, 1700000000000000 + v, "Rec.Noted", core.encode({ n = v }), 1)
        end
        parts[i], ids[i] = batch, id
      end
      local first, heads = rec:try_append(parts)
      assert.is_number(first)
      for i = 1, 40 do
        local events, head = rec:read_stream(ids[i])
        assert.are.equal(head, heads[i])
        assert.are.equal(i % 4 == 0 and (i / 4) % 3 + 3 or 2, #events)
      end
      -- one stale stream among many refuses them all
      local stale = {}
      for i = 1, 20 do stale[i] = stream_batch(cairn.uuid.v4(), 1) end
      stale[13] = stream_batch(old[5], 1)
      local none, err = rec:try_append(stale)
      assert.is_nil(none)
      assert.matches(old[5], assert_kind("ConcurrencyError", err).message, 1, true)
      assert.are.equal(0, rec:verify().problems)
    end)

    it("lets finalizers append while an append hands out its heads (each its own memory)", function()
      -- the handle keeps one buffer for an append's records and hashes: an
      -- append run by a finalizer in the middle of another must not use it
      local nested, expected = 0, 0
      local function fresh_batch(n)
        local batch, k = {}, 0
        for _ = 1, n do
          k = recorder.add(batch, k, cairn.uuid.v4(), 1, 1700000000000000, "Rec.Noted", core.encode({ n = 1 }), 1)
        end
        return batch
      end
      for _ = 1, 20 do
        for _ = 1, 30 do
          local p = newproxy(true)
          getmetatable(p).__gc = function()
            local _, heads = rec:append(fresh_batch(3))
            assert(#heads == 3)
            nested = nested + 1
          end
        end
        local batch = fresh_batch(200)
        local _, heads = rec:append(batch)
        expected = expected + 200
        assert.are.equal(200, #heads)
        for i = 1, 200, 37 do
          local _, head = rec:read_stream(batch[(i - 1) * 8 + 1])
          assert.are.equal(head, heads[i])
        end
      end
      collectgarbage()
      assert.is_true(nested > 0)
      local report = rec:verify()
      assert.are.equal(0, report.problems, report.first)
      assert.are.equal(expected + 3 * nested, report.records)
    end)

    it("refuses a batch that breaks the protocol with a SchemaError", function()
      local err = error_of(rec.append, rec, { cairn.uuid.v4(), 1 })
      assert_kind("SchemaError", err)
      assert.matches("8 values per record", err.message, 1, true)
      local batch = stream_batch(cairn.uuid.v4(), 1)
      batch[1] = "" -- neither a UUID nor a string id
      assert.matches("is empty", assert_kind("SchemaError", error_of(rec.append, rec, batch)).message, 1, true)
      -- values of the wrong type, each named, and nothing recorded
      local function refused(slot, value, pattern)
        local b = stream_batch(cairn.uuid.v4(), 2)
        b[8 + slot] = value
        assert.matches(pattern, assert_kind("SchemaError", error_of(rec.append, rec, b)).message, 1, true)
      end
      refused(1, 42, "event 2 has no aggregate id")
      refused(4, 7, "event 2 lacks a topic or payload")
      refused(5, 7, "event 2 lacks a topic or payload")
      refused(7, 7, "event 2 has an event_id that is not a UUID")
      refused(8, 7, "event 2 has metadata that is not msgpack bytes")
      assert.are.equal(0, #rec:read_log())
      -- the handle's memory is free again: the next append goes through
      local first = rec:append(stream_batch(cairn.uuid.v4(), 2))
      assert.are.equal(1, first)
    end)
  end)

  describe("pages for backups and the tools", function()
    local a, b = "00000000-0000-4000-8000-00000000000a", "00000000-0000-4000-8000-00000000000b"

    it("list streams with their last versions and the streams holding snapshots, after an id, by limit", function()
      local batch = stream_batch(a, 3)
      for _, v in ipairs(stream_batch(b, 2)) do batch[#batch + 1] = v end
      rec:append(batch)
      assert.are.same({ a, 3, b, 2 }, rec:streams())
      assert.are.same({ a, 3 }, rec:streams { limit = 1 })
      assert.are.same({ b, 2 }, rec:streams { after = a })
      assert.are.same({}, rec:streams { after = b })
      assert.are.same({}, rec:snapshot_streams())
      local snaps = {}
      recorder.add(snaps, 0, b, 1, 1700000000000001, "Rec", core.encode({ n = 1 }), 1)
      recorder.add(snaps, 8, b, 2, 1700000000000002, "Rec", core.encode({ n = 2 }), 1)
      rec:append({}, { snapshots = snaps })
      assert.are.same({ b }, rec:snapshot_streams())
      assert.are.same({}, rec:snapshot_streams { after = b })
      assert.matches("limit from 0 to 1000", tostring(error_of(rec.streams, rec, { limit = 1001 })))
      assert.matches("bad option 'limit'", tostring(error_of(rec.streams, rec, { limit = -1 })))
    end)

    it("list tracking positions and view names, and clear a view with its tracking in one call", function()
      rec:append(stream_batch(a, 1), { tracking = { application = "Leader", id = 7 } })
      rec:view_write("Counts", { "x", core.encode(1), "y", core.encode(2) }, { application = "Leader", id = 5 })
      rec:view_write("Fines", { "z", core.encode(3) }, { application = "Library", id = 2 })
      assert.are.same({ "Counts/Leader", 5, "Fines/Library", 2, "Leader", 7 }, rec:tracking_scan())
      assert.are.same({ "Fines/Library", 2 }, rec:tracking_scan { after = "Counts/Leader", limit = 1 })
      assert.are.same({ "Counts", "Fines" }, rec:view_names())
      assert.are.same({ "Fines" }, rec:view_names { after = "Counts" })
      assert.are.same({ "Counts" }, rec:view_names { limit = 1 })
      rec:view_clear("Counts")
      assert.are.same({ "Fines" }, rec:view_names())
      assert.are.same({ "Fines/Library", 2, "Leader", 7 }, rec:tracking_scan())
      assert.are.equal(0, rec:view_tracking_max("Counts", "Leader"))
      assert.are.equal(3, rec:view_get("Fines", "z"))
      assert.matches("not a view name", assert_kind("StoreError", error_of(rec.view_clear, rec, "a/b")).message)
    end)
  end)

  it("rekeys in one transaction, reporting progress in data keys now and then", function()
    local key, new_key = core.keygen(), core.keygen()
    local enc = recorder.open("lmdb:" .. dir .. "/enc", { sync = "none", cipher_key = key })
    finally(function() enc:close() end)
    local batch, k = {}, 0
    for i = 1, 1500 do
      k = recorder.add(batch, k, ("00000000-0000-4000-8000-%012d"):format(i), 1, 1700000000000000, "Rec.Noted",
        core.encode({ n = i }), 1)
    end
    enc:append(batch)
    local calls = {}
    enc:rekey(new_key, function(done, total) calls[#calls + 1] = { done, total } end)
    -- posts may be coalesced (the function gets the latest figures), the last one always comes
    assert.are.same({ 1500, 1500 }, calls[#calls])
    for i = 1, #calls do
      assert.are.equal(1500, calls[i][2])
      assert.is_true(calls[i][1] % 500 == 0 and (i == 1 or calls[i][1] > calls[i - 1][1]))
    end
    enc:close()
    enc = recorder.open("lmdb:" .. dir .. "/enc", { sync = "none", cipher_key = new_key })
    assert.are.equal(1500, #enc:read_log())
  end)

  it("raises a StoreError after close(), and tostring says closed", function()
    local other = recorder.open("memory:")
    other:close()
    for _, call in ipairs {
      function() return other:max_id() end,
      function() return other:read_log() end,
      function() return other:read_stream(cairn.uuid.v4()) end,
      function() return other:append(stream_batch(cairn.uuid.v4(), 1)) end,
      function() return other:view_get("V", "k") end,
    } do
      local err = assert_kind("StoreError", error_of(call))
      assert.matches("closed", err.message)
    end
    assert.matches("closed", tostring(other))
  end)
end)

describe("a read that fails in Lua", function()
  local dir
  -- a class whose events are at version 2; stored version-1 records need an upcast
  local Probe = cairn.aggregate("ReadProbe")
  Probe:created("Made", function(self) self.n = 0 end)
  local upcast_fails, upcast_does = false, nil
  Probe:event("Noted", function(self, n) self.n = n end, { version = 2, upcast = { [1] = function(fields)
    if upcast_fails then error("the upcaster failed", 0) end
    if upcast_does then
      local work = upcast_does
      upcast_does = nil
      work()
    end
    return fields
  end } })
  local Note = cairn.aggregate("ReadProbeNote")
  Note:created("Written", function(self, text) self.text = text end)
  local App = cairn.application("ReadProbeApp")

  before_each(function() dir = helper.tmpdir() end)
  after_each(function() helper.rmrf(dir) end)

  -- an aggregate with many version-1 events, written on a store with a small map
  local function setup()
    local env = { store = "lmdb:" .. dir .. "/store", sync = "none", map_size = 65536 }
    local a, b = App.new(env), App.new(env)
    local id = cairn.uuid.v4()
    local batch, k = {}, 0
    k = recorder.add(batch, k, id, 1, 1700000000000000, "ReadProbe.Made", core.encode({}), 1)
    for v = 2, 3000 do
      k = recorder.add(batch, k, id, v, 1700000000000000 + v, "ReadProbe.Noted", core.encode({ n = v }), 1)
    end
    a.store:append(batch)
    return a, b, id
  end

  -- b saves an event larger than the map: the map must grow, which waits for
  -- every read of the process to end
  local function save_growing(b)
    local big = Note(string.rep("z", 2 * 1024 * 1024))
    b:save(big)
    assert.are.equal(2 * 1024 * 1024, #b.repository:get(big.id).text)
  end

  it("in the upcaster leaves other handles free: a save that grows the map succeeds", function()
    local a, b, id = setup()
    finally(function() upcast_fails = false; a:close(); b:close() end)
    upcast_fails = true
    local err = error_of(a.repository.get, a.repository, id)
    assert.matches("the upcaster failed", tostring(err))
    save_growing(b)
    upcast_fails = false
    assert.are.equal(3000, a.repository:get(id).n)
  end)

  it("is not in the upcaster: it runs after the read ended, so even a save that grows the map works there",
    function()
      local a, b, id = setup()
      finally(function() upcast_does = nil; a:close(); b:close() end)
      local saved = false
      upcast_does = function() save_growing(b); saved = true end
      assert.are.equal(3000, a.repository:get(id).n)
      assert.is_true(saved)
    end)

  it("is not in verify's progress function either: it runs beside the check's read, so a save that grows "
    .. "the map works there, while the store itself refuses to be used", function()
    local a, b = setup()
    finally(function() a:close(); b:close() end)
    local saved, refused = false, nil
    local report = a.store:verify(function(done, total)
      if done == total and not saved then
        save_growing(b)
        saved = true
        refused = select(2, pcall(a.store.max_id, a.store))
      end
    end)
    assert.is_true(saved)
    assert.are.equal(0, report.problems)
    assert.are.equal(3000, report.records)
    assert.matches("being verified", assert_kind("StoreError", refused).message)
    assert.are.equal(3001, a.store:max_id())
  end)

  -- An error from a finalizer surfaces at an allocation, as "not enough
  -- memory" does. The finalizer raises only when the binding's read_log is on
  -- the stack (else it arms a new one), and the collector runs on every
  -- allocation, so the error comes while the read's events are being made.
  -- In a process of its own: the collector's pace depends on the heap.
  local OOM_CHILD = [[
local cairn = require "cairn"
local core = require "cairn.core"
local recorder = require "cairn.recorder"
local Note = cairn.aggregate("Note")
Note:created("Written", function(self, text) self.text = text end)
local App = cairn.application("OomApp")
local env = { store = "lmdb:" .. arg[1], sync = "none", map_size = 65536 }
local a, b = App.new(env), App.new(env)
local id = cairn.uuid.v4()
local batch, k = {}, 0
for v = 1, 3000 do k = recorder.add(batch, k, id, v, 1700000000000000 + v, "Plain.Noted", core.encode({ n = v }), 1) end
a.store:append(batch)
local read_log = getmetatable(a.store.store).__index.read_log
local live, fired = true, false
local arm
local function finalize()
  if not live then return end
  for level = 2, 30 do
    local info = debug.getinfo(level, "f")
    if not info then break end
    if info.func == read_log then
      live, fired = false, true
      error("simulated out of memory", 0)
    end
  end
  arm()
end
arm = function() getmetatable(newproxy(true)).__gc = finalize end
jit.off() -- LuaJIT's traces do not expect finalizer errors
jit.flush()
collectgarbage("collect")
collectgarbage("setpause", 0)
collectgarbage("setstepmul", 100000)
arm()
local ok, err = pcall(a.store.read_log, a.store)
live = false
collectgarbage("setpause", 200)
collectgarbage("setstepmul", 200)
print("read", fired, ok, err)
local big = Note(string.rep("z", 2 * 1024 * 1024))
b:save(big) -- the map must grow: that waits for every read of the process to end
print("saved", #b.repository:get(big.id).text, #a.store:read_log())
a:close()
b:close()
]]

  it("for lack of memory while the events are made leaves other handles free", function()
    helper.write_file(dir .. "/child.lua", OOM_CHILD)
    local code, out, err = helper.run(("%s run %s %s"):format(helper.shell_quote(helper.cairn_bin),
      helper.shell_quote(dir .. "/child.lua"), helper.shell_quote(dir .. "/store")))
    assert.are.equal(0, code, out .. err)
    assert.are.equal("read\ttrue\tfalse\tsimulated out of memory\nsaved\t2097152\t3001\n", out)
  end)
end)

describe("event_id and metadata", function()
  local dir
  before_each(function() dir = helper.tmpdir() end)
  after_each(function() helper.rmrf(dir) end)

  local Tag = cairn.aggregate("MetaTag")
  Tag:created("Made", function(self, label) self.label = label end)
  Tag:event("Relabelled", function(self, label) self.label = label end)
  local App = cairn.application("MetaApp")

  it("are recorded with the event and read back as they were given", function()
    local app = App.new { store = "lmdb:" .. dir .. "/store", sync = "none" }
    finally(function() app:close() end)
    -- the store persists them from record format 3 on (the recorder branch)
    if core.RECORD_FORMAT < 3 then
      pending("the store gives event ids and metadata back from record format 3")
      return
    end
    local tag = Tag("a")
    local ev = tag:trigger("Relabelled", { label = "b" }, { correlation_id = cairn.uuid.v4(), by = "test" })
    app:save(tag)
    local logged = app.log:select(1, 2)
    assert.are.equal(ev.event_id, logged[2].event.event_id)
    assert.are.same(ev.metadata, logged[2].event.metadata)
    assert.are.same({}, logged[1].event.metadata)
    assert.matches("^%x+%-", logged[1].event.event_id)
    local events = app.store:read_stream(tag.id)
    assert.are.equal(ev.event_id, events[2].event_id)
    assert.are.same(ev.metadata, events[2].metadata)
    -- and through cairn export | cairn import
    local q, bin = helper.shell_quote, helper.shell_quote(helper.cairn_bin)
    local uri, copy = "lmdb:" .. dir .. "/store", "lmdb:" .. dir .. "/copy"
    local code, out, err = helper.run(("%s export %s | %s import %s"):format(bin, q(uri), bin, q(copy)))
    assert.are.equal(0, code, out .. err)
    local again = App.new { store = copy, sync = "none" }
    finally(function() again:close() end)
    local copied = again.log:select(1, 2)
    assert.are.equal(ev.event_id, copied[2].event.event_id)
    assert.are.equal(logged[1].event.event_id, copied[1].event.event_id)
    assert.are.same(ev.metadata, copied[2].event.metadata)
  end)
end)

describe("cairn.log_json", function()
  local log_json = require "cairn.log_json"
  local ITEM = { id = 1, originator_id = "6ba7b810-9dad-11d1-80b4-00c04fd430c8", originator_version = 1,
                 topic = "Dog.Registered", timestamp = "2026-11-22T09:34:10.123456Z", fields = { name = "Fido" },
                 event_id = "0b6a2a8e-8d1e-4f5a-9c3b-6c1f0e7d2a41", metadata = { by = "import" } }

  it("keeps event_id and metadata from an item to its notification and back", function()
    local n, payload, us, metadata = log_json.notification(ITEM)
    assert.are.equal(ITEM.event_id, n.event.event_id)
    assert.are.same({ by = "import" }, n.event.metadata)
    assert.are.same({ name = "Fido" }, core.decode(payload))
    assert.are.same({ by = "import" }, core.decode(metadata))
    assert.are.equal(1795340050123456, us)
    assert.are.same(ITEM, log_json.item(n))
  end)

  it("makes up no event_id for an item without one, and leaves empty metadata out", function()
    local item = {}
    for k, v in pairs(ITEM) do item[k] = v end
    item.event_id, item.metadata = nil, nil
    local n, _, _, metadata = log_json.notification(item)
    assert.is_nil(n.event.event_id)
    assert.are.same({}, n.event.metadata)
    assert.is_nil(metadata)
    assert.are.same(item, log_json.item(n))
  end)

  it("refuses an event_id that is not a lower-case UUID and metadata that is not an object", function()
    local item = {}
    for k, v in pairs(ITEM) do item[k] = v end
    item.event_id = "NOT-A-UUID"
    assert.are.same({ nil, "event_id must be a lower-case UUID" }, { log_json.notification(item) })
    item.event_id, item.metadata = nil, "text"
    assert.are.same({ nil, "metadata must be an object" }, { log_json.notification(item) })
  end)
end)
