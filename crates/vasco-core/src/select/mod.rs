//! Picking one instance out of many.
//!
//! A [`Selector`] is built once per candidate list (O(N) work, or O(M log M) for Maglev) and
//! then answers [`Selector::pick`] without allocating, so it can sit on a request path in a
//! Worker or in a client. Every strategy draws randomness only from the caller's [`Rng`] and
//! hashes keys with xxh64 under fixed seeds, in `u64`/`u32` arithmetic: a given seed, key and
//! candidate list give the same index on every target (native, wasm32, Workers).
//!
//! Weights: [`Strategy::Random`] and [`Strategy::RoundRobin`] ignore them; every other
//! strategy honours them. A weight of 0 counts as 1 (the registry only accepts 1..=1000, and a
//! candidate that must get no traffic should simply be left out).

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;
use core::str::FromStr;

use crate::error::Error;
use crate::health::Status;
use crate::instance::Instance;
use crate::rng::Rng;

mod least_request;
mod maglev;
mod random;
mod ring;
mod round_robin;
mod weighted;
mod zone;

use least_request::LeastRequest;
use maglev::Maglev;
use random::Random;
use ring::Ring;
use round_robin::RoundRobin;
use weighted::Weighted;

/// How a [`Selector`] chooses among candidates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Strategy {
    /// Uniformly at random, ignoring weights.
    Random,
    /// Each candidate in turn (starting at a random one), ignoring weights.
    RoundRobin,
    /// Smooth weighted round robin (earliest deadline first): each candidate gets its weight's
    /// share, spread out rather than in bursts.
    Weighted,
    /// Power of two choices: of two distinct random candidates, the one with fewer requests in
    /// flight per unit of weight (see [`Selector::begin`]).
    LeastRequest,
    /// Consistent hashing by key with a Maglev lookup table: near-perfect balance, O(1) pick.
    Maglev,
    /// Consistent hashing by key on a hash ring with weighted virtual nodes.
    Ring,
}

impl Strategy {
    /// Every strategy, in declaration order.
    pub const ALL: &'static [Strategy] = &[
        Strategy::Random,
        Strategy::RoundRobin,
        Strategy::Weighted,
        Strategy::LeastRequest,
        Strategy::Maglev,
        Strategy::Ring,
    ];

    /// The name used in configuration and the HTTP/JS APIs (`"round-robin"`, ...).
    pub const fn name(self) -> &'static str {
        match self {
            Strategy::Random => "random",
            Strategy::RoundRobin => "round-robin",
            Strategy::Weighted => "weighted",
            Strategy::LeastRequest => "least-request",
            Strategy::Maglev => "maglev",
            Strategy::Ring => "ring",
        }
    }

    /// Whether picks depend on the key passed to [`Selector::pick`].
    pub const fn uses_key(self) -> bool {
        matches!(self, Strategy::Maglev | Strategy::Ring)
    }
}

impl fmt::Display for Strategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Strategy {
    type Err = Error;

    /// Accepts the names of [`Strategy::name`], plus `"consistent-hash"` for Maglev.
    fn from_str(s: &str) -> Result<Self, Error> {
        if s == "consistent-hash" {
            return Ok(Strategy::Maglev);
        }
        Strategy::ALL
            .iter()
            .copied()
            .find(|strategy| strategy.name() == s)
            .ok_or_else(|| {
                Error::invalid(
                    "strategy",
                    alloc::format!(
                        "unknown strategy `{s}`; expected one of random, round-robin, weighted, \
                         least-request, maglev (or consistent-hash), ring"
                    ),
                )
            })
    }
}

