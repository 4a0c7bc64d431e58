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
use crate::kv::memory::MemoryKv;
use crate::local::LocalObjects;
use crate::router::{answered_methods, RouteId, RouteMethod};
use crate::snapshot::SnapshotCache;
use crate::ROUTES;

const TOKEN: &str = "test-token";
const T0: u64 = 1_700_000_000_000;

/// Runs a future whose I/O (the in-memory KV) is always ready.
pub(crate) fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(out) = future.as_mut().poll(&mut cx) {
            return out;
        }
    }
}

struct Harness {
    objects: LocalObjects<MemoryKv>,
    cache: RefCell<SnapshotCache>,
    config: Config,
}

impl Harness {
    fn new(cache_ms: u64) -> Self {
        Self {
            objects: LocalObjects::new(MemoryKv::new(), T0),
            cache: RefCell::new(SnapshotCache::new()),
            config: Config {
                tokens: Tokens::new(Some(TOKEN.into()), None).with_public_reads(true),
                cache_ms,
                lyft: Default::default(),
                rate_limit: false,
            },
        }
    }

    fn kv(&self) -> &MemoryKv {
        self.objects.kv()
    }

    fn now(&self) -> u64 {
        self.objects.now()
    }

    /// Moves the clock to `t`, firing every alarm due on the way.
    fn at(&self, t: u64) {
        block_on(self.objects.advance_to(t));
    }

    fn send(&self, req: ApiRequest) -> ApiResponse {
        block_on(handle(
            &req,
            &self.config,
            self.objects.kv(),
            &self.cache,
            &self.objects,
            self.now(),
        ))
    }

    /// What the edge writes for `req`: the pipeline's answer through `into_wire`.
    fn wire(&self, req: ApiRequest) -> WireResponse {
        let method = req.method.clone();
        self.send(req).into_wire(&method, self.now())
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

fn header<'a>(response: &'a ApiResponse, name: &str) -> Option<&'a str> {
    response
        .headers
        .iter()
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.as_str())
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
    h.kv().down.set(true);
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
    assert_eq!(
        response.kv_ops, 1,
        "a new instance costs one snapshot write"
    );
    assert_eq!(header(&response, "x-vasco-outcome"), Some("added"));
    assert_eq!(header(&response, "x-vasco-index"), Some("2"));
    let stored = body(&response);
    assert_eq!(stored["url"], "10.0.0.1:3000");
    assert_eq!(stored["expires_at"], T0 + 10_000);
    assert_eq!(stored["weight"], 5);
    let entry = h.kv().snapshot()["snap/api"].clone();
    assert_eq!(entry.expiration_ttl, vasco_core::snapshot::KV_TTL_S);

    let lookup = h.get("/v1/services/api");
    assert_eq!(lookup.status, 200);
    assert_eq!(lookup.kv_ops, 1, "a default read is one KV get");
    assert_eq!(header(&lookup, "x-vasco-index"), Some("2"));
    assert_eq!(header(&lookup, "x-vasco-source"), Some("snapshot"));
    let found = body(&lookup);
    assert_eq!(found["service"], "api");
    assert_eq!(found["instances"][0]["url"], "10.0.0.1:3000");
    assert_eq!(found["instances"][0]["tags"], json!(["v1"]));
    assert_eq!(found["instances"][0]["meta"], json!({"k": "v"}));

    let consistent = h.get("/v1/services/api?consistent");
    assert_eq!(consistent.kv_ops, 0);
    assert_eq!(header(&consistent, "x-vasco-source"), Some("object"));
    assert_eq!(ids(&consistent), ["a1"]);
}

#[test]
fn unknown_service_is_an_empty_list() {
    let h = Harness::new(0);
    let response = h.get("/v1/services/nobody");
    assert_eq!(response.status, 200);
    assert_eq!(ids(&response), Vec::<String>::new());
    assert_eq!(header(&response, "x-vasco-index"), Some("0"));
    let consistent = h.get("/v1/services/nobody?consistent");
    assert_eq!(header(&consistent, "x-vasco-index"), Some("1"));
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
    h.at(T0 + 1_000);
    for mode in ["", "&consistent"] {
        let get = |q: &str| ids(&h.get(&format!("/v1/services/api?{q}{mode}")));
        assert_eq!(get(""), ["a", "b", "old"]);
        assert_eq!(get("version=%5E2"), ["a", "b"]);
        assert_eq!(get("version=1.0.0"), ["old"]);
        assert_eq!(get("version=v2.0.0"), ["b"]);
        assert_eq!(get("tag=canary"), ["b"]);
        assert_eq!(get("zone=us"), ["a"]);
        assert_eq!(get("version=%3E%3D3"), Vec::<String>::new());
    }
}

