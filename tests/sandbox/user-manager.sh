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
#   SANDBOX_RUN                a command prefix running a program inside the namespaces
# The manager inherits the caller's environment. UW_GENERATORS (newline-separated absolute
# paths) are installed as user generators before it starts (they run at its start).
# UW_JOURNAL=1 adds a real systemd-journald that records the manager's units as on a booted
# host (_SYSTEMD_USER_UNIT=, invocation IDs; memory and tasks accounted): see "With a
# journal" in tests/support/mod.rs, which this follows step by step. Its files are in
# $SANDBOX_JOURNAL (journalctl -D), and at /run/log/journal for programs run with SANDBOX_RUN.
# Same design as tests/support/mod.rs (UserManager). Needs root (for the namespaces).
set -eu
[ $# -ge 1 ] || { echo "usage: $0 COMMAND [ARGS...]" >&2; exit 2; }

# On tmpfs (as /run/user/UID is on a real system) when there is one.
base=/dev/shm; [ -d "$base" ] || base=${TMPDIR:-/tmp}
root=$(mktemp -d "$base/unitwright-user-sh.XXXXXX")
export XDG_RUNTIME_DIR="$root/run"
export DBUS_SESSION_BUS_ADDRESS="unix:path=$XDG_RUNTIME_DIR/bus"
mkdir -p "$XDG_RUNTIME_DIR/systemd/user" "$root/home" "$root/config/systemd"
journal=${UW_JOURNAL:-}
mkdir -p "$root/log"
export SANDBOX_JOURNAL="$root/log/journal"
if [ -z "$journal" ]; then
  # No journald here: send units' output to /dev/null rather than have every spawned process
  # warn on /dev/console that the journal socket is missing (same as tests/support/mod.rs).
  printf '[Manager]\nDefaultStandardOutput=null\n' > "$root/config/systemd/user.conf"
fi
chmod 700 "$XDG_RUNTIME_DIR"

# A cgroup of its own below ours (name=systemd and unified, or the cgroup2 tree), so that
# its units do not share cgroups with those of other sandboxes running at the same time.
cg=$(basename "$root")
UW_CGROUPS=
UW_HIERARCHIES=
while IFS=: read -r _ ctl path; do
  case "$ctl" in
    name=systemd) base=/sys/fs/cgroup/systemd ;;
    "") if [ -f /sys/fs/cgroup/cgroup.procs ]; then base=/sys/fs/cgroup; else base=/sys/fs/cgroup/unified; fi ;;
    memory|pids|cpu|cpuacct) [ -n "$journal" ] && [ -d "/sys/fs/cgroup/$ctl" ] || continue; base=/sys/fs/cgroup/$ctl ;;
    *) continue ;;
  esac
  # Only a mounted hierarchy (a container may lack one, e.g. podman's cgroup v1 has no unified).
  [ -f "$base/cgroup.procs" ] || continue
  # Without a cgroup namespace, a container shows the host's path but has its own cgroup
  # mounted as the root of the hierarchy.
  [ -d "$base$path" ] || path=/
  UW_CGROUPS="$UW_CGROUPS $base${path%/}/$cg"
  UW_HIERARCHIES="$UW_HIERARCHIES ${base#/sys/fs/cgroup/}"
done </proc/self/cgroup
[ -f /sys/fs/cgroup/cgroup.procs ] && UW_HIERARCHIES=cgroup2
export UW_CGROUPS UW_HIERARCHIES UW_LOG_DIR="$root/log"

plain_script='
  set -e
  mkdir -p /run/systemd   # a container may have none (its /run is bare)
  mount -t tmpfs tmpfs /run/systemd
  mkdir -p /run/systemd/system /run/systemd/user-generators
  if [ -n "${UW_GENERATORS:-}" ]; then
    printf "%s\n" "$UW_GENERATORS" | while read -r g; do ln -s "$g" /run/systemd/user-generators/; done
  fi
  dbus-daemon --session --address="$DBUS_SESSION_BUS_ADDRESS" --fork --nopidfile >/dev/null
  /lib/systemd/systemd --user </dev/null &
  set +e
  while :; do wait; done'

