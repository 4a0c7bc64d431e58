//! Which live instances of one service a caller wants ([`Query`]), and the one order every
//! reader answers them in ([`live_matching`], [`live_all`]). Used by the registry, resolution,
//! the Worker and the npm client alike; it depends on nothing but names, versions and
//! instances, so neither the registry nor resolution imports the other for it.

use alloc::{string::String, vec::Vec};

use crate::{
    health::StatusFilter,
    instance::{Instance, Millis},
    version::VersionReq,
};

/// Which live instances of one service a caller wants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    /// Versions accepted.
    pub version: VersionReq,
    /// Tags an instance must all carry.
    pub tags: Vec<String>,
    /// The zone an instance must be in, if set.
    pub zone: Option<String>,
    /// The health statuses listed: passing and warning unless asked otherwise (`?passing`,
    /// `?status=`, `?all`; see [`crate::health`]).
    pub statuses: StatusFilter,
}

impl Query {
    /// Every live instance that selection may use (passing or warning), whatever its version,
    /// tags or zone.
    pub fn any() -> Self {
        Self {
            version: VersionReq::any(),
            tags: Vec::new(),
            zone: None,
            statuses: StatusFilter::DEFAULT,
        }
    }

    /// Live instances whose version matches `version`.
    pub fn version(version: VersionReq) -> Self {
        Self {
            version,
            ..Self::any()
        }
    }

    /// Whether `instance` passes this query at `now`.
    pub fn accepts(&self, instance: &Instance, now: Millis) -> bool {
        instance.is_live(now)
            && self.statuses.contains(instance.health.status)
            && self.version.matches(&instance.version)
            && self.tags.iter().all(|tag| instance.tags.contains(tag))
            && self
                .zone
                .as_ref()
                .is_none_or(|zone| instance.zone.as_ref() == Some(zone))
    }
}

/// The instances that pass `query` at `now`, newest version first, then by id, so every
/// reader sees the same order.
pub fn live_matching<'a>(
    instances: impl IntoIterator<Item = &'a Instance>,
    query: &Query,
    now: Millis,
) -> Vec<&'a Instance> {
    let mut live: Vec<&Instance> = instances
        .into_iter()
        .filter(|instance| query.accepts(instance, now))
        .collect();
    live.sort_by(|a, b| b.version.cmp(&a.version).then_with(|| a.id.cmp(&b.id)));
    live
}

/// Every instance live at `now`, by service name, then newest version first, then by id: the
/// whole registry in one answer, for dashboards that would otherwise ask service by service.
pub fn live_all<'a>(
    instances: impl IntoIterator<Item = &'a Instance>,
    now: Millis,
) -> Vec<&'a Instance> {
    let mut live: Vec<&Instance> = instances.into_iter().filter(|i| i.is_live(now)).collect();
    live.sort_by(|a, b| {
        a.service
            .cmp(&b.service)
            .then_with(|| b.version.cmp(&a.version))
            .then_with(|| a.id.cmp(&b.id))
    });
    live
}
