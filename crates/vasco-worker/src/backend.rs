//! The registry behind the routes: writes and fresh reads go to the service's Durable Object,
//! default reads to its KV snapshot. Routes call [`Backend`] and never KV or objects directly.
//!
//! [`Objects`] is the seam to the Durable Objects: the Worker implements it with stubs
//! (`durable.rs`), native tests with in-process objects (`local.rs`, native only).

use serde_json::Value;
use vasco_core::blocking::BlockingQuery;
use vasco_core::snapshot::CatalogSnapshot;
use vasco_core::{Instance, InstanceKey, Millis, ServiceName};

use crate::agent::{AgentCommand, AgentReply};
use crate::catalog::CatalogCommand;
use crate::error::AppError;
use crate::kv::Kv;
use crate::object::{Command, Reply};
use crate::snapshot::Snapshots;
use crate::tokens::{TokenCommand, TokenReply};

/// The Durable Objects as the Worker reaches them.
#[allow(async_fn_in_trait)]
pub trait Objects {
    /// Runs `command` in `service`'s object.
    async fn service(&self, service: &ServiceName, command: &Command) -> Result<Reply, AppError>;
    /// A blocking read of `service`: answers at once unless `query` holds at the current index,
    /// else when the index moves or the wait ends (see [`vasco_core::blocking`]).
    async fn wait(&self, service: &ServiceName, query: BlockingQuery) -> Result<Reply, AppError>;
    /// Runs `command` in the catalog object (only [`CatalogCommand::Read`] from the Worker).
    async fn catalog(&self, command: &CatalogCommand) -> Result<CatalogSnapshot, AppError>;
    /// A blocking read of the catalog: answers at once unless `query` holds at the catalog's
    /// current index, else when it moves or the wait ends.
    async fn catalog_wait(&self, query: BlockingQuery) -> Result<CatalogSnapshot, AppError>;
    /// Runs `command` in the token object ([`crate::tokens`]).
    async fn tokens(&self, command: &TokenCommand) -> Result<TokenReply, AppError>;
    /// Runs `command` in the Consul agent object ([`crate::agent`]).
    async fn agent(&self, command: &AgentCommand) -> Result<AgentReply, AppError>;
}

/// How fresh a read must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadMode {
    /// The KV snapshot: one KV `get`, global and cheap, membership possibly up to about a
    /// minute behind in other locations.
    Snapshot,
    /// From the service's object (`?consistent`).
    Consistent,
    /// A blocking query on the object (`?index=N&wait=30s`).
    Blocking(BlockingQuery),
}

/// Where a read's data came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// A KV snapshot written at this time (ms; 0 when there was none).
    Snapshot {
        /// When the service's object wrote it.
        written_at: Millis,
    },
    /// The service's object, at the request's time.
    Object,
}

/// The members of one service as a read sees them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceView {
    /// The change index of the data (0: no snapshot has reached this location).
    pub index: u64,
    /// The live members, newest version first, then by id.
    pub instances: Vec<Instance>,
    /// Where it came from.
    pub source: Source,
    /// The registry's time the data is valid at (ms): the object's clock when it answered
    /// (later than the request's for a held query), else the request's.
    pub now: Millis,
}

/// One request's registry.
pub struct Backend<'a, K, O> {
    /// KV snapshots (and the request's KV op counter).
    pub snapshots: Snapshots<'a, K>,
    /// The Durable Objects.
    pub objects: &'a O,
    /// The request's time (ms).
    pub now: Millis,
    /// The latest registry time an object answered with (a held query ends later than it
    /// started); what the response's `x-vasco-now` says.
    pub clock: core::cell::Cell<Millis>,
}

impl<'a, K: Kv, O: Objects> Backend<'a, K, O> {
    /// A backend for one request at `now`.
    pub fn new(snapshots: Snapshots<'a, K>, objects: &'a O, now: Millis) -> Self {
        Self {
            snapshots,
            objects,
            now,
            clock: core::cell::Cell::new(now),
        }
    }

    fn saw(&self, now: Millis) {
        self.clock.set(self.clock.get().max(now));
    }

    /// Registers or renews `key` with the registration body `spec` (an upsert).
    pub async fn register(&self, key: &InstanceKey, spec: Value) -> Result<Reply, AppError> {
        let reply = self
            .objects
            .service(
                &key.service,
                &Command::Register {
                    key: key.clone(),
                    spec,
                },
            )
            .await?;
        self.wrote(&key.service, &reply);
        Ok(reply)
    }

    /// Applies the health update `body` (the body of `PUT .../status`) to `key`. Errors:
    /// `not_found` when it is not registered or its lease lapsed; the core's for a bad body.
    pub async fn set_health(&self, key: &InstanceKey, body: Value) -> Result<Reply, AppError> {
        let reply = self
            .objects
            .service(
                &key.service,
                &Command::SetHealth {
                    key: key.clone(),
                    update: body,
                },
            )
            .await?;
        self.wrote(&key.service, &reply);
        Ok(reply)
    }

    /// Deregisters `key`. Errors: `not_found` when it is not registered or its lease lapsed.
    pub async fn deregister(&self, key: &InstanceKey) -> Result<Reply, AppError> {
        let reply = self
            .objects
            .service(&key.service, &Command::Deregister { key: key.clone() })
            .await?;
        self.wrote(&key.service, &reply);
        Ok(reply)
    }

    fn wrote(&self, service: &ServiceName, reply: &Reply) {
        self.saw(reply.now);
        self.snapshots.ops.add(reply.kv_ops);
        if reply.outcome != Some(vasco_core::Outcome::Renewed) {
            self.snapshots.forget(service);
        }
    }

    /// The catalog (every service with members): from its KV snapshot, from the catalog
    /// object (`Consistent`), or held until its index moves (`Blocking`).
    pub async fn catalog_read(&self, mode: ReadMode) -> Result<CatalogSnapshot, AppError> {
        match mode {
            ReadMode::Snapshot => self.catalog(false).await,
            ReadMode::Consistent => self.catalog(true).await,
            ReadMode::Blocking(query) => self.objects.catalog_wait(query).await,
        }
    }

    /// The live members of `service`.
    pub async fn read(
        &self,
        service: &ServiceName,
        mode: ReadMode,
    ) -> Result<ServiceView, AppError> {
        let reply = match mode {
            ReadMode::Snapshot => {
                let snapshot = self.snapshots.service(service).await?;
                return Ok(ServiceView {
                    index: snapshot.index,
                    instances: snapshot.members(self.now),
                    source: Source::Snapshot {
                        written_at: snapshot.written_at,
                    },
                    now: self.now,
                });
            }
            ReadMode::Consistent => self.objects.service(service, &Command::Read).await?,
            ReadMode::Blocking(query) => self.objects.wait(service, query).await?,
        };
        self.saw(reply.now);
        // A read can commit (it reaps lapsed leases first), and its object may then write a
        // snapshot for it: count that write in the request's KV operations.
        self.snapshots.ops.add(reply.kv_ops);
        Ok(ServiceView {
            index: reply.index,
            instances: reply.instances,
            source: Source::Object,
            now: reply.now.max(self.now),
        })
    }

    /// Every service's summary: from the KV catalog snapshot, or from the catalog object when
    /// `consistent`.
    pub async fn catalog(&self, consistent: bool) -> Result<CatalogSnapshot, AppError> {
        if consistent {
            self.objects.catalog(&CatalogCommand::Read).await
        } else {
            self.snapshots.catalog().await
        }
    }
}