/// One instance a [`Selector`] may pick.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// Stable identity. Consistent-hash strategies place candidates by it, so the same id keeps
    /// the same keys across rebuilds. For registry instances, build candidates with
    /// [`Candidate::from_instance`] so every client hashes the same identity.
    pub id: String,
    /// Relative share of traffic (0 counts as 1).
    pub weight: u32,
    /// Zone (or region) the instance runs in, for zone preference.
    pub zone: Option<String>,
    /// Whether the caller considers it healthy (e.g. not ejected by outlier detection).
    /// Unhealthy candidates are left out of picks unless too few are healthy (see
    /// [`SelectorConfig::protection_threshold`]).
    pub healthy: bool,
    /// Its registry health status ([`crate::health`]). Only passing candidates (that are also
    /// [`Candidate::healthy`]) are preferred; warning ones are picked only in panic mode;
    /// critical and maintenance ones are never picked.
    pub status: Status,
}

impl Candidate {
    /// A healthy candidate without a zone.
    pub fn new(id: impl Into<String>, weight: u32) -> Self {
        Self {
            id: id.into(),
            weight,
            zone: None,
            healthy: true,
            status: Status::Passing,
        }
    }

    /// The candidate for a registry instance: the one rule every client (the npm package,
    /// the page, the simulator) uses, so that the same key picks the same instance
    /// everywhere. Its identity is the instance id, which the registry keeps unique within
    /// a `name@version` (picks choose within one version, see
    /// [`crate::resolve::newest_version`]), unlike the url; weight, zone and health status
    /// are the instance's.
    pub fn from_instance(instance: &Instance) -> Self {
        Self {
            id: instance.id.as_str().into(),
            weight: instance.weight,
            zone: instance.zone.clone(),
            healthy: true,
            status: instance.health.status,
        }
    }

    /// The same candidate with registry status `status`.
    pub fn with_status(mut self, status: Status) -> Self {
        self.status = status;
        self
    }

    /// Whether it is preferred: healthy and passing.
    fn preferred(&self) -> bool {
        self.healthy && self.status == Status::Passing
    }

    /// The same candidate, marked healthy or not.
    pub fn with_health(mut self, healthy: bool) -> Self {
        self.healthy = healthy;
        self
    }

    /// The same candidate placed in `zone`.
    pub fn in_zone(mut self, zone: impl Into<String>) -> Self {
        self.zone = Some(zone.into());
        self
    }

    /// The weight the strategies use: at least 1.
    fn effective_weight(&self) -> u32 {
        self.weight.max(1)
    }
}

/// How to build a [`Selector`].
#[derive(Debug, Clone, PartialEq)]
pub struct SelectorConfig {
    /// The strategy.
    pub strategy: Strategy,
    /// When set, only candidates in this zone are picked, unless none is in it; then all are.
    /// Applied after health: the local zone's healthy candidates first.
    pub local_zone: Option<String>,
    /// The panic threshold: a fraction in `0.0..=1.0`. Picks use only preferred candidates
    /// (healthy and passing) while their share of the selectable ones (passing or warning) is
    /// at or above it; below it (see [`protection`]), or when none is preferred, picks use
    /// every selectable candidate (warning and ejected ones too), rather than piling all
    /// traffic onto the few survivors (Envoy's panic threshold, Nacos's protect threshold).
    /// Critical and maintenance candidates are never picked, in panic mode either. `0.0`
    /// (the default) only falls back when none is preferred.
    pub protection_threshold: f64,
}

impl Default for SelectorConfig {
    /// Weighted round robin, no zone preference, protection off.
    fn default() -> Self {
        Self {
            strategy: Strategy::Weighted,
            local_zone: None,
            protection_threshold: 0.0,
        }
    }
}

impl SelectorConfig {
    /// The default configuration with `strategy`.
    pub fn new(strategy: Strategy) -> Self {
        Self {
            strategy,
            ..Self::default()
        }
    }
}

/// The per-strategy state, over the candidates of the pool (indices are pool-local).
#[derive(Debug, Clone)]
enum Pool {
    Random(Random),
    RoundRobin(RoundRobin),
    Weighted(Weighted),
    LeastRequest(LeastRequest),
    Maglev(Maglev),
    Ring(Ring),
}