#[test]
fn a_renewal_costs_no_kv_and_moves_no_index() {
    let h = Harness::new(0);
    let first = h.register("api", "1.0.0", "a", json!({"url": "h:1", "ttl": 3}));
    assert_eq!(first.kv_ops, 1);
    for beat in 1..=30 {
        h.at(T0 + beat * 1_000);
        let renewed = h.register("api", "1.0.0", "a", json!({"url": "h:1", "ttl": 3}));
        assert_eq!(renewed.kv_ops, 0, "beat {beat}");
        assert_eq!(header(&renewed, "x-vasco-outcome"), Some("renewed"));
        assert_eq!(header(&renewed, "x-vasco-index"), Some("2"));
        assert_eq!(body(&renewed)["registered_at"], T0, "kept across renewals");
        assert_eq!(body(&renewed)["expires_at"], T0 + beat * 1_000 + 3_000);
    }
    assert_eq!(
        h.kv().puts_of("snap/api"),
        1,
        "thirty renewals, one snapshot write"
    );
    // A changed record is a change: a new index and a snapshot write.
    h.at(T0 + 32_000);
    let moved = h.register("api", "1.0.0", "a", json!({"url": "h:2", "ttl": 3}));
    assert_eq!(header(&moved, "x-vasco-outcome"), Some("updated"));
    assert_eq!(header(&moved, "x-vasco-index"), Some("3"));
    assert_eq!(moved.kv_ops, 1);
    assert_eq!(ids(&h.get("/v1/services/api")), ["a"]);
    assert_eq!(
        body(&h.get("/v1/services/api"))["instances"][0]["url"],
        "h:2"
    );
}

#[test]
fn a_status_change_is_a_change_and_costs_one_snapshot_write() {
    let h = Harness::new(0);
    h.register("api", "1.0.0", "a", json!({"url": "h:1", "ttl": 30}));
    h.register("api", "1.0.0", "b", json!({"url": "h:2", "ttl": 30}));
    h.at(T0 + 2_000);
    let puts = h.kv().puts_of("snap/api");
    let drained = h.put(
        "/v1/services/api/1.0.0/instances/a/status",
        json!({"status": "maintenance", "reason": "deploy", "by": "ci"}),
    );
    assert_eq!(drained.status, 200, "{:?}", drained.body);
    assert_eq!(header(&drained, "x-vasco-outcome"), Some("updated"));
    assert_eq!(header(&drained, "x-vasco-index"), Some("4"));
    assert_eq!(drained.kv_ops, 1, "one snapshot write");
    assert_eq!(h.kv().puts_of("snap/api"), puts + 1);
    let instance = body(&drained);
    assert_eq!(
        (&instance["status"], &instance["reason"], &instance["by"]),
        (&json!("maintenance"), &json!("deploy"), &json!("ci"))
    );
    // The same status again is no change: no index, no KV.
    let again = h.put(
        "/v1/services/api/1.0.0/instances/a/status",
        json!({"status": "maintenance", "reason": "deploy", "by": "ci"}),
    );
    assert_eq!(header(&again, "x-vasco-outcome"), Some("unchanged"));
    assert_eq!(
        (again.kv_ops, header(&again, "x-vasco-index")),
        (0, Some("4"))
    );
    // Lookups: default passing+warning, ?all, ?status=, ?passing; from the snapshot and the
    // object alike.
    for consistent in ["", "&consistent"] {
        let get = |q: &str| ids(&h.get(&format!("/v1/services/api?{q}{consistent}")));
        assert_eq!(get(""), ["b"]);
        assert_eq!(get("all"), ["a", "b"]);
        assert_eq!(get("status=maintenance"), ["a"]);
        assert_eq!(get("passing"), ["b"]);
    }
    // The dashboard's list shows every leased instance with its status.
    let all = body(&h.get("/v1/instances"));
    assert_eq!(all["instances"][0]["status"], "maintenance");
    assert_eq!(all["instances"][1]["status"], "passing");
    // A renewal keeps the status and costs nothing.
    h.at(T0 + 3_000);
    let renewed = h.register("api", "1.0.0", "a", json!({"url": "h:1", "ttl": 30}));
    assert_eq!(header(&renewed, "x-vasco-outcome"), Some("renewed"));
    assert_eq!(
        (renewed.kv_ops, body(&renewed)["status"].clone()),
        (0, json!("maintenance"))
    );
    // Back in rotation through the registration body.
    let back = h.register(
        "api",
        "1.0.0",
        "a",
        json!({"url": "h:1", "ttl": 30, "status": "passing"}),
    );
    assert_eq!(header(&back, "x-vasco-outcome"), Some("updated"));
    assert_eq!(ids(&h.get("/v1/services/api")), ["a", "b"]);
}

#[test]
fn damped_check_results_change_nothing_until_they_hold() {
    let h = Harness::new(0);
    h.register(
        "api",
        "1.0.0",
        "a",
        json!({"url": "h:1", "ttl": 30, "check": {"failures_before_critical": 3}}),
    );
    h.at(T0 + 2_000);
    let fail = json!({"check": {"status": "critical", "note": "db down"}});
    for n in 1..=2 {
        let r = h.put("/v1/services/api/1.0.0/instances/a/status", fail.clone());
        assert_eq!(
            header(&r, "x-vasco-outcome"),
            Some("unchanged"),
            "result {n}"
        );
        assert_eq!(
            (r.kv_ops, body(&r)["check"]["failures"].clone()),
            (0, json!(n))
        );
    }
    let r = h.put("/v1/services/api/1.0.0/instances/a/status", fail);
    assert_eq!(header(&r, "x-vasco-outcome"), Some("updated"));
    assert_eq!(
        (body(&r)["status"].clone(), body(&r)["reason"].clone()),
        (json!("critical"), json!("db down"))
    );
    assert!(ids(&h.get("/v1/services/api")).is_empty());
    assert_eq!(ids(&h.get("/v1/services/api?status=critical")), ["a"]);
}

