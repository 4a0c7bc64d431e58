//! Smooth weighted round robin as earliest deadline first (EDF).
//!
//! Each candidate `i` has a step `S / weight_i` and a deadline; a pick takes the candidate
//! with the earliest deadline (ties: lower index) and moves its deadline one step on. Every
//! candidate gets its weight's share to within one pick plus what its random starting phase
//! shifts (after `t` picks, `|count_i - t·w_i/W| < 1 + n·w_i/W` for `n` candidates of total
//! weight `W`; see the property test), and heavy candidates are interleaved with light ones
//! instead of served in a block. A binary heap
//! makes a pick O(log N) with no allocation.
//!
//! The start is random (drawn from the caller's rng on the first pick) so that every pick, the
//! first included, follows the weights: a client that rebuilds its selector often, or picks
//! rarely, only ever sees first picks. The first candidate is drawn with probability
//! `weight / total`; every other candidate's first deadline is uniform within its own step
//! after it. That is the schedule seen from a uniformly random pick of the steady state (the
//! Palm view of the superposed per-candidate schedules), so the candidate of the k-th pick
//! follows the weights for every k. Drawing every first deadline within one step instead
//! (what this did before) is the schedule seen from a random *time*, which favours heavy
//! candidates: with weights 1:3 the light one came first 1/6 of the time instead of 1/4.
//! Equal starting deadlines would be worse still: a candidate of weight 100 next to ones of
//! weight 1 would take the first ~100 picks in a row on every client built at the same time.

use alloc::vec::Vec;

use crate::rng::Rng;

/// Fixed-point unit of deadlines: a weight-`w` candidate's step is `SCALE / w`. With weights
/// below 2^32 every step is at least 1 and the rounding error at most `w / 2^32` of a step.
const SCALE: u64 = 1 << 32;

/// When the earliest deadline passes this, all deadlines are shifted down (an O(N) pass about
/// once per 2^30 picks) so that they never overflow. Deadlines differ by at most one step
/// (< 2^33), far below the headroom left.
const REBASE_AT: u64 = 1 << 62;

/// A heap entry: the deadline in the high bits and the index in the low 32, so that one
/// integer comparison orders by deadline, then index (deadlines stay below 2^63).
type Entry = u128;

fn entry(deadline: u64, index: u32) -> Entry {
    (u128::from(deadline) << 32) | u128::from(index)
}

fn deadline(entry: Entry) -> u64 {
    (entry >> 32) as u64
}

fn index(entry: Entry) -> u32 {
    entry as u32
}

/// EDF scheduler over pool-local indices.
#[derive(Debug, Clone)]
pub(super) struct Weighted {
    /// Min-heap of entries.
    heap: Vec<Entry>,
    /// Step per index.
    steps: Vec<u64>,
    /// Whether the first deadlines have been drawn.
    started: bool,
}

impl Weighted {
    /// A scheduler whose first deadlines are drawn from the rng on the first [`Weighted::pick`].
    pub(super) fn new(weights: impl Iterator<Item = u32>) -> Self {
        let steps: Vec<u64> = weights.map(|w| SCALE / u64::from(w.max(1))).collect();
        let heap = (0..steps.len() as u32).map(|i| entry(0, i)).collect();
        Self {
            heap,
            steps,
            started: false,
        }
    }

    /// A deterministic scheduler: candidate `i`'s `k`-th turn is due at `(k + 1/2) / w_i`
    /// (Webster's apportionment, so after any number of turns each candidate is within about
    /// half a turn of its exact share), ties in index order. Orders Maglev's table filling.
    pub(super) fn deterministic(weights: impl Iterator<Item = u32>) -> Self {
        let mut edf = Self::new(weights);
        edf.start_with(|_, step| step / 2);
        edf
    }

    pub(super) fn pick<R: Rng + ?Sized>(&mut self, rng: &mut R) -> Option<usize> {
        if !self.started {
            self.start_random(rng);
        }
        self.next()
    }

