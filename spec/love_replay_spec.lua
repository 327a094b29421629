--- examples/love_replay: its domain module from plain LuaJIT, and the game
-- itself in LÖVE under Xvfb (`--smoke`), whose events are then read back with
-- cairn. LÖVE and Xvfb are required (tools/setup installs them): without
-- them the smoke tests fail rather than skip.
local helper = require "helper"

local q = helper.shell_quote
local GAME_DIR = helper.root .. "/examples/love_replay"

insulate("examples/love_replay", function()
  package.path = GAME_DIR .. "/?.lua;" .. package.path
  local game = require "game"
  local cairn = require "cairn"

  -- every event of the player, as topic suffixes
  local function topics(app)
    local out = {}
    for _, n in ipairs(app.log:select(1, 100)) do out[#out + 1] = n.topic:match("^Player%.(.*)$") end
    return out
  end

  describe("game (domain, without LÖVE)", function()
    helper.each_store(function(ctx)
      it("records moves and coins, nothing for a bump, and rebuilds any version", function()
        local app = ctx.open(game.Game)
        local player = app:join("ann")
        assert.are.equal(game.Player.create_id("ann"), player.id)
        assert.are.same({ 2, 2, 1 }, { player.x, player.y, player.version })
        local moved
        player, moved = app:move(player.id, "up")           -- the wall above the start
        assert.is_false(moved)
        assert.are.equal(1, player.version)
        for _, d in ipairs { "down", "down", "right" } do player = app:move(player.id, d) end
        assert.are.same({ 3, 4, 1, 5 }, { player.x, player.y, player.score, player.version })
        assert.are.same({ "Spawned", "Moved", "Moved", "Moved", "CoinCollected" }, topics(app))
        local before = app:player_at(player.id, 4)
        assert.are.same({ 3, 4, 0, 3 }, { before.x, before.y, before.score, before.steps })
        assert.is_false(before:has(2))
        -- back onto the coin's square: it is collected only once
        app:move(player.id, "left")
        player = app:move(player.id, "right")
        assert.are.same({ 1, 7 }, { player.score, player.version })
        assert.is_true(player:has(2))
      end)

      it("continues a player's history when the same name joins again", function()
        local app = ctx.open(game.Game)
        local id = app:join("bo").id
        app:move(id, "down")
        local again = app:join("bo")
        assert.are.same({ id, 2, 2, 3 }, { again.id, again.version, again.x, again.y })
      end)

      it("refuses a direction it does not know", function()
        local app = ctx.open(game.Game)
        local player = app:join("cy")
        assert.matches("bad direction 'north'", helper.error_of(player.move, player, "north"), 1, true)
        assert.are.equal(1, app:join("cy").version)
      end)
    end)

    it("has a map whose coins the start can reach", function()
      -- flood fill from the start over non-wall squares
      local seen, todo = {}, { { game.START.x, game.START.y } }
      while #todo > 0 do
        local x, y = unpack(table.remove(todo))
        local k = y * 100 + x
        if not seen[k] and not game.is_wall(x, y) then
          seen[k] = true
          for _, d in pairs(game.DIRECTIONS) do todo[#todo + 1] = { x + d[1], y + d[2] } end
        end
      end
      assert.are.equal(4, #game.COINS)
      for _, c in ipairs(game.COINS) do assert.is_true(seen[c.y * 100 + c.x] == true) end
    end)
  end)

  describe("the game in LÖVE under Xvfb (--smoke)", function()
    local dir
    before_each(function() dir = helper.tmpdir() end)
    after_each(function() helper.rmrf(dir) end)

    local function smoke(store, result, screenshot)
      for _, tool in ipairs { "love", "xvfb-run" } do
        local code = helper.run("command -v " .. tool)
        assert(code == 0, tool .. " is not installed (tools/setup installs love, xvfb and xauth)")
      end
      return helper.run(("timeout 120 xvfb-run -a love %s --smoke %s --store %s%s"):format(q(GAME_DIR), q(result),
        q(store), screenshot and " --screenshot " .. q(screenshot) or ""))
    end

    local function result_of(path)
      local text = helper.read_file(path)
      assert(text, "no result file " .. path)
      local r = {}
      for k, v in text:gmatch("([%w_]+)=([^\n]*)") do r[k] = v end
      return r
    end

    it("plays, rewinds, checks the screen and leaves the events in the store", function()
      local store, result, shot = helper.store_uri(dir), dir .. "/result", dir .. "/shot.png"
      local code, out, err = smoke(store, result, shot)
      assert.are.equal(0, code, out .. err)
      local r = result_of(result)
      assert.are.equal("true", r.ok, err)
      assert.are.equal("0", r.failures)
      assert.is_true(tonumber(r.checks) >= 10)
      assert.is_true(tonumber(r.drawn) > 0)
      assert.are.equal("true", r.screenshot)
      assert.are.equal("\137PNG", helper.read_file(shot):sub(1, 4))
      assert.are.equal(game.Player.create_id("player"), r.player_id)

      local app = game.Game.new { store = store, sync = "none" }
      finally(function() app:close() end)
      assert.are.same({ "Spawned", "Moved", "Moved", "Moved", "CoinCollected", "Moved", "Moved", "Moved",
                        "CoinCollected", "Moved", "Moved" }, topics(app))
      local player = app.repository:get(r.player_id)
      assert.are.same({ 11, 3, 5, 2, 8 }, { player.version, player.x, player.y, player.score, player.steps })
      assert.are.same({ "11", "3", "5", "2" }, { r.version, r.x, r.y, r.score })
      local at5 = app:player_at(player.id, 5)
      assert.are.same({ 3, 4, 1 }, { at5.x, at5.y, at5.score })
      assert.is_true(cairn.is_event(app.log:select(1, 1)[1].event))
    end)

    it("fails with exit code 1 on a store that already has a history", function()
      local store = helper.store_uri(dir)
      local first, out1, err1 = smoke(store, dir .. "/first")
      assert.are.equal(0, first, out1 .. err1)
      local code, out, err = smoke(store, dir .. "/second")
      assert.are.equal(1, code, out .. err) -- xvfb-run's own failures (2 to 6) say why on stderr
      assert.are.equal("false", result_of(dir .. "/second").ok)
      assert.matches("needs a fresh one", err, 1, true)
    end)
  end)
end)
