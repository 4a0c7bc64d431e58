//! What the package reads from callers: client tuning, `pkg.vasco` and option keys (with
//! typo hints), drain and status options, health-check outcomes.

use super::*;

/// Client tuning; every field has a default that suits a service calling its dependencies.
#[derive(Debug, Clone)]
pub struct Config {
    /// How long cached answers are served, refreshed ahead and kept for outages (the core's
    /// policy).
    pub cache: CachePolicy,
    /// The zone this client runs in, preferred by zone-aware selection.
    pub local_zone: Option<String>,
    /// Below this fraction of healthy candidates, selection ignores health (0 = off).
    pub protection_threshold: f64,
    /// When a failing instance is ejected, and for how long.
    pub outlier: OutlierConfig,
    /// How long a registration stays registered in maintenance on SIGINT/SIGTERM before it
    /// deregisters, unless it says otherwise (ms; 0: deregister at once).
    pub drain_ms: u64,
    /// How many distinct questions the answer cache keeps (`cacheSize`; see [`Cache`]).
    pub cache_size: usize,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            cache: CachePolicy::default(),
            local_zone: None,
            protection_threshold: 0.0,
            // Envoy's defaults, except that one instance may always be ejected: a client
            // usually talks to a handful of instances, where 10% would never allow any.
            outlier: OutlierConfig {
                always_eject_one: true,
                ..OutlierConfig::default()
            },
            drain_ms: DEFAULT_DRAIN_MS,
            cache_size: DEFAULT_CAPACITY,
        }
    }
}

/// What [`Config::from_options`] reads `connect(options)` through: the package's JavaScript
/// object at the wasm boundary (where a number may be `Infinity`), or a JSON value.
pub trait OptionSource: Sized {
    /// The keys given.
    fn keys(&self) -> Vec<String>;
    /// The option `key`, itself a source of options (`outlier`); an absent one has no keys.
    fn child(&self, key: &'static str) -> Self;
    /// The option `key` as a number; `None` when absent (`undefined` or `null`). Errors:
    /// `invalid_argument` naming `key` for anything but a number.
    fn number(&self, key: &'static str) -> Result<Option<f64>>;
    /// The option `key` as a string; `None` when absent. Errors: `invalid_argument` naming
    /// `key` for anything but a string.
    fn string(&self, key: &'static str) -> Result<Option<String>>;
    /// The option `key` as a boolean; `None` when absent. Errors: `invalid_argument` naming
    /// `key` for anything but a boolean.
    fn boolean(&self, key: &'static str) -> Result<Option<bool>>;
    /// The option `key` as JSON data (`null` when absent), for options of several types.
    fn json(&self, key: &'static str) -> Result<Value>;
}

impl OptionSource for Value {
    fn keys(&self) -> Vec<String> {
        self.as_object()
            .map(|object| object.keys().cloned().collect())
            .unwrap_or_default()
    }

    fn child(&self, key: &'static str) -> Self {
        self.get(key).cloned().unwrap_or(Value::Null)
    }

    fn number(&self, key: &'static str) -> Result<Option<f64>> {
        match self.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => Ok(n.as_f64()),
            Some(_) => Err(Error::argument(key, "must be a number")),
        }
    }

    fn string(&self, key: &'static str) -> Result<Option<String>> {
        match self.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(text)) => Ok(Some(text.clone())),
            Some(_) => Err(Error::argument(key, "must be a string")),
        }
    }

    fn boolean(&self, key: &'static str) -> Result<Option<bool>> {
        match self.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Bool(flag)) => Ok(Some(*flag)),
            Some(_) => Err(Error::argument(key, "must be a boolean")),
        }
    }

    fn json(&self, key: &'static str) -> Result<Value> {
        Ok(self.child(key))
    }
}

