//! The registry client's logic, free of I/O: where the registry is, what a registration
//! says, how long a cached answer stays good, which instance a pick returns, when to beat and
//! when to retry. `lib.rs` drives it with real time, randomness and fetches; every decision
//! about names, versions, leases, resolution, selection and ejection is the core's.
//!
//! The cache holds one [`Slot`] per distinct question (`instances of api matching ^2 tagged
//! canary`, or `what does api ^2 resolve to`). The core's [`CachePolicy`] says how long an
//! answer is fresh and when a use of it should start a background refresh, so a steadily used
//! answer never goes stale. When a refresh fails because the registry is unreachable, the last
//! good answer keeps being served (stale-if-error) and the next attempt waits with the core's
//! [`Backoff`].
//!
//! An answer never outlives the first lease in it: its instances' `expires_at` are on the
//! registry's clock, which the core's [`RegistryClock`] maps to a local deadline, and the
//! core's [`CachePolicy::freshness_until`] ends the answer's life there (refreshing it ahead).
//!
//! One request per distinct question is in flight: a slot being fetched (in the foreground or
//! in the background) answers [`Lookup::Wait`], and the caller waits for that fetch instead of
//! sending its own.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};
use vasco_core::{
    health::{Damping, REASON_LEN},
    outlier::{OutlierConfig, OutlierDetector},
    select::{Candidate, Selector, SelectorConfig, Strategy},
    Backoff, CachePolicy, Dependencies, Freshness, HealthUpdate, Instance, InstanceId, InstanceKey,
    InstanceSpec, Millis, Mocks, Query, RegistryClock, Resolution, Rng, ServiceName, Status,
    StatusFilter, Version, VersionReq,
};

use crate::error::{Error, Result};

/// Where the package looks when neither `VASCO_URL` nor the `url` option says: the local
/// `wrangler dev`.
pub const DEFAULT_REGISTRY: &str = "http://127.0.0.1:8787";

/// What `VASCO_URL` (or the `url` option) selects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// A registry over HTTP, by base URL without a trailing slash.
    Http(String),
    /// The in-process registry shared by every client of this process.
    Memory,
}

impl Endpoint {
    /// Reads a registry address: an `http(s)://` URL, a bare `host:port` (meaning http),
    /// `memory:`, or nothing (the default local registry). Redis addresses of the original
    /// Vasco (`redis://`, or a bare `host:6379` as its README had it) get an error that says
    /// what to set instead; so does a mistyped scheme (`http//host`, `http:/host`, `htp://`).
    pub fn parse(text: Option<&str>) -> Result<Self> {
        let raw = text.map(str::trim).unwrap_or("");
        if raw.is_empty() {
            return Ok(Self::Http(DEFAULT_REGISTRY.into()));
        }
        let lower = raw.to_ascii_lowercase();
        let refuse = |reason: String| Error::RegistryUrl {
            url: raw.into(),
            reason,
        };
        if lower == "memory" || lower.starts_with("memory:") {
            return Ok(Self::Memory);
        }
        let no_redis = "Vasco no longer uses Redis. Set VASCO_URL to the http(s) URL of the \
                        Vasco registry (the Worker, e.g. https://vasco.<account>.workers.dev, or \
                        http://127.0.0.1:8787 for a local `wrangler dev`) and VASCO_TOKEN to its \
                        token, or set VASCO_URL=memory: for an in-process registry";
        if lower.starts_with("redis:") || lower.starts_with("rediss:") {
            return Err(refuse(no_redis.into()));
        }
        let forms = "use http(s)://host[:port], host:port or memory:";
        let (scheme, rest) = match lower.split_once("://") {
            Some((scheme, _)) if scheme == "http" || scheme == "https" => {
                (scheme, &raw[scheme.len() + 3..])
            }
            Some((scheme, _)) => {
                let near = ["http", "https"]
                    .into_iter()
                    .find(|s| edit_distance(scheme, s) <= 1)
                    .map(|s| format!(" (did you mean {s}://?)"))
                    .unwrap_or_default();
                return Err(refuse(format!(
                    "unsupported scheme {scheme:?}{near}; {forms}"
                )));
            }
            None => {
                // `http//host`, `http:/host`, `https:host`: a scheme with its `://` mistyped.
                for scheme in ["https", "http", "redis"] {
                    let after = lower.strip_prefix(scheme).unwrap_or("");
                    if after.starts_with(':')
                        && !after[1..].starts_with(|c: char| c.is_ascii_digit())
                        || after.starts_with('/')
                    {
                        let host = raw[scheme.len()..].trim_start_matches([':', '/']);
                        return Err(refuse(format!(
                            "the scheme is mistyped (did you mean {scheme}://{host}?); {forms}"
                        )));
                    }
                }
                ("http", raw)
            }
        };
        let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
        let authority_ok = !authority.is_empty()
            && authority
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-._~:[]%".contains(c));
        if !authority_ok || rest.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(refuse(format!("not a registry address; {forms}")));
        }
        if let Some((_, port)) = authority
            .rsplit_once(':')
            .filter(|_| !authority.ends_with(']'))
        {
            if !port.parse::<u16>().is_ok_and(|p| p > 0) {
                return Err(refuse(format!("{port:?} is not a port; {forms}")));
            }
            // The original's README had VASCO_URL=<host>:6379, Redis's port.
            if lower.split_once("://").is_none() && port == "6379" {
                return Err(refuse(format!("port 6379 is Redis's. {no_redis}")));
            }
        }
        let rest = rest
            .split(['?', '#'])
            .next()
            .unwrap_or("")
            .trim_end_matches('/');
        Ok(Self::Http(format!("{scheme}://{rest}")))
    }

    /// The address as shown to users.
    pub fn display(&self) -> &str {
        match self {
            Self::Http(base) => base,
            Self::Memory => "memory:",
        }
    }
}

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
        }
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

/// Retries of a failed cache refresh: from 100 ms, doubling, at most 10 s apart.
const REFRESH_BACKOFF: Backoff = Backoff {
    base_ms: 100,
    max_ms: 10_000,
};

/// One instance registration: who, where, with which lease, and what it depends on.
#[derive(Debug, Clone, PartialEq)]
pub struct Registration {
    /// `name@version/id`.
    pub key: InstanceKey,
    /// url, ttl, tags, meta, weight, zone.
    pub spec: InstanceSpec,
    /// What the service needs (`vasco.dependencies`).
    pub dependencies: Dependencies,
    /// Fixed urls for some of them (`vasco.mocks`).
    pub mocks: Mocks,
    /// How long a shutdown drain lasts for this registration (`drainMs`, ms), when it says.
    pub drain_ms: Option<u64>,
    /// The last status this registration set (`setStatus`, a drain), kept so that an
    /// instance registered again (its lease lost and taken anew) gets it back.
    pub desired: Option<HealthUpdate>,
    /// The `registered_at` of the instance [`Registration::desired`] was last applied to.
    applied_to: Option<Millis>,
}

impl Registration {
    /// The original API: `register(url, pkg)` with `pkg.vasco = {dependencies, mocks,
    /// aliveDuration}`. Also accepted in `pkg.vasco`: `tags`, `meta`, `weight`, `zone`, `id`
    /// (and `handleSignals`, read by the JavaScript layer). Any other key in `pkg.vasco` is
    /// refused, so that a typo (`dependecies`) is not silently ignored.
    pub fn from_package(url: &Value, pkg: &Value) -> Result<Self> {
        let url = match url {
            Value::String(url) if !url.trim().is_empty() => url.trim(),
            _ => return Err(Error::NeedUrl),
        };
        let invalid = |reason: String| Error::InvalidPackage { reason };
        let needs =
            "register(url, pkg) needs the package.json object, with \"name\" and \"version\"";
        let pkg = match pkg {
            Value::Object(pkg) => pkg,
            Value::Null => return Err(invalid(format!("no package given; {needs}"))),
            other => {
                return Err(invalid(format!(
                    "got {}, not an object; {needs}",
                    json_type(other)
                )))
            }
        };
        let field = |key: &str| {
            non_empty_str(pkg.get(key)).ok_or_else(|| {
                let problem = match pkg.get(key) {
                    None | Some(Value::Null) => "is missing",
                    Some(Value::String(_)) => "is empty",
                    Some(_) => "must be a string",
                };
                invalid(format!("\"{key}\" {problem}; {needs}"))
            })
        };
        let name = field("name")?;
        let version = field("version")?;
        let empty = Map::new();
        let vasco = match pkg.get("vasco") {
            None | Some(Value::Null) => &empty,
            Some(Value::Object(vasco)) => vasco,
            Some(other) => {
                return Err(invalid(format!(
                    "\"vasco\" must be an object, not {}",
                    json_type(other)
                )))
            }
        };
        if let Some(message) = unknown_key(vasco, PACKAGE_KEYS, " in \"vasco\"") {
            return Err(invalid(message));
        }
        let ttl = alive_duration(vasco.get("aliveDuration"))?;
        Self::build(
            name,
            version,
            url,
            vasco.get("id"),
            ttl,
            vasco,
            vasco.get("dependencies"),
            vasco.get("mocks"),
        )
    }

