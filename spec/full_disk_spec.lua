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

  it("opens a store on a full disk and reads it", function()
    if skip_unless_mounted() then return end
    local app = App.new { store = uri }
    app:save(Item("first"))
    app:close()
    -- fill the rest of the disk with a plain file
    os.execute(("dd if=/dev/zero of=%s bs=65536 2>/dev/null"):format(q(mnt .. "/filler")))
    local again = App.new { store = uri }
    finally(function() again:close() end)
    assert.are.equal(1, again:max_notification_id())
    local err = helper.error_of(again.save, again, Item(("z"):rep(100000)))
    assert.is_true(cairn.errors.is(err, "StoreError"), tostring(err))
    assert.matches("disk full", err.message, 1, true)
  end)
end)
