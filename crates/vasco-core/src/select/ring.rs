//! Consistent hashing on a ring ("ketama"): each candidate puts virtual nodes on a 32-bit
//! ring, as many as its weight asks for; a key belongs to the first node at or after its hash.
//!
//! Unlike Maglev there is no table to refill: removing a candidate moves exactly the keys of
//! its own nodes (its share, about 1/N), and no key moves between two other candidates. That
//! holds because a candidate's nodes depend on nothing but its own id and weight: 1,024 nodes
//! per unit of weight, whoever else is on the ring. (An earlier budget scaled the per-weight
//! count to the total weight, so a removal that crossed a power of two re-placed every
//! candidate's nodes and moved half of all keys.)
//!
//! The price is balance and memory: a candidate's share varies by about `1/sqrt(nodes)`, ~3%
//! for weight 1, and the ring takes 8 bytes per node. Only past [`MAX_NODES`] (2^22 nodes, a
//! total weight of 4,096) does the per-weight count shrink, to the largest power of two that
//! fits; from there on it depends on the total weight again and a removal that crosses a
//! power of two moves keys between the others.
//!
//! A node's position comes from the candidate's id alone, so candidates with the same id share
//! their nodes and the first of them gets all their keys.
//!
//! Lookup: a bucket index over the top bits of the ring (about two nodes per bucket) gives the
//! first node of the point's bucket; the answer is among the next few nodes, found by counting
//! without branches over a fixed window (sentinel nodes at the end keep the window in bounds).
//! A pick is O(1) with two cache misses and no mispredicted loop, instead of a 20-step binary
//! search.

use alloc::vec;
use alloc::vec::Vec;

use xxhash_rust::xxh64::xxh64;

/// Nodes per unit of weight, independent of the other candidates ...
const NODES_PER_WEIGHT: u64 = 1024;
/// ... while the whole ring stays within this many nodes (32 MiB); past it the per-weight
/// count is scaled down (see the module docs).
pub(super) const MAX_NODES: u64 = 1 << 22;
/// Seed of the id hash that places a candidate's nodes. Part of the wire contract.
const NODE_SEED: u64 = 0x7269_6e67_2d6e_6f64; // "ring-nod"

/// Nodes compared per lookup: a bucket holds two nodes on average, more than this with
/// probability ~10^-4 (then the lookup walks on).
const WINDOW: usize = 8;

/// A built ring over pool-local indices.
#[derive(Debug, Clone)]
pub(super) struct Ring {
    /// `(position, owner)`, sorted by position, then `WINDOW` sentinels `(u32::MAX, owner of
    /// the first node)`: past the last node the ring wraps around to the first.
    nodes: Vec<(u32, u32)>,
    /// `starts[b]` is the first node whose position's top `bits` bits are `>= b`.
    starts: Vec<u32>,
    bits: u32,
}

