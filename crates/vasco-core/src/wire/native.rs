//! Vasco's own HTTP API bodies, which the npm client sends too: serde types for the JSON of a
//! registration (`PUT /v1/services/{name}/{version}/instances/{id}`, [`Registration`]) and of a
//! status update (`PUT .../instances/{id}/status`, [`StatusUpdate`]), converted to the core's
//! [`InstanceSpec`] and [`HealthUpdate`] here and nowhere else, and back.
//!
//! Deserializing a body checks its *shape* (an object with known fields of the right JSON
//! types); the conversion applies the *rules* (a lease or `persistent`, defaults, the limits
//! of [`InstanceSpec::validate`], which health fields go together). Both name the field at
//! fault in a typed error:
//!
//! | error | when |
//! |---|---|
//! | `invalid_body` | not a JSON object, or an unknown field (a typo such as `"tll"` is refused, not ignored) |
//! | `invalid_<field>` | that field has the wrong type or breaks a rule: `invalid_url`, `invalid_ttl`, `invalid_persistent`, `invalid_tags`, `invalid_meta`, `invalid_weight`, `invalid_zone`, `invalid_status`, `invalid_reason`, `invalid_by`, `invalid_check`, `invalid_maintenance` |
//!
//! A body with several faults is refused for one of them. Every field but a registration's
//! `url` is optional, and `null` means absent.
//!
//! ```
//! use vasco_core::{wire::native::Registration, InstanceSpec};
//!
//! let body = serde_json::json!({"url": "10.0.0.1:3000", "ttl": 2.5, "weight": 3.0});
//! let spec = InstanceSpec::try_from(Registration::from_value(&body).unwrap()).unwrap();
//! assert_eq!((spec.ttl_ms, spec.weight), (2_500, 3));
//! // And back: whole seconds as integers, fractions as fractions.
//! let back = serde_json::to_value(Registration::from(&spec)).unwrap();
//! assert_eq!(back, serde_json::json!({"url": "10.0.0.1:3000", "ttl": 2.5, "weight": 3}));
//!
//! let typo = serde_json::json!({"url": "10.0.0.1:3000", "tll": 5});
//! assert_eq!(Registration::from_value(&typo).unwrap_err().code(), "invalid_body");
//! let weight = serde_json::json!({"url": "10.0.0.1:3000", "weight": 1.5});
//! let err = InstanceSpec::try_from(Registration::from_value(&weight).unwrap()).unwrap_err();
//! assert_eq!(err.to_string(), "invalid weight: must be an integer from 1 to 1000");
//! ```

use alloc::{
    collections::BTreeMap,
    format,
    string::{String, ToString},
    vec::Vec,
};

use serde::{de::DeserializeOwned, Deserialize, Serialize};
use serde_json::{Number, Value};
use serde_path_to_error::{Path, Segment};

use crate::{
    error::{Error, Result},
    health::{Damping, HealthSpec, HealthUpdate, Status, MAX_CHECK_TTL_S, MAX_DAMPING, REASON_LEN},
    instance::{limits, InstanceSpec},
};

/// The body of a registration (`PUT /v1/services/{name}/{version}/instances/{id}`, and the
/// npm client's `register`):
///
/// ```json
/// {"url": "10.0.0.1:3000", "ttl": 10, "tags": ["v1"], "meta": {"k": "v"}, "weight": 1,
///  "zone": "eu-1", "status": "maintenance", "reason": "deploy", "by": "ci",
///  "check": {"status": "passing", "note": "ok"}}
/// ```
///
/// Only `url` is required. `ttl` is in seconds (fractions allowed, 1 to 3600, default 10);
/// `"persistent": true` instead of `ttl` takes no lease at all (held until deregistered).
/// `weight` is an integer from 1 to 1000 (default 1; an integral float such as `1.0` is an
/// integer, as JSON Schema's `integer` says). The health fields (`status`, `reason`, `by`,
/// `check`) are those of [`HealthSpec`]; without them a live instance keeps its health. The
/// limits are [`crate::instance::limits`]. Convert with [`InstanceSpec::try_from`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Registration {
    /// Where to reach the instance: `host:port` or an `http(s)://` URL.
    pub url: String,
    /// The lease in seconds, a JSON number as sent (the conversion checks it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<Number>,
    /// `true`: no lease, and no `ttl` with it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub persistent: Option<bool>,
    /// Labels to filter on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
    /// Free-form string data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<BTreeMap<String, String>>,
    /// The share of traffic, a JSON number as sent (the conversion checks it is an integer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<Number>,
    /// The failure domain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zone: Option<String>,
    /// Sets the status at once ([`HealthUpdate::Set`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<Status>,
    /// Why the status is set (needs `status`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Who set the status or reported the check result.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
    /// A check result and the check's configuration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check: Option<Check>,
}

