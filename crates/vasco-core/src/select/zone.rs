//! Zone preference: keep traffic in the caller's zone (lower latency, no cross-zone transfer
//! cost) as long as that zone has any candidate, else use every zone.
//!
//! The choice is made once, when the [`Selector`](super::Selector) is built: the list of
//! candidates is fixed for a selector's life, so the fallback cannot change between picks, and
//! only the one pool that can be used is built (a second pool over all candidates would only
//! cost memory; for Maglev that is 100 slots per candidate).

use alloc::vec::Vec;

use super::Candidate;

/// The candidate indices in `local_zone`, when zone preference narrows the choice: `None` when
/// there is no local zone, when no candidate is in it (fall back to all), or when every
/// candidate is (the subset is everything).
#[cfg(test)]
pub(super) fn preferred(candidates: &[Candidate], local_zone: Option<&str>) -> Option<Vec<u32>> {
    let all: Vec<u32> = (0..candidates.len() as u32).collect();
    let chosen = preferred_among(candidates, all, local_zone);
    (chosen.len() < candidates.len()).then_some(chosen)
}

/// Of the candidate indices `eligible`, those in `local_zone`; all of `eligible` when there is
/// no local zone or none of them is in it.
pub(super) fn preferred_among(
    candidates: &[Candidate],
    eligible: Vec<u32>,
    local_zone: Option<&str>,
) -> Vec<u32> {
    let Some(local_zone) = local_zone else {
        return eligible;
    };
    let local: Vec<u32> = eligible
        .iter()
        .copied()
        .filter(|&i| candidates[i as usize].zone.as_deref() == Some(local_zone))
        .collect();
    if local.is_empty() {
        eligible
    } else {
        local
    }
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::super::{Selector, SelectorConfig, Strategy};
    use super::*;
    use crate::rng::SplitMix64;
    use alloc::string::ToString;
    use alloc::vec;

    fn mixed() -> Vec<Candidate> {
        vec![
            Candidate::new("a", 1).in_zone("eu"),
            Candidate::new("b", 1).in_zone("us"),
            Candidate::new("c", 5).in_zone("eu"),
            Candidate::new("d", 1),
            Candidate::new("e", 1).in_zone("us"),
        ]
    }

    fn config(strategy: Strategy, zone: Option<&str>) -> SelectorConfig {
        SelectorConfig {
            strategy,
            local_zone: zone.map(ToString::to_string),
            protection_threshold: 0.0,
        }
    }

    #[test]
    fn preferred_subset() {
        assert_eq!(preferred(&mixed(), Some("eu")), Some(vec![0, 2]));
        assert_eq!(preferred(&mixed(), Some("us")), Some(vec![1, 4]));
        assert_eq!(
            preferred(&mixed(), Some("ap")),
            None,
            "no local candidate: all"
        );
        assert_eq!(preferred(&mixed(), None), None);
        let all_eu = vec![Candidate::new("a", 1).in_zone("eu")];
        assert_eq!(preferred(&all_eu, Some("eu")), None, "everything is local");
    }

    #[test]
    fn every_strategy_stays_in_the_local_zone() {
        let mut rng = SplitMix64::from_seed(11);
        for &strategy in Strategy::ALL {
            let mut selector = Selector::new(config(strategy, Some("us")), mixed());
            assert_eq!(selector.preferred_len(), 2);
            let mut seen = [0u32; 5];
            for i in 0..2_000u32 {
                let picked = selector.pick(&mut rng, Some(&i.to_le_bytes())).unwrap();
                seen[picked] += 1;
            }
            assert_eq!(seen[0] + seen[2] + seen[3], 0, "{strategy}: {seen:?}");
            assert!(seen[1] > 0 && seen[4] > 0, "{strategy}: {seen:?}");
        }
    }

    #[test]
    fn falls_back_to_all_when_the_local_zone_is_empty() {
        let mut rng = SplitMix64::from_seed(12);
        for &strategy in Strategy::ALL {
            let mut selector = Selector::new(config(strategy, Some("ap")), mixed());
            assert_eq!(selector.preferred_len(), 5);
            let mut seen = [0u32; 5];
            for i in 0..5_000u32 {
                seen[selector.pick(&mut rng, Some(&i.to_le_bytes())).unwrap()] += 1;
            }
            assert!(seen.iter().all(|&n| n > 0), "{strategy}: {seen:?}");
        }
    }

    #[test]
    fn weights_apply_within_the_zone() {
        let mut rng = SplitMix64::from_seed(13);
        let mut selector = Selector::new(config(Strategy::Weighted, Some("eu")), mixed());
        let mut seen = [0u32; 5];
        for _ in 0..600 {
            seen[selector.pick(&mut rng, None).unwrap()] += 1;
        }
        // a:c = 1:5, within one pick (smooth weighted round robin is exact up to the cycle
        // that is in progress).
        assert_eq!(seen[1] + seen[3] + seen[4], 0, "{seen:?}");
        assert!(seen[0].abs_diff(100) <= 1, "{seen:?}");
    }

    #[test]
    fn least_request_load_is_tracked_by_candidate_index() {
        let mut rng = SplitMix64::from_seed(14);
        let mut selector = Selector::new(config(Strategy::LeastRequest, Some("us")), mixed());
        // Candidate 1 is busy, so of the two "us" candidates, 4 must win every time.
        for _ in 0..10 {
            selector.begin(1);
        }
        for _ in 0..100 {
            assert_eq!(selector.pick(&mut rng, None), Some(4));
        }
    }
}
