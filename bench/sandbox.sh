#!/bin/sh
# Start-up time of `unitwright sandbox` (needs root): for a user sandbox, a user sandbox with
# journald, a system sandbox and a system sandbox with journald, ROUNDS times each (default 10,
# the kinds alternating), the median of
#   * start-up: from running `unitwright sandbox ... -- date +%s%N` until COMMAND runs (the
#     manager, its bus and journald are up and answer: the sandbox waits for SystemState
#     running), and
#   * total: the whole command, teardown included (every process, cgroup and the directory
#     gone),
# in ms, and the load average before and after.
#
#   bench/sandbox.sh [ROUNDS]
#   UNITWRIGHT_BIN=target/debug/unitwright bench/sandbox.sh    # an already built binary
set -eu
cd "$(dirname "$0")/.."
rounds=${1:-10}
if [ -n "${UNITWRIGHT_BIN:-}" ]; then
  bin=$(realpath "$UNITWRIGHT_BIN")
else
  cargo build --release --quiet --bin unitwright
  bin=$(pwd)/${CARGO_TARGET_DIR:-target}/release/unitwright
fi
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
kinds="user user-journal system system-journal"
r=0
while [ $r -lt "$rounds" ]; do
  for kind in $kinds; do
    case $kind in
      user) opts= ;;
      user-journal) opts=--journal ;;
      system) opts=--system ;;
      system-journal) opts="--system --journal" ;;
    esac
    t0=$(date +%s%N)
    # shellcheck disable=SC2086
    t1=$("$bin" sandbox $opts -- date +%s%N)
    t2=$(date +%s%N)
    echo $(( (t1 - t0) / 1000 )) >> "$out/$kind.start"
    echo $(( (t2 - t0) / 1000 )) >> "$out/$kind.total"
  done
  r=$((r + 1))
done
median() { sort -n "$1" | awk '{ v[NR] = $1 } END { m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2; printf "%.0f", m / 1000 }'; }
range() { sort -n "$1" | awk 'NR == 1 { lo = $1 } { hi = $1 } END { printf "%.0f-%.0f", lo / 1000, hi / 1000 }'; }
printf '%-16s %14s %14s %16s\n' sandbox "start-up (ms)" "total (ms)" "start-up range"
for kind in $kinds; do
  printf '%-16s %14s %14s %16s\n' "$kind" "$(median "$out/$kind.start")" "$(median "$out/$kind.total")" "$(range "$out/$kind.start")"
done
echo "rounds: $rounds; load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