#[test]
fn status_errors_are_4xx_and_change_nothing() {
    let h = Harness::new(0);
    h.register("api", "1.0.0", "a", json!({"url": "h:1", "ttl": 30}));
    let path = "/v1/services/api/1.0.0/instances/a/status";
    for (body, code) in [
        (json!({"status": "sick"}), "invalid_status"),
        (json!({}), "invalid_status"),
        (
            json!({"status": "passing", "check": {"status": "passing"}}),
            "invalid_body",
        ),
        (json!({"check": {"status": "maintenance"}}), "invalid_check"),
        (json!({"reason": "x"}), "invalid_reason"),
    ] {
        let r = h.put(path, body.clone());
        assert_eq!(
            (r.status, error_code(&r)),
            (400, code.to_string()),
            "{body}"
        );
    }
    let r = h.put(
        "/v1/services/api/1.0.0/instances/nope/status",
        json!({"status": "passing"}),
    );
    assert_eq!(r.status, 404);
    for q in [
        "passing=maybe",
        "status=sick",
        "all&passing",
        "status=passing&status=warning",
    ] {
        assert_eq!(h.get(&format!("/v1/services/api?{q}")).status, 400, "{q}");
    }
    let after = body(&h.get("/v1/services/api?all&consistent"));
    assert_eq!(after["instances"][0]["status"], "passing");
    assert_eq!(
        header(&h.get("/v1/services/api?consistent"), "x-vasco-index"),
        Some("2")
    );
}

#[test]
fn lookups_read_ranges_as_npm_does() {
    let h = Harness::new(0);
    h.register("api", "1.0.0", "a", json!({"url": "h:1"}));
    h.register("api", "2.0.0-beta.1", "b", json!({"url": "h:2"}));
    h.register("api", "1.0.0-next.1", "c", json!({"url": "h:3"}));
    h.at(T0 + 1_000);
    // An `x` inside a prerelease is an identifier, not a wildcard.
    assert_eq!(ids(&h.get("/v1/services/api?version=1.0.0-next.1")), ["c"]);
    // `*` leaves prereleases out; no version at all lists everything.
    assert_eq!(ids(&h.get("/v1/services/api?version=*")), ["a"]);
    assert_eq!(ids(&h.get("/v1/services/api")), ["b", "a", "c"]);
    let resolved = body(&h.resolve(json!({"dependencies": {"api": "*"}})));
    assert_eq!(resolved["resolved"]["api"]["version"], "1.0.0");
}

#[test]
fn the_alarm_reaps_a_lapsed_lease_with_no_request_in_between() {
    let h = Harness::new(0);
    h.register("api", "1.0.0", "a", json!({"url": "h:1", "ttl": 2}));
    let api = vasco_core::ServiceName::parse("api").unwrap();
    assert_eq!(h.objects.alarm_of(&api), Some(T0 + 2_000));
    h.at(T0 + 1_999);
    assert_eq!(ids(&h.get("/v1/services/api?consistent")), ["a"]);
    assert_eq!(ids(&h.get("/v1/services/api")), ["a"]);
    let events_before = h.objects.events.borrow().len();
    h.at(T0 + 2_000);
    // The alarm ran at exactly expires_at: the object published the removal and rewrote the
    // snapshot, so both kinds of read drop it.
    assert_eq!(h.objects.events.borrow().len(), events_before + 1);
    assert_eq!(
        ids(&h.get("/v1/services/api?consistent")),
        Vec::<String>::new()
    );
    assert_eq!(ids(&h.get("/v1/services/api")), Vec::<String>::new());
    assert_eq!(
        header(&h.get("/v1/services/api"), "x-vasco-index"),
        Some("3")
    );
    // A retried alarm is harmless.
    h.at(T0 + 5_000);
    assert_eq!(
        header(&h.get("/v1/services/api?consistent"), "x-vasco-index"),
        Some("3")
    );
}

#[test]
fn snapshot_writes_are_coalesced_to_one_a_second() {
    let h = Harness::new(0);
    let mut ops = 0;
    for i in 0..10 {
        h.at(T0 + i * 100);
        ops += h
            .register("api", "1.0.0", &format!("i{i}"), json!({"url": "h:1"}))
            .kv_ops;
    }
    assert_eq!(ops, 1, "only the first change of the second writes at once");
    assert_eq!(ids(&h.get("/v1/services/api")).len(), 1, "KV is behind");
    assert_eq!(ids(&h.get("/v1/services/api?consistent")).len(), 10);
    h.at(T0 + 1_000);
    assert_eq!(h.kv().puts_of("snap/api"), 2, "the alarm caught up");
    let lookup = h.get("/v1/services/api");
    assert_eq!(ids(&lookup).len(), 10);
    assert_eq!(header(&lookup, "x-vasco-index"), Some("11"));
}

