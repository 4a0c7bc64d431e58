//! lyft/discovery's REST API (the service discovery service of Envoy's v1 SDS), read and
//! written against the one Vasco registry.
//!
//! The original (github.com/lyft/discovery, archived) keeps one host per `(service, ip)`:
//! `POST /v1/registration/:service` with form fields `ip`, `port`, `revision`, `tags` (JSON text
//! with `az`, `instance_id`, `region`, optionally `canary` and `load_balancing_weight`) and
//! `service_repo_name`; a re-POST is the heartbeat and merges the tags; a host silent for longer
//! than `HOST_TTL` (600 s) is left out of `GET /v1/registration/:service`. This module decides
//! everything about that dialect (which fields are valid, where an `auto_ip` comes from, how a
//! host maps onto an [`Instance`] and back, the bodies of answers and refusals); the Worker only
//! moves bytes. Nothing here reads a clock: callers pass `now`.
//!
//! # Mapping
//!
//! | lyft | Vasco |
//! |---|---|
//! | `:service` | the service name ([`ServiceName::parse`]: 1 to 63 of `a-z 0-9 - _ .`) |
//! | (none: lyft has no versions) | version [`VERSION`] (`0.0.0`) |
//! | `ip` | the instance id (the key is `(service, ip)`, as in the original) |
//! | `ip`, `port` | url `ip:port` |
//! | `revision` | meta [`REVISION_META`] (`revision`) |
//! | `service_repo_name` | meta [`REPO_META`] (`lyft.service_repo_name`) |
//! | `tags.az` | zone |
//! | `tags.canary` (`true`) | the tag [`CANARY_TAG`] (`canary`) |
//! | `tags.load_balancing_weight` (1 to 100) | weight |
//! | `tags.region`, `tags.instance_id`, any other tag | meta `lyft.<key>` (strings) |
//! | `HOST_TTL` | the lease ttl ([`Settings::host_ttl_ms`], 600 s by default) |
//! | `last_check_in` | `expires_at - ttl`: the last registration or heartbeat |
//!
//! Every live instance of a service is a lyft host when its url is an IPv4 address with a port
//! (`10.0.0.1:8080`, `http://10.0.0.1/`), whichever API registered it: [`Host::from_instance`]
//! maps it back (the revision falls back to the version, `instance_id` to the instance id, and
//! `service_repo_name` is `null` for hosts that never said). Writes through this dialect
//! (registration, deletion, weights) address version `0.0.0` only.

use alloc::{
    collections::BTreeMap,
    format,
    string::{String, ToString},
    vec::Vec,
};
use core::{fmt, net::Ipv4Addr, str::FromStr};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::{
    codec,
    error::Error,
    instance::{limits, Instance, InstanceKey, InstanceSpec, Millis},
    name::{InstanceId, ServiceName},
    version::Version,
};

/// The original's default `HOST_TTL`, in seconds.
pub const DEFAULT_HOST_TTL_S: u64 = 600;
/// The original's default `APPLICATION_ENV`, answered as `env`.
pub const DEFAULT_ENV: &str = "development";
/// The version every host registered through this dialect has.
pub const VERSION: &str = "0.0.0";
/// The meta key holding a host's `revision`.
pub const REVISION_META: &str = "revision";
/// The prefix of the meta keys holding lyft tags other than `az`, `canary` and
/// `load_balancing_weight` (`lyft.region`, `lyft.instance_id`, ...).
pub const META_PREFIX: &str = "lyft.";
/// The meta key holding a host's `service_repo_name`.
pub const REPO_META: &str = "lyft.service_repo_name";
/// The Vasco tag a `canary: true` host carries.
pub const CANARY_TAG: &str = "canary";
/// The largest `load_balancing_weight` (Envoy's v1 limit; Vasco's own weights go to 1000).
pub const MAX_LB_WEIGHT: u32 = 100;
/// The tags every registration must carry (the original refuses one without them).
pub const REQUIRED_TAGS: [&str; 3] = ["az", "instance_id", "region"];

/// The original's answer to tags that are not JSON.
pub const TAGS_NOT_JSON: &str = "Invalid json supplied in tags";
/// The original's answer to a weight update without a weight.
pub const WEIGHT_MISSING: &str = "Required parameter 'weight' is missing.";
/// The original's answer to a weight that is not an integer from 1 to 100.
pub const WEIGHT_INVALID: &str =
    "Invalid load_balancing_weight. Supply an integer between 1 and 100.";
/// The original's answer to a weight update for a host it does not have.
pub const HOST_NOT_FOUND: &str = "Host not found";

/// The dialect's settings, read from the Worker's variables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// How long a host stays listed after its last registration or heartbeat (ms): the lease
    /// ttl of every host registered through this dialect.
    pub host_ttl_ms: u64,
    /// What answers carry as `env`.
    pub env: String,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            host_ttl_ms: DEFAULT_HOST_TTL_S * 1000,
            env: DEFAULT_ENV.into(),
        }
    }
}

impl Settings {
    /// Reads the host TTL in whole seconds and the `env` name from the raw variable values.
    /// A TTL that is missing, not a whole number or 0 is the original's 600 s; one over Vasco's
    /// longest lease ([`limits::TTL_MAX_S`], an hour) is capped to it. A missing or blank `env`
    /// is [`DEFAULT_ENV`].
    pub fn from_vars(host_ttl_s: Option<&str>, env: Option<&str>) -> Self {
        let host_ttl_s = host_ttl_s
            .and_then(|v| v.trim().parse::<u64>().ok())
            .filter(|s| *s >= limits::TTL_MIN_S)
            .map_or(DEFAULT_HOST_TTL_S, |s| s.min(limits::TTL_MAX_S));
        let env = env
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .unwrap_or(DEFAULT_ENV);
        Self {
            host_ttl_ms: host_ttl_s * 1000,
            env: env.into(),
        }
    }
}

/// The body of a refusal, in the original's shapes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorBody {
    /// `{}`: how the original refuses a registration or deletion it finds invalid.
    Empty,
    /// `{"error": "<message>"}`.
    Message(String),
}

/// A request this dialect refuses: its status, its body, and the reason in plain words (sent
/// in a header even when the body is the original's bare `{}`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LyftError {
    /// The HTTP status: 400, or 404 for a weight update of an unknown host.
    pub status: u16,
    /// What the body says.
    pub body: ErrorBody,
    /// Why, for people.
    pub reason: String,
}

impl LyftError {
    /// A 400 `{}`, the original's answer to an invalid registration or deletion.
    pub fn refused(reason: impl Into<String>) -> Self {
        Self {
            status: 400,
            body: ErrorBody::Empty,
            reason: reason.into(),
        }
    }

    /// A 400 `{"error": message}`: the original's refusals that say why, and Vasco's own for
    /// what the original accepted but Vasco cannot store.
    pub fn bad_request(message: impl Into<String>) -> Self {
        let message = message.into();
        Self {
            status: 400,
            body: ErrorBody::Message(message.clone()),
            reason: message,
        }
    }

