//! A map of JSON records by id over an object's [`Rows`], one row each, read on first use:
//! the state of the agent object ([`crate::agent`]) and the token object ([`crate::tokens`]).
//!
//! Storage: `<prefix><id>` -> the record's JSON. A row under the prefix that this version
//! cannot read is dropped when loading, not fatal; rows under other prefixes are ignored.

use std::collections::BTreeMap;

use serde::{de::DeserializeOwned, Serialize};

use crate::error::AppError;
use crate::object::Rows;

/// A record a [`RowMap`] keeps.
pub trait Record: Serialize + DeserializeOwned {
    /// The prefix of its rows' keys, e.g. `s/`.
    const PREFIX: &'static str;
    /// What it is, for the (internal) error of a record that cannot be serialized.
    const WHAT: &'static str;
    /// Its id: the map's key and the rest of its row's key.
    fn id(&self) -> &str;
}

/// Records by id over `rows`; memory is a cache of the rows, loaded on first use.
pub struct RowMap<R, T> {
    rows: R,
    records: Option<BTreeMap<String, T>>,
}

impl<R: Rows, T: Record> RowMap<R, T> {
    /// A map over `rows`; nothing is read until the first call.
    pub fn new(rows: R) -> Self {
        Self {
            rows,
            records: None,
        }
    }

    /// Every record by id, loading them first if memory holds none. Errors: storage failures.
    pub fn load(&mut self) -> Result<&mut BTreeMap<String, T>, AppError> {
        if self.records.is_none() {
            let mut records = BTreeMap::new();
            for (key, value) in self.rows.load()? {
                if key.starts_with(T::PREFIX) {
                    // A row this version cannot read is dropped, not fatal.
                    if let Ok(record) = serde_json::from_str::<T>(&value) {
                        records.insert(record.id().to_string(), record);
                    }
                }
            }
            self.records = Some(records);
        }
        Ok(self.records.as_mut().expect("loaded above"))
    }

    /// Writes `record`'s row (memory is the caller's: use it for a record changed in place).
    /// Errors: `internal` when it cannot be serialized, storage failures.
    pub fn put(&self, record: &T) -> Result<(), AppError> {
        let json = serde_json::to_string(record).map_err(|e| AppError::Internal {
            reason: format!("{} unwritable: {e}", T::WHAT),
        })?;
        Ok(self.rows.put(&row_key::<T>(record.id()), &json)?)
    }

    /// Stores `record` (row and memory), replacing the one of the same id; answers the
    /// replaced one. Errors: as [`RowMap::load`] and [`RowMap::put`].
    pub fn insert(&mut self, record: T) -> Result<Option<T>, AppError> {
        // Loaded before the write, so the new row is not read back as the replaced record.
        self.load()?;
        self.put(&record)?;
        Ok(self.load()?.insert(record.id().to_string(), record))
    }

    /// Removes the record `id` (row and memory); answers it, or `None` when unknown.
    /// Errors: storage failures.
    pub fn remove(&mut self, id: &str) -> Result<Option<T>, AppError> {
        let removed = self.load()?.remove(id);
        if removed.is_some() {
            self.rows.delete(&row_key::<T>(id))?;
        }
        Ok(removed)
    }

    /// Drops memory; the next call reloads the rows (after a failure left it unsure).
    pub fn forget(&mut self) {
        self.records = None;
    }
}

fn row_key<T: Record>(id: &str) -> String {
    format!("{}{id}", T::PREFIX)
}
