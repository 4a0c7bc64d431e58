//! Maglev consistent hashing (Eisenbud et al., NSDI 2016): a lookup table of prime size `M`
//! in which every candidate owns slots in proportion to its weight; a key's hash picks a slot.
//!
//! * Balance: each candidate's slot count is within about one slot of its exact share; with
//!   at least 100 slots per candidate that is within 1% for equal weights.
//! * Stickiness: every candidate fills slots along its own permutation of the table
//!   (`offset + j * skip mod M`, both from its id), so removing one candidate moves its own
//!   keys (1/N) plus some churn among the others, which shrinks as the table grows: about
//!   2.5/N at 100 slots per candidate and N = 100, under 2/N from ~300 (measured; the churn
//!   also grows with N).
//! * A pick is a hash and one table read.
//!
//! Size: `M` comes from a fixed ladder, the smallest prime at or above 2^16, 2^18, 2^20, ...
//! (65,537, 262,147, 1,048,583, ...), taking the first rung with at least 100 slots per
//! candidate. A new `M` reshuffles every key, so `M` must not follow N closely: with the ladder
//! it stays the same for every N up to 655, then up to 2,621, 10,485 and so on, and adding or
//! removing a candidate keeps every other candidate's permutation except at those few
//! crossings. Entries are `u16` up to 65,536 candidates. Filling costs O(M log M).

use alloc::vec;
use alloc::vec::Vec;

use xxhash_rust::xxh64::xxh64;

use super::weighted::Weighted;

/// The smallest table: 2^16 slots (rounded up to a prime).
const FIRST_RUNG: u64 = 1 << 16;
/// Never fewer slots than this per candidate (balance within 1% for equal weights).
const MIN_SLOTS_PER_CANDIDATE: u64 = 100;
/// Seeds of the two id hashes. Part of the wire contract: changing them moves every key.
const OFFSET_SEED: u64 = 0x6d61_676c_6576_2d6f; // "maglev-o"
const SKIP_SEED: u64 = 0x6d61_676c_6576_2d73; // "maglev-s"

/// Slot owners, as narrow as the member count allows (halves memory and cache misses).
#[derive(Debug, Clone)]
enum Table {
    Narrow(Vec<u16>),
    Wide(Vec<u32>),
}

/// A filled Maglev table over pool-local indices.
#[derive(Debug, Clone)]
pub(super) struct Maglev {
    table: Table,
}

impl Maglev {
    /// Builds the table for `(id, weight)` members, in pool order.
    pub(super) fn new<'a>(members: impl Iterator<Item = (&'a str, u32)>) -> Self {
        let members: Vec<(&str, u32)> = members.collect();
        let size = table_size(members.len() as u64);
        Self::with_size(&members, size)
    }

    /// Fills a table of prime `size` (at least the number of members; 0 when there are none).
    fn with_size(members: &[(&str, u32)], size: u64) -> Self {
        let owners = fill(members, size);
        let table = if members.len() <= 1 << 16 {
            Table::Narrow(owners.into_iter().map(|owner| owner as u16).collect())
        } else {
            Table::Wide(owners)
        };
        Self { table }
    }

    /// The member owning the slot of `hash`.
    pub(super) fn pick(&self, hash: u64) -> Option<usize> {
        match &self.table {
            Table::Narrow(table) => {
                let slot = super::fast_range(hash, table.len() as u64) as usize;
                table.get(slot).map(|&owner| usize::from(owner))
            }
            Table::Wide(table) => {
                let slot = super::fast_range(hash, table.len() as u64) as usize;
                table.get(slot).map(|&owner| owner as usize)
            }
        }
    }

    /// Slots owned per member, and the table size.
    pub(super) fn slot_counts(&self, members: usize) -> (Vec<u64>, u64) {
        let mut counts = vec![0u64; members];
        let size = match &self.table {
            Table::Narrow(table) => {
                table.iter().for_each(|&o| counts[usize::from(o)] += 1);
                table.len()
            }
            Table::Wide(table) => {
                table.iter().for_each(|&o| counts[o as usize] += 1);
                table.len()
            }
        };
        (counts, size as u64)
    }
}

