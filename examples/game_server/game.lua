--- A small game world as a cairn domain module, for examples/game_server:
-- players move on a grid, pick up items and trade them. A trade changes two
-- players and is saved in one transaction, so an item is never lost or doubled.
local cairn = require "cairn"

local Player = cairn.aggregate("Player")

-- one player per name
function Player.create_id(name)
  return cairn.uuid.v5(cairn.uuid.NAMESPACE_URL, "/players/" .. name)
end

Player:created("Joined", function(self, name, x, y)
  self.name, self.x, self.y = name, x, y
  self.moves = 0
  self.items = {}
end)

Player:event("Moved", function(self, dx, dy)
  self.x, self.y = self.x + dx, self.y + dy
  self.moves = self.moves + 1
end)

Player:event("PickedUp", function(self, item)
  self.items[item] = (self.items[item] or 0) + 1
end)

Player:event("Gave", function(self, item, to)  -- luacheck: ignore 212 (to is the event's field)
  local left = self.items[item] - 1
  self.items[item] = left > 0 and left or nil
end)

Player:event("Received", function(self, item, from)  -- luacheck: ignore 212
  self.items[item] = (self.items[item] or 0) + 1
end)

--- Step to a neighbouring square.
function Player:move(dx, dy)
  if math.abs(dx) > 1 or math.abs(dy) > 1 or dx % 1 ~= 0 or dy % 1 ~= 0 then
    error(("%s cannot jump by (%s, %s)"):format(self.name, dx, dy), 2)
  end
  self:trigger("Moved", { dx = dx, dy = dy })
end

function Player:pick_up(item)
  self:trigger("PickedUp", { item = item })
end

function Player:has(item)
  return (self.items[item] or 0) > 0
end

local Game = cairn.application("Game")
-- players live long: rebuild them from a snapshot every 50 events, not from the start
Game.snapshotting_intervals = { Player = 50 }

local function player_id(who)
  return cairn.uuid.is_uuid(who) and who or Player.create_id(who)
end

--- Join the game (or find the player who already joined under that name).
-- @return the player's id
function Game:join(name, x, y)
  local id = Player.create_id(name)
  if not self.repository:contains(id) then self:save(Player(name, x or 0, y or 0)) end
  return id
end

--- @return the player's new version
function Game:move(id, dx, dy)
  local player = self.repository:get(id)
  player:move(dx, dy)
  self:save(player)
  return player.version
end

function Game:pick_up(id, item)
  local player = self.repository:get(id)
  player:pick_up(item)
  self:save(player)
  return player.version
end

--- Give an item from one player to another, both saved atomically.
-- @return true, or false if the giver has no such item (nothing is recorded)
function Game:trade(from_id, to_id, item)
  if from_id == to_id then error("a player cannot trade with themselves", 2) end
  local from, to = self.repository:get(from_id), self.repository:get(to_id)
  if not from:has(item) then return false end
  from:trigger("Gave", { item = item, to = to.id })
  to:trigger("Received", { item = item, from = from.id })
  self:save(from, to)
  return true
end

--- A player now, by id or name.
function Game:player(who)
  return self.repository:get(player_id(who))
end

--- A player as they were at a past version, by id or name.
function Game:player_at(who, version)
  return self.repository:get(player_id(who), { version = version })
end

return { Player = Player, Game = Game }
