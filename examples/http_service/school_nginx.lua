--- nginx-lua glue for school_http: each worker opens the training school's
-- store after the fork (init_worker_by_lua), serves requests with it and
-- closes it when the worker exits. Configuration comes from the environment
-- that nginx.conf passes on (`env CAIRN_STORE;` ...), as for any application.
local ngx = ngx -- luacheck: ignore 113
local school = require "training_school"
local school_http = require "school_http"

local pcall, tostring, pairs = pcall, tostring, pairs

local _M = { _VERSION = "0.1.0" }

local app, open_error

local function log_error(message)
  ngx.log(ngx.ERR, "cairn: ", message)
end

--- Open the store in this worker (init_worker_by_lua).
function _M.init_worker()
  local ok, result = pcall(school.TrainingSchool.new)
  if ok then
    app = result
    ngx.log(ngx.NOTICE, "cairn: worker ", ngx.worker.pid(), " opened ", app.store:uri())
  else
    open_error = tostring(result)
    log_error("worker " .. ngx.worker.pid() .. " could not open the store: " .. open_error)
  end
end

--- Close the store (exit_worker_by_lua).
function _M.exit_worker()
  if app then
    app:close()
    app = nil
  end
end

local function reply(status, doc, headers)
  ngx.status = status
  ngx.header["Content-Type"] = "application/json"
  ngx.header["X-Cairn-Worker"] = ngx.worker.pid()
  for k, v in pairs(headers or {}) do ngx.header[k] = v end
  ngx.print(school_http.encode(doc))
  return ngx.exit(ngx.HTTP_OK) -- the status is set; this ends the content phase
end

--- Serve the request (content_by_lua).
function _M.serve()
  if not app then
    return reply(503, { error = "StoreError", message = "the store is not open: " .. tostring(open_error) })
  end
  ngx.req.read_body()
  local body = ngx.req.get_body_data()
  if body == nil and ngx.req.get_body_file() then -- larger than client_body_buffer_size
    return reply(413, { error = "SchemaError", message = "the body is too large" })
  end
  return reply(school_http.handle(app, ngx.req.get_method(), ngx.var.request_uri, body, log_error))
end

return _M
