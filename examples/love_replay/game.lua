--- The replay game's domain: a player walking a small maze and collecting
-- coins. Key presses become commands on the Player aggregate; the events they
-- trigger are all that is stored, so any earlier moment can be rebuilt.
-- No LÖVE in here: the specs load this module from plain LuaJIT.
local cairn = require "cairn"

local _M = { _VERSION = "0.1.0" }

--- The level: `#` wall, `c` coin, `@` where the player starts.
_M.MAP = {
  "############",
  "#@...#....c#",
  "#.##.#.##..#",
  "#.c#...#c..#",
  "#..#####...#",
  "#c.........#",
  "############",
}

-- walls, coins (numbered in reading order) and the start, read from the map once
local walls, coins, coin_at, start = {}, {}, {}, nil
for y, row in ipairs(_M.MAP) do
  for x = 1, #row do
    local ch = row:sub(x, x)
    if ch == "#" then
      walls[y * 100 + x] = true
    elseif ch == "c" then
      coins[#coins + 1] = { x = x, y = y }
      coin_at[y * 100 + x] = #coins
    elseif ch == "@" then
      start = { x = x, y = y }
    end
  end
end
_M.COINS = coins
_M.START = start
_M.WIDTH, _M.HEIGHT = #_M.MAP[1], #_M.MAP

--- Is (x, y) a wall (or outside the map)?
function _M.is_wall(x, y)
  return x < 1 or y < 1 or x > _M.WIDTH or y > _M.HEIGHT or walls[y * 100 + x] == true
end

--- The number of the coin at (x, y), or nil.
function _M.coin_at(x, y)
  return coin_at[y * 100 + x]
end

local Player = cairn.aggregate("Player")
_M.Player = Player

--- One player per name, so the same name continues the same history.
function Player.create_id(name)
  return cairn.uuid.v5(cairn.uuid.NAMESPACE_URL, "/love_replay/players/" .. name)
end

-- Apply functions only copy the event into the state: the rules live in the
-- commands, so a replay never depends on anything but the events.
Player:created("Spawned", function(self, name, x, y)
  self.name = name
  self.x, self.y = x, y
  self.steps = 0
  self.score = 0
  self.collected = {}
end, { schema = { name = "string", x = "integer", y = "integer" } })

Player:event("Moved", function(self, x, y)
  self.x, self.y = x, y
  self.steps = self.steps + 1
end, { schema = { x = "integer", y = "integer" } })

Player:event("CoinCollected", function(self, coin)
  -- event payloads are msgpack: a map with integer keys may come back as an
  -- array, so the set is kept as an array of coin numbers
  self.collected[#self.collected + 1] = coin
  self.score = self.score + 1
end, { schema = { coin = "integer" } })

local DIRECTIONS = { left = { -1, 0 }, right = { 1, 0 }, up = { 0, -1 }, down = { 0, 1 } }
_M.DIRECTIONS = DIRECTIONS

--- Has this player collected coin number n?
function Player:has(n)
  for i = 1, #self.collected do
    if self.collected[i] == n then return true end
  end
  return false
end

--- Step one square in a direction ("left", "right", "up", "down").
-- Walking into a wall triggers nothing; stepping onto a coin not yet
-- collected also triggers CoinCollected.
-- @return true if the player moved
function Player:move(direction)
  local d = DIRECTIONS[direction]
  if not d then error(("bad direction '%s'"):format(tostring(direction)), 2) end
  local x, y = self.x + d[1], self.y + d[2]
  if _M.is_wall(x, y) then return false end
  self:trigger("Moved", { x = x, y = y })
  local coin = _M.coin_at(x, y)
  if coin and not self:has(coin) then
    self:trigger("CoinCollected", { coin = coin })
  end
  return true
end

--- Has the player collected every coin?
function Player:cleared()
  return self.score == #coins
end

local Game = cairn.application("ReplayGame")
_M.Game = Game

--- The player of this name, created at the start square if new.
-- @return the player aggregate at its latest version
function Game:join(name)
  local id = Player.create_id(name)
  if self.repository:contains(id) then return self.repository:get(id) end
  local player = Player(name, start.x, start.y)
  self:save(player)
  return player
end

--- Move a player: the command runs on the latest recorded state, whatever
-- moment the screen is showing.
-- @return the player at its new latest version, and whether it moved
function Game:move(id, direction)
  local player = self.repository:get(id)
  local moved = player:move(direction)
  if moved then self:save(player) end
  return player, moved
end

--- The player as it was at a version (1 = just spawned).
function Game:player_at(id, version)
  return self.repository:get(id, { version = version })
end

return _M
