//! Matching a method and path against the route table ([`crate::ROUTES`]).
//!
//! Patterns are `/`-separated segments; `{name}` captures one segment (percent-decoded, never
//! empty). `HEAD` is answered by every `GET` route (the edge drops the body). A path that matches
//! some pattern but not with this method (any other method, known or not) is a 405 listing the
//! methods it does accept; a path that matches nothing is a 404. One trailing slash is ignored.
//! Where several patterns fit a path, the most specific own it (a literal segment beats a
//! placeholder at the first segment where they differ), as OpenAPI matches paths.

use crate::error::AppError;
use crate::http::{percent_decode, Method};

pub use crate::auth::Access;

/// What a route does; the dispatcher in [`crate::app`] maps each to its handler.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteId {
    /// `GET /health`
    Health,
    /// `GET /v1/openapi.json`
    OpenApi,
    /// `GET /v1/services`
    Catalog,
    /// `GET /v1/instances`
    Instances,
    /// `GET /v1/services/{name}`
    Lookup,
    /// `PUT /v1/services/{name}/{version}/instances/{id}`
    Register,
    /// `DELETE /v1/services/{name}/{version}/instances/{id}`
    Deregister,
    /// `PUT /v1/services/{name}/{version}/instances/{id}/status`
    SetStatus,
    /// Consul: `PUT /v1/agent/service/register`
    ConsulRegister,
    /// Consul: `PUT /v1/agent/service/deregister/{*id}`
    ConsulDeregister,
    /// Consul: `PUT /v1/agent/service/maintenance/{*id}`
    ConsulMaintenance,
    /// Consul: `PUT /v1/agent/check/{verb}/{*check_id}`
    ConsulCheck,
    /// Consul: `GET /v1/health/service/{service}`
    ConsulHealthService,
    /// Consul: `GET /v1/health/checks/{service}`
    ConsulHealthChecks,
    /// Consul: `GET /v1/catalog/service/{service}`
    ConsulCatalogService,
    /// Consul: `GET /v1/catalog/services`
    ConsulCatalogServices,
    /// Consul: `GET /v1/catalog/datacenters`
    ConsulDatacenters,
    /// Consul: `GET /v1/agent/self`
    ConsulAgentSelf,
    /// Consul: `GET /v1/agent/services`
    ConsulAgentServices,
    /// Consul: `GET /v1/agent/checks`
    ConsulAgentChecks,
    /// Consul: `GET /v1/status/leader`
    ConsulLeader,
    /// `POST /v1/acl/tokens`
    AclCreate,
    /// `GET /v1/acl/tokens`
    AclList,
    /// `DELETE /v1/acl/tokens/{id}`
    AclRevoke,
    /// `POST /v1/resolve`
    Resolve,
    /// `GET /v1/services/{name}/watch` (WebSocket): the service's change feed
    Watch,
    /// `GET /v1/watch` (WebSocket): the registry-wide change feed
    WatchAll,
    /// `GET /v1/services/{name}/{version}/instances/{id}/lease` (WebSocket): a lease held by
    /// the socket
    Lease,
    /// `GET /v1/registration/{service}` (lyft/discovery): the service's live hosts
    LyftHosts,
    /// `GET /v1/registration/repo/{repo}` (lyft/discovery): the live hosts of a repo
    LyftRepoHosts,
    /// `POST /v1/registration/{service}` (lyft/discovery): register a host, or beat
    LyftRegister,
    /// `DELETE /v1/registration/{service}/{ip}` (lyft/discovery): delete a host (without the
    /// ip, the original's 400)
    LyftDeregister,
    /// `POST /v1/loadbalancing/{service}[/{ip}]` (lyft/discovery): set the weight of one host
    /// or of every host of the service
    LyftWeight,
    /// `GET /healthcheck` (lyft/discovery): `OK`
    LyftHealthcheck,
}

impl RouteId {}

impl RouteId {
    /// Whether the route reads every service (the catalog, all instances, the registry-wide
    /// feed, Consul's service list and agent listings, a lyft repository): read on `*`.
    pub fn registry_wide(self) -> bool {
        matches!(
            self,
            RouteId::Catalog
                | RouteId::Instances
                | RouteId::WatchAll
                | RouteId::ConsulCatalogServices
                | RouteId::ConsulAgentServices
                | RouteId::ConsulAgentChecks
                | RouteId::LyftRepoHosts
        )
    }