    /// The modern API: `client.register({name, version, url, id?, ttl?, tags?, meta?,
    /// weight?, zone?, dependencies?, mocks?})`, `ttl` in seconds.
    pub fn from_options(options: &Value) -> Result<Self> {
        let options = options
            .as_object()
            .ok_or_else(|| Error::argument("options", "must be an object"))?;
        if let Some(message) = unknown_key(options, OPTION_KEYS, "") {
            return Err(Error::argument("options", message));
        }
        let url = match options.get("url") {
            Some(Value::String(url)) if !url.trim().is_empty() => url.trim(),
            _ => return Err(Error::NeedUrl),
        };
        let name = non_empty_str(options.get("name"))
            .ok_or_else(|| vasco_core::Error::invalid("name", "is required"))?;
        let version = non_empty_str(options.get("version"))
            .ok_or_else(|| vasco_core::Error::invalid("version", "is required"))?;
        let ttl = match options.get("ttl") {
            None | Some(Value::Null) => Value::Null,
            Some(ttl) => ttl.clone(),
        };
        Self::build(
            name,
            version,
            url,
            options.get("id"),
            ttl,
            options,
            options.get("dependencies"),
            options.get("mocks"),
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn build(
        name: &str,
        version: &str,
        url: &str,
        id: Option<&Value>,
        ttl: Value,
        extras: &Map<String, Value>,
        dependencies: Option<&Value>,
        mocks: Option<&Value>,
    ) -> Result<Self> {
        let service = ServiceName::from_package_name(name)?;
        let version = Version::parse(version)?;
        let id = match id {
            None | Some(Value::Null) => InstanceId::from_url(url),
            Some(Value::String(id)) => InstanceId::parse(id)?,
            Some(_) => return Err(vasco_core::Error::invalid("id", "must be a string").into()),
        };
        let mut body = Map::new();
        body.insert("url".into(), Value::String(url.into()));
        body.insert("ttl".into(), ttl);
        for field in ["tags", "meta", "weight", "zone"] {
            if let Some(value) = extras.get(field) {
                body.insert(field.into(), value.clone());
            }
        }
        let spec = InstanceSpec::from_json_value(&Value::Object(body))?;
        let dependencies = Dependencies::from_json_value(dependencies.unwrap_or(&Value::Null))?;
        let mocks = Mocks::from_json_value(mocks.unwrap_or(&Value::Null))?;
        let drain_ms = drain_ms(extras.get("drainMs").unwrap_or(&Value::Null))?;
        Ok(Self {
            key: InstanceKey {
                service,
                version,
                id,
            },
            spec,
            dependencies,
            mocks,
            drain_ms,
            desired: None,
            applied_to: None,
        })
    }

    /// Records a status set (`status` with an optional `reason` and `by`) as this
    /// registration's wish, and answers the update to send (validated as the registry
    /// validates it). While the wish is maintenance, every registration body carries it (a
    /// lease registered again stays out of rotation from its first moment); any other status
    /// is sent once, and again only to an instance registered anew (see
    /// [`Registration::follow_up`]), so that renewals never undo a status someone else set.
    /// Errors: `invalid_status`, `invalid_reason`, `invalid_by`.
    pub fn set_status(
        &mut self,
        status: &str,
        reason: Option<String>,
        by: Option<String>,
    ) -> Result<HealthUpdate> {
        let mut body = Map::new();
        body.insert("status".into(), Value::String(status.into()));
        if let Some(reason) = reason {
            body.insert("reason".into(), Value::String(reason));
        }
        if let Some(by) = by {
            body.insert("by".into(), Value::String(by));
        }
        let update = HealthUpdate::from_value(&Value::Object(body))?;
        self.spec.health.set =
            (update.status() == Some(Status::Maintenance)).then(|| update.clone());
        self.desired = Some(update.clone());
        self.applied_to = None;
        Ok(update)
    }

    /// Records the result of this registration's health check (see [`check_outcome`]); it
    /// goes with every registration and HTTP renewal from now on, and on a WebSocket lease as
    /// a status message when the registry's check status differs (see
    /// [`Registration::follow_up`]). Returns the result.
    pub fn report_check(&mut self, outcome: &Value, thrown: bool) -> HealthUpdate {
        let (status, note) = check_outcome(outcome, thrown);
        let check = HealthUpdate::check(status, note);
        self.spec.health.check = Some(check.clone());
        check
    }

    /// What to send after a beat answered `instance`, if anything: this registration's status
    /// set, when the instance does not show it and it was not applied to this instance yet
    /// (a lease registered anew starts passing); else its latest check result, when the
    /// instance's check status differs from it (or the instance damps its checks, where each
    /// result counts). At most one update per beat.
    pub fn follow_up(&mut self, instance: &Instance) -> Option<HealthUpdate> {
        if let Some(set) = &self.desired {
            if self.applied_to != Some(instance.registered_at) {
                if shows(set, instance) {
                    self.applied_to = Some(instance.registered_at);
                } else {
                    return Some(set.clone());
                }
            }
        }
        match &self.spec.health.check {
            Some(check @ HealthUpdate::Check { status, .. })
                if instance.health.check.status != *status
                    || instance.health.check.damping != Damping::default() =>
            {
                Some(check.clone())
            }
            _ => None,
        }
    }

    /// A status update of this registration reached `instance` (the registry's answer).
    pub fn applied(&mut self, instance: &Instance) {
        if self.desired.is_some() {
            self.applied_to = Some(instance.registered_at);
        }
    }
}

/// Whether `instance` shows the status set `set` (maintenance on for a maintenance set; else
/// that status as its check status, maintenance off).
fn shows(set: &HealthUpdate, instance: &Instance) -> bool {
    let health = &instance.health;
    match set.status() {
        Some(Status::Maintenance) => health.maintenance.is_some(),
        Some(status) => health.maintenance.is_none() && health.check.status == status,
        None => health.maintenance.is_none(),
    }
}

/// The keys `pkg.vasco` may hold.
const PACKAGE_KEYS: &[&str] = &[
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
const OPTION_KEYS: &[&str] = &[
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
fn edit_distance(a: &str, b: &str) -> usize {
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

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn non_empty_str(value: Option<&Value>) -> Option<&str> {
    match value {
        Some(Value::String(text)) if !text.trim().is_empty() => Some(text.trim()),
        _ => None,
    }
}

/// `aliveDuration` in seconds, as the original read it: missing or 0 means the default (10 s);
/// a numeric string is accepted. Returns the `ttl` field of a registration body.
fn alive_duration(value: Option<&Value>) -> Result<Value> {
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

/// The core's outlier detection, one detector per service (the denominator of its ejection
/// cap is that service's instances), keyed by instance url. A counter moves whenever an
/// instance is newly ejected, so cached pickers know to look again.
#[derive(Debug)]
pub struct Outliers {
    config: OutlierConfig,
    detectors: BTreeMap<String, OutlierDetector>,
    epoch: u64,
}

impl Outliers {
    /// Detectors with `config`.
    pub fn new(config: OutlierConfig) -> Self {
        Self {
            config,
            detectors: BTreeMap::new(),
            epoch: 0,
        }
    }

    fn detector(&mut self, service: &str) -> &mut OutlierDetector {
        if !self.detectors.contains_key(service) {
            let detector = OutlierDetector::new(self.config.clone());
            self.detectors.insert(service.into(), detector);
        }
        self.detectors.get_mut(service).expect("inserted above")
    }

    /// A failed call to `url` of `service`; true when this ejected it.
    pub fn report_failure(&mut self, service: &str, url: &str, now: Millis) -> bool {
        let ejected = self.detector(service).report_failure(url, now);
        if ejected {
            self.epoch += 1;
        }
        ejected
    }

    /// A successful call: the failure streak of `url` ends.
    pub fn report_success(&mut self, service: &str, url: &str) {
        self.detector(service).report_success(url);
    }

    /// The instances of `service` the client knows of now (for the ejection cap).
    fn set_hosts<'a>(&mut self, service: &str, urls: impl IntoIterator<Item = &'a str>) {
        self.detector(service).set_hosts(urls);
    }

    /// When the ejection of `instance` ends, if it is ejected at `now`.
    fn ejected_until(&self, instance: &Instance, now: Millis) -> Option<Millis> {
        self.detectors
            .get(instance.service.as_str())?
            .ejected_until(&instance.url, now)
    }
}

/// What a slot answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    /// Every live instance matching a query (`instances`, `pick`).
    Instances,
    /// The newest version with live instances (`resolve`, `findDependencies`).
    Resolve,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct SlotKey {
    kind: Kind,
    service: ServiceName,
    version: String,
    tags: Vec<String>,
    zone: Option<String>,
    /// The statuses listed, as a bit set (`StatusFilter` is not ordered).
    statuses: u8,
}

/// What a caller does with a slot right now (the core's [`Freshness`] plus this client's
/// retry schedule).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup {
    /// Serve the cached answer.
    Hit,
    /// Serve it, and start a background refresh (the slot is now marked in flight).
    HitRefresh,
    /// Past its lifetime, but the registry failed recently and the next retry is not due:
    /// serve the last good answer (stale-if-error).
    HitStale,
    /// Nothing servable without asking: fetch and wait (serving the old answer if that fails
    /// and it is young enough). The caller marks the slot with [`Cache::begin`] when it starts
    /// that fetch.
    Miss,
    /// Nothing servable without asking, and a fetch of this slot is already in flight: wait
    /// for it rather than sending the same question again.
    Wait,
}

/// One cached question and its last good answer.
#[derive(Debug)]
pub struct Slot<P> {
    /// What is asked.
    pub kind: Kind,
    /// Of which service.
    pub service: ServiceName,
    /// Which instances.
    pub query: Query,
    entry: Option<Entry<P>>,
    in_flight: bool,
    failures: u32,
    retry_at: Millis,
}

#[derive(Debug)]
struct Entry<P> {
    instances: Vec<Instance>,
    version: Option<Version>,
    payload: P,
    fetched_at: Millis,
    generation: u64,
    /// Local time from which the first lease in `instances` may have ended.
    lease_end: Millis,
    pickers: Vec<Picker>,
}

#[derive(Debug)]
struct Picker {
    strategy: Strategy,
    selector: Selector,
    /// Candidate index to instance index: the instances of the newest version.
    map: Vec<usize>,
    /// Instance indexes that were ejected when this picker was built (marked unhealthy).
    excluded: Vec<usize>,
    /// Candidate index by url, for ending least-request picks (empty for other strategies).
    by_url: BTreeMap<String, usize>,
    epoch: u64,
    recheck_at: Millis,
}

/// Cached answers; slots are addressed by index so JavaScript can hold a handle to one.
#[derive(Debug)]
pub struct Cache<P> {
    slots: Vec<Slot<P>>,
    index: BTreeMap<SlotKey, usize>,
}

impl<P> Default for Cache<P> {
    fn default() -> Self {
        Self {
            slots: Vec::new(),
            index: BTreeMap::new(),
        }
    }
}

impl<P> Cache<P> {
    /// The slot for a question, created on first use.
    pub fn slot(&mut self, kind: Kind, service: ServiceName, query: Query) -> usize {
        let key = SlotKey {
            kind,
            service: service.clone(),
            version: query.version.as_str().into(),
            tags: query.tags.clone(),
            zone: query.zone.clone(),
            statuses: query
                .statuses
                .iter()
                .fold(0, |bits, status| bits | 1 << status as u8),
        };
        if let Some(&index) = self.index.get(&key) {
            return index;
        }
        self.slots.push(Slot {
            kind,
            service,
            query,
            entry: None,
            in_flight: false,
            failures: 0,
            retry_at: 0,
        });
        self.index.insert(key, self.slots.len() - 1);
        self.slots.len() - 1
    }

    /// The slot at `index`.
    pub fn get(&self, index: usize) -> Option<&Slot<P>> {
        self.slots.get(index)
    }

    /// What to do with slot `index` at `now`. `generation` is the in-process registry's
    /// change counter in `memory:` mode (answers stay good until it moves or a lease in them
    /// lapses) and `None` over HTTP (the core's [`CachePolicy::freshness_until`] decides, with
    /// the answer's first lease end). `HitRefresh` marks the slot as in flight, so only one
    /// background refresh starts; a slot in flight answers `Wait` where it would answer
    /// `Miss`.
    pub fn lookup(
        &mut self,
        index: usize,
        now: Millis,
        config: &Config,
        generation: Option<u64>,
    ) -> Lookup {
        let Some(slot) = self.slots.get_mut(index) else {
            return Lookup::Miss;
        };
        let miss = if slot.in_flight {
            Lookup::Wait
        } else {
            Lookup::Miss
        };
        let Some(entry) = &slot.entry else {
            return miss;
        };
        // A resolution that found nothing is never reused: the caller is waiting for it.
        if slot.kind == Kind::Resolve && entry.instances.is_empty() {
            return miss;
        }
        if let Some(generation) = generation {
            return if entry.generation == generation && now < entry.lease_end {
                Lookup::Hit
            } else {
                miss
            };
        }
        match config
            .cache
            .freshness_until(entry.fetched_at, entry.lease_end, now)
        {
            Freshness::Fresh => Lookup::Hit,
            Freshness::RefreshAhead if slot.in_flight || now < slot.retry_at => Lookup::Hit,
            Freshness::RefreshAhead => {
                slot.in_flight = true;
                Lookup::HitRefresh
            }
            Freshness::Stale if slot.failures > 0 && now < slot.retry_at => Lookup::HitStale,
            _ => miss,
        }
    }

    /// Until when (local time) picks of slot `index` with the keyed `strategy` keep answering
    /// the same instance for the same key with nothing for the cache to do: the slot answers a
    /// plain [`Lookup::Hit`] (no refresh due, no lease ended) and the picker's view of
    /// ejections holds. A new answer or a new ejection ends it sooner; the caller watches for
    /// those. 0 when such picks cannot be memoized now (no answer, a refresh due, a stale
    /// answer, a strategy that does not pick by key, a picker not built yet). Over HTTP only:
    /// `memory:` answers also end when the in-process registry changes.
    pub fn hit_until(
        &self,
        index: usize,
        strategy: Strategy,
        now: Millis,
        config: &Config,
        outliers: &Outliers,
    ) -> Millis {
        let Some(slot) = self.slots.get(index) else {
            return 0;
        };
        let Some(entry) = &slot.entry else {
            return 0;
        };
        if !strategy.uses_key() || entry.instances.is_empty() {
            return 0;
        }
        let (fresh, servable) = config.cache.fresh_until(entry.fetched_at, entry.lease_end);
        let until = if now < fresh {
            fresh
        } else if now < servable && slot.in_flight {
            servable
        } else if now < servable && now < slot.retry_at {
            servable.min(slot.retry_at)
        } else {
            return 0;
        };
        match entry.pickers.iter().find(|p| p.strategy == strategy) {
            Some(picker) if picker.epoch == outliers.epoch && now < picker.recheck_at => {
                until.min(picker.recheck_at)
            }
            _ => 0,
        }
    }

    /// Marks slot `index` as being fetched: until the answer is stored (or the fetch fails),
    /// lookups that cannot be served answer [`Lookup::Wait`].
    pub fn begin(&mut self, index: usize) {
        if let Some(slot) = self.slots.get_mut(index) {
            slot.in_flight = true;
        }
    }

    /// Marks slot `index` as being fetched (or not any more).
    pub fn set_in_flight(&mut self, index: usize, in_flight: bool) {
        if let Some(slot) = self.slots.get_mut(index) {
            slot.in_flight = in_flight;
        }
    }

    /// Whether a fetch of slot `index` is in flight.
    pub fn in_flight(&self, index: usize) -> bool {
        self.slots.get(index).is_some_and(|s| s.in_flight)
    }

    /// Stores a fresh answer in slot `index`; `payload` is the caller's copy of the instances
    /// (JavaScript objects in the package). `clock` is what the answer said of the registry's
    /// clock: the answer lives no longer than the first of its leases on that clock.
    #[allow(clippy::too_many_arguments)] // one answer and its circumstances
    pub fn store(
        &mut self,
        index: usize,
        instances: Vec<Instance>,
        version: Option<Version>,
        payload: P,
        now: Millis,
        generation: u64,
        clock: RegistryClock,
    ) {
        let Some(slot) = self.slots.get_mut(index) else {
            return;
        };
        let lease_end = instances
            .iter()
            .map(|i| clock.local_deadline(i.expires_at))
            .min()
            .unwrap_or(Millis::MAX);
        slot.entry = Some(Entry {
            instances,
            version,
            payload,
            fetched_at: now,
            generation,
            lease_end,
            pickers: Vec::new(),
        });
        slot.in_flight = false;
        slot.failures = 0;
        slot.retry_at = 0;
    }

    /// Marks the answer of slot `index` as fetched at `now` without replacing it (a change
    /// feed vouches that it is still current), keeping its pickers' state.
    pub fn touch(&mut self, index: usize, now: Millis) {
        if let Some(slot) = self.slots.get_mut(index) {
            if let Some(entry) = slot.entry.as_mut() {
                entry.fetched_at = now;
                slot.failures = 0;
                slot.retry_at = 0;
            }
        }
    }

    /// A refresh of slot `index` failed because the registry is unavailable: backs off and
    /// says whether the last good answer may still be served.
    pub fn failed(
        &mut self,
        index: usize,
        now: Millis,
        config: &Config,
        rng: &mut impl Rng,
    ) -> bool {
        let Some(slot) = self.slots.get_mut(index) else {
            return false;
        };
        slot.in_flight = false;
        slot.retry_at = now + REFRESH_BACKOFF.delay_ms(slot.failures, rng);
        slot.failures = slot.failures.saturating_add(1);
        slot.entry
            .as_ref()
            .is_some_and(|e| e.serves_on_error(now, config))
    }

    /// The answer held by slot `index`, however old: instances, resolved version, payload.
    pub fn answer(&self, index: usize) -> Option<(&[Instance], Option<&Version>, &P)> {
        let entry = self.slots.get(index)?.entry.as_ref()?;
        Some((&entry.instances, entry.version.as_ref(), &entry.payload))
    }

    /// Whether slot `index` holds an answer that may be served at `now`, ignoring freshness
    /// but not the stale-if-error limit.
    pub fn usable(&self, index: usize, now: Millis, config: &Config) -> bool {
        self.slots
            .get(index)
            .and_then(|s| s.entry.as_ref())
            .is_some_and(|e| e.serves_on_error(now, config))
    }

    /// Whether the answer of slot `index` is past its life at `now` (its cache lifetime or
    /// the first lease in it): it is then served only because the registry cannot be asked.
    pub fn is_stale(&self, index: usize, now: Millis, config: &Config) -> bool {
        self.slots
            .get(index)
            .and_then(|s| s.entry.as_ref())
            .is_some_and(|e| {
                matches!(
                    e.freshness(now, config),
                    Freshness::Stale | Freshness::Expired
                )
            })
    }

    /// Picks one instance of slot `index` with `strategy`, among the instances of the newest
    /// matching version, leaving out ejected instances unless the core's selector ignores
    /// health (none healthy, or fewer than the protection threshold). Returns the instance's
    /// index.
    #[allow(clippy::too_many_arguments)] // the client's parts are borrowed separately
    pub fn pick(
        &mut self,
        index: usize,
        strategy: Strategy,
        key: Option<&[u8]>,
        now: Millis,
        config: &Config,
        outliers: &Outliers,
        rng: &mut impl Rng,
    ) -> Option<usize> {
        let entry = self.slots.get_mut(index)?.entry.as_mut()?;
        if entry.instances.is_empty() {
            return None;
        }
        let position = match entry.pickers.iter().position(|p| p.strategy == strategy) {
            Some(position) => position,
            None => {
                let picker = Picker::build(&entry.instances, strategy, now, config, outliers);
                entry.pickers.push(picker);
                entry.pickers.len() - 1
            }
        };
        let picker = &mut entry.pickers[position];
        if picker.epoch != outliers.epoch || now >= picker.recheck_at {
            let (excluded, recheck_at) = ejected(&entry.instances, &picker.map, now, outliers);
            if excluded == picker.excluded {
                picker.epoch = outliers.epoch;
                picker.recheck_at = recheck_at;
            } else {
                *picker = Picker::build(&entry.instances, strategy, now, config, outliers);
            }
        }
        let candidate = picker.selector.pick(rng, key)?;
        if strategy == Strategy::LeastRequest {
            picker.selector.begin(candidate);
        }
        picker.map.get(candidate).copied()
    }

    /// Every instance url of `service` in any cached answer.
    pub fn urls(&self, service: &ServiceName) -> BTreeSet<String> {
        self.slots
            .iter()
            .filter(|s| &s.service == service)
            .filter_map(|s| s.entry.as_ref())
            .flat_map(|e| e.instances.iter().map(|i| i.url.clone()))
            .collect()
    }

    /// A call to `url` of `service` picked with least-request finished: its in-flight count
    /// goes down again.
    pub fn release(&mut self, service: &str, url: &str) {
        for slot in self
            .slots
            .iter_mut()
            .filter(|s| s.service.as_str() == service)
        {
            let Some(entry) = slot.entry.as_mut() else {
                continue;
            };
            for picker in entry
                .pickers
                .iter_mut()
                .filter(|p| p.strategy == Strategy::LeastRequest)
            {
                if let Some(&candidate) = picker.by_url.get(url) {
                    picker.selector.end(candidate);
                }
            }
        }
    }
}

impl<P> Entry<P> {
    fn freshness(&self, now: Millis, config: &Config) -> Freshness {
        config
            .cache
            .freshness_until(self.fetched_at, self.lease_end, now)
    }

    fn serves_on_error(&self, now: Millis, config: &Config) -> bool {
        config.cache.serves_on_error(self.freshness(now, config))
    }
}

/// The instances among `pool` that outlier detection has ejected at `now`, and when the first
/// of those ejections ends (when the picker must look again). Whether they are then left out
/// (or, below the protection threshold, kept) is the core selector's decision.
fn ejected(
    instances: &[Instance],
    pool: &[usize],
    now: Millis,
    outliers: &Outliers,
) -> (Vec<usize>, Millis) {
    let mut recheck_at = Millis::MAX;
    let excluded: Vec<usize> = pool
        .iter()
        .copied()
        .filter(|&i| match outliers.ejected_until(&instances[i], now) {
            Some(until) => {
                recheck_at = recheck_at.min(until);
                true
            }
            None => false,
        })
        .collect();
    (excluded, recheck_at)
}

impl Picker {
    fn build(
        instances: &[Instance],
        strategy: Strategy,
        now: Millis,
        config: &Config,
        outliers: &Outliers,
    ) -> Self {
        // The core's rules: a range picks among its newest live version (with a selectable
        // instance, when the answer lists critical or maintenance ones too), candidates are
        // built from instances in one way, and health (registry status, ejection, the
        // protection threshold) is applied by the selector.
        let map = vasco_core::pick_pool(instances);
        let (excluded, recheck_at) = ejected(instances, &map, now, outliers);
        let by_url = if strategy == Strategy::LeastRequest {
            map.iter()
                .enumerate()
                .map(|(candidate, &i)| (instances[i].url.clone(), candidate))
                .collect()
        } else {
            BTreeMap::new()
        };
        let candidates = map
            .iter()
            .map(|&i| {
                Candidate::from_instance(&instances[i])
                    .with_health(excluded.binary_search(&i).is_err())
            })
            .collect();
        let selector = Selector::new(
            SelectorConfig {
                strategy,
                local_zone: config.local_zone.clone(),
                protection_threshold: config.protection_threshold,
            },
            candidates,
        );
        Self {
            strategy,
            selector,
            map,
            excluded,
            by_url,
            epoch: outliers.epoch,
            recheck_at,
        }
    }
}

/// Where one resolved dependency's urls come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A mock url, returned as given.
    Mock(String),
    /// A cache slot of kind [`Kind::Resolve`].
    Slot(usize),
}

/// A resolution answered from the cache.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Answer {
    /// Each resolved dependency, by name.
    pub resolved: Vec<(String, Source)>,
    /// Dependencies without a live instance, sorted.
    pub missing: Vec<String>,
    /// Dependencies the registry could not be asked about and the cache does not know.
    pub unknown: Vec<String>,
    /// Whether some answer came from past its lifetime (the registry was unreachable).
    pub stale: bool,
}

/// What a resolution needs before it can be answered.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    /// Dependencies to ask the registry about now, waiting for the answer.
    pub fetch: Dependencies,
    /// Dependencies to refresh in the background (already answerable).
    pub refresh: Dependencies,
    /// Dependencies being fetched already (by another caller or a background refresh): wait
    /// for that fetch instead of asking again.
    pub wait: Dependencies,
}

/// The client's whole state, one per `connect()`.
#[derive(Debug)]
pub struct State<P, R> {
    /// Tuning.
    pub config: Config,
    /// Cached answers.
    pub cache: Cache<P>,
    /// Failure reports.
    pub outliers: Outliers,
    /// Randomness for picks and jitter, seeded at the edge.
    pub rng: R,
    /// Set by `close()`.
    pub closed: bool,
}

impl<P, R: Rng> State<P, R> {
    /// A client with `config` and `rng`.
    pub fn new(config: Config, rng: R) -> Self {
        Self {
            outliers: Outliers::new(config.outlier.clone()),
            config,
            cache: Cache::default(),
            rng,
            closed: false,
        }
    }

