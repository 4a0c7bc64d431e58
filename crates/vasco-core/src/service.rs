//! One service's leases and its change index: the state a Durable Object hosts.
//!
//! [`ServiceLeases`] holds every instance of one service with its lease, and a **change index**
//! (a per-service counter, as Consul's `X-Consul-Index` or etcd's revision) that moves on every
//! change of membership or of a record, and never on a plain renewal. Readers compare indexes
//! to learn whether anything changed ([`crate::blocking`]); watchers receive one
//! [`ChangeEvent`] per committed batch of changes.
//!
//! The type is sans-IO like the rest of the core: the host (the Worker's Durable Object, or a
//! test) passes `now`, persists the rows it is told about and writes snapshots
//! ([`crate::snapshot`]) when asked.
//!
//! ```
//! use vasco_core::service::{Outcome, ServiceLeases};
//! use vasco_core::{InstanceKey, InstanceSpec, ServiceName};
//!
//! let api = ServiceName::parse("api").unwrap();
//! let mut leases = ServiceLeases::new(api.clone());
//! let key = InstanceKey::parse("api", "2.1.0", "a1").unwrap();
//! let spec = InstanceSpec::new("10.0.0.1:3000").unwrap(); // 10 s lease
//!
//! let added = leases.register(key.clone(), spec.clone(), 1_000).unwrap();
//! assert_eq!(added.outcome, Outcome::Added);
//! let event = leases.take_event().unwrap();
//! assert_eq!((event.index, event.added.len()), (2, 1));
//!
//! // The same record again is a renewal: the lease moves, the index does not.
//! let renewed = leases.register(key.clone(), spec, 4_000).unwrap();
//! assert_eq!((renewed.outcome, renewed.instance.expires_at), (Outcome::Renewed, 14_000));
//! assert!(leases.take_event().is_none());
//!
//! // Nothing renews it after that: the lease lapses at 14 s and the reaper removes it.
//! assert_eq!(leases.next_expiry(), Some(14_000));
//! assert_eq!(leases.expire(14_000), 1);
//! let event = leases.take_event().unwrap();
//! assert_eq!((event.index, event.removed, leases.index()), (3, vec![key], 3));
//! ```

use alloc::{collections::BTreeMap, format, vec::Vec};

use serde::{Deserialize, Serialize};

use crate::{
    error::{Error, Result},
    health::HealthUpdate,
    instance::{Instance, InstanceKey, InstanceSpec, Millis},
    name::{InstanceId, ServiceName},
    version::Version,
};

/// The index of a service that has never changed. Indexes start at 1, not 0, so that a
/// blocking query with `index=0` always answers at once and clients that refuse 0 (Consul's)
/// are never sent it.
pub const FIRST_INDEX: u64 = 1;

/// What a registration did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// A new instance (or one whose lease had lapsed): membership changed.
    Added,
    /// A live instance with a changed record (url, tags, meta, weight, zone or ttl).
    Updated,
    /// A live instance with the same record: only the lease moved.
    Renewed,
}

impl Outcome {
    /// Whether readers can see the difference (the change index moves).
    pub fn is_change(self) -> bool {
        !matches!(self, Outcome::Renewed)
    }
}

/// The result of [`ServiceLeases::register`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registered {
    /// What happened.
    pub outcome: Outcome,
    /// The stored record after it.
    pub instance: Instance,
}

/// What changed in one service between two indexes: the unit of the change feed.
///
/// Wire shape: `{"service": "api", "index": 7, "added": [Instance], "updated": [Instance],
/// "removed": [{"service", "version", "id"}]}`; each list may be empty.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeEvent {
    /// The service.
    pub service: ServiceName,
    /// The service's change index after these changes.
    pub index: u64,
    /// Instances that joined.
    #[serde(default)]
    pub added: Vec<Instance>,
    /// Instances whose record changed (their new record).
    #[serde(default)]
    pub updated: Vec<Instance>,
    /// Instances that left: deregistered, or their lease lapsed.
    #[serde(default)]
    pub removed: Vec<InstanceKey>,
}

