//! Property tests of selection: any candidate list, weights (including 0), zones and seeds.
#![cfg(not(target_arch = "wasm32"))]

use proptest::prelude::*;
use vasco_core::select::{self, Candidate, Selector, SelectorConfig};
use vasco_core::{SplitMix64, Status};

const ZONES: [Option<&str>; 3] = [Some("a"), Some("b"), None];

fn strategy() -> impl Strategy<Value = select::Strategy> {
    prop::sample::select(select::Strategy::ALL.to_vec())
}

/// Up to `max` candidates `c0..` with weights 0..=20 and zones a, b or none.
fn candidates(max: usize) -> impl Strategy<Value = Vec<Candidate>> {
    prop::collection::vec((0u32..=20, 0usize..3), 0..=max).prop_map(|specs| {
        specs
            .into_iter()
            .enumerate()
            .map(|(i, (weight, zone))| Candidate {
                zone: ZONES[zone].map(str::to_string),
                ..Candidate::new(format!("c{i}"), weight)
            })
            .collect()
    })
}

fn equal(n: usize) -> Vec<Candidate> {
    (0..n)
        .map(|i| Candidate::new(format!("10.0.0.{i}:80"), 1))
        .collect()
}

fn selector(strategy: select::Strategy, zone: Option<&str>, list: Vec<Candidate>) -> Selector {
    let config = SelectorConfig {
        strategy,
        local_zone: zone.map(str::to_string),
        protection_threshold: 0.0,
    };
    Selector::new(config, list)
}