/// The paper's population: members take turns; on its turn a member claims the next slot of
/// its permutation that nobody holds yet.
fn fill(members: &[(&str, u32)], size: u64) -> Vec<u32> {
    if members.is_empty() {
        return Vec::new();
    }
    // Each member's permutation, walked lazily: the next slot it would try, and its stride.
    let mut next: Vec<u64> = Vec::with_capacity(members.len());
    let mut skip: Vec<u64> = Vec::with_capacity(members.len());
    for (id, _) in members {
        next.push(xxh64(id.as_bytes(), OFFSET_SEED) % size);
        skip.push(xxh64(id.as_bytes(), SKIP_SEED) % (size - 1) + 1);
    }
    let mut turns = Turns::new(members.iter().map(|m| m.1));
    let mut owners = vec![u32::MAX; size as usize];
    // A bitmap of claimed slots, 1/32 of the table, so that probing stays in cache.
    let mut claimed = vec![0u64; (size as usize).div_ceil(64)];
    for _ in 0..size {
        let member = turns.next();
        loop {
            let slot = next[member];
            next[member] += skip[member];
            if next[member] >= size {
                next[member] -= size;
            }
            let (word, bit) = ((slot / 64) as usize, 1u64 << (slot % 64));
            if claimed[word] & bit == 0 {
                claimed[word] |= bit;
                owners[slot as usize] = member as u32;
                break;
            }
        }
    }
    owners
}

/// Whose turn it is to claim a slot. Equal weights take turns in index order, as in the
/// paper; unequal weights get turns in proportion, by earliest deadline first, which keeps
/// every member within about half a turn of its share at any point (so also when the table
/// fills up mid-round).
enum Turns {
    Cyclic { len: usize, next: usize },
    Weighted(Weighted),
}

impl Turns {
    fn new(weights: impl Iterator<Item = u32> + Clone) -> Self {
        let mut all = weights.clone();
        let first = all.next().unwrap_or(1);
        if all.all(|w| w == first) {
            Turns::Cyclic {
                len: weights.count(),
                next: 0,
            }
        } else {
            Turns::Weighted(Weighted::deterministic(weights))
        }
    }

    fn next(&mut self) -> usize {
        match self {
            Turns::Cyclic { len, next } => {
                let current = *next;
                *next = if current + 1 == *len { 0 } else { current + 1 };
                current
            }
            Turns::Weighted(edf) => edf.next().expect("at least one member"),
        }
    }
}

/// The table size for `members` candidates (see the module docs).
fn table_size(members: u64) -> u64 {
    if members == 0 {
        return 0;
    }
    let mut rung = FIRST_RUNG;
    while rung < MIN_SLOTS_PER_CANDIDATE.saturating_mul(members) {
        rung <<= 2;
    }
    while !is_prime(rung) {
        rung += 1;
    }
    rung
}