impl Config {
    /// The tuning of `connect(options)`: `{cacheTtl?, cacheSize?, staleIfError?, zone?,
    /// protectionThreshold?, drainMs?, outlier?: {consecutiveFailures?, baseEjectionMs?,
    /// maxEjectionMs?, maxEjectionPercent?, alwaysEjectOne?}}` (ms, questions, a fraction);
    /// the defaults of [`Config::default`] for what is absent. Unknown keys are refused with
    /// the likeliest intended one ([`unknown_key`]). Errors: `invalid_argument` naming the
    /// option.
    pub fn from_options(options: &impl OptionSource) -> Result<Config> {
        let outlier = options.child("outlier");
        for (source, known, name) in [
            (options, CONNECT_KEYS, "options"),
            (&outlier, OUTLIER_KEYS, "outlier"),
        ] {
            let keys: Map<String, Value> = source
                .keys()
                .into_iter()
                .map(|k| (k, Value::Null))
                .collect();
            if let Some(message) = unknown_key(&keys, known, "") {
                return Err(Error::argument(name, message));
            }
        }
        let defaults = CachePolicy::default();
        let mut cache = defaults;
        if let Some(ttl) = options.number("cacheTtl")? {
            if ttl < 0.0 {
                return Err(Error::argument(
                    "cacheTtl",
                    "must be 0 or more milliseconds",
                ));
            }
            cache.fresh_ms = ttl as u64;
            // Keep the core's proportion: refresh once the entry is 60% through its life.
            cache.refresh_after_ms =
                cache.fresh_ms * defaults.refresh_after_ms / defaults.fresh_ms.max(1);
            cache.stale_if_error_ms = cache.stale_if_error_ms.max(cache.fresh_ms);
        }
        if let Some(stale) = options.number("staleIfError")? {
            if stale < 0.0 {
                return Err(Error::argument(
                    "staleIfError",
                    "must be 0 or more milliseconds",
                ));
            }
            // Measured from when the answer was fetched, so it never ends before freshness does.
            cache.stale_if_error_ms = if stale.is_finite() {
                cache.fresh_ms.saturating_add(stale as u64)
            } else {
                u64::MAX
            };
        }
        let mut config = Config {
            cache,
            local_zone: options.string("zone")?,
            ..Config::default()
        };
        if let Some(size) = options.number("cacheSize")? {
            if !(1.0..=MAX_CAPACITY as f64).contains(&size) || size.fract() != 0.0 {
                return Err(Error::argument(
                    "cacheSize",
                    format!("must be a whole number of questions from 1 to {MAX_CAPACITY}"),
                ));
            }
            config.cache_size = size as usize;
        }
        if let Some(ms) = drain_ms(&options.json("drainMs")?)? {
            config.drain_ms = ms;
        }
        if let Some(threshold) = options.number("protectionThreshold")? {
            config.protection_threshold = threshold;
        }
        let detection = &mut config.outlier;
        if let Some(n) = outlier.number("consecutiveFailures")? {
            detection.consecutive_failures = n.max(1.0) as u32;
        }
        if let Some(ms) = outlier.number("baseEjectionMs")? {
            detection.base_ejection_ms = ms.max(0.0) as u64;
        }
        if let Some(ms) = outlier.number("maxEjectionMs")? {
            detection.max_ejection_ms = ms.max(0.0) as u64;
        }
        if let Some(percent) = outlier.number("maxEjectionPercent")? {
            detection.max_ejection_percent = percent.clamp(0.0, 100.0) as u32;
        }
        if let Some(always) = outlier
            .boolean("alwaysEjectOne")
            .map_err(|_| Error::argument("outlier.alwaysEjectOne", "must be a boolean"))?
        {
            detection.always_eject_one = always;
        }
        Ok(config)
    }
}

/// How long a shutdown drain keeps an instance registered in maintenance by default (ms):
/// time for every consumer to see the status change on its feed or its next lookup.
pub const DEFAULT_DRAIN_MS: u64 = 3_000;

/// The longest drain accepted (ms): an hour, the longest lease.
pub const MAX_DRAIN_MS: u64 = 3_600_000;