    /// The next index in deadline order.
    pub(super) fn next(&mut self) -> Option<usize> {
        let top = *self.heap.first()?;
        let index = index(top);
        self.heap[0] = top + (u128::from(self.steps[index as usize]) << 32);
        self.sift_down(0);
        let base = deadline(self.heap[0]);
        if base >= REBASE_AT {
            for entry in &mut self.heap {
                *entry -= u128::from(base) << 32;
            }
        }
        Some(index as usize)
    }

    /// The random start: the first candidate drawn by weight gets deadline 0, every other one
    /// a deadline uniform in `1..=step` (so the drawn one goes first even on index ties).
    fn start_random<R: Rng + ?Sized>(&mut self, rng: &mut R) {
        // Weights are whole numbers: step = SCALE / w exactly up to rounding, so draw the
        // first candidate from the integer weights behind the steps.
        let total: u64 = self.steps.iter().map(|&step| SCALE / step).sum();
        let mut ticket = super::fast_range(rng.next_u64(), total);
        let mut first = self.steps.len().saturating_sub(1);
        for (i, &step) in self.steps.iter().enumerate() {
            let weight = SCALE / step;
            if ticket < weight {
                first = i;
                break;
            }
            ticket -= weight;
        }
        self.start_with(|i, step| {
            if i == first {
                0
            } else {
                1 + super::fast_range(rng.next_u64(), step)
            }
        });
    }

    /// Sets every first deadline to `first(index, step)` and orders the heap.
    fn start_with(&mut self, mut first: impl FnMut(usize, u64) -> u64) {
        for slot in &mut self.heap {
            let i = index(*slot);
            *slot = entry(first(i as usize, self.steps[i as usize]), i);
        }
        for pos in (0..self.heap.len() / 2).rev() {
            self.sift_down(pos);
        }
        self.started = true;
    }

    /// Restores the heap below `pos` after its entry grew, moving a hole down instead of
    /// swapping. The smaller child is chosen without a branch: which one it is is a coin flip
    /// the CPU cannot predict, and at N = 1,000 the mispredictions would cost more than the
    /// rest of the pick.
    fn sift_down(&mut self, mut pos: usize) {
        let heap = &mut self.heap;
        let len = heap.len();
        let item = heap[pos];
        loop {
            let left = 2 * pos + 1;
            if left + 1 >= len {
                // At most one child.
                if left < len && heap[left] < item {
                    heap[pos] = heap[left];
                    pos = left;
                }
                break;
            }
            let child = left + usize::from(heap[left + 1] < heap[left]);
            if heap[child] >= item {
                break;
            }
            heap[pos] = heap[child];
            pos = child;
        }
        heap[pos] = item;
    }
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;
    use crate::rng::SplitMix64;
    use alloc::vec;

    fn counts(weights: &[u32], picks: usize, seed: u64) -> Vec<u32> {
        let mut rng = SplitMix64::from_seed(seed);
        let mut edf = Weighted::new(weights.iter().copied());
        let mut counts = vec![0u32; weights.len()];
        for _ in 0..picks {
            counts[edf.pick(&mut rng).unwrap()] += 1;
        }
        counts
    }

    #[test]
    fn empty_is_none() {
        let mut edf = Weighted::new(core::iter::empty());
        assert_eq!(edf.pick(&mut SplitMix64::from_seed(1)), None);
    }

    #[test]
    fn shares_are_exact_to_within_one_pick() {
        let weights = [1, 2, 3, 4, 10];
        for seed in 0..20 {
            // 20 whole cycles of the total weight 20.
            let counts = counts(&weights, 400, seed);
            for (&w, &c) in weights.iter().zip(&counts) {
                assert!(c.abs_diff(w * 20) <= 1, "seed {seed}: {counts:?}");
            }
        }
    }

