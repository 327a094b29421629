--- Open two accounts, move money, and show a refused overdraft.
--   bin/cairn run examples/bank_accounts/main.lua [STORE_URI]
local bank_module = require "bank_accounts"

local uri = arg[1] or "lmdb:./data/bank"
local bank = bank_module.Bank.new { store = uri }
local function cents(n) return ("%.2f"):format(n / 100) end

local alice = bank:open_account("Alice", 5000)
local bob = bank:open_account("Bob")
print(("opened accounts for Alice (%s, overdraft 50.00) and Bob (%s) on %s"):format(alice, bob, uri))

bank:deposit(alice, 10000)
print("deposited 100.00 to Alice")
local recordings = bank:transfer(alice, bob, 12500)
print(("transferred 125.00 from Alice to Bob in one save (notifications %d and %d)")
  :format(recordings[1].notification_id, recordings[2].notification_id))

local ok, err = pcall(bank.withdraw, bank, alice, 5000)
print(("withdrawing 50.00 more from Alice: %s"):format(ok and "done" or ("refused: " .. tostring(err))))

print(("balances: Alice %s, Bob %s"):format(cents(bank:balance(alice)), cents(bank:balance(bob))))
print(("the log holds %d notifications"):format(bank:max_notification_id()))
bank:close()
