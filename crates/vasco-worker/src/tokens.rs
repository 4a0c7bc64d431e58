//! The token object: the one Durable Object that stores access tokens ([`vasco_core::acl`]).
//!
//! Strongly consistent, so a revocation holds at once everywhere: every request with a scoped
//! token asks it (one object request), no isolate caches a verdict. It stores each token's
//! record with the SHA-256 of its secret, never the secret; `last_used_at` is written at most
//! once a minute. Plain Rust over [`Rows`], like [`crate::object`]; `durable.rs` binds it.
//!
//! Storage: one row per token, `t/<id>` -> [`TokenRecord`] JSON (a [`RowMap`]).

use serde::{Deserialize, Serialize};
use vasco_core::acl::TokenRecord;
use vasco_core::Millis;

use crate::error::AppError;
use crate::object::Rows;
use crate::row_map::{Record, RowMap};

/// The name the Worker gives the one token object (`id_from_name`).
pub const TOKENS_OBJECT_NAME: &str = "tokens";

/// The most tokens one registry keeps.
pub const MAX_TOKENS: usize = 1000;

/// What the Worker asks the token object. Wire shape: `{"op": "verify", ...}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum TokenCommand {
    /// Stores a new token.
    Create {
        /// Its record (with the secret's hash).
        record: TokenRecord,
    },
    /// Every token, without hashes.
    List,
    /// Revokes a token; answers it (without hash), or nothing when unknown.
    Delete {
        /// Its id.
        id: String,
    },
    /// Checks a token's secret (by hash) at `now`; answers its record (without hash) when
    /// valid, nothing otherwise, and records the use.
    Verify {
        /// Its id.
        id: String,
        /// The SHA-256 (hex) of the secret presented.
        secret_hash: String,
        /// The request's time.
        now: Millis,
    },
}

/// The token object's answer. Wire shape: `{"record"?, "records"?}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenReply {
    /// The token found, created or revoked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record: Option<TokenRecord>,
    /// For [`TokenCommand::List`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub records: Vec<TokenRecord>,
}

impl Record for TokenRecord {
    const PREFIX: &'static str = "t/";
    const WHAT: &'static str = "token record";

    fn id(&self) -> &str {
        &self.id
    }
}

/// The token object's state over its storage.
pub struct TokenStore<R> {
    records: RowMap<R, TokenRecord>,
}

impl<R: Rows> TokenStore<R> {
    /// A store over `rows`; nothing is read until the first command.
    pub fn new(rows: R) -> Self {
        Self {
            records: RowMap::new(rows),
        }
    }

    /// Runs `command`. Errors: storage failures (memory is then reloaded), too many tokens.
    pub fn apply(&mut self, command: TokenCommand) -> Result<TokenReply, AppError> {
        let result = self.apply_inner(command);
        if matches!(result, Err(AppError::StorageUnavailable { .. })) {
            self.records.forget();
        }
        result
    }

    fn apply_inner(&mut self, command: TokenCommand) -> Result<TokenReply, AppError> {
        let mut reply = TokenReply::default();
        match command {
            TokenCommand::Create { record } => {
                if self.records.load()?.len() >= MAX_TOKENS {
                    return Err(AppError::invalid(
                        "policies",
                        format!("this registry already keeps {MAX_TOKENS} tokens; revoke some"),
                    ));
                }
                reply.record = Some(record.listed());
                self.records.insert(record)?;
            }
            TokenCommand::List => {
                reply.records = self
                    .records
                    .load()?
                    .values()
                    .map(TokenRecord::listed)
                    .collect();
            }
            TokenCommand::Delete { id } => {
                reply.record = self.records.remove(&id)?.map(|r| r.listed());
            }
            TokenCommand::Verify {
                id,
                secret_hash,
                now,
            } => {
                let records = self.records.load()?;
                let Some(record) = records.get_mut(&id) else {
                    return Ok(reply);
                };
                if !record.verify_hash(&secret_hash, now) {
                    return Ok(reply);
                }
                let write = record.used(now).then(|| record.clone());
                reply.record = Some(record.listed());
                if let Some(record) = write {
                    // A failed use-time write does not refuse the request.
                    let _ = self.records.put(&record);
                }
            }
        }
        Ok(reply)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::object::MemoryRows;
    use vasco_core::acl::{hash_secret, parse_token, TokenRequest};

    #[test]
    fn create_verify_revoke_and_no_secret_in_storage() {
        let rows = MemoryRows::default();
        let mut store = TokenStore::new(rows.clone());
        let request = TokenRequest::from_json(r#"{"policies":[{"write":["api"]}]}"#, 0).unwrap();
        let (record, text) = TokenRecord::issue(request, [3; 32], 0);
        let (id, secret) = parse_token(&text).unwrap();
        store
            .apply(TokenCommand::Create {
                record: record.clone(),
            })
            .unwrap();
        let stored: String = rows.0.borrow().values().cloned().collect();
        assert!(!stored.contains(secret), "the secret is never stored");
        let verify = |store: &mut TokenStore<MemoryRows>, hash: &str| {
            store
                .apply(TokenCommand::Verify {
                    id: id.into(),
                    secret_hash: hash.into(),
                    now: 5,
                })
                .unwrap()
                .record
        };
        assert!(verify(&mut store, &hash_secret(secret)).is_some());
        assert!(verify(&mut store, &hash_secret("nope")).is_none());
        // A new object (after eviction) reads the same tokens.
        let mut again = TokenStore::new(rows);
        assert_eq!(again.apply(TokenCommand::List).unwrap().records.len(), 1);
        again.apply(TokenCommand::Delete { id: id.into() }).unwrap();
        assert!(verify(&mut again, &hash_secret(secret)).is_none());
    }
}
