--- Typed errors (API.md §6): tables with `kind` and `message`, shared with the C core.
-- @module cairn.errors
local core = require "cairn.core"

local setmetatable, getmetatable, type, error = setmetatable, getmetatable, type, error

local _M = { _VERSION = "0.1.0" }

local mt = core.error_metatable

--- The kinds of error cairn raises.
_M.KINDS = {
  "ConcurrencyError", "AggregateNotFound", "IntegrityError", "SchemaError",
  "ConfigError", "StoreError", "TimeoutError", "SandboxError",
}

--- Make an error object.
-- @param kind one of `KINDS`
-- @param message what went wrong, naming the thing concerned
function _M.new(kind, message)
  return setmetatable({ kind = kind, message = message }, mt)
end

--- Raise an error object built from a format string.
-- @raise always
function _M.raise(kind, fmt, ...)
  error(setmetatable({ kind = kind, message = fmt:format(...) }, mt), 0)
end

--- Tell error objects apart after pcall.
-- @param err what pcall returned
-- @param[opt] kind when given, the kind err must have
-- @return true if err is a cairn error (of that kind)
function _M.is(err, kind)
  return type(err) == "table" and getmetatable(err) == mt and (kind == nil or err.kind == kind)
end

return _M
