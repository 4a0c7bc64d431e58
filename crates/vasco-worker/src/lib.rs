//! # vasco-worker
//!
//! The Vasco registry served by a Cloudflare Worker. HTTP in; the leases live in one Durable
//! Object per service ([`object`], bound to the runtime in `durable.rs`), which writes a
//! membership snapshot to Workers KV when membership changes; default reads are one KV `get` of
//! that snapshot ([`snapshot`]), fresh reads (`?consistent`, blocking `?index=&wait=`) and
//! writes go to the object ([`backend`]). A [`catalog`] object keeps the registry-wide list.
//! Handlers parse requests into `vasco-core` types and the core makes every decision (leases,
//! the change index, version matching, snapshot scheduling, resolution).
//!
//! The crate is plain Rust except for the wasm entry point at the bottom of this file and
//! `durable.rs`: the [`app`] pipeline runs over the [`kv::Kv`] and [`backend::Objects`] traits,
//! so `cargo test -p vasco-worker` exercises routing, auth, validation, the objects' logic and
//! the KV op counts natively (`local.rs`, native only: in-process objects on an injected clock). The `worker`
//! crate is a dependency only on `wasm32`, where `worker-build` builds the Worker (see
//! `scripts/build-worker.sh`).
//!
//! Routes ([`ROUTES`]):
//!
//! | method | path | what |
//! |---|---|---|
//! | GET | `/health` | `{"status":"ok"}` |
//! | GET | `/v1/openapi.json` | the OpenAPI 3 document of these routes |
//! | GET | `/v1/services` | catalog: names, versions, live counts |
//! | GET | `/v1/instances` | every live instance of every service |
//! | GET | `/v1/services/{name}` | live instances (`?version=&tag=&zone=`) |
//! | PUT | `/v1/services/{name}/{version}/instances/{id}` | register or heartbeat |
//! | DELETE | `/v1/services/{name}/{version}/instances/{id}` | deregister |
//! | POST | `/v1/resolve` | resolve every dependency in one call |
//! | GET (WebSocket) | `/v1/services/{name}/watch` | the service's change feed |
//! | GET (WebSocket) | `/v1/watch` | the registry-wide change feed |
//! | GET (WebSocket) | `/v1/services/{name}/{version}/instances/{id}/lease` | a lease held by the socket |
//!
//! and lyft/discovery's REST API (Envoy's v1 SDS) over the same registry ([`routes::lyft`],
//! mapped by `vasco_core::wire::lyft`):
//!
//! | method | path | what |
//! |---|---|---|
//! | GET | `/v1/registration/{service}` | the service's live hosts |
//! | POST | `/v1/registration/{service}` | register a host, or beat (form or JSON) |
//! | DELETE | `/v1/registration/{service}/{ip}` | delete a host |
//! | GET | `/v1/registration/repo/{repo}` | the live hosts of a repo, across services |
//! | POST | `/v1/loadbalancing/{service}[/{ip}]` | set `load_balancing_weight` |
//! | GET | `/healthcheck` | `OK` |

// The wasm-only entry point below is compiled by worker-build, not by the host's clippy run;
// refuse warnings there so the Worker build itself keeps it clean (cheaper in CI than a second,
// wasm32 clippy pass over the `worker` crate's dependency tree).
#![cfg_attr(target_arch = "wasm32", deny(warnings))]
// The OpenAPI document is one nested `json!` literal per component; deeper than the default.
#![recursion_limit = "256"]

pub mod agent;
pub mod app;
pub mod auth;
pub mod backend;
pub mod catalog;
// `#[durable_object]` generates undocumented public glue (the runtime's entry points).
#[cfg(target_arch = "wasm32")]
#[allow(missing_docs)]
pub mod durable;
pub mod error;
pub mod http;
pub mod kv;
#[cfg(not(target_arch = "wasm32"))]
pub mod local;
pub mod method;
pub mod object;
pub mod router;
pub mod routes;
pub mod row_map;
pub mod snapshot;
pub mod tokens;

use router::{Access, RouteDef, RouteId, RouteMethod};

