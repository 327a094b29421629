-- The aggregate cache (CAIRN_AGGREGATE_CACHE, API.md §3 and §9).
local helper = require "helper"
local aggregate_cache = require "cairn.aggregate_cache"

-- the classes, shared with the processes the specs start
local COUNTERS = helper.root .. "/spec/fixtures/cache_counters.lua"
local Counter, Counters = dofile(COUNTERS)

helper.each_store(function(ctx)
  it("serves gets from the cache, brought up to date with what another handle saved", function()
    local app = ctx.open(Counters, { aggregate_cache = 10 })
    local c = Counter()
    app:save(c)
    assert.are.equal(0, app.repository.cache:count()) -- a new aggregate is cached by its first get
    local a = app.repository:get(c.id)
    assert.are.equal(1, app.repository.cache:count())
    a:bump(2)
    app:save(a)
    if ctx.engine ~= "memory" then
      -- another application (another process would do the same) saves meanwhile
      local other = ctx.open(Counters)
      local b = other.repository:get(c.id)
      b:bump(5)
      other:save(b)
    end
    local got = app.repository:get(c.id)
    local want = ctx.engine == "memory" and 2 or 7
    assert.are.equal(want, got.n)
    assert.are.equal(ctx.engine == "memory" and 2 or 3, got.version)
    assert.are.same(ctx.engine == "memory" and { 2 } or { 2, 5 }, got.log)
    -- and it goes on: a save from the cached copy is not stale, and the cache takes its events
    got:bump(1)
    app:save(got)
    assert.are.equal(want + 1, app.repository.cache:peek(c.id).n)
    assert.are.equal(want + 1, app.repository:get(c.id).n)
  end)

  it("never shares an aggregate between callers or with the cache", function()
    local app = ctx.open(Counters, { aggregate_cache = 10 })
    local c = Counter()
    c:bump(1)
    app:save(c)
    local x, y = app.repository:get(c.id), app.repository:get(c.id)
    assert.are_not.equal(x, y)
    assert.are_not.equal(x.log, y.log)
    x.log[1] = 99
    x.n = 42
    x:bump(3) -- not saved
    assert.are.same({ 1 }, app.repository:get(c.id).log)
    assert.are.equal(1, app.repository:get(c.id).n)
    c.n = 1000 -- the saved object itself, changed after the save
    assert.are.equal(1, app.repository:get(c.id).n)
  end)

  it("gives AggregateNotFound for a discarded aggregate, cached or not", function()
    local app = ctx.open(Counters, { aggregate_cache = 10 })
    local c = Counter()
    app:save(c)
    local got = app.repository:get(c.id)
    got:discard()
    app:save(got)
    helper.assert_error_kind("AggregateNotFound", function() app.repository:get(c.id) end, "was discarded")
    assert.are.equal(0, app.repository.cache:count())
  end)

  it("keeps at most N aggregates, the least recently used dropped first", function()
    local app = ctx.open(Counters, { aggregate_cache = 2 })
    local a, b, c = Counter(), Counter(), Counter()
    app:save(a, b, c)
    app.repository:get(b.id)
    app.repository:get(a.id)
    app.repository:get(c.id) -- b, the least recently used, goes
    local cache = app.repository.cache
    assert.are.equal(2, cache:count())
    assert.is_nil(cache:peek(b.id))
    assert.is_not_nil(cache:peek(a.id))
    assert.are.equal(0, app.repository:get(b.id).n) -- read from the store
  end)

  it("reads past the cache for a given version", function()
    local app = ctx.open(Counters, { aggregate_cache = 10 })
    local c = Counter()
    c:bump(1)
    c:bump(2)
    app:save(c)
    assert.are.equal(1, app.repository:get(c.id, { version = 2 }).n)
    assert.are.equal(3, app.repository:get(c.id).n)
  end)

  it("reads the store again when the cached head is not the stored one", function()
    local app = ctx.open(Counters, { aggregate_cache = 10 })
    local c = Counter()
    c:bump(4)
    app:save(c)
    local stored_head = app.repository:get(c.id).head
    local cached = app.repository.cache:peek(c.id)
    assert.are.equal(stored_head, cached.head)
    -- what the cache holds is no longer what the store holds at that version
    cached.head, cached.n = "not the stored hash", 99
    local got = app.repository:get(c.id)
    assert.are.equal(4, got.n)
    assert.are.equal(stored_head, got.head)
    assert.are.equal(4, app.repository.cache:peek(c.id).n) -- cached again from the store
  end)

  it("answers stream_head with the last version and hash, without reading events", function()
    local app = ctx.open(Counters)
    local store = app.store
    local c = Counter()
    assert.are.same({ 0, nil, false }, { store:stream_head(c.id) })
    c:bump(1)
    c:bump(2)
    app:save(c)
    local events, head = store:read_stream(c.id)
    local version, hash, forgotten = store:stream_head(c.id)
    assert.are.equal(3, version)
    assert.are.equal(head, hash)
    assert.are.equal(events[3].originator_version, version)
    assert.is_false(forgotten)
    assert.are.same({ 0, nil, false }, { store:stream_head("not-a-uuid") }) -- a string id with no events
    helper.assert_error_kind("AggregateNotFound", function() store:stream_head("") end, "no such aggregate")
  end)

  it("refuses a bad CAIRN_AGGREGATE_CACHE, and 0 turns it off", function()
    helper.assert_error_kind("ConfigError", function() Counters.new { aggregate_cache = "many" } end,
      "CAIRN_AGGREGATE_CACHE must be a whole number of aggregates from 0 to 2^31 (got 'many')")
    helper.assert_error_kind("ConfigError", function() Counters.new { aggregate_cache = -1 } end)
    assert.is_nil(ctx.open(Counters, { aggregate_cache = 0 }).repository.cache)
    assert.is_nil(ctx.open(Counters).repository.cache)
  end)
end, { "memory", helper.engine })

