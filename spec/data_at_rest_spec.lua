--- Data at rest: encryption, crypto-shredding, compression, hash chains,
-- verify, keys, on the engine under test (helper.store_uri). Damage is done to
-- the raw LMDB files, the way a disk or an attacker would do it, and every
-- check must notice.
local helper = require "helper"
local cairn = require "cairn"
local core = require "cairn.core"

local q = helper.shell_quote

local KEY = core.keygen()
local OTHER_KEY = core.keygen()
local MARKER = "PLAINTEXT-MARKER-4f1c"
local LONG = ("LONG-MARKER-"):rep(100)

local function cairn_cmd(env, args)
  local prefix = ""
  for k, v in pairs(env) do prefix = prefix .. k .. "=" .. q(v) .. " " end
  return helper.run(prefix .. q(helper.cairn_bin) .. " " .. args)
end

local is_kind = helper.assert_kind

describe("data at rest", function()
  local dir, uri, Dog, School

  before_each(function()
    dir = helper.tmpdir()
    uri = helper.store_uri(dir)
    Dog = cairn.aggregate("Dog")
    Dog:created("Registered", function(self, name) self.name = name; self.tricks = {} end)
    Dog.add_trick = Dog:event("TrickAdded", function(self, trick) self.tricks[#self.tricks + 1] = trick end)
    School = cairn.application("School")
  end)
  after_each(function() helper.rmrf(dir) end)

  local function open(env)
    local e = { store = uri, sync = "none" }
    for k, v in pairs(env or {}) do e[k] = v end
    return School.new(e)
  end

  -- Fido (2 events, one with the marker in a short and a long field) and Rex.
  local function fill(env)
    local app = open(env)
    local fido, rex = Dog("Fido"), Dog("Rex")
    fido:add_trick(MARKER)
    rex:add_trick(LONG)
    app:save(fido, rex)
    app:close()
    return fido, rex
  end

  describe("encryption", function()
    it("keeps every payload out of the store file", function()
      fill { cipher_key = KEY }
      local stored = helper.stored_bytes(uri)
      assert.is_nil(stored:find(MARKER, 1, true))
      assert.is_nil(stored:find("LONG-MARKER", 1, true))
      assert.is_nil(stored:find("Fido", 1, true))
      -- and the same events in a plain store are there to find
      uri = helper.store_uri(dir, "plain")
      fill()
      assert.truthy(helper.stored_bytes(uri):find(MARKER, 1, true))
    end)

    it("reads back what it wrote, with the key, in a new process too", function()
      local fido = fill { cipher_key = KEY, compressor = "zstd" }
      local app = open { cipher_key = KEY }
      assert.are.same({ MARKER }, app.repository:get(fido.id).tricks)
      app:close()
      local code, out = cairn_cmd({ CAIRN_CIPHER_KEY = KEY }, "events " .. q(uri) .. " " .. fido.id)
      assert.are.equal(0, code)
      assert.matches(MARKER, out, 1, true)
    end)

    it("refuses to open without the key, or with another key, at open time", function()
      fill { cipher_key = KEY }
      local err = is_kind("ConfigError", helper.error_of(open))
      assert.matches("encrypted: set CAIRN_CIPHER_KEY", err.message)
      err = is_kind("ConfigError", helper.error_of(open, { cipher_key = OTHER_KEY }))
      assert.matches("not this store's key", err.message)
      assert.is_nil(err.message:find(OTHER_KEY, 1, true))
      assert.is_nil(err.message:find(KEY, 1, true))
      local code, _, stderr = cairn_cmd({ CAIRN_CIPHER_KEY = OTHER_KEY }, "log " .. q(uri))
      assert.are.equal(1, code)
      assert.matches("ConfigError", stderr)
      assert.is_nil(stderr:find(OTHER_KEY, 1, true))
    end)

    it("refuses a key for a store that already holds plain events, and encrypts an empty one", function()
      fill()
      local err = is_kind("ConfigError", helper.error_of(open, { cipher_key = KEY }))
      assert.matches("holds unencrypted events", err.message)
      local plain = open()
      assert.are.equal(4, plain:max_notification_id())
      plain:close()
      local fresh = School.new { store = helper.store_uri(dir, "fresh"), cipher_key = KEY }
      fresh:close()
      is_kind("ConfigError", helper.error_of(School.new, { store = helper.store_uri(dir, "fresh") }))
    end)

    it("encrypts through export and import", function()
      local fido = fill()
      local copy = helper.store_uri(dir, "copy")
      local code, _, err = helper.run(("%s export %s | CAIRN_CIPHER_KEY=%s %s import %s"):format(
        q(helper.cairn_bin), q(uri), q(KEY), q(helper.cairn_bin), q(copy)))
      assert.are.equal(0, code, err)
      local app = School.new { store = copy, cipher_key = KEY }
      assert.are.same({ MARKER }, app.repository:get(fido.id).tricks)
      app:close()
      assert.is_nil(helper.stored_bytes(copy):find(MARKER, 1, true))
    end)
  end)

  describe("tampering with LMDB files", function()
    local data_file
    before_each(function()
      uri = helper.store_uri(dir, "store", "lmdb")
      data_file = dir .. "/store/data.mdb"
    end)

    local function tamper_and_check(env, needle_of, offset)
      local fido = fill(env)
      local app = open(env)
      local head = app.repository:get(fido.id).head
      app:close()
      local flipped = helper.flip_in_file(data_file, needle_of(head), offset)
      assert.is_true(flipped >= 1)
      app = open(env)
      local err = is_kind("IntegrityError", helper.error_of(app.repository.get, app.repository, fido.id))
      assert.matches(fido.id, err.message, 1, true)
      assert.matches("version 2", err.message, 1, true)
      app:close()
      local code, out, stderr = cairn_cmd({}, "verify " .. q(uri))
      assert.are.equal(1, code)
      assert.matches("problems: [1-9]", out)
      assert.matches(fido.id .. " version 2", stderr, 1, true)
    end

    it("a changed payload byte in a plain store fails the read and verify", function()
      tamper_and_check({}, function() return MARKER end, 3)
    end)

    it("a changed hash fails the read and verify", function()
      tamper_and_check({}, function(head) return helper.unhex(head) end, 5)
    end)

    it("a changed sealed payload fails the read and verify (verify needs no key)", function()
      -- the payload (nonce first) starts right after the hash
      tamper_and_check({ cipher_key = KEY }, function(head) return helper.unhex(head) end, 32 + 30)
    end)

    it("swapped records fail the read and verify", function()
      local fido, rex = fill()
      local code, _, err = helper.run(("%s --swap %s 2 3"):format(q(helper.tests_bin), q(dir .. "/store")))
      assert.are.equal(0, code, err)
      local app = open()
      err = is_kind("IntegrityError", helper.error_of(app.repository.get, app.repository, fido.id))
      assert.matches("moved or swapped", err.message)
      is_kind("IntegrityError", helper.error_of(app.repository.get, app.repository, rex.id))
      app:close()
      local out
      code, out = cairn_cmd({}, "verify " .. q(uri))
      assert.are.equal(1, code)
      assert.matches("problems: [1-9]", out)
    end)

    it("a missing record is a gap that verify names", function()
      fill()
      local code, _, err = helper.run(("%s --delete %s 2"):format(q(helper.tests_bin), q(dir .. "/store")))
      assert.are.equal(0, code, err)
      local out
      code, out, err = cairn_cmd({}, "verify " .. q(uri))
      assert.are.equal(1, code)
      assert.matches("problems: [1-9]", out)
      assert.matches("notification 2", err, 1, true)
    end)
  end)

  describe("hash chains", function()
    it("give each aggregate a head that changes with every event and survives a reload", function()
      local app = open()
      local fido = Dog("Fido")
      app:save(fido)
      local first = fido.head
      assert.matches("^%x+$", first)
      assert.are.equal(64, #first)
      fido:add_trick("sit")
      app:save(fido)
      assert.are_not.equal(first, fido.head)
      assert.are.equal(fido.head, app.repository:get(fido.id).head)
      assert.are.equal(first, app.repository:get(fido.id, { version = 1 }).head)
      app:close()
    end)

    it("verify passes on good stores, plain and encrypted, with and without the key", function()
      fill { cipher_key = KEY, compressor = "zstd" }
      local code, out = cairn_cmd({}, "verify " .. q(uri))
      assert.are.equal(0, code)
      assert.matches("records checked: 4\nstreams: 2\n", out, 1, true)
      assert.matches("problems: 0", out)
      code, out = cairn_cmd({ CAIRN_CIPHER_KEY = KEY }, "verify " .. q(uri))
      assert.are.equal(0, code)
      assert.matches("data keys checked: 2", out)
      local err
      code, out, err = cairn_cmd({ CAIRN_CIPHER_KEY = OTHER_KEY }, "verify " .. q(uri))
      assert.are.equal(1, code)
      assert.matches("^cairn verify: ConfigError: store .*: the cipher key %(CAIRN_CIPHER_KEY%) is not this "
        .. "store's key\n$", err)
      assert.are.equal("", out)
      code, out, err = cairn_cmd({}, "verify " .. q(helper.store_uri(dir, "absent")))
      assert.are.equal(1, code)
      assert.matches("^cairn verify: ConfigError: no store at [^\n]* %(check the [^\n]*%)\n$", err)
      assert.are.equal("", out)
      code, out, err = cairn_cmd({}, "verify")
      assert.are.equal(2, code)
      assert.matches("^cairn verify: no store given: name one %(lmdb:PATH%) or set CAIRN_STORE\n", err)
      assert.are.equal("", out)
    end)
  end)

  describe("forgetting (crypto-shredding)", function()
    it("makes an aggregate unreadable for good while the log keeps its ids and topics", function()
      local fido, rex = fill { cipher_key = KEY }
      local app = open { cipher_key = KEY, snapshotting = "y" }
      app:take_snapshot(fido.id)
      app:forget(fido.id)
      local err = is_kind("AggregateNotFound", helper.error_of(app.repository.get, app.repository, fido.id))
      assert.matches("was forgotten", err.message)
      assert.is_false(app.repository:contains(fido.id))
      assert.is_nil(app.snapshots:get(fido.id))
      assert.are.same({ LONG }, app.repository:get(rex.id).tricks)
      local items = app.log:select(1, 10)
      assert.are.equal(4, #items)
      assert.are.equal("Dog.Registered", items[1].topic)
      assert.are.equal(fido.id, items[1].originator_id)
      assert.is_true(items[1].forgotten)
      assert.is_nil(items[1].event.name)
      assert.are.equal(fido.id, items[1].event.originator_id)
      assert.is_true(items[2].forgotten)
      assert.are.equal("Dog.TrickAdded", items[2].topic)
      assert.are.equal("Rex", items[3].event.name)
      -- forgetting again is harmless; saving more for it is refused
      app:forget(fido.id)
      fido:add_trick("roll")
      is_kind("AggregateNotFound", helper.error_of(app.save, app, fido))
      is_kind("AggregateNotFound", helper.error_of(app.forget, app, core.uuid4()))
      -- text that is not a UUID is a string id (API.md §9): none was recorded
      local err2 = is_kind("AggregateNotFound", helper.error_of(app.forget, app, "not-a-uuid"))
      assert.matches("aggregate not-a-uuid not found in ", err2.message, 1, true)
      err2 = is_kind("AggregateNotFound", helper.error_of(app.forget, app, ""))
      assert.matches("no aggregate '' in ", err2.message, 1, true)
      assert.matches("the id is empty", err2.message, 1, true)
      app:close()
      local code, out = cairn_cmd({ CAIRN_CIPHER_KEY = KEY }, "verify " .. q(uri))
      assert.are.equal(0, code)
      assert.matches("problems: 0", out)
      code, out = cairn_cmd({ CAIRN_CIPHER_KEY = KEY }, "log " .. q(uri))
      assert.are.equal(0, code)
      assert.matches("Dog.Registered\t%(forgotten%)", out)
    end)

    it("reaches other handles and processes that had the key cached", function()
      local fido = fill { cipher_key = KEY }
      local reader = open { cipher_key = KEY }
      assert.are.equal("Fido", reader.repository:get(fido.id).name)     -- key now cached
      local other = open { cipher_key = KEY }
      other:forget(fido.id)
      other:close()
      is_kind("AggregateNotFound", helper.error_of(reader.repository.get, reader.repository, fido.id))
      reader:close()
      -- and from another process
      local rex_store = helper.store_uri(dir, "two")
      local app = School.new { store = rex_store, cipher_key = KEY }
      local rex = Dog("Rex")
      app:save(rex)
      assert.are.equal("Rex", app.repository:get(rex.id).name)
      helper.write_file(dir .. "/forget.lua", ([[
        local cairn = require "cairn"
        local app = cairn.application("School").new { store = %q, cipher_key = %q }
        app:forget(%q)
      ]]):format(rex_store, KEY, rex.id))
      local code, _, err = helper.run(q(helper.cairn_bin) .. " run " .. q(dir .. "/forget.lua"))
      assert.are.equal(0, code, err)
      is_kind("AggregateNotFound", helper.error_of(app.repository.get, app.repository, rex.id))
      app:close()
    end)

    it("needs an encrypted store", function()
      local fido = fill()
      local app = open()
      local err = is_kind("ConfigError", helper.error_of(app.forget, app, fido.id))
      assert.matches("not encrypted", err.message)
      app:close()
    end)
  end)

  describe("rekey", function()
    it("re-wraps the data keys: the new key opens the store, the old one no longer does", function()
      local fido, rex = fill { cipher_key = KEY }
      local app = open { cipher_key = KEY }
      app:forget(fido.id)
      app:close()
      local code, _, err = cairn_cmd({ CAIRN_CIPHER_KEY = KEY, CAIRN_NEW_CIPHER_KEY = OTHER_KEY },
        "rekey " .. q(uri))
      assert.are.equal(0, code, err)
      is_kind("ConfigError", helper.error_of(open, { cipher_key = KEY }))
      app = open { cipher_key = OTHER_KEY }
      assert.are.equal(4, app:max_notification_id())
      assert.are.equal("Rex", app.log:select(3, 1)[1].event.name)
      -- the events were not rewritten: their hashes cover the stored bytes
      assert.are.equal(rex.head, app.repository:get(rex.id).head)
      is_kind("AggregateNotFound", helper.error_of(app.repository.get, app.repository, fido.id))
      app:close()
      code, _, err = cairn_cmd({ CAIRN_CIPHER_KEY = KEY, CAIRN_NEW_CIPHER_KEY = core.keygen() }, "rekey " .. q(uri))
      assert.are.equal(1, code)
      assert.matches("not this store's key", err)
      code, _, err = cairn_cmd({ CAIRN_CIPHER_KEY = OTHER_KEY, CAIRN_NEW_CIPHER_KEY = "nope" }, "rekey " .. q(uri))
      assert.are.equal(1, code)
      assert.matches("malformed", err)
      code, _, err = cairn_cmd({ CAIRN_CIPHER_KEY = OTHER_KEY }, "rekey " .. q(uri))
      assert.are.equal(2, code) -- no new key: a usage error
      assert.matches("^cairn rekey: set CAIRN_NEW_CIPHER_KEY to the new key %(cairn keygen prints one%)\nusage: ", err)
    end)

    it("keygen prints a fresh 32-byte key each time", function()
      local code, a = cairn_cmd({}, "keygen")
      local _, b = cairn_cmd({}, "keygen")
      assert.are.equal(0, code)
      assert.matches("^[%w+/]+=\n$", a)
      assert.are.equal(45, #a)
      assert.are_not.equal(a, b)
    end)
  end)

  describe("views", function()
    it("of an encrypted application are encrypted, in its own store or a view store of their own", function()
      local fido = fill { cipher_key = KEY }
      local Names = cairn.projection("Names", { topics = { "Dog.Registered" } })
      Names:on("Dog.Registered", function(view, event) view:put("name:" .. event.name, MARKER .. event.name) end)
      local app = open { cipher_key = KEY }
      local view_uri = helper.store_uri(dir, "views")
      for _, target in ipairs { view_uri, nil } do
        local runner = cairn.ProjectionRunner.new { application = app, projection = Names, view = target }
        runner:run()
        assert.are.equal(MARKER .. "Fido", runner.view:get("name:Fido"))
        local seen = {}
        for k, v in runner.view:scan("name:") do seen[#seen + 1] = k .. "=" .. v end
        assert.are.same({ "name:Fido=" .. MARKER .. "Fido", "name:Rex=" .. MARKER .. "Rex" }, seen)
      end
      app:close()
      assert.is_nil(helper.stored_bytes(view_uri):find(MARKER, 1, true))
      assert.is_nil(helper.stored_bytes(uri):find(MARKER, 1, true))
      -- the view store needs the key too
      local err = is_kind("ConfigError", helper.error_of(cairn.view, view_uri, "Names"))
      assert.matches("encrypted", err.message)
      assert.truthy(fido)
    end)

    -- issue 14 item 7: the counts projection wrote `dog:<name>` keys in plaintext into data.mdb
    it("of an encrypted store keep their keys out of the file; get, prefix scans and deletes still work", function()
      local view_uri = helper.store_uri(dir, "keys")
      local view = cairn.view(view_uri, "Counts", { cipher_key = KEY })
      local names = {}
      for i = 1, 1200 do names[i] = ("dog:%s%04d"):format(MARKER, i) end -- more than a scan page (1000)
      view:begin()
      for i = #names, 1, -1 do view:put(names[i], i) end
      view:put("cat:" .. MARKER, "c")
      view:commit()
      view:delete(names[7])
      assert.are.equal(5, view:get(names[5]))
      assert.is_nil(view:get(names[7]))
      assert.is_nil(view:get("dog:" .. MARKER))
      assert.are.equal(2, view:incr(names[1]))
      -- scans: the prefix only, in byte order, across pages, merged with pending writes
      local seen = {}
      for k, v in view:scan("dog:") do
        seen[#seen + 1] = k
        local i = tonumber(k:sub(-4))
        assert.are.equal(i == 1 and 2 or i, v)
      end
      assert.are.equal(#names - 1, #seen)
      for i = 2, #seen do assert.is_true(seen[i - 1] < seen[i], seen[i - 1] .. " before " .. seen[i]) end
      view:begin()
      view:put("dog:" .. MARKER .. "0007x", 7)
      local pending = {}
      local prefix = "dog:" .. MARKER .. "000"
      for k in view:scan(prefix) do pending[#pending + 1] = k:sub(#prefix + 1) end
      assert.are.same({ "1", "2", "3", "4", "5", "6", "7x", "8", "9" }, pending)
      view:discard()
      local cats = {}
      for k, v in view:scan("cat:") do cats[#cats + 1] = k .. "=" .. v end
      assert.are.same({ "cat:" .. MARKER .. "=c" }, cats)
      view:close()
      local stored = helper.stored_bytes(view_uri)
      assert.is_nil(stored:find(MARKER, 1, true))
      assert.is_nil(stored:find("dog:", 1, true))
    end)

    it("stay readable after cairn rekey: their key is wrapped like a data key", function()
      local view_uri = helper.store_uri(dir, "rekeyed")
      local view = cairn.view(view_uri, "Counts", { cipher_key = KEY })
      view:put("dog:Rex", 3)
      view:close()
      local code, _, err = cairn_cmd({ CAIRN_CIPHER_KEY = KEY, CAIRN_NEW_CIPHER_KEY = OTHER_KEY },
        "rekey " .. q(view_uri))
      assert.are.equal(0, code, err)
      view = cairn.view(view_uri, "Counts", { cipher_key = OTHER_KEY })
      assert.are.equal(3, view:get("dog:Rex"))
      assert.are.equal(4, view:incr("dog:Rex"))
      local seen = {}
      for k, v in view:scan("dog:") do seen[#seen + 1] = k .. "=" .. v end
      assert.are.same({ "dog:Rex=4" }, seen)
      view:close()
      code, err = cairn_cmd({ CAIRN_CIPHER_KEY = OTHER_KEY }, "verify " .. q(view_uri))
      assert.are.equal(0, code, err)
    end)

    it("cairn project works on an encrypted application, with the key from the environment", function()
      fill { cipher_key = KEY }
      helper.write_file(dir .. "/names.lua", ([[
        local cairn = require "cairn"
        local Names = cairn.projection("Names", { application = "School", topics = { "Dog.Registered" } })
        Names:on("Dog.Registered", function(view, event) view:put(event.name, %q) end)
        return Names
      ]]):format(MARKER))
      local view_uri = helper.store_uri(dir, "names")
      local args = ("project %s --app %s --view %s"):format(q(dir .. "/names.lua"), q(uri), q(view_uri))
      local code, _, err = cairn_cmd({}, args)
      assert.are.equal(1, code)
      assert.matches("encrypted", err)
      code, _, err = cairn_cmd({ CAIRN_CIPHER_KEY = KEY }, args)
      assert.are.equal(0, code, err)
      local view = cairn.view(view_uri, "Names", { cipher_key = KEY })
      assert.are.equal(MARKER, view:get("Rex"))
      view:close()
      assert.is_nil(helper.stored_bytes(view_uri):find(MARKER, 1, true))
    end)
  end)

  describe("compression", function()
    it("stores long payloads compressed and reads stores that mix both kinds", function()
      local long = ("abcdefgh"):rep(400)
      local app = open()
      local a = Dog("A")
      a:add_trick(long)
      app:save(a)
      app:close()
      app = open { compressor = "zstd" }
      local b = Dog("B")
      b:add_trick(long .. "!")
      app:save(b)
      assert.are.same({ long }, app.repository:get(a.id).tricks)
      assert.are.same({ long .. "!" }, app.repository:get(b.id).tricks)
      app:close()
      -- the plain one is in the file as it is, the compressed one is not
      local raw = helper.stored_bytes(uri)
      assert.truthy(raw:find(long, 1, true))
      assert.is_nil(raw:find(long .. "!", 1, true))
      app = open()
      assert.are.same({ long .. "!" }, app.repository:get(b.id).tricks)
      app:close()
      local code = cairn_cmd({}, "verify " .. q(uri))
      assert.are.equal(0, code)
    end)
  end)
end)