/// The `check` object of a registration or a status update:
/// `{"status": "critical", "note": "db down"}` is a result (damped; never ends maintenance);
/// a registration may also configure the check: `initial` (the status a new instance starts
/// in), `id`, `name`, `ttl` (a TTL check, in seconds: 1 to [`MAX_CHECK_TTL_S`]) and the
/// damping thresholds (each 1 to [`MAX_DAMPING`] consecutive results; `failures_before_warning`
/// defaults to `failures_before_critical`). See [`crate::health`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Check {
    /// The result: passing, warning or critical.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<Status>,
    /// The check's output, shown as the reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// The status a new instance starts in (passing, warning or critical).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initial: Option<Status>,
    /// The check's id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The check's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// A TTL check in seconds, a JSON number as sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<Number>,
    /// Consecutive passing results before the check becomes passing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub success_before_passing: Option<u32>,
    /// Consecutive failing results before it becomes warning.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failures_before_warning: Option<u32>,
    /// Consecutive critical results before it becomes critical.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failures_before_critical: Option<u32>,
}

/// The body of `PUT .../instances/{id}/status`, one of: a status set
/// `{"status": "maintenance", "reason": "deploy", "by": "alice"}`, a check result
/// `{"check": {"status": "critical", "note": "db down"}, "by": "probe"}` (its `status` and
/// `note` only: the check's configuration belongs to the registration), or the end of
/// maintenance `{"maintenance": false, "by": "alice"}`. Convert with
/// [`HealthUpdate::try_from`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusUpdate {
    /// The status to set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<Status>,
    /// Why (needs `status`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Who sets it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
    /// A check result.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check: Option<Check>,
    /// `false` ends maintenance mode (only `by` may go with it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maintenance: Option<bool>,
}

impl Registration {
    /// Reads a registration body's shape. Errors: `invalid_body` for a value that is not an
    /// object or has an unknown field; `invalid_<field>` for a field of the wrong JSON type.
    pub fn from_value(value: &Value) -> Result<Self> {
        read(value, registration_refusal)
    }
}

impl StatusUpdate {
    /// Reads a status update body's shape. Errors: `invalid_body` for a value that is not an
    /// object or has an unknown field; `invalid_<field>` for a field of the wrong JSON type.
    pub fn from_value(value: &Value) -> Result<Self> {
        read(value, status_refusal)
    }
}

impl TryFrom<Registration> for InstanceSpec {
    type Error = Error;

    /// Applies the rules: `persistent` takes no `ttl`, `ttl` is 1 to 3600 seconds (rounded
    /// to the millisecond), `weight` an integer; defaults for what is absent; the health
    /// fields as in [`HealthSpec`]; then [`InstanceSpec::validate`].
    fn try_from(body: Registration) -> Result<InstanceSpec> {
        let persistent = body.persistent.unwrap_or(false);
        let ttl_ms = match (body.ttl, persistent) {
            (None, true) => 0,
            (None, false) => InstanceSpec::DEFAULT_TTL_MS,
            (Some(_), true) => {
                return Err(Error::invalid(
                    "persistent",
                    "an instance without a lease takes no ttl",
                ))
            }
            (Some(ttl), false) => seconds_to_ms(&ttl, limits::TTL_MIN_S, limits::TTL_MAX_S)
                .ok_or_else(|| {
                    Error::invalid(
                        "ttl",
                        format!(
                            "must be between {} and {} seconds",
                            limits::TTL_MIN_S,
                            limits::TTL_MAX_S
                        ),
                    )
                })?,
        };
        let weight = match body.weight {
            None => 1,
            Some(weight) => integer(&weight).ok_or_else(bad_weight)?,
        };
        let spec = InstanceSpec {
            url: body.url,
            ttl_ms,
            tags: body.tags.unwrap_or_default(),
            meta: body.meta.unwrap_or_default(),
            weight,
            zone: body.zone,
            health: health_spec(body.status, body.reason, body.by, body.check)?,
        };
        spec.validate()?;
        Ok(spec)
    }
}

impl From<&InstanceSpec> for Registration {
    /// The body [`InstanceSpec::try_from`] reads back as `spec`: `ttl` in seconds (an integer
    /// when whole) or `"persistent": true`, empty tags and meta left out, and the health
    /// fields of [`HealthSpec`]. The body has one `by`: a check result's, else the status
    /// set's.
    fn from(spec: &InstanceSpec) -> Self {
        let health = &spec.health;
        let (status, reason, set_by) = match &health.set {
            Some(HealthUpdate::Set { status, reason, by }) => {
                (Some(*status), reason.clone(), by.clone())
            }
            _ => (None, None, None),
        };
        let (result, note, check_by) = match &health.check {
            Some(HealthUpdate::Check { status, note, by }) => {
                (Some(*status), note.clone(), by.clone())
            }
            _ => (None, None, None),
        };
        let check = Check {
            status: result,
            note,
            initial: health.initial,
            id: health.id.clone(),
            name: health.name.clone(),
            ttl: health.ttl_ms.map(seconds),
            success_before_passing: health.damping.map(|d| d.success_before_passing),
            failures_before_warning: health.damping.map(|d| d.failures_before_warning),
            failures_before_critical: health.damping.map(|d| d.failures_before_critical),
        };
        Registration {
            url: spec.url.clone(),
            ttl: (spec.ttl_ms != 0).then(|| seconds(spec.ttl_ms)),
            persistent: (spec.ttl_ms == 0).then_some(true),
            tags: (!spec.tags.is_empty()).then(|| spec.tags.clone()),
            meta: (!spec.meta.is_empty()).then(|| spec.meta.clone()),
            weight: Some(spec.weight.into()),
            zone: spec.zone.clone(),
            status,
            reason,
            by: check_by.or(set_by),
            check: (check != Check::default()).then_some(check),
        }
    }
}

