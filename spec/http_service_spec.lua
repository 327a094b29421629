--- The training school served by nginx-lua (examples/http_service), driven
-- with curl, and cairn.remote_log reading its log from this process.
-- Needs nginx and Debian's libnginx-mod-http-lua (tools/setup installs them);
-- without them these specs fail, saying so. run.sh honours CAIRN_NGINX,
-- CAIRN_NGINX_MODULES and CAIRN_NGINX_LUA_PATH for a module kept elsewhere.
local helper = require "helper"
local cairn = require "cairn"
local json = require "cairn.json"
local school = helper.school("training_school")

local q = helper.shell_quote
local RUN_SH = helper.root .. "/examples/http_service/run.sh"
local FAKE_HTTP = helper.root .. "/spec/fixtures/fake_http.lua"

local function sleep(s) os.execute("sleep " .. s) end

local function alive(pid)
  return pid and os.execute("kill -0 " .. pid .. " 2>/dev/null") == 0
end

--- Stop nginx and wait until it is gone; kill it (and its workers) if it lingers.
local function stop_server(server)
  if not server or not server.pid then return end
  os.execute("kill -TERM " .. server.pid .. " 2>/dev/null")
  for _ = 1, 100 do
    if not alive(server.pid) then break end
    sleep(0.05)
  end
  if alive(server.pid) then
    os.execute("kill -KILL " .. server.pid .. " 2>/dev/null")
    for pid in (helper.read_file(server.prefix .. "/error.log") or ""):gmatch("start worker process (%d+)") do
      os.execute("kill -KILL " .. pid .. " 2>/dev/null")
    end
  end
  assert(not alive(server.pid), "nginx " .. server.pid .. " did not stop")
  server.pid = nil
end

--- Start nginx on a free loopback port: a random high port, another one if it is taken.
local function start_server(dir)
  local server = { dir = dir, prefix = dir .. "/nginx", uri = helper.store_uri(dir, "school") }
  math.randomseed(os.time() + tonumber(tostring({}):match("0x(%x+)"), 16) % 100000)
  local last_err
  for _ = 1, 8 do
    local port = math.random(20000, 60000)
    os.remove(server.prefix .. "/nginx.pid")
    -- run.sh returns once nginx listens (as a daemon); the timeout guards against an nginx that stays in front
    local code, _, err = helper.run(("CAIRN_HTTP_PREFIX=%s CAIRN_HTTP_DAEMON=y CAIRN_HTTP_WORKERS=2 timeout 30 %s %d %s"
      ):format(q(server.prefix), q(RUN_SH), port, q(server.uri)))
    server.pid = tonumber(helper.read_file(server.prefix .. "/nginx.pid") or "")
    if code == 0 and alive(server.pid) then
      server.port = port
      server.base = ("http://127.0.0.1:%d"):format(port)
      return server
    end
    stop_server(server) -- whatever of it may have started
    last_err = err .. (helper.read_file(server.prefix .. "/error.log") or "")
    if not last_err:find("Address already in use", 1, true) then break end
  end
  error("could not start nginx with the lua module (tools/setup installs nginx and libnginx-mod-http-lua):\n"
    .. tostring(last_err), 0)
end

--- One request with curl: status, decoded JSON body (or nil), headers (lower-case names), raw body.
local function request(server, method, path, body)
  local cmd = ("curl -s -i -X %s %s"):format(method, q(server.base .. path))
  if body then cmd = cmd .. " -H 'Content-Type: application/json' --data-binary " .. q(body) end
  local code, out = helper.run(cmd)
  assert(code == 0, "curl failed: " .. cmd)
  local head, raw = out:match("^(.-)\r\n\r\n(.*)$")
  local status = tonumber(head:match("^HTTP/%d[.%d]* (%d+)"))
  local headers = {}
  for k, v in head:gmatch("\r\n([^:\r\n]+):%s*([^\r\n]*)") do headers[k:lower()] = v end
  return status, json.decode(raw), headers, raw
end

local function post(server, path, doc)
  return request(server, "POST", path, type(doc) == "string" and doc or json.encode(doc))
end

