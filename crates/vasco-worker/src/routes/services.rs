//! `/v1/services`: the catalog, lookups of one service, and registering, renewing and
//! deregistering instances. Writes and fresh reads go to the service's Durable Object, default
//! reads to its KV snapshot (see [`crate::backend`]).

use serde::Serialize;
use vasco_core::blocking::{parse_duration_ms, parse_index, BlockingQuery, MAX_WAIT_MS};
use vasco_core::registry::{live_all, live_matching, Query};
use vasco_core::{
    codec, parse_tags, HealthUpdate, Instance, InstanceKey, InstanceSpec, ServiceName,
    StatusFilter, VersionReq,
};

use super::{body_object, json};
use crate::backend::{Backend, Objects, ReadMode, ServiceView, Source};
use crate::error::AppError;
use crate::http::{parse_query, ApiRequest, ApiResponse, INDEX_HEADER};
use crate::kv::Kv;
use crate::router::Params;

/// The answer of a lookup: `{"service": "api", "instances": [...]}`.
#[derive(Debug, Serialize)]
pub struct Lookup<'a> {
    /// The service asked for.
    pub service: &'a ServiceName,
    /// Its live instances that match the query, newest version first, then by id.
    pub instances: Vec<&'a Instance>,
}

/// `GET /v1/services?consistent`: each service with its versions and live instance counts,
/// from the KV catalog snapshot (1 KV read), or from the catalog object with `consistent`.
pub async fn catalog<K: Kv, O: Objects>(
    req: &ApiRequest,
    backend: &Backend<'_, K, O>,
) -> Result<ApiResponse, AppError> {
    let consistent = parse_flags(&req.query, &["consistent"])?.contains(&"consistent");
    let snapshot = backend.catalog(consistent).await?;
    json(200, &snapshot.catalog())
}

/// The answer of `GET /v1/instances`: `{"instances": [...]}`.
#[derive(Debug, Serialize)]
pub struct AllInstances<'a> {
    /// Every live instance, by service, newest version first, then by id.
    pub instances: Vec<&'a Instance>,
}

/// `GET /v1/instances`: every live instance, from the KV snapshots: one read for the catalog
/// and one per service with members.
pub async fn all_instances<K: Kv, O: Objects>(
    req: &ApiRequest,
    backend: &Backend<'_, K, O>,
) -> Result<ApiResponse, AppError> {
    parse_flags(&req.query, &[])?;
    let catalog = backend.catalog(false).await?;
    let views = futures_util::future::try_join_all(
        catalog
            .services
            .iter()
            .map(|s| backend.read(&s.name, ReadMode::Snapshot)),
    )
    .await?;
    let all = views.iter().flat_map(|view| view.instances.iter());
    json(
        200,
        &AllInstances {
            instances: live_all(all, backend.now),
        },
    )
}

/// Parses a query that may only hold the given flags (`?consistent`); returns those present.
fn parse_flags<'f>(query: &str, allowed: &[&'f str]) -> Result<Vec<&'f str>, AppError> {
    let mut present = Vec::new();
    for (key, _) in parse_query(query)? {
        match allowed.iter().find(|flag| **flag == key) {
            Some(flag) => present.push(*flag),
            None => {
                return Err(AppError::invalid(
                    key,
                    if allowed.is_empty() {
                        "unknown query parameter; this route takes none".to_string()
                    } else {
                        format!("unknown query parameter; use {}", allowed.join(", "))
                    },
                ))
            }
        }
    }
    Ok(present)
}

/// Splits the freshness parameters of a lookup (`consistent`, `index`, `wait`) from the rest.
/// `index` without `wait` waits the default 30 s; `wait` is capped at 60 s; `wait` without
/// `index` is a 400.
pub fn parse_read_mode(query: &str) -> Result<(ReadMode, String), AppError> {
    let mut rest = Vec::new();
    let (mut consistent, mut index, mut wait) = (false, None, None);
    for part in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = part.split_once('=').unwrap_or((part, ""));
        let value = crate::http::percent_decode(value, true, key)?;
        match key {
            "consistent" => consistent = true,
            "index" => index = Some(parse_index(&value)?),
            "wait" => wait = Some(parse_duration_ms(&value)?),
            _ => rest.push(part),
        }
    }
    let mode = match (index, wait) {
        (Some(index), wait) => {
            ReadMode::Blocking(BlockingQuery::new(Some(index), wait, MAX_WAIT_MS))
        }
        (None, Some(_)) => {
            return Err(AppError::invalid(
                "wait",
                "needs index: send the x-vasco-index of your last answer as ?index=",
            ))
        }
        (None, None) if consistent => ReadMode::Consistent,
        (None, None) => ReadMode::Snapshot,
    };
    Ok((mode, rest.join("&")))
}