/// The route table: every route the Worker serves. The router matches against it, the
/// OpenAPI document is generated from it, and tests check both agree.
pub const ROUTES: &[RouteDef] = &[
    RouteDef {
        method: RouteMethod::Get,
        pattern: "/health",
        id: RouteId::Health,
        access: Access::Open,
        summary: "Liveness of the Worker (does not touch KV).",
    },
    RouteDef {
        method: RouteMethod::Get,
        pattern: "/v1/openapi.json",
        id: RouteId::OpenApi,
        access: Access::Open,
        summary: "This API as an OpenAPI 3 document.",
    },
    RouteDef {
        method: RouteMethod::Get,
        pattern: "/v1/services",
        id: RouteId::Catalog,
        access: Access::Read,
        summary: "Every service with its versions and live instance counts.",
    },
    RouteDef {
        method: RouteMethod::Get,
        pattern: "/v1/instances",
        id: RouteId::Instances,
        access: Access::Read,
        summary: "Every live instance of every service (one request for a whole dashboard).",
    },
    RouteDef {
        method: RouteMethod::Get,
        pattern: "/v1/services/{name}",
        id: RouteId::Lookup,
        access: Access::Read,
        summary: "The live instances of a service, newest version first.",
    },
    RouteDef {
        method: RouteMethod::Put,
        pattern: "/v1/services/{name}/{version}/instances/{id}",
        id: RouteId::Register,
        access: Access::Write,
        summary: "Register an instance, or renew its lease (idempotent upsert; one KV write).",
    },
    RouteDef {
        method: RouteMethod::Delete,
        pattern: "/v1/services/{name}/{version}/instances/{id}",
        id: RouteId::Deregister,
        access: Access::Write,
        summary: "Deregister an instance.",
    },
    RouteDef {
        method: RouteMethod::Put,
        pattern: "/v1/services/{name}/{version}/instances/{id}/status",
        id: RouteId::SetStatus,
        access: Access::Write,
        summary: "Set an instance's health status (maintenance to drain it) or report a health-check result.",
    },
    RouteDef {
        method: RouteMethod::Post,
        pattern: "/v1/acl/tokens",
        id: RouteId::AclCreate,
        access: Access::Manage,
        summary: "Create a token with policies; the answer shows its secret, once.",
    },
    RouteDef {
        method: RouteMethod::Get,
        pattern: "/v1/acl/tokens",
        id: RouteId::AclList,
        access: Access::Manage,
        summary: "Every token: ids, descriptions, policies and times (never secrets).",
    },
    RouteDef {
        method: RouteMethod::Delete,
        pattern: "/v1/acl/tokens/{id}",
        id: RouteId::AclRevoke,
        access: Access::Manage,
        summary: "Revoke a token: refused from the next request on, everywhere.",
    },
    // Consul's HTTP API (routes::consul), on the same registry.
    RouteDef {
        method: RouteMethod::Put,
        pattern: "/v1/agent/service/register",
        id: RouteId::ConsulRegister,
        access: Access::Write,
        summary: "Consul: register a service instance (a TTL check is its lease; no check: held until deregistered).",
    },
    RouteDef {
        method: RouteMethod::Put,
        pattern: "/v1/agent/service/deregister/{*id}",
        id: RouteId::ConsulDeregister,
        access: Access::Write,
        summary: "Consul: deregister a service instance by its ID.",
    },
    RouteDef {
        method: RouteMethod::Put,
        pattern: "/v1/agent/service/maintenance/{*id}",
        id: RouteId::ConsulMaintenance,
        access: Access::Write,
        summary: "Consul: enter or leave maintenance mode (?enable=true|false&reason=).",
    },
    RouteDef {
        method: RouteMethod::Put,
        pattern: "/v1/agent/check/{verb}/{*check_id}",
        id: RouteId::ConsulCheck,
        access: Access::Write,
        summary: "Consul: a TTL check result: pass, warn, fail (?note=) or update ({Status, Output}).",
    },
    RouteDef {
        method: RouteMethod::Get,
        pattern: "/v1/health/service/{service}",
        id: RouteId::ConsulHealthService,
        access: Access::Read,
        summary: "Consul: a service's instances with node and checks (?passing, ?tag=, blocking ?index=&wait=).",
    },
    RouteDef {
        method: RouteMethod::Get,
        pattern: "/v1/health/checks/{service}",
        id: RouteId::ConsulHealthChecks,
        access: Access::Read,
        summary: "Consul: the checks of a service's instances.",
    },
    RouteDef {
        method: RouteMethod::Get,
        pattern: "/v1/catalog/service/{service}",
        id: RouteId::ConsulCatalogService,
        access: Access::Read,
        summary: "Consul: a service's instances, flat, whatever their health (?tag=, blocking ?index=&wait=).",
    },
    RouteDef {
        method: RouteMethod::Get,
        pattern: "/v1/catalog/services",
        id: RouteId::ConsulCatalogServices,
        access: Access::Read,
        summary: "Consul: every service with members and its tags (blocking ?index=&wait=).",
    },
    RouteDef {
        method: RouteMethod::Get,
        pattern: "/v1/catalog/datacenters",
        id: RouteId::ConsulDatacenters,
        access: Access::Read,
        summary: "Consul: the datacenters (one).",
    },
    RouteDef {
        method: RouteMethod::Get,
        pattern: "/v1/agent/self",
        id: RouteId::ConsulAgentSelf,
        access: Access::Read,
        summary: "Consul: the agent's configuration (datacenter and node name).",
    },
    RouteDef {
        method: RouteMethod::Get,
        pattern: "/v1/agent/services",
        id: RouteId::ConsulAgentServices,
        access: Access::Read,
        summary: "Consul: the services registered through this API, by ID.",
    },
    RouteDef {
        method: RouteMethod::Get,
        pattern: "/v1/agent/checks",
        id: RouteId::ConsulAgentChecks,
        access: Access::Read,
        summary: "Consul: the checks of the services registered through this API, by check ID.",
    },
    RouteDef {
        method: RouteMethod::Get,
        pattern: "/v1/status/leader",
        id: RouteId::ConsulLeader,
        access: Access::Read,
        summary: "Consul: the leader's address.",
    },
    RouteDef {
        method: RouteMethod::Post,
        pattern: "/v1/resolve",
        id: RouteId::Resolve,
        access: Access::Read,
        summary:
            "Resolve every dependency at once; names without live instances are listed as missing.",
    },
    RouteDef {
        method: RouteMethod::Get,
        pattern: "/v1/services/{name}/watch",
        id: RouteId::Watch,
        access: Access::Read,
        summary: "WebSocket: the service's change feed (a snapshot, then one message per change).",
    },
    RouteDef {
        method: RouteMethod::Get,
        pattern: "/v1/watch",
        id: RouteId::WatchAll,
        access: Access::Read,
        summary: "WebSocket: every service's changes (the catalog, then one message per change).",
    },
    RouteDef {
        method: RouteMethod::Get,
        pattern: "/v1/services/{name}/{version}/instances/{id}/lease",
        id: RouteId::Lease,
        access: Access::Write,
        summary: "WebSocket: hold an instance's lease on the socket; closing it deregisters.",
    },
    RouteDef {
        method: RouteMethod::Get,
        pattern: "/healthcheck",
        id: RouteId::LyftHealthcheck,
        access: Access::Open,
        summary: "lyft/discovery: `OK` (does not touch KV or objects).",
    },
    RouteDef {
        method: RouteMethod::Get,
        pattern: "/v1/registration/repo/{repo}",
        id: RouteId::LyftRepoHosts,
        access: Access::Read,
        summary: "lyft/discovery: the live hosts of every service registered with this service_repo_name.",
    },
    RouteDef {
        method: RouteMethod::Get,
        pattern: "/v1/registration/{service}",
        id: RouteId::LyftHosts,
        access: Access::Read,
        summary: "lyft/discovery (Envoy v1 SDS): the service's live hosts.",
    },
    RouteDef {
        method: RouteMethod::Post,
        pattern: "/v1/registration/{service}",
        id: RouteId::LyftRegister,
        access: Access::Write,
        summary: "lyft/discovery: register a host, or beat (a re-POST merges its tags).",
    },
    RouteDef {
        method: RouteMethod::Delete,
        pattern: "/v1/registration/{service}",
        id: RouteId::LyftDeregister,
        access: Access::Write,
        summary: "lyft/discovery: a deletion without the host's ip, refused as the original does.",
    },
    RouteDef {
        method: RouteMethod::Delete,
        pattern: "/v1/registration/{service}/{ip}",
        id: RouteId::LyftDeregister,
        access: Access::Write,
        summary: "lyft/discovery: delete a host.",
    },
    RouteDef {
        method: RouteMethod::Post,
        pattern: "/v1/loadbalancing/{service}",
        id: RouteId::LyftWeight,
        access: Access::Write,
        summary: "lyft/discovery: set the load_balancing_weight of every host of the service.",
    },
    RouteDef {
        method: RouteMethod::Post,
        pattern: "/v1/loadbalancing/{service}/{ip}",
        id: RouteId::LyftWeight,
        access: Access::Write,
        summary: "lyft/discovery: set the load_balancing_weight of one host.",
    },
];

