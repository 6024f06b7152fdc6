#!/bin/sh
# Benchmark of the D-Bus client: in-process start/stop latency, and one
# `unitwright --user start` of 100 template instances against 100 `systemctl --user start`
# calls, all against one real systemd --user in a sandbox (needs root). Prints the ratios.
#
#   bench/bus.sh
set -eu
cd "$(dirname "$0")/.."
cargo build --release --quiet --bin unitwright --example bus_bench
target_dir=${CARGO_TARGET_DIR:-target}
exec "$target_dir/release/examples/bus_bench" "$target_dir/release/unitwright"