impl Ring {
    /// Builds the ring for `(id, weight)` members, in pool order.
    pub(super) fn new<'a>(members: impl Iterator<Item = (&'a str, u32)>) -> Self {
        let members: Vec<(u64, u64)> = members
            .map(|(id, weight)| (xxh64(id.as_bytes(), NODE_SEED), u64::from(weight.max(1))))
            .collect();
        let total_weight: u64 = members.iter().map(|m| m.1).sum();
        let node_count = |weight: u64| node_count(weight, total_weight);
        let total: u64 = members.iter().map(|&(_, w)| node_count(w)).sum();
        let mut nodes: Vec<(u32, u32)> = Vec::with_capacity(total as usize + WINDOW);
        for (owner, &(seed, weight)) in members.iter().enumerate() {
            for j in 0..node_count(weight) {
                nodes.push((node_position(seed, j), owner as u32));
            }
        }
        sort_nodes(&mut nodes);
        // Equal positions (rare: about nodes^2 / 2^33 pairs) go to the lower id hash rather
        // than the lower index, so they do not depend on the order of the candidates.
        for run in nodes.chunk_by_mut(|a, b| a.0 == b.0) {
            if run.len() > 1 {
                run.sort_unstable_by_key(|&(_, owner)| (members[owner as usize].0, owner));
            }
        }

        let bits = (nodes.len() as u64)
            .next_power_of_two()
            .ilog2()
            .saturating_sub(1);
        let mut starts = vec![0u32; 1usize << bits];
        let mut node = 0;
        for (bucket, start) in starts.iter_mut().enumerate() {
            while node < nodes.len() && (bucket_of(nodes[node].0, bits) as usize) < bucket {
                node += 1;
            }
            *start = node as u32;
        }
        if let Some(&(_, first_owner)) = nodes.first() {
            nodes.extend([(u32::MAX, first_owner); WINDOW]);
        }
        Self {
            nodes,
            starts,
            bits,
        }
    }

    /// The owner of the first node at or after the top 32 bits of `hash`, wrapping around.
    pub(super) fn pick(&self, hash: u64) -> Option<usize> {
        if self.nodes.is_empty() {
            return None;
        }
        let point = (hash >> 32) as u32;
        let first = self.starts[bucket_of(point, self.bits) as usize] as usize;
        // Nodes before `first` are all before the point; from `first` on, those before the
        // point are a prefix (sorted), so counting them gives the answer's offset.
        let window: &[(u32, u32); WINDOW] = self.nodes[first..first + WINDOW]
            .try_into()
            .expect("sentinels pad the window");
        let before: usize = window
            .iter()
            .map(|&(position, _)| usize::from(position < point))
            .sum();
        let mut node = first + before;
        if before == WINDOW {
            // A crowded bucket: walk on (a sentinel stops the walk).
            while self.nodes[node].0 < point {
                node += 1;
            }
        }
        Some(self.nodes[node].1 as usize)
    }

    /// The real nodes, without the sentinels.
    fn ring(&self) -> &[(u32, u32)] {
        &self.nodes[..self.nodes.len().saturating_sub(WINDOW)]
    }

    /// How much of the ring each member owns, in units of 2^-32 of the ring (all together
    /// own 2^32).
    pub(super) fn arc_lengths(&self, members: usize) -> Vec<u64> {
        let mut owned = vec![0u64; members];
        let ring = self.ring();
        let (Some(&(first, first_owner)), Some(&(last, _))) = (ring.first(), ring.last()) else {
            return owned;
        };
        // A node owns the arc after its predecessor; the first node's wraps around the end.
        owned[first_owner as usize] += u64::from(first) + (1 << 32) - u64::from(last);
        for pair in ring.windows(2) {
            owned[pair[1].1 as usize] += u64::from(pair[1].0 - pair[0].0);
        }
        owned
    }
}

/// The nodes of a candidate of `weight` on a ring whose weights add up to `total_weight`:
/// [`NODES_PER_WEIGHT`] per unit while the ring fits [`MAX_NODES`], whatever the total; past
/// that the largest power of two per unit that fits, and past one per unit a proportional
/// share (at least one node).
fn node_count(weight: u64, total_weight: u64) -> u64 {
    if total_weight.saturating_mul(NODES_PER_WEIGHT) <= MAX_NODES {
        return weight * NODES_PER_WEIGHT;
    }
    match MAX_NODES / total_weight.max(1) {
        0 => (weight * MAX_NODES / total_weight).max(1),
        per_weight => weight * (1u64 << per_weight.ilog2()),
    }
}

