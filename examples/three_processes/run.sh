#!/bin/sh
# The dog school as three processes on one machine:
#   follower    cairn follow system.lua Counters           (a process application)
#   projection  cairn project counts.lua ... --follow      (the Counts view)
#   leader      cairn run leader.lua                       (registers dogs, teaches tricks)
# The followers wake when the leader commits (a futex in the store's `wake`
# file), then this script stops them with SIGTERM and reads what they made.
#   examples/three_processes/run.sh [DIR]     (default: a temporary directory)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cairn=${CAIRN_BIN:-$root/bin/cairn}
school=$root/examples/training_school
dir=${1:-$(mktemp -d "${TMPDIR:-/tmp}/cairn-three.XXXXXX")}
mkdir -p "$dir"
export CAIRN_STORE="lmdb:$dir"     # each application gets lmdb:$dir/<AppName>
export CAIRN_SYNC=none

cd "$school"
"$cairn" run "$here/leader.lua" "$dir" --create   # the store the followers read must exist
"$cairn" follow system.lua Counters > "$dir/follower.log" 2>&1 &
follower=$!
"$cairn" project counts.lua --app "lmdb:$dir/TrainingSchool" --view "lmdb:$dir/Counts" --follow \
  > "$dir/projection.log" 2>&1 &
projection=$!
trap 'kill -TERM $follower $projection 2>/dev/null || true' EXIT INT TERM

"$cairn" run "$here/leader.lua" "$dir"
"$cairn" run "$here/report.lua" "$dir"

kill -TERM $follower $projection
wait $follower $projection || true
trap - EXIT INT TERM
cat "$dir/follower.log" "$dir/projection.log"
echo "stores in $dir"