#[cfg(test)]
mod tests;

/// The Workers entry point: converts the runtime's request, runs [`app::handle`] (or forwards a
/// WebSocket upgrade to its object), converts the answer back. Every decision stays in plain
/// Rust ([`app::admit`], [`app::upgrade_target`], [`http::BodyLimit`],
/// [`http::ApiResponse::into_wire`]); this module only moves bytes.
#[cfg(target_arch = "wasm32")]
mod edge {
    use std::cell::RefCell;
    use std::rc::Rc;

    use futures_util::StreamExt;
    use worker::{event, Context, Date, Env, Headers, Request, Response};

    use crate::app::{admit, handle, render_error, upgrade_target, Config};
    use crate::durable::{DoObjects, KV_BINDING};
    use crate::error::AppError;
    use crate::http::{ApiRequest, ApiResponse, BodyLimit, Method, WireResponse, DISCARD_BYTES};
    use crate::kv::workers::WorkersKv;
    use crate::snapshot::SnapshotCache;

    thread_local! {
        /// Snapshots cached by this isolate; lives as long as the isolate does.
        static CACHE: Rc<RefCell<SnapshotCache>> = Rc::new(RefCell::new(SnapshotCache::new()));
    }

    #[event(fetch)]
    async fn fetch(mut req: Request, env: Env, _ctx: Context) -> worker::Result<Response> {
        let now = Date::now().as_millis();
        // The method as sent: the `worker` crate's `Method` maps names it does not know to GET.
        let method = Method::parse(&req.inner().method());
        let config = Config::from_env(|name| env.var(name).ok().map(|v| v.to_string()));
        let objects = DoObjects(&env);
        let upgrade = req
            .headers()
            .get("upgrade")
            .ok()
            .flatten()
            .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
        // Benchmarks only (bench/worker.mjs sets VASCO_BENCH=1): one plain KV put, the cost of
        // a heartbeat in the KV-only design, to compare renewals into an object against in one run.
        if req.path() == "/_bench/kv-put"
            && env.var("VASCO_BENCH").is_ok_and(|v| v.to_string() == "1")
        {
            use crate::kv::Kv;
            let kv = WorkersKv::from_env(&env, KV_BINDING);
            let mut answer = match kv.put("bench/kv-put", "x", 60).await {
                Ok(()) => ApiResponse::no_content(),
                Err(e) => ApiResponse::from_error(&e.into()),
            };
            answer.kv_ops = 1;
            return write_response(answer.into_wire(&method, now));
        }
        if config.rate_limit {
            if let Some(retry_after_s) = rate_limited(&env, &req).await {
                let err = AppError::RateLimited { retry_after_s };
                let answer = render_error(&method, &req.path(), &err);
                return write_response(answer.into_wire(&method, now));
            }
        }
        if upgrade {
            let answer = match head(&req, method.clone()) {
                Ok(api_req) => match upgrade_target(&api_req, &config, &objects, now).await {
                    Ok(target) => match objects.forward_upgrade(&target, req).await {
                        Ok(response) => return Ok(response),
                        Err(err) => ApiResponse::from_error(&err),
                    },
                    Err(err) => ApiResponse::from_error(&err),
                },
                Err(err) => ApiResponse::from_error(&err),
            };
            return write_response(answer.into_wire(&method, now));
        }
        let answer = match read_request(&mut req, method.clone(), &config, &objects, now).await {
            Ok(api_req) => {
                let kv = WorkersKv::from_env(&env, KV_BINDING);
                let cache = CACHE.with(Rc::clone);
                handle(&api_req, &config, &kv, &cache, &objects, now).await
            }
            Err(err) => render_error(&method, &req.path(), &err),
        };
        write_response(answer.into_wire(&method, now))
    }

