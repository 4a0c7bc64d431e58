//! Access control: tokens that carry policies, as Consul's ACL tokens do.
//!
//! A token grants `read` and/or `write` on service-name patterns, and possibly `manage` (tokens
//! and everything else). A pattern is an exact name (`api`), a prefix (`api-*`) or `*`. `write`
//! on a service implies `read` on it; `manage` implies everything. Registry-wide reads (the
//! catalog, every instance, the registry-wide feed) need `read` on `*`.
//!
//! Wire shape of a policy list (what `POST /v1/acl/tokens` takes and `GET` lists):
//! `[{"write": ["api", "api-*"]}, {"read": ["*"]}, {"manage": true}]`.
//!
//! A token's text is `vt.<id>.<secret>`: the id finds the record, the secret proves it. Only
//! SHA-256 of the secret is stored ([`hash_secret`]), and the comparison takes the same time
//! whatever the input ([`TokenRecord::verify`]). The core makes no random numbers: the caller
//! passes 32 random bytes to [`TokenRecord::issue`].
//!
//! ```
//! use vasco_core::acl::{Action, Policy, TokenRecord, TokenRequest};
//! use vasco_core::ServiceName;
//!
//! let request = TokenRequest::from_json(
//!     r#"{"description": "api fleet", "policies": [{"write": ["api", "api-*"]}, {"read": ["*"]}]}"#,
//!     1_000,
//! ).unwrap();
//! let (record, text) = TokenRecord::issue(request, [7; 32], 1_000);
//! let (id, secret) = vasco_core::acl::parse_token(&text).unwrap();
//! assert_eq!(id, record.id);
//! assert!(record.verify(secret, 2_000));
//!
//! let api = ServiceName::parse("api-eu").unwrap();
//! let auth = ServiceName::parse("auth").unwrap();
//! assert!(record.policy.allows(Action::Write(&api)));
//! assert!(!record.policy.allows(Action::Write(&auth)));
//! assert!(record.policy.allows(Action::Read(&auth)));
//! assert!(!record.policy.allows(Action::Manage));
//! ```

use alloc::{format, string::String, vec::Vec};

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::{
    error::{Error, Result},
    instance::Millis,
    name::ServiceName,
};

/// The longest description, in characters.
pub const DESCRIPTION_LEN: usize = 256;
/// The most patterns one token may list (read and write together).
pub const MAX_PATTERNS: usize = 64;
/// The prefix of every token's text.
pub const TOKEN_PREFIX: &str = "vt.";

/// A service-name pattern: `*`, an exact name, or a prefix ending in `*`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pattern {
    /// Every service.
    Any,
    /// One service.
    Exact(String),
    /// Every service whose name starts with this.
    Prefix(String),
}

impl Pattern {
    /// Parses `*`, `api` or `api-*`. Errors: `invalid_policies` for anything else (a `*`
    /// anywhere but at the end, characters a service name cannot have).
    pub fn parse(text: &str) -> Result<Self> {
        if text == "*" {
            return Ok(Pattern::Any);
        }
        let (body, prefix) = match text.strip_suffix('*') {
            Some(body) => (body, true),
            None => (text, false),
        };
        let valid = !body.is_empty()
            && body.len() <= crate::name::MAX_NAME_LEN
            && body
                .chars()
                .all(|c| matches!(c, 'a'..='z' | '0'..='9' | '-' | '_' | '.'));
        if !valid {
            return Err(Error::invalid(
                "policies",
                format!(
                    "{text:?} is not a service pattern: use a name, a prefix ending in * \
                     (api-*), or *"
                ),
            ));
        }
        Ok(if prefix {
            Pattern::Prefix(body.into())
        } else {
            Pattern::Exact(body.into())
        })
    }

    /// Whether `service` matches.
    pub fn matches(&self, service: &ServiceName) -> bool {
        match self {
            Pattern::Any => true,
            Pattern::Exact(name) => service.as_str() == name,
            Pattern::Prefix(prefix) => service.as_str().starts_with(prefix.as_str()),
        }
    }

    /// The pattern as written.
    pub fn text(&self) -> String {
        match self {
            Pattern::Any => "*".into(),
            Pattern::Exact(name) => name.clone(),
            Pattern::Prefix(prefix) => format!("{prefix}*"),
        }
    }
}

/// What a request wants to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action<'a> {
    /// Read one service.
    Read(&'a ServiceName),
    /// Read every service (catalog, all instances, registry-wide feed).
    ReadAll,
    /// Register, renew, set the status of or deregister instances of one service.
    Write(&'a ServiceName),
    /// Manage tokens.
    Manage,
}

/// What a token may do: the union of its policies.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policy {
    /// Services it may read.
    pub read: Vec<Pattern>,
    /// Services it may write (and read).
    pub write: Vec<Pattern>,
    /// Everything, tokens included.
    pub manage: bool,
}

