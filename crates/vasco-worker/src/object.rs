//! The service object: one Durable Object per service holds its leases.
//!
//! [`ServiceState`] is plain Rust over [`Rows`] (the object's storage) so that native tests
//! run exactly the logic the Durable Object runs; `durable.rs` binds it to the Workers runtime
//! (SQLite rows, alarms, KV, WebSockets). Every lease rule comes from
//! [`vasco_core::ServiceLeases`]; this module persists what changed and says what must happen
//! next (an event to publish, a snapshot to write, a report to the catalog, the next alarm),
//! and [`settle`] does it through an [`ObjectHost`].
//!
//! Storage layout (one key-value table; memory is only a cache, objects are evicted when idle):
//! `meta` holds [`Meta`] (the service's own name, since an object woken by its alarm does not
//! know it; the change index; the snapshot schedule), `i/<version>/<id>` one [`Row`] per
//! instance.

use core::cell::RefCell;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use vasco_core::codec;
use vasco_core::service::{ChangeEvent, Outcome, ServiceLeases};
use vasco_core::snapshot::{
    snapshot_key, Due, ServiceSummary, Snapshot, SnapshotSchedule, KV_TTL_S,
};
use vasco_core::{HealthUpdate, Instance, InstanceKey, InstanceSpec, Millis, ServiceName};

use crate::error::AppError;
use crate::kv::KvFailure;

/// Storage failed (the object's SQLite, or a row it cannot read).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorageFailure(pub String);

impl From<StorageFailure> for AppError {
    fn from(failure: StorageFailure) -> Self {
        AppError::StorageUnavailable { reason: failure.0 }
    }
}

/// An object's storage: a table of JSON values by key. Calls are synchronous, as Durable
/// Object SQLite calls are.
pub trait Rows {
    /// Every row, in key order.
    fn load(&self) -> Result<Vec<(String, String)>, StorageFailure>;
    /// Writes one row.
    fn put(&self, key: &str, value: &str) -> Result<(), StorageFailure>;
    /// Deletes one row (no error if absent).
    fn delete(&self, key: &str) -> Result<(), StorageFailure>;
}

/// [`Rows`] in memory, for native tests (and a model of what survives eviction: keep the
/// `Rows`, drop the object).
#[derive(Debug, Default, Clone)]
pub struct MemoryRows(pub std::rc::Rc<RefCell<BTreeMap<String, String>>>);

impl Rows for MemoryRows {
    fn load(&self) -> Result<Vec<(String, String)>, StorageFailure> {
        Ok(self
            .0
            .borrow()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect())
    }

    fn put(&self, key: &str, value: &str) -> Result<(), StorageFailure> {
        self.0.borrow_mut().insert(key.into(), value.into());
        Ok(())
    }

    fn delete(&self, key: &str) -> Result<(), StorageFailure> {
        self.0.borrow_mut().remove(key);
        Ok(())
    }
}

/// The object's own facts, stored under `meta`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Meta {
    /// The service this object holds (learned from its first request).
    pub name: Option<ServiceName>,
    /// The change index.
    pub index: u64,
    /// The last snapshot written to KV.
    pub snapshot: SnapshotSchedule,
    /// The last index the catalog object acknowledged.
    pub reported_index: u64,
    /// The last WebSocket lease connection number handed out.
    pub last_conn: u64,
}

/// One instance row: the record and which WebSocket holds its lease (0: none, HTTP renewals).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Row {
    /// The record.
    pub instance: Instance,
    /// The lease connection number, or 0.
    #[serde(default)]
    pub conn: u64,
}

const META_KEY: &str = "meta";

fn row_key(key: &InstanceKey) -> String {
    format!("i/{}/{}", key.version, key.id)
}

/// What the Worker asks a service object to do. Wire shape: `{"op": "register", ...}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Command {
    /// Register or renew (upsert); `spec` is the registration body as sent.
    Register {
        /// The instance.
        key: InstanceKey,
        /// The body: `{"url", "ttl", "tags", "meta", "weight", "zone"}`.
        spec: Value,
    },
    /// Renew a live instance's lease.
    Renew {
        /// The instance.
        key: InstanceKey,
    },
    /// Deregister.
    Deregister {
        /// The instance.
        key: InstanceKey,
    },
    /// Set a live instance's health status or report a check result; `update` is the body
    /// of `PUT .../status` as sent (see [`vasco_core::HealthUpdate::from_json`]).
    SetHealth {
        /// The instance.
        key: InstanceKey,
        /// `{"status", "reason", "by"}` or `{"check": {...}}`.
        update: Value,
    },
    /// The live instances and the index (a consistent read).
    Read,
}

