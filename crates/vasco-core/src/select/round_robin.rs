//! Plain round robin: every candidate once per cycle, in order. The cycle starts at a random
//! candidate (drawn on the first pick), so many clients that start together do not all send
//! their first request to candidate 0.

use crate::rng::Rng;

/// Cycles through `len` candidates.
#[derive(Debug, Clone)]
pub(super) struct RoundRobin {
    len: u32,
    /// The next index; `None` until the first pick draws the starting point.
    next: Option<u32>,
}

impl RoundRobin {
    pub(super) fn new(len: usize) -> Self {
        Self {
            len: len as u32,
            next: None,
        }
    }

    pub(super) fn pick<R: Rng + ?Sized>(&mut self, rng: &mut R) -> Option<usize> {
        if self.len == 0 {
            return None;
        }
        let current = match self.next {
            Some(next) => next,
            None => rng.below(self.len as usize) as u32,
        };
        let following = current + 1;
        self.next = Some(if following == self.len { 0 } else { following });
        Some(current as usize)
    }
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;
    use crate::rng::SplitMix64;

    #[test]
    fn empty_is_none() {
        assert_eq!(RoundRobin::new(0).pick(&mut SplitMix64::from_seed(1)), None);
    }

    #[test]
    fn exact_cycle_from_a_random_start() {
        let mut starts = [false; 5];
        for seed in 0..40 {
            let mut rng = SplitMix64::from_seed(seed);
            let mut rr = RoundRobin::new(5);
            let first = rr.pick(&mut rng).unwrap();
            starts[first] = true;
            for step in 1..23 {
                assert_eq!(rr.pick(&mut rng), Some((first + step) % 5));
            }
        }
        assert_eq!(starts, [true; 5], "every candidate can come first");
    }

    #[test]
    fn draws_randomness_only_once() {
        struct Counting(SplitMix64, u32);
        impl Rng for Counting {
            fn next_u64(&mut self) -> u64 {
                self.1 += 1;
                self.0.next_u64()
            }
        }
        let mut rng = Counting(SplitMix64::from_seed(3), 0);
        let mut rr = RoundRobin::new(3);
        for _ in 0..10 {
            rr.pick(&mut rng);
        }
        assert_eq!(rng.1, 1);
    }
}
