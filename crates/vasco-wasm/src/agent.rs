//! `vasco agent`: the state of the local sidecar, for its JavaScript layer (`js/agent/`).
//!
//! The agent serves Consul's agent HTTP API and DNS next to services, runs their HTTP and TCP
//! checks and holds their leases at the edge registry. Everything it decides is the core's:
//! registrations are read with [`vasco_core::wire::consul::ServiceRegistration`] (the same
//! code as the Worker's Consul routes, with the agent's address for a missing `Address`), check
//! results go through [`CheckRun`], answers are rendered by the core's Consul answer types,
//! and DNS answers are [`vasco_core::wire::dns::Zone`]'s. Here:
//!
//! * [`AgentCore`]: the services registered through this agent (by Consul service ID) and the
//!   local copy of every service it was asked about, kept from the edge's change feeds
//!   ([`Membership`]), free of I/O and tested natively;
//! * [`Agent`]: the same, as a wasm-bindgen class; the JavaScript side owns the sockets, the
//!   HTTP and DNS servers, timers and signals.

use std::collections::{BTreeMap, HashMap};

use serde_json::{json, Value};
use wasm_bindgen::prelude::*;

use vasco_core::{
    blocking::{parse_duration_ms, parse_index, BlockingQuery},
    codec,
    wire::{
        consul::{
            self, check_update_body, checks_of, http_check_status, maintenance_body, parse_bool,
            AgentService, CatalogService, CheckKind, CheckRun, HealthCheck, Runner, ServiceEntry,
            ServiceRegistration,
        },
        dns::{shuffle, udp_payload_limit, Lookup, QueryType, Rcode, Response, Zone},
    },
    Instance, InstanceKey, InstanceSpec, Millis, Query, ServiceName, SplitMix64, StatusFilter,
};

use crate::{
    client::{Endpoint, Kind},
    convert::{entropy, set, to_js, JsErr},
    feed::{FeedMessage, LeaseStep, Membership},
};

/// The lease an agent holds for the services whose checks it runs (and those without a
/// check), renewed every third of it while the agent lives.
pub const DEFAULT_LEASE_MS: u64 = 15_000;

/// An error of the agent's Consul API: the HTTP status and Consul's short text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentError {
    /// 400 (bad input), 404 (unknown ID).
    pub status: u16,
    /// The message (plain text, as Consul answers errors).
    pub message: String,
}

impl AgentError {
    fn bad(message: impl Into<String>) -> Self {
        Self {
            status: 400,
            message: message.into(),
        }
    }

    fn unknown(what: &str, id: &str) -> Self {
        Self {
            status: 404,
            message: format!("Unknown {what} ID {id:?}. Ensure that the {what} ID is passed, not the {what} name."),
        }
    }
}

impl From<vasco_core::Error> for AgentError {
    fn from(error: vasco_core::Error) -> Self {
        Self::bad(error.to_string())
    }
}

/// One service registered through the agent.
#[derive(Debug, Clone)]
struct Local {
    registration: ServiceRegistration,
    /// The registration body as sent (kept for the data directory).
    raw: String,
    /// The registry's registration body.
    body: Value,
    /// The record of the check the agent runs (HTTP and TCP checks).
    run: Option<CheckRun>,
    /// The instance as the registry last answered it (a local record before that).
    last: Instance,
}

/// What the JavaScript side needs to run a registration: where its lease lives and which
/// check to run.
#[derive(Debug, Clone, PartialEq)]
pub struct Registered {
    /// The Consul service ID.
    pub id: String,
    /// The registry's instance.
    pub key: InstanceKey,
    /// The instance the same ID named before, when it was another one (to deregister).
    pub replaced: Option<InstanceKey>,
    /// The check to run: `{kind: "http"|"tcp"|"ttl", ...}` (see `check_plan`); `None`
    /// without a check.
    pub check: Option<Value>,
    /// Whether the agent renews the lease (false for a TTL check, whose results renew it,
    /// so that `DeregisterCriticalServiceAfter` can end it).
    pub renews: bool,
}

/// The check an agent runs, for the JavaScript runner: `{id, kind, interval_ms, timeout_ms,
/// url, method, headers, body, tls_skip_verify}` (HTTP), `{id, kind, interval_ms, timeout_ms,
/// address}` (TCP) or `{id, kind: "ttl", ttl_ms}`.
fn check_plan(registration: &ServiceRegistration) -> Option<Value> {
    let check = registration.check.as_ref()?;
    Some(match &check.kind {
        CheckKind::Ttl { ttl_ms } => json!({"id": check.id, "kind": "ttl", "ttl_ms": ttl_ms}),
        CheckKind::Http {
            url,
            method,
            headers,
            body,
            interval_ms,
            timeout_ms,
            tls_skip_verify,
        } => json!({
            "id": check.id, "kind": "http", "url": url, "method": method, "headers": headers,
            "body": body, "interval_ms": interval_ms, "timeout_ms": timeout_ms,
            "tls_skip_verify": tls_skip_verify,
        }),
        CheckKind::Tcp {
            address,
            interval_ms,
            timeout_ms,
        } => json!({
            "id": check.id, "kind": "tcp", "address": address, "interval_ms": interval_ms,
            "timeout_ms": timeout_ms,
        }),
    })
}

/// What a lease socket's message means for a registration.
#[derive(Debug, Clone, PartialEq)]
pub enum LeaseReply {
    /// The registry holds the instance (`registered`, `renewed` or `status`, with the record).
    Held,
    /// The registry lost the instance (`not_found`): register again.
    Register,
    /// The registry refused (`{status, message}`): report, retry later.
    Refused(u16, String),
    /// The lease ended on the registry's side (`closed`).
    Ended,
    /// Nothing to do.
    Nothing,
}

/// The answer to a read of the agent's Consul API.
#[derive(Debug, Clone, PartialEq)]
pub enum ReadAnswer {
    /// The service has no local copy yet: open its feed, then ask again.
    Missing(ServiceName),
    /// The JSON body, the `X-Consul-Index`, and the blocking query asked for.
    Body {
        /// The service's change index (at least 1).
        index: u64,
        /// The JSON answer.
        body: String,
        /// `?index=&wait=`.
        blocking: BlockingQuery,
        /// The service read (`None` for a name with no Vasco equivalent).
        service: Option<ServiceName>,
    },
}

