-- String aggregate ids (API.md §9): `cairn.aggregate(name, { id = "string" })`,
-- on every engine (helper.store_uri), encrypted or not, and in the store tools.
local cairn = require "cairn"
local core = require "cairn.core"
local recorder = require "cairn.recorder"
local helper = require "helper"

local q = helper.shell_quote
local assert_error_kind = helper.assert_error_kind

local KEY, OTHER_KEY = core.keygen(), core.keygen()
local NATURAL = "alice.marker-7f3e@example.org" -- a natural key: must not be stored in plain text

local Account = cairn.aggregate("Account", { id = "string" })
function Account.create_id(email) return email end
Account:created("Opened", function(self, email) self.email = email; self.balance = 0 end)
Account.deposit = Account:event("Deposited", function(self, amount) self.balance = self.balance + amount end)

local Bank = cairn.application("Bank")

-- follows Bank: one Statement per account, under a string id made from the account's
local Statement = cairn.aggregate("Statement", { id = "string" })
function Statement.create_id(account) return "statement/" .. account end
Statement:created("Started", function(self, account) self.account = account end)
local Statements = cairn.process_application("Statements")
Statements:policy("Account.Opened", function(_, event, processing)
  processing:collect(Statement(event.originator_id))
end)

local function cairn_cmd(env, args)
  local prefix = ""
  for k, v in pairs(env) do prefix = prefix .. k .. "=" .. q(v) .. " " end
  return helper.run(prefix .. q(helper.cairn_bin) .. " " .. args)
end