/// Reads a drain time (`drainMs`, `VASCO_DRAIN_MS`): milliseconds from 0 to
/// [`MAX_DRAIN_MS`], as a number or a numeric string (an environment variable); absent
/// (`null`) is `None`. Errors: `invalid_argument` naming `drainMs`.
pub fn drain_ms(value: &Value) -> Result<Option<u64>> {
    let bad = || {
        Error::argument(
            "drainMs",
            format!(
                "must be a number of milliseconds from 0 to {MAX_DRAIN_MS} (also from \
                 VASCO_DRAIN_MS); 0 deregisters at once"
            ),
        )
    };
    let ms = match value {
        Value::Null => return Ok(None),
        Value::Number(n) => n.as_f64().ok_or_else(bad)?,
        Value::String(text) if text.trim().is_empty() => return Ok(None),
        Value::String(text) => text.trim().parse::<f64>().map_err(|_| bad())?,
        _ => return Err(bad()),
    };
    if !(0.0..=MAX_DRAIN_MS as f64).contains(&ms) {
        return Err(bad());
    }
    Ok(Some(ms.round() as u64))
}

/// Which health statuses a lookup lists, from its `status` (`"passing,warning"`, or an array
/// of names), `passing` (`true`: passing only) and `all` (`true`: every leased instance)
/// options, as the registry's `?status=`, `?passing` and `?all` (at most one of them; `false`
/// is the same as leaving it out). Passing and warning when none is given: the core's
/// [`StatusFilter::DEFAULT`]. Errors: `invalid_status`.
pub fn status_filter(status: &Value, passing: &Value, all: &Value) -> Result<StatusFilter> {
    let invalid = |message: &str| Error::from(vasco_core::Error::invalid("status", message));
    let mut chosen: Vec<(&str, StatusFilter)> = Vec::new();
    match status {
        Value::Null => {}
        Value::String(text) => chosen.push(("status", StatusFilter::parse(text)?)),
        Value::Array(names) => {
            let mut joined = Vec::with_capacity(names.len());
            for name in names {
                match name {
                    Value::String(name) => joined.push(name.as_str()),
                    _ => return Err(invalid("status: each entry must be a status name")),
                }
            }
            chosen.push(("status", StatusFilter::parse(&joined.join(","))?));
        }
        _ => {
            return Err(invalid(
                "status: must be a status name, a comma-separated list or an array of names",
            ))
        }
    }
    for (name, value, filter) in [
        ("passing", passing, StatusFilter::PASSING),
        ("all", all, StatusFilter::ALL),
    ] {
        match value {
            Value::Null | Value::Bool(false) => {}
            Value::Bool(true) => chosen.push((name, filter)),
            _ => return Err(invalid(&format!("{name}: must be a boolean"))),
        }
    }
    match chosen[..] {
        [] => Ok(StatusFilter::DEFAULT),
        [(_, filter)] => Ok(filter),
        [(first, _), (second, _), ..] => Err(invalid(&format!(
            "give one of status, passing and all, not {first} and {second}"
        ))),
    }
}

/// What a registration's `healthCheck` function said, as a check result: `true` (or nothing)
/// is passing; `false` is critical; `{status, note?}` is that (passing, warning or critical);
/// a thrown error (`thrown`, with `outcome` its message) is critical with the message as its
/// note. Anything else is critical too, saying what came back, so that a broken check takes
/// its instance out of rotation rather than keeping it in. Notes are cut to the registry's
/// limit ([`REASON_LEN`] characters, control characters as spaces).
pub fn check_outcome(outcome: &Value, thrown: bool) -> (Status, Option<String>) {
    let note = |text: &str| -> Option<String> {
        let clean: String = text
            .trim()
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .take(REASON_LEN)
            .collect();
        (!clean.is_empty()).then_some(clean)
    };
    if thrown {
        let text = match outcome {
            Value::String(text) => text.clone(),
            Value::Null => "the health check threw".into(),
            other => other.to_string(),
        };
        return (Status::Critical, note(&text));
    }
    let invalid = |what: &Value| {
        let mut shown = what.to_string();
        if shown.len() > 64 {
            shown = format!("{}...", shown.chars().take(60).collect::<String>());
        }
        (
            Status::Critical,
            note(&format!(
                "the health check returned {shown}, not true, false or {{status, note}}"
            )),
        )
    };
    match outcome {
        Value::Null | Value::Bool(true) => (Status::Passing, None),
        Value::Bool(false) => (Status::Critical, note("the health check returned false")),
        Value::Object(object) => {
            if object
                .keys()
                .any(|key| !matches!(key.as_str(), "status" | "note"))
            {
                return invalid(outcome);
            }
            let status = match object.get("status") {
                Some(Value::String(name)) => match name.parse::<Status>() {
                    Ok(status) if status != Status::Maintenance => status,
                    _ => return invalid(outcome),
                },
                None | Some(Value::Null) => Status::Passing,
                Some(_) => return invalid(outcome),
            };
            let text = match object.get("note") {
                None | Some(Value::Null) => None,
                Some(Value::String(text)) => note(text),
                Some(other) => note(&other.to_string()),
            };
            (status, text)
        }
        other => invalid(other),
    }
}

