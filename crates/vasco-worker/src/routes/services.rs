//! `/v1/services`: the catalog, lookups of one service, and registering, renewing and
//! deregistering instances.

use serde::Serialize;
use vasco_core::registry::{catalog as build_catalog, live_all, live_matching, Query};
use vasco_core::{
    parse_tags, Instance, InstanceId, InstanceKey, InstanceSpec, ServiceName, Version, VersionReq,
};

use super::{body_object, json};
use crate::error::AppError;
use crate::http::{parse_query, ApiRequest, ApiResponse};
use crate::router::Params;
use crate::store::{Kv, Store, Stored};

/// The answer of a lookup: `{"service": "api", "instances": [...]}`.
#[derive(Debug, Serialize)]
pub struct Lookup<'a> {
    /// The service asked for.
    pub service: &'a ServiceName,
    /// Its live instances that match the query, newest version first, then by id.
    pub instances: Vec<&'a Instance>,
}

/// `GET /v1/services`: each service with its versions and live instance counts.
pub async fn catalog<K: Kv>(store: &Store<'_, K>) -> Result<ApiResponse, AppError> {
    let instances = store.everything().await?;
    json(200, &build_catalog(instances.iter(), store.now()))
}

/// The answer of `GET /v1/instances`: `{"instances": [...]}`.
#[derive(Debug, Serialize)]
pub struct AllInstances<'a> {
    /// Every live instance, by service, newest version first, then by id.
    pub instances: Vec<&'a Instance>,
}

/// `GET /v1/instances`: every live instance, with the catalog's KV cost (one list per 1000
/// instances), so a dashboard polls once instead of once per service.
pub async fn all_instances<K: Kv>(store: &Store<'_, K>) -> Result<ApiResponse, AppError> {
    let instances = store.everything().await?;
    json(
        200,
        &AllInstances {
            instances: live_all(instances.iter(), store.now()),
        },
    )
}

/// Parses the query of a lookup: `version` (exact or a semver range), `tag` (repeatable, or
/// comma-separated; every tag must be present), `zone`. Anything else is a 400, so a typo such
/// as `?versoin=` is not silently ignored.
pub fn parse_lookup_query(query: &str) -> Result<Query, AppError> {
    let mut parsed = Query::any();
    let mut seen_version = false;
    for (key, value) in parse_query(query)? {
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
                    "unknown query parameter; use version, tag or zone",
                ))
            }
        }
    }
    Ok(parsed)
}

/// `GET /v1/services/{name}?version=&tag=&zone=`: the live instances. An unknown service is an
/// empty list, not an error.
pub async fn lookup<K: Kv>(
    req: &ApiRequest,
    params: &Params,
    store: &Store<'_, K>,
) -> Result<ApiResponse, AppError> {
    let service = ServiceName::parse(params.get("name"))?;
    let query = parse_lookup_query(&req.query)?;
    let instances = store.service(&service).await?;
    let live = live_matching(instances.iter(), &query, store.now());
    json(
        200,
        &Lookup {
            service: &service,
            instances: live,
        },
    )
}

/// The instance a `PUT` or `DELETE` path names.
pub fn instance_key(params: &Params) -> Result<InstanceKey, AppError> {
    Ok(InstanceKey {
        service: ServiceName::parse(params.get("name"))?,
        version: Version::parse(params.get("version"))?,
        id: InstanceId::parse(params.get("id"))?,
    })
}

/// `PUT /v1/services/{name}/{version}/instances/{id}`: registers, or renews when the instance
/// exists (an idempotent upsert). One KV write; answers the stored instance.
pub async fn register<K: Kv>(
    req: &ApiRequest,
    params: &Params,
    store: &Store<'_, K>,
) -> Result<ApiResponse, AppError> {
    let key = instance_key(params)?;
    let spec = InstanceSpec::from_json_value(&body_object(req)?)?;
    // Keeping `registered_at` across heartbeats would need a KV read per beat; the isolate
    // cache answers it for free when it has the service, otherwise the lease starts now.
    let previous = store.cached_instance(&key);
    let instance = Instance::lease(key, spec, store.now(), previous.as_ref());
    store.put(&instance).await?;
    json(200, &instance)
}

/// `DELETE /v1/services/{name}/{version}/instances/{id}`: 204, or 404 when the instance is not
/// registered or its lease has lapsed. One KV read and, when found, one delete.
pub async fn deregister<K: Kv>(
    params: &Params,
    store: &Store<'_, K>,
) -> Result<ApiResponse, AppError> {
    let key = instance_key(params)?;
    match store.get(&key).await? {
        Stored::Present(Some(instance)) if !instance.is_live(store.now()) => {
            Err(AppError::InstanceNotFound {
                instance: key.to_string(),
            })
        }
        // Live, or a record this version cannot decode: remove it.
        Stored::Present(_) => {
            store.delete(&key).await?;
            Ok(ApiResponse::no_content())
        }
        Stored::Missing => Err(AppError::InstanceNotFound {
            instance: key.to_string(),
        }),
    }
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
