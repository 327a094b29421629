--- The dog school with its followers in one process: the Counters process
-- application (SingleThreadedRunner) and the Counts projection.
--   bin/cairn run examples/training_school/system_main.lua [DIR]
local cairn = require "cairn"
local school_module = require "training_school"
local counters = require "counters"
local Counts = require "counts"

local dir = arg[1] or "./data/system"
local system = require "system"
local runner = cairn.SingleThreadedRunner.new(system, { store = "lmdb:" .. dir })
runner:start()
local school = runner:get(school_module.TrainingSchool)
local names = { "Fido", "Buster", "Rex" }
for _, name in ipairs(names) do
  if not school:is_registered(name) then school:register(name) end
end
local recordings
for _, name in ipairs(names) do recordings = school:add_trick(name, "roll over") end
school:add_trick("Fido", "play dead")

-- Counters processed every save before it returned
print(("dogs who learned 'roll over': %d"):format(runner:get(counters.Counters):learned("roll over")))

local projection = cairn.ProjectionRunner.new { application = school, projection = Counts,
  view = "lmdb:" .. dir .. "/Counts" }
projection:run()
projection.view:wait(school.name, recordings[1].notification_id, 5)
print(("view: %d dogs, %d tricks taught"):format(projection.view:get("dogs"), projection.view:get("tricks")))
for key, value in projection.view:scan("trick:") do print(("  %s = %d"):format(key, value)) end
projection:close()
runner:stop()