    /// The binding of Cloudflare's rate limiting (`[[ratelimits]]` in wrangler.toml).
    const RATE_LIMITER_BINDING: &str = "RATE_LIMITER";
    /// The binding's period (s): what `Retry-After` says.
    const RATE_LIMIT_PERIOD_S: u64 = 60;

    /// `Some(retry_after_s)` when the client (by `CF-Connecting-IP`, which Cloudflare sets and
    /// clients cannot forge) is over the binding's limit. Without the binding, or when it
    /// fails, nothing is limited: a broken limiter must not take the registry down.
    async fn rate_limited(env: &Env, req: &Request) -> Option<u64> {
        let limiter = env.rate_limiter(RATE_LIMITER_BINDING).ok()?;
        let client = req
            .headers()
            .get("cf-connecting-ip")
            .ok()
            .flatten()
            .unwrap_or_else(|| "local".into());
        let outcome = limiter.limit(format!("ip:{client}")).await.ok()?;
        (!outcome.success).then_some(RATE_LIMIT_PERIOD_S)
    }

    /// Method, path, query and every header (no body).
    fn head(req: &Request, method: Method) -> Result<ApiRequest, AppError> {
        let url = req
            .url()
            .map_err(|e| AppError::invalid("url", e.to_string()))?;
        let mut api = ApiRequest::new(method, url.path());
        api.query = url.query().unwrap_or("").to_string();
        api.headers = req
            .headers()
            .entries()
            .map(|(name, value)| (name.to_ascii_lowercase(), value))
            .collect();
        Ok(api)
    }

