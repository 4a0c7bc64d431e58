//! Consul's HTTP API on the registry: `/v1/agent/...`, `/v1/health/...`, `/v1/catalog/...`,
//! `/v1/status/leader`. Thin handlers: the bodies, the mapping and the answers' shapes are
//! [`vasco_core::wire::consul`]'s; the registry is the same [`Backend`] every dialect uses, and
//! the Consul service and check IDs are kept by the agent object ([`crate::agent`]).
//!
//! What Consul's clients need and get (see the module docs of the core's mapping for the
//! model): writes answer exactly 200; every read answers `X-Consul-Index` (at least 1, moving
//! whenever the answer changes: the service's change index, or the catalog's),
//! `X-Consul-KnownLeader: true` and `X-Consul-LastContact: 0`; `?index=&wait=` holds the read
//! like a blocking query (at most 60 s; clients ask again); `?stale` reads the KV snapshot
//! (cheap, possibly a little behind), other reads the service's object; errors are short
//! `text/plain`
//! with Consul's statuses (403 for a bad token, 404 for an unknown ID, 400 for a body Vasco
//! cannot take). Parameters Vasco does not use (`dc`, `consistent`, `cached`, `near`,
//! `filter`, `ns`, `partition`, `peer`, `node-meta`, `merge-central-config`, `token`, ...) are
//! tolerated, never a 400: a 400 ends a node-consul watch for good.

use std::collections::BTreeMap;

use serde::Serialize;
use vasco_core::blocking::{parse_duration_ms, parse_index, BlockingQuery};
use vasco_core::wire::consul::{
    self, check_update_body, checks_of, maintenance_body, parse_bool, AgentService, CatalogService,
    HealthCheck, Runner, ServiceEntry, ServiceRegistration,
};
use vasco_core::{Instance, ServiceName};

use super::json;
use crate::agent::{AgentCommand, AgentEntry};
use crate::auth::Guard;
use crate::backend::{Backend, Objects, ReadMode};
use crate::error::AppError;
use crate::http::{parse_query, ApiRequest, ApiResponse};
use crate::kv::Kv;
use crate::router::Params;
use crate::routes::services::check_registration;

/// The header carrying the change index of a Consul read.
pub const INDEX_HEADER: &str = "x-consul-index";

/// The parameters of a Consul read that Vasco uses.
#[derive(Debug, Default)]
struct ReadQuery {
    stale: bool,
    passing: bool,
    tags: Vec<String>,
    index: Option<u64>,
    wait_ms: Option<u64>,
}

impl ReadQuery {
    fn parse(query: &str) -> Result<Self, AppError> {
        let mut read = ReadQuery::default();
        for (key, value) in parse_query(query)? {
            match key.as_str() {
                "passing" => read.passing = parse_bool("passing", &value)?,
                "stale" => read.stale = true,
                "tag" => read.tags.push(value),
                "index" => read.index = Some(parse_index(&value)?),
                "wait" => read.wait_ms = Some(parse_duration_ms(&value)?),
                // Everything else Consul's clients send is tolerated (see the module docs).
                _ => {}
            }
        }
        Ok(read)
    }

    /// A blocking query with `index`; with `stale`, the KV snapshot (one KV read, possibly
    /// a little behind, as Consul's stale reads may be); else the object (Consul's default
    /// reads go to the leader).
    fn mode(&self) -> ReadMode {
        match self.index {
            Some(index) => ReadMode::Blocking(BlockingQuery::new(
                Some(index),
                self.wait_ms,
                consul::blocking_wait_cap_ms(),
            )),
            None if self.stale => ReadMode::Snapshot,
            None => ReadMode::Consistent,
        }
    }
}

/// A read's answer with Consul's headers.
fn read_answer<T: Serialize + ?Sized>(index: u64, body: &T) -> Result<ApiResponse, AppError> {
    let mut response = json(200, body)?;
    response
        .headers
        .push((INDEX_HEADER, index.max(1).to_string()));
    response
        .headers
        .push(("x-consul-knownleader", "true".into()));
    response.headers.push(("x-consul-lastcontact", "0".into()));
    Ok(response)
}

