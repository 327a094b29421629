--- The dog school as a system: Counters follows TrainingSchool.
--   bin/cairn sync examples/training_school/system.lua        (CAIRN_STORE=lmdb:./data/system)
--   bin/cairn follow examples/training_school/system.lua Counters
local cairn = require "cairn"
local school = require "training_school"
local counters = require "counters"

return cairn.system { pipes = { { school.TrainingSchool, counters.Counters } } }
