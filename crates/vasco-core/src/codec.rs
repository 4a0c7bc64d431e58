//! The Workers KV layout.
//!
//! One key per instance, `svc/<name>/<version>/<id>`, so one `list({prefix: "svc/<name>/"})`
//! returns a service's every instance. The whole record rides in the key's metadata (at most
//! [`METADATA_LIMIT`] bytes), so the read path needs no per-instance `get`. Name, version and
//! id live in the key and are not repeated in the record.
//!
//! Liveness is logical: `expires_at` is in the record and readers filter on it, so a 3 s lease
//! means 3 s even though KV's own expiry cannot go below 60 s. KV's `expirationTtl`
//! ([`gc_ttl_seconds`]) only collects garbage.

use alloc::{collections::BTreeMap, format, string::String, vec::Vec};

use serde::{Deserialize, Serialize};

use crate::health::Health;

use crate::{
    error::{Error, Result},
    instance::{Instance, InstanceKey},
    name::{InstanceId, ServiceName},
    version::Version,
};

/// KV's limit on a key's metadata, in bytes of JSON.
pub const METADATA_LIMIT: usize = 1024;
/// KV's limit on a key's length, in bytes.
pub const KEY_LIMIT: usize = 512;
/// The prefix under which every instance key lives.
pub const ALL_SERVICES_PREFIX: &str = "svc/";
/// KV refuses an `expirationTtl` below this many seconds.
pub const KV_MIN_TTL_S: u64 = 60;
/// Extra time a record outlives its lease in KV, so a reader whose clock runs a little behind
/// the writer's still finds it while it is logically live.
pub const GC_MARGIN_S: u64 = 60;
/// The record format written today; readers refuse others instead of guessing.
const FORMAT: u8 = 1;

/// The key prefix of every instance of `name`.
pub fn service_prefix(name: &ServiceName) -> String {
    format!("{ALL_SERVICES_PREFIX}{name}/")
}

/// The key of one instance.
pub fn instance_key(key: &InstanceKey) -> String {
    format!(
        "{ALL_SERVICES_PREFIX}{}/{}/{}",
        key.service, key.version, key.id
    )
}

/// Parses a key written by [`instance_key`].
pub fn parse_instance_key(key: &str) -> Result<InstanceKey> {
    let corrupt = |reason: &str| Error::Corrupt {
        key: key.into(),
        reason: reason.into(),
    };
    let rest = key
        .strip_prefix(ALL_SERVICES_PREFIX)
        .ok_or_else(|| corrupt("not an instance key"))?;
    let mut parts = rest.split('/');
    let (Some(service), Some(version), Some(id), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(corrupt("expected svc/<name>/<version>/<id>"));
    };
    Ok(InstanceKey {
        service: ServiceName::parse(service).map_err(|_| corrupt("bad service name"))?,
        version: Version::parse(version).map_err(|_| corrupt("bad version"))?,
        id: InstanceId::parse(id).map_err(|_| corrupt("bad id"))?,
    })
}

/// The compact record stored as KV metadata. Short field names keep large records under the
/// 1024-byte limit.
#[derive(Serialize, Deserialize)]
struct Record {
    #[serde(rename = "f")]
    format: u8,
    #[serde(rename = "u")]
    url: String,
    #[serde(rename = "t", default, skip_serializing_if = "Vec::is_empty")]
    tags: Vec<String>,
    #[serde(rename = "m", default, skip_serializing_if = "BTreeMap::is_empty")]
    meta: BTreeMap<String, String>,
    #[serde(rename = "w")]
    weight: u32,
    #[serde(rename = "z", default, skip_serializing_if = "Option::is_none")]
    zone: Option<String>,
    #[serde(rename = "r")]
    registered_at: u64,
    #[serde(rename = "e")]
    expires_at: u64,
    #[serde(rename = "l")]
    ttl_ms: u64,
    #[serde(rename = "h", default, skip_serializing_if = "Health::is_default")]
    health: Health,
}

/// Encodes `instance` as KV metadata; refuses records over [`METADATA_LIMIT`] bytes.
pub fn encode_record(instance: &Instance) -> Result<String> {
    let record = Record {
        format: FORMAT,
        url: instance.url.clone(),
        tags: instance.tags.clone(),
        meta: instance.meta.clone(),
        weight: instance.weight,
        zone: instance.zone.clone(),
        registered_at: instance.registered_at,
        expires_at: instance.expires_at,
        ttl_ms: instance.ttl_ms,
        health: instance.health.clone(),
    };
    let json = serde_json::to_string(&record).map_err(|e| Error::Corrupt {
        key: instance_key(&instance.key()),
        reason: format!("{e}"),
    })?;
    if json.len() > METADATA_LIMIT {
        return Err(Error::TooLarge {
            what: "instance record",
            size: json.len(),
            limit: METADATA_LIMIT,
        });
    }
    Ok(json)
}

/// Decodes the record stored under `key` from its metadata JSON.
pub fn decode_record(key: &str, metadata: &str) -> Result<Instance> {
    let record: Record = serde_json::from_str(metadata).map_err(|e| Error::Corrupt {
        key: key.into(),
        reason: format!("{e}"),
    })?;
    decode(key, record)
}

