--- The writable map (MDB_WRITEMAP, runtime/store/lmdb_map.c), LMDB only: processes agree on
-- one map size, the data file never gets smaller, and its blocks are reserved before the map
-- writes to them. LMDB sets the file's size to its map size at every open and resize, so a
-- process opening with a smaller map would cut off the pages another process had grown into.
local helper = require "helper"
local cairn = require "cairn"

local q = helper.shell_quote

-- size and allocated bytes of a file (GNU stat)
local function file_size(path)
  local code, out = helper.run(("stat -c '%%s %%b %%B' %s"):format(q(path)))
  assert.are.equal(0, code, "stat " .. path)
  local size, blocks, unit = out:match("(%d+) (%d+) (%d+)")
  return tonumber(size), tonumber(blocks) * tonumber(unit)
end

local Item = cairn.aggregate("MapItem")
Item:created("Made", function(self, pad) self.pad = pad end)
local App = cairn.application("MapApp")

describe("the writable map (lmdb:)", function()
  local dir, uri, data

  before_each(function()
    dir = helper.tmpdir()
    uri = "lmdb:" .. dir .. "/store"
    data = dir .. "/store/data.mdb"
  end)

  after_each(function() helper.rmrf(dir) end)

  it("reserves the blocks of the whole map: the data file has no holes", function()
    local app = App.new { store = uri, sync = "none", CAIRN_MAP_SIZE = 65536 }
    finally(function() app:close() end)
    local pad = ("p"):rep(4000)
    for _ = 1, 600 do app:save(Item(pad)) end -- about 2.4 MB: the map grows several times
    local size, allocated = file_size(data)
    assert.is_true(size >= 2 * 1024 * 1024, "the map did not grow: " .. size)
    assert.is_true(allocated >= size, ("the data file has holes: %d bytes, %d allocated"):format(size, allocated))
    assert.are.equal(size, app.store:stat().map_size)
  end)

  it("grows the map after a save when one like it would not fit, so that it does not fail and run again", function()
    local app = App.new { store = uri, sync = "none", CAIRN_MAP_SIZE = 262144 }
    finally(function() app:close() end)
    local pad = ("g"):rep(1000)
    local function save_batch(n)
      local items = {}
      for i = 1, n do items[i] = Item(pad) end
      app:save(unpack(items))
    end
    save_batch(1) -- the first commit: nothing known of how much a save adds
    assert.are.equal(262144, app.store:stat().map_size)
    save_batch(10) -- about 11 KB more: another like it still fits twice over
    assert.are.equal(262144, app.store:stat().map_size)
    save_batch(80) -- about 85 KB: a second one might not fit in what is left, so the map doubles now
    assert.are.equal(524288, app.store:stat().map_size)
    assert.are.equal(524288, (file_size(data)))
    save_batch(80)
    assert.are.equal(91 + 80, app:max_notification_id())
    assert.are.equal(0, app.store:verify().problems)
  end)

  it("adopts the size of a file bigger than the map it was asked for, and never makes the file smaller", function()
    local a = App.new { store = uri, sync = "none", CAIRN_MAP_SIZE = 65536 }
    local pad = ("a"):rep(8000)
    for _ = 1, 300 do a:save(Item(pad)) end
    a:close()
    local size = file_size(data)
    assert.is_true(size > 2 * 1024 * 1024, "the map did not grow: " .. size)
    -- a smaller map asked for, in another process: it adopts the file's size
    helper.write_file(dir .. "/small.lua", ([[
      local cairn = require "cairn"
      local Item = cairn.aggregate("MapItem")
      Item:created("Made", function(self, pad) self.pad = pad end)
      local app = cairn.application("MapApp").new { store = %q, sync = "none", CAIRN_MAP_SIZE = 4096 }
      app:save(Item("small"))
      print(app.store:stat().map_size, app:max_notification_id())
      app:close()
    ]]):format(uri))
    local code, out, err = helper.run(("%s run %s"):format(q(helper.cairn_bin), q(dir .. "/small.lua")))
    assert.are.equal(0, code, err)
    local map, n = out:match("(%d+)%s+(%d+)")
    assert.are.equal(size, tonumber(map))
    assert.are.equal(301, tonumber(n))
    assert.are.equal(size, (file_size(data)))
    local vcode, vout, verr = helper.run(("%s verify %s"):format(q(helper.cairn_bin), q(uri)))
    assert.are.equal(0, vcode, vout .. verr)
  end)

  -- Issue 12: with MDB_WRITEMAP and no agreement, the opener's ftruncate cut the file under
  -- the writer's new pages (a SIGBUS in the writer, or a store whose commits point past its end).
  it("keeps every save while a writer grows the map and other processes open with a smaller map", function()
    local writer = dir .. "/writer.lua"
    helper.write_file(writer, ([[
      local cairn = require "cairn"
      local Item = cairn.aggregate("MapItem")
      Item:created("Made", function(self, pad) self.pad = pad end)
      local app = cairn.application("MapApp").new { store = %q, sync = "none", CAIRN_MAP_SIZE = 65536 }
      local pad = (arg[1]):rep(3000)
      local acked = 0
      for i = 1, tonumber(arg[2]) do
        app:save(Item(pad .. i))
        acked = i
      end
      print("acked " .. acked .. " map " .. app.store:stat().map_size)
      app:close()
    ]]):format(uri))
    local opener = dir .. "/opener.lua"
    helper.write_file(opener, ([[
      local cairn = require "cairn"
      local Item = cairn.aggregate("MapItem")
      Item:created("Made", function(self, pad) self.pad = pad end)
      local App = cairn.application("MapApp")
      local sizes = {}
      for i = 1, tonumber(arg[1]) do
        local app = App.new { store = %q, sync = "none", CAIRN_MAP_SIZE = 4096 }
        app:save(Item("opener-" .. i))
        local f = io.open(%q)
        sizes[#sizes + 1] = f:seek("end")
        f:close()
        app:close()
      end
      print("sizes " .. table.concat(sizes, " "))
    ]]):format(uri, data))
    local bin = q(helper.cairn_bin)
    local code, out, err = helper.run(("%s run %s w 1500 & %s run %s x 1500 & %s run %s 60 & %s run %s 60 & wait")
      :format(bin, q(writer), bin, q(writer), bin, q(opener), bin, q(opener)))
    assert.are.equal(0, code, err)
    assert.are.equal("", err)
    local acks = 0
    for n in out:gmatch("acked (%d+)") do acks = acks + tonumber(n) end
    assert.are.equal(3000, acks, out)
    -- what each opener saw of the file's size never went down
    for list in out:gmatch("sizes ([%d ]+)") do
      local last = 0
      for s in list:gmatch("%d+") do
        assert.is_true(tonumber(s) >= last, "the data file got smaller: " .. list)
        last = tonumber(s)
      end
    end
    local app = App.new { store = uri, sync = "none" }
    finally(function() app:close() end)
    assert.are.equal(3000 + 120, app:max_notification_id())
    local counts = { w = 0, x = 0, o = 0 }
    for _, n in ipairs(app.log:select(1, 4000)) do
      local pad = n.event.pad
      local who = pad:match("^[wx]") or "o"
      counts[who] = counts[who] + 1
      if who ~= "o" then assert.are.equal(3000, #pad:match("^" .. who .. "+")) end
    end
    assert.are.same({ w = 1500, x = 1500, o = 120 }, counts)
    local vcode, vout, verr = helper.run(("%s verify %s"):format(bin, q(uri)))
    assert.are.equal(0, vcode, vout .. verr)
  end)
end)
