//! `GET /v1/openapi.json`: an OpenAPI 3.0 document built from the route table, so it lists
//! exactly the routes the Worker serves (a test checks both ways).

use serde_json::{json, Map, Value};

use crate::error::AppError;
use crate::http::{ApiResponse, KV_OPS_HEADER, MAX_BODY_BYTES, NOW_HEADER};
use crate::router::{Access, RouteDef, RouteId};
use crate::ROUTES;

/// The document, served as is.
pub fn get() -> Result<ApiResponse, AppError> {
    super::json(200, &document())
}

/// Builds the OpenAPI document for [`ROUTES`].
pub fn document() -> Value {
    let mut paths = Map::new();
    for def in ROUTES {
        let item = paths
            .entry(def.pattern.to_string())
            .or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(item) = item {
            item.insert(def.method.lower().to_string(), operation(def));
        }
    }
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "Vasco registry",
            "version": env!("CARGO_PKG_VERSION"),
            "description": format!(
                "Service discovery on Cloudflare Workers + Workers KV. Every response carries \
                 `{KV_OPS_HEADER}`, the number of KV operations the request made, and \
                 `{NOW_HEADER}`, the registry's clock for the request. Request \
                 bodies are limited to {MAX_BODY_BYTES} bytes. Writes need \
                 `Authorization: Bearer <VASCO_TOKEN>`; reads need a token only when \
                 VASCO_READ_TOKEN is set."
            ),
        },
        "paths": paths,
        "components": components(),
    })
}

/// The headers every answer carries.
fn response_headers() -> Value {
    json!({
        KV_OPS_HEADER: { "$ref": "#/components/headers/KvOps" },
        NOW_HEADER: { "$ref": "#/components/headers/Now" },
    })
}

fn error_response(description: &str) -> Value {
    json!({
        "description": description,
        "headers": response_headers(),
        "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } },
    })
}

fn ok_response(description: &str, schema: &str) -> Value {
    json!({
        "description": description,
        "headers": response_headers(),
        "content": { "application/json": { "schema": { "$ref": format!("#/components/schemas/{schema}") } } },
    })
}

fn path_param(name: &str, description: &str) -> Value {
    json!({ "name": name, "in": "path", "required": true, "description": description, "schema": { "type": "string" } })
}

fn instance_params() -> Value {
    json!([
        path_param(
            "name",
            "Service name: lowercase letters, digits, '-', '_', '.'; at most 63."
        ),
        path_param(
            "version",
            "Exact semver version, e.g. 2.1.0 (a leading v is accepted)."
        ),
        path_param(
            "id",
            "Instance id: URL-safe characters (A-Z a-z 0-9 - _ . ~); at most 128."
        ),
    ])
}

