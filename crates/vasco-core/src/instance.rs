//! Instance records and their leases.
//!
//! An instance is alive while `now < expires_at`. A registration or heartbeat sets
//! `expires_at = now + ttl`; nothing else extends it. Clients beat every `ttl / 3`
//! ([`heartbeat_period_ms`]) so that one late or lost beat never lets the lease lapse, which is
//! the flicker the original Vasco suffered from (it beat exactly once per TTL).

use alloc::{collections::BTreeMap, format, string::String, vec::Vec};

use serde::{Deserialize, Serialize};

use crate::{
    error::{Error, Result},
    health::{Health, HealthSpec},
    name::{InstanceId, ServiceName},
    version::Version,
};

pub use crate::Millis;

/// Identifies one instance: `name@version/id`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct InstanceKey {
    /// The service it belongs to.
    pub service: ServiceName,
    /// The version it runs.
    pub version: Version,
    /// Its id, unique within `service@version`.
    pub id: InstanceId,
}

impl InstanceKey {
    /// Parses the three parts of a key, as they appear in a path
    /// (`/v1/services/{name}/{version}/instances/{id}`); the error names the bad part.
    pub fn parse(service: &str, version: &str, id: &str) -> Result<Self> {
        Ok(Self {
            service: ServiceName::parse(service)?,
            version: Version::parse(version)?,
            id: InstanceId::parse(id)?,
        })
    }
}

impl core::fmt::Display for InstanceKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{}@{}/{}", self.service, self.version, self.id)
    }
}

/// What a service says about itself when it registers; [`Instance::lease`] turns it into a record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceSpec {
    /// Where to reach it: `host:port` or an `http(s)://` URL.
    pub url: String,
    /// How long the lease lasts without a heartbeat.
    pub ttl_ms: u64,
    /// Free-form labels to filter on (`canary`, `v1`).
    pub tags: Vec<String>,
    /// Free-form key/value data returned with the instance.
    pub meta: BTreeMap<String, String>,
    /// Relative share of traffic for weighted selection, 1..=1000.
    pub weight: u32,
    /// Failure domain for zone-preferring selection.
    pub zone: Option<String>,
    /// Health fields of the body (`status`, `reason`, `by`, `check`); empty when none was
    /// given, which keeps a live instance's health as it is.
    pub health: HealthSpec,
}

/// Limits on what an instance may carry; the encoded record must also fit KV metadata.
pub mod limits {
    /// Longest `url`.
    pub const URL_LEN: usize = 256;
    /// Shortest lease, in seconds.
    pub const TTL_MIN_S: u64 = 1;
    /// Longest lease, in seconds.
    pub const TTL_MAX_S: u64 = 3600;
    /// Most tags on one instance.
    pub const TAGS: usize = 16;
    /// Longest tag.
    pub const TAG_LEN: usize = 64;
    /// Most metadata entries.
    pub const META_ENTRIES: usize = 16;
    /// Longest metadata key.
    pub const META_KEY_LEN: usize = 64;
    /// Longest metadata value.
    pub const META_VALUE_LEN: usize = 256;
    /// Smallest weight.
    pub const WEIGHT_MIN: u32 = 1;
    /// Largest weight.
    pub const WEIGHT_MAX: u32 = 1000;
    /// Longest zone name.
    pub const ZONE_LEN: usize = 63;
}

impl InstanceSpec {
    /// The lease length when the caller gives none (the original Vasco's `aliveDuration`).
    pub const DEFAULT_TTL_MS: u64 = 10_000;

    /// A spec with defaults: 10 s lease, weight 1, no tags, metadata or zone.
    pub fn new(url: &str) -> Result<Self> {
        let spec = Self {
            url: url.into(),
            ttl_ms: Self::DEFAULT_TTL_MS,
            tags: Vec::new(),
            meta: BTreeMap::new(),
            weight: 1,
            zone: None,
            health: HealthSpec::default(),
        };
        spec.validate()?;
        Ok(spec)
    }