    /// The 404 `{"error": "Host not found"}` of a weight update for an unknown host.
    pub fn host_not_found() -> Self {
        Self {
            status: 404,
            body: ErrorBody::Message(HOST_NOT_FOUND.into()),
            reason: HOST_NOT_FOUND.into(),
        }
    }

    /// The JSON body.
    pub fn body_json(&self) -> String {
        match &self.body {
            ErrorBody::Empty => "{}".into(),
            ErrorBody::Message(message) => serde_json::json!({ "error": message }).to_string(),
        }
    }
}

impl fmt::Display for LyftError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.reason)
    }
}

/// How a request body is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFormat {
    /// `application/x-www-form-urlencoded`, as the original reads it.
    Form,
    /// A JSON object with the same fields (Vasco's addition).
    Json,
}

/// Which format a body is in: JSON when the `Content-Type` says so or the body starts with
/// `{` (so `curl -d '{...}'`, which labels its body a form, works too), a form otherwise.
/// Errors: `multipart/form-data`, which is not read (send the fields url-encoded or as JSON).
pub fn body_format(content_type: Option<&str>, body: &[u8]) -> Result<BodyFormat, LyftError> {
    let media = content_type
        .and_then(|c| c.split(';').next())
        .map(|m| m.trim().to_ascii_lowercase())
        .unwrap_or_default();
    if media == "application/json" || media.ends_with("+json") {
        return Ok(BodyFormat::Json);
    }
    if media.starts_with("multipart/") {
        return Err(LyftError::bad_request(
            "multipart bodies are not read: send the fields form-encoded \
             (application/x-www-form-urlencoded) or as a JSON object",
        ));
    }
    let first = body.iter().find(|b| !b.is_ascii_whitespace());
    Ok(if first == Some(&b'{') {
        BodyFormat::Json
    } else {
        BodyFormat::Form
    })
}

/// The fields of a request body, as sent: form values are strings, JSON values keep their
/// types. A field given twice in a form counts once, its first value (as Flask reads it).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Fields {
    json: bool,
    values: Map<String, Value>,
}

impl Fields {
    /// The fields of a form, from its decoded `(key, value)` pairs in order.
    pub fn from_pairs(pairs: impl IntoIterator<Item = (String, String)>) -> Self {
        let mut values = Map::new();
        for (key, value) in pairs {
            values.entry(key).or_insert(Value::String(value));
        }
        Self {
            json: false,
            values,
        }
    }

    /// The fields of a JSON body. Errors (400 `{"error"}`): not JSON, or not an object.
    pub fn from_json(body: &[u8]) -> Result<Self, LyftError> {
        let value: Value = serde_json::from_slice(body)
            .map_err(|e| LyftError::bad_request(format!("the body is not valid JSON: {e}")))?;
        match value {
            Value::Object(values) => Ok(Self { json: true, values }),
            _ => Err(LyftError::bad_request("the JSON body must be an object")),
        }
    }

    /// A field's value; JSON `null` counts as absent.
    fn get(&self, name: &str) -> Option<&Value> {
        self.values.get(name).filter(|v| !v.is_null())
    }

    /// A text field. In JSON it must be a string.
    fn text(&self, name: &str) -> Result<Option<&str>, LyftError> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::String(text)) => Ok(Some(text)),
            Some(_) => Err(LyftError::bad_request(format!("{name} must be a string"))),
        }
    }

    /// An integer field: form text of an optionally signed whole number (surrounding
    /// whitespace ignored, as Python's `int()` does), or a JSON number without a fraction.
    /// `Ok(None)` when absent or empty; `Err(())` when not an integer.
    fn integer(&self, name: &str) -> Result<Option<i64>, ()> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::String(text)) if !self.json => {
                let text = text.trim();
                if text.is_empty() {
                    return Ok(None);
                }
                let digits = text.strip_prefix(['+', '-']).unwrap_or(text);
                if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(());
                }
                // Out of i64's range is as wrong as any other out-of-range integer.
                Ok(Some(text.parse::<i64>().unwrap_or(i64::MAX)))
            }
            Some(Value::Number(n)) if self.json => match n.as_i64() {
                Some(i) => Ok(Some(i)),
                None => n
                    .as_f64()
                    .filter(|f| f.is_finite())
                    .map(|f| f as i64)
                    .filter(|i| *i as f64 == n.as_f64().unwrap_or(f64::NAN))
                    .map(Some)
                    .ok_or(()),
            },
            Some(_) => Err(()),
        }
    }

    /// A flag: absent, empty, `0`, `false`, `no` and `off` (any case) are false, as are JSON
    /// `false`, `0`, `""`, `[]` and `{}`; anything else is true.
    fn flag(&self, name: &str) -> bool {
        match self.get(name) {
            None => false,
            Some(Value::Bool(b)) => *b,
            Some(Value::String(text)) => {
                let text = text.trim().to_ascii_lowercase();
                !matches!(text.as_str(), "" | "0" | "false" | "no" | "off")
            }
            Some(Value::Number(n)) => n.as_f64() != Some(0.0),
            Some(Value::Array(items)) => !items.is_empty(),
            Some(Value::Object(map)) => !map.is_empty(),
            Some(Value::Null) => false,
        }
    }
}

/// Where a request came from, as its headers say.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClientAddress<'a> {
    /// `CF-Connecting-IP`: on Cloudflare's edge, the address Cloudflare accepted the connection
    /// from, set by Cloudflare (a client's own value is replaced).
    pub connecting_ip: Option<&'a str>,
    /// `X-Forwarded-For`: hops appended by proxies, any of which a client can write itself.
    pub forwarded_for: Option<&'a str>,
}

/// The address `auto_ip` registers, if any:
///
/// 1. `CF-Connecting-IP`, when it is a dotted IPv4 address that is neither loopback nor
///    `0.0.0.0`. On Cloudflare's edge Cloudflare sets it from the connection, so a client cannot
///    forge it. A loopback value comes from a local runtime (`wrangler dev` names its own
///    socket there), which is not a host's address, so the next rule applies.
/// 2. Otherwise the last `X-Forwarded-For` hop, only when it is inside `192.168.0.0/16`: the
///    original's rule for a registry behind one internal load balancer, which appends the
///    address it saw as the last hop. Earlier hops, and other ranges, are never taken.
pub fn auto_ip(client: &ClientAddress<'_>) -> Option<Ipv4Addr> {
    let connecting = client
        .connecting_ip
        .and_then(|v| Ipv4Addr::from_str(v.trim()).ok())
        .filter(|ip| !ip.is_loopback() && !ip.is_unspecified());
    if connecting.is_some() {
        return connecting;
    }
    let last = client.forwarded_for?.rsplit(',').next()?.trim();
    let ip = Ipv4Addr::from_str(last).ok()?;
    let [a, b, _, _] = ip.octets();
    (a == 192 && b == 168).then_some(ip)
}

