//! Consul's HTTP API (v1) on Vasco's registry: request bodies read the way Consul's agent reads
//! them, answers shaped the way Consul's clients decode them, and the one mapping between
//! Consul's service model and Vasco's, decided here and nowhere else.
//!
//! Source: Consul's HTTP API documentation (`/agent/service/register`, `/health/service`,
//! `/catalog/*`, blocking queries) and the clients' code as summarised in the project's
//! compatibility checklist (node-consul 2.0.1, py-consul 1.8.0, Prometheus 2.42).
//!
//! # The mapping
//!
//! | Consul | Vasco |
//! |---|---|
//! | `Name` | the service name, lower-cased; it must then be a valid Vasco name (`a-z 0-9 - _ .`, at most 63), else 400 |
//! | `ID` (default: `Name`) | the instance id (`A-Z a-z 0-9 - _ . ~`, at most 128), else 400 |
//! | `Meta.version` | the instance's version when it is a semver version, else `0.0.0` |
//! | `Address` + `Port` | the url `address:port` (`[v6]:port`); both required (there is no node address to default to) |
//! | `Tags`, `Meta` | tags and meta, within Vasco's limits (16 tags of 64 characters; 16 meta entries, keys 64, values 256) |
//! | `Weights.Passing` | the weight (1 to 1000); `Weights.Warning` is not kept (answers say 1) |
//! | a TTL check | the lease: passing until the last pass + `TTL`, then critical, then removed `DeregisterCriticalServiceAfter` later |
//! | no check | an instance with no lease (`ttl` 0): listed as passing until deregistered, as Consul keeps it |
//! | HTTP, TCP, gRPC, script… checks | refused on the edge with a 400 that says to use a TTL check or `vasco agent`; an agent runs HTTP and TCP checks itself |
//! | check `Status`, pass / warn / fail | check results on the instance's health ([`crate::health`]); `SuccessBeforePassing`, `FailuresBeforeWarning`, `FailuresBeforeCritical` damp them |
//! | maintenance mode | the `maintenance` status; answers add Consul's `_service_maintenance:<id>` critical check |
//! | datacenter, node | one datacenter, [`DATACENTER`], and one node, [`NODE_NAME`] |
//!
//! Limits that differ from Consul's: one check per service; a TTL plus its
//! `DeregisterCriticalServiceAfter` of at most one hour (longer removals are shortened to fit,
//! and without it a critical instance is removed one hour after its TTL check lapsed, where
//! Consul keeps it forever); names and ids limited as above.

use alloc::{
    collections::BTreeMap,
    format,
    string::{String, ToString},
    vec,
    vec::Vec,
};

use serde::Serialize;
use serde_json::{json, Value};

use crate::{
    blocking::parse_duration_ms,
    error::{Error, Result},
    health::{CheckState, Damping, Health, HealthUpdate, Status, MAX_DAMPING, REASON_LEN},
    instance::{limits, Instance, InstanceKey, Millis},
    name::{InstanceId, ServiceName},
    version::Version,
};

use super::native;

/// The one datacenter Vasco answers as.
pub const DATACENTER: &str = "dc1";
/// The one node every instance is listed on.
pub const NODE_NAME: &str = "vasco";
/// That node's address (answers need one; instances carry their own).
pub const NODE_ADDRESS: &str = "127.0.0.1";
/// The Consul version `/v1/agent/self` reports (the API level the layer follows).
pub const CONSUL_VERSION: &str = "1.15.0";
/// The longest a TTL check plus its removal delay may run: one hour, Vasco's longest lease.
pub const MAX_LEASE_MS: u64 = limits::TTL_MAX_S * 1000;

/// Parses a boolean query value as Go's `strconv.ParseBool` does, with a bare flag (`?passing`)
/// meaning true. Errors: `Invalid` naming `field`.
pub fn parse_bool(field: &'static str, value: &str) -> Result<bool> {
    match value {
        "" | "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(false),
        other => Err(Error::invalid(
            field,
            format!("{other:?} is not a boolean (use true or false)"),
        )),
    }
}

/// The registry's service for a Consul service name: lower-cased, then a valid Vasco name.
pub fn service_name(name: &str) -> Result<ServiceName> {
    ServiceName::parse(&name.to_ascii_lowercase()).map_err(|_| {
        Error::invalid(
            "name",
            format!(
                "Consul service name {name:?} has no Vasco equivalent: after lower-casing, a \
                 name must be 1 to 63 of a-z, 0-9, '-', '_' and '.'"
            ),
        )
    })
}

/// The key of a JSON object as Consul's decoders match it: case and `_` do not matter
/// (node-consul sends `ID`, py-consul `service_id`-style snake case, Go `DeregisterCriticalServiceAfter`).
fn norm(key: &str) -> String {
    key.chars()
        .filter(|c| *c != '_' && *c != '-')
        .flat_map(char::to_lowercase)
        .collect()
}

/// A JSON object read with [`norm`]alised keys.
struct Fields<'a>(BTreeMap<String, &'a Value>);

impl<'a> Fields<'a> {
    fn of(value: &'a Value, what: &'static str) -> Result<Self> {
        let object = value
            .as_object()
            .ok_or_else(|| Error::invalid(what, "must be a JSON object"))?;
        Ok(Self(object.iter().map(|(k, v)| (norm(k), v)).collect()))
    }

    /// The value of `key` (already normalised), `null` counting as absent.
    fn get(&self, key: &str) -> Option<&'a Value> {
        self.0.get(key).copied().filter(|v| !v.is_null())
    }

    fn string(&self, key: &str, field: &'static str) -> Result<Option<String>> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(Error::invalid(field, format!("{key} must be a string"))),
        }
    }

    fn duration_ms(&self, key: &str, field: &'static str) -> Result<Option<u64>> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) if s.is_empty() => Ok(None),
            Some(Value::String(s)) => parse_duration_ms(s).map(Some).map_err(|_| {
                Error::invalid(
                    field,
                    format!("{key} {s:?} is not a duration (use e.g. 10s, 500ms, 1m30s)"),
                )
            }),
            // A Go time.Duration in JSON: nanoseconds.
            Some(Value::Number(n)) => n
                .as_u64()
                .map(|ns| Some(ns / 1_000_000))
                .ok_or_else(|| Error::invalid(field, format!("{key} must be a duration"))),
            Some(_) => Err(Error::invalid(field, format!("{key} must be a duration"))),
        }
    }

    fn count(&self, key: &str) -> Result<Option<u32>> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Number(n)) => match n.as_u64() {
                Some(0) => Ok(None),
                Some(v) if v <= u64::from(MAX_DAMPING) => Ok(Some(v as u32)),
                _ => Err(Error::invalid(
                    "check",
                    format!("{key} must be an integer from 0 to {MAX_DAMPING}"),
                )),
            },
            Some(_) => Err(Error::invalid("check", format!("{key} must be an integer"))),
        }
    }
}