impl TryFrom<StatusUpdate> for HealthUpdate {
    type Error = Error;

    /// Which update the body is: `maintenance: false` (with `by` only), or a status set or a
    /// check result (not both, and no check configuration). Errors: `invalid_maintenance`,
    /// `invalid_check`, `invalid_body` (both kinds), `invalid_status` (neither), and those of
    /// the health fields.
    fn try_from(body: StatusUpdate) -> Result<HealthUpdate> {
        if let Some(maintenance) = body.maintenance {
            if maintenance {
                return Err(bad_maintenance());
            }
            if body.status.is_some() || body.reason.is_some() || body.check.is_some() {
                return Err(Error::invalid(
                    "maintenance",
                    "{\"maintenance\": false} takes only by beside it",
                ));
            }
            return Ok(HealthUpdate::Resume {
                by: text("by", body.by)?,
            });
        }
        let spec = health_spec(body.status, body.reason, body.by, body.check)?;
        if spec.damping.is_some()
            || spec.ttl_ms.is_some()
            || spec.id.is_some()
            || spec.name.is_some()
            || spec.initial.is_some()
        {
            return Err(Error::invalid(
                "check",
                "a status update carries check.status and check.note only; the check's \
                 configuration is part of the registration",
            ));
        }
        match (spec.set, spec.check) {
            (Some(set), None) => Ok(set),
            (None, Some(check)) => Ok(check),
            (Some(_), Some(_)) => Err(Error::invalid(
                "body",
                "give either status (a status set) or check (a check result), not both",
            )),
            (None, None) => Err(Error::invalid(
                "status",
                "is required (passing, warning, critical or maintenance), or a check result",
            )),
        }
    }
}

impl From<&HealthUpdate> for StatusUpdate {
    /// The body [`HealthUpdate::try_from`] reads back as `update`.
    fn from(update: &HealthUpdate) -> Self {
        match update {
            HealthUpdate::Set { status, reason, by } => StatusUpdate {
                status: Some(*status),
                reason: reason.clone(),
                by: by.clone(),
                ..StatusUpdate::default()
            },
            HealthUpdate::Check { status, note, by } => StatusUpdate {
                check: Some(Check {
                    status: Some(*status),
                    note: note.clone(),
                    ..Check::default()
                }),
                by: by.clone(),
                ..StatusUpdate::default()
            },
            HealthUpdate::Resume { by } => StatusUpdate {
                maintenance: Some(false),
                by: by.clone(),
                ..StatusUpdate::default()
            },
        }
    }
}

/// The health fields of a body as a [`HealthSpec`]: `status` (with `reason` and `by`) is a
/// status set, `check.status` (with `note` and `by`) a check result, the rest of `check` its
/// configuration.
fn health_spec(
    status: Option<Status>,
    reason: Option<String>,
    by: Option<String>,
    check: Option<Check>,
) -> Result<HealthSpec> {
    let by = text("by", by)?;
    let reason = text("reason", reason)?;
    let set = match status {
        Some(status) => Some(HealthUpdate::Set {
            status,
            reason,
            by: by.clone(),
        }),
        None if reason.is_some() => return Err(Error::invalid("reason", "needs a status")),
        None => None,
    };
    let mut spec = HealthSpec {
        set,
        ..HealthSpec::default()
    };
    if let Some(check) = check {
        let note = text("check", check.note)?;
        spec.check = match check.status {
            Some(Status::Maintenance) => {
                return Err(Error::invalid(
                    "check",
                    "a check result is passing, warning or critical; set \
                     {\"status\": \"maintenance\"} to take an instance out of rotation",
                ))
            }
            Some(status) => Some(HealthUpdate::Check {
                status,
                note,
                by: by.clone(),
            }),
            None => None,
        };
        spec.initial = match check.initial {
            Some(Status::Maintenance) => {
                return Err(Error::invalid(
                    "check",
                    "initial is passing, warning or critical",
                ))
            }
            initial => initial,
        };
        spec.id = text("check", check.id)?;
        spec.name = text("check", check.name)?;
        spec.ttl_ms = match check.ttl {
            Some(ttl) => Some(
                seconds_to_ms(&ttl, 1, u64::from(MAX_CHECK_TTL_S)).ok_or_else(|| {
                    Error::invalid(
                        "check",
                        format!("ttl must be 1 to {MAX_CHECK_TTL_S} seconds"),
                    )
                })?,
            ),
            None => None,
        };
        let threshold = |name: &str, value: Option<u32>| match value {
            Some(n) if !(1..=MAX_DAMPING).contains(&n) => Err(bad_threshold(name)),
            value => Ok(value),
        };
        let passing = threshold("success_before_passing", check.success_before_passing)?;
        let warning = threshold("failures_before_warning", check.failures_before_warning)?;
        let critical = threshold("failures_before_critical", check.failures_before_critical)?;
        if passing.is_some() || warning.is_some() || critical.is_some() {
            let base = Damping::default();
            spec.damping = Some(Damping {
                success_before_passing: passing.unwrap_or(base.success_before_passing),
                failures_before_critical: critical.unwrap_or(base.failures_before_critical),
                // As in Consul: only failures_before_critical given sets both.
                failures_before_warning: warning
                    .or(critical)
                    .unwrap_or(base.failures_before_warning),
            });
        }
    }
    if by.is_some() && spec.set.is_none() && spec.check.is_none() {
        return Err(Error::invalid("by", "needs a status or a check result"));
    }
    Ok(spec)
}

