//! The registry: which instances are live, and the catalog over them.
//!
//! [`live_matching`] (from [`crate::query`]) and [`catalog`] are the read path shared by
//! everyone: the Worker runs them over the members of its snapshots and objects, [`Registry`]
//! over its own map. [`Registry`] is the
//! in-memory registry behind the npm package's `memory:` mode and the page's simulator.

use alloc::{boxed::Box, collections::BTreeMap, vec::Vec};

use serde::{Deserialize, Serialize};

pub use crate::query::{live_all, live_matching, Query};
use crate::{
    error::{Error, Result},
    health::{HealthUpdate, Status, StatusCounts},
    instance::{Instance, InstanceKey, InstanceSpec, Millis},
    name::{InstanceId, ServiceName},
    resolve::{self, Dependencies, Mocks, Resolution},
    version::Version,
};

/// Every service with its versions and their live instance counts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Catalog {
    /// Services by name.
    pub services: Vec<CatalogService>,
}

/// One service in the [`Catalog`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CatalogService {
    /// Its name.
    pub name: ServiceName,
    /// Its versions with live instances, newest first.
    pub versions: Vec<CatalogVersion>,
}

/// One version in the [`Catalog`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CatalogVersion {
    /// The version.
    pub version: Version,
    /// How many live instances run it.
    pub instances: usize,
    /// Those instances by health status.
    #[serde(default)]
    pub statuses: StatusCounts,
}

/// Builds the catalog of the instances live at `now`; services sorted by name.
pub fn catalog<'a>(instances: impl IntoIterator<Item = &'a Instance>, now: Millis) -> Catalog {
    let mut counts: BTreeMap<&ServiceName, BTreeMap<&Version, StatusCounts>> = BTreeMap::new();
    for instance in instances.into_iter().filter(|i| i.is_live(now)) {
        counts
            .entry(&instance.service)
            .or_default()
            .entry(&instance.version)
            .or_default()
            .add(instance.health.status);
    }
    Catalog {
        services: counts
            .into_iter()
            .map(|(name, versions)| CatalogService {
                name: name.clone(),
                versions: versions
                    .into_iter()
                    .rev()
                    .map(|(version, statuses)| CatalogVersion {
                        version: version.clone(),
                        instances: Status::ALL.iter().map(|&s| statuses.get(s)).sum(),
                        statuses,
                    })
                    .collect(),
            })
            .collect(),
    }
}

/// A change to the set of live instances, for watchers (as in tower's `discover`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// An instance was registered or its record replaced.
    Insert(Box<Instance>),
    /// An instance was deregistered or its lease lapsed.
    Remove(InstanceKey),
}

/// The registry's records: by service, then by version and id.
type Services = BTreeMap<ServiceName, BTreeMap<(Version, InstanceId), Instance>>;

