//! Membership snapshots in Workers KV: the edge read path.
//!
//! The Durable Object of a service is the truth; it writes one [`Snapshot`] of the service's
//! membership to KV (key [`snapshot_key`]) when membership changes, and the Worker answers
//! default reads with one KV `get` of it. KV propagates between locations in up to about 60 s,
//! so a snapshot may be that far behind on *membership*; it is never used to judge a member's
//! *liveness*: renewals do not write KV, so the `expires_at` recorded in a snapshot is old by
//! design. [`Snapshot::members`] therefore answers each member with its lease as seen from the
//! snapshot (`max(recorded expires_at, now + ttl)`): a member is live until a newer snapshot
//! says it left. A member that stops renewing is reaped by its object at its lease end, which
//! writes a new snapshot; other locations see it leave within KV's propagation bound.
//!
//! When to write is decided here too ([`SnapshotSchedule::due`]): at once for the first change
//! after a quiet second, otherwise coalesced to at most one write per [`MIN_INTERVAL_MS`] per
//! key (KV's limit on writes to one key), and refreshed every [`REFRESH_MS`] while the service
//! has members, so the KV TTL ([`KV_TTL_S`], garbage collection for services that are gone)
//! never collects a live service's snapshot.
//!
//! The registry-wide [`CatalogSnapshot`] (key [`CATALOG_KEY`]) lists every service with its
//! index and live counts per version; the catalog object writes it under the same schedule.
//!
//! ```
//! use vasco_core::snapshot::{Due, SnapshotSchedule, MIN_INTERVAL_MS};
//!
//! let mut schedule = SnapshotSchedule::default();
//! // Index 2 is not written yet: write now.
//! assert_eq!(schedule.due(2, true, 10_000), Due::Now);
//! schedule.written(2, 10_000);
//! // Another change 200 ms later waits for the one-write-a-second limit.
//! assert_eq!(schedule.due(3, true, 10_200), Due::At(10_000 + MIN_INTERVAL_MS));
//! assert_eq!(schedule.due(3, true, 11_000), Due::Now);
//! ```

use alloc::{format, string::String, vec::Vec};

use serde::{Deserialize, Serialize};

use crate::{
    error::{Error, Result},
    instance::{Instance, Millis},
    name::ServiceName,
    registry::CatalogVersion,
};

/// The KV key prefix of service snapshots.
pub const SNAPSHOT_PREFIX: &str = "snap/";
/// The KV key of the registry-wide catalog snapshot.
pub const CATALOG_KEY: &str = "catalog";
/// At most one snapshot write per key per this many ms (Workers KV allows one write per second
/// per key).
pub const MIN_INTERVAL_MS: Millis = 1_000;
/// A service with members rewrites its unchanged snapshot this often (30 min), so the KV TTL
/// never collects it.
pub const REFRESH_MS: Millis = 30 * 60 * 1_000;
/// The `expirationTtl` of snapshots, in seconds (2 h): garbage collection for services whose
/// object has stopped writing. Four times [`REFRESH_MS`], so a few failed refreshes in a row
/// still leave a live service readable.
pub const KV_TTL_S: u64 = 2 * 60 * 60;
/// Snapshot format written today; readers refuse others.
pub const FORMAT: u8 = 1;

/// The KV key of `service`'s snapshot: `snap/<name>`.
pub fn snapshot_key(service: &ServiceName) -> String {
    format!("{SNAPSHOT_PREFIX}{service}")
}

/// One service's membership as its object last wrote it.
///
/// Wire shape (KV value, JSON): `{"format": 1, "service": "api", "index": 7, "written_at": ms,
/// "instances": [Instance]}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    /// [`FORMAT`].
    pub format: u8,
    /// The service.
    pub service: ServiceName,
    /// The service's change index when written.
    pub index: u64,
    /// When it was written (ms since the epoch, the object's clock).
    pub written_at: Millis,
    /// The members live when written, newest version first, then by id.
    pub instances: Vec<Instance>,
}

