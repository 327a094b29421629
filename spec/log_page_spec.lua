--- The two log read paths give the same tables: pages built in compiled Lua
-- (cairn.log_page, taken while the JIT is on) and the binding's tables (the
-- classic path, for when the FFI cannot be used). The same reads run through
-- both, on every engine under test, over a log holding every kind of value,
-- metadata, string ids, DCB events, upcast and forgotten events, records
-- without event ids and payloads named like header fields; the log, section,
-- event and projection specs run again on the classic path.
local cairn = require "cairn"
local core = require "cairn.core"
local recorder = require "cairn.recorder"
local log_page = require "cairn.log_page"
local helper = require "helper"

local KEY = core.keygen()

-- A canonical text of a value: types, every key and value, and the
-- cairn.time metatable (assert.same would ignore metatables).
local function dump(v, out)
  out = out or {}
  local t = type(v)
  if t == "table" then
    out[#out + 1] = getmetatable(v) == core.time_metatable and "time{" or (getmetatable(v) and "mt{" or "{")
    local keys = {}
    for k in pairs(v) do keys[#keys + 1] = k end
    table.sort(keys, function(a, b)
      if type(a) ~= type(b) then return type(a) < type(b) end
      return a < b
    end)
    for _, k in ipairs(keys) do
      dump(k, out)
      out[#out + 1] = "="
      dump(v[k], out)
      out[#out + 1] = ","
    end
    out[#out + 1] = "}"
  elseif t == "number" then
    out[#out + 1] = ("%.17g"):format(v)
  elseif t == "string" then
    out[#out + 1] = ("%q"):format(v)
  else
    out[#out + 1] = tostring(v)
  end
  return table.concat(out)
end

-- fn's results (or its error) on one path
local function on_path(page, fn)
  local was = log_page.enabled
  log_page.enabled = page
  local results = { pcall(fn) }
  log_page.enabled = was
  if page then assert.is_true(log_page.on(), "the page path is not taken: is the JIT on?") end
  if not results[1] then
    local err = results[2]
    return "error " .. (type(err) == "table" and (err.kind .. ": " .. err.message) or tostring(err))
  end
  return dump({ select(2, unpack(results, 1, table.maxn(results))) })
end

-- fn gives the same on both paths; returns what the page path gave
local function same_on_both(fn)
  local page, classic = on_path(true, fn), on_path(false, fn)
  assert.are.equal(classic, page)
  return page
end

local Thing = cairn.aggregate("Thing")
Thing:created("Made", function(self, label) self.label = label end)
Thing:event("Changed", function(self) end) -- luacheck: ignore 212

local Order = cairn.aggregate("PageOrder", { id = "string" })
function Order.create_id(number) return "order-" .. number end
Order:created("Placed", function(self, number) self.number = number end)

local LogApp = cairn.application("LogPages")

-- Values of every kind the codec stores, as fields.
local function every_value()
  local many = {}
  for i = 1, 20 do many["f" .. i] = i end
  return {
    s = "text", empty = "", unicode = "h\u{e9}llo \u{1F415}", long = ("x"):rep(300),
    ints = { 0, 127, 128, 255, 256, 65535, 65536, 2 ^ 31, 2 ^ 32, 2 ^ 53, -1, -32, -33, -128, -129, -2 ^ 31 - 1,
             -2 ^ 53 },
    floats = { 0.5, -1.25, 1e300, 1 / 3, -0.0 },
    yes = true, no = false,
    nested = { { 1, 2, { 3, { 4 } } }, { a = { b = { c = "deep" } } } },
    sparse = { [1] = "a", [3] = "c", [10] = "j" },
    mixed = { "first", key = "value", [2.5] = "float key" },
    empty_table = {},
    uuid = "0f5d1ab5-1c4d-4e58-9a7a-6f4f9e3a2b10",
    when = cairn.time.from_seconds(1700000000.123456),
    [("k"):rep(40)] = "a 40-byte name", [("n"):rep(70)] = "a 70-byte name",
    many = many,
  }
end

-- The log: things with every kind of value and metadata, a string id, DCB
-- events, raw records (no event id, fields named like header fields, older
-- class versions), and with a cipher key a forgotten aggregate.
local function fill(app, encrypted)
  local a, b = Thing("a"), Thing("b")
  a:trigger("Changed", every_value(), { user = "ann", request = 7, trace = { 1, 2 } })
  b:trigger("Changed", { n = 1 })
  a:trigger("Changed", {}, {})
  app:save(a, b)
  app:save(Order("2026-1"))
  app.events:append { { type = "Enrolled", tags = { "course:c1", "student:s1" }, data = { seat = 3 } } }
  local batch, n = {}, 0
  local raw = core.uuid4()
  n = recorder.add(batch, n, raw, 1, 1700000000000000, "Raw.Named",
    core.encode { topic = "t", position = 9, type = "x", event_id = "e", metadata = 1, originator_id = "o", n = 1 }, 1)
  n = recorder.add(batch, n, raw, 2, 1700000000000001, "Raw.Later", core.encode { old = true }, 3)
  recorder.add(batch, n, raw, 3, 1700000000000002, "Raw.Empty", "\144", 1) -- no fields: an empty array
  app.store:append(batch)
  if encrypted then
    local gone = Thing("gone")
    gone:trigger("Changed", { secret = "s" }, { who = "me" })
    app:save(gone)
    app:forget(gone.id)
  end
end

local QUERIES = {
  {}, { from = 3 }, { from = 2, stop = 5 }, { limit = 2 }, { from = 4, limit = 3 }, { stop = 0 }, { limit = 0 },
  { topics = { "Thing.Changed" } }, { topics = { "Raw.Named", "PageOrder.Placed" }, limit = 1 }, { topics = {} },
  { ids = { 1, 3, 8 } }, { ids = {} }, { replay = true }, { dcb = true }, { dcb = true, ids = { 7 } },
}

helper.each_store(function(ctx)
  describe("log reads on both paths", function()
    local function check_all(app)
      for _, q in ipairs(QUERIES) do
        same_on_both(function() return app.store:read_log(q) end)
        same_on_both(function() return app.store:read_events(q) end)
      end
      same_on_both(function() return app.log:select(1, 100) end)
      same_on_both(function() return app.log:select(2, 3, { topics = { "Thing.Changed" } }) end)
      same_on_both(function() return app.log:section("current") end)
      same_on_both(function() return app.events:read({ { tags = { "course:c1" } } }) end)
    end

    it("give the same notifications and events, of every kind of value", function()
      local app = ctx.open(LogApp)
      fill(app)
      check_all(app)
      local page = app.log:select(1, 100)
      local ev = page[1].event
      assert.are.equal("Thing.Made", page[1].topic)
      assert.are.equal("a", ev.label)
      local changed = page[2].event
      assert.are.same({ user = "ann", request = 7, trace = { 1, 2 } }, changed.metadata)
      assert.are.equal(2 ^ 53, changed.ints[10])
      assert.are.equal(core.time_metatable, getmetatable(changed.when))
      assert.are.equal("deep", changed.nested[2].a.b.c)
      assert.are.equal("0f5d1ab5-1c4d-4e58-9a7a-6f4f9e3a2b10", changed.uuid)
      assert.are.equal("order-2026-1", page[6].originator_id)
      -- a record without an event id keeps a field named event_id; the header wins over the others
      local named = page[8].event
      assert.are.equal("Raw.Named", named.topic)
      assert.are.equal("e", named.event_id)
      assert.are.same({}, named.metadata)
      assert.are.equal(3, page[9].class_version)
      assert.is_true(page[9].event.old)
      -- as a DCB event: its position and type win over its fields
      local _, dcb = app.store:read_events { ids = { 8 }, dcb = true }
      assert.are.equal(8, dcb[1].position)
      assert.are.equal("Raw.Named", dcb[1].type)
      assert.are.equal("t", dcb[1].topic)
    end)

    it("upcast the same events", function()
      local app = ctx.open(LogApp)
      fill(app)
      local Raw = cairn.aggregate("Raw")
      Raw:created("Named", function(self) end, -- luacheck: ignore 212
    { version = 2, upcast = { [1] = function(f) f.up = f.n + 1; return f end } })
      finally(function() cairn.aggregate("Raw") end)
      check_all(app)
      local named = app.log:select(8, 1)[1]
      assert.are.equal(2, named.class_version)
      assert.are.equal(2, named.event.up)
    end)

    it("give forgotten notifications the same way, with the payload gone", function()
      local app = ctx.open(LogApp, { cipher_key = KEY })
      fill(app, true)
      check_all(app)
      local last = app.log:select(11, 2)
      assert.are.equal(2, #last)
      assert.is_true(last[1].forgotten)
      assert.is_true(last[2].forgotten)
      assert.is_nil(last[2].event.secret)
      assert.are.same({}, last[2].event.metadata)
    end)

    it("accept and refuse the same payloads, valid and damaged", function()
      -- valid encodings of every kind of value, then each damaged at random
      -- (a byte changed, cut short, a byte added); one record each
      local app = ctx.open(LogApp)
      local seeds = { core.encode(every_value()), core.encode { a = { 1, { b = "c" } }, [5] = true },
                      core.encode { t = cairn.time.from_seconds(1), u = "0f5d1ab5-1c4d-4e58-9a7a-6f4f9e3a2b10" },
                      core.encode { 1, 2, true, false, 3 }, core.encode { a = 1, b = true, c = -1, d = 0.5 } }
      math.randomseed(12)
      local batch, n, count = {}, 0, 0
      local specials = { 0xc1, 0xc7, 0xd4, 0xd8, 0xd9, 0xdc, 0xde, 0xdf, 0xc0, 0x90, 0x80, 0xa0, 0xff }
      for i = 1, 1500 do
        local p = seeds[i % #seeds + 1]
        local at, how = math.random(1, #p), i % 4
        if how == 1 then
          local byte = math.random(2) == 1 and specials[math.random(#specials)] or math.random(0, 255)
          p = p:sub(1, at - 1) .. string.char(byte) .. p:sub(at + 1)
        elseif how == 2 then
          p = p:sub(1, at - 1)
        elseif how == 3 then
          p = p:sub(1, at) .. string.char(specials[math.random(#specials)]) .. p:sub(at + 1)
        end
        n = recorder.add(batch, n, core.uuid4(), 1, 1700000000000000 + i, "Fuzz.Case", p, 1)
        count = count + 1
      end
      app.store:append(batch)
      local refused = 0
      for id = 1, count do
        local got = same_on_both(function() return app.store:read_log { ids = { id } } end)
        if got:find("^error") then refused = refused + 1 end
      end
      assert.is_true(refused > 200 and refused < count - 200, refused .. " of " .. count .. " refused")
    end)

    it("refuse a malformed payload with the same error", function()
      local app = ctx.open(LogApp)
      local batch = {}
      recorder.add(batch, 0, core.uuid4(), 1, 1700000000000000, "Raw.Bad", "\129\161k\193", 1)
      app.store:append(batch)
      local err = same_on_both(function() return app.store:read_log() end)
      assert.matches("error IntegrityError: aggregate [%x%-]+ version 1 %(notification 1%): the stored payload is "
        .. "malformed", err)
    end)
  end)
end)

describe("a log page", function()
  local dir
  before_each(function() dir = helper.tmpdir() end)
  after_each(function() helper.rmrf(dir) end)

  -- An error raised while Lua builds a page: the read ended before, so
  -- another handle can grow the map (which waits for every read of the
  -- process to end) and the handle reads on. In a process of its own, with a
  -- time limit: a read left open would hang it.
  local CHILD = [[
local cairn = require "cairn"
local log_page = require "cairn.log_page"
local recorder = require "cairn.recorder"
local Note = cairn.aggregate("Note")
Note:created("Written", function(self, text) self.text = text end)
local App = cairn.application("PageApp")
local env = { store = "lmdb:" .. arg[1], sync = "none", map_size = 65536 }
local a, b = App.new(env), App.new(env)
for i = 1, 50 do a:save(Note("n" .. i)) end
-- topic versions whose look-up raises: the page's tables are being made then
recorder.set_upcaster(setmetatable({ Other = 2 }, { __index = function() error("raised while building", 0) end }))
print(log_page.on(), pcall(a.log.select, a.log, 1, 100))
recorder.set_upcaster({})
local big = Note(string.rep("z", 2 * 1024 * 1024))
b:save(big)
print(#b.repository:get(big.id).text, #a.log:select(1, 100))
a:close()
b:close()
]]

  it("raising while its tables are built holds no read", function()
    if helper.engine ~= "lmdb" then return end
    helper.write_file(dir .. "/child.lua", CHILD)
    local code, out, err = helper.run(("timeout 60 %s run %s %s"):format(helper.shell_quote(helper.cairn_bin),
      helper.shell_quote(dir .. "/child.lua"), helper.shell_quote(dir .. "/store")))
    assert.are.equal(0, code, out .. err)
    assert.are.equal("true\tfalse\traised while building\n2097152\t51\n", out)
  end)

  it("checks its layout against the binding's", function()
    assert.matches("^tok 16 rec %d+ str 16 page %d+$", core.PAGE_LAYOUT)
  end)
end)

-- The log, section, DCB and projection specs once more on the classic path
-- (CAIRN_NO_FFI=1), in a process of their own; their normal run takes the
-- page path. (Values, encryption and forgetting: the equality checks above.)
describe("the classic read path", function()
  it("passes the log, notification, DCB and projection specs", function()
    if helper.engine ~= "lmdb" then return end -- on PostgreSQL, the equality checks above cover it
    local files = { "recorder", "application", "string_id", "dcb", "projection" }
    for i, f in ipairs(files) do files[i] = helper.shell_quote(helper.root .. "/spec/" .. f .. "_spec.lua") end
    local code, out, err = helper.run(("cd %s && CAIRN_NO_FFI=1 %s /usr/bin/busted %s"):format(
      helper.shell_quote(helper.root), os.getenv("LUAJIT") or "luajit", table.concat(files, " ")))
    assert.are.equal(0, code, out .. err)
  end)
end)