impl ChangeEvent {
    fn empty(service: ServiceName) -> Self {
        Self {
            service,
            index: 0,
            added: Vec::new(),
            updated: Vec::new(),
            removed: Vec::new(),
        }
    }

    fn is_empty(&self) -> bool {
        self.added.is_empty() && self.updated.is_empty() && self.removed.is_empty()
    }

    fn forget(&mut self, key: &InstanceKey) {
        self.added.retain(|i| i.key() != *key);
        self.updated.retain(|i| i.key() != *key);
    }

    /// Records a changed record: it stays an addition when it joined in this batch.
    fn record_update(&mut self, instance: &Instance) {
        let key = instance.key();
        if let Some(added) = self.added.iter_mut().find(|i| i.key() == key) {
            *added = instance.clone();
        } else {
            self.updated.retain(|i| i.key() != key);
            self.updated.push(instance.clone());
        }
    }
}

type Slot = (Version, InstanceId);

/// Every instance of one service, its leases and its change index. See the module docs.
#[derive(Debug, Clone)]
pub struct ServiceLeases {
    name: ServiceName,
    index: u64,
    instances: BTreeMap<Slot, Instance>,
    pending: ChangeEvent,
}

impl ServiceLeases {
    /// An empty service at [`FIRST_INDEX`].
    pub fn new(name: ServiceName) -> Self {
        Self::restore(name, FIRST_INDEX, Vec::new())
    }

    /// A service as it was stored: its index and its records (lapsed ones included; the next
    /// [`ServiceLeases::expire`] removes them). Records of another service are ignored.
    pub fn restore(name: ServiceName, index: u64, instances: Vec<Instance>) -> Self {
        let instances = instances
            .into_iter()
            .filter(|i| i.service == name)
            .map(|i| ((i.version.clone(), i.id.clone()), i))
            .collect();
        Self {
            pending: ChangeEvent::empty(name.clone()),
            name,
            index: index.max(FIRST_INDEX),
            instances,
        }
    }

    /// The service's name.
    pub fn name(&self) -> &ServiceName {
        &self.name
    }

    /// The current change index (at least [`FIRST_INDEX`]).
    pub fn index(&self) -> u64 {
        self.index
    }

    /// Registers `key` with `spec` at `now`, or renews it when it is live with the same record
    /// (an idempotent upsert). A live instance keeps its `registered_at`.
    ///
    /// Errors: `Invalid` for a bad spec, or for a key of another service.
    pub fn register(
        &mut self,
        key: InstanceKey,
        spec: InstanceSpec,
        now: Millis,
    ) -> Result<Registered> {
        spec.validate()?;
        self.check_service(&key)?;
        let slot = (key.version.clone(), key.id.clone());
        let previous = self.instances.get(&slot).filter(|p| p.is_live(now));
        let instance = Instance::lease(key, spec, now, previous);
        let outcome = match previous {
            None => Outcome::Added,
            Some(p) if same_record(p, &instance) => Outcome::Renewed,
            Some(_) => Outcome::Updated,
        };
        match outcome {
            Outcome::Added => self.pending.added.push(instance.clone()),
            Outcome::Updated => self.pending.record_update(&instance),
            Outcome::Renewed => {}
        }
        self.instances.insert(slot, instance.clone());
        Ok(Registered { outcome, instance })
    }

    /// Renews the lease of a live instance to `now + ttl`. Not a change: the index stays.
    ///
    /// Errors: `NotFound` when the instance is unknown or its lease has lapsed (the caller
    /// must register again).
    pub fn renew(&mut self, key: &InstanceKey, now: Millis) -> Result<Instance> {
        let instance = self.live_mut(key, now)?;
        *instance = instance.renewed(now);
        Ok(instance.clone())
    }

