#!/usr/bin/env bash
# Installs everything Vasco needs to build, run and test, skipping what is already there.
# Idempotent; safe to run before every dev or test run (a no-op run takes about a second).
#
#   rustup: the wasm32-unknown-unknown target, rustfmt and clippy
#   cargo:  wasm-bindgen-cli and worker-build at exactly the versions of the `wasm-bindgen` and
#           `worker` crates in Cargo.lock (--locked when the registry allows)
#   apt:    chromium (for the browser tests) and dnsutils (dig, for the DNS tests), each unless
#           it is there ($CHROMIUM_PATH, default /usr/bin/chromium; dig on PATH); only as root:
#           otherwise this stops and prints the command to run
#   prometheus: Debian 11's prometheus package (2.24.1), downloaded with apt-get download and
#           unpacked into .tools/prometheus/ (git-ignored; nothing installed system-wide, no
#           service, no root needed), for the Consul suite's consul_sd_configs test. Not Debian
#           12's package: its Prometheus 2.42 is built without Consul service discovery ("Disable
#           Consul SD until its Debian package is back in shape"; Consul has since left Debian),
#           so it rejects consul_sd_configs. The archive is this machine's own Debian mirror
#           (from its apt sources), with the suite bullseye, through a private apt configuration.
#   npm:    `npm ci` when node_modules is missing or package-lock.json changed since
#   python: a virtual environment in .venv/ with tests/requirements.txt (Schemathesis,
#           py-consul), when missing or the requirements changed (apt's python3-venv first,
#           when venv is missing)
#
# Environment: VASCO_SKIP_CHROMIUM=1 skips chromium; CHROMIUM_PATH names another Chromium;
# PROMETHEUS_PATH names another Prometheus (one with Consul service discovery) and skips the
# download.
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
apt_packages=()
if [ "${VASCO_SKIP_CHROMIUM:-0}" != 1 ] && [ ! -x "$chromium" ]; then apt_packages+=(chromium); fi
if ! command -v dig >/dev/null; then apt_packages+=(dnsutils); fi
if [ "${#apt_packages[@]}" -gt 0 ] && [ "$(id -u)" != 0 ]; then
  die "missing: ${apt_packages[*]} (chromium: the browser tests; dnsutils: dig, for the DNS tests). Install with
  sudo apt-get install -y --no-install-recommends ${apt_packages[*]}
or set CHROMIUM_PATH to a Chromium binary, or VASCO_SKIP_CHROMIUM=1 to go without the browser tests' browser."
fi

# Prometheus with Consul service discovery: Debian 11's package, unpacked into .tools/.
prometheus_deb_version=2.24.1+ds-1+b7
prometheus_dir=.tools/prometheus
prometheus=${PROMETHEUS_PATH:-$prometheus_dir/usr/bin/prometheus}
need_prometheus=0
if [ -n "${PROMETHEUS_PATH:-}" ]; then
  [ -x "$PROMETHEUS_PATH" ] || die "PROMETHEUS_PATH=$PROMETHEUS_PATH is not an executable"
elif [ ! -x "$prometheus" ] || [ "$(cat "$prometheus_dir/.deb-version" 2>/dev/null)" != "$prometheus_deb_version" ]; then
  command -v apt-get >/dev/null && command -v dpkg-deb >/dev/null \
    || die "no apt-get/dpkg-deb to fetch Prometheus with: set PROMETHEUS_PATH to a Prometheus built with Consul service discovery"
  need_prometheus=1
fi

# --- apt: chromium and dnsutils, in the background while the cargo installs run --------------
LOGDIR=$(mktemp -d)
apt_pid=""
npm_pid=""
prometheus_pid=""
cleanup() {
  # On an early exit, do not leave npm or the Prometheus download running in the background
  # (apt is left to finish: killing dpkg midway would hurt more).
  if [ -n "$npm_pid" ]; then kill "$npm_pid" 2>/dev/null || true; fi
  if [ -n "$prometheus_pid" ]; then kill "$prometheus_pid" 2>/dev/null || true; fi
  rm -rf "$LOGDIR"
}
trap cleanup EXIT
if [ "${#apt_packages[@]}" -gt 0 ]; then
  say "installing ${apt_packages[*]} with apt (log in background)"
  (
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q && apt-get install -y -q --no-install-recommends "${apt_packages[@]}"
  ) >"$LOGDIR/apt.log" 2>&1 &
  apt_pid=$!