impl Policy {
    /// Everything: the bootstrap token's policy.
    pub fn everything() -> Self {
        Policy {
            manage: true,
            ..Policy::default()
        }
    }

    /// Read on every service: the legacy `VASCO_READ_TOKEN`'s policy.
    pub fn read_all() -> Self {
        Policy {
            read: alloc::vec![Pattern::Any],
            ..Policy::default()
        }
    }

    /// Whether the policy allows `action`.
    pub fn allows(&self, action: Action<'_>) -> bool {
        if self.manage {
            return true;
        }
        let any = |patterns: &[Pattern], service: &ServiceName| {
            patterns.iter().any(|p| p.matches(service))
        };
        match action {
            Action::Read(service) => any(&self.read, service) || any(&self.write, service),
            Action::ReadAll => {
                self.read.contains(&Pattern::Any) || self.write.contains(&Pattern::Any)
            }
            Action::Write(service) => any(&self.write, service),
            Action::Manage => false,
        }
    }

    /// Whether it allows reading anything at all (the admission check of read routes, before
    /// the service is known).
    pub fn reads_something(&self) -> bool {
        self.manage || !self.read.is_empty() || !self.write.is_empty()
    }

    /// Whether it allows writing anything at all (the admission check of write routes).
    pub fn writes_something(&self) -> bool {
        self.manage || !self.write.is_empty()
    }

    /// Parses the wire list `[{"write": [...]}, {"read": [...]}, {"manage": true}]`. Errors:
    /// `invalid_policies` for another shape, an unknown key, a bad pattern, more than
    /// [`MAX_PATTERNS`] patterns, or a list that grants nothing.
    pub fn from_value(value: &Value) -> Result<Self> {
        let bad = |why: &str| Error::invalid("policies", why);
        let items = value.as_array().ok_or_else(|| {
            bad("must be a list such as [{\"write\": [\"api\"]}, {\"read\": [\"*\"]}]")
        })?;
        let mut policy = Policy::default();
        for item in items {
            let object = item
                .as_object()
                .ok_or_else(|| bad("each policy is an object: {\"read\": [...]}, {\"write\": [...]} or {\"manage\": true}"))?;
            for (key, value) in object {
                match key.as_str() {
                    "read" | "write" => {
                        let patterns = value
                            .as_array()
                            .ok_or_else(|| bad("read and write take a list of service patterns"))?
                            .iter()
                            .map(|p| {
                                p.as_str()
                                    .ok_or_else(|| bad("service patterns are strings"))
                                    .and_then(Pattern::parse)
                            })
                            .collect::<Result<Vec<_>>>()?;
                        let target = if key == "read" {
                            &mut policy.read
                        } else {
                            &mut policy.write
                        };
                        for pattern in patterns {
                            if !target.contains(&pattern) {
                                target.push(pattern);
                            }
                        }
                    }
                    "manage" => match value {
                        Value::Bool(b) => policy.manage |= b,
                        _ => return Err(bad("manage takes true or false")),
                    },
                    other => {
                        return Err(bad(&format!(
                            "unknown policy {other:?} (expected read, write or manage)"
                        )))
                    }
                }
            }
        }
        if policy.read.len() + policy.write.len() > MAX_PATTERNS {
            return Err(bad(&format!("at most {MAX_PATTERNS} patterns")));
        }
        if !policy.reads_something() {
            return Err(bad("grants nothing: give read, write or manage"));
        }
        Ok(policy)
    }

    /// The wire list (see [`Policy::from_value`]).
    pub fn to_value(&self) -> Value {
        let mut items = Vec::new();
        if !self.write.is_empty() {
            items.push(json!({"write": self.write.iter().map(Pattern::text).collect::<Vec<_>>()}));
        }
        if !self.read.is_empty() {
            items.push(json!({"read": self.read.iter().map(Pattern::text).collect::<Vec<_>>()}));
        }
        if self.manage {
            items.push(json!({"manage": true}));
        }
        Value::Array(items)
    }
}

impl Serialize for Policy {
    fn serialize<S: serde::Serializer>(
        &self,
        serializer: S,
    ) -> core::result::Result<S::Ok, S::Error> {
        self.to_value().serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Policy {
    fn deserialize<D: serde::Deserializer<'de>>(
        deserializer: D,
    ) -> core::result::Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        Policy::from_value(&value).map_err(serde::de::Error::custom)
    }
}