impl Pool {
    fn build(strategy: Strategy, members: &[&Candidate]) -> Pool {
        let weights = || members.iter().map(|c| c.effective_weight());
        let ids = || {
            members
                .iter()
                .map(|c| (c.id.as_str(), c.effective_weight()))
        };
        match strategy {
            Strategy::Random => Pool::Random(Random::new(members.len())),
            Strategy::RoundRobin => Pool::RoundRobin(RoundRobin::new(members.len())),
            Strategy::Weighted => Pool::Weighted(Weighted::new(weights())),
            Strategy::LeastRequest => Pool::LeastRequest(LeastRequest::new(weights())),
            Strategy::Maglev => Pool::Maglev(Maglev::new(ids())),
            Strategy::Ring => Pool::Ring(Ring::new(ids())),
        }
    }

    /// A pool-local index; `load(i)` gives the requests in flight at pool-local `i`.
    fn pick<R: Rng + ?Sized>(
        &mut self,
        rng: &mut R,
        key: Option<&[u8]>,
        load: impl Fn(usize) -> u32,
    ) -> Option<usize> {
        match self {
            Pool::Random(p) => p.pick(rng),
            Pool::RoundRobin(p) => p.pick(rng),
            Pool::Weighted(p) => p.pick(rng),
            Pool::LeastRequest(p) => p.pick(rng, load),
            Pool::Maglev(p) => p.pick(key_hash(rng, key)),
            Pool::Ring(p) => p.pick(key_hash(rng, key)),
        }
    }
}

/// Seed of the key hash shared by the consistent-hash strategies. Part of the wire contract:
/// changing it moves every key.
const KEY_SEED: u64 = 0x7661_7363_6f2d_6b65; // "vasco-ke"

/// The 64-bit hash of a key; without a key, a random one (the request is then not sticky).
fn key_hash<R: Rng + ?Sized>(rng: &mut R, key: Option<&[u8]>) -> u64 {
    match key {
        Some(key) => xxhash_rust::xxh64::xxh64(key, KEY_SEED),
        None => rng.next_u64(),
    }
}

/// Maps a 64-bit hash uniformly onto `0..n` (multiply-high, no division, same on every target).
fn fast_range(hash: u64, n: u64) -> u64 {
    ((u128::from(hash) * u128::from(n)) >> 64) as u64
}

/// Picks candidates by a [`Strategy`], with zone preference.
///
/// Built once per candidate list; rebuild it when the list changes. Picks do not allocate.
#[derive(Debug, Clone)]
pub struct Selector {
    config: SelectorConfig,
    candidates: Vec<Candidate>,
    /// Candidate index of each pool member; `None` when the pool is all candidates in order.
    members: Option<Vec<u32>>,
    /// Requests in flight per candidate (see [`Selector::begin`]).
    in_flight: Vec<u32>,
    pool: Pool,
    /// The health check's outcome when the selector was built.
    protection: Protection,
}

impl Selector {
    /// Builds the strategy's state for `candidates`.
    ///
    /// # Panics
    /// If there are more than `u32::MAX` candidates (indices are kept in `u32` so that wasm32
    /// and 64-bit targets agree).
    pub fn new(config: SelectorConfig, candidates: Vec<Candidate>) -> Selector {
        assert!(
            u32::try_from(candidates.len()).is_ok(),
            "at most u32::MAX candidates"
        );
        // Health first: critical and maintenance never; the preferred (healthy and passing)
        // candidates, unless too few are (panic mode: every selectable one).
        let selectable: Vec<u32> = (0..candidates.len() as u32)
            .filter(|&i| candidates[i as usize].status.is_selectable())
            .collect();
        let preferred: Vec<u32> = selectable
            .iter()
            .copied()
            .filter(|&i| candidates[i as usize].preferred())
            .collect();
        let protection = match protection(
            preferred.len(),
            selectable.len(),
            config.protection_threshold,
        ) {
            // None preferred: health is ignored whatever the threshold.
            Protection::Normal if preferred.is_empty() && !selectable.is_empty() => {
                Protection::BelowThreshold {
                    healthy: 0,
                    total: selectable.len(),
                }
            }
            other => other,
        };
        let eligible = if protection != Protection::Normal {
            selectable
        } else {
            preferred
        };
        // Then zone preference among those.
        let members = zone::preferred_among(&candidates, eligible, config.local_zone.as_deref());
        let members = (members.len() < candidates.len()).then_some(members);
        let pool = {
            let chosen: Vec<&Candidate> = match &members {
                Some(members) => members.iter().map(|&i| &candidates[i as usize]).collect(),
                None => candidates.iter().collect(),
            };
            Pool::build(config.strategy, &chosen)
        };
        Selector {
            in_flight: alloc::vec![0; candidates.len()],
            members,
            config,
            candidates,
            pool,
            protection,
        }
    }

