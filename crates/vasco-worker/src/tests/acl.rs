//! Access control through the whole pipeline: the scope matrix of every route in the route
//! table against every kind of caller (so a new route cannot be left open), token creation,
//! listing and revocation, rotation without a lost lease, and secrets that appear nowhere but
//! in the creation answer.

use serde_json::{json, Value};

use super::{block_on, body, Harness, TOKEN};
use crate::app::upgrade_target;
use crate::auth::Tokens;
use crate::http::{ApiRequest, ApiResponse, Method};
use crate::router::{Access, Dialect, RouteDef, RouteId, RouteMethod};
use crate::ROUTES;

/// Creates a token with `policies` using the bootstrap token; answers its text.
fn issue(h: &Harness, policies: Value) -> String {
    let response = h.send(
        ApiRequest::new(Method::Post, "/v1/acl/tokens")
            .with_bearer(TOKEN)
            .with_body(json!({"description": "test", "policies": policies}).to_string()),
    );
    assert_eq!(response.status, 201, "{:?}", response.body);
    body(&response)["secret"].as_str().unwrap().to_string()
}

fn closed() -> Harness {
    let mut h = Harness::new(0);
    h.config.tokens = Tokens::new(Some(TOKEN.into()), None);
    h
}

/// The concrete request for `def`, on service `api`, with a body the route accepts.
fn request(def: &RouteDef) -> ApiRequest {
    let path = def
        .pattern
        .replace("{name}", "api")
        .replace("{service}", "api")
        .replace("{version}", "1.0.0")
        .replace("{*id}", "a")
        .replace("{id}", "a")
        .replace("{verb}", "pass")
        .replace("{*check_id}", "service:a")
        .replace("{ip}", "10.0.0.1")
        .replace("{repo}", "r");
    let path = match def.id {
        RouteId::ConsulMaintenance => format!("{path}?enable=true"),
        _ => path,
    };
    let method = def.method.to_method();
    let req = ApiRequest::new(method, &path);
    let form = |text: &str| {
        ApiRequest::new(def.method.to_method(), &path)
            .with_header("content-type", "application/x-www-form-urlencoded")
            .with_body(text.to_string())
    };
    match def.id {
        RouteId::Register => req.with_body(json!({"url": "h:1"}).to_string()),
        RouteId::SetStatus => req.with_body(json!({"status": "passing"}).to_string()),
        RouteId::Resolve => req.with_body(json!({"dependencies": {"api": "*"}}).to_string()),
        RouteId::ConsulRegister => req.with_body(
            json!({"Name": "api", "ID": "a", "Address": "10.0.0.1", "Port": 80}).to_string(),
        ),
        RouteId::AclCreate => {
            req.with_body(json!({"policies": [{"read": ["*"]}]}).to_string())
        }
        RouteId::LyftRegister => form(
            "ip=10.0.0.1&port=80&revision=r&tags=%7B%22az%22%3A%22a%22%2C%22instance_id%22%3A%22i%22%2C%22region%22%3A%22r%22%7D",
        ),
        RouteId::LyftWeight => form("load_balancing_weight=10"),
        _ => req,
    }
}

/// Registers `api@1.0.0/a` natively and through Consul (ID `a`), with the bootstrap token, so
/// that every route has something to touch.
fn seed(h: &Harness) {
    h.register(
        "api",
        "1.0.0",
        "a",
        json!({"url": "10.0.0.1:80", "ttl": 60}),
    );
    let consul = h.send(
        ApiRequest::new(Method::Put, "/v1/agent/service/register")
            .with_bearer(TOKEN)
            .with_body(
                json!({"Name": "api", "ID": "a", "Address": "10.0.0.1", "Port": 80,
                       "Check": {"TTL": "30s"}})
                .to_string(),
            ),
    );
    assert_eq!(consul.status, 200);
}

/// What a route touches: one service (`api`), every service, or no registry data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Touches {
    Service,
    Everything,
    Nothing,
}

fn touches(def: &RouteDef) -> Touches {
    if def.id.registry_wide() {
        Touches::Everything
    } else if def.pattern.contains("{name}")
        || def.pattern.contains("{service}")
        || matches!(
            def.id,
            RouteId::Resolve
                | RouteId::ConsulRegister
                | RouteId::ConsulDeregister
                | RouteId::ConsulMaintenance
                | RouteId::ConsulCheck
        )
    {
        Touches::Service
    } else {
        Touches::Nothing
    }
}

/// The callers of the matrix, with their tokens (created in `h`).
fn callers(h: &Harness) -> Vec<(&'static str, Option<String>)> {
    vec![
        ("no token", None),
        ("wrong token", Some("not-a-token".into())),
        (
            "unknown scoped token",
            Some("vt.0011223344556677.00ff".into()),
        ),
        ("read api", Some(issue(h, json!([{"read": ["api"]}])))),
        ("write auth", Some(issue(h, json!([{"write": ["auth"]}])))),
        (
            "write api",
            Some(issue(h, json!([{"write": ["api", "x-*"]}]))),
        ),
        ("manage", Some(issue(h, json!([{"manage": true}])))),
        ("bootstrap", Some(TOKEN.into())),
    ]
}

