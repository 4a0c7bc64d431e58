//! `POST /v1/resolve`: every dependency of a service in one round trip.
//!
//! Body: `{"dependencies": {"api": "^2.0.0", "auth": "1.0.0"}, "mocks": {...}, "tags": [...],
//! "zone": "..."}`; only `dependencies` is required. Each non-mocked dependency costs one KV
//! read of its snapshot (all made concurrently); the core picks the newest matching version with
//! live instances and lists the names it could not resolve under `missing`.

use std::collections::BTreeMap;

use futures_util::future::try_join_all;
use serde_json::Value;
use vasco_core::registry::Query;
use vasco_core::resolve::resolve_filtered;
use vasco_core::{Dependencies, Mocks, ServiceName};

use super::{body_object, json};
use crate::backend::{Backend, Objects, ReadMode, ServiceView};
use crate::error::AppError;
use crate::http::{ApiRequest, ApiResponse};
use crate::kv::Kv;

/// Most dependencies one resolve may name (each costs a KV read; KV allows 1000 per request).
pub const MAX_DEPENDENCIES: usize = 64;

/// A parsed resolve request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolveRequest {
    /// Name to version requirement.
    pub dependencies: Dependencies,
    /// Names answered with a fixed url instead of a lookup.
    pub mocks: Mocks,
    /// Tags and zone every resolved instance must have (its version requirement is ignored;
    /// each dependency brings its own).
    pub filter: Query,
}

/// Parses and validates a resolve body.
pub fn parse_body(body: &Value) -> Result<ResolveRequest, AppError> {
    let object = body
        .as_object()
        .ok_or_else(|| AppError::invalid("body", "must be a JSON object"))?;
    for key in object.keys() {
        if !matches!(key.as_str(), "dependencies" | "mocks" | "tags" | "zone") {
            return Err(AppError::invalid(
                "body",
                format!("unknown field {key:?} (expected dependencies, mocks, tags, zone)"),
            ));
        }
    }
    let dependencies = match object.get("dependencies") {
        None | Some(Value::Null) => {
            return Err(AppError::invalid(
                "dependencies",
                "is required: an object of service name to version or range",
            ))
        }
        Some(value @ Value::Object(_)) => Dependencies::from_json_value(value)?,
        Some(_) => {
            return Err(AppError::invalid(
                "dependencies",
                "must be an object of service name to version or range",
            ))
        }
    };
    if dependencies.len() > MAX_DEPENDENCIES {
        return Err(AppError::invalid(
            "dependencies",
            format!("at most {MAX_DEPENDENCIES} may be resolved at once"),
        ));
    }
    let mocks = match object.get("mocks") {
        None => Mocks::default(),
        Some(value) => Mocks::from_json_value(value)?,
    };
    let mut filter = Query::any();
    match object.get("tags") {
        None | Some(Value::Null) => {}
        Some(Value::Array(items)) => {
            for item in items {
                match item {
                    Value::String(tag) => {
                        // A tag no instance can carry is refused, not silently unmatched.
                        vasco_core::instance::check_tag("tags", tag)?;
                        filter.tags.push(tag.clone());
                    }
                    _ => {
                        return Err(AppError::invalid(
                            "tags",
                            "must be an array of non-empty strings",
                        ))
                    }
                }
            }
        }
        Some(_) => {
            return Err(AppError::invalid(
                "tags",
                "must be an array of non-empty strings",
            ))
        }
    }
    match object.get("zone") {
        None | Some(Value::Null) => {}
        Some(Value::String(zone)) if !zone.is_empty() => filter.zone = Some(zone.clone()),
        Some(_) => return Err(AppError::invalid("zone", "must be a non-empty string")),
    }
    Ok(ResolveRequest {
        dependencies,
        mocks,
        filter,
    })
}

/// `POST /v1/resolve`.
pub async fn post<K: Kv, O: Objects>(
    req: &ApiRequest,
    backend: &Backend<'_, K, O>,
    guard: &crate::auth::Guard<'_>,
) -> Result<ApiResponse, AppError> {
    let request = parse_body(&body_object(req)?)?;
    // Every dependency looked up must be readable by the token (mocks touch nothing).
    for name in request.dependencies.0.keys() {
        if !request.mocks.0.contains_key(name) {
            guard.read(name)?;
        }
    }
    // Mocks win without a lookup, so only the other names cost a KV read.
    let names: Vec<&ServiceName> = request
        .dependencies
        .0
        .keys()
        .filter(|name| !request.mocks.0.contains_key(*name))
        .collect();
    let views: Vec<ServiceView> = try_join_all(
        names
            .iter()
            .map(|name| backend.read(name, ReadMode::Snapshot)),
    )
    .await?;
    let by_name: BTreeMap<&ServiceName, &[vasco_core::Instance]> = names
        .into_iter()
        .zip(views.iter().map(|view| view.instances.as_slice()))
        .collect();
    // Tags and zone narrow every dependency inside the core, beside its version requirement.
    let resolution = resolve_filtered(
        &request.dependencies,
        &request.mocks,
        &request.filter,
        backend.now,
        |name| by_name.get(name).copied().unwrap_or_default(),
    );
    json(200, &resolution)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_a_full_body() {
        let request = parse_body(&json!({
            "dependencies": {"api": "^2", "auth": "1.0.0"},
            "mocks": {"auth": "localhost:3000"},
            "tags": ["canary"],
            "zone": "eu-1"
        }))
        .unwrap();
        assert_eq!(request.dependencies.len(), 2);
        assert_eq!(request.mocks.0.len(), 1);
        assert_eq!(request.filter.tags, vec!["canary"]);
        assert_eq!(request.filter.zone.as_deref(), Some("eu-1"));
    }

    #[test]
    fn errors_name_the_field() {
        for (body, code) in [
            (json!({}), "invalid_dependencies"),
            (json!({"dependencies": []}), "invalid_dependencies"),
            (
                json!({"dependencies": {"Bad Name": "1"}}),
                "invalid_dependencies",
            ),
            (
                json!({"dependencies": {"api": "not a range!"}}),
                "invalid_dependencies",
            ),
            (json!({"dependencies": {"api": 2}}), "invalid_dependencies"),
            (json!({"dependencies": {}, "mocks": []}), "invalid_mocks"),
            (json!({"dependencies": {}, "tags": "x"}), "invalid_tags"),
            (json!({"dependencies": {}, "tags": [""]}), "invalid_tags"),
            (
                json!({"dependencies": {}, "tags": ["team,a"]}),
                "invalid_tags",
            ),
            (json!({"dependencies": {}, "tags": ["a "]}), "invalid_tags"),
            (json!({"dependencies": {}, "zone": 1}), "invalid_zone"),
            (json!({"dependencies": {}, "extra": 1}), "invalid_body"),
        ] {
            let err = parse_body(&body).unwrap_err();
            assert_eq!(err.status(), 400, "{body}");
            assert_eq!(err.code(), code, "{body}");
        }
    }

    #[test]
    fn too_many_dependencies() {
        let deps: serde_json::Map<String, Value> = (0..=MAX_DEPENDENCIES)
            .map(|i| (format!("s{i}"), json!("*")))
            .collect();
        let err = parse_body(&json!({ "dependencies": deps })).unwrap_err();
        assert_eq!(err.code(), "invalid_dependencies");
    }
}
