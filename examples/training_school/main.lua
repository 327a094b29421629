--- Run the training school on a store and say what happened.
--   bin/cairn run examples/training_school/main.lua [STORE_URI]
-- The store defaults to lmdb:./data/school; run it twice to see the events accumulate.
local school_module = require "training_school"

local uri = arg[1] or "lmdb:./data/school"
local school = school_module.TrainingSchool.new { store = uri }
print(("training school on %s (%d events recorded before)"):format(uri, school:max_notification_id()))

for _, name in ipairs { "Fido", "Buster" } do
  if school:is_registered(name) then
    print(("%s is already registered"):format(name))
  else
    local recordings = school:register(name)
    print(("registered %s (notification %d)"):format(name, recordings[1].notification_id))
  end
end

local lessons = { { "Fido", "roll over" }, { "Fido", "play dead" }, { "Buster", "fetch" } }
for _, lesson in ipairs(lessons) do
  local recordings = school:add_trick(lesson[1], lesson[2])
  local event = recordings[1].event
  print(("%s learned '%s' (version %d, notification %d)"):format(lesson[1], lesson[2],
    event.originator_version, recordings[1].notification_id))
end

for _, name in ipairs { "Fido", "Buster" } do
  print(("%s knows: %s"):format(name, table.concat(school:get_tricks(name), ", ")))
end

print(("the log now holds %d notifications; the newest section:"):format(school:max_notification_id()))
local section = school.log:section("current")
for _, n in ipairs(section.items) do
  print(("  %d  %s  v%d  %s"):format(n.id, n.topic, n.originator_version, n.originator_id))
end
school:close()
