#!/usr/bin/env bash
# Start-up (start, run `true`, tear down) of `unitwright sandbox` and `unitwright sandbox
# --system` inside `podman run --privileged` of the image of build-image.sh, to set beside
# boot-time.sh (README, "Testing your units in CI"). Prints each run and the median, in ms.
#
#   tests/container/sandbox-time.sh [RUNS]      # default 10; UNITWRIGHT as for run.sh
set -euo pipefail
runs=${1:-10}
# shellcheck disable=SC2016 # the script is for the container's bash
exec "$(dirname "$0")/run.sh" bash -c '
  for scope in --user --system; do
    times=()
    for _ in $(seq "$1"); do
      t0=$(date +%s%N); unitwright sandbox "$scope" -- true; t1=$(date +%s%N)
      times+=("$(( (t1 - t0) / 1000000 ))")
    done
    echo "$scope: ${times[*]} ms"
    printf "%s\n" "${times[@]}" | sort -n | awk -v s="$scope" "{a[NR]=\$1} END {m = (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2; printf \"%s: median of %d: %d ms\n\", s, NR, m}"
  done' sh "$runs"