fi

# --- Prometheus: apt-get download from bullseye through a private apt configuration ----------
# Only the package file is fetched (no install, no dpkg lock, no change to the machine's apt
# sources or lists), then unpacked with dpkg-deb; the binary needs nothing but libc.
fetch_prometheus() {
  local work mirror
  work=$(mktemp -d)
  # This machine's Debian archive: the URI of the suite without a -updates/-security suffix.
  mirror=$(apt-get indextargets --format '$(REPO_URI) $(RELEASE)' 'Identifier: Packages' 2>/dev/null \
    | awk '$2 !~ /-/ && $1 ~ /\/debian\/$/ { print $1; exit }')
  if [ -z "$mirror" ]; then
    echo "no Debian archive among this machine's apt sources (apt-get indextargets)"
    return 1
  fi
  mkdir -p "$work/lists/partial" "$work/cache/archives/partial" "$work/parts" "$work/prefs" "$work/deb"
  echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror bullseye main" >"$work/sources.list"
  local apt_opts=(
    -o Dir::Etc::SourceList="$work/sources.list" -o Dir::Etc::SourceParts="$work/parts"
    -o Dir::State::Lists="$work/lists" -o Dir::Cache="$work/cache"
    -o Dir::Etc::Preferences="$work/prefs/none" -o Dir::Etc::PreferencesParts="$work/prefs"
    -o APT::Sandbox::User="$(id -un)"
  )
  apt-get "${apt_opts[@]}" update -q \
    && (cd "$work/deb" && apt-get "${apt_opts[@]}" download "prometheus=$prometheus_deb_version") \
    && rm -rf "$prometheus_dir.new" \
    && dpkg-deb -x "$work"/deb/prometheus_*.deb "$prometheus_dir.new" \
    && "$prometheus_dir.new/usr/bin/prometheus" --version \
    && echo "$prometheus_deb_version" >"$prometheus_dir.new/.deb-version" \
    && rm -rf "$prometheus_dir" && mv "$prometheus_dir.new" "$prometheus_dir"
  local status=$?
  rm -rf "$work" "$prometheus_dir.new"
  return "$status"
}
if [ "$need_prometheus" = 1 ]; then
  say "fetching Debian's prometheus $prometheus_deb_version into $prometheus_dir (log in background)"
  mkdir -p .tools
  fetch_prometheus >"$LOGDIR/prometheus.log" 2>&1 &
  prometheus_pid=$!
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
or set CHROMIUM_PATH"
  fi
  say "${apt_packages[*]} installed"
fi
if [ -n "$prometheus_pid" ]; then
  if ! wait "$prometheus_pid"; then
    prometheus_pid=""
    tail -n 40 "$LOGDIR/prometheus.log" >&2
    die "fetching Debian 11's prometheus $prometheus_deb_version failed (log above): set PROMETHEUS_PATH to a
Prometheus built with Consul service discovery (upstream release builds are; Debian 12's is not)"
  fi
  prometheus_pid=""
  say "prometheus $prometheus_deb_version unpacked into $prometheus_dir"
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
say "ready: wasm-bindgen $bindgen_version, worker-build $worker_build_version, $(node_modules/.bin/wrangler --version 2>/dev/null | tail -n 1 | sed 's/^/wrangler /'), $(.venv/bin/schemathesis --version), py-consul $(.venv/bin/python -c 'import importlib.metadata as m; print(m.version("py-consul"))'), $("$prometheus" --version 2>/dev/null | head -n 1 | awk '{ print $1, $3 }')"
