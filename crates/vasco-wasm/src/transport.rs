//! The two ways to reach a registry, behind one set of calls: HTTP (the Worker's API, spoken
//! through a `fetch` the JavaScript side provides) and `memory:` (the core's [`Registry`] in
//! this process). A call builds its HTTP request and reads the answer, or runs directly against
//! the in-process registry; either way the caller gets the same typed result.

use std::fmt::Write as _;

use serde::Deserialize;
use serde_json::{json, Value};
use vasco_core::{
    Catalog, Dependencies, HealthUpdate, Instance, InstanceKey, InstanceSpec, Millis, Mocks, Query,
    Registry, Resolution, ServiceName, StatusFilter,
};

use crate::error::{Error, Result};

/// An HTTP request for the JavaScript `send` function.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpRequest {
    /// `GET`, `PUT`, `POST` or `DELETE`.
    pub method: &'static str,
    /// The absolute URL.
    pub url: String,
    /// A JSON body, if any.
    pub body: Option<String>,
    /// The bearer token to send, if any.
    pub token: Option<String>,
}

/// A registry reached over HTTP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpEndpoint {
    /// Base URL without a trailing slash.
    pub base: String,
    /// Bearer token for writes (and reads, when the registry wants one).
    pub token: Option<String>,
}

impl HttpEndpoint {
    fn request(&self, method: &'static str, path: &str, body: Option<String>) -> HttpRequest {
        HttpRequest {
            method,
            url: format!("{}{path}", self.base),
            body,
            token: self.token.clone(),
        }
    }
}

/// The in-process registry of `memory:` mode, with a counter that moves on every change so
/// cached answers know when to look again.
#[derive(Debug, Default)]
pub struct MemoryRegistry {
    registry: Registry,
    generation: u64,
    collected_at: Millis,
}

impl MemoryRegistry {
    /// The change counter.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    fn changed(&mut self) {
        if !self.registry.take_changes().is_empty() {
            self.generation += 1;
        }
    }

    /// Drops lapsed leases now and then (reads skip them anyway).
    fn collect(&mut self, now: Millis) {
        if now >= self.collected_at + 1_000 {
            self.collected_at = now;
            self.registry.expire(now);
            self.changed();
        }
    }
}

/// One request to the registry.
pub trait Call {
    /// What a successful call yields.
    type Output;
    /// The HTTP request.
    fn request(&self, endpoint: &HttpEndpoint) -> HttpRequest;
    /// Reads a 2xx answer.
    fn parse(&self, body: &str) -> Result<Self::Output>;
    /// Runs the call against the in-process registry.
    fn run(&self, memory: &mut MemoryRegistry, now: Millis) -> Result<Self::Output>;
}

/// Reads an HTTP answer of `call`: 2xx is parsed, 4xx becomes [`Error::Registry`] with the
/// registry's own code and message, 5xx and 429 mean [`Error::Unavailable`] (with the status
/// and the registry's code, e.g. 503 `not_configured`).
pub fn read_response<C: Call>(call: &C, status: u16, body: &str) -> Result<C::Output> {
    match status {
        200..=299 => call.parse(body),
        429 | 500..=599 | 0 => {
            let (code, message) = error_message(body);
            Err(Error::Unavailable {
                reason: message,
                status: (status != 0).then_some(status),
                registry_code: Some(code).filter(|c| c != UNKNOWN_CODE),
                request: String::new(),
            })
        }
        _ => {
            let (code, message) = error_message(body);
            Err(Error::Registry {
                status,
                code,
                message,
                request: String::new(),
                hint: String::new(),
            })
        }
    }
}

/// The code of an error body that is not the registry's `{"error": ...}`.
const UNKNOWN_CODE: &str = "registry_error";

/// `x-vasco-now`, the registry's clock when it answered (ms since the Unix epoch), as the
/// JavaScript side read it; `None` when absent or unreadable.
pub fn registry_now(header: Option<&str>) -> Option<Millis> {
    header?.trim().parse::<Millis>().ok()
}