/// The headers every read of one service answers with: `x-vasco-index`, and where the data
/// came from (`x-vasco-source: snapshot|object`, `x-vasco-snapshot-at: <ms>`).
pub fn view_headers(response: &mut ApiResponse, view: &ServiceView) {
    response
        .headers
        .push((INDEX_HEADER, view.index.to_string()));
    match view.source {
        Source::Object => response.headers.push(("x-vasco-source", "object".into())),
        Source::Snapshot { written_at } => {
            response.headers.push(("x-vasco-source", "snapshot".into()));
            response
                .headers
                .push(("x-vasco-snapshot-at", written_at.to_string()));
        }
    }
}

/// Parses the query of a lookup: `version` (exact or a semver range), `tag` (repeatable, or
/// comma-separated; every tag must be present), `zone`, and which health statuses to list:
/// passing and warning by default, `passing` for passing only, `status=a,b` for those, `all`
/// for every leased instance (one of the three at most). Anything else is a 400, so a typo
/// such as `?versoin=` is not silently ignored.
pub fn parse_lookup_query(query: &str) -> Result<Query, AppError> {
    let mut parsed = Query::any();
    let mut seen_version = false;
    let mut status_given: Option<&'static str> = None;
    for (key, value) in parse_query(query)? {
        if let Some(statuses) = match key.as_str() {
            "passing" if value.is_empty() || value == "true" || value == "1" => {
                Some(StatusFilter::PASSING)
            }
            "all" if value.is_empty() || value == "true" || value == "1" => Some(StatusFilter::ALL),
            "status" => Some(StatusFilter::parse(&value)?),
            "passing" | "all" => {
                return Err(AppError::invalid(
                    "status",
                    format!("?{key} is a flag: give it no value (or true)"),
                ))
            }
            _ => None,
        } {
            let name = if key == "status" {
                "status"
            } else if key == "all" {
                "all"
            } else {
                "passing"
            };
            if let Some(before) = status_given.replace(name) {
                return Err(AppError::invalid(
                    "status",
                    format!("give one of passing, status= and all, not {before} and {name}"),
                ));
            }
            parsed.statuses = statuses;
            continue;
        }
        match key.as_str() {
            "version" => {
                if seen_version {
                    return Err(AppError::invalid("version", "given more than once"));
                }
                seen_version = true;
                parsed.version = VersionReq::parse(&value)?;
            }
            // The core's tag-list syntax, the same as the npm client's and the page's.
            "tag" | "tags" => parsed.tags.extend(parse_tags(&value)?),
            "zone" => {
                if value.is_empty() {
                    return Err(AppError::invalid("zone", "must not be empty"));
                }
                parsed.zone = Some(value);
            }
            other => {
                return Err(AppError::invalid(
                    other,
                    "unknown query parameter; use version, tag, zone, status, passing or all",
                ))
            }
        }
    }
    Ok(parsed)
}

/// `GET /v1/services/{name}?version=&tag=&zone=[&consistent][&index=N&wait=30s]`: the live
/// instances. An unknown service is an empty list, not an error.
pub async fn lookup<K: Kv, O: Objects>(
    req: &ApiRequest,
    params: &Params,
    backend: &Backend<'_, K, O>,
) -> Result<ApiResponse, AppError> {
    let service = ServiceName::parse(params.get("name"))?;
    let (mode, rest) = parse_read_mode(&req.query)?;
    let query = parse_lookup_query(&rest)?;
    let view = backend.read(&service, mode).await?;
    let live = live_matching(view.instances.iter(), &query, view.now);
    let mut response = json(
        200,
        &Lookup {
            service: &service,
            instances: live,
        },
    )?;
    view_headers(&mut response, &view);
    Ok(response)
}

/// The instance a `PUT` or `DELETE` path names.
pub fn instance_key(params: &Params) -> Result<InstanceKey, AppError> {
    Ok(InstanceKey::parse(
        params.get("name"),
        params.get("version"),
        params.get("id"),
    )?)
}

/// Validates a registration body before it travels to the object: the spec, and that the
/// record fits the size limit.
pub fn check_registration(
    key: &InstanceKey,
    body: &serde_json::Value,
    now: u64,
) -> Result<(), AppError> {
    let spec = InstanceSpec::from_json_value(body)?;
    codec::encode_record(&Instance::lease(key.clone(), spec, now, None))?;
    Ok(())
}

