--- A concurrency-test process: `cairn run worker.lua URI NAME SEED write COMMANDS TALLIES`
-- or `... read STOPFILE TALLIES`.
-- A writer runs COMMANDS commands, each counting on one or two of the shared
-- tallies in one save, retrying on ConcurrencyError, and prints
-- `ack CMD FIRST_ID N t1,t2` after each. A reader reads the log and the
-- tallies until STOPFILE exists, and prints what it saw that it should not:
-- `reads R partial P` (P must be 0).
local spec_dir = debug.getinfo(1, "S").source:match("^@(.*)/reliability/[^/]*$") or "spec"
package.path = spec_dir .. "/?.lua;" .. package.path
local model = require "reliability.model"

local uri, name, seed, mode = arg[1], arg[2], tonumber(arg[3]), arg[4]
math.randomseed(seed)
io.stdout:setvbuf("line")
local app = model.App.new { store = uri, sync = "none" }

local function write(commands, tallies)
  local conflicts = 0
  for cmd = 1, commands do
    local keys = { "t" .. math.random(tallies) }
    local other = "t" .. math.random(tallies)
    if math.random() < 0.5 and other ~= keys[1] then keys[2] = other end
    local n = #keys
    local recordings, c = model.save_retrying(app, {}, keys, function(tally) tally:count_one(name, cmd, n) end)
    conflicts = conflicts + c
    io.stdout:write(("ack %d %d %d %s\n"):format(cmd, recordings[1].notification_id, n, table.concat(keys, ",")))
  end
  io.stdout:write(("conflicts %d\n"):format(conflicts))
end

-- every save seen in one read must be whole: a read is one LMDB snapshot
local function read(stopfile, tallies)
  local from, reads, partial = 1, 0, 0
  while true do
    local stop = io.open(stopfile)
    if stop then stop:close() end
    local page = app.log:select(from, 1e9)
    reads = reads + 1
    local open = {}
    for _, n in ipairs(page) do
      local e = n.event
      if e.writer then
        local key = e.writer .. "/" .. e.batch
        open[key] = (open[key] or e.n) - 1
        if open[key] == 0 then open[key] = nil end
      end
      from = n.id + 1
    end
    for key in pairs(open) do
      partial = partial + 1
      io.stderr:write("partial save seen: ", key, "\n")
    end
    for k = 1, tallies do
      local tally = app.repository:get(model.Tally.create_id("t" .. k))
      if tally.count ~= tally.version - 1 then
        partial = partial + 1
        io.stderr:write(("tally t%d counts %d at version %d\n"):format(k, tally.count, tally.version))
      end
    end
    if stop then break end
  end
  io.stdout:write(("reads %d partial %d\n"):format(reads, partial))
end

if mode == "write" then write(tonumber(arg[5]), tonumber(arg[6])) else read(arg[5], tonumber(arg[6])) end
app:close()
