//! The request pipeline: route, check the token, run the handler, turn any error into its JSON
//! answer, and record the KV operation count. Pure Rust over [`Kv`] and [`Objects`], so the
//! whole pipeline runs in native tests (against `local::LocalObjects`, native only); the wasm entry
//! point only converts to and from the `worker` crate's types, asks [`admit`] before it reads a
//! body, forwards WebSocket upgrades ([`upgrade_target`]) to the objects, and writes every
//! answer through [`ApiResponse::into_wire`] (which stamps the standard headers).

use core::cell::RefCell;

use vasco_core::Millis;

use crate::auth::Tokens;
use crate::error::AppError;
use vasco_core::wire::lyft;
use vasco_core::{InstanceKey, ServiceName};

use crate::auth::{Guard, Principal};
use crate::backend::{Backend, Objects};
use crate::http::{check_body_size, ApiRequest, ApiResponse, Method};
use crate::kv::{Kv, OpCounter};
use crate::router::{path_dialect, route, Access, Dialect, Matched, RouteId};
use crate::routes::{acl, consul, health, lyft as lyft_routes, openapi, resolve, services};
use crate::snapshot::{SnapshotCache, Snapshots};
use crate::ROUTES;
use vasco_core::acl::Action;

/// The variable holding the isolate cache lifetime in milliseconds (`0` or unset: no cache).
pub const CACHE_VAR: &str = "VASCO_CACHE_MS";
/// The secret holding the write token.
pub const TOKEN_VAR: &str = "VASCO_TOKEN";
/// The secret holding the optional read token.
pub const READ_TOKEN_VAR: &str = "VASCO_READ_TOKEN";
/// The variable that opens reads to anyone (`true`); unset, reads need a token.
pub const PUBLIC_READS_VAR: &str = "VASCO_PUBLIC_READS";
/// The variable that turns the per-client rate limit off (`off`); on otherwise.
pub const RATE_LIMIT_VAR: &str = "VASCO_RATE_LIMIT";
/// The longest cache lifetime accepted (a minute, KV's own propagation bound).
pub const MAX_CACHE_MS: u64 = 60_000;
/// The variable holding lyft/discovery's host TTL in seconds (default 600, the original's).
pub const LYFT_HOST_TTL_VAR: &str = "VASCO_LYFT_HOST_TTL_S";
/// The variable holding the `env` lyft/discovery's answers carry (default `development`).
pub const LYFT_ENV_VAR: &str = "VASCO_LYFT_ENV";

/// The Worker's configuration, read from its environment on each request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Config {
    /// Write and read tokens.
    pub tokens: Tokens,
    /// How long a listing stays in the isolate cache, in ms (0 = off).
    pub cache_ms: u64,
    /// lyft/discovery's host TTL and `env`.
    pub lyft: lyft::Settings,
    /// Whether the edge asks the rate-limiting binding (`RATE_LIMITER`) before each request.
    pub rate_limit: bool,
}

impl Config {
    /// Reads [`TOKEN_VAR`], [`READ_TOKEN_VAR`], [`CACHE_VAR`], [`LYFT_HOST_TTL_VAR`] and
    /// [`LYFT_ENV_VAR`] through `lookup`. A cache value that is not a number of milliseconds
    /// turns the cache off; values over [`MAX_CACHE_MS`] are capped. The lyft values are read
    /// by [`lyft::Settings::from_vars`].
    pub fn from_env(lookup: impl Fn(&str) -> Option<String>) -> Self {
        let cache_ms = lookup(CACHE_VAR)
            .and_then(|v| v.trim().parse::<u64>().ok())
            .unwrap_or(0)
            .min(MAX_CACHE_MS);
        let public_reads =
            lookup(PUBLIC_READS_VAR).is_some_and(|v| matches!(v.trim(), "true" | "1" | "yes"));
        let rate_limit =
            !lookup(RATE_LIMIT_VAR).is_some_and(|v| matches!(v.trim(), "off" | "false" | "0"));
        Self {
            tokens: Tokens::new(lookup(TOKEN_VAR), lookup(READ_TOKEN_VAR))
                .with_public_reads(public_reads),
            cache_ms,
            rate_limit,
            lyft: lyft::Settings::from_vars(
                lookup(LYFT_HOST_TTL_VAR).as_deref(),
                lookup(LYFT_ENV_VAR).as_deref(),
            ),
        }
    }
}