/// The agent's state: its registrations and its local copy of the registry.
#[derive(Debug)]
pub struct AgentCore {
    zone: Zone,
    lease_ms: u64,
    address: String,
    copies: BTreeMap<ServiceName, Membership>,
    /// Every leased instance of each copy, in the one order readers answer: computed when the
    /// copy changes, so that a read or a DNS answer clones nothing.
    members: BTreeMap<ServiceName, Vec<Instance>>,
    /// Positive service answers before shuffling, by question (the name as asked, the type),
    /// each record already as JSON text: kept until the service's copy changes.
    answers: HashMap<(String, String), CachedAnswer>,
    locals: BTreeMap<String, Local>,
    rng: SplitMix64,
}

/// The most answers kept; beyond it the cache starts again (names differing only in case are
/// distinct questions, so their number has no other bound).
const MAX_CACHED_ANSWERS: usize = 4096;

/// A positive service answer kept for its question.
#[derive(Debug, Clone)]
struct CachedAnswer {
    service: ServiceName,
    answers: Vec<String>,
    additionals: String,
}

impl CachedAnswer {
    fn of(service: &ServiceName, response: &Response) -> Self {
        let json = |records: &[vasco_core::wire::dns::Record]| -> Vec<String> {
            records.iter().map(|r| r.to_json().to_string()).collect()
        };
        Self {
            service: service.clone(),
            answers: json(&response.answers),
            additionals: json(&response.additionals).join(","),
        }
    }

    /// The answer as [`Response::to_json`] writes it, its answers shuffled.
    fn render(&self, rng: &mut SplitMix64) -> String {
        let mut answers: Vec<&str> = self.answers.iter().map(String::as_str).collect();
        shuffle(&mut answers, rng);
        format!(
            r#"{{"rcode":"NOERROR","rcodeCode":0,"answers":[{}],"authorities":[],"additionals":[{}]}}"#,
            answers.join(","),
            self.additionals
        )
    }
}

impl AgentCore {
    /// An agent answering DNS for `domain` with service records of `ttl_s`, holding leases of
    /// `lease_ms` (at least 3 s), giving registrations without `Address` the address
    /// `address`. Errors: a bad domain.
    pub fn new(
        domain: &str,
        ttl_s: u32,
        lease_ms: u64,
        address: &str,
        seed: u64,
    ) -> Result<Self, AgentError> {
        Ok(Self {
            zone: Zone::new(domain, ttl_s)?,
            lease_ms: lease_ms.max(3_000),
            address: address.into(),
            copies: BTreeMap::new(),
            members: BTreeMap::new(),
            answers: HashMap::new(),
            locals: BTreeMap::new(),
            rng: SplitMix64::from_seed(seed),
        })
    }

    /// The lease the agent holds (ms).
    pub fn lease_ms(&self) -> u64 {
        self.lease_ms
    }

    /// Reads and stores a `PUT /v1/agent/service/register` body at `now`. A re-registration
    /// of the same ID with the same check keeps the check's record (as Consul keeps a
    /// check's status). Errors: 400 with the core's message for anything the registry would
    /// refuse (checked here, before anything is sent).
    pub fn register(&mut self, raw: &str, now: Millis) -> Result<Registered, AgentError> {
        let registration = ServiceRegistration::parse(raw.as_bytes(), Some(&self.address))?;
        let body = registration.native_body(Runner::Agent {
            lease_ms: self.lease_ms,
        })?;
        let spec = InstanceSpec::from_json_value(&body)?;
        let last = Instance::lease(registration.key.clone(), spec, now, None);
        codec::encode_record(&last)?;
        let id = registration.id.clone();
        let previous = self.locals.remove(&id);
        let run = match (&registration.check, previous.as_ref()) {
            (Some(check), _) if matches!(check.kind, CheckKind::Ttl { .. }) => None,
            (Some(check), Some(p)) if p.registration.check.as_ref() == Some(check) => p.run.clone(),
            (Some(check), _) => Some(CheckRun::new(check, now)),
            (None, _) => None,
        };
        let renews = !matches!(
            registration.check.as_ref().map(|c| &c.kind),
            Some(CheckKind::Ttl { .. })
        );
        let registered = Registered {
            id: id.clone(),
            key: registration.key.clone(),
            replaced: previous
                .map(|p| p.registration.key)
                .filter(|k| *k != registration.key),
            check: check_plan(&registration),
            renews,
        };
        self.locals.insert(
            id,
            Local {
                registration,
                raw: raw.into(),
                body,
                run,
                last,
            },
        );
        Ok(registered)
    }

    fn local(&self, id: &str) -> Result<&Local, AgentError> {
        self.locals
            .get(id)
            .ok_or_else(|| AgentError::unknown("service", id))
    }

    /// The IDs of every registration.
    pub fn ids(&self) -> Vec<String> {
        self.locals.keys().cloned().collect()
    }

    /// The registration's instance.
    pub fn key(&self, id: &str) -> Result<InstanceKey, AgentError> {
        Ok(self.local(id)?.registration.key.clone())
    }

    /// The registry's registration body for `id`, its check starting in the agent's current
    /// check status.
    pub fn registration_body(&self, id: &str) -> Result<Value, AgentError> {
        let local = self.local(id)?;
        Ok(match &local.run {
            Some(run) => run.registration_body(&local.body),
            None => local.body.clone(),
        })
    }

    /// Removes a registration; answers its instance. Errors: 404 for an unknown ID.
    pub fn deregister(&mut self, id: &str) -> Result<InstanceKey, AgentError> {
        self.locals
            .remove(id)
            .map(|l| l.registration.key)
            .ok_or_else(|| AgentError::unknown("service", id))
    }

