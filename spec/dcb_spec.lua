-- Dynamic consistency boundaries (API.md §9, the dcb.events specification):
-- app.events:read and app.events:append on the application's own log.
local cairn = require "cairn"
local helper = require "helper"

local Courses = cairn.application("Courses")

local function ev(type_, tags, data) return { type = type_, tags = tags, data = data or {} } end

local function positions(events)
  local out = {}
  for i, e in ipairs(events) do out[i] = e.position end
  return out
end

-- 1 CourseDefined c1, 2 CourseDefined c2, 3 StudentRegistered s1, 4 Subscribed c1 s1,
-- 5 Subscribed c2 s1, 6 CourseRenamed c1
local function fill(app)
  app.events:append { ev("CourseDefined", { "course:c1" }, { capacity = 2 }) }
  app.events:append { ev("CourseDefined", { "course:c2" }, { capacity = 1 }) }
  app.events:append { ev("StudentRegistered", { "student:s1" }) }
  app.events:append { ev("StudentSubscribed", { "course:c1", "student:s1" }),
                      ev("StudentSubscribed", { "course:c2", "student:s1" }) }
  app.events:append { ev("CourseRenamed", { "course:c1" }, { name = "Maths" }) }
end

helper.each_store(function(ctx)
  describe("read", function()
    it("matches types only, tags only, both, and several items", function()
      local app = ctx.open(Courses)
      fill(app)
      assert.are.same({ 1, 2 }, positions(app.events:read({ { types = { "CourseDefined" } } })))
      assert.are.same({ 1, 2, 6 }, positions(app.events:read({ { types = { "CourseDefined", "CourseRenamed" } } })))
      assert.are.same({ 1, 4, 6 }, positions(app.events:read({ { tags = { "course:c1" } } })))
      assert.are.same({ 4 }, positions(app.events:read({ { tags = { "course:c1", "student:s1" } } })))
      assert.are.same({ 1 }, positions(app.events:read({ { types = { "CourseDefined" }, tags = { "course:c1" } } })))
      -- several items: a union, in position order, each event once
      local q = { { types = { "CourseDefined" }, tags = { "course:c1" } },
                  { types = { "StudentSubscribed" }, tags = { "student:s1" } },
                  { tags = { "course:c1" } } }
      assert.are.same({ 1, 4, 5, 6 }, positions(app.events:read(q)))
      assert.are.same({}, positions(app.events:read({ { types = { "Nothing" } } })))
      assert.are.same({}, positions(app.events:read({ { tags = { "course:c1", "course:c2" } } })))
    end)

    it("gives type, data and tags, honours after and limit, and says the head", function()
      local app = ctx.open(Courses)
      fill(app)
      local events, head = app.events:read({ { tags = { "course:c1" } } })
      assert.are.same({ position = 1, type = "CourseDefined", data = { capacity = 2 }, tags = { "course:c1" } },
        events[1])
      assert.are.equal(6, head)
      events, head = app.events:read({ { tags = { "course:c1" } } }, { after = 1 })
      assert.are.same({ 4, 6 }, positions(events))
      assert.are.equal(6, head)
      events, head = app.events:read({ { tags = { "course:c1" } } }, { limit = 2 })
      assert.are.same({ 1, 4 }, positions(events))
      assert.are.equal(4, head) -- the last read: an append after it sees event 6 as a conflict
      events, head = app.events:read({ { types = { "CourseDefined" } } }, { after = 2 })
      assert.are.same({}, events)
      assert.are.equal(6, head) -- none matched: the log's last position
    end)

    it("matches every DCB event with the empty query, and no aggregate events", function()
      local app = ctx.open(Courses)
      local Dog = helper.school("training_school").Dog
      app:save(Dog("Fido"))
      fill(app)
      local events, head = app.events:read({})
      assert.are.same({ 2, 3, 4, 5, 6, 7 }, positions(events))
      assert.are.equal(7, head)
      assert.are.same({ 2, 3 }, positions(app.events:read({}, { limit = 2 })))
      assert.are.same({}, app.events:read({}, { after = 7 }))
    end)

    it("refuses malformed queries and options", function()
      local app = ctx.open(Courses)
      assert.has_error(function() app.events:read(nil) end,
        "bad argument to 'read' (query must be an array of query items)")
      assert.has_error(function() app.events:read({ "x" }) end, "bad argument to 'read' (query item 1 must be a table)")
      assert.has_error(function() app.events:read({ { tags = { "" } } }) end,
        "bad argument to 'read' (query item 1: tags[1] must be a string of 1 to 255 bytes)")
      assert.has_error(function() app.events:read({ { types = "T" } }) end,
        "bad argument to 'read' (query item 1: types must be an array of strings)")
      assert.has_error(function() app.events:read({}, { after = -1 }) end,
        "bad argument to 'read' (after must be a whole number >= 0)")
    end)
  end)

  describe("append", function()
    it("records DCB events in the notification log, their topic their type", function()
      local app = ctx.open(Courses)
      local pos = app.events:append { ev("CourseDefined", { "course:c1" }, { capacity = 3 }),
                                      ev("CourseDefined", { "course:c2" }, { capacity = 4 }) }
      assert.are.equal(2, pos)
      local items = app.log:select(1, 10)
      assert.are.equal(2, #items)
      assert.are.equal("CourseDefined", items[1].topic)
      assert.are.same({ capacity = 3 }, items[1].event.data)
      assert.are.same({ "course:c2" }, items[2].event.tags)
      assert.are.equal(1, items[1].originator_version)
    end)

    it("fails with ConcurrencyError and records nothing when a matching event came after `after`", function()
      local app = ctx.open(Courses)
      fill(app)
      local q = { { types = { "StudentSubscribed" }, tags = { "course:c2" } } }
      local _, head = app.events:read(q)
      assert.are.equal(5, head) -- the last matching event
      app.events:append { ev("StudentSubscribed", { "course:c2", "student:s2" }) } -- 7: someone else
      helper.assert_error_kind("ConcurrencyError", function()
        app.events:append({ ev("StudentSubscribed", { "course:c2", "student:s3" }), ev("Other", { "x" }) },
          { fail_if_events_match = q, after = head })
      end, "an event matching the append condition was recorded after position 5 (at 7)")
      assert.are.equal(7, app:max_notification_id())
      assert.are.same({}, app.events:read({ { tags = { "x" } } }))
      -- events that do not match the condition do not stop it
      app.events:append { ev("StudentSubscribed", { "course:c1", "student:s4" }) }
      local _, now = app.events:read(q)
      assert.are.equal(9, app.events:append({ ev("StudentSubscribed", { "course:c2", "student:s3" }) },
        { fail_if_events_match = q, after = now }))
      -- the empty query as a condition: any DCB event after `after`
      helper.assert_error_kind("ConcurrencyError", function()
        app.events:append({ ev("X", {}) }, { fail_if_events_match = {}, after = 8 })
      end)
      assert.are.equal(10, app.events:append({ ev("X", {}) }, { fail_if_events_match = {}, after = 9 }))
    end)

    it("refuses malformed events with a clear error, recording nothing", function()
      local app = ctx.open(Courses)
      assert.has_error(function() app.events:append({}) end,
        "bad argument to 'append' (a non-empty array of events expected)")
      assert.has_error(function() app.events:append({ { type = "" } }) end,
        "bad argument to 'append' (event 1: type must be a string of 1 to 255 bytes)")
      assert.has_error(function() app.events:append({ ev("T", { ("t"):rep(256) }) }) end,
        "bad argument to 'append' (event 1: tags[1] must be a string of 1 to 255 bytes)")
      helper.assert_error_kind("SchemaError", function() app.events:append({ ev("T", {}, { f = print }) }) end)
      assert.has_error(function() app.events:append({ ev("T", {}) }, { fail_if_events_match = 3 }) end,
        "bad argument to 'append' (fail_if_events_match must be an array of query items)")
      assert.are.equal(0, app:max_notification_id())
    end)

    it("refuses a type that is the topic of an aggregate's event, recording nothing", function()
      local app = ctx.open(Courses)
      helper.school("training_school") -- defines Dog, whose events include Dog.Registered
      helper.assert_error_kind("SchemaError", function()
        app.events:append { ev("CourseDefined", { "course:c1" }), ev("Dog.Registered", { "dog:d1" }) }
      end, "event 2: DCB type 'Dog.Registered' is the topic of an event of aggregate Dog")
      assert.are.equal(0, app:max_notification_id())
      assert.are.same({}, app.events:read({}))
      -- a type that only looks like one is fine
      assert.are.equal(1, app.events:append { ev("Dog.Adopted", { "dog:d1" }) })
    end)

    it("works on an encrypted, compressed store", function()
      local app = ctx.open(Courses, { cipher_key = require("cairn.core").keygen(),
                                      compressor = "zstd" })
      fill(app)
      assert.are.same({ 4, 5 }, positions(app.events:read({ { types = { "StudentSubscribed" } } })))
      assert.are.equal("Maths", app.events:read({ { types = { "CourseRenamed" } } })[1].data.name)
    end)
  end)
end)

describe("DCB across processes (" .. helper.engine .. ":)", function()
  local dir
  before_each(function() dir = helper.tmpdir() end)
  after_each(function() helper.rmrf(dir) end)

  it("lets exactly one of four processes append under the same condition, beside aggregate saves", function()
    local uri = helper.store_uri(dir, "race")
    local script = [[
local cairn = require "cairn"
local dir, uri, name = arg[1], arg[2], arg[3]
local Note = cairn.aggregate("Note")
Note:created("Written", function(self) self.written = true end)
local app = cairn.application("Courses").new { store = uri, sync = "none" }
local won = 0
while not io.open(dir .. "/go") do end
for k = 1, 30 do
  app:save(Note()) -- aggregate saves between the appends (on PostgreSQL, often numbered after commit)
  local q = { { tags = { "seat:" .. k } } }
  local events, head = app.events:read(q)
  if #events == 0 then
    local ok, err = pcall(app.events.append, app.events,
      { { type = "SeatTaken", data = { by = name }, tags = { "seat:" .. k } } },
      { fail_if_events_match = q, after = head })
    if ok then won = won + 1
    elseif not cairn.errors.is(err, "ConcurrencyError") then error(err, 0) end
  end
end
local f = assert(io.open(dir .. "/won." .. name, "w"))
f:write(won)
f:close()
]]
    local code, err = helper.race_processes(script, dir, uri, 4)
    assert.are.equal(0, code, err)
    local total = 0
    for i = 1, 4 do
      local won = assert(helper.read_file(dir .. "/won." .. i), "process " .. i .. " wrote nothing: " .. err)
      total = total + tonumber(won)
    end
    assert.are.equal(30, total)
    local app = Courses.new { store = uri, sync = "none" }
    finally(function() app:close() end)
    for k = 1, 30 do assert.are.equal(1, #app.events:read({ { tags = { "seat:" .. k } } })) end
    assert.are.equal(30 + 4 * 30, app:max_notification_id())
    assert.are.equal(30, #app.events:read({}))
    -- ids without gaps, the index agreeing with the log
    local code2, out, err2 = helper.run(helper.shell_quote(helper.cairn_bin) .. " verify " .. helper.shell_quote(uri))
    assert.are.equal(0, code2, out .. err2)
  end)
end)

describe("store:read_events { ids = ... }", function()
  it("reads exactly the ids given, and refuses ids out of order", function()
    local app = Courses.new()
    finally(function() app:close() end)
    fill(app)
    local ids, events = app.store:read_events { ids = { 1, 2, 4, 6, 9 } }
    assert.are.same({ 1, 2, 4, 6 }, ids)
    -- each the event at its id (one read walks steps and seeks alike)
    for i, id in ipairs(ids) do
      local _, one = app.store:read_events { from = id, limit = 1 }
      assert.are.same(one[1], events[i])
    end
    helper.assert_error_kind("SchemaError", function() app.store:read_events { ids = { 4, 2 } } end,
      "read_log: ids must be ascending")
    helper.assert_error_kind("SchemaError", function() app.store:read_events { ids = { 0 } } end,
      "read_log: ids must be whole numbers >= 1, ascending")
    assert.has_error(function() app.store:read_events { ids = 3 } end,
      "bad option 'ids' to 'read_events' (array of notification ids expected)")
  end)
end)

describe("the DCB index and idempotency records, checked and upgraded (" .. helper.engine .. ":)", function()
  local dir
  before_each(function() dir = helper.tmpdir() end)
  after_each(function() helper.rmrf(dir) end)

  local function hex(s) return (s:gsub(".", function(c) return ("%02x"):format(c:byte()) end)) end
  local function be64(n) return ("%016x"):format(n) end

  -- Damage the index: the tag entry of `tag` for event id gone, a type entry that names
  -- the wrong event added, and the record of key `k` pointing past the log.
  local damage = {
    lmdb = function(uri, tag, id, wrong_type, wrong_id, key)
      local store = helper.shell_quote(uri:match("^lmdb:(.*)$"))
      local function name(kind, s) return kind .. ("%02x"):format(#s) .. hex(s) end
      for _, args in ipairs { "--index-del " .. store .. " " .. name("67", tag) .. be64(id),
                              "--index-put " .. store .. " " .. name("79", wrong_type) .. be64(wrong_id) .. " ''",
                              "--index-put " .. store .. " " .. name("6f", key) .. " " .. be64(50) .. be64(1) } do
        local code, _, err = helper.run(helper.shell_quote(helper.tests_bin) .. " " .. args)
        assert.are.equal(0, code, err)
      end
    end,
    postgresql = function(uri, tag, id, wrong_type, wrong_id, key)
      local schema = uri:match("schema=([%w_]+)")
      helper.pg_sql(("DELETE FROM %s.dcb WHERE name = '\\x67%s'::bytea AND id = %d; "
        .. "INSERT INTO %s.dcb VALUES ('\\x79%s'::bytea, %d, '\\x%s'::bytea); "
        .. "UPDATE %s.once SET first_id = 50, n = 1 WHERE key = '\\x%s'::bytea"):format(schema, hex(tag), id,
        schema, hex(wrong_type), wrong_id, hex(wrong_type), schema, hex(key)))
    end,
  }

  it("finds nothing wrong in a sound store, and reports entries gone, wrong and dangling", function()
    local uri = helper.store_uri(dir, "v")
    local app = Courses.new { store = uri, sync = "none" }
    fill(app)
    app:save_once("pay-1")
    app:close()
    local cairn_bin = helper.shell_quote(helper.cairn_bin)
    local code, out, err = helper.run(cairn_bin .. " verify " .. helper.shell_quote(uri))
    assert.are.equal(0, code, err)
    assert.matches("problems: 0", out, 1, true)
    damage[helper.engine](uri, "course:c1", 4, "Nothing", 3, "pay-1")
    code, out, err = helper.run(cairn_bin .. " verify " .. helper.shell_quote(uri) .. " --all")
    assert.are.equal(1, code, out)
    local all = out .. err
    assert.matches("DCB event 4 is not indexed by its tag 'course:c1'", all, 1, true)
    assert.matches("the DCB index entry (type 'Nothing') says notification 3 is of type 'Nothing'; "
      .. "it is 'StudentRegistered'", all, 1, true)
    assert.matches("the idempotency record of 'pay-1' names notifications 50 to 50", all, 1, true)
  end)

  if helper.engine == "postgresql" then
    it("reads a PostgreSQL store made before DCB events as holding none until a writer adds the tables", function()
      local uri = helper.store_uri(dir, "old")
      local app = Courses.new { store = uri, sync = "none" }
      local Dog = helper.school("training_school").Dog
      app:save(Dog("Fido"))
      app:close()
      local schema = uri:match("schema=([%w_]+)")
      helper.pg_sql(("DROP TABLE %s.dcb, %s.once; DROP FUNCTION %s.dcb_match"):format(schema, schema, schema))
      -- a tool's open changes nothing and finds no DCB events
      local code, out, err = helper.run(helper.shell_quote(helper.cairn_bin) .. " export " .. helper.shell_quote(uri))
      assert.are.equal(0, code, err)
      assert.not_matches('"dcb"', out, 1, true)
      assert.are.equal("f", helper.pg_sql(("SELECT to_regclass('%s.dcb') IS NOT NULL"):format(schema)))
      app = Courses.new { store = uri, sync = "none" }
      finally(function() app:close() end)
      assert.are.same({}, app.events:read({}))
      assert.are.equal(2, app.events:append({ ev("CourseDefined", { "course:c1" }) },
        { fail_if_events_match = { { tags = { "course:c1" } } }, after = 1 }))
      assert.are.same({ 2 }, positions(app.events:read({ { tags = { "course:c1" } } })))
    end)
  end
end)