describe("cairn.aggregate_cache", function()
  it("copies tables used as keys, and values that are not tables as they are", function()
    local key = { "k" }
    local v = { [key] = { 1 }, other = key }
    local w = aggregate_cache.copy(v)
    local copied_key = w.other
    assert.are_not.equal(key, copied_key)
    assert.are.same({ "k" }, copied_key)
    assert.is_nil(w[key])
    assert.are.same({ 1 }, w[copied_key])
    assert.are_not.equal(v[key], w[copied_key])
    assert.are.equal("x", aggregate_cache.copy("x"))
  end)

  it("copies tables all the way down, keeping shared tables shared and metatables", function()
    local mt = {}
    local shared = setmetatable({ 1 }, mt)
    local v = { a = shared, b = shared, c = { d = { e = 1 } } }
    v.self = v
    local w = aggregate_cache.copy(v)
    assert.are_not.equal(v.a, w.a)
    assert.are.equal(w.a, w.b)
    assert.are.equal(mt, getmetatable(w.a))
    assert.are.equal(w, w.self)
    assert.are.same(v.c, w.c)
  end)
end)

describe("the aggregate cache and forget (lmdb:)", function()
  local dir
  before_each(function() dir = helper.tmpdir() end)
  after_each(function() helper.rmrf(dir) end)

  it("never hands out an aggregate forgotten here or by another handle", function()
    local key = require("cairn.core").keygen()
    local uri = helper.store_uri(dir, "enc", "lmdb")
    local app = Counters.new { store = uri, sync = "none", cipher_key = key, aggregate_cache = 10 }
    local other = Counters.new { store = uri, sync = "none", cipher_key = key }
    finally(function() app:close(); other:close() end)
    local a, b = Counter(), Counter()
    app:save(a, b)
    app.repository:get(a.id)
    app.repository:get(b.id)
    app:forget(a.id)
    helper.assert_error_kind("AggregateNotFound", function() app.repository:get(a.id) end, "forgotten")
    other:forget(b.id) -- the cache of app still holds b
    helper.assert_error_kind("AggregateNotFound", function() app.repository:get(b.id) end, "forgotten")
    assert.are.equal(0, app.repository.cache:count())
  end)
end)