    /// What a message on `id`'s lease socket means; a record in it becomes the registration's
    /// last known instance and confirms its check state.
    pub fn lease_reply(&mut self, id: &str, text: &str) -> LeaseReply {
        let value: Value = serde_json::from_str(text).unwrap_or(Value::Null);
        let kind = value.get("type").and_then(Value::as_str).unwrap_or("");
        if matches!(kind, "registered" | "renewed" | "status") {
            if let Some(instance) = value
                .get("instance")
                .cloned()
                .and_then(|i| serde_json::from_value::<Instance>(i).ok())
            {
                if let Some(local) = self.locals.get_mut(id) {
                    if instance.key() == local.registration.key {
                        if let Some(run) = local.run.as_mut() {
                            run.confirm(&instance.health);
                        }
                        local.last = instance;
                    }
                }
                return LeaseReply::Held;
            }
        }
        match LeaseStep::parse(text) {
            LeaseStep::Held(_) => LeaseReply::Held,
            LeaseStep::Register => LeaseReply::Register,
            LeaseStep::Refused(error) => {
                let status = match &error {
                    crate::error::Error::Registry { status, .. } => *status,
                    crate::error::Error::Unavailable { status, .. } => status.unwrap_or(503),
                    _ => 400,
                };
                LeaseReply::Refused(status, error.to_string())
            }
            LeaseStep::Ended => LeaseReply::Ended,
            LeaseStep::Nothing => LeaseReply::Nothing,
        }
    }

    /// Records that the registry's copy of `id`'s check state is unknown (its socket is
    /// gone): the next result is sent whatever it is.
    pub fn lease_lost(&mut self, id: &str) {
        if let Some(run) = self.locals.get_mut(id).and_then(|l| l.run.as_mut()) {
            run.unconfirm();
        }
    }

    /// One result of `id`'s check (`status`: `passing`, `warning` or `critical`) at `now`:
    /// the status body to send (if any) and whether to deregister the service (critical for
    /// its `DeregisterCriticalServiceAfter`). `None` for an unknown ID or a TTL check.
    pub fn check_result(
        &mut self,
        id: &str,
        status: &str,
        output: Option<&str>,
        now: Millis,
    ) -> Option<(Option<Value>, bool)> {
        let status = status.parse().ok()?;
        let run = self.locals.get_mut(id)?.run.as_mut()?;
        let step = run.report(status, output, now);
        Some((step.send, step.reap))
    }

    /// `PUT /v1/agent/check/<verb>/<check_id>` (`?note=`, or the `update` body): the
    /// registration's ID and the status body. Errors: 404 for an unknown check, 400 for a
    /// check the agent runs itself (Consul: only TTL checks take results) or a bad body.
    pub fn check_update(
        &self,
        check_id: &str,
        verb: &str,
        note: Option<&str>,
        body: Option<&[u8]>,
    ) -> Result<(String, Value), AgentError> {
        let (id, local) = self
            .locals
            .iter()
            .find(|(_, l)| l.registration.check.as_ref().map(|c| c.id.as_str()) == Some(check_id))
            .ok_or_else(|| AgentError::unknown("check", check_id))?;
        if local.run.is_some() {
            return Err(AgentError::bad(format!(
                "CheckID {check_id:?} does not have associated TTL: the agent runs this check itself"
            )));
        }
        Ok((id.clone(), check_update_body(verb, note, body)?))
    }

    /// `PUT /v1/agent/service/maintenance/<id>?enable=&reason=`: the status body. Errors: 404
    /// for an unknown ID.
    pub fn maintenance(
        &self,
        id: &str,
        enable: bool,
        reason: Option<&str>,
    ) -> Result<Value, AgentError> {
        self.local(id)?;
        Ok(maintenance_body(enable, reason))
    }

    /// Applies one change-feed message; answers the service whose copy moved.
    pub fn apply_feed(&mut self, text: &str) -> Option<ServiceName> {
        let changed = match FeedMessage::parse(text).ok()? {
            FeedMessage::Snapshot {
                service,
                index,
                instances,
            } => {
                let membership = Membership::from_snapshot(index, instances);
                let changed = self.copies.get(&service) != Some(&membership);
                self.copies.insert(service.clone(), membership);
                changed.then_some(service)
            }
            FeedMessage::Change(event) => {
                let service = event.service.clone();
                let copy = self.copies.get_mut(&service)?;
                copy.apply(event).then_some(service)
            }
            FeedMessage::Other => None,
        }?;
        self.refresh(&changed);
        Some(changed)
    }

    /// Recomputes the members of the copy of `service`.
    fn refresh(&mut self, service: &ServiceName) {
        self.answers.retain(|_, a| a.service != *service);
        let Some(copy) = self.copies.get(service) else {
            self.members.remove(service);
            return;
        };
        let query = Query {
            statuses: StatusFilter::ALL,
            ..Query::any()
        };
        let members = copy.answer(Kind::Instances, &query).0;
        self.members.insert(service.clone(), members);
    }

    /// Whether the agent holds a copy of `service`.
    pub fn has_copy(&self, service: &ServiceName) -> bool {
        self.copies.contains_key(service)
    }

    /// The change index of the copy of `service` (0 without one).
    pub fn index(&self, service: &ServiceName) -> u64 {
        self.copies.get(service).map_or(0, |m| m.index)
    }

    /// Every leased instance of the copy of `service`, in the one order readers answer.
    fn members(&self, service: &ServiceName) -> Option<&[Instance]> {
        self.members.get(service).map(Vec::as_slice)
    }

