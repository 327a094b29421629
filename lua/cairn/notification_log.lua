--- The notification log: every recorded event in order, with gap-free ids from 1.
-- @module cairn.notification_log
local setmetatable, type, tonumber, floor = setmetatable, type, tonumber, math.floor

local _M = { _VERSION = "0.1.0", SECTION_SIZE = 10 }
local mt = { __index = _M }

--- Internal: the log of an application's store.
function _M.new(app, section_size)
  return setmetatable({ app = app, section_size = section_size or _M.SECTION_SIZE }, mt)
end

local function whole(n)
  return type(n) == "number" and n >= 0 and n % 1 == 0
end

--- Internal: check the arguments of a `select` (also cairn.remote_log's); raises at select's caller.
-- @return stop, topics
function _M.select_args(start, limit, opts)
  if not whole(start) or start < 1 then error("bad argument #1 to 'select' (id >= 1 expected)", 3) end
  if not whole(limit) then error("bad argument #2 to 'select' (limit >= 0 expected)", 3) end
  local stop, topics
  if opts then
    stop, topics = opts.stop, opts.topics
    if stop ~= nil and not whole(stop) then error("bad option 'stop' to 'select' (an id expected)", 3) end
    if topics ~= nil and type(topics) ~= "table" then
      error("bad option 'topics' to 'select' (array of topics expected)", 3)
    end
  end
  return stop, topics
end

--- Notifications in id order from `start` (inclusive).
-- @param start the first notification id (>= 1)
-- @param limit the most notifications to return
-- @param[opt] opts `stop` (last id, inclusive), `topics` (only these topics)
-- @return array of `{ id, originator_id, originator_version, topic, event }`
function _M:select(start, limit, opts)
  local stop, topics = _M.select_args(start, limit, opts)
  if limit == 0 or (stop and stop < start) then return {} end
  return self.app.store:read_log { from = start, limit = limit, stop = stop, topics = topics }
end

local function parse_section_id(section_id)
  local a, b = section_id:match("^(%d+),(%d+)$")
  a, b = tonumber(a), tonumber(b)
  if not a or a < 1 or b < a then return nil end
  return a, b
end

--- A linked section of the log: `"1,10"`, or `"current"` for the section holding the newest notification.
-- A section is named by the whole range it covers, as in Vernon's numbering: with 14
-- notifications and sections of 10, `"current"` is `"11,20"` and holds 4 items.
-- @return `{ id, items, previous_id, next_id }`; `id` names the range asked for (capped at the
-- section size; nil for a range with no notifications, but `"current"` is always named);
-- `previous_id` and `next_id` name whole sections, `next_id` only when later notifications exist
function _M:section(section_id)
  if type(section_id) ~= "string" then error("bad argument #1 to 'section' (section id expected)", 2) end
  local size = self.section_size
  local first, last
  local current = section_id == "current"
  if current then
    local max_id = self.app.store:max_id()
    first = max_id > 0 and floor((max_id - 1) / size) * size + 1 or 1
    last = first + size - 1
  else
    first, last = parse_section_id(section_id)
    if not first then
      error(("bad section id '%s' (expected 'FIRST,LAST' or 'current')"):format(section_id), 2)
    end
  end
  local count = last - first + 1
  if count > size then count = size end
  local items = self.app.store:read_log { from = first, limit = count }
  local section = { items = items }
  if #items > 0 or current then
    section.id = ("%d,%d"):format(first, first + count - 1)
    -- neighbours are whole sections, however this one was asked for
    if first > 1 then
      section.previous_id = ("%d,%d"):format(first > size and first - size or 1, first - 1)
    end
  end
  if #items > 0 then
    -- a next section exists only when something was recorded after this one
    local last_id = items[#items].id
    if last_id < self.app.store:max_id() then
      section.next_id = ("%d,%d"):format(last_id + 1, last_id + size)
    end
  end
  return section
end

return _M