    /// Stores a fresh answer in `slot` (see [`Cache::store`]) and tells the outlier detector
    /// which instances of the service are known now.
    #[allow(clippy::too_many_arguments)] // one answer and its circumstances
    pub fn store(
        &mut self,
        slot: usize,
        instances: Vec<Instance>,
        version: Option<Version>,
        payload: P,
        now: Millis,
        generation: u64,
        clock: RegistryClock,
    ) {
        self.cache
            .store(slot, instances, version, payload, now, generation, clock);
        let Some(service) = self.cache.get(slot).map(|s| s.service.clone()) else {
            return;
        };
        let urls = self.cache.urls(&service);
        self.outliers
            .set_hosts(service.as_str(), urls.iter().map(String::as_str));
    }

    /// The slot answering "what does `service` at `requirement` resolve to".
    pub fn resolve_slot(&mut self, service: &ServiceName, requirement: &VersionReq) -> usize {
        self.cache.slot(
            Kind::Resolve,
            service.clone(),
            Query::version(requirement.clone()),
        )
    }

    /// Which dependencies must be fetched before answering, which only want a background
    /// refresh, and which are being fetched already. Mocked names are never asked about. The
    /// slots to fetch and refresh are marked in flight: the caller must fetch them, then
    /// [`State::store_resolution`] or [`State::resolution_failed`].
    pub fn plan(
        &mut self,
        dependencies: &Dependencies,
        mocks: &Mocks,
        now: Millis,
        generation: Option<u64>,
    ) -> Plan {
        let mut plan = Plan::default();
        for (name, requirement) in &dependencies.0 {
            if mocks.0.contains_key(name) {
                continue;
            }
            let slot = self.resolve_slot(name, requirement);
            match self.cache.lookup(slot, now, &self.config, generation) {
                Lookup::Hit | Lookup::HitStale => {}
                Lookup::HitRefresh => {
                    plan.refresh.0.insert(name.clone(), requirement.clone());
                }
                Lookup::Miss => {
                    self.cache.begin(slot);
                    plan.fetch.0.insert(name.clone(), requirement.clone());
                }
                Lookup::Wait => {
                    plan.wait.0.insert(name.clone(), requirement.clone());
                }
            }
        }
        if !plan.fetch.is_empty() {
            // One round trip: refresh the due ones along with the missing ones.
            let refresh = core::mem::take(&mut plan.refresh);
            plan.fetch.0.extend(refresh.0);
        }
        plan
    }

