--- Bank accounts: amounts stored as whole cents (exact), shown in currency
-- units; an overdraft limit enforced by the command, and transfers that save
-- both accounts in one transaction.
local cairn = require "cairn"

--- Cents as currency units: 12500 -> "125.00", -2500 -> "-25.00".
local function money(cents)
  local sign = cents < 0 and "-" or ""
  cents = math.abs(cents)
  return ("%s%d.%02d"):format(sign, math.floor(cents / 100), cents % 100)
end

local Account = cairn.aggregate("Account")

Account:created("Opened", function(self, owner, overdraft_limit)
  self.owner = owner
  self.overdraft_limit = overdraft_limit
  self.balance = 0
end)

Account:event("Deposited", function(self, amount)
  self.balance = self.balance + amount
end)

Account:event("Withdrawn", function(self, amount)
  self.balance = self.balance - amount
end)

local function check_amount(amount)
  if type(amount) ~= "number" or amount <= 0 or amount % 1 ~= 0 then
    error(("amount must be a positive whole number of cents (got %s)"):format(tostring(amount)), 3)
  end
end

function Account:deposit(amount)
  check_amount(amount)
  self:trigger("Deposited", { amount = amount })
end

-- The command validates before any event exists: a refused withdrawal records nothing.
function Account:withdraw(amount)
  check_amount(amount)
  if self.balance - amount < -self.overdraft_limit then
    error(("insufficient funds: %s's account has %s, overdraft limit %s, cannot withdraw %s")
      :format(self.owner, money(self.balance), money(self.overdraft_limit), money(amount)), 0)
  end
  self:trigger("Withdrawn", { amount = amount })
end

local Bank = cairn.application("Bank")

function Bank:open_account(owner, overdraft_limit)
  local account = Account(owner, overdraft_limit or 0)
  self:save(account)
  return account.id
end

function Bank:deposit(id, amount)
  local account = self.repository:get(id)
  account:deposit(amount)
  return self:save(account)
end

function Bank:withdraw(id, amount)
  local account = self.repository:get(id)
  account:withdraw(amount)
  return self:save(account)
end

--- Move money between accounts: both events are recorded together or not at all.
function Bank:transfer(from_id, to_id, amount)
  local from, to = self.repository:get(from_id), self.repository:get(to_id)
  from:withdraw(amount)
  to:deposit(amount)
  return self:save(from, to)
end

function Bank:balance(id)
  return self.repository:get(id).balance
end

return { Account = Account, Bank = Bank, money = money }