/// A write's answer: exactly 200 (py-consul's `register()` is true only then), no body.
fn written() -> ApiResponse {
    ApiResponse {
        status: 200,
        ..ApiResponse::no_content()
    }
}

/// The error answer of a Consul route: plain text, 403 where Vasco would say 401.
pub fn error(err: &AppError) -> ApiResponse {
    let status = match err.status() {
        401 => 403,
        other => other,
    };
    let mut response = ApiResponse::text(status, err.to_string());
    response.headers = crate::http::error_headers(err);
    response
}

/// The agent entry `command` (a `Get` or a `GetCheck` of `id`) finds, once `guard` lets the
/// caller write its service. Errors: `UnknownId { what, id }` (404) when there is none, then
/// the guard's.
async fn writable_entry<K: Kv, O: Objects>(
    backend: &Backend<'_, K, O>,
    guard: &Guard<'_>,
    command: &AgentCommand,
    what: &'static str,
    id: &str,
) -> Result<AgentEntry, AppError> {
    let entry = backend
        .objects
        .agent(command)
        .await?
        .entry
        .ok_or_else(|| AppError::UnknownId {
            what,
            id: id.into(),
        })?;
    guard.write(&entry.key.service)?;
    Ok(entry)
}

/// A removal's outcome, where an instance already gone (its lease lapsed) counts as removed.
fn unless_gone(result: Result<crate::object::Reply, AppError>) -> Result<(), AppError> {
    match result {
        Err(err) if err.status() == 404 => Ok(()),
        other => other.map(drop),
    }
}

/// The members of the Consul service `name` (any case) as a read sees them, with the index.
/// A name with no Vasco equivalent has no members (never a 400: see the module docs).
async fn members<K: Kv, O: Objects>(
    name: &str,
    query: &ReadQuery,
    backend: &Backend<'_, K, O>,
) -> Result<(u64, Vec<Instance>), AppError> {
    let Ok(service) = consul::service_name(name) else {
        return Ok((1, Vec::new()));
    };
    let view = backend.read(&service, query.mode()).await?;
    let instances = view
        .instances
        .into_iter()
        .filter(|i| i.is_live(view.now) && consul::has_tags(i, &query.tags))
        .filter(|i| !query.passing || consul::is_passing(i))
        .collect();
    Ok((view.index, instances))
}

/// `PUT /v1/agent/service/register`: registers (or re-registers) a service instance.
pub async fn register<K: Kv, O: Objects>(
    req: &ApiRequest,
    backend: &Backend<'_, K, O>,
    guard: &Guard<'_>,
) -> Result<ApiResponse, AppError> {
    let registration = ServiceRegistration::parse(&req.body, None)?;
    guard.write(&registration.key.service)?;
    let body = registration.native_body(Runner::Edge)?;
    check_registration(&registration.key, &body, backend.now)?;
    let entry = AgentEntry {
        id: registration.id.clone(),
        key: registration.key.clone(),
        check_id: registration.check.as_ref().map(|c| c.id.clone()),
    };
    let previous = backend
        .objects
        .agent(&AgentCommand::Put { entry })
        .await?
        .entry;
    backend.register(&registration.key, body).await?;
    // The same ID under another name or version: the old instance goes, as Consul replaces it.
    if let Some(previous) = previous.filter(|p| p.key != registration.key) {
        unless_gone(backend.deregister(&previous.key).await)?;
    }
    Ok(written())
}

/// `PUT /v1/agent/service/deregister/{*id}`: removes the instance (404 for an unknown ID).
pub async fn deregister<K: Kv, O: Objects>(
    params: &Params,
    backend: &Backend<'_, K, O>,
    guard: &Guard<'_>,
) -> Result<ApiResponse, AppError> {
    let id = params.get("id");
    let get = AgentCommand::Get { id: id.into() };
    let entry = writable_entry(backend, guard, &get, "service", id).await?;
    backend
        .objects
        .agent(&AgentCommand::Remove { id: id.into() })
        .await?;
    // Its lease had already lapsed: it is gone all the same.
    unless_gone(backend.deregister(&entry.key).await)?;
    Ok(written())
}

