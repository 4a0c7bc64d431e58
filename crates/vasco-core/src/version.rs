//! Semantic versions and npm-style version requirements.
//!
//! Ranges mean exactly what node-semver (npm's `semver` package, without `loose` or
//! `includePrerelease`) says they mean; `tests/semver_npm.rs` checks this against the real
//! package over a generated corpus. A bare `2.0.0` or `v1.0.0` is exact, as in npm and as the
//! original Vasco compared strings. Every range a package.json user knows works: `^2`,
//! `~1.2`, `>=1 <3`, `1.x`, `*`, `1.0.0 - 2.0.0` and `a || b`; two extensions npm lacks:
//! `latest` means `*`, and a capital `V` prefix is read like `v`.
//!
//! The rules that surprise people are npm's, kept on purpose:
//! * A prerelease version (`2.0.0-beta.1`) only satisfies a range that names a prerelease of
//!   the same `major.minor.patch`: `*`, `""`, `x` and `>=0.0.0` do not match it, `^2.0.0-beta`
//!   does. Use [`VersionReq::any`] (no requirement at all) to take every version.
//! * `x`, `X` and `*` are wildcards only as whole version parts; inside a prerelease
//!   (`1.0.0-next.1`, `1.0.0-x.2`) they are ordinary identifiers.
//! * Build metadata (`+build.5`) is ignored in ranges and in comparisons.
//!
//! The translation follows node-semver's `classes/range.js` (`replaceCaret`, `replaceTilde`,
//! `replaceXRange`, `hyphenReplace`, `testSet`) step by step; version precedence is the
//! `semver` crate's, which implements the same SemVer 2.0 ordering.

use alloc::{
    string::{String, ToString},
    vec::Vec,
};
use core::{cmp::Ordering, fmt, str::FromStr};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::{Error, Result};

const FIELD: &str = "version";

/// The longest version accepted, in characters.
pub const MAX_VERSION_LEN: usize = 64;
/// The longest requirement accepted, in characters.
pub const MAX_REQ_LEN: usize = 256;
/// npm refuses version numbers above `Number.MAX_SAFE_INTEGER`; so do we, to agree with it.
const MAX_NUMBER: u64 = (1 << 53) - 1;

/// A released version of a service (`MAJOR.MINOR.PATCH[-pre][+build]`, an optional leading `v`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Version(semver::Version);

impl Version {
    /// Parses `2.1.0` or `v2.1.0`; partial versions such as `2.1` are refused because an
    /// instance runs one exact version.
    pub fn parse(text: &str) -> Result<Self> {
        let trimmed = text.trim();
        let bare = strip_v(trimmed);
        if bare.is_empty() {
            return Err(Error::invalid(FIELD, "must not be empty"));
        }
        if trimmed.chars().count() > MAX_VERSION_LEN {
            return Err(Error::invalid(
                FIELD,
                alloc::format!("is longer than {MAX_VERSION_LEN} characters"),
            ));
        }
        let version = semver::Version::parse(bare).map_err(|e| {
            Error::invalid(
                FIELD,
                alloc::format!("{text:?} is not a semantic version like 1.2.3 ({e})"),
            )
        })?;
        if [version.major, version.minor, version.patch]
            .iter()
            .any(|&n| n > MAX_NUMBER)
        {
            return Err(Error::invalid(
                FIELD,
                alloc::format!("{text:?} has a number above 2^53 - 1"),
            ));
        }
        Ok(Self(version))
    }

    /// Major, minor and patch numbers.
    pub fn triple(&self) -> (u64, u64, u64) {
        (self.0.major, self.0.minor, self.0.patch)
    }

    /// Whether this is a prerelease (`1.0.0-beta.1`).
    pub fn is_prerelease(&self) -> bool {
        !self.0.pre.is_empty()
    }
}

impl Ord for Version {
    fn cmp(&self, other: &Self) -> Ordering {
        // Precedence first; build metadata only breaks ties so the order stays total.
        self.0
            .cmp_precedence(&other.0)
            .then_with(|| self.0.build.cmp(&other.0.build))
    }
}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// A comparison operator of a desugared range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Eq,
    Lt,
    Le,
    Gt,
    Ge,
}

/// One comparator, `op version`, of a desugared range (node-semver's `Comparator`).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Comparator {
    op: Op,
    version: semver::Version,
}

