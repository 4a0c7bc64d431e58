//! When a client's cached answer still serves.
//!
//! The client keeps the last resolved instance lists. This policy says whether a cached entry
//! is fresh, should be refreshed in the background while still serving (so callers never wait
//! on the registry for a hot entry), or is stale and may only be served when the registry
//! cannot be reached (stale-if-error).

use crate::instance::Millis;

/// How long cached answers live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CachePolicy {
    /// Age up to which an entry is served without any refresh.
    pub fresh_ms: u64,
    /// Age from which a still-fresh entry triggers a background refresh.
    pub refresh_after_ms: u64,
    /// Age up to which a stale entry may be served when the registry fails.
    pub stale_if_error_ms: u64,
}

impl Default for CachePolicy {
    fn default() -> Self {
        Self {
            fresh_ms: 5_000,
            refresh_after_ms: 3_000,
            stale_if_error_ms: 5 * 60_000,
        }
    }
}

/// What to do with a cached entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Freshness {
    /// Serve it.
    Fresh,
    /// Serve it and refresh in the background.
    RefreshAhead,
    /// Fetch again; serve it only if that fails.
    Stale,
    /// Too old even for stale-if-error: fetch, and fail if fetching fails.
    Expired,
}

impl CachePolicy {
    /// Classifies an entry fetched at `fetched_at`, at `now`. A clock that went backwards
    /// counts as age zero.
    pub fn freshness(&self, fetched_at: Millis, now: Millis) -> Freshness {
        let age = now.saturating_sub(fetched_at);
        if age < self.refresh_after_ms.min(self.fresh_ms) {
            Freshness::Fresh
        } else if age < self.fresh_ms {
            Freshness::RefreshAhead
        } else if age < self.stale_if_error_ms {
            Freshness::Stale
        } else {
            Freshness::Expired
        }
    }

    /// Whether an entry in this state may answer a caller when the registry failed.
    pub fn serves_on_error(&self, freshness: Freshness) -> bool {
        freshness != Freshness::Expired
    }
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;

    #[test]
    fn boundaries() {
        let policy = CachePolicy {
            fresh_ms: 5_000,
            refresh_after_ms: 3_000,
            stale_if_error_ms: 60_000,
        };
        let at = |age: u64| policy.freshness(1_000, 1_000 + age);
        assert_eq!(at(0), Freshness::Fresh);
        assert_eq!(at(2_999), Freshness::Fresh);
        assert_eq!(at(3_000), Freshness::RefreshAhead);
        assert_eq!(at(4_999), Freshness::RefreshAhead);
        assert_eq!(at(5_000), Freshness::Stale);
        assert_eq!(at(59_999), Freshness::Stale);
        assert_eq!(at(60_000), Freshness::Expired);
        assert_eq!(policy.freshness(1_000, 0), Freshness::Fresh);
        assert!(policy.serves_on_error(Freshness::Stale));
        assert!(!policy.serves_on_error(Freshness::Expired));
    }
}
