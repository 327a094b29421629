std = "luajit"
max_line_length = 120
files["spec/**/*.lua"] = { std = "+busted" }
files["bench/**/*.lua"] = { globals = { "arg" } }
files["examples/**/*.lua"] = { read_globals = { "arg" } }
-- LÖVE games set callbacks on the love table (love.load, love.draw, ...)
files["examples/love_replay/**/*.lua"] = { globals = { "love" } }
