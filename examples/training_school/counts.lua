--- A projection of the dog school: how many dogs and tricks, and the tricks
-- each dog knows, in a view. Run it with
--   bin/cairn project examples/training_school/counts.lua --app lmdb:./data/school --view lmdb:./data/counts
local cairn = require "cairn"

local Counts = cairn.projection("Counts", {
  topics = { "Dog.Registered", "Dog.TrickAdded" },
  application = "TrainingSchool",
})

Counts:on("Dog.Registered", function(view, event)
  view:incr("dogs", 1)
  view:put("dog:" .. event.name, 0)
end)

Counts:on("Dog.TrickAdded", function(view, event)
  view:incr("tricks", 1)
  view:incr("trick:" .. event.trick, 1)
end)

return Counts
