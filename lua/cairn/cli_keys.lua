--- `cairn verify`, `cairn keygen` and `cairn rekey`: integrity and keys.
-- @module cairn.cli_keys
local core = require "cairn.core"
local cli = require "cairn.cli"
local cli_store = require "cairn.cli_store"
local errors = require "cairn.errors"
local progress = require "cairn.progress"
local recorder = require "cairn.recorder"

local io_write, os_getenv = io.write, os.getenv

local _M = { _VERSION = "0.1.0" }

local HELP = {
  verify = [[
usage: cairn verify [URI] [--all]

Checks the whole store: every aggregate's hash chain, that the notification log
and the stream index agree one to one, that notification ids have no gaps,
every record's format, every snapshot, the DCB index (every entry names a
recorded DCB event of its type and tag; every DCB event is indexed by its type
and tags) and the idempotency records (their events are in the log). An
encrypted store verifies without its key (the hashes cover the stored bytes);
with CAIRN_CIPHER_KEY set, every record's encryption is checked as well, and
DCB events' tags against the index. Prints a summary; exits 1 and names
the first bad record (and how many more) if anything is wrong. --all prints
every problem found, one per line ("problem: ..."), not only the first.
]],
  keygen = [[
usage: cairn keygen

Prints a fresh cipher key (base64 of 32 random bytes) for CAIRN_CIPHER_KEY.
Keep it secret and keep it safe: without it an encrypted store cannot be read.
]],
  rekey = [[
usage: cairn rekey [URI]

Re-wraps every aggregate's data key under a new master key, in one transaction,
without rewriting events. The current key comes from CAIRN_CIPHER_KEY, the new
one from CAIRN_NEW_CIPHER_KEY. Afterwards only the new key opens the store.
On a terminal, a progress bar with the rate and time left goes to stderr.
]],
}

function _M.help(cmd)
  return HELP[cmd]
end

local function verify_cmd(args)
  local opts, rest = cli.parse_options(args, { all = "flag" })
  local store = cli_store.open_existing((cli_store.split(rest, 0)))
  local bar = progress.new("verifying", "records")
  local report = store:verify(function(done, total) bar:update(done, total) end, opts.all)
  bar:finish()
  store:close()
  io_write(("records checked: %d\nstreams: %d\nsnapshots: %d\n"):format(report.records, report.streams,
    report.snapshots))
  if report.keys_checked > 0 then io_write(("data keys checked: %d\n"):format(report.keys_checked)) end
  io_write(("problems: %d\n"):format(report.problems))
  if opts.all then
    for i = 1, #report.all do io_write("problem: ", report.all[i], "\n") end
  end
  if report.problems > 0 then
    errors.raise("IntegrityError", "%s%s", report.first,
      report.problems > 1 and (" (and %d more problems%s)"):format(report.problems - 1,
        opts.all and "" or ": cairn verify --all lists them") or "")
  end
  return 0
end

local function keygen_cmd(args)
  if #args ~= 0 then cli.usage_error("takes no arguments") end
  io_write(core.keygen(), "\n")
  return 0
end

local function rekey_cmd(args)
  local uri = cli_store.split(args, 0)
  local old, new = os_getenv("CAIRN_CIPHER_KEY"), os_getenv("CAIRN_NEW_CIPHER_KEY")
  if not old or old == "" then
    cli.usage_error("set CAIRN_CIPHER_KEY to the store's current key (to encrypt a plain store: cairn import --help)")
  end
  if not new or new == "" then cli.usage_error("set CAIRN_NEW_CIPHER_KEY to the new key (cairn keygen prints one)") end
  local store = recorder.open(uri, { must_exist = true, sync = "full", cipher_key = old })
  local bar = progress.new("rekeying", "keys")
  local ok, err = pcall(store.rekey, store, new, function(done, total) bar:update(done, total) end)
  bar:finish(ok)
  store:close()
  if not ok then error(err, 0) end
  io.stderr:write(("rekeyed %s: use the new key from now on\n"):format(uri))
  return 0
end

local HANDLERS = { verify = verify_cmd, keygen = keygen_cmd, rekey = rekey_cmd }

function _M.main(cmd, args)
  return HANDLERS[cmd](args)
end

return _M