    /// Checks every field against [`limits`]; the error names the first bad field.
    pub fn validate(&self) -> Result<()> {
        validate_url(&self.url)?;
        let ttl_range = limits::TTL_MIN_S * 1000..=limits::TTL_MAX_S * 1000;
        if self.ttl_ms != 0 && !ttl_range.contains(&self.ttl_ms) {
            return Err(Error::invalid(
                "ttl",
                format!(
                    "must be between {} and {} seconds (or `persistent` for no lease)",
                    limits::TTL_MIN_S,
                    limits::TTL_MAX_S
                ),
            ));
        }
        if self.tags.len() > limits::TAGS {
            return Err(Error::invalid(
                "tags",
                format!("at most {} tags are allowed", limits::TAGS),
            ));
        }
        for tag in &self.tags {
            check_tag("tags", tag)?;
        }
        if self.meta.len() > limits::META_ENTRIES {
            return Err(Error::invalid(
                "meta",
                format!("at most {} entries are allowed", limits::META_ENTRIES),
            ));
        }
        for (key, value) in &self.meta {
            check_label("meta", key, limits::META_KEY_LEN)?;
            if value.chars().count() > limits::META_VALUE_LEN || value.chars().any(char::is_control)
            {
                return Err(Error::invalid(
                    "meta",
                    format!(
                        "value of {key:?} must be at most {} characters without control characters",
                        limits::META_VALUE_LEN
                    ),
                ));
            }
        }
        if !(limits::WEIGHT_MIN..=limits::WEIGHT_MAX).contains(&self.weight) {
            return Err(Error::invalid(
                "weight",
                format!(
                    "must be an integer from {} to {}",
                    limits::WEIGHT_MIN,
                    limits::WEIGHT_MAX
                ),
            ));
        }
        if let Some(zone) = &self.zone {
            let ok = !zone.is_empty()
                && zone.len() <= limits::ZONE_LEN
                && zone
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
            if !ok {
                return Err(Error::invalid(
                    "zone",
                    format!(
                        "must be 1 to {} of letters, digits, '-', '_' and '.'",
                        limits::ZONE_LEN
                    ),
                ));
            }
        }
        Ok(())
    }

    /// The spec `instance` is registered with: its record without the lease.
    pub fn of_instance(instance: &Instance) -> Self {
        Self {
            url: instance.url.clone(),
            ttl_ms: instance.ttl_ms,
            tags: instance.tags.clone(),
            meta: instance.meta.clone(),
            weight: instance.weight,
            zone: instance.zone.clone(),
            health: HealthSpec::default(),
        }
    }
}

fn check_label(field: &'static str, text: &str, max: usize) -> Result<()> {
    // Characters, not bytes: what the message and the README say.
    let chars = text.chars().count();
    if chars == 0 || chars > max || text.chars().any(|c| c.is_control()) {
        return Err(Error::invalid(
            field,
            format!("{text:?} must be 1 to {max} characters without control characters"),
        ));
    }
    Ok(())
}

/// Checks one tag: 1 to [`limits::TAG_LEN`] characters, no control characters, no `,` and no
/// whitespace at either end. The last two keep every tag expressible in a lookup, where
/// [`parse_tags`] splits on commas and trims (`?tag=a,b` and `{tag: "a, b"}` mean two tags).
/// `field` names the field in the error (`tags` in a registration, `tag` in a query).
pub fn check_tag(field: &'static str, tag: &str) -> Result<()> {
    check_label(field, tag, limits::TAG_LEN)?;
    if tag.contains(',') || tag.trim() != tag {
        return Err(Error::invalid(
            field,
            format!(
                "{tag:?} must not contain ',' or start or end with whitespace (a lookup lists \
                 several tags as a,b)"
            ),
        ));
    }
    Ok(())
}

/// The tags of a lookup, in the one syntax every caller shares (the Worker's `?tag=`, the npm
/// client's and the page's `{tag}` option): comma-separated, each trimmed and checked with
/// [`check_tag`]; an instance must carry every one. Errors name the field `tag`.
pub fn parse_tags(text: &str) -> Result<Vec<String>> {
    text.split(',')
        .map(|tag| {
            let tag = tag.trim();
            if tag.is_empty() {
                return Err(Error::invalid("tag", "must not be empty"));
            }
            check_tag("tag", tag)?;
            Ok(String::from(tag))
        })
        .collect()
}

