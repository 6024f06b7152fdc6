#!/usr/bin/env bash
# Benchmark: starting one more console when N are already running, two ways.
#
#   bench/instances.sh            (as root; N=100 REPS=5 by default: N=20 REPS=3 bench/instances.sh)
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
# reload) outside the timed part. Prints the medians and their ratio.
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

inside() {
  uw() { "$UNITWRIGHT" --user "$@"; }
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
  for i in $(seq "$REPS"); do
    t0=$(now_ms)
    render ironic-extra 39999
    uw reload
    t1=$(now_ms)
    uw start ironic-extra.service
    echo $(($(now_ms) - t0)) >>"$work/ironic"
    echo $((t1 - t0)) >>"$work/reload"
    uw stop ironic-extra.service
    rm "$QUADLET_UNIT_DIRS/ironic-extra.container"
    uw reload

    t0=$(now_ms)
    uw instance start console@.service "node extra/x" --set "IMAGE=$IMAGE" --set PORT=auto-port \
      --set "APP=node extra" >/dev/null
    echo $(($(now_ms) - t0)) >>"$work/unitwright"
    uw instance stop console@.service "node extra/x"
  done
  local ironic ours reload
  ironic=$(median <"$work/ironic")
  reload=$(median <"$work/reload")
  ours=$(median <"$work/unitwright")
  echo
  echo "start of console $((N + 1)) with $N + $N running (median of $REPS, ms):"
  printf '  Ironic way (write file + daemon-reload + start): %s  (of which file + reload: %s)\n' "$ironic" "$reload"
  printf '  unitwright instance start:                        %s\n' "$ours"
  awk -v a="$ironic" -v b="$ours" 'BEGIN { printf "  ratio: %.2fx\n", a / b }'
  echo "  raw: ironic=[$(paste -sd' ' "$work/ironic")] unitwright=[$(paste -sd' ' "$work/unitwright")]"
  echo "stopping everything ..."
  uw instance stop-all console@.service
  uw stop "${units[@]}" >/dev/null
}

if [ "${1:-}" = __inside ]; then
  inside
  exit
fi

[ "$(id -u)" = 0 ] || { echo "bench: run as root" >&2; exit 1; }
cargo build --release --workspace --locked --quiet
bin="${CARGO_TARGET_DIR:-$PWD/target}/release"
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
