#!/bin/sh
# The course-enrolment decision per second, DCB against aggregates, with 1 and
# 4 processes on stores of EVENTS events (default 1,000,000).
#   bench/dcb_enrolment.sh DIR [EVENTS] [OPS per process]
set -eu
here=$(cd "$(dirname "$0")" && pwd)
cairn=${CAIRN_BIN:-$here/../bin/cairn}
dir=$1; events=${2:-1000000}; ops=${3:-2000}
mkdir -p "$dir"
seed=$(date +%s)   # new students and courses each run: decisions that append
for kind in dcb agg; do
  uri="lmdb:$dir/$kind"
  [ -e "$dir/$kind/data.mdb" ] || "$cairn" run "$here/dcb_enrolment.lua" fill "$kind" "$uri" "$events"
  du -sh "$dir/$kind"
  echo "$kind, 1 process:"
  "$cairn" run "$here/dcb_enrolment.lua" run "$kind" "$uri" "$ops" "$seed" "$events"
  echo "$kind, 4 processes:"
  pids=""
  for i in 1 2 3 4; do
    "$cairn" run "$here/dcb_enrolment.lua" run "$kind" "$uri" "$ops" "$((seed + i))" "$events" &
    pids="$pids $!"
  done
  for p in $pids; do wait "$p"; done
done