    /// Whether health was ignored when the selector was built: [`Protection::BelowThreshold`]
    /// when the healthy share was below the panic threshold or none was healthy (every
    /// candidate is then picked from); [`Protection::Normal`] otherwise. For callers to
    /// surface to operators.
    pub fn protection(&self) -> Protection {
        self.protection
    }

    /// The index (into [`Selector::candidates`]) of the candidate to use, or `None` when there
    /// are no candidates.
    ///
    /// `key` makes [`Strategy::Maglev`] and [`Strategy::Ring`] sticky: the same key gives the
    /// same candidate while the candidate list is unchanged. Other strategies ignore it, and
    /// consistent hashing without a key picks at random.
    pub fn pick<R: Rng + ?Sized>(&mut self, rng: &mut R, key: Option<&[u8]>) -> Option<usize> {
        let members = &self.members;
        let in_flight = &self.in_flight;
        let global = |local: usize| match members {
            Some(members) => members[local] as usize,
            None => local,
        };
        let local = self.pool.pick(rng, key, |local| in_flight[global(local)])?;
        Some(global(local))
    }

    /// Records that a request to candidate `index` started; [`Strategy::LeastRequest`] steers
    /// away from candidates with many. Out-of-range indices are ignored.
    pub fn begin(&mut self, index: usize) {
        if let Some(count) = self.in_flight.get_mut(index) {
            *count = count.saturating_add(1);
        }
    }

    /// Records that a request to candidate `index` finished (successfully or not).
    pub fn end(&mut self, index: usize) {
        if let Some(count) = self.in_flight.get_mut(index) {
            *count = count.saturating_sub(1);
        }
    }

    /// Requests in flight at candidate `index` (0 when out of range).
    pub fn in_flight(&self, index: usize) -> u32 {
        self.in_flight.get(index).copied().unwrap_or(0)
    }

    /// For the consistent-hash strategies, the fraction of all keys each candidate receives
    /// (by Maglev slots or ring arcs, exactly, not sampled), indexed like
    /// [`Selector::candidates`]; `None` for other strategies. For diagnostics and benchmarks:
    /// it allocates and walks the whole table.
    pub fn key_shares(&self) -> Option<Vec<f64>> {
        let pool_len = self.preferred_len();
        let (owned, total) = match &self.pool {
            Pool::Maglev(maglev) => maglev.slot_counts(pool_len),
            Pool::Ring(ring) => (ring.arc_lengths(pool_len), 1 << 32),
            _ => return None,
        };
        let mut shares = alloc::vec![0.0; self.candidates.len()];
        for (local, &owned) in owned.iter().enumerate() {
            let global = self.members.as_ref().map_or(local, |m| m[local] as usize);
            shares[global] = owned as f64 / total as f64;
        }
        Some(shares)
    }

    /// The candidates, in the order given to [`Selector::new`]; picks index into this.
    pub fn candidates(&self) -> &[Candidate] {
        &self.candidates
    }

    /// The configuration the selector was built with.
    pub fn config(&self) -> &SelectorConfig {
        &self.config
    }

    /// How many candidates picks are drawn from: the healthy ones (all in panic mode), and of
    /// those the ones in the local zone when zone preference applies.
    pub fn preferred_len(&self) -> usize {
        self.members
            .as_ref()
            .map_or(self.candidates.len(), Vec::len)
    }