    /// Stores what the registry answered for `asked` (with what it said of its clock);
    /// `payload` makes the caller's copy of each instance list.
    pub fn store_resolution(
        &mut self,
        asked: &Dependencies,
        mut resolution: Resolution,
        now: Millis,
        (generation, clock): (u64, RegistryClock),
        payload: &mut dyn FnMut(&[Instance]) -> P,
    ) {
        for (name, requirement) in &asked.0 {
            let slot = self.resolve_slot(name, requirement);
            let (instances, version) = match resolution.resolved.remove(name.as_str()) {
                Some(resolved) => (resolved.instances, resolved.version),
                None => (Vec::new(), None),
            };
            let copy = payload(&instances);
            self.store(slot, instances, version, copy, now, generation, clock);
        }
    }

    /// The registry could not be asked about `asked`: back off on each.
    pub fn resolution_failed(&mut self, asked: &Dependencies, now: Millis) {
        for (name, requirement) in &asked.0 {
            let slot = self.resolve_slot(name, requirement);
            self.cache.failed(slot, now, &self.config, &mut self.rng);
        }
    }

    /// The answer from what the cache holds now, however old, within the stale-if-error limit.
    pub fn answer(&mut self, dependencies: &Dependencies, mocks: &Mocks, now: Millis) -> Answer {
        let mut answer = Answer::default();
        for (name, requirement) in &dependencies.0 {
            if let Some(url) = mocks.0.get(name) {
                answer
                    .resolved
                    .push((name.as_str().into(), Source::Mock(url.clone())));
                continue;
            }
            let slot = self.resolve_slot(name, requirement);
            if !self.cache.usable(slot, now, &self.config) {
                answer.unknown.push(name.as_str().into());
                continue;
            }
            let Some((instances, _, _)) = self.cache.answer(slot) else {
                answer.unknown.push(name.as_str().into());
                continue;
            };
            if instances.is_empty() {
                answer.missing.push(name.as_str().into());
                continue;
            }
            if self.cache.is_stale(slot, now, &self.config) {
                answer.stale = true;
            }
            answer
                .resolved
                .push((name.as_str().into(), Source::Slot(slot)));
        }
        answer
    }

    /// One url per resolved dependency (`findDependencies`): the mock, or a random live,
    /// non-ejected instance of the resolved version.
    pub fn urls(&mut self, answer: &Answer, now: Millis) -> BTreeMap<String, String> {
        let mut urls = BTreeMap::new();
        for (name, source) in &answer.resolved {
            let url = match source {
                Source::Mock(url) => Some(url.clone()),
                Source::Slot(slot) => self
                    .cache
                    .pick(
                        *slot,
                        Strategy::Random,
                        None,
                        now,
                        &self.config,
                        &self.outliers,
                        &mut self.rng,
                    )
                    .and_then(|i| {
                        self.cache
                            .answer(*slot)
                            .map(|(list, _, _)| list[i].url.clone())
                    }),
            };
            if let Some(url) = url {
                urls.insert(name.clone(), url);
            }
        }
        urls
    }
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;
    use serde_json::json;
    use vasco_core::SplitMix64;

