//! Consul's API through the whole pipeline, natively, on the injected clock: TTL checks as
//! leases (critical when no pass comes, removed after DeregisterCriticalServiceAfter), the
//! index clients block on, maintenance, the answers' shapes, and errors as Consul's clients
//! expect them (plain text, 403 for a bad token, never a 400 for a tolerated parameter).

use serde_json::{json, Value};

use super::{body, header, Harness, T0, TOKEN};
use crate::http::{ApiRequest, ApiResponse, Method};

fn consul_put(h: &Harness, path: &str, body: &str) -> ApiResponse {
    h.send(
        ApiRequest::new(Method::Put, path)
            .with_header("X-Consul-Token", TOKEN)
            .with_body(body),
    )
}

fn register(h: &Harness, body: Value) -> ApiResponse {
    let response = consul_put(h, "/v1/agent/service/register", &body.to_string());
    assert_eq!(response.status, 200, "{:?}", response.body);
    response
}

fn order_service(id: &str, ttl: &str) -> Value {
    json!({
        "Name": "order-service", "ID": id, "Address": "10.0.0.5", "Port": 3000,
        "Tags": ["v1", "api"], "Meta": {"team": "orders"},
        "Check": {"TTL": ttl, "DeregisterCriticalServiceAfter": "1m"}
    })
}

fn index(response: &ApiResponse) -> u64 {
    header(response, "x-consul-index").unwrap().parse().unwrap()
}