/// `{"error": {"code", "message"}}`, or something sensible for any other body.
fn error_message(body: &str) -> (String, String) {
    #[derive(Deserialize)]
    struct Body {
        error: Inner,
    }
    #[derive(Deserialize)]
    struct Inner {
        code: String,
        message: String,
    }
    match serde_json::from_str::<Body>(body) {
        Ok(Body { error }) => (error.code, error.message),
        Err(_) => {
            let text: String = body.chars().take(200).collect();
            (UNKNOWN_CODE.into(), text)
        }
    }
}

fn bad(what: &str, e: impl core::fmt::Display) -> Error {
    Error::BadResponse {
        reason: format!("{what}: {e}"),
    }
}

/// Percent-encodes a query parameter value (everything outside the unreserved set).
fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(byte as char);
        } else {
            let _ = write!(out, "%{byte:02X}");
        }
    }
    out
}

fn instance_path(key: &InstanceKey) -> String {
    format!(
        "/v1/services/{}/{}/instances/{}",
        key.service, key.version, key.id
    )
}

/// `POST /v1/resolve`: every dependency in one round trip.
#[derive(Debug, Clone)]
pub struct ResolveCall {
    /// What to resolve (mocked names are left out by the caller).
    pub dependencies: Dependencies,
}

impl Call for ResolveCall {
    type Output = Resolution;

    fn request(&self, endpoint: &HttpEndpoint) -> HttpRequest {
        let deps: serde_json::Map<String, Value> = self
            .dependencies
            .0
            .iter()
            .map(|(name, req)| (name.as_str().into(), Value::String(req.as_str().into())))
            .collect();
        let body = json!({ "dependencies": deps }).to_string();
        endpoint.request("POST", "/v1/resolve", Some(body))
    }

    fn parse(&self, body: &str) -> Result<Resolution> {
        serde_json::from_str(body).map_err(|e| bad("resolve", e))
    }

    fn run(&self, memory: &mut MemoryRegistry, now: Millis) -> Result<Resolution> {
        memory.collect(now);
        Ok(memory
            .registry
            .resolve(&self.dependencies, &Mocks::default(), now))
    }
}

/// `GET /v1/services/{name}?version=&tag=&zone=`: live instances, newest version first.
#[derive(Debug, Clone)]
pub struct InstancesCall {
    /// The service.
    pub service: ServiceName,
    /// Version requirement, tags and zone.
    pub query: Query,
}

impl Call for InstancesCall {
    type Output = Vec<Instance>;

    fn request(&self, endpoint: &HttpEndpoint) -> HttpRequest {
        let mut path = format!("/v1/services/{}", self.service);
        let mut params = Vec::new();
        if !self.query.version.is_any() {
            params.push(format!("version={}", encode(self.query.version.as_str())));
        }
        for tag in &self.query.tags {
            params.push(format!("tag={}", encode(tag)));
        }
        if let Some(zone) = &self.query.zone {
            params.push(format!("zone={}", encode(zone)));
        }
        // The registry's own spellings of the status filter; the default says nothing.
        let statuses = self.query.statuses;
        if statuses == StatusFilter::PASSING {
            params.push("passing".into());
        } else if statuses == StatusFilter::ALL {
            params.push("all".into());
        } else if statuses != StatusFilter::DEFAULT {
            let names: Vec<&str> = statuses.iter().map(|s| s.name()).collect();
            params.push(format!("status={}", names.join(",")));
        }
        if !params.is_empty() {
            path.push('?');
            path.push_str(&params.join("&"));
        }
        endpoint.request("GET", &path, None)
    }

    fn parse(&self, body: &str) -> Result<Vec<Instance>> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Answer {
            Wrapped { instances: Vec<Instance> },
            Bare(Vec<Instance>),
        }
        match serde_json::from_str(body).map_err(|e| bad("instances", e))? {
            Answer::Wrapped { instances } | Answer::Bare(instances) => Ok(instances),
        }
    }

    fn run(&self, memory: &mut MemoryRegistry, now: Millis) -> Result<Vec<Instance>> {
        memory.collect(now);
        Ok(memory
            .registry
            .instances(&self.service, &self.query, now)
            .into_iter()
            .cloned()
            .collect())
    }
}

/// `PUT /v1/services/{name}/{version}/instances/{id}`: register, or renew (an upsert).
#[derive(Debug, Clone)]
pub struct RegisterCall {
    /// Who.
    pub key: InstanceKey,
    /// Where, and with which lease.
    pub spec: InstanceSpec,
}

