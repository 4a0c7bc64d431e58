# Sourced by the other scripts (not run on its own): the facts they share, each read from its
# one source, and the checks they share.
#
#   crate_version NAME   the version of crate NAME that Cargo.lock records (or of a workspace
#                        member), via `cargo pkgid`: e.g. wasm-bindgen (the wasm-bindgen-cli to
#                        install), worker (the worker-build to install), vasco-wasm (the npm
#                        package's version)
#   port_free PORT       whether 127.0.0.1:PORT can be listened on (exit 0), is taken (1), or
#                        PORT is not a port number (2)

crate_version() {
  local spec
  # `cargo pkgid` reads Cargo.lock: `registry+https://...#wasm-bindgen@0.2.130`, or
  # `path+file:///.../crates/vasco-wasm#0.1.0` for a workspace member. No network, no build.
  spec=$(cargo pkgid --quiet "$1" 2>/dev/null) || return 1
  printf '%s\n' "${spec##*[#@:]}"
}

port_free() {
  node -e '
    const port = Number(process.argv[1]);
    if (!Number.isInteger(port) || port < 1 || port > 65535) process.exit(2);
    const server = require("node:net").createServer();
    server.once("error", () => process.exit(1));
    server.listen(port, "127.0.0.1", () => server.close(() => process.exit(0)));
  ' "$1"
}
