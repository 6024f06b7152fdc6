#!/bin/sh
# Benchmark of -H: one `unitwright -H HOST start` of 100 units against 100 `systemctl -H HOST
# start` calls (and the same for stop), on the sandboxed remote host of tests/remote.rs (real
# sshd and systemd in private namespaces; needs root). Prints medians and the ratios.
#
#   bench/remote.sh
set -eu
cd "$(dirname "$0")/.."
cargo build --release --quiet --bin unitwright --example remote_bench
target_dir=${CARGO_TARGET_DIR:-target}
exec "$target_dir/release/examples/remote_bench" "$target_dir/release/unitwright"