/// A reason, note, `by`, check id or name: at most [`REASON_LEN`] characters, none a control
/// character.
fn text(field: &'static str, text: Option<String>) -> Result<Option<String>> {
    match text {
        Some(text) if text.chars().count() > REASON_LEN || text.chars().any(char::is_control) => {
            Err(Error::invalid(
                field,
                format!("must be at most {REASON_LEN} characters without control characters"),
            ))
        }
        text => Ok(text),
    }
}

/// `seconds` in milliseconds (rounded to the nearest), when it is from `min` to `max`.
fn seconds_to_ms(seconds: &Number, min: u64, max: u64) -> Option<u64> {
    let seconds = seconds.as_f64().filter(|s| s.is_finite())?;
    // In range, the product is a small positive number; +0.5 rounds to the nearest ms.
    (min as f64..=max as f64)
        .contains(&seconds)
        .then_some((seconds * 1000.0 + 0.5) as u64)
}

/// `ms` in seconds: an integer when whole, else a fraction.
pub(crate) fn seconds(ms: u64) -> Number {
    match Number::from_f64(ms as f64 / 1000.0) {
        Some(fraction) if !ms.is_multiple_of(1000) => fraction,
        _ => Number::from(ms / 1000),
    }
}

/// A JSON number that is a whole number fitting a `u32`: `3` or `3.0`.
fn integer(n: &Number) -> Option<u32> {
    n.as_u64()
        .or_else(|| {
            // (no_std has no `f64::fract`: a whole number survives the round trip.)
            let f = n.as_f64()?;
            let whole = (0.0..=f64::from(u32::MAX))
                .contains(&f)
                .then_some(f as u64)?;
            (whole as f64 == f).then_some(whole)
        })
        .and_then(|n| u32::try_from(n).ok())
}

fn bad_weight() -> Error {
    Error::invalid(
        "weight",
        format!(
            "must be an integer from {} to {}",
            limits::WEIGHT_MIN,
            limits::WEIGHT_MAX
        ),
    )
}

fn bad_maintenance() -> Error {
    Error::invalid(
        "maintenance",
        "only false (end maintenance) is accepted; set {\"status\": \"maintenance\"} to begin it",
    )
}

fn bad_threshold(name: &str) -> Error {
    Error::invalid(
        "check",
        format!("{name} must be an integer from 1 to {MAX_DAMPING}"),
    )
}

/// Deserializes a body, turning serde's error into the core's with `refusal`, which gets the
/// path of the value at fault (`["ttl"]`, `["meta", "k"]`, `["check", "status"]`, an unknown
/// field's name; empty for the body itself), that value (`None` for the body itself) and
/// serde's message.
fn read<T: DeserializeOwned>(
    value: &Value,
    refusal: fn(&[&str], Option<&Value>, String) -> Error,
) -> Result<T> {
    if !value.is_object() {
        return Err(Error::invalid("body", "must be a JSON object"));
    }
    // serde's derive would also read a struct from an array of its fields in order: the one
    // object nested in these bodies, `check`, must be an object (or null, absent).
    if let Some(check) = value
        .get("check")
        .filter(|c| !c.is_object() && !c.is_null())
    {
        return Err(refusal(&["check"], Some(check), String::new()));
    }
    serde_path_to_error::deserialize(value).map_err(|err| {
        let path = keys(err.path());
        let found = match path.as_slice() {
            [] => None,
            path => path.iter().try_fold(value, |v, key| v.get(*key)),
        };
        refusal(&path, found, err.inner().to_string())
    })
}

/// The object keys of a path; an array index ends it (no body nests an object in an array).
fn keys(path: &Path) -> Vec<&str> {
    path.iter()
        .map_while(|segment| match segment {
            Segment::Map { key } => Some(key.as_str()),
            _ => None,
        })
        .collect()
}

/// The error for a registration field of the wrong type (or an unknown or missing one).
fn registration_refusal(path: &[&str], found: Option<&Value>, message: String) -> Error {
    match path {
        // The body is an object (`read` checks that first), so serde refuses the object itself
        // only for a missing field, and `url` is the one required field.
        [] => Error::invalid("url", "is required"),
        ["url", ..] => Error::invalid("url", "must be a string"),
        ["ttl", ..] => Error::invalid("ttl", "must be a number of seconds"),
        ["persistent", ..] => Error::invalid("persistent", "must be true or false"),
        ["tags", ..] => Error::invalid("tags", "must be an array of strings"),
        ["meta", key, ..] => Error::invalid("meta", format!("value of {key:?} must be a string")),
        ["meta"] => Error::invalid("meta", "must be an object of strings"),
        ["weight", ..] => bad_weight(),
        ["zone", ..] => Error::invalid("zone", "must be a string"),
        _ => health_refusal(path, found, message),
    }
}