#[test]
fn state_index_and_alarms_survive_eviction() {
    let h = Harness::new(0);
    h.register("api", "1.0.0", "a", json!({"url": "h:1", "ttl": 5}));
    h.register("api", "1.0.0", "b", json!({"url": "h:2", "ttl": 60}));
    h.at(T0 + 1_000);
    h.objects.evict_all();
    let read = h.get("/v1/services/api?consistent");
    assert_eq!(ids(&read), ["a", "b"]);
    assert_eq!(header(&read, "x-vasco-index"), Some("3"));
    // Evicted again, then woken by its own alarm: it knows its name from storage.
    h.objects.evict_all();
    h.at(T0 + 5_000);
    h.objects.evict_all();
    let after = h.get("/v1/services/api?consistent");
    assert_eq!(ids(&after), ["b"]);
    assert_eq!(header(&after, "x-vasco-index"), Some("4"));
    assert_eq!(ids(&h.get("/v1/services/api")), ["b"]);
}

#[test]
fn blocking_queries_answer_at_once_unless_the_index_is_current() {
    let h = Harness::new(0);
    h.register("api", "1.0.0", "a", json!({"url": "h:1"}));
    for query in ["index=0&wait=1s", "index=1", "index=99&wait=5s"] {
        let response = h.get(&format!("/v1/services/api?{query}"));
        assert_eq!(response.status, 200, "{query}");
        assert_eq!(header(&response, "x-vasco-index"), Some("2"), "{query}");
        assert_eq!(header(&response, "x-vasco-source"), Some("object"));
    }
    for (query, code) in [
        ("wait=10s", "invalid_wait"),
        ("index=x", "invalid_index"),
        ("index=2&wait=soon", "invalid_wait"),
    ] {
        let response = h.get(&format!("/v1/services/api?{query}"));
        assert_eq!(response.status, 400, "{query}");
        assert_eq!(error_code(&response), code, "{query}");
    }
}

#[test]
fn the_isolate_cache_serves_repeated_reads_and_drops_on_writes() {
    let h = Harness::new(1_000);
    h.register("api", "1.0.0", "a", json!({"url": "h:1"}));
    // For two seconds after a change through this isolate, reads go to KV (the object's
    // coalesced snapshot write may still be pending).
    assert_eq!(h.get("/v1/services/api").kv_ops, 1);
    assert_eq!(h.get("/v1/services/api").kv_ops, 1);
    h.at(T0 + 2_000);
    assert_eq!(h.get("/v1/services/api").kv_ops, 1);
    let cached = h.get("/v1/services/api");
    assert_eq!(cached.kv_ops, 0);
    assert_eq!(ids(&cached), ["a"]);
    // Cache-Control: no-cache goes to KV.
    let fresh =
        ApiRequest::new(Method::Get, "/v1/services/api").with_header("Cache-Control", "no-cache");
    assert_eq!(h.send(fresh).kv_ops, 1);
    // A change through this isolate drops the cache; a renewal does not.
    h.register("api", "1.0.0", "a", json!({"url": "h:1"}));
    assert_eq!(h.get("/v1/services/api").kv_ops, 0);
    let write = h.register("api", "1.0.0", "b", json!({"url": "h:2"}));
    assert_eq!(write.kv_ops, 1);
    let after = h.get("/v1/services/api");
    assert_eq!(after.kv_ops, 1);
    assert_eq!(ids(&after), ["a", "b"]);
    // The entry ages out after the lifetime.
    h.at(T0 + 4_000);
    assert_eq!(h.get("/v1/services/api").kv_ops, 1);
    assert_eq!(h.get("/v1/services/api").kv_ops, 0);
    h.at(T0 + 5_000);
    assert_eq!(h.get("/v1/services/api").kv_ops, 1);
}

#[test]
fn delete_then_404() {
    let h = Harness::new(0);
    h.register("api", "1.0.0", "a", json!({"url": "h:1"}));
    h.at(T0 + 1_000);
    let path = "/v1/services/api/1.0.0/instances/a";
    let deleted = h.delete(path);
    assert_eq!(deleted.status, 204);
    assert_eq!(deleted.body, None);
    assert_eq!(deleted.kv_ops, 1, "the snapshot without it");
    assert_eq!(header(&deleted, "x-vasco-index"), Some("3"));
    assert_eq!(ids(&h.get("/v1/services/api")), Vec::<String>::new());
    let again = h.delete(path);
    assert_eq!(again.status, 404);
    assert_eq!(error_code(&again), "not_found");
    assert_eq!(again.kv_ops, 0);
}

#[test]
fn delete_of_a_lapsed_lease_is_404() {
    let h = Harness::new(0);
    h.register("api", "1.0.0", "a", json!({"url": "h:1", "ttl": 1}));
    h.at(T0 + 1_000);
    assert_eq!(h.delete("/v1/services/api/1.0.0/instances/a").status, 404);
}

