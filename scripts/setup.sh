#!/usr/bin/env bash
# Installs everything Vasco needs to build, run and test, skipping what is already there.
# Idempotent; safe to run before every dev or test run (a no-op run takes about a second).
#
#   rustup: the wasm32-unknown-unknown target, rustfmt and clippy
#   cargo:  wasm-bindgen-cli and worker-build at exactly the versions of the `wasm-bindgen` and
#           `worker` crates in Cargo.lock (--locked when the registry allows)
#   apt:    chromium (for the browser tests), prometheus (Prometheus 2.42, whose consul_sd_configs
#           the Consul suite runs against the Worker) and dnsutils (dig, for the DNS tests), each
#           unless it is there ($CHROMIUM_PATH, default /usr/bin/chromium; $PROMETHEUS_PATH,
#           default /usr/bin/prometheus; dig on PATH); only as root: otherwise this stops and
#           prints the command to run. The Prometheus package's own service is never left
#           running: services are kept from starting during the install (policy-rc.d) and the
#           unit is disabled after it (the tests start their own Prometheus).
#   npm:    `npm ci` when node_modules is missing or package-lock.json changed since
#   python: a virtual environment in .venv/ with tests/requirements.txt (Schemathesis,
#           py-consul), when missing or the requirements changed (apt's python3-venv first,
#           when venv is missing)
#
# Environment: VASCO_SKIP_CHROMIUM=1 skips chromium; CHROMIUM_PATH names another Chromium;
# PROMETHEUS_PATH names another Prometheus binary.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
# shellcheck source=scripts/lib.sh
source scripts/lib.sh
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"

say() { printf 'setup: %s\n' "$*"; }
die() { printf 'setup: ERROR: %s\n' "$*" >&2; exit 1; }

command -v cargo >/dev/null || die "cargo not found: install Rust with rustup (https://rustup.rs)"
command -v rustup >/dev/null || die "rustup not found: install Rust with rustup (https://rustup.rs)"
command -v node >/dev/null || die "node not found: install Node.js 20 or newer"
command -v npm >/dev/null || die "npm not found: install Node.js 20 or newer"
node -e 'process.exit(+process.versions.node.split(".")[0] >= 20 ? 0 : 1)' \
  || die "Node.js $(node --version) is too old: 20 or newer is needed"

# The tool versions come from Cargo.lock, the one record of what the workspace builds with.
bindgen_version=$(crate_version wasm-bindgen) \
  || die "cannot read the wasm-bindgen version from Cargo.lock (cargo pkgid wasm-bindgen failed; is Cargo.lock there?)"
worker_build_version=$(crate_version worker) \
  || die "cannot read the worker crate's version from Cargo.lock (cargo pkgid worker failed; is Cargo.lock there?)"

# apt packages: installed here only as root; never through sudo behind the caller's back.
chromium=${CHROMIUM_PATH:-/usr/bin/chromium}
prometheus=${PROMETHEUS_PATH:-/usr/bin/prometheus}
apt_packages=()
if [ "${VASCO_SKIP_CHROMIUM:-0}" != 1 ] && [ ! -x "$chromium" ]; then apt_packages+=(chromium); fi
if [ ! -x "$prometheus" ]; then apt_packages+=(prometheus); fi
if ! command -v dig >/dev/null; then apt_packages+=(dnsutils); fi
if [ "${#apt_packages[@]}" -gt 0 ] && [ "$(id -u)" != 0 ]; then
  die "missing: ${apt_packages[*]} (chromium: the browser tests; prometheus: the Consul suite's
Prometheus at $prometheus; dnsutils: dig, for the DNS tests). Install them with
  sudo apt-get install -y --no-install-recommends ${apt_packages[*]}
then stop and disable the service the prometheus package starts (the tests start their own):
  sudo systemctl disable --now prometheus
or set CHROMIUM_PATH / PROMETHEUS_PATH to binaries you have, or VASCO_SKIP_CHROMIUM=1 to go without the browser tests' browser."
fi

# --- apt: chromium, prometheus, dnsutils, in the background while the cargo installs run ------
LOGDIR=$(mktemp -d)
apt_pid=""
npm_pid=""
cleanup() {
  # On an early exit, do not leave npm running in the background (apt is left to finish:
  # killing dpkg midway would hurt more).
  if [ -n "$npm_pid" ]; then kill "$npm_pid" 2>/dev/null || true; fi
  rm -rf "$LOGDIR"
}
trap cleanup EXIT
# Debian starts a package's service on install (prometheus: a system Prometheus on :9090); keep it
# from starting with a policy-rc.d that denies every start (only when the machine has none; a
# container's usual one already denies), and disable the unit afterwards, booted with systemd or not.
apt_install() {
  local policy=/usr/sbin/policy-rc.d own_policy=0 status=0
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\n# written by vasco scripts/setup.sh for one apt-get install\nexit 101\n' >"$policy"
    chmod 755 "$policy"
    own_policy=1
  fi
  export DEBIAN_FRONTEND=noninteractive
  { apt-get update -q && apt-get install -y -q --no-install-recommends "$@"; } || status=$?
  if [ "$own_policy" = 1 ]; then rm -f "$policy"; fi
  if [ "$status" = 0 ] && [[ " $* " == *" prometheus "* ]]; then
    if [ -d /run/systemd/system ]; then
      systemctl disable --now prometheus.service || status=$?
    else
      # Removes the rc?.d start links and, through systemctl, the systemd wants link.
      update-rc.d prometheus disable || status=$?
    fi
  fi
  return "$status"
}
if [ "${#apt_packages[@]}" -gt 0 ]; then
  say "installing ${apt_packages[*]} with apt (log in background)"
  apt_install "${apt_packages[@]}" >"$LOGDIR/apt.log" 2>&1 &
  apt_pid=$!
