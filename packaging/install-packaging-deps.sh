#!/usr/bin/env bash
# Installs what building the Debian and RPM packages needs on Debian 12 (run as root):
# `make deb` (dpkg-buildpackage, debhelper) and `make rpm` (rpmbuild). The tests do not need
# these. The Rust toolchain (rustc >= 1.80) comes from rustup, not from Debian.
set -euo pipefail
pkgs=(dpkg-dev debhelper fakeroot rpm pkg-config man-db make)
. "$(dirname "$0")/apt-install-missing.sh"
apt_install_missing "${pkgs[@]}"
