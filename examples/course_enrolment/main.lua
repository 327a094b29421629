--- Courses with a capacity, students with a course limit, and subscriptions
-- from several processes at once (dynamic consistency boundaries):
--   bin/cairn run examples/course_enrolment/main.lua setup URI COURSES CAPACITY STUDENTS MAX_COURSES
--   bin/cairn run examples/course_enrolment/main.lua work URI SEED TRIES   (one per process)
--   bin/cairn run examples/course_enrolment/main.lua check URI
-- run.sh does all three with four workers.
local Enrolment = require("enrolment").Enrolment

local mode, uri = arg[1], arg[2]
if not (mode and uri) then
  io.stderr:write("usage: main.lua setup|work|check URI ...\n")
  os.exit(2)
end
local app = Enrolment.new { store = uri }

-- The sizes setup recorded (a Setup event), so that work and check need no arguments for them.
local function sizes()
  local events = app.events:read({ { types = { "Setup" } } })
  return assert(events[1], "run setup first").data
end

if mode == "setup" then
  local s = { courses = tonumber(arg[3]) or 20, capacity = tonumber(arg[4]) or 10,
              students = tonumber(arg[5]) or 100, max_courses = tonumber(arg[6]) or 3 }
  app.events:append { { type = "Setup", data = s, tags = { "setup" } } }
  for c = 1, s.courses do app:define_course("c" .. c, s.capacity) end
  for st = 1, s.students do app:register_student("s" .. st, s.max_courses) end
  print(("%d courses of %d seats, %d students of at most %d courses each, on %s"):format(s.courses, s.capacity,
    s.students, s.max_courses, uri))
elseif mode == "work" then
  local s = sizes()
  math.randomseed(tonumber(arg[3]) or os.time())
  local tries = tonumber(arg[4]) or 500
  local took, full, limit, retries = 0, 0, 0, 0
  for _ = 1, tries do
    local pos, why, r = app:subscribe("s" .. math.random(s.students), "c" .. math.random(s.courses))
    retries = retries + r
    if pos then took = took + 1 elseif why == "full" then full = full + 1 elseif why == "limit" then
      limit = limit + 1 end
  end
  print(("worker %s: %d subscribed, %d refused (course full), %d refused (student at limit), %d retried after "
    .. "a conflict"):format(arg[3] or "?", took, full, limit, retries))
elseif mode == "check" then
  local s = sizes()
  local total, worst_course, worst_student = 0, 0, 0
  for c = 1, s.courses do
    local n = #app:course_students("c" .. c)
    total = total + n
    if n > worst_course then worst_course = n end
    assert(n <= s.capacity, ("course c%d has %d students, over its capacity %d"):format(c, n, s.capacity))
  end
  for st = 1, s.students do
    local n = #app:student_courses("s" .. st)
    if n > worst_student then worst_student = n end
    assert(n <= s.max_courses, ("student s%d has %d courses, over the limit %d"):format(st, n, s.max_courses))
  end
  print(("%d subscriptions: the fullest course has %d of %d seats, the busiest student %d of %d courses: "
    .. "no limit exceeded"):format(total, worst_course, s.capacity, worst_student, s.max_courses))
else
  io.stderr:write("unknown mode " .. mode .. "\n")
  os.exit(2)
end
app:close()