/// An in-memory registry. Expired instances are dropped lazily by [`Registry::expire`] and
/// never returned by queries in between.
#[derive(Debug, Clone, Default)]
pub struct Registry {
    services: Services,
    changes: Vec<Change>,
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers `key`, or replaces its record and renews its lease if it exists (an upsert,
    /// which is also what a heartbeat-by-registration does).
    pub fn register(
        &mut self,
        key: InstanceKey,
        spec: InstanceSpec,
        now: Millis,
    ) -> Result<&Instance> {
        spec.validate()?;
        let slot = (key.version.clone(), key.id.clone());
        let versions = self.services.entry(key.service.clone()).or_default();
        let instance = Instance::lease(key, spec, now, versions.get(&slot));
        self.changes
            .push(Change::Insert(Box::new(instance.clone())));
        versions.insert(slot.clone(), instance);
        Ok(&versions[&slot])
    }

    /// Renews the lease of a live instance. A lapsed or unknown one is `NotFound`: the caller
    /// must register again (its record may have been collected meanwhile).
    pub fn heartbeat(&mut self, key: &InstanceKey, now: Millis) -> Result<&Instance> {
        let instance = live_mut(&mut self.services, key, now)?;
        *instance = instance.renewed(now);
        Ok(instance)
    }

    /// Applies a health update (a status set or a check result, see [`crate::health`]) to a
    /// live instance without renewing its lease. A change readers can see (status, reason,
    /// by) is recorded as [`Change::Insert`] of the new record; a damped result that only
    /// advances a counter is stored without one. Returns the record and whether it changed.
    ///
    /// Errors: `NotFound` when the instance is unknown or its lease has lapsed.
    pub fn set_health(
        &mut self,
        key: &InstanceKey,
        update: &HealthUpdate,
        now: Millis,
    ) -> Result<(&Instance, bool)> {
        let instance = live_mut(&mut self.services, key, now)?;
        let changed = instance.health.apply(update, now);
        if changed {
            self.changes
                .push(Change::Insert(Box::new(instance.clone())));
        }
        Ok((instance, changed))
    }

    /// Removes an instance. Unknown (or already lapsed) instances are `NotFound`.
    pub fn deregister(&mut self, key: &InstanceKey, now: Millis) -> Result<Instance> {
        let slot = (key.version.clone(), key.id.clone());
        let versions = self
            .services
            .get_mut(&key.service)
            .ok_or_else(|| not_found(key))?;
        let removed = versions.remove(&slot).ok_or_else(|| not_found(key))?;
        if versions.is_empty() {
            self.services.remove(&key.service);
        }
        self.changes.push(Change::Remove(removed.key()));
        if removed.is_live(now) {
            Ok(removed)
        } else {
            Err(not_found(key))
        }
    }

    /// Drops every instance whose lease has lapsed at `now`; returns how many.
    pub fn expire(&mut self, now: Millis) -> usize {
        let mut removed = 0;
        for versions in self.services.values_mut() {
            versions.retain(|_, instance| {
                let live = instance.is_live(now);
                if !live {
                    self.changes.push(Change::Remove(instance.key()));
                    removed += 1;
                }
                live
            });
        }
        self.services.retain(|_, versions| !versions.is_empty());
        removed
    }

    /// The live instances of `service` that pass `query`, newest version first.
    pub fn instances(&self, service: &ServiceName, query: &Query, now: Millis) -> Vec<&Instance> {
        match self.services.get(service) {
            Some(versions) => live_matching(versions.values(), query, now),
            None => Vec::new(),
        }
    }

    /// Every record held, live or not (lapsed ones stay until [`Registry::expire`]).
    pub fn all(&self) -> impl Iterator<Item = &Instance> {
        self.services
            .values()
            .flat_map(|versions| versions.values())
    }

    /// The catalog of live services.
    pub fn catalog(&self, now: Millis) -> Catalog {
        catalog(self.all(), now)
    }

    /// Resolves dependencies against this registry (see [`resolve::resolve`]).
    pub fn resolve(&self, dependencies: &Dependencies, mocks: &Mocks, now: Millis) -> Resolution {
        resolve::resolve(dependencies, mocks, now, |name| {
            self.services
                .get(name)
                .into_iter()
                .flat_map(|versions| versions.values())
        })
    }

    /// The changes since the last call, oldest first.
    pub fn take_changes(&mut self) -> Vec<Change> {
        core::mem::take(&mut self.changes)
    }
}

/// The record of `key` if it is live at `now`; `NotFound` when unknown or lapsed. A function
/// of the map rather than a method, so that callers may still push to `changes` meanwhile.
fn live_mut<'a>(
    services: &'a mut Services,
    key: &InstanceKey,
    now: Millis,
) -> Result<&'a mut Instance> {
    let slot = (key.version.clone(), key.id.clone());
    services
        .get_mut(&key.service)
        .and_then(|versions| versions.get_mut(&slot))
        .filter(|instance| instance.is_live(now))
        .ok_or_else(|| not_found(key))
}

