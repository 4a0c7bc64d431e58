//! When a client's cached answer still serves.
//!
//! The client keeps the last resolved instance lists. This policy says whether a cached entry
//! is fresh, should be refreshed in the background while still serving (so callers never wait
//! on the registry for a hot entry), or is stale and may only be served when the registry
//! cannot be reached (stale-if-error).
//!
//! Answers also hold leases, which end on the *registry's* clock. [`RegistryClock`] turns a
//! registry timestamp (`x-vasco-now`) into a safe local deadline, and
//! [`CachePolicy::freshness_until`] ends an answer's life no later than the first lease in it
//! ends, so a client never answers with an instance whose lease has ended while the registry
//! can be asked.

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
        if age < self.refresh_after() {
            Freshness::Fresh
        } else if age < self.fresh_ms {
            Freshness::RefreshAhead
        } else if age < self.stale_if_error_ms {
            Freshness::Stale
        } else {
            Freshness::Expired
        }
    }

    /// Like [`CachePolicy::freshness`], for an entry whose first lease ends at local time
    /// `lease_end` (see [`RegistryClock::local_deadline`]): its life is cut to end there, and
    /// its background refresh starts at the same fraction of that shorter life
    /// (`refresh_after_ms / fresh_ms`), so a steadily used answer is renewed before a lease in
    /// it can end. Past `lease_end` the entry is [`Freshness::Stale`] at best: it must be
    /// fetched again, and is served only if that fails (stale-if-error: while the registry
    /// cannot be reached, nobody can tell whether the lease was renewed).
    pub fn freshness_until(&self, fetched_at: Millis, lease_end: Millis, now: Millis) -> Freshness {
        let age = now.saturating_sub(fetched_at);
        let life = lease_end.saturating_sub(fetched_at);
        if life >= self.fresh_ms {
            return self.freshness(fetched_at, now);
        }
        let refresh_at = self.refresh_at(life);
        if now < lease_end && age < refresh_at {
            Freshness::Fresh
        } else if now < lease_end {
            Freshness::RefreshAhead
        } else if age < self.stale_if_error_ms {
            Freshness::Stale
        } else {
            Freshness::Expired
        }
    }

    /// When an entry fetched at `fetched_at`, whose first lease ends at local time
    /// `lease_end`, stops being [`Freshness::Fresh`] (`.0`) and stops being servable without a
    /// fetch (`.1`, the start of [`Freshness::Stale`]), per
    /// [`CachePolicy::freshness_until`]. Lets a caller memoize answers until then.
    pub fn fresh_until(&self, fetched_at: Millis, lease_end: Millis) -> (Millis, Millis) {
        let life = lease_end.saturating_sub(fetched_at);
        if life >= self.fresh_ms {
            return (
                fetched_at.saturating_add(self.refresh_after()),
                fetched_at.saturating_add(self.fresh_ms),
            );
        }
        (fetched_at.saturating_add(self.refresh_at(life)), lease_end)
    }

    /// The age (ms) at which an entry with a `life` shorter than `fresh_ms` starts its
    /// background refresh: the same fraction of `life` as `refresh_after_ms` is of `fresh_ms`.
    fn refresh_at(&self, life: u64) -> u64 {
        (u128::from(life) * u128::from(self.refresh_after()) / u128::from(self.fresh_ms.max(1)))
            as u64
    }

    /// The age (ms) at which a full-life entry starts its background refresh: never later
    /// than it stops being fresh.
    fn refresh_after(&self) -> u64 {
        self.refresh_after_ms.min(self.fresh_ms)
    }

    /// Whether an entry in this state may answer a caller when the registry failed.
    pub fn serves_on_error(&self, freshness: Freshness) -> bool {
        freshness != Freshness::Expired
    }
}

/// What a client knows of the registry's clock, from the time stamp (`x-vasco-now`, ms since
/// the Unix epoch) on one of its answers. Leases end on the registry's clock, which need not
/// agree with the client's.
///
/// The registry stamped the answer after the request was sent (local time `sent`), so at
/// local time `t` its clock reads at most `registry_now + (t - sent)`: this upper bound is the
/// estimate. It errs towards "later", so a lease judged live by it is live on the registry
/// (drift between the two clocks over one cache lifetime aside); the price is ending a
/// lease up to one round trip early, which only makes the client ask again sooner.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RegistryClock {
    /// Registry time minus local time (at most), in ms.
    ahead_ms: i64,
}

impl RegistryClock {
    /// The registry shares the client's clock (an in-process registry), or its answer carried
    /// no time stamp.
    pub const LOCAL: Self = Self { ahead_ms: 0 };

    /// From an answer stamped `registry_now` by the registry, to a request sent at local time
    /// `sent`.
    pub fn from_answer(sent: Millis, registry_now: Millis) -> Self {
        let ahead = i128::from(registry_now) - i128::from(sent);
        Self {
            ahead_ms: ahead.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64,
        }
    }