    fn instance(service: &str, version: &str, id: &str, url: &str, now: Millis) -> Instance {
        let key = InstanceKey {
            service: ServiceName::parse(service).unwrap(),
            version: Version::parse(version).unwrap(),
            id: InstanceId::parse(id).unwrap(),
        };
        Instance::lease(key, InstanceSpec::new(url).unwrap(), now, None)
    }

    fn deps(pairs: &[(&str, &str)]) -> Dependencies {
        Dependencies::parse(pairs.iter().copied()).unwrap()
    }

    #[test]
    fn registry_urls() {
        let http = |s: &str| Endpoint::Http(s.into());
        assert_eq!(Endpoint::parse(None).unwrap(), http(DEFAULT_REGISTRY));
        assert_eq!(Endpoint::parse(Some(" ")).unwrap(), http(DEFAULT_REGISTRY));
        assert_eq!(
            Endpoint::parse(Some("10.0.0.1:8787")).unwrap(),
            http("http://10.0.0.1:8787")
        );
        assert_eq!(
            Endpoint::parse(Some("HTTPS://vasco.example.dev/")).unwrap(),
            http("https://vasco.example.dev")
        );
        assert_eq!(
            Endpoint::parse(Some("https://example.dev/registry/")).unwrap(),
            http("https://example.dev/registry")
        );
        assert_eq!(
            Endpoint::parse(Some("http://[::1]:8787")).unwrap(),
            http("http://[::1]:8787")
        );
        assert_eq!(Endpoint::parse(Some("memory:")).unwrap(), Endpoint::Memory);
        assert_eq!(Endpoint::parse(Some("memory")).unwrap(), Endpoint::Memory);
        let redis = Endpoint::parse(Some("redis://localhost:6379")).unwrap_err();
        assert_eq!(redis.code(), "invalid_registry_url");
        assert!(redis.to_string().contains("VASCO_URL"), "{redis}");
        assert!(redis.to_string().contains("memory:"), "{redis}");
        for bad in ["ftp://x", "http://", "host:port", "ho st:1", "host:0"] {
            assert!(Endpoint::parse(Some(bad)).is_err(), "{bad}");
        }
        // Each message names the url and says what to write instead.
        let message = |text: &str| Endpoint::parse(Some(text)).unwrap_err().to_string();
        for (typo, meant) in [
            ("http//x", "http://x"),
            ("http:/x:80", "http://x:80"),
            ("https//vasco.dev", "https://vasco.dev"),
            ("https:vasco.dev", "https://vasco.dev"),
        ] {
            let text = message(typo);
            assert!(text.contains(&format!("{typo:?}")), "{text}");
            assert!(text.contains(&format!("did you mean {meant}?")), "{text}");
        }
        assert!(message("htp://x").contains("did you mean http://?"));
        let redis_port = message("10.0.0.5:6379");
        assert!(redis_port.contains("\"10.0.0.5:6379\""), "{redis_port}");
        assert!(redis_port.contains("no longer uses Redis"), "{redis_port}");
        assert!(message("host:port").contains("\"host:port\""));
        // A registry on 6379 is still reachable when the scheme says so; so is a host named http.
        assert_eq!(
            Endpoint::parse(Some("http://10.0.0.5:6379")).unwrap(),
            http("http://10.0.0.5:6379")
        );
        assert_eq!(
            Endpoint::parse(Some("http:8080")).unwrap(),
            http("http://http:8080")
        );
    }

    #[test]
    fn packages_of_the_original() {
        let pkg = json!({
            "name": "frontend", "version": "1.3.0",
            "vasco": {"dependencies": {"api": "2.0.0", "auth": "^1"}, "mocks": {"auth": "localhost:3000"}, "aliveDuration": 3}
        });
        let reg = Registration::from_package(&json!("127.0.0.1:4000"), &pkg).unwrap();
        assert_eq!(reg.key.service.as_str(), "frontend");
        assert_eq!(reg.key.version.to_string(), "1.3.0");
        assert_eq!(reg.spec.url, "127.0.0.1:4000");
        assert_eq!(reg.spec.ttl_ms, 3_000);
        assert_eq!(reg.dependencies.len(), 2);
        assert_eq!(reg.mocks.0.len(), 1);
        assert_eq!(reg.key.id, InstanceId::from_url("127.0.0.1:4000"));

        let bare = json!({"name": "svc", "version": "1.0.0"});
        let reg = Registration::from_package(&json!("h:1"), &bare).unwrap();
        assert_eq!(reg.spec.ttl_ms, 10_000);
        let zero = json!({"name": "svc", "version": "1.0.0", "vasco": {"aliveDuration": 0}});
        assert_eq!(
            Registration::from_package(&json!("h:1"), &zero)
                .unwrap()
                .spec
                .ttl_ms,
            10_000
        );
        let text = json!({"name": "svc", "version": "1.0.0", "vasco": {"aliveDuration": "2"}});
        assert_eq!(
            Registration::from_package(&json!("h:1"), &text)
                .unwrap()
                .spec
                .ttl_ms,
            2_000
        );
    }

    #[test]
    fn bad_registrations() {
        let pkg = json!({"name": "svc", "version": "1.0.0"});
        for url in [json!(null), json!(""), json!(3000)] {
            assert_eq!(
                Registration::from_package(&url, &pkg).unwrap_err(),
                Error::NeedUrl
            );
        }
        for pkg in [
            json!(null),
            json!({}),
            json!({"name": "svc"}),
            json!({"version": "1.0.0"}),
        ] {
            let err = Registration::from_package(&json!("h:1"), &pkg).unwrap_err();
            assert!(err.to_string().starts_with("Invalid package: "), "{pkg}");
            assert_eq!(err.code(), "invalid_package");
        }
        // The message names the field.
        let message = |pkg: Value| {
            Registration::from_package(&json!("h:1"), &pkg)
                .unwrap_err()
                .to_string()
        };
        assert!(
            message(json!({"name": "svc"})).starts_with("Invalid package: \"version\" is missing")
        );
        assert!(message(json!({"version": "1.0.0"}))
            .starts_with("Invalid package: \"name\" is missing"));
        assert!(message(json!({"name": "svc", "version": ""})).contains("\"version\" is empty"));
        assert!(
            message(json!({"name": "svc", "version": 1})).contains("\"version\" must be a string")
        );
        assert!(message(json!("pkg")).contains("got a string"));
        // A typo in pkg.vasco is refused, with the key it was probably meant to be.
        let typo = message(
            json!({"name": "svc", "version": "1.0.0", "vasco": {"dependecies": {"api": "1"}}}),
        );
        assert!(
            typo.starts_with("Invalid package: unknown key \"dependecies\""),
            "{typo}"
        );
        assert!(typo.contains("did you mean \"dependencies\"?"), "{typo}");
        let alive =
            message(json!({"name": "svc", "version": "1.0.0", "vasco": {"aliveduration": 3}}));
        assert!(alive.contains("did you mean \"aliveDuration\"?"), "{alive}");
        let far = message(json!({"name": "svc", "version": "1.0.0", "vasco": {"colour": "red"}}));
        assert!(!far.contains("did you mean"), "{far}");
        // Every documented key is accepted.
        let full = json!({"name": "svc", "version": "1.0.0", "vasco": {
            "dependencies": {}, "mocks": {}, "aliveDuration": 3, "tags": ["a"], "meta": {"k": "v"},
            "weight": 2, "zone": "z", "id": "i1", "handleSignals": false
        }});
        assert!(Registration::from_package(&json!("h:1"), &full).is_ok());
        let option = Registration::from_options(
            &json!({"name": "svc", "version": "1.0.0", "url": "h:1", "dependecies": {}}),
        )
        .unwrap_err();
        assert_eq!(option.code(), "invalid_argument");
        assert!(
            option
                .to_string()
                .contains("did you mean \"dependencies\"?"),
            "{option}"
        );
        let bad_ttl = json!({"name": "svc", "version": "1.0.0", "vasco": {"aliveDuration": -1}});
        assert_eq!(
            Registration::from_package(&json!("h:1"), &bad_ttl)
                .unwrap_err()
                .code(),
            "invalid_ttl"
        );
        let bad_deps =
            json!({"name": "svc", "version": "1.0.0", "vasco": {"dependencies": {"api": 2}}});
        assert_eq!(
            Registration::from_package(&json!("h:1"), &bad_deps)
                .unwrap_err()
                .code(),
            "invalid_dependencies"
        );
        assert_eq!(
            Registration::from_options(&json!({"name": "svc", "url": "h:1"}))
                .unwrap_err()
                .code(),
            "invalid_version"
        );
    }

    #[test]
    fn answers_age_into_refresh_then_miss_then_stale_on_error() {
        // The core's default policy: fresh 5 s, refreshed after 3 s, stale-if-error 5 min.
        let config = Config::default();
        let mut rng = SplitMix64::from_seed(2);
        let mut cache: Cache<()> = Cache::default();
        let api = ServiceName::parse("api").unwrap();
        let slot = cache.slot(Kind::Instances, api.clone(), Query::any());
        assert_eq!(cache.slot(Kind::Instances, api, Query::any()), slot);
        assert_eq!(cache.lookup(slot, 0, &config, None), Lookup::Miss);
        let t0 = 1_000_000;
        let list = vec![instance("api", "1.0.0", "a", "h:1", t0)];
        cache.store(slot, list, None, (), t0, 0, RegistryClock::LOCAL);
        assert_eq!(cache.lookup(slot, t0 + 100, &config, None), Lookup::Hit);
        assert_eq!(
            cache.lookup(slot, t0 + 3_000, &config, None),
            Lookup::HitRefresh
        );
        // Only one background refresh at a time.
        assert_eq!(cache.lookup(slot, t0 + 3_001, &config, None), Lookup::Hit);
        let stale = t0 + 5_000;
        // Past its life while that refresh is still in flight: wait for it.
        assert_eq!(cache.lookup(slot, stale, &config, None), Lookup::Wait);
        cache.set_in_flight(slot, false);
        assert_eq!(cache.lookup(slot, stale, &config, None), Lookup::Miss);
        // The registry is down: the old answer is served until the retry is due.
        for _ in 0..4 {
            assert!(cache.failed(slot, stale, &config, &mut rng));
        }
        let retry_at = cache.slots[slot].retry_at;
        assert!(retry_at > stale && retry_at <= stale + 800, "{retry_at}");
        assert_eq!(
            cache.lookup(slot, retry_at - 1, &config, None),
            Lookup::HitStale
        );
        assert_eq!(cache.lookup(slot, retry_at, &config, None), Lookup::Miss);
        // Past the stale-if-error limit nothing old is served.
        let expired = t0 + config.cache.stale_if_error_ms;
        assert!(cache.usable(slot, expired - 1, &config));
        assert!(!cache.usable(slot, expired, &config));
        assert!(!cache.failed(slot, expired, &config, &mut rng));
    }