impl Call for RegisterCall {
    type Output = Instance;

    /// The registration body of the spec ([`InstanceSpec::to_json_value`]), with the health
    /// fields it carries (a maintenance set, its latest check result).
    fn request(&self, endpoint: &HttpEndpoint) -> HttpRequest {
        let body = self.spec.to_json_value();
        endpoint.request("PUT", &instance_path(&self.key), Some(body.to_string()))
    }

    fn parse(&self, body: &str) -> Result<Instance> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Answer {
            Wrapped { instance: Instance },
            Bare(Instance),
        }
        match serde_json::from_str(body).map_err(|e| bad("register", e))? {
            Answer::Wrapped { instance } | Answer::Bare(instance) => Ok(instance),
        }
    }

    fn run(&self, memory: &mut MemoryRegistry, now: Millis) -> Result<Instance> {
        let instance = memory
            .registry
            .register(self.key.clone(), self.spec.clone(), now)?
            .clone();
        memory.changed();
        Ok(instance)
    }
}

/// The wire form of a health update ([`HealthUpdate::to_value`]).
pub fn update_json(update: &HealthUpdate) -> Value {
    update.to_value()
}

/// `PUT /v1/services/{name}/{version}/instances/{id}/status`: a status set or a check result
/// for a live instance (its lease is not renewed). Answers the stored instance.
#[derive(Debug, Clone)]
pub struct StatusCall {
    /// Who.
    pub key: InstanceKey,
    /// What.
    pub update: HealthUpdate,
}

impl Call for StatusCall {
    type Output = Instance;

    fn request(&self, endpoint: &HttpEndpoint) -> HttpRequest {
        let path = format!("{}/status", instance_path(&self.key));
        endpoint.request("PUT", &path, Some(update_json(&self.update).to_string()))
    }

    fn parse(&self, body: &str) -> Result<Instance> {
        serde_json::from_str(body).map_err(|e| bad("status", e))
    }

    fn run(&self, memory: &mut MemoryRegistry, now: Millis) -> Result<Instance> {
        let (instance, _) = memory.registry.set_health(&self.key, &self.update, now)?;
        let instance = instance.clone();
        memory.changed();
        Ok(instance)
    }
}

/// `DELETE /v1/services/{name}/{version}/instances/{id}`: deregister. An instance the registry
/// does not know (any more) is not an error: it is gone either way.
#[derive(Debug, Clone)]
pub struct DeregisterCall {
    /// Who.
    pub key: InstanceKey,
}

impl Call for DeregisterCall {
    type Output = ();

    fn request(&self, endpoint: &HttpEndpoint) -> HttpRequest {
        endpoint.request("DELETE", &instance_path(&self.key), None)
    }

    fn parse(&self, _body: &str) -> Result<()> {
        Ok(())
    }