/// What runs a service's checks: the edge registry (only TTL checks, which the service drives)
/// or a local agent (HTTP and TCP checks too, run by the agent itself).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Runner {
    /// The Worker: it cannot reach private addresses, so only TTL checks.
    Edge,
    /// `vasco agent` on the service's host, which renews the lease every `lease_ms / 3`.
    Agent {
        /// The lease the agent holds for services whose checks it runs.
        lease_ms: u64,
    },
}

/// What a check does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckKind {
    /// The service reports (`/v1/agent/check/pass|warn|fail|update`) within `ttl_ms`.
    Ttl {
        /// The TTL (ms).
        ttl_ms: u64,
    },
    /// An HTTP request every `interval_ms`: 2xx passing, 429 warning, else critical.
    Http {
        /// The URL.
        url: String,
        /// The method (default GET).
        method: String,
        /// Request headers (`{"name": ["value"]}`).
        headers: BTreeMap<String, Vec<String>>,
        /// Request body.
        body: String,
        /// Between probes (ms).
        interval_ms: u64,
        /// Probe timeout (ms; default 10 s).
        timeout_ms: u64,
        /// Skip TLS verification.
        tls_skip_verify: bool,
    },
    /// A TCP connect to `address` every `interval_ms`.
    Tcp {
        /// `host:port`.
        address: String,
        /// Between probes (ms).
        interval_ms: u64,
        /// Connect timeout (ms; default 10 s).
        timeout_ms: u64,
    },
}

/// One check of a registration, as Consul's agent reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckDefinition {
    /// `CheckID`; default `service:<service id>`.
    pub id: String,
    /// `Name`; default `Service '<name>' check`.
    pub name: String,
    /// What it does.
    pub kind: CheckKind,
    /// The initial status (`Status`; default critical, as in Consul).
    pub status: Status,
    /// `Notes`.
    pub notes: Option<String>,
    /// `DeregisterCriticalServiceAfter` (ms).
    pub remove_after_ms: Option<u64>,
    /// `SuccessBeforePassing`, `FailuresBeforeWarning`, `FailuresBeforeCritical`.
    pub damping: Damping,
}

impl CheckDefinition {
    /// Reads one check object of service `service_id` (`name` for the default check name).
    /// Errors: `Invalid` naming `check`.
    pub fn parse(value: &Value, service_id: &str, service_name: &str) -> Result<Self> {
        let f = Fields::of(value, "check")?;
        let interval_ms = f.duration_ms("interval", "check")?;
        let timeout_ms = f.duration_ms("timeout", "check")?.unwrap_or(10_000);
        let needs_interval = |kind: &str| {
            interval_ms
                .filter(|ms| *ms > 0)
                .ok_or_else(|| Error::invalid("check", format!("a {kind} check needs an Interval")))
        };
        let kind = if let Some(ttl_ms) = f.duration_ms("ttl", "check")? {
            if !(1_000..=MAX_LEASE_MS).contains(&ttl_ms) {
                return Err(Error::invalid(
                    "check",
                    format!("TTL must be from 1s to {}s", MAX_LEASE_MS / 1000),
                ));
            }
            CheckKind::Ttl { ttl_ms }
        } else if let Some(url) = f.string("http", "check")? {
            let headers = match f.get("header") {
                None => BTreeMap::new(),
                Some(Value::Object(map)) => map
                    .iter()
                    .map(|(k, v)| {
                        let values = match v {
                            Value::String(s) => vec![s.clone()],
                            Value::Array(items) => items
                                .iter()
                                .map(|i| i.as_str().map(str::to_string))
                                .collect::<Option<Vec<_>>>()
                                .ok_or_else(|| {
                                    Error::invalid("check", "Header values must be strings")
                                })?,
                            _ => {
                                return Err(Error::invalid(
                                    "check",
                                    "Header values must be strings",
                                ))
                            }
                        };
                        Ok((k.clone(), values))
                    })
                    .collect::<Result<_>>()?,
                Some(_) => return Err(Error::invalid("check", "Header must be an object")),
            };
            CheckKind::Http {
                url,
                method: f.string("method", "check")?.unwrap_or_else(|| "GET".into()),
                headers,
                body: f.string("body", "check")?.unwrap_or_default(),
                interval_ms: needs_interval("HTTP")?,
                timeout_ms,
                tls_skip_verify: matches!(f.get("tlsskipverify"), Some(Value::Bool(true))),
            }
        } else if let Some(address) = f.string("tcp", "check")? {
            CheckKind::Tcp {
                address,
                interval_ms: needs_interval("TCP")?,
                timeout_ms,
            }
        } else {
            let kind = [
                "grpc",
                "h2ping",
                "udp",
                "args",
                "script",
                "dockercontainerid",
                "aliasservice",
                "aliasnode",
                "osservice",
            ]
            .into_iter()
            .find(|k| f.get(k).is_some());
            return Err(Error::invalid(
                "check",
                match kind {
                    Some(kind) => format!(
                        "{kind} checks are not supported; use a TTL check, or an HTTP or TCP \
                         check through vasco agent"
                    ),
                    None => "a check needs TTL, HTTP or TCP".into(),
                },
            ));
        };
        let status = match f.string("status", "check")? {
            None => Status::Critical,
            Some(s) if s.is_empty() => Status::Critical,
            Some(s) => match s.as_str() {
                "passing" => Status::Passing,
                "warning" => Status::Warning,
                "critical" => Status::Critical,
                other => {
                    return Err(Error::invalid(
                        "check",
                        format!("Status {other:?} must be passing, warning or critical"),
                    ))
                }
            },
        };
        let critical = f.count("failuresbeforecritical")?;
        let damping = Damping {
            success_before_passing: f.count("successbeforepassing")?.unwrap_or(1),
            failures_before_critical: critical.unwrap_or(1),
            failures_before_warning: f.count("failuresbeforewarning")?.or(critical).unwrap_or(1),
        };
        Ok(Self {
            id: f
                .string("checkid", "check")?
                .or(f.string("id", "check")?)
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| format!("service:{service_id}")),
            name: f
                .string("name", "check")?
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| format!("Service '{service_name}' check")),
            kind,
            status,
            notes: f.string("notes", "check")?,
            remove_after_ms: f.duration_ms("deregistercriticalserviceafter", "check")?,
            damping,
        })
    }
}

