//! The wasm surface as JavaScript sees it, run in Node by wasm-bindgen-test-runner:
//!
//! ```sh
//! CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=wasm-bindgen-test-runner \
//!   cargo test -p vasco-wasm --target wasm32-unknown-unknown
//! ```
#![cfg(target_arch = "wasm32")]

use js_sys::{Array, Reflect, JSON};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen_test::wasm_bindgen_test;

use vasco_wasm::{
    key_movement, normalize_version, strategies, version_matches, Client, Registration, Registry,
    Selector,
};

fn json(text: &str) -> JsValue {
    JSON::parse(text).expect("test JSON")
}

fn prop(value: &JsValue, key: &str) -> JsValue {
    Reflect::get(value, &JsValue::from_str(key)).unwrap()
}

fn text(value: &JsValue, key: &str) -> String {
    prop(value, key).as_string().unwrap_or_default()
}

fn memory_client() -> Client {
    Client::new(json(r#"{"url": "memory:", "seed": 7}"#), None, None, None).unwrap()
}

#[wasm_bindgen_test]
fn errors_are_js_errors_with_codes_and_the_original_messages() {
    let err = Registration::from_package(
        JsValue::UNDEFINED,
        json(r#"{"name":"a","version":"1.0.0"}"#),
    )
    .err()
    .map(JsValue::from)
    .unwrap();
    assert!(err.is_instance_of::<js_sys::Error>());
    assert_eq!(text(&err, "message"), "Need url of service");
    assert_eq!(text(&err, "code"), "need_url");
    assert_eq!(text(&err, "name"), "VascoError");

    let err = Registration::from_package(JsValue::from_str("h:1"), json(r#"{"name":"a"}"#))
        .err()
        .map(JsValue::from)
        .unwrap();
    // The original prefix, then which field (as 2018 code matching the prefix expects).
    assert!(text(&err, "message").starts_with("Invalid package: \"version\" is missing"));

    let err = Registration::from_options(json(r#"{"name":"a","version":"x","url":"h:1"}"#))
        .err()
        .map(JsValue::from)
        .unwrap();
    assert_eq!(text(&err, "code"), "invalid_version");
    assert_eq!(text(&err, "field"), "version");

    let err = Client::new(
        json(r#"{"url": "redis://localhost:6379"}"#),
        None,
        None,
        None,
    )
    .err()
    .map(JsValue::from)
    .unwrap();
    assert_eq!(text(&err, "code"), "invalid_registry_url");
    let err = Client::new(json(r#"{"url": "http://127.0.0.1:1"}"#), None, None, None)
        .err()
        .map(JsValue::from)
        .unwrap();
    assert_eq!(
        text(&err, "code"),
        "invalid_argument",
        "http needs a send function"
    );
}

#[wasm_bindgen_test]
async fn a_memory_client_registers_resolves_and_picks() {
    let client = memory_client();
    assert!(client.memory());
    assert_eq!(client.url(), "memory:");
    for (version, url) in [("1.0.0", "h:1"), ("2.0.0", "h:2"), ("2.1.0", "h:3")] {
        let reg = Registration::from_options(json(&format!(
            r#"{{"name":"wasm-api","version":"{version}","url":"{url}","ttl":60}}"#
        )))
        .unwrap();
        let instance = JsFuture::from(client.register(&reg)).await.unwrap();
        assert_eq!(text(&instance, "url"), url);
    }
    let urls = JsFuture::from(client.find_dependencies(
        json(r#"{"wasm-api": "^2", "wasm-auth": "1"}"#),
        json(r#"{"wasm-auth": "localhost:3000"}"#),
    ))
    .await
    .unwrap();
    assert_eq!(text(&urls, "wasm-api"), "h:3");
    assert_eq!(text(&urls, "wasm-auth"), "localhost:3000");

    let missing =
        JsFuture::from(client.find_dependencies(json(r#"{"wasm-nope": "1"}"#), JsValue::UNDEFINED))
            .await
            .unwrap_err();
    assert_eq!(
        text(&missing, "message"),
        "No url for: wasm-nope (wanted wasm-nope 1: no live instance)"
    );
    assert_eq!(Array::from(&prop(&missing, "missing")).length(), 1);

    let slot = client
        .slot(
            "wasm-api",
            Some("<2.1".into()),
            None,
            None,
            JsValue::UNDEFINED,
        )
        .unwrap();
    let list = Array::from(&JsFuture::from(client.instances(slot)).await.unwrap());
    assert_eq!(list.length(), 2);
    assert_eq!(text(&list.get(0), "version"), "2.0.0", "newest first");
    let maglev = client.strategy("consistent-hash").unwrap();
    let first = client
        .pick(slot, maglev, Some("user-1".into()), false)
        .unwrap();
    for _ in 0..10 {
        let again = client
            .pick(slot, maglev, Some("user-1".into()), false)
            .unwrap();
        assert_eq!(text(&again, "url"), text(&first, "url"));
    }
    assert!(client.strategy("fastest").is_err());
    assert!(
        client.pick(slot, 200, None, false).is_err(),
        "an unknown code is refused"
    );
    assert!(client.heartbeat_delay(3_000.0) <= 1_000.0);
    client.close();
    assert!(JsFuture::from(client.catalog()).await.is_err());
}

#[wasm_bindgen_test]
fn the_registry_runs_on_an_injected_clock() {
    let mut registry = Registry::new();
    let t0 = 1_700_000_000_000.0;
    registry
        .register("sim", "1.0.0", "a", json(r#"{"url":"h:1","ttl":2}"#), t0)
        .unwrap();
    registry
        .register("sim", "2.0.0", "b", json(r#"{"url":"h:2","ttl":5}"#), t0)
        .unwrap();
    let live = |registry: &Registry, at: f64| {
        registry
            .instances("sim", None, JsValue::UNDEFINED, at)
            .unwrap()
            .length()
    };
    assert_eq!(live(&registry, t0 + 1_999.0), 2);
    assert_eq!(live(&registry, t0 + 2_000.0), 1);
    assert!(registry
        .heartbeat("sim", "1.0.0", "a", t0 + 2_500.0)
        .is_err());
    registry
        .heartbeat("sim", "2.0.0", "b", t0 + 4_000.0)
        .unwrap();
    assert_eq!(live(&registry, t0 + 8_999.0), 1);
    assert_eq!(registry.expire(t0 + 9_000.0), 2);
    let changes = registry.take_changes();
    assert_eq!(text(&changes.get(0), "type"), "insert");
    assert_eq!(text(&changes.get(changes.length() - 1), "type"), "remove");
    let catalog = registry.catalog(t0);
    assert_eq!(Array::from(&prop(&catalog, "services")).length(), 0);
    let resolution = registry
        .resolve(json(r#"{"sim":"1"}"#), JsValue::UNDEFINED, t0)
        .unwrap();
    assert_eq!(Array::from(&prop(&resolution, "missing")).length(), 1);
    let err = registry
        .register("Bad Name", "1.0.0", "a", json(r#"{"url":"h:1"}"#), t0)
        .err()
        .map(JsValue::from)
        .unwrap();
    assert_eq!(text(&err, "code"), "invalid_name");
}

#[wasm_bindgen_test]
fn selectors_count_and_keys_move_little() {
    let names: Vec<String> = strategies();
    assert_eq!(names.len(), 6);
    let candidates = json(r#"[{"id":"a","weight":1},{"id":"b","weight":3},"c"]"#);
    for strategy in &names {
        let mut selector =
            Selector::new(strategy, candidates.clone(), json(r#"{"seed": 1}"#)).unwrap();
        let counts = selector.pick_many(5_000, None).to_vec();
        assert_eq!(counts.iter().sum::<u32>(), 5_000, "{strategy}");
        assert!(counts.iter().all(|&c| c > 0), "{strategy}: {counts:?}");
    }
    let mut weighted = Selector::new("weighted", candidates.clone(), JsValue::UNDEFINED).unwrap();
    let counts = weighted.pick_many(5_000, None).to_vec();
    assert_eq!(counts, vec![1_000, 3_000, 1_000]);
    let mut ring = Selector::new("ring", candidates.clone(), JsValue::UNDEFINED).unwrap();
    let picked = ring.pick(Some("k".into()));
    assert!(picked >= 0);
    assert_eq!(ring.pick(Some("k".into())), picked);
    assert!(ring.key_shares().is_some());
    assert!(Selector::new("fastest", candidates, JsValue::UNDEFINED).is_err());

    let six = json(r#"["a","b","c","d","e","f"]"#);
    let moved = key_movement("ring", six, 2, 10_000).unwrap();
    assert_eq!(prop(&moved, "elsewhere").as_f64(), Some(0.0));
    assert!(prop(&moved, "fromRemoved").as_f64().unwrap() > 1_000.0);

    assert!(version_matches("^2", "2.9.1").unwrap());
    assert!(!version_matches("2.0.0", "2.0.1").unwrap());
    assert!(version_matches("nonsense!", "1.0.0").is_err());
    assert_eq!(normalize_version("v1.2.3").unwrap(), "1.2.3");
}

#[wasm_bindgen_test]
fn page_helpers_are_the_cores_rules() {
    use vasco_wasm::{service_name, Backoff};
    // The resolve box's name check: whatever the API accepts, scoped npm names included.
    assert_eq!(service_name("@acme/api").unwrap(), "acme.api");
    assert_eq!(service_name("a_2eb").unwrap(), "a_2eb");
    for bad in ["Api", "", "@acme", "@/api", "@acme/api/x"] {
        assert!(service_name(bad).is_err(), "{bad:?} is refused");
    }
    // The live view's retry delays: full jitter under the core's doubling ceiling.
    let mut backoff = Backoff::new(json(r#"{"baseMs":1000,"maxMs":30000,"seed":7}"#)).unwrap();
    for attempt in 0..8 {
        let ceiling = backoff.ceiling(attempt);
        assert_eq!(ceiling, (1000.0 * 2f64.powi(attempt as i32)).min(30_000.0));
        let delay = backoff.delay(attempt);
        assert!((0.0..=ceiling).contains(&delay), "{attempt}: {delay}");
    }
    assert!(Backoff::new(json(r#"{"baseMs":10,"maxMs":5}"#)).is_err());
}

#[wasm_bindgen_test]
async fn evicted_slots_are_reported_and_refused() {
    // The `evicted` callback collects handles on a global the test reads back.
    let collect =
        js_sys::Function::new_with_args("slot", "(globalThis.__vascoEvicted ??= []).push(slot)");
    let client = Client::new(
        json(r#"{"url": "memory:", "seed": 7, "cacheSize": 2}"#),
        None,
        None,
        Some(collect),
    )
    .unwrap();
    let slot = |range: &str| {
        client
            .slot(
                "wasm-evict",
                Some(range.into()),
                None,
                None,
                JsValue::UNDEFINED,
            )
            .unwrap()
    };
    let held = slot("^1");
    client.hold_slot(held).unwrap();
    let first = slot("^2");
    let handles: Vec<f64> = ["^3", "^4", "^5"].iter().map(|r| slot(r)).collect();
    assert_eq!(client.cached_questions(), 2, "the held slot and the newest");
    let evicted = Array::from(&prop(&js_sys::global().into(), "__vascoEvicted"));
    let evicted: Vec<f64> = evicted.iter().map(|h| h.as_f64().unwrap()).collect();
    assert_eq!(evicted, vec![first, handles[0], handles[1]]);
    // A dead handle is refused with its own code, and a question asked again is a new slot.
    let refused = JsFuture::from(client.instances(first)).await.unwrap_err();
    assert_eq!(text(&refused, "code"), "evicted");
    assert!(client.hold_slot(first).is_err());
    assert_ne!(slot("^2"), first);
    // Released, the held slot goes like any other.
    client.release_slot(held);
    slot("^6");
    assert!(JsFuture::from(client.instances(held)).await.is_err());
}