    /// Applies a health update to a live instance ([`crate::health`]). A change readers can
    /// see (status, reason, by) is an update of the record and moves the index at the next
    /// commit; a damped result that only advances a counter is stored without one. Returns
    /// the record after it and whether it changed.
    ///
    /// Errors: `NotFound` when the instance is unknown or its lease has lapsed.
    pub fn set_health(
        &mut self,
        key: &InstanceKey,
        update: &HealthUpdate,
        now: Millis,
    ) -> Result<(Instance, bool)> {
        let instance = self.live_mut(key, now)?;
        let changed = instance.health.apply(update, now);
        // A TTL check's results are the lease's renewals too (Consul's `check pass`).
        if instance.health.check.ttl_ms.is_some() && matches!(update, HealthUpdate::Check { .. }) {
            *instance = instance.renewed(now);
        }
        let instance = instance.clone();
        if changed {
            self.pending.record_update(&instance);
        }
        Ok((instance, changed))
    }

    /// Removes an instance. A record whose lease had already lapsed is removed too, but
    /// answers `NotFound` like an unknown one.
    pub fn deregister(&mut self, key: &InstanceKey, now: Millis) -> Result<Instance> {
        let slot = (key.version.clone(), key.id.clone());
        if key.service != self.name {
            return Err(not_found(key));
        }
        let removed = self.instances.remove(&slot).ok_or_else(|| not_found(key))?;
        self.pending.forget(key);
        self.pending.removed.push(key.clone());
        if removed.is_live(now) {
            Ok(removed)
        } else {
            Err(not_found(key))
        }
    }

    /// Removes every instance whose lease has lapsed at `now` (the reaper), and turns the TTL
    /// checks that lapsed critical (a change readers see); returns how many were removed.
    pub fn expire(&mut self, now: Millis) -> usize {
        let mut lapsed_checks = Vec::new();
        for instance in self.instances.values_mut() {
            if instance.is_live(now) && instance.health.lapse(now) {
                lapsed_checks.push(instance.clone());
            }
        }
        for instance in &lapsed_checks {
            self.pending.record_update(instance);
        }
        let lapsed: Vec<Slot> = self
            .instances
            .iter()
            .filter(|(_, i)| !i.is_live(now))
            .map(|(slot, _)| slot.clone())
            .collect();
        for slot in &lapsed {
            if let Some(instance) = self.instances.remove(slot) {
                let key = instance.key();
                self.pending.forget(&key);
                self.pending.removed.push(key);
            }
        }
        lapsed.len()
    }

    /// Commits the changes made since the last call: bumps the index once and returns what
    /// changed, or `None` (index unchanged) when nothing did.
    pub fn take_event(&mut self) -> Option<ChangeEvent> {
        if self.pending.is_empty() {
            return None;
        }
        self.index += 1;
        let mut event =
            core::mem::replace(&mut self.pending, ChangeEvent::empty(self.name.clone()));
        event.index = self.index;
        Some(event)
    }

    /// The record of `key`, live or not.
    pub fn get(&self, key: &InstanceKey) -> Option<&Instance> {
        self.instances
            .get(&(key.version.clone(), key.id.clone()))
            .filter(|i| i.service == key.service)
    }

    /// The instances live at `now`, newest version first, then by id.
    pub fn live(&self, now: Millis) -> Vec<&Instance> {
        let mut live: Vec<&Instance> = self.instances.values().filter(|i| i.is_live(now)).collect();
        live.sort_by(|a, b| b.version.cmp(&a.version).then_with(|| a.id.cmp(&b.id)));
        live
    }

    /// Whether any instance is live at `now` (no list built: asked after every command).
    pub fn has_live(&self, now: Millis) -> bool {
        self.instances.values().any(|i| i.is_live(now))
    }

    /// Every stored record, live or not, in key order.
    pub fn all(&self) -> impl Iterator<Item = &Instance> {
        self.instances.values()
    }

    /// How many records are stored.
    pub fn len(&self) -> usize {
        self.instances.len()
    }

    /// Whether no record is stored.
    pub fn is_empty(&self) -> bool {
        self.instances.is_empty()
    }

    /// The earliest lease end or TTL-check deadline among the stored records: when the
    /// reaper must run next ([`crate::instance::NO_EXPIRY`] never comes).
    pub fn next_expiry(&self) -> Option<Millis> {
        self.instances
            .values()
            .flat_map(|i| [Some(i.expires_at), i.health.deadline()])
            .flatten()
            .filter(|&at| at < crate::instance::NO_EXPIRY)
            .min()
    }