# The same steps as JOURNAL_SCRIPT in tests/support/mod.rs.
journal_script='
  set -e
  mkdir -p /run/systemd   # a container may have none (its /run is bare)
  mount -t tmpfs tmpfs /run/systemd
  mkdir -p /run/systemd/system /run/systemd/user-generators /run/systemd/journal /run/systemd/units /run/systemd/journald.conf.d
  if [ -n "${UW_GENERATORS:-}" ]; then
    printf "%s\n" "$UW_GENERATORS" | while read -r g; do ln -s "$g" /run/systemd/user-generators/; done
  fi
  printf "[Journal]\nStorage=volatile\nReadKMsg=no\nRateLimitBurst=0\n" > /run/systemd/journald.conf.d/sandbox.conf
  mkdir -p /run/log /run/user
  mount --bind "$UW_LOG_DIR" /run/log
  mount -t tmpfs -o mode=755 tmpfs /run/user
  mkdir -p "/run/user/$(id -u)"
  mount --bind "$XDG_RUNTIME_DIR" "/run/user/$(id -u)"
  if [ "$UW_HIERARCHIES" = cgroup2 ]; then
    mount -t cgroup2 cgroup2 /sys/fs/cgroup
    hierarchies=/sys/fs/cgroup
  else
    mount -t tmpfs cgroup /sys/fs/cgroup
    hierarchies=
    for h in $UW_HIERARCHIES; do
      mkdir -p /sys/fs/cgroup/$h
      case $h in
        systemd) mount -t cgroup -o none,name=systemd cgroup /sys/fs/cgroup/systemd ;;
        unified) mount -t cgroup2 cgroup2 /sys/fs/cgroup/unified ;;
        *) mount -t cgroup -o "$h" cgroup /sys/fs/cgroup/$h ;;
      esac
      hierarchies="$hierarchies /sys/fs/cgroup/$h"
    done
  fi
  uid=$(id -u)
  in_cgroup='"'"'for h in $UW_MOUNTED; do mkdir -p "$h/$0"; echo $$ > "$h/$0/cgroup.procs"; done; exec "$@"'"'"'
  export UW_MOUNTED="$hierarchies"
  for h in $hierarchies; do mkdir -p "$h/init.scope"; echo $$ > "$h/init.scope/cgroup.procs"; done
  sh -c "$in_cgroup" system.slice/systemd-journald.service /lib/systemd/systemd-journald </dev/null &
  i=0; while [ ! -S /run/systemd/journal/stdout ] && [ $i -lt 1000 ]; do sleep 0.01; i=$((i+1)); done
  id=$(tr -d - < /proc/sys/kernel/random/uuid)
  ln -s "$id" "/run/systemd/units/invocation:user@$uid.service"
  dbus-daemon --session --address="$DBUS_SESSION_BUS_ADDRESS" --fork --nopidfile >/dev/null
  SYSTEMD_LOG_TARGET=journal INVOCATION_ID=$id sh -c "$in_cgroup" "user.slice/user-$uid.slice/user@$uid.service" /lib/systemd/systemd --user </dev/null &
  set +e
  while :; do wait; done'
if [ -n "$journal" ]; then script=$journal_script; cgroupns=--cgroup; else script=$plain_script; cgroupns=; fi

HOME="$root/home" XDG_CONFIG_HOME="$root/config" \
sh -c 'for d in $UW_CGROUPS; do mkdir -p "$d" 2>/dev/null && echo $$ > "$d/cgroup.procs" 2>/dev/null; done; exec "$@"' sh \
unshare --mount --pid $cgroupns --fork --kill-child --propagation private --mount-proc sh -c "$script" </dev/null >/dev/null 2>"$root/sandbox.log" &
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
nsenter="nsenter -t $manager_pid -m -p${journal:+ -C}"
export SANDBOX_SYSTEMCTL="$nsenter -- systemctl --user"
export SANDBOX_RUN="$nsenter --"

"$@"
