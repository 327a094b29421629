--- Loading from a snapshot: a snapshot whose bytes change after a get (on the
-- same handle, which keeps the bytes it verified to skip hashing them again)
-- is still caught, and an unchanged one still loads.
local helper = require "helper"
local cairn = require "cairn"

local q = helper.shell_quote

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

  it("a newer snapshot of the same aggregate loads in place of the one read before", function()
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
    app:close()
  end)
end)
