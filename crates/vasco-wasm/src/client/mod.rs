//! The registry client's logic, free of I/O: where the registry is, what a registration
//! says, how long a cached answer stays good, which instance a pick returns, when to beat and
//! when to retry. `lib.rs` drives it with real time, randomness and fetches; every decision
//! about names, versions, leases, resolution, selection and ejection is the core's.
//!
//! The cache holds one [`Slot`] per distinct question (`instances of api matching ^2 tagged
//! canary`, or `what does api ^2 resolve to`). The core's [`CachePolicy`] says how long an
//! answer is fresh and when a use of it should start a background refresh, so a steadily used
//! answer never goes stale. When a refresh fails because the registry is unreachable, the last
//! good answer keeps being served (stale-if-error) and the next attempt waits with the core's
//! [`Backoff`].
//!
//! An answer never outlives the first lease in it: its instances' `expires_at` are on the
//! registry's clock, which the core's [`RegistryClock`] maps to a local deadline, and the
//! core's [`CachePolicy::freshness_until`] ends the answer's life there (refreshing it ahead).
//!
//! One request per distinct question is in flight: a slot being fetched (in the foreground or
//! in the background) answers [`Lookup::Wait`], and the caller waits for that fetch instead of
//! sending its own.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};
use vasco_core::{
    health::{Damping, REASON_LEN},
    outlier::{OutlierConfig, OutlierDetector},
    select::{Candidate, Selector, SelectorConfig, Strategy},
    Backoff, CachePolicy, Dependencies, Freshness, HealthUpdate, Instance, InstanceId, InstanceKey,
    InstanceSpec, Millis, Mocks, Query, RegistryClock, Resolution, Rng, ServiceName, Status,
    StatusFilter, Version, VersionReq,
};

use crate::error::{Error, Result};

mod cache;
mod endpoint;
mod options;
mod outliers;
mod plan;
mod registration;

pub use cache::*;
pub use endpoint::*;
pub use options::*;
pub use outliers::*;
pub use plan::*;
pub use registration::*;

#[cfg(test)]
mod tests;