/// The error for a status update field of the wrong type (or an unknown one).
fn status_refusal(path: &[&str], found: Option<&Value>, message: String) -> Error {
    match path {
        ["maintenance", ..] => bad_maintenance(),
        _ => health_refusal(path, found, message),
    }
}

/// The error for a health field of the wrong type, or an unknown field (serde's message names
/// it and lists the known ones).
fn health_refusal(path: &[&str], found: Option<&Value>, message: String) -> Error {
    // A string that is not a status: the status's own error (`invalid_status`).
    let status = |field: &'static str, what: &str| {
        let unknown = match found {
            Some(Value::String(name)) => name.parse::<Status>().err(),
            _ => None,
        };
        unknown.unwrap_or_else(|| Error::invalid(field, format!("{what}must be a string")))
    };
    match path {
        ["status", ..] => status("status", ""),
        ["reason", ..] => Error::invalid("reason", "must be a string"),
        ["by", ..] => Error::invalid("by", "must be a string"),
        ["check"] => Error::invalid("check", "must be an object"),
        ["check", "status", ..] => status("check", "status "),
        ["check", "initial", ..] => status("check", "initial "),
        ["check", name @ ("note" | "id" | "name"), ..] => {
            Error::invalid("check", format!("{name} must be a string"))
        }
        ["check", "ttl", ..] => Error::invalid("check", "ttl must be a number of seconds"),
        ["check", name @ ("success_before_passing"
        | "failures_before_warning"
        | "failures_before_critical"), ..] => bad_threshold(name),
        ["check", ..] => Error::invalid("check", message),
        _ => Error::invalid("body", message),
    }
}

/// A body's JSON text as a value. Errors: `invalid_body` when it is not JSON.
fn json_text(body: &str) -> Result<Value> {
    serde_json::from_str(body)
        .map_err(|e| Error::invalid("body", format!("is not valid JSON: {e}")))
}

/// The native body's entry points on the domain types (defined here, beside the wire types, so
/// that `instance` and `health` need not know the wire).
impl InstanceSpec {
    /// Parses the JSON body of a registration, [`Registration`]:
    /// `{"url": "10.0.0.1:3000", "ttl": 10, "tags": [], "meta": {}, "weight": 1, "zone": "eu-1"}`
    /// plus the health fields (`"status": "maintenance", "reason": "deploy"`, `"check": {...}`).
    /// Only `url` is required; `ttl` is in seconds (fractions allowed), or `"persistent": true`
    /// for no lease; `null` is absent. Unknown fields are refused so that a typo (`"tll"`) is
    /// not silently ignored. Errors: `invalid_body` (not JSON, not an object, an unknown
    /// field) or `invalid_<field>` naming the bad field.
    pub fn from_json(body: &str) -> Result<Self> {
        Self::from_json_value(&json_text(body)?)
    }

    /// Like [`InstanceSpec::from_json`], for an already parsed value: [`Registration`]'s shape,
    /// then its conversion.
    pub fn from_json_value(value: &Value) -> Result<Self> {
        Registration::from_value(value)?.try_into()
    }

    /// The registration body that [`InstanceSpec::from_json_value`] reads back as this spec
    /// ([`Registration::from`]): `{"url", "ttl", "tags"?, "meta"?, "weight", "zone"?}` plus the
    /// health fields that are set, `ttl` in seconds (a fraction when the lease is not a whole
    /// number of seconds; `"persistent": true` instead for no lease). For callers that build a
    /// spec in Rust and send it on as a registration (the npm client, the compatibility
    /// dialects in [`crate::wire`]).
    pub fn to_json_value(&self) -> Value {
        // (It cannot fail: every key is a string and every number finite.)
        serde_json::to_value(Registration::from(self)).unwrap_or_default()
    }
}

impl HealthUpdate {
    /// Parses the body of `PUT .../status` ([`StatusUpdate`]): `{"status": "maintenance",
    /// "reason": "deploy", "by": "alice"}` (a set), `{"check": {"status": "critical", "note":
    /// "..."}}` (a check result) or `{"maintenance": false}` (resume). Unknown fields, and check
    /// configuration (which belongs to the registration), are refused. Errors:
    /// `invalid_status`, `invalid_reason`, `invalid_by`, `invalid_check`,
    /// `invalid_maintenance`, `invalid_body`.
    pub fn from_json(body: &str) -> Result<HealthUpdate> {
        Self::from_value(&json_text(body)?)
    }

    /// Like [`HealthUpdate::from_json`], for an already parsed value: [`StatusUpdate`]'s
    /// shape, then its conversion.
    pub fn from_value(value: &Value) -> Result<HealthUpdate> {
        StatusUpdate::from_value(value)?.try_into()
    }

