--- The domain module of the C API tests (spec/capi/api_test.c): accounts
-- with deposits, and a Ledger application whose methods exercise every
-- outcome a cairn_call can have.
local cairn = require "cairn"
local core = require "cairn.core"
local recorder = require "cairn.recorder"

local Account = cairn.aggregate("Account")

Account:created("Opened", function(self, owner)
  self.owner = owner
  self.balance = 0
end)

Account.deposit = Account:event("Deposited", function(self, amount)
  self.balance = self.balance + amount
end)

local Ledger = cairn.application("Ledger")

--- Open an account; returns its id.
function Ledger:open(owner)
  local account = Account(owner)
  self:save(account)
  return account.id
end

--- Deposit; returns the account's new version and balance.
function Ledger:deposit(id, amount)
  local account = self.repository:get(id)
  account:deposit(amount)
  self:save(account)
  return account.version, account.balance
end

function Ledger:balance(id)
  return self.repository:get(id).balance
end

--- The aggregate itself (encoded as a map of its fields).
function Ledger:account(id)
  return self.repository:get(id)
end

--- Two copies of one account, both changed: the second save conflicts.
function Ledger:stale_deposit(id, amount)
  local a, b = self.repository:get(id), self.repository:get(id)
  a:deposit(amount)
  self:save(a)
  b:deposit(amount)
  self:save(b)
end

--- Returns its arguments, to check that values survive both directions.
function Ledger:echo(...) -- luacheck: ignore 212
  return ...
end

--- Domain code that fails.
function Ledger:broken() -- luacheck: ignore 212
  local missing = self.no_such_field
  return missing.field
end

--- Recursion without end: a stack overflow, caught like any Lua error.
function Ledger:recurse(n)
  return 1 + self:recurse((n or 0) + 1)
end

--- A result that cannot be encoded.
function Ledger:give_function() -- luacheck: ignore 212
  return function() end
end

--- A value an event cannot carry.
function Ledger:bad_deposit(id)
  local account = self.repository:get(id)
  account:deposit(function() end)
end

-- Customers keyed by their e-mail address: a string id (API.md §9).
local Customer = cairn.aggregate("Customer", { id = "string" })
function Customer.create_id(email) return email end
Customer:created("Registered", function(self, email) self.email = email end)

--- Register a customer; returns its id (the e-mail address).
function Ledger:register(email)
  local customer = Customer(email)
  self:save(customer)
  return customer.id
end

--- The customer (encoded as a map of its fields).
function Ledger:customer(email)
  return self.repository:get(email)
end

--- The recordings of a save (events become maps).
function Ledger:open_recorded(owner)
  return self:save(Account(owner))
end

-- The read boundary (api_test.c, test_upcaster_meets_other_thread): memos
-- whose Noted events are at class version 2. When `handshake` is set, the
-- upcaster tells another thread that it runs (a file) and waits, at most 5 s,
-- for that thread's save (another file), which must grow the map: it can only
-- come if the read has ended before the upcaster runs.
local handshake
local function exists(path)
  local f = io.open(path, "rb")
  if f then f:close() end
  return f ~= nil
end
local Memo = cairn.aggregate("Memo")
Memo:created("Written", function(self, text) self.text = text end)
Memo:event("Noted", function(self, n) self.n = n end, { version = 2, upcast = { [1] = function(fields)
  local h = handshake
  if h then
    handshake = nil
    assert(io.open(h.started, "wb")):close()
    local deadline = core.now_us() + 5e6
    while not exists(h.saved) do
      if core.now_us() > deadline then error("the other thread's save did not come within 5 s", 0) end
      core.sleep(0.002)
    end
  end
  return fields
end } })

--- A memo of n - 1 Noted events stored at class version 1, as an older program wrote them.
function Ledger:old_memo(n)
  local id, ts = cairn.uuid.v4(), core.now_us()
  local batch, k = {}, 0
  k = recorder.add(batch, k, id, 1, ts, "Memo.Written", core.encode({ text = "old" }), 1)
  for v = 2, n do k = recorder.add(batch, k, id, v, ts, "Memo.Noted", core.encode({ n = v }), 1) end
  self.store:append(batch)
  return id
end

--- Get the memo, its upcaster meeting another thread (see above); returns its n.
function Ledger:read_memo_meeting(id, started, saved)
  handshake = { started = started, saved = saved }
  return self.repository:get(id).n
end

--- Save a memo of `bytes` bytes (with a small map, the save grows it).
function Ledger:save_memo(bytes)
  return #self:save(Memo(string.rep("m", bytes)))
end

return { Account = Account, Ledger = Ledger }
