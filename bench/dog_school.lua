--- The benchmark's domain and application, as in bench.py (the Python
-- eventsourcing library's README): Dog with Registered{name} and
-- TrickAdded{trick}, random UUIDv4 ids, and TrainingSchool with
-- register_dog(name) -> id and add_trick(id, trick). bench/scenarios.lua,
-- bench/write_cost.lua and bench/log_cost.lua load it with dofile.
local cairn = require "cairn"

local Dog = cairn.aggregate("Dog")
Dog:created("Registered", function(self, name)
  self.name = name
  self.tricks = {}
end)
Dog.add_trick = Dog:event("TrickAdded", function(self, trick)
  self.tricks[#self.tricks + 1] = trick
end)

local TrainingSchool = cairn.application("TrainingSchool")

function TrainingSchool:register_dog(name)
  local dog = Dog(name)
  self:save(dog)
  return dog.id
end

function TrainingSchool:add_trick(dog_id, trick)
  local dog = self.repository:get(dog_id)
  dog:add_trick(trick)
  self:save(dog)
end

return { Dog = Dog, TrainingSchool = TrainingSchool }