    #[test]
    fn an_answer_never_outlives_a_lease_on_the_registrys_clock() {
        let config = Config::default();
        let mut rng = SplitMix64::from_seed(5);
        let mut cache: Cache<()> = Cache::default();
        let slot = cache.slot(
            Kind::Instances,
            ServiceName::parse("api").unwrap(),
            Query::any(),
        );
        // The registry's clock is 10 s ahead of ours. It answered a request we sent at t0
        // with two instances: one beating every 3 s on a 10 s lease, one whose 1 s lease it
        // renewed last (then its process was killed).
        let t0 = 1_000_000;
        let registry_now = t0 + 10_000;
        let mut short = instance("api", "1.0.0", "killed", "h:1", registry_now);
        short.expires_at = registry_now + 1_000;
        let long = instance("api", "1.0.0", "alive", "h:2", registry_now);
        let clock = RegistryClock::from_answer(t0, registry_now);
        cache.store(slot, vec![long, short], None, (), t0, 0, clock);
        assert_eq!(cache.lookup(slot, t0 + 100, &config, None), Lookup::Hit);
        // Refreshed ahead of the lease end, once ...
        assert_eq!(
            cache.lookup(slot, t0 + 600, &config, None),
            Lookup::HitRefresh
        );
        assert_eq!(cache.lookup(slot, t0 + 601, &config, None), Lookup::Hit);
        // ... and once the lease may have ended, never served while the registry answers:
        // callers wait for the refresh in flight, or fetch.
        assert_eq!(cache.lookup(slot, t0 + 1_000, &config, None), Lookup::Wait);
        cache.set_in_flight(slot, false);
        assert_eq!(cache.lookup(slot, t0 + 1_600, &config, None), Lookup::Miss);
        // Judged on our own clock instead, the lease would still have 9 s to run.
        assert!(vasco_core::lease_serves(registry_now + 1_000, t0 + 1_600));
        // The registry cannot be reached: the last answer stands in (stale-if-error) and
        // says so.
        assert!(cache.failed(slot, t0 + 1_600, &config, &mut rng));
        assert_eq!(
            cache.lookup(slot, t0 + 1_601, &config, None),
            Lookup::HitStale
        );
        assert!(cache.is_stale(slot, t0 + 1_601, &config));
        // The next answer, without the killed instance, lives its full cache life.
        let renewed = instance("api", "1.0.0", "alive", "h:2", registry_now + 2_000);
        let clock = RegistryClock::from_answer(t0 + 2_000, registry_now + 2_000);
        cache.store(slot, vec![renewed], None, (), t0 + 2_000, 0, clock);
        assert_eq!(cache.lookup(slot, t0 + 4_999, &config, None), Lookup::Hit);
        assert!(!cache.is_stale(slot, t0 + 4_999, &config));
    }

    #[test]
    fn keyed_picks_may_be_memoized_until_anything_could_change_them() {
        let config = Config::default();
        let mut rng = SplitMix64::from_seed(8);
        let mut outliers = Outliers::new(config.outlier.clone());
        let mut cache: Cache<()> = Cache::default();
        let slot = cache.slot(
            Kind::Instances,
            ServiceName::parse("api").unwrap(),
            Query::any(),
        );
        let t0 = 1_000_000;
        let until = |cache: &Cache<()>, outliers: &Outliers, now| {
            cache.hit_until(slot, Strategy::Maglev, now, &config, outliers)
        };
        assert_eq!(until(&cache, &outliers, t0), 0, "nothing cached");
        let mut short = instance("api", "1.0.0", "a", "h:1", t0);
        short.expires_at = t0 + 2_000;
        let list = vec![short, instance("api", "1.0.0", "b", "h:2", t0)];
        cache.store(slot, list, None, (), t0, 0, RegistryClock::LOCAL);
        assert_eq!(until(&cache, &outliers, t0), 0, "no picker yet");
        let pick = |cache: &mut Cache<()>, outliers: &Outliers, rng: &mut SplitMix64, now| {
            cache.pick(
                slot,
                Strategy::Maglev,
                Some(&b"k"[..]),
                now,
                &config,
                outliers,
                rng,
            )
        };
        let first = pick(&mut cache, &outliers, &mut rng, t0);
        // Until the refresh is due, 60% into the 2 s lease.
        assert_eq!(until(&cache, &outliers, t0 + 10), t0 + 1_200);
        assert_eq!(
            cache.hit_until(slot, Strategy::RoundRobin, t0, &config, &outliers),
            0,
            "only keyed strategies"
        );
        // Within that time every pick of the key agrees.
        for now in [t0 + 10, t0 + 600, t0 + 1_199] {
            assert_eq!(pick(&mut cache, &outliers, &mut rng, now), first);
        }
        // Refresh due: the caller must go through the cache again.
        assert_eq!(until(&cache, &outliers, t0 + 1_200), 0);
        // A refresh in flight: good until the lease ends.
        assert_eq!(
            cache.lookup(slot, t0 + 1_200, &config, None),
            Lookup::HitRefresh
        );
        assert_eq!(until(&cache, &outliers, t0 + 1_300), t0 + 2_000);
        // An ejection changes the picker's view at once.
        for _ in 0..config.outlier.consecutive_failures {
            outliers.report_failure("api", "h:1", t0 + 1_300);
            outliers.report_failure("api", "h:2", t0 + 1_300);
        }
        assert_eq!(until(&cache, &outliers, t0 + 1_300), 0);
    }

    #[test]
    fn one_fetch_per_question_in_flight() {
        let config = Config::default();
        let mut rng = SplitMix64::from_seed(6);
        let mut cache: Cache<()> = Cache::default();
        let api = ServiceName::parse("api").unwrap();
        let slot = cache.slot(Kind::Instances, api, Query::any());
        assert_eq!(cache.lookup(slot, 0, &config, None), Lookup::Miss);
        cache.begin(slot);
        assert!(cache.in_flight(slot));
        for _ in 0..50 {
            assert_eq!(cache.lookup(slot, 0, &config, None), Lookup::Wait);
        }
        // A failed fetch ends the flight: the next caller asks again.
        assert!(!cache.failed(slot, 0, &config, &mut rng));
        assert_eq!(cache.lookup(slot, 1_000, &config, None), Lookup::Miss);

        // Resolutions: a second caller asks only what nobody is asking yet.
        let mut state: State<(), _> = State::new(Config::default(), SplitMix64::from_seed(7));
        let t0 = 1_000_000;
        let first = state.plan(
            &deps(&[("a", "1"), ("b", "^2")]),
            &Mocks::default(),
            t0,
            None,
        );
        assert_eq!(first.fetch, deps(&[("a", "1"), ("b", "^2")]));
        let second = state.plan(
            &deps(&[("b", "^2"), ("c", "*")]),
            &Mocks::default(),
            t0,
            None,
        );
        assert_eq!(second.fetch, deps(&[("c", "*")]));
        assert_eq!(second.wait, deps(&[("b", "^2")]));
        // The same question again waits for both.
        let third = state.plan(
            &deps(&[("a", "1"), ("c", "*")]),
            &Mocks::default(),
            t0,
            None,
        );
        assert!(third.fetch.is_empty());
        assert_eq!(third.wait, deps(&[("a", "1"), ("c", "*")]));
        // Once answered (even with nothing), the flight is over.
        state.store_resolution(
            &first.fetch,
            Resolution::default(),
            t0,
            (0, RegistryClock::LOCAL),
            &mut |_| (),
        );
        let fourth = state.plan(&deps(&[("a", "1")]), &Mocks::default(), t0, None);
        assert_eq!(
            fourth.fetch,
            deps(&[("a", "1")]),
            "nothing found is asked again"
        );
        assert!(fourth.wait.is_empty());
    }

    #[test]
    fn memory_answers_follow_the_registry_generation_and_leases() {
        let config = Config::default();
        let mut cache: Cache<()> = Cache::default();
        let slot = cache.slot(
            Kind::Instances,
            ServiceName::parse("api").unwrap(),
            Query::any(),
        );
        let t0 = 1_000_000;
        cache.store(
            slot,
            vec![instance("api", "1.0.0", "a", "h:1", t0)],
            None,
            (),
            t0,
            7,
            RegistryClock::LOCAL,
        );
        assert_eq!(cache.lookup(slot, t0 + 1, &config, Some(7)), Lookup::Hit);
        assert_eq!(cache.lookup(slot, t0 + 1, &config, Some(8)), Lookup::Miss);
        assert_eq!(
            cache.lookup(slot, t0 + 10_000, &config, Some(7)),
            Lookup::Miss
        );
    }