    /// Whether the route takes its token from a `token` query parameter too: WebSocket
    /// routes (browsers cannot set headers on a WebSocket) and the foreign dialects, whose
    /// tools may not either.
    pub fn query_token(self) -> bool {
        matches!(self, RouteId::Watch | RouteId::WatchAll | RouteId::Lease)
            || self.dialect() != Dialect::Native
    }

    /// Which API dialect the route belongs to.
    pub fn dialect(self) -> Dialect {
        match self {
            RouteId::Health
            | RouteId::OpenApi
            | RouteId::Catalog
            | RouteId::Instances
            | RouteId::Lookup
            | RouteId::Register
            | RouteId::Deregister
            | RouteId::SetStatus
            | RouteId::AclCreate
            | RouteId::AclList
            | RouteId::AclRevoke
            | RouteId::Resolve
            | RouteId::Watch
            | RouteId::WatchAll
            | RouteId::Lease => Dialect::Native,
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
            | RouteId::ConsulLeader => Dialect::Consul,
            RouteId::LyftHealthcheck
            | RouteId::LyftHosts
            | RouteId::LyftRepoHosts
            | RouteId::LyftRegister
            | RouteId::LyftDeregister
            | RouteId::LyftWeight => Dialect::Lyft,
        }
    }
}

/// The API dialects one registry speaks: each answers errors the way its clients expect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// Vasco's own: JSON errors `{"error": {"code", "message"}}`, 401 for a bad token.
    Native,
    /// Consul's: plain-text errors, 403 for a bad token.
    Consul,
    /// lyft/discovery's: its own `{}` and `{"error": ...}` bodies.
    Lyft,
}

/// One row of the route table.
#[derive(Debug, Clone, Copy)]
pub struct RouteDef {
    /// The method the route answers.
    pub method: RouteMethod,
    /// The path pattern, e.g. `/v1/services/{name}`.
    pub pattern: &'static str,
    /// What it does.
    pub id: RouteId,
    /// Who may call it.
    pub access: Access,
    /// One line for the OpenAPI document.
    pub summary: &'static str,
}

/// The methods routes are defined with (a `Copy` subset of [`Method`], usable in a `const`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteMethod {
    /// GET
    Get,
    /// POST
    Post,
    /// PUT
    Put,
    /// DELETE
    Delete,
}

impl RouteMethod {
    /// As a [`Method`].
    pub fn to_method(self) -> Method {
        match self {
            Self::Get => Method::Get,
            Self::Post => Method::Post,
            Self::Put => Method::Put,
            Self::Delete => Method::Delete,
        }
    }

    /// Lower-case name, as OpenAPI writes operations.
    pub fn lower(self) -> &'static str {
        match self {
            Self::Get => "get",
            Self::Post => "post",
            Self::Put => "put",
            Self::Delete => "delete",
        }
    }
}

/// The decoded `{placeholder}` values of a matched path.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Params(Vec<(&'static str, String)>);

impl Params {
    /// The value captured for `name` (empty if the pattern has no such placeholder).
    pub fn get(&self, name: &str) -> &str {
        self.0
            .iter()
            .find(|(key, _)| *key == name)
            .map_or("", |(_, value)| value.as_str())
    }
}

/// A matched route.
#[derive(Debug, Clone)]
pub struct Matched {
    /// The table row.
    pub def: &'static RouteDef,
    /// Its captured path segments.
    pub params: Params,
}

/// The methods a route defined with `method` answers: `GET` routes answer `HEAD` too.
pub fn answered_methods(method: RouteMethod) -> Vec<Method> {
    match method {
        RouteMethod::Get => vec![Method::Get, Method::Head],
        other => vec![other.to_method()],
    }
}

