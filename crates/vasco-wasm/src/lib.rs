//! # vasco-wasm
//!
//! The npm package `vasco`, compiled from Rust to wasm: a client for the Vasco registry (the
//! Cloudflare Worker over HTTP, or an in-process registry with `VASCO_URL=memory:`), plus the
//! building blocks the dashboard's simulator runs in the browser.
//!
//! This crate adapts; it decides nothing of its own. Names, versions, leases, resolution,
//! selection, outlier ejection, cache freshness and backoff are all `vasco-core`'s. Here:
//!
//! * [`client`]: the client's state (cache slots, pickers, the outlier detector) and the
//!   parsing of what users pass in (`VASCO_URL`, package.json, options), free of I/O and
//!   tested natively;
//! * [`transport`]: each registry call as an HTTP request and answer, or as a direct call on
//!   the in-process registry;
//! * [`feed`]: the rules of the change feed (a service's membership kept from its events) and
//!   of WebSocket leases (what to do after each reply);
//! * [`agent`]: the state of `vasco agent`, the local sidecar (Consul agent API, checks, DNS);
//! * [`error`]: the crate's error type, which becomes a JavaScript `Error` with a `code`;
//! * the `#[wasm_bindgen]` classes `Client`, `Registration` (used by the package's JavaScript
//!   layer, which owns timers, signals and the callback API) and `Registry`, `Selector` and a
//!   few functions for the page (documented in `WEB_API.md`).
//!
//! Time and randomness enter only here, at the edge: `Date.now()` and `crypto.getRandomValues`
//! (through getrandom), seeding the core's `SplitMix64`.

pub mod agent;
pub mod client;
pub mod error;
pub mod feed;
pub mod transport;

mod api;
mod convert;
mod types;
mod web;

pub use api::{strategy_uses_key, Client, HealthUpdateHandle, Registration};
pub use web::{
    heartbeat_period, key_movement, newest_version, normalize_version, pick_pool, service_name,
    status_selectable, statuses, strategies, version_matches, Backoff, Registry, Selector,
};
