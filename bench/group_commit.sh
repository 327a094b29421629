#!/bin/sh
# Group commit: durable (sync=full) saves from 1 and from N threads on one
# store, in the same run: first at the store level (bench/group_commit.c, each
# thread with its own handle), then at the application level through the
# embedding API (bench/api_group_commit.c, each thread with its own runtime
# registering dogs of the training school).
#   bench/group_commit.sh [SECONDS] [THREADS...]  (default: 3 s; 1 8 16)
# Prints one line per level and thread count, with the ratio to 1 thread.
set -eu
cd "$(dirname "$0")/.."
seconds=${1:-3}
[ $# -gt 0 ] && shift
threads=${*:-1 8 16}
if [ ! -f lib/libcairn.a ] || [ ! -f lib/libcairn.so ]; then
  echo "bench/group_commit.sh: lib/libcairn.a or .so is missing; build first with tools/build" >&2
  exit 1
fi
tmp=$(mktemp -d "${TMPDIR:-/tmp}/cairn-group.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
trap 'exit 130' INT TERM
cc -O2 -Wall -Wextra -Iruntime/store -Iruntime/include bench/group_commit.c lib/libcairn.a \
  -llmdb -lsodium -lzstd -lmsgpackc -lpthread -lm -o "$tmp/store_level"
cc -O2 -Wall -Wextra -Iruntime/include bench/api_group_commit.c -Llib -Wl,-rpath,"$PWD/lib" -lcairn \
  -lmsgpackc -lpthread -o "$tmp/api_level"
for level in store api; do
  single=""
  for n in 1 $threads; do
    [ "$n" = 1 ] && [ -n "$single" ] && continue
    rm -rf "$tmp/store"
    if [ "$level" = store ]; then
      line=$("$tmp/store_level" "$tmp/store" "$n" "$seconds" full)
    else
      line=$("$tmp/api_level" "$PWD" "$tmp/store" "$n" "$seconds" full)
    fi
    rate=$(echo "$line" | sed -n 's/.* rate=\([0-9]*\).*/\1/p')
    [ "$n" = 1 ] && single=$rate
    echo "$level $line ratio=$(awk -v r="$rate" -v s="$single" 'BEGIN { printf "%.2f", r / s }')"
  done
done