/// Accepts `host:port` (host a name, IPv4 or `[IPv6]`) or an `http://` / `https://` URL.
fn validate_url(url: &str) -> Result<()> {
    let bad = |why: &str| {
        Error::invalid(
            "url",
            format!("{url:?} {why}; expected host:port or an http(s) URL"),
        )
    };
    if url.is_empty() {
        return Err(bad("is empty"));
    }
    if url.chars().count() > limits::URL_LEN {
        return Err(Error::invalid(
            "url",
            format!("is longer than {} characters", limits::URL_LEN),
        ));
    }
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad("contains whitespace or control characters"));
    }
    let (authority, needs_port) = if let Some(rest) = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
    {
        (rest.split(['/', '?', '#']).next().unwrap_or(""), false)
    } else if url.contains("://") {
        return Err(bad("has a scheme other than http or https"));
    } else {
        (url, true)
    };
    let authority = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    let (host, port) = split_host_port(authority);
    if host.is_empty() {
        return Err(bad("has no host"));
    }
    let host_ok = if let Some(inner) = host.strip_prefix('[') {
        inner.strip_suffix(']').is_some_and(|ip| {
            !ip.is_empty()
                && ip
                    .chars()
                    .all(|c| c.is_ascii_hexdigit() || c == ':' || c == '.')
        })
    } else {
        host.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'))
    };
    if !host_ok {
        return Err(bad("has an invalid host"));
    }
    match port {
        Some(port) if !port.parse::<u16>().is_ok_and(|p| p > 0) => {
            return Err(bad("has an invalid port"))
        }
        None if needs_port => return Err(bad("has no port")),
        _ => {}
    }
    Ok(())
}

fn split_host_port(authority: &str) -> (&str, Option<&str>) {
    if authority.starts_with('[') {
        match authority.find(']') {
            Some(end) => {
                let (host, rest) = authority.split_at(end + 1);
                (host, rest.strip_prefix(':'))
            }
            None => (authority, None),
        }
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    }
}

/// A registered instance with its lease.
///
/// Wire shape: `{"service", "version", "id", "url", "tags", "meta", "weight", "zone",
/// "registered_at", "expires_at", "ttl_ms", "status", "reason"?, "by"?, "maintenance"?,
/// "check"?}`: the health fields sit beside the others (see [`crate::health`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Instance {
    /// The service it belongs to.
    pub service: ServiceName,
    /// The version it runs.
    pub version: Version,
    /// Its id within `service@version`.
    pub id: InstanceId,
    /// Where to reach it.
    pub url: String,
    /// Labels to filter on.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Free-form data.
    #[serde(default)]
    pub meta: BTreeMap<String, String>,
    /// Share of traffic for weighted selection.
    pub weight: u32,
    /// Failure domain, if any.
    #[serde(default)]
    pub zone: Option<String>,
    /// When this instance was first registered (kept across heartbeats and re-registrations).
    pub registered_at: Millis,
    /// When the lease lapses unless renewed.
    pub expires_at: Millis,
    /// The lease length a heartbeat renews.
    pub ttl_ms: u64,
    /// Its health status (`"status"`, and `"reason"`, `"by"`, `"maintenance"`, `"check"` when
    /// set, beside the other fields): see [`crate::health`].
    #[serde(flatten, default)]
    pub health: Health,
}