/// Which fraction of `keys` sampled keys change candidate (by id) between two selectors.
fn moved(before: &mut Selector, after: &mut Selector, keys: u32) -> f64 {
    let mut rng = SplitMix64::from_seed(0);
    let mut moved = 0;
    for k in 0..keys {
        let key = k.to_le_bytes();
        let a = before.pick(&mut rng, Some(&key)).unwrap();
        let b = after.pick(&mut rng, Some(&key)).unwrap();
        if before.candidates()[a].id != after.candidates()[b].id {
            moved += 1;
        }
    }
    f64::from(moved) / f64::from(keys)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn picks_are_in_range_and_in_the_local_zone_when_it_has_any(
        strategy in strategy(),
        list in candidates(30),
        zone in 0usize..3,
        seed in any::<u64>(),
    ) {
        let zone = ZONES[zone];
        let local: Vec<bool> = list.iter().map(|c| zone.is_some() && c.zone.as_deref() == zone).collect();
        let any_local = local.contains(&true);
        let mut selector = selector(strategy, zone, list.clone());
        let mut rng = SplitMix64::from_seed(seed);
        for k in 0..200u32 {
            let picked = selector.pick(&mut rng, Some(&k.to_le_bytes()));
            match picked {
                None => prop_assert!(list.is_empty()),
                Some(i) => {
                    prop_assert!(i < list.len());
                    prop_assert!(!any_local || local[i], "{strategy}: picked {i} outside the zone");
                }
            }
        }
    }

    #[test]
    fn same_seed_same_picks(strategy in strategy(), list in candidates(30), seed in any::<u64>()) {
        let mut a = selector(strategy, None, list.clone());
        let mut b = selector(strategy, None, list);
        let (mut ra, mut rb) = (SplitMix64::from_seed(seed), SplitMix64::from_seed(seed));
        for k in 0..100u32 {
            let key = (k % 2 == 0).then(|| k.to_le_bytes());
            prop_assert_eq!(a.pick(&mut ra, key.as_ref().map(|k| &k[..])), b.pick(&mut rb, key.as_ref().map(|k| &k[..])));
        }
    }

    #[test]
    fn round_robin_is_an_exact_cycle(n in 1usize..50, seed in any::<u64>()) {
        let mut selector = selector(select::Strategy::RoundRobin, None, equal(n));
        let mut rng = SplitMix64::from_seed(seed);
        let first = selector.pick(&mut rng, None).unwrap();
        for t in 1..3 * n {
            prop_assert_eq!(selector.pick(&mut rng, None), Some((first + t) % n));
        }
    }

    #[test]
    fn weighted_counts_track_weights_at_every_step(
        weights in prop::collection::vec(0u32..=20, 1..12),
        seed in any::<u64>(),
    ) {
        let list: Vec<Candidate> = weights.iter().enumerate().map(|(i, &w)| Candidate::new(format!("w{i}"), w)).collect();
        let effective: Vec<f64> = weights.iter().map(|&w| f64::from(w.max(1))).collect();
        let total: f64 = effective.iter().sum();
        let mut selector = selector(select::Strategy::Weighted, None, list);
        let mut rng = SplitMix64::from_seed(seed);
        let mut counts = vec![0u32; weights.len()];
        // The bound EDF with a random start keeps: candidate i's deadlines are φ_i + k·s_i with
        // its phase φ_i in [0, s_i] (s_i = S / w_i), so after the pick at deadline D it has had
        // floor((D - φ_i) / s_i) + 1 turns, within (D/s_i - 1, D/s_i + 1]. Summing over the n
        // candidates puts D·W/S within n of t, hence |count_i - t·w_i/W| < 1 + n·w_i/W. (A
        // deterministic start, with every phase at half a step, keeps it within 1.)
        let n = effective.len() as f64;
        for t in 1..=(3.0 * total) as u32 {
            counts[selector.pick(&mut rng, None).unwrap()] += 1;
            for (i, &w) in effective.iter().enumerate() {
                let ideal = f64::from(t) * w / total;
                let bound = 1.0 + n * w / total + 1e-9;
                prop_assert!((f64::from(counts[i]) - ideal).abs() < bound, "t={} {:?}", t, counts);
            }
        }
    }

    #[test]
    fn least_request_never_picks_the_unique_most_loaded(
        specs in prop::collection::vec((1u32..=5, 0u32..8), 2..12),
        seed in any::<u64>(),
    ) {
        let list: Vec<Candidate> = specs.iter().enumerate().map(|(i, &(w, _))| Candidate::new(format!("l{i}"), w)).collect();
        let mut selector = selector(select::Strategy::LeastRequest, None, list);
        for (i, &(_, load)) in specs.iter().enumerate() {
            for _ in 0..load {
                selector.begin(i);
            }
        }
        // Cost (load + 1) / weight, compared exactly as fractions.
        let costlier = |a: usize, b: usize| (specs[a].1 + 1) * specs[b].0 > (specs[b].1 + 1) * specs[a].0;
        let worst = (0..specs.len()).find(|&a| (0..specs.len()).all(|b| b == a || costlier(a, b)));
        let mut rng = SplitMix64::from_seed(seed);
        for _ in 0..300 {
            let picked = selector.pick(&mut rng, None).unwrap();
            prop_assert!(Some(picked) != worst, "picked the most loaded {}", picked);
        }
    }

    #[test]
    fn key_shares_cover_all_keys(strategy in strategy(), list in candidates(30), zone in 0usize..3) {
        let zone = ZONES[zone];
        let selector = selector(strategy, zone, list.clone());
        match selector.key_shares() {
            None => prop_assert!(!strategy.uses_key()),
            Some(shares) => {
                prop_assert!(strategy.uses_key());
                prop_assert_eq!(shares.len(), list.len());
                if !list.is_empty() {
                    prop_assert!((shares.iter().sum::<f64>() - 1.0).abs() < 1e-9);
                }
                let any_local = list.iter().any(|c| zone.is_some() && c.zone.as_deref() == zone);
                for (c, &share) in list.iter().zip(&shares) {
                    if any_local && c.zone.as_deref() != zone {
                        prop_assert_eq!(share, 0.0);
                    }
                }
            }
        }
    }

    #[test]
    fn maglev_slot_shares_are_within_one_percent(n in 1usize..200) {
        let shares = selector(select::Strategy::Maglev, None, equal(n)).key_shares().unwrap();
        for share in shares {
            prop_assert!((share * n as f64 - 1.0).abs() <= 0.01, "{}", share * n as f64);
        }
    }

}

