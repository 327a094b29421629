--- A process application that follows the dog school: one Trick aggregate
-- per trick, counting the dogs that learned it. Its new events and the
-- record of the notification that caused them are saved together.
local cairn = require "cairn"

local Trick = cairn.aggregate("Trick")

function Trick.create_id(name)
  return cairn.uuid.v5(cairn.uuid.NAMESPACE_URL, "/tricks/" .. name)
end

Trick:created("Introduced", function(self, name)
  self.name = name
  self.learned = 0
end)

Trick.learned_by = Trick:event("Learned", function(self, dog_id) -- luacheck: ignore 212
  self.learned = self.learned + 1
end)

local Counters = cairn.process_application("Counters")

Counters:policy("Dog.TrickAdded", function(self, event, processing)
  local id = Trick.create_id(event.trick)
  local trick = self.repository:contains(id) and self.repository:get(id) or Trick(event.trick)
  trick:learned_by(event.originator_id)
  processing:collect(trick)
end)

function Counters:learned(trick)
  local id = Trick.create_id(trick)
  return self.repository:contains(id) and self.repository:get(id).learned or 0
end

return { Counters = Counters, Trick = Trick }