impl Instance {
    /// Registers (or re-registers) `key` at `now`. A re-registration of a live instance keeps
    /// its `registered_at`, so a heartbeat-by-upsert is not mistaken for a restart, and its
    /// health, to which the spec's health fields apply (damped check results included); a new
    /// instance starts from [`Health::initial`].
    pub fn lease(
        key: InstanceKey,
        spec: InstanceSpec,
        now: Millis,
        previous: Option<&Instance>,
    ) -> Self {
        let live = previous.filter(|p| p.is_live(now));
        let registered_at = live.map_or(now, |p| p.registered_at);
        let health = match live {
            Some(p) => {
                let mut health = p.health.clone();
                health.update(&spec.health, now);
                health
            }
            None => Health::initial(&spec.health, now),
        };
        Self {
            service: key.service,
            version: key.version,
            id: key.id,
            url: spec.url,
            tags: spec.tags,
            meta: spec.meta,
            weight: spec.weight,
            zone: spec.zone,
            registered_at,
            expires_at: lease_end(now, spec.ttl_ms),
            ttl_ms: spec.ttl_ms,
            health,
        }
    }

    /// The instance's identity.
    pub fn key(&self) -> InstanceKey {
        InstanceKey {
            service: self.service.clone(),
            version: self.version.clone(),
            id: self.id.clone(),
        }
    }

    /// Whether the lease holds at `now`. At exactly `expires_at` it has lapsed.
    pub fn is_live(&self, now: Millis) -> bool {
        now < self.expires_at
    }

    /// The same instance after a heartbeat at `now`.
    pub fn renewed(&self, now: Millis) -> Self {
        Self {
            expires_at: lease_end(now, self.ttl_ms),
            ..self.clone()
        }
    }

    /// Whether it holds no lease (registered `"persistent": true`): it stays until
    /// deregistered, as Consul keeps a registration without checks.
    pub fn is_persistent(&self) -> bool {
        self.ttl_ms == 0
    }
}

/// The `expires_at` of an instance with no lease (`ttl_ms` 0): 9999-12-31T23:59:59Z, far
/// enough never to come and small enough to be exact in a JavaScript number.
pub const NO_EXPIRY: Millis = 253_402_300_799_000;

/// When a lease of `ttl_ms` taken at `now` ends; [`NO_EXPIRY`] for `ttl_ms` 0.
pub fn lease_end(now: Millis, ttl_ms: u64) -> Millis {
    if ttl_ms == 0 {
        NO_EXPIRY
    } else {
        now.saturating_add(ttl_ms).min(NO_EXPIRY)
    }
}

