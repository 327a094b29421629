std = "luajit"
max_line_length = 120
files["spec/**/*.lua"] = { std = "+busted" }
files["bench/**/*.lua"] = { globals = { "arg" } }
files["examples/**/*.lua"] = { read_globals = { "arg" } }
