#!/bin/sh
# Group commit: durable (sync=full) saves from 1 and from N threads on one
# store, in the same run, each thread with its own handle (as each runtime of
# a host has). bench/group_commit.sh [SECONDS] [THREADS...]  (default: 3 s; 1 8 16)
# Prints one line per thread count and the ratio to the single-thread rate.
set -eu
cd "$(dirname "$0")/.."
seconds=${1:-3}
[ $# -gt 0 ] && shift
threads=${*:-1 8 16}
if [ ! -f lib/libcairn.a ]; then
  echo "bench/group_commit.sh: lib/libcairn.a is missing; build first with tools/build" >&2
  exit 1
fi
tmp=$(mktemp -d "${TMPDIR:-/tmp}/cairn-group.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
trap 'exit 130' INT TERM
cc -O2 -Wall -Wextra -Iruntime -Iruntime/include bench/group_commit.c lib/libcairn.a \
  -llmdb -lsodium -lzstd -lmsgpackc -lpthread -lm -o "$tmp/group_commit"
single=""
for n in 1 $threads; do
  [ "$n" = 1 ] && [ -n "$single" ] && continue
  rm -rf "$tmp/store"
  line=$("$tmp/group_commit" "$tmp/store" "$n" "$seconds" full)
  rate=$(echo "$line" | sed -n 's/.* rate=\([0-9]*\).*/\1/p')
  [ "$n" = 1 ] && single=$rate
  echo "$line ratio=$(awk -v r="$rate" -v s="$single" 'BEGIN { printf "%.2f", r / s }')"
done
