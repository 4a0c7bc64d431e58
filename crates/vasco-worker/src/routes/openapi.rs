//! `GET /v1/openapi.json`: an OpenAPI 3.0 document built from the route table, so it lists
//! exactly the routes the Worker serves (a test checks both ways).

use serde_json::{json, Map, Value};
use vasco_core::health::{MAX_CHECK_TTL_S, MAX_DAMPING, REASON_LEN};
use vasco_core::instance::limits;
use vasco_core::name::{MAX_ID_LEN, MAX_NAME_LEN};
use vasco_core::wire::lyft;

use crate::error::AppError;
use crate::http::{ApiResponse, KV_OPS_HEADER, MAX_BODY_BYTES, NOW_HEADER};
use crate::router::{Access, Dialect, RouteDef, RouteId};
use crate::routes::lyft::ERROR_HEADER;
use crate::routes::resolve::MAX_DEPENDENCIES;
use crate::ROUTES;

/// The longest exact version `vasco_core::Version::parse` accepts.
pub const VERSION_LEN: usize = vasco_core::version::MAX_VERSION_LEN;
/// The longest version requirement `vasco_core::VersionReq::parse` accepts.
pub const RANGE_LEN: usize = vasco_core::version::MAX_REQ_LEN;

/// What the core's `parse_tags` accepts as one tag: no comma, no control characters, no
/// whitespace at either end (so that `?tag=` can find every tag that registers).
const TAG: &str = "^[^,\\s\\u0000-\\u001f\\u007f-\\u009f]([^,\\u0000-\\u001f\\u007f-\\u009f]*[^,\\s\\u0000-\\u001f\\u007f-\\u009f])?$";

/// No control characters (Unicode `Cc`, what Rust's `char::is_control` refuses), as the core
/// requires of tags, zones and metadata.
const NO_CONTROL: &str = "^[^\\u0000-\\u001f\\u007f-\\u009f]*$";

/// What `ServiceName::parse` accepts in a path (`.` and `..` are path segments a URL parser
/// removes, so they can never reach the Worker as a name).
fn name_schema() -> Value {
    json!({
        "type": "string", "minLength": 1, "maxLength": MAX_NAME_LEN,
        "pattern": "^(?!\\.{1,2}$)[a-z0-9._-]+$",
        "example": "orders",
    })
}

/// What `InstanceId::parse` accepts.
fn id_schema() -> Value {
    json!({
        "type": "string", "minLength": 1, "maxLength": MAX_ID_LEN,
        "pattern": "^(?!\\.{1,2}$)[A-Za-z0-9._~-]+$",
        "example": "a1",
    })
}

/// What `Version::parse` accepts: a full semver version (semver.org's pattern), an optional
/// leading `v`.
fn version_schema() -> Value {
    json!({
        "type": "string", "minLength": 5, "maxLength": VERSION_LEN,
        "pattern": "^[vV]?(0|[1-9][0-9]*)\\.(0|[1-9][0-9]*)\\.(0|[1-9][0-9]*)(-(0|[1-9][0-9]*|[0-9]*[a-zA-Z-][0-9a-zA-Z-]*)(\\.(0|[1-9][0-9]*|[0-9]*[a-zA-Z-][0-9a-zA-Z-]*))*)?(\\+[0-9a-zA-Z-]+(\\.[0-9a-zA-Z-]+)*)?$",
        "example": "2.1.0",
    })
}

/// A label the core checks with its length limit and no control characters (tags, zones).
fn label_schema(max: usize) -> Value {
    json!({ "type": "string", "minLength": 1, "maxLength": max, "pattern": NO_CONTROL })
}

/// A route pattern as an OpenAPI path: a `{*rest}` capture is written `{rest}` (its value
/// may hold slashes, which the parameter's description says).
pub fn openapi_path(pattern: &str) -> String {
    pattern.replace("{*", "{")
}

/// The document, served as is.
pub fn get() -> Result<ApiResponse, AppError> {
    super::json(200, &document())
}