/// `PUT /v1/agent/check/{verb}/{*check_id}`: `pass`, `warn`, `fail` (`?note=`) or `update`
/// (`{"Status", "Output"}`): a check result, which also restarts a TTL check's clock.
pub async fn check<K: Kv, O: Objects>(
    req: &ApiRequest,
    params: &Params,
    backend: &Backend<'_, K, O>,
    guard: &Guard<'_>,
) -> Result<ApiResponse, AppError> {
    let verb = params.get("verb");
    let check_id = params.get("check_id");
    if !matches!(verb, "pass" | "warn" | "fail" | "update") {
        return Err(AppError::RouteNotFound {
            path: req.path.clone(),
        });
    }
    let note = parse_query(&req.query)?
        .into_iter()
        .find(|(k, _)| k == "note")
        .map(|(_, v)| v);
    let body = check_update_body(
        verb,
        note.as_deref(),
        Some(&req.body).filter(|b| !b.is_empty()).map(Vec::as_slice),
    )?;
    let get = AgentCommand::GetCheck {
        check_id: check_id.into(),
    };
    let entry = writable_entry(backend, guard, &get, "check", check_id).await?;
    backend.set_health(&entry.key, body).await?;
    Ok(written())
}

/// `PUT /v1/agent/service/maintenance/{*id}?enable=true|false&reason=`.
pub async fn maintenance<K: Kv, O: Objects>(
    req: &ApiRequest,
    params: &Params,
    backend: &Backend<'_, K, O>,
    guard: &Guard<'_>,
) -> Result<ApiResponse, AppError> {
    let id = params.get("id");
    let query = parse_query(&req.query)?;
    let enable = query
        .iter()
        .find(|(k, _)| k == "enable")
        .ok_or_else(|| AppError::invalid("enable", "Missing value for enable"))?;
    let enable = parse_bool("enable", &enable.1)?;
    let reason = query
        .iter()
        .find(|(k, _)| k == "reason")
        .map(|(_, v)| v.as_str());
    let get = AgentCommand::Get { id: id.into() };
    let entry = writable_entry(backend, guard, &get, "service", id).await?;
    backend
        .set_health(&entry.key, maintenance_body(enable, reason))
        .await?;
    Ok(written())
}

/// A read of one service's members (`?tag=`, blocking `?index=&wait=`, `?passing` where
/// `passing_applies`), answered as `render` shapes them.
async fn service_read<K: Kv, O: Objects, T: Serialize>(
    req: &ApiRequest,
    params: &Params,
    backend: &Backend<'_, K, O>,
    passing_applies: bool,
    render: impl Fn(&Instance, u64) -> Vec<T>,
) -> Result<ApiResponse, AppError> {
    let mut query = ReadQuery::parse(&req.query)?;
    query.passing &= passing_applies;
    let (index, instances) = members(params.get("service"), &query, backend).await?;
    let items: Vec<T> = instances.iter().flat_map(|i| render(i, index)).collect();
    read_answer(index, &items)
}

/// `GET /v1/health/service/{service}?passing&tag=&index=&wait=`: the instances with their node
/// and checks; `passing` keeps those whose every check passes.
pub async fn health_service<K: Kv, O: Objects>(
    req: &ApiRequest,
    params: &Params,
    backend: &Backend<'_, K, O>,
) -> Result<ApiResponse, AppError> {
    service_read(req, params, backend, true, |i, index| {
        vec![ServiceEntry::of(i, index)]
    })
    .await
}