describe("the aggregate cache across processes (lmdb:)", function()
  local dir
  before_each(function() dir = helper.tmpdir() end)
  after_each(function() helper.rmrf(dir) end)

  -- a `cairn run` script: this spec's classes, then body
  local function script(body)
    return ([[
local errors = require "cairn.errors"
local Counter, Counters = dofile(%q)
]]):format(COUNTERS) .. body
  end

  local function run_child(body, ...)
    local path = dir .. "/child.lua"
    helper.write_file(path, script(body))
    local args = {}
    for i, a in ipairs({ ... }) do args[i] = helper.shell_quote(a) end
    return helper.run(("%s run %s %s"):format(helper.shell_quote(helper.cairn_bin), helper.shell_quote(path),
      table.concat(args, " ")))
  end

  it("brings a cached aggregate up to date with what another process saved", function()
    local uri = helper.store_uri(dir, "shared", "lmdb")
    local app = Counters.new { store = uri, sync = "none", aggregate_cache = 10 }
    finally(function() app:close() end)
    local c = Counter()
    c:bump(1)
    app:save(c)
    assert.are.equal(1, app.repository:get(c.id).n) -- cached now
    local code, _, err = run_child([[
local app = Counters.new { store = arg[1], sync = "none" }
local c = app.repository:get(arg[2])
c:bump(10)
c:bump(100)
app:save(c)
]], uri, c.id)
    assert.are.equal(0, code, err)
    local got = app.repository:get(c.id)
    assert.are.equal(111, got.n)
    assert.are.same({ 1, 10, 100 }, got.log)
    assert.are.equal(4, got.version)
    -- the cache itself moved on, and a save from the copy is not stale
    assert.are.equal(4, app.repository.cache:peek(c.id).version)
    got:bump(1000)
    app:save(got)
    assert.are.equal(1111, app.repository:get(c.id).n)
  end)

  it("never hands out an aggregate another process forgot", function()
    local key = require("cairn.core").keygen()
    local uri = helper.store_uri(dir, "enc", "lmdb")
    local app = Counters.new { store = uri, sync = "none", cipher_key = key, aggregate_cache = 10 }
    finally(function() app:close() end)
    local c = Counter()
    app:save(c)
    app.repository:get(c.id)
    assert.are.equal(1, app.repository.cache:count())
    local code, _, err = run_child([[
local app = Counters.new { store = arg[1], sync = "none", cipher_key = arg[2] }
app:forget(arg[3])
]], uri, key, c.id)
    assert.are.equal(0, code, err)
    helper.assert_error_kind("AggregateNotFound", function() app.repository:get(c.id) end, "forgotten")
    assert.are.equal(0, app.repository.cache:count())
  end)

  it("keeps four processes' caches coherent while they race to change the same aggregates", function()
    local uri = helper.store_uri(dir, "race", "lmdb")
    local app = Counters.new { store = uri, sync = "none", aggregate_cache = 10 }
    finally(function() app:close() end)
    local a, b = Counter(), Counter()
    app:save(a, b)
    helper.write_file(dir .. "/ids", a.id .. "\n" .. b.id .. "\n")
    local child = script([[
local dir, uri, name = arg[1], arg[2], arg[3]
local ids = {}
for line in io.lines(dir .. "/ids") do ids[#ids + 1] = line end
local app = Counters.new { store = uri, sync = "none", aggregate_cache = 10 }
while not io.open(dir .. "/go") do end
local conflicts = 0
for k = 1, 50 do
  local id = ids[k % 2 + 1]
  while true do
    local c = app.repository:get(id)
    -- what the cache gave is the stored state: its sum is its log's
    local sum = 0
    for _, by in ipairs(c.log) do sum = sum + by end
    assert(sum == c.n and #c.log == c.version - 1, "an inconsistent aggregate was handed out")
    c:bump(1)
    local ok, err = pcall(app.save, app, c)
    if ok then break end
    if not errors.is(err, "ConcurrencyError") then error(err, 0) end
    conflicts = conflicts + 1
    -- another process saved between this get and save; a stale cache would conflict for ever
    assert(conflicts < 1000, "1,000 conflicts: the cache keeps handing out a stale aggregate")
  end
end
local f = assert(io.open(dir .. "/out." .. name, "w"))
f:write(conflicts, "\n")
f:close()
]])
    local code, err = helper.race_processes(child, dir, uri, 4)
    assert.are.equal(0, code, err)
    for i = 1, 4 do
      assert.is_truthy(helper.read_file(dir .. "/out." .. i), "process " .. i .. " did not finish: " .. err)
    end
    -- every successful save counted once: 4 processes x 25 bumps on each aggregate
    for _, id in ipairs({ a.id, b.id }) do
      local got = app.repository:get(id)
      assert.are.equal(100, got.n)
      assert.are.equal(101, got.version)
    end
  end)
end)
