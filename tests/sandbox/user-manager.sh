#!/bin/sh
# Runs COMMAND against a private `systemd --user` with its own session bus, then tears it down.
#
#   tests/sandbox/user-manager.sh COMMAND [ARGS...]
#
# The manager runs in private mount and PID namespaces (a tmpfs over /run/systemd gives it the
# /run/systemd/system it insists on); nothing outside a temporary directory is touched.
# COMMAND runs outside the namespaces, with:
#   XDG_RUNTIME_DIR            the manager's runtime dir; unit files go to $XDG_RUNTIME_DIR/systemd/user/
#   DBUS_SESSION_BUS_ADDRESS   unix:path=$XDG_RUNTIME_DIR/bus (so `unitwright --user` talks to it)
#   SANDBOX_SYSTEMCTL          a command prefix running `systemctl --user` inside the namespace
# Same design as tests/support/mod.rs (UserManager). Needs root (for the namespaces).
set -eu
[ $# -ge 1 ] || { echo "usage: $0 COMMAND [ARGS...]" >&2; exit 2; }

root=$(mktemp -d /tmp/unitwright-user-sh.XXXXXX)
export XDG_RUNTIME_DIR="$root/run"
export DBUS_SESSION_BUS_ADDRESS="unix:path=$XDG_RUNTIME_DIR/bus"
mkdir -p "$XDG_RUNTIME_DIR/systemd/user" "$root/home" "$root/config"
chmod 700 "$XDG_RUNTIME_DIR"

HOME="$root/home" XDG_CONFIG_HOME="$root/config" \
unshare --mount --pid --fork --kill-child --propagation private --mount-proc sh -c '
  set -e
  mount -t tmpfs tmpfs /run/systemd
  mkdir -p /run/systemd/system /run/systemd/user-generators
  dbus-daemon --session --address="$DBUS_SESSION_BUS_ADDRESS" --fork --nopidfile >/dev/null
  /lib/systemd/systemd --user </dev/null &
  set +e
  while :; do wait; done' </dev/null >/dev/null 2>"$root/sandbox.log" &
unshare_pid=$!

init_pid=
cleanup() {
  set +e
  [ -n "$init_pid" ] && kill -KILL "$init_pid" 2>/dev/null
  kill -KILL "$unshare_pid" 2>/dev/null
  wait "$unshare_pid" 2>/dev/null
  rm -rf "$root"
}
trap cleanup EXIT INT TERM

i=0
while :; do
  init_pid=$(cat "/proc/$unshare_pid/task/$unshare_pid/children" 2>/dev/null | tr -d ' ') || true
  state=$(busctl --address="$DBUS_SESSION_BUS_ADDRESS" get-property org.freedesktop.systemd1 \
    /org/freedesktop/systemd1 org.freedesktop.systemd1.Manager SystemState 2>/dev/null || true)
  case "$state" in *running*|*degraded*) break ;; esac
  i=$((i + 1))
  if [ $i -gt 1500 ]; then echo "$0: systemd --user did not start:" >&2; cat "$root/sandbox.log" >&2; exit 1; fi
  sleep 0.02
done

manager_pid=
for c in $(cat "/proc/$init_pid/task/$init_pid/children"); do
  [ "$(cat "/proc/$c/comm")" = systemd ] && manager_pid=$c
done
export SANDBOX_SYSTEMCTL="nsenter -t $manager_pid -m -p -- systemctl --user"

"$@"