/// Like [`decode_record`], for metadata the KV binding already parsed.
pub fn decode_record_value(key: &str, metadata: serde_json::Value) -> Result<Instance> {
    let record: Record = serde_json::from_value(metadata).map_err(|e| Error::Corrupt {
        key: key.into(),
        reason: format!("{e}"),
    })?;
    decode(key, record)
}

fn decode(key: &str, record: Record) -> Result<Instance> {
    if record.format != FORMAT {
        return Err(Error::Corrupt {
            key: key.into(),
            reason: format!("record format {} is not {FORMAT}", record.format),
        });
    }
    let parsed = parse_instance_key(key)?;
    Ok(Instance {
        service: parsed.service,
        version: parsed.version,
        id: parsed.id,
        url: record.url,
        tags: record.tags,
        meta: record.meta,
        weight: record.weight,
        zone: record.zone,
        registered_at: record.registered_at,
        expires_at: record.expires_at,
        ttl_ms: record.ttl_ms,
        health: record.health,
    })
}

/// The `expirationTtl` for a record with a lease of `ttl_ms`: the lease rounded up to whole
/// seconds plus [`GC_MARGIN_S`], and never under KV's minimum of 60 s.
pub fn gc_ttl_seconds(ttl_ms: u64) -> u64 {
    (ttl_ms.div_ceil(1000) + GC_MARGIN_S).max(KV_MIN_TTL_S)
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;
    use crate::instance::InstanceSpec;

    fn instance() -> Instance {
        let key = InstanceKey {
            service: ServiceName::parse("api").unwrap(),
            version: Version::parse("2.1.0-rc.1+b7").unwrap(),
            id: InstanceId::parse("host-1_3000").unwrap(),
        };
        let mut spec = InstanceSpec::new("http://10.0.0.1:3000/base").unwrap();
        spec.tags = alloc::vec!["canary".into()];
        spec.meta.insert("commit".into(), "abc123".into());
        spec.zone = Some("eu-1".into());
        spec.weight = 40;
        Instance::lease(key, spec, 1_700_000_000_000, None)
    }

    #[test]
    fn round_trip() {
        let original = instance();
        let key = instance_key(&original.key());
        assert_eq!(key, "svc/api/2.1.0-rc.1+b7/host-1_3000");
        assert!(key.starts_with(&service_prefix(&original.service)));
        let metadata = encode_record(&original).unwrap();
        assert_eq!(decode_record(&key, &metadata).unwrap(), original);
        let value: serde_json::Value = serde_json::from_str(&metadata).unwrap();
        assert_eq!(decode_record_value(&key, value).unwrap(), original);
    }

    #[test]
    fn the_largest_valid_key_fits_kv() {
        let key = InstanceKey {
            service: ServiceName::parse(&"n".repeat(63)).unwrap(),
            version: Version::parse(&alloc::format!("1.2.3-{}", "p".repeat(58))).unwrap(),
            id: InstanceId::parse(&"i".repeat(128)).unwrap(),
        };
        assert!(instance_key(&key).len() <= KEY_LIMIT);
    }

    #[test]
    fn oversized_records_are_refused() {
        let mut big = instance();
        for i in 0..16 {
            big.meta.insert(alloc::format!("key{i}"), "v".repeat(200));
        }
        let err = encode_record(&big).unwrap_err();
        assert!(matches!(err, Error::TooLarge { limit: 1024, .. }), "{err}");
        assert_eq!(err.code(), "too_large");
    }

    #[test]
    fn garbage_is_reported_not_guessed() {
        let key = "svc/api/1.0.0/a";
        for metadata in [
            "",
            "{}",
            "[1]",
            r#"{"f":2,"u":"h:1","w":1,"r":0,"e":0,"l":1}"#,
        ] {
            assert_eq!(
                decode_record(key, metadata).unwrap_err().code(),
                "corrupt_record",
                "{metadata}"
            );
        }
        let good = encode_record(&instance()).unwrap();
        for bad_key in [
            "api/1.0.0/a",
            "svc/api/1.0.0",
            "svc/API/1.0.0/a",
            "svc/api/x/a",
            "svc/api/1.0.0/a/b",
        ] {
            assert_eq!(
                decode_record(bad_key, &good).unwrap_err().code(),
                "corrupt_record",
                "{bad_key}"
            );
        }
    }

    #[test]
    fn gc_ttl_respects_kv_minimum_and_outlives_the_lease() {
        assert_eq!(gc_ttl_seconds(1_000), 61);
        assert_eq!(gc_ttl_seconds(2_500), 63);
        assert_eq!(gc_ttl_seconds(3_600_000), 3_660);
        for ttl_ms in [1, 999, 1_000, 59_999, 60_000, 3_600_000] {
            let gc = gc_ttl_seconds(ttl_ms);
            assert!(gc >= KV_MIN_TTL_S && gc * 1000 > ttl_ms);
        }
    }
}
