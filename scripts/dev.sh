#!/usr/bin/env bash
# THE MAIN COMMAND: the registry Worker under `wrangler dev` with local KV (on disk in
# .wrangler/state), serving the dashboard (www/) at the same address.
#
#   bash scripts/dev.sh                          # http://127.0.0.1:8787
#   PORT=9000 bash scripts/dev.sh
#   bash scripts/dev.sh --persist-to /tmp/kv     # extra arguments go to `wrangler dev`
#
# Checks first that the port is free, then installs what is missing (scripts/setup.sh; chromium
# is skipped, only tests need it), builds what changed (scripts/build.sh: the Worker and the
# page's wasm; wrangler runs it again on start and whenever a source under crates/*/src
# changes), and makes sure a write token exists: $VASCO_TOKEN if set, else the one in .dev.vars,
# else a new random one written to .dev.vars. The banner prints the `export` line that gives
# curl and Node clients the address and the token.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
# shellcheck source=scripts/lib.sh
source scripts/lib.sh
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
export WRANGLER_SEND_METRICS=false
# Do not download Request.cf sample data from the internet (wrangler warns and waits otherwise).
export CLOUDFLARE_CF_FETCH_ENABLED=false
PORT=${PORT:-8787}

die() { printf 'dev: %s\n' "$*" >&2; exit 1; }
command -v node >/dev/null || die "node not found: install Node.js 20 or newer"
status=0
port_free "$PORT" || status=$?
case $status in
  0) ;;
  2) die "PORT=$PORT is not a port number (1-65535)" ;;
  *) die "127.0.0.1:$PORT is already in use (another scripts/dev.sh?): stop that, or use another port: PORT=$((PORT + 1)) bash scripts/dev.sh" ;;
esac

VASCO_SKIP_CHROMIUM=1 bash scripts/setup.sh
bash scripts/build.sh

extra=()
if [ -n "${VASCO_TOKEN:-}" ]; then
  token=$VASCO_TOKEN
  from='$VASCO_TOKEN'
  extra+=(--var "VASCO_TOKEN:$token")
else
  token=""
  from=.dev.vars
  if [ -f .dev.vars ]; then
    token=$(sed -n 's/^VASCO_TOKEN *= *"\{0,1\}\([^"]*\)"\{0,1\} *$/\1/p' .dev.vars | tail -n 1)
  fi
  if [ -z "$token" ]; then
    token="dev-$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')"
    printf 'VASCO_TOKEN="%s"\n' "$token" >>.dev.vars
    echo "dev: wrote a new VASCO_TOKEN to .dev.vars"
  fi
fi

# The examples use the variables the export line sets, as the README's do.
cat <<BANNER

  Vasco registry:  http://127.0.0.1:$PORT      (dashboard at /, API under /v1, GET /health)
  Write token:     $token   (from $from)

  For curl and Node clients, run this in your shell:
    export VASCO_URL=http://127.0.0.1:$PORT VASCO_TOKEN=$token
  then try:
    curl -X PUT -H "Authorization: Bearer \$VASCO_TOKEN" \\
         -d '{"url":"127.0.0.1:3000","ttl":30}' "\$VASCO_URL/v1/services/api/1.0.0/instances/a1"
    curl "\$VASCO_URL/v1/services/api"

BANNER

# Reads are open locally (the dashboard and the curl examples need no token); a deployment
# keeps them closed unless its operator sets VASCO_PUBLIC_READS=true.
extra+=(--var "VASCO_PUBLIC_READS:${VASCO_PUBLIC_READS:-true}")
exec node_modules/.bin/wrangler dev --local --ip 127.0.0.1 --port "$PORT" "${extra[@]}" "$@"
