#!/bin/sh
# Course enrolment from four processes at once on one store, then a check that
# no course took more students than its capacity and no student more courses
# than the limit.   examples/course_enrolment/run.sh [DIR | STORE_URI]
# (default: an lmdb: store in a temporary directory; a URI such as postgresql://… is used as it is)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cairn=${CAIRN_BIN:-$root/bin/cairn}
case "${1:-}" in
  *:*) uri=$1; dir=$1 ;;
  *) dir=${1:-$(mktemp -d "${TMPDIR:-/tmp}/cairn-enrolment.XXXXXX")}; uri="lmdb:$dir/enrolment" ;;
esac
export CAIRN_SYNC=none
"$cairn" run "$here/main.lua" setup "$uri" 20 10 100 3
pids=""
for i in 1 2 3 4; do
  "$cairn" run "$here/main.lua" work "$uri" "$i" 300 &
  pids="$pids $!"
done
for p in $pids; do wait "$p"; done
"$cairn" run "$here/main.lua" check "$uri"
echo "store in $dir"
