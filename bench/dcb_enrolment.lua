--- The course-enrolment decision per second, with dynamic consistency
-- boundaries (examples/course_enrolment) and with aggregates, on stores of
-- about 1,000,000 events (issue 16's benchmark).
--
--   bin/cairn run bench/dcb_enrolment.lua fill dcb|agg URI [EVENTS]
--   bin/cairn run bench/dcb_enrolment.lua run dcb|agg URI OPS SEED
--   bench/dcb_enrolment.sh DIR|POSTGRESQL_URI [EVENTS] [OPS]   (both fills, then 1 and 4 processes)
--
-- The shape: one course per 100 events (capacity 100), one student per 10
-- (at most 10 courses), and the rest subscriptions spread evenly (about 89
-- per course and 9 per student), so a decision reads ~100 events (DCB) or
-- replays two aggregates of ~90 and ~9 events (aggregates).
local script = (arg and arg[0]) or "bench/dcb_enrolment.lua"
local root = (script:match("^(.*)/[^/]*$") or ".") .. "/.."
package.path = root .. "/examples/course_enrolment/?.lua;" .. package.path

local cairn = require "cairn"
local core = require "cairn.core"
local Enrolment = require("enrolment").Enrolment

-- The same decision with two aggregates saved in one transaction.
local Course = cairn.aggregate("Course")
function Course.create_id(id) return cairn.uuid.v5(cairn.uuid.NAMESPACE_URL, "/courses/" .. id) end
Course:created("Defined", function(self, name, capacity)
  self.name, self.capacity, self.students = name, capacity, {}
end)
Course.add_student = Course:event("StudentAdded", function(self, student)
  self.students[#self.students + 1] = student
end)
local Student = cairn.aggregate("Student")
function Student.create_id(id) return cairn.uuid.v5(cairn.uuid.NAMESPACE_URL, "/students/" .. id) end
Student:created("Registered", function(self, name, max_courses)
  self.name, self.max_courses, self.courses = name, max_courses, {}
end)
Student.join = Student:event("Joined", function(self, course)
  self.courses[#self.courses + 1] = course
end)
local Enrolments = cairn.application("Enrolments")

local function has(list, v)
  for i = 1, #list do if list[i] == v then return true end end
  return false
end

function Enrolments:subscribe(student_id, course_id)
  local retries = 0
  while true do
    local course = self.repository:get(Course.create_id(course_id))
    local student = self.repository:get(Student.create_id(student_id))
    if has(course.students, student_id) then return nil, "already", retries end
    if #course.students >= course.capacity then return nil, "full", retries end
    if #student.courses >= student.max_courses then return nil, "limit", retries end
    course:add_student(student_id)
    student:join(course_id)
    local ok, err = pcall(self.save, self, course, student)
    if ok then return true, nil, retries end
    if not cairn.errors.is(err, "ConcurrencyError") then error(err, 0) end
    retries = retries + 1
  end
end

local mode, kind, uri = arg[1], arg[2], arg[3]
local function sizes(events)
  local courses, students = math.floor(events / 100), math.floor(events / 10)
  return courses, students, events - courses - students
end

if mode == "fill" then
  local events = tonumber(arg[4]) or 1000000
  local courses, students, subs = sizes(events)
  local t0 = core.now_us()
  if kind == "dcb" then
    local app = Enrolment.new { store = uri, sync = "none" }
    local batch = {}
    local function flush()
      if #batch > 0 then app.events:append(batch) end
      batch = {}
    end
    local function add(e)
      batch[#batch + 1] = e
      if #batch == 1000 then flush() end
    end
    for c = 1, courses do
      add { type = "CourseDefined", data = { id = "c" .. c, capacity = 100 }, tags = { "course:c" .. c } }
    end
    for s = 1, students do
      add { type = "StudentRegistered", data = { id = "s" .. s, max_courses = 10 }, tags = { "student:s" .. s } }
    end
    for i = 0, subs - 1 do
      local c, s = "c" .. (i % courses + 1), "s" .. (i % students + 1)
      add { type = "StudentSubscribed", data = { course = c, student = s }, tags = { "course:" .. c, "student:" .. s } }
    end
    flush()
    app:close()
  else
    local app = Enrolments.new { store = uri, sync = "none" }
    local cs, ss = {}, {}
    for c = 1, courses do cs[c] = Course.create("c" .. c, 100) end
    for s = 1, students do ss[s] = Student.create("s" .. s, 10) end
    for i = 1, courses, 1000 do app:save(unpack(cs, i, math.min(i + 999, courses))) end
    for i = 1, students, 1000 do app:save(unpack(ss, i, math.min(i + 999, students))) end
    -- subscriptions in the same order as the DCB fill, saved 1,000 at a time, so
    -- that an aggregate's events are spread over the log as a course's DCB events are
    local touched = {}
    for i = 0, subs - 1 do
      local c, s = i % courses + 1, i % students + 1
      if i % 2 == 0 then
        cs[c]:add_student("s" .. s)
        touched[#touched + 1] = cs[c]
      else
        ss[s]:join("c" .. c)
        touched[#touched + 1] = ss[s]
      end
      if #touched == 1000 or i == subs - 1 then
        app:save(unpack(touched))
        touched = {}
      end
    end
    app:close()
  end
  print(("filled %s with %d events (%s) in %.1f s"):format(uri, events, kind, (core.now_us() - t0) / 1e6))
elseif mode == "run" then
  local ops, seed = tonumber(arg[4]) or 2000, tonumber(arg[5]) or 1
  local app = (kind == "dcb" and Enrolment or Enrolments).new { store = uri, sync = "none" }
  local courses, students = sizes(tonumber(arg[6]) or 1000000) -- as filled
  math.randomseed(seed)
  local took, retried = 0, 0
  local t0, c0 = core.now_us(), os.clock()
  for _ = 1, ops do
    local s, c = "s" .. math.random(students), "c" .. math.random(courses)
    local ok, _, retries = app:subscribe(s, c)
    if ok then took = took + 1 end
    retried = retried + retries
  end
  local wall, cpu = (core.now_us() - t0) / 1e6, os.clock() - c0
  print(("%s decisions=%d subscribed=%d retried=%d wall_s=%.3f cpu_s=%.3f per_s=%.1f"):format(kind, ops, took,
    retried, wall, cpu, ops / wall))
  app:close()
else
  io.stderr:write("usage: dcb_enrolment.lua fill|run dcb|agg URI ...\n")
  os.exit(2)
end