/// A `PUT /v1/agent/service/register` body, read and checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceRegistration {
    /// Consul's `ID` (the instance id).
    pub id: String,
    /// Consul's `Name` as sent.
    pub name: String,
    /// The instance it becomes.
    pub key: InstanceKey,
    /// `Address`.
    pub address: String,
    /// `Port`.
    pub port: u16,
    /// `Tags`.
    pub tags: Vec<String>,
    /// `Meta`.
    pub meta: BTreeMap<String, String>,
    /// `Weights.Passing` (default 1).
    pub weight: u32,
    /// Its check, if any.
    pub check: Option<CheckDefinition>,
}

impl ServiceRegistration {
    /// Reads a registration body (JSON, any key case, with or without a content type).
    /// `default_address` fills a missing `Address` (an agent's own address; the edge has none).
    /// Errors: `Invalid` naming the field, with Consul's field names in the message.
    pub fn parse(body: &[u8], default_address: Option<&str>) -> Result<Self> {
        let value: Value = serde_json::from_slice(body)
            .map_err(|e| Error::invalid("body", format!("is not valid JSON: {e}")))?;
        let f = Fields::of(&value, "body")?;
        let name = f
            .string("name", "name")?
            .filter(|n| !n.is_empty())
            .ok_or_else(|| Error::invalid("name", "Missing service name"))?;
        let service = service_name(&name)?;
        let id = f
            .string("id", "id")?
            .filter(|i| !i.is_empty())
            .unwrap_or_else(|| name.clone());
        let instance_id = InstanceId::parse(&id).map_err(|_| {
            Error::invalid(
                "id",
                format!(
                    "service ID {id:?} has no Vasco equivalent: use 1 to 128 of A-Z, a-z, 0-9, \
                     '-', '_', '.', '~'"
                ),
            )
        })?;
        let tags = match f.get("tags") {
            None => Vec::new(),
            Some(Value::Array(items)) => items
                .iter()
                .map(|t| {
                    t.as_str()
                        .map(str::to_string)
                        .ok_or_else(|| Error::invalid("tags", "Tags must be strings"))
                })
                .collect::<Result<_>>()?,
            Some(_) => return Err(Error::invalid("tags", "Tags must be an array of strings")),
        };
        let meta = match f.get("meta") {
            None => BTreeMap::new(),
            Some(Value::Object(map)) => map
                .iter()
                .map(|(k, v)| {
                    v.as_str()
                        .map(|v| (k.clone(), v.to_string()))
                        .ok_or_else(|| Error::invalid("meta", "Meta values must be strings"))
                })
                .collect::<Result<_>>()?,
            Some(_) => return Err(Error::invalid("meta", "Meta must be an object of strings")),
        };
        let version = meta
            .get("version")
            .and_then(|v| Version::parse(v).ok())
            .unwrap_or_else(|| Version::parse("0.0.0").expect("0.0.0 is a version"));
        let address = f
            .string("address", "address")?
            .filter(|a| !a.is_empty())
            .or_else(|| default_address.map(str::to_string))
            .ok_or_else(|| {
                Error::invalid(
                    "address",
                    "Address is required: the edge registry has no node address to use instead",
                )
            })?;
        let port = match f.get("port") {
            Some(Value::Number(n)) => n
                .as_u64()
                .and_then(|p| u16::try_from(p).ok())
                .filter(|p| *p > 0),
            _ => None,
        }
        .ok_or_else(|| Error::invalid("port", "Port must be an integer from 1 to 65535"))?;
        let weight = match f.get("weights") {
            None => 1,
            Some(weights) => {
                let w = Fields::of(weights, "weights")?;
                match w.get("passing") {
                    None => 1,
                    Some(Value::Number(n)) => n
                        .as_u64()
                        .and_then(|v| u32::try_from(v).ok())
                        .filter(|v| (limits::WEIGHT_MIN..=limits::WEIGHT_MAX).contains(v))
                        .ok_or_else(|| {
                            Error::invalid(
                                "weight",
                                format!(
                                    "Weights.Passing must be from {} to {}",
                                    limits::WEIGHT_MIN,
                                    limits::WEIGHT_MAX
                                ),
                            )
                        })?,
                    Some(_) => {
                        return Err(Error::invalid(
                            "weight",
                            "Weights.Passing must be an integer",
                        ))
                    }
                }
            }
        };
        let mut checks = Vec::new();
        if let Some(check) = f.get("check") {
            checks.push(check);
        }
        match f.get("checks") {
            None => {}
            Some(Value::Array(items)) => checks.extend(items.iter()),
            Some(_) => return Err(Error::invalid("check", "Checks must be an array")),
        }
        if checks.len() > 1 {
            return Err(Error::invalid(
                "check",
                "Vasco keeps one health check per service instance; register one",
            ));
        }
        let check = checks
            .first()
            .map(|c| CheckDefinition::parse(c, &id, &name))
            .transpose()?;
        Ok(Self {
            key: InstanceKey {
                service,
                version,
                id: instance_id,
            },
            id,
            name,
            address,
            port,
            tags,
            meta,
            weight,
            check,
        })
    }

    /// The url the instance is reached at.
    pub fn url(&self) -> String {
        if self.address.contains(':') && !self.address.starts_with('[') {
            format!("[{}]:{}", self.address, self.port)
        } else {
            format!("{}:{}", self.address, self.port)
        }
    }

    /// The registration as the registry's own body (`PUT /v1/services/...` JSON; see
    /// [`crate::InstanceSpec::from_json`]). Without a check, the edge registers an instance
    /// with no lease (`persistent`) and an agent one with its own lease. The check's status
    /// is sent as `check.initial`: a
    /// new instance starts with it, a re-registration keeps the current health (as Consul
    /// keeps a check's status across re-registration). Errors: `Invalid` for a check `runner`
    /// cannot run.
    pub fn native_body(&self, runner: Runner) -> Result<Value> {
        let (lease_ms, check) = match (&self.check, runner) {
            (None, Runner::Edge) => (0, None),
            // An agent holds the lease of every service it registers, checked or not, so that
            // its services leave with it (as a Consul node's services do when it fails).
            (None, Runner::Agent { lease_ms }) => (lease_ms, None),
            (Some(check), _) => {
                let lease_ms = match (&check.kind, runner) {
                    (CheckKind::Ttl { ttl_ms }, _) => {
                        let remove_after = check.remove_after_ms.unwrap_or(MAX_LEASE_MS);
                        (ttl_ms + remove_after).min(MAX_LEASE_MS)
                    }
                    (_, Runner::Agent { lease_ms }) => lease_ms,
                    (CheckKind::Http { .. } | CheckKind::Tcp { .. }, Runner::Edge) => {
                        return Err(Error::invalid(
                            "check",
                            "the edge registry cannot run HTTP or TCP checks (a Worker cannot \
                             reach private addresses): use a TTL check and call \
                             /v1/agent/check/pass/<check id>, or register through `vasco agent` \
                             on the service's host, which runs HTTP and TCP checks",
                        ))
                    }
                };
                let ttl = match check.kind {
                    CheckKind::Ttl { ttl_ms } => Some(native::seconds(ttl_ms)),
                    _ => None,
                };
                let check = native::Check {
                    id: Some(check.id.clone()),
                    name: Some(check.name.clone()),
                    ttl,
                    initial: Some(check.status),
                    success_before_passing: Some(check.damping.success_before_passing),
                    failures_before_warning: Some(check.damping.failures_before_warning),
                    failures_before_critical: Some(check.damping.failures_before_critical),
                    ..native::Check::default()
                };
                (lease_ms, Some(check))
            }
        };
        let body = native::Registration {
            url: self.url(),
            ttl: (lease_ms != 0).then(|| native::seconds(lease_ms)),
            persistent: (lease_ms == 0).then_some(true),
            tags: Some(self.tags.clone()),
            meta: Some(self.meta.clone()),
            weight: Some(self.weight.into()),
            zone: None,
            status: None,
            reason: None,
            by: None,
            check,
        };
        // (It cannot fail: every key is a string.)
        Ok(serde_json::to_value(body).unwrap_or_default())
    }
}