    /// The body [`HealthUpdate::from_value`] reads back ([`StatusUpdate::from`]): a status set
    /// `{"status", "reason"?, "by"?}`, a check result `{"check": {"status", "note"?}, "by"?}`,
    /// a resume `{"maintenance": false, "by"?}`.
    pub fn to_value(&self) -> Value {
        // (It cannot fail: every key is a string.)
        serde_json::to_value(StatusUpdate::from(self)).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use alloc::vec;
    use serde_json::json;

    use super::*;

    fn parse(body: Value) -> Result<InstanceSpec> {
        InstanceSpec::try_from(Registration::from_value(&body)?)
    }

    fn parse_update(body: Value) -> Result<HealthUpdate> {
        HealthUpdate::try_from(StatusUpdate::from_value(&body)?)
    }

    /// A spec with every field set, health included.
    fn full() -> InstanceSpec {
        let mut spec = InstanceSpec::new("http://10.0.0.1:80/x").unwrap();
        spec.tags = vec!["canary".into()];
        spec.meta.insert("k".into(), "v".into());
        spec.weight = 7;
        spec.zone = Some("eu-1".into());
        spec.health = HealthSpec {
            set: Some(HealthUpdate::Set {
                status: Status::Maintenance,
                reason: Some("deploy".into()),
                by: Some("ci".into()),
            }),
            check: Some(HealthUpdate::Check {
                status: Status::Critical,
                note: Some("db".into()),
                by: Some("ci".into()),
            }),
            damping: Some(Damping {
                success_before_passing: 2,
                failures_before_warning: 3,
                failures_before_critical: 4,
            }),
            ttl_ms: Some(1_500),
            id: Some("c1".into()),
            name: Some("db check".into()),
            initial: Some(Status::Warning),
        };
        spec
    }

    #[test]
    fn a_spec_round_trips_through_its_body() {
        let mut spec = full();
        for ttl_ms in [0, 1_000, 2_500, 600_000, 3_599_999, 3_600_000] {
            spec.ttl_ms = ttl_ms;
            let body = serde_json::to_value(Registration::from(&spec)).unwrap();
            assert_eq!(parse(body.clone()).unwrap(), spec, "{body}");
            // Through the text, as the npm client and the Worker send it.
            let text = serde_json::to_string(&Registration::from(&spec)).unwrap();
            assert_eq!(InstanceSpec::from_json(&text).unwrap(), spec, "{text}");
        }
        let bare = InstanceSpec::new("h:1").unwrap();
        assert_eq!(
            serde_json::to_value(Registration::from(&bare)).unwrap(),
            json!({"url": "h:1", "ttl": 10, "weight": 1})
        );
    }

    #[test]
    fn the_body_s_units_and_forms() {
        let mut spec = full();
        spec.ttl_ms = 2_500;
        let body = serde_json::to_value(Registration::from(&spec)).unwrap();
        assert_eq!(body["ttl"], json!(2.5));
        assert_eq!(body["weight"], json!(7));
        assert_eq!(body["check"]["ttl"], json!(1.5));
        assert_eq!(body["check"]["success_before_passing"], json!(2));
        assert_eq!(
            (&body["status"], &body["by"]),
            (&json!("maintenance"), &json!("ci"))
        );
        spec.ttl_ms = 0;
        let body = serde_json::to_value(Registration::from(&spec)).unwrap();
        assert_eq!((body.get("ttl"), &body["persistent"]), (None, &json!(true)));
    }

    #[test]
    fn a_check_must_be_an_object_not_an_array_of_its_fields() {
        // serde's derive alone would read `[status, note]` as a check (found by Schemathesis).
        for check in [
            json!([null, null]),
            json!(["passing"]),
            json!("passing"),
            json!(3),
        ] {
            let body = json!({"url": "h:1", "check": check});
            assert_eq!(parse(body).unwrap_err().code(), "invalid_check");
            let update = json!({"check": check, "status": "maintenance"});
            let err = HealthUpdate::from_value(&update).unwrap_err();
            assert_eq!(err.code(), "invalid_check");
            assert_eq!(err.to_string(), "invalid check: must be an object");
        }
        assert!(parse(json!({"url": "h:1", "check": null})).is_ok());
    }

    #[test]
    fn every_error_names_its_field() {
        let too_many: Vec<String> = (0..17).map(|i| format!("t{i}")).collect();
        let cases = [
            (json!([]), "invalid_body"),
            (json!("h:1"), "invalid_body"),
            (json!(null), "invalid_body"),
            (json!({}), "invalid_url"),
            (json!({"url": null}), "invalid_url"),
            (json!({"url": 5}), "invalid_url"),
            (json!({"url": "no-port"}), "invalid_url"),
            (json!({"url": "h:1", "tll": 5}), "invalid_body"),
            (json!({"url": "h:1", "ttl": 0}), "invalid_ttl"),
            (json!({"url": "h:1", "ttl": 0.5}), "invalid_ttl"),
            (json!({"url": "h:1", "ttl": -1}), "invalid_ttl"),
            (json!({"url": "h:1", "ttl": 3601}), "invalid_ttl"),
            (json!({"url": "h:1", "ttl": "10"}), "invalid_ttl"),
            (
                json!({"url": "h:1", "ttl": 5, "persistent": true}),
                "invalid_persistent",
            ),
            (json!({"url": "h:1", "persistent": 1}), "invalid_persistent"),
            (json!({"url": "h:1", "weight": 0}), "invalid_weight"),
            (json!({"url": "h:1", "weight": 1001}), "invalid_weight"),
            (json!({"url": "h:1", "weight": 1.5}), "invalid_weight"),
            (json!({"url": "h:1", "weight": -1.0}), "invalid_weight"),
            (json!({"url": "h:1", "weight": 1e20}), "invalid_weight"),
            (json!({"url": "h:1", "weight": "1"}), "invalid_weight"),
            (json!({"url": "h:1", "tags": "a"}), "invalid_tags"),
            (json!({"url": "h:1", "tags": [1]}), "invalid_tags"),
            (json!({"url": "h:1", "tags": [""]}), "invalid_tags"),
            (json!({"url": "h:1", "tags": too_many}), "invalid_tags"),
            (json!({"url": "h:1", "meta": []}), "invalid_meta"),
            (json!({"url": "h:1", "meta": {"k": 1}}), "invalid_meta"),
            (json!({"url": "h:1", "zone": "eu 1"}), "invalid_zone"),
            (json!({"url": "h:1", "zone": 7}), "invalid_zone"),
            (json!({"url": "h:1", "status": "sick"}), "invalid_status"),
            (json!({"url": "h:1", "status": 1}), "invalid_status"),
            (json!({"url": "h:1", "reason": "x"}), "invalid_reason"),
            (
                json!({"url": "h:1", "status": "warning", "reason": 1}),
                "invalid_reason",
            ),
            (
                json!({"url": "h:1", "status": "warning", "reason": "a\nb"}),
                "invalid_reason",
            ),
            (json!({"url": "h:1", "by": "ops"}), "invalid_by"),
            (json!({"url": "h:1", "by": []}), "invalid_by"),
            (json!({"url": "h:1", "check": "passing"}), "invalid_check"),
            (
                json!({"url": "h:1", "check": {"stat": "passing"}}),
                "invalid_check",
            ),
            (
                json!({"url": "h:1", "check": {"status": "maintenance"}}),
                "invalid_check",
            ),
            (
                json!({"url": "h:1", "check": {"status": "sick"}}),
                "invalid_status",
            ),
            (
                json!({"url": "h:1", "check": {"status": 1}}),
                "invalid_check",
            ),
            (
                json!({"url": "h:1", "check": {"initial": "maintenance"}}),
                "invalid_check",
            ),
            (
                json!({"url": "h:1", "check": {"initial": "sick"}}),
                "invalid_status",
            ),
            (json!({"url": "h:1", "check": {"note": 1}}), "invalid_check"),
            (
                json!({"url": "h:1", "check": {"id": "x".repeat(257)}}),
                "invalid_check",
            ),
            (json!({"url": "h:1", "check": {"ttl": 0}}), "invalid_check"),
            (
                json!({"url": "h:1", "check": {"ttl": "1s"}}),
                "invalid_check",
            ),
            (
                json!({"url": "h:1", "check": {"success_before_passing": 0}}),
                "invalid_check",
            ),
            (
                json!({"url": "h:1", "check": {"failures_before_warning": 101}}),
                "invalid_check",
            ),
            (
                json!({"url": "h:1", "check": {"failures_before_critical": 2.0}}),
                "invalid_check",
            ),
        ];
        for (body, code) in cases {
            assert_eq!(parse(body.clone()).unwrap_err().code(), code, "{body}");
        }
    }

    #[test]
    fn messages_say_what_is_wrong_in_plain_words() {
        let message = |body: Value| parse(body).unwrap_err().to_string();
        for (body, text) in [
            (json!({}), "invalid url: is required"),
            (json!({"url": 5}), "invalid url: must be a string"),
            (json!({"url": "h:1", "ttl": "10"}), "invalid ttl: must be a number of seconds"),
            (json!({"url": "h:1", "ttl": 0}), "invalid ttl: must be between 1 and 3600 seconds"),
            (json!({"url": "h:1", "weight": "1"}), "invalid weight: must be an integer from 1 to 1000"),
            (json!({"url": "h:1", "tags": [1]}), "invalid tags: must be an array of strings"),
            (json!({"url": "h:1", "meta": {"k": 1}}), "invalid meta: value of \"k\" must be a string"),
            (json!({"url": "h:1", "persistent": "yes"}), "invalid persistent: must be true or false"),
            (
                json!({"url": "h:1", "status": "sick"}),
                "invalid status: unknown status \"sick\"; expected passing, warning, critical or maintenance",
            ),
            (
                json!({"url": "h:1", "check": {"failures_before_critical": -1}}),
                "invalid check: failures_before_critical must be an integer from 1 to 100",
            ),
        ] {
            assert_eq!(message(body), text);
        }
        // Unknown fields: the message names the field and lists the known ones.
        let typo = message(json!({"url": "h:1", "tll": 3}));
        assert!(
            typo.starts_with("invalid body: unknown field `tll`"),
            "{typo}"
        );
        assert!(typo.contains("`ttl`") && typo.contains("`check`"), "{typo}");
        let typo = message(json!({"url": "h:1", "check": {"stat": "passing"}}));
        assert!(
            typo.starts_with("invalid check: unknown field `stat`"),
            "{typo}"
        );
        assert!(typo.contains("`failures_before_critical`"), "{typo}");
    }

    #[test]
    fn null_is_absent() {
        let body = json!({
            "url": "h:1", "ttl": null, "persistent": null, "tags": null, "meta": null,
            "weight": null, "zone": null, "status": null, "reason": null, "by": null,
            "check": null,
        });
        assert_eq!(parse(body).unwrap(), InstanceSpec::new("h:1").unwrap());
        let check = json!({"url": "h:1", "check": {"status": null, "ttl": null, "success_before_passing": null}});
        assert!(parse(check).unwrap().health.is_empty());
        let persistent = json!({"url": "h:1", "persistent": true, "ttl": null});
        assert_eq!(parse(persistent).unwrap().ttl_ms, 0);
        let update = parse_update(json!({"status": "warning", "check": null, "maintenance": null}));
        assert_eq!(update.unwrap(), HealthUpdate::set(Status::Warning, None));
    }

    #[test]
    fn failures_before_warning_defaults_to_failures_before_critical() {
        let body = json!({"url": "h:1", "check": {"failures_before_critical": 3}});
        let d = parse(body).unwrap().health.damping.unwrap();
        assert_eq!(
            (
                d.success_before_passing,
                d.failures_before_warning,
                d.failures_before_critical
            ),
            (1, 3, 3)
        );
    }

    #[test]
    fn the_initial_status_is_not_damped() {
        let body =
            json!({"url": "h:1", "check": {"status": "critical", "failures_before_critical": 3}});
        let health = parse(body).unwrap().health;
        assert_eq!(crate::Health::initial(&health, 0).status, Status::Critical);
        assert_eq!(
            crate::Health::initial(&HealthSpec::default(), 0).status,
            Status::Passing
        );
    }

    #[test]
    fn status_updates_parse_strictly() {
        assert_eq!(
            parse_update(json!({"status": "maintenance", "reason": "deploy", "by": "ci"})).unwrap(),
            HealthUpdate::Set {
                status: Status::Maintenance,
                reason: Some("deploy".into()),
                by: Some("ci".into())
            }
        );
        assert_eq!(
            parse_update(json!({"check": {"status": "critical", "note": "db"}})).unwrap(),
            HealthUpdate::check(Status::Critical, Some("db".into()))
        );
        assert_eq!(
            parse_update(json!({"maintenance": false, "by": "ops"})).unwrap(),
            HealthUpdate::Resume {
                by: Some("ops".into())
            }
        );
        for (body, code) in [
            (json!([]), "invalid_body"),
            (json!({}), "invalid_status"),
            (json!({"status": "sick"}), "invalid_status"),
            (json!({"status": 1}), "invalid_status"),
            (json!({"reason": "x"}), "invalid_reason"),
            (json!({"by": "x"}), "invalid_by"),
            (json!({"status": "passing", "extra": 1}), "invalid_body"),
            (json!({"url": "h:1"}), "invalid_body"),
            (
                json!({"status": "passing", "check": {"status": "passing"}}),
                "invalid_body",
            ),
            (json!({"check": {"status": "maintenance"}}), "invalid_check"),
            (json!({"check": {"stat": "passing"}}), "invalid_check"),
            (
                json!({"check": {"status": "passing", "ttl": 5}}),
                "invalid_check",
            ),
            (
                json!({"check": {"status": "passing", "success_before_passing": 2}}),
                "invalid_check",
            ),
            (
                json!({"check": {"status": "passing", "success_before_passing": 0}}),
                "invalid_check",
            ),
            (json!({"maintenance": true}), "invalid_maintenance"),
            (json!({"maintenance": "false"}), "invalid_maintenance"),
            (
                json!({"maintenance": false, "status": "passing"}),
                "invalid_maintenance",
            ),
            (json!({"maintenance": false, "by": 1}), "invalid_by"),
            (
                json!({"maintenance": false, "by": "x".repeat(REASON_LEN + 1)}),
                "invalid_by",
            ),
            (
                json!({"status": "warning", "reason": "x".repeat(REASON_LEN + 1)}),
                "invalid_reason",
            ),
        ] {
            assert_eq!(
                parse_update(body.clone()).unwrap_err().code(),
                code,
                "{body}"
            );
        }
    }

    #[test]
    fn updates_round_trip_through_their_body() {
        for update in [
            HealthUpdate::Set {
                status: Status::Maintenance,
                reason: Some("deploy".into()),
                by: Some("ci".into()),
            },
            HealthUpdate::set(Status::Passing, None),
            HealthUpdate::check(Status::Critical, Some("db".into())),
            HealthUpdate::Check {
                status: Status::Warning,
                note: None,
                by: Some("probe".into()),
            },
            HealthUpdate::Resume { by: None },
            HealthUpdate::Resume {
                by: Some("ops".into()),
            },
        ] {
            let body = serde_json::to_value(StatusUpdate::from(&update)).unwrap();
            assert_eq!(parse_update(body.clone()).unwrap(), update, "{body}");
        }
        assert_eq!(
            serde_json::to_value(StatusUpdate::from(&HealthUpdate::Resume { by: None })).unwrap(),
            json!({"maintenance": false})
        );
    }
}
