//! Blocking queries: `?index=N&wait=30s`, as Consul defines them.
//!
//! A reader sends the change index it last saw ([`crate::service::ServiceLeases::index`]). The
//! answer comes at once when it sent no index, `0`, or an index that differs from the current
//! one; otherwise the server holds the request until the index moves or the wait ends, then
//! answers with the (possibly unchanged) index. Never answering an unchanged index at once is
//! what keeps clients that re-ask immediately (node-consul's watch) from spinning.
//!
//! Source: Consul, "Blocking Queries" (HTTP API docs); the wait syntax is Go's
//! `time.ParseDuration` (`500ms`, `30s`, `1m30s`), plus bare seconds.
//!
//! ```
//! use vasco_core::blocking::{parse_duration_ms, BlockingQuery, MAX_WAIT_MS};
//!
//! assert_eq!(parse_duration_ms("1m30s").unwrap(), 90_000);
//! let query = BlockingQuery::new(Some(7), Some(parse_duration_ms("5m").unwrap()), MAX_WAIT_MS);
//! assert_eq!(query.wait_ms, MAX_WAIT_MS); // capped at 60 s
//! assert!(query.holds(7));
//! assert!(!query.holds(8));
//! assert!(!BlockingQuery::new(Some(0), None, MAX_WAIT_MS).holds(1));
//! ```

use alloc::format;

use crate::{
    error::{Error, Result},
    instance::Millis,
};

/// The longest hold of the native API (60 s).
pub const MAX_WAIT_MS: Millis = 60_000;
/// The hold when `index` is given without `wait` (30 s).
pub const DEFAULT_WAIT_MS: Millis = 30_000;

/// A parsed blocking query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockingQuery {
    /// The index the reader last saw (0: none).
    pub index: u64,
    /// How long to hold at most, in ms (already capped).
    pub wait_ms: Millis,
}

impl BlockingQuery {
    /// From the `index` and `wait` parameters; `wait` defaults to [`DEFAULT_WAIT_MS`] and is
    /// capped at `max_wait_ms`.
    pub fn new(index: Option<u64>, wait_ms: Option<Millis>, max_wait_ms: Millis) -> Self {
        Self {
            index: index.unwrap_or(0),
            wait_ms: wait_ms.unwrap_or(DEFAULT_WAIT_MS).min(max_wait_ms),
        }
    }

    /// Whether a request must be held while the current index is `current`.
    pub fn holds(&self, current: u64) -> bool {
        self.index != 0 && self.index == current && self.wait_ms > 0
    }
}

/// Parses an index parameter: a decimal `u64`. Errors: `Invalid` naming `index`.
pub fn parse_index(text: &str) -> Result<u64> {
    text.trim()
        .parse::<u64>()
        .map_err(|_| Error::invalid("index", "must be a whole number (the last index you saw)"))
}

/// Parses a duration in Go's syntax (`300ms`, `30s`, `2m`, `1h`, `1m30s`, `1.5s`) or bare
/// seconds (`30`), to ms. Errors: `Invalid` naming `wait`.
pub fn parse_duration_ms(text: &str) -> Result<Millis> {
    let bad = || {
        Error::invalid(
            "wait",
            format!("{text:?} is not a duration (use e.g. 30s, 500ms, 1m30s)"),
        )
    };
    let text = text.trim();
    if text.is_empty() {
        return Err(bad());
    }
    if let Ok(seconds) = text.parse::<u64>() {
        return seconds.checked_mul(1000).ok_or_else(bad);
    }
    let mut total = 0f64;
    let mut rest = text;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        if number_len == 0 {
            return Err(bad());
        }
        let number: f64 = rest[..number_len].parse().map_err(|_| bad())?;
        rest = &rest[number_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let factor = match &rest[..unit_len] {
            "ns" => 1e-6,
            "us" | "µs" => 1e-3,
            "ms" => 1.0,
            "s" => 1_000.0,
            "m" => 60_000.0,
            "h" => 3_600_000.0,
            _ => return Err(bad()),
        };
        rest = &rest[unit_len..];
        total += number * factor;
    }
    if !total.is_finite() || total > u64::MAX as f64 / 2.0 {
        return Err(bad());
    }
    Ok(total as Millis)
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;

    #[test]
    fn durations_in_go_syntax() {
        for (text, ms) in [
            ("30s", 30_000),
            ("120000ms", 120_000),
            ("5m", 300_000),
            ("1m30s", 90_000),
            ("1.5s", 1_500),
            ("30", 30_000),
            ("0s", 0),
            ("1h", 3_600_000),
        ] {
            assert_eq!(parse_duration_ms(text).unwrap(), ms, "{text}");
        }
        for text in [
            "",
            "s",
            "10x",
            "-1s",
            "1..5s",
            "ms10",
            "99999999999999999999h",
        ] {
            assert_eq!(
                parse_duration_ms(text).unwrap_err().code(),
                "invalid_wait",
                "{text}"
            );
        }
    }

    #[test]
    fn holds_only_on_the_current_index() {
        let q = BlockingQuery::new(Some(5), None, MAX_WAIT_MS);
        assert_eq!(q.wait_ms, DEFAULT_WAIT_MS);
        assert!(q.holds(5));
        assert!(!q.holds(6));
        assert!(!q.holds(4));
        assert!(!BlockingQuery::new(None, Some(1_000), MAX_WAIT_MS).holds(1));
        assert!(!BlockingQuery::new(Some(5), Some(0), MAX_WAIT_MS).holds(5));
        assert_eq!(parse_index("12").unwrap(), 12);
        assert_eq!(parse_index("x").unwrap_err().code(), "invalid_index");
    }
}