fi

# --- npm ci, also in the background ----------------------------------------------------------
lock_hash=$(sha256sum package-lock.json | cut -d' ' -f1)
marker=node_modules/.vasco-lock-hash
if [ ! -d node_modules ] || [ ! -f "$marker" ] || [ "$(cat "$marker")" != "$lock_hash" ]; then
  say "npm ci (node_modules missing or package-lock.json changed)"
  (npm ci --no-audit --no-fund && echo "$lock_hash" >"$marker") >"$LOGDIR/npm.log" 2>&1 &
  npm_pid=$!
fi

# --- rustup ----------------------------------------------------------------------------------
if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  say "adding the wasm32-unknown-unknown target"
  rustup target add wasm32-unknown-unknown
fi
for component in rustfmt clippy; do
  if ! rustup component list --installed | grep -q "^$component"; then
    say "adding the $component component"
    rustup component add "$component"
  fi
done

# --- cargo tools -----------------------------------------------------------------------------
# `cargo install --locked` first (the tool's own lockfile); if the registry this machine reaches
# lacks one of those exact versions (seen: wasm-bindgen-cli 0.2.130 locks webpki-roots 1.0.11),
# fall back to the newest compatible versions.
cargo_install() {
  local crate=$1 version=$2
  if ! cargo install "$crate" --version "$version" --locked --force; then
    say "cargo install --locked $crate $version failed; retrying without --locked"
    cargo install "$crate" --version "$version" --force
  fi
}
installed_bindgen=$(wasm-bindgen --version 2>/dev/null | awk '{print $2}' || true)
if [ "$installed_bindgen" != "$bindgen_version" ] || ! command -v wasm-bindgen-test-runner >/dev/null; then
  say "installing wasm-bindgen-cli $bindgen_version (found: ${installed_bindgen:-none}); takes a few minutes"
  cargo_install wasm-bindgen-cli "$bindgen_version"
fi

installed_wb=$(worker-build --version 2>/dev/null || true)
if [ "$installed_wb" != "$worker_build_version" ]; then
  say "installing worker-build $worker_build_version (found: ${installed_wb:-none}); takes a few minutes"
  cargo_install worker-build "$worker_build_version"
fi

# --- wait for the background installs --------------------------------------------------------
if [ -n "$npm_pid" ]; then
  if ! wait "$npm_pid"; then
    npm_pid=""
    cat "$LOGDIR/npm.log" >&2
    die "npm ci failed (log above)"
  fi
  npm_pid=""
  say "npm packages installed"
fi
if [ -n "$apt_pid" ]; then
  if ! wait "$apt_pid"; then
    tail -n 40 "$LOGDIR/apt.log" >&2
    die "apt-get install ${apt_packages[*]} failed (log above): install them yourself
  apt-get install -y --no-install-recommends ${apt_packages[*]}
(then, if prometheus was among them: systemctl disable --now prometheus), or set CHROMIUM_PATH / PROMETHEUS_PATH"
  fi
  say "${apt_packages[*]} installed"
fi

# --- python: .venv with tests/requirements.txt (Schemathesis, py-consul) -----------------------
# After the apt install, so the two apt-gets never race for the dpkg lock.
venv_req=tests/requirements.txt
venv_marker=.venv/.vasco-requirements-hash
venv_hash=$(sha256sum "$venv_req" | cut -d' ' -f1)
if [ ! -x .venv/bin/schemathesis ] || [ "$(cat "$venv_marker" 2>/dev/null)" != "$venv_hash" ]; then
  command -v python3 >/dev/null || die "python3 not found: install Python 3.9 or newer"
  if ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
    venv_sudo=""
    if [ "$(id -u)" != 0 ]; then
      command -v sudo >/dev/null || die "python3-venv is missing and neither root nor sudo is available"
      venv_sudo="sudo"
    fi
    say "installing python3-venv with apt"
    $venv_sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends python3-venv \
      || { $venv_sudo apt-get update -q && $venv_sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends python3-venv; } \
      || die "apt-get install python3-venv failed"
  fi
  say "installing $(grep -v '^#' "$venv_req" | tr '\n' ' ')into .venv"
  python3 -m venv .venv
  .venv/bin/pip install --quiet --disable-pip-version-check -r "$venv_req"
  echo "$venv_hash" >"$venv_marker"
fi

[ -x node_modules/.bin/wrangler ] || die "node_modules/.bin/wrangler missing after npm ci"
[ -x node_modules/.bin/wasm-opt ] || die "node_modules/.bin/wasm-opt (npm binaryen) missing after npm ci"
say "ready: wasm-bindgen $bindgen_version, worker-build $worker_build_version, $(node_modules/.bin/wrangler --version 2>/dev/null | tail -n 1 | sed 's/^/wrangler /'), $(.venv/bin/schemathesis --version), py-consul $(.venv/bin/python -c 'import importlib.metadata as m; print(m.version("py-consul"))'), $("$prometheus" --version 2>/dev/null | head -n 1 | awk '{print $1, $3}')"
