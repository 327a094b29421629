--- The dog school from the Python eventsourcing library's Django README,
-- as a cairn domain module: a Dog aggregate and the TrainingSchool application.
local cairn = require "cairn"

local Dog = cairn.aggregate("Dog")

-- one dog per name: the id is derived from it
function Dog.create_id(name)
  return cairn.uuid.v5(cairn.uuid.NAMESPACE_URL, "/dogs/" .. name)
end

Dog:created("Registered", function(self, name)
  self.name = name
  self.tricks = {}
end)

Dog.add_trick = Dog:event("TrickAdded", function(self, trick)
  self.tricks[#self.tricks + 1] = trick
end)

local TrainingSchool = cairn.application("TrainingSchool")

function TrainingSchool:register(name)
  return self:save(Dog(name))
end

function TrainingSchool:add_trick(name, trick)
  local dog = self.repository:get(Dog.create_id(name))
  dog:add_trick(trick)
  return self:save(dog)
end

function TrainingSchool:get_tricks(name)
  return self.repository:get(Dog.create_id(name)).tricks
end

function TrainingSchool:is_registered(name)
  return self.repository:contains(Dog.create_id(name))
end

return { Dog = Dog, TrainingSchool = TrainingSchool }
