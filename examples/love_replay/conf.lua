--- LÖVE configuration for the replay example, and where `require "cairn"`
-- finds cairn.
--
-- Run from a cairn checkout (this directory is ROOT/examples/love_replay and
-- `tools/build` has made ROOT/lib/cairn/core.so), the checkout's lua/, stdlib/
-- and lib/ go first on package.path/cpath. Anywhere else an installed cairn is
-- used: `luarocks make` (or `luarocks install`) into the system tree puts it on
-- LuaJIT's default paths; for another tree, start LÖVE with the paths that
-- `luarocks path --tree TREE` prints (LUA_PATH/LUA_CPATH).

local function file_exists(path)
  local f = io.open(path, "rb")
  if f then f:close() end
  return f ~= nil
end

local root = love.filesystem.getSource():gsub("/+$", "") .. "/../.."
if file_exists(root .. "/lib/cairn/core.so") then
  package.path = root .. "/lua/?.lua;" .. root .. "/lua/?/init.lua;" .. root .. "/stdlib/?.lua;" .. package.path
  package.cpath = root .. "/lib/?.so;" .. package.cpath
end

function love.conf(t)
  t.identity = "cairn_love_replay"   -- the save directory, where the default store lives
  t.version = "11.0"
  t.window.title = "cairn replay — arrows move, [ ] rewind"
  t.window.width = 520
  t.window.height = 400
  -- nothing here makes a sound or reads a joystick: fewer devices to open,
  -- and it runs headless (Xvfb) without an audio device
  t.modules.audio = false
  t.modules.sound = false
  t.modules.joystick = false
  t.modules.physics = false
  t.modules.video = false
  t.modules.touch = false
end