/// The hex SHA-256 of a secret: what is stored instead of it.
pub fn hash_secret(secret: &str) -> String {
    let digest = Sha256::digest(secret.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// Splits a token's text `vt.<id>.<secret>` into id and secret; `None` for any other text
/// (a bootstrap token, a typo).
pub fn parse_token(text: &str) -> Option<(&str, &str)> {
    let rest = text.strip_prefix(TOKEN_PREFIX)?;
    let (id, secret) = rest.split_once('.')?;
    let hex = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_hexdigit());
    (hex(id) && hex(secret)).then_some((id, secret))
}

/// A request to create a token: `{"description", "policies", "expires_at"}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRequest {
    /// What it is for.
    pub description: String,
    /// What it may do.
    pub policy: Policy,
    /// When it stops working (ms since the epoch), if ever.
    pub expires_at: Option<Millis>,
}

impl TokenRequest {
    /// Parses the body of `POST /v1/acl/tokens` at `now`. Errors: `invalid_body`,
    /// `invalid_description`, `invalid_policies`, `invalid_expires_at` (not in the future).
    pub fn from_json(body: &str, now: Millis) -> Result<Self> {
        let value: Value = serde_json::from_str(body)
            .map_err(|e| Error::invalid("body", format!("is not valid JSON: {e}")))?;
        let object = value
            .as_object()
            .ok_or_else(|| Error::invalid("body", "must be a JSON object"))?;
        if let Some(key) = object
            .keys()
            .find(|k| !matches!(k.as_str(), "description" | "policies" | "expires_at"))
        {
            return Err(Error::invalid(
                "body",
                format!("unknown field {key:?} (expected description, policies, expires_at)"),
            ));
        }
        let description = match object.get("description") {
            None | Some(Value::Null) => String::new(),
            Some(Value::String(s))
                if s.chars().count() <= DESCRIPTION_LEN && !s.chars().any(char::is_control) =>
            {
                s.clone()
            }
            Some(_) => {
                return Err(Error::invalid(
                    "description",
                    format!("must be a string of at most {DESCRIPTION_LEN} characters without control characters"),
                ))
            }
        };
        let policy = Policy::from_value(
            object
                .get("policies")
                .ok_or_else(|| Error::invalid("policies", "is required"))?,
        )?;
        let expires_at = match object.get("expires_at") {
            None | Some(Value::Null) => None,
            Some(Value::Number(n)) => {
                Some(n.as_u64().filter(|at| *at > now).ok_or_else(|| {
                    Error::invalid("expires_at", "must be a time in ms after now")
                })?)
            }
            Some(_) => {
                return Err(Error::invalid(
                    "expires_at",
                    "must be ms since the epoch, or null",
                ))
            }
        };
        Ok(Self {
            description,
            policy,
            expires_at,
        })
    }
}

/// A stored token: never its secret, only the secret's hash.
///
/// Wire shape (storage; listings leave out `secret_hash`): `{"id", "description", "policies",
/// "created_at", "last_used_at", "expires_at", "secret_hash"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenRecord {
    /// The public id (16 hex digits).
    pub id: String,
    /// What it is for.
    pub description: String,
    /// What it may do.
    #[serde(rename = "policies")]
    pub policy: Policy,
    /// When it was created (ms).
    pub created_at: Millis,
    /// When it was last used (ms), recorded at most once a minute.
    #[serde(default)]
    pub last_used_at: Option<Millis>,
    /// When it stops working (ms), if ever.
    #[serde(default)]
    pub expires_at: Option<Millis>,
    /// [`hash_secret`] of its secret.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub secret_hash: String,
}

/// How often a token's `last_used_at` is written (ms): at most once a minute, so a busy token
/// does not cost a storage write per request.
pub const LAST_USED_EVERY_MS: Millis = 60_000;

impl TokenRecord {
    /// Creates a token from `request` with 32 `random` bytes (the first 8 make the id, the
    /// other 24 the secret); returns the record and the token's text, which only the caller
    /// ever sees.
    pub fn issue(request: TokenRequest, random: [u8; 32], now: Millis) -> (Self, String) {
        let hex = |bytes: &[u8]| bytes.iter().map(|b| format!("{b:02x}")).collect::<String>();
        let id = hex(&random[..8]);
        let secret = hex(&random[8..]);
        let record = TokenRecord {
            id: id.clone(),
            description: request.description,
            policy: request.policy,
            created_at: now,
            last_used_at: None,
            expires_at: request.expires_at,
            secret_hash: hash_secret(&secret),
        };
        (record, format!("{TOKEN_PREFIX}{id}.{secret}"))
    }

