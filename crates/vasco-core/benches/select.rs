//! Selection benchmark: `cargo bench -p vasco-core --bench select`.
//!
//! Measures ns per pick for every strategy at N = 10, 1,000 and 100,000, build times, the
//! balance of the consistent-hash strategies at N = 100 and how many keys move when one
//! candidate of N leaves, then writes the section "## Core selection (native)" of
//! `bench/RESULTS.md` (other sections of that file are kept as they are).
//!
//! Method: `std::time::Instant` around 2,000,000 picks (fewer at N = 100,000 for the slow
//! builds), median of 7 runs after a warm-up run; keys are 16 random bytes drawn from a pool of
//! 65,536, so hashing is included and the table lookups are not all cache hits. Every result
//! goes through `std::hint::black_box`.

use std::fmt::Write as _;
use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use vasco_core::select::{Candidate, Selector, SelectorConfig, Strategy};
use vasco_core::{Rng, SplitMix64};

const SIZES: [usize; 3] = [10, 1_000, 100_000];
const PICKS: usize = 2_000_000;
const RUNS: usize = 7;
const KEY_POOL: usize = 1 << 16;
const SECTION: &str = "## Core selection (native)";
/// The pick budget at N = 1,000 (issue #2).
const PICK_TARGET_NS: f64 = 50.0;

fn main() {
    // `cargo bench` passes `--bench`; a filter or `--list` from other tooling is ignored.
    let keys = keys();
    let mut out = String::new();
    writeln!(out, "{SECTION}").unwrap();
    writeln!(out).unwrap();
    writeln!(
        out,
        "Made by `cargo bench -p vasco-core --bench select` on {}, {} ({}); load average \
         {} when it started (the machine is shared, so other work adds noise).",
        today(),
        machine(),
        rustc(),
        load()
    )
    .unwrap();
    writeln!(
        out,
        "Median of {RUNS} runs of {PICKS} picks (after a warm-up run), 16-byte keys from a pool \
         of {KEY_POOL}, key hashing included; candidates have equal weights. Least-request picks \
         are measured without in-flight load (the comparison costs the same either way)."
    )
    .unwrap();
    writeln!(out).unwrap();

    pick_table(&mut out, &keys);
    balance_table(&mut out);
    movement_table(&mut out);

    print!("{out}");
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../bench/RESULTS.md");
    write_section(&path, &out);
    println!("wrote {}", path.display());
}

fn pick_table(out: &mut String, keys: &[[u8; 16]]) {
    let mut picks = Vec::new();
    let mut builds = Vec::new();
    for &strategy in Strategy::ALL {
        let mut pick_row = Vec::new();
        let mut build_row = Vec::new();
        for &n in &SIZES {
            let candidates = equal(n);
            let build_runs = if n >= 100_000 { 3 } else { RUNS };
            let build = median(
                (0..build_runs)
                    .map(|_| {
                        let list = candidates.clone();
                        let start = Instant::now();
                        let selector = Selector::new(SelectorConfig::new(strategy), list);
                        let elapsed = start.elapsed();
                        black_box(selector);
                        elapsed.as_secs_f64()
                    })
                    .collect(),
            );
            let mut selector = Selector::new(SelectorConfig::new(strategy), candidates);
            time_picks(&mut selector, keys, PICKS / 4); // warm-up
            let ns = median(
                (0..RUNS)
                    .map(|_| time_picks(&mut selector, keys, PICKS))
                    .collect(),
            );
            eprintln!(
                "{strategy} N={n}: {ns:.1} ns/pick, build {}",
                seconds(build)
            );
            pick_row.push(ns);
            build_row.push(build);
        }
        picks.push((strategy, pick_row));
        builds.push((strategy, build_row));
    }

    writeln!(out, "### ns per pick").unwrap();
    writeln!(out).unwrap();
    writeln!(
        out,
        "| strategy | N = 10 | N = 1,000 | N = 100,000 | target at 1,000 |"
    )
    .unwrap();
    writeln!(out, "|---|---:|---:|---:|---|").unwrap();
    for (strategy, row) in &picks {
        let verdict = if row[1] <= PICK_TARGET_NS {
            "≤ 50 ns: met"
        } else {
            "≤ 50 ns: **missed**"
        };
        writeln!(
            out,
            "| {strategy} | {:.1} | {:.1} | {:.1} | {verdict} |",
            row[0], row[1], row[2]
        )
        .unwrap();
    }
    writeln!(out).unwrap();
    writeln!(out, "### Build time (`Selector::new`)").unwrap();
    writeln!(out).unwrap();
    writeln!(out, "| strategy | N = 10 | N = 1,000 | N = 100,000 |").unwrap();
    writeln!(out, "|---|---:|---:|---:|").unwrap();
    for (strategy, row) in &builds {
        writeln!(
            out,
            "| {strategy} | {} | {} | {} |",
            seconds(row[0]),
            seconds(row[1]),
            seconds(row[2])
        )
        .unwrap();
    }
    writeln!(out).unwrap();
    writeln!(
        out,
        "Maglev's table size is the first prime at or above 2^16, 2^18, 2^20, ... that gives \
         at least 100 slots per candidate (65,537 slots for every N up to 655); filling it is \
         O(M log M). The ring has 1,024 nodes per unit of weight whoever else is on it (up \
         to 2^22 nodes, a total weight of 4,096), so a removal moves no key between the others."
    )
    .unwrap();
    writeln!(out).unwrap();
}