/// A dotted IPv4 address as the original accepts it (`inet_pton`: four decimal octets of at
/// most 255, no leading zeros).
pub fn parse_ip(text: &str) -> Option<Ipv4Addr> {
    Ipv4Addr::from_str(text).ok()
}

/// A host's tags as Vasco keeps them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tags {
    /// `az`: the zone.
    pub az: Option<String>,
    /// `canary`.
    pub canary: Option<bool>,
    /// `load_balancing_weight`: the weight.
    pub load_balancing_weight: Option<u32>,
    /// Every other tag (`region`, `instance_id`, ...): meta `lyft.<key>`.
    pub other: BTreeMap<String, String>,
}

impl Tags {
    /// Reads a tags object. Errors (400 `{"error"}`, things the original stored but Vasco
    /// cannot): `az` or another tag that is not a string, `canary` that is not a boolean, a
    /// `load_balancing_weight` that is not an integer from 1 to 100, a tag named
    /// `service_repo_name` (its meta key holds the repo).
    pub fn from_json(tags: &Map<String, Value>) -> Result<Self, LyftError> {
        let mut out = Self::default();
        for (key, value) in tags {
            match (key.as_str(), value) {
                ("canary", Value::Bool(b)) => out.canary = Some(*b),
                ("canary", Value::Null) => {}
                ("canary", _) => {
                    return Err(LyftError::bad_request("tags.canary must be true or false"))
                }
                ("load_balancing_weight", value) => {
                    let weight = value
                        .as_u64()
                        .and_then(|w| u32::try_from(w).ok())
                        .filter(|w| (1..=MAX_LB_WEIGHT).contains(w));
                    match weight {
                        Some(weight) => out.load_balancing_weight = Some(weight),
                        None => {
                            return Err(LyftError::bad_request(format!(
                                "tags.load_balancing_weight must be an integer between 1 and \
                                 {MAX_LB_WEIGHT}"
                            )))
                        }
                    }
                }
                ("az", Value::String(az)) => out.az = Some(az.clone()),
                ("service_repo_name", _) => {
                    return Err(LyftError::bad_request(
                        "tags.service_repo_name is reserved: send service_repo_name as its own \
                         field",
                    ))
                }
                (key, Value::String(text)) => {
                    out.other.insert(key.into(), text.clone());
                }
                (key, _) => {
                    return Err(LyftError::bad_request(format!(
                        "tags.{key} must be a string (Vasco keeps tags other than canary and \
                         load_balancing_weight as text)"
                    )))
                }
            }
        }
        Ok(out)
    }

    /// The tags an instance carries, as this dialect sees them: the zone as `az`, the `canary`
    /// tag as `canary: true`, its weight, and its `lyft.*` meta (the repo excepted).
    pub fn of_instance(instance: &Instance) -> Self {
        Self {
            az: instance.zone.clone(),
            canary: instance
                .tags
                .iter()
                .any(|t| t == CANARY_TAG)
                .then_some(true),
            load_balancing_weight: Some(instance.weight),
            other: instance
                .meta
                .iter()
                .filter(|(k, _)| k.as_str() != REPO_META)
                .filter_map(|(k, v)| Some((k.strip_prefix(META_PREFIX)?.into(), v.clone())))
                .collect(),
        }
    }

    /// These tags updated by `newer`: what `newer` says wins, the rest stays (the original's
    /// `tags.update(new_tags)` on a heartbeat).
    pub fn merge(mut self, newer: Tags) -> Self {
        self.az = newer.az.or(self.az);
        self.canary = newer.canary.or(self.canary);
        self.load_balancing_weight = newer.load_balancing_weight.or(self.load_balancing_weight);
        self.other.extend(newer.other);
        self
    }

    /// The tags object of an answer. The defaults read back as absent: `canary` appears only
    /// when true and `load_balancing_weight` only when not 1 (capped to
    /// [`MAX_LB_WEIGHT`], as a weight set through Vasco's own API may be up to 1000).
    pub fn to_json(&self) -> Map<String, Value> {
        let mut out = Map::new();
        for (key, value) in &self.other {
            out.insert(key.clone(), Value::String(value.clone()));
        }
        if let Some(az) = &self.az {
            out.insert("az".into(), Value::String(az.clone()));
        }
        if self.canary == Some(true) {
            out.insert("canary".into(), Value::Bool(true));
        }
        if let Some(weight) = self.load_balancing_weight.filter(|w| *w != 1) {
            out.insert(
                "load_balancing_weight".into(),
                Value::from(weight.min(MAX_LB_WEIGHT)),
            );
        }
        out
    }
}

/// The key of host `ip` of `service`: `service@0.0.0/ip`.
pub fn host_key(service: &ServiceName, ip: Ipv4Addr) -> Result<InstanceKey, Error> {
    Ok(InstanceKey {
        service: service.clone(),
        version: Version::parse(VERSION)?,
        id: InstanceId::parse(&ip.to_string())?,
    })
}

/// The key of the host a path names (`DELETE /v1/registration/:service/:ip`,
/// `POST /v1/loadbalancing/:service/:ip`). Errors: 400 `{}` when `ip` is empty or not a dotted
/// IPv4 address.
pub fn path_key(service: &ServiceName, ip: &str) -> Result<InstanceKey, LyftError> {
    if ip.is_empty() {
        return Err(LyftError::refused(
            "the host's ip is missing: use /v1/registration/<service>/<ip>",
        ));
    }
    let ip = parse_ip(ip)
        .ok_or_else(|| LyftError::refused(format!("{ip:?} is not a dotted IPv4 address")))?;
    host_key(service, ip).map_err(|e| LyftError::bad_request(e.to_string()))
}

/// A valid registration: what one `POST /v1/registration/:service` says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registration {
    /// The host's address: the key, with the service.
    pub ip: Ipv4Addr,
    /// Where Envoy connects.
    pub port: u16,
    /// What the host runs.
    pub revision: String,
    /// The repo (empty when not given).
    pub service_repo_name: String,
    /// The tags sent (merged into the stored ones by [`Registration::to_spec`]).
    pub tags: Tags,
}

