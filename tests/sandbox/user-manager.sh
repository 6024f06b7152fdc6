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
# The manager inherits the caller's environment. UW_GENERATORS (newline-separated absolute
# paths) are installed as user generators before it starts (they run at its start).
# Same design as tests/support/mod.rs (UserManager). Needs root (for the namespaces).
set -eu
[ $# -ge 1 ] || { echo "usage: $0 COMMAND [ARGS...]" >&2; exit 2; }

# On tmpfs (as /run/user/UID is on a real system) when there is one.
base=/dev/shm; [ -d "$base" ] || base=${TMPDIR:-/tmp}
root=$(mktemp -d "$base/unitwright-user-sh.XXXXXX")
export XDG_RUNTIME_DIR="$root/run"
export DBUS_SESSION_BUS_ADDRESS="unix:path=$XDG_RUNTIME_DIR/bus"
mkdir -p "$XDG_RUNTIME_DIR/systemd/user" "$root/home" "$root/config/systemd"
# No journald here: send units' output to /dev/null rather than have every spawned process
# warn on /dev/console that the journal socket is missing (same as tests/support/mod.rs).
printf '[Manager]\nDefaultStandardOutput=null\n' > "$root/config/systemd/user.conf"
chmod 700 "$XDG_RUNTIME_DIR"

# A cgroup of its own below ours (name=systemd and unified, or the cgroup2 tree), so that
# its units do not share cgroups with those of other sandboxes running at the same time.
cg=$(basename "$root")
UW_CGROUPS=
while IFS=: read -r _ ctl path; do
  case "$ctl" in
    name=systemd) base=/sys/fs/cgroup/systemd ;;
    "") if [ -f /sys/fs/cgroup/cgroup.procs ]; then base=/sys/fs/cgroup; else base=/sys/fs/cgroup/unified; fi ;;
    *) continue ;;
  esac
  UW_CGROUPS="$UW_CGROUPS $base${path%/}/$cg"
done </proc/self/cgroup
export UW_CGROUPS

HOME="$root/home" XDG_CONFIG_HOME="$root/config" \
sh -c 'for d in $UW_CGROUPS; do mkdir -p "$d" 2>/dev/null && echo $$ > "$d/cgroup.procs" 2>/dev/null; done; exec "$@"' sh \
unshare --mount --pid --fork --kill-child --propagation private --mount-proc sh -c '
  set -e
  mount -t tmpfs tmpfs /run/systemd
  mkdir -p /run/systemd/system /run/systemd/user-generators
  if [ -n "${UW_GENERATORS:-}" ]; then
    printf "%s\n" "$UW_GENERATORS" | while read -r g; do ln -s "$g" /run/systemd/user-generators/; done
  fi
  dbus-daemon --session --address="$DBUS_SESSION_BUS_ADDRESS" --fork --nopidfile >/dev/null
  /lib/systemd/systemd --user </dev/null &
  set +e
  while :; do wait; done' </dev/null >/dev/null 2>"$root/sandbox.log" &
unshare_pid=$!

init_pid=
cleanup() {
  [ -n "${UW_DEBUG:-}" ] && set -x
  set +e
  # Killing the PID namespace's init kills everything in it; unshare then reaps it and exits.
  if [ -n "$init_pid" ]; then kill -KILL "$init_pid" 2>/dev/null; else kill -KILL "$unshare_pid" 2>/dev/null; fi
  wait "$unshare_pid" 2>/dev/null
  # The kernel may need a moment to release the cgroups of processes that just died.
  for d in $UW_CGROUPS /sys/fs/cgroup/*/"$cg"; do
    n=0
    while [ -d "$d" ] && [ $n -lt 50 ]; do
      find "$d" -depth -type d -exec rmdir {} + 2>/dev/null
      n=$((n + 1)); [ -d "$d" ] && sleep 0.02
    done
  done
  rm -rf "$root"
}
trap cleanup EXIT INT TERM

i=0
while :; do
  [ "$(cat "/proc/$unshare_pid/comm" 2>/dev/null)" = unshare ] &&
    init_pid=$(cat "/proc/$unshare_pid/task/$unshare_pid/children" 2>/dev/null | tr -d ' ')
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