// Building rings of ~10^6 nodes is slow in debug builds: fewer cases here.
proptest! {
    #![proptest_config(ProptestConfig::with_cases(12))]

    #[test]
    fn consistent_hash_picks_depend_on_the_key_only(
        maglev in any::<bool>(),
        list in candidates(12),
        seeds in (any::<u64>(), any::<u64>()),
    ) {
        let strategy = if maglev { select::Strategy::Maglev } else { select::Strategy::Ring };
        let mut a = selector(strategy, None, list.clone());
        let mut b = selector(strategy, None, list);
        let (mut ra, mut rb) = (SplitMix64::from_seed(seeds.0), SplitMix64::from_seed(seeds.1));
        for k in 0..300u32 {
            let key = format!("session-{}", k % 37);
            // Interleave keyless picks on one side only: they must not disturb keyed ones.
            if k % 3 == 0 {
                a.pick(&mut ra, None);
            }
            prop_assert_eq!(a.pick(&mut ra, Some(key.as_bytes())), b.pick(&mut rb, Some(key.as_bytes())));
        }
    }

    #[test]
    fn ring_shares_follow_weights(weights in prop::collection::vec(1u32..=10, 1..20)) {
        let list: Vec<Candidate> = weights.iter().enumerate().map(|(i, &w)| Candidate::new(format!("r{i}"), w)).collect();
        let total: u32 = weights.iter().sum();
        let shares = selector(select::Strategy::Ring, None, list).key_shares().unwrap();
        for (&w, share) in weights.iter().zip(shares) {
            let exact = f64::from(w) / f64::from(total);
            // At least 1,024 nodes per unit of weight: one standard deviation is ~3%.
            prop_assert!((share / exact - 1.0).abs() < 0.18, "{} vs {}", share, exact);
        }
    }

    #[test]
    fn ring_removal_moves_only_the_removed_candidates_keys(n in 2usize..60, removed in any::<prop::sample::Index>()) {
        let all = equal(n);
        let removed = removed.index(n);
        let mut rest = all.clone();
        let gone = rest.remove(removed);
        let mut before = selector(select::Strategy::Ring, None, all);
        let mut after = selector(select::Strategy::Ring, None, rest);
        let mut rng = SplitMix64::from_seed(1);
        for k in 0..5_000u32 {
            let key = k.to_le_bytes();
            let (a, b) = (before.pick(&mut rng, Some(&key)).unwrap(), after.pick(&mut rng, Some(&key)).unwrap());
            let (a, b) = (&before.candidates()[a].id, &after.candidates()[b].id);
            prop_assert!(a == b || *a == gone.id, "key {} moved from {} to {}", k, a, b);
        }
    }

    #[test]
    fn maglev_removal_moves_few_keys(n in 3usize..64, removed in any::<prop::sample::Index>()) {
        // Only within one table size: it is fixed between powers of two, and crossing one
        // reshuffles every key by design.
        prop_assume!((n - 1).next_power_of_two() == n.next_power_of_two());
        let all = equal(n);
        let mut rest = all.clone();
        rest.remove(removed.index(n));
        let mut before = selector(select::Strategy::Maglev, None, all);
        let mut after = selector(select::Strategy::Maglev, None, rest);
        let fraction = moved(&mut before, &mut after, 20_000);
        prop_assert!(fraction * (n as f64) < 3.0, "moved {}/N", fraction * n as f64);
    }
}

/// Removing one candidate from a ring moves its own keys and nothing else, for N from 2 to
/// 2,000 and random weights (total weight within the ring's fixed budget, 4,096), including
/// the sizes where the total crosses a power of two (129 -> 128 moved half of all keys when
/// the nodes per weight followed the total). Deterministic cases from a fixed seed.
#[test]
fn ring_removal_moves_only_the_removed_share_for_any_n_and_weights() {
    let mut rng = SplitMix64::from_seed(0x5eed);
    let sizes = [2, 3, 17, 65, 129, 300, 1_025, 2_000];
    for (case, &n) in sizes.iter().enumerate() {
        let max_weight = (4_096 / n as u64).clamp(1, 1_000);
        let list: Vec<Candidate> = (0..n)
            .map(|i| {
                let weight = 1 + vasco_core::Rng::next_u64(&mut rng) % max_weight;
                Candidate::new(format!("10.1.{case}.{i}:80"), weight as u32)
            })
            .collect();
        let removed = (vasco_core::Rng::next_u64(&mut rng) % n as u64) as usize;
        let total: u64 = list.iter().map(|c| u64::from(c.weight)).sum();
        let weight_share = f64::from(list[removed].weight) / total as f64;
        let mut rest = list.clone();
        let gone = rest.remove(removed);

        let mut before = selector(select::Strategy::Ring, None, list);
        let mut after = selector(select::Strategy::Ring, None, rest);
        // Exact: the removed candidate's arcs are what moves when nothing else does.
        let share = before.key_shares().unwrap()[removed];
        assert!(
            share <= 1.1 * weight_share,
            "n={n}: removed share {share} vs weight share {weight_share}"
        );
        let (mut moved, keys) = (0u32, 20_000u32);
        for k in 0..keys {
            let key = format!("key-{k}");
            let a = before.pick(&mut rng, Some(key.as_bytes())).unwrap();
            let b = after.pick(&mut rng, Some(key.as_bytes())).unwrap();
            let (a, b) = (&before.candidates()[a].id, &after.candidates()[b].id);
            if a != b {
                assert_eq!(*a, gone.id, "n={n}: key {k} moved from {a} to {b}");
                moved += 1;
            }
        }
        // And the sample agrees with the exact share (4 standard deviations of sampling).
        let expected = share * f64::from(keys);
        assert!(
            (f64::from(moved) - expected).abs() <= 4.0 * expected.sqrt() + 1.0,
            "n={n}: moved {moved} of {keys}, expected {expected}"
        );
    }
}