/// `GET /v1/catalog/service/{service}?tag=&index=&wait=`: every leased instance, flat, whatever
/// its health (as Consul's catalog lists critical instances until they are removed).
pub async fn catalog_service<K: Kv, O: Objects>(
    req: &ApiRequest,
    params: &Params,
    backend: &Backend<'_, K, O>,
) -> Result<ApiResponse, AppError> {
    service_read(req, params, backend, false, |i, index| {
        vec![CatalogService::of(i, index)]
    })
    .await
}

/// `GET /v1/health/checks/{service}`: the checks of every instance of the service.
pub async fn health_checks<K: Kv, O: Objects>(
    req: &ApiRequest,
    params: &Params,
    backend: &Backend<'_, K, O>,
) -> Result<ApiResponse, AppError> {
    service_read(req, params, backend, false, checks_of).await
}

/// `GET /v1/catalog/services?index=&wait=`: every service with members and its tags (`[]`,
/// never null), from the catalog's one KV snapshot; held like a blocking query with `index`.
pub async fn catalog_services<K: Kv, O: Objects>(
    req: &ApiRequest,
    backend: &Backend<'_, K, O>,
) -> Result<ApiResponse, AppError> {
    let query = ReadQuery::parse(&req.query)?;
    let catalog = backend.catalog_read(query.mode()).await?;
    let services: BTreeMap<&str, &Vec<String>> = catalog
        .services
        .iter()
        .filter(|s| !s.versions.is_empty())
        .map(|s| (s.name.as_str(), &s.tags))
        .collect();
    read_answer(catalog.index, &services)
}

/// The instances registered through the Consul API, live now, with their service's index.
async fn agent_instances<K: Kv, O: Objects>(
    backend: &Backend<'_, K, O>,
) -> Result<(u64, Vec<Instance>), AppError> {
    let entries = backend.objects.agent(&AgentCommand::List).await?.entries;
    let mut by_service: BTreeMap<&ServiceName, Vec<&AgentEntry>> = BTreeMap::new();
    for entry in &entries {
        by_service
            .entry(&entry.key.service)
            .or_default()
            .push(entry);
    }
    let (mut index, mut instances) = (1, Vec::new());
    for (service, entries) in by_service {
        let view = backend.read(service, ReadMode::Consistent).await?;
        index = index.max(view.index);
        instances.extend(
            view.instances
                .into_iter()
                .filter(|i| i.is_live(view.now) && entries.iter().any(|e| e.key == i.key())),
        );
    }
    Ok((index, instances))
}

/// `GET /v1/agent/services`: the services registered through this API, by ID.
pub async fn agent_services<K: Kv, O: Objects>(
    backend: &Backend<'_, K, O>,
) -> Result<ApiResponse, AppError> {
    let (index, instances) = agent_instances(backend).await?;
    let services: BTreeMap<String, AgentService> = instances
        .iter()
        .map(|i| (i.id.as_str().to_string(), AgentService::of(i, index)))
        .collect();
    read_answer(index, &services)
}

/// `GET /v1/agent/checks`: their checks, by check ID.
pub async fn agent_checks<K: Kv, O: Objects>(
    backend: &Backend<'_, K, O>,
) -> Result<ApiResponse, AppError> {
    let (index, instances) = agent_instances(backend).await?;
    let checks: BTreeMap<String, HealthCheck> = instances
        .iter()
        .flat_map(|i| checks_of(i, index))
        .map(|c| (c.check_id.clone(), c))
        .collect();
    read_answer(index, &checks)
}

/// `GET /v1/agent/self`: the datacenter and node (Prometheus reads it without `datacenter:`).
pub fn agent_self() -> Result<ApiResponse, AppError> {
    read_answer(1, &consul::agent_self())
}

/// `GET /v1/catalog/datacenters`: the one datacenter.
pub fn datacenters() -> Result<ApiResponse, AppError> {
    read_answer(1, &[consul::DATACENTER])
}

/// `GET /v1/status/leader`: a leader address (a JSON string), so clients see a healthy cluster.
pub fn leader() -> Result<ApiResponse, AppError> {
    read_answer(1, &format!("{}:8300", consul::NODE_ADDRESS))
}
