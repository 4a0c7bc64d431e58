#!/usr/bin/env bash
# Builds the Worker (crates/vasco-worker) into build/ with worker-build 0.8.7, using only local
# tools: worker-build would otherwise download wasm-bindgen, wasm-opt and esbuild.
#   build/index.js + build/index_bg.wasm   (wrangler.toml's `main` is build/index.js)
#
# wrangler.toml runs this as its [build] command, so `wrangler dev` and `wrangler deploy`
# rebuild on their own. Environment:
#   VASCO_SKIP_BUILD=1   use the existing build/ as is (tests start many wranglers; they build
#                        once in scripts/test.sh); fails if there is no build yet.
#   VASCO_FORCE_BUILD=1  rebuild even when build/ is newer than every source file.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
OUT="$ROOT/build"
WASM="$OUT/index_bg.wasm"

if [ "${VASCO_SKIP_BUILD:-0}" = 1 ]; then
  if [ -f "$OUT/index.js" ] && [ -f "$WASM" ]; then
    echo "build-worker: VASCO_SKIP_BUILD=1, using the existing build/"
    exit 0
  fi
  echo "build-worker: VASCO_SKIP_BUILD=1 but build/ is missing; run scripts/build-worker.sh first" >&2
  exit 1
fi

if [ "${VASCO_FORCE_BUILD:-0}" != 1 ] && [ -f "$OUT/index.js" ] && [ -f "$WASM" ]; then
  newer=$(find crates/vasco-worker crates/vasco-core Cargo.toml Cargo.lock scripts/build-worker.sh \
    -newer "$WASM" -type f 2>/dev/null | head -n 1 || true)
  if [ -z "$newer" ]; then
    echo "build-worker: build/ is up to date"
    exit 0
  fi
fi

export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
need() {
  if [ ! -x "$2" ]; then
    echo "build-worker: $1 not found at $2; run scripts/setup.sh" >&2
    exit 1
  fi
}
WASM_BINDGEN_BIN=${WASM_BINDGEN_BIN:-$(command -v wasm-bindgen || echo missing-wasm-bindgen)}
ESBUILD_BIN=${ESBUILD_BIN:-$ROOT/node_modules/.bin/esbuild}
WASM_OPT_BIN=${WASM_OPT_BIN:-$ROOT/node_modules/.bin/wasm-opt}
need wasm-bindgen "$WASM_BINDGEN_BIN"
need esbuild "$ESBUILD_BIN"
need wasm-opt "$WASM_OPT_BIN"
command -v worker-build >/dev/null || { echo "build-worker: worker-build not installed; run scripts/setup.sh" >&2; exit 1; }
export WASM_BINDGEN_BIN ESBUILD_BIN WASM_OPT_BIN

# --out-dir is relative to the crate: ../../build is the workspace's build/.
worker-build --release crates/vasco-worker --out-dir ../../build
# worker-build also leaves build/worker/shim.mjs (a re-export of index.js) for old configs.
size=$(wc -c < "$WASM")
echo "build-worker: $WASM is $size bytes ($(( size / 1024 )) KiB)"