--- Start the fake server answering every connection with `response` (or holding it, mode "silent").
local function fake_server(dir, response, mode)
  local file, port_file, pid_file = dir .. "/response", dir .. "/port", dir .. "/fake.pid"
  helper.write_file(file, response)
  os.remove(port_file)
  os.execute(("luajit %s %s %s >%s 2>&1 & echo $! >%s"):format(q(FAKE_HTTP), q(file), mode or "reply",
    q(port_file), q(pid_file)))
  local fake = { pid = tonumber(helper.read_file(pid_file)) }
  for _ = 1, 100 do
    fake.port = tonumber((helper.read_file(port_file) or ""):match("^(%d+)\n"))
    if fake.port then break end
    sleep(0.05)
  end
  assert(fake.port, "the fake server did not start: " .. tostring(helper.read_file(port_file)))
  fake.url = ("http://127.0.0.1:%d/log"):format(fake.port)
  return fake
end

local function stop_fake(fake)
  if fake and alive(fake.pid) then os.execute("kill " .. fake.pid) end
end

-- school_http.handle called directly, without nginx (issue 14 item 9)
describe("examples/http_service school_http.handle", function()
  package.path = helper.root .. "/examples/http_service/?.lua;" .. package.path
  local school_http = require "school_http"
  local dir, app

  before_each(function()
    dir = helper.tmpdir()
    app = school.TrainingSchool.new { store = "lmdb:" .. dir .. "/school", sync = "none" }
  end)

  after_each(function()
    pcall(app.close, app)
    helper.rmrf(dir)
  end)

  it("replies 500 without the store's path; the error log gets the whole message", function()
    assert.equals(201, (school_http.handle(app, "POST", "/dogs", '{"name":"Rexandra"}')))
    app:close()
    -- a damaged record: its hash chain fails (IntegrityError, naming the store)
    assert.is_true(helper.flip_in_file(dir .. "/school/data.mdb", "Rexandra") > 0)
    app = school.TrainingSchool.new { store = "lmdb:" .. dir .. "/school", sync = "none" }
    local logged = {}
    local status, doc = school_http.handle(app, "GET", "/dogs/Rexandra", nil,
      function(m) logged[#logged + 1] = m end)
    assert.equals(500, status)
    assert.equals("the server failed; its error log says why", doc.message)
    assert.is_nil(json.encode(doc):find(dir, 1, true))
    assert.matches(dir, logged[1], 1, true)
  end)

  it("refuses a version too large to be one (1e308) with a message about the version", function()
    assert.equals(201, (school_http.handle(app, "POST", "/dogs", '{"name":"Rex"}')))
    for _, v in ipairs { "1e308", "9007199254740994" } do
      local status, doc = school_http.handle(app, "POST", "/dogs/Rex/tricks", '{"trick":"x","version":' .. v .. '}')
      assert.equals(400, status, v)
      assert.equals("'version' must be a whole number from 1 to 2^53", doc.message)
    end
  end)
end)

describe("examples/http_service", function()
  local dir, server

  setup(function()
    dir = helper.tmpdir()
    server = start_server(dir)
  end)

  teardown(function()
    local ok, err = pcall(stop_server, server)
    helper.rmrf(dir)
    assert(ok, err)
  end)

  describe("POST /dogs", function()
    it("registers a dog: 201 with the dog as JSON", function()
      local status, dog, headers = post(server, "/dogs", { name = "Fido" })
      assert.equals(201, status)
      assert.same({ "Fido", 1, {} }, { dog.name, dog.version, dog.tricks })
      assert.equals(school.Dog.create_id("Fido"), dog.id)
      assert.equals("/dogs/Fido", headers.location)
      assert.equals("application/json", headers["content-type"])
    end)

    it("refuses to register a dog twice: 409 ConcurrencyError", function()
      post(server, "/dogs", { name = "Twice" })
      local status, err = post(server, "/dogs", { name = "Twice" })
      assert.equals(409, status)
      assert.equals("ConcurrencyError", err.error)
      assert.matches("Twice", err.message)
    end)

    it("refuses bad input: 400 SchemaError", function()
      for _, body in ipairs { "{nope", "", "[1,2]", '"Fido"', "{}", '{"name":7}', '{"name":""}',
                               '{"name":"Rex","age":3}' } do
        local status, err, _, raw = post(server, "/dogs", body)
        assert.equals(400, status, body .. " -> " .. raw)
        assert.equals("SchemaError", err.error)
        assert.is_string(err.message)
      end
    end)
  end)

  describe("GET /dogs/NAME", function()
    it("gives the dog (200), or 404 AggregateNotFound", function()
      post(server, "/dogs", { name = "Sir Barks" })
      local status, dog = request(server, "GET", "/dogs/Sir%20Barks")
      assert.equals(200, status)
      assert.equals("Sir Barks", dog.name)
      local status2, err = request(server, "GET", "/dogs/Nobody")
      assert.equals(404, status2)
      assert.same({ error = "AggregateNotFound", message = "no dog named 'Nobody'" }, err)
    end)
  end)

  describe("POST /dogs/NAME/tricks", function()
    it("adds a trick at the expected version, and refuses a stale one: 409, nothing recorded", function()
      post(server, "/dogs", { name = "Rex" })
      local status, dog = post(server, "/dogs/Rex/tricks", { trick = "roll over", version = 1 })
      assert.equals(200, status)
      assert.same({ 2, { "roll over" } }, { dog.version, dog.tricks })
      local stale, err = post(server, "/dogs/Rex/tricks", { trick = "play dead", version = 1 })
      assert.equals(409, stale)
      assert.equals("ConcurrencyError", err.error)
      assert.matches("version 2, not 1", err.message)
      local _, now = request(server, "GET", "/dogs/Rex")
      assert.same({ 2, { "roll over" } }, { now.version, now.tricks })
      local without, later = post(server, "/dogs/Rex/tricks", { trick = "fetch" })
      assert.equals(200, without)
      assert.same({ "roll over", "fetch" }, later.tricks)
    end)

    it("refuses bad input (400) and tricks for a dog that is not registered (404)", function()
      post(server, "/dogs", { name = "Bad" })
      for _, body in ipairs { "{", '{"version":1}', '{"trick":false}', '{"trick":"x","version":0}',
                               '{"trick":"x","version":1.5}', '{"trick":"x","version":"1"}' } do
        local status, err = post(server, "/dogs/Bad/tricks", body)
        assert.equals(400, status, body)
        assert.equals("SchemaError", err.error)
      end
      local status, err = post(server, "/dogs/Ghost/tricks", { trick = "boo" })
      assert.equals(404, status)
      assert.equals("AggregateNotFound", err.error)
    end)

    it("saves concurrent tricks from both workers: each is recorded or refused with 409", function()
      post(server, "/dogs", { name = "Busy" })
      local out = dir .. "/statuses"
      local cmds = {}
      for i = 1, 16 do
        cmds[i] = ("curl -s -o /dev/null -w '%%{http_code}\\n' -X POST --data-binary %s %s >>%s &"):format(
          q(json.encode { trick = "t" .. i }), q(server.base .. "/dogs/Busy/tricks"), q(out))
      end
      os.execute(table.concat(cmds, " ") .. " wait")
      local ok, conflicts = 0, 0
      for code in helper.read_file(out):gmatch("%d+") do
        if code == "200" then ok = ok + 1 elseif code == "409" then conflicts = conflicts + 1 end
      end
      assert.equals(16, ok + conflicts)
      local _, dog = request(server, "GET", "/dogs/Busy")
      assert.equals(ok, #dog.tricks)
      assert.equals(ok + 1, dog.version)
    end)
  end)

  describe("routes", function()
    it("answers 404 NotFound for an unknown route and 405 MethodNotAllowed for a wrong method", function()
      local status, err = request(server, "GET", "/cats")
      assert.equals(404, status)
      assert.equals("NotFound", err.error)
      local status2, err2, headers = request(server, "DELETE", "/dogs/Fido")
      assert.equals(405, status2)
      assert.equals("MethodNotAllowed", err2.error)
      assert.equals("GET", headers.allow)
      assert.equals(405, (request(server, "GET", "/dogs")))
      assert.equals(405, (post(server, "/log/current", {})))
    end)

    it("is served by both workers, each with the store it opened after the fork", function()
      local opened = {}
      for pid in helper.read_file(server.prefix .. "/error.log"):gmatch("cairn: worker (%d+) opened [%a]+:") do
        opened[pid] = true
      end
      local seen, count = {}, 0
      for _ = 1, 40 do
        local _, _, headers = request(server, "GET", "/log/current")
        local pid = headers["x-cairn-worker"]
        assert.is_true(opened[pid], "worker " .. tostring(pid) .. " did not say it opened the store")
        if not seen[pid] then seen[pid], count = true, count + 1 end
      end
      assert.equals(2, count)
    end)
  end)

  describe("GET /log/SECTION", function()
    it("gives linked sections of at most 10 items, current the newest", function()
      for i = 1, 12 do post(server, "/dogs", { name = "Pup" .. i }) end
      local status, current = request(server, "GET", "/log/current")
      assert.equals(200, status)
      assert.is_nil(current.next_id)
      local last = current.items[#current.items]
      local ids = {}
      -- walk back from current by previous_id, then forward again by next_id
      local section = current
      while section.previous_id do
        local s2
        status, s2 = request(server, "GET", "/log/" .. section.previous_id)
        assert.equals(200, status)
        assert.is_true(#s2.items == 10)
        section = s2
      end
      assert.equals("1,10", section.id)
      while true do
        for _, item in ipairs(section.items) do ids[#ids + 1] = item.id end
        if not section.next_id then break end
        status, section = request(server, "GET", "/log/" .. section.next_id)
        assert.equals(200, status)
      end
      assert.is_true(#ids > 20)
      for i = 1, #ids do assert.equals(i, ids[i]) end
      assert.equals(last.id, #ids)
      assert.equals("Pup12", last.fields.name)
      assert.equals("Dog.Registered", last.topic)
      assert.equals(1, last.originator_version)
      assert.equals(school.Dog.create_id("Pup12"), last.originator_id)
      assert.matches("^%d%d%d%d%-%d%d%-%d%dT", last.timestamp)
    end)

    it("refuses a bad section id: 400 SchemaError", function()
      for _, id in ipairs { "x", "0,10", "5,1", "1,", "1,2,3" } do
        local status, err = request(server, "GET", "/log/" .. id)
        assert.equals(400, status, id)
        assert.equals("SchemaError", err.error)
      end
    end)
  end)

  describe("cairn.remote_log", function()
    local view_dir
    before_each(function() view_dir = helper.tmpdir() end)
    after_each(function() helper.rmrf(view_dir) end)

    local Counts = cairn.projection("RemoteCounts", { topics = { "Dog.Registered", "Dog.TrickAdded" } })
    Counts:on("Dog.Registered", function(view, event)
      view:incr("dogs", 1)
      view:put("dog:" .. event.name, event.originator_id)
    end)
    Counts:on("Dog.TrickAdded", function(view) view:incr("tricks", 1) end)

    -- the dogs and tricks in the store, read from it directly (LMDB lets this
    -- process open it while the nginx workers have it open)
    local function counts_in_store()
      local app = school.TrainingSchool.new { store = server.uri, sync = "none" }
      local dogs, tricks = 0, 0
      local ns = app.log:select(1, 1e6)
      app:close()
      for _, n in ipairs(ns) do
        if n.topic == "Dog.Registered" then dogs = dogs + 1 else tricks = tricks + 1 end
      end
      return dogs, tricks, #ns
    end

    it("reads sections and selects like the local log, with plain events", function()
      local log = cairn.remote_log(server.base .. "/log/", { name = "TrainingSchool" })
      local current = log:section("current")
      local max = log:max_id()
      assert.equals(current.items[#current.items].id, max)
      local ns = log:select(3, 14)
      assert.equals(14, #ns)
      assert.equals(3, ns[1].id)
      assert.equals(16, ns[14].id)
      assert.is_true(cairn.is_event(ns[1].event))
      assert.is_nil(getmetatable(ns[1].event))
      assert.are.same({}, ns[1].event.metadata)
      local stopped = log:select(1, 100, { stop = 12, topics = { "Dog.TrickAdded" } })
      for _, n in ipairs(stopped) do
        assert.equals("Dog.TrickAdded", n.topic)
        assert.is_true(n.id <= 12)
      end
      local back = log:section(current.previous_id)
      assert.equals(10, #back.items)
    end)

    it("feeds a projection exactly once across runs, with the position tracked in the view", function()
      local uri = helper.store_uri(view_dir, "view")
      local log = cairn.remote_log(server.base .. "/log", { name = "TrainingSchool" })
      local runner = cairn.ProjectionRunner.new { application = log, projection = Counts, view = uri, batch = 7 }
      local read = runner:run()
      local dogs, tricks, max = counts_in_store()
      assert.equals(max, read)
      assert.same({ dogs, tricks }, { runner.view:get("dogs"), runner.view:get("tricks") })
      assert.equals(school.Dog.create_id("Fido"), runner.view:get("dog:Fido"))
      assert.equals(max, runner.view:max_tracking_id("TrainingSchool"))
      runner:close()

      -- a new process would start here: nothing is applied twice, new events are
      post(server, "/dogs", { name = "Late" })
      post(server, "/dogs/Late/tricks", { trick = "sit" })
      local again = cairn.ProjectionRunner.new { application = log, projection = Counts, view = uri }
      assert.equals(2, again:run())
      assert.equals(0, again:run())
      assert.same({ dogs + 1, tricks + 1 }, { again.view:get("dogs"), again.view:get("tricks") })
      again:close()
    end)

    it("follows the log while events are recorded (polling)", function()
      local log = cairn.remote_log(server.base .. "/log", { name = "TrainingSchool", poll_interval = 0.05 })
      local runner = cairn.ProjectionRunner.new { application = log, projection = Counts,
                                                 view = helper.store_uri(view_dir, "view") }
      runner:run()
      local before = runner.view:get("dogs")
      os.execute(("(sleep 0.3; curl -s -o /dev/null --data-binary '{\"name\":\"Follower\"}' %s) &"):format(
        q(server.base .. "/dogs")))
      local how = runner:follow { idle_timeout = 3 }
      assert.equals("idle", how)
      assert.equals(before + 1, runner.view:get("dogs"))
      runner:close()
    end)

    it("lets a process application follow it", function()
      local counters = helper.school("counters")
      local app = counters.Counters.new { store = helper.store_uri(view_dir, "counters"), sync = "none" }
      finally(function() app:close() end)
      app:follow("TrainingSchool", cairn.remote_log(server.base .. "/log"))
      local read = app:pull_and_process("TrainingSchool")
      assert.is_true(read > 20)
      assert.equals(1, app:learned("roll over"))
      assert.equals(1, app:learned("fetch"))
      assert.same({ 0, 0 }, { app:pull_and_process("TrainingSchool") })
    end)

    -- last: it stops nginx
    it("holds exactly the events the store holds (checked after nginx stops)", function()
      local remote = cairn.remote_log(server.base .. "/log"):select(1, 1e6)
      stop_server(server)
      local app = school.TrainingSchool.new { store = server.uri }
      finally(function() app:close() end)
      local localn = app.log:select(1, 1e6)
      assert.equals(#localn, #remote)
      for i = 1, #localn do
        assert.same({ localn[i].id, localn[i].originator_id, localn[i].topic, cairn.event_fields(localn[i].event) },
          { remote[i].id, remote[i].originator_id, remote[i].topic, cairn.event_fields(remote[i].event) })
        assert.equals(localn[i].event.timestamp, remote[i].event.timestamp)
      end
      assert.same({ "roll over", "fetch" }, app:get_tricks("Rex"))
      -- and the command-line tool reads the same store
      local code, out = helper.run(q(helper.cairn_bin) .. " log " .. q(server.uri) .. " --from 1 --limit 1")
      assert.equals(0, code)
      assert.matches('^1\t%S+\t%S+\t1\tDog.Registered\t{"name":"Fido"}', out)
    end)
  end)
end)

describe("cairn.remote_log against a bad server", function()
  local dir, fake
  before_each(function() dir = helper.tmpdir() end)
  after_each(function()
    stop_fake(fake)
    helper.rmrf(dir)
  end)

  local function error_from(response, mode, opts)
    fake = fake_server(dir, response, mode)
    return helper.error_of(function() cairn.remote_log(fake.url, opts):section("current") end)
  end

  local ITEM = '{"id":1,"originator_id":"%s","originator_version":1,"topic":"Dog.Registered",'
    .. '"timestamp":"2026-11-22T09:34:10.123456Z","fields":{"name":"Fido"}}'
  local function ok_reply(body)
    return ("HTTP/1.0 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"):format(#body, body)
  end

  it("reads a well-formed section from it (the fake server works)", function()
    fake = fake_server(dir, ok_reply('{"id":"1,1","items":[' .. ITEM:format(cairn.uuid.v4()) .. "]}"))
    local s = cairn.remote_log(fake.url):section("current")
    assert.equals("Fido", s.items[1].event.name)
  end)

  it("reads string aggregate ids (API.md §9) from the log sections the service serves", function()
    -- the school's store also holds events of a class with string ids: the service serves them as they are
    local Order = cairn.aggregate("HttpOrder", { id = "string" })
    function Order.create_id(number) return "order-" .. number end
    Order:created("Placed", function(self, number) self.number = number end)
    local uri = "lmdb:" .. dir .. "/school"
    local shop = cairn.application("HttpShop").new { store = uri, sync = "none" }
    shop:save(Order("2026-00017"))
    shop:close()
    package.path = helper.root .. "/examples/http_service/?.lua;" .. package.path
    local app = school.TrainingSchool.new { store = uri, sync = "none" }
    local status, doc = require("school_http").handle(app, "GET", "/log/current")
    app:close()
    assert.equals(200, status)
    assert.equals("order-2026-00017", doc.items[1].originator_id)
    fake = fake_server(dir, ok_reply(json.encode(doc)))
    local s = cairn.remote_log(fake.url):section("current")
    assert.equals("order-2026-00017", s.items[1].originator_id)
    assert.equals("order-2026-00017", s.items[1].event.originator_id)
    assert.equals("2026-00017", s.items[1].event.number)
  end)

  it("raises StoreError for a reply that is not HTTP", function()
    local err = helper.assert_kind("StoreError", error_from("garbage\r\n\r\n"))
    assert.matches("the response is not HTTP", err.message)
  end)

  it("raises StoreError for malformed JSON, and for JSON that is not a section", function()
    assert.matches("not a log section %(json:", helper.assert_kind("StoreError", error_from(ok_reply("{oops"))).message)
    stop_fake(fake)
    assert.matches("not a log section", helper.assert_kind("StoreError", error_from(ok_reply('{"items":7}'))).message)
    stop_fake(fake)
    local bad_item = '{"id":"1,1","items":[' .. ITEM:format("") .. "]}"
    assert.matches("item 1: originator_id is empty",
      helper.assert_kind("StoreError", error_from(ok_reply(bad_item))).message)
  end)

  it("raises StoreError for a 5xx status, with the server's message", function()
    local body = '{"error":"StoreError","message":"disk on fire"}'
    local err = helper.assert_kind("StoreError",
      error_from(("HTTP/1.0 503 Service Unavailable\r\nContent-Length: %d\r\n\r\n%s"):format(#body, body)))
    assert.matches("HTTP status 503: disk on fire", err.message, 1, true)
  end)

  it("raises StoreError for a truncated body and for one above max_bytes", function()
    local err = helper.assert_kind("StoreError", error_from("HTTP/1.0 200 OK\r\nContent-Length: 100\r\n\r\n{}"))
    assert.matches("truncated", err.message)
    stop_fake(fake)
    local big = ok_reply('{"items":[],"pad":"' .. ("x"):rep(5000) .. '"}')
    local err2 = helper.assert_kind("StoreError", error_from(big, "reply", { max_bytes = 1000 }))
    assert.matches("larger than 1000 bytes", err2.message)
  end)

  it("raises TimeoutError when the server does not answer in time", function()
    local t0 = cairn.time.now()
    local err = helper.assert_kind("TimeoutError", error_from("", "silent", { timeout = 0.3 }))
    assert.matches("no complete response within 0.3 s", err.message)
    assert.is_true(cairn.time.now() - t0 < 3)
  end)

  it("raises StoreError naming the URL when nothing listens", function()
    fake = fake_server(dir, "")
    stop_fake(fake)
    local url = fake.url
    for _ = 1, 100 do -- until the port is closed
      local ok, err = pcall(function() cairn.remote_log(url):max_id() end)
      if not ok and err.message:find("cannot connect", 1, true) then break end
      sleep(0.05)
    end
    local err = helper.assert_kind("StoreError", helper.error_of(function() cairn.remote_log(url):max_id() end))
    assert.matches(url .. "/current: cannot connect: Connection refused", err.message, 1, true)
  end)

  it("raises ConfigError for a URL it cannot read", function()
    helper.assert_kind("ConfigError", helper.error_of(cairn.remote_log, "https://example.com/log"))
    helper.assert_kind("ConfigError", helper.error_of(function()
      cairn.remote_log("http://127.0.0.1:99999/log"):max_id()
    end))
  end)
end)
