//! The registry's storage on Workers KV: one key per instance (layout and record format from
//! [`vasco_core::codec`]), KV operation counting for `x-vasco-kv-ops`, and a per-isolate cache
//! of listings.
//!
//! * A lookup is one `list({prefix})` per 1000 keys; the record is in each key's metadata, so
//!   there is no per-instance `get` on the read path.
//! * A register or heartbeat is one `put`; a deregister is one `get` (to answer 404 for an
//!   unknown instance) and one `delete`.
//! * With a cache lifetime above zero, a listing is kept in the isolate for that long and
//!   serves repeated lookups with no KV operation. Liveness is still decided at each read
//!   (expired instances drop out of cached listings too). Any write made through this isolate
//!   drops the whole cache. Other isolates (other locations) see writes when their cache entry
//!   ages out, on top of KV's own propagation delay.
//!
//! [`Kv`] is the seam: the Worker implements it on the `worker` crate's `KvStore`, tests on an
//! in-memory map.

use core::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::rc::Rc;

use serde_json::Value;
use vasco_core::codec;
use vasco_core::{Instance, InstanceKey, Millis, ServiceName};

use crate::error::AppError;

/// Cloudflare allows at most 1000 KV operations per Worker invocation; refuse before that.
pub const MAX_KV_OPS: u32 = 1000;

/// Most listings kept in one isolate's cache; past this the cache starts over.
pub const CACHE_ENTRIES: usize = 256;

/// One key of a `list` page.
#[derive(Debug, Clone, PartialEq)]
pub struct ListedKey {
    /// The key.
    pub name: String,
    /// Its metadata, if it has any.
    pub metadata: Option<Value>,
}

/// One page of a `list`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ListPage {
    /// The keys on this page (possibly none, even when more pages follow).
    pub keys: Vec<ListedKey>,
    /// The cursor of the next page; `None` when the listing is complete.
    pub cursor: Option<String>,
}

/// A KV operation failed (network, quota, binding missing).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KvFailure(pub String);

/// The KV operations the registry needs. Every call is one billable KV operation.
///
/// Futures need not be `Send`: a Worker isolate is single-threaded.
#[allow(async_fn_in_trait)]
pub trait Kv {
    /// One page of keys starting with `prefix` (up to 1000), with their metadata.
    async fn list(&self, prefix: &str, cursor: Option<&str>) -> Result<ListPage, KvFailure>;
    /// `None` if the key does not exist; otherwise its metadata (`None` if it has none).
    async fn get_metadata(&self, key: &str) -> Result<Option<Option<Value>>, KvFailure>;
    /// Writes `key` with `metadata` and an empty value, expiring after `expiration_ttl` seconds.
    async fn put(&self, key: &str, metadata: Value, expiration_ttl: u64) -> Result<(), KvFailure>;
    /// Deletes `key` (no error if absent).
    async fn delete(&self, key: &str) -> Result<(), KvFailure>;
}

/// A listing held in the isolate cache.
#[derive(Debug, Clone)]
struct CachedList {
    fetched_at: Millis,
    instances: Rc<Vec<Instance>>,
}

/// The per-isolate cache of listings, keyed by KV prefix. Lives as long as the isolate.
#[derive(Debug, Default)]
pub struct ListCache {
    entries: BTreeMap<String, CachedList>,
    /// Bumped by every write; a listing started before a write must not be cached after it.
    generation: u64,
}

impl ListCache {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many listings are held.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Drops every listing (called on each write through this isolate).
    pub fn clear(&mut self) {
        self.entries.clear();
        self.generation = self.generation.wrapping_add(1);
    }
}

/// What a `get` of one instance key found.
#[derive(Debug, Clone, PartialEq)]
pub enum Stored {
    /// No such key.
    Missing,
    /// The key exists; its record, or `None` if it could not be decoded.
    Present(Option<Box<Instance>>),
}

/// One request's view of the store: counts its KV operations and uses the isolate cache.
#[derive(Debug)]
pub struct Store<'a, K> {
    kv: &'a K,
    cache: &'a RefCell<ListCache>,
    cache_ms: u64,
    read_cache: bool,
    now: Millis,
    ops: Cell<u32>,
    skipped: Cell<u32>,
}

impl<'a, K: Kv> Store<'a, K> {
    /// A store for one request at `now`. `cache_ms == 0` turns the cache off; `read_cache ==
    /// false` (the client sent `Cache-Control: no-cache`) skips reading it but still refreshes it.
    pub fn new(
        kv: &'a K,
        cache: &'a RefCell<ListCache>,
        cache_ms: u64,
        read_cache: bool,
        now: Millis,
    ) -> Self {
        Self {
            kv,
            cache,
            cache_ms,
            read_cache,
            now,
            ops: Cell::new(0),
            skipped: Cell::new(0),
        }
    }

    /// The time this request runs at.
    pub fn now(&self) -> Millis {
        self.now
    }

    /// KV operations made so far by this request.
    pub fn kv_ops(&self) -> u32 {
        self.ops.get()
    }

