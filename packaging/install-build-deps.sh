#!/usr/bin/env bash
# Installs what building and testing unitwright needs on Debian 12 (run as root).
# systemd and dbus-daemon give the tests a real user manager on a real bus; podman, runc and
# busybox-static give them real containers (podman 4.3.1, no registry: a local busybox image).
# openssh-server is only run by the tests, inside a private namespace; the package's own service
# is not needed (policy-rc.d or the missing init keep it from starting).
set -euo pipefail
pkgs=(
  systemd dbus dbus-user-session util-linux
  podman runc uidmap slirp4netns busybox-static
  catatonit     # tests/kube_e2e.rs: podman kube play builds its pod infra (pause) image from it, no registry
  pkg-config
  openssh-client openssh-server   # tests/remote.rs: unitwright -H against a real sshd in a namespace
  python3-venv shellcheck         # ansible/: ansible-core from PyPI in a venv; ansible-test sanity
  make man-db   # tests/install.rs: make install, man -l renders the pages
  g++           # fuzz/run-all.sh (CI): libfuzzer-sys builds libFuzzer from C++ source
  strace        # tests/cli.rs: each stderr line is one write(2)
  zsh fish      # tests/cli_ops.rs: the generated zsh and fish completions load and complete
  mmdebstrap    # tests/container.rs: a Debian image for podman from Debian's packages (no registry)
)
. "$(dirname "$0")/apt-install-missing.sh"
apt_install_missing "${pkgs[@]}"
