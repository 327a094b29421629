--- A LÖVE game whose every move is an event. Walk the maze with the arrow
-- keys (or WASD) and collect the coins; rewind with [ and ] (Home: the first
-- moment, End: back to now) or by clicking the timeline at the bottom.
--
-- Rewinding is view-only: the screen shows the player rebuilt from its events
-- up to the chosen version (`repository:get(id, { version = v })`). History
-- is never rewritten: a move made while rewound returns to the present and
-- continues from the latest state, like any other command.
--
--   love examples/love_replay [--store URI] [--name NAME]
--   love examples/love_replay --smoke RESULT_FILE [--store URI] [--screenshot PNG]
--
-- The default store is lmdb:<LÖVE save directory>/store. Escape quits (or,
-- while rewound, returns to now).

-- In smoke mode an error must end the process, not show LÖVE's error screen
-- and wait for a key that never comes.
for _, a in ipairs(arg) do
  if a == "--smoke" then
    function love.errorhandler(msg)
      io.stderr:write(debug.traceback("love_replay smoke: " .. tostring(msg), 3), "\n")
      os.exit(1)
    end
  end
end

local game = require "game"

local floor, min, max = math.floor, math.min, math.max

local TILE, MAP_X, MAP_Y = 40, 20, 50
local TIMELINE = { x = 20, y = 350, w = 480, h = 24 }
local COLORS = {
  background = { 0.08, 0.08, 0.1 }, wall = { 0.35, 0.35, 0.45 }, floor = { 0.15, 0.15, 0.18 },
  coin = { 1, 0.8, 0.1 }, player = { 0.2, 0.85, 0.4 }, ghost = { 0.2, 0.85, 0.4, 0.3 },
  text = { 1, 1, 1 }, rewind = { 0.6, 0.7, 1 }, cursor = { 1, 1, 1 },
}

--- What the screen shows, shared with the smoke test: the application, the
-- player's id, its latest state, the rewind cursor (nil when live) and the
-- state shown (the latest, or the player rebuilt at the cursor).
local ui = { COLORS = COLORS, TIMELINE = TIMELINE, frames = 0, drawn = 0 }

--- The screen position of a map square's centre.
function ui.tile_center(x, y)
  return MAP_X + (x - 0.5) * TILE, MAP_Y + (y - 0.5) * TILE
end

--- The version a point of the timeline stands for, and the point of a version.
function ui.version_at(px)
  local total = ui.latest.version
  return max(1, min(total, floor((px - TIMELINE.x) / TIMELINE.w * total) + 1))
end
function ui.timeline_x(version)
  return TIMELINE.x + (version - 0.5) / ui.latest.version * TIMELINE.w
end

--- Show the player at a version; nil or the latest version means live.
function ui.show(version)
  if version == nil or version >= ui.latest.version then
    ui.cursor, ui.shown = nil, ui.latest
  else
    ui.cursor = max(1, version)
    ui.shown = ui.app:player_at(ui.id, ui.cursor)
  end
end

--- A move: always on the latest state, so it also ends a rewind.
function ui.move(direction)
  ui.latest = ui.app:move(ui.id, direction)
  ui.show(nil)
end

local MOVE_KEYS = { left = "left", right = "right", up = "up", down = "down",
                    a = "left", d = "right", w = "up", s = "down" }

local function usage(problem)
  io.stderr:write("love_replay: ", problem, "\nusage: love examples/love_replay [--store URI] [--name NAME]",
    " [--smoke RESULT_FILE] [--screenshot PNG]\n")
  love.event.quit(2)
end

function love.load(args)
  local opts = {}
  local i = 1
  while i <= #args do
    local name = args[i]:match("^%-%-(%a+)$")
    if not (name == "store" or name == "name" or name == "smoke" or name == "screenshot") or not args[i + 1] then
      return usage("bad argument '" .. args[i] .. "'")
    end
    opts[name] = args[i + 1]
    i = i + 2
  end
  ui.store = opts.store or "lmdb:" .. love.filesystem.getSaveDirectory() .. "/store"
  ui.app = game.Game.new { store = ui.store }
  ui.latest = ui.app:join(opts.name or "player")
  ui.id = ui.latest.id
  ui.show(nil)
  love.keyboard.setKeyRepeat(true)
  if opts.smoke then
    ui.smoke = require("smoke").start(ui, opts.smoke, opts.screenshot)
  end