/// Whether `caller` may use `def` (reads closed): `Ok` if allowed, else the status refused.
fn expected(def: &RouteDef, caller: &str) -> Result<(), u16> {
    let unauthorized = if def.id.dialect() == Dialect::Consul {
        403
    } else {
        401
    };
    if def.access == Access::Open {
        return Ok(());
    }
    match caller {
        "no token" | "wrong token" | "unknown scoped token" => return Err(unauthorized),
        "manage" | "bootstrap" => return Ok(()),
        _ => {}
    }
    let may_read_api = caller != "write auth";
    let may_write_api = caller == "write api";
    match (def.access, touches(def)) {
        (Access::Manage, _) => Err(403),
        (_, Touches::Everything) => Err(403),
        (Access::Read, Touches::Nothing) => Ok(()),
        (Access::Read, Touches::Service) if may_read_api => Ok(()),
        (Access::Write, Touches::Service) if may_write_api => Ok(()),
        (Access::Write, Touches::Nothing) if caller != "read api" => Ok(()),
        _ => Err(403),
    }
}

fn status_of(h: &Harness, def: &RouteDef, token: Option<&str>) -> u16 {
    let mut req = request(def);
    if let Some(token) = token {
        req = req.with_bearer(token);
    }
    if matches!(def.id, RouteId::Watch | RouteId::WatchAll | RouteId::Lease) {
        return match block_on(upgrade_target(&req, &h.config, &h.objects, h.now())) {
            Ok(_) => 101,
            Err(err) => err.status(),
        };
    }
    h.send(req).status
}

#[test]
fn every_route_refuses_every_caller_without_the_scope() {
    let h = closed();
    let callers = callers(&h);
    let mut checked = 0;
    for def in ROUTES {
        for (caller, token) in &callers {
            seed(&h);
            let status = status_of(&h, def, token.as_deref());
            let what = format!("{:?} {} as {caller}: {status}", def.method, def.pattern);
            match expected(def, caller) {
                Ok(()) => assert!(!matches!(status, 401 | 403), "{what}"),
                Err(refused) => assert_eq!(status, refused, "{what}"),
            }
            checked += 1;
        }
    }
    assert_eq!(checked, ROUTES.len() * callers.len());
}

#[test]
fn public_reads_open_reads_only() {
    let mut h = closed();
    h.config.tokens = h.config.tokens.clone().with_public_reads(true);
    seed(&h);
    for def in ROUTES {
        let status = status_of(&h, def, None);
        let what = format!("{:?} {}: {status}", def.method, def.pattern);
        match def.access {
            Access::Open | Access::Read => assert!(!matches!(status, 401 | 403), "{what}"),
            Access::Write | Access::Manage => assert!(matches!(status, 401 | 403), "{what}"),
        }
    }
}

#[test]
fn a_token_scoped_to_api_cannot_touch_auth() {
    let h = closed();
    let api = issue(&h, json!([{"write": ["api"]}]));
    h.register("auth", "1.0.0", "a", json!({"url": "h:1"}));
    let put = |path: &str, body: Value| {
        h.send(
            ApiRequest::new(Method::Put, path)
                .with_bearer(&api)
                .with_body(body.to_string()),
        )
    };
    assert_eq!(
        put("/v1/services/auth/1.0.0/instances/b", json!({"url": "h:2"})).status,
        403
    );
    assert_eq!(
        put(
            "/v1/services/auth/1.0.0/instances/a/status",
            json!({"status": "maintenance"})
        )
        .status,
        403
    );
    let delete = h.send(
        ApiRequest::new(Method::Delete, "/v1/services/auth/1.0.0/instances/a").with_bearer(&api),
    );
    assert_eq!(delete.status, 403);
    let read = h.send(ApiRequest::new(Method::Get, "/v1/services/auth").with_bearer(&api));
    assert_eq!(read.status, 403);
    let ok = put("/v1/services/api/1.0.0/instances/a", json!({"url": "h:1"}));
    assert_eq!(ok.status, 200);
    // The refused requests changed nothing.
    let auth = h.send(ApiRequest::new(Method::Get, "/v1/services/auth?all").with_bearer(TOKEN));
    assert_eq!(body(&auth)["instances"].as_array().unwrap().len(), 1);
    assert_eq!(body(&auth)["instances"][0]["status"], "passing");
}

