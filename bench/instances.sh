#!/usr/bin/env bash
# Benchmark: starting one more console when N are already running, two ways.
#
#   bench/instances.sh            (as root; N=100 REPS=5 by default: N=20 REPS=3 bench/instances.sh;
#                                  BIN_DIR=target/release skips the build)
#
# * Ironic's way: render a .container file for the node (settings baked in), daemon-reload (the
#   generator reconverts every file and the manager reloads every unit), start the service.
# * unitwright's way: `unitwright --user instance start console@.service ID --set ...` (store the
#   settings file, StartUnit, wait for the job); no file per node, no reload.
#
# Both run against the same private `systemd --user` (tests/sandbox/user-manager.sh) with real
# podman (busybox httpd containers, storage in a temporary directory) and N running consoles of
# each kind, so the (N+1)th start of each way sees 2N running containers. Both use the unitwright
# CLI over D-Bus (reload + start for Ironic's way), so the difference is the mechanism, not the
# client. Each of the REPS measurements is undone (stop; for Ironic's way also delete the file and
# reload) outside the timed part. Prints the medians and their ratio, and for each way the part
# that is podman's own: the manager's activation time of the unit (InactiveExitTimestamp to
# ActiveEnterTimestamp: ExecStartPre, `podman run` until conmon reports it started), so what
# each way adds on top of podman shows separately. Also prints the load average.
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")/.."

N=${N:-100}
REPS=${REPS:-5}
IMAGE=localhost/bench-console:latest

now_ms() { echo $(($(date +%s%N) / 1000000)); }
median() { sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }

render() { # Ironic's per-node file: NAME PORT (with the same podman 4.3.1 cidfile fix as ours)
  printf '[Container]\nImage=%s\nContainerName=%s\nPublishPort=127.0.0.1:%s:5900\nEnvironment=APP=%s\n[Service]\nExecStartPre=/bin/rm -f %%t/%%N.cid\n' \
    "$IMAGE" "$1" "$2" "$1" >"$QUADLET_UNIT_DIRS/$1.container"
}

# The manager's activation time of unit $1, in ms (monotonic timestamps, µs).
activation_ms() {
  local out
  out=$(uw show -p InactiveExitTimestampMonotonic,ActiveEnterTimestampMonotonic "$1")
  awk -F= '/^InactiveExit/ {a=$2} /^ActiveEnter/ {b=$2} END {printf "%d\n", (b - a) / 1000}' <<<"$out"
}

inside() {
  uw() { "$UNITWRIGHT" --user "$@"; }
  # Remove every container with podman inside the sandbox (where their network namespaces are
  # mounted) before the manager goes, also on an error: otherwise their iptables rules and CNI
  # addresses stay on the host.
  trap '$SANDBOX_RUN podman rm --all --force --time 0 >/dev/null 2>&1' EXIT
  local i t0 t1
  echo "setting up $N consoles the Ironic way (one file each, one reload) ..."
  units=()
  for i in $(seq "$N"); do
    render "ironic-$i" $((30000 + i))
    units+=("ironic-$i.service")
  done
  uw reload
  # One at a time: 100 podman starts at once overwhelm 2 cores (jobs time out).
  for i in "${units[@]}"; do uw start "$i"; done
  echo "setting up $N consoles the unitwright way ..."
  for i in $(seq "$N"); do
    uw instance start console@.service "node $i/x" --set "IMAGE=$IMAGE" --set PORT=auto-port \
      --set "APP=node $i" >/dev/null
  done
  echo "measuring the start of console $((N + 1)), $REPS times each way ..."
  : >"$work/ironic" && : >"$work/unitwright" && : >"$work/reload"
  : >"$work/ironic-podman" && : >"$work/unitwright-podman"
  local extra_unit
  extra_unit=$("$UNITWRIGHT" escape --template=console@.service "node extra/x")
  for i in $(seq "$REPS"); do
    t0=$(now_ms)
    render ironic-extra 39999
    uw reload
    t1=$(now_ms)
    uw start ironic-extra.service
    echo $(($(now_ms) - t0)) >>"$work/ironic"
    echo $((t1 - t0)) >>"$work/reload"
    activation_ms ironic-extra.service >>"$work/ironic-podman"
    uw stop ironic-extra.service
    rm "$QUADLET_UNIT_DIRS/ironic-extra.container"
    uw reload

    t0=$(now_ms)
    uw instance start console@.service "node extra/x" --set "IMAGE=$IMAGE" --set PORT=auto-port \
      --set "APP=node extra" >/dev/null
    echo $(($(now_ms) - t0)) >>"$work/unitwright"
    activation_ms "$extra_unit" >>"$work/unitwright-podman"
    uw instance stop console@.service "node extra/x"
  done
  local ironic ours reload ironic_podman ours_podman
  ironic=$(median <"$work/ironic")
  reload=$(median <"$work/reload")
  ours=$(median <"$work/unitwright")
  ironic_podman=$(median <"$work/ironic-podman")
  ours_podman=$(median <"$work/unitwright-podman")
  echo
  echo "start of console $((N + 1)) with $N + $N running (median of $REPS, ms; load average: $(cut -d' ' -f1-3 /proc/loadavg)):"
  printf '  Ironic way (write file + daemon-reload + start): %s  (file + reload: %s; podman start in the unit: %s; the rest: %s)\n' \
    "$ironic" "$reload" "$ironic_podman" "$((${ironic%.*} - ${reload%.*} - ${ironic_podman%.*}))"
  printf '  unitwright instance start:                        %s  (podman start in the unit: %s; unitwright and the manager: %s)\n' \
    "$ours" "$ours_podman" "$((${ours%.*} - ${ours_podman%.*}))"
  awk -v a="$ironic" -v b="$ours" 'BEGIN { printf "  ratio: %.2fx\n", a / b }'
  echo "  raw: ironic=[$(paste -sd' ' "$work/ironic")] unitwright=[$(paste -sd' ' "$work/unitwright")]"
  echo "  raw podman: ironic=[$(paste -sd' ' "$work/ironic-podman")] unitwright=[$(paste -sd' ' "$work/unitwright-podman")]"
  t0=$(now_ms)
  uw instance stop-all console@.service
  echo "  instance stop-all of $N consoles: $(($(now_ms) - t0)) ms"
  # The Ironic-way containers are removed by the EXIT trap, inside the sandbox.
}

if [ "${1:-}" = __inside ]; then
  inside
  exit
fi

[ "$(id -u)" = 0 ] || { echo "bench: run as root" >&2; exit 1; }
# BIN_DIR=DIR uses the unitwright and unitwright-generator already built there.
if [ -z "${BIN_DIR:-}" ]; then
  cargo build --release --workspace --locked --quiet
fi
bin="${BIN_DIR:-${CARGO_TARGET_DIR:-$PWD/target}/release}"
work=$(mktemp -d /tmp/unitwright-bench.XXXXXX)
. tests/sandbox/podman.sh
trap 'set +e; podman_sandbox_cleanup; rm -rf "$work"' EXIT
trap 'exit 130' INT TERM
podman_sandbox "$work" "$IMAGE"
mkdir -p "$work/quadlet"
cp units/console@.container "$work/quadlet/"
export QUADLET_UNIT_DIRS="$work/quadlet" UNITWRIGHT="$bin/unitwright" \
  UW_GENERATORS="$bin/unitwright-generator" IMAGE N REPS work
tests/sandbox/user-manager.sh bash "$0" __inside
