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

    it("works on an encrypted, compressed store", function()
      local app = ctx.open(Courses, { cipher_key = require("cairn.core").keygen(),
                                      compressor = "zstd" })
      fill(app)
      assert.are.same({ 4, 5 }, positions(app.events:read({ { types = { "StudentSubscribed" } } })))
      assert.are.equal("Maths", app.events:read({ { types = { "CourseRenamed" } } })[1].data.name)
    end)
  end)
end, { "memory", "lmdb" })

describe("DCB across processes (lmdb:)", function()
  local dir
  before_each(function() dir = helper.tmpdir() end)
  after_each(function() helper.rmrf(dir) end)

  it("lets exactly one of four processes append under the same condition", function()
    local uri = helper.store_uri(dir, "race", "lmdb")
    local script = [[
local cairn = require "cairn"
local dir, uri, name = arg[1], arg[2], arg[3]
local app = cairn.application("Courses").new { store = uri, sync = "none" }
local won = 0
while not io.open(dir .. "/go") do end
for k = 1, 30 do
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
    assert.are.equal(30, app:max_notification_id())
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
