--- Open two accounts, move money, and show a refused overdraft.
--   bin/cairn run examples/bank_accounts/main.lua [STORE_URI]
local bank_module = require "bank_accounts"

local uri = arg[1] or "lmdb:./data/bank"
local bank = bank_module.Bank.new { store = uri }
local money = bank_module.money -- amounts are whole cents; shown in currency units

local alice = bank:open_account("Alice", 5000)
local bob = bank:open_account("Bob")
print(("opened accounts for Alice (%s, overdraft %s) and Bob (%s) on %s"):format(alice, money(5000), bob, uri))

bank:deposit(alice, 10000)
print(("deposited %s to Alice"):format(money(10000)))
local recordings = bank:transfer(alice, bob, 12500)
print(("transferred %s from Alice to Bob in one save (notifications %d and %d)")
  :format(money(12500), recordings[1].notification_id, recordings[2].notification_id))

local ok, err = pcall(bank.withdraw, bank, alice, 5000)
print(("withdrawing %s more from Alice: %s"):format(money(5000), ok and "done" or ("refused: " .. tostring(err))))

print(("balances: Alice %s, Bob %s"):format(money(bank:balance(alice)), money(bank:balance(bob))))
print(("the log holds %d notifications"):format(bank:max_notification_id()))
bank:close()