describe("string aggregate ids", function()
  for _, encrypted in ipairs { false, true } do
    describe(encrypted and "(encrypted)" or "(plain)", function()
      helper.each_store(function(ctx)
        local key = encrypted and KEY or nil
        local function open(env)
          local e = { cipher_key = key, snapshotting = "y" }
          for k, v in pairs(env or {}) do e[k] = v end
          return ctx.open(Bank, e)
        end

        it("creates, gets and saves aggregates by their string ids, and the log carries the string", function()
          local app = open()
          local a = Account(NATURAL)
          assert.are.equal(NATURAL, a.id)
          a:deposit(5)
          app:save(a, Account("order-2026-00017"))
          local got = app.repository:get(NATURAL)
          assert.are.equal(NATURAL, got.id)
          assert.are.equal(5, got.balance)
          assert.are.equal(2, got.version)
          got:deposit(7)
          app:save(got)
          assert.are.equal(12, app.repository:get(NATURAL).balance)
          assert.are.equal(1, app.repository:get("order-2026-00017").version)
          assert.is_true(app.repository:contains(NATURAL))
          assert.is_false(app.repository:contains("bob@example.org"))
          assert_error_kind("AggregateNotFound", function() app.repository:get("bob@example.org") end,
            "bob@example.org")
          local items = app.log:select(1, 10)
          assert.are.same({ NATURAL, NATURAL, "order-2026-00017", NATURAL },
            { items[1].originator_id, items[2].originator_id, items[3].originator_id, items[4].originator_id })
          assert.are.equal(NATURAL, items[1].event.originator_id)
          assert.are.equal("Account.Deposited", items[4].topic)
          if ctx.engine ~= "memory" then -- the same string from another handle finds the same stream
            local other = open()
            assert.are.equal(12, other.repository:get(NATURAL).balance)
          end
        end)

        it("refuses a stale save with ConcurrencyError naming the string id, recording nothing", function()
          local app = open()
          app:save(Account(NATURAL))
          local one, two = app.repository:get(NATURAL), app.repository:get(NATURAL)
          one:deposit(1)
          app:save(one)
          two:deposit(2)
          assert_error_kind("ConcurrencyError", function() app:save(two) end, NATURAL)
          assert.are.equal(2, app:max_notification_id())
          -- creating the same string id twice is a conflict too
          assert_error_kind("ConcurrencyError", function() app:save(Account(NATURAL)) end)
          assert.are.equal(1, app.repository:get(NATURAL).balance)
        end)

        it("refuses an empty, too long or invalid UTF-8 id with SchemaError, recording nothing", function()
          local app = open()
          assert_error_kind("SchemaError", function() Account("") end, "is empty")
          assert_error_kind("SchemaError", function() Account(("x"):rep(256)) end, "is longer than 255 bytes")
          assert_error_kind("SchemaError", function() Account("caf\xc3") end, "is not valid UTF-8")
          assert_error_kind("SchemaError", function() Account("\xed\xa0\x80") end, "is not valid UTF-8") -- a surrogate
          assert_error_kind("SchemaError", function() Account(42) end, "is a number")
          local longest = ("é"):rep(127) .. "x" -- 255 bytes
          app:save(Account(longest))
          assert.are.equal(longest, app.repository:get(longest).id)
          -- a batch that bypasses the class is refused by the store as a whole
          local batch = {}
          recorder.add(batch, 0, "fine", 1, 0, "Account.Opened", core.encode({ email = "x" }), 1, false, false)
          recorder.add(batch, recorder.STRIDE, ("y"):rep(256), 1, 0, "Account.Opened",
            core.encode({ email = "y" }), 1, false, false)
          assert_error_kind("SchemaError", function() app.store:append(batch) end, "is longer than 255 bytes")
          assert.are.equal(1, app:max_notification_id())
          assert.is_false(app.repository:contains("fine"))
          assert_error_kind("AggregateNotFound", function() app.repository:get("") end, "the id is empty")
        end)

        it("takes UUID text as the UUID: one namespace", function()
          local app = open()
          local uuid = cairn.uuid.v4()
          local a = Account(uuid)
          assert.are.equal(uuid, a.id)
          local upper = cairn.uuid.v4():upper()
          local b = Account(upper)
          assert.are.equal(upper:lower(), b.id) -- upper case is the same UUID, in canonical form
          app:save(a, b)
          assert.are.equal(uuid, app.repository:get(uuid:upper()).id)
          assert.are.equal(uuid, app.log:select(1, 1)[1].originator_id)
          -- a UUID-like string that is no UUID (35 characters) is a string id
          local almost = uuid:sub(1, 35)
          app:save(Account(almost))
          assert.are.equal(almost, app.repository:get(almost).id)
          assert.are.equal(almost, app.log:select(3, 1)[1].originator_id)
          -- a UUID class still refuses strings from create_id
          local Plain = cairn.aggregate("PlainAccount")
          function Plain.create_id(s) return s end
          Plain:created("Opened", function(self) end) -- luacheck: ignore 212
          assert_error_kind("SchemaError", function() Plain("order-1") end, "is not a UUID")
        end)

        it("names an aggregate got by its stream key (a listed UUID) by its string, also from a snapshot", function()
          local app = open()
          app:save(Account(NATURAL))
          local stream_key = app.store:streams()[1]
          assert.matches("^%x+%-%x+%-8%x+%-[89ab]%x+%-%x+$", stream_key)
          local a = app.repository:get(stream_key)
          assert.are.equal(NATURAL, a.id)
          app:take_snapshot(NATURAL)
          a = app.repository:get(stream_key)
          assert.are.equal(NATURAL, a.id)
          a:deposit(2)
          app:save(a)
          assert.are.equal(NATURAL, app.log:select(2, 1)[1].originator_id)
          assert.are.equal(2, app.repository:get(NATURAL).balance)
        end)

        it("snapshots string-id aggregates and reads them back from the snapshot", function()
          local app = open()
          local a = Account(NATURAL)
          a:deposit(3)
          app:save(a)
          app:take_snapshot(NATURAL)
          local snap = app.snapshots:get(NATURAL)
          assert.are.equal(2, snap.version)
          local more = app.repository:get(NATURAL)
          more:deposit(4)
          app:save(more)
          local got = app.repository:get(NATURAL)
          assert.are.equal(NATURAL, got.id)
          assert.are.equal(7, got.balance)
          assert.are.equal(3, got.version)
        end)

        if ctx.engine ~= "memory" then -- a system's applications need stores of their own
        it("carries the string to followers", function()
          local base = helper.store_uri(ctx.dir, "system")
          local runner = cairn.SingleThreadedRunner.new(cairn.system { pipes = { { Bank, Statements } } },
            { store = base, sync = "none", cipher_key = key })
          runner:start()
          finally(function() runner:stop() end)
          runner:get(Bank):save(Account(NATURAL))
          local statements = runner:get(Statements)
          local s = statements.repository:get("statement/" .. NATURAL)
          assert.are.equal(NATURAL, s.account)
          assert.are.equal("statement/" .. NATURAL, statements.log:select(1, 1)[1].originator_id)
        end)
        end

        if encrypted then
          it("forgets a string-id aggregate (crypto-shredding); the log keeps only its key", function()
            local app = open()
            app:save(Account(NATURAL), Account("keep"))
            app:take_snapshot(NATURAL)
            app:forget(NATURAL)
            assert_error_kind("AggregateNotFound", function() app.repository:get(NATURAL) end, "was forgotten")
            assert.is_nil(app.snapshots:get(NATURAL))
            assert.are.equal("keep", app.repository:get("keep").id)
            local items = app.log:select(1, 10)
            assert.is_true(items[1].forgotten)
            -- the string went with the data key: the notification names the stream's key
            assert.matches("^%x+%-%x+%-8%x+%-[89ab]%x+%-%x+$", items[1].originator_id)
            assert.are.equal("keep", items[2].originator_id)
            assert_error_kind("AggregateNotFound", function() app:forget("never-saved") end, "never-saved")
          end)

          if ctx.engine ~= "memory" then
          it("stores no plain text of a string id, and keys it by a keyed hash", function()
            local app = open()
            app:save(Account(NATURAL))
            app:close()
            local bytes = helper.stored_bytes(ctx.uri)
            assert.is_nil(bytes:find(NATURAL, 1, true))
            assert.is_nil(bytes:find("alice.marker", 1, true))
            -- the same string in a plain store has another key: guesses cannot be tested without the key
            local plain = Bank.new { store = ctx.store("plain"), sync = "none" }
            plain:save(Account(NATURAL))
            local plain_key = plain.store:streams()[1]
            local enc = open()
            assert.are_not.equal(plain_key, enc.store:streams()[1])
            plain:close()
          end)
          end
        end
      end)
    end)
  end

  describe("in the store tools", function()
    local dir
    before_each(function() dir = helper.tmpdir() end)
    after_each(function() helper.rmrf(dir) end)

    local function fill(uri, cipher_key)
      local app = Bank.new { store = uri, sync = "none", cipher_key = cipher_key, snapshotting = "y" }
      local a = Account(NATURAL)
      a:deposit(9)
      app:save(a, Account("order-2026-00017"))
      app:take_snapshot(NATURAL)
      app:close()
    end

    it("events, log, streams, verify, stat and export give the string back", function()
      local uri = helper.store_uri(dir)
      fill(uri, KEY)
      local env = { CAIRN_CIPHER_KEY = KEY }
      local code, out, err = cairn_cmd(env, "events " .. q(uri) .. " " .. q(NATURAL))
      assert.are.equal(0, code, err)
      assert.matches("^1\t[^\t]+\tAccount.Opened\t", out)
      assert.matches("\n2\t[^\t]+\tAccount.Deposited\t{\"amount\":9}\n$", out)
      code, out, err = cairn_cmd(env, "events " .. q(uri) .. " nobody")
      assert.are.equal(1, code)
      assert.are.equal("", out)
      assert.matches("AggregateNotFound: aggregate nobody not found", err)
      code, out, err = cairn_cmd(env, "events " .. q(uri) .. " ''")
      assert.are.equal(2, code)
      assert.are.equal("", out)
      assert.matches("'' is not an aggregate id: it is empty", err, 1, true)
      code, out, err = cairn_cmd(env, "log " .. q(uri))
      assert.are.equal(0, code, err)
      assert.matches("\t" .. NATURAL:gsub("%p", "%%%0") .. "\t1\tAccount.Opened\t", out)
      assert.matches("\torder%-2026%-00017\t1\tAccount.Opened\t", out)
      code, out, err = cairn_cmd(env, "log " .. q(uri) .. " --json")
      assert.are.equal(0, code, err)
      assert.matches('"originator_id":"' .. NATURAL:gsub("%p", "%%%0") .. '"', out)
      code, out, err = cairn_cmd(env, "streams " .. q(uri))
      assert.are.equal(0, code, err)
      local listed = helper.lines(out)
      table.sort(listed)
      assert.are.same({ NATURAL .. "\t2", "order-2026-00017\t1" }, listed)
      code, out, err = cairn_cmd(env, "streams " .. q(uri) .. " --after " .. q(listed[1]:match("^[^\t]+")))
      assert.are.equal(0, code, err)
      assert.is_true(#helper.lines(out) <= 1)
      code, out, err = cairn_cmd(env, "verify " .. q(uri))
      assert.are.equal(0, code, err)
      assert.matches("problems: 0", out)
      code, out, err = cairn_cmd(env, "export " .. q(uri))
      assert.are.equal(0, code, err)
      assert.matches('"originator_id":"' .. NATURAL:gsub("%p", "%%%0") .. '"', out)
      assert.matches('"kind":"snapshot"', out)
    end)

    it("cairn sync and cairn project hand the string to followers and projections", function()
      helper.write_file(dir .. "/bank.lua", [[
local cairn = require "cairn"
local Account = cairn.aggregate("Account", { id = "string" })
function Account.create_id(email) return email end
Account:created("Opened", function(self, email) self.email = email end)
local Statement = cairn.aggregate("Statement", { id = "string" })
function Statement.create_id(account) return "statement/" .. account end
Statement:created("Started", function(self, account) self.account = account end)
local Bank = cairn.application("Bank")
local Statements = cairn.process_application("Statements")
Statements:policy("Account.Opened", function(_, event, processing)
  processing:collect(Statement(event.originator_id))
end)
local Owners = cairn.projection("Owners", { topics = { "Account.Opened" }, application = "Bank" })
Owners:on("Account.Opened", function(view, event) view:put("owner:" .. event.originator_id, event.email) end)
return { Bank = Bank, Statements = Statements, Owners = Owners, Account = Account,
  system = cairn.system { pipes = { { Bank, Statements } } } }
]])
      helper.write_file(dir .. "/sys.lua", ("package.path = %q .. '/?.lua;' .. package.path\n"):format(dir)
        .. 'local bank = require "bank"\nreturn { system = bank.system, env = { store = os.getenv("SYS_STORE"), '
        .. 'sync = "none" } }\n')
      helper.write_file(dir .. "/owners.lua", ("package.path = %q .. '/?.lua;' .. package.path\n"):format(dir)
        .. 'return require("bank").Owners\n')
      local base = helper.store_uri(dir, "system")
      local bank_uri = helper.member_uri(base, "Bank")
      helper.write_file(dir .. "/fill.lua", ("package.path = %q .. '/?.lua;' .. package.path\n"):format(dir)
        .. ('local bank = require "bank"\nlocal app = bank.Bank.new { store = %q }\n'
        .. 'app:save(bank.Account(%q))\n'):format(bank_uri, NATURAL))
      local code, _, err = helper.run(q(helper.cairn_bin) .. " run " .. q(dir .. "/fill.lua"))
      assert.are.equal(0, code, err)
      local out
      code, out, err = helper.run(("SYS_STORE=%s %s sync %s"):format(q(base), q(helper.cairn_bin),
        q(dir .. "/sys.lua")))
      assert.are.equal(0, code, err)
      assert.matches("Statements: synchronised %(1 notifications? processed, 1 new event", out)
      code, out, err = cairn_cmd({}, "log " .. q(helper.member_uri(base, "Statements")))
      assert.are.equal(0, code, err)
      assert.matches("\tstatement/" .. NATURAL:gsub("%p", "%%%0") .. "\t1\tStatement.Started\t", out)
      local view_uri = helper.store_uri(dir, "owners")
      code, _, err = cairn_cmd({}, ("project %s --app %s --view %s"):format(q(dir .. "/owners.lua"), q(bank_uri),
        q(view_uri)))
      assert.are.equal(0, code, err)
      local view = cairn.view(view_uri, "Owners")
      finally(function() view:close() end)
      assert.are.equal(NATURAL, view:get("owner:" .. NATURAL))
    end)

    it("exports from one store and imports into a store with another key, or none", function()
      local from = helper.store_uri(dir, "from")
      fill(from, KEY)
      for _, target in ipairs { { "other", OTHER_KEY }, { "plain", nil } } do
        local to = helper.store_uri(dir, target[1])
        local code, _, err = helper.run(("CAIRN_CIPHER_KEY=%s %s export %s | %s %s import %s"):format(
          q(KEY), q(helper.cairn_bin), q(from), target[2] and "CAIRN_CIPHER_KEY=" .. q(target[2]) or "",
          q(helper.cairn_bin), q(to)))
        assert.are.equal(0, code, err)
        assert.matches("imported 3 events into .* %(1 snapshots", err)
        local app = Bank.new { store = to, sync = "none", cipher_key = target[2], snapshotting = "y" }
        local a = app.repository:get(NATURAL)
        assert.are.equal(9, a.balance)
        assert.are.equal(NATURAL, a.id)
        assert.are.equal(2, app.snapshots:get(NATURAL).version)
        a:deposit(1)
        app:save(a)
        assert.are.equal(NATURAL, app.log:select(4, 1)[1].originator_id)
        app:close()
        code, _, err = cairn_cmd({ CAIRN_CIPHER_KEY = target[2] }, "verify " .. q(to))
        assert.are.equal(0, code, err)
        if target[2] then assert.is_nil(helper.stored_bytes(to):find(NATURAL, 1, true)) end
      end
    end)
  end)
end)