    /// A read of the Consul API from the local copy: `route` is `health` (`/v1/health/service`),
    /// `catalog` (`/v1/catalog/service`) or `checks` (`/v1/health/checks`), `name` the Consul
    /// service name, `query` the raw query string (`passing`, `tag`, `index`, `wait` are
    /// used; everything else is tolerated, as on the edge). Errors: 400 for a bad `passing`,
    /// `index` or `wait`.
    pub fn read(&self, route: &str, name: &str, query: &str) -> Result<ReadAnswer, AgentError> {
        let mut passing = false;
        let mut tags = Vec::new();
        let (mut index, mut wait) = (None, None);
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let value = percent_decode(value);
            match key {
                "passing" => passing = parse_bool("passing", &value)?,
                "tag" => tags.push(value),
                "index" => index = Some(parse_index(&value)?),
                "wait" => wait = Some(parse_duration_ms(&value)?),
                _ => {}
            }
        }
        let blocking = BlockingQuery::new(index, wait, consul::blocking_wait_cap_ms());
        let Ok(service) = consul::service_name(name) else {
            return Ok(ReadAnswer::Body {
                index: 1,
                body: "[]".into(),
                blocking,
                service: None,
            });
        };
        let Some(members) = self.members(&service) else {
            return Ok(ReadAnswer::Missing(service));
        };
        let index = self.index(&service).max(1);
        let selected = members
            .iter()
            .filter(|i| consul::has_tags(i, &tags))
            .filter(|i| route != "health" || !passing || consul::is_passing(i));
        let body = match route {
            "health" => serde_json::to_string(
                &selected
                    .map(|i| ServiceEntry::of(i, index))
                    .collect::<Vec<_>>(),
            ),
            "catalog" => serde_json::to_string(
                &selected
                    .map(|i| CatalogService::of(i, index))
                    .collect::<Vec<_>>(),
            ),
            _ => serde_json::to_string(
                &selected
                    .flat_map(|i| checks_of(i, index))
                    .collect::<Vec<HealthCheck>>(),
            ),
        }
        .unwrap_or_else(|_| "[]".into());
        Ok(ReadAnswer::Body {
            index,
            body,
            blocking,
            service: Some(service),
        })
    }

    /// The instances of the registrations: from the local copy of their service when it has
    /// them, else as the registry last answered; with the highest index among their copies.
    fn agent_instances(&self) -> (u64, Vec<(String, Instance)>) {
        let mut index = 1;
        let instances = self
            .locals
            .iter()
            .map(|(id, local)| {
                let key = &local.registration.key;
                index = index.max(self.index(&key.service));
                let copied = self
                    .members(&key.service)
                    .and_then(|m| m.iter().find(|i| i.key() == *key).cloned());
                (id.clone(), copied.unwrap_or_else(|| local.last.clone()))
            })
            .collect();
        (index, instances)
    }

    /// `GET /v1/agent/services`: `{id: AgentService}` and the index.
    pub fn agent_services(&self) -> (u64, String) {
        let (index, instances) = self.agent_instances();
        let services: BTreeMap<String, AgentService> = instances
            .iter()
            .map(|(id, i)| {
                let mut service = AgentService::of(i, index);
                service.id = id.clone();
                (id.clone(), service)
            })
            .collect();
        (
            index,
            serde_json::to_string(&services).unwrap_or_else(|_| "{}".into()),
        )
    }

    /// `GET /v1/agent/checks`: `{check_id: HealthCheck}` and the index.
    pub fn agent_checks(&self) -> (u64, String) {
        let (index, instances) = self.agent_instances();
        let checks: BTreeMap<String, HealthCheck> = instances
            .iter()
            .filter(|(id, _)| self.locals[id].registration.check.is_some())
            .flat_map(|(_, i)| checks_of(i, index))
            .map(|c| (c.check_id.clone(), c))
            .collect();
        (
            index,
            serde_json::to_string(&checks).unwrap_or_else(|_| "{}".into()),
        )
    }

    /// A DNS question: `Err(service)` when it needs a copy the agent does not hold yet
    /// (unless `settled`: then the answer says SERVFAIL), else the answer as JSON text (see
    /// [`vasco_core::wire::dns::Response::to_json`]). Positive service answers are kept until
    /// the service's copy changes and shuffled for each question.
    pub fn dns(
        &mut self,
        qname: &str,
        qtype: &str,
        now: Millis,
        settled: bool,
    ) -> Result<String, ServiceName> {
        let key = (qname.to_string(), qtype.to_string());
        if let Some(cached) = self.answers.get(&key) {
            return Ok(cached.render(&mut self.rng));
        }
        let parsed = QueryType::parse(qtype);
        let lookup = self.zone.lookup(qname, parsed);
        let members = match &lookup {
            Lookup::Service { service, .. } => match self.members.get(service) {
                Some(members) => Some(members.as_slice()),
                None if settled => None,
                None => return Err(service.clone()),
            },
            _ => None,
        };
        let response = self.zone.records(qname, parsed, &lookup, members, now);
        if let (Lookup::Service { service, .. }, Some(_)) = (&lookup, members) {
            if response.rcode == Rcode::NoError && !response.answers.is_empty() {
                if self.answers.len() >= MAX_CACHED_ANSWERS {
                    self.answers.clear();
                }
                let cached = CachedAnswer::of(service, &response);
                let text = cached.render(&mut self.rng);
                self.answers.insert(key, cached);
                return Ok(text);
            }
        }
        let mut response = response;
        response.shuffle(&mut self.rng);
        Ok(response.to_json().to_string())
    }

    /// What the data directory keeps: the registrations as sent, and the local copy.
    pub fn export(&self) -> Value {
        let services: BTreeMap<&String, &String> =
            self.locals.iter().map(|(id, l)| (id, &l.raw)).collect();
        let copies: BTreeMap<&str, Value> = self
            .copies
            .iter()
            .map(|(name, m)| {
                let instances = self.members(name).unwrap_or_default();
                (
                    name.as_str(),
                    json!({"index": m.index, "instances": instances}),
                )
            })
            .collect();
        json!({"version": 1, "services": services, "copies": copies})
    }

    /// Restores the local copy from [`AgentCore::export`]'s `copies` (the registrations are
    /// registered again by the caller); unreadable entries are skipped. Answers how many
    /// services were restored.
    pub fn import_copies(&mut self, saved: &Value) -> usize {
        let Some(copies) = saved.get("copies").and_then(Value::as_object) else {
            return 0;
        };
        let mut restored = 0;
        for (name, copy) in copies {
            let Ok(service) = ServiceName::parse(name) else {
                continue;
            };
            let index = copy.get("index").and_then(Value::as_u64).unwrap_or(0);
            let instances = copy
                .get("instances")
                .cloned()
                .and_then(|i| serde_json::from_value::<Vec<Instance>>(i).ok());
            if let Some(instances) = instances {
                if !self.copies.contains_key(&service) {
                    let copy = Membership::from_snapshot(index, instances);
                    self.copies.insert(service.clone(), copy);
                    self.refresh(&service);
                }
                restored += 1;
            }
        }
        restored
    }
}