/// The native status-endpoint body for `PUT /v1/agent/check/<verb>/:id?note=`: `pass`,
/// `warn`, `fail`, or `update` with `{"Status", "Output"}`. Errors: `Invalid` for an unknown
/// verb or status.
pub fn check_update_body(verb: &str, note: Option<&str>, update: Option<&[u8]>) -> Result<Value> {
    let (status, note) = match verb {
        "pass" => ("passing", note.map(str::to_string)),
        "warn" => ("warning", note.map(str::to_string)),
        "fail" => ("critical", note.map(str::to_string)),
        "update" => {
            let value: Value = serde_json::from_slice(update.unwrap_or(b"{}"))
                .map_err(|e| Error::invalid("body", format!("is not valid JSON: {e}")))?;
            let f = Fields::of(&value, "body")?;
            let status = match f.string("status", "status")?.as_deref() {
                Some("passing") => "passing",
                Some("warning") => "warning",
                Some("critical") => "critical",
                other => {
                    return Err(Error::invalid(
                        "status",
                        format!("Status {other:?} must be passing, warning or critical"),
                    ))
                }
            };
            (status, f.string("output", "body")?)
        }
        other => {
            return Err(Error::invalid(
                "check",
                format!("unknown check verb {other:?}"),
            ))
        }
    };
    let mut check = json!({ "status": status });
    if let Some(note) = note.filter(|n| !n.is_empty()) {
        // The registry keeps notes of up to 256 characters; Consul's output can be longer.
        let note: String = note.chars().take(crate::health::REASON_LEN).collect();
        check["note"] = json!(note);
    }
    Ok(json!({ "check": check, "by": "consul" }))
}

/// The native status body for `PUT /v1/agent/service/maintenance/:id?enable=&reason=`.
pub fn maintenance_body(enable: bool, reason: Option<&str>) -> Value {
    if enable {
        let reason = reason.filter(|r| !r.is_empty()).unwrap_or(MAINTENANCE_NOTE);
        let reason: String = reason.chars().take(crate::health::REASON_LEN).collect();
        json!({ "status": "maintenance", "reason": reason, "by": "consul" })
    } else {
        json!({ "maintenance": false, "by": "consul" })
    }
}

/// Consul's note for maintenance mode without a reason.
pub const MAINTENANCE_NOTE: &str = "Maintenance mode is enabled for this service, but no reason was provided. This is a default message.";

