//! Golden picks: for fixed seeds, keys and candidate lists, the sequence of indices every
//! strategy picks is reduced to an xxh64 digest and compared with a constant.
//!
//! The same file runs natively (`cargo test`) and compiled to wasm32 under
//! wasm-bindgen-test in Node, so passing on both proves that native, Worker and browser
//! clients pick bit-identically. A digest that changes natively means a change to the
//! selection algorithms (or their hash seeds): every deployed client would then route the
//! same key differently, so update the constants only on purpose.

use vasco_core::select::{Candidate, Selector, SelectorConfig, Strategy};
use vasco_core::{Rng, SplitMix64};
use xxhash_rust::xxh64::{xxh64, Xxh64};

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

/// `n` candidates with mixed weights (1..=10) and three zones.
fn candidates(n: usize) -> Vec<Candidate> {
    (0..n)
        .map(|i| {
            let candidate = Candidate::new(
                format!("10.1.{}.{}:7000", i / 200, i % 200),
                (i * 7 % 10) as u32 + 1,
            );
            match i % 3 {
                0 => candidate.in_zone("eu-west"),
                1 => candidate.in_zone("us-east"),
                _ => candidate,
            }
        })
        .collect()
}

/// Digest of 3,000 picks. Keys are given for two picks in three (the third exercises the
/// random fallback of the consistent-hash strategies); for least-request every pick starts a
/// request and the one from three picks earlier ends, so the load varies.
fn digest(strategy: Strategy, n: usize, local_zone: Option<&str>, seed: u64) -> u64 {
    let config = SelectorConfig {
        strategy,
        local_zone: local_zone.map(str::to_string),
        protection_threshold: 0.0,
    };
    let mut selector = Selector::new(config, candidates(n));
    let mut rng = SplitMix64::from_seed(seed);
    let mut hasher = Xxh64::new(0);
    let mut open = std::collections::VecDeque::new();
    for i in 0..3_000u32 {
        let key = format!("user-{}", i % 500);
        let key = (i % 3 != 2).then_some(key.as_bytes());
        let picked = selector.pick(&mut rng, key).map_or(u32::MAX, |p| p as u32);
        hasher.update(&picked.to_le_bytes());
        if strategy == Strategy::LeastRequest {
            selector.begin(picked as usize);
            open.push_back(picked as usize);
            if open.len() > 3 {
                selector.end(open.pop_front().unwrap());
            }
        }
    }
    hasher.digest()
}

/// Checks every case and reports all mismatches at once, in a form to paste back.
fn check(cases: &[(Strategy, usize, Option<&str>, u64, u64)]) {
    let mut mismatches = Vec::new();
    for &(strategy, n, zone, seed, expected) in cases {
        let got = digest(strategy, n, zone, seed);
        if got != expected {
            mismatches.push(format!(
                "(Strategy::{strategy:?}, {n}, {zone:?}, {seed}, {got:#018x}), // expected {expected:#018x}"
            ));
        }
    }
    assert!(
        mismatches.is_empty(),
        "digests differ:\n{}",
        mismatches.join("\n")
    );
}

#[test]
fn rng_and_key_hash_are_target_independent() {
    let mut rng = SplitMix64::from_seed(0x5eed);
    let mut words = Vec::new();
    let mut indices = Vec::new();
    let mut units = Vec::new();
    for n in 1..200usize {
        words.extend_from_slice(&rng.next_u64().to_le_bytes());
        indices.extend_from_slice(&(rng.below(n) as u32).to_le_bytes());
        units.extend_from_slice(&rng.unit().to_bits().to_le_bytes());
    }
    let got = [
        xxh64(&words, 0),
        xxh64(&indices, 0),
        xxh64(&units, 0),
        xxh64(b"user-42", 0x7661_7363_6f2d_6b65),
    ];
    assert_eq!(
        got,
        [
            0x801a8e9d205aba3f,
            0x31c552deab0334f0,
            0xa881668a5f233bf3,
            0x8be1399bbd41cc15
        ],
        "{got:#018x?}"
    );
}

#[test]
fn picks_are_identical_on_every_target() {
    check(&[
        (Strategy::Random, 37, None, 1, 0x43b9df70e50c8d66),
        (Strategy::RoundRobin, 37, None, 2, 0xe34ff9ea07eaa8f1),
        (Strategy::Weighted, 37, None, 3, 0xc8929abd612979f3),
        (Strategy::LeastRequest, 37, None, 4, 0xb806a4827c90dc79),
        (Strategy::Maglev, 37, None, 5, 0x8eba83fc643397c9),
        (Strategy::Ring, 37, None, 6, 0x5c3a28638f3580bc),
        (Strategy::Maglev, 300, None, 7, 0x412b8b50bb20dd16),
        (Strategy::Ring, 300, None, 8, 0x9e8a0e1177f3fa61),
        (Strategy::Weighted, 1, None, 9, 0xa4b456013091ff38),
        (Strategy::Maglev, 0, None, 10, 0xe903fda67cae75e6),
    ]);
}

#[test]
fn zone_preferred_picks_are_identical_on_every_target() {
    let zone = Some("us-east");
    check(&[
        (Strategy::Random, 37, zone, 100, 0x244d48625184ca90),
        (Strategy::RoundRobin, 37, zone, 101, 0x4d59a0737993705e),
        (Strategy::Weighted, 37, zone, 102, 0x657efebbbe925404),
        (Strategy::LeastRequest, 37, zone, 103, 0xf74f51890925c4b8),
        (Strategy::Maglev, 37, zone, 104, 0x30a856b72d48bda7),
        (Strategy::Ring, 37, zone, 105, 0x4ca1e39e89cece0e),
    ]);
}