fn operation(def: &RouteDef) -> Value {
    let mut responses = Map::new();
    let mut op = Map::new();
    op.insert("summary".into(), json!(def.summary));
    op.insert("operationId".into(), json!(format!("{:?}", def.id)));
    match def.id {
        RouteId::Health => {
            responses.insert(
                "200".into(),
                ok_response("The Worker is running.", "Health"),
            );
        }
        RouteId::OpenApi => {
            responses.insert(
                "200".into(),
                json!({ "description": "This document.", "content": { "application/json": { "schema": { "type": "object" } } } }),
            );
        }
        RouteId::Catalog => {
            responses.insert(
                "200".into(),
                ok_response("Every service with live instances.", "Catalog"),
            );
        }
        RouteId::Instances => {
            responses.insert(
                "200".into(),
                ok_response(
                    "Every live instance, by service, newest version first, then by id.",
                    "Instances",
                ),
            );
        }
        RouteId::Lookup => {
            op.insert(
                "parameters".into(),
                json!([
                    path_param("name", "Service name."),
                    { "name": "version", "in": "query", "required": false, "schema": { "type": "string" },
                      "description": "Exact version (2.0.0, v2.0.0) or semver range (^2, ~1.2, >=1 <3)." },
                    { "name": "tag", "in": "query", "required": false, "schema": { "type": "string" },
                      "description": "A tag every instance must carry; repeat or comma-separate for several." },
                    { "name": "zone", "in": "query", "required": false, "schema": { "type": "string" },
                      "description": "Only instances in this zone." },
                    { "name": "consistent", "in": "query", "required": false, "allowEmptyValue": true, "schema": { "type": "string" },
                      "description": "Read from the service's Durable Object instead of its KV snapshot (fresh everywhere; one object request)." },
                    { "name": "index", "in": "query", "required": false, "schema": { "type": "integer", "minimum": 0 },
                      "description": "Blocking query: the x-vasco-index of your last answer. Answers at once if it differs (or is 0), else holds until the index moves or `wait` ends." },
                    { "name": "wait", "in": "query", "required": false, "schema": { "type": "string", "pattern": "^[0-9]+(\\.[0-9]+)?(ns|us|ms|s|m|h)?([0-9]+(\\.[0-9]+)?(ns|us|ms|s|m|h))*$" },
                      "description": "How long a blocking query may hold (Go duration: 30s, 500ms, 1m30s; bare seconds); default 30s, at most 60s. Needs `index`." },
                ]),
            );
            responses.insert(
                "200".into(),
                ok_response(
                    "Live instances, newest version first. An unknown service has none.",
                    "Lookup",
                ),
            );
            responses.insert(
                "400".into(),
                error_response("A bad name or query parameter."),
            );
        }
        RouteId::Register => {
            op.insert("parameters".into(), instance_params());
            op.insert(
                "requestBody".into(),
                json!({ "required": true, "content": { "application/json": { "schema": { "$ref": "#/components/schemas/RegisterBody" } } } }),
            );
            responses.insert(
                "200".into(),
                ok_response("Registered or renewed; the stored instance.", "Instance"),
            );
            responses.insert(
                "400".into(),
                error_response("Malformed JSON or a bad field; the message names it."),
            );
            responses.insert("413".into(), error_response("Body over 16 KiB."));
        }
        RouteId::Deregister => {
            op.insert("parameters".into(), instance_params());
            responses.insert(
                "204".into(),
                json!({ "description": "Deregistered.", "headers": response_headers() }),
            );
            responses.insert("400".into(), error_response("A bad name, version or id."));
            responses.insert(
                "404".into(),
                error_response("Not registered, or its lease has lapsed."),
            );
        }
        RouteId::Watch | RouteId::WatchAll | RouteId::Lease => {
            if def.id != RouteId::WatchAll {
                op.insert(
                    "parameters".into(),
                    if def.id == RouteId::Lease {
                        instance_params()
                    } else {
                        json!([path_param("name", "Service name.")])
                    },
                );
            }
            responses.insert(
                "101".into(),
                json!({ "description": "Switching to a WebSocket (send `Upgrade: websocket`); the messages are described in the README." }),
            );
            responses.insert(
                "426".into(),
                error_response("Not a WebSocket upgrade request."),
            );
        }
        RouteId::Resolve => {
            op.insert(
                "requestBody".into(),
                json!({ "required": true, "content": { "application/json": { "schema": { "$ref": "#/components/schemas/ResolveBody" } } } }),
            );
            responses.insert(
                "200".into(),
                ok_response(
                    "Each dependency's newest matching version with its live instances, and the names missing.",
                    "Resolution",
                ),
            );
            responses.insert(
                "400".into(),
                error_response("Malformed JSON or a bad field; the message names it."),
            );
            responses.insert("413".into(), error_response("Body over 16 KiB."));
        }
    }
    match def.access {
        Access::Open => {
            op.insert("security".into(), json!([]));
        }
        Access::Read => {
            op.insert("security".into(), json!([{}, { "bearer": [] }]));
            responses.insert(
                "401".into(),
                error_response("VASCO_READ_TOKEN is set and no valid token was sent."),
            );
        }
        Access::Write => {
            op.insert("security".into(), json!([{ "bearer": [] }]));
            responses.insert(
                "401".into(),
                error_response("Missing or wrong bearer token."),
            );
        }
    }
    if def.access != Access::Open {
        let unavailable = if def.access == Access::Write {
            "No VASCO_TOKEN configured, or Workers KV unavailable."
        } else {
            "Workers KV unavailable."
        };
        responses.insert("503".into(), error_response(unavailable));
    }
    responses.insert(
        "405".into(),
        error_response("Wrong method for this path (see the Allow header)."),
    );
    op.insert("responses".into(), Value::Object(responses));
    Value::Object(op)
}