/// Answers one request at `now`, with `kv` holding the snapshots, `cache` the isolate's
/// snapshot cache and `objects` the Durable Objects. Never fails: every error becomes its
/// status and JSON body.
pub async fn handle<K: Kv, O: Objects>(
    req: &ApiRequest,
    config: &Config,
    kv: &K,
    cache: &RefCell<SnapshotCache>,
    objects: &O,
    now: Millis,
) -> ApiResponse {
    let ops = OpCounter::default();
    let backend = Backend::new(
        Snapshots::new(kv, cache, config.cache_ms, !req.no_cache(), now, &ops),
        objects,
        now,
    );
    let mut response = match dispatch(req, config, &backend).await {
        Ok(response) => response,
        Err(err) => render_error(&req.method, &req.path, &err),
    };
    response.kv_ops = ops.get();
    // The registry's clock is stamped with the other standard headers by
    // `ApiResponse::into_wire`; a held blocking query answers later than it started, and says so.
    response.answered_at = Some(backend.clock.get()).filter(|t| *t > now);
    response
}

/// Routes a request, finds out who sent it and admits it to the route's kind (read, write,
/// manage); the services it touches are checked next ([`check_route_scope`], or by the
/// handler when they are in the body).
pub async fn authorize<'c, O: Objects>(
    req: &ApiRequest,
    config: &'c Config,
    objects: &O,
    now: Millis,
) -> Result<(Matched, Guard<'c>), AppError> {
    let matched = route(ROUTES, &req.method, &req.path)?;
    // Without the bootstrap token, nothing can write (or have issued a token that writes).
    if matches!(matched.def.access, Access::Write | Access::Manage) && config.tokens.write.is_none()
    {
        return Err(AppError::NotConfigured);
    }
    let principal = match &req.principal {
        Some(principal) => principal.clone(),
        // Open routes look at no token (a stale one must not break a health check).
        None if matched.def.access == Access::Open => Principal::Anonymous,
        None => {
            config
                .tokens
                .authenticate(
                    req.authorization(matched.def.id.query_token()).as_deref(),
                    objects,
                    now,
                )
                .await?
        }
    };
    config.tokens.admit(matched.def.access, &principal)?;
    let guard = Guard {
        tokens: &config.tokens,
        principal,
    };
    check_route_scope(&guard, &matched)?;
    Ok((matched, guard))
}

/// The scope check of the routes whose services are known from the path: `{name}` or
/// `{service}` (read or write on it, as the route's access says), and the registry-wide reads
/// (read on `*`). A name that is not a valid service is left to the handler (a 400, or an
/// empty answer in Consul's dialect).
pub fn check_route_scope(guard: &Guard<'_>, matched: &Matched) -> Result<(), AppError> {
    let id = matched.def.id;
    if id.registry_wide() {
        return guard.require(Action::ReadAll);
    }
    let raw = match (matched.params.get("name"), matched.params.get("service")) {
        ("", "") => return Ok(()),
        ("", service) => service,
        (name, _) => name,
    };
    let service = match id.dialect() {
        Dialect::Consul => vasco_core::wire::consul::service_name(raw),
        _ => ServiceName::parse(raw),
    };
    let Ok(service) = service else {
        return Ok(());
    };
    match matched.def.access {
        Access::Read => guard.read(&service),
        Access::Write => guard.write(&service),
        Access::Open | Access::Manage => Ok(()),
    }
}

/// Where a WebSocket upgrade goes, once routed and authorized.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpgradeTarget {
    /// The change feed of one service (its object).
    ServiceFeed(ServiceName),
    /// The registry-wide change feed (the catalog object).
    CatalogFeed,
    /// A WebSocket lease of one instance (its service's object).
    Lease(InstanceKey),
}

/// Routes and authorizes a WebSocket upgrade request: read on the watched service (on `*`
/// for the registry-wide feed), write on a lease's service. Errors: the route's (404, 405,
/// 401, 403, 400 for a bad name), or 400 when the route takes no WebSocket.
pub async fn upgrade_target<O: Objects>(
    req: &ApiRequest,
    config: &Config,
    objects: &O,
    now: Millis,
) -> Result<UpgradeTarget, AppError> {
    let (matched, _guard) = authorize(req, config, objects, now).await?;
    let params = &matched.params;
    match matched.def.id {
        RouteId::Watch => Ok(UpgradeTarget::ServiceFeed(ServiceName::parse(
            params.get("name"),
        )?)),
        RouteId::WatchAll => Ok(UpgradeTarget::CatalogFeed),
        RouteId::Lease => Ok(UpgradeTarget::Lease(services::instance_key(params)?)),
        _ => Err(AppError::invalid(
            "upgrade",
            "this route does not take a WebSocket; see GET /v1/openapi.json",
        )),
    }
}

