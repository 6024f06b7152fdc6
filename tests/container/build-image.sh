#!/usr/bin/env bash
# Builds a Debian bookworm image for running `unitwright sandbox` inside `podman run`, from
# Debian's packages only (no registry), and imports it into podman's local storage.
#
#   tests/container/build-image.sh            # prints the image name, e.g. localhost/uw-img-bookworm:1a2b3c4d5e6f
#
# The image has systemd (with /sbin/init, so it can also boot as a systemd container), dbus and
# util-linux: what the sandbox needs, nothing of unitwright. The unitwright binary is bind-mounted
# at run time (`-v target/debug/unitwright:/usr/local/bin/unitwright:ro`), so a rebuild of the
# project never rebuilds the image.
#
# Cached: the tag is a hash of this script, so the image is built again only when the script
# changes (or the image was removed). UW_IMG_REBUILD=1 forces a build. Building takes a few
# minutes (README, "Testing your units in CI"); mmdebstrap (packaging/install-build-deps.sh)
# fetches the packages from the apt sources this machine uses (/etc/apt/sources.list.d/debian.sources
# when present, else Debian's default mirrors; UW_IMG_MIRROR overrides).
#
# Runs as root (mmdebstrap's root mode; podman's root storage). Status on stderr, the image
# name alone on stdout. tests/container/run.sh runs a command in it.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
tag=$(sha256sum "$here/build-image.sh" | cut -c1-12)
image=localhost/uw-img-bookworm:$tag

# Tests may call this in parallel: one builds, the others wait for it and find the image.
exec 9>/var/tmp/uw-img-build.lock
flock 9
if [ -z "${UW_IMG_REBUILD:-}" ] && podman image exists "$image"; then
  echo "$image"
  exit 0
fi
command -v mmdebstrap >/dev/null || {
  echo "$0: mmdebstrap is not installed (packaging/install-build-deps.sh installs it)" >&2
  exit 1
}

mirrors=()
if [ -n "${UW_IMG_MIRROR:-}" ]; then
  mirrors=("$UW_IMG_MIRROR")
elif [ -f /etc/apt/sources.list.d/debian.sources ]; then
  mirrors=(/etc/apt/sources.list.d/debian.sources)
fi

work=$(mktemp -d /var/tmp/uw-img-build.XXXXXX)
trap 'rm -rf "$work"' EXIT
start=$(date +%s)
# minbase: Essential and apt; systemd-sysv gives /sbin/init; dbus the dbus-daemon the sandbox
# starts; dbus-user-session the user units dbus.socket/dbus.service, without which `systemd --user`
# never joins its session bus (its name then fails to activate: "exited with status 1"); procps
# for looking at processes in tests (ps, pgrep).
# shellcheck disable=SC2016 # the hooks' $1 is mmdebstrap's, not ours
mmdebstrap --quiet --variant=minbase \
  --include=systemd,systemd-sysv,dbus,dbus-user-session,procps \
  --customize-hook='rm -f "$1"/etc/machine-id "$1"/var/lib/dbus/machine-id; : > "$1"/etc/machine-id' \
  --customize-hook='rm -rf "$1"/var/cache/apt/* "$1"/var/lib/apt/lists/*' \
  bookworm "$work/rootfs.tar" "${mirrors[@]}" >&2
podman import --quiet \
  --change 'CMD ["/bin/bash"]' \
  --change 'ENV container=podman' \
  "$work/rootfs.tar" "$image" >/dev/null
echo "$0: built $image in $(( $(date +%s) - start )) s" >&2
# Older builds of this script are stale: remove them.
for old in $(podman images --format '{{.Repository}}:{{.Tag}}'); do
  case "$old" in localhost/uw-img-bookworm:"$tag") ;; localhost/uw-img-bookworm:*) podman rmi "$old" >/dev/null 2>&1 || true ;; esac
done
echo "$image"