    /// The latest the registry's clock can read at local time `local`.
    pub fn registry_time(&self, local: Millis) -> Millis {
        shift(local, self.ahead_ms)
    }

    /// The local time from which a lease ending at registry time `expires_at` may have ended
    /// (the first local time at which [`lease_serves`] could be false on the registry).
    pub fn local_deadline(&self, expires_at: Millis) -> Millis {
        shift(expires_at, self.ahead_ms.saturating_neg())
    }
}

fn shift(time: Millis, by: i64) -> Millis {
    let shifted = i128::from(time) + i128::from(by);
    shifted.clamp(0, i128::from(Millis::MAX)) as Millis
}

/// Whether an instance whose lease ends at `expires_at` may be handed out at registry time
/// `registry_now`: only before its lease ends (the registry's own rule, `Instance::is_live`).
pub fn lease_serves(expires_at: Millis, registry_now: Millis) -> bool {
    registry_now < expires_at
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

    #[test]
    fn leases_cut_an_answer_short() {
        let policy = CachePolicy {
            fresh_ms: 5_000,
            refresh_after_ms: 3_000,
            stale_if_error_ms: 60_000,
        };
        let t0 = 1_000_000;
        // A lease longer than the cache life changes nothing.
        for age in [0, 2_999, 3_000, 4_999, 5_000, 59_999, 60_000] {
            assert_eq!(
                policy.freshness_until(t0, t0 + 7_000, t0 + age),
                policy.freshness(t0, t0 + age),
                "{age}"
            );
        }
        assert_eq!(
            policy.freshness_until(t0, Millis::MAX, t0 + 1),
            Freshness::Fresh
        );
        // A lease ending 1 s in: refreshed from 600 ms, stale from 1 s.
        let at = |age: u64| policy.freshness_until(t0, t0 + 1_000, t0 + age);
        assert_eq!(at(0), Freshness::Fresh);
        assert_eq!(at(599), Freshness::Fresh);
        assert_eq!(at(600), Freshness::RefreshAhead);
        assert_eq!(at(999), Freshness::RefreshAhead);
        assert_eq!(at(1_000), Freshness::Stale);
        assert_eq!(at(59_999), Freshness::Stale);
        assert_eq!(at(60_000), Freshness::Expired);
        // fresh_until names the same boundaries.
        assert_eq!(policy.fresh_until(t0, t0 + 1_000), (t0 + 600, t0 + 1_000));
        assert_eq!(policy.fresh_until(t0, t0 + 9_000), (t0 + 3_000, t0 + 5_000));
        assert_eq!(
            policy.fresh_until(t0, Millis::MAX),
            (t0 + 3_000, t0 + 5_000)
        );
        // A lease that had already ended when the answer arrived is never fresh.
        assert_eq!(policy.freshness_until(t0, t0 - 5, t0), Freshness::Stale);
    }

    #[test]
    fn the_registry_clock_errs_late() {
        // Sent at local 10_000; the registry stamped 20_000 (its clock is ~10 s ahead).
        let clock = RegistryClock::from_answer(10_000, 20_000);
        assert_eq!(clock.registry_time(10_500), 20_500);
        // A lease ending at registry time 21_000 may have ended from local 11_000 on.
        assert_eq!(clock.local_deadline(21_000), 11_000);
        assert!(lease_serves(21_000, clock.registry_time(10_999)));
        assert!(!lease_serves(21_000, clock.registry_time(11_000)));
        // A registry clock behind ours.
        let behind = RegistryClock::from_answer(10_000, 4_000);
        assert_eq!(behind.local_deadline(5_000), 11_000);
        assert_eq!(behind.registry_time(0), 0, "clamped, not wrapped");
        assert_eq!(RegistryClock::LOCAL.local_deadline(77), 77);
        let far_ahead = RegistryClock::from_answer(0, Millis::MAX);
        assert_eq!(far_ahead.local_deadline(0), 0, "clamped, not wrapped");
        assert_eq!(far_ahead.registry_time(Millis::MAX), Millis::MAX);
        // The estimate never reads earlier than the registry's real clock: whenever the
        // registry stamped the answer between sending and receiving, the real clock at any
        // later local time is at most the estimate.
        let sent = 50_000;
        for stamped_after in [0u64, 1, 40, 250] {
            let offset = 7_000u64; // registry = local + 7 s
            let registry_now = sent + stamped_after + offset;
            let clock = RegistryClock::from_answer(sent, registry_now);
            for later in [0u64, 10, 1_000] {
                let local = sent + stamped_after + later;
                assert!(clock.registry_time(local) >= local + offset);
            }
        }
    }
}