/// Finds the route for `method` and `path` in `table`.
pub fn route(table: &'static [RouteDef], method: &Method, path: &str) -> Result<Matched, AppError> {
    let path = match path.strip_suffix('/') {
        Some(stripped) if !stripped.is_empty() => stripped,
        _ => path,
    };
    let mut matched = Vec::new();
    for def in table {
        if let Some(params) = match_pattern(def.pattern, path)? {
            matched.push((def, params));
        }
    }
    // The most specific patterns own the path, as in OpenAPI: at the first segment where two
    // differ, a literal beats a placeholder (`/v1/registration/repo/{repo}` owns
    // `/v1/registration/repo/x`, so a DELETE there is a 405, not `/v1/registration/{service}/{ip}`).
    let specificity =
        |pattern: &str| -> Vec<bool> { pattern.split('/').map(|s| !s.starts_with('{')).collect() };
    let best = matched
        .iter()
        .map(|(def, _)| specificity(def.pattern))
        .max();
    matched.retain(|(def, _)| Some(specificity(def.pattern)) == best);
    let mut allow = Vec::new();
    for (def, params) in matched {
        let answered = answered_methods(def.method);
        if answered.contains(method) {
            return Ok(Matched { def, params });
        }
        allow.extend(answered);
    }
    if allow.is_empty() {
        Err(AppError::RouteNotFound {
            path: path.to_string(),
        })
    } else {
        Err(AppError::MethodNotAllowed {
            method: method.clone(),
            allow,
        })
    }
}

/// The dialect of the routes `path` belongs to, whatever the method (so that a 405 on a
/// Consul path answers as Consul would); `None` for a path no route has.
pub fn path_dialect(table: &'static [RouteDef], path: &str) -> Option<Dialect> {
    let path = match path.strip_suffix('/') {
        Some(stripped) if !stripped.is_empty() => stripped,
        _ => path,
    };
    table
        .iter()
        .find(|def| matches!(match_pattern(def.pattern, path), Ok(Some(_))))
        .map(|def| def.id.dialect())
}

