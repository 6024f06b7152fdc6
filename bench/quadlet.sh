#!/usr/bin/env bash
# Benchmark of the Quadlet lifecycle, all in one run against one private `systemd --user`
# (tests/sandbox/user-manager.sh) whose generator is the real unitwright-generator:
#
# * with N (1,000) installed Quadlet files plus a 10-file app: a no-op
#   `unitwright --user quadlet apply APP --app bench` against one daemon-reload of that manager
#   (the generator converting every file, the manager loading every unit);
# * `unitwright --user quadlet verify` of N files against the generator's own run on them
#   (`unitwright-generator -user OUTDIR` into a fresh tmpfs directory, as systemd runs it).
#
#   bench/quadlet.sh            (as root; N=1000 REPS=7 by default)
#
# Prints the medians and ratios. Nothing outside a temporary directory is touched.
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")/.."

N=${N:-1000}
REPS=${REPS:-7}

now_us() { echo $(($(date +%s%N) / 1000)); }
median() { sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }

container() { # NAME: a realistic container file (network, volume, ports, environment)
  printf '[Unit]\nDescription=%s\n\n[Container]\nImage=registry.example/app/%s:1.2\nNetwork=bench.network\nVolume=bench.volume:/data\nPublishPort=127.0.0.1:%d:80\nEnvironment=NAME=%s LEVEL=info\nLabel=app=%s\nHealthCmd=/bin/true\nHealthInterval=30s\n\n[Service]\nRestart=on-failure\nTimeoutStartSec=90\n' \
    "$1" "$1" $((20000 + ${2:-0})) "$1" "$1"
}

inside() {
  uw() { "$UNITWRIGHT" --user "$@"; }
  local i t0
  busctl_reload() {
    busctl --user call org.freedesktop.systemd1 /org/freedesktop/systemd1 \
      org.freedesktop.systemd1.Manager Reload >/dev/null
  }
  : >"$work/reload" && : >"$work/apply" && : >"$work/verify" && : >"$work/gen"
  for i in $(seq "$REPS"); do
    t0=$(now_us); busctl_reload; echo $(($(now_us) - t0)) >>"$work/reload"
    t0=$(now_us); uw quadlet apply "$work/app" --app bench >/dev/null; echo $(($(now_us) - t0)) >>"$work/apply"
    t0=$(now_us); QUADLET_UNIT_DIRS="$work/empty" uw quadlet verify "$work/src" >/dev/null 2>&1
    echo $(($(now_us) - t0)) >>"$work/verify"
    rm -rf "$work/out" && mkdir "$work/out"
    t0=$(now_us); QUADLET_UNIT_DIRS="$work/src" "$GENERATOR" -user -no-kmsg-log "$work/out"
    echo $(($(now_us) - t0)) >>"$work/gen"
  done
  local reload apply verify gen
  reload=$(median <"$work/reload"); apply=$(median <"$work/apply")
  verify=$(median <"$work/verify"); gen=$(median <"$work/gen")
  echo "medians of $REPS, microseconds, $N installed files + a 10-file app:"
  printf '  daemon-reload (generator + manager):      %8d\n' "$reload"
  printf '  no-op quadlet apply of the 10-file app:   %8d   = 1/%.1f of a reload\n' "$apply" \
    "$(awk -v a="$reload" -v b="$apply" 'BEGIN { print a / b }')"
  printf '  quadlet verify of %d files:             %8d\n' "$N" "$verify"
  printf '  unitwright-generator on the same files:   %8d   verify = %.2fx the generator\n' "$gen" \
    "$(awk -v a="$verify" -v b="$gen" 'BEGIN { print a / b }')"
  echo "  raw: reload=[$(paste -sd' ' "$work/reload")] apply=[$(paste -sd' ' "$work/apply")]"
  echo "       verify=[$(paste -sd' ' "$work/verify")] gen=[$(paste -sd' ' "$work/gen")]"
}

if [ "${1:-}" = __inside ]; then
  inside
  exit
fi

[ "$(id -u)" = 0 ] || { echo "bench: run as root" >&2; exit 1; }
# The generator as shipped (without the CLI's features), and the CLI (UW_BENCH_NO_BUILD=1: use
# what is built).
if [ -z "${UW_BENCH_NO_BUILD:-}" ]; then
  cargo build --release --locked --quiet -p unitwright-generator
  cargo build --release --locked --quiet --bin unitwright
fi
bin="${CARGO_TARGET_DIR:-$PWD/target}/release"
work=$(mktemp -d /dev/shm/unitwright-qbench.XXXXXX)
trap 'rm -rf "$work"' EXIT
trap 'exit 130' INT TERM
mkdir -p "$work/quadlet" "$work/src" "$work/app" "$work/empty"
printf '[Network]\n' >"$work/src/bench.network"
printf '[Volume]\n' >"$work/src/bench.volume"
for i in $(seq 3 "$N"); do container "c$i" "$i" >"$work/src/c$i.container"; done
cp "$work/src"/* "$work/quadlet/"
for i in $(seq 10); do container "app$i" $((N + i)) >"$work/app/app$i.container"; done
export QUADLET_UNIT_DIRS="$work/quadlet" UNITWRIGHT="$bin/unitwright" GENERATOR="$bin/unitwright-generator" \
  UW_GENERATORS="$bin/unitwright-generator" N REPS work UNITWRIGHT_PODMAN_VERSION=off
# Install the app once (one reload), then measure.
tests/sandbox/user-manager.sh bash -c '"$UNITWRIGHT" --user quadlet install "$work/app" --app bench >/dev/null && bash "$0" __inside' "$(readlink -f "$0")"