/// A service object's answer. Wire shape: `{"index", "now", "instance"?, "outcome"?,
/// "instances"?, "kv_ops"}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reply {
    /// The change index after the command.
    pub index: u64,
    /// The object's clock for the command (ms).
    pub now: Millis,
    /// The instance registered, renewed or deregistered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance: Option<Instance>,
    /// What a registration did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<Outcome>,
    /// For reads: the live instances, newest version first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub instances: Vec<Instance>,
    /// KV operations the object made for this command (snapshot writes).
    #[serde(default)]
    pub kv_ops: u32,
}

/// What the object must do after a command, collected until [`settle`] runs.
#[derive(Debug, Default)]
pub struct Outbox {
    /// Committed changes, oldest first.
    pub events: Vec<ChangeEvent>,
    /// WebSocket leases whose instance left (lapsed or deregistered): close these sockets.
    pub closed: Vec<(InstanceKey, u64)>,
}

struct Loaded {
    leases: ServiceLeases,
    meta: Meta,
    conns: BTreeMap<InstanceKey, u64>,
}

/// A service object's state over its storage. See the module docs.
pub struct ServiceState<R> {
    rows: R,
    loaded: Option<Loaded>,
    outbox: Outbox,
    writing_snapshot: bool,
    reporting: bool,
    /// Events not yet delivered to the catalog object (for registry-wide subscribers).
    unreported: Vec<ChangeEvent>,
}

impl<R: Rows> ServiceState<R> {
    /// An object over `rows`; nothing is read until the first call.
    pub fn new(rows: R) -> Self {
        Self {
            rows,
            loaded: None,
            outbox: Outbox::default(),
            writing_snapshot: false,
            reporting: false,
            unreported: Vec::new(),
        }
    }

    /// Loads the state from storage if memory does not hold it. `name` is the service a request
    /// named; an object woken by its alarm passes `None` and uses the stored name. Errors:
    /// storage failures, or no name at all (an object that never held anything).
    fn load(&mut self, name: Option<&ServiceName>) -> Result<(), AppError> {
        if self.loaded.is_none() {
            let mut meta = Meta::default();
            let mut rows = Vec::new();
            let mut conns = BTreeMap::new();
            for (key, value) in self.rows.load()? {
                if key == META_KEY {
                    meta = serde_json::from_str(&value)
                        .map_err(|e| StorageFailure(format!("meta row unreadable: {e}")))?;
                } else if key.starts_with("i/") {
                    // A row this version cannot read is dropped, not fatal for the service.
                    if let Ok(row) = serde_json::from_str::<Row>(&value) {
                        if row.conn != 0 {
                            conns.insert(row.instance.key(), row.conn);
                        }
                        rows.push(row.instance);
                    }
                }
            }
            let name = match (&meta.name, name) {
                (Some(stored), _) => stored.clone(),
                (None, Some(name)) => name.clone(),
                (None, None) => {
                    return Err(AppError::Internal {
                        reason: "a service object without a name was woken".into(),
                    })
                }
            };
            meta.name = Some(name.clone());
            let leases = ServiceLeases::restore(name, meta.index, rows);
            meta.index = leases.index();
            self.loaded = Some(Loaded {
                leases,
                meta,
                conns,
            });
        }
        let loaded = self.loaded.as_ref().expect("loaded above");
        if let Some(name) = name {
            if loaded.leases.name() != name {
                return Err(AppError::Internal {
                    reason: format!(
                        "object of {:?} asked about {:?}",
                        loaded.leases.name().as_str(),
                        name.as_str()
                    ),
                });
            }
        }
        Ok(())
    }

    /// Runs `command` for `name` at `now`. Lapsed leases are reaped first, so no answer ever
    /// includes one. Errors: the core's (bad spec: 400; unknown instance: 404) and storage
    /// failures (503; memory is then dropped and reloaded from storage on the next call).
    pub fn apply(
        &mut self,
        name: &ServiceName,
        command: Command,
        now: Millis,
    ) -> Result<Reply, AppError> {
        let result = self.apply_inner(name, command, now);
        if matches!(result, Err(AppError::StorageUnavailable { .. })) {
            self.loaded = None;
        }
        result
    }

