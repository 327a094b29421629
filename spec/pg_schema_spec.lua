--- PostgreSQL schema versions: a writer brings a schema an older cairn left up to date
-- (one transaction, under the schema's lock, so writers opening it at once do not race);
-- a read-only tool reads an older schema as it is and writes nothing; a schema of a newer
-- cairn is refused with a ConfigError naming both versions. PostgreSQL only.
local helper = require "spec.helper"
local cairn = require "cairn"

local describe_pg = helper.engine == "postgresql" and describe
  or function(name) it(name .. " (PostgreSQL only: skipped)", function() end) end

local VERSION = 3 -- what this cairn writes (runtime/store/pg_internal.h: CAIRN_PG_FORMAT)

local Counter = cairn.aggregate("SchemaCounter")
Counter:created("Started", function(self) self.total = 0 end)
Counter:event("Added", function(self, n) self.total = self.total + n end)
local Counters = cairn.application("SchemaCounters")

describe_pg("PostgreSQL schema versions", function()
  local dir, uri, schema
  before_each(function()
    dir = helper.tmpdir()
    uri = helper.store_uri(dir)
    schema = uri:match("schema=([%w_]+)")
  end)
  after_each(function() helper.rmrf(dir) end)

  local function version()
    return tonumber(helper.psql(("SELECT convert_from(value, 'UTF8') FROM %s.meta WHERE key = 'format'"):format(
      schema)))
  end

  local function make_store(n)
    local app = Counters.new { store = uri }
    for _ = 1, n do
      local c = Counter()
      c:trigger("Added", { n = 1 })
      app:save(c)
    end
    app:close()
  end

  -- what a cairn of version 1 or 2 left: its version, a `seq` identity for a primary key and a
  -- counter table at the highest id; version 1 without the `pos` column and number() (one of
  -- the functions it had is gone too, as a binary that never made it would have left it)
  local function as_version(v)
    local steps = {
      "ALTER TABLE %s.events ADD COLUMN seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY",
      "DROP VIEW %s.counter",
      "CREATE TABLE %s.counter (one boolean PRIMARY KEY DEFAULT true CHECK (one), last bigint NOT NULL)",
      "INSERT INTO %s.counter SELECT true, coalesce(max(id), 0) FROM %s.events",
      ("UPDATE %%s.meta SET value = '%d' WHERE key = 'format'"):format(v),
    }
    if v == 1 then
      steps[#steps + 1] = "ALTER TABLE %s.events DROP COLUMN pos"
      steps[#steps + 1] = "DROP FUNCTION %s.number(uuid, bigint)"
    end
    for i, step in ipairs(steps) do steps[i] = step:gsub("%%s", schema) end
    helper.psql(table.concat(steps, "; "))
    assert.are.equal(v, version())
  end

  local function as_current()
    assert.are.equal(VERSION, version())
    assert.are.equal("v", helper.psql(("SELECT relkind FROM pg_class WHERE oid = '%s.counter'::regclass"):format(
      schema)))
    assert.are.equal("pos", helper.psql(("SELECT string_agg(column_name::text, ',') FROM information_schema.columns "
      .. "WHERE table_schema = '%s' AND table_name = 'events' AND column_name IN ('pos', 'seq')"):format(schema)))
    assert.are.equal("1", helper.psql(("SELECT count(*) FROM pg_proc WHERE proname = 'number' "
      .. "AND pronamespace = '%s'::regnamespace"):format(schema)))
  end

  it("a store tool reads a schema an older cairn left, as it is, writing nothing", function()
    make_store(3)
    as_version(1)
    local code, out, err = helper.run(("%s log %s"):format(helper.shell_quote(helper.cairn_bin),
      helper.shell_quote(uri)))
    assert.are.equal(0, code, err)
    assert.are.equal(6, #helper.lines(out)) -- each save: Started and Added
    code, out, err = helper.run(("%s verify %s"):format(helper.shell_quote(helper.cairn_bin), helper.shell_quote(uri)))
    assert.are.equal(0, code, err .. out)
    assert.are.equal(1, version())
  end)

  for _, older in ipairs { 1, 2 } do
    it("writers opening a schema a cairn of version " .. older .. " left at once bring it up to date once; their "
      .. "saves work", function()
      make_store(3)
      as_version(older)
      local code, err = helper.race_processes([[
local cairn = require "cairn"
local dir, uri = arg[1], arg[2]
local Counter = cairn.aggregate("SchemaCounter")
Counter:created("Started", function(self) self.total = 0 end)
Counter:event("Added", function(self, n) self.total = self.total + n end)
while not io.open(dir .. "/go") do require("cairn.core").sleep(0.005) end
local app = cairn.application("SchemaCounters").new { store = uri }
for _ = 1, 5 do
  local c = Counter()
  c:trigger("Added", { n = 1 })
  app:save(c)
end
app:close()
]], dir, uri, 4)
      assert.are.equal(0, code, err)
      assert.are.equal("", err)
      as_current()
      local app = Counters.new { store = uri }
      finally(function() app:close() end)
      local ids = {}
      for _, n in ipairs(app.log:select(1, 100)) do ids[#ids + 1] = n.id end
      assert.are.equal(46, #ids) -- 23 saves of two events
      for i = 1, 46 do assert.are.equal(i, ids[i]) end
      assert.are.equal(46, app.store:max_id())
    end)
  end

  it("a schema of a newer cairn is refused by writers and tools, naming both versions; it stays as it is", function()
    make_store(1)
    helper.psql(("UPDATE %s.meta SET value = '7' WHERE key = 'format'"):format(schema))
    local err = helper.assert_error_kind("ConfigError", function() Counters.new { store = uri } end,
      "has version 7, newer than this cairn knows (" .. VERSION .. ")")
    assert.matches("schema " .. schema, err.message)
    local code, _, stderr = helper.run(("%s stat %s"):format(helper.shell_quote(helper.cairn_bin),
      helper.shell_quote(uri)))
    assert.are.equal(1, code)
    assert.matches("ConfigError: [^\n]*has version 7, newer than this cairn knows %(" .. VERSION .. "%)", stderr)
    assert.are.equal(7, version())
  end)
end)
