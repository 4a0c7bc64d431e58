//! lyft/discovery's REST API (Envoy's v1 SDS) on the same registry: `/v1/registration/...`,
//! `/v1/loadbalancing/...` and `/healthcheck`. Thin handlers: `vasco_core::wire::lyft` decides
//! every field, the mapping onto instances and the answers; these read the body and headers,
//! reach the registry through [`Backend`] and write what the core says.
//!
//! Reads here go to the service's Durable Object (a consistent read, one object request), as
//! the original read its store on every request: a host is listed by the next GET after its
//! POST, and `last_check_in` is its real last beat (a KV snapshot does not record renewals).
//!
//! Refusals use the original's bodies (`{}` or `{"error": "..."}`) and carry the reason in
//! [`ERROR_HEADER`]; authorization, routing and storage failures answer as everywhere else
//! (`{"error": {"code", "message"}}`).

use vasco_core::registry::live_all;
use vasco_core::wire::lyft::{
    self, BodyFormat, ClientAddress, Fields, HostsResponse, LyftError, Registration,
    RepoHostsResponse, Settings,
};
use vasco_core::{Instance, ServiceName};

use super::json;
use crate::backend::{Backend, Objects, ReadMode};
use crate::error::AppError;
use crate::http::{parse_query, ApiRequest, ApiResponse, INDEX_HEADER};
use crate::kv::Kv;
use crate::router::Params;
use crate::routes::services::view_headers;

/// The header carrying the reason of a refusal whose body, as in the original, is `{}`.
pub const ERROR_HEADER: &str = "x-vasco-error";

/// Why a handler stopped: a refusal in lyft's shapes, or an error answered as everywhere else.
enum Failure {
    Lyft(LyftError),
    App(AppError),
}

impl From<LyftError> for Failure {
    fn from(err: LyftError) -> Self {
        Self::Lyft(err)
    }
}

impl From<AppError> for Failure {
    fn from(err: AppError) -> Self {
        Self::App(err)
    }
}

/// A refusal's answer: the original's status and body, the reason in [`ERROR_HEADER`]
/// (printable ASCII only, as a header value must be).
pub fn refusal(err: &LyftError) -> ApiResponse {
    let mut response = ApiResponse::json(err.status, err.body_json());
    let reason: String = err
        .reason
        .chars()
        .map(|c| {
            if c == ' ' || c.is_ascii_graphic() {
                c
            } else {
                '?'
            }
        })
        .collect();
    response.headers.push((ERROR_HEADER, reason));
    response
}

fn answer(result: Result<ApiResponse, Failure>) -> Result<ApiResponse, AppError> {
    match result {
        Ok(response) => Ok(response),
        Err(Failure::Lyft(err)) => Ok(refusal(&err)),
        Err(Failure::App(err)) => Err(err),
    }
}

/// A write's answer: the original's `200 {}`, with the service's change `index` in
/// [`INDEX_HEADER`].
fn done(index: u64) -> ApiResponse {
    let mut response = ApiResponse::json(200, "{}".into());
    response.headers.push((INDEX_HEADER, index.to_string()));
    response
}

/// The `{service}` of the path. Errors: 400 `{"error"}` for a name Vasco refuses.
fn service(params: &Params) -> Result<ServiceName, LyftError> {
    ServiceName::parse(params.get("service")).map_err(|e| LyftError::bad_request(e.to_string()))
}

/// The body's fields, form-encoded or JSON ([`lyft::body_format`]).
fn fields(req: &ApiRequest) -> Result<Fields, LyftError> {
    match lyft::body_format(req.header("content-type"), &req.body)? {
        BodyFormat::Json => Fields::from_json(&req.body),
        BodyFormat::Form => {
            let unreadable = |why: String| {
                LyftError::bad_request(format!("the form body cannot be read: {why}"))
            };
            let text = core::str::from_utf8(&req.body)
                .map_err(|_| unreadable("it is not UTF-8".into()))?;
            let pairs = parse_query(text).map_err(|e| unreadable(e.to_string()))?;
            Ok(Fields::from_pairs(pairs))
        }
    }
}

/// `GET /v1/registration/{service}`: `{"service", "env", "hosts"}`, the service's live hosts
/// (those whose url is an IPv4 address with a port), whichever API registered them. An
/// unknown service has none.
pub async fn hosts<K: Kv, O: Objects>(
    params: &Params,
    settings: &Settings,
    backend: &Backend<'_, K, O>,
) -> Result<ApiResponse, AppError> {
    answer(
        async {
            let service = service(params)?;
            let view = backend.read(&service, ReadMode::Consistent).await?;
            let live = live_all(view.instances.iter(), view.now);
            let mut response = json(
                200,
                &HostsResponse {
                    service: service.as_str().into(),
                    env: settings.env.clone(),
                    hosts: lyft::hosts(live),
                },
            )?;
            view_headers(&mut response, &view);
            Ok(response)
        }
        .await,
    )
}

