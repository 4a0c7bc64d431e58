//! # vasco-worker
//!
//! The Vasco registry served by a Cloudflare Worker on Workers KV. HTTP in, KV out: handlers
//! parse requests into `vasco-core` types, the core makes every decision (leases, liveness,
//! version matching, catalog, resolution, the KV record format), and the [`store`] does the KV
//! I/O, counting operations for the `x-vasco-kv-ops` header.
//!
//! The crate is plain Rust except for the wasm entry point at the bottom of this file: the
//! [`app`] pipeline runs over the [`store::Kv`] trait, so `cargo test -p vasco-worker` exercises
//! routing, auth, validation, error mapping and the KV op counts natively against an in-memory
//! KV. The `worker` crate is a dependency only on `wasm32`, where `worker-build` builds the
//! Worker (see `scripts/build-worker.sh`).
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

// The wasm-only entry point below is compiled by worker-build, not by the host's clippy run;
// refuse warnings there so the Worker build itself keeps it clean (cheaper in CI than a second,
// wasm32 clippy pass over the `worker` crate's dependency tree).
#![cfg_attr(target_arch = "wasm32", deny(warnings))]

pub mod app;
pub mod auth;
pub mod error;
pub mod http;
pub mod router;
pub mod routes;
pub mod store;

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
        method: RouteMethod::Post,
        pattern: "/v1/resolve",
        id: RouteId::Resolve,
        access: Access::Read,
        summary:
            "Resolve every dependency at once; names without live instances are listed as missing.",
    },
];

#[cfg(test)]
mod tests;

/// The Workers entry point: converts the runtime's request, runs [`app::handle`], converts the
/// answer back.
#[cfg(target_arch = "wasm32")]
mod edge {
    use std::cell::RefCell;
    use std::rc::Rc;

    use worker::{event, Context, Date, Env, Headers, Request, Response};

    use crate::app::{handle, Config};
    use crate::http::{cache_control_bypasses, check_body_size, ApiRequest, ApiResponse, Method};
    use crate::store::{workers::WorkersKv, ListCache};

    /// The KV binding's name in wrangler.toml.
    const BINDING: &str = "REGISTRY";

    thread_local! {
        /// Listings cached by this isolate; lives as long as the isolate does.
        static CACHE: Rc<RefCell<ListCache>> = Rc::new(RefCell::new(ListCache::new()));
    }

    #[event(fetch)]
    async fn fetch(mut req: Request, env: Env, _ctx: Context) -> worker::Result<Response> {
        let now = Date::now().as_millis();
        let answer = match read_request(&mut req).await {
            Ok(api_req) => {
                let config = Config::from_env(|name| env.var(name).ok().map(|v| v.to_string()));
                let kv = WorkersKv(env.kv(BINDING).map_err(|e| {
                    format!(
                        "the KV namespace binding `{BINDING}` is missing ({e}); see wrangler.toml"
                    )
                }));
                let cache = CACHE.with(Rc::clone);
                handle(&api_req, &config, &kv, &cache, now).await
            }
            Err(err) => ApiResponse::from_error(&err),
        };
        write_response(answer)
    }

    /// Reads what the handlers need; refuses a body over the limit before reading it when
    /// `Content-Length` announces it, and after reading otherwise.
    async fn read_request(req: &mut Request) -> Result<ApiRequest, crate::error::AppError> {
        let url = req
            .url()
            .map_err(|e| crate::error::AppError::invalid("url", e.to_string()))?;
        let header = |name: &str| req.headers().get(name).ok().flatten();
        if let Some(length) = header("content-length").and_then(|v| v.trim().parse::<u64>().ok()) {
            check_body_size(length)?;
        }
        let mut api = ApiRequest::new(Method::parse(req.method().as_ref()), url.path());
        api.query = url.query().unwrap_or("").to_string();
        api.authorization = header("authorization");
        api.no_cache = header("cache-control").is_some_and(|v| cache_control_bypasses(&v));
        let body = req.bytes().await.map_err(|e| {
            crate::error::AppError::invalid("body", format!("could not be read: {e}"))
        })?;
        check_body_size(body.len() as u64)?;
        api.body = body;
        Ok(api)
    }

    fn write_response(answer: ApiResponse) -> worker::Result<Response> {
        let headers = Headers::new();
        for (name, value) in answer.all_headers() {
            headers.set(name, &value)?;
        }
        let response = match answer.body {
            Some(body) => Response::from_bytes(body.into_bytes())?,
            None => Response::empty()?,
        };
        Ok(response.with_status(answer.status).with_headers(headers))
    }
}