/// Where an instance is reached, as Consul's `Address` and `Port`: from `host:port`, or from
/// an http(s) URL (its port, else 80/443).
pub fn address_port(url: &str) -> (String, u16) {
    let (rest, default_port) = if let Some(rest) = url.strip_prefix("http://") {
        (rest, 80)
    } else if let Some(rest) = url.strip_prefix("https://") {
        (rest, 443)
    } else {
        (url, 0)
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let authority = authority.rsplit_once('@').map_or(authority, |(_, a)| a);
    if let Some(v6) = authority.strip_prefix('[') {
        if let Some((host, port)) = v6.split_once(']') {
            let port = port.strip_prefix(':').and_then(|p| p.parse().ok());
            return (host.to_string(), port.unwrap_or(default_port));
        }
    }
    match authority.rsplit_once(':') {
        Some((host, port)) if port.parse::<u16>().is_ok() => {
            (host.to_string(), port.parse().unwrap_or(default_port))
        }
        _ => (authority.to_string(), default_port),
    }
}

/// The status of an HTTP check's answer, as Consul's agent reads it: any 2xx is passing,
/// 429 Too Many Requests is warning, anything else (and no answer at all) is critical.
pub fn http_check_status(status: u16) -> Status {
    match status {
        200..=299 => Status::Passing,
        429 => Status::Warning,
        _ => Status::Critical,
    }
}

/// A check's output as a note the registry accepts: control characters (the newlines of an
/// HTTP body) become spaces, and it is cut to [`REASON_LEN`] characters.
pub fn check_note(output: &str) -> String {
    output
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(REASON_LEN)
        .collect()
}

/// Who an agent's check results say set the status.
pub const AGENT_BY: &str = "agent";

/// What an agent does after a check result ([`CheckRun::report`]).
#[derive(Debug, Clone, PartialEq)]
pub struct CheckStep {
    /// The status body to send to the registry (`{"check": {"status", "note"}, "by"}`), or
    /// `None` when the registry already holds what this result leads to.
    pub send: Option<Value>,
    /// Whether the check has been critical for its `DeregisterCriticalServiceAfter`: the
    /// agent deregisters the service.
    pub reap: bool,
}

/// An agent's record of one HTTP or TCP check it runs: the damped check status, computed
/// from each result with the same rules the registry applies to them ([`Health::apply`]),
/// when it turned critical (for `DeregisterCriticalServiceAfter`), and the check state the
/// registry last confirmed, so that a result which changes nothing there is not sent.
///
/// A result is skipped only when both the registry's confirmed state and the agent's equal
/// the state before it and the result leaves that state as it is (counters counted up to
/// their thresholds: beyond them they change nothing); every other result is sent, so the
/// registry's damping sees every result that matters.
///
/// `DeregisterCriticalServiceAfter` is honoured as given, checked at each result: Consul
/// raises values under a minute to one minute and reaps every 30 s; an agent removes a
/// service at the first result at least that long after its check turned critical. A check
/// that starts critical (Consul's default `Status`) counts from its registration.
///
/// ```
/// use vasco_core::health::Status;
/// use vasco_core::wire::consul::{CheckRun, ServiceRegistration};
///
/// let body = br#"{"Name":"web","Address":"10.0.0.1","Port":80,"Check":{"HTTP":"http://10.0.0.1/health",
///     "Interval":"1s","DeregisterCriticalServiceAfter":"3s"}}"#;
/// let check = ServiceRegistration::parse(body, None).unwrap().check.unwrap();
/// let mut run = CheckRun::new(&check, 0); // starts critical
/// assert!(run.report(Status::Passing, Some("200 OK"), 1_000).send.is_some());
/// assert_eq!(run.status(), Status::Passing);
/// assert!(!run.report(Status::Critical, None, 2_000).reap);
/// assert!(run.report(Status::Critical, None, 5_000).reap); // critical for 3 s
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckRun {
    health: Health,
    remove_after_ms: Option<u64>,
    critical_since: Option<Millis>,
    confirmed: Option<(Status, u32, u32)>,
}

impl CheckRun {
    /// The record of `check`, registered at `now`: its initial status, its damping.
    pub fn new(check: &CheckDefinition, now: Millis) -> Self {
        let mut health = Health::default();
        health.check.damping = check.damping;
        health.check.status = check.status;
        health.status = check.status;
        Self {
            health,
            remove_after_ms: check.remove_after_ms,
            critical_since: (check.status == Status::Critical).then_some(now),
            confirmed: None,
        }
    }

    /// The damped check status.
    pub fn status(&self) -> Status {
        self.health.check.status
    }

    /// The check state as far as damping can tell states apart: the status and the counters,
    /// each counted up to the threshold beyond which it changes nothing.
    fn essential(check: &CheckState) -> (Status, u32, u32) {
        let d = check.damping;
        (
            check.status,
            check.successes.min(d.success_before_passing),
            check
                .failures
                .min(d.failures_before_warning.max(d.failures_before_critical)),
        )
    }

    /// Takes one result (`passing`, `warning` or `critical`, with the check's output) at
    /// `now`. Errors: none; a `maintenance` result counts as critical.
    pub fn report(&mut self, result: Status, output: Option<&str>, now: Millis) -> CheckStep {
        let result = if result == Status::Maintenance {
            Status::Critical
        } else {
            result
        };
        let note = output.map(check_note).filter(|n| !n.is_empty());
        let before = Self::essential(&self.health.check);
        self.health.apply(
            &HealthUpdate::Check {
                status: result,
                note: note.clone(),
                by: Some(AGENT_BY.into()),
            },
            now,
        );
        let after = Self::essential(&self.health.check);
        if self.health.check.status == Status::Critical {
            self.critical_since.get_or_insert(now);
        } else {
            self.critical_since = None;
        }
        let send = (self.confirmed != Some(before) || after != before).then(|| {
            // Until the registry answers, its state is not known.
            self.confirmed = None;
            let mut check = json!({ "status": result.name() });
            if let Some(note) = note {
                check["note"] = json!(note);
            }
            json!({ "check": check, "by": AGENT_BY })
        });
        CheckStep {
            send,
            reap: self.reap_due(now),
        }
    }

    /// Records the registry's health of the instance, as its last answer carried it.
    pub fn confirm(&mut self, health: &Health) {
        self.confirmed = Some(Self::essential(&health.check));
    }

    /// Forgets what the registry holds (its answer was lost, or the instance is being
    /// registered again): the next result is sent whatever it is.
    pub fn unconfirm(&mut self) {
        self.confirmed = None;
    }

    /// Whether the check has been critical for its `DeregisterCriticalServiceAfter` at `now`.
    pub fn reap_due(&self, now: Millis) -> bool {
        match (self.critical_since, self.remove_after_ms) {
            (Some(since), Some(after)) => now.saturating_sub(since) >= after,
            _ => false,
        }
    }

    /// A registration body (from [`ServiceRegistration::native_body`]) that starts a new
    /// instance in this check's current status, so the registry and the agent agree after a
    /// re-registration (a live instance keeps its own health).
    pub fn registration_body(&self, body: &Value) -> Value {
        let mut body = body.clone();
        if let Some(check) = body.get_mut("check").and_then(Value::as_object_mut) {
            check.insert("initial".into(), json!(self.status().name()));
        }
        body
    }
}

/// `Weights` in answers.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Weights {
    /// The instance's weight.
    pub passing: u32,
    /// Always 1 (not kept).
    pub warning: u32,
}

/// A service as `/v1/agent/services` and `/v1/health/service` answer it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct AgentService {
    /// The instance id.
    #[serde(rename = "ID")]
    pub id: String,
    /// The service name.
    pub service: String,
    /// Tags (never null).
    pub tags: Vec<String>,
    /// Meta.
    pub meta: BTreeMap<String, String>,
    /// Port.
    pub port: u16,
    /// Address.
    pub address: String,
    /// Weights.
    pub weights: Weights,
    /// Always false.
    pub enable_tag_override: bool,
    /// [`DATACENTER`].
    pub datacenter: String,
    /// The service's change index.
    pub create_index: u64,
    /// The service's change index.
    pub modify_index: u64,
}

impl AgentService {
    /// `instance` as Consul lists it; `index` is its service's change index.
    pub fn of(instance: &Instance, index: u64) -> Self {
        let (address, port) = address_port(&instance.url);
        Self {
            id: instance.id.as_str().to_string(),
            service: instance.service.as_str().to_string(),
            tags: instance.tags.clone(),
            meta: instance.meta.clone(),
            port,
            address,
            weights: Weights {
                passing: instance.weight,
                warning: 1,
            },
            enable_tag_override: false,
            datacenter: DATACENTER.into(),
            create_index: index,
            modify_index: index,
        }
    }
}

/// A health check as Consul answers it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct HealthCheck {
    /// [`NODE_NAME`].
    pub node: String,
    /// `service:<id>` or the registered `CheckID`.
    #[serde(rename = "CheckID")]
    pub check_id: String,
    /// The check's name.
    pub name: String,
    /// `passing`, `warning` or `critical`.
    pub status: String,
    /// Notes.
    pub notes: String,
    /// The last result's note.
    pub output: String,
    /// The instance id.
    #[serde(rename = "ServiceID")]
    pub service_id: String,
    /// The service name.
    pub service_name: String,
    /// The instance's tags.
    pub service_tags: Vec<String>,
    /// `ttl` for TTL checks, `maintenance` for the maintenance check, else empty.
    #[serde(rename = "Type")]
    pub kind: String,
    /// The service's change index.
    pub create_index: u64,
    /// The service's change index.
    pub modify_index: u64,
}