/// Sorts nodes by position, then owner. Nodes are generated in owner order, so a stable sort
/// by position alone gives that order: above 2^16 nodes a three-pass radix sort on 11-bit
/// digits of the position, several times faster than a comparison sort on 10^6 nodes.
fn sort_nodes(nodes: &mut Vec<(u32, u32)>) {
    debug_assert!(nodes.is_sorted_by_key(|&(_, owner)| owner));
    if nodes.len() < 1 << 16 {
        nodes.sort_unstable_by_key(|&(position, owner)| {
            (u64::from(position) << 32) | u64::from(owner)
        });
        return;
    }
    let mut buffer = vec![(0u32, 0u32); nodes.len()];
    // 11-bit digits: 2,048 write streams stay in cache, 65,536 would not.
    for shift in [0, 11, 22] {
        let digit = |node: &(u32, u32)| ((node.0 >> shift) & 0x7ff) as usize;
        let mut offsets = [0u32; 1 << 11];
        for node in nodes.iter() {
            offsets[digit(node)] += 1;
        }
        let mut sum = 0;
        for offset in offsets.iter_mut() {
            (*offset, sum) = (sum, sum + *offset);
        }
        for node in nodes.iter() {
            let slot = &mut offsets[digit(node)];
            buffer[*slot as usize] = *node;
            *slot += 1;
        }
        core::mem::swap(nodes, &mut buffer);
    }
}

