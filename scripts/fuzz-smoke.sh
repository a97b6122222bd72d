#!/usr/bin/env bash
# Runs every fuzz target of fuzz/ for SECONDS each (default 10; CI's smoke run), after
# installing cargo-fuzz from crates.io when it is missing. The stable toolchain builds the
# targets with RUSTC_BOOTSTRAP=1 (cargo-fuzz needs the sanitizer flags of nightly).
# Prints each target's runs; fails on the first crash, leak or timeout (the input is kept
# under fuzz/artifacts/TARGET/).
#   scripts/fuzz-smoke.sh [SECONDS] [TARGET...]
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
seconds="${1:-10}"
shift || true
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "installing cargo-fuzz (crates.io)"
  cargo install cargo-fuzz --locked
fi
export RUSTC_BOOTSTRAP=1
if [ $# -gt 0 ]; then targets=("$@"); else mapfile -t targets < <(cargo fuzz list); fi
echo "building ${#targets[@]} fuzz targets"
cargo fuzz build
for target in "${targets[@]}"; do
  log="$(mktemp)"
  if ! cargo fuzz run "$target" -- -max_total_time="$seconds" -max_len=65536 -timeout=10 >"$log" 2>&1; then
    tail -n 40 "$log" >&2
    echo "fuzz target $target FAILED" >&2
    exit 1
  fi
  runs="$(grep -o 'Done [0-9]* runs in [0-9]* second' "$log" | tail -n 1 || true)"
  echo "$target: ${runs:-no summary} (no crash)"
  rm -f "$log"
done
