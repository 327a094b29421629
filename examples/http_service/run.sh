#!/bin/sh
# Serve the training school over HTTP JSON with nginx and Debian's nginx-lua module.
#   examples/http_service/run.sh [PORT [STORE_URI]]
# PORT defaults to 8080, STORE_URI to lmdb:./data/school (a relative path is made
# absolute). Each nginx worker opens the store after the fork.
# Environment:
#   CAIRN_HTTP_PREFIX   directory for nginx.conf, the pid file, logs and temporary files
#                       (default: a new /tmp/cairn-http.XXXXXX)
#   CAIRN_HTTP_DAEMON   y: start nginx in the background and return once it listens
#                       (pid in PREFIX/nginx.pid); otherwise nginx runs in the foreground
#   CAIRN_HTTP_WORKERS  worker processes (default 2)
#   CAIRN_HTTP_ADDRESS  the address to listen on (default 127.0.0.1)
#   CAIRN_NGINX         the nginx binary (default: nginx on PATH, else /usr/sbin/nginx)
#   CAIRN_NGINX_MODULES where ndk_http_module.so and ngx_http_lua_module.so are
#                       (default /usr/lib/nginx/modules, Debian's libnginx-mod-http-lua)
#   CAIRN_NGINX_LUA_PATH  more lua_package_path entries, before the default ones (e.g. where
#                       lua-resty-core is, when the module is not installed system-wide)
#   CAIRN_CIPHER_KEY, CAIRN_COMPRESSOR, CAIRN_SYNC, CAIRN_MAP_SIZE reach the workers.
# Stop: Ctrl-C in the foreground, or kill "$(cat PREFIX/nginx.pid)".
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
port=${1:-8080}
store=${2:-lmdb:./data/school}
fail() { echo "run.sh: $*" >&2; exit 1; }

case $port in ''|*[!0-9]*) echo "run.sh: PORT must be a number (got '$port')" >&2; exit 2 ;; esac
case $store in
  lmdb:/*) ;;
  lmdb:*) store="lmdb:$PWD/${store#lmdb:}" ;;
  memory:) echo "run.sh: warning: with memory: each worker has a store of its own" >&2 ;;
esac

nginx=${CAIRN_NGINX:-$(command -v nginx || echo /usr/sbin/nginx)}
# nginx reads NGINX as the listening sockets of a binary upgrade (and then will not daemonize)
unset NGINX
[ -x "$nginx" ] || fail "nginx not found (Debian: apt-get install nginx libnginx-mod-http-lua)"
modules=${CAIRN_NGINX_MODULES:-/usr/lib/nginx/modules}
for m in ndk_http_module.so ngx_http_lua_module.so; do
  [ -f "$modules/$m" ] || fail "$modules/$m not found (Debian: apt-get install libnginx-mod-http-lua)"
done
[ -f "$root/lib/cairn/core.so" ] || fail "$root/lib/cairn/core.so not found (build it: tools/build)"

prefix=${CAIRN_HTTP_PREFIX:-$(mktemp -d /tmp/cairn-http.XXXXXX)}
mkdir -p "$prefix"
prefix=$(cd "$prefix" && pwd)
# the paths go into nginx.conf unquoted and through sed
case "$root$prefix$modules${CAIRN_NGINX_LUA_PATH:-}" in
  *[\ \"\'\;\|\&\$\\]*) fail "paths with spaces, quotes or ; | & \$ \\ are not supported: $root $prefix" ;;
esac

user=""
[ "$(id -u)" -eq 0 ] && user="user root;"  # the workers must be able to open the store as its owner
daemon=off
[ "${CAIRN_HTTP_DAEMON:-}" = y ] && daemon=on
sed -e "s|@MODULES@|$modules|g" -e "s|@USER@|$user|g" -e "s|@WORKERS@|${CAIRN_HTTP_WORKERS:-2}|g" \
    -e "s|@DAEMON@|$daemon|g" -e "s|@PREFIX@|$prefix|g" -e "s|@ROOT@|$root|g" \
    -e "s|@LUA_PATH@|${CAIRN_NGINX_LUA_PATH:+$CAIRN_NGINX_LUA_PATH;}|g" -e "s|@ADDRESS@|${CAIRN_HTTP_ADDRESS:-127.0.0.1}|g" -e "s|@PORT@|$port|g" \
    "$here/nginx.conf.in" > "$prefix/nginx.conf"

export CAIRN_STORE="$store"
echo "run.sh: http://${CAIRN_HTTP_ADDRESS:-127.0.0.1}:$port/ serving $store (nginx prefix $prefix)" >&2
if [ "$daemon" = on ]; then
  "$nginx" -p "$prefix" -c "$prefix/nginx.conf"
else
  exec "$nginx" -p "$prefix" -c "$prefix/nginx.conf"
fi