    /// Stored records skipped so far because they could not be decoded.
    pub fn skipped_records(&self) -> u32 {
        self.skipped.get()
    }

    fn count_op(&self) -> Result<(), AppError> {
        let ops = self.ops.get();
        if ops >= MAX_KV_OPS {
            return Err(AppError::KvUnavailable {
                reason: format!("a request may make at most {MAX_KV_OPS} KV operations"),
            });
        }
        self.ops.set(ops + 1);
        Ok(())
    }

    /// Every stored instance of `service` (live or not; callers filter with the core).
    pub async fn service(&self, service: &ServiceName) -> Result<Rc<Vec<Instance>>, AppError> {
        self.list(&codec::service_prefix(service)).await
    }

    /// Every stored instance of every service.
    pub async fn everything(&self) -> Result<Rc<Vec<Instance>>, AppError> {
        self.list(codec::ALL_SERVICES_PREFIX).await
    }

    /// The records under `prefix`, from the cache if fresh, else from KV (one op per page).
    async fn list(&self, prefix: &str) -> Result<Rc<Vec<Instance>>, AppError> {
        if self.read_cache {
            if let Some(hit) = self.cached(prefix) {
                return Ok(hit);
            }
        }
        // Requests interleave at every await: if a write lands while this listing is in flight,
        // the listing may predate it and must not be cached.
        let generation = self.cache.borrow().generation;
        let mut instances = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            self.count_op()?;
            let page = self
                .kv
                .list(prefix, cursor.as_deref())
                .await
                .map_err(kv_down)?;
            for key in page.keys {
                match key
                    .metadata
                    .map(|metadata| codec::decode_record_value(&key.name, metadata))
                {
                    Some(Ok(instance)) => instances.push(instance),
                    // A record this version cannot read is skipped, never fatal for the
                    // lookup; it is collected by KV's expiry.
                    _ => self.skipped.set(self.skipped.get() + 1),
                }
            }
            match page.cursor {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        let instances = Rc::new(instances);
        let mut cache = self.cache.borrow_mut();
        if self.cache_ms > 0 && cache.generation == generation {
            if cache.entries.len() >= CACHE_ENTRIES {
                cache.entries.clear();
            }
            cache.entries.insert(
                prefix.to_string(),
                CachedList {
                    fetched_at: self.now,
                    instances: Rc::clone(&instances),
                },
            );
        }
        Ok(instances)
    }

    fn cached(&self, prefix: &str) -> Option<Rc<Vec<Instance>>> {
        if self.cache_ms == 0 {
            return None;
        }
        let cache = self.cache.borrow();
        let entry = cache.entries.get(prefix)?;
        let age = self.now.checked_sub(entry.fetched_at)?;
        (age < self.cache_ms).then(|| Rc::clone(&entry.instances))
    }

    /// The record of `key` as this isolate last listed it, if its listing is cached. Costs no
    /// KV operation; used to keep `registered_at` across heartbeats without a read.
    pub fn cached_instance(&self, key: &InstanceKey) -> Option<Instance> {
        let prefix = codec::service_prefix(&key.service);
        let cache = self.cache.borrow();
        let entry = cache.entries.get(&prefix)?;
        entry
            .instances
            .iter()
            .find(|i| i.version == key.version && i.id == key.id)
            .cloned()
    }

    /// Reads one instance record (one KV operation).
    pub async fn get(&self, key: &InstanceKey) -> Result<Stored, AppError> {
        let name = codec::instance_key(key);
        self.count_op()?;
        let found = self.kv.get_metadata(&name).await.map_err(kv_down)?;
        Ok(match found {
            None => Stored::Missing,
            Some(metadata) => Stored::Present(
                metadata
                    .and_then(|value| codec::decode_record_value(&name, value).ok())
                    .map(Box::new),
            ),
        })
    }

    /// Writes one instance record (one KV operation). A record over KV's metadata limit is
    /// refused before anything is written.
    pub async fn put(&self, instance: &Instance) -> Result<(), AppError> {
        let name = codec::instance_key(&instance.key());
        let record = codec::encode_record(instance)?;
        let metadata: Value = serde_json::from_str(&record).map_err(|e| AppError::Internal {
            reason: format!("record encoding failed: {e}"),
        })?;
        self.count_op()?;
        self.cache.borrow_mut().clear();
        self.kv
            .put(&name, metadata, codec::gc_ttl_seconds(instance.ttl_ms))
            .await
            .map_err(kv_down)
    }

    /// Deletes one instance record (one KV operation).
    pub async fn delete(&self, key: &InstanceKey) -> Result<(), AppError> {
        let name = codec::instance_key(key);
        self.count_op()?;
        self.cache.borrow_mut().clear();
        self.kv.delete(&name).await.map_err(kv_down)
    }
}

fn kv_down(failure: KvFailure) -> AppError {
    AppError::KvUnavailable { reason: failure.0 }
}

/// An in-memory [`Kv`] with KV's ordering and paging, for native tests.
#[cfg(test)]
pub(crate) mod memory {
    use super::*;

