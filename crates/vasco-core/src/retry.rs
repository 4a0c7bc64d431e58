//! When to try again: heartbeat jitter and retry backoff for clients.
//!
//! The original Vasco retried in an unbounded tight loop; here every retry waits an
//! exponentially growing, jittered delay with a ceiling, and the caller decides how many
//! attempts to make.

use crate::{instance::heartbeat_period_ms, rng::Rng};

/// Exponential backoff with "full jitter": attempt `n` waits a uniform delay in
/// `[0, min(max, base * 2^n)]`, which spreads a crowd of clients that failed together.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The ceiling of the first retry's delay.
    pub base_ms: u64,
    /// The ceiling of every delay.
    pub max_ms: u64,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            base_ms: 100,
            max_ms: 30_000,
        }
    }
}

impl Backoff {
    /// The ceiling for retry number `attempt` (0 is the first retry).
    pub fn ceiling_ms(&self, attempt: u32) -> u64 {
        self.base_ms
            .saturating_mul(1u64 << attempt.min(32))
            .min(self.max_ms)
    }

    /// The delay before retry number `attempt`.
    pub fn delay_ms(&self, attempt: u32, rng: &mut impl Rng) -> u64 {
        let ceiling = self.ceiling_ms(attempt);
        // `below` takes usize; ceilings beyond u32 are clamped, far above any sane max.
        let span = usize::try_from(ceiling.min(u64::from(u32::MAX))).unwrap_or(usize::MAX);
        rng.below(span.saturating_add(1)) as u64
    }
}

/// The delay until the next heartbeat for a lease of `ttl_ms`: the period of
/// [`heartbeat_period_ms`] minus up to 20% jitter, so instances started together do not beat
/// in lockstep and the lease always keeps at least two periods of margin.
pub fn heartbeat_delay_ms(ttl_ms: u64, rng: &mut impl Rng) -> u64 {
    let period = heartbeat_period_ms(ttl_ms);
    let jitter = period / 5;
    let span = usize::try_from(jitter.min(u64::from(u32::MAX))).unwrap_or(0);
    period - rng.below(span + 1) as u64
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;
    use crate::rng::SplitMix64;

    #[test]
    fn ceilings_double_up_to_the_maximum() {
        let backoff = Backoff {
            base_ms: 100,
            max_ms: 1_000,
        };
        let ceilings: alloc::vec::Vec<u64> = (0..6).map(|a| backoff.ceiling_ms(a)).collect();
        assert_eq!(ceilings, [100, 200, 400, 800, 1_000, 1_000]);
        assert_eq!(backoff.ceiling_ms(u32::MAX), 1_000);
    }

    #[test]
    fn delays_stay_under_their_ceiling_and_vary() {
        let backoff = Backoff::default();
        let mut rng = SplitMix64::from_seed(3);
        for attempt in 0..40 {
            let delays: alloc::vec::Vec<u64> = (0..50)
                .map(|_| backoff.delay_ms(attempt, &mut rng))
                .collect();
            assert!(delays.iter().all(|&d| d <= backoff.ceiling_ms(attempt)));
            assert!(
                delays.iter().any(|&d| d != delays[0]),
                "no jitter at {attempt}"
            );
        }
    }

    #[test]
    fn heartbeats_come_well_before_the_lease_lapses() {
        let mut rng = SplitMix64::from_seed(9);
        for ttl in [1_000, 3_000, 10_000, 3_600_000] {
            for _ in 0..100 {
                let delay = heartbeat_delay_ms(ttl, &mut rng);
                assert!(
                    delay <= ttl / 3 && delay >= ttl / 3 - ttl / 15,
                    "{ttl}: {delay}"
                );
            }
        }
    }
}