impl Snapshot {
    /// A snapshot of `instances` (only those live at `now` are kept).
    pub fn new<'a>(
        service: ServiceName,
        index: u64,
        now: Millis,
        instances: impl IntoIterator<Item = &'a Instance>,
    ) -> Self {
        let mut instances: Vec<Instance> = instances
            .into_iter()
            .filter(|i| i.is_live(now))
            .cloned()
            .collect();
        instances.sort_by(|a, b| b.version.cmp(&a.version).then_with(|| a.id.cmp(&b.id)));
        Self {
            format: FORMAT,
            service,
            index,
            written_at: now,
            instances,
        }
    }

    /// The JSON written to KV.
    pub fn encode(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Parses what [`Snapshot::encode`] wrote. Errors: `Corrupt` (unreadable, other format, or
    /// written for another service than `service`).
    pub fn decode(service: &ServiceName, json: &str) -> Result<Self> {
        let key = snapshot_key(service);
        let snapshot: Snapshot = serde_json::from_str(json).map_err(|e| Error::Corrupt {
            key: key.clone(),
            reason: format!("{e}"),
        })?;
        if snapshot.format != FORMAT || snapshot.service != *service {
            return Err(Error::Corrupt {
                key,
                reason: format!(
                    "format {} of {:?}, expected format {FORMAT} of {:?}",
                    snapshot.format,
                    snapshot.service.as_str(),
                    service.as_str()
                ),
            });
        }
        Ok(snapshot)
    }

    /// The members as a default read answers them at `now`: each with `expires_at` raised to
    /// at least `now + ttl`, because renewals are not written to snapshots (see the module
    /// docs). A member leaves default reads when a newer snapshot no longer lists it.
    pub fn members(&self, now: Millis) -> Vec<Instance> {
        self.instances.iter().map(|i| as_member(i, now)).collect()
    }
}

/// `instance` as a member of a membership that is kept current by removals (a snapshot, or a
/// change feed, which sends no renewals): its lease seen as open until at least `now + ttl`,
/// because renewals since its record was sent are not known, and a member that stops renewing
/// is removed by its object rather than left to lapse.
pub fn as_member(instance: &Instance, now: Millis) -> Instance {
    Instance {
        expires_at: instance.expires_at.max(now.saturating_add(instance.ttl_ms)),
        ..instance.clone()
    }
}

/// What [`SnapshotSchedule::due`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Due {
    /// Write the snapshot now.
    Now,
    /// Write it at this time (ms); set an alarm.
    At(Millis),
    /// Nothing to write until the next change.
    Idle,
}

/// When a snapshot was last written and of which index; persisted beside the object's rows
/// so a retried alarm or a restarted object knows whether KV is behind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotSchedule {
    /// The index of the last snapshot written (0: none yet).
    pub written_index: u64,
    /// When it was written (0: never).
    pub written_at: Millis,
}

impl SnapshotSchedule {
    /// Whether and when to write a snapshot of `index` at `now`; `has_members` says whether the
    /// service has live members (an empty service's snapshot is written once, then left to
    /// the KV TTL).
    pub fn due(&self, index: u64, has_members: bool, now: Millis) -> Due {
        let earliest = if self.written_at == 0 {
            0
        } else {
            self.written_at.saturating_add(MIN_INTERVAL_MS)
        };
        let at = if self.written_index < index {
            earliest
        } else if has_members {
            self.written_at.saturating_add(REFRESH_MS).max(earliest)
        } else {
            return Due::Idle;
        };
        if now >= at {
            Due::Now
        } else {
            Due::At(at)
        }
    }

    /// Records a successful write of `index` at `now`.
    pub fn written(&mut self, index: u64, now: Millis) {
        self.written_index = self.written_index.max(index);
        self.written_at = now;
    }
}

/// One service in the [`CatalogSnapshot`]: what its object last reported.
///
/// Wire shape: `{"name": "api", "index": 7, "versions": [{"version": "2.1.0", "instances": 2}]}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceSummary {
    /// The service.
    pub name: ServiceName,
    /// Its change index when reported.
    pub index: u64,
    /// Live instance counts per version, newest first (empty: the service has no members).
    pub versions: Vec<CatalogVersion>,
    /// Every tag its live instances carry, sorted, once each (Consul's
    /// `/v1/catalog/services` lists them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
}

impl ServiceSummary {
    /// The summary of `instances` (those live at `now`) at `index`.
    pub fn of<'a>(
        name: ServiceName,
        index: u64,
        now: Millis,
        instances: impl IntoIterator<Item = &'a Instance>,
    ) -> Self {
        let instances: Vec<&Instance> = instances.into_iter().filter(|i| i.is_live(now)).collect();
        let tags: alloc::collections::BTreeSet<&String> =
            instances.iter().flat_map(|i| i.tags.iter()).collect();
        let catalog = crate::registry::catalog(instances, now);
        let versions = catalog
            .services
            .into_iter()
            .find(|s| s.name == name)
            .map(|s| s.versions)
            .unwrap_or_default();
        Self {
            name,
            index,
            versions,
            tags: tags.into_iter().cloned().collect(),
        }
    }
}

/// Every service with members, as the catalog object last wrote it to KV.
///
/// Wire shape: `{"format": 1, "written_at": ms, "services": [ServiceSummary]}`, by name.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CatalogSnapshot {
    /// [`FORMAT`].
    pub format: u8,
    /// When it was written.
    pub written_at: Millis,
    /// The catalog's change index when written ([`CatalogState::index`]; 0 in snapshots
    /// written before it was recorded).
    #[serde(default)]
    pub index: u64,
    /// Services by name, only those with members.
    pub services: Vec<ServiceSummary>,
}

impl CatalogSnapshot {
    /// Parses the catalog JSON. Errors: `Corrupt`.
    pub fn decode(json: &str) -> Result<Self> {
        let snapshot: CatalogSnapshot = serde_json::from_str(json).map_err(|e| Error::Corrupt {
            key: CATALOG_KEY.into(),
            reason: format!("{e}"),
        })?;
        if snapshot.format != FORMAT {
            return Err(Error::Corrupt {
                key: CATALOG_KEY.into(),
                reason: format!("format {} is not {FORMAT}", snapshot.format),
            });
        }
        Ok(snapshot)
    }