fn components() -> Value {
    json!({
        "securitySchemes": { "bearer": { "type": "http", "scheme": "bearer" } },
        "headers": {
            "KvOps": { "description": "KV operations this request made.", "schema": { "type": "integer", "minimum": 0 } },
            "Now": { "description": "The registry's clock for this request, ms since the Unix epoch; compare expires_at with it.", "schema": { "type": "integer" } }
        },
        "schemas": {
            "Error": {
                "type": "object", "required": ["error"],
                "properties": { "error": { "type": "object", "required": ["code", "message"], "properties": {
                    "code": { "type": "string", "example": "invalid_url",
                              "description": "bad_json, invalid_<field>, too_large, unauthorized, not_found, route_not_found, method_not_allowed, payload_too_large, not_configured, kv_unavailable, internal" },
                    "message": { "type": "string", "description": "Human-readable; names the field at fault." }
                } } }
            },
            "Health": { "type": "object", "required": ["status"], "properties": { "status": { "type": "string", "enum": ["ok"] } } },
            "RegisterBody": {
                "type": "object", "required": ["url"], "additionalProperties": false,
                "properties": {
                    "url": { "type": "string", "maxLength": 256, "description": "host:port or an http(s) URL.", "example": "10.0.0.1:3000" },
                    "ttl": { "type": "number", "minimum": 1, "maximum": 3600, "default": 10, "description": "Lease in seconds; beat every ttl/3." },
                    "tags": { "type": "array", "maxItems": 16, "items": { "type": "string", "minLength": 1, "maxLength": 64, "pattern": "^[^,\\s](?:[^,]*[^,\\s])?$", "description": "No comma and no whitespace at either end, so that `?tag=` can find it." } },
                    "meta": { "type": "object", "maxProperties": 16, "additionalProperties": { "type": "string", "maxLength": 256 } },
                    "weight": { "type": "integer", "minimum": 1, "maximum": 1000, "default": 1 },
                    "zone": { "type": "string", "maxLength": 63 }
                }
            },
            "Instance": {
                "type": "object",
                "required": ["service", "version", "id", "url", "tags", "meta", "weight", "registered_at", "expires_at", "ttl_ms"],
                "properties": {
                    "service": { "type": "string" }, "version": { "type": "string" }, "id": { "type": "string" },
                    "url": { "type": "string" },
                    "tags": { "type": "array", "items": { "type": "string" } },
                    "meta": { "type": "object", "additionalProperties": { "type": "string" } },
                    "weight": { "type": "integer" },
                    "zone": { "type": "string", "nullable": true },
                    "registered_at": { "type": "integer", "description": "ms since the Unix epoch" },
                    "expires_at": { "type": "integer", "description": "ms since the Unix epoch; live while now < expires_at" },
                    "ttl_ms": { "type": "integer" }
                }
            },
            "Lookup": {
                "type": "object", "required": ["service", "instances"],
                "properties": { "service": { "type": "string" }, "instances": { "type": "array", "items": { "$ref": "#/components/schemas/Instance" } } }
            },
            "Instances": {
                "type": "object", "required": ["instances"],
                "properties": { "instances": { "type": "array", "items": { "$ref": "#/components/schemas/Instance" } } }
            },
            "Catalog": {
                "type": "object", "required": ["services"],
                "properties": { "services": { "type": "array", "items": {
                    "type": "object", "required": ["name", "versions"],
                    "properties": { "name": { "type": "string" }, "versions": { "type": "array", "items": {
                        "type": "object", "required": ["version", "instances"],
                        "properties": { "version": { "type": "string" }, "instances": { "type": "integer" } }
                    } } }
                } } }
            },
            "ResolveBody": {
                "type": "object", "required": ["dependencies"], "additionalProperties": false,
                "properties": {
                    "dependencies": { "type": "object", "additionalProperties": { "type": "string" }, "example": { "api": "^2.0.0", "auth": "1.0.0" } },
                    "mocks": { "type": "object", "additionalProperties": { "type": "string" }, "description": "Fixed urls that win over lookups." },
                    "tags": { "type": "array", "items": { "type": "string" }, "description": "Tags every resolved instance must carry." },
                    "zone": { "type": "string", "description": "Only instances in this zone." }
                }
            },
            "Resolution": {
                "type": "object", "required": ["resolved", "missing"],
                "properties": {
                    "resolved": { "type": "object", "additionalProperties": {
                        "type": "object", "required": ["instances"],
                        "properties": {
                            "version": { "type": "string" },
                            "instances": { "type": "array", "items": { "$ref": "#/components/schemas/Instance" } },
                            "mock": { "type": "string" }
                        }
                    } },
                    "missing": { "type": "array", "items": { "type": "string" } }
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    fn refs(value: &Value, out: &mut Vec<String>) {
        match value {
            Value::Object(map) => {
                for (key, inner) in map {
                    if key == "$ref" {
                        out.push(inner.as_str().unwrap().to_string());
                    } else {
                        refs(inner, out);
                    }
                }
            }
            Value::Array(items) => items.iter().for_each(|v| refs(v, out)),
            _ => {}
        }
    }

    #[test]
    fn lists_exactly_the_route_table() {
        let doc = document();
        let mut documented = BTreeSet::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for method in item.as_object().unwrap().keys() {
                documented.insert((method.clone(), path.clone()));
            }
        }
        let served: BTreeSet<_> = ROUTES
            .iter()
            .map(|def| (def.method.lower().to_string(), def.pattern.to_string()))
            .collect();
        assert_eq!(documented, served);
    }

    #[test]
    fn every_ref_resolves() {
        let doc = document();
        let mut found = Vec::new();
        refs(&doc, &mut found);
        assert!(!found.is_empty());
        for reference in found {
            let pointer = reference.strip_prefix('#').unwrap();
            assert!(doc.pointer(pointer).is_some(), "dangling {reference}");
        }
    }

    #[test]
    fn path_parameters_match_placeholders() {
        let doc = document();
        for def in ROUTES {
            let op = &doc["paths"][def.pattern][def.method.lower()];
            let declared: BTreeSet<&str> = op["parameters"]
                .as_array()
                .map(|params| {
                    params
                        .iter()
                        .filter(|p| p["in"] == "path")
                        .map(|p| p["name"].as_str().unwrap())
                        .collect()
                })
                .unwrap_or_default();
            let placeholders: BTreeSet<&str> = def
                .pattern
                .split('/')
                .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
                .collect();
            assert_eq!(declared, placeholders, "{}", def.pattern);
        }
    }
}