impl Registration {
    /// Validates a registration's fields, in the original's order. The ip is the `ip` field,
    /// or with `auto_ip` the address [`auto_ip`] finds in `client`.
    ///
    /// Errors: 400 `{"error": "Invalid json supplied in tags"}` for tags that are not JSON;
    /// 400 `{}` (the original's answer, with the reason in [`LyftError::reason`]) for a missing
    /// or invalid ip, a missing, non-integer or out-of-range (1 to 65535) port, a missing or
    /// empty revision, tags that are not an object or lack `az`, `instance_id` or `region`;
    /// 400 `{"error"}` for fields of the wrong JSON type and tags Vasco cannot keep
    /// ([`Tags::from_json`]).
    pub fn parse(fields: &Fields, client: &ClientAddress<'_>) -> Result<Self, LyftError> {
        let explicit = fields.text("ip")?.filter(|ip| !ip.is_empty());
        let wants_auto = fields.flag("auto_ip");
        let auto = if explicit.is_none() && wants_auto {
            auto_ip(client)
        } else {
            None
        };
        let tags = match fields.get("tags") {
            None => Value::Object(Map::new()),
            Some(Value::String(text)) => serde_json::from_str::<Value>(text)
                .map_err(|_| LyftError::bad_request(TAGS_NOT_JSON))?,
            Some(Value::Object(map)) if fields.json => Value::Object(map.clone()),
            Some(_) => {
                return Err(LyftError::bad_request(
                    "tags must be a JSON object (or its JSON text)",
                ))
            }
        };
        let ip_text =
            match (explicit, auto) {
                (Some(ip), _) => String::from(ip),
                (None, Some(ip)) => ip.to_string(),
                (None, None) if wants_auto => return Err(LyftError::refused(
                    "auto_ip found no address: CF-Connecting-IP is not a usable IPv4 address and \
                     the last X-Forwarded-For hop is not inside 192.168.0.0/16; send ip",
                )),
                (None, None) => {
                    return Err(LyftError::refused(
                        "ip is required (or auto_ip=true to take the caller's address)",
                    ))
                }
            };
        let port = match fields.integer("port") {
            Ok(Some(port)) => port,
            Ok(None) => return Err(LyftError::refused("port is required")),
            Err(()) => {
                return Err(LyftError::refused(
                    "port must be an integer from 1 to 65535",
                ))
            }
        };
        let revision = fields.text("revision")?.unwrap_or("");
        if revision.is_empty() {
            return Err(LyftError::refused("revision is required"));
        }
        let port = u16::try_from(port)
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| LyftError::refused("port must be an integer from 1 to 65535"))?;
        let ip = parse_ip(&ip_text).ok_or_else(|| {
            LyftError::refused(format!("ip {ip_text:?} is not a dotted IPv4 address"))
        })?;
        let Value::Object(tags) = tags else {
            return Err(LyftError::refused(
                "tags must be a JSON object with az, instance_id and region",
            ));
        };
        if let Some(missing) = REQUIRED_TAGS.iter().find(|t| !tags.contains_key(**t)) {
            return Err(LyftError::refused(format!(
                "tags must contain {missing} (az, instance_id and region are required)"
            )));
        }
        let service_repo_name = fields.text("service_repo_name")?.unwrap_or("").into();
        Ok(Self {
            ip,
            port,
            revision: revision.into(),
            service_repo_name,
            tags: Tags::from_json(&tags)?,
        })
    }

    /// The key this registration writes: `service@0.0.0/<ip>`.
    pub fn key(&self, service: &ServiceName) -> Result<InstanceKey, LyftError> {
        host_key(service, self.ip).map_err(|e| LyftError::bad_request(e.to_string()))
    }

    /// The spec to register, given the host's current record `previous` (a heartbeat): the
    /// tags merged into the stored ones ([`Tags::merge`]), so a weight set earlier stays unless
    /// this registration sets one, and the lease `host_ttl_ms`. What `previous` carries beyond
    /// this dialect (Vasco tags other than `canary`, meta outside `lyft.*` and `revision`) is
    /// kept. Errors (400 `{"error"}`): a zone (`az`) or meta Vasco refuses, more tags than its
    /// meta holds, or a record over the 1024-byte limit at `now`.
    pub fn to_spec(
        &self,
        service: &ServiceName,
        previous: Option<&Instance>,
        host_ttl_ms: u64,
        now: Millis,
    ) -> Result<InstanceSpec, LyftError> {
        let tags = match previous {
            Some(previous) => Tags::of_instance(previous).merge(self.tags.clone()),
            None => self.tags.clone(),
        };
        let mut vasco_tags: Vec<String> = previous
            .map(|p| {
                p.tags
                    .iter()
                    .filter(|t| *t != CANARY_TAG)
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        if tags.canary == Some(true) {
            vasco_tags.insert(0, CANARY_TAG.into());
        }
        let mut meta: BTreeMap<String, String> = previous
            .map(|p| {
                p.meta
                    .iter()
                    .filter(|(k, _)| !k.starts_with(META_PREFIX) && k.as_str() != REVISION_META)
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect()
            })
            .unwrap_or_default();
        meta.insert(REVISION_META.into(), self.revision.clone());
        meta.insert(REPO_META.into(), self.service_repo_name.clone());
        for (key, value) in &tags.other {
            meta.insert(format!("{META_PREFIX}{key}"), value.clone());
        }
        if meta.len() > limits::META_ENTRIES {
            return Err(LyftError::bad_request(format!(
                "too many tags: Vasco keeps at most {} entries of meta, and revision, \
                 service_repo_name and each tag other than az, canary and \
                 load_balancing_weight take one each ({} here)",
                limits::META_ENTRIES,
                meta.len()
            )));
        }
        let spec = InstanceSpec {
            url: format!("{}:{}", self.ip, self.port),
            ttl_ms: host_ttl_ms,
            tags: vasco_tags,
            meta,
            weight: tags.load_balancing_weight.unwrap_or(1),
            zone: tags.az,
            health: Default::default(),
        };
        spec.validate().map_err(cannot_store)?;
        let key = self.key(service)?;
        codec::encode_record(&Instance::lease(key, spec.clone(), now, None))
            .map_err(cannot_store)?;
        Ok(spec)
    }
}

/// A core refusal of a lyft registration, said in lyft's words.
fn cannot_store(err: Error) -> LyftError {
    let message = match &err {
        Error::Invalid {
            field: "zone",
            reason,
        } => format!("tags.az {reason}"),
        Error::Invalid {
            field: "meta",
            reason,
        } => format!(
            "Vasco cannot store these tags, revision or service_repo_name: {reason} (tags are \
             kept as meta lyft.<key>)"
        ),
        Error::TooLarge { size, limit, .. } => format!(
            "this host would take {size} bytes stored, over Vasco's limit of {limit} bytes per \
             record: shorten its revision, service_repo_name or tags"
        ),
        _ => format!("Vasco cannot store this host: {err}"),
    };
    LyftError::bad_request(message)
}

/// The spec of `instance` with its weight set to `weight` (`POST /v1/loadbalancing`).
pub fn reweighted(instance: &Instance, weight: u32) -> InstanceSpec {
    InstanceSpec {
        weight,
        ..InstanceSpec::of_instance(instance)
    }
}

/// Whether `instance` is a host this dialect writes (version [`VERSION`]).
pub fn is_lyft_host(instance: &Instance) -> bool {
    instance.version.to_string() == VERSION
}

/// The `load_balancing_weight` of a weight update, in the original's terms. Errors (400
/// `{"error"}`): [`WEIGHT_MISSING`] when absent (or empty, or `0` in JSON),
/// [`WEIGHT_INVALID`] when not an integer from 1 to 100 (in JSON: not a number).
pub fn parse_weight(fields: &Fields) -> Result<u32, LyftError> {
    match fields.integer("load_balancing_weight") {
        Ok(None) => Err(LyftError::bad_request(WEIGHT_MISSING)),
        Ok(Some(0)) if fields.json => Err(LyftError::bad_request(WEIGHT_MISSING)),
        Ok(Some(weight)) => u32::try_from(weight)
            .ok()
            .filter(|w| (1..=MAX_LB_WEIGHT).contains(w))
            .ok_or_else(|| LyftError::bad_request(WEIGHT_INVALID)),
        Err(()) => Err(LyftError::bad_request(WEIGHT_INVALID)),
    }
}

/// One host as `GET /v1/registration/...` lists it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Host {
    /// The service.
    pub service: String,
    /// Its IPv4 address.
    pub ip_address: String,
    /// Its repo: `""` when registered through this dialect without one, `null` when it was
    /// registered another way and never said.
    pub service_repo_name: Option<String>,
    /// Where Envoy connects.
    pub port: u16,
    /// What it runs (the version when registered another way without a `revision` meta).
    pub revision: String,
    /// When it last registered or beat, UTC, as Python prints a datetime ([`python_datetime`]).
    pub last_check_in: String,
    /// `az`, `region`, `instance_id`, `canary`, `load_balancing_weight` and other tags.
    pub tags: Map<String, Value>,
}

