//! The edge read path: membership snapshots from Workers KV, one `get` each, with a short
//! per-isolate cache.
//!
//! What a snapshot is and when objects write one is decided in [`vasco_core::snapshot`]; this
//! module reads them. A missing snapshot is an empty service at index 0 (never registered, its
//! last member left long ago, or its first snapshot has not reached this location yet).

use core::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

use vasco_core::snapshot::{snapshot_key, CatalogSnapshot, Snapshot, CATALOG_KEY, MIN_INTERVAL_MS};
use vasco_core::{Millis, ServiceName};

use crate::error::AppError;
use crate::kv::{Kv, OpCounter};

/// Most snapshots kept in one isolate's cache; past this the cache starts over.
pub const CACHE_ENTRIES: usize = 256;

/// A value read from KV and when.
#[derive(Debug, Clone)]
struct Cached {
    fetched_at: Millis,
    value: Option<Rc<String>>,
}

/// Snapshots read by this isolate, by KV key. Lives as long as the isolate.
#[derive(Debug, Default)]
pub struct SnapshotCache {
    entries: BTreeMap<String, Cached>,
    /// Keys not to serve from (or store in) the cache until the given time: the service changed
    /// through this isolate and its object may still be writing the new snapshot (writes are
    /// coalesced to one a second).
    held: BTreeMap<String, Millis>,
    /// Bumped by every write through this isolate: a read that started before a write must not
    /// be cached after it (requests interleave at every await).
    generation: u64,
}

impl SnapshotCache {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many keys are held.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Drops `key` and bypasses the cache for it until `until` (ms): this isolate just changed
    /// the service through its object.
    pub fn forget(&mut self, key: &str, until: Millis) {
        self.entries.remove(key);
        self.held.retain(|_, t| *t > until.saturating_sub(60_000));
        self.held.insert(key.to_string(), until);
        self.generation = self.generation.wrapping_add(1);
    }

    fn is_held(&self, key: &str, now: Millis) -> bool {
        self.held.get(key).is_some_and(|until| now < *until)
    }
}

/// One request's view of the snapshots: counts its KV operations and uses the isolate cache.
#[derive(Debug)]
pub struct Snapshots<'a, K> {
    kv: &'a K,
    cache: &'a RefCell<SnapshotCache>,
    cache_ms: u64,
    read_cache: bool,
    now: Millis,
    /// This request's KV operations.
    pub ops: &'a OpCounter,
}

impl<'a, K: Kv> Snapshots<'a, K> {
    /// A view for one request at `now`. `cache_ms == 0` turns the cache off; `read_cache ==
    /// false` (the client sent `Cache-Control: no-cache`) skips reading it but still refreshes it.
    pub fn new(
        kv: &'a K,
        cache: &'a RefCell<SnapshotCache>,
        cache_ms: u64,
        read_cache: bool,
        now: Millis,
        ops: &'a OpCounter,
    ) -> Self {
        Self {
            kv,
            cache,
            cache_ms,
            read_cache,
            now,
            ops,
        }
    }

    /// The snapshot of `service`, or an empty one at index 0 when KV has none. A snapshot this
    /// version cannot read counts as none (it is rewritten at the service's next change).
    pub async fn service(&self, service: &ServiceName) -> Result<Snapshot, AppError> {
        let value = self.get(&snapshot_key(service)).await?;
        Ok(value
            .and_then(|json| Snapshot::decode(service, &json).ok())
            .unwrap_or_else(|| Snapshot::new(service.clone(), 0, 0, [])))
    }

    /// The registry-wide catalog, or an empty one when KV has none.
    pub async fn catalog(&self) -> Result<CatalogSnapshot, AppError> {
        let value = self.get(CATALOG_KEY).await?;
        Ok(value
            .and_then(|json| CatalogSnapshot::decode(&json).ok())
            .unwrap_or_default())
    }

    /// Drops `service`'s snapshot (and the catalog) from the isolate cache and reads them from
    /// KV for the next two seconds, while the object's coalesced snapshot write may be pending.
    pub fn forget(&self, service: &ServiceName) {
        let until = self.now.saturating_add(2 * MIN_INTERVAL_MS);
        let mut cache = self.cache.borrow_mut();
        cache.forget(&snapshot_key(service), until);
        cache.forget(CATALOG_KEY, until);
    }

    async fn get(&self, key: &str) -> Result<Option<Rc<String>>, AppError> {
        let held = self.cache.borrow().is_held(key, self.now);
        if self.read_cache && self.cache_ms > 0 && !held {
            let cache = self.cache.borrow();
            if let Some(hit) = cache.entries.get(key) {
                if self
                    .now
                    .checked_sub(hit.fetched_at)
                    .is_some_and(|age| age < self.cache_ms)
                {
                    return Ok(hit.value.clone());
                }
            }
        }
        self.ops.count()?;
        let generation = self.cache.borrow().generation;
        let value = self.kv.get(key).await?.map(Rc::new);
        if self.cache_ms > 0 && !held && self.cache.borrow().generation == generation {
            let mut cache = self.cache.borrow_mut();
            if cache.entries.len() >= CACHE_ENTRIES {
                cache.entries.clear();
            }
            cache.entries.insert(
                key.to_string(),
                Cached {
                    fetched_at: self.now,
                    value: value.clone(),
                },
            );
        }
        Ok(value)
    }
}
