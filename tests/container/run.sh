#!/usr/bin/env bash
# Runs COMMAND in `podman run --privileged` of the image of build-image.sh (built if missing),
# as a CI job in a container would: the container's PID 1 is COMMAND, not systemd.
#
#   tests/container/run.sh COMMAND [ARGS...]
#
# The checkout is bind-mounted read-only at the same path (the working directory), and the
# unitwright binary ($UNITWRIGHT, default target/debug/unitwright) at /usr/local/bin/unitwright.
# Extra `podman run` options: UW_PODMAN_OPTS (split on spaces). Exits with COMMAND's status
# (podman's own errors: 125-127). The container is removed afterwards.
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: $0 COMMAND [ARGS...]" >&2; exit 2; }
repo=$(cd "$(dirname "$0")/../.." && pwd)
export CONTAINERS_CONF=${CONTAINERS_CONF:-$repo/tests/container/containers.conf}
bin=${UNITWRIGHT:-$repo/target/debug/unitwright}
[ -x "$bin" ] || { echo "$0: no unitwright binary at $bin (cargo build, or set UNITWRIGHT)" >&2; exit 2; }
image=$("$repo/tests/container/build-image.sh")
name=uw-img-run-$$-$RANDOM
# shellcheck disable=SC2086 # UW_PODMAN_OPTS is a list of options
exec podman run --rm --privileged --name "$name" \
  -v "$repo:$repo:ro" -v "$bin:/usr/local/bin/unitwright:ro" -w "$repo" \
  ${UW_PODMAN_OPTS:-} "$image" "$@"
