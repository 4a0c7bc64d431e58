#!/usr/bin/env bash
# THE MAIN COMMAND: the registry Worker under `wrangler dev` with local KV (on disk in
# .wrangler/state), serving the dashboard (www/) at the same address.
#
#   bash scripts/dev.sh            # http://127.0.0.1:8787
#   PORT=9000 bash scripts/dev.sh
#
# Installs what is missing first (scripts/setup.sh; chromium is skipped, only tests need it),
# builds the web wasm package when scripts/build-wasm.sh exists, builds the Worker, and makes
# sure a write token exists: $VASCO_TOKEN if set, else the one in .dev.vars, else a new random
# one written to .dev.vars. wrangler rebuilds the Worker when crates/ change.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
export WRANGLER_SEND_METRICS=false
# Do not download Request.cf sample data from the internet (wrangler warns and waits otherwise).
export CLOUDFLARE_CF_FETCH_ENABLED=false
PORT=${PORT:-8787}

VASCO_SKIP_CHROMIUM=1 bash scripts/setup.sh
if [ -f scripts/build-wasm.sh ]; then
  bash scripts/build-wasm.sh
fi
bash scripts/build-worker.sh

extra=()
if [ -n "${VASCO_TOKEN:-}" ]; then
  token=$VASCO_TOKEN
  extra+=(--var "VASCO_TOKEN:$token")
else
  token=""
  if [ -f .dev.vars ]; then
    token=$(sed -n 's/^VASCO_TOKEN *= *"\{0,1\}\([^"]*\)"\{0,1\} *$/\1/p' .dev.vars | tail -n 1)
  fi
  if [ -z "$token" ]; then
    token="dev-$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')"
    printf 'VASCO_TOKEN="%s"\n' "$token" >>.dev.vars
    echo "dev: wrote a new VASCO_TOKEN to .dev.vars"
  fi
fi

cat <<BANNER

  Vasco registry:  http://127.0.0.1:$PORT      (dashboard at /, API under /v1, GET /health)
  Write token:     $token
  Try:
    curl -X PUT -H 'Authorization: Bearer $token' \\
         -d '{"url":"127.0.0.1:3000","ttl":30}' http://127.0.0.1:$PORT/v1/services/api/1.0.0/instances/a1
    curl http://127.0.0.1:$PORT/v1/services/api
  Node clients: VASCO_URL=http://127.0.0.1:$PORT VASCO_TOKEN=$token

BANNER

exec node_modules/.bin/wrangler dev --local --ip 127.0.0.1 --port "$PORT" "${extra[@]}"