    fn apply_inner(
        &mut self,
        name: &ServiceName,
        command: Command,
        now: Millis,
    ) -> Result<Reply, AppError> {
        self.load(Some(name))?;
        self.reap(now)?;
        let loaded = self.loaded.as_mut().expect("loaded");
        let mut reply = Reply {
            now,
            ..Reply::default()
        };
        match command {
            Command::Register { key, spec } => {
                let spec = InstanceSpec::from_json_value(&spec)?;
                let registered = loaded.leases.register(key.clone(), spec, now)?;
                // A record must stay small enough to travel in snapshots and events.
                codec::encode_record(&registered.instance)?;
                let conn = loaded.conns.get(&key).copied().unwrap_or(0);
                put_row(&self.rows, &registered.instance, conn)?;
                reply.outcome = Some(registered.outcome);
                reply.instance = Some(registered.instance);
            }
            Command::Renew { key } => {
                let instance = loaded.leases.renew(&key, now)?;
                let conn = loaded.conns.get(&key).copied().unwrap_or(0);
                put_row(&self.rows, &instance, conn)?;
                reply.instance = Some(instance);
            }
            Command::SetHealth { key, update } => {
                let update = HealthUpdate::from_value(&update)?;
                let (instance, changed) = loaded.leases.set_health(&key, &update, now)?;
                codec::encode_record(&instance)?;
                let conn = loaded.conns.get(&key).copied().unwrap_or(0);
                put_row(&self.rows, &instance, conn)?;
                reply.outcome = Some(if changed {
                    Outcome::Updated
                } else {
                    Outcome::Renewed
                });
                reply.instance = Some(instance);
            }
            Command::Deregister { key } => {
                let result = loaded.leases.deregister(&key, now);
                // A lapsed record is removed too (and answers not found).
                self.commit()?;
                reply.instance = Some(result?);
            }
            Command::Read => {
                // `reap` above committed whatever lapsed; a read changes nothing else.
                let loaded = self.loaded.as_ref().expect("loaded");
                reply.instances = loaded.leases.live(now).into_iter().cloned().collect();
            }
        }
        self.commit()?;
        reply.index = self.loaded.as_ref().expect("loaded").leases.index();
        Ok(reply)
    }

    /// The alarm: reaps lapsed leases. Errors: storage failures, or an object that never held
    /// a service.
    pub fn alarm(&mut self, now: Millis) -> Result<(), AppError> {
        let result = self.load(None).and_then(|()| self.reap(now));
        if result.is_err() {
            self.loaded = None;
        }
        result
    }

    fn reap(&mut self, now: Millis) -> Result<(), AppError> {
        let loaded = self.loaded.as_mut().expect("loaded");
        if loaded.leases.expire(now) > 0 {
            self.commit()?;
        }
        Ok(())
    }

    /// Commits pending changes: bumps the index, deletes the rows of instances that left,
    /// persists the index, queues the event.
    fn commit(&mut self) -> Result<(), AppError> {
        let loaded = self.loaded.as_mut().expect("loaded");
        let Some(event) = loaded.leases.take_event() else {
            return Ok(());
        };
        for key in &event.removed {
            self.rows.delete(&row_key(key))?;
            if let Some(conn) = loaded.conns.remove(key) {
                self.outbox.closed.push((key.clone(), conn));
            }
        }
        loaded.meta.index = loaded.leases.index();
        put_meta(&self.rows, &loaded.meta)?;
        // Registry-wide subscribers get events through the catalog; a burst of them waits for
        // the report in flight (bounded: the summary always catches up, old events are dropped).
        if self.unreported.len() >= MAX_UNREPORTED {
            self.unreported.remove(0);
        }
        self.unreported.push(event.clone());
        self.outbox.events.push(event);
        Ok(())
    }

