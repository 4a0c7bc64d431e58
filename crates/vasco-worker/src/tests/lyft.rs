//! lyft/discovery's API through the whole pipeline, natively, on the injected clock: the
//! original's test cases that need time (hosts seen long ago are left out) and the round trips
//! between this dialect and Vasco's own API.

use serde_json::{json, Value};
use vasco_core::wire::lyft::python_datetime;

use super::{body, header, ids, Harness, T0, TOKEN};
use crate::app::Config;
use crate::auth::Tokens;
use crate::http::{ApiRequest, ApiResponse, Method};
use crate::router::RouteId;
use crate::routes::lyft::ERROR_HEADER;

const TAGS: &str = r#"{"az":"foo", "instance_id":"bar", "region":"baz"}"#;

/// `application/x-www-form-urlencoded` text of `pairs`.
fn form(pairs: &[(&str, &str)]) -> String {
    let encode = |text: &str| -> String {
        text.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect()
    };
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

fn valid(ip: &str) -> Vec<(&str, &str)> {
    vec![
        ("ip", ip),
        ("service_repo_name", "bar"),
        ("port", "1000"),
        ("revision", "bjkc7y8cebyyuide2uincbyu"),
        ("tags", TAGS),
    ]
}

fn post_req(path: &str, pairs: &[(&str, &str)]) -> ApiRequest {
    ApiRequest::new(Method::Post, path)
        .with_bearer(TOKEN)
        .with_header("content-type", "application/x-www-form-urlencoded")
        .with_body(form(pairs))
}

impl Harness {
    fn lyft_post(&self, service: &str, pairs: &[(&str, &str)]) -> ApiResponse {
        self.send(post_req(&format!("/v1/registration/{service}"), pairs))
    }

    fn lyft_register(&self, service: &str, ip: &str) -> ApiResponse {
        let response = self.lyft_post(service, &valid(ip));
        assert_eq!(
            (response.status, response.body.as_deref()),
            (200, Some("{}")),
            "{:?}",
            response.headers
        );
        response
    }

    fn lyft_weight(&self, path: &str, weight: &str) -> ApiResponse {
        self.send(post_req(path, &[("load_balancing_weight", weight)]))
    }

    fn hosts(&self, service: &str) -> Vec<Value> {
        let response = self.get(&format!("/v1/registration/{service}"));
        assert_eq!(response.status, 200, "{:?}", response.body);
        body(&response)["hosts"].as_array().unwrap().clone()
    }
}

fn host_ips(hosts: &[Value]) -> Vec<&str> {
    hosts
        .iter()
        .map(|h| h["ip_address"].as_str().unwrap())
        .collect()
}

#[test]
fn a_registered_host_is_listed_as_posted() {
    let h = Harness::new(0);
    let empty = body(&h.get("/v1/registration/myservice"));
    assert_eq!(
        empty,
        json!({"service": "myservice", "env": "development", "hosts": []})
    );
    h.lyft_register("myservice", "10.10.10.10");
    assert_eq!(
        h.hosts("myservice"),
        [json!({
            "service": "myservice", "ip_address": "10.10.10.10", "service_repo_name": "bar",
            "port": 1000, "revision": "bjkc7y8cebyyuide2uincbyu",
            "last_check_in": python_datetime(T0),
            "tags": {"az": "foo", "instance_id": "bar", "region": "baz"},
        })]
    );
}

/// A lyft host is an instance `myservice@0.0.0/<ip>` to Vasco's own API (and so to the
/// dashboard, which reads it), and a natively registered instance is a lyft host.
#[test]
fn hosts_are_shared_with_the_native_api_both_ways() {
    let h = Harness::new(0);
    h.lyft_register("myservice", "10.10.10.10");
    let native = body(&h.get("/v1/services/myservice?consistent"));
    let instance = &native["instances"][0];
    assert_eq!(instance["version"], "0.0.0");
    assert_eq!(instance["id"], "10.10.10.10");
    assert_eq!(instance["url"], "10.10.10.10:1000");
    assert_eq!(instance["zone"], "foo");
    assert_eq!(instance["ttl_ms"], 600_000);
    assert_eq!(
        instance["meta"],
        json!({"revision": "bjkc7y8cebyyuide2uincbyu", "lyft.service_repo_name": "bar",
               "lyft.instance_id": "bar", "lyft.region": "baz"})
    );
    // Default reads see it once the (coalesced) snapshots are written.
    h.at(T0 + 2_000);
    let all = body(&h.get("/v1/instances"));
    assert_eq!(all["instances"][0]["id"], "10.10.10.10");
    assert_eq!(ids(&h.get("/v1/services/myservice")), ["10.10.10.10"]);

    h.register(
        "myservice",
        "2.1.0",
        "a1",
        json!({"url": "11.11.11.11:11", "zone": "eu-1", "weight": 3, "tags": ["canary"]}),
    );
    h.register(
        "myservice",
        "2.1.0",
        "named",
        json!({"url": "api.internal:80"}),
    );
    let hosts = h.hosts("myservice");
    assert_eq!(host_ips(&hosts), ["11.11.11.11", "10.10.10.10"]);
    assert_eq!(
        hosts[0],
        json!({
            "service": "myservice", "ip_address": "11.11.11.11", "service_repo_name": null,
            "port": 11, "revision": "2.1.0", "last_check_in": python_datetime(T0 + 2_000),
            "tags": {"az": "eu-1", "canary": true, "load_balancing_weight": 3, "instance_id": "a1"},
        }),
        "a host with a name in its url is not listed: Envoy's v1 SDS takes IPv4 addresses"
    );
}

/// A re-POST is the heartbeat: the lease moves, `registered_at` stays, the tags merge, and a
/// beat with an unchanged record costs no KV operation.
#[test]
fn a_re_post_is_the_heartbeat() {
    let h = Harness::new(0);
    h.lyft_register("myservice", "10.10.10.10");
    h.at(T0 + 100_000);
    let beat = h.lyft_register("myservice", "10.10.10.10");
    assert_eq!(beat.kv_ops, 0, "an unchanged beat is a renewal");
    assert_eq!(
        h.hosts("myservice")[0]["last_check_in"],
        python_datetime(T0 + 100_000)
    );
    let native = body(&h.get("/v1/services/myservice?consistent"));
    assert_eq!(native["instances"][0]["registered_at"], T0);
    assert_eq!(native["instances"][0]["expires_at"], T0 + 100_000 + 600_000);
    let mut pairs = valid("10.10.10.10");
    pairs.retain(|(k, _)| *k != "tags");
    pairs.push((
        "tags",
        r#"{"az":"foo","instance_id":"bar","region":"baz","canary":true,"team":"maps"}"#,
    ));
    assert_eq!(h.lyft_post("myservice", &pairs).status, 200);
    h.lyft_register("myservice", "10.10.10.10");
    assert_eq!(
        h.hosts("myservice")[0]["tags"],
        json!({"az": "foo", "instance_id": "bar", "region": "baz", "canary": true, "team": "maps"}),
        "tags a beat does not name stay"
    );
}

/// The original's expiry cases on the registry's clock: a host seen a year ago, or 11 minutes
/// ago at the 600 s TTL, is not listed; one seen 9 minutes ago is, whatever the time zone
/// (the registry's clock is ms since the epoch, `last_check_in` is UTC).
#[test]
fn hosts_silent_longer_than_the_host_ttl_are_left_out() {
    let h = Harness::new(0);
    h.lyft_register("myservice", "10.10.10.10");
    h.at(T0 + 9 * 60_000);
    assert_eq!(host_ips(&h.hosts("myservice")), ["10.10.10.10"]);
    h.lyft_register("myservice", "10.10.10.11");
    h.at(T0 + 11 * 60_000);
    assert_eq!(
        host_ips(&h.hosts("myservice")),
        ["10.10.10.11"],
        "11 minutes silent is expired at the 600 s TTL"
    );
    // A year later, with a fresh host beside it.
    h.at(T0 + 365 * 86_400_000);
    h.lyft_register("myservice", "10.10.10.12");
    assert_eq!(host_ips(&h.hosts("myservice")), ["10.10.10.12"]);
    assert_eq!(
        ids(&h.get("/v1/services/myservice?consistent")),
        ["10.10.10.12"],
        "gone from every API, not only hidden"
    );
}

#[test]
fn the_host_ttl_and_env_are_configurable() {
    let mut h = Harness::new(0);
    h.config = Config::from_env(|name| match name {
        "VASCO_TOKEN" => Some(TOKEN.into()),
        "VASCO_LYFT_HOST_TTL_S" => Some("30".into()),
        "VASCO_LYFT_ENV" => Some("production".into()),
        _ => None,
    });
    h.lyft_register("myservice", "10.10.10.10");
    assert_eq!(
        body(&h.get("/v1/registration/myservice"))["env"],
        "production"
    );
    h.at(T0 + 29_999);
    assert_eq!(h.hosts("myservice").len(), 1);
    h.at(T0 + 30_000);
    assert!(h.hosts("myservice").is_empty());
}

/// Cases 21 to 27 of the original: weights set per host and per service, kept across
/// re-registration, refused in the original's words.
#[test]
fn load_balancing_weights() {
    let h = Harness::new(0);
    h.lyft_register("myservice", "10.10.10.10");
    let set = h.lyft_weight("/v1/loadbalancing/myservice/10.10.10.10", "10");
    assert_eq!((set.status, set.body.as_deref()), (204, None));
    assert_eq!(h.hosts("myservice")[0]["tags"]["load_balancing_weight"], 10);
    h.lyft_register("myservice", "10.10.10.10");
    assert_eq!(
        h.hosts("myservice")[0]["tags"]["load_balancing_weight"],
        10,
        "the weight survives re-registration"
    );
    let native = body(&h.get("/v1/services/myservice?consistent"));
    assert_eq!(native["instances"][0]["weight"], 10);
    let update = h.lyft_weight("/v1/loadbalancing/myservice/10.10.10.10", "50");
    assert_eq!(update.status, 204);
    h.lyft_register("myservice", "10.10.10.11");
    // A natively registered instance keeps its own weight: its registrations own it.
    h.register(
        "myservice",
        "1.0.0",
        "n",
        json!({"url": "10.9.9.9:1", "weight": 7}),
    );
    let all = h.lyft_weight("/v1/loadbalancing/myservice", "50");
    assert_eq!(all.status, 204);
    let weights: Vec<(String, Value)> = h
        .hosts("myservice")
        .iter()
        .map(|h| {
            (
                h["ip_address"].as_str().unwrap().to_string(),
                h["tags"]["load_balancing_weight"].clone(),
            )
        })
        .collect();
    assert_eq!(
        weights,
        [
            ("10.9.9.9".into(), json!(7)),
            ("10.10.10.10".into(), json!(50)),
            ("10.10.10.11".into(), json!(50)),
        ]
    );
    let unknown = h.lyft_weight("/v1/loadbalancing/myservice/10.1.1.1", "10");
    assert_eq!(unknown.status, 404);
    assert_eq!(body(&unknown), json!({"error": "Host not found"}));
    for (weight, message) in [
        (
            "not_an_integer",
            "Invalid load_balancing_weight. Supply an integer between 1 and 100.",
        ),
        (
            "9001",
            "Invalid load_balancing_weight. Supply an integer between 1 and 100.",
        ),
        ("", "Required parameter 'weight' is missing."),
    ] {
        let refused = h.lyft_weight("/v1/loadbalancing/myservice/10.10.10.10", weight);
        assert_eq!(refused.status, 400, "{weight}");
        assert_eq!(body(&refused), json!({ "error": message }), "{weight}");
    }
    let json_body = h.send(
        ApiRequest::new(Method::Post, "/v1/loadbalancing/myservice/10.10.10.10")
            .with_bearer(TOKEN)
            .with_header("content-type", "application/json")
            .with_body(r#"{"load_balancing_weight": 20}"#),
    );
    assert_eq!(json_body.status, 204);
    assert_eq!(h.hosts("myservice")[1]["tags"]["load_balancing_weight"], 20);
}

/// Cases 17 to 20 and 30: deletion, and two services sharing one ip.
#[test]
fn deletion_and_shared_ips() {
    let h = Harness::new(0);
    for (path, what) in [
        ("/v1/registration/foo/1.1.1.1", "unknown host"),
        ("/v1/registration/foo", "no ip"),
        ("/v1/registration/foo/", "no ip, trailing slash"),
        ("/v1/registration/foo/bar", "not an ip"),
    ] {
        let response = h.send(ApiRequest::new(Method::Delete, path).with_bearer(TOKEN));
        assert_eq!(
            (response.status, response.body.as_deref()),
            (400, Some("{}")),
            "{what}"
        );
        assert!(header(&response, ERROR_HEADER).is_some(), "{what}");
    }
    h.lyft_register("foo", "10.10.10.10");
    h.lyft_register("baz", "10.10.10.10");
    let repo = body(&h.get("/v1/registration/repo/bar"));
    assert_eq!(repo["service_repo_name"], "bar");
    let services: Vec<&str> = repo["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["service"].as_str().unwrap())
        .collect();
    assert_eq!(services, ["baz", "foo"]);
    let deleted = h.send(
        ApiRequest::new(Method::Delete, "/v1/registration/foo/10.10.10.10").with_bearer(TOKEN),
    );
    assert_eq!((deleted.status, deleted.body.as_deref()), (200, Some("{}")));
    assert!(h.hosts("foo").is_empty());
    assert_eq!(host_ips(&h.hosts("baz")), ["10.10.10.10"]);
    let repo = body(&h.get("/v1/registration/repo/bar"));
    assert_eq!(repo["hosts"].as_array().unwrap().len(), 1);
    assert_eq!(
        body(&h.get("/v1/registration/repo/none"))["hosts"],
        json!([])
    );
}

/// Refusals answer the original's bodies, say why in a header, and change nothing.
#[test]
fn refusals_change_nothing() {
    let h = Harness::new(0);
    let zeros: Vec<(&str, &str)> = ["ip", "port", "revision", "tags", "service_repo_name"]
        .iter()
        .map(|k| (*k, "0"))
        .collect();
    let cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
        (zeros, "{}"),
        (
            {
                let mut p = valid("10.10.10.10");
                p[4] = ("tags", "{nope");
                p
            },
            r#"{"error":"Invalid json supplied in tags"}"#,
        ),
        (
            {
                let mut p = valid("10.10.10.10");
                p[2] = ("port", "http");
                p
            },
            "{}",
        ),
    ];
    for (pairs, answer) in cases {
        let response = h.lyft_post("myservice", &pairs);
        assert_eq!(response.status, 400, "{pairs:?}");
        assert_eq!(response.body.as_deref(), Some(answer), "{pairs:?}");
        assert!(!header(&response, ERROR_HEADER).unwrap().is_empty());
        assert_eq!(response.kv_ops, 0);
    }
    let bad_name = h.lyft_post("MyService", &valid("10.10.10.10"));
    assert_eq!(bad_name.status, 400);
    assert!(body(&bad_name)["error"].as_str().unwrap().contains("name"));
    let bad_name = h.get("/v1/registration/My%20Service");
    assert_eq!(bad_name.status, 400);
    assert!(h.kv().snapshot().is_empty(), "nothing was written");
    assert!(h.hosts("myservice").is_empty());
}

#[test]
fn auto_ip_reads_the_connecting_address_then_the_last_private_hop() {
    let h = Harness::new(0);
    let mut pairs = valid("");
    pairs.retain(|(k, _)| *k != "ip");
    pairs.push(("auto_ip", "true"));
    let post = |headers: &[(&str, &str)]| {
        let mut req = post_req("/v1/registration/myservice", &pairs);
        for (name, value) in headers {
            req = req.with_header(name, *value);
        }
        h.send(req)
    };
    let ok = post(&[
        ("cf-connecting-ip", "127.0.0.1"),
        ("x-forwarded-for", "192.168.0.0, 192.168.216.186"),
    ]);
    assert_eq!(ok.status, 200);
    let refused = post(&[("x-forwarded-for", "192.169.216.186")]);
    assert_eq!((refused.status, refused.body.as_deref()), (400, Some("{}")));
    assert!(header(&refused, ERROR_HEADER).unwrap().contains("auto_ip"));
    let edge = post(&[
        ("cf-connecting-ip", "203.0.113.7"),
        ("x-forwarded-for", "192.168.1.1"),
    ]);
    assert_eq!(edge.status, 200);
    assert_eq!(
        host_ips(&h.hosts("myservice")),
        ["192.168.216.186", "203.0.113.7"]
    );
}

/// Writes need the token, as everywhere; these routes also take it as `?token=`, the native
/// ones do not.
#[test]
fn the_token_as_a_header_or_a_query_parameter() {
    let mut h = Harness::new(0);
    let unauthorized = h.send(
        ApiRequest::new(Method::Post, "/v1/registration/myservice")
            .with_body(form(&valid("10.0.0.1"))),
    );
    assert_eq!(unauthorized.status, 401);
    let path = format!("/v1/registration/myservice?token={TOKEN}");
    let with_query =
        h.send(ApiRequest::new(Method::Post, &path).with_body(form(&valid("10.0.0.1"))));
    assert_eq!(with_query.status, 200);
    let wrong = h.send(
        ApiRequest::new(Method::Post, "/v1/registration/myservice?token=nope")
            .with_body(form(&valid("10.0.0.1"))),
    );
    assert_eq!(wrong.status, 401);
    let native = h.send(
        ApiRequest::new(
            Method::Put,
            &format!("/v1/services/api/1.0.0/instances/a?token={TOKEN}"),
        )
        .with_body(json!({"url": "h:1"}).to_string()),
    );
    assert_eq!(native.status, 401, "native routes take the header only");
    h.config.tokens = Tokens::new(Some(TOKEN.into()), Some("reader".into()));
    assert_eq!(h.get("/v1/registration/myservice").status, 401);
    assert_eq!(h.get("/v1/registration/myservice?token=reader").status, 200);
    let header_wins =
        ApiRequest::new(Method::Get, "/v1/registration/x?token=reader").with_bearer("other");
    assert_eq!(
        header_wins
            .authorization(RouteId::LyftHosts.query_token())
            .as_deref(),
        Some("Bearer other")
    );
}

#[test]
fn json_bodies_register_too() {
    let h = Harness::new(0);
    let response = h.send(
        ApiRequest::new(Method::Post, "/v1/registration/myservice")
            .with_bearer(TOKEN)
            .with_header("content-type", "application/json")
            .with_body(
                json!({"ip": "10.0.0.5", "port": 8080, "revision": "abc",
                       "tags": {"az": "a", "instance_id": "i", "region": "r", "canary": true}})
                .to_string(),
            ),
    );
    assert_eq!(response.status, 200, "{:?}", response.headers);
    let host = &h.hosts("myservice")[0];
    assert_eq!(
        (host["port"].clone(), host["tags"]["canary"].clone()),
        (json!(8080), json!(true))
    );
    let multipart = h.send(
        ApiRequest::new(Method::Post, "/v1/registration/myservice")
            .with_bearer(TOKEN)
            .with_header("content-type", "multipart/form-data; boundary=x")
            .with_body("--x--"),
    );
    assert_eq!(multipart.status, 400);
    assert!(body(&multipart)["error"]
        .as_str()
        .unwrap()
        .contains("multipart"));
}

#[test]
fn healthcheck_is_plain_ok() {
    let h = Harness::new(0);
    h.kv().down.set(true);
    let wire = h.wire(ApiRequest::new(Method::Get, "/healthcheck"));
    assert_eq!(wire.status, 200);
    assert_eq!(wire.body.as_deref(), Some(&b"OK"[..]));
    assert_eq!(
        wire.header("content-type"),
        Some("text/plain; charset=utf-8")
    );
    assert_eq!(
        wire.headers
            .iter()
            .filter(|(k, _)| *k == "content-type")
            .count(),
        1
    );
}