/// Builds the OpenAPI document for [`ROUTES`].
pub fn document() -> Value {
    let mut paths = Map::new();
    for def in ROUTES {
        let item = paths
            .entry(openapi_path(def.pattern))
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

fn path_param(name: &str, description: &str, schema: Value) -> Value {
    json!({ "name": name, "in": "path", "required": true, "description": description, "schema": schema })
}

fn name_param() -> Value {
    path_param(
        "name",
        &format!("Service name: lowercase letters, digits, '-', '_', '.'; 1 to {MAX_NAME_LEN}."),
        name_schema(),
    )
}

fn instance_params() -> Value {
    json!([
        name_param(),
        path_param(
            "version",
            "Exact semver version, e.g. 2.1.0 (a leading v is accepted).",
            version_schema(),
        ),
        path_param(
            "id",
            &format!(
                "Instance id: URL-safe characters (A-Z a-z 0-9 - _ . ~), not . or ..; 1 to {MAX_ID_LEN}."
            ),
            id_schema(),
        ),
    ])
}

fn lyft_service_param() -> Value {
    path_param(
        "service",
        &format!("Service name: lowercase letters, digits, '-', '_', '.'; 1 to {MAX_NAME_LEN}."),
        name_schema(),
    )
}

/// A dotted IPv4 address as `vasco_core::wire::lyft::parse_ip` reads it (no leading zeros).
const IPV4: &str = "^((25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\\.){3}(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])$";

fn lyft_ip_param() -> Value {
    path_param(
        "ip",
        "The host's dotted IPv4 address.",
        json!({ "type": "string", "pattern": IPV4, "example": "10.0.0.1" }),
    )
}

/// A lyft/discovery refusal: its own `{}` or `{"error": "..."}`, or (for a path Vasco cannot
/// decode) the usual error body; the reason in `x-vasco-error`.
fn lyft_error_response(description: &str) -> Value {
    let mut headers = response_headers();
    headers[ERROR_HEADER] =
        json!({ "description": "Why the request was refused.", "schema": { "type": "string" } });
    json!({
        "description": description,
        "headers": headers,
        "content": { "application/json": { "schema": { "$ref": "#/components/schemas/LyftError" } } },
    })
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
                json!({ "description": "This document.", "headers": response_headers(), "content": { "application/json": { "schema": { "type": "object" } } } }),
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
                    name_param(),
                    { "name": "version", "in": "query", "required": false,
                      "schema": { "type": "string", "maxLength": RANGE_LEN },
                      "description": "Exact version (2.0.0, v2.0.0) or npm semver range (^2, ~1.2, >=1 <3)." },
                    { "name": "tag", "in": "query", "required": false,
                      "schema": { "type": "string", "pattern": "^[^,]*[^,\\s][^,]*(,[^,]*[^,\\s][^,]*)*$" },
                      "description": "A tag every instance must carry; comma-separate for several (none empty)." },
                    { "name": "zone", "in": "query", "required": false, "schema": { "type": "string", "minLength": 1 },
                      "description": "Only instances in this zone." },
                    { "name": "status", "in": "query", "required": false, "schema": { "type": "string", "minLength": 1 },
                      "description": "Health statuses to list, comma-separated (passing, warning, critical, maintenance); default passing,warning. At most one of status, passing and all." },
                    { "name": "passing", "in": "query", "required": false, "allowEmptyValue": true, "schema": { "type": "string", "enum": ["", "true", "1"] },
                      "description": "Flag: passing instances only." },
                    { "name": "all", "in": "query", "required": false, "allowEmptyValue": true, "schema": { "type": "string", "enum": ["", "true", "1"] },
                      "description": "Flag: every leased instance, whatever its status." },
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
        RouteId::SetStatus => {
            op.insert("parameters".into(), instance_params());
            op.insert(
                "requestBody".into(),
                json!({ "required": true, "content": { "application/json": { "schema": { "$ref": "#/components/schemas/StatusBody" } } } }),
            );
            responses.insert(
                "200".into(),
                ok_response("The stored instance with its status; x-vasco-outcome says updated or unchanged.", "Instance"),
            );
            responses.insert(
                "400".into(),
                error_response("Malformed JSON or a bad field; the message names it."),
            );
            responses.insert(
                "404".into(),
                error_response("Not registered, or its lease has lapsed."),
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
                        json!([name_param()])
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
            if def.id != RouteId::WatchAll {
                responses.insert("400".into(), error_response("A bad name, version or id."));
            }
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
        RouteId::LyftHealthcheck => {
            responses.insert(
                "200".into(),
                json!({ "description": "`OK`: the Worker is running (lyft/discovery's health check).",
                        "headers": response_headers(),
                        "content": { "text/plain": { "schema": { "type": "string", "enum": ["OK"] } } } }),
            );
        }
        RouteId::LyftHosts => {
            op.insert("parameters".into(), json!([lyft_service_param()]));
            responses.insert(
                "200".into(),
                ok_response(
                    "The service's live hosts (every instance whose url is an IPv4 address with a port). An unknown service has none.",
                    "LyftHosts",
                ),
            );
            responses.insert(
                "400".into(),
                lyft_error_response("A service name Vasco refuses: {\"error\": \"...\"}."),
            );
        }
        RouteId::LyftRepoHosts => {
            op.insert(
                "parameters".into(),
                json!([path_param(
                    "repo",
                    "The service_repo_name hosts registered with.",
                    json!({ "type": "string", "minLength": 1 })
                )]),
            );
            responses.insert(
                "200".into(),
                ok_response(
                    "The live hosts registered with this repo, across services.",
                    "LyftRepoHosts",
                ),
            );
        }
        RouteId::LyftRegister => {
            op.insert("parameters".into(), json!([lyft_service_param()]));
            op.insert(
                "requestBody".into(),
                json!({ "required": true, "content": {
                    "application/x-www-form-urlencoded": { "schema": { "$ref": "#/components/schemas/LyftRegistrationForm" } },
                    "application/json": { "schema": { "$ref": "#/components/schemas/LyftRegistrationJson" } },
                } }),
            );
            responses.insert(
                "200".into(),
                ok_response("Registered, or the heartbeat taken: `{}`.", "LyftEmpty"),
            );
            responses.insert(
                "400".into(),
                lyft_error_response(
                    "Refused: `{}` as the original answers (the reason in x-vasco-error), or `{\"error\": \"...\"}` (tags that are not JSON, or what Vasco cannot store).",
                ),
            );
            responses.insert("413".into(), error_response("Body over 16 KiB."));
        }
        RouteId::LyftDeregister => {
            let mut params = vec![lyft_service_param()];
            if def.pattern.ends_with("{ip}") {
                params.push(lyft_ip_param());
                responses.insert("200".into(), ok_response("Deleted: `{}`.", "LyftEmpty"));
            }
            op.insert("parameters".into(), Value::Array(params));
            responses.insert(
                "400".into(),
                lyft_error_response(
                    "`{}`: no ip, an ip that is not dotted IPv4, or no such live host.",
                ),
            );
        }
        RouteId::LyftWeight => {
            let mut params = vec![lyft_service_param()];
            if def.pattern.ends_with("{ip}") {
                params.push(lyft_ip_param());
            }
            op.insert("parameters".into(), Value::Array(params));
            op.insert(
                "requestBody".into(),
                json!({ "required": true, "content": {
                    "application/x-www-form-urlencoded": { "schema": { "$ref": "#/components/schemas/LyftWeight" } },
                    "application/json": { "schema": { "$ref": "#/components/schemas/LyftWeight" } },
                } }),
            );
            responses.insert(
                "204".into(),
                json!({ "description": "Weight set.", "headers": response_headers() }),
            );
            responses.insert(
                "400".into(),
                lyft_error_response(
                    "A missing weight, or not an integer from 1 to 100: `{\"error\": \"...\"}`.",
                ),
            );
            responses.insert(
                "404".into(),
                lyft_error_response("`{\"error\": \"Host not found\"}`."),
            );
            responses.insert("413".into(), error_response("Body over 16 KiB."));
        }
        RouteId::AclCreate => {
            op.insert(
                "requestBody".into(),
                json!({ "required": true, "content": { "application/json": { "schema": { "$ref": "#/components/schemas/TokenRequest" } } } }),
            );
            responses.insert(
                "201".into(),
                ok_response("The token: its secret is shown here, once.", "TokenCreated"),
            );
            responses.insert(
                "400".into(),
                error_response("A bad body; the message names the field."),
            );
            responses.insert("413".into(), error_response("Body over 16 KiB."));
        }
        RouteId::AclList => {
            responses.insert(
                "200".into(),
                ok_response("Every token, never a secret.", "TokenList"),
            );
        }
        RouteId::AclRevoke => {
            op.insert(
                "parameters".into(),
                json!([path_param(
                    "id",
                    "The token's id.",
                    json!({ "type": "string", "minLength": 1 })
                )]),
            );
            responses.insert(
                "204".into(),
                json!({ "description": "Revoked.", "headers": response_headers() }),
            );
            responses.insert("404".into(), error_response("No token has this id."));
        }
        RouteId::ConsulRegister
        | RouteId::ConsulDeregister
        | RouteId::ConsulMaintenance
        | RouteId::ConsulCheck
        | RouteId::ConsulHealthService
        | RouteId::ConsulHealthChecks
        | RouteId::ConsulCatalogService
        | RouteId::ConsulCatalogServices
        | RouteId::ConsulDatacenters
        | RouteId::ConsulAgentSelf
        | RouteId::ConsulAgentServices
        | RouteId::ConsulAgentChecks
        | RouteId::ConsulLeader => consul_operation(def, &mut op, &mut responses),
    }
    // The compatibility routes also take the token as `?token=` (RouteId::query_token).
    let query = def.id.query_token();
    match def.access {
        Access::Open => {
            op.insert("security".into(), json!([]));
        }
        Access::Read if query => {
            op.insert(
                "security".into(),
                json!([{}, { "bearer": [] }, { "query_token": [] }]),
            );
            responses.insert(
                "401".into(),
                error_response("VASCO_READ_TOKEN is set and no valid token was sent."),
            );
        }
        Access::Write if query => {
            op.insert(
                "security".into(),
                json!([{ "bearer": [] }, { "query_token": [] }]),
            );
            responses.insert(
                "401".into(),
                error_response("Missing or wrong token (bearer header or ?token=)."),
            );
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
        Access::Manage => {
            op.insert("security".into(), json!([{ "bearer": [] }]));
            responses.insert(
                "401".into(),
                error_response("Missing or wrong bearer token."),
            );
        }
    }
    if def.access != Access::Open {
        responses.insert(
            "403".into(),
            error_response("The token is valid but may not do this (its policies do not cover the service, or it may not manage tokens)."),
        );
    }
    responses.insert(
        "429".into(),
        error_response("Too many requests from this client (see Retry-After)."),
    );
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
    if def.id.dialect() == Dialect::Consul {
        // Consul's clients read errors as plain text, and a bad token as 403.
        if let Some(unauthorized) = responses.remove("401") {
            responses.insert("403".into(), unauthorized);
        }
        for (status, response) in responses.iter_mut() {
            if status.starts_with('4') || status.starts_with('5') {
                let description = response["description"].as_str().unwrap_or("").to_string();
                *response = json!({
                    "description": description,
                    "headers": response_headers(),
                    "content": { "text/plain": { "schema": { "type": "string" } } },
                });
            }
        }
    }
    op.insert("responses".into(), Value::Object(responses));
    Value::Object(op)
}

/// The query parameters of Consul's reads that Vasco uses; the others are tolerated.
fn consul_read_params(service: bool, blocking: bool) -> Value {
    let mut params = Vec::new();
    if service {
        params.push(path_param(
            "service",
            "Consul service name (any case; lower-cased to a Vasco name; one without an equivalent has no instances).",
            json!({ "type": "string", "minLength": 1 }),
        ));
        params.push(json!({ "name": "tag", "in": "query", "required": false, "schema": { "type": "string" },
                            "description": "Only instances with this tag (repeat for several: all of them)." }));
    }
    if blocking {
        params.push(json!({ "name": "index", "in": "query", "required": false, "schema": { "type": "integer", "minimum": 0 },
                            "description": "Blocking query: the X-Consul-Index of your last answer; held while it is current." }));
        params.push(json!({ "name": "wait", "in": "query", "required": false,
                            "schema": { "type": "string", "pattern": "^[0-9]+(\\.[0-9]+)?(ns|us|ms|s|m|h)?([0-9]+(\\.[0-9]+)?(ns|us|ms|s|m|h))*$" },
                            "description": "How long to hold (Go duration); at most 60 s here (Consul: 10 min)." }));
    }
    Value::Array(params)
}

/// The Go booleans `?passing=` accepts.
const GO_BOOLS: [&str; 13] = [
    "", "1", "t", "T", "true", "TRUE", "True", "0", "f", "F", "false", "FALSE", "False",
];

fn consul_read_ok(description: &str, schema: Value) -> Value {
    let mut headers = response_headers();
    headers["X-Consul-Index"] = json!({ "description": "The change index of this answer (at least 1).", "required": true,
                                        "schema": { "type": "integer", "minimum": 1 } });
    json!({ "description": description, "headers": headers, "content": { "application/json": { "schema": schema } } })
}

fn consul_written() -> Value {
    json!({ "description": "Done (exactly 200, no body).", "headers": response_headers() })
}

/// The operations of Consul's routes ([`crate::routes::consul`]).
fn consul_operation(
    def: &RouteDef,
    op: &mut Map<String, Value>,
    responses: &mut Map<String, Value>,
) {
    let id_param = |name: &str, description: &str| {
        path_param(
            name,
            description,
            json!({ "type": "string", "minLength": 1 }),
        )
    };
    let bad = |description: &str| error_response(description);
    match def.id {
        RouteId::ConsulRegister => {
            op.insert(
                "requestBody".into(),
                json!({ "required": true, "content": { "application/json": { "schema": { "$ref": "#/components/schemas/ConsulRegistration" } } } }),
            );
            responses.insert("200".into(), consul_written());
            responses.insert("400".into(), bad("A body Vasco cannot take (the message says why: a name or ID without a Vasco equivalent, a check the edge cannot run, a limit)."));
            responses.insert("413".into(), bad("Body over 16 KiB."));
        }
        RouteId::ConsulDeregister | RouteId::ConsulMaintenance => {
            let mut params = vec![id_param("id", "Consul service ID (the rest of the path).")];
            if def.id == RouteId::ConsulMaintenance {
                params.push(json!({ "name": "enable", "in": "query", "required": true, "schema": { "type": "string", "enum": GO_BOOLS } }));
                params.push(json!({ "name": "reason", "in": "query", "required": false, "schema": { "type": "string" } }));
                responses.insert("400".into(), bad("enable missing or not a boolean."));
            }
            op.insert("parameters".into(), Value::Array(params));
            responses.insert("200".into(), consul_written());
            responses.insert("404".into(), bad("Unknown service ID."));
        }
        RouteId::ConsulCheck => {
            op.insert(
                "parameters".into(),
                json!([
                    path_param("verb", "pass, warn, fail or update.", json!({ "type": "string", "enum": ["pass", "warn", "fail", "update"] })),
                    id_param("check_id", "Consul check ID (service:<service id> unless registered with CheckID)."),
                    { "name": "note", "in": "query", "required": false, "schema": { "type": "string" } },
                ]),
            );
            op.insert(
                "requestBody".into(),
                json!({ "required": false, "content": { "application/json": { "schema": {
                    "type": "object", "description": "For update: {Status, Output}.",
                    "properties": { "Status": { "type": "string", "enum": ["passing", "warning", "critical"] }, "Output": { "type": "string" } } } } } }),
            );
            responses.insert("200".into(), consul_written());
            responses.insert("400".into(), bad("A bad update body."));
            responses.insert(
                "404".into(),
                bad("Unknown check ID, or a verb other than pass, warn, fail, update."),
            );
            responses.insert("413".into(), bad("Body over 16 KiB."));
        }
        RouteId::ConsulHealthService
        | RouteId::ConsulHealthChecks
        | RouteId::ConsulCatalogService => {
            let mut params = consul_read_params(true, true);
            if def.id == RouteId::ConsulHealthService {
                if let Value::Array(list) = &mut params {
                    list.push(json!({ "name": "passing", "in": "query", "required": false, "allowEmptyValue": true,
                                      "schema": { "type": "string", "enum": GO_BOOLS },
                                      "description": "Only instances whose every check passes." }));
                }
            }
            op.insert("parameters".into(), params);
            responses.insert(
                "200".into(),
                consul_read_ok(
                    "Consul's answer (an array).",
                    json!({ "type": "array", "items": { "type": "object" } }),
                ),
            );
            responses.insert("400".into(), bad("A bad index, wait or passing value."));
        }
        RouteId::ConsulCatalogServices => {
            op.insert("parameters".into(), consul_read_params(false, true));
            responses.insert("200".into(), consul_read_ok("Service name to its tags.", json!({ "type": "object", "additionalProperties": { "type": "array", "items": { "type": "string" } } })));
            responses.insert("400".into(), bad("A bad index or wait value."));
        }
        RouteId::ConsulAgentServices | RouteId::ConsulAgentChecks | RouteId::ConsulAgentSelf => {
            responses.insert(
                "200".into(),
                consul_read_ok("Consul's answer (an object).", json!({ "type": "object" })),
            );
        }
        RouteId::ConsulDatacenters => {
            responses.insert(
                "200".into(),
                consul_read_ok(
                    "The datacenters.",
                    json!({ "type": "array", "items": { "type": "string" } }),
                ),
            );
        }
        RouteId::ConsulLeader => {
            responses.insert(
                "200".into(),
                consul_read_ok("The leader's address.", json!({ "type": "string" })),
            );
        }
        _ => {}
    }
}

/// `PUT /v1/agent/service/register` bodies, as `vasco_core::wire::consul::ServiceRegistration`
/// reads them: keys in any case, with or without `_` (py-consul's snake case); fields Vasco
/// does not use are ignored, as Consul's agent ignores some.
fn consul_registration() -> Value {
    json!({
        "type": "object", "required": ["Name"],
        "properties": {
            "Name": { "type": "string", "minLength": 1, "maxLength": MAX_NAME_LEN },
            "ID": { "type": "string", "maxLength": MAX_ID_LEN },
            "Tags": { "type": "array", "items": { "type": "string" } },
            "Address": { "type": "string" },
            "Port": { "type": "integer", "minimum": 1, "maximum": 65535 },
            "Meta": { "type": "object", "additionalProperties": { "type": "string" } },
            "Weights": { "type": "object" },
            "Check": { "type": "object", "description": "TTL (Go duration) with optional Status, CheckID, Name, DeregisterCriticalServiceAfter, SuccessBeforePassing, FailuresBeforeWarning, FailuresBeforeCritical. HTTP and TCP checks are refused on the edge." },
            "Checks": { "type": "array", "maxItems": 1, "items": { "type": "object" } }
        }
    })
}

fn components() -> Value {
    json!({
        "securitySchemes": {
            "bearer": { "type": "http", "scheme": "bearer" },
            "query_token": { "type": "apiKey", "in": "query", "name": "token",
                             "description": "The token as ?token=, for clients that cannot set a header (lyft/discovery routes only)." }
        },
        "headers": {
            "KvOps": { "description": "KV operations this request made.", "required": true, "schema": { "type": "integer", "minimum": 0 } },
            "Now": { "description": "The registry's clock for this request, ms since the Unix epoch; compare expires_at with it.", "required": true, "schema": { "type": "integer", "minimum": 0 } }
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
            "RegisterBody": register_body(),
            "Instance": instance_schema(),
            "StatusBody": status_body(),
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
                        "type": "object", "required": ["version", "instances", "statuses"],
                        "properties": { "version": { "type": "string" }, "instances": { "type": "integer" },
                                        "statuses": { "type": "object", "description": "Instances by health status.",
                                                      "properties": { "passing": { "type": "integer" }, "warning": { "type": "integer" }, "critical": { "type": "integer" }, "maintenance": { "type": "integer" } } } }
                    } } }
                } } }
            },
            "ResolveBody": resolve_body(),
            "TokenRequest": {
                "type": "object", "required": ["policies"], "additionalProperties": false,
                "properties": {
                    "description": { "type": "string", "nullable": true, "maxLength": vasco_core::acl::DESCRIPTION_LEN, "pattern": NO_CONTROL },
                    "policies": { "type": "array", "minItems": 1, "items": { "type": "object",
                        "description": "{\"read\": [patterns]}, {\"write\": [patterns]} or {\"manage\": true}; a pattern is a service name, a prefix ending in *, or *." } },
                    "expires_at": { "type": "integer", "nullable": true, "description": "ms since the Unix epoch; after now." }
                },
                "example": { "description": "api fleet", "policies": [{ "write": ["api", "api-*"] }, { "read": ["*"] }] }
            },
            "Token": {
                "type": "object", "required": ["id", "description", "policies", "created_at"],
                "properties": {
                    "id": { "type": "string" }, "description": { "type": "string" },
                    "policies": { "type": "array", "items": { "type": "object" } },
                    "created_at": { "type": "integer" },
                    "last_used_at": { "type": "integer", "nullable": true, "description": "Recorded at most once a minute." },
                    "expires_at": { "type": "integer", "nullable": true }
                }
            },
            "TokenCreated": {
                "allOf": [{ "$ref": "#/components/schemas/Token" },
                          { "type": "object", "required": ["secret"], "properties": { "secret": { "type": "string", "description": "vt.<id>.<secret>: send it as a bearer token. Shown once." } } }]
            },
            "TokenList": {
                "type": "object", "required": ["tokens"],
                "properties": { "tokens": { "type": "array", "items": { "$ref": "#/components/schemas/Token" } } }
            },
            "ConsulRegistration": consul_registration(),
            "LyftRegistrationForm": lyft_registration(false),
            "LyftRegistrationJson": lyft_registration(true),
            "LyftWeight": {
                "type": "object", "required": ["load_balancing_weight"],
                "properties": { "load_balancing_weight": { "type": "integer", "minimum": 1, "maximum": lyft::MAX_LB_WEIGHT } }
            },
            "LyftEmpty": { "type": "object", "additionalProperties": false },
            "LyftError": {
                "type": "object",
                "properties": { "error": { "anyOf": [
                    { "type": "string" },
                    { "type": "object", "required": ["code", "message"],
                      "properties": { "code": { "type": "string" }, "message": { "type": "string" } } }
                ] } }
            },
            "LyftHost": {
                "type": "object",
                "required": ["service", "ip_address", "service_repo_name", "port", "revision", "last_check_in", "tags"],
                "properties": {
                    "service": { "type": "string" },
                    "ip_address": { "type": "string", "pattern": IPV4 },
                    "service_repo_name": { "type": "string", "nullable": true,
                                           "description": "Empty when registered without one; null for hosts registered through another API." },
                    "port": { "type": "integer", "minimum": 1, "maximum": 65535 },
                    "revision": { "type": "string" },
                    "last_check_in": { "type": "string", "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{6}$",
                                       "description": "UTC, as Python prints a datetime: the last registration or heartbeat." },
                    "tags": { "type": "object", "properties": {
                        "az": { "type": "string" }, "region": { "type": "string" }, "instance_id": { "type": "string" },
                        "canary": { "type": "boolean" },
                        "load_balancing_weight": { "type": "integer", "minimum": 1, "maximum": lyft::MAX_LB_WEIGHT }
                    } }
                }
            },
            "LyftHosts": {
                "type": "object", "required": ["service", "env", "hosts"],
                "properties": { "service": { "type": "string" }, "env": { "type": "string" },
                                "hosts": { "type": "array", "items": { "$ref": "#/components/schemas/LyftHost" } } }
            },
            "LyftRepoHosts": {
                "type": "object", "required": ["service_repo_name", "env", "hosts"],
                "properties": { "service_repo_name": { "type": "string" }, "env": { "type": "string" },
                                "hosts": { "type": "array", "items": { "$ref": "#/components/schemas/LyftHost" } } }
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

/// `PUT` bodies, as `vasco_core::wire::native::Registration` reads them: every optional field
/// may also be `null` (meaning its default), limits from `vasco_core::instance::limits`. One limit is not
/// expressible here: the encoded record must fit Workers KV metadata (1024 bytes), so a body
/// at every limit at once is refused with a 400 `too_large`.
fn register_body() -> Value {
    json!({
        "type": "object", "required": ["url"], "additionalProperties": false,
        "properties": {
            "url": { "type": "string", "minLength": 1, "maxLength": limits::URL_LEN,
                     "description": "host:port (host a name, IPv4 or [IPv6]) or an http(s) URL.",
                     "example": "10.0.0.1:3000" },
            "ttl": { "type": "number", "nullable": true,
                     "minimum": limits::TTL_MIN_S, "maximum": limits::TTL_MAX_S, "default": 10,
                     "description": "Lease in seconds (fractions allowed); beat every ttl/3." },
            "persistent": { "type": "boolean", "nullable": true,
                            "description": "true: no lease (give no ttl); held until deregistered, as Consul keeps a registration without checks." },
            "tags": { "type": "array", "nullable": true, "maxItems": limits::TAGS,
                      "items": { "type": "string", "minLength": 1, "maxLength": limits::TAG_LEN, "pattern": TAG,
                                 "description": "No comma and no whitespace at either end, so that `?tag=` can find it." } },
            "meta": { "type": "object", "nullable": true, "maxProperties": limits::META_ENTRIES,
                      "description": format!(
                          "Keys 1 to {} characters, values at most {}; no control characters.",
                          limits::META_KEY_LEN, limits::META_VALUE_LEN
                      ),
                      "additionalProperties": { "type": "string", "maxLength": limits::META_VALUE_LEN, "pattern": NO_CONTROL } },
            "weight": { "type": "integer", "nullable": true,
                        "minimum": limits::WEIGHT_MIN, "maximum": limits::WEIGHT_MAX, "default": 1 },
            "zone": label_schema(limits::ZONE_LEN)
                .as_object()
                .cloned()
                .map(|mut zone| {
                    zone.insert("nullable".into(), json!(true));
                    zone.insert("description".into(), json!("Failure domain; null or absent for none."));
                    Value::Object(zone)
                })
                .unwrap_or_default(),
            "status": status_property(),
            "reason": text_property("Why (needs status)."),
            "by": text_property("Who set the status or reported the check result."),
            "check": check_property(),
        }
    })
}

/// A stored instance, as `vasco_core::Instance` serializes.
fn instance_schema() -> Value {
    json!({
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
            "ttl_ms": { "type": "integer" },
            "status": { "type": "string", "enum": STATUSES, "description": "Health status: lookups list passing and warning by default; selection never picks critical or maintenance." },
            "reason": { "type": "string", "description": "Why: the maintenance reason or the note of the check result that set the status." },
            "by": { "type": "string", "description": "Who set the status." },
            "maintenance": { "type": "string", "description": "Present while in maintenance mode: its reason (possibly empty)." },
            "check": { "type": "object", "description": "The health check's state: its damped status, note, consecutive results and damping thresholds." }
        }
    })
}

/// The health statuses, as the core names them.
const STATUSES: [&str; 4] = ["passing", "warning", "critical", "maintenance"];

fn status_property() -> Value {
    // OpenAPI 3.0: a nullable enum lists null among its values.
    json!({ "type": "string", "nullable": true, "enum": ["passing", "warning", "critical", "maintenance", null],
            "description": "Set the status at once: maintenance takes the instance out of rotation; any other status ends maintenance." })
}

fn text_property(description: &str) -> Value {
    json!({ "type": "string", "nullable": true, "maxLength": REASON_LEN, "pattern": NO_CONTROL, "description": description })
}

/// A registration's `check`, as `vasco_core::wire::native::Check` reads it: a check result,
/// the status a new instance starts in, the check's id, name and TTL, and the damping of
/// results.
fn check_property() -> Value {
    let threshold = |description: &str| json!({ "type": "integer", "nullable": true, "minimum": 1, "maximum": MAX_DAMPING, "description": description });
    json!({
        "type": "object", "nullable": true, "additionalProperties": false,
        "description": "A health-check result (damped; never ends maintenance), and the check's configuration.",
        "properties": {
            "status": check_status_property("The result."),
            "note": text_property("The check's output."),
            "initial": check_status_property("The status a new instance starts in (a live one keeps its own)."),
            "id": text_property("The check's id."),
            "name": text_property("The check's name."),
            "ttl": { "type": "number", "nullable": true, "minimum": 1, "maximum": MAX_CHECK_TTL_S,
                     "description": "A TTL check, in seconds (fractions allowed): without a result for this long, the check turns critical." },
            "success_before_passing": threshold("Consecutive passing results before the status becomes passing (default 1)."),
            "failures_before_warning": threshold("Consecutive failing results before it becomes warning (default failures_before_critical)."),
            "failures_before_critical": threshold("Consecutive critical results before it becomes critical (default 1)."),
        }
    })
}

/// A check result: the `check` of a status update (`status` and `note` only).
fn check_result_property() -> Value {
    json!({
        "type": "object", "nullable": true, "additionalProperties": false,
        "description": "A health-check result (damped; never ends maintenance).",
        "properties": {
            "status": check_status_property("The result."),
            "note": text_property("The check's output."),
        }
    })
}

/// A check status: passing, warning or critical (maintenance is a status set, not a result).
fn check_status_property(description: &str) -> Value {
    json!({ "type": "string", "nullable": true, "enum": ["passing", "warning", "critical", null], "description": description })
}

/// `PUT .../status` bodies: a status set (`status`, `reason`, `by`), a check result
/// (`check`, `by`) or the end of maintenance (`maintenance`, `by`), as
/// `vasco_core::wire::native::StatusUpdate` reads them.
fn status_body() -> Value {
    json!({
        "type": "object", "additionalProperties": false,
        "description": "Either status (with reason), check, or maintenance: false; by may go with each.",
        "properties": {
            "status": status_property(),
            "reason": text_property("Why (needs status)."),
            "by": text_property("Who set it."),
            "check": check_result_property(),
            "maintenance": { "type": "boolean", "nullable": true, "enum": [false, null],
                             "description": "false ends maintenance mode (only by may go with it)." },
        },
        "example": { "status": "maintenance", "reason": "deploy" }
    })
}

/// `POST /v1/registration/{service}` bodies, as `vasco_core::wire::lyft::Registration::parse`
/// reads them: form fields are text (`tags` the JSON text of an object), a JSON body has the
/// same fields with their JSON types (`tags` an object or its text). Optional fields may be
/// `null` in JSON, meaning absent. Unknown fields are ignored, as the original ignored them.
fn lyft_registration(json_body: bool) -> Value {
    let nullable = |mut schema: Value| {
        if json_body {
            schema["nullable"] = json!(true);
        }
        schema
    };
    let tags = if json_body {
        json!({ "anyOf": [{ "type": "string" }, { "type": "object" }],
                "description": "An object with az, instance_id and region (strings), optional canary (boolean) and load_balancing_weight (1 to 100), other tags as strings; or its JSON text." })
    } else {
        json!({ "type": "string",
                "description": "JSON text of an object with az, instance_id and region (strings), optional canary (boolean) and load_balancing_weight (1 to 100), other tags as strings." })
    };
    let auto_ip = if json_body {
        json!({ "description": "Any truthy value: take the ip from CF-Connecting-IP, else the last X-Forwarded-For hop inside 192.168.0.0/16 (see the README)." })
    } else {
        json!({ "type": "string", "description": "Anything but empty, 0, false, no or off: take the ip from CF-Connecting-IP, else the last X-Forwarded-For hop inside 192.168.0.0/16 (see the README)." })
    };
    json!({
        "type": "object", "required": ["port", "revision", "tags"],
        "properties": {
            "ip": nullable(json!({ "type": "string", "pattern": IPV4, "description": "The host's dotted IPv4 address (required unless auto_ip)." })),
            "auto_ip": auto_ip,
            "port": { "type": "integer", "minimum": 1, "maximum": 65535 },
            "revision": { "type": "string", "minLength": 1, "maxLength": limits::META_VALUE_LEN },
            "tags": tags,
            "service_repo_name": nullable(json!({ "type": "string", "maxLength": limits::META_VALUE_LEN })),
        }
    })
}

/// `POST /v1/resolve` bodies, as `routes::resolve::parse_body` reads them.
fn resolve_body() -> Value {
    json!({
        "type": "object", "required": ["dependencies"], "additionalProperties": false,
        "properties": {
            "dependencies": { "type": "object", "maxProperties": MAX_DEPENDENCIES,
                              "description": "Service (or npm package) name to exact version or npm range.",
                              "additionalProperties": { "type": "string", "maxLength": RANGE_LEN },
                              "example": { "api": "^2.0.0", "auth": "1.0.0" } },
            "mocks": { "type": "object", "nullable": true, "additionalProperties": { "type": "string" },
                       "description": "Fixed urls that win over lookups." },
            "tags": { "type": "array", "nullable": true, "items": { "type": "string", "minLength": 1 },
                      "description": "Tags every resolved instance must carry." },
            "zone": { "type": "string", "nullable": true, "minLength": 1, "description": "Only instances in this zone." }
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
            .map(|def| (def.method.lower().to_string(), openapi_path(def.pattern)))
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

    /// Every documented answer promises the standard headers, which `into_wire` stamps on all.
    #[test]
    fn every_response_documents_the_standard_headers() {
        let doc = document();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                for (status, response) in op["responses"].as_object().unwrap() {
                    // A 101 switches to the WebSocket protocol: the object answers it, not the
                    // HTTP pipeline.
                    if status == "101" {
                        continue;
                    }
                    for header in [KV_OPS_HEADER, NOW_HEADER] {
                        assert!(
                            response["headers"].get(header).is_some(),
                            "{method} {path} {status}: {header}"
                        );
                    }
                }
            }
        }
        for header in ["KvOps", "Now"] {
            assert_eq!(doc["components"]["headers"][header]["required"], true);
        }
    }

    /// The schema's numbers are the core's limits, so the two cannot drift apart.
    #[test]
    fn body_limits_come_from_the_core() {
        let doc = document();
        let register = &doc["components"]["schemas"]["RegisterBody"]["properties"];
        assert_eq!(register["tags"]["maxItems"], limits::TAGS);
        assert_eq!(register["tags"]["items"]["maxLength"], limits::TAG_LEN);
        assert_eq!(register["zone"]["maxLength"], limits::ZONE_LEN);
        assert_eq!(register["zone"]["nullable"], true);
        assert_eq!(register["url"]["maxLength"], limits::URL_LEN);
        assert_eq!(register["weight"]["maximum"], limits::WEIGHT_MAX);
        assert_eq!(register["ttl"]["minimum"], limits::TTL_MIN_S);
        assert_eq!(register["meta"]["maxProperties"], limits::META_ENTRIES);
        let put = &doc["paths"]["/v1/services/{name}/{version}/instances/{id}"]["put"];
        let params = put["parameters"].as_array().unwrap();
        assert_eq!(params[0]["schema"]["maxLength"], MAX_NAME_LEN);
        assert_eq!(params[2]["schema"]["maxLength"], MAX_ID_LEN);
    }

    /// The body schemas list exactly the fields the core's wire types read, so the two cannot
    /// drift apart.
    #[test]
    fn body_schemas_list_the_wire_types_fields() {
        use serde_json::Number;
        use vasco_core::wire::native::{Check, Registration, StatusUpdate};
        use vasco_core::Status;
        let keys = |value: &Value| -> BTreeSet<String> {
            value.as_object().unwrap().keys().cloned().collect()
        };
        let text = || Some("x".to_string());
        let check = Check {
            status: Some(Status::Passing),
            note: text(),
            initial: Some(Status::Passing),
            id: text(),
            name: text(),
            ttl: Some(Number::from(1)),
            success_before_passing: Some(1),
            failures_before_warning: Some(1),
            failures_before_critical: Some(1),
        };
        let registration = serde_json::to_value(Registration {
            url: "h:1".into(),
            ttl: Some(Number::from(1)),
            persistent: Some(true),
            tags: Some(Vec::new()),
            meta: Some(Default::default()),
            weight: Some(Number::from(1)),
            zone: text(),
            status: Some(Status::Passing),
            reason: text(),
            by: text(),
            check: Some(check.clone()),
        })
        .unwrap();
        let status = serde_json::to_value(StatusUpdate {
            status: Some(Status::Passing),
            reason: text(),
            by: text(),
            check: Some(check),
            maintenance: Some(false),
        })
        .unwrap();
        let doc = document();
        let schemas = &doc["components"]["schemas"];
        let register = &schemas["RegisterBody"]["properties"];
        assert_eq!(keys(register), keys(&registration));
        assert_eq!(
            keys(&register["check"]["properties"]),
            keys(&registration["check"])
        );
        let update = &schemas["StatusBody"]["properties"];
        assert_eq!(keys(update), keys(&status));
        // A status update's check is a result only: its configuration is the registration's.
        assert_eq!(
            keys(&update["check"]["properties"]),
            BTreeSet::from(["note".to_string(), "status".to_string()])
        );
    }

    #[test]
    fn path_parameters_match_placeholders() {
        let doc = document();
        for def in ROUTES {
            let op = &doc["paths"][openapi_path(def.pattern).as_str()][def.method.lower()];
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
                .map(|s| s.trim_start_matches('*'))
                .collect();
            assert_eq!(declared, placeholders, "{}", def.pattern);
        }
    }
}