impl Comparator {
    fn test(&self, version: &semver::Version) -> bool {
        let order = version.cmp_precedence(&self.version);
        match self.op {
            Op::Eq => order == Ordering::Equal,
            Op::Lt => order == Ordering::Less,
            Op::Le => order != Ordering::Greater,
            Op::Gt => order == Ordering::Greater,
            Op::Ge => order != Ordering::Less,
        }
    }
}

/// Which versions a dependency accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionReq {
    source: String,
    /// Alternatives joined by `||`, each a conjunction of comparators (empty: every release).
    /// Empty with `unconstrained` for [`VersionReq::any`].
    any_of: Vec<Vec<Comparator>>,
    /// No requirement at all: prereleases included.
    unconstrained: bool,
}

impl VersionReq {
    /// No requirement: every version, prereleases included (what a lookup without a version
    /// means). Unlike the range `*`, which, as in npm, leaves prereleases out.
    pub fn any() -> Self {
        Self {
            source: "*".into(),
            any_of: Vec::new(),
            unconstrained: true,
        }
    }

    /// Parses an npm-style requirement (see the module docs).
    pub fn parse(text: &str) -> Result<Self> {
        if text.chars().count() > MAX_REQ_LEN {
            return Err(Error::invalid(
                FIELD,
                alloc::format!("requirement is longer than {MAX_REQ_LEN} characters"),
            ));
        }
        let trimmed = text.trim();
        let collapsed = trimmed.split_whitespace().collect::<Vec<_>>().join(" ");
        let mut any_of = Vec::new();
        for alternative in collapsed.split("||") {
            let set = parse_range(alternative.trim()).map_err(|e| bad_req(text, e))?;
            any_of.push(set);
        }
        // npm: an alternative that accepts every release replaces all the others, even ones
        // that would have admitted a prerelease (`^1.0.0-beta || *` leaves prereleases out).
        if any_of.len() > 1 && any_of.iter().any(Vec::is_empty) {
            any_of = alloc::vec![Vec::new()];
        }
        Ok(Self {
            source: trimmed.to_string(),
            any_of,
            unconstrained: false,
        })
    }

    /// Whether `version` satisfies this requirement (node-semver's `satisfies`).
    pub fn matches(&self, version: &Version) -> bool {
        self.unconstrained || self.any_of.iter().any(|set| test_set(set, &version.0))
    }

    /// Whether this is [`VersionReq::any`], no requirement at all (a parsed `*` is a range
    /// that leaves prereleases out, so it is not).
    pub fn is_any(&self) -> bool {
        self.unconstrained
    }

    /// The requirement as the user wrote it.
    pub fn as_str(&self) -> &str {
        &self.source
    }
}

/// node-semver's `testSet`: every comparator holds, and a prerelease version is only admitted
/// by a comparator naming a prerelease of the same `major.minor.patch`.
fn test_set(set: &[Comparator], version: &semver::Version) -> bool {
    if !set.iter().all(|c| c.test(version)) {
        return false;
    }
    version.pre.is_empty()
        || set.iter().any(|c| {
            !c.version.pre.is_empty()
                && (c.version.major, c.version.minor, c.version.patch)
                    == (version.major, version.minor, version.patch)
        })
}

fn bad_req(text: &str, reason: impl fmt::Display) -> Error {
    Error::invalid(
        FIELD,
        alloc::format!(
            "{text:?} is not a version or range (use 1.2.3, ^1.2, ~1.2, >=1 <3, 1.x or *): {reason}"
        ),
    )
}

fn strip_v(text: &str) -> &str {
    text.strip_prefix(['v', 'V']).unwrap_or(text)
}

type Parse<T> = core::result::Result<T, &'static str>;

/// One version part: a number or a wildcard (a missing part counts as a wildcard).
type Part = Option<u64>;

/// `1`, `1.x`, `1.2.3-beta.1`: up to three parts, a prerelease only after the third.
#[derive(Debug, Clone)]
struct Partial {
    major: Part,
    minor: Part,
    patch: Part,
    pre: semver::Prerelease,
}

impl Partial {
    /// All three parts are numbers.
    fn full(&self) -> Option<semver::Version> {
        let mut version = semver::Version::new(self.major?, self.minor?, self.patch?);
        version.pre = self.pre.clone();
        Some(version)
    }
}