/// `GET /v1/registration/repo/{repo}`: `{"service_repo_name", "env", "hosts"}`, the live hosts
/// registered with that repo across every service with members (the catalog object, then one
/// consistent read per service).
pub async fn repo_hosts<K: Kv, O: Objects>(
    params: &Params,
    settings: &Settings,
    backend: &Backend<'_, K, O>,
) -> Result<ApiResponse, AppError> {
    let repo = params.get("repo");
    let catalog = backend.catalog(true).await?;
    let views = futures_util::future::try_join_all(
        catalog
            .services
            .iter()
            .filter(|s| !s.versions.is_empty())
            .map(|s| backend.read(&s.name, ReadMode::Consistent)),
    )
    .await?;
    let hosts = views
        .iter()
        .flat_map(|view| live_all(view.instances.iter(), view.now))
        .filter(|instance| lyft::in_repo(instance, repo));
    json(
        200,
        &RepoHostsResponse {
            service_repo_name: repo.into(),
            env: settings.env.clone(),
            hosts: lyft::hosts(hosts),
        },
    )
}

/// `POST /v1/registration/{service}`: registers the host, or beats: `200 {}`. A re-POST reads
/// the host's record and merges into it (tags, and the weight unless this POST sets one);
/// the lease is the host TTL.
pub async fn register<K: Kv, O: Objects>(
    req: &ApiRequest,
    params: &Params,
    settings: &Settings,
    backend: &Backend<'_, K, O>,
) -> Result<ApiResponse, AppError> {
    answer(
        async {
            let service = service(params)?;
            let client = ClientAddress {
                connecting_ip: req.header("cf-connecting-ip"),
                forwarded_for: req.header("x-forwarded-for"),
            };
            let registration = Registration::parse(&fields(req)?, &client)?;
            let key = registration.key(&service)?;
            // The heartbeat is a read-modify-write: read the record, merge, register. Another
            // write to the same host between the two (its own overlapping beat, or a weight
            // update) is overwritten by this one. One host beats its own key, so the window only
            // opens against a weight update, which the next weight update or beat repairs.
            let view = backend.read(&service, ReadMode::Consistent).await?;
            let previous = view
                .instances
                .iter()
                .find(|i| i.key() == key && i.is_live(view.now));
            let spec =
                registration.to_spec(&service, previous, settings.host_ttl_ms, backend.now)?;
            let reply = backend.register(&key, spec.to_json_value()).await?;
            Ok(done(reply.index))
        }
        .await,
    )
}

/// `DELETE /v1/registration/{service}/{ip}`: `200 {}`; `400 {}` when the ip is missing or not a
/// dotted IPv4 address, or no live host has it (version `0.0.0`).
pub async fn deregister<K: Kv, O: Objects>(
    params: &Params,
    backend: &Backend<'_, K, O>,
) -> Result<ApiResponse, AppError> {
    answer(
        async {
            let service = service(params)?;
            let key = lyft::path_key(&service, params.get("ip"))?;
            match backend.deregister(&key).await {
                Ok(reply) => Ok(done(reply.index)),
                Err(err) if err.status() == 404 => Err(LyftError::refused(format!(
                    "no host {} is registered for {service} (or its TTL has passed)",
                    key.id
                ))
                .into()),
                Err(err) => Err(err.into()),
            }
        }
        .await,
    )
}

/// `POST /v1/loadbalancing/{service}[/{ip}]` with `load_balancing_weight` (1 to 100): sets the
/// weight of that host, or of every live host of the service registered through this API
/// (version `0.0.0`): `204`. Errors: 400 `{"error"}` for a missing or bad weight, 404
/// `{"error": "Host not found"}` for an unknown host. Each changed host is registered again
/// with its record and the new weight, which also renews its lease.
pub async fn weight<K: Kv, O: Objects>(
    req: &ApiRequest,
    params: &Params,
    backend: &Backend<'_, K, O>,
) -> Result<ApiResponse, AppError> {
    answer(
        async {
            let service = service(params)?;
            let weight = lyft::parse_weight(&fields(req)?)?;
            let ip = params.get("ip");
            let view = backend.read(&service, ReadMode::Consistent).await?;
            let live = live_all(view.instances.iter(), view.now);
            let targets: Vec<&Instance> = if ip.is_empty() {
                live.into_iter().filter(|i| lyft::is_lyft_host(i)).collect()
            } else {
                let key = lyft::path_key(&service, ip).map_err(|_| LyftError::host_not_found())?;
                let host = live
                    .into_iter()
                    .find(|i| i.key() == key)
                    .ok_or_else(LyftError::host_not_found)?;
                vec![host]
            };
            for host in targets.into_iter().filter(|h| h.weight != weight) {
                backend
                    .register(&host.key(), lyft::reweighted(host, weight).to_json_value())
                    .await?;
            }
            Ok(ApiResponse::no_content())
        }
        .await,
    )
}