fn balance_table(out: &mut String) {
    const N: usize = 100;
    const SAMPLED: u32 = 10_000_000;
    writeln!(out, "### Balance at N = 100 (peak-to-mean load)").unwrap();
    writeln!(out).unwrap();
    writeln!(
        out,
        "Exact: from Maglev slot counts and ring arc lengths (`Selector::key_shares`). Sampled: \
         {SAMPLED} hashed keys (sampling alone adds about ±1% at the peak)."
    )
    .unwrap();
    writeln!(out).unwrap();
    writeln!(out, "| strategy | exact | sampled | target |").unwrap();
    writeln!(out, "|---|---:|---:|---|").unwrap();
    for (strategy, target) in [(Strategy::Maglev, 1.01), (Strategy::Ring, 1.05)] {
        let mut selector = Selector::new(SelectorConfig::new(strategy), equal(N));
        let shares = selector.key_shares().expect("consistent hashing");
        let exact = shares.iter().cloned().fold(0.0, f64::max) * N as f64;
        let mut counts = vec![0u32; N];
        let mut rng = SplitMix64::from_seed(7);
        for k in 0..SAMPLED {
            counts[selector.pick(&mut rng, Some(&k.to_le_bytes())).unwrap()] += 1;
        }
        let sampled = f64::from(*counts.iter().max().unwrap()) * N as f64 / f64::from(SAMPLED);
        let verdict = if exact <= target { "met" } else { "**missed**" };
        writeln!(
            out,
            "| {strategy} | {exact:.4} | {sampled:.4} | ≤ {target} (exact): {verdict} |"
        )
        .unwrap();
    }
    writeln!(out).unwrap();
}

fn movement_table(out: &mut String) {
    const KEYS: u32 = 1_000_000;
    const REMOVALS: usize = 5;
    writeln!(out, "### Keys moved when 1 of N candidates is removed").unwrap();
    writeln!(out).unwrap();
    writeln!(
        out,
        "Fraction of {KEYS} keys whose candidate changes, in units of 1/N (1.0 is the ideal: \
         only the removed candidate's keys move), mean and worst of {REMOVALS} removals spread \
         over the list."
    )
    .unwrap();
    writeln!(out).unwrap();
    writeln!(out, "| strategy | N | mean × N | worst × N | target |").unwrap();
    writeln!(out, "|---|---:|---:|---:|---|").unwrap();
    for (strategy, target) in [(Strategy::Ring, 1.1), (Strategy::Maglev, 2.0)] {
        // 129 -> 128: the total weight crosses a power of two (it once moved half the keys).
        for n in [100usize, 129, 1_000] {
            let all = equal(n);
            let mut before = Selector::new(SelectorConfig::new(strategy), all.clone());
            let before_ids: Vec<u32> = (0..KEYS).map(|k| pick_id(&mut before, k)).collect();
            let mut fractions = Vec::new();
            for r in 0..REMOVALS {
                let removed = r * n / REMOVALS + n / (2 * REMOVALS);
                let mut rest = all.clone();
                rest.remove(removed);
                let mut after = Selector::new(SelectorConfig::new(strategy), rest);
                let moved = (0..KEYS)
                    .filter(|&k| pick_id(&mut after, k) != before_ids[k as usize])
                    .count();
                fractions.push(moved as f64 / f64::from(KEYS) * n as f64);
            }
            let mean = fractions.iter().sum::<f64>() / fractions.len() as f64;
            let worst = fractions.iter().cloned().fold(0.0, f64::max);
            let verdict = if worst <= target { "met" } else { "**missed**" };
            writeln!(
                out,
                "| {strategy} | {n} | {mean:.3} | {worst:.3} | ≤ {target}/N: {verdict} |"
            )
            .unwrap();
        }
    }
    writeln!(out).unwrap();
    writeln!(
        out,
        "Maglev moves more than the removed candidate's keys: filling the table is a race in \
         which every claim depends on the slots taken before it, so one candidate fewer \
         changes some claims of the others. The churn shrinks as slots per candidate grow and \
         grows with N; at N = 1,000 even 2,000 slots per candidate measured 2.3/N. Where \
         stickiness matters more than exact balance, use the ring. Maglev's table size only \
         changes when N crosses a rung of its ladder (655, 2,621, 10,485, ... candidates); a \
         removal that crosses one reshuffles all keys."
    )
    .unwrap();
    writeln!(out).unwrap();
}