#[test]
fn catalog_counts_live_instances() {
    let h = Harness::new(0);
    h.register("api", "1.0.0", "a", json!({"url": "h:1"}));
    h.register("api", "2.0.0", "b", json!({"url": "h:2"}));
    h.register("api", "2.0.0", "c", json!({"url": "h:3"}));
    h.register("auth", "1.0.0", "a", json!({"url": "h:4", "ttl": 1}));
    h.at(T0 + 2_000);
    h.put(
        "/v1/services/api/2.0.0/instances/c/status",
        json!({"status": "maintenance"}),
    );
    let counts = |passing: u32, maintenance: u32| json!({"passing": passing, "warning": 0, "critical": 0, "maintenance": maintenance});
    let expected = json!({"services": [{"name": "api", "versions": [
        {"version": "2.0.0", "instances": 2, "statuses": counts(1, 1)},
        {"version": "1.0.0", "instances": 1, "statuses": counts(1, 0)}
    ]}]});
    let response = h.get("/v1/services");
    assert_eq!(response.kv_ops, 1);
    assert_eq!(body(&response), expected);
    assert_eq!(body(&h.get("/v1/services?consistent")), expected);
    assert_eq!(h.get("/v1/services?versoin=1").status, 400);
}

#[test]
fn all_instances_in_one_answer() {
    let h = Harness::new(0);
    h.register("web", "1.0.0", "w", json!({"url": "h:5"}));
    h.register("api", "1.0.0", "a", json!({"url": "h:1"}));
    h.register("api", "2.0.0", "b", json!({"url": "h:2"}));
    h.register("auth", "1.0.0", "a", json!({"url": "h:4", "ttl": 1}));
    h.at(T0 + 2_000);
    let response = h.get("/v1/instances");
    assert_eq!(response.status, 200);
    assert_eq!(
        response.kv_ops, 3,
        "the catalog and one get per service with members"
    );
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
    h.at(T0 + 1_000);
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
fn a_websocket_lease_ends_when_its_socket_closes() {
    let h = Harness::new(0);
    let key = vasco_core::InstanceKey::parse("api", "1.0.0", "a").unwrap();
    let conn = h.objects.open_lease(&key).unwrap();
    h.register("api", "1.0.0", "a", json!({"url": "h:1", "ttl": 30}));
    // A reconnect takes the lease over; the old socket's late close changes nothing.
    let newer = h.objects.open_lease(&key).unwrap();
    assert!(!block_on(h.objects.close_lease(&key, conn)).unwrap());
    assert_eq!(ids(&h.get("/v1/services/api?consistent")), ["a"]);
    h.at(T0 + 1_000);
    assert!(block_on(h.objects.close_lease(&key, newer)).unwrap());
    assert_eq!(
        ids(&h.get("/v1/services/api?consistent")),
        Vec::<String>::new()
    );
    assert_eq!(ids(&h.get("/v1/services/api")), Vec::<String>::new());
    let last = h.objects.events.borrow().last().cloned().unwrap();
    assert_eq!(last.removed, vec![key]);
}

#[test]
fn a_lapsed_websocket_lease_closes_its_socket() {
    let h = Harness::new(0);
    let key = vasco_core::InstanceKey::parse("api", "1.0.0", "a").unwrap();
    let conn = h.objects.open_lease(&key).unwrap();
    h.register("api", "1.0.0", "a", json!({"url": "h:1", "ttl": 2}));
    // A half-open socket sends no renewals: the TTL still ends the lease.
    h.at(T0 + 2_000);
    assert_eq!(*h.objects.closed_leases.borrow(), vec![(key, conn)]);
}

#[test]
fn the_registry_wide_feed_sees_every_service() {
    let h = Harness::new(0);
    h.register("api", "1.0.0", "a", json!({"url": "h:1"}));
    h.register("web", "1.0.0", "w", json!({"url": "h:2", "ttl": 1}));
    h.at(T0 + 1_000);
    let services: Vec<String> = h
        .objects
        .catalog_events
        .borrow()
        .iter()
        .map(|e| format!("{}#{}", e.service, e.index))
        .collect();
    assert_eq!(services, ["api#2", "web#2", "web#3"]);
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
    assert!(h.kv().snapshot().is_empty());
}

#[test]
fn no_configured_token_is_503_for_writes_only() {
    let mut h = Harness::new(0);
    h.config.tokens = Tokens::default().with_public_reads(true);
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
    let before = h.kv().snapshot();
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
            json!({"url": "h:1", "tags": ["team,a"]}).to_string(),
            400,
            "invalid_tags",
        ),
        (
            good,
            json!({"url": "h:1", "tags": ["a "]}).to_string(),
            400,
            "invalid_tags",
        ),
        (
            "/v1/services/./1.0.0/instances/a",
            json!({"url": "h:1"}).to_string(),
            400,
            "invalid_name",
        ),
        (
            "/v1/services/../1.0.0/instances/a",
            json!({"url": "h:1"}).to_string(),
            400,
            "invalid_name",
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
        assert_eq!(h.kv().snapshot(), before, "{path} {text} changed the store");
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
    assert!(h.kv().snapshot().is_empty());
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
    assert!(h.kv().snapshot().is_empty());
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
    // WebSocket routes: a plain GET is 426, but a bad name is a 400 first.
    let plain = h.get("/v1/services/api/watch");
    assert_eq!(
        (plain.status, error_code(&plain).as_str()),
        (426, "upgrade_required")
    );
    let bad = h.get("/v1/services/API/watch");
    assert_eq!(
        (bad.status, error_code(&bad).as_str()),
        (400, "invalid_name")
    );
    let lease = h.send(
        ApiRequest::new(Method::Get, "/v1/services/api/one/instances/a/lease").with_bearer(TOKEN),
    );
    assert_eq!(error_code(&lease), "invalid_version");
}

#[test]
fn kv_failures_fail_default_reads_only_and_snapshots_catch_up() {
    let h = Harness::new(0);
    h.kv().down.set(true);
    for response in [
        h.get("/v1/services"),
        h.get("/v1/services/api"),
        h.get("/v1/instances"),
        h.resolve(json!({"dependencies": {"api": "*"}})),
    ] {
        assert_eq!(response.status, 503, "{:?}", response.body);
        assert_eq!(error_code(&response), "kv_unavailable");
    }
    // The object holds the truth: writes and fresh reads work while KV is down.
    let write = h.put("/v1/services/api/1.0.0/instances/a", json!({"url": "h:1"}));
    assert_eq!(write.status, 200);
    assert_eq!(ids(&h.get("/v1/services/api?consistent")), ["a"]);
    // KV comes back: the alarm retries the snapshot within a second.
    h.kv().down.set(false);
    assert_eq!(ids(&h.get("/v1/services/api")), Vec::<String>::new());
    h.at(T0 + 1_000);
    assert_eq!(ids(&h.get("/v1/services/api")), ["a"]);
    assert_eq!(h.delete("/v1/services/api/1.0.0/instances/b").status, 404);
}

#[test]
fn an_unreadable_snapshot_reads_as_empty_and_is_rewritten_at_the_next_change() {
    let h = Harness::new(0);
    h.kv().entries.borrow_mut().insert(
        "snap/api".into(),
        crate::kv::memory::Entry {
            value: "{garbage".into(),
            expiration_ttl: 60,
        },
    );
    let response = h.get("/v1/services/api");
    assert_eq!(response.status, 200);
    assert_eq!(ids(&response), Vec::<String>::new());
    h.register("api", "1.0.0", "a", json!({"url": "h:1"}));
    assert_eq!(ids(&h.get("/v1/services/api")), ["a"]);
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
                .replace("{id}", "a")
                .replace("{*id}", "a")
                .replace("{verb}", "pass")
                .replace("{*check_id}", "service:a")
                .replace("{service}", "api")
                .replace("{ip}", "10.0.0.1")
                .replace("{repo}", "r");
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
    let h = Harness::new(0);
    h.at(1_767_225_600_123);
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
                assert_standard_headers(&wire, h.now(), &what);
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
        // WebSocket routes answer a plain GET with 426 (or 401 first for a lease).
        let websocket = matches!(def.id, RouteId::Watch | RouteId::WatchAll | RouteId::Lease);
        if def.method == RouteMethod::Get && !websocket {
            // Reads are public in this harness; managing tokens needs the bootstrap token.
            let get = h.wire(ApiRequest::new(Method::Get, &path).with_bearer(TOKEN));
            let head = h.wire(ApiRequest::new(Method::Head, &path).with_bearer(TOKEN));
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
        assert_standard_headers(&wire, h.now(), name);
    }
    // The edge's own answers (body over the limit, unreadable URL) go through the same stamp.
    for err in [
        AppError::PayloadTooLarge {
            size: 1 << 30,
            limit: MAX_BODY_BYTES as u64,
        },
        AppError::invalid("url", "unparsable"),
    ] {
        let wire = ApiResponse::from_error(&err).into_wire(&Method::Put, h.now());
        assert_standard_headers(&wire, h.now(), &err.to_string());
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
        block_on(admit(req, &h.config, &h.objects, h.now(), length))
            .map(|_| ())
            .map_err(|e| e.status())
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
        block_on(admit(
            &head(Method::Post, "/v1/resolve"),
            &closed.config,
            &closed.objects,
            closed.now(),
            huge
        ))
        .map(|_| ())
        .map_err(|e| e.status()),
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

mod acl;
mod consul;
mod lyft;

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
            let before = h.kv().snapshot();
            let response = h.send(
                ApiRequest::new(Method::Put, "/v1/services/api/1.0.0/instances/a")
                    .with_bearer(TOKEN)
                    .with_body(body),
            );
            prop_assert!(response.status == 200 || (400..500).contains(&response.status));
            if response.status != 200 {
                prop_assert_eq!(h.kv().snapshot(), before);
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
            prop_assert_eq!(h.kv().snapshot().is_empty(), response.status != 200);
        }

        /// Whatever tag a registration accepts, a lookup by that tag finds the instance (a tag
        /// with a comma or an outer space used to register but never match `?tag=`).
        #[test]
        fn every_registered_tag_can_be_looked_up(tag in "[ -~\u{a0}-\u{ff}\u{3000}日]{0,70}") {
            let h = Harness::new(0);
            let response = h.put(
                "/v1/services/tagtest/1.0.0/instances/a",
                json!({"url": "h:1", "tags": [tag.clone()]}),
            );
            if response.status == 200 {
                let encoded: String = tag
                    .bytes()
                    .map(|b| if b.is_ascii_alphanumeric() { char::from(b).to_string() } else { format!("%{b:02X}") })
                    .collect();
                let found = h.get(&format!("/v1/services/tagtest?tag={encoded}"));
                prop_assert_eq!(found.status, 200);
                prop_assert_eq!(ids(&found), ["a"], "tag {:?}", tag);
            } else {
                prop_assert_eq!(response.status, 400);
                prop_assert!(h.kv().snapshot().is_empty());
            }
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
    use crate::kv::{Kv, KvFailure};
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

    /// A KV whose `get` answers with what was stored when it was called, but only after
    /// other requests have had a turn.
    struct SlowGetKv(MemoryKv);

    impl Kv for SlowGetKv {
        async fn get(&self, key: &str) -> Result<Option<String>, KvFailure> {
            let value = self.0.get(key).await;
            YieldOnce(false).await;
            value
        }
        async fn put(&self, key: &str, value: &str, ttl: u64) -> Result<(), KvFailure> {
            self.0.put(key, value, ttl).await
        }
    }

    /// A read in flight while a write lands must not cache its (older) snapshot.
    #[test]
    fn a_snapshot_that_predates_a_write_is_not_cached() {
        let objects = LocalObjects::new(SlowGetKv(MemoryKv::new()), T0);
        let cache = RefCell::new(SnapshotCache::new());
        let config = Config {
            tokens: Tokens::new(Some(TOKEN.into()), None).with_public_reads(true),
            cache_ms: 60_000,
            ..Config::default()
        };
        let lookup = ApiRequest::new(Method::Get, "/v1/services/api");
        let put = ApiRequest::new(Method::Put, "/v1/services/api/1.0.0/instances/a")
            .with_bearer(TOKEN)
            .with_body(json!({"url": "h:1"}).to_string());
        let (stale, written) = block_on(join(
            handle(&lookup, &config, objects.kv(), &cache, &objects, T0),
            handle(&put, &config, objects.kv(), &cache, &objects, T0),
        ));
        assert_eq!(written.status, 200);
        assert_eq!(
            ids(&stale),
            Vec::<String>::new(),
            "the lookup read before the write"
        );
        let after = block_on(handle(
            &lookup,
            &config,
            objects.kv(),
            &cache,
            &objects,
            T0 + 1,
        ));
        assert_eq!(after.kv_ops, 1, "the stale snapshot was not cached");
        assert_eq!(ids(&after), ["a"]);
    }
}

/// The edge across locations, modelled: Workers KV serves each location a copy up to 60 s old
/// (its read cache), which local `wrangler dev` (one location, instant KV) cannot show.
mod locations {
    use super::*;
    use crate::kv::{Kv, KvFailure};
    use core::cell::Cell;
    use std::collections::BTreeMap;
    use std::rc::Rc;

    /// KV's read cache per location, in ms (Cloudflare's default `cacheTtl`).
    const KV_CACHE_MS: u64 = 60_000;

    /// The central store: every value written, with when.
    #[derive(Default)]
    struct Central {
        values: RefCell<BTreeMap<String, String>>,
    }

    /// How the objects write: straight to the central store.
    #[derive(Clone)]
    struct Writer(Rc<Central>);

    impl Kv for Writer {
        async fn get(&self, key: &str) -> Result<Option<String>, KvFailure> {
            Ok(self.0.values.borrow().get(key).cloned())
        }
        async fn put(&self, key: &str, value: &str, _ttl: u64) -> Result<(), KvFailure> {
            self.0.values.borrow_mut().insert(key.into(), value.into());
            Ok(())
        }
    }

    /// How one location reads: a copy cached for up to [`KV_CACHE_MS`], "not found" included.
    struct Location {
        central: Rc<Central>,
        clock: Rc<Cell<u64>>,
        cache: RefCell<BTreeMap<String, (u64, Option<String>)>>,
    }

    impl Kv for Location {
        async fn get(&self, key: &str) -> Result<Option<String>, KvFailure> {
            let now = self.clock.get();
            if let Some((at, value)) = self.cache.borrow().get(key) {
                if now - at < KV_CACHE_MS {
                    return Ok(value.clone());
                }
            }
            let value = self.central.values.borrow().get(key).cloned();
            self.cache
                .borrow_mut()
                .insert(key.into(), (now, value.clone()));
            Ok(value)
        }
        async fn put(&self, _key: &str, _value: &str, _ttl: u64) -> Result<(), KvFailure> {
            Err(KvFailure("readers do not write".into()))
        }
    }

    #[test]
    fn a_heartbeating_instance_never_vanishes_elsewhere_and_leaves_within_the_bound() {
        let central = Rc::new(Central::default());
        let objects = LocalObjects::new(Writer(central.clone()), T0);
        let clock = Rc::new(Cell::new(T0));
        let config = Config {
            tokens: Tokens::new(Some(TOKEN.into()), None).with_public_reads(true),
            cache_ms: 1_000,
            ..Config::default()
        };
        // Three locations whose KV caches were filled at different phases.
        let locations: Vec<(Location, RefCell<SnapshotCache>)> = (0..3)
            .map(|_| {
                (
                    Location {
                        central: central.clone(),
                        clock: clock.clone(),
                        cache: RefCell::default(),
                    },
                    RefCell::new(SnapshotCache::new()),
                )
            })
            .collect();
        let at = |t: u64| {
            block_on(objects.advance_to(t));
            clock.set(t);
        };
        let send = |req: ApiRequest, location: usize| {
            let (kv, cache) = &locations[location];
            block_on(handle(&req, &config, kv, cache, &objects, clock.get()))
        };
        let beat = || {
            let req = ApiRequest::new(Method::Put, "/v1/services/api/1.0.0/instances/a")
                .with_bearer(TOKEN)
                .with_body(json!({"url": "h:1", "ttl": 10}).to_string());
            let response = block_on(handle(
                &req,
                &config,
                objects.kv(),
                &RefCell::new(SnapshotCache::new()),
                &objects,
                clock.get(),
            ));
            assert_eq!(response.status, 200);
        };
        let lookup = |location: usize| {
            ids(&send(
                ApiRequest::new(Method::Get, "/v1/services/api"),
                location,
            ))
        };
        let consistent = || {
            ids(&send(
                ApiRequest::new(Method::Get, "/v1/services/api?consistent"),
                0,
            ))
        };

        // Location 2 asks before the instance exists and caches "not found".
        for location in 0..3 {
            at(T0 + location as u64 * 20_000);
            assert!(lookup(location).is_empty());
        }
        at(T0 + 40_000);
        beat();
        let registered = clock.get();
        // An hour of beats every ttl/3 (3.3 s); every location reads every second.
        let hour = 3_600_000;
        let mut next_beat = registered + 3_333;
        let mut last_beat = registered;
        let mut t = registered;
        while t < registered + hour {
            t += 1_000;
            at(t);
            if t >= next_beat {
                beat();
                last_beat = t;
                next_beat += 3_333;
            }
            for location in 0..3 {
                let seen = lookup(location);
                if t >= registered + KV_CACHE_MS + 1_000 {
                    assert_eq!(
                        seen,
                        ["a"],
                        "location {location} lost a live instance at +{} ms",
                        t - registered
                    );
                }
            }
        }
        // It stops beating: its lease ends 10 s after the last beat.
        let lease_end = last_beat + 10_000;
        let mut left_consistent = None;
        let mut left_everywhere = None;
        let mut t = clock.get();
        while left_everywhere.is_none() && t < lease_end + 300_000 {
            t += 100;
            at(t);
            if left_consistent.is_none() && consistent().is_empty() {
                left_consistent = Some(t);
            }
            if (0..3).all(|location| lookup(location).is_empty()) {
                left_everywhere = Some(t);
            }
        }
        // Checked every 100 ms: present at every check before the lease end, gone at the first
        // check after it.
        let left_consistent = left_consistent.expect("consistent reads dropped it");
        assert!(
            (lease_end..lease_end + 100).contains(&left_consistent),
            "consistent reads dropped it {} ms after its lease end",
            left_consistent as i64 - lease_end as i64
        );
        let left_everywhere = left_everywhere.expect("every location dropped it");
        assert!(
            left_everywhere <= lease_end + 1_000 + KV_CACHE_MS,
            "remote default reads dropped it {} ms after its lease end",
            left_everywhere - lease_end
        );
        // The snapshot was refreshed during the hour, so the KV TTL never collected it.
        assert!(objects.requests.get() > 0);
    }
}

/// The cost model of the README, counted: what one instance-hour of HTTP renewals costs in
/// object requests and KV operations, and what reads cost.
#[test]
fn cost_of_an_instance_hour() {
    let h = Harness::new(0);
    let hour = 3_600_000;
    let period = vasco_core::heartbeat_period_ms(10_000);
    let mut beats = 0u64;
    let mut t = T0;
    while t < T0 + hour {
        h.at(t);
        h.register("api", "1.0.0", "a", json!({"url": "h:1", "ttl": 10}));
        beats += 1;
        t += period;
    }
    h.at(T0 + hour);
    let requests = h.objects.requests.get();
    let snapshot_writes = h.kv().puts_of("snap/api");
    let catalog_writes = h.kv().puts_of("catalog");
    assert_eq!(
        beats, 1_081,
        "a beat every ttl/3 = 3,333 ms, the first included"
    );
    // Every renewal is one object request; the alarm fires only to refresh the snapshot
    // (twice an hour), since each renewal moves it past the lease end.
    assert_eq!(requests, beats + 2);
    assert_eq!(
        snapshot_writes,
        1 + 2,
        "the first write and two 30-minute refreshes"
    );
    assert_eq!(
        catalog_writes,
        1 + 2,
        "the catalog: one change, two refreshes"
    );
    assert_eq!(h.kv().gets.get(), 0, "writes never read KV");
    // A default read is one KV get; a consistent one an object request and no KV.
    let gets = h.kv().gets.get();
    h.get("/v1/services/api");
    assert_eq!(h.kv().gets.get(), gets + 1);
    let before = h.objects.requests.get();
    assert_eq!(h.get("/v1/services/api?consistent").kv_ops, 0);
    assert_eq!(h.objects.requests.get(), before + 1);
}
