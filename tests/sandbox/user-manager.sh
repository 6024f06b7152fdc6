#!/bin/sh
# Runs COMMAND against a private `systemd --user` with its own session bus, then tears it down:
# `unitwright sandbox` (the testkit, testkit/src/user.rs) with the interface the demo and the
# benchmarks use.
#
#   tests/sandbox/user-manager.sh COMMAND [ARGS...]
#
# The binary is $UNITWRIGHT or $UW_BIN (else target/debug/unitwright, else unitwright on PATH,
# else target/debug/unitwright is built).
# COMMAND runs outside the namespaces, with:
#   XDG_RUNTIME_DIR            the manager's runtime dir; unit files go to $XDG_RUNTIME_DIR/systemd/user/
#   DBUS_SESSION_BUS_ADDRESS   unix:path=$XDG_RUNTIME_DIR/bus (so `unitwright --user` talks to it)
#   SANDBOX_SYSTEMCTL          a command running `systemctl --user` inside the namespace
#   SANDBOX_RUN                a command prefix running a program inside the namespaces
#   UNITWRIGHT_SANDBOX         the sandbox's description (see unitwright-sandbox(1))
# The manager inherits the caller's environment. UW_GENERATORS (newline-separated absolute
# paths) are installed as user generators (they run at its start). UW_JOURNAL=1 adds a real
# systemd-journald that records the manager's units as on a booted host (see "With a journal"
# in the testkit's docs); its files are in $SANDBOX_JOURNAL (journalctl -D), and at
# /run/log/journal for programs run with SANDBOX_RUN. Needs root (for the namespaces).
set -eu
[ $# -ge 1 ] || { echo "usage: $0 COMMAND [ARGS...]" >&2; exit 2; }
bin=${UNITWRIGHT:-${UW_BIN:-}}
if [ -z "$bin" ]; then
  here=$(cd "$(dirname "$0")/../.." && pwd)
  bin=$here/${CARGO_TARGET_DIR:-target}/debug/unitwright
  if [ ! -x "$bin" ]; then
    if command -v unitwright >/dev/null; then bin=$(command -v unitwright)
    else (cd "$here" && cargo build --quiet --bin unitwright); fi
  fi
fi
set -- "$@"
opts=
[ -n "${UW_JOURNAL:-}" ] && opts=--journal
# UW_ALL_CONTROLLERS=1 (with UW_JOURNAL=1): every enabled cgroup controller mounted in the
# sandbox, as on a booted host; podman needs it to run containers there.
[ -n "${UW_ALL_CONTROLLERS:-}" ] && opts="$opts --all-controllers"
# One --generator per line of UW_GENERATORS (paths without newlines).
old_ifs=$IFS
IFS='
'
gens=
for g in ${UW_GENERATORS:-}; do gens="$gens --generator=$g"; done
IFS=$old_ifs
# shellcheck disable=SC2086
exec "$bin" sandbox $opts $gens -- sh -c '
  pid=${UNITWRIGHT_SANDBOX#*pid=}; pid=${pid%% *}
  SANDBOX_RUN="nsenter -t $pid -m -p${UW_JOURNAL:+ -C} --"
  SANDBOX_SYSTEMCTL="systemctl --user"
  SANDBOX_JOURNAL=${UNITWRIGHT_SANDBOX_JOURNAL:-}
  export SANDBOX_RUN SANDBOX_SYSTEMCTL SANDBOX_JOURNAL
  exec "$@"' sh "$@"