    /// The JSON written to KV.
    pub fn encode(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// The catalog in the API's shape (`GET /v1/services`).
    pub fn catalog(&self) -> crate::registry::Catalog {
        crate::registry::Catalog {
            services: self
                .services
                .iter()
                .filter(|s| !s.versions.is_empty())
                .map(|s| crate::registry::CatalogService {
                    name: s.name.clone(),
                    versions: s.versions.clone(),
                })
                .collect(),
        }
    }
}

/// The catalog object's state: the last summary of each service, newest index wins.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CatalogState {
    services: alloc::collections::BTreeMap<ServiceName, ServiceSummary>,
}

impl CatalogState {
    /// A state from stored summaries.
    pub fn restore(summaries: impl IntoIterator<Item = ServiceSummary>) -> Self {
        let mut state = Self::default();
        for summary in summaries {
            state.apply(summary);
        }
        state
    }

    /// Takes a service's report; one older than what is held (reports can arrive out of
    /// order) is ignored. Returns whether the catalog changed.
    pub fn apply(&mut self, summary: ServiceSummary) -> bool {
        match self.services.get(&summary.name) {
            Some(held) if held.index >= summary.index => false,
            _ => {
                self.services.insert(summary.name.clone(), summary);
                true
            }
        }
    }

    /// The summary held for `name`.
    pub fn get(&self, name: &ServiceName) -> Option<&ServiceSummary> {
        self.services.get(name)
    }

    /// Every summary, by name.
    pub fn summaries(&self) -> impl Iterator<Item = &ServiceSummary> {
        self.services.values()
    }

    /// The sum of every service's index: moves whenever any service's does, so it serves as
    /// the catalog's own change index.
    pub fn index(&self) -> u64 {
        self.services.values().map(|s| s.index).sum::<u64>().max(1)
    }

    /// The snapshot to write at `now` (services with members only).
    pub fn snapshot(&self, now: Millis) -> CatalogSnapshot {
        CatalogSnapshot {
            format: FORMAT,
            written_at: now,
            index: self.index(),
            services: self
                .services
                .values()
                .filter(|s| !s.versions.is_empty())
                .cloned()
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;
    use crate::instance::{InstanceKey, InstanceSpec};

    fn instance(id: &str, now: Millis, ttl_ms: u64) -> Instance {
        let spec = InstanceSpec {
            ttl_ms,
            ..InstanceSpec::new("h:1").unwrap()
        };
        Instance::lease(
            InstanceKey::parse("api", "1.0.0", id).unwrap(),
            spec,
            now,
            None,
        )
    }

    #[test]
    fn schedule_coalesces_to_one_write_a_second_and_refreshes() {
        let mut s = SnapshotSchedule::default();
        assert_eq!(s.due(1, false, 0), Due::Now);
        s.written(2, 5_000);
        assert_eq!(s.due(2, true, 5_001), Due::At(5_000 + REFRESH_MS));
        assert_eq!(s.due(2, false, 5_001), Due::Idle);
        assert_eq!(s.due(3, true, 5_500), Due::At(6_000));
        assert_eq!(s.due(3, false, 6_000), Due::Now);
        assert_eq!(s.due(2, true, 5_000 + REFRESH_MS), Due::Now);
        // A late report of an older index never moves the written index back.
        s.written(1, 7_000);
        assert_eq!(s.written_index, 2);
    }

    #[test]
    fn snapshot_round_trip_and_members_keep_their_lease_open() {
        let api = ServiceName::parse("api").unwrap();
        let a = instance("a", 0, 10_000);
        let gone = instance("b", 0, 1_000);
        let snap = Snapshot::new(api.clone(), 3, 5_000, [&a, &gone]);
        assert_eq!(snap.instances.len(), 1);
        let back = Snapshot::decode(&api, &snap.encode()).unwrap();
        assert_eq!(back, snap);
        // Read an hour later: still a member, with a lease seen as open for another ttl.
        let members = back.members(3_600_000);
        assert_eq!(members[0].expires_at, 3_610_000);
        let web = ServiceName::parse("web").unwrap();
        assert_eq!(
            Snapshot::decode(&web, &snap.encode()).unwrap_err().code(),
            "corrupt_record"
        );
        assert!(Snapshot::decode(&api, "{").is_err());
    }

    #[test]
    fn catalog_keeps_the_newest_report_per_service() {
        let api = ServiceName::parse("api").unwrap();
        let a = instance("a", 0, 10_000);
        let mut state = CatalogState::default();
        assert!(state.apply(ServiceSummary::of(api.clone(), 3, 1, [&a])));
        assert!(!state.apply(ServiceSummary::of(api.clone(), 2, 1, [])));
        assert_eq!(state.get(&api).unwrap().versions[0].instances, 1);
        assert!(state.apply(ServiceSummary::of(api.clone(), 4, 1, [])));
        assert!(state.snapshot(1).services.is_empty());
        let snap = CatalogSnapshot::decode(&state.snapshot(9).encode()).unwrap();
        assert_eq!(snap.written_at, 9);
    }
}