/// `Some(params)` when `path` fits `pattern`. A placeholder segment that is empty does not fit;
/// one with a malformed escape is a 400 naming the placeholder. A last segment `{*name}` takes
/// the whole rest of the path, slashes included (Consul's IDs may contain them).
fn match_pattern(pattern: &'static str, path: &str) -> Result<Option<Params>, AppError> {
    let wanted = pattern.split('/').count();
    let rest = pattern
        .rsplit('/')
        .next()
        .and_then(|last| last.strip_prefix("{*"))
        .and_then(|last| last.strip_suffix('}'));
    let path_segments: Vec<&str> = match rest {
        Some(_) => {
            let mut parts: Vec<&str> = path.splitn(wanted, '/').collect();
            if parts.len() != wanted {
                return Ok(None);
            }
            // The rest, slashes included, as one segment.
            let last = parts.pop().unwrap_or("");
            parts.push(last);
            parts
        }
        None => path.split('/').collect(),
    };
    if wanted != path_segments.len() {
        return Ok(None);
    }
    let mut raw = Vec::new();
    for (want, got) in pattern.split('/').zip(path_segments) {
        let want = match want.strip_prefix("{*") {
            Some(rest) => {
                if got.is_empty() {
                    return Ok(None);
                }
                raw.push((rest.strip_suffix('}').unwrap_or(rest), got));
                continue;
            }
            None => want,
        };
        if let Some(name) = want.strip_prefix('{').and_then(|w| w.strip_suffix('}')) {
            if got.is_empty() {
                return Ok(None);
            }
            raw.push((name, got));
        } else if want != got {
            return Ok(None);
        }
    }
    let params = raw
        .into_iter()
        .map(|(name, value)| Ok((name, percent_decode(value, false, name)?)))
        .collect::<Result<Vec<_>, AppError>>()?;
    Ok(Some(Params(params)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ROUTES;

    fn ok(method: Method, path: &str) -> Matched {
        route(ROUTES, &method, path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    #[test]
    fn every_route_matches() {
        assert_eq!(ok(Method::Get, "/health").def.id, RouteId::Health);
        assert_eq!(ok(Method::Get, "/v1/openapi.json").def.id, RouteId::OpenApi);
        assert_eq!(ok(Method::Get, "/v1/services").def.id, RouteId::Catalog);
        assert_eq!(ok(Method::Get, "/v1/services/").def.id, RouteId::Catalog);
        let lookup = ok(Method::Get, "/v1/services/api");
        assert_eq!(lookup.def.id, RouteId::Lookup);
        assert_eq!(lookup.params.get("name"), "api");
        let put = ok(Method::Put, "/v1/services/api/2.1.0/instances/a1");
        assert_eq!(put.def.id, RouteId::Register);
        assert_eq!(put.params.get("name"), "api");
        assert_eq!(put.params.get("version"), "2.1.0");
        assert_eq!(put.params.get("id"), "a1");
        let del = ok(Method::Delete, "/v1/services/api/2.1.0/instances/a1");
        assert_eq!(del.def.id, RouteId::Deregister);
        assert_eq!(ok(Method::Post, "/v1/resolve").def.id, RouteId::Resolve);
    }

    #[test]
    fn placeholders_are_percent_decoded() {
        let put = ok(Method::Put, "/v1/services/api/2.1.0/instances/a%7Eb");
        assert_eq!(put.params.get("id"), "a~b");
        let err = route(ROUTES, &Method::Put, "/v1/services/api/1.0.0/instances/%zz").unwrap_err();
        assert_eq!(err.code(), "invalid_id");
    }

    #[test]
    fn wrong_method_is_405_with_allow() {
        let err = route(ROUTES, &Method::Post, "/v1/services/api/1.0.0/instances/x").unwrap_err();
        assert_eq!(err.status(), 405);
        assert_eq!(err.allow_header().as_deref(), Some("PUT, DELETE"));
        let err = route(ROUTES, &Method::Get, "/v1/resolve").unwrap_err();
        assert_eq!(err.allow_header().as_deref(), Some("POST"));
        let err = route(ROUTES, &Method::Delete, "/health").unwrap_err();
        assert_eq!(err.status(), 405);
        assert_eq!(err.allow_header().as_deref(), Some("GET, HEAD"));
    }

    #[test]
    fn head_is_answered_by_every_get_route() {
        for def in ROUTES.iter().filter(|def| def.method == RouteMethod::Get) {
            let path = def.pattern.replace("{name}", "api");
            assert_eq!(ok(Method::Head, &path).def.id, def.id, "{path}");
        }
        let err = route(ROUTES, &Method::Head, "/v1/resolve").unwrap_err();
        assert_eq!(err.status(), 405);
    }

    #[test]
    fn unknown_methods_are_405_never_a_get() {
        for name in [
            "PROPFIND", "BREW", "TRACE", "CONNECT", "REPORT", "PATCH", "OPTIONS",
        ] {
            let method = Method::parse(name);
            let err = route(ROUTES, &method, "/v1/services").unwrap_err();
            assert_eq!(err.status(), 405, "{name}");
            assert_eq!(err.allow_header().as_deref(), Some("GET, HEAD"), "{name}");
            let err = route(ROUTES, &method, "/nowhere").unwrap_err();
            assert_eq!(err.status(), 404, "{name}");
        }
    }

    #[test]
    fn unknown_paths_are_404() {
        for path in [
            "/",
            "/v2/services",
            "/v1/services/api/1.0.0",
            "/v1/services/api/1.0.0/instances",
            "/v1/services/api/1.0.0/instances/x/extra",
            "/v1/services//1.0.0/instances/x",
            "/healthz",
        ] {
            let err = route(ROUTES, &Method::Get, path).unwrap_err();
            assert_eq!(err.status(), 404, "{path}");
        }
    }

    #[test]
    fn the_most_specific_pattern_owns_a_path() {
        let repo = ok(Method::Get, "/v1/registration/repo/r1");
        assert_eq!(repo.def.id, RouteId::LyftRepoHosts);
        assert_eq!(repo.params.get("repo"), "r1");
        let err = route(ROUTES, &Method::Delete, "/v1/registration/repo/r1").unwrap_err();
        assert_eq!(err.allow_header().as_deref(), Some("GET, HEAD"));
        let del = ok(Method::Delete, "/v1/registration/api/10.0.0.1");
        assert_eq!(del.def.id, RouteId::LyftDeregister);
        assert_eq!(del.params.get("ip"), "10.0.0.1");
        assert_eq!(
            ok(Method::Get, "/v1/registration/repo").def.id,
            RouteId::LyftHosts
        );
        let weight = ok(Method::Post, "/v1/loadbalancing/api");
        assert_eq!(
            (weight.def.id, weight.params.get("ip")),
            (RouteId::LyftWeight, "")
        );
        let err = route(ROUTES, &Method::Put, "/v1/registration/api").unwrap_err();
        assert_eq!(
            err.allow_header().as_deref(),
            Some("GET, HEAD, POST, DELETE")
        );
    }

    #[test]
    fn table_has_no_duplicate_routes() {
        for (i, a) in ROUTES.iter().enumerate() {
            for b in &ROUTES[i + 1..] {
                assert!(
                    !(a.pattern == b.pattern && a.method == b.method),
                    "{} {} twice",
                    a.method.lower(),
                    a.pattern
                );
            }
        }
    }
}