/// Percent-decodes a query value (`+` is a space, as forms encode it; a `%` not followed by
/// two hex digits stays as it is).
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (b'+', _) => {
                out.push(b' ');
                i += 1;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

// ---------------------------------------------------------------------------------------------
// The wasm-bindgen class.

/// An agent error becomes a JavaScript `VascoAgentError` with the HTTP `status` to answer,
/// through the crate's one conversion ([`JsErr`]).
impl From<AgentError> for JsErr {
    fn from(error: AgentError) -> Self {
        let js = js_sys::Error::new(&error.message);
        js.set_name("VascoAgentError");
        let value: JsValue = js.into();
        set(&value, "status", error.status);
        value.into()
    }
}

fn json_value(value: &Value) -> JsValue {
    to_js(value)
}

/// The agent's state for `js/agent/`: see the module docs. Every method is synchronous and
/// answers from memory.
#[wasm_bindgen]
pub struct Agent {
    inner: AgentCore,
}

#[wasm_bindgen]
impl Agent {
    /// `options`: `{domain, dnsTtl, leaseMs, address}`. Throws for a bad domain.
    #[wasm_bindgen(constructor)]
    pub fn new(
        #[wasm_bindgen(
            unchecked_param_type = "{ domain: string; dnsTtl: number; leaseMs: number; address: string }"
        )]
        options: JsValue,
    ) -> Result<Agent, JsErr> {
        let get = |key: &str| crate::convert::get(&options, key);
        let domain = get("domain").as_string().unwrap_or_else(|| "consul".into());
        let ttl = get("dnsTtl").as_f64().unwrap_or(0.0).clamp(0.0, 86_400.0) as u32;
        let lease = get("leaseMs")
            .as_f64()
            .unwrap_or(DEFAULT_LEASE_MS as f64)
            .max(0.0) as u64;
        let address = get("address")
            .as_string()
            .unwrap_or_else(|| "127.0.0.1".into());
        let inner = AgentCore::new(&domain, ttl, lease, &address, entropy())?;
        Ok(Agent { inner })
    }

    /// The lease held for services (ms).
    #[wasm_bindgen(getter, js_name = leaseMs)]
    pub fn lease_ms(&self) -> f64 {
        self.inner.lease_ms() as f64
    }

    /// Registers a body; answers `{id, path, replacedPath, check, renews}` (`path` is the
    /// instance's `/v1/services/{name}/{version}/instances/{id}`). Throws `{status, message}`.
    pub fn register(&mut self, body: &str, now: f64) -> Result<JsValue, JsErr> {
        let registered = self.inner.register(body, now as Millis)?;
        Ok(json_value(&json!({
            "id": registered.id,
            "path": instance_path(&registered.key),
            "replacedPath": registered.replaced.as_ref().map(instance_path),
            "check": registered.check,
            "renews": registered.renews,
        })))
    }

    /// The IDs of every registration.
    pub fn ids(&self) -> Vec<String> {
        self.inner.ids()
    }

    /// The instance path of a registration. Throws 404.
    pub fn path(&self, id: &str) -> Result<String, JsErr> {
        Ok(instance_path(&self.inner.key(id)?))
    }

    /// The registry's registration body (JSON text). Throws 404.
    #[wasm_bindgen(js_name = registrationBody)]
    pub fn registration_body(&self, id: &str) -> Result<String, JsErr> {
        Ok(self.inner.registration_body(id)?.to_string())
    }

    /// Removes a registration; answers its instance path. Throws 404.
    pub fn deregister(&mut self, id: &str) -> Result<String, JsErr> {
        Ok(instance_path(&self.inner.deregister(id)?))
    }

    /// What a lease socket message means: `{step: "held"|"register"|"refused"|"ended"|
    /// "nothing", status?, message?}`.
    #[wasm_bindgen(js_name = leaseReply)]
    pub fn lease_reply(&mut self, id: &str, text: &str) -> JsValue {
        let value = match self.inner.lease_reply(id, text) {
            LeaseReply::Held => json!({"step": "held"}),
            LeaseReply::Register => json!({"step": "register"}),
            LeaseReply::Refused(status, message) => {
                json!({"step": "refused", "status": status, "message": message})
            }
            LeaseReply::Ended => json!({"step": "ended"}),
            LeaseReply::Nothing => json!({"step": "nothing"}),
        };
        json_value(&value)
    }

    /// The registry's copy of `id`'s check state is unknown (its socket dropped).
    #[wasm_bindgen(js_name = leaseLost)]
    pub fn lease_lost(&mut self, id: &str) {
        self.inner.lease_lost(id);
    }

    /// One check result: `{send: string|null, reap: boolean}` (`send` is a status body as
    /// JSON text), or `undefined` for an unknown ID or a TTL check.
    #[wasm_bindgen(js_name = checkResult)]
    pub fn check_result(
        &mut self,
        id: &str,
        status: &str,
        output: Option<String>,
        now: f64,
    ) -> JsValue {
        match self
            .inner
            .check_result(id, status, output.as_deref(), now as Millis)
        {
            Some((send, reap)) => json_value(&json!({
                "send": send.map(|b| b.to_string()),
                "reap": reap,
            })),
            None => JsValue::UNDEFINED,
        }
    }

    /// `PUT /v1/agent/check/<verb>/<check_id>`: `{id, body}` (`body` a status body as JSON
    /// text). Throws `{status, message}`.
    #[wasm_bindgen(js_name = checkUpdate)]
    pub fn check_update(
        &self,
        check_id: &str,
        verb: &str,
        note: Option<String>,
        body: Option<Vec<u8>>,
    ) -> Result<JsValue, JsErr> {
        let (id, body) =
            self.inner
                .check_update(check_id, verb, note.as_deref(), body.as_deref())?;
        Ok(json_value(&json!({"id": id, "body": body.to_string()})))
    }

    /// `PUT /v1/agent/service/maintenance/<id>`: the status body as JSON text. Throws 404.
    pub fn maintenance(
        &self,
        id: &str,
        enable: bool,
        reason: Option<String>,
    ) -> Result<String, JsErr> {
        let value = self.inner.maintenance(id, enable, reason.as_deref())?;
        Ok(value.to_string())
    }

    /// Applies a change-feed message; answers the service whose copy moved, if any.
    #[wasm_bindgen(js_name = applyFeed)]
    pub fn apply_feed(&mut self, text: &str) -> Option<String> {
        self.inner.apply_feed(text).map(|s| s.as_str().to_string())
    }

    /// Whether the agent holds a copy of `service`.
    #[wasm_bindgen(js_name = hasCopy)]
    pub fn has_copy(&self, service: &str) -> bool {
        ServiceName::parse(service).is_ok_and(|s| self.inner.has_copy(&s))
    }

    /// The change index of the copy of `service` (0 without one).
    pub fn index(&self, service: &str) -> f64 {
        ServiceName::parse(service).map_or(0.0, |s| self.inner.index(&s) as f64)
    }

    /// A read: `{missing: service}` or `{index, body, hold, waitMs, service}` (`hold`: a
    /// blocking query to hold until the copy's index moves, at most `waitMs`). Throws
    /// `{status: 400, message}`.
    pub fn read(&self, route: &str, name: &str, query: &str) -> Result<JsValue, JsErr> {
        let value = match self.inner.read(route, name, query)? {
            ReadAnswer::Missing(service) => json!({"missing": service.as_str()}),
            ReadAnswer::Body {
                index,
                body,
                blocking,
                service,
            } => json!({
                "index": index, "body": body, "hold": blocking.holds(index),
                "waitMs": blocking.wait_ms, "service": service.map(|s| s.as_str().to_string()),
            }),
        };
        Ok(json_value(&value))
    }

    /// `GET /v1/agent/services`: `{index, body}`.
    #[wasm_bindgen(js_name = agentServices)]
    pub fn agent_services(&self) -> JsValue {
        let (index, body) = self.inner.agent_services();
        json_value(&json!({"index": index, "body": body}))
    }

    /// `GET /v1/agent/checks`: `{index, body}`.
    #[wasm_bindgen(js_name = agentChecks)]
    pub fn agent_checks(&self) -> JsValue {
        let (index, body) = self.inner.agent_checks();
        json_value(&json!({"index": index, "body": body}))
    }

    /// A DNS question, as JSON text: `{"need": service}` when the copy is missing (and not
    /// `settled`), else `{rcode, rcodeCode, answers, authorities, additionals}` for
    /// `dns-packet` (see [`vasco_core::wire::dns::Response::to_json`]). Text, because one
    /// `JSON.parse` costs less than building the objects across the boundary.
    pub fn dns(&mut self, qname: &str, qtype: &str, now: f64, settled: bool) -> String {
        match self.inner.dns(qname, qtype, now as Millis, settled) {
            Ok(answer) => answer,
            Err(service) => json!({"need": service.as_str()}).to_string(),
        }
    }

    /// The data directory's content (JSON text).
    pub fn export(&self) -> String {
        self.inner.export().to_string()
    }

    /// Restores the local copy from [`Agent::export`]'s text; answers the registration
    /// bodies saved with it (`{id: body}`) for the caller to register again.
    #[wasm_bindgen(js_name = importSaved)]
    pub fn import_saved(&mut self, text: &str) -> JsValue {
        let saved: Value = serde_json::from_str(text).unwrap_or(Value::Null);
        self.inner.import_copies(&saved);
        json_value(saved.get("services").unwrap_or(&json!({})))
    }
}

