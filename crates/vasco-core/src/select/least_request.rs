//! Least request by the power of two choices: draw two *distinct* candidates at random and
//! take the one with less load per unit of weight.
//!
//! Comparing just two keeps a pick O(1), and because the choice is random, many clients with
//! stale or partial load counts do not all stampede to the one globally least loaded candidate
//! (which full least-request scans do). Load is `(in_flight + 1) / weight`, Envoy's default
//! active-request bias of 1: the `+ 1` makes an idle heavy candidate beat an idle light one.
//! Ties go to the first draw, so with no load the choice is uniform.

use alloc::vec::Vec;

use crate::rng::Rng;

/// Power-of-two-choices over pool-local indices.
#[derive(Debug, Clone)]
pub(super) struct LeastRequest {
    weights: Vec<u32>,
}

impl LeastRequest {
    pub(super) fn new(weights: impl Iterator<Item = u32>) -> Self {
        Self {
            weights: weights.map(|w| w.max(1)).collect(),
        }
    }

    /// `load(i)` is the number of requests in flight at pool-local index `i`.
    pub(super) fn pick<R: Rng + ?Sized>(
        &mut self,
        rng: &mut R,
        load: impl Fn(usize) -> u32,
    ) -> Option<usize> {
        let len = self.weights.len();
        match len {
            0 => return None,
            1 => return Some(0),
            _ => {}
        }
        let first = rng.below(len);
        // Uniform over the other len - 1 indices.
        let mut second = rng.below(len - 1);
        if second >= first {
            second += 1;
        }
        // (load_a + 1) / w_a  vs  (load_b + 1) / w_b, cross-multiplied: each factor is at most
        // 2^32, so the products fit in u64.
        let cost = |mine: usize, other: usize| {
            (u64::from(load(mine)) + 1) * u64::from(self.weights[other])
        };
        Some(if cost(second, first) < cost(first, second) {
            second
        } else {
            first
        })
    }
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;
    use crate::rng::SplitMix64;
    use alloc::vec;

    #[test]
    fn empty_is_none_and_one_is_it() {
        let mut rng = SplitMix64::from_seed(1);
        assert_eq!(
            LeastRequest::new(core::iter::empty()).pick(&mut rng, |_| 0),
            None
        );
        assert_eq!(
            LeastRequest::new([7].into_iter()).pick(&mut rng, |_| 9),
            Some(0)
        );
    }

    #[test]
    fn two_choices_are_distinct() {
        // With two candidates, distinct draws always compare both, so the idle one always
        // wins; drawing the same index twice would hand the busy one a quarter of the picks.
        let mut rng = SplitMix64::from_seed(2);
        let mut p2c = LeastRequest::new([1, 1].into_iter());
        let loads = [5, 0];
        for _ in 0..1_000 {
            assert_eq!(p2c.pick(&mut rng, |i| loads[i]), Some(1));
        }
    }

    #[test]
    fn prefers_less_loaded_in_the_p2c_proportions() {
        // Loads are all different, so the winner is the less loaded of a uniformly random
        // pair: the candidate of rank r (0 = idlest) of n wins with p = 2 (n - 1 - r) / (n (n - 1)).
        const N: usize = 10;
        const PICKS: u32 = 90_000;
        let mut rng = SplitMix64::from_seed(3);
        let mut p2c = LeastRequest::new([1; N].into_iter());
        let mut wins = [0u32; N];
        for _ in 0..PICKS {
            wins[p2c.pick(&mut rng, |i| i as u32).unwrap()] += 1;
        }
        for (rank, &w) in wins.iter().enumerate() {
            let p = 2.0 * (N - 1 - rank) as f64 / (N * (N - 1)) as f64;
            let expected = p * f64::from(PICKS);
            // At most ~120 standard deviation at p = 0.2; allow five.
            assert!(
                (f64::from(w) - expected).abs() < 600.0,
                "rank {rank}: {wins:?}"
            );
        }
        assert_eq!(wins[N - 1], 0, "the busiest never wins a pair");
    }

    #[test]
    fn load_is_divided_by_weight() {
        let mut rng = SplitMix64::from_seed(4);
        // (1 + 1) / 1 = 2 against (2 + 1) / 3 = 1: the heavier candidate wins despite more load.
        let mut p2c = LeastRequest::new([1, 3].into_iter());
        let loads = [1, 2];
        for _ in 0..200 {
            assert_eq!(p2c.pick(&mut rng, |i| loads[i]), Some(1));
        }
        // Idle: the heavier one wins too.
        for _ in 0..200 {
            assert_eq!(p2c.pick(&mut rng, |_| 0), Some(1));
        }
    }

    #[test]
    fn ties_are_uniform() {
        let mut rng = SplitMix64::from_seed(5);
        let mut p2c = LeastRequest::new(vec![2; 4].into_iter());
        let mut wins = [0u32; 4];
        for _ in 0..40_000 {
            wins[p2c.pick(&mut rng, |_| 3).unwrap()] += 1;
        }
        assert!(wins.iter().all(|&w| w.abs_diff(10_000) < 400), "{wins:?}");
    }

    #[test]
    fn extreme_loads_and_weights_do_not_overflow() {
        let mut rng = SplitMix64::from_seed(6);
        let mut p2c = LeastRequest::new([u32::MAX, 1].into_iter());
        let loads = [u32::MAX, u32::MAX - 1];
        for _ in 0..50 {
            assert_eq!(p2c.pick(&mut rng, |i| loads[i]), Some(0));
        }
    }
}
