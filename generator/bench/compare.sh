#!/bin/sh
# Side-by-side benchmark of unitwright-generator against podman's Quadlet.
#   usage: generator/bench/compare.sh OURS REFERENCE [N...] [--runs R] [--no-valgrind]
#              [--ref-name quadlet-5.8.6]
# e.g.   UNITWRIGHT_PODMAN_VERSION=5.4.2 generator/bench/compare.sh \
#            target/release/unitwright-generator "$(../shared/tools/reference-quadlet)" 1 100 1000
#        UNITWRIGHT_PODMAN_VERSION=5.8.6 generator/bench/compare.sh \
#            target/release/unitwright-generator "$(../shared/tools/reference-quadlet 5.8)" \
#            --ref-name quadlet-5.8.6 1 1000
# UNITWRIGHT_PODMAN_VERSION (passed to ours only) makes ours write the reference's units; without
# it ours writes for the installed podman (auto).
# Sizes default to 1 100 1000. Wall time and CPU time (user+sys, from wait4(2)) over alternating
# runs, each into a fresh empty tmpfs directory; peak RSS from /usr/bin/time; user-space
# instruction counts from valgrind's cachegrind. Needs python3 (standard library only); valgrind
# and time (Debian packages of those names) are optional.
# See compare.py for the corpus and the method.
# Two builds of ours can be compared the same way (the labels then read ours/quadlet-5.4.2).
# A static build starts faster (no dynamic loader; about 30% less CPU for one unit):
#   RUSTFLAGS="-C target-feature=+crt-static" cargo build --release -p unitwright-generator \
#       --target x86_64-unknown-linux-gnu
exec python3 "$(dirname "$0")/compare.py" "$@"