    /// Hands out a connection number for a new WebSocket lease on `key` and records it as the
    /// lease's holder (the instance may not be registered yet; its first message registers).
    pub fn open_lease(&mut self, name: &ServiceName, key: &InstanceKey) -> Result<u64, AppError> {
        self.load(Some(name))?;
        let loaded = self.loaded.as_mut().expect("loaded");
        loaded.meta.last_conn += 1;
        let conn = loaded.meta.last_conn;
        loaded.conns.insert(key.clone(), conn);
        put_meta(&self.rows, &loaded.meta)?;
        if let Some(instance) = loaded.leases.get(key) {
            put_row(&self.rows, instance, conn)?;
        }
        Ok(conn)
    }

    /// Whether WebSocket connection `conn` holds the lease of `key` (no newer connection has
    /// taken it over).
    pub fn holds_lease(&self, key: &InstanceKey, conn: u64) -> bool {
        self.loaded
            .as_ref()
            .is_some_and(|l| l.conns.get(key) == Some(&conn))
    }

    /// The socket of lease `conn` on `key` closed: deregisters the instance at once, unless
    /// another connection has taken the lease over since (a reconnect). Returns whether it
    /// deregistered.
    pub fn close_lease(
        &mut self,
        key: &InstanceKey,
        conn: u64,
        now: Millis,
    ) -> Result<bool, AppError> {
        self.load(Some(&key.service))?;
        let loaded = self.loaded.as_mut().expect("loaded");
        if loaded.conns.get(key) != Some(&conn) {
            return Ok(false);
        }
        loaded.conns.remove(key);
        let removed = loaded.leases.deregister(key, now).is_ok();
        self.commit()?;
        Ok(removed)
    }

    /// Takes what [`settle`] must publish.
    pub fn take_outbox(&mut self) -> Outbox {
        core::mem::take(&mut self.outbox)
    }

    /// The snapshot to write now, if one is due and none is being written.
    pub fn snapshot_due(&self, now: Millis) -> Option<Snapshot> {
        let loaded = self.loaded.as_ref()?;
        if self.writing_snapshot {
            return None;
        }
        let has_live = loaded.leases.has_live(now);
        match loaded
            .meta
            .snapshot
            .due(loaded.leases.index(), has_live, now)
        {
            // Only a due snapshot lists (and sorts) the members: this runs after every command.
            Due::Now => Some(Snapshot::new(
                loaded.leases.name().clone(),
                loaded.leases.index(),
                now,
                loaded.leases.all(),
            )),
            _ => None,
        }
    }

    /// Records that the snapshot of `index` was written at `now`.
    pub fn snapshot_written(&mut self, index: u64, now: Millis) -> Result<(), AppError> {
        if let Some(loaded) = self.loaded.as_mut() {
            loaded.meta.snapshot.written(index, now);
            put_meta(&self.rows, &loaded.meta)?;
        }
        Ok(())
    }

    /// The summary to report to the catalog object, when it has not acknowledged the current
    /// index yet.
    pub fn report_due(&self, now: Millis) -> Option<ServiceSummary> {
        let loaded = self.loaded.as_ref()?;
        (loaded.meta.reported_index < loaded.leases.index()).then(|| {
            ServiceSummary::of(
                loaded.leases.name().clone(),
                loaded.leases.index(),
                now,
                loaded.leases.all(),
            )
        })
    }

    /// Records that the catalog acknowledged `index`.
    pub fn reported(&mut self, index: u64) -> Result<(), AppError> {
        if let Some(loaded) = self.loaded.as_mut() {
            loaded.meta.reported_index = loaded.meta.reported_index.max(index);
            put_meta(&self.rows, &loaded.meta)?;
        }
        Ok(())
    }

    /// When the alarm must fire next: the earliest lease end, a coalesced snapshot write, or a
    /// retry of a failed snapshot write or catalog report (1 s).
    pub fn next_alarm(&self, now: Millis) -> Option<Millis> {
        let loaded = self.loaded.as_ref()?;
        let live = loaded.leases.has_live(now);
        let snapshot = match loaded.meta.snapshot.due(loaded.leases.index(), live, now) {
            Due::Now => Some(now + RETRY_MS),
            Due::At(at) => Some(at),
            Due::Idle => None,
        };
        let report = (loaded.meta.reported_index < loaded.leases.index()).then_some(now + RETRY_MS);
        [loaded.leases.next_expiry(), snapshot, report]
            .into_iter()
            .flatten()
            .min()
    }

