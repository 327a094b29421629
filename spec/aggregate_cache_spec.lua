-- The aggregate cache (CAIRN_AGGREGATE_CACHE, API.md §3 and §9).
local cairn = require "cairn"
local helper = require "helper"
local aggregate_cache = require "cairn.aggregate_cache"

local Counter = cairn.aggregate("CacheCounter")
Counter:created("Started", function(self) self.n = 0; self.log = {} end)
Counter.bump = Counter:event("Bumped", function(self, by)
  self.n = self.n + by
  self.log[#self.log + 1] = by
end)

local Counters = cairn.application("CacheCounters")

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

  it("refuses a bad CAIRN_AGGREGATE_CACHE, and 0 turns it off", function()
    helper.assert_error_kind("ConfigError", function() Counters.new { aggregate_cache = "many" } end,
      "CAIRN_AGGREGATE_CACHE must be a whole number of aggregates from 0 to 2^31 (got 'many')")
    helper.assert_error_kind("ConfigError", function() Counters.new { aggregate_cache = -1 } end)
    assert.is_nil(ctx.open(Counters, { aggregate_cache = 0 }).repository.cache)
    assert.is_nil(ctx.open(Counters).repository.cache)
  end)
end, { "memory", helper.engine })

describe("cairn.aggregate_cache", function()
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