fn not_found(key: &InstanceKey) -> Error {
    Error::NotFound {
        instance: alloc::format!("{key}"),
    }
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;
    use crate::version::VersionReq;
    use alloc::string::String;

    fn key(service: &str, version: &str, id: &str) -> InstanceKey {
        InstanceKey {
            service: ServiceName::parse(service).unwrap(),
            version: Version::parse(version).unwrap(),
            id: InstanceId::parse(id).unwrap(),
        }
    }

    fn spec(url: &str, ttl_ms: u64) -> InstanceSpec {
        InstanceSpec {
            ttl_ms,
            ..InstanceSpec::new(url).unwrap()
        }
    }

    fn ids(instances: &[&Instance]) -> Vec<String> {
        instances
            .iter()
            .map(|i| alloc::format!("{}", i.key()))
            .collect()
    }

    #[test]
    fn a_status_set_takes_an_instance_out_of_lookups_and_records_one_change() {
        let mut r = Registry::new();
        let a = key("api", "1.0.0", "a");
        r.register(a.clone(), spec("h:1", 10_000), 0).unwrap();
        r.register(key("api", "1.0.0", "b"), spec("h:2", 10_000), 0)
            .unwrap();
        r.take_changes();
        let api = ServiceName::parse("api").unwrap();
        let drain = HealthUpdate::set(Status::Maintenance, Some("deploy".into()));
        let (instance, changed) = r.set_health(&a, &drain, 100).unwrap();
        assert!(changed);
        assert_eq!(instance.health.status, Status::Maintenance);
        assert_eq!(instance.expires_at, 10_000, "a status set renews nothing");
        assert_eq!(ids(&r.instances(&api, &Query::any(), 200)), ["api@1.0.0/b"]);
        let all = Query {
            statuses: crate::health::StatusFilter::ALL,
            ..Query::any()
        };
        assert_eq!(r.instances(&api, &all, 200).len(), 2);
        assert!(matches!(&r.take_changes()[..], [Change::Insert(i)] if i.id.as_str() == "a"));
        // A repeat changes nothing and records nothing.
        assert!(!r.set_health(&a, &drain, 200).unwrap().1);
        assert!(r.take_changes().is_empty());
        // A check result never ends maintenance; a set does.
        let check = HealthUpdate::check(Status::Passing, None);
        assert!(!r.set_health(&a, &check, 300).unwrap().1);
        let back = HealthUpdate::set(Status::Passing, None);
        assert!(r.set_health(&a, &back, 300).unwrap().1);
        assert_eq!(r.instances(&api, &Query::any(), 300).len(), 2);
        // A lapsed or unknown instance is not found.
        assert_eq!(
            r.set_health(&a, &drain, 10_000).unwrap_err().code(),
            "not_found"
        );
        assert_eq!(
            r.set_health(&key("api", "1.0.0", "zz"), &drain, 0)
                .unwrap_err()
                .code(),
            "not_found"
        );
    }

    #[test]
    fn register_list_and_expire_at_the_exact_boundary() {
        let mut registry = Registry::new();
        registry
            .register(key("api", "2.0.0", "a"), spec("h:1", 3_000), 0)
            .unwrap();
        let api = ServiceName::parse("api").unwrap();
        assert_eq!(registry.instances(&api, &Query::any(), 2_999).len(), 1);
        assert_eq!(registry.instances(&api, &Query::any(), 3_000).len(), 0);
        assert_eq!(registry.expire(2_999), 0);
        assert_eq!(registry.expire(3_000), 1);
        assert!(registry.all().next().is_none());
    }

    #[test]
    fn heartbeats_extend_and_lapsed_leases_cannot_be_renewed() {
        let mut registry = Registry::new();
        let k = key("api", "2.0.0", "a");
        registry.register(k.clone(), spec("h:1", 3_000), 0).unwrap();
        // Beating every ttl/3 keeps it alive indefinitely.
        for beat in 1..100 {
            let now = beat * 1_000;
            assert_eq!(registry.heartbeat(&k, now).unwrap().expires_at, now + 3_000);
        }
        let err = registry.heartbeat(&k, 99_000 + 3_000).unwrap_err();
        assert_eq!(err.code(), "not_found");
        let err = registry
            .heartbeat(&key("api", "2.0.0", "zz"), 0)
            .unwrap_err();
        assert_eq!(err.code(), "not_found");
    }

    #[test]
    fn register_is_an_upsert() {
        let mut registry = Registry::new();
        let k = key("api", "2.0.0", "a");
        registry.register(k.clone(), spec("h:1", 3_000), 0).unwrap();
        let again = registry.register(k, spec("h:2", 3_000), 1_000).unwrap();
        assert_eq!(
            (again.url.as_str(), again.registered_at, again.expires_at),
            ("h:2", 0, 4_000)
        );
        assert_eq!(registry.all().count(), 1);
    }

    #[test]
    fn deregister_removes_and_reports_unknown() {
        let mut registry = Registry::new();
        let k = key("api", "2.0.0", "a");
        registry.register(k.clone(), spec("h:1", 3_000), 0).unwrap();
        assert_eq!(registry.deregister(&k, 1).unwrap().url, "h:1");
        assert_eq!(registry.deregister(&k, 1).unwrap_err().code(), "not_found");
        let changes = registry.take_changes();
        assert!(
            matches!(changes.as_slice(), [Change::Insert(_), Change::Remove(removed)] if *removed == k)
        );
        assert!(registry.take_changes().is_empty());
    }

    #[test]
    fn queries_filter_and_sort_newest_first() {
        let mut registry = Registry::new();
        for (version, id, tags, zone) in [
            ("1.0.0", "a", &["stable"][..], "eu"),
            ("2.1.0", "b", &["canary", "stable"][..], "us"),
            ("2.0.0", "c", &["stable"][..], "eu"),
            ("2.1.0", "a", &[][..], "eu"),
        ] {
            let mut s = spec("h:1", 5_000);
            s.tags = tags.iter().map(|t| String::from(*t)).collect();
            s.zone = Some(zone.into());
            registry.register(key("api", version, id), s, 0).unwrap();
        }
        let api = ServiceName::parse("api").unwrap();
        let all = registry.instances(&api, &Query::any(), 1);
        assert_eq!(
            ids(&all),
            ["api@2.1.0/a", "api@2.1.0/b", "api@2.0.0/c", "api@1.0.0/a"]
        );
        let mut query = Query::version(VersionReq::parse("^2").unwrap());
        query.tags = alloc::vec!["stable".into()];
        assert_eq!(
            ids(&registry.instances(&api, &query, 1)),
            ["api@2.1.0/b", "api@2.0.0/c"]
        );
        query.zone = Some("eu".into());
        assert_eq!(ids(&registry.instances(&api, &query, 1)), ["api@2.0.0/c"]);
        let unknown = ServiceName::parse("nope").unwrap();
        assert!(registry.instances(&unknown, &Query::any(), 1).is_empty());
    }

    #[test]
    fn live_all_orders_by_service_then_newest_version() {
        let mut registry = Registry::new();
        for (service, version, id, ttl) in [
            ("web", "1.0.0", "w", 5_000),
            ("api", "1.0.0", "b", 5_000),
            ("api", "2.0.0", "z", 5_000),
            ("api", "2.0.0", "a", 5_000),
            ("api", "3.0.0", "gone", 1_000),
        ] {
            registry
                .register(key(service, version, id), spec("h:1", ttl), 0)
                .unwrap();
        }
        let all = live_all(registry.all(), 1_000);
        assert_eq!(
            ids(&all),
            ["api@2.0.0/a", "api@2.0.0/z", "api@1.0.0/b", "web@1.0.0/w"]
        );
    }

    #[test]
    fn catalog_counts_live_instances_only() {
        let mut registry = Registry::new();
        registry
            .register(key("api", "1.0.0", "a"), spec("h:1", 1_000), 0)
            .unwrap();
        registry
            .register(key("api", "2.0.0", "a"), spec("h:1", 5_000), 0)
            .unwrap();
        registry
            .register(key("api", "2.0.0", "b"), spec("h:1", 5_000), 0)
            .unwrap();
        registry
            .register(key("web", "0.1.0", "a"), spec("h:1", 5_000), 0)
            .unwrap();
        let catalog = registry.catalog(2_000);
        let json = serde_json::to_value(&catalog).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"services": [
                {"name": "api", "versions": [{"version": "2.0.0", "instances": 2, "statuses":
                    {"passing": 2, "warning": 0, "critical": 0, "maintenance": 0}}]},
                {"name": "web", "versions": [{"version": "0.1.0", "instances": 1, "statuses":
                    {"passing": 1, "warning": 0, "critical": 0, "maintenance": 0}}]},
            ]})
        );
    }
}
