-- The saves bench/pg_cost counts the server's work for (instructions, WAL), one
-- connection: a few saves to warm up, then K more of one kind, each in a schema of its own.
--   S1  K saves of one new aggregate (one event each)
--   S5  K saves of 1,000 new aggregates each
--   S6  as S1, in the schema named (bench/pg_cost runs several at once: saves numbered after
--       their commit)
-- usage: luajit bench/pg_cost.lua URI S1|S5|S6 K [SCHEMA]
local root = (arg[0]:match("^(.*)/bench/[^/]*$") or ".")
package.path = root .. "/lua/?.lua;" .. root .. "/lua/?/init.lua;" .. root .. "/stdlib/?.lua;" .. package.path
package.cpath = root .. "/lib/?.so;" .. package.cpath
local cairn = require "cairn"

local uri, scenario, k = arg[1], arg[2], tonumber(arg[3])
if not (uri and (scenario == "S1" or scenario == "S5" or scenario == "S6") and k and k >= 0) then
  io.stderr:write("usage: luajit bench/pg_cost.lua URI S1|S5|S6 K [SCHEMA]\n")
  os.exit(2)
end
local Dog = cairn.aggregate("Dog")
Dog:created("Registered", function(self, name) self.name = name end)
local schema = arg[4] or ("cost_%s_%d_%d"):format(scenario:lower(), k, os.time())
local app = cairn.application("TrainingSchool").new {
  store = uri .. (uri:find("?", 1, true) and "&" or "?") .. "schema=" .. schema }

local function save_many()
  local dogs = {}
  for i = 1, 1000 do dogs[i] = Dog("dog-" .. i) end
  app:save(unpack(dogs))
end

for i = 1, 3 do app:save(Dog("warm-" .. i)) end
if scenario == "S5" then save_many() end
for i = 1, k do
  if scenario == "S5" then save_many() else app:save(Dog("dog-" .. i)) end
end
app:close()
