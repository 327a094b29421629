--- The training school over HTTP JSON, apart from any server: `handle` maps a
-- request (method, raw path, body) to a status, a table to send as JSON and
-- extra headers. school_nginx.lua calls it from nginx-lua; a spec or another
-- server can call it the same way.
--
--   POST /dogs               {"name": "Fido"}                      201 the dog
--   GET  /dogs/NAME                                                200 the dog
--   POST /dogs/NAME/tricks   {"trick": "roll over" [, "version": N]} 200 the dog
--   GET  /log/current, /log/FIRST,LAST                             200 a log section
--
-- Errors are `{ "error": KIND, "message": ... }`: 400 SchemaError (bad JSON,
-- missing or ill-typed fields, bad section id), 404 AggregateNotFound (no such
-- dog) or NotFound (no such route), 405 MethodNotAllowed, 409 ConcurrencyError
-- (the dog is registered already, or is not at the expected version), 500 with
-- the kind of any other cairn error, or InternalError. Messages never name the
-- store (its path is in the server's error log only).
local cairn = require "cairn"
local json = require "cairn.json"
local log_json = require "cairn.log_json"
local school = require "training_school"

local type, pcall, tostring, tonumber, char = type, pcall, tostring, tonumber, string.char
local setmetatable, getmetatable, pairs, error = setmetatable, getmetatable, pairs, error
local Dog = school.Dog

local _M = { _VERSION = "0.1.0", NAME_MAX = 200, TRICK_MAX = 1000 }

local STATUS_OF = {
  ConcurrencyError = 409, AggregateNotFound = 404, SchemaError = 400,
  TimeoutError = 503,
}

-- What a client is told of a cairn error that no handler turned into a
-- refusal: the store's own messages name its path, which is not the client's
-- business (the error log gets the whole message).
local CLIENT_MESSAGE = {
  ConcurrencyError = "the dog was changed by another request meanwhile: get it again and retry",
  AggregateNotFound = "no such dog",
  TimeoutError = "the server is busy: try again later",
}
local SERVER_FAILED = "the server failed; its error log says why"

-- The largest version a request may name: whole numbers a double holds exactly.
local MAX_VERSION = 2 ^ 53

-- A request that cannot be served: raised inside a handler, turned into a reply by `handle`.
local Refusal = {}

local function refuse(status, kind, fmt, ...)
  error(setmetatable({ status = status, kind = kind, message = fmt:format(...) }, Refusal), 0)
end

local function bad_input(fmt, ...)
  refuse(400, "SchemaError", fmt, ...)
end

local function unescape(s)
  return (s:gsub("%%(%x%x)", function(h) return char(tonumber(h, 16)) end))
end

local function escape(s)
  return (s:gsub("[^%w%-%._~]", function(c) return ("%%%02X"):format(c:byte()) end))
end

-- The body as a JSON object whose fields are all among `allowed`.
local function object_body(body, allowed)
  if body == nil or body == "" then bad_input("the request needs a JSON object as its body") end
  local v, err = json.decode(body)
  if err then bad_input("the body is not JSON: %s", err) end
  if type(v) ~= "table" or v[1] ~= nil then bad_input("the body must be a JSON object") end
  for k in pairs(v) do
    if not allowed[k] then bad_input("unknown field '%s'", tostring(k)) end
  end
  return v
end

local function text_field(v, what, max)
  if type(v) ~= "string" then bad_input("'%s' must be a string", what) end
  if v == "" or #v > max then bad_input("'%s' must be 1 to %d bytes", what, max) end
  if not json.is_utf8(v) then bad_input("'%s' must be UTF-8 text", what) end
  return v
end

local function dog_json(dog)
  return {
    id = dog.id, name = dog.name, tricks = dog.tricks, version = dog.version,
    created_on = dog.created_on, modified_on = dog.modified_on,
  }
end

local function get_dog(app, name)
  local ok, dog = pcall(app.repository.get, app.repository, Dog.create_id(name))
  if ok then return dog end
  -- the store's message names its path, which is not the client's business
  if cairn.errors.is(dog, "AggregateNotFound") then refuse(404, "AggregateNotFound", "no dog named '%s'", name) end
  error(dog, 0)
end

local function register(app, body)
  local req = object_body(body, { name = true })
  local name = text_field(req.name, "name", _M.NAME_MAX)
  if app:is_registered(name) then
    refuse(409, "ConcurrencyError", "a dog named '%s' is registered already", name)
  end
  app:register(name) -- a registration racing this one in another worker is a ConcurrencyError
  return 201, dog_json(get_dog(app, name)), { Location = "/dogs/" .. escape(name) }
end

local function show(app, name)
  return 200, dog_json(get_dog(app, name))
end

local function add_trick(app, name, body)
  local req = object_body(body, { trick = true, version = true })
  local trick = text_field(req.trick, "trick", _M.TRICK_MAX)
  local expected = req.version
  if expected ~= nil and (type(expected) ~= "number" or expected < 1 or expected % 1 ~= 0
                          or expected > MAX_VERSION) then
    bad_input("'version' must be a whole number from 1 to 2^53")
  end
  local dog = get_dog(app, name)
  if expected and dog.version ~= expected then
    refuse(409, "ConcurrencyError", "dog '%s' is at version %d, not %d", name, dog.version, expected)
  end
  dog:add_trick(trick)
  app:save(dog) -- a save by another worker since the get is a ConcurrencyError
  return 200, dog_json(dog)
end

local function section(app, id)
  if id ~= "current" then
    local first, last = id:match("^(%d+),(%d+)$")
    first, last = tonumber(first), tonumber(last)
    if not first or first < 1 or last < first or last > 2 ^ 53 then
      bad_input("bad section id '%s' (expected 'FIRST,LAST' or 'current')", id)
    end
  end
  return 200, log_json.section(app.log:section(id))
end

-- [method] = handler for each route, by the route's shape
local ROUTES = {
  dogs = { POST = function(app, _, body) return register(app, body) end },
  dog = { GET = function(app, p) return show(app, p[2]) end },
  tricks = { POST = function(app, p, body) return add_trick(app, p[2], body) end },
  log = { GET = function(app, p) return section(app, p[2]) end },
}

local function route_of(path)
  local p = {}
  for seg in path:gmatch("[^/]+") do p[#p + 1] = unescape(seg) end
  if p[1] == "dogs" then
    if #p == 1 then return "dogs", p end
    if #p == 2 then return "dog", p end
    if #p == 3 and p[3] == "tricks" then return "tricks", p end
  elseif p[1] == "log" and #p == 2 then
    return "log", p
  end
  return nil, p
end

local function allowed(methods)
  local list = {}
  for m in pairs(methods) do list[#list + 1] = m end
  table.sort(list)
  return table.concat(list, ", ")
end

--- Serve one request.
-- @param app an open TrainingSchool
-- @param method "GET", "POST", ...
-- @param path the request path as sent (percent-encoded; a query string is ignored)
-- @param body the request body, or nil
-- @param[opt] log function(message) for failures that are the server's (500)
-- @return status, a table to send as JSON, a table of extra headers (or nil)
function _M.handle(app, method, path, body, log)
  path = path:match("^[^?#]*")
  local name, p = route_of(path)
  if not name then
    return 404, { error = "NotFound", message = ("no route for %s"):format(path) }
  end
  local handler = ROUTES[name][method]
  if not handler then
    return 405, { error = "MethodNotAllowed", message = ("%s is not allowed on %s"):format(method, path) },
      { Allow = allowed(ROUTES[name]) }
  end
  if name ~= "dogs" then
    local arg = p[2]
    if arg == "" or #arg > _M.NAME_MAX or not json.is_utf8(arg) then
      return 400, { error = "SchemaError", message = "the path names no valid dog or section" }
    end
  end
  local ok, status, doc, headers = pcall(handler, app, p, body)
  if ok then return status, doc, headers end
  local err = status
  if getmetatable(err) == Refusal then return err.status, { error = err.kind, message = err.message } end
  if cairn.errors.is(err) then
    local code = STATUS_OF[err.kind] or 500
    if code == 500 and log then log(tostring(err)) end
    local message = code == 400 and err.message or CLIENT_MESSAGE[err.kind] or SERVER_FAILED
    return code, { error = err.kind, message = message }
  end
  if log then log(tostring(err)) end
  return 500, { error = "InternalError", message = SERVER_FAILED }
end

--- A reply's body: the JSON text and a newline.
function _M.encode(doc)
  return json.encode(doc) .. "\n"
end

return _M
