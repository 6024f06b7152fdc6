#!/usr/bin/env bash
# Start-up time of a privileged systemd container (systemd as the container's PID 1) from the
# image of build-image.sh: `podman run -d --privileged --systemd=always IMAGE /sbin/init` until
# `systemctl is-system-running --wait` inside answers (running or degraded). For comparison
# with the sandbox's start-up (README). Prints each run and the median, in milliseconds.
#
#   tests/container/boot-time.sh [RUNS]      # default 10
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
export CONTAINERS_CONF=${CONTAINERS_CONF:-$repo/tests/container/containers.conf}
runs=${1:-10}
image=$("$repo/tests/container/build-image.sh")
name=uw-img-boot-$$
trap 'podman rm -f -t 0 "$name" >/dev/null 2>&1 || true' EXIT
times=()
for _ in $(seq "$runs"); do
  t0=$(date +%s%N)
  podman run -d --privileged --systemd=always --name "$name" "$image" /sbin/init >/dev/null 2>&1
  # Until the manager answers on its bus, exec'd systemctl fails: retry.
  until state=$(podman exec "$name" systemctl is-system-running --wait 2>/dev/null) ||
    [ "$state" = degraded ]; do
    sleep 0.05
  done
  t1=$(date +%s%N)
  ms=$(( (t1 - t0) / 1000000 ))
  times+=("$ms")
  echo "boot: ${ms} ms ($state)"
  podman rm -f -t 0 "$name" >/dev/null 2>&1
done
printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR]=$1} END {m = (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2; printf "median of %d: %d ms\n", NR, m}'
