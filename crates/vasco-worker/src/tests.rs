//! The whole request pipeline, natively, against the in-memory KV: routes, auth, errors that
//! change nothing, and the KV operation counts.

use core::cell::RefCell;
use core::future::Future;
use core::pin::pin;
use core::task::{Context, Poll, Waker};

use serde_json::{json, Value};

use crate::app::{admit, handle, Config};
use crate::auth::Tokens;
use crate::error::AppError;
use crate::http::{
    ApiRequest, ApiResponse, Method, WireResponse, KV_OPS_HEADER, MAX_BODY_BYTES, NOW_HEADER,
};
use crate::router::{answered_methods, RouteMethod};
use crate::store::memory::MemoryKv;
use crate::store::ListCache;
use crate::ROUTES;

const TOKEN: &str = "test-token";
const T0: u64 = 1_700_000_000_000;

/// Runs a future whose I/O (the in-memory KV) is always ready.
fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(out) = future.as_mut().poll(&mut cx) {
            return out;
        }
    }
}

struct Harness {
    kv: MemoryKv,
    cache: RefCell<ListCache>,
    config: Config,
    now: u64,
}

impl Harness {
    fn new(cache_ms: u64) -> Self {
        Self {
            kv: MemoryKv::new(),
            cache: RefCell::new(ListCache::new()),
            config: Config {
                tokens: Tokens::new(Some(TOKEN.into()), None),
                cache_ms,
            },
            now: T0,
        }
    }

    fn send(&self, req: ApiRequest) -> ApiResponse {
        block_on(handle(&req, &self.config, &self.kv, &self.cache, self.now))
    }

    /// What the edge writes for `req`: the pipeline's answer through `into_wire`.
    fn wire(&self, req: ApiRequest) -> WireResponse {
        let method = req.method.clone();
        self.send(req).into_wire(&method, self.now)
    }

    fn get(&self, path: &str) -> ApiResponse {
        self.send(ApiRequest::new(Method::Get, path))
    }

    fn put(&self, path: &str, body: Value) -> ApiResponse {
        self.send(
            ApiRequest::new(Method::Put, path)
                .with_bearer(TOKEN)
                .with_body(body.to_string()),
        )
    }

    fn register(&self, name: &str, version: &str, id: &str, body: Value) -> ApiResponse {
        let response = self.put(
            &format!("/v1/services/{name}/{version}/instances/{id}"),
            body,
        );
        assert_eq!(response.status, 200, "{:?}", response.body);
        response
    }

    fn delete(&self, path: &str) -> ApiResponse {
        self.send(ApiRequest::new(Method::Delete, path).with_bearer(TOKEN))
    }

    fn resolve(&self, body: Value) -> ApiResponse {
        self.send(ApiRequest::new(Method::Post, "/v1/resolve").with_body(body.to_string()))
    }
}

fn body(response: &ApiResponse) -> Value {
    serde_json::from_str(response.body.as_deref().unwrap_or("null")).unwrap()
}

fn ids(response: &ApiResponse) -> Vec<String> {
    body(response)["instances"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_string())
        .collect()
}

