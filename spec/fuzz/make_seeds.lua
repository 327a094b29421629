--- Writes the fuzzers' seed corpora (spec/fuzz/corpus/TARGET/): typical and
-- edge-case inputs, so fuzzing starts from valid structure.
--   bin/cairn run spec/fuzz/make_seeds.lua
local core = require "cairn.core"
local cairn = require "cairn"

local dir = (arg[0]:match("^(.*)/[^/]*$") or ".") .. "/corpus"

local function put(target, name, bytes)
  os.execute(("mkdir -p '%s/%s'"):format(dir, target))
  local f = assert(io.open(("%s/%s/%s"):format(dir, target, name), "wb"))
  f:write(bytes)
  f:close()
end

local values = {
  empty = {}, scalars = { a = 1, b = -1, c = 1.5, d = true, e = false, s = "text" },
  nested = { list = { 1, 2, { x = { y = { z = "deep" } } } }, map = { [1] = "one", [2.5] = "float key" } },
  big = { max = 2 ^ 53, min = -2 ^ 53, beyond = 2 ^ 60, tiny = 1e-300, neg_zero = -0.0 },
  binary = { bytes = "\0\1\2\255\254", long = ("x"):rep(300) },
  ids = { id = "6ba7b810-9dad-11d1-80b4-00c04fd430c8", at = cairn.time.from_us(1700000000123456) },
  holes = { list = { 1, nil, 3 } }, strings = { ["\0key"] = "v", [""] = "empty key" },
}
local id = "6ba7b810-9dad-11d1-80b4-00c04fd430c8"
for name, v in pairs(values) do
  put("msgpack", name, core.encode(v))
  local _, payload = core.make_event("Dog.Registered", id, 1, 1700000000000000, v)
  -- a record by hand, per record.h: format, flags, id, version, timestamp, class version,
  -- topic length, topic, hash (zeros: the parser does not check it), payload
  local topic = "Dog." .. name
  local function be(n, bytes)
    local t = {}
    for i = bytes, 1, -1 do t[i] = string.char(n % 256); n = math.floor(n / 256) end
    return table.concat(t)
  end
  local raw_id = id:gsub("-", ""):gsub("..", function(h) return string.char(tonumber(h, 16)) end)
  put("record", name, "\2\0" .. raw_id .. be(7, 8) .. be(1700000000000000, 8) .. be(1, 2) .. be(#topic, 2) .. topic
    .. ("\0"):rep(32) .. payload)
  -- format 3: the event id after the class version, and (flag 4) metadata before the payload
  local meta = core.encode { user = "ada", trace = name }
  put("record", "v3_" .. name, "\3\4" .. raw_id .. be(7, 8) .. be(1700000000000000, 8) .. be(1, 2) .. raw_id
    .. be(#topic, 2) .. topic .. ("\0"):rep(32) .. be(#meta, 4) .. meta .. payload)
end
put("msgpack", "all_types", "\x93\xc0\xc2\xc3" )
put("msgpack", "ext", "\xd8\x01" .. ("\x11"):rep(16))

local lines = {
  '{"fields":{"name":"Fido"},"id":1,"originator_id":"' .. id .. '","originator_version":1,'
    .. '"timestamp":"2026-11-22T09:34:10.123456Z","topic":"Dog.Registered"}',
  '{"fields":{"trick":"roll","tags":["a","b"],"n":1.5,"big":9007199254740992},"id":2,"originator_id":"' .. id
    .. '","originator_version":2,"timestamp":"2026-11-22T09:34:11Z","topic":"Dog.TrickAdded"}',
  '{"fields":{"raw":{"$bytes":"AAEC/w=="},"at":{"$time":1700000000123456},"m":{"$map":[[1,"one"],[2.5,"x"]]},'
    .. '"f":{"$float":"nan"},"e":{"$float":"-inf"}},"id":3,"originator_id":"' .. id
    .. '","originator_version":3,"timestamp":"1970-01-01T00:00:00Z","topic":"Dog.Odd"}',
}
put("import", "one", lines[1] .. "\n")
put("import", "three", table.concat(lines, "\n") .. "\n")
put("import", "tags", lines[3] .. "\n")
put("import", "escapes", '{"fields":{"s":"\\u00e9\\ud83d\\ude00\\n\\t\\"\\\\"},"id":1,"originator_id":"' .. id
  .. '","originator_version":1,"timestamp":"2026-01-01T00:00:00.5Z","topic":"T.E"}\n')
put("import", "bad_gap", lines[1] .. "\n" .. lines[3] .. "\n")