    #[test]
    fn picks_avoid_ejected_instances_until_the_ejection_ends() {
        let config = Config::default();
        let mut rng = SplitMix64::from_seed(3);
        let mut outliers = Outliers::new(config.outlier.clone());
        let mut cache: Cache<()> = Cache::default();
        let slot = cache.slot(
            Kind::Instances,
            ServiceName::parse("api").unwrap(),
            Query::any(),
        );
        let t0 = 1_000_000;
        let list = vec![
            instance("api", "1.0.0", "a", "h:1", t0),
            instance("api", "1.0.0", "b", "h:2", t0),
        ];
        cache.store(slot, list, None, (), t0, 0, RegistryClock::LOCAL);
        let mut pick = |cache: &mut Cache<()>, outliers: &Outliers, now| {
            cache
                .pick(
                    slot,
                    Strategy::RoundRobin,
                    None,
                    now,
                    &config,
                    outliers,
                    &mut rng,
                )
                .unwrap()
        };
        let seen: Vec<usize> = (0..4).map(|_| pick(&mut cache, &outliers, t0)).collect();
        assert!(seen.contains(&0) && seen.contains(&1), "{seen:?}");
        let mut ejected = false;
        for _ in 0..config.outlier.consecutive_failures {
            ejected |= outliers.report_failure("api", "h:1", t0);
        }
        assert!(ejected);
        for _ in 0..10 {
            assert_eq!(pick(&mut cache, &outliers, t0 + 1), 1);
        }
        // Back once the ejection ends.
        let later = t0 + 1 + config.outlier.base_ejection_ms;
        let seen: Vec<usize> = (0..4).map(|_| pick(&mut cache, &outliers, later)).collect();
        assert!(seen.contains(&0), "{seen:?}");
    }

    /// A slot holding `list`, and a closure picking from it with `strategy` and `key`.
    fn stored(list: Vec<Instance>, t0: Millis) -> (Cache<()>, usize) {
        let mut cache: Cache<()> = Cache::default();
        let slot = cache.slot(
            Kind::Instances,
            ServiceName::parse("api").unwrap(),
            Query::any(),
        );
        cache.store(slot, list, None, (), t0, 0, RegistryClock::LOCAL);
        (cache, slot)
    }

    #[test]
    fn picks_choose_among_the_newest_version_as_resolution_does() {
        let t0 = 1_000_000;
        let list = vec![
            instance("api", "2.1.0", "a", "h:1", t0),
            instance("api", "2.1.0", "b", "h:2", t0),
            instance("api", "2.0.3", "c", "h:3", t0),
        ];
        let config = Config::default();
        let outliers = Outliers::new(config.outlier.clone());
        let mut rng = SplitMix64::from_seed(4);
        let (mut cache, slot) = stored(list.clone(), t0);
        let mut seen = BTreeSet::new();
        for &strategy in Strategy::ALL {
            for k in 0..200u32 {
                let key = k.to_le_bytes();
                let picked = cache
                    .pick(slot, strategy, Some(&key), t0, &config, &outliers, &mut rng)
                    .unwrap();
                seen.insert(list[picked].url.clone());
            }
        }
        let resolved = vasco_core::registry::live_matching(list.iter(), &Query::any(), t0);
        let resolution =
            vasco_core::resolve::resolve(&deps(&[("api", "^2")]), &Mocks::default(), t0, |_| {
                resolved.iter().copied()
            });
        let expected: BTreeSet<String> = resolution.resolved["api"]
            .urls()
            .into_iter()
            .map(String::from)
            .collect();
        assert_eq!(seen, expected);
    }

    #[test]
    fn consistent_hash_picks_agree_with_the_core_selector_over_instances() {
        // The page builds `Selector`s from instances through the same core rule; the client's
        // pick for a key must be the same instance.
        let t0 = 1_000_000;
        let list: Vec<Instance> = (0..20)
            .map(|i| {
                instance(
                    "api",
                    "1.0.0",
                    &format!("id-{i}"),
                    &format!("10.0.0.{i}:80"),
                    t0,
                )
            })
            .collect();
        let config = Config::default();
        let outliers = Outliers::new(config.outlier.clone());
        let mut rng = SplitMix64::from_seed(5);
        let (mut cache, slot) = stored(list.clone(), t0);
        for strategy in [Strategy::Maglev, Strategy::Ring] {
            let mut core = Selector::new(
                SelectorConfig::new(strategy),
                list.iter().map(Candidate::from_instance).collect(),
            );
            for k in 0..50 {
                let key = format!("user-{k}");
                let ours = cache
                    .pick(
                        slot,
                        strategy,
                        Some(key.as_bytes()),
                        t0,
                        &config,
                        &outliers,
                        &mut rng,
                    )
                    .unwrap();
                let theirs = core.pick(&mut rng, Some(key.as_bytes())).unwrap();
                assert_eq!(list[ours].id, list[theirs].id, "{strategy} {key}");
            }
        }
    }

    #[test]
    fn below_the_protection_threshold_ejected_instances_are_picked_again() {
        let t0 = 1_000_000;
        let list: Vec<Instance> = (0..4)
            .map(|i| instance("api", "1.0.0", &format!("i{i}"), &format!("h:1{i}"), t0))
            .collect();
        let config = Config {
            protection_threshold: 0.8,
            outlier: OutlierConfig {
                max_ejection_percent: 100,
                ..Config::default().outlier
            },
            ..Config::default()
        };
        let mut outliers = Outliers::new(config.outlier.clone());
        let mut rng = SplitMix64::from_seed(6);
        let (mut cache, slot) = stored(list.clone(), t0);
        let mut picks = |cache: &mut Cache<()>, outliers: &Outliers| {
            (0..40)
                .map(|_| {
                    let i = cache
                        .pick(
                            slot,
                            Strategy::RoundRobin,
                            None,
                            t0 + 1,
                            &config,
                            outliers,
                            &mut rng,
                        )
                        .unwrap();
                    list[i].url.clone()
                })
                .collect::<BTreeSet<_>>()
        };
        for _ in 0..config.outlier.consecutive_failures {
            outliers.report_failure("api", "h:10", t0);
        }
        // 3 of 4 healthy (0.75 < 0.8): the selector panics and uses all four.
        assert_eq!(picks(&mut cache, &outliers).len(), 4);
        // With a threshold of 0.5 the same ejection is honoured (a fresh picker).
        let lenient = Config {
            protection_threshold: 0.5,
            ..config.clone()
        };
        let (mut fresh, fresh_slot) = stored(list.clone(), t0);
        let mut seen = BTreeSet::new();
        for _ in 0..40 {
            let i = fresh
                .pick(
                    fresh_slot,
                    Strategy::RoundRobin,
                    None,
                    t0 + 1,
                    &lenient,
                    &outliers,
                    &mut rng,
                )
                .unwrap();
            seen.insert(list[i].url.clone());
        }
        assert!(!seen.contains("h:10") && seen.len() == 3, "{seen:?}");
    }

    #[test]
    fn resolutions_plan_fetch_answer_and_survive_outages() {
        let mut state: State<(), _> = State::new(Config::default(), SplitMix64::from_seed(4));
        let deps = deps(&[("api", "^2"), ("auth", "1.0.0"), ("db", "*")]);
        let mocks = Mocks::parse([("auth", "localhost:3000")]).unwrap();
        let t0 = 1_000_000;
        let plan = state.plan(&deps, &mocks, t0, None);
        assert_eq!(plan.fetch.len(), 2, "auth is mocked");
        let mut resolution = Resolution::default();
        resolution.resolved.insert(
            "api".into(),
            vasco_core::Resolved {
                version: Some(Version::parse("2.1.0").unwrap()),
                instances: vec![instance("api", "2.1.0", "a", "h:1", t0)],
                mock: None,
            },
        );
        resolution.missing.push("db".into());
        state.store_resolution(
            &plan.fetch,
            resolution,
            t0,
            (0, RegistryClock::LOCAL),
            &mut |_| (),
        );
        let answer = state.answer(&deps, &mocks, t0);
        assert_eq!(answer.missing, vec!["db".to_string()]);
        assert!(answer.unknown.is_empty() && !answer.stale);
        let urls = state.urls(&answer, t0);
        assert_eq!(urls["api"], "h:1");
        assert_eq!(urls["auth"], "localhost:3000");

        // Fresh: only the missing one is asked again; api is answered from the cache.
        let plan = state.plan(&deps, &mocks, t0 + 10, None);
        assert_eq!(plan.fetch, self::deps(&[("db", "*")]));
        state.store_resolution(
            &plan.fetch,
            Resolution::default(),
            t0 + 10,
            (0, RegistryClock::LOCAL),
            &mut |_| (),
        );
        // Later the registry is down: api is served stale, db stays missing.
        let later = t0 + 20_000;
        let plan = state.plan(&deps, &mocks, later, None);
        assert_eq!(plan.fetch.len(), 2);
        state.resolution_failed(&plan.fetch, later);
        let answer = state.answer(&deps, &mocks, later);
        assert!(answer.stale);
        assert_eq!(state.urls(&answer, later)["api"], "h:1");
        // A dependency never seen cannot be answered during an outage.
        let other = self::deps(&[("billing", "1.0.0")]);
        let plan = state.plan(&other, &Mocks::default(), later, None);
        state.resolution_failed(&plan.fetch, later);
        assert_eq!(
            state.answer(&other, &Mocks::default(), later).unknown,
            vec!["billing".to_string()]
        );
    }

    #[test]
    fn status_options_read_as_the_registry_reads_its_query() {
        let none = Value::Null;
        let f = |status: Value, passing: Value, all: Value| status_filter(&status, &passing, &all);
        assert_eq!(
            f(none.clone(), none.clone(), none.clone()).unwrap(),
            StatusFilter::DEFAULT
        );
        assert_eq!(
            f(json!("passing, warning"), none.clone(), none.clone()).unwrap(),
            StatusFilter::DEFAULT
        );
        let critical = f(
            json!(["critical", "maintenance"]),
            json!(false),
            none.clone(),
        )
        .unwrap();
        assert!(critical.contains(Status::Critical) && !critical.contains(Status::Passing));
        assert_eq!(
            f(none.clone(), json!(true), none.clone()).unwrap(),
            StatusFilter::PASSING
        );
        assert_eq!(
            f(none.clone(), json!(false), json!(true)).unwrap(),
            StatusFilter::ALL
        );
        for (status, passing, all) in [
            (json!("sick"), none.clone(), none.clone()),
            (json!(""), none.clone(), none.clone()),
            (json!([1]), none.clone(), none.clone()),
            (json!(3), none.clone(), none.clone()),
            (none.clone(), json!("yes"), none.clone()),
            (json!("passing"), none.clone(), json!(true)),
            (none.clone(), json!(true), json!(true)),
        ] {
            let err = f(status.clone(), passing.clone(), all.clone()).unwrap_err();
            assert_eq!(err.code(), "invalid_status", "{status} {passing} {all}");
        }
        let both = f(json!("passing"), Value::Null, json!(true)).unwrap_err();
        assert!(both.to_string().contains("not status and all"), "{both}");
    }