/// How often a client should renew a lease of `ttl_ms`: a third of it, so a single late or
/// lost beat still leaves a full period of margin before the lease lapses.
pub fn heartbeat_period_ms(ttl_ms: u64) -> u64 {
    (ttl_ms / 3).max(1)
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;

    fn key() -> InstanceKey {
        InstanceKey {
            service: ServiceName::parse("api").unwrap(),
            version: Version::parse("2.1.0").unwrap(),
            id: InstanceId::parse("a1").unwrap(),
        }
    }

    fn spec(body: serde_json::Value) -> Result<InstanceSpec> {
        InstanceSpec::from_json(&body.to_string())
    }

    #[test]
    fn limits_count_characters_not_bytes() {
        use serde_json::json;
        let url = "10.0.0.1:3000";
        // At the limit in characters, several times over it in bytes: accepted.
        let meta = "é".repeat(limits::META_VALUE_LEN);
        assert!(spec(json!({"url": url, "meta": {"k": meta}})).is_ok());
        let key = "鍵".repeat(limits::META_KEY_LEN);
        assert!(spec(json!({"url": url, "meta": {key: "v"}})).is_ok());
        let tag = "日".repeat(limits::TAG_LEN);
        assert!(spec(json!({"url": url, "tags": [tag]})).is_ok());
        let host = format!("http://h/{}", "ü".repeat(limits::URL_LEN - 9));
        assert!(spec(json!({"url": host})).is_ok());
        // One character more is refused, and the message counts characters.
        let meta = "é".repeat(limits::META_VALUE_LEN + 1);
        let err = spec(json!({"url": url, "meta": {"k": meta}})).unwrap_err();
        assert_eq!(err.code(), "invalid_meta");
        assert!(err.to_string().contains("256 characters"), "{err}");
        let tag = "日".repeat(limits::TAG_LEN + 1);
        let err = spec(json!({"url": url, "tags": [tag]})).unwrap_err();
        assert_eq!(err.code(), "invalid_tags");
        assert!(err.to_string().contains("64 characters"), "{err}");
        let host = format!("http://h/{}", "ü".repeat(limits::URL_LEN - 8));
        assert_eq!(
            spec(json!({"url": host})).unwrap_err().code(),
            "invalid_url"
        );
    }

    #[test]
    fn every_registrable_tag_can_be_looked_up() {
        use serde_json::json;
        for bad in ["team,a", "a,", ",", "trailing ", " leading", "\tx", ""] {
            let err = spec(json!({"url": "h:1", "tags": [bad]})).unwrap_err();
            assert_eq!(err.code(), "invalid_tags", "{bad:?}");
        }
        // Whatever registers, the lookup syntax gives back exactly that tag.
        for ok in ["team-a", "inner space", "k=v", "日本", "a;b", "%2C"] {
            let spec = spec(json!({"url": "h:1", "tags": [ok]})).unwrap();
            assert_eq!(parse_tags(ok).unwrap(), spec.tags, "{ok:?}");
        }
        assert_eq!(parse_tags("a, b ,c").unwrap(), ["a", "b", "c"]);
        for bad in ["", "a,", ",b", "a,,b", " "] {
            assert_eq!(
                parse_tags(bad).unwrap_err().code(),
                "invalid_tag",
                "{bad:?}"
            );
        }
        let long = "x".repeat(limits::TAG_LEN + 1);
        assert_eq!(parse_tags(&long).unwrap_err().code(), "invalid_tag");
    }

    #[test]
    fn urls() {
        for ok in [
            "10.0.0.1:3000",
            "localhost:3000",
            "[::1]:8080",
            "http://api.internal",
            "https://user@api.example.com:8443/base?x=1",
            "my_host.local:1",
        ] {
            assert!(InstanceSpec::new(ok).is_ok(), "{ok:?}");
        }
        for bad in [
            "",
            "localhost",
            "localhost:0",
            "localhost:65536",
            "host:port",
            "redis://x:1",
            "http://",
            "a b:80",
            "[::1:80",
            ":80",
            &alloc::format!("h:{}", "1".repeat(300)),
        ] {
            assert_eq!(
                InstanceSpec::new(bad).unwrap_err().code(),
                "invalid_url",
                "{bad:?}"
            );
        }
    }

    #[test]
    fn body_parsing_names_the_bad_field() {
        let cases = [
            ("{", "invalid_body"),
            ("[]", "invalid_body"),
            ("{}", "invalid_url"),
            (r#"{"url": 5}"#, "invalid_url"),
            (r#"{"url":"h:1","tll":5}"#, "invalid_body"),
            (r#"{"url":"h:1","ttl":0}"#, "invalid_ttl"),
            (r#"{"url":"h:1","ttl":0.5}"#, "invalid_ttl"),
            (
                r#"{"url":"h:1","ttl":5,"persistent":true}"#,
                "invalid_persistent",
            ),
            (r#"{"url":"h:1","persistent":1}"#, "invalid_persistent"),
            (r#"{"url":"h:1","ttl":-1}"#, "invalid_ttl"),
            (r#"{"url":"h:1","ttl":3601}"#, "invalid_ttl"),
            (r#"{"url":"h:1","ttl":"10"}"#, "invalid_ttl"),
            (r#"{"url":"h:1","weight":0}"#, "invalid_weight"),
            (r#"{"url":"h:1","weight":1001}"#, "invalid_weight"),
            (r#"{"url":"h:1","weight":1.5}"#, "invalid_weight"),
            (r#"{"url":"h:1","tags":"a"}"#, "invalid_tags"),
            (r#"{"url":"h:1","tags":[1]}"#, "invalid_tags"),
            (r#"{"url":"h:1","tags":[""]}"#, "invalid_tags"),
            (r#"{"url":"h:1","meta":{"k":1}}"#, "invalid_meta"),
            (r#"{"url":"h:1","zone":"eu 1"}"#, "invalid_zone"),
            (r#"{"url":"h:1","zone":7}"#, "invalid_zone"),
        ];
        for (body, code) in cases {
            assert_eq!(
                InstanceSpec::from_json(body).unwrap_err().code(),
                code,
                "{body}"
            );
        }
        let too_many: Vec<String> = (0..17).map(|i| alloc::format!("t{i}")).collect();
        let body = serde_json::json!({"url": "h:1", "tags": too_many}).to_string();
        assert_eq!(
            InstanceSpec::from_json(&body).unwrap_err().code(),
            "invalid_tags"
        );
    }

    #[test]
    fn an_integral_float_weight_is_an_integer() {
        let spec = InstanceSpec::from_json(r#"{"url": "h:1", "weight": 3.0}"#).unwrap();
        assert_eq!(spec.weight, 3);
        for bad in ["1.5", "-1.0", "1e20"] {
            let body = alloc::format!(r#"{{"url": "h:1", "weight": {bad}}}"#);
            assert_eq!(
                InstanceSpec::from_json(&body).unwrap_err().code(),
                "invalid_weight",
                "{bad}"
            );
        }
    }

    #[test]
    fn body_defaults_and_fractional_ttl() {
        let spec = InstanceSpec::from_json(r#"{"url":"10.0.0.1:3000"}"#).unwrap();
        assert_eq!(spec.ttl_ms, 10_000);
        assert_eq!(spec.weight, 1);
        let spec = InstanceSpec::from_json(
            r#"{"url":"h:1","ttl":2.5,"tags":["v1"],"meta":{"k":"v"},"weight":7,"zone":"eu-1"}"#,
        )
        .unwrap();
        assert_eq!(spec.ttl_ms, 2_500);
        assert_eq!(spec.tags, ["v1"]);
        assert_eq!(spec.meta.get("k").map(String::as_str), Some("v"));
        assert_eq!((spec.weight, spec.zone.as_deref()), (7, Some("eu-1")));
    }

    #[test]
    fn a_spec_round_trips_through_its_registration_body() {
        let mut spec = InstanceSpec::new("http://10.0.0.1:80/x").unwrap();
        spec.tags = alloc::vec!["canary".into()];
        spec.meta.insert("k".into(), "v".into());
        spec.weight = 7;
        spec.zone = Some("eu-1".into());
        for ttl_ms in [1_000, 2_500, 600_000, 3_599_999, 3_600_000] {
            spec.ttl_ms = ttl_ms;
            let back = InstanceSpec::from_json_value(&spec.to_json_value()).unwrap();
            assert_eq!(back, spec, "{ttl_ms}");
        }
        let instance = Instance::lease(key(), spec.clone(), 5, None);
        assert_eq!(InstanceSpec::of_instance(&instance), spec);
    }

    #[test]
    fn lease_expires_exactly_at_ttl() {
        let spec = InstanceSpec::new("h:1").unwrap();
        let instance = Instance::lease(key(), spec, 1_000, None);
        assert_eq!(instance.expires_at, 11_000);
        assert!(instance.is_live(10_999));
        assert!(!instance.is_live(11_000));
        let renewed = instance.renewed(5_000);
        assert_eq!(renewed.expires_at, 15_000);
        assert_eq!(renewed.registered_at, 1_000);
    }

    #[test]
    fn reregistering_keeps_registered_at_only_while_live() {
        let spec = InstanceSpec::new("h:1").unwrap();
        let first = Instance::lease(key(), spec.clone(), 1_000, None);
        let again = Instance::lease(key(), spec.clone(), 5_000, Some(&first));
        assert_eq!(again.registered_at, 1_000);
        let after_lapse = Instance::lease(key(), spec, 20_000, Some(&first));
        assert_eq!(after_lapse.registered_at, 20_000);
    }

    #[test]
    fn heartbeat_period_leaves_room_for_a_missed_beat() {
        assert_eq!(heartbeat_period_ms(10_000), 3_333);
        assert!(2 * heartbeat_period_ms(10_000) < 10_000);
        assert_eq!(heartbeat_period_ms(1), 1);
    }
}
