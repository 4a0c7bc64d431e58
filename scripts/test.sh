#!/usr/bin/env bash
# THE TEST COMMAND: runs every check and every test of the workspace, failing fast.
#
#   bash scripts/test.sh
#
# Steps (each timed): setup (installs what is missing), rustfmt, the module import-cycle check, clippy, the core's no_std
# build for wasm32, native cargo tests, the core's and vasco-wasm's tests compiled to wasm32 and run in Node by
# wasm-bindgen-test-runner, the Worker build, the wasm package builds
# (scripts/build-wasm.sh: the npm package and the page's www/pkg; the Worker's wasm-only code denies warnings, so its
# build doubles as the wasm32 lint), then `node --test` over every tests/**/*.test.mjs
# (the Worker suites start their own `wrangler dev`; see tests/support/wrangler.mjs).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
export CARGO_TERM_COLOR=${CARGO_TERM_COLOR:-never}
export WRANGLER_SEND_METRICS=false

TIMINGS=()
SUITE_START=$(date +%s)
now() { date +%s.%N; }

step() {
  local name=$1
  shift
  printf '\n==> %s\n' "$name"
  local start
  start=$(now)
  local status=0
  "$@" || status=$?
  local took
  took=$(awk -v a="$start" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }')
  TIMINGS+=("$(printf '%7ss  %s' "$took" "$name")")
  if [ "$status" -ne 0 ]; then
    printf '\n!!! FAILED: %s (exit %s, after %ss)\n' "$name" "$status" "$took" >&2
    summary >&2
    exit "$status"
  fi
  printf '<== %s: %ss\n' "$name" "$took"
}

summary() {
  printf '\nStep timings:\n'
  printf '%s\n' "${TIMINGS[@]}"
  printf '%7ss  total\n' "$(( $(date +%s) - SUITE_START ))"
}

node_tests() {
  local files=()
  while IFS= read -r file; do files+=("$file"); done < <(find tests -name '*.test.mjs' -not -path '*/node_modules/*' | sort)
  if [ "${#files[@]}" -eq 0 ]; then
    echo "no tests/**/*.test.mjs found" >&2
    return 1
  fi
  printf '%s\n' "${files[@]}"
  node --test "${files[@]}"
}

step "setup (install what is missing)" bash scripts/setup.sh
step "cargo fmt --check" cargo fmt --all --check
step "no import cycles between modules (scripts/check-cycles.py)" python3 scripts/check-cycles.py
step "cargo clippy (host, all targets)" cargo clippy --workspace --all-targets -- -D warnings
step "cargo clippy (wasm32: the Worker's and the package's wasm-only code)" \
  cargo clippy -p vasco-worker -p vasco-wasm --target wasm32-unknown-unknown -- -D warnings
docs() {
  # Native, and wasm32 for the Worker's and the package's wasm-only code (durable.rs, api.rs).
  RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --quiet &&
    RUSTDOCFLAGS="-D warnings" cargo doc -p vasco-worker -p vasco-wasm --no-deps --quiet \
      --target wasm32-unknown-unknown
}
step "cargo doc (warnings denied; native and wasm32)" docs
step "vasco-core no_std build for wasm32" cargo build -p vasco-core --no-default-features --target wasm32-unknown-unknown
step "cargo test --workspace (native)" cargo test --workspace
step "vasco-core and vasco-wasm tests on wasm32 (wasm-bindgen-test, Node)" \
  env CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=wasm-bindgen-test-runner \
  cargo test -p vasco-core -p vasco-wasm --target wasm32-unknown-unknown
step "build the Worker (worker-build)" bash scripts/build-worker.sh
step "build the npm package and the page's wasm (scripts/build-wasm.sh)" bash scripts/build-wasm.sh
step "node --test tests/**/*.test.mjs" node_tests

summary
echo "All checks and tests passed."
