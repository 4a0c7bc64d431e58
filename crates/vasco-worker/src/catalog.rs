//! The catalog object: one Durable Object that knows every service's summary.
//!
//! Service objects report their [`ServiceSummary`] (index and live counts per version) and the
//! [`ChangeEvent`]s behind it after every change; the catalog keeps the newest summary per
//! service ([`vasco_core::snapshot::CatalogState`]), writes the registry-wide
//! [`CatalogSnapshot`] to KV under the same one-write-a-second schedule as services, and sends
//! the events to registry-wide change-feed subscribers. Plain Rust over [`Rows`], like
//! [`crate::object`]; `durable.rs` binds it to the runtime.
//!
//! Storage: `meta` holds the snapshot schedule, `s/<name>` one summary per service.

use core::cell::RefCell;

use serde::{Deserialize, Serialize};
use vasco_core::service::ChangeEvent;
use vasco_core::snapshot::{
    CatalogSnapshot, CatalogState, Due, ServiceSummary, SnapshotSchedule, CATALOG_KEY, KV_TTL_S,
};
use vasco_core::Millis;

use crate::error::AppError;
use crate::object::{Rows, StorageFailure, RETRY_MS};

/// The name the Worker gives the one catalog object (`id_from_name`).
pub const CATALOG_OBJECT_NAME: &str = "catalog";

/// What a service object or the Worker asks the catalog object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum CatalogCommand {
    /// A service's new summary and the events that led to it.
    Report {
        /// The summary.
        summary: ServiceSummary,
        /// The events, oldest first (for registry-wide subscribers).
        #[serde(default)]
        events: Vec<ChangeEvent>,
    },
    /// The catalog as held now (a consistent read).
    Read,
}

/// The catalog object's state over its storage.
pub struct CatalogKeeper<R> {
    rows: R,
    loaded: Option<(CatalogState, SnapshotSchedule)>,
    writing: bool,
}

impl<R: Rows> CatalogKeeper<R> {
    /// An object over `rows`; nothing is read until the first call.
    pub fn new(rows: R) -> Self {
        Self {
            rows,
            loaded: None,
            writing: false,
        }
    }

    fn load(&mut self) -> Result<&mut (CatalogState, SnapshotSchedule), AppError> {
        if self.loaded.is_none() {
            let mut schedule = SnapshotSchedule::default();
            let mut summaries = Vec::new();
            for (key, value) in self.rows.load()? {
                if key == "meta" {
                    schedule = serde_json::from_str(&value)
                        .map_err(|e| StorageFailure(format!("catalog meta unreadable: {e}")))?;
                } else if let Ok(summary) = serde_json::from_str::<ServiceSummary>(&value) {
                    summaries.push(summary);
                }
            }
            self.loaded = Some((CatalogState::restore(summaries), schedule));
        }
        Ok(self.loaded.as_mut().expect("loaded above"))
    }

    /// Takes a service's report; returns whether the catalog changed (an older report than
    /// the one held changes nothing).
    pub fn report(&mut self, summary: ServiceSummary) -> Result<bool, AppError> {
        let key = format!("s/{}", summary.name);
        let json = serde_json::to_string(&summary).map_err(|e| AppError::Internal {
            reason: format!("summary not serializable: {e}"),
        })?;
        let (state, _) = self.load()?;
        if !state.apply(summary) {
            return Ok(false);
        }
        if let Err(e) = self.rows.put(&key, &json) {
            self.loaded = None;
            return Err(e.into());
        }
        Ok(true)
    }

    /// The catalog as held now.
    pub fn read(&mut self, now: Millis) -> Result<CatalogSnapshot, AppError> {
        Ok(self.load()?.0.snapshot(now))
    }

    /// The snapshot to write now, if due and none is being written.
    pub fn snapshot_due(&mut self, now: Millis) -> Option<(u64, CatalogSnapshot)> {
        if self.writing {
            return None;
        }
        let (state, schedule) = self.load().ok()?;
        let index = state.index();
        let snapshot = state.snapshot(now);
        match schedule.due(index, !snapshot.services.is_empty(), now) {
            Due::Now => Some((index, snapshot)),
            _ => None,
        }
    }

    /// When the alarm must fire next (a coalesced or failed snapshot write, or a refresh).
    pub fn next_alarm(&mut self, now: Millis) -> Option<Millis> {
        let (state, schedule) = self.load().ok()?;
        let has = state.summaries().any(|s| !s.versions.is_empty());
        match schedule.due(state.index(), has, now) {
            Due::Now => Some(now + RETRY_MS),
            Due::At(at) => Some(at),
            Due::Idle => None,
        }
    }
}

/// What the catalog object needs from its runtime.
#[allow(async_fn_in_trait)]
pub trait CatalogHost {
    /// Writes the catalog snapshot to KV.
    async fn put_snapshot(
        &self,
        key: &str,
        json: &str,
        ttl_s: u64,
    ) -> Result<(), crate::kv::KvFailure>;
    /// Sends `event` to registry-wide subscribers.
    fn publish(&self, event: &ChangeEvent);
    /// Sets the alarm.
    async fn set_alarm(&self, at: Millis);
}

/// Handles a report: stores it, publishes its events, writes the catalog snapshot when due and
/// sets the alarm. Errors: storage failures (the service object retries its report).
pub async fn report<R: Rows, H: CatalogHost>(
    object: &RefCell<CatalogKeeper<R>>,
    host: &H,
    summary: ServiceSummary,
    events: &[ChangeEvent],
    now: Millis,
) -> Result<(), AppError> {
    object.borrow_mut().report(summary)?;
    for event in events {
        host.publish(event);
    }
    settle(object, host, now).await;
    Ok(())
}

/// Writes the catalog snapshot when due and sets the alarm (also the alarm's handler).
pub async fn settle<R: Rows, H: CatalogHost>(
    object: &RefCell<CatalogKeeper<R>>,
    host: &H,
    now: Millis,
) {
    let due = object.borrow_mut().snapshot_due(now);
    if let Some((index, snapshot)) = due {
        object.borrow_mut().writing = true;
        let written = host
            .put_snapshot(CATALOG_KEY, &snapshot.encode(), KV_TTL_S)
            .await;
        let mut object = object.borrow_mut();
        object.writing = false;
        if written.is_ok() {
            if let Ok((_, schedule)) = object.load() {
                schedule.written(index, now);
                let json = serde_json::to_string(schedule).unwrap_or_default();
                if object.rows.put("meta", &json).is_err() {
                    object.loaded = None;
                }
            }
        }
    }
    let next = object.borrow_mut().next_alarm(now);
    if let Some(at) = next {
        host.set_alarm(at).await;
    }
}
