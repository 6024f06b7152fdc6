#!/bin/sh
# Operator verbs against systemctl, in the same sandbox and the same run (needs root):
#   * `unitwright --user status` of 10 running services (each with journal lines, read from a
#     real journald: tests/sandbox/user-manager.sh with UW_JOURNAL=1) against
#     `systemctl --user status` of the same 10;
#   * `unitwright --user list` of all loaded units (1,000 template instances plus the
#     manager's own) against `systemctl --user list-units --all`.
# Both sides run inside the sandbox's namespaces with stdout to /dev/null, alternating,
# ROUNDS times (default 20); medians in ms and the ratio systemctl / unitwright are printed.
#
#   bench/ops.sh [ROUNDS]
#   UNITWRIGHT_BIN=target/debug/unitwright bench/ops.sh    # an already built binary
set -eu
cd "$(dirname "$0")/.."
rounds=${1:-20}
if [ -n "${UNITWRIGHT_BIN:-}" ]; then
  bin=$(realpath "$UNITWRIGHT_BIN")
else
  cargo build --release --quiet --bin unitwright
  bin=$(pwd)/${CARGO_TARGET_DIR:-target}/release/unitwright
fi
export UW_BIN="$bin" UW_ROUNDS="$rounds" UW_JOURNAL=1
exec tests/sandbox/user-manager.sh sh -c '
set -eu
u=$XDG_RUNTIME_DIR/systemd/user
printf "[Unit]\nDescription=Service %%i of the benchmark\n[Service]\nExecStart=/bin/sh -c \"for i in 1 2 3 4 5 6 7 8 9 10 11 12; do echo line \$i of %%i; done; exec sleep 600\"\n" > "$u/svc@.service"
printf "[Unit]\nDescription=Target %%i of the benchmark\n" > "$u/bench@.target"
$SANDBOX_SYSTEMCTL daemon-reload
svcs=$(seq 1 10 | sed "s/^/svc@/; s/$/.service/")
"$UW_BIN" --user start $svcs
"$UW_BIN" --user start $(seq 1 1000 | sed "s/^/bench@/; s/$/.target/")
loaded=$($SANDBOX_SYSTEMCTL list-units --all --no-legend | wc -l)
sleep 1
now() { date +%s%N; }
median() { sort -n | awk "{a[NR]=\$1} END {m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf \"%.1f\", m/1e6}"; }
: > /tmp/uw-bench-ops.$$
i=0
while [ $i -lt "$UW_ROUNDS" ]; do
  t0=$(now); $SANDBOX_RUN "$UW_BIN" --user status $svcs >/dev/null || true; t1=$(now)
  $SANDBOX_RUN systemctl --user status --no-pager $svcs >/dev/null || true; t2=$(now)
  $SANDBOX_RUN "$UW_BIN" --user list >/dev/null; t3=$(now)
  $SANDBOX_RUN systemctl --user list-units --all --no-pager >/dev/null; t4=$(now)
  echo "$((t1-t0)) $((t2-t1)) $((t3-t2)) $((t4-t3))" >> /tmp/uw-bench-ops.$$
  i=$((i+1))
done
us=$(cut -d" " -f1 /tmp/uw-bench-ops.$$ | median); ss=$(cut -d" " -f2 /tmp/uw-bench-ops.$$ | median)
ul=$(cut -d" " -f3 /tmp/uw-bench-ops.$$ | median); sl=$(cut -d" " -f4 /tmp/uw-bench-ops.$$ | median)
rm -f /tmp/uw-bench-ops.$$
echo "rounds: $UW_ROUNDS, loaded units: $loaded, load: $(cut -d" " -f1-3 /proc/loadavg)"
echo "status of 10 services: unitwright $us ms, systemctl $ss ms, ratio $(echo "$ss $us" | awk "{printf \"%.2f\", \$1/\$2}")x"
echo "list of all loaded units: unitwright $ul ms, systemctl $sl ms, ratio $(echo "$sl $ul" | awk "{printf \"%.2f\", \$1/\$2}")x"
'