    /// What a [`MemoryKv`] holds per key: metadata and the `expirationTtl` it was written with.
    #[derive(Debug, Clone, PartialEq)]
    pub(crate) struct Entry {
        pub(crate) metadata: Option<Value>,
        pub(crate) expiration_ttl: u64,
    }

    /// A KV namespace in a `BTreeMap` (sorted by bytes, like KV's `list`).
    #[derive(Debug, Default)]
    pub(crate) struct MemoryKv {
        pub(crate) entries: RefCell<BTreeMap<String, Entry>>,
        /// Keys per `list` page (KV's is 1000).
        pub(crate) page_size: usize,
        /// When set, every operation fails, as when KV is down.
        pub(crate) down: Cell<bool>,
    }

    impl MemoryKv {
        pub(crate) fn new() -> Self {
            Self {
                page_size: 1000,
                ..Self::default()
            }
        }

        fn check(&self) -> Result<(), KvFailure> {
            if self.down.get() {
                Err(KvFailure("KV is down (test)".into()))
            } else {
                Ok(())
            }
        }

        /// A snapshot of everything stored, to assert that failed requests change nothing.
        pub(crate) fn snapshot(&self) -> BTreeMap<String, Entry> {
            self.entries.borrow().clone()
        }
    }

    impl Kv for MemoryKv {
        async fn list(&self, prefix: &str, cursor: Option<&str>) -> Result<ListPage, KvFailure> {
            self.check()?;
            let start: usize = cursor
                .map_or(Ok(0), str::parse)
                .map_err(|_| KvFailure("bad cursor".into()))?;
            let entries = self.entries.borrow();
            let matching: Vec<_> = entries
                .iter()
                .filter(|(name, _)| name.starts_with(prefix))
                .collect();
            let end = (start + self.page_size).min(matching.len());
            let keys = matching[start.min(end)..end]
                .iter()
                .map(|(name, entry)| ListedKey {
                    name: (*name).clone(),
                    metadata: entry.metadata.clone(),
                })
                .collect();
            let cursor = (end < matching.len()).then(|| end.to_string());
            Ok(ListPage { keys, cursor })
        }

        async fn get_metadata(&self, key: &str) -> Result<Option<Option<Value>>, KvFailure> {
            self.check()?;
            Ok(self.entries.borrow().get(key).map(|e| e.metadata.clone()))
        }

        async fn put(
            &self,
            key: &str,
            metadata: Value,
            expiration_ttl: u64,
        ) -> Result<(), KvFailure> {
            self.check()?;
            if expiration_ttl < 60 {
                return Err(KvFailure("expirationTtl must be at least 60".into()));
            }
            self.entries.borrow_mut().insert(
                key.into(),
                Entry {
                    metadata: Some(metadata),
                    expiration_ttl,
                },
            );
            Ok(())
        }

        async fn delete(&self, key: &str) -> Result<(), KvFailure> {
            self.check()?;
            self.entries.borrow_mut().remove(key);
            Ok(())
        }
    }
}

/// [`Kv`] on a Workers KV binding.
#[cfg(target_arch = "wasm32")]
pub mod workers {
    use super::*;
    use worker::kv::KvStore;

    /// The `REGISTRY` binding, or why it could not be had (reported as 503 on first use).
    #[derive(Debug)]
    pub struct WorkersKv(pub Result<KvStore, String>);

    impl WorkersKv {
        fn store(&self) -> Result<&KvStore, KvFailure> {
            self.0.as_ref().map_err(|e| KvFailure(e.clone()))
        }
    }

    fn fail(err: impl core::fmt::Display) -> KvFailure {
        KvFailure(err.to_string())
    }

    impl Kv for WorkersKv {
        async fn list(&self, prefix: &str, cursor: Option<&str>) -> Result<ListPage, KvFailure> {
            let mut request = self.store()?.list().prefix(prefix.to_string()).limit(1000);
            if let Some(cursor) = cursor {
                request = request.cursor(cursor.to_string());
            }
            let page = request.execute().await.map_err(fail)?;
            Ok(ListPage {
                keys: page
                    .keys
                    .into_iter()
                    .map(|key| ListedKey {
                        name: key.name,
                        metadata: key.metadata,
                    })
                    .collect(),
                cursor: if page.list_complete {
                    None
                } else {
                    page.cursor.filter(|c| !c.is_empty())
                },
            })
        }

        async fn get_metadata(&self, key: &str) -> Result<Option<Option<Value>>, KvFailure> {
            let (value, metadata) = self
                .store()?
                .get(key)
                .text_with_metadata::<Value>()
                .await
                .map_err(fail)?;
            Ok(value.map(|_| metadata))
        }

        async fn put(
            &self,
            key: &str,
            metadata: Value,
            expiration_ttl: u64,
        ) -> Result<(), KvFailure> {
            self.store()?
                .put(key, "")
                .map_err(fail)?
                .expiration_ttl(expiration_ttl)
                .metadata(metadata)
                .map_err(fail)?
                .execute()
                .await
                .map_err(fail)
        }

        async fn delete(&self, key: &str) -> Result<(), KvFailure> {
            self.store()?.delete(key).await.map_err(fail)
        }
    }
}
