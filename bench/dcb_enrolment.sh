#!/bin/sh
# The course-enrolment decision per second, DCB against aggregates, with 1 and
# 4 processes on stores of EVENTS events (default 1,000,000).
#   bench/dcb_enrolment.sh DIR [EVENTS] [OPS per process]             (lmdb: stores in DIR)
#   bench/dcb_enrolment.sh postgresql://… [EVENTS] [OPS per process]  (schemas dcb_bench_dcb and
#                                                                        dcb_bench_agg in that database)
# A store filled before (same EVENTS) is used again.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
cairn=${CAIRN_BIN:-$here/../bin/cairn}
where=$1; events=${2:-1000000}; ops=${3:-2000}
case "$where" in
  postgres://*|postgresql://*) pg=1 ;;
  *) pg=0; mkdir -p "$where" ;;
esac
store_of() {
  if [ "$pg" = 1 ]; then
    case "$where" in *\?*) echo "$where&schema=dcb_bench_$1" ;; *) echo "$where?schema=dcb_bench_$1" ;; esac
  else
    echo "lmdb:$where/$1"
  fi
}
seed=$(date +%s)   # new students and courses each run: decisions that append
for kind in dcb agg; do
  uri=$(store_of "$kind")
  "$cairn" stat "$uri" >/dev/null 2>&1 || "$cairn" run "$here/dcb_enrolment.lua" fill "$kind" "$uri" "$events"
  if [ "$pg" = 0 ]; then du -sh "$where/$kind"; fi
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