/// The checks Consul would list for `instance`: its service check (status from the check
/// state), plus `_service_maintenance:<id>` (critical) while it is in maintenance.
pub fn checks_of(instance: &Instance, index: u64) -> Vec<HealthCheck> {
    let id = instance.id.as_str();
    let check = &instance.health.check;
    let base =
        |check_id: String, name: String, status: Status, output: String, kind: &str| HealthCheck {
            node: NODE_NAME.into(),
            check_id,
            name,
            status: status.name().into(),
            notes: String::new(),
            output,
            service_id: id.into(),
            service_name: instance.service.as_str().into(),
            service_tags: instance.tags.clone(),
            kind: kind.into(),
            create_index: index,
            modify_index: index,
        };
    let mut checks = vec![base(
        check.id.clone().unwrap_or_else(|| format!("service:{id}")),
        check
            .name
            .clone()
            .unwrap_or_else(|| format!("Service '{}' check", instance.service)),
        // The check state is passing, warning or critical; maintenance is a second check.
        if check.status == Status::Maintenance {
            Status::Critical
        } else {
            check.status
        },
        check.note.clone().unwrap_or_default(),
        if check.ttl_ms.is_some() { "ttl" } else { "" },
    )];
    if let Some(reason) = &instance.health.maintenance {
        checks.push(base(
            format!("_service_maintenance:{id}"),
            "Service Maintenance Mode".into(),
            Status::Critical,
            if reason.is_empty() {
                MAINTENANCE_NOTE.into()
            } else {
                reason.clone()
            },
            "maintenance",
        ));
    }
    checks
}

/// The node every instance is listed on.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Node {
    /// Empty.
    #[serde(rename = "ID")]
    pub id: String,
    /// [`NODE_NAME`].
    pub node: String,
    /// [`NODE_ADDRESS`].
    pub address: String,
    /// [`DATACENTER`].
    pub datacenter: String,
    /// `lan` and `wan`: the node address (strings, as Go decodes them).
    pub tagged_addresses: BTreeMap<String, String>,
    /// Empty.
    pub meta: BTreeMap<String, String>,
}

impl Node {
    /// The one node.
    pub fn the() -> Self {
        Self {
            id: String::new(),
            node: NODE_NAME.into(),
            address: NODE_ADDRESS.into(),
            datacenter: DATACENTER.into(),
            tagged_addresses: [("lan", NODE_ADDRESS), ("wan", NODE_ADDRESS)]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            meta: BTreeMap::new(),
        }
    }
}

/// One entry of `/v1/health/service/:service`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ServiceEntry {
    /// The node.
    pub node: Node,
    /// The service instance.
    pub service: AgentService,
    /// Its checks.
    pub checks: Vec<HealthCheck>,
}

impl ServiceEntry {
    /// `instance`'s entry.
    pub fn of(instance: &Instance, index: u64) -> Self {
        Self {
            node: Node::the(),
            service: AgentService::of(instance, index),
            checks: checks_of(instance, index),
        }
    }
}

/// One entry of `/v1/catalog/service/:service` (flat, as Consul's catalog answers).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct CatalogService {
    /// Empty.
    #[serde(rename = "ID")]
    pub id: String,
    /// [`NODE_NAME`].
    pub node: String,
    /// [`NODE_ADDRESS`].
    pub address: String,
    /// [`DATACENTER`].
    pub datacenter: String,
    /// The node's tagged addresses.
    pub tagged_addresses: BTreeMap<String, String>,
    /// Empty.
    pub node_meta: BTreeMap<String, String>,
    /// The instance id.
    #[serde(rename = "ServiceID")]
    pub service_id: String,
    /// The service name.
    pub service_name: String,
    /// Its tags.
    pub service_tags: Vec<String>,
    /// Its address.
    pub service_address: String,
    /// Its port.
    pub service_port: u16,
    /// Its meta.
    pub service_meta: BTreeMap<String, String>,
    /// Its weights.
    pub service_weights: Weights,
    /// Always false.
    pub service_enable_tag_override: bool,
    /// The service's change index.
    pub create_index: u64,
    /// The service's change index.
    pub modify_index: u64,
}

impl CatalogService {
    /// `instance`'s catalog entry.
    pub fn of(instance: &Instance, index: u64) -> Self {
        let node = Node::the();
        let service = AgentService::of(instance, index);
        Self {
            id: node.id,
            node: node.node,
            address: node.address,
            datacenter: node.datacenter,
            tagged_addresses: node.tagged_addresses,
            node_meta: node.meta,
            service_id: service.id,
            service_name: service.service,
            service_tags: service.tags,
            service_address: service.address,
            service_port: service.port,
            service_meta: service.meta,
            service_weights: service.weights,
            service_enable_tag_override: false,
            create_index: index,
            modify_index: index,
        }
    }
}

/// Whether `instance` passes Consul's `?passing` filter: every check passing, that is, the
/// instance's status is passing.
pub fn is_passing(instance: &Instance) -> bool {
    instance.health.status == Status::Passing
}

/// Whether `instance` carries every tag of `tags` (repeated `?tag=` means all of them).
pub fn has_tags(instance: &Instance, tags: &[String]) -> bool {
    tags.iter().all(|t| instance.tags.contains(t))
}

/// `/v1/agent/self`: every top-level value an object (Go decodes a map of maps).
pub fn agent_self() -> Value {
    json!({
        "Config": {
            "Datacenter": DATACENTER,
            "NodeName": NODE_NAME,
            "NodeID": "",
            "Server": true,
            "Version": CONSUL_VERSION,
        },
        "Member": { "Name": NODE_NAME, "Addr": NODE_ADDRESS, "Port": 8301, "Status": 1 },
        "Meta": {},
        "Stats": {},
    })
}