/// `PUT /v1/services/{name}/{version}/instances/{id}`: registers, or renews when the instance
/// is live with the same record (an idempotent upsert). Answers the stored instance, with
/// `x-vasco-index` and `x-vasco-outcome: added|updated|renewed`. A renewal makes no KV
/// operation; a change writes the service's snapshot (coalesced to one write a second).
pub async fn register<K: Kv, O: Objects>(
    req: &ApiRequest,
    params: &Params,
    backend: &Backend<'_, K, O>,
) -> Result<ApiResponse, AppError> {
    let key = instance_key(params)?;
    let body = body_object(req)?;
    check_registration(&key, &body, backend.now)?;
    let reply = backend.register(&key, body).await?;
    let outcome = reply
        .outcome
        .and_then(|o| serde_json::to_value(o).ok())
        .and_then(|o| o.as_str().map(str::to_string));
    instance_answer(reply, "a registration", outcome)
}

/// The stored instance of an object's `reply` as the answer, with `x-vasco-index` and, when
/// given, `x-vasco-outcome`. `what` names the command in the (internal) error of a reply
/// without the instance.
fn instance_answer(
    reply: crate::object::Reply,
    what: &str,
    outcome: Option<String>,
) -> Result<ApiResponse, AppError> {
    let instance = reply.instance.ok_or_else(|| AppError::Internal {
        reason: format!("the service object answered {what} without the instance"),
    })?;
    let mut response = json(200, &instance)?;
    response
        .headers
        .push((INDEX_HEADER, reply.index.to_string()));
    if let Some(outcome) = outcome {
        response.headers.push(("x-vasco-outcome", outcome));
    }
    Ok(response)
}

/// `PUT /v1/services/{name}/{version}/instances/{id}/status`: sets the health status
/// (`{"status": "maintenance", "reason": "deploy"}`) or reports a check result
/// (`{"check": {"status": "critical", "note": "db down"}}`) of a live instance; answers the
/// stored instance with `x-vasco-index` and `x-vasco-outcome: updated` (readers see a change)
/// or `unchanged` (a damped result only advanced a counter). 404 when the instance is not
/// registered or its lease lapsed; the lease itself is not renewed.
pub async fn set_status<K: Kv, O: Objects>(
    req: &ApiRequest,
    params: &Params,
    backend: &Backend<'_, K, O>,
) -> Result<ApiResponse, AppError> {
    let key = instance_key(params)?;
    let body = body_object(req)?;
    HealthUpdate::from_value(&body)?;
    let reply = backend.set_health(&key, body).await?;
    let changed = reply.outcome.is_some_and(|o| o.is_change());
    let outcome = if changed { "updated" } else { "unchanged" };
    instance_answer(reply, "a status update", Some(outcome.into()))
}

/// `DELETE /v1/services/{name}/{version}/instances/{id}`: 204, or 404 when the instance is not
/// registered or its lease has lapsed.
pub async fn deregister<K: Kv, O: Objects>(
    params: &Params,
    backend: &Backend<'_, K, O>,
) -> Result<ApiResponse, AppError> {
    let key = instance_key(params)?;
    let reply = backend.deregister(&key).await?;
    let mut response = ApiResponse::no_content();
    response
        .headers
        .push((INDEX_HEADER, reply.index.to_string()));
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_query() {
        let q = parse_lookup_query("version=%5E2&tag=a,b&tag=c&zone=eu-1").unwrap();
        assert_eq!(q.version.as_str(), "^2");
        assert_eq!(q.tags, vec!["a", "b", "c"]);
        assert_eq!(q.zone.as_deref(), Some("eu-1"));
        let q = parse_lookup_query("tag=team%20a,%20b%20").unwrap();
        assert_eq!(q.tags, vec!["team a", "b"]);
        assert_eq!(parse_lookup_query("").unwrap(), Query::any());
    }

    #[test]
    fn lookup_query_errors_name_the_field() {
        for (query, code) in [
            ("version=not-a-version!", "invalid_version"),
            ("version=1&version=2", "invalid_version"),
            ("tag=", "invalid_tag"),
            ("tag=a,,b", "invalid_tag"),
            ("tag=a,", "invalid_tag"),
            ("tag=%E2%80%83", "invalid_tag"),
            ("zone=", "invalid_zone"),
            ("versoin=1", "invalid_versoin"),
        ] {
            let err = parse_lookup_query(query).unwrap_err();
            assert_eq!(err.status(), 400, "{query}");
            assert_eq!(err.code(), code, "{query}");
        }
    }
}