    fn run(&self, memory: &mut MemoryRegistry, now: Millis) -> Result<()> {
        let result = memory.registry.deregister(&self.key, now);
        memory.changed();
        match result {
            Ok(_) | Err(vasco_core::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

/// Whether a deregistration error only says the instance was already gone.
pub fn already_gone(error: &Error) -> bool {
    matches!(error, Error::Registry { status: 404, .. })
}

/// `GET /v1/services`: every service with its versions and live instance counts.
#[derive(Debug, Clone)]
pub struct CatalogCall;

impl Call for CatalogCall {
    type Output = Value;

    fn request(&self, endpoint: &HttpEndpoint) -> HttpRequest {
        endpoint.request("GET", "/v1/services", None)
    }

    fn parse(&self, body: &str) -> Result<Value> {
        serde_json::from_str(body).map_err(|e| bad("catalog", e))
    }

    fn run(&self, memory: &mut MemoryRegistry, now: Millis) -> Result<Value> {
        memory.collect(now);
        let catalog: Catalog = memory.registry.catalog(now);
        serde_json::to_value(catalog).map_err(|e| bad("catalog", e))
    }
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;
    use vasco_core::{InstanceId, Version};

    fn endpoint() -> HttpEndpoint {
        HttpEndpoint {
            base: "http://127.0.0.1:8787".into(),
            token: Some("t".into()),
        }
    }

    fn key() -> InstanceKey {
        InstanceKey {
            service: ServiceName::parse("api").unwrap(),
            version: Version::parse("2.1.0").unwrap(),
            id: InstanceId::parse("a1").unwrap(),
        }
    }

    #[test]
    fn requests() {
        let call = InstancesCall {
            service: ServiceName::parse("api").unwrap(),
            query: Query {
                version: vasco_core::VersionReq::parse(">=1 <3").unwrap(),
                tags: vec!["canary".into()],
                zone: Some("eu-1".into()),
                statuses: vasco_core::StatusFilter::DEFAULT,
            },
        };
        let req = call.request(&endpoint());
        assert_eq!(req.method, "GET");
        assert_eq!(
            req.url,
            "http://127.0.0.1:8787/v1/services/api?version=%3E%3D1%20%3C3&tag=canary&zone=eu-1"
        );
        let put = RegisterCall {
            key: key(),
            spec: InstanceSpec {
                ttl_ms: 1_500,
                ..InstanceSpec::new("10.0.0.1:3000").unwrap()
            },
        }
        .request(&endpoint());
        assert_eq!(
            put.url,
            "http://127.0.0.1:8787/v1/services/api/2.1.0/instances/a1"
        );
        let body: Value = serde_json::from_str(put.body.as_deref().unwrap()).unwrap();
        assert_eq!(body["ttl"], json!(1.5));
        assert_eq!(body["url"], json!("10.0.0.1:3000"));
        // The body is exactly what the core accepts.
        assert_eq!(InstanceSpec::from_json_value(&body).unwrap().ttl_ms, 1_500);
        assert_eq!(put.token.as_deref(), Some("t"));
        let resolve = ResolveCall {
            dependencies: Dependencies::parse([("api", "^2")]).unwrap(),
        }
        .request(&endpoint());
        assert_eq!(resolve.body.unwrap(), r#"{"dependencies":{"api":"^2"}}"#);
    }

    #[test]
    fn responses() {
        let call = DeregisterCall { key: key() };
        let err = read_response(
            &call,
            401,
            r#"{"error":{"code":"unauthorized","message":"bad token"}}"#,
        )
        .unwrap_err();
        assert_eq!(err.code(), "unauthorized");
        assert!(err.to_string().contains("bad token"));
        assert!(read_response(&call, 503, "down")
            .unwrap_err()
            .is_unavailable());
        let not_configured = read_response(
            &call,
            503,
            r#"{"error":{"code":"not_configured","message":"writes are disabled"}}"#,
        )
        .unwrap_err();
        assert_eq!(
            not_configured,
            Error::Unavailable {
                reason: "writes are disabled".into(),
                status: Some(503),
                registry_code: Some("not_configured".into()),
                request: String::new(),
            }
        );
        assert_eq!(
            registry_now(Some(" 1767225600123 ")),
            Some(1_767_225_600_123)
        );
        assert_eq!(registry_now(Some("soon")), None);
        assert_eq!(registry_now(None), None);
        assert!(already_gone(&read_response(&call, 404, "{}").unwrap_err()));
        let bad = read_response(&CatalogCall, 200, "not json").unwrap_err();
        assert_eq!(bad.code(), "bad_response");
    }

    #[test]
    fn memory_calls_move_the_generation() {
        let mut memory = MemoryRegistry::default();
        let now = 1_000_000;
        let register = RegisterCall {
            key: key(),
            spec: InstanceSpec::new("h:1").unwrap(),
        };
        register.run(&mut memory, now).unwrap();
        let after_register = memory.generation();
        assert!(after_register > 0);
        let found = InstancesCall {
            service: ServiceName::parse("api").unwrap(),
            query: Query::any(),
        }
        .run(&mut memory, now)
        .unwrap();
        assert_eq!(found.len(), 1);
        let resolution = ResolveCall {
            dependencies: Dependencies::parse([("api", "2"), ("db", "*")]).unwrap(),
        }
        .run(&mut memory, now)
        .unwrap();
        assert_eq!(resolution.missing, vec!["db".to_string()]);
        DeregisterCall { key: key() }.run(&mut memory, now).unwrap();
        assert!(memory.generation() > after_register);
        // Gone twice is fine.
        DeregisterCall { key: key() }.run(&mut memory, now).unwrap();
    }

    #[test]
    fn status_filters_and_health_fields_on_the_wire() {
        let call = |statuses| InstancesCall {
            service: ServiceName::parse("api").unwrap(),
            query: Query {
                statuses,
                ..Query::any()
            },
        };
        let url = |statuses| call(statuses).request(&endpoint()).url;
        assert_eq!(
            url(StatusFilter::DEFAULT),
            "http://127.0.0.1:8787/v1/services/api"
        );
        assert!(url(StatusFilter::PASSING).ends_with("/v1/services/api?passing"));
        assert!(url(StatusFilter::ALL).ends_with("/v1/services/api?all"));
        let custom = StatusFilter::parse("critical,passing").unwrap();
        assert!(url(custom).ends_with("?status=passing,critical"));

        // A registration carrying a maintenance set and a check result: the registry's body.
        let mut spec = InstanceSpec::new("10.0.0.1:3000").unwrap();
        spec.health.set = Some(HealthUpdate::set(
            vasco_core::Status::Maintenance,
            Some("shutdown".into()),
        ));
        spec.health.check = Some(HealthUpdate::check(
            vasco_core::Status::Critical,
            Some("db".into()),
        ));
        let put = RegisterCall { key: key(), spec }.request(&endpoint());
        let body: Value = serde_json::from_str(put.body.as_deref().unwrap()).unwrap();
        assert_eq!(body["status"], json!("maintenance"));
        assert_eq!(body["reason"], json!("shutdown"));
        assert_eq!(body["check"], json!({"status": "critical", "note": "db"}));
        let parsed = InstanceSpec::from_json_value(&body).unwrap();
        assert_eq!(
            parsed.health.set.unwrap().status(),
            Some(vasco_core::Status::Maintenance)
        );

        let status = StatusCall {
            key: key(),
            update: HealthUpdate::Set {
                status: vasco_core::Status::Warning,
                reason: None,
                by: Some("ops".into()),
            },
        }
        .request(&endpoint());
        assert_eq!(status.method, "PUT");
        assert!(status
            .url
            .ends_with("/v1/services/api/2.1.0/instances/a1/status"));
        let body = status.body.unwrap();
        assert_eq!(
            serde_json::from_str::<Value>(&body).unwrap(),
            json!({"status": "warning", "by": "ops"})
        );
        assert!(
            HealthUpdate::from_json(&body).is_ok(),
            "what the registry parses"
        );
    }

    #[test]
    fn memory_status_sets_change_lookups_and_the_generation() {
        let mut memory = MemoryRegistry::default();
        let now = 1_000_000;
        RegisterCall {
            key: key(),
            spec: InstanceSpec::new("h:1").unwrap(),
        }
        .run(&mut memory, now)
        .unwrap();
        let generation = memory.generation();
        let drain = StatusCall {
            key: key(),
            update: HealthUpdate::set(vasco_core::Status::Maintenance, None),
        };
        let instance = drain.run(&mut memory, now).unwrap();
        assert_eq!(instance.health.status, vasco_core::Status::Maintenance);
        assert!(memory.generation() > generation);
        let lookup = |statuses| InstancesCall {
            service: ServiceName::parse("api").unwrap(),
            query: Query {
                statuses,
                ..Query::any()
            },
        };
        assert!(lookup(StatusFilter::DEFAULT)
            .run(&mut memory, now)
            .unwrap()
            .is_empty());
        assert_eq!(
            lookup(StatusFilter::ALL)
                .run(&mut memory, now)
                .unwrap()
                .len(),
            1
        );
        // A repeat changes nothing.
        let generation = memory.generation();
        drain.run(&mut memory, now).unwrap();
        assert_eq!(memory.generation(), generation);
        let gone = StatusCall {
            key: InstanceKey {
                id: InstanceId::parse("zz").unwrap(),
                ..key()
            },
            update: HealthUpdate::set(vasco_core::Status::Passing, None),
        };
        assert_eq!(gone.run(&mut memory, now).unwrap_err().code(), "not_found");
    }
}