    /// Reads what the handlers need. Route, token and announced `Content-Length` are checked
    /// from the head alone ([`admit`]) before any body byte is read; the body is then read as a
    /// stream with a running cap ([`BodyLimit`]), stopping at the first chunk past it.
    async fn read_request(
        req: &mut Request,
        method: Method,
        config: &Config,
        objects: &DoObjects<'_>,
        now: u64,
    ) -> Result<ApiRequest, AppError> {
        let mut api = head(req, method)?;
        let content_length = api
            .header("content-length")
            .and_then(|v| v.trim().parse::<u64>().ok());
        if req.inner().body().is_none() {
            // No body to protect: the pipeline authorizes it.
            return Ok(api);
        }
        let mut stream = req
            .stream()
            .map_err(|e| AppError::invalid("body", format!("could not be read: {e}")))?;
        match admit(&api, config, objects, now, content_length).await {
            Ok(principal) => api.principal = Some(principal),
            Err(err) => {
                discard(&mut stream, 0).await;
                return Err(err);
            }
        }
        let mut body = BodyLimit::new();
        while let Some(chunk) = stream.next().await {
            let chunk =
                chunk.map_err(|e| AppError::invalid("body", format!("could not be read: {e}")))?;
            if let Err(err) = body.push(&chunk) {
                discard(&mut stream, body.seen()).await;
                return Err(err);
            }
        }
        api.body = body.into_bytes();
        Ok(api)
    }

    /// Reads and drops the rest of a refused body while the whole body stays within
    /// [`DISCARD_BYTES`] (`seen` bytes were already read), so a modest upload ends cleanly
    /// before the answer; past that, returning drops the stream, which cancels the upload.
    async fn discard(stream: &mut worker::ByteStream, mut seen: u64) {
        while seen <= DISCARD_BYTES {
            match stream.next().await {
                Some(Ok(chunk)) => seen = seen.saturating_add(chunk.len() as u64),
                _ => return,
            }
        }
    }

    fn write_response(answer: WireResponse) -> worker::Result<Response> {
        let headers = Headers::new();
        for (name, value) in &answer.headers {
            headers.set(name, value)?;
        }
        let response = match answer.body {
            Some(body) => Response::from_bytes(body)?,
            None => Response::empty()?,
        };
        Ok(response.with_status(answer.status).with_headers(headers))
    }
}
