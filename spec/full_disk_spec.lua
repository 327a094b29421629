--- A full disk: an lmdb: store on a small tmpfs filled until saves fail (LMDB only).
-- Mounting needs root (CI runs as root); elsewhere the tests are pending and say why.
local helper = require "helper"
local cairn = require "cairn"

local q = helper.shell_quote

local Item = cairn.aggregate("DiskItem")
Item:created("Made", function(self, pad) self.size = #pad end)
local App = cairn.application("DiskFull")

describe("a full disk (lmdb: on a 4 MiB tmpfs)", function()
  local dir, mnt, uri, mounted

  before_each(function()
    dir = helper.tmpdir()
    mnt = dir .. "/mnt"
    os.execute("mkdir -p " .. q(mnt))
    mounted = os.execute(("mount -t tmpfs -o size=4m cairn-full-disk %s 2>/dev/null"):format(q(mnt))) == 0
    uri = "lmdb:" .. mnt .. "/store"
  end)

  after_each(function()
    if mounted then os.execute("umount " .. q(mnt)) end
    helper.rmrf(dir)
  end)

  local function skip_unless_mounted()
    if not mounted then
      pending("cannot mount a tmpfs here (mount needs root): the full-disk test did not run")
      return true
    end
  end

  -- fill the disk: returns the acknowledged items and the error that stopped the saves
  local function fill(app)
    local saved, pad = {}, ("x"):rep(8000)
    for _ = 1, 10000 do
      local item = Item(pad)
      local ok, err = pcall(app.save, app, item)
      if not ok then return saved, err end
      saved[#saved + 1] = item.id
    end
    error("the disk never filled up")
  end

  it("fails saves with a StoreError saying the disk is full; the store stays readable; space freed, saves work again",
    function()
      if skip_unless_mounted() then return end
      -- a ballast file to free later
      assert.are.equal(0, os.execute(("dd if=/dev/zero of=%s bs=1024 count=1024 2>/dev/null"):format(
        q(mnt .. "/ballast"))))
      local app = App.new { store = uri }
      finally(function() app:close() end)
      local saved, err = fill(app)
      assert.is_true(#saved > 10, "only " .. #saved .. " saves before the disk was full")
      assert.is_true(cairn.errors.is(err, "StoreError"), tostring(err))
      assert.matches("disk full", err.message, 1, true)
      assert.matches(mnt, err.message, 1, true)

      -- a failed save leaves no trace, and failing again changes nothing
      local again = helper.error_of(app.save, app, Item(("y"):rep(100000)))
      assert.is_true(cairn.errors.is(again, "StoreError"), tostring(again))
      assert.are.equal(#saved, app:max_notification_id())
      local log = app.log:select(1, #saved + 10)
      assert.are.equal(#saved, #log)
      for i, n in ipairs(log) do
        assert.are.equal(i, n.id)
        assert.are.equal(saved[i], n.originator_id)
      end
      assert.are.equal(8000, app.repository:get(saved[#saved]).size)

      -- other processes can read it while the disk is full
      local code, out, stderr = helper.run(q(helper.cairn_bin) .. " stat " .. q(uri))
      assert.are.equal(0, code, stderr)
      assert.matches("events: " .. #saved, out, 1, true)
      code, out, stderr = helper.run(q(helper.cairn_bin) .. " export " .. q(uri) .. " | wc -l")
      assert.are.equal(0, code, stderr)
      assert.are.equal(#saved, tonumber(out))

      -- free space: saves work again, ids go on without a gap
      os.remove(mnt .. "/ballast")
      local item = Item("after")
      local rec = app:save(item)
      assert.are.equal(#saved + 1, rec[1].notification_id)
      code, out = helper.run(q(helper.cairn_bin) .. " log " .. q(uri) .. " --from " .. (#saved + 1))
      assert.are.equal(0, code)
      assert.matches(item.id, out, 1, true)
    end)

  it("opens a store on a full disk and reads it; saves use the space its map reserved, then fail", function()
    if skip_unless_mounted() then return end
    local app = App.new { store = uri }
    app:save(Item("first"))
    app:close()
    -- fill the rest of the disk with a plain file
    os.execute(("dd if=/dev/zero of=%s bs=65536 2>/dev/null"):format(q(mnt .. "/filler")))
    local again = App.new { store = uri }
    finally(function() again:close() end)
    assert.are.equal(1, again:max_notification_id())
    -- the data file's blocks are reserved up to its map (lmdb_map.c): saves fill them first
    local saved, err = fill(again)
    assert.is_true(cairn.errors.is(err, "StoreError"), tostring(err))
    assert.matches("disk full", err.message, 1, true)
    assert.are.equal(1 + #saved, again:max_notification_id())
    if saved[1] then assert.are.equal(8000, again.repository:get(saved[#saved]).size) end
  end)

  -- a disk filled to the last block
  local function fill_disk()
    os.execute(("dd if=/dev/zero of=%s bs=4096 2>/dev/null"):format(q(mnt .. "/filler")))
  end

  -- Issue 14 item 5: LMDB made lock.mdb as a file of holes and wrote it through a shared map:
  -- on a full disk the process died of SIGBUS (exit 135).
  it("opening a new store on a full disk is a StoreError saying so (it was a SIGBUS); nothing is left behind",
    function()
      if skip_unless_mounted() then return end
      fill_disk()
      local err = helper.assert_error_kind("StoreError", function() App.new { store = uri } end, "disk full")
      assert.matches(mnt, err.message, 1, true)
      -- the tools never create a store; a script does
      helper.write_file(dir .. "/open.lua", ("require('cairn').application('D').new { store = %q }"):format(uri))
      local code, _, stderr = helper.run(("%s run %s"):format(q(helper.cairn_bin), q(dir .. "/open.lua")))
      assert.are.equal(1, code, stderr)
      assert.matches("disk full", stderr, 1, true)
      assert.is_nil(io.open(mnt .. "/store/lock.mdb"), "a lock file was left behind")
    end)

  it("the read-only tools read a store whose lock file is gone on a full disk (they died of SIGBUS)", function()
    if skip_unless_mounted() then return end
    local app = App.new { store = uri }
    for _ = 1, 20 do app:save(Item("x")) end
    app:close()
    assert.is_true(os.remove(mnt .. "/store/lock.mdb"))
    fill_disk()
    for _, tool in ipairs { "verify", "stat", "log", "export" } do
      local code, out, stderr = helper.run(("%s %s %s"):format(q(helper.cairn_bin), tool, q(uri)))
      assert.are.equal(0, code, tool .. ": " .. stderr)
      if tool == "stat" then assert.matches("events: 20", out, 1, true) end
    end
    -- a writer cannot make the lock file: an error, not a signal
    helper.assert_error_kind("StoreError", function() App.new { store = uri } end, "disk full")
  end)
end)
