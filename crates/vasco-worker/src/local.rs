//! In-process Durable Objects over any [`Kv`], on a clock the caller moves: the Worker's
//! objects without the Workers runtime, so native tests run the real object logic
//! ([`crate::object`], [`crate::catalog`]) with an injected clock, simulated alarms, evictions
//! and a KV that lags like real KV between locations.

use crate::agent::{AgentCommand, AgentReply, AgentState};
use core::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::rc::Rc;

use vasco_core::blocking::BlockingQuery;
use vasco_core::service::ChangeEvent;
use vasco_core::snapshot::{CatalogSnapshot, ServiceSummary};
use vasco_core::{InstanceKey, Millis, ServiceName};

use crate::backend::Objects;
use crate::catalog::{self, CatalogCommand, CatalogHost, CatalogKeeper};
use crate::error::AppError;
use crate::kv::{Kv, KvFailure};
use crate::object::{settle, Command, MemoryRows, ObjectHost, Reply, ServiceState};

type Service = Rc<RefCell<ServiceState<MemoryRows>>>;

/// Every object of a registry, in this process. Storage ([`MemoryRows`]) outlives objects, so
/// [`LocalObjects::evict_all`] models the runtime dropping idle objects.
pub struct LocalObjects<K> {
    kv: K,
    clock: Cell<Millis>,
    rows: RefCell<BTreeMap<ServiceName, MemoryRows>>,
    services: RefCell<BTreeMap<ServiceName, Service>>,
    catalog_rows: MemoryRows,
    catalog: RefCell<Rc<RefCell<CatalogKeeper<MemoryRows>>>>,
    alarms: RefCell<BTreeMap<ServiceName, Millis>>,
    catalog_alarm: Cell<Option<Millis>>,
    /// Every event published by a service object, in order.
    pub events: RefCell<Vec<ChangeEvent>>,
    /// Every event the catalog object sent to registry-wide subscribers, in order.
    pub catalog_events: RefCell<Vec<ChangeEvent>>,
    /// Leases closed by their object: (instance, connection).
    pub closed_leases: RefCell<Vec<(InstanceKey, u64)>>,
    /// Service objects' requests so far (commands, alarms), for cost counts.
    pub requests: Cell<u64>,
    agent: RefCell<AgentState<MemoryRows>>,
}

impl<K: Kv> LocalObjects<K> {
    /// Objects writing snapshots to `kv`, at time `now`.
    pub fn new(kv: K, now: Millis) -> Self {
        let catalog_rows = MemoryRows::default();
        Self {
            kv,
            clock: Cell::new(now),
            rows: RefCell::default(),
            services: RefCell::default(),
            catalog: RefCell::new(Rc::new(RefCell::new(CatalogKeeper::new(
                catalog_rows.clone(),
            )))),
            catalog_rows,
            alarms: RefCell::default(),
            catalog_alarm: Cell::new(None),
            events: RefCell::default(),
            catalog_events: RefCell::default(),
            closed_leases: RefCell::default(),
            requests: Cell::new(0),
            agent: RefCell::new(AgentState::new(MemoryRows::default())),
        }
    }

    /// The KV the objects write to.
    pub fn kv(&self) -> &K {
        &self.kv
    }

    /// The objects' clock.
    pub fn now(&self) -> Millis {
        self.clock.get()
    }

    /// Moves the clock to `now` and fires every alarm due by then, in time order, each at its
    /// own scheduled time (as the runtime would, with no request in between).
    pub async fn advance_to(&self, now: Millis) {
        loop {
            let next_service = self
                .alarms
                .borrow()
                .iter()
                .min_by_key(|(_, at)| **at)
                .map(|(name, at)| (name.clone(), *at));
            let next_catalog = self.catalog_alarm.get();
            match (next_service, next_catalog) {
                (Some((name, at)), catalog_at)
                    if at <= now && catalog_at.is_none_or(|c| at <= c) =>
                {
                    self.alarms.borrow_mut().remove(&name);
                    self.clock.set(self.clock.get().max(at));
                    self.service_alarm(&name).await;
                }
                (_, Some(at)) if at <= now => {
                    self.catalog_alarm.set(None);
                    self.clock.set(self.clock.get().max(at));
                    let object = self.catalog.borrow().clone();
                    let host = CatalogSide { objects: self };
                    catalog::settle(&object, &host, self.clock.get()).await;
                }
                _ => break,
            }
        }
        self.clock.set(self.clock.get().max(now));
    }

    /// The pending alarm of `service`, if any.
    pub fn alarm_of(&self, service: &ServiceName) -> Option<Millis> {
        self.alarms.borrow().get(service).copied()
    }

    /// Drops every object from memory (storage stays), as the runtime does with idle objects.
    pub fn evict_all(&self) {
        self.services.borrow_mut().clear();
        *self.catalog.borrow_mut() =
            Rc::new(RefCell::new(CatalogKeeper::new(self.catalog_rows.clone())));
    }

