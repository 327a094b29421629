--- Bank accounts: amounts in cents, an overdraft limit enforced by the
-- command, and transfers that save both accounts in one transaction.
local cairn = require "cairn"

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
    error(("insufficient funds: account %s has %d, overdraft limit %d, cannot withdraw %d")
      :format(self.id, self.balance, self.overdraft_limit, amount), 2)
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

return { Account = Account, Bank = Bank }