    #[test]
    fn slots_are_distinct_per_status_filter() {
        let mut cache: Cache<()> = Cache::default();
        let api = ServiceName::parse("api").unwrap();
        let default = cache.slot(Kind::Instances, api.clone(), Query::any());
        let all = Query {
            statuses: StatusFilter::ALL,
            ..Query::any()
        };
        let every = cache.slot(Kind::Instances, api.clone(), all.clone());
        assert_ne!(default, every);
        assert_eq!(cache.slot(Kind::Instances, api, all), every);
    }

    #[test]
    fn health_check_outcomes_become_check_results() {
        let r = |value: Value, thrown: bool| check_outcome(&value, thrown);
        assert_eq!(r(json!(true), false), (Status::Passing, None));
        assert_eq!(r(Value::Null, false), (Status::Passing, None));
        assert_eq!(
            r(json!(false), false),
            (
                Status::Critical,
                Some("the health check returned false".into())
            )
        );
        assert_eq!(
            r(json!("db down\nretrying"), true),
            (Status::Critical, Some("db down retrying".into()))
        );
        assert_eq!(
            r(json!({"status": "warning", "note": "slow"}), false),
            (Status::Warning, Some("slow".into()))
        );
        assert_eq!(
            r(json!({"status": "passing"}), false),
            (Status::Passing, None)
        );
        // Not a result a check may give: critical, saying what came back.
        for bad in [
            json!({"status": "maintenance"}),
            json!({"status": "fine"}),
            json!({"state": "passing"}),
            json!("ok"),
            json!(1),
        ] {
            let (status, note) = r(bad.clone(), false);
            assert_eq!(status, Status::Critical, "{bad}");
            assert!(
                note.unwrap().starts_with("the health check returned "),
                "{bad}"
            );
        }
        // Notes fit the registry's limit.
        let (_, note) = r(json!("x".repeat(1000)), true);
        assert_eq!(note.unwrap().chars().count(), REASON_LEN);
    }

    fn registration() -> Registration {
        Registration::from_options(&json!({"name": "api", "version": "1.0.0", "url": "h:1"}))
            .unwrap()
    }

    /// The registration's instance as the registry stores it, registered at `at`, with
    /// `updates` applied.
    fn leased(reg: &Registration, at: Millis, updates: &[HealthUpdate]) -> Instance {
        let mut instance = Instance::lease(reg.key.clone(), reg.spec.clone(), at, None);
        for update in updates {
            instance.health.apply(update, 0);
        }
        instance
    }

    #[test]
    fn a_maintenance_set_rides_every_registration_and_comes_back_after_a_lost_lease() {
        let mut reg = registration();
        let update = reg
            .set_status("maintenance", Some("shutdown".into()), None)
            .unwrap();
        assert_eq!(reg.spec.health.set.as_ref(), Some(&update));
        // The instance as it was before the set: the set is to be sent.
        let before = Instance::lease(
            reg.key.clone(),
            InstanceSpec::new("h:1").unwrap(),
            1_000,
            None,
        );
        assert_eq!(reg.follow_up(&before), Some(update.clone()));
        let after = leased(&reg, 1_000, &[]);
        assert_eq!(
            after.health.status,
            Status::Maintenance,
            "the body carries it"
        );
        reg.applied(&after);
        assert_eq!(reg.follow_up(&after), None);
        // A lease registered anew carries it from its registration: nothing to send.
        let again = leased(&reg, 9_000, &[]);
        assert_eq!(reg.follow_up(&again), None);
        // Bad input is refused as the registry refuses it.
        assert_eq!(
            reg.set_status("sleeping", None, None).unwrap_err().code(),
            "invalid_status"
        );
        assert_eq!(
            reg.set_status("warning", Some("x".repeat(REASON_LEN + 1)), None)
                .unwrap_err()
                .code(),
            "invalid_reason"
        );
    }

    #[test]
    fn another_set_is_sent_once_and_again_only_to_an_instance_registered_anew() {
        let mut reg = registration();
        let update = reg
            .set_status("warning", Some("degraded".into()), None)
            .unwrap();
        assert_eq!(
            reg.spec.health.set, None,
            "renewals must not undo others' sets"
        );
        let fresh = leased(&reg, 1_000, &[]);
        assert_eq!(reg.follow_up(&fresh), Some(update.clone()));
        let warned = leased(&reg, 1_000, std::slice::from_ref(&update));
        reg.applied(&warned);
        // A check moves it later on the same instance: not undone.
        let moved = leased(
            &reg,
            1_000,
            &[update.clone(), HealthUpdate::check(Status::Passing, None)],
        );
        assert_eq!(reg.follow_up(&moved), None);
        // The lease was lost and taken anew: passing again, so the set goes again.
        let anew = leased(&reg, 5_000, &[]);
        assert_eq!(reg.follow_up(&anew), Some(update));
    }

    #[test]
    fn check_results_go_in_bodies_and_as_messages_when_the_registry_differs() {
        let mut reg = registration();
        let check = reg.report_check(&json!(false), false);
        assert_eq!(check.status(), Some(Status::Critical));
        // A first registration takes it undamped.
        let first = leased(&reg, 1_000, &[]);
        assert_eq!(first.health.status, Status::Critical);
        assert_eq!(reg.follow_up(&first), None);
        // Back to passing: the registry still says critical, so it is sent.
        let ok = reg.report_check(&Value::Null, false);
        assert_eq!(reg.follow_up(&first), Some(ok.clone()));
        let healed = leased(&reg, 1_000, &[check, ok.clone()]);
        assert_eq!(reg.follow_up(&healed), None);
        // An instance that damps its checks gets every result.
        let mut damped = healed.clone();
        damped.health.check.damping.success_before_passing = 3;
        assert_eq!(reg.follow_up(&damped), Some(ok));
    }

    #[test]
    fn drain_times_read_numbers_and_environment_strings() {
        assert_eq!(drain_ms(&Value::Null).unwrap(), None);
        assert_eq!(drain_ms(&json!(0)).unwrap(), Some(0));
        assert_eq!(drain_ms(&json!(1500.4)).unwrap(), Some(1500));
        assert_eq!(drain_ms(&json!(" 250 ")).unwrap(), Some(250));
        assert_eq!(drain_ms(&json!("")).unwrap(), None);
        for bad in [
            json!(-1),
            json!("soon"),
            json!(true),
            json!(MAX_DRAIN_MS + 1),
        ] {
            assert_eq!(
                drain_ms(&bad).unwrap_err().code(),
                "invalid_argument",
                "{bad}"
            );
        }
        let reg = Registration::from_options(
            &json!({"name": "api", "version": "1.0.0", "url": "h:1", "drainMs": 0}),
        )
        .unwrap();
        assert_eq!(reg.drain_ms, Some(0));
        let pkg = json!({"name": "api", "version": "1.0.0", "vasco": {"drainMs": 100}});
        assert_eq!(
            Registration::from_package(&json!("h:1"), &pkg)
                .unwrap()
                .drain_ms,
            Some(100)
        );
    }

    #[test]
    fn picks_never_return_critical_or_maintenance_and_warning_only_as_a_last_resort() {
        let t0 = 1_000_000;
        let with = |mut i: Instance, status: Status| {
            i.health.apply(&HealthUpdate::set(status, None), 0);
            i
        };
        let a = instance("api", "1.0.0", "a", "h:1", t0);
        let b = with(
            instance("api", "2.0.0", "b", "h:2", t0),
            Status::Maintenance,
        );
        let c = with(instance("api", "2.0.0", "c", "h:3", t0), Status::Warning);
        let d = instance("api", "2.0.0", "d", "h:4", t0);
        let config = Config::default();
        let outliers = Outliers::new(config.outlier.clone());
        let mut rng = SplitMix64::from_seed(9);
        let picked = |list: Vec<Instance>, rng: &mut SplitMix64| {
            let (mut cache, slot) = stored_list(list.clone(), t0);
            let mut seen = BTreeSet::new();
            for &strategy in Strategy::ALL {
                for k in 0..100u32 {
                    let key = k.to_le_bytes();
                    if let Some(i) =
                        cache.pick(slot, strategy, Some(&key), t0, &config, &outliers, rng)
                    {
                        seen.insert(list[i].id.to_string());
                    }
                }
            }
            seen
        };
        let all = vec![a.clone(), b.clone(), c.clone(), d.clone()];
        assert_eq!(picked(all, &mut rng), BTreeSet::from(["d".to_string()]));
        let d_critical = with(d.clone(), Status::Critical);
        let list = vec![a.clone(), b.clone(), c.clone(), d_critical.clone()];
        assert_eq!(picked(list, &mut rng), BTreeSet::from(["c".to_string()]));
        // Nothing selectable in 2.0.0: the pool is 1.0.0, the version resolution picks.
        let c_down = with(c, Status::Maintenance);
        let list = vec![a, b.clone(), c_down.clone(), d_critical.clone()];
        assert_eq!(picked(list, &mut rng), BTreeSet::from(["a".to_string()]));
        assert!(picked(vec![b, c_down, d_critical], &mut rng).is_empty());
    }

    fn stored_list(list: Vec<Instance>, t0: Millis) -> (Cache<()>, usize) {
        let mut cache: Cache<()> = Cache::default();
        let query = Query {
            statuses: StatusFilter::ALL,
            ..Query::any()
        };
        let slot = cache.slot(Kind::Instances, ServiceName::parse("api").unwrap(), query);
        cache.store(slot, list, None, (), t0, 0, RegistryClock::LOCAL);
        (cache, slot)
    }
}