    /// Whether `secret` is this token's and the token has not expired at `now`. Compares the
    /// hashes in constant time.
    pub fn verify(&self, secret: &str, now: Millis) -> bool {
        self.verify_hash(&hash_secret(secret), now)
    }

    /// Like [`TokenRecord::verify`], given the [`hash_secret`] of the secret (so the secret
    /// itself need not travel further than the edge).
    pub fn verify_hash(&self, given: &str, now: Millis) -> bool {
        let same = given.len() == self.secret_hash.len()
            && given
                .bytes()
                .zip(self.secret_hash.bytes())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0;
        same && self.expires_at.is_none_or(|at| now < at)
    }

    /// Records a use at `now`; returns whether the record changed (a write is due).
    pub fn used(&mut self, now: Millis) -> bool {
        let due = self
            .last_used_at
            .is_none_or(|at| now.saturating_sub(at) >= LAST_USED_EVERY_MS);
        if due {
            self.last_used_at = Some(now);
        }
        due
    }

    /// The record as listings show it: without the secret's hash.
    pub fn listed(&self) -> Self {
        Self {
            secret_hash: String::new(),
            ..self.clone()
        }
    }
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;

    fn name(n: &str) -> ServiceName {
        ServiceName::parse(n).unwrap()
    }

    #[test]
    fn patterns_match_exact_prefix_and_any() {
        let p = Pattern::parse("api-*").unwrap();
        assert!(p.matches(&name("api-eu")) && !p.matches(&name("api")));
        assert!(Pattern::parse("api").unwrap().matches(&name("api")));
        assert!(!Pattern::parse("api").unwrap().matches(&name("api2")));
        assert!(Pattern::parse("*").unwrap().matches(&name("x")));
        for bad in ["", "a*b", "API", "**", "a b"] {
            assert_eq!(
                Pattern::parse(bad).unwrap_err().code(),
                "invalid_policies",
                "{bad}"
            );
        }
    }

    #[test]
    fn write_implies_read_and_manage_implies_all() {
        let p = Policy::from_value(&json!([{"write": ["api"]}])).unwrap();
        assert!(p.allows(Action::Read(&name("api"))));
        assert!(!p.allows(Action::Read(&name("auth"))));
        assert!(!p.allows(Action::ReadAll));
        assert!(Policy::everything().allows(Action::Manage));
        assert!(Policy::read_all().allows(Action::ReadAll));
        assert!(!Policy::read_all().allows(Action::Write(&name("api"))));
    }

    #[test]
    fn policies_round_trip_and_bad_ones_are_refused() {
        let p = Policy::from_value(
            &json!([{"write": ["api", "api-*"]}, {"read": ["*"]}, {"manage": false}]),
        )
        .unwrap();
        assert_eq!(Policy::from_value(&p.to_value()).unwrap(), p);
        for bad in [
            json!({}),
            json!([]),
            json!([{"admin": true}]),
            json!([{"read": "api"}]),
            json!([{"manage": false}]),
        ] {
            assert_eq!(
                Policy::from_value(&bad).unwrap_err().code(),
                "invalid_policies",
                "{bad}"
            );
        }
    }

    #[test]
    fn secrets_are_stored_hashed_and_verified_until_expiry() {
        let request =
            TokenRequest::from_json(r#"{"policies":[{"read":["*"]}],"expires_at":5000}"#, 1_000)
                .unwrap();
        let (record, text) = TokenRecord::issue(request, [9; 32], 1_000);
        let (_, secret) = parse_token(&text).unwrap();
        assert!(!serde_json::to_string(&record).unwrap().contains(secret));
        assert!(record.verify(secret, 4_999));
        assert!(!record.verify(secret, 5_000));
        assert!(!record.verify("00", 2_000));
        assert!(record.listed().secret_hash.is_empty());
        assert_eq!(parse_token("my-bootstrap-token"), None);
        assert_eq!(
            TokenRequest::from_json(r#"{"policies":[{"read":["*"]}],"expires_at":10}"#, 1_000)
                .unwrap_err()
                .code(),
            "invalid_expires_at"
        );
        assert_eq!(
            TokenRequest::from_json(r#"{"policies":[{"read":["*"]}],"x":1}"#, 0)
                .unwrap_err()
                .code(),
            "invalid_body"
        );
    }

    #[test]
    fn last_used_is_written_at_most_once_a_minute() {
        let request = TokenRequest::from_json(r#"{"policies":[{"read":["*"]}]}"#, 0).unwrap();
        let (mut record, _) = TokenRecord::issue(request, [1; 32], 0);
        assert!(record.used(10));
        assert!(!record.used(59_000));
        assert!(record.used(60_010));
    }
}
