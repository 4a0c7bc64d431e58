//! Property tests of the model: semver matching, leases and the KV codec.
#![cfg(not(target_arch = "wasm32"))]

use proptest::prelude::*;
use vasco_core::{
    codec, registry::live_matching, Instance, InstanceId, InstanceKey, InstanceSpec, Query,
    ServiceName, Version, VersionReq,
};

fn triple() -> impl Strategy<Value = (u64, u64, u64)> {
    (0u64..5, 0u64..5, 0u64..5)
}

fn version((major, minor, patch): (u64, u64, u64)) -> Version {
    Version::parse(&format!("{major}.{minor}.{patch}")).unwrap()
}

/// npm's caret rule for release versions, written out independently of the implementation.
fn caret_allows(base: (u64, u64, u64), v: (u64, u64, u64)) -> bool {
    if v < base {
        return false;
    }
    match base {
        (0, 0, patch) => v == (0, 0, patch),
        (0, minor, _) => v.0 == 0 && v.1 == minor,
        (major, _, _) => v.0 == major,
    }
}

proptest! {
    #[test]
    fn versions_round_trip_through_text(t in triple(), v_prefix in any::<bool>()) {
        let text = format!("{}{}.{}.{}", if v_prefix { "v" } else { "" }, t.0, t.1, t.2);
        let parsed = Version::parse(&text).unwrap();
        prop_assert_eq!(Version::parse(&parsed.to_string()).unwrap(), parsed);
    }

    #[test]
    fn exact_strings_match_only_themselves(a in triple(), b in triple()) {
        let req = VersionReq::parse(&format!("{}.{}.{}", a.0, a.1, a.2)).unwrap();
        prop_assert_eq!(req.matches(&version(b)), a == b);
    }

    #[test]
    fn caret_follows_npm(base in triple(), v in triple()) {
        let req = VersionReq::parse(&format!("^{}.{}.{}", base.0, base.1, base.2)).unwrap();
        prop_assert_eq!(req.matches(&version(v)), caret_allows(base, v));
    }

    #[test]
    fn space_separated_bounds_intersect(low in triple(), high in triple(), v in triple()) {
        let req = VersionReq::parse(&format!(">={}.{}.{} <{}.{}.{}", low.0, low.1, low.2, high.0, high.1, high.2)).unwrap();
        prop_assert_eq!(req.matches(&version(v)), low <= v && v < high);
    }

    #[test]
    fn alternatives_are_a_union(a in triple(), b in triple(), v in triple()) {
        let either = VersionReq::parse(&format!("{}.{}.{} || {}.{}.{}", a.0, a.1, a.2, b.0, b.1, b.2)).unwrap();
        prop_assert_eq!(either.matches(&version(v)), v == a || v == b);
    }

    #[test]
    fn leases_hold_until_exactly_ttl(now in 0u64..vasco_core::instance::NO_EXPIRY - 8_000_000, ttl_s in 1u64..=3600, probe in 0u64..4_000_000) {
        let key = InstanceKey {
            service: ServiceName::parse("api").unwrap(),
            version: version((1, 0, 0)),
            id: InstanceId::parse("a").unwrap(),
        };
        let spec = InstanceSpec { ttl_ms: ttl_s * 1000, ..InstanceSpec::new("h:1").unwrap() };
        let instance = Instance::lease(key, spec, now, None);
        prop_assert_eq!(instance.is_live(now + probe), probe < ttl_s * 1000);
        let seen = live_matching([&instance], &Query::any(), now + probe).len();
        prop_assert_eq!(seen == 1, probe < ttl_s * 1000);
    }

    #[test]
    fn records_round_trip_through_kv(
        name in "[a-z][a-z0-9._-]{0,62}",
        t in triple(),
        id in "[A-Za-z0-9._~-]{1,128}",
        host in "[a-z0-9-]{1,40}",
        port in 1u16..,
        tags in prop::collection::vec("[a-z0-9]{1,16}", 0..8),
        meta in prop::collection::btree_map("[a-z]{1,12}", "[ -~]{0,40}", 0..6),
        weight in 1u32..=1000,
        zone in prop::option::of("[a-z0-9-]{1,12}"),
        now in 0u64..1u64 << 50,
        ttl_s in 1u64..=3600,
    ) {
        prop_assume!(id != "." && id != "..");
        let key = InstanceKey {
            service: ServiceName::parse(&name).unwrap(),
            version: version(t),
            id: InstanceId::parse(&id).unwrap(),
        };
        let spec = InstanceSpec { url: format!("{host}:{port}"), ttl_ms: ttl_s * 1000, tags, meta, weight, zone, health: Default::default() };
        prop_assert!(spec.validate().is_ok());
        let instance = Instance::lease(key.clone(), spec, now, None);
        let kv_key = codec::instance_key(&key);
        prop_assert_eq!(codec::parse_instance_key(&kv_key).unwrap(), key);
        match codec::encode_record(&instance) {
            Ok(metadata) => {
                prop_assert!(metadata.len() <= codec::METADATA_LIMIT);
                prop_assert_eq!(codec::decode_record(&kv_key, &metadata).unwrap(), instance);
            }
            Err(err) => prop_assert_eq!(err.code(), "too_large"),
        }
    }
}