end

function love.keypressed(key)
  if not ui.latest then return end
  if MOVE_KEYS[key] then
    ui.move(MOVE_KEYS[key])
  elseif key == "[" or key == "," then
    ui.show((ui.cursor or ui.latest.version) - 1)
  elseif key == "]" or key == "." then
    if ui.cursor then ui.show(ui.cursor + 1) end
  elseif key == "home" then
    ui.show(1)
  elseif key == "end" then
    ui.show(nil)
  elseif key == "escape" then
    if ui.cursor then ui.show(nil) else love.event.quit(0) end
  end
end

local function on_timeline(x, y)
  return x >= TIMELINE.x and x <= TIMELINE.x + TIMELINE.w and y >= TIMELINE.y and y <= TIMELINE.y + TIMELINE.h
end

function love.mousepressed(x, y, button)
  if button == 1 and on_timeline(x, y) then ui.show(ui.version_at(x)) end
end

function love.mousemoved(x, y)
  if love.mouse.isDown(1) and on_timeline(x, y) then ui.show(ui.version_at(x)) end
end

function love.update()
  if not ui.latest then return end -- a usage error is quitting
  ui.frames = ui.frames + 1
  if ui.smoke then ui.smoke:update() end
end

local function draw_map(player)
  for y, row in ipairs(game.MAP) do
    for x = 1, #row do
      love.graphics.setColor(game.is_wall(x, y) and COLORS.wall or COLORS.floor)
      love.graphics.rectangle("fill", MAP_X + (x - 1) * TILE, MAP_Y + (y - 1) * TILE, TILE - 1, TILE - 1)
    end
  end
  love.graphics.setColor(COLORS.coin)
  for n, coin in ipairs(game.COINS) do
    if not player:has(n) then
      local cx, cy = ui.tile_center(coin.x, coin.y)
      love.graphics.circle("fill", cx, cy, TILE / 4)
    end
  end
end

local function draw_timeline()
  local total = ui.latest.version
  love.graphics.setColor(COLORS.floor)
  love.graphics.rectangle("fill", TIMELINE.x, TIMELINE.y, TIMELINE.w, TIMELINE.h)
  love.graphics.setColor(COLORS.wall)
  for v = 1, total do
    local x = ui.timeline_x(v)
    love.graphics.line(x, TIMELINE.y + 6, x, TIMELINE.y + TIMELINE.h - 6)
  end
  love.graphics.setColor(ui.cursor and COLORS.rewind or COLORS.cursor)
  local cx = ui.timeline_x(ui.shown.version)
  love.graphics.rectangle("fill", cx - 3, TIMELINE.y - 2, 6, TIMELINE.h + 4)
end

function love.draw()
  if not ui.latest then return end
  ui.drawn = ui.drawn + 1
  love.graphics.clear(COLORS.background)
  local shown = ui.shown
  draw_map(shown)
  if ui.cursor then
    -- where the player is now, faintly, behind the past
    love.graphics.setColor(COLORS.ghost)
    local gx, gy = ui.tile_center(ui.latest.x, ui.latest.y)
    love.graphics.circle("fill", gx, gy, TILE / 3)
  end
  love.graphics.setColor(COLORS.player)
  local px, py = ui.tile_center(shown.x, shown.y)
  love.graphics.circle("fill", px, py, TILE / 3)

  love.graphics.setColor(ui.cursor and COLORS.rewind or COLORS.text)
  local status = ui.cursor and ("REWOUND to version %d of %d"):format(ui.cursor, ui.latest.version)
    or ("live, version %d"):format(ui.latest.version)
  love.graphics.print(("%s   score %d/%d   steps %d%s"):format(status, shown.score, #game.COINS, shown.steps,
    shown:cleared() and "   all coins!" or ""), MAP_X, 15)
  love.graphics.setColor(COLORS.text)
  love.graphics.print("arrows/WASD move   [ ] rewind   Home/End   click the timeline   Esc", MAP_X, 380)
  draw_timeline()
end

function love.quit()
  if ui.app then ui.app:close() end
end