impl Host {
    /// `instance` as a lyft host, or `None` when its url is not an IPv4 address with a port
    /// (Envoy's v1 SDS connects to `ip_address:port` only): `host:port` or an `http(s)://` URL
    /// (port 80 or 443 when the URL has none).
    pub fn from_instance(instance: &Instance) -> Option<Self> {
        let (ip, port) = ip_port_of_url(&instance.url)?;
        let mut tags = Tags::of_instance(instance).to_json();
        tags.entry("instance_id")
            .or_insert_with(|| Value::String(instance.id.as_str().into()));
        Some(Self {
            service: instance.service.as_str().into(),
            ip_address: ip.to_string(),
            service_repo_name: instance.meta.get(REPO_META).cloned(),
            port,
            revision: instance
                .meta
                .get(REVISION_META)
                .cloned()
                .unwrap_or_else(|| instance.version.to_string()),
            last_check_in: python_datetime(instance.expires_at.saturating_sub(instance.ttl_ms)),
            tags,
        })
    }
}

/// The hosts among `instances` (those [`Host::from_instance`] can map), in their order.
pub fn hosts<'a>(instances: impl IntoIterator<Item = &'a Instance>) -> Vec<Host> {
    instances
        .into_iter()
        .filter_map(Host::from_instance)
        .collect()
}

/// Whether `instance` was registered with `service_repo_name` `repo`.
pub fn in_repo(instance: &Instance, repo: &str) -> bool {
    instance.meta.get(REPO_META).is_some_and(|r| r == repo)
}

/// The answer of `GET /v1/registration/:service`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HostsResponse {
    /// The service asked for.
    pub service: String,
    /// [`Settings::env`].
    pub env: String,
    /// Its live hosts.
    pub hosts: Vec<Host>,
}

/// The answer of `GET /v1/registration/repo/:service_repo_name`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RepoHostsResponse {
    /// The repo asked for.
    pub service_repo_name: String,
    /// [`Settings::env`].
    pub env: String,
    /// The live hosts of every service registered with that repo.
    pub hosts: Vec<Host>,
}

/// The IPv4 address and port of a url, if it names one.
fn ip_port_of_url(url: &str) -> Option<(Ipv4Addr, u16)> {
    let (rest, default_port) = if let Some(rest) = url.strip_prefix("http://") {
        (rest, Some(80))
    } else if let Some(rest) = url.strip_prefix("https://") {
        (rest, Some(443))
    } else {
        (url, None)
    };
    let authority = rest.split(['/', '?', '#']).next()?;
    let authority = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    let (host, port) = match authority.rsplit_once(':') {
        Some((host, port)) => (host, port.parse::<u16>().ok().filter(|p| *p > 0)?),
        None => (authority, default_port?),
    };
    Some((parse_ip(host)?, port))
}

/// `ms` (since the Unix epoch) as UTC text in the shape of Python's `str(datetime)`:
/// `YYYY-MM-DD HH:MM:SS.ffffff`. Python leaves out `.ffffff` when the microseconds are 0; this
/// always writes them, so one `strptime("%Y-%m-%d %H:%M:%S.%f")` reads every value
/// (`datetime.fromisoformat` reads both).
pub fn python_datetime(ms: Millis) -> String {
    let seconds = ms / 1000;
    let micros = (ms % 1000) * 1000;
    let (year, month, day) = civil_from_days((seconds / 86_400) as i64);
    let of_day = seconds % 86_400;
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}.{micros:06}",
        of_day / 3600,
        of_day % 3600 / 60,
        of_day % 60
    )
}