/// What may be decided from the request line and headers alone, before any body byte is read:
/// the route exists for this method, the token is right for it, and the announced
/// `Content-Length` (if any) is within [`crate::http::MAX_BODY_BYTES`]. `head` is the request
/// without its body. The edge answers the error at once, so a caller without a token or with
/// an oversized body never gets a body read (and never costs the Worker its memory).
pub async fn admit<O: Objects>(
    head: &ApiRequest,
    config: &Config,
    objects: &O,
    now: Millis,
    content_length: Option<u64>,
) -> Result<Principal, AppError> {
    let (_, guard) = authorize(head, config, objects, now).await?;
    if let Some(length) = content_length {
        check_body_size(length)?;
    }
    Ok(guard.principal)
}

/// The answer to `err` for a request to `path`: in the dialect of the route it reached
/// (Consul's clients get plain text and 403 for a bad token), else Vasco's JSON error.
pub fn render_error(method: &Method, path: &str, err: &AppError) -> ApiResponse {
    let dialect = match route(ROUTES, method, path) {
        Ok(matched) => Some(matched.def.id.dialect()),
        Err(_) => path_dialect(ROUTES, path),
    };
    match dialect {
        Some(Dialect::Consul) => consul::error(err),
        _ => ApiResponse::from_error(err),
    }
}

async fn dispatch<K: Kv, O: Objects>(
    req: &ApiRequest,
    config: &Config,
    backend: &Backend<'_, K, O>,
) -> Result<ApiResponse, AppError> {
    let (matched, guard) = authorize(req, config, backend.objects, backend.now).await?;
    check_body_size(req.body.len() as u64)?;
    let params = &matched.params;
    match matched.def.id {
        RouteId::Health => health::get(),
        RouteId::OpenApi => openapi::get(),
        RouteId::Catalog => services::catalog(req, backend).await,
        RouteId::Instances => services::all_instances(req, backend).await,
        RouteId::Lookup => services::lookup(req, params, backend).await,
        RouteId::Register => services::register(req, params, backend).await,
        RouteId::Deregister => services::deregister(params, backend).await,
        RouteId::SetStatus => services::set_status(req, params, backend).await,
        RouteId::Resolve => resolve::post(req, backend, &guard).await,
        // WebSocket routes: a bad name is still a 400; otherwise the caller forgot the upgrade.
        RouteId::Watch => {
            ServiceName::parse(params.get("name"))?;
            Err(AppError::UpgradeRequired)
        }
        RouteId::Lease => {
            services::instance_key(params)?;
            Err(AppError::UpgradeRequired)
        }
        RouteId::WatchAll => Err(AppError::UpgradeRequired),
        RouteId::ConsulRegister => consul::register(req, backend, &guard).await,
        RouteId::ConsulDeregister => consul::deregister(params, backend, &guard).await,
        RouteId::ConsulMaintenance => consul::maintenance(req, params, backend, &guard).await,
        RouteId::ConsulCheck => consul::check(req, params, backend, &guard).await,
        RouteId::AclCreate => acl::create(req, backend).await,
        RouteId::AclList => acl::list(backend).await,
        RouteId::AclRevoke => acl::revoke(params, backend).await,
        RouteId::ConsulHealthService => consul::health_service(req, params, backend).await,
        RouteId::ConsulHealthChecks => consul::health_checks(req, params, backend).await,
        RouteId::ConsulCatalogService => consul::catalog_service(req, params, backend).await,
        RouteId::ConsulCatalogServices => consul::catalog_services(req, backend).await,
        RouteId::ConsulDatacenters => consul::datacenters(),
        RouteId::ConsulAgentSelf => consul::agent_self(),
        RouteId::ConsulAgentServices => consul::agent_services(backend).await,
        RouteId::ConsulAgentChecks => consul::agent_checks(backend).await,
        RouteId::ConsulLeader => consul::leader(),
        RouteId::LyftHealthcheck => Ok(ApiResponse::text(200, "OK")),
        RouteId::LyftHosts => lyft_routes::hosts(params, &config.lyft, backend).await,
        RouteId::LyftRepoHosts => lyft_routes::repo_hosts(params, &config.lyft, backend).await,
        RouteId::LyftRegister => lyft_routes::register(req, params, &config.lyft, backend).await,
        RouteId::LyftDeregister => lyft_routes::deregister(params, backend).await,
        RouteId::LyftWeight => lyft_routes::weight(req, params, backend).await,
    }
}