    /// The indices (into [`Selector::candidates`]) that picks are drawn from, in candidate
    /// order: the preferred ones (healthy and passing), every selectable one in panic mode,
    /// narrowed to the local zone when zone preference applies. Empty when none may be picked.
    /// For answers that list rather than pick (the agent's DNS answers every instance a pick
    /// could return).
    pub fn eligible(&self) -> Vec<usize> {
        match &self.members {
            Some(members) => members.iter().map(|&i| i as usize).collect(),
            None => (0..self.candidates.len()).collect(),
        }
    }

    /// The number of candidates.
    pub fn len(&self) -> usize {
        self.candidates.len()
    }

    /// Whether there are no candidates. [`Selector::pick`] returns `None` then, and also when
    /// every candidate is critical or in maintenance ([`Selector::preferred_len`] is 0).
    pub fn is_empty(&self) -> bool {
        self.candidates.is_empty()
    }
}

/// The outcome of the protection-threshold check (Envoy's "panic threshold", Nacos's
/// "protect threshold").
///
/// When too few instances are healthy, sending all traffic to the survivors can topple them
/// too. The core does not decide what to do about it; it reports the condition so the caller
/// can, e.g., fall back to all instances or shed load, and surface it to operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protection {
    /// Enough instances are healthy (or protection is off).
    Normal,
    /// `healthy / total` is below the threshold.
    BelowThreshold {
        /// Healthy instances.
        healthy: usize,
        /// All instances.
        total: usize,
    },
}