    fn object(&self, name: &ServiceName) -> Service {
        let rows = self
            .rows
            .borrow_mut()
            .entry(name.clone())
            .or_default()
            .clone();
        self.services
            .borrow_mut()
            .entry(name.clone())
            .or_insert_with(|| Rc::new(RefCell::new(ServiceState::new(rows))))
            .clone()
    }

    async fn service_alarm(&self, name: &ServiceName) {
        self.requests.set(self.requests.get() + 1);
        let object = self.object(name);
        let now = self.clock.get();
        let _ = object.borrow_mut().alarm(now);
        let host = ServiceSide {
            objects: self,
            name: name.clone(),
        };
        settle(&object, &host, now).await;
    }

    /// Opens a WebSocket lease on `key` (as the Durable Object does on upgrade).
    pub fn open_lease(&self, key: &InstanceKey) -> Result<u64, AppError> {
        self.object(&key.service)
            .borrow_mut()
            .open_lease(&key.service, key)
    }

    /// The lease socket `conn` of `key` closed.
    pub async fn close_lease(&self, key: &InstanceKey, conn: u64) -> Result<bool, AppError> {
        let object = self.object(&key.service);
        let now = self.clock.get();
        let removed = object.borrow_mut().close_lease(key, conn, now)?;
        let host = ServiceSide {
            objects: self,
            name: key.service.clone(),
        };
        settle(&object, &host, now).await;
        Ok(removed)
    }
}

struct ServiceSide<'a, K> {
    objects: &'a LocalObjects<K>,
    name: ServiceName,
}

impl<K: Kv> ObjectHost for ServiceSide<'_, K> {
    async fn put_snapshot(&self, key: &str, json: &str, ttl_s: u64) -> Result<(), KvFailure> {
        self.objects.kv.put(key, json, ttl_s).await
    }

    async fn report(&self, summary: &ServiceSummary, events: &[ChangeEvent]) -> Result<(), String> {
        let object = self.objects.catalog.borrow().clone();
        let host = CatalogSide {
            objects: self.objects,
        };
        catalog::report(&object, &host, summary.clone(), events, self.objects.now())
            .await
            .map_err(|e| e.to_string())
    }

    fn publish(&self, event: &ChangeEvent) {
        self.objects.events.borrow_mut().push(event.clone());
    }

    fn close_lease(&self, key: &InstanceKey, conn: u64) {
        self.objects
            .closed_leases
            .borrow_mut()
            .push((key.clone(), conn));
    }

    async fn set_alarm(&self, at: Millis) {
        self.objects
            .alarms
            .borrow_mut()
            .insert(self.name.clone(), at);
    }
}

struct CatalogSide<'a, K> {
    objects: &'a LocalObjects<K>,
}

impl<K: Kv> CatalogHost for CatalogSide<'_, K> {
    async fn put_snapshot(&self, key: &str, json: &str, ttl_s: u64) -> Result<(), KvFailure> {
        self.objects.kv.put(key, json, ttl_s).await
    }

    fn publish(&self, event: &ChangeEvent) {
        self.objects.catalog_events.borrow_mut().push(event.clone());
    }

    async fn set_alarm(&self, at: Millis) {
        self.objects.catalog_alarm.set(Some(at));
    }
}

impl<K: Kv> Objects for LocalObjects<K> {
    async fn service(&self, service: &ServiceName, command: &Command) -> Result<Reply, AppError> {
        self.requests.set(self.requests.get() + 1);
        let object = self.object(service);
        let now = self.clock.get();
        let result = object.borrow_mut().apply(service, command.clone(), now);
        let host = ServiceSide {
            objects: self,
            name: service.clone(),
        };
        let kv_ops = settle(&object, &host, now).await;
        let mut reply = result?;
        reply.kv_ops = kv_ops;
        Ok(reply)
    }

    /// Natively there is no one to wake a held request: a query that would hold answers as a
    /// timed-out one does (same index). The Durable Object holds for real (end-to-end tests).
    async fn wait(&self, service: &ServiceName, _query: BlockingQuery) -> Result<Reply, AppError> {
        self.service(service, &Command::Read).await
    }

    /// Never holds: a native test has no other request to wake it.
    async fn catalog_wait(&self, _query: BlockingQuery) -> Result<CatalogSnapshot, AppError> {
        self.catalog(&CatalogCommand::Read).await
    }

    async fn agent(&self, command: &AgentCommand) -> Result<AgentReply, AppError> {
        self.agent.borrow_mut().apply(command.clone())
    }

    async fn catalog(&self, command: &CatalogCommand) -> Result<CatalogSnapshot, AppError> {
        let object = self.catalog.borrow().clone();
        let now = self.clock.get();
        match command {
            CatalogCommand::Read => object.borrow_mut().read(now),
            CatalogCommand::Report { summary, events } => {
                let host = CatalogSide { objects: self };
                catalog::report(&object, &host, summary.clone(), events, now).await?;
                object.borrow_mut().read(now)
            }
        }
    }
}