/// The keys `pkg.vasco` may hold.
pub(super) const PACKAGE_KEYS: &[&str] = &[
    "dependencies",
    "mocks",
    "aliveDuration",
    "tags",
    "meta",
    "weight",
    "zone",
    "id",
    "handleSignals",
    "drainMs",
    "healthCheck",
];

/// The keys of `client.register(options)`.
pub(super) const OPTION_KEYS: &[&str] = &[
    "name",
    "version",
    "url",
    "id",
    "ttl",
    "tags",
    "meta",
    "weight",
    "zone",
    "dependencies",
    "mocks",
    "handleSignals",
    "drainMs",
    "healthCheck",
];

/// The keys of `connect(options)`, and of its `outlier` option.
pub const CONNECT_KEYS: &[&str] = &[
    "url",
    "token",
    "timeout",
    "cacheTtl",
    "cacheSize",
    "staleIfError",
    "zone",
    "protectionThreshold",
    "outlier",
    "handleSignals",
    "seed",
    "lease",
    "feeds",
    "drainMs",
];

/// The keys of `connect({outlier})`.
pub const OUTLIER_KEYS: &[&str] = &[
    "consecutiveFailures",
    "baseEjectionMs",
    "maxEjectionMs",
    "maxEjectionPercent",
    "alwaysEjectOne",
];

/// Refuses the first key of `object` that is not in `known`, with the known key it is most
/// likely a typo of: `unknown key "dependecies"{within} (did you mean "dependencies"? known
/// keys: ...)`.
pub fn unknown_key(object: &Map<String, Value>, known: &[&str], within: &str) -> Option<String> {
    let key = object.keys().find(|key| !known.contains(&key.as_str()))?;
    let nearest = known
        .iter()
        .map(|k| {
            (
                edit_distance(&key.to_ascii_lowercase(), &k.to_ascii_lowercase()),
                *k,
            )
        })
        .min()
        .filter(|(distance, k)| *distance <= 2.max(k.len() / 4));
    let list = known.join(", ");
    Some(match nearest {
        Some((_, k)) => {
            format!("unknown key {key:?}{within} (did you mean {k:?}? known keys: {list})")
        }
        None => format!("unknown key {key:?}{within} (known keys: {list})"),
    })
}

/// Levenshtein distance (insertions, deletions, substitutions), for typo suggestions.
pub(super) fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let next = (diagonal + usize::from(ca != *cb))
                .min(row[j] + 1)
                .min(row[j + 1] + 1);
            diagonal = row[j + 1];
            row[j + 1] = next;
        }
    }
    row[b.len()]
}

pub(super) fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

pub(super) fn non_empty_str(value: Option<&Value>) -> Option<&str> {
    match value {
        Some(Value::String(text)) if !text.trim().is_empty() => Some(text.trim()),
        _ => None,
    }
}

/// `aliveDuration` in seconds, as the original read it: missing or 0 means the default (10 s);
/// a numeric string is accepted. Returns the `ttl` field of a registration body.
pub(super) fn alive_duration(value: Option<&Value>) -> Result<Value> {
    let bad = || vasco_core::Error::invalid("ttl", "aliveDuration must be a number of seconds");
    let seconds = match value {
        None | Some(Value::Null) => return Ok(Value::Null),
        Some(Value::Number(n)) => n.as_f64().ok_or_else(bad)?,
        Some(Value::String(text)) => text.trim().parse::<f64>().map_err(|_| bad())?,
        Some(_) => return Err(bad().into()),
    };
    if seconds == 0.0 {
        return Ok(Value::Null);
    }
    serde_json::Number::from_f64(seconds)
        .map(Value::Number)
        .ok_or_else(|| bad().into())
}
