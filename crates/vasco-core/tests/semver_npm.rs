//! Differential test of version ranges against npm's own `semver` package (node-semver, the
//! devDependency in the repository's `node_modules`): over a generated corpus of ranges
//! (x-ranges, carets, tildes, primitives, hyphen ranges, `||`, prereleases, build metadata,
//! `v` and `=` prefixes, spaces after operators, and malformed ones) and versions (with and
//! without prereleases and build metadata), `VersionReq::parse` must accept exactly the ranges
//! `semver.validRange` accepts and `matches` must equal `semver.satisfies` for every pair.
//! There are no exceptions in the corpus: our extensions (`latest`, a capital `V`) are
//! simply not generated.
//!
//! Runs `node` (Node.js 20+, as everything else in the test command); it fails, rather than
//! skips, when node or the package is missing, so a green run always means zero disagreements.
#![cfg(not(target_arch = "wasm32"))]

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use vasco_core::{Rng, SplitMix64, Version, VersionReq};

const NUMBERS: [&str; 5] = ["0", "1", "2", "3", "10"];
const PRE: [&str; 12] = [
    "alpha", "beta", "beta.1", "beta.2", "rc.0", "0", "1", "x", "x.1", "next.1", "X", "alpha-x",
];
const BUILD: [&str; 3] = ["build.5", "x", "001"];

fn choose<'a>(rng: &mut SplitMix64, items: &[&'a str]) -> &'a str {
    items[rng.below(items.len())]
}

fn chance(rng: &mut SplitMix64, percent: u64) -> bool {
    rng.next_u64() % 100 < percent
}

/// A partial version: wildcards, one to three parts, a prerelease and build after three.
fn partial(rng: &mut SplitMix64) -> String {
    let x = |rng: &mut SplitMix64| choose(rng, &["x", "X", "*"]).to_string();
    let n = |rng: &mut SplitMix64| choose(rng, &NUMBERS).to_string();
    let mut text = match rng.below(9) {
        0 => x(rng),
        1 => n(rng),
        2 => format!("{}.{}", n(rng), n(rng)),
        3 => format!("{}.{}", n(rng), x(rng)),
        4 => format!("{}.{}.{}", n(rng), n(rng), x(rng)),
        5 => format!("{}.{}.{}", n(rng), x(rng), x(rng)),
        _ => format!("{}.{}.{}", n(rng), n(rng), n(rng)),
    };
    if text.matches('.').count() == 2 && chance(rng, 35) {
        text = format!("{text}-{}", choose(rng, &PRE));
    }
    if text.matches('.').count() == 2 && chance(rng, 10) {
        text = format!("{text}+{}", choose(rng, &BUILD));
    }
    if chance(rng, 10) {
        text = format!("v{text}");
    }
    text
}

fn simple(rng: &mut SplitMix64) -> String {
    let op = choose(
        rng,
        &[
            "", "", "", "=", "<", "<=", ">", ">=", "^", "^", "~", "~", "~>",
        ],
    );
    let space = if !op.is_empty() && chance(rng, 10) {
        " "
    } else {
        ""
    };
    format!("{op}{space}{}", partial(rng))
}

fn range(rng: &mut SplitMix64) -> String {
    match rng.below(10) {
        0 => format!("{} - {}", partial(rng), partial(rng)),
        1 => String::new(),
        2 | 3 => format!("{} {}", simple(rng), simple(rng)),
        4 => format!("{} {} {}", simple(rng), simple(rng), simple(rng)),
        _ => simple(rng),
    }
}

fn range_set(rng: &mut SplitMix64) -> String {
    let mut text = range(rng);
    while chance(rng, 25) {
        let or = choose(rng, &[" || ", "||", "  ||  "]);
        text = format!("{text}{or}{}", range(rng));
    }
    // Sometimes a typo: most make the range invalid, some make another valid one.
    if chance(rng, 12) {
        let at = rng.below(text.len() + 1);
        let typo = choose(
            rng,
            &[
                "-", ".", "+", "0", "01", "=", ">", "<", "!", " - ", "x", ".1", " ", "v", "~", "^",
                "|",
            ],
        );
        text.insert_str(at, typo);
    }
    text
}

fn versions(rng: &mut SplitMix64) -> Vec<String> {
    let mut all = Vec::new();
    for major in NUMBERS {
        for minor in NUMBERS {
            for patch in ["0", "1", "3"] {
                all.push(format!("{major}.{minor}.{patch}"));
            }
        }
    }
    for _ in 0..150 {
        let base = all[rng.below(75)].clone();
        all.push(format!("{base}-{}", choose(rng, &PRE)));
    }
    let plain = all.len();
    for _ in 0..20 {
        let base = all[rng.below(plain)].clone();
        all.push(format!("{base}+{}", choose(rng, &BUILD)));
    }
    all
}