fn version(major: u64, minor: u64, patch: u64) -> semver::Version {
    semver::Version::new(major, minor, patch)
}

/// `major.minor.patch-0`, the lowest version of that triple (npm's exclusive upper bounds).
fn zero_pre(major: u64, minor: u64, patch: u64) -> semver::Version {
    let mut v = version(major, minor, patch);
    v.pre = semver::Prerelease::new("0").expect("0 is a prerelease");
    v
}

fn cmp(op: Op, version: semver::Version) -> Comparator {
    Comparator { op, version }
}

/// `>=0.0.0-0`-free "nothing matches": node-semver's null set `<0.0.0-0`.
fn null_set() -> Vec<Comparator> {
    alloc::vec![cmp(Op::Lt, zero_pre(0, 0, 0))]
}

fn number(text: &str) -> Parse<u64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err("a version part is not a number or x");
    }
    if text.len() > 1 && text.starts_with('0') {
        return Err("a version number has a leading zero");
    }
    match text.parse::<u64>() {
        Ok(n) if n <= MAX_NUMBER => Ok(n),
        _ => Err("a version number is above 2^53 - 1"),
    }
}

fn part(text: &str) -> Parse<Part> {
    if matches!(text, "x" | "X" | "*") {
        Ok(None)
    } else {
        number(text).map(Some)
    }
}

/// Parses a partial version after its prefix (`[v=]*` already removed; builds stripped).
fn partial(text: &str) -> Parse<Partial> {
    let (main, pre) = match text.split_once('-') {
        Some((main, pre)) => (main, Some(pre)),
        None => (text, None),
    };
    let parts: Vec<&str> = main.split('.').collect();
    if parts.len() > 3 || parts.iter().any(|p| p.is_empty()) {
        return Err("a version has more than three parts or an empty one");
    }
    let get = |i: usize| parts.get(i).map_or(Ok(None), |p| part(p));
    let (major, minor, patch) = (get(0)?, get(1)?, get(2)?);
    let pre = match pre {
        None => semver::Prerelease::EMPTY,
        Some(_) if parts.len() < 3 => return Err("a prerelease needs major.minor.patch"),
        Some(pre) => {
            // npm: numeric identifiers without leading zeros, others of [0-9A-Za-z-].
            let ok = !pre.is_empty()
                && pre.split('.').all(|id| {
                    !id.is_empty()
                        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                        && (!id.bytes().all(|b| b.is_ascii_digit()) || number(id).is_ok())
                });
            if !ok {
                return Err("a prerelease is not dot-separated [0-9A-Za-z-] identifiers");
            }
            semver::Prerelease::new(pre).map_err(|_| "bad prerelease")?
        }
    };
    Ok(Partial {
        major,
        minor,
        patch,
        pre,
    })
}