/// Up to `max` candidates with random statuses, outlier health and zones.
fn candidates_with_status(max: usize) -> impl Strategy<Value = Vec<Candidate>> {
    prop::collection::vec((1u32..=5, 0usize..4, any::<bool>(), 0usize..3), 0..=max).prop_map(
        |specs| {
            specs
                .into_iter()
                .enumerate()
                .map(|(i, (weight, status, healthy, zone))| Candidate {
                    zone: ZONES[zone].map(str::to_string),
                    ..Candidate::new(format!("c{i}"), weight)
                        .with_status(Status::ALL[status])
                        .with_health(healthy)
                })
                .collect()
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// The health issue's rule: whatever the strategy, zone and panic threshold, a pick is
    /// never critical or in maintenance; it is passing whenever a passing candidate exists and
    /// the panic threshold is not crossed; and there is a pick whenever any candidate is
    /// passing or warning.
    #[test]
    fn picks_respect_health_status(
        strategy in strategy(),
        list in candidates_with_status(20),
        zone in 0usize..3,
        threshold in prop::sample::select(vec![0.0, 0.3, 0.5, 1.0]),
        seed in any::<u64>(),
    ) {
        let config = SelectorConfig {
            strategy,
            local_zone: ZONES[zone].map(str::to_string),
            protection_threshold: threshold,
        };
        let selectable = list.iter().filter(|c| c.status.is_selectable()).count();
        let preferred = list
            .iter()
            .filter(|c| c.status == Status::Passing && c.healthy)
            .count();
        let panic = preferred == 0 || (preferred as f64) / (selectable as f64) < threshold;
        let mut selector = Selector::new(config, list.clone());
        let mut rng = SplitMix64::from_seed(seed);
        for k in 0..100u32 {
            match selector.pick(&mut rng, Some(&k.to_le_bytes())) {
                None => prop_assert_eq!(selectable, 0),
                Some(i) => {
                    let c = &list[i];
                    prop_assert!(c.status.is_selectable(), "{strategy}: picked {:?}", c.status);
                    if !panic {
                        prop_assert!(c.status == Status::Passing && c.healthy,
                            "{strategy}: picked {:?} (healthy {}) with {preferred} preferred of {selectable}",
                            c.status, c.healthy);
                    }
                }
            }
        }
        prop_assert_eq!(selector.protection() != vasco_core::select::Protection::Normal, panic && selectable > 0);
    }
}

#[test]
fn panic_mode_spreads_to_warning_but_never_to_critical() {
    // 1 passing of 4 selectable (25 %) under a 50 % threshold: panic, so warning instances take
    // traffic too; the critical and maintenance ones never do.
    let list = vec![
        Candidate::new("p", 1),
        Candidate::new("w1", 1).with_status(Status::Warning),
        Candidate::new("w2", 1).with_status(Status::Warning),
        Candidate::new("w3", 1).with_status(Status::Warning),
        Candidate::new("c", 1).with_status(Status::Critical),
        Candidate::new("m", 1).with_status(Status::Maintenance),
    ];
    let pick_counts = |threshold: f64| {
        let mut selector = Selector::new(
            SelectorConfig {
                strategy: select::Strategy::RoundRobin,
                local_zone: None,
                protection_threshold: threshold,
            },
            list.clone(),
        );
        let mut rng = SplitMix64::from_seed(7);
        let mut counts = [0u32; 6];
        for _ in 0..600 {
            counts[selector.pick(&mut rng, None).unwrap()] += 1;
        }
        counts
    };
    assert_eq!(pick_counts(0.5), [150, 150, 150, 150, 0, 0]);
    // Threshold off: only the passing one while it exists.
    assert_eq!(pick_counts(0.0), [600, 0, 0, 0, 0, 0]);
}
