--- UUIDs as canonical lower-case strings (RFC 4122 versions 4 and 5).
-- @module cairn.uuid
local core = require "cairn.core"

local _M = { _VERSION = "0.1.0" }

_M.NAMESPACE_DNS = "6ba7b810-9dad-11d1-80b4-00c04fd430c8"
_M.NAMESPACE_URL = "6ba7b811-9dad-11d1-80b4-00c04fd430c8"
_M.NAMESPACE_OID = "6ba7b812-9dad-11d1-80b4-00c04fd430c8"
_M.NAMESPACE_X500 = "6ba7b814-9dad-11d1-80b4-00c04fd430c8"

--- A random UUID.
-- @return string
_M.v4 = core.uuid4

--- A name-based UUID: the same namespace and name always give the same UUID.
-- @param namespace a UUID string (e.g. `NAMESPACE_URL`)
-- @param name a string
-- @return string
function _M.v5(namespace, name)
  if type(name) ~= "string" then
    error("bad argument #2 to 'v5' (string expected, got " .. type(name) .. ")", 2)
  end
  return core.uuid5(namespace, name)
end

--- The canonical lower-case form of a UUID string, or nil if s is not one.
_M.normalize = core.uuid_normalize

--- Is s a UUID string (either case)?
function _M.is_uuid(s)
  return core.uuid_normalize(s) ~= nil
end

return _M
