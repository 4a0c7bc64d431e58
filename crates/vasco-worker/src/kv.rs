//! Workers KV as the registry uses it: one value per key (the membership snapshots of
//! [`vasco_core::snapshot`]), with every operation counted for the `x-vasco-kv-ops` header.
//!
//! [`Kv`] is the seam: the Worker implements it on the `worker` crate's `KvStore`
//! (`workers::WorkersKv`, wasm only), tests on an in-memory map (`memory::MemoryKv`, native only) and on a double
//! that lags like KV between locations (in the native tests).

use core::cell::Cell;

use crate::error::AppError;

/// Cloudflare allows at most 1000 KV operations per Worker invocation; refuse before that.
pub const MAX_KV_OPS: u32 = 1000;

/// A KV operation failed (network, quota, binding missing).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KvFailure(pub String);

impl From<KvFailure> for AppError {
    fn from(failure: KvFailure) -> Self {
        AppError::KvUnavailable { reason: failure.0 }
    }
}

/// The KV operations the registry needs. Every call is one billable KV operation.
///
/// Futures need not be `Send`: a Worker isolate is single-threaded.
#[allow(async_fn_in_trait)]
pub trait Kv {
    /// The value of `key`, or `None` when it does not exist (or has not reached this location).
    async fn get(&self, key: &str) -> Result<Option<String>, KvFailure>;
    /// Writes `key`, expiring after `expiration_ttl` seconds (KV refuses less than 60).
    async fn put(&self, key: &str, value: &str, expiration_ttl: u64) -> Result<(), KvFailure>;
}

impl<K: Kv> Kv for &K {
    async fn get(&self, key: &str) -> Result<Option<String>, KvFailure> {
        (**self).get(key).await
    }

    async fn put(&self, key: &str, value: &str, expiration_ttl: u64) -> Result<(), KvFailure> {
        (**self).put(key, value, expiration_ttl).await
    }
}

/// Counts one request's KV operations and refuses the one past [`MAX_KV_OPS`].
#[derive(Debug, Default)]
pub struct OpCounter(Cell<u32>);

impl OpCounter {
    /// Operations counted so far.
    pub fn get(&self) -> u32 {
        self.0.get()
    }

    /// Adds `n` operations made elsewhere on this request's behalf (by a Durable Object).
    pub fn add(&self, n: u32) {
        self.0.set(self.0.get().saturating_add(n));
    }

    /// Counts one more operation. Errors: `KvUnavailable` past [`MAX_KV_OPS`].
    pub fn count(&self) -> Result<(), AppError> {
        let ops = self.0.get();
        if ops >= MAX_KV_OPS {
            return Err(AppError::KvUnavailable {
                reason: format!("a request may make at most {MAX_KV_OPS} KV operations"),
            });
        }
        self.0.set(ops + 1);
        Ok(())
    }
}

/// An in-memory [`Kv`], for native tests.
#[cfg(any(test, not(target_arch = "wasm32")))]
pub mod memory {
    use core::cell::RefCell;
    use std::collections::BTreeMap;

    use super::*;

    /// What a [`MemoryKv`] holds per key.
    #[derive(Debug, Clone, PartialEq)]
    pub struct Entry {
        /// The value.
        pub value: String,
        /// The `expirationTtl` it was written with, in seconds.
        pub expiration_ttl: u64,
    }

    /// A KV namespace in a `BTreeMap`, instantly consistent (like local `wrangler dev`).
    #[derive(Debug, Default)]
    pub struct MemoryKv {
        /// Everything stored.
        pub entries: RefCell<BTreeMap<String, Entry>>,
        /// When set, every operation fails, as when KV is down.
        pub down: Cell<bool>,
        /// The key of every put made so far, in order.
        pub put_log: RefCell<Vec<String>>,
        /// Gets made so far.
        pub gets: Cell<u32>,
    }

    impl MemoryKv {
        /// An empty namespace.
        pub fn new() -> Self {
            Self::default()
        }

        fn check(&self) -> Result<(), KvFailure> {
            if self.down.get() {
                Err(KvFailure("KV is down (test)".into()))
            } else {
                Ok(())
            }
        }

        /// How many puts were made to `key`.
        pub fn puts_of(&self, key: &str) -> usize {
            self.put_log.borrow().iter().filter(|k| *k == key).count()
        }

        /// A copy of everything stored, to assert that failed requests change nothing.
        pub fn snapshot(&self) -> BTreeMap<String, Entry> {
            self.entries.borrow().clone()
        }
    }

    impl Kv for MemoryKv {
        async fn get(&self, key: &str) -> Result<Option<String>, KvFailure> {
            self.check()?;
            self.gets.set(self.gets.get() + 1);
            Ok(self.entries.borrow().get(key).map(|e| e.value.clone()))
        }

        async fn put(&self, key: &str, value: &str, expiration_ttl: u64) -> Result<(), KvFailure> {
            self.check()?;
            if expiration_ttl < vasco_core::codec::KV_MIN_TTL_S {
                return Err(KvFailure("expirationTtl must be at least 60".into()));
            }
            self.put_log.borrow_mut().push(key.into());
            self.entries.borrow_mut().insert(
                key.into(),
                Entry {
                    value: value.into(),
                    expiration_ttl,
                },
            );
            Ok(())
        }
    }
}

/// [`Kv`] on a Workers KV binding.
#[cfg(target_arch = "wasm32")]
pub mod workers {
    use super::*;
    use worker::kv::KvStore;

    /// A KV binding, or why it could not be had (reported as 503 on first use).
    #[derive(Debug)]
    pub struct WorkersKv(pub Result<KvStore, String>);

    impl WorkersKv {
        /// The binding `name` of `env`.
        pub fn from_env(env: &worker::Env, name: &str) -> Self {
            Self(env.kv(name).map_err(|e| {
                format!("the KV namespace binding `{name}` is missing ({e}); see wrangler.toml")
            }))
        }

        fn store(&self) -> Result<&KvStore, KvFailure> {
            self.0.as_ref().map_err(|e| KvFailure(e.clone()))
        }
    }

    fn fail(err: impl core::fmt::Display) -> KvFailure {
        KvFailure(err.to_string())
    }

    impl Kv for WorkersKv {
        async fn get(&self, key: &str) -> Result<Option<String>, KvFailure> {
            self.store()?.get(key).text().await.map_err(fail)
        }

        async fn put(&self, key: &str, value: &str, expiration_ttl: u64) -> Result<(), KvFailure> {
            self.store()?
                .put(key, value)
                .map_err(fail)?
                .expiration_ttl(expiration_ttl)
                .execute()
                .await
                .map_err(fail)
        }
    }
}