fn statuses(response: &ApiResponse) -> Vec<String> {
    body(response)
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["Checks"][0]["Status"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn a_ttl_check_is_the_lease() {
    let h = Harness::new(0);
    register(&h, order_service("order-1", "10s"));
    // A TTL check starts critical (Consul's default), so `passing` leaves it out.
    let all = h.get("/v1/health/service/order-service");
    assert_eq!(statuses(&all), ["critical"]);
    let first = index(&all);
    assert!(first >= 1);
    assert_eq!(header(&all, "x-consul-knownleader"), Some("true"));
    assert_eq!(
        body(&h.get("/v1/health/service/order-service?passing=1")),
        json!([])
    );
    // A pass makes it passing and moves the index.
    let pass = consul_put(&h, "/v1/agent/check/pass/service%3Aorder-1?note=ok", "");
    assert_eq!((pass.status, pass.body.clone()), (200, None));
    let passing = h.get("/v1/health/service/order-service?passing");
    assert_eq!(statuses(&passing), ["passing"]);
    assert!(index(&passing) > first);
    let entry = &body(&passing)[0];
    assert_eq!(entry["Service"]["Service"], "order-service");
    assert_eq!(entry["Service"]["Address"], "10.0.0.5");
    assert_eq!(entry["Checks"][0]["Output"], "ok");
    // Passes every few seconds keep it passing, without moving the index.
    for s in [5, 10, 15] {
        h.at(T0 + s * 1_000);
        consul_put(&h, "/v1/agent/check/pass/service:order-1", "");
    }
    let steady = h.get("/v1/health/service/order-service");
    assert_eq!(index(&steady), index(&passing));
    // No pass for the TTL: critical, by the object's alarm alone.
    h.at(T0 + 25_001);
    let lapsed = h.get("/v1/health/service/order-service?index=0");
    assert_eq!(statuses(&lapsed), ["critical"]);
    assert_eq!(body(&lapsed)[0]["Checks"][0]["Output"], "TTL expired");
    assert!(index(&lapsed) > index(&steady));
    // Still listed by the catalog, until DeregisterCriticalServiceAfter has passed.
    let catalog = h.get("/v1/catalog/service/order-service");
    assert_eq!(body(&catalog)[0]["ServiceID"], "order-1");
    h.at(T0 + 15_000 + 10_000 + 60_000 + 1);
    assert_eq!(
        body(&h.get("/v1/catalog/service/order-service?index=0")),
        json!([])
    );
    // Its ID is still known to the agent: a deregistration is a plain 200.
    assert_eq!(
        consul_put(&h, "/v1/agent/service/deregister/order-1", "").status,
        200
    );
}

#[test]
fn re_registration_keeps_the_check_status_and_a_registration_without_check_stays() {
    let h = Harness::new(0);
    register(&h, order_service("order-1", "10s"));
    consul_put(&h, "/v1/agent/check/pass/service:order-1", "");
    register(&h, order_service("order-1", "10s"));
    assert_eq!(
        statuses(&h.get("/v1/health/service/order-service?index=0")),
        ["passing"]
    );
    // No check: passing, and held until deregistered (no lease runs out).
    register(
        &h,
        json!({"Name": "db", "Address": "10.0.0.9", "Port": 5432}),
    );
    h.at(T0 + 7_200_000);
    let db = h.get("/v1/health/service/db?passing&index=0");
    assert_eq!(body(&db)[0]["Service"]["ID"], "db");
    assert_eq!(
        consul_put(&h, "/v1/agent/service/deregister/db", "").status,
        200
    );
    let again = consul_put(&h, "/v1/agent/service/deregister/db", "");
    assert_eq!(again.status, 404);
    assert_eq!(again.content_type, crate::http::TEXT);
    assert_eq!(body(&h.get("/v1/health/service/db?index=0")), json!([]));
}

#[test]
fn maintenance_takes_an_instance_out_and_back() {
    let h = Harness::new(0);
    register(&h, order_service("order-1", "30s"));
    consul_put(&h, "/v1/agent/check/pass/service:order-1", "");
    let on = consul_put(
        &h,
        "/v1/agent/service/maintenance/order-1?enable=true&reason=deploy",
        "",
    );
    assert_eq!(on.status, 200);
    let entry = &body(&h.get("/v1/health/service/order-service?index=0"))[0];
    assert_eq!(
        entry["Checks"][1]["CheckID"],
        "_service_maintenance:order-1"
    );
    assert_eq!(entry["Checks"][1]["Output"], "deploy");
    assert_eq!(
        body(&h.get("/v1/health/service/order-service?passing&index=0")),
        json!([])
    );
    // The native API sees the same registry.
    let native = body(&h.get("/v1/services/order-service?all&consistent"));
    assert_eq!(native["instances"][0]["status"], "maintenance");
    consul_put(&h, "/v1/agent/service/maintenance/order-1?enable=false", "");
    assert_eq!(
        statuses(&h.get("/v1/health/service/order-service?passing&index=0")),
        ["passing"]
    );
    assert_eq!(
        consul_put(&h, "/v1/agent/service/maintenance/order-1", "").status,
        400
    );
}

#[test]
fn catalog_services_lists_tags_and_its_index_moves() {
    let h = Harness::new(0);
    register(&h, order_service("order-1", "10s"));
    register(
        &h,
        json!({"Name": "web", "Address": "10.0.0.1", "Port": 80, "Tags": ["b", "a"]}),
    );
    let first = h.get("/v1/catalog/services?index=0");
    assert_eq!(
        body(&first),
        json!({"order-service": ["api", "v1"], "web": ["a", "b"]})
    );
    consul_put(&h, "/v1/agent/service/deregister/web", "");
    let after = h.get("/v1/catalog/services?index=0");
    assert_eq!(body(&after), json!({"order-service": ["api", "v1"]}));
    assert!(index(&after) > index(&first));
    let services = body(&h.get("/v1/agent/services"));
    assert_eq!(services["order-1"]["Port"], 3000);
    let checks = body(&h.get("/v1/agent/checks"));
    assert_eq!(checks["service:order-1"]["Status"], "critical");
}

#[test]
fn errors_answer_as_consul_clients_expect() {
    let h = Harness::new(0);
    // A bad token is 403 plain text (any of the three ways to send one).
    for request in [
        ApiRequest::new(Method::Put, "/v1/agent/service/register")
            .with_header("X-Consul-Token", "nope"),
        ApiRequest::new(Method::Put, "/v1/agent/service/register?token=nope"),
        ApiRequest::new(Method::Put, "/v1/agent/service/register").with_bearer("nope"),
        ApiRequest::new(Method::Put, "/v1/agent/service/register"),
    ] {
        let response = h.send(request.with_body(order_service("x", "10s").to_string()));
        assert_eq!(
            (response.status, response.content_type),
            (403, crate::http::TEXT)
        );
    }
    let ok = h.send(
        ApiRequest::new(
            Method::Put,
            &format!("/v1/agent/service/register?token={TOKEN}"),
        )
        .with_body(order_service("x", "10s").to_string()),
    );
    assert_eq!(ok.status, 200);
    // Checks the edge cannot run: a 400 that says what to do instead; nothing stored.
    let http = consul_put(
        &h,
        "/v1/agent/service/register",
        &json!({"Name": "web", "Address": "10.0.0.1", "Port": 80,
                "Check": {"HTTP": "http://10.0.0.1/health", "Interval": "10s"}})
        .to_string(),
    );
    assert_eq!(http.status, 400);
    assert!(http.body.as_deref().unwrap().contains("vasco agent"));
    assert_eq!(body(&h.get("/v1/health/service/web?index=0")), json!([]));
    // Unknown check and verb.
    assert_eq!(consul_put(&h, "/v1/agent/check/pass/nope", "").status, 404);
    assert_eq!(
        consul_put(&h, "/v1/agent/check/explode/service:x", "").status,
        404
    );
    // Tolerated parameters, and a name Vasco cannot hold: an empty answer, never a 400.
    let tolerant =
        h.get("/v1/health/service/Order_Service?dc=dc1&stale=&near=_agent&filter=x&node-meta=a:b");
    assert_eq!((tolerant.status, body(&tolerant)), (200, json!([])));
    assert_eq!(h.get("/v1/health/service/no%20such?passing").status, 200);
    assert_eq!(h.get("/v1/health/service/x?index=abc").status, 400);
    // A wrong method on a Consul path answers in text too.
    let wrong = h.send(ApiRequest::new(Method::Get, "/v1/agent/service/register"));
    assert_eq!((wrong.status, wrong.content_type), (405, crate::http::TEXT));
    assert_eq!(
        body(&h.get("/v1/agent/self"))["Config"]["Datacenter"],
        "dc1"
    );
    assert_eq!(body(&h.get("/v1/status/leader")), json!("127.0.0.1:8300"));
}
