--- Course enrolment with dynamic consistency boundaries (API.md §9): a
-- course takes at most `capacity` students and a student at most
-- `max_courses` courses. No aggregate holds both rules: each subscription
-- reads the events of its course and of its student with one query and
-- appends on the condition that none of them changed meanwhile, so
-- concurrent subscriptions from any number of processes never exceed either.
local cairn = require "cairn"

local Enrolment = cairn.application("Enrolment")

local function course_tag(id) return "course:" .. id end
local function student_tag(id) return "student:" .. id end

--- Define a course; refuses a course defined before.
function Enrolment:define_course(id, capacity)
  local q = { { types = { "CourseDefined" }, tags = { course_tag(id) } } }
  local events, head = self.events:read(q)
  if #events > 0 then error(("course %s is defined already"):format(id), 2) end
  return self.events:append({ { type = "CourseDefined", data = { id = id, capacity = capacity },
                                tags = { course_tag(id) } } }, { fail_if_events_match = q, after = head })
end

--- Register a student; refuses a student registered before.
function Enrolment:register_student(id, max_courses)
  local q = { { types = { "StudentRegistered" }, tags = { student_tag(id) } } }
  local events, head = self.events:read(q)
  if #events > 0 then error(("student %s is registered already"):format(id), 2) end
  return self.events:append({ { type = "StudentRegistered", data = { id = id, max_courses = max_courses },
                                tags = { student_tag(id) } } }, { fail_if_events_match = q, after = head })
end

-- What a subscription decides on: the course and the student as their events say.
local function decision_state(events, course, student)
  local s = { subscribed = 0, courses = 0 }
  for _, e in ipairs(events) do
    if e.type == "CourseDefined" then s.capacity = e.data.capacity
    elseif e.type == "StudentRegistered" then s.max_courses = e.data.max_courses
    elseif e.type == "StudentSubscribed" then
      if e.data.course == course then s.subscribed = s.subscribed + 1 end
      if e.data.student == student then s.courses = s.courses + 1 end
      if e.data.course == course and e.data.student == student then s.already = true end
    end
  end
  return s
end

--- Subscribe a student to a course, once; returns the position, or nil and
-- why not ("full", "limit", "already"). Raises for an unknown course or
-- student, and ConcurrencyError when what it read changed before it appended
-- (`subscribe` retries).
function Enrolment:try_subscribe(student, course)
  local q = { { types = { "CourseDefined", "StudentSubscribed" }, tags = { course_tag(course) } },
              { types = { "StudentRegistered", "StudentSubscribed" }, tags = { student_tag(student) } } }
  local events, head = self.events:read(q)
  local s = decision_state(events, course, student)
  if not s.capacity then error(("no course %s"):format(course), 2) end
  if not s.max_courses then error(("no student %s"):format(student), 2) end
  if s.already then return nil, "already" end
  if s.subscribed >= s.capacity then return nil, "full" end
  if s.courses >= s.max_courses then return nil, "limit" end
  return self.events:append({ { type = "StudentSubscribed", data = { course = course, student = student },
                                tags = { course_tag(course), student_tag(student) } } },
    { fail_if_events_match = q, after = head })
end

--- try_subscribe, again while another subscription got in first.
-- @return the position or nil, why not, and how many times it was retried
function Enrolment:subscribe(student, course)
  local retries = 0
  while true do
    local ok, pos, why = pcall(self.try_subscribe, self, student, course)
    if ok then return pos, why, retries end
    if not cairn.errors.is(pos, "ConcurrencyError") then error(pos, 0) end
    retries = retries + 1
  end
end

--- The students of a course and the courses of a student, from their events.
function Enrolment:course_students(course)
  local out = {}
  for _, e in ipairs(self.events:read({ { types = { "StudentSubscribed" }, tags = { course_tag(course) } } })) do
    out[#out + 1] = e.data.student
  end
  return out
end

function Enrolment:student_courses(student)
  local out = {}
  for _, e in ipairs(self.events:read({ { types = { "StudentSubscribed" }, tags = { student_tag(student) } } })) do
    out[#out + 1] = e.data.course
  end
  return out
end

return { Enrolment = Enrolment }
