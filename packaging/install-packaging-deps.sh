#!/usr/bin/env bash
# Installs what building the Debian and RPM packages needs on Debian 12 (run as root):
# `make deb` (dpkg-buildpackage, debhelper) and `make rpm` (rpmbuild). The tests do not need
# these. The Rust toolchain (rustc >= 1.80) comes from rustup, not from Debian.
set -euo pipefail
pkgs=(dpkg-dev debhelper fakeroot rpm pkg-config man-db make)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
