--- The domain module of the C API tests (spec/capi/api_test.c): accounts
-- with deposits, and a Ledger application whose methods exercise every
-- outcome a cairn_call can have.
local cairn = require "cairn"

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

--- The recordings of a save (events become maps).
function Ledger:open_recorded(owner)
  return self:save(Account(owner))
end

return { Account = Account, Ledger = Ledger }