/// `/v1/services/{name}/{version}/instances/{id}`: every part is URL-safe by construction
/// (names `a-z 0-9 - _ .`, semver, ids `A-Z a-z 0-9 - _ . ~`), except a version's `+`.
fn instance_path(key: &InstanceKey) -> String {
    format!(
        "/v1/services/{}/{}/instances/{}",
        key.service,
        key.version.to_string().replace('+', "%2B"),
        key.id
    )
}

/// The check status of an HTTP check's answer: `passing` (2xx), `warning` (429) or
/// `critical` (anything else; 0 for no answer).
#[wasm_bindgen(js_name = httpCheckStatus)]
pub fn http_check_status_js(status: u16) -> String {
    http_check_status(status).name().into()
}

/// The largest UDP DNS answer for a client advertising `advertised` bytes with EDNS (0 or
/// absent: none): 512 to 65467.
#[wasm_bindgen(js_name = dnsUdpLimit)]
pub fn dns_udp_limit(advertised: Option<u16>) -> usize {
    udp_payload_limit(advertised.filter(|a| *a > 0))
}

/// The fixed answers of the Consul API (`agent/self`, `catalog/datacenters`,
/// `status/leader`) as JSON text, or `undefined` for another route.
#[wasm_bindgen(js_name = consulFixed)]
pub fn consul_fixed(route: &str) -> Option<String> {
    Some(match route {
        "agent/self" => consul::agent_self().to_string(),
        "catalog/datacenters" => json!([consul::DATACENTER]).to_string(),
        "status/leader" => json!(format!("{}:8300", consul::NODE_ADDRESS)).to_string(),
        _ => return None,
    })
}