#[test]
fn rotation_keeps_every_lease_and_revocation_holds_at_once() {
    let h = closed();
    let a = issue(&h, json!([{"write": ["api"]}]));
    let renew = |token: &str, id: &str| -> ApiResponse {
        h.send(
            ApiRequest::new(
                Method::Put,
                &format!("/v1/services/api/1.0.0/instances/{id}"),
            )
            .with_bearer(token)
            .with_body(json!({"url": "h:1", "ttl": 3}).to_string()),
        )
    };
    let fleet = ["a1", "a2", "a3"];
    for id in fleet {
        assert_eq!(renew(&a, id).status, 200);
    }
    // B is created while the fleet runs on A; the fleet switches one by one; A is revoked.
    let b = issue(&h, json!([{"write": ["api"]}]));
    let mut t = super::T0;
    for (i, id) in fleet.iter().enumerate() {
        t += 1_000;
        h.at(t);
        for (j, other) in fleet.iter().enumerate() {
            let token = if j <= i { &b } else { &a };
            assert_eq!(renew(token, other).status, 200, "{other} at step {i}");
        }
        let _ = id;
    }
    let listed = body(&h.send(ApiRequest::new(Method::Get, "/v1/acl/tokens").with_bearer(TOKEN)));
    let a_id = a.split('.').nth(1).unwrap();
    assert!(listed["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .any(|t| t["id"] == a_id));
    let revoke = h.send(
        ApiRequest::new(Method::Delete, &format!("/v1/acl/tokens/{a_id}")).with_bearer(TOKEN),
    );
    assert_eq!(revoke.status, 204);
    assert_eq!(
        renew(&a, "a1").status,
        401,
        "refused on the very next request"
    );
    h.at(t + 1_000);
    for id in fleet {
        assert_eq!(renew(&b, id).status, 200);
    }
    let live = h.send(ApiRequest::new(Method::Get, "/v1/services/api?consistent").with_bearer(&b));
    assert_eq!(
        body(&live)["instances"].as_array().unwrap().len(),
        3,
        "no lease lost"
    );
}

#[test]
fn secrets_appear_only_in_the_creation_answer() {
    let h = closed();
    let created = h.send(
        ApiRequest::new(Method::Post, "/v1/acl/tokens")
            .with_bearer(TOKEN)
            .with_body(json!({"description": "d", "policies": [{"read": ["*"]}]}).to_string()),
    );
    let text = body(&created)["secret"].as_str().unwrap().to_string();
    let secret = text.rsplit('.').next().unwrap().to_string();
    assert!(text.starts_with("vt."));
    // The token works, is listed without its secret, and is in no KV value.
    let read = h.send(ApiRequest::new(Method::Get, "/v1/services").with_bearer(&text));
    assert_eq!(read.status, 200);
    let listed = h.send(ApiRequest::new(Method::Get, "/v1/acl/tokens").with_bearer(TOKEN));
    assert!(!listed.body.as_deref().unwrap().contains(&secret));
    assert!(listed.body.as_deref().unwrap().contains("\"last_used_at\""));
    for (key, entry) in h.kv().snapshot() {
        assert!(!entry.value.contains(&secret), "{key}");
    }
    // Bad requests are 400s naming the field; tokens may not be managed without manage.
    for (bad, code) in [
        (json!({"policies": []}), "invalid_policies"),
        (
            json!({"policies": [{"write": ["API"]}]}),
            "invalid_policies",
        ),
        (json!({"description": "x"}), "invalid_policies"),
        (
            json!({"policies": [{"read": ["*"]}], "expires_at": 5}),
            "invalid_expires_at",
        ),
    ] {
        let r = h.send(
            ApiRequest::new(Method::Post, "/v1/acl/tokens")
                .with_bearer(TOKEN)
                .with_body(bad.to_string()),
        );
        assert_eq!(
            (r.status, body(&r)["error"]["code"].clone()),
            (400, json!(code)),
            "{bad}"
        );
    }
    let as_reader = h.send(
        ApiRequest::new(Method::Post, "/v1/acl/tokens")
            .with_bearer(&text)
            .with_body(json!({"policies": [{"manage": true}]}).to_string()),
    );
    assert_eq!(
        as_reader.status, 403,
        "a read token cannot mint a manage token"
    );
    // An expired token is refused.
    let expiring = h.send(
        ApiRequest::new(Method::Post, "/v1/acl/tokens")
            .with_bearer(TOKEN)
            .with_body(
                json!({"policies": [{"read": ["*"]}], "expires_at": h.now() + 1_000}).to_string(),
            ),
    );
    let expiring = body(&expiring)["secret"].as_str().unwrap().to_string();
    assert_eq!(
        h.send(ApiRequest::new(Method::Get, "/v1/services").with_bearer(&expiring))
            .status,
        200
    );
    h.at(h.now() + 1_000);
    assert_eq!(
        h.send(ApiRequest::new(Method::Get, "/v1/services").with_bearer(&expiring))
            .status,
        401
    );
    let _ = RouteMethod::Get;
}
