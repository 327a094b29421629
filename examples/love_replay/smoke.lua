--- The replay example's smoke test (`love examples/love_replay --smoke RESULT_FILE`).
-- Scripted input goes through LÖVE's own event queue (love.event.push), so
-- it reaches love.keypressed and love.mousepressed as real input does, one
-- step per frame. After each step the state on screen is compared with what
-- the moves must have produced; a screenshot taken while rewound is checked
-- for the player's colour at the rebuilt position. The result goes to
-- RESULT_FILE as `key=value` lines and the exit code is 0 only if every
-- check passed. It needs a fresh store.

local _M = {}
local mt = { __index = _M }

-- The script. Versions: 1 spawned at (2,2); 2 (2,3); 3 (2,4); 4 (3,4);
-- 5 coin 2; 6 (2,4); 7 (2,5); 8 (2,6); 9 coin 4; 10 (3,6). Walls stop the
-- two bumps, which record nothing.
local function key(k) return { key = k } end
local function click(version) return { click = version } end
local function expect(label, cursor, version, x, y, score, steps)
  return { expect = { label = label, cursor = cursor, version = version, x = x, y = y, score = score,
                      steps = steps } }
end
local STEPS = {
  expect("joined", nil, 1, 2, 2, 0, 0),
  key "down", key "s", key "right", key "right", key "left", key "down", key "down", key "down", key "d",
  expect("after the moves (two bumps into walls)", nil, 10, 3, 6, 2, 7),
  key "[", key "[", key "[",
  expect("three steps back", 7, 7, 2, 5, 1, 5),
  key "home",
  expect("home: the first moment", 1, 1, 2, 2, 0, 0),
  key "]", key "]", key "]",
  expect("forward to the step onto coin 2, not yet collected", 4, 4, 3, 4, 0, 3),
  key "]",
  expect("coin 2 collected", 5, 5, 3, 4, 1, 3),
  { screenshot = true },
  click(8),
  expect("clicked the timeline at version 8", 8, 8, 2, 6, 1, 6),
  key "up",
  expect("a move while rewound continues from the latest state", nil, 11, 3, 5, 2, 8),
  key "]",
  expect("] while live stays live", nil, 11, 3, 5, 2, 8),
}

local MAX_FRAMES = 600

--- Start the smoke test on the game's ui table.
function _M.start(ui, result_path, screenshot_path)
  local self = setmetatable({ ui = ui, result_path = result_path, screenshot_path = screenshot_path,
                              step = 1, checks = 0, failures = {} }, mt)
  if ui.latest.version ~= 1 then
    self:fail(("the store %s already holds %d events of this player; the smoke test needs a fresh one")
      :format(ui.store, ui.latest.version))
    self:finish()
  end
  return self
end

function _M:fail(what)
  self.failures[#self.failures + 1] = what
  io.stderr:write("love_replay smoke: FAILED ", what, "\n")
end

function _M:check(cond, what)
  self.checks = self.checks + 1
  if not cond then self:fail(what) end
end

function _M:compare(e)
  local ui, shown = self.ui, self.ui.shown
  local got = ("cursor %s version %d at (%d,%d) score %d steps %d"):format(tostring(ui.cursor), shown.version,
    shown.x, shown.y, shown.score, shown.steps)
  local want = ("cursor %s version %d at (%d,%d) score %d steps %d"):format(tostring(e.cursor), e.version,
    e.x, e.y, e.score, e.steps)
  self:check(got == want, ("%s: expected %s, got %s"):format(e.label, want, got))
end

-- The screenshot: saved as PNG if asked, and the pixel at the centre of the
-- shown player's square must be the player's colour.
function _M:screenshot_taken(image)
  local ui = self.ui
  local px, py = ui.tile_center(ui.shown.x, ui.shown.y)
  local r, g, b = image:getPixel(math.floor(px), math.floor(py))
  local want = ui.COLORS.player
  local near = math.abs(r - want[1]) < 0.02 and math.abs(g - want[2]) < 0.02 and math.abs(b - want[3]) < 0.02
  self:check(near, ("screenshot: pixel at the player (%d,%d) is %.2f,%.2f,%.2f, not the player's colour")
    :format(px, py, r, g, b))
  if self.screenshot_path then
    local f = assert(io.open(self.screenshot_path, "wb"))
    f:write(image:encode("png"):getString())
    f:close()
  end
  self.shot = true
end

--- One frame: run checks until the next step that needs input to be handled.
function _M:update()
  local ui = self.ui
  if self.done then return end
  if ui.frames > MAX_FRAMES then
    self:fail(("did not finish within %d frames (at step %d)"):format(MAX_FRAMES, self.step))
    return self:finish()
  end
  if self.waiting_for_shot then
    if not self.shot then return end
    self.waiting_for_shot = false
  end
  while self.step <= #STEPS do
    local s = STEPS[self.step]
    self.step = self.step + 1
    if s.expect then
      self:compare(s.expect)
    elseif s.key then
      love.event.push("keypressed", s.key, s.key, false)
      return
    elseif s.click then
      local x = ui.timeline_x(s.click)
      love.event.push("mousepressed", x, ui.TIMELINE.y + ui.TIMELINE.h / 2, 1, false, 1)
      return
    elseif s.screenshot then
      love.graphics.captureScreenshot(function(image) self:screenshot_taken(image) end)
      self.waiting_for_shot = true
      return
    end
  end
  self:check(ui.drawn > 0, "love.draw never ran")
  self:finish()
end

--- Write the result file and quit (exit code 0 only if every check passed).
function _M:finish()
  local ui, ok = self.ui, #self.failures == 0
  local lines = {
    "ok=" .. tostring(ok), "checks=" .. self.checks, "failures=" .. #self.failures,
    "frames=" .. ui.frames, "drawn=" .. ui.drawn, "store=" .. ui.store, "player_id=" .. ui.id,
    "version=" .. ui.latest.version, "x=" .. ui.latest.x, "y=" .. ui.latest.y, "score=" .. ui.latest.score,
    "screenshot=" .. tostring(self.shot == true),
  }
  for i, f in ipairs(self.failures) do lines[#lines + 1] = ("failure%d=%s"):format(i, f) end
  local f = assert(io.open(self.result_path, "w"))
  f:write(table.concat(lines, "\n"), "\n")
  f:close()
  self.done = true
  love.event.quit(ok and 0 or 1)
end

return _M
