#!/usr/bin/env bash
# Runs the fuzz targets for a bounded time each (CI calls this from .ci/run).
#
#   fuzz/run-all.sh [TARGET...]        # default: every target in fuzz/Cargo.toml
#   FUZZ_SECONDS=300 fuzz/run-all.sh unit_parse
#
# Installs cargo-fuzz (pinned) from crates.io when it is missing. No nightly toolchain can be
# installed here, so the stable one builds the sanitizer flags with RUSTC_BOOTSTRAP=1. A target
# that crashes fails the run; libFuzzer leaves the input in fuzz/artifacts/<target>/.
set -euo pipefail
cd "$(dirname "$0")"
seconds=${FUZZ_SECONDS:-10}
cargo_fuzz_version=0.13.1

if ! cargo fuzz --version >/dev/null 2>&1; then
  cargo install --locked --version "$cargo_fuzz_version" cargo-fuzz
fi
export RUSTC_BOOTSTRAP=1

if [ $# -gt 0 ]; then
  targets=("$@")
else
  mapfile -t targets < <(cargo fuzz list)
fi
# The fuzz workspace has its own Cargo.lock (committed, like the main one): cargo fuzz has no
# --locked, so check it here; when the main crate gains a dependency, `cargo update -w` in fuzz/.
cargo metadata --locked --format-version 1 >/dev/null
# One build of every target first; the runs then reuse it.
cargo fuzz build
log=$(mktemp)
# Scratch space for targets that write files (instance_settings), removed afterwards.
UNITWRIGHT_FUZZ_DIR=$(mktemp -d "$(test -d /dev/shm && echo /dev/shm || echo "${TMPDIR:-/tmp}")/unitwright-fuzz-XXXXXX")
export UNITWRIGHT_FUZZ_DIR
trap 'rm -f "$log"; rm -rf "$UNITWRIGHT_FUZZ_DIR"' EXIT
for t in "${targets[@]}"; do
  if ! cargo fuzz run "$t" -- -max_total_time="$seconds" -rss_limit_mb=2048 \
      -print_final_stats=1 >"$log" 2>&1; then
    tail -n 60 "$log" >&2
    echo "fuzz: $t FAILED; the input is in fuzz/artifacts/$t/" >&2
    exit 1
  fi
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
  echo "fuzz: $t: ${runs:-?} inputs in ${seconds} s, no failure"
done
echo "fuzz: ${#targets[@]} targets, ${seconds} s each, no failure"