/// The registry's base URL for `VASCO_URL` (an `http(s)://` URL or `host:port`; empty: the
/// local `wrangler dev`), checked as the npm client checks it. Throws for `memory:` (the
/// agent needs a registry over HTTP) and for addresses the client refuses.
#[wasm_bindgen(js_name = agentRegistryUrl)]
pub fn agent_registry_url(url: Option<String>) -> Result<String, JsErr> {
    match Endpoint::parse(url.as_deref()) {
        Ok(Endpoint::Http(base)) => Ok(base),
        Ok(Endpoint::Memory) => Err(JsErr::from(AgentError::bad(
            "vasco agent needs a registry over HTTP: set VASCO_URL to its http(s) URL (memory: is \
             an in-process registry, which an agent cannot share)",
        ))),
        Err(error) => Err(JsErr::from(AgentError::bad(error.to_string()))),
    }
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;

    const NOW: Millis = 1_700_000_000_000;

    fn agent() -> AgentCore {
        AgentCore::new("consul", 0, 15_000, "10.9.9.9", 1).unwrap()
    }

    fn http_check_body(id: &str, port: u16) -> String {
        format!(
            r#"{{"ID":"{id}","Name":"web","Address":"127.0.0.1","Port":{port},"Tags":["v1"],
               "Check":{{"HTTP":"http://127.0.0.1:{port}/health","Interval":"1s","Timeout":"500ms",
                         "DeregisterCriticalServiceAfter":"3s"}}}}"#
        )
    }

    fn snapshot(service: &str, index: u64, instances: &[Instance]) -> String {
        json!({"type": "snapshot", "service": service, "index": index, "instances": instances, "now": NOW})
            .to_string()
    }

    #[test]
    fn registrations_read_with_the_core_and_the_agents_address() {
        let mut a = agent();
        let r = a.register(&http_check_body("web-1", 3000), NOW).unwrap();
        assert_eq!(r.key.to_string(), "web@0.0.0/web-1");
        assert!(r.renews);
        assert_eq!(r.check.as_ref().unwrap()["kind"], "http");
        assert_eq!(r.check.as_ref().unwrap()["interval_ms"], 1000);
        let body = a.registration_body("web-1").unwrap();
        assert_eq!(body["ttl"], 15.0);
        assert_eq!(body["check"]["initial"], "critical");
        // No Address: the agent's.
        let r = a.register(r#"{"Name":"db","Port":5432}"#, NOW).unwrap();
        assert_eq!(a.locals[&r.id].last.url, "10.9.9.9:5432");
        // A TTL check: the service's results renew the lease, not the agent.
        let r = a
            .register(
                r#"{"Name":"t","Address":"a","Port":1,"Check":{"TTL":"5s"}}"#,
                NOW,
            )
            .unwrap();
        assert!(!r.renews);
        // What the registry would refuse is refused here, before anything is sent.
        for bad in [
            r#"{"Name":"x","Address":"a","Port":1,"Check":{"GRPC":"a:1","Interval":"1s"}}"#,
            r#"{"Name":"x y","Port":1}"#,
            "not json",
        ] {
            assert_eq!(a.register(bad, NOW).unwrap_err().status, 400, "{bad}");
        }
        let huge = format!(
            r#"{{"Name":"h","Port":1,"Meta":{{"k":"{}"}}}}"#,
            "v".repeat(250)
        );
        assert!(a.register(&huge, NOW).is_ok());
        assert_eq!(a.ids(), ["db", "h", "t", "web-1"]);
    }

    #[test]
    fn the_same_id_under_another_name_replaces_the_instance() {
        let mut a = agent();
        a.register(r#"{"ID":"x","Name":"one","Port":1}"#, NOW)
            .unwrap();
        let r = a
            .register(r#"{"ID":"x","Name":"two","Port":1}"#, NOW)
            .unwrap();
        assert_eq!(r.replaced.unwrap().to_string(), "one@0.0.0/x");
        let r = a
            .register(r#"{"ID":"x","Name":"two","Port":2}"#, NOW)
            .unwrap();
        assert_eq!(r.replaced, None);
        assert_eq!(a.deregister("x").unwrap().to_string(), "two@0.0.0/x");
        assert_eq!(a.deregister("x").unwrap_err().status, 404);
    }

    #[test]
    fn check_results_flow_to_the_registry_and_reap_after_the_deadline() {
        let mut a = agent();
        a.register(&http_check_body("web-1", 3000), NOW).unwrap();
        let (send, reap) = a
            .check_result("web-1", "passing", Some("HTTP GET: 200 OK"), NOW + 10)
            .unwrap();
        assert!(!reap);
        let send = send.unwrap();
        assert_eq!(send["check"]["status"], "passing");
        // The registry answers the status message with the record: confirmed.
        let key = a.key("web-1").unwrap();
        let spec = InstanceSpec::from_json_value(&a.registration_body("web-1").unwrap()).unwrap();
        let mut instance = Instance::lease(key, spec, NOW, None);
        instance
            .health
            .apply(&vasco_core::HealthUpdate::from_value(&send).unwrap(), NOW);
        let reply =
            json!({"type": "status", "instance": instance, "index": 3, "now": NOW}).to_string();
        assert_eq!(a.lease_reply("web-1", &reply), LeaseReply::Held);
        assert_eq!(
            a.locals["web-1"].last.health.status,
            vasco_core::Status::Passing
        );
        let (send, _) = a.check_result("web-1", "passing", None, NOW + 20).unwrap();
        assert_eq!(send, None, "nothing new for the registry");
        a.lease_lost("web-1");
        assert!(a
            .check_result("web-1", "passing", None, NOW + 30)
            .unwrap()
            .0
            .is_some());
        // Critical for 3 s: reap.
        let (_, reap) = a
            .check_result("web-1", "critical", Some("503"), NOW + 1_000)
            .unwrap();
        assert!(!reap);
        let (_, reap) = a
            .check_result("web-1", "critical", Some("503"), NOW + 4_000)
            .unwrap();
        assert!(reap);
        // The registration body now starts a new instance critical, as the agent sees it.
        assert_eq!(
            a.registration_body("web-1").unwrap()["check"]["initial"],
            "critical"
        );
        assert_eq!(a.check_result("nope", "passing", None, NOW), None);
    }

    #[test]
    fn ttl_checks_take_results_through_the_api_and_http_checks_do_not() {
        let mut a = agent();
        a.register(&http_check_body("web-1", 3000), NOW).unwrap();
        a.register(
            r#"{"ID":"t1","Name":"t","Port":1,"Check":{"TTL":"5s","CheckID":"ttl-1"}}"#,
            NOW,
        )
        .unwrap();
        let (id, body) = a.check_update("ttl-1", "pass", Some("ok"), None).unwrap();
        assert_eq!(
            (id.as_str(), &body["check"]["status"]),
            ("t1", &json!("passing"))
        );
        assert_eq!(
            a.check_update("service:web-1", "pass", None, None)
                .unwrap_err()
                .status,
            400
        );
        assert_eq!(
            a.check_update("nope", "pass", None, None)
                .unwrap_err()
                .status,
            404
        );
        assert_eq!(
            a.maintenance("t1", true, Some("deploy")).unwrap()["status"],
            "maintenance"
        );
        assert_eq!(a.maintenance("zz", true, None).unwrap_err().status, 404);
        assert_eq!(
            a.lease_reply("t1", r#"{"type":"closed"}"#),
            LeaseReply::Ended
        );
        assert_eq!(
            a.lease_reply(
                "t1",
                r#"{"type":"error","error":{"code":"not_found","message":"x","status":404}}"#
            ),
            LeaseReply::Register
        );
        assert!(matches!(
            a.lease_reply(
                "t1",
                r#"{"type":"error","error":{"code":"unauthorized","message":"no","status":401}}"#
            ),
            LeaseReply::Refused(401, _)
        ));
    }

    fn instance(service: &str, id: &str, url: &str, status: &str, tags: &[&str]) -> Instance {
        let key = InstanceKey {
            service: ServiceName::parse(service).unwrap(),
            version: vasco_core::Version::parse("0.0.0").unwrap(),
            id: vasco_core::InstanceId::parse(id).unwrap(),
        };
        let spec = InstanceSpec::from_json_value(
            &json!({"url": url, "ttl": 15, "tags": tags, "status": status}),
        )
        .unwrap();
        Instance::lease(key, spec, NOW, None)
    }

    #[test]
    fn reads_and_dns_come_from_the_feed_copy() {
        let mut a = agent();
        assert_eq!(
            a.read("health", "Web", "").unwrap(),
            ReadAnswer::Missing(ServiceName::parse("web").unwrap())
        );
        let web = [
            instance("web", "a", "10.0.0.1:80", "passing", &["v1"]),
            instance("web", "b", "10.0.0.2:80", "critical", &[]),
        ];
        assert_eq!(
            a.apply_feed(&snapshot("web", 4, &web)).unwrap().as_str(),
            "web"
        );
        assert_eq!(
            a.apply_feed(&snapshot("web", 4, &web)),
            None,
            "the same snapshot again"
        );
        let ReadAnswer::Body {
            index,
            body,
            blocking,
            ..
        } = a.read("health", "web", "passing&index=4&wait=5s").unwrap()
        else {
            panic!()
        };
        assert_eq!((index, blocking.index, blocking.wait_ms), (4, 4, 5_000));
        let entries: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(entries.as_array().unwrap().len(), 1);
        assert_eq!(entries[0]["Service"]["Address"], "10.0.0.1");
        let ReadAnswer::Body { body, .. } = a.read("catalog", "web", "tag=v1").unwrap() else {
            panic!()
        };
        assert_eq!(
            serde_json::from_str::<Value>(&body)
                .unwrap()
                .as_array()
                .unwrap()
                .len(),
            1
        );
        let ReadAnswer::Body { body, .. } = a.read("checks", "web", "dc=dc1&stale").unwrap() else {
            panic!()
        };
        assert_eq!(
            serde_json::from_str::<Value>(&body)
                .unwrap()
                .as_array()
                .unwrap()
                .len(),
            2
        );
        assert_eq!(
            a.read("health", "web", "passing=maybe").unwrap_err().status,
            400
        );
        assert!(matches!(
            a.read("health", "no such!", "").unwrap(),
            ReadAnswer::Body { index: 1, .. }
        ));

        let answer: Value =
            serde_json::from_str(&a.dns("web.service.consul", "A", NOW, false).unwrap()).unwrap();
        assert_eq!(answer["answers"].as_array().unwrap().len(), 1);
        assert_eq!(answer["answers"][0]["data"], "10.0.0.1");
        assert_eq!(
            a.dns("api.service.consul", "A", NOW, false)
                .unwrap_err()
                .as_str(),
            "api"
        );
        assert_eq!(
            serde_json::from_str::<Value>(&a.dns("api.service.consul", "A", NOW, true).unwrap())
                .unwrap()["rcode"],
            "SERVFAIL"
        );
        assert_eq!(
            serde_json::from_str::<Value>(&a.dns("example.com", "A", NOW, false).unwrap()).unwrap()
                ["rcode"],
            "REFUSED"
        );

        // A change moves the copy; an old one does not.
        let change = json!({"type": "change", "service": "web", "index": 5, "added": [],
            "updated": [instance("web", "b", "10.0.0.2:80", "passing", &[])], "removed": [], "now": NOW});
        assert!(a.apply_feed(&change.to_string()).is_some());
        assert!(a.apply_feed(&change.to_string()).is_none());
        assert_eq!(a.index(&ServiceName::parse("web").unwrap()), 5);
        let dns = |a: &mut AgentCore, name: &str, qtype: &str| -> Value {
            serde_json::from_str(&a.dns(name, qtype, NOW, false).unwrap()).unwrap()
        };
        let answer = dns(&mut a, "_web._tcp.service.consul", "SRV");
        assert_eq!(answer["answers"].as_array().unwrap().len(), 2);
        assert_eq!(answer["additionals"].as_array().unwrap().len(), 2);
        // The answer kept for A before the change is gone with it.
        let answer = dns(&mut a, "web.service.consul", "A");
        assert_eq!(answer["answers"].as_array().unwrap().len(), 2);
        // Kept answers come back shuffled, whole.
        let orders: std::collections::BTreeSet<String> = (0..20)
            .map(|_| dns(&mut a, "web.service.consul", "A")["answers"].to_string())
            .collect();
        assert_eq!(orders.len(), 2, "both orders of two records: {orders:?}");

        // The data directory keeps the copy.
        let saved = a.export();
        let mut b = agent();
        assert_eq!(b.import_copies(&saved), 1);
        assert_eq!(b.index(&ServiceName::parse("web").unwrap()), 5);
    }

    #[test]
    fn agent_endpoints_list_the_registrations() {
        let mut a = agent();
        a.register(&http_check_body("web-1", 3000), NOW).unwrap();
        a.register(r#"{"ID":"db-1","Name":"db","Port":5432}"#, NOW)
            .unwrap();
        let (index, services) = a.agent_services();
        assert_eq!(index, 1);
        let services: Value = serde_json::from_str(&services).unwrap();
        assert_eq!(services["web-1"]["Service"], "web");
        assert_eq!(services["db-1"]["Address"], "10.9.9.9");
        let (_, checks) = a.agent_checks();
        let checks: Value = serde_json::from_str(&checks).unwrap();
        assert_eq!(checks["service:web-1"]["Status"], "critical");
        assert_eq!(checks.as_object().unwrap().len(), 1, "db has no check");
    }

    #[test]
    fn query_values_are_percent_decoded() {
        assert_eq!(percent_decode("a%20b+c"), "a b c");
        assert_eq!(percent_decode("%zz%4"), "%zz%4");
        assert_eq!(percent_decode("caf%C3%A9"), "café");
    }
}
