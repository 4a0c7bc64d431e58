//! The Consul agent object: the one Durable Object that knows which registry instance each
//! Consul service ID and check ID stands for.
//!
//! Consul's agent API names services and checks by ID alone (`/v1/agent/service/deregister/:id`,
//! `/v1/agent/check/pass/:check_id`), while the registry keys an instance by service, version
//! and id. Like a Consul agent's local state, this object keeps the services registered
//! through the Consul API: `service ID -> (instance key, check ID)`. It is strongly consistent,
//! so a deregistration right after a registration finds it from anywhere. It holds no health
//! and no lease: those live in each service's object, as for every other instance.
//!
//! Entries are removed by deregistration; an instance whose lease lapsed keeps its entry until
//! the same ID registers again or is deregistered (which then answers 404), bounded by the
//! number of distinct IDs ever registered.
//!
//! Storage: one row per service, `s/<service id>` -> [`AgentEntry`] JSON (a [`RowMap`]). Plain
//! Rust over [`Rows`], like [`crate::object`]; `durable.rs` binds it to the runtime.

use serde::{Deserialize, Serialize};
use vasco_core::InstanceKey;

use crate::error::AppError;
use crate::object::Rows;
use crate::row_map::{Record, RowMap};

/// The name the Worker gives the one agent object (`id_from_name`).
pub const AGENT_OBJECT_NAME: &str = "consul-agent";

/// One service registered through the Consul API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentEntry {
    /// Consul's service ID.
    pub id: String,
    /// The registry instance it became.
    pub key: InstanceKey,
    /// Its check's ID, if it has a check.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check_id: Option<String>,
}

impl Record for AgentEntry {
    const PREFIX: &'static str = "s/";
    const WHAT: &'static str = "agent entry";

    fn id(&self) -> &str {
        &self.id
    }
}

/// What the Worker asks the agent object. Wire shape: `{"op": "put", ...}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum AgentCommand {
    /// Records `entry` (replacing the entry of the same ID); answers the replaced one.
    Put {
        /// The entry.
        entry: AgentEntry,
    },
    /// The entry of a service ID.
    Get {
        /// Consul's service ID.
        id: String,
    },
    /// The entry whose check has this ID.
    GetCheck {
        /// Consul's check ID.
        check_id: String,
    },
    /// Removes a service ID; answers the removed entry.
    Remove {
        /// Consul's service ID.
        id: String,
    },
    /// Every entry, by ID.
    List,
}

/// The agent object's answer. Wire shape: `{"entry"?, "entries"?}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentReply {
    /// The entry found, replaced or removed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entry: Option<AgentEntry>,
    /// For [`AgentCommand::List`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub entries: Vec<AgentEntry>,
}

/// The agent object's state over its storage.
pub struct AgentState<R> {
    entries: RowMap<R, AgentEntry>,
}

impl<R: Rows> AgentState<R> {
    /// An object over `rows`; nothing is read until the first command.
    pub fn new(rows: R) -> Self {
        Self {
            entries: RowMap::new(rows),
        }
    }

    /// Runs `command`. Errors: storage failures (memory is then dropped and reloaded).
    pub fn apply(&mut self, command: AgentCommand) -> Result<AgentReply, AppError> {
        let result = self.apply_inner(command);
        if result.is_err() {
            self.entries.forget();
        }
        result
    }

    fn apply_inner(&mut self, command: AgentCommand) -> Result<AgentReply, AppError> {
        let mut reply = AgentReply::default();
        match command {
            AgentCommand::Put { entry } => reply.entry = self.entries.insert(entry)?,
            AgentCommand::Get { id } => reply.entry = self.entries.load()?.get(&id).cloned(),
            AgentCommand::GetCheck { check_id } => {
                reply.entry = self
                    .entries
                    .load()?
                    .values()
                    .find(|e| e.check_id.as_deref() == Some(check_id.as_str()))
                    .cloned();
            }
            AgentCommand::Remove { id } => reply.entry = self.entries.remove(&id)?,
            AgentCommand::List => {
                reply.entries = self.entries.load()?.values().cloned().collect();
            }
        }
        Ok(reply)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::object::MemoryRows;

    fn entry(id: &str, check: &str) -> AgentEntry {
        AgentEntry {
            id: id.into(),
            key: InstanceKey::parse("web", "0.0.0", id).unwrap(),
            check_id: Some(check.into()),
        }
    }

    #[test]
    fn entries_survive_a_reload_and_are_found_by_check() {
        let rows = MemoryRows::default();
        let mut agent = AgentState::new(rows.clone());
        let put = agent
            .apply(AgentCommand::Put {
                entry: entry("web-1", "service:web-1"),
            })
            .unwrap();
        assert_eq!(put.entry, None);
        let mut again = AgentState::new(rows);
        let found = again
            .apply(AgentCommand::GetCheck {
                check_id: "service:web-1".into(),
            })
            .unwrap();
        assert_eq!(found.entry.unwrap().id, "web-1");
        let removed = again
            .apply(AgentCommand::Remove { id: "web-1".into() })
            .unwrap();
        assert!(removed.entry.is_some());
        assert!(again
            .apply(AgentCommand::Get { id: "web-1".into() })
            .unwrap()
            .entry
            .is_none());
        assert!(again.apply(AgentCommand::List).unwrap().entries.is_empty());
    }
}