fn error_code(response: &ApiResponse) -> String {
    body(response)["error"]["code"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn health_needs_no_kv_and_no_token() {
    let h = Harness::new(0);
    h.kv.down.set(true);
    let response = h.get("/health");
    assert_eq!(response.status, 200);
    assert_eq!(body(&response), json!({"status": "ok"}));
    assert_eq!(response.kv_ops, 0);
}

#[test]
fn register_then_lookup() {
    let h = Harness::new(0);
    let response = h.register(
        "api",
        "2.1.0",
        "a1",
        json!({"url": "10.0.0.1:3000", "ttl": 10, "tags": ["v1"], "meta": {"k": "v"}, "weight": 5, "zone": "eu-1"}),
    );
    assert_eq!(response.kv_ops, 1);
    let stored = body(&response);
    assert_eq!(stored["url"], "10.0.0.1:3000");
    assert_eq!(stored["expires_at"], T0 + 10_000);
    assert_eq!(stored["weight"], 5);
    let entry = h.kv.snapshot()["svc/api/2.1.0/a1"].clone();
    assert_eq!(entry.expiration_ttl, 70);

    let lookup = h.get("/v1/services/api");
    assert_eq!(lookup.status, 200);
    assert_eq!(lookup.kv_ops, 1);
    let found = body(&lookup);
    assert_eq!(found["service"], "api");
    assert_eq!(found["instances"][0]["url"], "10.0.0.1:3000");
    assert_eq!(found["instances"][0]["tags"], json!(["v1"]));
    assert_eq!(found["instances"][0]["meta"], json!({"k": "v"}));
}

#[test]
fn unknown_service_is_an_empty_list() {
    let h = Harness::new(0);
    let response = h.get("/v1/services/nobody");
    assert_eq!(response.status, 200);
    assert_eq!(ids(&response), Vec::<String>::new());
}

#[test]
fn lookup_filters_and_orders() {
    let h = Harness::new(0);
    h.register("api", "1.0.0", "old", json!({"url": "h:1"}));
    h.register(
        "api",
        "2.0.0",
        "b",
        json!({"url": "h:2", "tags": ["canary"], "zone": "eu"}),
    );
    h.register("api", "2.1.0", "a", json!({"url": "h:3", "zone": "us"}));
    assert_eq!(ids(&h.get("/v1/services/api")), ["a", "b", "old"]);
    assert_eq!(ids(&h.get("/v1/services/api?version=%5E2")), ["a", "b"]);
    assert_eq!(ids(&h.get("/v1/services/api?version=1.0.0")), ["old"]);
    assert_eq!(ids(&h.get("/v1/services/api?version=v2.0.0")), ["b"]);
    assert_eq!(ids(&h.get("/v1/services/api?tag=canary")), ["b"]);
    assert_eq!(ids(&h.get("/v1/services/api?zone=us")), ["a"]);
    assert_eq!(
        ids(&h.get("/v1/services/api?version=%3E%3D3")),
        Vec::<String>::new()
    );
}

#[test]
fn heartbeat_is_one_write_and_extends_the_lease() {
    let mut h = Harness::new(0);
    h.register("api", "1.0.0", "a", json!({"url": "h:1", "ttl": 2}));
    h.now += 1_500;
    let beat = h.register("api", "1.0.0", "a", json!({"url": "h:1", "ttl": 2}));
    assert_eq!(beat.kv_ops, 1);
    assert_eq!(body(&beat)["expires_at"], T0 + 3_500);
    h.now = T0 + 3_000;
    assert_eq!(ids(&h.get("/v1/services/api")), ["a"]);
    h.now = T0 + 3_500;
    assert_eq!(ids(&h.get("/v1/services/api")), Vec::<String>::new());
}

#[test]
fn heartbeat_keeps_registered_at_when_the_isolate_has_the_listing() {
    let mut h = Harness::new(5_000);
    h.register("api", "1.0.0", "a", json!({"url": "h:1"}));
    h.now += 1_000;
    assert_eq!(ids(&h.get("/v1/services/api")), ["a"]);
    let beat = h.register("api", "1.0.0", "a", json!({"url": "h:1"}));
    assert_eq!(beat.kv_ops, 1);
    assert_eq!(body(&beat)["registered_at"], T0);
    assert_eq!(body(&beat)["expires_at"], T0 + 11_000);
}

#[test]
fn leases_lapse_at_exactly_expires_at() {
    let mut h = Harness::new(0);
    h.register("api", "1.0.0", "a", json!({"url": "h:1", "ttl": 2}));
    h.now = T0 + 1_999;
    assert_eq!(ids(&h.get("/v1/services/api")), ["a"]);
    h.now = T0 + 2_000;
    assert_eq!(ids(&h.get("/v1/services/api")), Vec::<String>::new());
}

#[test]
fn the_cache_serves_repeated_lookups_and_drops_on_writes() {
    let mut h = Harness::new(1_000);
    h.register("api", "1.0.0", "a", json!({"url": "h:1"}));
    assert_eq!(h.get("/v1/services/api").kv_ops, 1);
    let cached = h.get("/v1/services/api");
    assert_eq!(cached.kv_ops, 0);
    assert_eq!(ids(&cached), ["a"]);
    // Cache-Control: no-cache goes to KV.
    let mut fresh = ApiRequest::new(Method::Get, "/v1/services/api");
    fresh.no_cache = true;
    assert_eq!(h.send(fresh).kv_ops, 1);
    // A write drops the cache: the next lookup sees the new instance.
    h.register("api", "1.0.0", "b", json!({"url": "h:2"}));
    let after = h.get("/v1/services/api");
    assert_eq!(after.kv_ops, 1);
    assert_eq!(ids(&after), ["a", "b"]);
    // The entry ages out after the lifetime.
    assert_eq!(h.get("/v1/services/api").kv_ops, 0);
    h.now += 1_000;
    assert_eq!(h.get("/v1/services/api").kv_ops, 1);
}

#[test]
fn cached_listings_still_drop_expired_instances() {
    let mut h = Harness::new(60_000);
    h.register("api", "1.0.0", "a", json!({"url": "h:1", "ttl": 1}));
    assert_eq!(ids(&h.get("/v1/services/api")), ["a"]);
    h.now += 1_000;
    let response = h.get("/v1/services/api");
    assert_eq!(response.kv_ops, 0);
    assert_eq!(ids(&response), Vec::<String>::new());
}

#[test]
fn lookups_page_past_one_kv_page() {
    let mut h = Harness::new(0);
    h.kv.page_size = 10;
    for i in 0..25 {
        h.register(
            "api",
            "1.0.0",
            &format!("i{i:02}"),
            json!({"url": format!("h:{}", i + 1)}),
        );
    }
    h.register("other", "1.0.0", "x", json!({"url": "h:1"}));
    let response = h.get("/v1/services/api");
    assert_eq!(ids(&response).len(), 25);
    assert_eq!(response.kv_ops, 3);
}

#[test]
fn delete_then_404() {
    let h = Harness::new(0);
    h.register("api", "1.0.0", "a", json!({"url": "h:1"}));
    let path = "/v1/services/api/1.0.0/instances/a";
    let deleted = h.delete(path);
    assert_eq!(deleted.status, 204);
    assert_eq!(deleted.body, None);
    assert_eq!(deleted.kv_ops, 2);
    assert!(h.kv.snapshot().is_empty());
    let again = h.delete(path);
    assert_eq!(again.status, 404);
    assert_eq!(error_code(&again), "not_found");
    assert_eq!(again.kv_ops, 1);
}

#[test]
fn delete_of_a_lapsed_lease_is_404() {
    let mut h = Harness::new(0);
    h.register("api", "1.0.0", "a", json!({"url": "h:1", "ttl": 1}));
    h.now += 1_000;
    assert_eq!(h.delete("/v1/services/api/1.0.0/instances/a").status, 404);
}

#[test]
fn catalog_counts_live_instances() {
    let mut h = Harness::new(0);
    h.register("api", "1.0.0", "a", json!({"url": "h:1"}));
    h.register("api", "2.0.0", "b", json!({"url": "h:2"}));
    h.register("api", "2.0.0", "c", json!({"url": "h:3"}));
    h.register("auth", "1.0.0", "a", json!({"url": "h:4", "ttl": 1}));
    h.now += 1_000;
    let response = h.get("/v1/services");
    assert_eq!(response.kv_ops, 1);
    assert_eq!(
        body(&response),
        json!({"services": [{"name": "api", "versions": [
            {"version": "2.0.0", "instances": 2},
            {"version": "1.0.0", "instances": 1}
        ]}]})
    );
}

#[test]
fn all_instances_in_one_list() {
    let mut h = Harness::new(0);
    h.register("web", "1.0.0", "w", json!({"url": "h:5"}));
    h.register("api", "1.0.0", "a", json!({"url": "h:1"}));
    h.register("api", "2.0.0", "b", json!({"url": "h:2"}));
    h.register("auth", "1.0.0", "a", json!({"url": "h:4", "ttl": 1}));
    h.now += 1_000;
    let response = h.get("/v1/instances");
    assert_eq!(response.status, 200);
    assert_eq!(response.kv_ops, 1, "one list for the whole registry");
    let listed: Vec<String> = body(&response)["instances"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| format!("{}@{}/{}", i["service"], i["version"], i["id"]).replace('"', ""))
        .collect();
    assert_eq!(listed, ["api@2.0.0/b", "api@1.0.0/a", "web@1.0.0/w"]);
}

#[test]
fn resolve_ranges_tags_mocks_and_missing() {
    let h = Harness::new(0);
    h.register(
        "api",
        "2.0.0",
        "a",
        json!({"url": "h:1", "tags": ["canary"]}),
    );
    h.register("api", "2.1.0", "b", json!({"url": "h:2"}));
    h.register("api", "3.0.0", "c", json!({"url": "h:3"}));
    h.register("auth", "1.0.0", "a", json!({"url": "h:4"}));
    let response =
        h.resolve(json!({"dependencies": {"api": "^2.0.0", "auth": "1.0.0", "nope": "*"}}));
    assert_eq!(response.status, 200);
    assert_eq!(response.kv_ops, 3);
    let resolution = body(&response);
    assert_eq!(resolution["resolved"]["api"]["version"], "2.1.0");
    assert_eq!(resolution["resolved"]["api"]["instances"][0]["id"], "b");
    assert_eq!(resolution["resolved"]["auth"]["instances"][0]["url"], "h:4");
    assert_eq!(resolution["missing"], json!(["nope"]));

    let tagged = body(&h.resolve(json!({"dependencies": {"api": "^2"}, "tags": ["canary"]})));
    assert_eq!(tagged["resolved"]["api"]["version"], "2.0.0");

    let mocked = h.resolve(
        json!({"dependencies": {"api": "^2", "auth": "1"}, "mocks": {"auth": "localhost:3000"}}),
    );
    assert_eq!(mocked.kv_ops, 1);
    assert_eq!(body(&mocked)["resolved"]["auth"]["mock"], "localhost:3000");
}

#[test]
fn writes_need_the_token() {
    let h = Harness::new(0);
    let path = "/v1/services/api/1.0.0/instances/a";
    let body_text = json!({"url": "h:1"}).to_string();
    let none = h.send(ApiRequest::new(Method::Put, path).with_body(body_text.clone()));
    assert_eq!(none.status, 401);
    assert_eq!(none.kv_ops, 0);
    let wrong = h.send(
        ApiRequest::new(Method::Put, path)
            .with_bearer("nope")
            .with_body(body_text),
    );
    assert_eq!(wrong.status, 401);
    assert_eq!(error_code(&wrong), "unauthorized");
    let delete = h.send(ApiRequest::new(Method::Delete, path));
    assert_eq!(delete.status, 401);
    assert!(h.kv.snapshot().is_empty());
}

#[test]
fn no_configured_token_is_503_for_writes_only() {
    let mut h = Harness::new(0);
    h.config.tokens = Tokens::default();
    let response = h.put("/v1/services/api/1.0.0/instances/a", json!({"url": "h:1"}));
    assert_eq!(response.status, 503);
    assert_eq!(error_code(&response), "not_configured");
    assert!(body(&response)["error"]["message"]
        .as_str()
        .unwrap()
        .contains("wrangler secret put VASCO_TOKEN"));
    assert_eq!(h.get("/v1/services").status, 200);
}

#[test]
fn read_token_closes_reads() {
    let mut h = Harness::new(0);
    h.config.tokens = Tokens::new(Some(TOKEN.into()), Some("reader".into()));
    assert_eq!(h.get("/v1/services").status, 401);
    assert_eq!(h.resolve(json!({"dependencies": {}})).status, 401);
    let with = h.send(ApiRequest::new(Method::Get, "/v1/services").with_bearer("reader"));
    assert_eq!(with.status, 200);
    assert_eq!(h.get("/health").status, 200);
    assert_eq!(h.get("/v1/openapi.json").status, 200);
}

#[test]
fn bad_input_is_a_4xx_naming_the_field_and_changes_nothing() {
    let h = Harness::new(0);
    h.register("api", "1.0.0", "a", json!({"url": "h:1", "tags": ["keep"]}));
    let before = h.kv.snapshot();
    let good = "/v1/services/api/1.0.0/instances/a";
    let cases: Vec<(&str, String, u16, &str)> = vec![
        (good, "{not json".into(), 400, "bad_json"),
        (good, "".into(), 400, "invalid_body"),
        (good, "[]".into(), 400, "invalid_body"),
        (good, json!({}).to_string(), 400, "invalid_url"),
        (good, json!({"url": 5}).to_string(), 400, "invalid_url"),
        (
            good,
            json!({"url": "no-port"}).to_string(),
            400,
            "invalid_url",
        ),
        (
            good,
            json!({"url": "ftp://x:1"}).to_string(),
            400,
            "invalid_url",
        ),
        (
            good,
            json!({"url": "h:1", "ttl": 0}).to_string(),
            400,
            "invalid_ttl",
        ),
        (
            good,
            json!({"url": "h:1", "ttl": 3601}).to_string(),
            400,
            "invalid_ttl",
        ),
        (
            good,
            json!({"url": "h:1", "ttl": "10"}).to_string(),
            400,
            "invalid_ttl",
        ),
        (
            good,
            json!({"url": "h:1", "weight": 0}).to_string(),
            400,
            "invalid_weight",
        ),
        (
            good,
            json!({"url": "h:1", "weight": 1001}).to_string(),
            400,
            "invalid_weight",
        ),
        (
            good,
            json!({"url": "h:1", "tags": vec!["x"; 17]}).to_string(),
            400,
            "invalid_tags",
        ),
        (
            good,
            json!({"url": "h:1", "tags": ["x".repeat(65)]}).to_string(),
            400,
            "invalid_tags",
        ),
        (
            good,
            json!({"url": "h:1", "zone": "bad zone"}).to_string(),
            400,
            "invalid_zone",
        ),
        (
            good,
            json!({"url": "h:1", "tll": 3}).to_string(),
            400,
            "invalid_body",
        ),
        (
            "/v1/services/API/1.0.0/instances/a",
            json!({"url": "h:1"}).to_string(),
            400,
            "invalid_name",
        ),
        (
            "/v1/services/api/one/instances/a",
            json!({"url": "h:1"}).to_string(),
            400,
            "invalid_version",
        ),
        (
            "/v1/services/api/1.0.0/instances/a%20b",
            json!({"url": "h:1"}).to_string(),
            400,
            "invalid_id",
        ),
    ];
    for (path, text, status, code) in cases {
        let response = h.send(
            ApiRequest::new(Method::Put, path)
                .with_bearer(TOKEN)
                .with_body(text.clone()),
        );
        assert_eq!(
            response.status, status,
            "{path} {text}: {:?}",
            response.body
        );
        assert_eq!(error_code(&response), code, "{path} {text}");
        assert_eq!(response.kv_ops, 0, "{path} {text}");
        assert_eq!(h.kv.snapshot(), before, "{path} {text} changed the store");
    }
}

#[test]
fn records_over_the_metadata_limit_are_refused() {
    let h = Harness::new(0);
    let meta: serde_json::Map<String, Value> = (0..16)
        .map(|i| (format!("key{i:02}"), json!("v".repeat(200))))
        .collect();
    let response = h.put(
        "/v1/services/api/1.0.0/instances/a",
        json!({"url": "h:1", "meta": meta}),
    );
    assert_eq!(response.status, 400);
    assert_eq!(error_code(&response), "too_large");
    assert_eq!(response.kv_ops, 0);
    assert!(h.kv.snapshot().is_empty());
}

#[test]
fn bodies_over_16_kib_are_413() {
    let h = Harness::new(0);
    let big = format!(r#"{{"url":"h:1","pad":"{}"}}"#, "x".repeat(MAX_BODY_BYTES));
    let response = h.send(
        ApiRequest::new(Method::Put, "/v1/services/api/1.0.0/instances/a")
            .with_bearer(TOKEN)
            .with_body(big),
    );
    assert_eq!(response.status, 413);
    assert_eq!(error_code(&response), "payload_too_large");
    assert!(h.kv.snapshot().is_empty());
}

#[test]
fn routing_errors() {
    let h = Harness::new(0);
    let missing = h.get("/v1/nothing");
    assert_eq!(missing.status, 404);
    assert_eq!(error_code(&missing), "route_not_found");
    let wrong = h.send(ApiRequest::new(Method::Post, "/v1/services"));
    assert_eq!(wrong.status, 405);
    assert!(wrong.headers.contains(&("allow", "GET, HEAD".into())));
    assert_eq!(error_code(&wrong), "method_not_allowed");
}

#[test]
fn kv_failures_are_503_and_never_panic() {
    let h = Harness::new(0);
    h.kv.down.set(true);
    for response in [
        h.get("/v1/services"),
        h.get("/v1/services/api"),
        h.put("/v1/services/api/1.0.0/instances/a", json!({"url": "h:1"})),
        h.delete("/v1/services/api/1.0.0/instances/a"),
        h.resolve(json!({"dependencies": {"api": "*"}})),
    ] {
        assert_eq!(response.status, 503, "{:?}", response.body);
        assert_eq!(error_code(&response), "kv_unavailable");
    }
}

#[test]
fn corrupt_records_are_skipped() {
    let h = Harness::new(0);
    h.register("api", "1.0.0", "a", json!({"url": "h:1"}));
    h.kv.entries.borrow_mut().insert(
        "svc/api/1.0.0/broken".into(),
        crate::store::memory::Entry {
            metadata: Some(json!({"garbage": true})),
            expiration_ttl: 60,
        },
    );
    let response = h.get("/v1/services/api");
    assert_eq!(response.status, 200);
    assert_eq!(ids(&response), ["a"]);
}

/// Every route of the table with its placeholders filled with valid values.
fn concrete_routes() -> Vec<(&'static crate::router::RouteDef, String)> {
    ROUTES
        .iter()
        .map(|def| {
            let path = def
                .pattern
                .replace("{name}", "api")
                .replace("{version}", "1.0.0")
                .replace("{id}", "a");
            (def, path)
        })
        .collect()
}

fn assert_standard_headers(wire: &WireResponse, now: u64, what: &str) {
    assert!(
        wire.header(KV_OPS_HEADER).is_some(),
        "{what}: {:?}",
        wire.headers
    );
    assert_eq!(
        wire.header(NOW_HEADER),
        Some(now.to_string().as_str()),
        "{what}: the clock the request's lease decisions used"
    );
    assert_eq!(wire.header("cache-control"), Some("no-store"), "{what}");
    let stamped = wire
        .headers
        .iter()
        .filter(|(k, _)| *k == NOW_HEADER || *k == KV_OPS_HEADER)
        .count();
    assert_eq!(stamped, 2, "{what}: each standard header once");
}

/// Derived from the route table: every route, with every method (known or not), with and
/// without a token, answers with the standard headers; a method a path does not answer is a 405
/// whose `Allow` lists exactly the table's methods for that path; `HEAD` on a GET route is the
/// GET answer without its body.
#[test]
fn every_route_and_method_answers_with_the_standard_headers() {
    let mut h = Harness::new(0);
    h.now = 1_767_225_600_123;
    h.register("api", "1.0.0", "a", json!({"url": "h:1"}));
    let methods = [
        "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "PROPFIND", "BREW", "TRACE",
    ];
    for (def, path) in concrete_routes() {
        let allowed: Vec<Method> = ROUTES
            .iter()
            .filter(|other| other.pattern == def.pattern)
            .flat_map(|other| answered_methods(other.method))
            .collect();
        for name in methods {
            let method = Method::parse(name);
            for token in [None, Some(TOKEN)] {
                let mut req = ApiRequest::new(method.clone(), &path);
                if let Some(token) = token {
                    req = req.with_bearer(token);
                }
                let what = format!("{name} {path} token={}", token.is_some());
                let wire = h.wire(req);
                assert_standard_headers(&wire, h.now, &what);
                if !allowed.contains(&method) {
                    assert_eq!(wire.status, 405, "{what}");
                    let allow: Vec<&str> = allowed.iter().map(Method::as_str).collect();
                    assert_eq!(
                        wire.header("allow"),
                        Some(allow.join(", ").as_str()),
                        "{what}"
                    );
                }
            }
        }
        if def.method == RouteMethod::Get {
            let get = h.wire(ApiRequest::new(Method::Get, &path));
            let head = h.wire(ApiRequest::new(Method::Head, &path));
            assert_eq!(get.status, 200, "GET {path}");
            assert_eq!(head.status, get.status, "HEAD {path}");
            assert_eq!(head.headers, get.headers, "HEAD {path}");
            assert!(get.body.is_some() && head.body.is_none(), "HEAD {path}");
        }
    }
    // Unknown paths, with any method.
    for name in methods {
        let wire = h.wire(ApiRequest::new(Method::parse(name), "/nope"));
        assert_eq!(wire.status, 404, "{name}");
        assert_standard_headers(&wire, h.now, name);
    }
    // The edge's own answers (body over the limit, unreadable URL) go through the same stamp.
    for err in [
        AppError::PayloadTooLarge {
            size: 1 << 30,
            limit: MAX_BODY_BYTES as u64,
        },
        AppError::invalid("url", "unparsable"),
    ] {
        let wire = ApiResponse::from_error(&err).into_wire(&Method::Put, h.now);
        assert_standard_headers(&wire, h.now, &err.to_string());
        assert_eq!(wire.header(KV_OPS_HEADER), Some("0"));
    }
}

/// What the edge decides before it reads any body byte: a write without a token is a 401 and a
/// write with one whose announced length is too large a 413, however large the body; unknown
/// paths and methods are refused too.
#[test]
fn admission_needs_only_the_request_head() {
    let h = Harness::new(0);
    let put = "/v1/services/api/1.0.0/instances/a";
    let huge = Some(400 << 20);
    let head = |method: Method, path: &str| ApiRequest::new(method, path);
    let status = |req: &ApiRequest, length: Option<u64>| {
        admit(req, &h.config, length).map_err(|e| e.status())
    };
    assert_eq!(status(&head(Method::Put, put), huge), Err(401));
    assert_eq!(status(&head(Method::Put, put), None), Err(401));
    assert_eq!(
        status(&head(Method::Put, put).with_bearer("wrong"), huge),
        Err(401)
    );
    assert_eq!(
        status(&head(Method::Put, put).with_bearer(TOKEN), huge),
        Err(413)
    );
    assert_eq!(
        status(&head(Method::Put, put).with_bearer(TOKEN), Some(100)),
        Ok(())
    );
    assert_eq!(
        status(&head(Method::Put, put).with_bearer(TOKEN), None),
        Ok(())
    );
    assert_eq!(status(&head(Method::Post, "/v1/resolve"), huge), Err(413));
    assert_eq!(status(&head(Method::Post, "/v1/resolve"), None), Ok(()));
    assert_eq!(
        status(&head(Method::parse("PROPFIND"), "/v1/services"), None),
        Err(405)
    );
    assert_eq!(status(&head(Method::Get, "/v1/nothing"), None), Err(404));
    let mut closed = Harness::new(0);
    closed.config.tokens = Tokens::new(Some(TOKEN.into()), Some("reader".into()));
    assert_eq!(
        admit(&head(Method::Post, "/v1/resolve"), &closed.config, huge).map_err(|e| e.status()),
        Err(401)
    );
    // The pipeline checks in the same order for bodies already read: a token first.
    let big = "x".repeat(MAX_BODY_BYTES + 1);
    assert_eq!(
        h.send(head(Method::Put, put).with_body(big.clone())).status,
        401
    );
    assert_eq!(
        h.send(head(Method::Put, put).with_bearer(TOKEN).with_body(big))
            .status,
        413
    );
}

#[test]
fn configured_tokens_with_whitespace_authorize() {
    let config = Config::from_env(|name| match name {
        "VASCO_TOKEN" => Some(format!("  {TOKEN}\n")),
        "VASCO_READ_TOKEN" => Some("\treader \r\n".into()),
        _ => None,
    });
    let mut h = Harness::new(0);
    h.config = config;
    h.register("api", "1.0.0", "a", json!({"url": "h:1"}));
    let read = h.send(ApiRequest::new(Method::Get, "/v1/services").with_bearer("reader"));
    assert_eq!(read.status, 200);
    h.config = Config::from_env(|name| (name == "VASCO_TOKEN").then(|| " \n ".into()));
    let response = h.put("/v1/services/api/1.0.0/instances/a", json!({"url": "h:1"}));
    assert_eq!(
        response.status, 503,
        "an all-whitespace token is not configured"
    );
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

        /// Any method and path gets an answer, never a 5xx, and never touches KV unless routed.
        #[test]
        fn any_request_line_is_answered(method in "[A-Z]{1,8}", path in "/[ -~]{0,80}") {
            let h = Harness::new(0);
            let response = h.send(ApiRequest::new(Method::parse(&method), &path));
            prop_assert!(response.status < 500, "{} {} -> {}", method, path, response.status);
        }

        /// Any registration body is either stored (200) or refused with a 4xx that changes
        /// nothing; never a 5xx.
        #[test]
        fn any_register_body_is_stored_or_refused(body in proptest::collection::vec(any::<u8>(), 0..300)) {
            let h = Harness::new(0);
            h.register("api", "1.0.0", "a", json!({"url": "h:1"}));
            let before = h.kv.snapshot();
            let response = h.send(
                ApiRequest::new(Method::Put, "/v1/services/api/1.0.0/instances/a")
                    .with_bearer(TOKEN)
                    .with_body(body),
            );
            prop_assert!(response.status == 200 || (400..500).contains(&response.status));
            if response.status != 200 {
                prop_assert_eq!(h.kv.snapshot(), before);
            }
        }

        /// JSON-shaped registration bodies with arbitrary field values behave the same way.
        #[test]
        fn any_json_register_body_is_stored_or_refused(
            url in "[ -~]{0,40}",
            ttl in proptest::num::f64::ANY,
            weight in any::<i64>(),
            tags in proptest::collection::vec("[ -~]{0,70}", 0..20),
            zone in proptest::option::of("[ -~]{0,70}"),
        ) {
            let h = Harness::new(0);
            let body = json!({"url": url, "ttl": ttl, "weight": weight, "tags": tags, "zone": zone});
            let response = h.send(
                ApiRequest::new(Method::Put, "/v1/services/api/1.0.0/instances/a")
                    .with_bearer(TOKEN)
                    .with_body(body.to_string()),
            );
            prop_assert!(response.status == 200 || response.status == 400, "{:?}", response.body);
            prop_assert_eq!(h.kv.snapshot().is_empty(), response.status != 200);
        }

        /// Any lookup query string is answered with 200 or a 400 naming a field.
        #[test]
        fn any_lookup_query_is_answered(query in "[ -~]{0,60}") {
            let h = Harness::new(0);
            let response = h.get(&format!("/v1/services/api?{query}"));
            prop_assert!(response.status == 200 || response.status == 400 || response.status == 404,
                "{} -> {}", query, response.status);
        }
    }
}

mod interleaving {
    use super::*;
    use crate::store::{Kv, KvFailure, ListPage};
    use futures_util::future::join;

    /// Yields to the executor once, as a real KV call does.
    struct YieldOnce(bool);

    impl Future for YieldOnce {
        type Output = ();
        fn poll(mut self: core::pin::Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
            if self.0 {
                Poll::Ready(())
            } else {
                self.0 = true;
                cx.waker().wake_by_ref();
                Poll::Pending
            }
        }
    }

    /// A KV whose `list` answers with what was stored when it was called, but only after
    /// other requests have had a turn.
    struct SlowListKv(MemoryKv);

    impl Kv for SlowListKv {
        async fn list(&self, prefix: &str, cursor: Option<&str>) -> Result<ListPage, KvFailure> {
            let page = self.0.list(prefix, cursor).await;
            YieldOnce(false).await;
            page
        }
        async fn get_metadata(&self, key: &str) -> Result<Option<Option<Value>>, KvFailure> {
            self.0.get_metadata(key).await
        }
        async fn put(&self, key: &str, metadata: Value, ttl: u64) -> Result<(), KvFailure> {
            self.0.put(key, metadata, ttl).await
        }
        async fn delete(&self, key: &str) -> Result<(), KvFailure> {
            self.0.delete(key).await
        }
    }

    /// A lookup in flight while a write lands must not cache its (older) listing.
    #[test]
    fn a_listing_that_predates_a_write_is_not_cached() {
        let kv = SlowListKv(MemoryKv::new());
        let cache = RefCell::new(ListCache::new());
        let config = Config {
            tokens: Tokens::new(Some(TOKEN.into()), None),
            cache_ms: 60_000,
        };
        let lookup = ApiRequest::new(Method::Get, "/v1/services/api");
        let put = ApiRequest::new(Method::Put, "/v1/services/api/1.0.0/instances/a")
            .with_bearer(TOKEN)
            .with_body(json!({"url": "h:1"}).to_string());
        let (stale, written) = block_on(join(
            handle(&lookup, &config, &kv, &cache, T0),
            handle(&put, &config, &kv, &cache, T0),
        ));
        assert_eq!(written.status, 200);
        assert_eq!(
            ids(&stale),
            Vec::<String>::new(),
            "the lookup listed before the write"
        );
        let after = block_on(handle(&lookup, &config, &kv, &cache, T0 + 1));
        assert_eq!(after.kv_ops, 1, "the stale listing was not cached");
        assert_eq!(ids(&after), ["a"]);
    }
}
