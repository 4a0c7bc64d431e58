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

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;
    use crate::object::MemoryRows;

    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    struct Note {
        id: String,
        text: String,
    }

    impl Record for Note {
        const PREFIX: &'static str = "n/";
        const WHAT: &'static str = "note";

        fn id(&self) -> &str {
            &self.id
        }
    }

    fn note(id: &str, text: &str) -> Note {
        Note {
            id: id.into(),
            text: text.into(),
        }
    }

    #[test]
    fn insert_answers_the_replaced_record_and_rows_outlive_memory() {
        let rows = MemoryRows::default();
        rows.put("n/bad", "not json").unwrap();
        rows.put("x/other", r#"{"id":"other","text":"elsewhere"}"#)
            .unwrap();
        let mut map: RowMap<_, Note> = RowMap::new(rows.clone());
        // A cold map loads before it writes: the first insert replaces nothing.
        assert_eq!(map.insert(note("a", "one")).unwrap(), None);
        assert_eq!(
            map.insert(note("a", "two")).unwrap(),
            Some(note("a", "one"))
        );
        map.insert(note("b", "three")).unwrap();
        assert_eq!(map.remove("b").unwrap(), Some(note("b", "three")));
        assert_eq!(map.remove("b").unwrap(), None);

        // Another map over the same rows reads what was written, ignoring unreadable rows and
        // rows under other prefixes.
        let mut again: RowMap<_, Note> = RowMap::new(rows.clone());
        let loaded: Vec<_> = again.load().unwrap().values().cloned().collect();
        assert_eq!(loaded, [note("a", "two")]);
        assert!(rows.0.borrow().contains_key("x/other"));
        assert!(!rows.0.borrow().contains_key("n/b"));
    }
}