/// Hand-picked cases: the issue's, npm's documented examples and malformed input.
const EDGES: &[&str] = &[
    "*",
    "x",
    "X",
    "",
    "latest ",
    ">=0.0.0",
    ">=0.0.0-0",
    "1.0.0-next.1",
    "1.0.0-x.1",
    "^2.0.0-beta",
    "~1.2.3-beta.2",
    "^0.0.3",
    "^0.0",
    "^0.x",
    "^0",
    "~0",
    "~1.x.3",
    "^1.x.3",
    "~x.1",
    "^*.1",
    "1.x.2",
    "*.1",
    "x.x.x",
    "1.2.x-beta",
    "<*",
    ">*",
    "<=*",
    ">=*",
    "=*",
    "<1.x",
    ">1.x",
    "<=1.x",
    ">=1.x",
    "=1.x",
    "==1.x",
    "==1.2.3",
    "=v1.2.3",
    "v=1.2.3",
    "v=1.x",
    ">=v1.2.3",
    ">=vv1.2.3",
    ">==1.x",
    "1.2.3 - 2.3.4",
    "1.2 - 2.3.4",
    "1.2.3 - 2.3",
    "1.2.3 - 2",
    "* - 2",
    "1 - *",
    "=1.2.3 - 2",
    "v1.2.3 - 2",
    "1.2.3 - =2.0.0",
    "1.2.3 - =2.0.0-rc",
    "1.2.3-beta - 2.0.0-rc.1",
    "1 - 2 - 3",
    ">=1 - 2",
    "1.2.3 -2",
    "1.2.3-2.0.0",
    "01.2.3",
    "1.02.3",
    "1.2.3-01",
    "1.2.3-",
    "1.2.3-a..b",
    "1.2-beta",
    ">=",
    "-",
    "^",
    "~",
    "~>",
    ">> 1",
    "<>1",
    "!1.0.0",
    "abc",
    "1.2.3.4",
    ">= 1.2.3",
    "~ 1.2",
    "^ 1",
    "~> 1.2",
    "* > 2.0.0*",
    "^= 2.x.X",
    "*1.2.3",
    ">*1.2.3",
    "1.2.3*",
    "~> >1",
    "~ >1.2",
    "< =1",
    "= =1",
    "> >1",
    "= 1.2.3",
    ">=1.2.3 <2",
    ">1.0.0 <=1.5.0-rc.1 || ^3",
    "^1 ||",
    "|| ^1",
    "^1 || >*",
    "1.2.3+build.5",
    ">=1.2.3+x <2+y",
    "1.0.0+",
    "1.0.0+a.",
    "9007199254740991",
    "9007199254740992",
    "^9007199254740991.0.0",
    "1.2.3 1.2.4",
    "~1.2.3 ^1.2.4",
    "1 2",
];

fn node_module() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../node_modules/semver")
}

/// node-semver's answers: per range, `-` when `validRange` refuses it, else one 0/1 per
/// version from `satisfies`.
fn npm_answers(ranges: &[String], versions: &[String]) -> Vec<String> {
    let module = node_module();
    assert!(
        module.join("package.json").exists(),
        "the npm `semver` package is missing at {} (run npm ci)",
        module.display()
    );
    let script = r#"
const semver = require(process.argv[1]);
let input = '';
process.stdin.on('data', (d) => (input += d));
process.stdin.on('end', () => {
  const { ranges, versions } = JSON.parse(input);
  const parsed = versions.map((v) => new semver.SemVer(v));
  const out = ranges.map((r) => {
    if (semver.validRange(r) === null) return '-';
    const range = new semver.Range(r);
    return parsed.map((v) => (range.test(v) ? '1' : '0')).join('');
  });
  process.stdout.write(out.join('\n'));
});
"#;
    let mut child = Command::new("node")
        .arg("-e")
        .arg(script)
        .arg(module)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("`node` must be on PATH for the semver differential test");
    let input = serde_json::json!({ "ranges": ranges, "versions": versions }).to_string();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "node failed");
    String::from_utf8(output.stdout)
        .unwrap()
        .split('\n')
        .map(str::to_string)
        .collect()
}

#[test]
fn ranges_agree_with_node_semver() {
    let mut rng = SplitMix64::from_seed(0x5e4e);
    let versions = versions(&mut rng);
    let mut ranges: Vec<String> = EDGES.iter().map(|s| s.to_string()).collect();
    ranges.retain(|r| r.trim() != "latest"); // our extension
    for _ in 0..6_000 {
        ranges.push(range_set(&mut rng));
    }
    let npm = npm_answers(&ranges, &versions);
    assert_eq!(npm.len(), ranges.len());
    let parsed: Vec<Version> = versions
        .iter()
        .map(|v| Version::parse(v).unwrap())
        .collect();

    let mut disagreements = Vec::new();
    let (mut valid, mut pairs) = (0, 0);
    for (range, expected) in ranges.iter().zip(&npm) {
        let ours = match VersionReq::parse(range) {
            Err(_) => "-".to_string(),
            Ok(req) => parsed
                .iter()
                .map(|v| if req.matches(v) { '1' } else { '0' })
                .collect(),
        };
        if ours != *expected {
            let detail = if ours == "-" || expected == "-" {
                format!("valid: ours {}, npm {}", ours != "-", expected != "-")
            } else {
                let differ: Vec<String> = versions
                    .iter()
                    .zip(ours.chars().zip(expected.chars()))
                    .filter(|(_, (a, b))| a != b)
                    .take(4)
                    .map(|(v, (a, _))| format!("{v} (ours {a})"))
                    .collect();
                differ.join(", ")
            };
            disagreements.push(format!("{range:?}: {detail}"));
        } else if ours != "-" {
            valid += 1;
            pairs += versions.len();
        }
    }
    assert!(
        disagreements.is_empty(),
        "{} of {} ranges disagree with node-semver:\n{}",
        disagreements.len(),
        ranges.len(),
        disagreements
            .iter()
            .take(40)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
    // The corpus must exercise both sides.
    assert!(
        valid > 5_000 && pairs > 1_200_000,
        "{valid} valid ranges, {pairs} pairs"
    );
    assert!(ranges.len() - valid > 300, "too few invalid ranges");
}