    /// The record of `key` while its lease holds at `now`. Errors: `NotFound`.
    fn live_mut(&mut self, key: &InstanceKey, now: Millis) -> Result<&mut Instance> {
        let slot = (key.version.clone(), key.id.clone());
        self.instances
            .get_mut(&slot)
            .filter(|i| i.service == key.service && i.is_live(now))
            .ok_or_else(|| not_found(key))
    }

    fn check_service(&self, key: &InstanceKey) -> Result<()> {
        if key.service == self.name {
            Ok(())
        } else {
            Err(Error::invalid(
                "name",
                format!(
                    "this is the registry of {:?}, not {:?}",
                    self.name.as_str(),
                    key.service.as_str()
                ),
            ))
        }
    }
}

/// Whether two records of one instance differ only in their lease (and in health-check
/// counters, which readers do not see).
fn same_record(a: &Instance, b: &Instance) -> bool {
    a.health.status == b.health.status
        && a.health.reason == b.health.reason
        && a.health.by == b.health.by
        && a.url == b.url
        && a.tags == b.tags
        && a.meta == b.meta
        && a.weight == b.weight
        && a.zone == b.zone
        && a.ttl_ms == b.ttl_ms
}

fn not_found(key: &InstanceKey) -> Error {
    Error::NotFound {
        instance: format!("{key}"),
    }
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;

    fn key(id: &str) -> InstanceKey {
        InstanceKey::parse("api", "1.0.0", id).unwrap()
    }

    fn spec(url: &str, ttl_ms: u64) -> InstanceSpec {
        InstanceSpec {
            ttl_ms,
            ..InstanceSpec::new(url).unwrap()
        }
    }

    fn leases() -> ServiceLeases {
        ServiceLeases::new(ServiceName::parse("api").unwrap())
    }

    #[test]
    fn index_moves_on_changes_only() {
        let mut s = leases();
        assert_eq!(s.index(), FIRST_INDEX);
        s.register(key("a"), spec("h:1", 3_000), 0).unwrap();
        assert_eq!(s.take_event().unwrap().index, 2);
        // Renewals, by register with the same record or by renew: no change.
        s.register(key("a"), spec("h:1", 3_000), 1_000).unwrap();
        s.renew(&key("a"), 2_000).unwrap();
        assert!(s.take_event().is_none());
        assert_eq!(s.index(), 2);
        // A changed record is an update.
        let updated = s.register(key("a"), spec("h:2", 3_000), 2_500).unwrap();
        assert_eq!(updated.outcome, Outcome::Updated);
        assert_eq!(updated.instance.registered_at, 0);
        let event = s.take_event().unwrap();
        assert_eq!(
            (event.index, event.updated.len(), event.added.len()),
            (3, 1, 0)
        );
        // Deregistration is a change.
        s.deregister(&key("a"), 2_600).unwrap();
        let event = s.take_event().unwrap();
        assert_eq!((event.index, event.removed.clone()), (4, vec![key("a")]));
    }

    #[test]
    fn a_lapsed_instance_cannot_be_renewed_and_returns_as_added() {
        let mut s = leases();
        s.register(key("a"), spec("h:1", 3_000), 0).unwrap();
        s.take_event();
        assert_eq!(s.renew(&key("a"), 3_000).unwrap_err().code(), "not_found");
        let again = s.register(key("a"), spec("h:1", 3_000), 3_000).unwrap();
        assert_eq!(again.outcome, Outcome::Added);
        assert_eq!(again.instance.registered_at, 3_000);
    }

    #[test]
    fn expiry_is_exact_and_batched_into_one_event() {
        let mut s = leases();
        s.register(key("a"), spec("h:1", 3_000), 0).unwrap();
        s.register(key("b"), spec("h:1", 5_000), 0).unwrap();
        s.take_event();
        assert_eq!(s.next_expiry(), Some(3_000));
        assert_eq!(s.expire(2_999), 0);
        assert!(s.take_event().is_none());
        assert_eq!(s.expire(5_000), 2);
        let event = s.take_event().unwrap();
        assert_eq!(event.removed.len(), 2);
        assert_eq!(s.next_expiry(), None);
        assert!(s.is_empty());
    }

    #[test]
    fn an_instance_added_and_removed_in_one_batch_is_only_removed() {
        let mut s = leases();
        s.register(key("a"), spec("h:1", 3_000), 0).unwrap();
        s.deregister(&key("a"), 1).unwrap();
        let event = s.take_event().unwrap();
        assert!(event.added.is_empty());
        assert_eq!(event.removed, vec![key("a")]);
    }

    #[test]
    fn deregistering_a_lapsed_record_removes_it_but_answers_not_found() {
        let mut s = leases();
        s.register(key("a"), spec("h:1", 3_000), 0).unwrap();
        s.take_event();
        assert_eq!(
            s.deregister(&key("a"), 3_000).unwrap_err().code(),
            "not_found"
        );
        assert!(s.take_event().is_some());
        assert!(s.is_empty());
        assert_eq!(
            s.deregister(&key("a"), 3_000).unwrap_err().code(),
            "not_found"
        );
        assert!(s.take_event().is_none());
    }

    #[test]
    fn restore_keeps_the_index_and_refuses_other_services() {
        let mut s = leases();
        s.register(key("a"), spec("h:1", 3_000), 0).unwrap();
        s.take_event();
        let records: Vec<Instance> = s.all().cloned().collect();
        let mut back = ServiceLeases::restore(s.name().clone(), s.index(), records);
        assert_eq!(back.index(), 2);
        assert_eq!(back.live(1).len(), 1);
        let other = InstanceKey::parse("web", "1.0.0", "a").unwrap();
        assert_eq!(
            back.register(other, spec("h:1", 3_000), 0)
                .unwrap_err()
                .code(),
            "invalid_name"
        );
        assert_eq!(
            ServiceLeases::restore(s.name().clone(), 0, Vec::new()).index(),
            FIRST_INDEX
        );
    }

    #[test]
    fn a_visible_status_change_moves_the_index_and_a_damped_result_does_not() {
        use crate::health::{HealthUpdate, Status};
        let mut s = leases();
        let mut damped = spec("h:1", 3_000);
        damped.health = crate::health::HealthSpec {
            damping: Some(crate::health::Damping {
                success_before_passing: 1,
                failures_before_warning: 2,
                failures_before_critical: 2,
            }),
            ..Default::default()
        };
        s.register(key("a"), damped, 0).unwrap();
        s.take_event();
        let fail = HealthUpdate::check(Status::Critical, Some("db".into()));
        let (after, changed) = s.set_health(&key("a"), &fail, 10).unwrap();
        assert!(!changed);
        assert_eq!(after.health.check.failures, 1);
        assert!(s.take_event().is_none());
        let (after, changed) = s.set_health(&key("a"), &fail, 20).unwrap();
        assert!(changed);
        assert_eq!(after.health.status, Status::Critical);
        let event = s.take_event().unwrap();
        assert_eq!((event.index, event.updated.len()), (3, 1));
        // A renewal keeps the status; a registration without health fields too.
        s.renew(&key("a"), 30).unwrap();
        let again = s.register(key("a"), spec("h:1", 3_000), 40).unwrap();
        assert_eq!(again.outcome, Outcome::Renewed);
        assert_eq!(again.instance.health.status, Status::Critical);
        // A lapsed instance cannot be given a status.
        assert_eq!(
            s.set_health(&key("a"), &fail, 10_000).unwrap_err().code(),
            "not_found"
        );
    }

    #[test]
    fn a_status_set_in_the_batch_that_added_the_instance_stays_an_addition() {
        use crate::health::{HealthUpdate, Status};
        let mut s = leases();
        s.register(key("a"), spec("h:1", 3_000), 0).unwrap();
        s.set_health(&key("a"), &HealthUpdate::set(Status::Maintenance, None), 1)
            .unwrap();
        let event = s.take_event().unwrap();
        assert!(event.updated.is_empty());
        assert_eq!(event.added[0].health.status, Status::Maintenance);
    }
}
