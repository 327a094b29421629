-- examples/game_server: the C server (4 threads, one LMDB store) and the
-- replay tool, checked against what the store holds afterwards.
local helper = require "helper"

local q = helper.shell_quote

-- the programs of the build that made CAIRN_BIN (release or sanitize)
local examples = helper.cairn_bin:match("/build/sanitize/bin/cairn$")
  and helper.root .. "/build/sanitize/examples" or helper.root .. "/build/examples"
local GAME_DIR = helper.root .. "/examples/game_server"

insulate("examples/game_server", function()
  if not package.path:find(GAME_DIR, 1, true) then package.path = GAME_DIR .. "/?.lua;" .. package.path end
  local game = require "game"

  local dir, app, out, log

  -- one server run for every test: it is the slow part
  setup(function()
    dir = helper.tmpdir()
    local code, stdout, stderr = helper.run(("%s --threads 4 --ticks 25 --commands 10 --players 16 --seed 7 %s"):format(
      q(examples .. "/game_server"), q(dir .. "/store")))
    assert.equal(0, code, stderr)
    out = stdout
    app = game.Game.new { store = "lmdb:" .. dir .. "/store", sync = "none" }
    log = app.log:select(1, 1000000)
  end)

  teardown(function()
    if app then app:close() end
    helper.rmrf(dir)
  end)

  local function number(label)
    return tonumber(out:match(label .. " (%d+)"))
  end

  describe("game_server", function()
    it("reports every command, no failures, throughput and latency percentiles", function()
      assert.matches("game_server: 4 threads, 16 players", out, 1, true)
      assert.equal(1000, tonumber(out:match("commands: (%d+)")))
      assert.matches("failed: 0", out, 1, true)
      assert.truthy(tonumber(out:match("throughput: (%d+) commands/s")) > 0)
      local p50, p90, p99, max = out:match("latency %(us%): p50 (%d+) p90 (%d+) p99 (%d+) max (%d+)")
      assert.truthy(p50, out)
      p50, p90, p99, max = tonumber(p50), tonumber(p90), tonumber(p99), tonumber(max)
      assert.truthy(p50 <= p90 and p90 <= p99 and p99 <= max)
    end)

    it("recorded every event with gap-free ids, as many as the commands that succeeded", function()
      assert.equal(number("last notification id:"), #log)
      for i, n in ipairs(log) do assert.equal(i, n.id) end
      local moves, pickups, trades = number("moves"), number("pick%-ups"), number("trades")
      local declined = tonumber(out:match("of which declined (%d+)"))
      local counts = {}
      for _, n in ipairs(log) do counts[n.topic] = (counts[n.topic] or 0) + 1 end
      assert.equal(16, counts["Player.Joined"])
      assert.equal(moves, counts["Player.Moved"])
      assert.equal(pickups, counts["Player.PickedUp"])
      assert.equal(trades - declined, counts["Player.Gave"])
      assert.equal(trades - declined, counts["Player.Received"])
    end)

    it("saved each trade atomically: the giving and the receiving event side by side", function()
      for i, n in ipairs(log) do
        if n.topic == "Player.Gave" then
          local r = log[i + 1]
          assert.equal("Player.Received", r.topic)
          assert.equal(n.event.item, r.event.item)
          assert.equal(n.event.to, r.originator_id)
          assert.equal(r.event.from, n.originator_id)
        elseif n.topic == "Player.Received" then
          assert.equal("Player.Gave", log[i - 1].topic)
        end
      end
    end)

    it("conserved items: players hold exactly what was picked up", function()
      local picked, held, versions = 0, 0, {}
      for _, n in ipairs(log) do
        if n.topic == "Player.PickedUp" then picked = picked + 1 end
        versions[n.originator_id] = n.originator_version
      end
      for i = 1, 16 do
        local player = app:player("player" .. i)
        assert.equal(versions[player.id], player.version)
        for _, count in pairs(player.items) do
          assert.truthy(count > 0)
          held = held + count
        end
      end
      assert.truthy(picked > 0)
      assert.equal(picked, held)
    end)
  end)

  describe("replay", function()
    local function replay(...)
      local args = { q(examples .. "/replay"), q(dir .. "/store") }
      for _, a in ipairs { ... } do args[#args + 1] = q(a) end
      return helper.run(table.concat(args, " "))
    end

    it("prints a player's state at a past version, as the repository rebuilds it", function()
      local now = app:player("player3")
      local version = math.max(1, math.floor(now.version / 2))
      local code, stdout, stderr = replay("player3", tostring(version))
      assert.equal(0, code, stderr)
      local past = app:player_at("player3", version)
      assert.matches(("player3 (id %s) at version %d of %d"):format(now.id, version, now.version), stdout, 1, true)
      assert.matches(("position: (%d, %d), moves: %d"):format(past.x, past.y, past.moves), stdout, 1, true)
      local items = {}
      for item, count in pairs(past.items) do items[#items + 1] = item .. " " .. count end
      table.sort(items)
      assert.matches("items: " .. (#items > 0 and table.concat(items, ", ") or "none"), stdout, 1, true)
    end)

    it("prints the current state without a version, and fails for an unknown player", function()
      local now = app:player("player5")
      local code, stdout = replay("player5")
      assert.equal(0, code)
      assert.matches(("at version %d of %d"):format(now.version, now.version), stdout, 1, true)
      local code2, _, stderr = replay("nobody")
      assert.equal(1, code2)
      assert.matches("AggregateNotFound", stderr, 1, true)
    end)
  end)
end)