/// Checks `healthy / total` against `threshold` (a fraction; `0.0`, negative or NaN means
/// off). Exactly at the threshold is [`Protection::Normal`]; so is `total == 0`, where there is
/// nothing to protect.
pub fn protection(healthy: usize, total: usize, threshold: f64) -> Protection {
    let healthy = healthy.min(total);
    // Divide rather than multiply: `3.0 / 10.0` rounds to the same double as the literal 0.3,
    // so a ratio exactly at a decimal threshold is not reported as below it.
    if total > 0 && threshold > 0.0 && (healthy as f64) / (total as f64) < threshold {
        Protection::BelowThreshold { healthy, total }
    } else {
        Protection::Normal
    }
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;
    use crate::rng::SplitMix64;
    use alloc::string::ToString;
    use alloc::vec;

    fn candidates(n: usize) -> Vec<Candidate> {
        (0..n)
            .map(|i| Candidate::new(alloc::format!("node-{i}"), 1))
            .collect()
    }

    #[test]
    fn names_round_trip_and_alias() {
        for &strategy in Strategy::ALL {
            assert_eq!(strategy.to_string().parse::<Strategy>(), Ok(strategy));
        }
        assert_eq!("consistent-hash".parse::<Strategy>(), Ok(Strategy::Maglev));
        let err = "fastest".parse::<Strategy>().unwrap_err();
        assert_eq!(err.code(), "invalid_strategy");
        assert!(err.to_string().contains("fastest"));
        assert!(
            "Random".parse::<Strategy>().is_err(),
            "names are case-sensitive"
        );
    }

    #[test]
    fn empty_candidates_pick_none_for_every_strategy() {
        let mut rng = SplitMix64::from_seed(1);
        for &strategy in Strategy::ALL {
            let mut selector = Selector::new(SelectorConfig::new(strategy), Vec::new());
            assert!(selector.is_empty());
            assert_eq!(selector.pick(&mut rng, None), None, "{strategy}");
            assert_eq!(selector.pick(&mut rng, Some(b"k")), None, "{strategy}");
        }
    }

    #[test]
    fn single_candidate_always_picked_even_with_zero_weight() {
        let mut rng = SplitMix64::from_seed(2);
        for &strategy in Strategy::ALL {
            let mut selector = Selector::new(
                SelectorConfig::new(strategy),
                vec![Candidate::new("only", 0)],
            );
            for i in 0..50u32 {
                let key = i.to_le_bytes();
                assert_eq!(selector.pick(&mut rng, Some(&key)), Some(0), "{strategy}");
            }
        }
    }

    #[test]
    fn picks_are_in_range_for_every_strategy() {
        let mut rng = SplitMix64::from_seed(3);
        for &strategy in Strategy::ALL {
            let mut selector = Selector::new(SelectorConfig::new(strategy), candidates(7));
            for i in 0..1_000u32 {
                let key = i.to_le_bytes();
                let picked = selector.pick(&mut rng, Some(&key)).unwrap();
                assert!(picked < 7, "{strategy}: {picked}");
            }
        }
    }

    #[test]
    fn duplicate_ids_and_extreme_weights_still_spread_picks() {
        let list = vec![
            Candidate::new("same", u32::MAX),
            Candidate::new("same", u32::MAX),
            Candidate::new("", 0),
        ];
        let mut rng = SplitMix64::from_seed(5);
        for &strategy in Strategy::ALL {
            let mut selector = Selector::new(SelectorConfig::new(strategy), list.clone());
            let mut seen = [0u32; 3];
            for i in 0..3_000u32 {
                seen[selector.pick(&mut rng, Some(&i.to_le_bytes())).unwrap()] += 1;
            }
            // The two heavy duplicates both get traffic (except on the ring, where equal ids
            // are the same nodes and the first one wins them all); where weights count, the
            // light one gets (almost) none.
            if strategy == Strategy::Ring {
                assert_eq!(seen[0] + seen[2], 3_000, "{strategy}: {seen:?}");
            } else {
                assert!(seen[0] > 500 && seen[1] > 500, "{strategy}: {seen:?}");
            }
            if matches!(
                strategy,
                Strategy::Weighted | Strategy::Maglev | Strategy::Ring
            ) {
                assert!(seen[2] <= 3, "{strategy}: {seen:?}");
            }
        }
    }

    #[test]
    fn begin_end_track_in_flight_and_ignore_bad_indices() {
        let mut selector =
            Selector::new(SelectorConfig::new(Strategy::LeastRequest), candidates(2));
        selector.begin(1);
        selector.begin(1);
        selector.end(1);
        selector.begin(9);
        selector.end(0);
        assert_eq!(selector.in_flight(0), 0);
        assert_eq!(selector.in_flight(1), 1);
        assert_eq!(selector.in_flight(9), 0);
    }

    #[test]
    fn default_config() {
        let config = SelectorConfig::default();
        assert_eq!(config.strategy, Strategy::Weighted);
        assert_eq!(config.local_zone, None);
        assert_eq!(config.protection_threshold, 0.0);
    }

    fn picked_ids(selector: &mut Selector, picks: u32) -> alloc::collections::BTreeSet<String> {
        let mut rng = SplitMix64::from_seed(11);
        (0..picks)
            .map(|i| {
                let index = selector.pick(&mut rng, Some(&i.to_le_bytes())).unwrap();
                selector.candidates()[index].id.clone()
            })
            .collect()
    }

    #[test]
    fn unhealthy_candidates_are_left_out_until_the_panic_threshold() {
        // 10 candidates, `sick` of them unhealthy; threshold 0.5.
        for &strategy in Strategy::ALL {
            for sick in [0, 1, 5, 6, 10] {
                let list: Vec<Candidate> = candidates(10)
                    .into_iter()
                    .enumerate()
                    .map(|(i, c)| c.with_health(i >= sick))
                    .collect();
                let config = SelectorConfig {
                    protection_threshold: 0.5,
                    ..SelectorConfig::new(strategy)
                };
                let mut selector = Selector::new(config, list);
                let seen = picked_ids(&mut selector, 2_000);
                let panic = sick > 5; // healthy share below 0.5, or none healthy
                assert_eq!(
                    selector.protection() != Protection::Normal,
                    panic,
                    "{strategy} sick={sick}"
                );
                let sick_seen = (0..sick).filter(|i| seen.contains(&alloc::format!("node-{i}")));
                if panic {
                    assert_eq!(seen.len(), 10, "{strategy} sick={sick}: every candidate");
                } else {
                    assert_eq!(sick_seen.count(), 0, "{strategy} sick={sick}");
                    assert_eq!(seen.len(), 10 - sick, "{strategy} sick={sick}");
                }
            }
        }
    }

    #[test]
    fn with_none_healthy_every_candidate_is_picked_even_without_a_threshold() {
        let list: Vec<Candidate> = candidates(3)
            .into_iter()
            .map(|c| c.with_health(false))
            .collect();
        let mut selector = Selector::new(SelectorConfig::new(Strategy::RoundRobin), list);
        assert_eq!(
            selector.protection(),
            Protection::BelowThreshold {
                healthy: 0,
                total: 3
            }
        );
        assert_eq!(picked_ids(&mut selector, 30).len(), 3);
        let mut empty = Selector::new(SelectorConfig::default(), Vec::new());
        assert_eq!(empty.protection(), Protection::Normal);
        assert_eq!(empty.pick(&mut SplitMix64::from_seed(1), None), None);
    }

    #[test]
    fn health_comes_before_zone_preference() {
        let list = vec![
            Candidate::new("eu-sick", 1)
                .in_zone("eu")
                .with_health(false),
            Candidate::new("eu-ok", 1).in_zone("eu"),
            Candidate::new("us-ok", 1).in_zone("us"),
        ];
        let config = SelectorConfig {
            local_zone: Some("eu".into()),
            ..SelectorConfig::new(Strategy::RoundRobin)
        };
        let mut selector = Selector::new(config.clone(), list.clone());
        assert_eq!(selector.preferred_len(), 1);
        assert_eq!(
            picked_ids(&mut selector, 50)
                .into_iter()
                .collect::<Vec<_>>(),
            ["eu-ok"]
        );
        // The local zone has no healthy candidate left: the other zone's healthy one.
        let mut list = list;
        list[1].healthy = false;
        let mut selector = Selector::new(config, list);
        assert_eq!(
            picked_ids(&mut selector, 50)
                .into_iter()
                .collect::<Vec<_>>(),
            ["us-ok"]
        );
    }

    #[test]
    fn protection_threshold_boundaries() {
        assert_eq!(protection(3, 10, 0.3), Protection::Normal, "exactly at");
        assert_eq!(
            protection(2, 10, 0.3),
            Protection::BelowThreshold {
                healthy: 2,
                total: 10
            }
        );
        assert_eq!(
            protection(1, 3, 0.5),
            Protection::BelowThreshold {
                healthy: 1,
                total: 3
            }
        );
        assert_eq!(protection(5, 10, 0.5), Protection::Normal);
        assert_eq!(protection(0, 10, 0.0), Protection::Normal, "off");
        assert_eq!(
            protection(0, 10, f64::NAN),
            Protection::Normal,
            "NaN is off"
        );
        assert_eq!(protection(0, 10, -1.0), Protection::Normal);
        assert_eq!(
            protection(0, 0, 0.5),
            Protection::Normal,
            "nothing to protect"
        );
        assert_eq!(
            protection(0, 10, 1.0),
            Protection::BelowThreshold {
                healthy: 0,
                total: 10
            }
        );
        assert_eq!(protection(10, 10, 1.0), Protection::Normal);
        assert_eq!(
            protection(12, 10, 1.0),
            Protection::Normal,
            "healthy is capped at total"
        );
    }

    #[test]
    fn eligible_lists_what_picks_draw_from() {
        let with = |statuses: &[Status]| {
            let candidates = statuses
                .iter()
                .enumerate()
                .map(|(i, s)| Candidate::new(alloc::format!("c{i}"), 1).with_status(*s))
                .collect();
            Selector::new(SelectorConfig::new(Strategy::Random), candidates).eligible()
        };
        use Status::*;
        assert_eq!(with(&[Passing, Warning, Critical, Passing]), vec![0, 3]);
        assert_eq!(with(&[Passing, Passing]), vec![0, 1]);
        assert_eq!(
            with(&[Warning, Critical, Warning, Maintenance]),
            vec![0, 2],
            "panic"
        );
        assert_eq!(with(&[Critical, Maintenance]), Vec::<usize>::new());
        assert_eq!(with(&[]), Vec::<usize>::new());
    }
}