/// The `j`-th node of the candidate whose id hashes to `seed`: SplitMix64's output function
/// on `seed + (j + 1) * golden`, i.e. the candidate's own random sequence, cheap to extend.
fn node_position(seed: u64, j: u64) -> u32 {
    let mut z = seed.wrapping_add((j + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    ((z ^ (z >> 31)) >> 32) as u32
}

/// The top `bits` bits of a ring position (0 when `bits` is 0).
fn bucket_of(position: u32, bits: u32) -> u32 {
    ((u64::from(position) << bits) >> 32) as u32
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;
    use alloc::format;
    use alloc::string::String;

    fn ids(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("node-{i}")).collect()
    }

    fn build(ids: &[String], weight: impl Fn(usize) -> u32) -> Ring {
        Ring::new(
            ids.iter()
                .enumerate()
                .map(|(i, id)| (id.as_str(), weight(i))),
        )
    }

    /// The reference lookup: binary search for the first node at or after the point.
    fn slow_pick(ring: &Ring, hash: u64) -> usize {
        let point = (hash >> 32) as u32;
        let i = ring.ring().partition_point(|&(p, _)| p < point);
        ring.ring().get(i).unwrap_or(&ring.ring()[0]).1 as usize
    }

    #[test]
    fn empty_is_none() {
        assert_eq!(Ring::new(core::iter::empty()).pick(1), None);
    }

    #[test]
    fn node_budget() {
        assert_eq!(build(&ids(1), |_| 1).ring().len(), 1024);
        assert_eq!(build(&ids(100), |_| 1).ring().len(), 102_400);
        assert_eq!(
            build(&ids(99), |_| 1).ring().len(),
            99 * 1024,
            "same nodes per weight"
        );
        assert_eq!(
            build(&ids(3), |i| [1, 7, 1000][i]).ring().len(),
            1008 * 1024
        );
        // Up to the budget the count per weight is fixed, whatever the total ...
        for total in [1, 128, 129, 4_095, 4_096] {
            assert_eq!(node_count(3, total), 3 * 1024, "total {total}");
        }
        // ... past it, a power of two that fits; past one per unit, proportional (at least 1).
        assert_eq!(node_count(3, 4_097), 3 * 512);
        assert_eq!(node_count(3, 8_193), 3 * 256);
        assert_eq!(node_count(1, 20_000_001), 1);
        assert_eq!(node_count(10_000_000, 20_000_001), 2_097_151);
        assert_eq!(
            build(&ids(3), |i| [1, 3000, 3000][i]).ring().len(),
            6001 * 512
        );
    }

    #[test]
    fn crowded_buckets_walk_past_the_window() {
        // Many equal positions (a duplicated id) put more than WINDOW nodes in one bucket.
        let ids = ["same", "same", "same", "other"];
        let ring = Ring::new(ids.iter().map(|id| (*id, 1)));
        for k in 0..5_000u64 {
            let hash = xxh64(&k.to_le_bytes(), 4);
            assert_eq!(ring.pick(hash), Some(slow_pick(&ring, hash)));
        }
        let (position, _) = ring.ring()[1_000];
        let hash = u64::from(position) << 32;
        assert_eq!(ring.pick(hash), Some(slow_pick(&ring, hash)));
    }

    #[test]
    fn bucketed_lookup_matches_binary_search() {
        for n in [1, 2, 5, 37, 300] {
            let ring = build(&ids(n), |i| (i % 3) as u32 + 1);
            let mut hash = 0u64;
            for k in 0..20_000u64 {
                hash = xxh64(&k.to_le_bytes(), 1);
                assert_eq!(ring.pick(hash), Some(slow_pick(&ring, hash)), "n={n} k={k}");
            }
            // Exactly on nodes, just past them, and the ends of the ring.
            for &(position, _) in ring.ring().iter().step_by(97) {
                for point in [position, position.wrapping_add(1), position.wrapping_sub(1)] {
                    let hash = u64::from(point) << 32 | (hash & 0xffff_ffff);
                    assert_eq!(ring.pick(hash), Some(slow_pick(&ring, hash)));
                }
            }
            for hash in [0, u64::MAX] {
                assert_eq!(ring.pick(hash), Some(slow_pick(&ring, hash)));
            }
        }
    }

    #[test]
    fn arcs_cover_the_ring_and_are_balanced() {
        let n = 100;
        let ring = build(&ids(n), |_| 1);
        let arcs = ring.arc_lengths(n);
        assert_eq!(arcs.iter().sum::<u64>(), 1 << 32);
        let mean = (1u64 << 32) as f64 / n as f64;
        let peak = *arcs.iter().max().unwrap() as f64;
        // 1,024 nodes each: one standard deviation of a share is ~3%.
        assert!(peak / mean <= 1.1, "peak to mean {}", peak / mean);
    }

    #[test]
    fn arcs_follow_weights() {
        let n = 20;
        let weight = |i: usize| (i % 4) as u32 + 1;
        let ring = build(&ids(n), weight);
        let arcs = ring.arc_lengths(n);
        let total: u32 = (0..n).map(weight).sum();
        for (i, &arc) in arcs.iter().enumerate() {
            let share = arc as f64 / (1u64 << 32) as f64;
            let exact = f64::from(weight(i)) / f64::from(total);
            assert!((share / exact - 1.0).abs() < 0.1, "{i}: {share} vs {exact}");
        }
    }

    #[test]
    fn single_node_owns_everything() {
        let ring = build(&ids(1), |_| 1);
        assert_eq!(ring.arc_lengths(1), [1u64 << 32]);
        assert_eq!(ring.pick(12345), Some(0));
    }

    #[test]
    fn removing_one_moves_only_its_keys() {
        let n = 50;
        let all = ids(n);
        let before = build(&all, |_| 1);
        let removed = 17;
        let rest: Vec<String> = all
            .iter()
            .filter(|id| **id != all[removed])
            .cloned()
            .collect();
        let after = build(&rest, |_| 1);
        for k in 0..50_000u64 {
            let hash = xxh64(&k.to_le_bytes(), 2);
            let old = &all[before.pick(hash).unwrap()];
            let new = &rest[after.pick(hash).unwrap()];
            if *old != all[removed] {
                assert_eq!(old, new, "key {k} moved between two remaining candidates");
            }
        }
    }

    #[test]
    fn order_of_candidates_does_not_matter() {
        let forward = ids(30);
        let mut backward = forward.clone();
        backward.reverse();
        let a = build(&forward, |_| 1);
        let b = build(&backward, |_| 1);
        for k in 0..20_000u64 {
            let hash = xxh64(&k.to_le_bytes(), 3);
            assert_eq!(
                forward[a.pick(hash).unwrap()],
                backward[b.pick(hash).unwrap()]
            );
        }
    }
}