/// The numeric id (`10.x.y.z:80` → its position) of the candidate picked for key `k`.
fn pick_id(selector: &mut Selector, k: u32) -> u32 {
    let mut rng = SplitMix64::from_seed(0);
    let index = selector.pick(&mut rng, Some(&k.to_le_bytes())).unwrap();
    id_number(&selector.candidates()[index].id)
}

fn equal(n: usize) -> Vec<Candidate> {
    (0..n)
        .map(|i| {
            let i = i as u32;
            Candidate::new(
                format!("10.{}.{}.{}:80", i >> 16, (i >> 8) & 255, i & 255),
                1,
            )
        })
        .collect()
}

fn id_number(id: &str) -> u32 {
    let address = id.trim_end_matches(":80");
    address
        .split('.')
        .skip(1)
        .fold(0, |acc, part| acc * 256 + part.parse::<u32>().unwrap())
}

fn keys() -> Vec<[u8; 16]> {
    let mut rng = SplitMix64::from_seed(0x6b65_7973);
    (0..KEY_POOL)
        .map(|_| {
            let mut key = [0u8; 16];
            key[..8].copy_from_slice(&rng.next_u64().to_le_bytes());
            key[8..].copy_from_slice(&rng.next_u64().to_le_bytes());
            key
        })
        .collect()
}

/// ns per pick over `picks` picks.
fn time_picks(selector: &mut Selector, keys: &[[u8; 16]], picks: usize) -> f64 {
    let mut rng = SplitMix64::from_seed(42);
    let mask = keys.len() - 1;
    let mut sum = 0usize;
    let start = Instant::now();
    for i in 0..picks {
        let key = black_box(&keys[i & mask]);
        sum = sum.wrapping_add(selector.pick(&mut rng, Some(key)).unwrap_or(0));
    }
    let elapsed = start.elapsed();
    black_box(sum);
    elapsed.as_nanos() as f64 / picks as f64
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn seconds(s: f64) -> String {
    let d = Duration::from_secs_f64(s);
    if d < Duration::from_millis(1) {
        format!("{:.1} µs", s * 1e6)
    } else if d < Duration::from_secs(1) {
        format!("{:.2} ms", s * 1e3)
    } else {
        format!("{s:.2} s")
    }
}

/// Replaces (or appends) our section in `path`, keeping every other section.
fn write_section(path: &Path, section: &str) {
    let existing = std::fs::read_to_string(path).unwrap_or_else(|_| "# Benchmarks\n\n".into());
    let updated = match existing.find(SECTION) {
        Some(start) => {
            let rest = &existing[start + SECTION.len()..];
            let end = rest
                .find("\n## ")
                .map_or(existing.len(), |i| start + SECTION.len() + i + 1);
            format!("{}{}{}", &existing[..start], section, &existing[end..])
        }
        None => {
            let mut text = existing;
            if !text.ends_with("\n\n") {
                text.push_str(if text.ends_with('\n') { "\n" } else { "\n\n" });
            }
            text.push_str(section);
            text
        }
    };
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, updated).unwrap();
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let threads = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!("{cpu}, {threads} threads, {}", std::env::consts::ARCH)
}

fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "unknown".into())
}

fn rustc() -> String {
    std::process::Command::new(std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into()))
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map_or_else(|| "rustc unknown".into(), |v| v.trim().to_string())
}

/// Today's UTC date as YYYY-MM-DD (civil-from-days, no date crate needed).
fn today() -> String {
    let days = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() / 86_400) as i64;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}
