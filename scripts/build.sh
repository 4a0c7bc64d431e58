#!/usr/bin/env bash
# wrangler.toml's [build] command, so `wrangler dev` and `wrangler deploy` both run it: the
# Worker (scripts/build-worker.sh, into build/) and the page's wasm (scripts/build-wasm.sh --web,
# into www/pkg, which [assets] uploads with the rest of www/). Each is rebuilt only when its
# sources changed; VASCO_SKIP_BUILD=1 builds neither (see those scripts).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bash "$ROOT/scripts/build-worker.sh"
bash "$ROOT/scripts/build-wasm.sh" --web