/// How long a Consul blocking query may be held: Consul allows 10 minutes; Vasco holds at most
/// its own cap (a shorter answer with the same index is legal, and clients ask again).
pub fn blocking_wait_cap_ms() -> Millis {
    crate::blocking::MAX_WAIT_MS
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;
    use crate::InstanceSpec;

    fn node_consul_body() -> &'static str {
        r#"{"Name":"Order-Service","ID":"order-service-1","Tags":["v1","api"],"Address":"10.0.0.5",
            "Port":3000,"Meta":{"version":"1.2.3","team":"a"},
            "Check":{"TTL":"10s","DeregisterCriticalServiceAfter":"1m","Notes":"x"}}"#
    }

    #[test]
    fn a_node_consul_registration_maps_onto_an_instance() {
        let r = ServiceRegistration::parse(node_consul_body().as_bytes(), None).unwrap();
        assert_eq!(r.key.to_string(), "order-service@1.2.3/order-service-1");
        assert_eq!(r.url(), "10.0.0.5:3000");
        let check = r.check.as_ref().unwrap();
        assert_eq!(check.id, "service:order-service-1");
        assert_eq!(check.kind, CheckKind::Ttl { ttl_ms: 10_000 });
        assert_eq!(check.status, Status::Critical);
        let body = r.native_body(Runner::Edge).unwrap();
        assert_eq!(body["ttl"], 70.0, "TTL + DeregisterCriticalServiceAfter");
        assert_eq!(body["check"]["ttl"], 10.0);
        assert_eq!(body["check"]["initial"], "critical");
        let spec = InstanceSpec::from_json_value(&body).unwrap();
        let instance = Instance::lease(r.key.clone(), spec, 1_000, None);
        assert_eq!(instance.health.status, Status::Critical);
        assert_eq!(instance.health.deadline(), Some(11_000));
        assert_eq!(instance.expires_at, 71_000);
    }

    #[test]
    fn py_consul_snake_case_without_content_type_reads_the_same() {
        let body = br#"{"name":"web","id":"web-1","address":"127.0.0.1","port":8080,"tags":["a"],
            "checks":[{"ttl":"5s","deregister_critical_service_after":"30s","status":"passing"}]}"#;
        let r = ServiceRegistration::parse(body, None).unwrap();
        assert_eq!(r.key.to_string(), "web@0.0.0/web-1");
        assert_eq!(r.check.unwrap().status, Status::Passing);
    }

    #[test]
    fn a_registration_without_a_check_holds_no_lease() {
        let body = br#"{"Name":"db","Address":"10.0.0.1","Port":5432}"#;
        let r = ServiceRegistration::parse(body, None).unwrap();
        assert_eq!(r.id, "db");
        let body = r.native_body(Runner::Edge).unwrap();
        assert_eq!((body.get("ttl"), &body["persistent"]), (None, &json!(true)));
        let instance = Instance::lease(
            r.key,
            InstanceSpec::from_json_value(&body).unwrap(),
            5,
            None,
        );
        assert!(instance.is_persistent() && instance.is_live(10_000_000_000_000));
        assert_eq!(instance.health.status, Status::Passing);
    }

    #[test]
    fn checks_the_edge_cannot_run_are_refused_with_the_way_out() {
        let body = br#"{"Name":"web","Address":"10.0.0.1","Port":80,
            "Check":{"HTTP":"http://10.0.0.1/health","Interval":"10s"}}"#;
        let r = ServiceRegistration::parse(body, None).unwrap();
        let err = r.native_body(Runner::Edge).unwrap_err();
        assert!(err.to_string().contains("vasco agent"), "{err}");
        assert!(r.native_body(Runner::Agent { lease_ms: 15_000 }).is_ok());
        for (body, needle) in [
            (
                r#"{"Name":"w","Address":"a","Port":1,"Check":{"GRPC":"x:1","Interval":"1s"}}"#,
                "grpc",
            ),
            (
                r#"{"Name":"w","Address":"a","Port":1,"Check":{"HTTP":"http://x"}}"#,
                "Interval",
            ),
            (
                r#"{"Name":"w","Address":"a","Port":1,"Checks":[{"TTL":"1s"},{"TTL":"2s"}]}"#,
                "one health check",
            ),
            (
                r#"{"Name":"w","Address":"a","Port":1,"Check":{"TTL":"100ms"}}"#,
                "TTL",
            ),
            (r#"{"Address":"a","Port":1}"#, "Missing service name"),
            (
                r#"{"Name":"w w","Address":"a","Port":1}"#,
                "no Vasco equivalent",
            ),
            (
                r#"{"Name":"w","ID":"w:1","Address":"a","Port":1}"#,
                "no Vasco equivalent",
            ),
            (r#"{"Name":"w","Port":1}"#, "Address"),
            (r#"{"Name":"w","Address":"a"}"#, "Port"),
            (
                r#"{"Name":"w","Address":"a","Port":1,"Weights":{"Passing":5000}}"#,
                "Weights",
            ),
        ] {
            let err = ServiceRegistration::parse(body.as_bytes(), None)
                .and_then(|r| r.native_body(Runner::Edge))
                .unwrap_err();
            assert!(err.to_string().contains(needle), "{body}: {err}");
        }
    }

    #[test]
    fn answers_have_the_shapes_clients_decode() {
        let r = ServiceRegistration::parse(node_consul_body().as_bytes(), None).unwrap();
        let spec = InstanceSpec::from_json_value(&r.native_body(Runner::Edge).unwrap()).unwrap();
        let mut instance = Instance::lease(r.key, spec, 0, None);
        instance
            .health
            .apply(&crate::HealthUpdate::set(Status::Maintenance, None), 0);
        let entry = serde_json::to_value(ServiceEntry::of(&instance, 7)).unwrap();
        assert_eq!(entry["Service"]["ID"], "order-service-1");
        assert_eq!(entry["Service"]["Port"], 3000);
        assert_eq!(entry["Service"]["Tags"], json!(["v1", "api"]));
        assert_eq!(entry["Node"]["TaggedAddresses"]["lan"], NODE_ADDRESS);
        let checks = entry["Checks"].as_array().unwrap();
        assert_eq!(checks.len(), 2);
        assert_eq!(checks[0]["CheckID"], "service:order-service-1");
        assert_eq!(checks[0]["Type"], "ttl");
        assert_eq!(checks[1]["CheckID"], "_service_maintenance:order-service-1");
        assert_eq!(checks[1]["Status"], "critical");
        let flat = serde_json::to_value(CatalogService::of(&instance, 7)).unwrap();
        assert_eq!(
            (flat["ServiceAddress"].clone(), flat["ModifyIndex"].clone()),
            (json!("10.0.0.5"), json!(7))
        );
        assert!(agent_self()
            .as_object()
            .unwrap()
            .values()
            .all(Value::is_object));
    }

    #[test]
    fn check_verbs_become_check_results() {
        assert_eq!(
            check_update_body("pass", Some("ok"), None).unwrap(),
            json!({"check": {"status": "passing", "note": "ok"}, "by": "consul"})
        );
        assert_eq!(
            check_update_body(
                "update",
                None,
                Some(br#"{"Status":"warning","Output":"slow"}"#)
            )
            .unwrap()["check"],
            json!({"status": "warning", "note": "slow"})
        );
        assert!(check_update_body("update", None, Some(br#"{"Status":"maintenance"}"#)).is_err());
        assert!(check_update_body("explode", None, None).is_err());
    }

    #[test]
    fn urls_become_address_and_port() {
        assert_eq!(address_port("10.0.0.1:80"), ("10.0.0.1".into(), 80));
        assert_eq!(
            address_port("https://api.example.com/v1"),
            ("api.example.com".into(), 443)
        );
        assert_eq!(address_port("http://[::1]:8080/x"), ("::1".into(), 8080));
        assert_eq!(address_port("[::1]:9"), ("::1".into(), 9));
    }

    #[test]
    fn go_booleans() {
        for yes in ["", "1", "true", "T"] {
            assert!(parse_bool("passing", yes).unwrap());
        }
        assert!(!parse_bool("passing", "false").unwrap());
        assert!(parse_bool("passing", "yes").is_err());
    }

    #[test]
    fn http_statuses_become_check_statuses() {
        for (code, status) in [
            (200, Status::Passing),
            (204, Status::Passing),
            (299, Status::Passing),
            (429, Status::Warning),
            (300, Status::Critical),
            (404, Status::Critical),
            (503, Status::Critical),
            (0, Status::Critical),
        ] {
            assert_eq!(http_check_status(code), status, "{code}");
        }
        assert_eq!(check_note("a\nb\tc"), "a b c");
        assert_eq!(check_note(&"x".repeat(300)).len(), REASON_LEN);
    }

    #[test]
    fn an_agent_leases_services_without_checks() {
        let body = br#"{"Name":"db","Port":5432}"#;
        let r = ServiceRegistration::parse(body, Some("10.1.1.1")).unwrap();
        assert_eq!(
            r.url(),
            "10.1.1.1:5432",
            "the agent's address fills Address"
        );
        let body = r.native_body(Runner::Agent { lease_ms: 15_000 }).unwrap();
        assert_eq!(
            (body["ttl"].clone(), body.get("persistent")),
            (json!(15), None),
            "whole seconds as an integer, as every native body writes them"
        );
        let http = br#"{"Name":"w","Address":"a","Port":1,"Check":{"TCP":"a:1","Interval":"2s"}}"#;
        let r = ServiceRegistration::parse(http, None).unwrap();
        let body = r.native_body(Runner::Agent { lease_ms: 15_000 }).unwrap();
        assert_eq!(body["ttl"], 15.0);
        assert_eq!(
            body["check"].get("ttl"),
            None,
            "the agent runs the check; no TTL at the edge"
        );
        assert!(InstanceSpec::from_json_value(&body).is_ok());
    }

    fn run(damping: &str, remove_after: &str) -> CheckRun {
        let body = format!(
            r#"{{"Name":"w","Address":"a","Port":1,"Check":{{"HTTP":"http://a/","Interval":"1s"{damping}{remove_after}}}}}"#
        );
        let check = ServiceRegistration::parse(body.as_bytes(), None)
            .unwrap()
            .check
            .unwrap();
        CheckRun::new(&check, 0)
    }

    /// The registry's health for the same results, through the same core rules.
    fn registry_side(run: &CheckRun) -> Health {
        let mut h = Health::default();
        h.check.damping = run.health.check.damping;
        h.check.status = Status::Critical;
        h.status = Status::Critical;
        h
    }

    #[test]
    fn a_check_run_sends_what_changes_the_registry_and_skips_the_rest() {
        let mut r = run(
            r#","SuccessBeforePassing":2,"FailuresBeforeCritical":3"#,
            "",
        );
        let mut edge = registry_side(&r);
        fn feed(r: &mut CheckRun, edge: &mut Health, status: Status, now: u64) -> bool {
            let step = r.report(status, Some("out"), now);
            let sent = step.send.is_some();
            if let Some(body) = step.send {
                let update = HealthUpdate::from_value(&body).unwrap();
                edge.apply(&update, now);
                r.confirm(edge);
            }
            assert_eq!(
                edge.check.status,
                r.status(),
                "agent and registry agree at {now}"
            );
            sent
        }
        // Two passes to become passing, then passes change nothing.
        let sent: Vec<bool> = (1..=6)
            .map(|t| feed(&mut r, &mut edge, Status::Passing, t))
            .collect();
        assert_eq!(r.status(), Status::Passing);
        // Pass 1 (nothing confirmed yet) and pass 2 (the counter reaches the threshold) are
        // sent; a settled state repeated is not.
        assert_eq!(sent, [true, true, false, false, false, false]);
        // Failures: warning at once (FailuresBeforeWarning defaults to ...Critical: 3), critical at 3.
        for t in 8..=10 {
            feed(&mut r, &mut edge, Status::Critical, t);
        }
        assert_eq!(r.status(), Status::Critical);
        // A pass in between restarts the count on both sides.
        feed(&mut r, &mut edge, Status::Passing, 11);
        feed(&mut r, &mut edge, Status::Critical, 12);
        feed(&mut r, &mut edge, Status::Passing, 13);
        feed(&mut r, &mut edge, Status::Passing, 14);
        assert_eq!(r.status(), Status::Passing);
        // A lost answer: the next result goes out whatever it is.
        r.unconfirm();
        assert!(r.report(Status::Passing, None, 15).send.is_some());
    }

    #[test]
    fn warnings_count_towards_critical_on_both_sides() {
        let mut r = run(
            r#","FailuresBeforeWarning":1,"FailuresBeforeCritical":3"#,
            "",
        );
        let mut edge = registry_side(&r);
        for (t, status) in [
            Status::Passing,
            Status::Warning,
            Status::Warning,
            Status::Critical,
        ]
        .into_iter()
        .enumerate()
        {
            let step = r.report(status, None, t as u64);
            let body = step.send.expect("every step here changes a counter");
            edge.apply(&HealthUpdate::from_value(&body).unwrap(), t as u64);
            r.confirm(&edge);
        }
        assert_eq!(
            (r.status(), edge.check.status),
            (Status::Critical, Status::Critical)
        );
    }

    #[test]
    fn deregister_critical_service_after_counts_from_turning_critical() {
        let mut r = run("", r#","DeregisterCriticalServiceAfter":"3s""#);
        assert!(!r.reap_due(2_999));
        assert!(r.reap_due(3_000), "starts critical at registration");
        r.report(Status::Passing, None, 1_000);
        assert!(!r.reap_due(10_000));
        assert!(!r.report(Status::Critical, None, 10_000).reap);
        assert!(!r.report(Status::Warning, None, 11_000).reap);
        assert!(
            !r.report(Status::Critical, None, 12_000).reap,
            "warning restarted the clock"
        );
        assert!(r.report(Status::Critical, None, 15_000).reap);
        let without = run("", "");
        assert!(!without.reap_due(u64::MAX));
        let body = json!({"url": "a:1", "ttl": 15, "check": {"initial": "critical"}});
        let mut r = run("", "");
        r.report(Status::Passing, None, 1);
        assert_eq!(r.registration_body(&body)["check"]["initial"], "passing");
    }
}
