--- Application configuration: an env table over the process environment,
-- with `<APPNAME>_<KEY>` taking precedence over `<KEY>` (as in the Python library).
-- @module cairn.config
local errors = require "cairn.errors"
local guard = require "cairn.guard"

local os_getenv, type, tostring = os.getenv, type, tostring

local _M = { _VERSION = "0.1.0" }

-- short names accepted in env tables (API.md §3)
local ALIASES = {
  store = "CAIRN_STORE", cipher_key = "CAIRN_CIPHER_KEY", compressor = "CAIRN_COMPRESSOR",
  snapshotting = "CAIRN_SNAPSHOTTING", sync = "CAIRN_SYNC", map_size = "CAIRN_MAP_SIZE",
  aggregate_cache = "CAIRN_AGGREGATE_CACHE", snapshot_cache = "CAIRN_SNAPSHOT_CACHE",
}

local Env = {}
Env.__index = Env

-- The settings given to each Env, kept out of the object: an application's
-- env is reachable from its methods, and sandboxed methods must not read them.
local given_of = setmetatable({}, { __mode = "k" })

--- Make an environment for an application.
-- @param app_name the application's name (its upper-case form is the key prefix)
-- @param[opt] env table of settings; keys are long (`CAIRN_STORE`) or short (`store`)
function _M.new(app_name, env)
  local given = {}
  if env ~= nil and type(env) ~= "table" then
    error("bad argument #1 to 'new' (env table expected, got " .. type(env) .. ")", 3)
  end
  for k, v in pairs(env or {}) do
    given[ALIASES[k] or k] = tostring(v)
  end
  local self = setmetatable({ prefix = app_name:upper() .. "_" }, Env)
  given_of[self] = given
  return self
end

-- The env table overrides the process environment key by key.
-- Sandboxed code (cairn.sandbox) reads no setting: they hold keys and paths.
local function lookup(self, key)
  if guard.inside() then
    errors.raise("SandboxError", "sandboxed code cannot read settings (it asked for %s)", key)
  end
  local v = given_of[self][key]
  if v == nil then v = os_getenv(key) end
  return v
end

--- The setting for key: `<PREFIX>_<key>` first, then `<key>`, then default.
function Env:get(key, default)
  local v = lookup(self, self.prefix .. key)
  if v == nil or v == "" then v = lookup(self, key) end
  if v == nil or v == "" then return default end
  return v
end

--- The setting given for this application alone (`<PREFIX>_<key>`), or nil.
function Env:get_own(key)
  local v = lookup(self, self.prefix .. key)
  if v == "" then return nil end
  return v
end

--- A setting that must be one of a set of words.
function Env:choice(key, default, allowed)
  local v = self:get(key, default)
  for i = 1, #allowed do
    if v == allowed[i] then return v end
  end
  errors.raise("ConfigError", "%s must be one of %s (got '%s')", key, table.concat(allowed, ", "), v)
end

local YES = { y = true, yes = true, ["true"] = true, ["1"] = true, on = true }
local NO = { n = true, no = true, ["false"] = true, ["0"] = true, off = true }

--- A yes/no setting (y/n, yes/no, true/false, 1/0, on/off).
function Env:flag(key, default)
  local v = self:get(key)
  if v == nil then return default end
  local lower = v:lower()
  if YES[lower] then return true end
  if NO[lower] then return false end
  errors.raise("ConfigError", "%s must be y or n (got '%s')", key, v)
end

return _M
