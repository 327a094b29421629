--- Loading from a snapshot: a snapshot whose bytes change after a get (on the
-- same handle, which keeps the bytes it verified to skip hashing them again)
-- is still caught, and an unchanged one still loads; the decoded states the
-- repository keeps (app.repository.snapshot_states) are handed out only as
-- copies, only while the store holds that very snapshot, and never once it is
-- damaged or forgotten.
local helper = require "helper"
local cairn = require "cairn"

local q = helper.shell_quote
local core = require "cairn.core"

local KEY = core.keygen()

-- Flip (or flip back) one bit at the end of the store's only snapshot record:
-- the last byte of its msgpack state, so the state still decodes.
local function flip_snapshot(uri)
  if uri:match("^lmdb:") then
    local code, _, err = helper.run(("%s --flip-snapshot %s"):format(q(helper.tests_bin), q(uri:match("^lmdb:(.*)$"))))
    assert.are.equal(0, code, err)
  else
    local schema = assert(uri:match("schema=([%w_]+)"))
    assert.are.equal("", helper.psql(("UPDATE %s.snapshots SET record = set_byte(record, length(record) - 1, "
      .. "get_byte(record, length(record) - 1) # 1)"):format(schema)))
  end
end

describe("loading from a snapshot (" .. helper.engine .. ":)", function()
  local dir, uri, Dog, School

  before_each(function()
    dir = helper.tmpdir()
    uri = helper.store_uri(dir)
    Dog = cairn.aggregate("Dog")
    Dog:created("Registered", function(self, name) self.name = name; self.tricks = {} end)
    Dog.add_trick = Dog:event("TrickAdded", function(self, trick) self.tricks[#self.tricks + 1] = trick end)
    School = cairn.application("School")
    School.snapshotting_intervals = { Dog = 1000 }
  end)
  after_each(function() helper.rmrf(dir) end)

  -- a dog whose snapshot at v1000 holds 999 tricks (about 11 KB: large enough to be kept verified)
  local function big_dog(app)
    local dog = Dog("long-stream")
    for i = 0, 998 do dog:add_trick("trick-" .. i) end
    app:save(dog)
    return dog.id
  end

  it("catches a snapshot changed after a get on the same handle, and in a new one", function()
    local app = School.new { store = uri, sync = "none" }
    local id = big_dog(app)
    local dog = app.repository:get(id)
    assert.are.equal(1000, dog.version)
    assert.are.equal("trick-998", dog.tricks[999])
    app.repository:get(id) -- the second read of the same bytes
    flip_snapshot(uri)
    helper.assert_error_kind("IntegrityError", function() app.repository:get(id) end, "fails its hash check")
    helper.assert_error_kind("IntegrityError", function() app.repository:get(id) end, "fails its hash check")
    helper.assert_error_kind("IntegrityError", function() app.snapshots:get(id) end, "fails its hash check")
    local other = School.new { store = uri }
    helper.assert_error_kind("IntegrityError", function() other.repository:get(id) end, "fails its hash check")
    other:close()
    flip_snapshot(uri) -- the bytes as they were: they load again
    dog = app.repository:get(id)
    assert.are.equal(1000, dog.version)
    assert.are.equal("trick-998", dog.tricks[999])
    app:close()
  end)

  it("copies a kept state of nested tables and times table by table, each copy its own", function()
    local Litter = cairn.aggregate("Litter")
    Litter:created("Born", function(self, at)
      self.at = at
      self.pups = {}
    end)
    Litter.add = Litter:event("PupAdded", function(self, name, at)
      self.pups[#self.pups + 1] = { name = name, at = at, tags = { "new", name } }
    end)
    School.snapshotting_intervals = { Litter = 200 }
    local app = School.new { store = uri, sync = "none" }
    local litter = Litter(cairn.time.from_us(1000))
    for i = 1, 199 do litter:add("pup-" .. i, cairn.time.from_us(1000 + i)) end
    app:save(litter)
    local first = app.repository:get(litter.id)
    for _ = 1, 2 do
      local got = app.repository:get(litter.id)
      assert.are.equal(200, got.version)
      assert.is_true(cairn.time.is_time(got.at))
      assert.are.equal(1000, got.at.us)
      assert.are.equal(199, #got.pups)
      assert.are.equal("pup-199", got.pups[199].name)
      assert.is_true(cairn.time.is_time(got.pups[199].at))
      assert.are.equal(1199, got.pups[199].at.us)
      assert.are.same({ "new", "pup-199" }, got.pups[199].tags)
      assert.are_not.equal(first.pups[199], got.pups[199])
      assert.are_not.equal(first.pups[199].tags, got.pups[199].tags)
      assert.is_false(rawequal(first.pups[199].at, got.pups[199].at))
      got.pups[199].tags[1] = "changed"
      got.pups[199].at.us = 0
    end
    local kept = app.repository.snapshot_states:peek(litter.id)
    assert.are.equal("new", kept.state.pups[199].tags[1])
    assert.are.equal(1199, kept.state.pups[199].at.us)
    app:close()
  end)

  it("a newer snapshot, from this handle or another, loads in place of the one read (and kept) before", function()
    local app = School.new { store = uri, sync = "none" }
    local id = big_dog(app)
    assert.are.equal(999, #app.repository:get(id).tricks)
    local dog = app.repository:get(id)
    for i = 999, 1998 do dog:add_trick("trick-" .. i) end
    app:save(dog) -- a snapshot at v2000
    local again = app.repository:get(id)
    assert.are.equal(2000, again.version)
    assert.are.equal(1999, #again.tricks)
    assert.are.equal(2000, app.snapshots:get(id).version)
    assert.are.equal(1499, #app.repository:get(id, { version = 1500 }).tricks)
    -- and one another handle writes
    local other = School.new { store = uri, sync = "none" }
    dog = other.repository:get(id)
    for i = 1999, 2998 do dog:add_trick("trick-" .. i) end
    other:save(dog) -- a snapshot at v3000
    other:close()
    assert.are.equal(2999, #app.repository:get(id).tricks)
    assert.are.equal(2999, #app.repository.snapshot_states:peek(id).state.tricks)
    app:close()
  end)

  it("a get of an unchanged snapshot copies the kept state: each caller gets its own", function()
    local app = School.new { store = uri, sync = "none" }
    local id = big_dog(app)
    local states = app.repository.snapshot_states
    assert.is_nil(states:peek(id)) -- the save wrote the snapshot; nothing read yet
    local a = app.repository:get(id)
    local kept = states:peek(id)
    assert.are.equal(999, #kept.state.tricks)
    assert.are.equal(32, #kept.record_hash)
    a.tricks[1] = "changed"
    a.tricks[#a.tricks + 1] = "more"
    a.name = "changed"
    local b = app.repository:get(id)
    assert.are.equal("trick-0", b.tricks[1])
    assert.are.equal(999, #b.tricks)
    assert.are.equal("long-stream", b.name)
    assert.are_not.equal(a.tricks, b.tricks)
    assert.are.equal("trick-0", kept.state.tricks[1])
    assert.is_nil(kept.state.id) -- from_snapshot's fields go on the copy, not the kept state
    -- the state a get hands out comes from the kept one (changed here, as only a test may)
    kept.state.name = "from the kept state"
    assert.are.equal("from the kept state", app.repository:get(id).name)
    -- the same read through the recorder: unchanged, no state
    local snap = app.store:read_snapshot(id, { known = kept.record_hash })
    assert.is_true(snap.unchanged)
    assert.is_nil(snap.state)
    assert.are.equal(1000, snap.version)
    local fresh = app.store:read_snapshot(id, { known = ("x"):rep(32) })
    assert.is_false(fresh.unchanged)
    assert.are.equal("long-stream", fresh.state.name)
    assert.has_error(function() app.store:read_snapshot(id, { known = 1 }) end,
      "bad option 'known' to 'read_snapshot' (a record hash string expected)")
    app:close()
  end)

  it("keeps no state once the snapshot is damaged, nor small states, nor any with CAIRN_SNAPSHOT_CACHE=0", function()
    local app = School.new { store = uri, sync = "none" }
    local id = big_dog(app)
    app.repository:get(id)
    assert.is_not_nil(app.repository.snapshot_states:peek(id))
    flip_snapshot(uri)
    helper.assert_error_kind("IntegrityError", function() app.repository:get(id) end, "fails its hash check")
    assert.is_nil(app.repository.snapshot_states:peek(id))
    flip_snapshot(uri)
    local small = Dog("short")
    for i = 1, 999 do small:add_trick(i % 2 == 0 and "a" or "b") end -- about 2 KB: decoded each time
    app:save(small)
    assert.are.equal(1000, app.repository:get(small.id).version)
    assert.is_nil(app.repository.snapshot_states:peek(small.id))
    app:close()
    local off = School.new { store = uri, snapshot_cache = 0 }
    assert.is_nil(off.repository.snapshot_states)
    assert.are.equal(999, #off.repository:get(id).tricks)
    off:close()
    helper.assert_error_kind("ConfigError", function() School.new { store = uri, snapshot_cache = "many" } end,
      "CAIRN_SNAPSHOT_CACHE must be a whole number of snapshot states from 0 to 2^31 (got 'many')")
  end)

  it("upcasts a copy of the kept state on every get, never the kept state", function()
    local app = School.new { store = uri, sync = "none" }
    local id = big_dog(app)
    app:close()
    local NewDog = cairn.aggregate("Dog", { version = 2, upcast = {
      [1] = function(state) state.level = (state.level or 0) + 1; return state end,
    } })
    NewDog:created("Registered", function(self, name) self.name = name; self.tricks = {}; self.level = 1 end)
    NewDog:event("TrickAdded", function(self, trick) self.tricks[#self.tricks + 1] = trick end)
    app = School.new { store = uri }
    for _ = 1, 3 do
      local dog = app.repository:get(id)
      assert.are.equal(1, dog.level)
      assert.are.equal(999, #dog.tricks)
    end
    assert.is_nil(app.repository.snapshot_states:peek(id).state.level)
    app:close()
  end)

  it("an unchanged sealed and compressed snapshot of a string id: the same aggregate, id included", function()
    local Kennel = cairn.aggregate("Kennel", { id = "string" })
    function Kennel.create_id(name) return name end
    Kennel:created("Opened", function(self, name) self.name = name; self.dogs = {} end)
    Kennel.admit = Kennel:event("Admitted", function(self, dog) self.dogs[#self.dogs + 1] = dog end)
    School.snapshotting_intervals = { Kennel = 1000 }
    local app = School.new { store = uri, sync = "none", cipher_key = KEY, compressor = "zstd" }
    local kennel = Kennel("kennel-north")
    for i = 1, 999 do kennel:admit("dog-" .. i .. "-" .. ("x"):rep(i % 7)) end
    app:save(kennel)
    for round = 1, 3 do
      local got = app.repository:get("kennel-north")
      assert.are.equal("kennel-north", got.id)
      assert.are.equal(1000, got.version)
      assert.are.equal("dog-999-" .. ("x"):rep(999 % 7), got.dogs[999])
      local kept = app.repository.snapshot_states:peek("kennel-north")
      assert.are.equal("kennel-north", kept.originator_id)
      if round == 2 then kept.state.marker = "kept" end -- the third get copies it
      assert.are.equal(round == 3 and "kept" or nil, got.marker)
    end
    -- got by its stream key (a listed UUID), it is still named by its string
    local stream_key = app.store:streams()[1]
    for _ = 1, 3 do
      assert.are.equal("kennel-north", app.repository:get(stream_key).id)
      assert.are.equal("kennel-north", app.repository.snapshot_states:peek(stream_key).originator_id)
    end
    app:close()
  end)

  it("refuses a forgotten aggregate and drops its kept state, forgotten here or by another handle", function()
    local app = School.new { store = uri, sync = "none", cipher_key = KEY }
    local ids = {}
    for n = 1, 2 do
      local dog = Dog("dog-" .. n)
      for i = 0, 998 do dog:add_trick("trick-" .. i) end
      app:save(dog)
      ids[n] = dog.id
      assert.are.equal(999, #app.repository:get(dog.id).tricks)
      assert.is_not_nil(app.repository.snapshot_states:peek(dog.id))
    end
    app:forget(ids[1])
    assert.is_nil(app.repository.snapshot_states:peek(ids[1]))
    helper.assert_error_kind("AggregateNotFound", function() app.repository:get(ids[1]) end)
    local other = School.new { store = uri, cipher_key = KEY }
    other:forget(ids[2])
    other:close()
    helper.assert_error_kind("AggregateNotFound", function() app.repository:get(ids[2]) end)
    assert.is_nil(app.repository.snapshot_states:peek(ids[2]))
    app:close()
  end)
end)