    /// The current change index, loading the state if needed.
    pub fn index(&mut self, name: &ServiceName) -> Result<u64, AppError> {
        self.load(Some(name))?;
        Ok(self.loaded.as_ref().expect("loaded").leases.index())
    }

    /// The service this object holds, if it knows.
    pub fn name(&self) -> Option<&ServiceName> {
        self.loaded.as_ref().map(|l| l.leases.name())
    }
}

/// Most change events a service object keeps for the catalog while a report is in flight.
pub const MAX_UNREPORTED: usize = 256;

/// How soon a failed snapshot write or catalog report is retried by the alarm, in ms.
pub const RETRY_MS: Millis = 1_000;

fn put_row<R: Rows>(rows: &R, instance: &Instance, conn: u64) -> Result<(), AppError> {
    let row = Row {
        instance: instance.clone(),
        conn,
    };
    let json = serde_json::to_string(&row).map_err(|e| AppError::Internal {
        reason: format!("row not serializable: {e}"),
    })?;
    Ok(rows.put(&row_key(&instance.key()), &json)?)
}

fn put_meta<R: Rows>(rows: &R, meta: &Meta) -> Result<(), AppError> {
    let json = serde_json::to_string(meta).map_err(|e| AppError::Internal {
        reason: format!("meta not serializable: {e}"),
    })?;
    Ok(rows.put(META_KEY, &json)?)
}

/// What a service object needs from its runtime to carry out an [`Outbox`].
#[allow(async_fn_in_trait)]
pub trait ObjectHost {
    /// Writes a snapshot to KV (one KV write).
    async fn put_snapshot(&self, key: &str, json: &str, ttl_s: u64) -> Result<(), KvFailure>;
    /// Tells the catalog object about the service's new summary and the events behind it.
    async fn report(&self, summary: &ServiceSummary, events: &[ChangeEvent]) -> Result<(), String>;
    /// Wakes blocking queries and sends `event` to change-feed subscribers.
    fn publish(&self, event: &ChangeEvent);
    /// Closes the WebSocket lease `conn` of `key` (its instance left).
    fn close_lease(&self, key: &InstanceKey, conn: u64);
    /// Sets the alarm to `at` (ms since the epoch), replacing any earlier setting.
    async fn set_alarm(&self, at: Millis);
}

/// Carries out what the last commands left to do, in order: publish events (the rows they
/// describe are already stored), close the sockets of leases that ended, write the snapshot
/// when due, report to the catalog when behind, and set the alarm. Never fails: a failed
/// snapshot write or report is retried by the alarm. Returns the KV operations made.
pub async fn settle<R: Rows, H: ObjectHost>(
    object: &RefCell<ServiceState<R>>,
    host: &H,
    now: Millis,
) -> u32 {
    let outbox = object.borrow_mut().take_outbox();
    for event in &outbox.events {
        host.publish(event);
    }
    for (key, conn) in &outbox.closed {
        host.close_lease(key, *conn);
    }
    let mut kv_ops = 0;
    let due = object.borrow().snapshot_due(now);
    if let Some(snapshot) = due {
        object.borrow_mut().writing_snapshot = true;
        let key = snapshot_key(&snapshot.service);
        let written = host.put_snapshot(&key, &snapshot.encode(), KV_TTL_S).await;
        kv_ops += 1;
        let mut object = object.borrow_mut();
        object.writing_snapshot = false;
        if written.is_ok() {
            // A failure here leaves the schedule behind; the alarm writes again.
            let _ = object.snapshot_written(snapshot.index, now);
        }
    }
    // One report in flight at a time; it takes every event queued meanwhile, and the loop
    // catches up with changes made while it was in flight.
    if !object.borrow().reporting {
        object.borrow_mut().reporting = true;
        loop {
            let report = object.borrow().report_due(now);
            let Some(summary) = report else { break };
            let events = core::mem::take(&mut object.borrow_mut().unreported);
            if host.report(&summary, &events).await.is_err() {
                // Retried by the alarm; the events are kept for it.
                let mut object = object.borrow_mut();
                let newer = core::mem::replace(&mut object.unreported, events);
                object.unreported.extend(newer);
                break;
            }
            let _ = object.borrow_mut().reported(summary.index);
        }
        object.borrow_mut().reporting = false;
    }
    let next = object.borrow().next_alarm(now);
    if let Some(at) = next {
        host.set_alarm(at).await;
    }
    kv_ops
}