/// Removes build metadata (`+` and dot-separated `[0-9A-Za-z-]` identifiers) wherever it
/// appears, as node-semver does before reading a range.
fn strip_builds(range: &str) -> String {
    let ident = |c: char| c.is_ascii_alphanumeric() || c == '-';
    let mut out = String::with_capacity(range.len());
    let mut rest = range;
    while let Some(at) = rest.find('+') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        let mut end = after.find(|c: char| !ident(c)).unwrap_or(after.len());
        if end == 0 {
            // A lone `+`: kept, the comparator will be refused.
            out.push('+');
            rest = after;
            continue;
        }
        while after[end..].starts_with('.') && after[end + 1..].starts_with(|c: char| ident(c)) {
            end += 1;
            end += after[end..]
                .find(|c: char| !ident(c))
                .unwrap_or(after.len() - end);
        }
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

/// Splits the prefix characters (`v`, `V`, `=`, and spaces within a hyphen range's side) off
/// a partial.
fn split_prefix(text: &str) -> (&str, &str) {
    let at = text
        .find(|c: char| !matches!(c, 'v' | 'V' | '=' | ' '))
        .unwrap_or(text.len());
    text.split_at(at)
}

/// Whether a prefix kept verbatim in a comparator (`>=v1.2.3`) is one node-semver reads:
/// nothing or a single `v`.
fn plain_prefix(prefix: &str) -> bool {
    matches!(prefix, "" | "v" | "V")
}

/// One `||` alternative to its comparators (node-semver's `parseRange`).
fn parse_range(range: &str) -> Parse<Vec<Comparator>> {
    if range == "latest" {
        return Ok(Vec::new());
    }
    let range = strip_builds(range);
    let tokens: Vec<&str> = range.split_whitespace().collect();
    // `A - B`; as in npm, the `v`/`=` prefix of either side may be followed by spaces.
    let mut sides: Vec<String> = Vec::new();
    let mut prefix = String::new();
    for &token in &tokens {
        let prefix_only = token.chars().all(|c| matches!(c, 'v' | 'V' | '='));
        if prefix_only && token != "-" {
            prefix.push_str(token);
            prefix.push(' ');
        } else if token == "-" || prefix.is_empty() {
            if !prefix.is_empty() {
                sides.push(core::mem::take(&mut prefix));
            }
            sides.push(token.to_string());
        } else {
            sides.push(alloc::format!("{}{token}", core::mem::take(&mut prefix)));
        }
    }
    if !prefix.is_empty() {
        sides.push(prefix);
    }
    if sides.len() == 3 && sides[1] == "-" {
        return hyphen(&sides[0], &sides[2]);
    }
    // npm's whitespace trims: an operator at the end of a word applies to the next one
    // (`>= 1.2`, `^ 1`, `~> 1.2`; `~>` followed by a space becomes `~`, so `~> >1` is `~>1`).
    let mut words: Vec<String> = Vec::new();
    for &token in &tokens {
        if token == "-" {
            return Err("a hyphen range needs exactly one version on each side");
        }
        if let Some(last) = words.last_mut() {
            if let Some(stem) = last.strip_suffix("~>") {
                *last = alloc::format!("{stem}~{token}");
                continue;
            }
            if last.ends_with(['~', '^']) || (ends_with_gtlt(last) && starts_version(token)) {
                last.push_str(token);
                continue;
            }
        }
        words.push(token.to_string());
    }
    let mut set = Vec::new();
    for word in &words {
        comparator(word, &mut set)?;
    }
    finish(set)
}

/// Whether `word` ends with one of npm's `<`, `>`, `<=`, `>=`, `=`.
fn ends_with_gtlt(word: &str) -> bool {
    word.ends_with(['<', '>', '='])
}

/// Whether `word` starts like a version: `v`/`=` prefixes, then a digit or a wildcard.
fn starts_version(word: &str) -> bool {
    split_prefix(word)
        .1
        .starts_with(|c: char| c.is_ascii_digit() || matches!(c, 'x' | 'X' | '*'))
}

/// node-semver's last steps on one alternative: `>=0.0.0` reads as "any release" (which,
/// unlike the comparator, also passes `0.0.0-pre` when another comparator admits it), and a
/// bound beyond `Number.MAX_SAFE_INTEGER` (`^9007199254740991.0.0`) is invalid.
fn finish(mut set: Vec<Comparator>) -> Parse<Vec<Comparator>> {
    if set.iter().any(|c| {
        [c.version.major, c.version.minor, c.version.patch]
            .iter()
            .any(|&n| n > MAX_NUMBER)
    }) {
        return Err("a version number is above 2^53 - 1");
    }
    set.retain(|c| !(c.op == Op::Ge && c.version == version(0, 0, 0)));
    Ok(set)
}

/// `A - B`, node-semver's `hyphenReplace`.
fn hyphen(from: &str, to: &str) -> Parse<Vec<Comparator>> {
    let (from_prefix, from_text) = split_prefix(from);
    let (to_prefix, to_text) = split_prefix(to);
    let (from, to) = (partial(from_text)?, partial(to_text)?);
    let mut set = Vec::new();
    match (from.major, from.minor, from.patch) {
        (None, _, _) => {}
        (Some(m), None, _) => set.push(cmp(Op::Ge, version(m, 0, 0))),
        (Some(m), Some(n), None) => set.push(cmp(Op::Ge, version(m, n, 0))),
        (Some(_), Some(_), Some(_)) => {
            // Kept verbatim after `>=`: only a plain or `v` prefix reads as a comparator.
            if !plain_prefix(from_prefix) {
                return Err("'=' before the first version of a hyphen range");
            }
            set.push(cmp(Op::Ge, from.full().expect("three parts")));
        }
    }
    match (to.major, to.minor, to.patch) {
        (None, _, _) => {}
        (Some(m), None, _) => set.push(cmp(Op::Lt, zero_pre(m + 1, 0, 0))),
        (Some(m), Some(n), None) => set.push(cmp(Op::Lt, zero_pre(m, n + 1, 0))),
        (Some(_), Some(_), Some(_)) => {
            if to.pre.is_empty() && !plain_prefix(to_prefix) {
                return Err("'=' before the second version of a hyphen range");
            }
            set.push(cmp(Op::Le, to.full().expect("three parts")));
        }
    }
    finish(set)
}

/// One comparator word (operator glued on) to comparators appended to `set`: node-semver's
/// `replaceCaret`, `replaceTilde` and `replaceXRange`.
fn comparator(token: &str, set: &mut Vec<Comparator>) -> Parse<()> {
    if let Some(rest) = token.strip_prefix('^') {
        let p = partial(split_prefix(rest).1)?;
        caret(&p, set);
        return Ok(());
    }
    if let Some(rest) = token.strip_prefix('~') {
        let rest = rest.strip_prefix('>').unwrap_or(rest);
        let p = partial(split_prefix(rest).1)?;
        tilde(&p, set);
        return Ok(());
    }
    let (op, rest) = if let Some(rest) = token.strip_prefix(">=") {
        (">=", rest)
    } else if let Some(rest) = token.strip_prefix("<=") {
        ("<=", rest)
    } else if let Some(rest) = token.strip_prefix('>') {
        (">", rest)
    } else if let Some(rest) = token.strip_prefix('<') {
        ("<", rest)
    } else if let Some(rest) = token.strip_prefix('=') {
        ("=", rest)
    } else {
        ("", token)
    };
    let (prefix, text) = split_prefix(rest);
    match partial(text) {
        Ok(p) => x_range(op, prefix, &p, set),
        Err(e) => star_fallback(token, set).ok_or(e),
    }
}

/// npm's `replaceStars` on a word that is not a partial version: it deletes the first `*`
/// (with a `<`, `>` or `=` right before it) and reads what is left as a plain comparator, so
/// `>2.0.0*` is `>2.0.0` and `*1.2.3` is `1.2.3`. `None` when that is no comparator either.
fn star_fallback(token: &str, set: &mut Vec<Comparator>) -> Option<()> {
    let star = token.find('*')?;
    let mut from = star;
    if token[..from].ends_with('=') {
        from -= 1;
    }
    if token[..from].ends_with(['<', '>']) {
        from -= 1;
    }
    let rest = alloc::format!("{}{}", &token[..from], &token[star + 1..]);
    if rest.is_empty() {
        return Some(()); // any
    }
    let (op, text) = [">=", "<=", ">", "<", "="]
        .iter()
        .find_map(|op| rest.strip_prefix(op).map(|text| (*op, text)))
        .unwrap_or(("", rest.as_str()));
    let text = text.strip_prefix(['v', 'V']).unwrap_or(text);
    let full = partial(text).ok()?.full()?;
    let op = match op {
        "" | "=" => Op::Eq,
        ">" => Op::Gt,
        ">=" => Op::Ge,
        "<" => Op::Lt,
        _ => Op::Le,
    };
    set.push(cmp(op, full));
    Some(())
}

fn caret(p: &Partial, set: &mut Vec<Comparator>) {
    let (Some(major), minor, patch) = (p.major, p.minor, p.patch) else {
        return; // ^* : any
    };
    let Some(minor) = minor else {
        set.push(cmp(Op::Ge, version(major, 0, 0)));
        set.push(cmp(Op::Lt, zero_pre(major + 1, 0, 0)));
        return;
    };
    let Some(patch) = patch else {
        set.push(cmp(Op::Ge, version(major, minor, 0)));
        set.push(cmp(
            Op::Lt,
            if major == 0 {
                zero_pre(0, minor + 1, 0)
            } else {
                zero_pre(major + 1, 0, 0)
            },
        ));
        return;
    };
    let mut low = version(major, minor, patch);
    low.pre = p.pre.clone();
    set.push(cmp(Op::Ge, low));
    set.push(cmp(
        Op::Lt,
        match (major, minor) {
            (0, 0) => zero_pre(0, 0, patch + 1),
            (0, _) => zero_pre(0, minor + 1, 0),
            _ => zero_pre(major + 1, 0, 0),
        },
    ));
}

fn tilde(p: &Partial, set: &mut Vec<Comparator>) {
    let (Some(major), minor, patch) = (p.major, p.minor, p.patch) else {
        return; // ~* : any
    };
    let Some(minor) = minor else {
        set.push(cmp(Op::Ge, version(major, 0, 0)));
        set.push(cmp(Op::Lt, zero_pre(major + 1, 0, 0)));
        return;
    };
    let mut low = version(major, minor, patch.unwrap_or(0));
    if patch.is_some() {
        low.pre = p.pre.clone();
    }
    set.push(cmp(Op::Ge, low));
    set.push(cmp(Op::Lt, zero_pre(major, minor + 1, 0)));
}

fn x_range(op: &str, prefix: &str, p: &Partial, set: &mut Vec<Comparator>) -> Parse<()> {
    let (major, minor, patch) = (p.major, p.minor, p.patch);
    // A wildcard followed by a number (`*.1`, `1.x.2`) is not a partial version.
    if (major.is_none() && minor.is_some()) || (minor.is_none() && patch.is_some()) {
        return Err("a wildcard is followed by a number");
    }
    let Some(major) = major else {
        if matches!(op, ">" | "<") {
            set.extend(null_set());
        }
        return Ok(()); // `*`, `>=*`, ... : any
    };
    let Some(full) = p.full() else {
        // Some wildcard from the minor on.
        let minor_x = minor.is_none();
        let (m, n) = (major, minor.unwrap_or(0));
        match op {
            "" | "=" if minor_x => {
                set.push(cmp(Op::Ge, version(m, 0, 0)));
                set.push(cmp(Op::Lt, zero_pre(m + 1, 0, 0)));
            }
            "" | "=" => {
                set.push(cmp(Op::Ge, version(m, n, 0)));
                set.push(cmp(Op::Lt, zero_pre(m, n + 1, 0)));
            }
            ">" if minor_x => set.push(cmp(Op::Ge, version(m + 1, 0, 0))),
            ">" => set.push(cmp(Op::Ge, version(m, n + 1, 0))),
            ">=" => set.push(cmp(Op::Ge, version(m, n, 0))),
            "<" => set.push(cmp(Op::Lt, zero_pre(m, n, 0))),
            "<=" if minor_x => set.push(cmp(Op::Lt, zero_pre(m + 1, 0, 0))),
            "<=" => set.push(cmp(Op::Lt, zero_pre(m, n + 1, 0))),
            _ => unreachable!("operators are matched above"),
        }
        return Ok(());
    };
    // A full version stays as written: only a plain or `v` prefix reads as a comparator.
    if !plain_prefix(prefix) {
        return Err("'=' may only come first");
    }
    let op = match op {
        "" | "=" => Op::Eq,
        ">" => Op::Gt,
        ">=" => Op::Ge,
        "<" => Op::Lt,
        "<=" => Op::Le,
        _ => unreachable!("operators are matched above"),
    };
    set.push(cmp(op, full));
    Ok(())
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl fmt::Display for VersionReq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

impl FromStr for Version {
    type Err = Error;
    fn from_str(text: &str) -> Result<Self> {
        Self::parse(text)
    }
}

impl FromStr for VersionReq {
    type Err = Error;
    fn from_str(text: &str) -> Result<Self> {
        Self::parse(text)
    }
}

impl Serialize for Version {
    fn serialize<S: Serializer>(&self, serializer: S) -> core::result::Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Version {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> core::result::Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

impl Serialize for VersionReq {
    fn serialize<S: Serializer>(&self, serializer: S) -> core::result::Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.source)
    }
}

impl<'de> Deserialize<'de> for VersionReq {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> core::result::Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;

    fn v(text: &str) -> Version {
        Version::parse(text).unwrap()
    }

    fn matches(req: &str, version: &str) -> bool {
        VersionReq::parse(req).unwrap().matches(&v(version))
    }

    #[test]
    fn versions_parse_with_optional_v() {
        assert_eq!(v("v1.0.0"), v("1.0.0"));
        assert_eq!(v("v1.0.0").to_string(), "1.0.0");
        assert_eq!(
            v("1.2.3-beta.1+build.5").to_string(),
            "1.2.3-beta.1+build.5"
        );
        for bad in ["", "1", "1.2", "a.b.c", "1.2.3.4", "v", "01.2.3"] {
            assert_eq!(
                Version::parse(bad).unwrap_err().code(),
                "invalid_version",
                "{bad:?}"
            );
        }
    }

    #[test]
    fn versions_order_by_precedence() {
        assert!(v("2.0.0") > v("1.9.9"));
        assert!(v("1.0.0") > v("1.0.0-rc.1"));
        assert!(v("1.10.0") > v("1.9.0"));
    }

    #[test]
    fn exact_strings_stay_exact() {
        assert!(matches("2.0.0", "2.0.0"));
        assert!(!matches("2.0.0", "2.0.1"));
        assert!(!matches("2.0.0", "2.1.0"));
        assert!(matches("v1.0.0", "1.0.0"));
        assert!(matches("=1.0.0", "1.0.0"));
        assert!(!matches("v1.0.0", "1.0.1"));
    }

    #[test]
    fn npm_ranges() {
        let cases = [
            ("^2", "2.9.1", true),
            ("^2", "3.0.0", false),
            ("^2.1", "2.0.9", false),
            ("~1.2", "1.2.9", true),
            ("~1.2", "1.3.0", false),
            (">=1 <3", "2.5.0", true),
            (">=1 <3", "3.0.0", false),
            (">= 1 < 3", "1.0.0", true),
            ("1.x", "1.4.2", true),
            ("1.x", "2.0.0", false),
            ("1.2.X", "1.2.7", true),
            ("1.2", "1.2.5", true),
            ("1.2", "1.3.0", false),
            ("*", "9.9.9", true),
            ("", "0.0.1", true),
            ("latest", "0.0.1", true),
            ("1.0.0 - 2.0.0", "2.0.0", true),
            ("1.0.0 - 2.0.0", "2.0.1", false),
            ("1.0.0 - 2.0.0", "0.9.0", false),
            ("1 - 2", "2.9.0", true),
            ("^1 || ^3", "3.1.0", true),
            ("^1 || ^3", "2.1.0", false),
            ("^1 || *", "2.1.0", true),
            (">1.2.3", "1.2.3", false),
            ("<=1.2", "1.2.9", true),
            ("~>1.2.0", "1.2.4", true),
            ("^2", "2.1.0-beta.1", false),
            // Prereleases only through a range naming one of the same triple, as in npm.
            ("*", "2.0.0-beta.1", false),
            ("x", "2.0.0-beta.1", false),
            ("", "2.0.0-beta.1", false),
            ("latest", "2.0.0-beta.1", false),
            (">=0.0.0", "2.0.0-beta.1", false),
            ("^2.0.0-beta", "2.0.0-beta.1", true),
            ("^2.0.0-beta", "2.0.1-beta.1", false),
            ("^2.0.0-beta", "2.0.1", true),
            // `x` inside a prerelease is an identifier, not a wildcard.
            ("1.0.0-next.1", "1.0.0-next.1", true),
            ("1.0.0-x.1", "1.0.0-x.1", true),
            ("1.0.0-x.1", "1.0.0-x.2", false),
            ("<1.2", "1.2.0-beta", false),
            ("<*", "0.0.0", false),
            (">=1.0.0+build.1", "1.0.0", true),
            ("1.0.0+b", "1.0.0+other", true),
        ];
        for (req, version, expected) in cases {
            assert_eq!(matches(req, version), expected, "{req} vs {version}");
        }
    }

    #[test]
    fn bad_requirements_name_the_field() {
        for bad in [
            "^",
            ">= ",
            "abc",
            "1.2.3 -",
            "1 - 2 - 3",
            ">> 1",
            "1.x.2",
            "1.2-beta",
            "01.2.3",
            "1.2.3 - =2.0.0",
            "!1.0.0",
        ] {
            let err = VersionReq::parse(bad).unwrap_err();
            assert_eq!(err.code(), "invalid_version", "{bad:?}");
            assert!(err.to_string().contains("version"), "{err}");
        }
    }

    #[test]
    fn requirement_keeps_its_text() {
        assert_eq!(VersionReq::parse(" ^2 ").unwrap().to_string(), "^2");
        assert!(VersionReq::any().is_any());
        assert!(
            VersionReq::any().matches(&v("2.0.0-beta.1")),
            "no requirement at all"
        );
        assert!(
            !VersionReq::parse("*").unwrap().is_any(),
            "a range leaving prereleases out"
        );
        assert!(!VersionReq::parse("^1").unwrap().is_any());
    }
}