/// Trial division by 6k ± 1: sizes here are at most a few times 10^9, so this is at most
/// ~10^4 divisions per number tried, and prime gaps are short.
fn is_prime(n: u64) -> bool {
    if n < 4 {
        return n >= 2;
    }
    if n.is_multiple_of(2) || n.is_multiple_of(3) {
        return false;
    }
    let mut d = 5;
    while d * d <= n {
        if n.is_multiple_of(d) || n.is_multiple_of(d + 2) {
            return false;
        }
        d += 6;
    }
    true
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;
    use alloc::format;
    use alloc::string::String;

    fn ids(n: usize) -> Vec<String> {
        (0..n)
            .map(|i| format!("10.0.{}.{}:8080", i / 256, i % 256))
            .collect()
    }

    fn build(ids: &[String], weight: impl Fn(usize) -> u32) -> Maglev {
        Maglev::new(
            ids.iter()
                .enumerate()
                .map(|(i, id)| (id.as_str(), weight(i))),
        )
    }

    fn owners(maglev: &Maglev) -> Vec<u32> {
        match &maglev.table {
            Table::Narrow(t) => t.iter().map(|&o| u32::from(o)).collect(),
            Table::Wide(t) => t.clone(),
        }
    }

    #[test]
    fn primes_and_sizes() {
        let small: Vec<u64> = (0..30).filter(|&n| is_prime(n)).collect();
        assert_eq!(small, [2, 3, 5, 7, 11, 13, 17, 19, 23, 29]);
        assert!(is_prime(65_537));
        assert!(!is_prime(65_537 * 65_539));
        assert_eq!(table_size(0), 0);
        assert_eq!(table_size(1), 65_537);
        assert_eq!(table_size(3), 65_537);
        assert_eq!(
            table_size(655),
            65_537,
            "one size for every small N, so removals never resize"
        );
        assert_eq!(table_size(656), 262_147);
        assert_eq!(table_size(2_621), 262_147);
        assert_eq!(table_size(2_622), 1_048_583);
        assert_eq!(table_size(100_000), 16_777_259);
        for n in [1u64, 2, 5, 77, 1000, 5000, 70_000] {
            let size = table_size(n);
            assert!(is_prime(size) && size >= 100 * n, "{n}: {size}");
        }
    }

    #[test]
    fn empty_is_none() {
        assert_eq!(Maglev::new(core::iter::empty()).pick(42), None);
    }

    #[test]
    fn table_is_fully_populated_with_equal_shares() {
        for n in [1, 2, 3, 10, 100, 257] {
            let ids = ids(n);
            let maglev = build(&ids, |_| 1);
            let (counts, size) = maglev.slot_counts(n);
            assert_eq!(size, table_size(n as u64));
            assert!(
                owners(&maglev).iter().all(|&owner| (owner as usize) < n),
                "n={n}"
            );
            let mean = size as f64 / n as f64;
            for &c in &counts {
                // Within one slot of the exact share, and so within 1% (mean >= 100).
                assert!((c as f64 - mean).abs() <= 1.0, "n={n}: {c} vs {mean}");
                assert!(
                    (c as f64 - mean).abs() <= 0.01 * mean,
                    "n={n}: {c} vs {mean}"
                );
            }
        }
    }

    #[test]
    fn weighted_slot_counts_are_within_one_slot_of_the_share() {
        for n in [2, 7, 50] {
            let ids = ids(n);
            let weight = |i: usize| (i % 7) as u32 * 3 + 1;
            let maglev = build(&ids, weight);
            let total: u32 = (0..n).map(weight).sum();
            let (counts, size) = maglev.slot_counts(n);
            for (i, &c) in counts.iter().enumerate() {
                let exact = size as f64 * f64::from(weight(i)) / f64::from(total);
                assert!((c as f64 - exact).abs() <= 1.0, "n={n} {i}: {c} vs {exact}");
            }
        }
    }

    #[test]
    fn wide_table_past_65536_members() {
        let members: Vec<String> = (0..70_000).map(|i| format!("{i}")).collect();
        let refs: Vec<(&str, u32)> = members.iter().map(|m| (m.as_str(), 1)).collect();
        // A small (prime) table is enough to check the representation.
        let maglev = Maglev::with_size(&refs, 70_001);
        assert!(matches!(maglev.table, Table::Wide(_)));
        let (counts, size) = maglev.slot_counts(70_000);
        assert_eq!(size, 70_001);
        assert!(counts.iter().all(|&c| c == 1 || c == 2));
        assert!(maglev.pick(u64::MAX).unwrap() < 70_000);
    }

    /// The fraction of table slots whose owner changes when member `removed` of `n` leaves.
    fn moved_fraction(n: usize, removed: usize) -> f64 {
        let all = ids(n);
        let before = build(&all, |_| 1);
        let rest: Vec<String> = all
            .iter()
            .enumerate()
            .filter(|&(i, _)| i != removed)
            .map(|(_, id)| id.clone())
            .collect();
        let after = build(&rest, |_| 1);
        let (old, new) = (owners(&before), owners(&after));
        assert_eq!(
            old.len(),
            new.len(),
            "a removal below 656 members keeps the size"
        );
        let moved = old
            .iter()
            .zip(&new)
            .filter(|&(&old, &new)| all[old as usize] != rest[new as usize])
            .count();
        moved as f64 / old.len() as f64
    }

    #[test]
    fn removing_one_moves_few_keys() {
        // The removed member's keys must move; of the others', few may.
        for (n, removed) in [(100, 37), (3, 1), (2, 0), (9, 8), (129, 128)] {
            let fraction = moved_fraction(n, removed);
            assert!(fraction >= 0.9 / n as f64, "{n}: {fraction}");
            assert!(fraction <= 2.0 / n as f64, "{n}: {fraction}");
        }
    }

    #[test]
    fn picks_follow_the_table() {
        let ids = ids(5);
        let maglev = build(&ids, |_| 1);
        let owners = owners(&maglev);
        // Hash 0 is slot 0, the top hash the last slot.
        assert_eq!(maglev.pick(0), Some(owners[0] as usize));
        assert_eq!(
            maglev.pick(u64::MAX),
            Some(*owners.last().unwrap() as usize)
        );
        assert_eq!(
            maglev.pick(1 << 63),
            Some(owners[owners.len() / 2] as usize)
        );
    }
}