    #[test]
    fn every_prefix_stays_close_to_the_share() {
        let weights = [5, 1, 1, 3];
        let total: u32 = weights.iter().sum();
        let mut rng = SplitMix64::from_seed(9);
        let mut edf = Weighted::new(weights.iter().copied());
        let mut counts = [0u32; 4];
        for t in 1..=1_000u32 {
            counts[edf.pick(&mut rng).unwrap()] += 1;
            for (i, &w) in weights.iter().enumerate() {
                let ideal = f64::from(t * w) / f64::from(total);
                assert!(
                    (f64::from(counts[i]) - ideal).abs() < 2.0,
                    "t={t}: {counts:?}"
                );
            }
        }
    }

    #[test]
    fn no_first_pick_burst_for_a_heavy_candidate() {
        // Equal starting deadlines would give the weight-100 candidate the first 99 picks
        // every time. With random offsets each light candidate lands anywhere in the first
        // cycle, so one of the three shows up within 50 picks for most seeds (about 86%).
        let weights = [100, 1, 1, 1];
        let mut early = 0;
        for seed in 0..50 {
            let mut rng = SplitMix64::from_seed(seed);
            let mut edf = Weighted::new(weights.iter().copied());
            let first_light = (0..103).position(|_| edf.pick(&mut rng) != Some(0));
            if first_light.is_some_and(|p| p < 50) {
                early += 1;
            }
        }
        assert!(early >= 30, "{early}/50");
    }

    /// The share of `seeds` fresh schedulers whose `k`-th pick is each candidate.
    fn kth_pick_shares(weights: &[u32], k: usize, seeds: u64) -> Vec<f64> {
        let mut counts = vec![0u32; weights.len()];
        for seed in 0..seeds {
            let mut rng = SplitMix64::from_seed(seed);
            let mut edf = Weighted::new(weights.iter().copied());
            let picked = (0..=k).map(|_| edf.pick(&mut rng).unwrap()).last().unwrap();
            counts[picked] += 1;
        }
        counts
            .iter()
            .map(|&c| f64::from(c) / seeds as f64)
            .collect()
    }

    #[test]
    fn every_pick_the_first_included_follows_the_weights() {
        // A client that rebuilds its selector on every refresh only ever makes first picks:
        // they must follow the weights too (the light one of 1:3 used to come first 1/6 of
        // the time). 20,000 seeds: one standard deviation of a share is at most 0.35%.
        for weights in [&[1, 3][..], &[1, 2, 3, 4, 10], &[100, 1, 1, 1], &[7, 7]] {
            let total: u32 = weights.iter().sum();
            for k in [0, 1, 2, 5] {
                let shares = kth_pick_shares(weights, k, 20_000);
                for (&w, &share) in weights.iter().zip(&shares) {
                    let exact = f64::from(w) / f64::from(total);
                    assert!(
                        (share - exact).abs() < 0.015,
                        "{weights:?} pick {k}: {shares:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn deterministic_order_starts_in_index_order() {
        let mut edf = Weighted::deterministic([1, 1, 1].into_iter());
        let order: Vec<_> = (0..6).map(|_| edf.next().unwrap()).collect();
        assert_eq!(order, [0, 1, 2, 0, 1, 2]);
    }

    #[test]
    fn zero_weight_counts_as_one() {
        assert_eq!(counts(&[0, 1], 100, 4), [50, 50]);
    }

    #[test]
    fn deadlines_rebase_instead_of_overflowing() {
        let mut edf = Weighted::deterministic([1, 2].into_iter());
        for slot in &mut edf.heap {
            *slot += u128::from(REBASE_AT - SCALE) << 32;
        }
        let mut counts = [0u32; 2];
        for _ in 0..3_000 {
            counts[edf.next().unwrap()] += 1;
        }
        assert_eq!(counts, [1_000, 2_000]);
        // Without the rebase they would all be above REBASE_AT now.
        assert!(
            edf.heap.iter().all(|&e| deadline(e) < REBASE_AT / 2),
            "rebased"
        );
    }
}