/// The proleptic Gregorian date `(year, month, day)` of day `days` since 1970-01-01.
///
/// Howard Hinnant's `civil_from_days`, the inverse of his `days_from_civil`, from
/// "chrono-Compatible Low-Level Date Algorithms"
/// (<https://howardhinnant.github.io/date_algorithms.html>): shift the epoch to 0000-03-01 so
/// leap days end each year, split into 400-year eras of 146,097 days, then the year of the era,
/// the day of the year and the month from a March-based 153-day cycle of five months.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097; // [0, 146096]
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365]
    let mp = (5 * doy + 2) / 153; // [0, 11], March = 0
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32; // [1, 31]
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32; // [1, 12]
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;
    use serde_json::json;

    const T0: Millis = 1_700_000_000_123;
    const TTL: u64 = DEFAULT_HOST_TTL_S * 1000;

    fn service() -> ServiceName {
        ServiceName::parse("myservice").unwrap()
    }

    fn form(pairs: &[(&str, &str)]) -> Fields {
        Fields::from_pairs(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())))
    }

    const TAGS: &str = r#"{"az":"foo", "instance_id":"bar", "region":"baz"}"#;

    fn valid(ip: &str) -> Vec<(&'static str, String)> {
        vec![
            ("ip", ip.into()),
            ("service_repo_name", "bar".into()),
            ("port", "1000".into()),
            ("revision", "bjkc7y8cebyyuide2uincbyu".into()),
            ("tags", TAGS.into()),
        ]
    }

    fn fields(pairs: &[(&'static str, String)]) -> Fields {
        Fields::from_pairs(pairs.iter().map(|(k, v)| (k.to_string(), v.clone())))
    }

    fn no_client() -> ClientAddress<'static> {
        ClientAddress::default()
    }

    fn parse(pairs: &[(&'static str, String)]) -> Result<Registration, LyftError> {
        Registration::parse(&fields(pairs), &no_client())
    }

    fn without(field: &str) -> Vec<(&'static str, String)> {
        valid("10.10.10.10")
            .into_iter()
            .filter(|(k, _)| *k != field)
            .collect()
    }

    fn with(field: &'static str, value: &str) -> Vec<(&'static str, String)> {
        let mut pairs = without(field);
        pairs.push((field, value.into()));
        pairs
    }

    fn lease(reg: &Registration, previous: Option<&Instance>, now: Millis) -> Instance {
        let spec = reg.to_spec(&service(), previous, TTL, now).unwrap();
        Instance::lease(reg.key(&service()).unwrap(), spec, now, previous)
    }

    #[test]
    fn a_valid_form_maps_onto_an_instance_and_back() {
        let reg = parse(&valid("10.10.10.10")).unwrap();
        let instance = lease(&reg, None, T0);
        assert_eq!(instance.key().to_string(), "myservice@0.0.0/10.10.10.10");
        assert_eq!(instance.url, "10.10.10.10:1000");
        assert_eq!(instance.zone.as_deref(), Some("foo"));
        assert_eq!(instance.weight, 1);
        assert!(instance.tags.is_empty());
        assert_eq!(instance.ttl_ms, 600_000);
        let meta: Vec<(&str, &str)> = instance
            .meta
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(
            meta,
            [
                ("lyft.instance_id", "bar"),
                ("lyft.region", "baz"),
                ("lyft.service_repo_name", "bar"),
                ("revision", "bjkc7y8cebyyuide2uincbyu"),
            ]
        );
        let host = Host::from_instance(&instance).unwrap();
        assert_eq!(
            serde_json::to_value(&host).unwrap(),
            json!({
                "service": "myservice", "ip_address": "10.10.10.10", "service_repo_name": "bar",
                "port": 1000, "revision": "bjkc7y8cebyyuide2uincbyu",
                "last_check_in": "2023-11-14 22:13:20.123000",
                "tags": {"az": "foo", "instance_id": "bar", "region": "baz"},
            })
        );
    }

    #[test]
    fn canary_and_weight_round_trip() {
        let tags = r#"{"az":"us-east-1a","instance_id":"i-1","region":"us-east-1","canary":true,"load_balancing_weight":40,"team":"maps"}"#;
        let reg = parse(&with("tags", tags)).unwrap();
        let instance = lease(&reg, None, T0);
        assert_eq!(instance.tags, ["canary"]);
        assert_eq!(instance.weight, 40);
        assert_eq!(
            instance.meta.get("lyft.team").map(String::as_str),
            Some("maps")
        );
        let host = Host::from_instance(&instance).unwrap();
        let sent: Value = serde_json::from_str(tags).unwrap();
        assert_eq!(Value::Object(host.tags), sent);
    }

    #[test]
    fn all_params_zero_is_refused_with_an_empty_body() {
        let pairs: Vec<(&'static str, String)> = [
            "ip",
            "auto_ip",
            "port",
            "revision",
            "tags",
            "service_repo_name",
        ]
        .into_iter()
        .map(|k| (k, "0".to_string()))
        .collect();
        let err = parse(&pairs).unwrap_err();
        assert_eq!((err.status, err.body_json().as_str()), (400, "{}"));
    }

    #[test]
    fn refusals_in_the_originals_shapes() {
        let empty = |pairs: Vec<(&'static str, String)>, what: &str| {
            let err = parse(&pairs).unwrap_err();
            assert_eq!(err.status, 400, "{what}");
            assert_eq!(err.body, ErrorBody::Empty, "{what}: {err}");
            assert!(!err.reason.is_empty());
        };
        empty(without("ip"), "neither ip nor auto_ip");
        for ip in [
            "invalid.ip.address",
            "555.555.555.555",
            "1.2.3",
            "1.2.3.4.5",
            "01.2.3.4",
            "bar",
        ] {
            empty(with("ip", ip), ip);
        }
        for port in ["-1", "0", "test", "1.5", "65536", "99999999999999999999"] {
            empty(with("port", port), port);
        }
        empty(without("port"), "no port");
        empty(without("revision"), "no revision");
        empty(with("revision", ""), "empty revision");
        for tag in REQUIRED_TAGS {
            let mut tags: Map<String, Value> = serde_json::from_str(TAGS).unwrap();
            tags.remove(tag);
            tags.insert(format!("invalid_{tag}"), json!("x"));
            empty(with("tags", &Value::Object(tags).to_string()), tag);
        }
        empty(with("tags", "[1]"), "tags not an object");
        empty(without("tags"), "no tags (the original's default {})");
        let err = parse(&with("tags", "{nope")).unwrap_err();
        assert_eq!(
            err.body_json(),
            r#"{"error":"Invalid json supplied in tags"}"#
        );
    }

    #[test]
    fn service_repo_name_is_optional() {
        let reg = parse(&without("service_repo_name")).unwrap();
        assert_eq!(reg.service_repo_name, "");
        let host = Host::from_instance(&lease(&reg, None, T0)).unwrap();
        assert_eq!(host.service_repo_name.as_deref(), Some(""));
    }

    #[test]
    fn what_vasco_cannot_store_is_a_400_that_says_why() {
        for (tags, says) in [
            (
                r#"{"az":"us east","instance_id":"i","region":"r"}"#,
                "tags.az",
            ),
            (r#"{"az":5,"instance_id":"i","region":"r"}"#, "tags.az"),
            (
                r#"{"az":"a","instance_id":7,"region":"r"}"#,
                "tags.instance_id",
            ),
            (
                r#"{"az":"a","instance_id":"i","region":"r","canary":"yes"}"#,
                "canary",
            ),
            (
                r#"{"az":"a","instance_id":"i","region":"r","load_balancing_weight":101}"#,
                "load_balancing_weight",
            ),
            (
                r#"{"az":"a","instance_id":"i","region":"r","service_repo_name":"x"}"#,
                "reserved",
            ),
        ] {
            let err = parse(&with("tags", tags))
                .and_then(|reg| reg.to_spec(&service(), None, TTL, T0))
                .unwrap_err();
            assert_eq!(err.status, 400, "{tags}");
            assert!(matches!(err.body, ErrorBody::Message(_)), "{tags}");
            assert!(err.reason.contains(says), "{tags}: {err}");
        }
        let many: Map<String, Value> = (0..20)
            .map(|i| (format!("t{i}"), json!("v")))
            .chain(REQUIRED_TAGS.iter().map(|t| (t.to_string(), json!("x"))))
            .collect();
        let reg = parse(&with("tags", &Value::Object(many).to_string())).unwrap();
        let err = reg.to_spec(&service(), None, TTL, T0).unwrap_err();
        assert!(err.reason.contains("too many tags"), "{err}");
        let big = "r".repeat(250);
        let mut tags: Map<String, Value> = serde_json::from_str(TAGS).unwrap();
        for i in 0..4 {
            tags.insert(format!("k{i}"), json!(big));
        }
        let reg = parse(&with("tags", &Value::Object(tags).to_string())).unwrap();
        let err = reg.to_spec(&service(), None, TTL, T0).unwrap_err();
        assert!(err.reason.contains("1024 bytes"), "{err}");
    }

    #[test]
    fn a_heartbeat_merges_tags_and_keeps_the_weight() {
        let first = parse(&with(
            "tags",
            r#"{"az":"a","instance_id":"i","region":"r","canary":true,"extra":"x"}"#,
        ))
        .unwrap();
        let stored = lease(&first, None, T0);
        // Weight 10 set through the load-balancing route.
        let weighted =
            Instance::lease(stored.key(), reweighted(&stored, 10), T0 + 5, Some(&stored));
        let beat = parse(&with(
            "tags",
            r#"{"az":"b","instance_id":"i","region":"r"}"#,
        ))
        .unwrap();
        let after = lease(&beat, Some(&weighted), T0 + 60_000);
        assert_eq!(after.weight, 10, "the weight survives re-registration");
        assert_eq!(after.zone.as_deref(), Some("b"), "what the beat says wins");
        assert_eq!(after.tags, ["canary"], "tags the beat does not name stay");
        assert_eq!(after.meta.get("lyft.extra").map(String::as_str), Some("x"));
        assert_eq!(after.registered_at, T0);
        assert_eq!(after.expires_at, T0 + 60_000 + TTL);
        let off = parse(&with(
            "tags",
            r#"{"az":"b","instance_id":"i","region":"r","canary":false,"load_balancing_weight":50}"#,
        ))
        .unwrap();
        let after = lease(&off, Some(&after), T0 + 120_000);
        assert!(after.tags.is_empty());
        assert_eq!(after.weight, 50);
    }

    #[test]
    fn a_heartbeat_keeps_what_another_api_added() {
        let reg = parse(&valid("10.0.0.1")).unwrap();
        let mut stored = lease(&reg, None, T0);
        stored.tags.push("blue".into());
        stored.meta.insert("owner".into(), "team-a".into());
        let after = lease(&reg, Some(&stored), T0 + 1);
        assert_eq!(after.tags, ["blue"]);
        assert_eq!(after.meta.get("owner").map(String::as_str), Some("team-a"));
    }

    #[test]
    fn auto_ip_trusts_cf_connecting_ip_then_the_last_private_hop() {
        let client = |cf: Option<&'static str>, xff: Option<&'static str>| ClientAddress {
            connecting_ip: cf,
            forwarded_for: xff,
        };
        let ip = |s: &str| Some(parse_ip(s).unwrap());
        assert_eq!(
            auto_ip(&client(None, Some("192.168.216.186"))),
            ip("192.168.216.186")
        );
        assert_eq!(
            auto_ip(&client(None, Some("192.168.0.0,192.168.216.186"))),
            ip("192.168.216.186"),
            "two hops: the last"
        );
        assert_eq!(
            auto_ip(&client(None, Some("192.168.216.186, 10.0.0.1"))),
            None,
            "an earlier hop is never taken"
        );
        for out in [
            "0.168.216.186",
            "192.169.216.186",
            "192.168.256.186",
            "192.168.216.256",
            "",
            "fe80::1",
        ] {
            assert_eq!(auto_ip(&client(None, Some(out))), None, "{out}");
        }
        assert_eq!(
            auto_ip(&client(Some("203.0.113.7"), Some("192.168.1.1"))),
            ip("203.0.113.7"),
            "CF-Connecting-IP wins"
        );
        for local in ["127.0.0.1", "0.0.0.0", "::1", "2001:db8::1"] {
            assert_eq!(
                auto_ip(&client(Some(local), Some("192.168.1.1"))),
                ip("192.168.1.1"),
                "{local}"
            );
        }
    }

    #[test]
    fn registration_takes_the_explicit_ip_over_auto_ip() {
        let client = ClientAddress {
            connecting_ip: None,
            forwarded_for: Some("192.168.216.186"),
        };
        let mut pairs = valid("10.10.10.10");
        pairs.push(("auto_ip", "true".into()));
        let reg = Registration::parse(&fields(&pairs), &client).unwrap();
        assert_eq!(reg.ip.to_string(), "10.10.10.10");
        let mut pairs = without("ip");
        pairs.push(("auto_ip", "True".into()));
        let reg = Registration::parse(&fields(&pairs), &client).unwrap();
        assert_eq!(reg.ip.to_string(), "192.168.216.186");
        let err = Registration::parse(&fields(&without("ip")), &client).unwrap_err();
        assert_eq!(
            err.body,
            ErrorBody::Empty,
            "without auto_ip the header is not read"
        );
        for off in ["false", "0", "", "off"] {
            let mut pairs = without("ip");
            pairs.push(("auto_ip", off.into()));
            assert!(
                Registration::parse(&fields(&pairs), &client).is_err(),
                "{off}"
            );
        }
    }

    #[test]
    fn json_bodies_read_the_same_fields_with_types() {
        let body = json!({
            "ip": "10.0.0.9", "port": 8080, "revision": "abc",
            "tags": {"az": "a", "instance_id": "i", "region": "r"},
        });
        let reg = Registration::parse(
            &Fields::from_json(body.to_string().as_bytes()).unwrap(),
            &no_client(),
        )
        .unwrap();
        assert_eq!((reg.port, reg.service_repo_name.as_str()), (8080, ""));
        let as_text = json!({"ip": "10.0.0.9", "port": 8080.0, "revision": "abc", "tags": TAGS});
        assert!(Registration::parse(
            &Fields::from_json(as_text.to_string().as_bytes()).unwrap(),
            &no_client()
        )
        .is_ok());
        for bad in [
            json!({"ip": "10.0.0.9", "port": "8080", "revision": "abc", "tags": TAGS}),
            json!({"ip": "10.0.0.9", "port": 80.5, "revision": "abc", "tags": TAGS}),
            json!({"ip": 5, "port": 80, "revision": "abc", "tags": TAGS}),
            json!({"ip": "10.0.0.9", "port": 80, "revision": 1, "tags": TAGS}),
            json!({"ip": "10.0.0.9", "port": 80, "revision": "a", "tags": 5}),
            json!({"ip": "10.0.0.9", "port": 80, "revision": "a", "tags": TAGS, "service_repo_name": 1}),
        ] {
            let fields = Fields::from_json(bad.to_string().as_bytes()).unwrap();
            assert_eq!(
                Registration::parse(&fields, &no_client())
                    .unwrap_err()
                    .status,
                400,
                "{bad}"
            );
        }
        for bad in ["[]", "5", "{", ""] {
            assert!(Fields::from_json(bad.as_bytes()).is_err(), "{bad}");
        }
    }

    #[test]
    fn body_formats() {
        use BodyFormat::*;
        let f = |ct: Option<&str>, body: &str| body_format(ct, body.as_bytes());
        assert_eq!(
            f(Some("application/x-www-form-urlencoded"), "ip=1"),
            Ok(Form)
        );
        assert_eq!(f(None, "ip=1"), Ok(Form));
        assert_eq!(f(Some("Application/JSON; charset=utf-8"), "x"), Ok(Json));
        assert_eq!(
            f(Some("application/x-www-form-urlencoded"), " {\"ip\":1}"),
            Ok(Json)
        );
        assert_eq!(f(Some("application/vnd.api+json"), ""), Ok(Json));
        assert!(f(Some("multipart/form-data; boundary=x"), "--x").is_err());
    }

    #[test]
    fn weights_in_the_originals_words() {
        let weight = |v: &str| parse_weight(&form(&[("load_balancing_weight", v)]));
        assert_eq!(weight("10"), Ok(10));
        assert_eq!(weight(" 100 "), Ok(100));
        for bad in ["not_an_integer", "9001", "0", "-5", "1.5"] {
            let err = weight(bad).unwrap_err();
            assert_eq!(
                err.body_json(),
                json!({"error": WEIGHT_INVALID}).to_string(),
                "{bad}"
            );
        }
        for missing in [form(&[]), form(&[("load_balancing_weight", "")])] {
            assert_eq!(
                parse_weight(&missing).unwrap_err().body,
                ErrorBody::Message(WEIGHT_MISSING.into())
            );
        }
        let json_weight = |v: Value| {
            parse_weight(
                &Fields::from_json(json!({"load_balancing_weight": v}).to_string().as_bytes())
                    .unwrap(),
            )
        };
        assert_eq!(json_weight(json!(50)), Ok(50));
        assert!(json_weight(json!("50")).is_err());
        assert!(json_weight(json!(101)).is_err());
    }

    #[test]
    fn hosts_registered_through_other_apis_map_back() {
        let key = InstanceKey::parse("api", "2.1.0", "a1").unwrap();
        let mut spec = InstanceSpec::new("http://10.0.0.7/base").unwrap();
        spec.zone = Some("eu-1".into());
        spec.weight = 500;
        spec.tags = vec!["canary".into(), "blue".into()];
        spec.meta.insert("k".into(), "v".into());
        let instance = Instance::lease(key, spec, T0, None);
        let host = Host::from_instance(&instance).unwrap();
        assert_eq!(
            serde_json::to_value(&host).unwrap(),
            json!({
                "service": "api", "ip_address": "10.0.0.7", "service_repo_name": null,
                "port": 80, "revision": "2.1.0", "last_check_in": "2023-11-14 22:13:20.123000",
                "tags": {"az": "eu-1", "canary": true, "load_balancing_weight": 100, "instance_id": "a1"},
            })
        );
        for url in [
            "api.internal:80",
            "[::1]:80",
            "http://api.internal",
            "10.0.0.1",
        ] {
            let instance = Instance::lease(
                InstanceKey::parse("api", "1.0.0", "x").unwrap(),
                InstanceSpec {
                    url: url.into(),
                    ..InstanceSpec::new("h:1").unwrap()
                },
                T0,
                None,
            );
            assert_eq!(Host::from_instance(&instance), None, "{url}");
        }
        assert_eq!(
            ip_port_of_url("https://u@10.1.2.3/x"),
            Some((parse_ip("10.1.2.3").unwrap(), 443))
        );
        assert_eq!(ip_port_of_url("10.1.2.3:0"), None);
    }

    /// lyft's expiry cases on the lease rule: a host seen a year ago, or 11 minutes ago at the
    /// 600 s TTL, is not live; one seen 9 minutes ago is.
    #[test]
    fn hosts_silent_longer_than_the_ttl_are_not_live() {
        let reg = parse(&valid("10.10.10.10")).unwrap();
        let now = T0;
        let year_ago = lease(&reg, None, now - 365 * 86_400_000);
        let eleven_minutes = lease(&reg, None, now - 11 * 60_000);
        let nine_minutes = lease(&reg, None, now - 9 * 60_000);
        assert!(!year_ago.is_live(now));
        assert!(!eleven_minutes.is_live(now));
        assert!(nine_minutes.is_live(now));
        let live: Vec<Host> = hosts(crate::query::live_all(
            [&year_ago, &eleven_minutes, &nine_minutes],
            now,
        ));
        assert_eq!(live.len(), 1);
        assert_eq!(live[0].last_check_in, python_datetime(now - 9 * 60_000));
    }

    #[test]
    fn settings_from_vars() {
        assert_eq!(Settings::from_vars(None, None), Settings::default());
        assert_eq!(Settings::default().host_ttl_ms, 600_000);
        let s = Settings::from_vars(Some(" 30 "), Some("production"));
        assert_eq!((s.host_ttl_ms, s.env.as_str()), (30_000, "production"));
        for bad in ["", "0", "-1", "ten", "1.5"] {
            assert_eq!(
                Settings::from_vars(Some(bad), None).host_ttl_ms,
                600_000,
                "{bad}"
            );
        }
        assert_eq!(
            Settings::from_vars(Some("86400"), Some(" ")).host_ttl_ms,
            3_600_000
        );
        assert_eq!(Settings::from_vars(None, Some(" ")).env, DEFAULT_ENV);
    }

    #[test]
    fn path_keys() {
        let key = path_key(&service(), "10.0.0.1").unwrap();
        assert_eq!(key.to_string(), "myservice@0.0.0/10.0.0.1");
        for bad in ["", "bar", "1.1.1", "256.1.1.1"] {
            assert_eq!(
                path_key(&service(), bad).unwrap_err().body,
                ErrorBody::Empty,
                "{bad}"
            );
        }
    }

    /// Values computed with CPython 3: `str(datetime(1970, 1, 1) + timedelta(milliseconds=ms))`,
    /// with the `.ffffff` Python omits for whole seconds written out.
    #[test]
    fn python_datetime_text() {
        for (ms, text) in [
            (0, "1970-01-01 00:00:00.000000"),
            (1_700_000_000_123, "2023-11-14 22:13:20.123000"),
            (951_782_400_000, "2000-02-29 00:00:00.000000"),
            (4_102_444_799_999, "2099-12-31 23:59:59.999000"),
            (1_709_164_800_500, "2024-02-29 00:00:00.500000"),
            (68_256_000_000, "1972-03-01 00:00:00.000000"),
        ] {
            assert_eq!(python_datetime(ms), text, "{ms}");
        }
    }

    /// `civil_from_days` inverts Hinnant's `days_from_civil` on every day of 1970 to 2400,
    /// and days follow each other.
    #[test]
    fn civil_from_days_inverts_days_from_civil() {
        fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
            let y = if m <= 2 { y - 1 } else { y };
            let era = y.div_euclid(400);
            let yoe = y - era * 400;
            let m = i64::from(m);
            let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
            let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
            era * 146_097 + doe - 719_468
        }
        let mut previous = (1969, 12, 31);
        for days in 0..157_000 {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
            let next_day = (y, m, d) > previous && (1..=12).contains(&m) && (1..=31).contains(&d);
            assert!(next_day, "{days}: {previous:?} then {:?}", (y, m, d));
            previous = (y, m, d);
        }
        assert_eq!(previous, (2399, 11, 7)); // CPython: date(1970, 1, 1) + timedelta(156999)
    }
}
