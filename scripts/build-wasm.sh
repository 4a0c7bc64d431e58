#!/usr/bin/env bash
# Builds vasco-wasm (crates/vasco-wasm) twice over: the npm package `vasco` (Node, into
# crates/vasco-wasm/pkg) and the web build the page loads (into www/pkg). Each output is
# rebuilt only when a source changed since it was built.
#
#   bash scripts/build-wasm.sh          both, wasm-opt -Oz'd
#   bash scripts/build-wasm.sh --web    only www/pkg (what scripts/dev.sh and wrangler's [build]
#                                       need; crates/ is left alone)
#   bash scripts/build-wasm.sh --pack   both, then `npm pack` into build/ (prints the tarball path)
#
# Environment:
#   VASCO_SKIP_BUILD=1   build nothing (tests start many wranglers, whose [build] runs this);
#                        says so when an output is missing
#   VASCO_FORCE_BUILD=1  rebuild even when the outputs are newer than every source
#   VASCO_WEB_OUT=DIR    where the web build goes instead of www/pkg
#
# Needs (scripts/setup.sh installs them): the wasm32-unknown-unknown target, wasm-bindgen-cli at
# the wasm-bindgen version in Cargo.lock, node_modules/.bin/wasm-opt, Node >= 20.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
# shellcheck source=scripts/lib.sh
source scripts/lib.sh
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"

web_only=0 pack=0
for arg in "$@"; do
  case "$arg" in
    --web) web_only=1 ;;
    --pack) pack=1 ;;
    *) echo "build-wasm: unknown argument $arg (use --web or --pack)" >&2; exit 2 ;;
  esac
done
if [[ $web_only == 1 && $pack == 1 ]]; then
  echo "build-wasm: --pack needs the npm package, which --web leaves out" >&2
  exit 2
fi

crate=crates/vasco-wasm
pkg="$crate/pkg"
web="${VASCO_WEB_OUT:-www/pkg}"
wasm=target/wasm32-unknown-unknown/release/vasco_wasm.wasm
stamps=target/vasco-build-stamps
mkdir -p "$stamps"
# One stamp per output directory, written last, so an interrupted build is not taken as done.
stamp_of() { printf '%s/%s' "$stamps" "$(printf '%s' "$1" | tr -c 'A-Za-z0-9._-' '_')"; }

# Whether output directory $1 (holding file $2) was built after every source changed.
fresh() {
  local stamp
  stamp=$(stamp_of "$1")
  [[ "${VASCO_FORCE_BUILD:-0}" != 1 && -f "$stamp" && -f "$1/$2" ]] || return 1
  [[ -z "$(find "$crate" crates/vasco-core Cargo.toml Cargo.lock scripts/build-wasm.sh scripts/lib.sh \
    -path "$pkg" -prune -o -type f -newer "$stamp" -print 2>/dev/null | head -n 1)" ]]
}

want_npm=$((1 - web_only))
if fresh "$web" vasco_wasm_bg.wasm; then want_web=0; else want_web=1; fi
if [[ $want_npm == 1 ]] && fresh "$pkg" wasm/vasco_wasm_bg.wasm; then want_npm=0; fi

if [[ "${VASCO_SKIP_BUILD:-0}" == 1 ]]; then
  [[ $want_web == 1 && ! -f "$web/vasco_wasm.js" ]] &&
    echo "build-wasm: VASCO_SKIP_BUILD=1, so $web is not built; the page's simulator needs it: run bash scripts/build-wasm.sh --web" >&2
  exit 0
fi

if [[ $want_web == 0 && $want_npm == 0 ]]; then
  echo "build-wasm: $web$([[ $web_only == 1 ]] || echo " and $pkg") up to date" >&2
else
  want="$(crate_version wasm-bindgen)" || {
    echo "build-wasm: cannot read the wasm-bindgen version from Cargo.lock (cargo pkgid wasm-bindgen failed)" >&2
    exit 1
  }
  have="$(wasm-bindgen --version 2>/dev/null | awk '{print $2}')" || true
  if [[ "$have" != "$want" ]]; then
    echo "build-wasm: wasm-bindgen ${have:-not found}, but Cargo.lock has $want: run bash scripts/setup.sh" >&2
    exit 1
  fi
  opt="$root/node_modules/.bin/wasm-opt"
  if [[ ! -x "$opt" ]]; then
    echo "build-wasm: $opt not found: run bash scripts/setup.sh" >&2
    exit 1
  fi
  optimize() {
    "$opt" -Oz --enable-bulk-memory --enable-nontrapping-float-to-int --enable-sign-ext \
      --enable-reference-types --enable-multivalue --enable-mutable-globals "$1" -o "$1.opt"
    mv "$1.opt" "$1"
  }
  # Starts output directory $1 afresh (its stamp dropped) with the wasm bound for wasm-bindgen's
  # --target $2 in $1$3, wasm-opt'd; wasm-bindgen's own package.json / .gitignore left out.
  bindgen_into() {
    local out="$1" target="$2" dir="$1$3"
    rm -rf "$out" "$(stamp_of "$out")"
    mkdir -p "$dir"
    wasm-bindgen --target "$target" --out-dir "$dir" --out-name vasco_wasm "$wasm"
    optimize "$dir/vasco_wasm_bg.wasm"
    rm -f "$dir/package.json" "$dir/.gitignore"
  }
  # Stamps output directory $1 as built and says so, with the size of its wasm $1/$2.
  built() {
    touch "$(stamp_of "$1")"
    echo "build-wasm: $1 ($(($(wc -c < "$1/$2") / 1024)) KiB wasm)" >&2
  }

  echo "build-wasm: cargo build (release, wasm32-unknown-unknown)" >&2
  cargo build --quiet --release --target wasm32-unknown-unknown -p vasco-wasm

  if [[ $want_web == 1 ]]; then
    bindgen_into "$web" web ""
    built "$web" vasco_wasm_bg.wasm
  fi

  if [[ $want_npm == 1 ]]; then
    bindgen_into "$pkg" nodejs /wasm
    # The package: the JavaScript layer, its types, README and package.json around the wasm.
    cp "$crate"/js/index.cjs "$crate"/js/index.mjs "$crate"/js/feed.cjs "$crate"/js/lease.cjs "$pkg/"
    # `vasco agent`: the sidecar (js/agent/) and the command (js/bin/).
    cp -r "$crate"/js/agent "$crate"/js/bin "$pkg/"
    # One source of types: CommonJS gets it without the ESM default export.
    sed '/^\/\/ @esm-only/,$d' "$crate"/js/index.d.ts > "$pkg/index.d.cts"
    grep -v '^// @esm-only' "$crate"/js/index.d.ts > "$pkg/index.d.mts"
    cp "$crate"/README.md "$pkg/README.md"
    # The version is the crate's (Cargo.toml's workspace version); js/package.json has the rest.
    version="$(crate_version vasco-wasm)"
    node -e '
      const fs = require("node:fs");
      const [from, to, version] = process.argv.slice(1);
      const manifest = JSON.parse(fs.readFileSync(from, "utf8"));
      fs.writeFileSync(to, JSON.stringify({ ...manifest, version }, null, 2) + "\n");
    ' "$crate/js/package.json" "$pkg/package.json" "$version"
    built "$pkg" wasm/vasco_wasm_bg.wasm
  fi
fi

if [[ $pack == 1 ]]; then
  mkdir -p build
  (cd "$pkg" && npm pack --silent --pack-destination "$root/build") | tail -n1 | sed "s|^|$root/build/|"
fi
