//! Semantic versions and npm-style version requirements.
//!
//! The original Vasco matched versions as exact strings; `2.0.0` and `v1.0.0` therefore still
//! mean exactly that version here (Cargo would read a bare `2.0.0` as `^2.0.0`). On top of that
//! every range a package.json user knows works: `^2`, `~1.2`, `>=1 <3`, `1.x`, `*`,
//! `1.0.0 - 2.0.0` and `a || b`. Matching itself is delegated to the `semver` crate; this module
//! only translates npm's grammar into its comparators.

use alloc::{
    string::{String, ToString},
    vec::Vec,
};
use core::{cmp::Ordering, fmt, str::FromStr};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::{Error, Result};

const FIELD: &str = "version";

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
        if trimmed.len() > 64 {
            return Err(Error::invalid(FIELD, "is longer than 64 characters"));
        }
        semver::Version::parse(bare).map(Self).map_err(|e| {
            Error::invalid(
                FIELD,
                alloc::format!("{text:?} is not a semantic version like 1.2.3 ({e})"),
            )
        })
    }

    /// Major, minor and patch numbers.
    pub fn triple(&self) -> (u64, u64, u64) {
        (self.0.major, self.0.minor, self.0.patch)
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

/// Which versions a dependency accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionReq {
    source: String,
    /// Alternatives joined by `||`; empty means any version.
    any_of: Vec<semver::VersionReq>,
}

impl VersionReq {
    /// Accepts every version (`*`, an empty string or `latest`).
    pub fn any() -> Self {
        Self {
            source: "*".into(),
            any_of: Vec::new(),
        }
    }

    /// Parses an npm-style requirement.
    pub fn parse(text: &str) -> Result<Self> {
        if text.len() > 256 {
            return Err(Error::invalid(
                FIELD,
                "requirement is longer than 256 characters",
            ));
        }
        let trimmed = text.trim();
        let mut any_of = Vec::new();
        for alternative in trimmed.split("||") {
            match translate(alternative.trim()) {
                Ok(None) => {
                    // One alternative accepts everything, so the whole requirement does.
                    return Ok(Self {
                        source: trimmed.to_string(),
                        any_of: Vec::new(),
                    });
                }
                Ok(Some(cargo)) => {
                    let req = semver::VersionReq::parse(&cargo).map_err(|e| bad_req(text, e))?;
                    any_of.push(req);
                }
                Err(e) => return Err(bad_req(text, e)),
            }
        }
        Ok(Self {
            source: trimmed.to_string(),
            any_of,
        })
    }

    /// Whether `version` satisfies this requirement.
    pub fn matches(&self, version: &Version) -> bool {
        self.any_of.is_empty() || self.any_of.iter().any(|req| req.matches(&version.0))
    }

    /// Whether this requirement accepts every version.
    pub fn is_any(&self) -> bool {
        self.any_of.is_empty()
    }

    /// The requirement as the user wrote it.
    pub fn as_str(&self) -> &str {
        &self.source
    }
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

/// Turns one npm range (no `||`) into Cargo's comparator syntax; `None` means "any version".
fn translate(range: &str) -> core::result::Result<Option<String>, &'static str> {
    let tokens = tokenize(range)?;
    if tokens.is_empty() {
        return Ok(None);
    }
    // `A - B`: an inclusive range.
    if tokens.len() == 3 && tokens[1] == "-" {
        let (low, high) = (strip_v(&tokens[0]), strip_v(&tokens[2]));
        if is_wildcard(low) && is_wildcard(high) {
            return Ok(None);
        }
        let mut parts = Vec::new();
        if !is_wildcard(low) {
            parts.push(alloc::format!(">={}", without_wildcards(low)));
        }
        if !is_wildcard(high) {
            parts.push(alloc::format!("<={}", without_wildcards(high)));
        }
        return Ok(Some(parts.join(", ")));
    }
    let mut comparators = Vec::new();
    for token in &tokens {
        if token == "-" {
            return Err("a hyphen range needs exactly one version on each side");
        }
        let op_len = token
            .find(|c: char| !matches!(c, '<' | '>' | '=' | '^' | '~'))
            .unwrap_or(token.len());
        let (op, version) = token.split_at(op_len);
        let version = strip_v(version);
        if version.is_empty() {
            return Err("an operator needs a version after it");
        }
        if !matches!(op, "" | "=" | "<" | "<=" | ">" | ">=" | "^" | "~" | "~>") {
            return Err("unknown operator");
        }
        if is_wildcard(version) {
            match op {
                "" | "=" | ">=" | "<=" | "^" | "~" | "~>" => continue, // any version
                _ => return Err("nothing is below or above every version"),
            }
        }
        let version = version.replace(['x', 'X'], "*");
        let op = match op {
            "~>" => "~",
            // A bare version is exact, as in npm (and as the original Vasco compared strings).
            "" if !version.contains('*') => "=",
            other => other,
        };
        comparators.push(alloc::format!("{op}{version}"));
    }
    if comparators.is_empty() {
        return Ok(None);
    }
    Ok(Some(comparators.join(", ")))
}

fn is_wildcard(version: &str) -> bool {
    matches!(version, "*" | "x" | "X")
}

/// Cargo's `>=` and `<=` take partial versions (`1.2`) but not `1.2.x`: drop trailing wildcards.
fn without_wildcards(version: &str) -> String {
    let kept: Vec<&str> = version
        .split('.')
        .take_while(|part| !is_wildcard(part))
        .collect();
    kept.join(".")
}

/// Splits on whitespace and glues a lone operator to the version after it (`>= 1.2` is `>=1.2`).
fn tokenize(range: &str) -> core::result::Result<Vec<String>, &'static str> {
    if range.is_empty() || range == "latest" {
        return Ok(Vec::new());
    }
    let mut tokens: Vec<String> = Vec::new();
    let mut pending_op: Option<&str> = None;
    for word in range.split_whitespace() {
        let is_op = !word.is_empty()
            && word
                .chars()
                .all(|c| matches!(c, '<' | '>' | '=' | '^' | '~'));
        if is_op {
            if pending_op.is_some() {
                return Err("two operators in a row");
            }
            pending_op = Some(word);
            continue;
        }
        match pending_op.take() {
            Some(op) => tokens.push(alloc::format!("{op}{word}")),
            None => tokens.push(word.to_string()),
        }
    }
    if pending_op.is_some() {
        return Err("an operator needs a version after it");
    }
    Ok(tokens)
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
            "<*",
            ">> 1",
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
        assert!(VersionReq::parse("*").unwrap().is_any());
        assert!(!VersionReq::parse("^1").unwrap().is_any());
    }
}
