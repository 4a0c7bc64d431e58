#!/usr/bin/env bash
# Builds the npm package `vasco` (crates/vasco-wasm/pkg) and the web build for the page (www/pkg).
#
#   scripts/build-wasm.sh          release build, wasm-opt -Oz when node_modules/.bin/wasm-opt exists
#   scripts/build-wasm.sh --pack   also runs `npm pack` into build/ (prints the tarball path)
#
# Needs: rustup target wasm32-unknown-unknown, wasm-bindgen-cli matching the workspace's
# wasm-bindgen (=0.2.130), Node >= 20 (for --pack).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

crate=crates/vasco-wasm
pkg="$crate/pkg"
web=www/pkg
wasm=target/wasm32-unknown-unknown/release/vasco_wasm.wasm

want="$(sed -n 's/^wasm-bindgen = "=\(.*\)"/\1/p' Cargo.toml)"
have="$(wasm-bindgen --version 2>/dev/null | awk '{print $2}')" || true
if [[ -z "$have" ]]; then
  echo "build-wasm: wasm-bindgen not found; install it with: cargo install wasm-bindgen-cli --version $want" >&2
  exit 1
fi
if [[ -n "$want" && "$have" != "$want" ]]; then
  echo "build-wasm: wasm-bindgen $have installed but the workspace pins $want;" \
       "install it with: cargo install wasm-bindgen-cli --version $want" >&2
  exit 1
fi

echo "build-wasm: cargo build (release, wasm32-unknown-unknown)" >&2
cargo build --quiet --release --target wasm32-unknown-unknown -p vasco-wasm

rm -rf "$pkg" "$web"
mkdir -p "$pkg/wasm" "$web"
wasm-bindgen --target nodejs --out-dir "$pkg/wasm" --out-name vasco_wasm "$wasm"
wasm-bindgen --target web --out-dir "$web" --out-name vasco_wasm "$wasm"

opt="$root/node_modules/.bin/wasm-opt"
if [[ -x "$opt" ]]; then
  for file in "$pkg/wasm/vasco_wasm_bg.wasm" "$web/vasco_wasm_bg.wasm"; do
    "$opt" -Oz --enable-bulk-memory --enable-nontrapping-float-to-int --enable-sign-ext \
      --enable-reference-types --enable-multivalue --enable-mutable-globals \
      "$file" -o "$file.opt"
    mv "$file.opt" "$file"
  done
else
  echo "build-wasm: node_modules/.bin/wasm-opt not found (npm install); skipping wasm-opt" >&2
fi

# The package: the JavaScript layer, its types, README and package.json around the wasm.
cp "$crate"/js/index.cjs "$crate"/js/index.mjs "$crate"/js/feed.cjs "$crate"/js/lease.cjs "$pkg/"
# One source of types: CommonJS gets it without the ESM default export.
sed '/^\/\/ @esm-only/,$d' "$crate"/js/index.d.ts > "$pkg/index.d.cts"
grep -v '^// @esm-only' "$crate"/js/index.d.ts > "$pkg/index.d.mts"
cp "$crate"/README.md "$pkg/README.md"
version="$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1)"
sed "s/\"version\": \"0.0.0\"/\"version\": \"$version\"/" "$crate/js/package.json" > "$pkg/package.json"
# wasm-bindgen's own package.json / .gitignore are not part of ours.
rm -f "$pkg/wasm/package.json" "$pkg/wasm/.gitignore" "$web/package.json" "$web/.gitignore"

size="$(wc -c < "$pkg/wasm/vasco_wasm_bg.wasm")"
echo "build-wasm: $pkg ($((size / 1024)) KiB wasm), $web" >&2

if [[ "${1:-}" == "--pack" ]]; then
  mkdir -p build
  (cd "$pkg" && npm pack --silent --pack-destination "$root/build") | tail -n1 | sed "s|^|$root/build/|"
fi
