#!/bin/sh
# Side-by-side benchmark of unitwright-generator against podman's Quadlet.
#   usage: generator/bench/compare.sh OURS REFERENCE [N...] [--runs R] [--no-callgrind]
# e.g.   generator/bench/compare.sh target/release/unitwright-generator \
#            /usr/libexec/podman/quadlet 1 100 1000
# Sizes default to 1 100 1000. Wall time, CPU time (user+sys) and peak RSS come from wait4(2)
# over alternating runs, each into a fresh empty tmpfs directory; user-space instruction counts
# come from valgrind's callgrind when it is installed. Needs python3 (standard library only).
# See compare.py for the corpus and the method.
exec python3 "$(dirname "$0")/compare.py" "$@"
