//! # vasco-core
//!
//! The registry model and every decision Vasco makes, with no I/O of its own.
//!
//! * **Sans-IO**: nothing here reads a clock, a random source or the network. Callers pass
//!   `now` (milliseconds since the Unix epoch) and an [`Rng`]; the same code therefore runs
//!   natively, in a Cloudflare Worker, in Node and in a browser, and every test is
//!   deterministic.
//! * **no_std + alloc**: the `std` feature (on by default) only forwards to dependencies.
//!
//! The pieces, one module each: [`name`] and [`version`] validate what users type,
//! [`instance`] holds records and leases, [`health`] their health status (passing, warning,
//! critical, maintenance) and its damping, [`registry`] is the in-memory registry (used by the
//! `memory:` transport and the simulator) together with the live-instance query shared with the
//! Worker, [`resolve`] turns dependencies and mocks into endpoints, [`select`] picks one
//! instance, [`outlier`] ejects failing ones, [`codec`] is the Workers KV layout, and [`retry`] and [`cache`] are the
//! client's timing policies (heartbeat jitter, backoff, stale-if-error). The edge registry's
//! own state lives in [`service`] (one service's leases and change index, hosted by a Durable
//! Object), [`snapshot`] (the membership snapshots the edge reads from KV, and when to write
//! them) and [`blocking`] (blocking queries on the change index). [`wire`] holds the bodies of
//! the other API dialects the registry speaks (Consul's, lyft/discovery's for Envoy's v1 SDS,
//! and the DNS answers of `vasco agent`) and their mapping onto these types.
#![cfg_attr(not(feature = "std"), no_std)]

extern crate alloc;

pub mod acl;
pub mod blocking;
pub mod cache;
pub mod codec;
pub mod error;
pub mod health;
pub mod instance;
pub mod name;
pub mod outlier;
pub mod query;
pub mod registry;
pub mod resolve;
pub mod retry;
pub mod rng;
pub mod select;
pub mod service;
pub mod snapshot;
pub mod version;
pub mod wire;

pub use cache::{lease_serves, CachePolicy, Freshness, RegistryClock};
pub use error::{Error, Result};
pub use health::{Health, HealthUpdate, Status, StatusCounts, StatusFilter};
pub use instance::{heartbeat_period_ms, parse_tags, Instance, InstanceKey, InstanceSpec};

/// Milliseconds since the Unix epoch, always passed in by the caller (the core reads no clock).
pub type Millis = u64;
pub use name::{InstanceId, ServiceName};
pub use registry::{Catalog, Change, Query, Registry};
pub use resolve::{newest_version, pick_pool, Dependencies, Mocks, Resolution, Resolved};
pub use retry::{heartbeat_delay_ms, Backoff};
pub use rng::{Rng, SplitMix64};
pub use service::{ChangeEvent, Outcome, ServiceLeases};
pub use version::{Version, VersionReq};
