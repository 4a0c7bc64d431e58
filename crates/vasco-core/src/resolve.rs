//! Dependency resolution: `{name: version-or-range}` plus mocks to endpoints, all at once.
//!
//! Unlike the original Vasco, which failed on the first missing dependency, a resolution
//! lists every missing name, so a service can start, register itself and keep retrying.

use alloc::{collections::BTreeMap, string::String, vec::Vec};
use core::borrow::Borrow;

use serde::{Deserialize, Serialize};

use crate::{
    error::{Error, Result},
    instance::{Instance, Millis},
    name::ServiceName,
    query::{live_matching, Query},
    version::{Version, VersionReq},
};

/// What a service depends on: a version requirement per service name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Dependencies(pub BTreeMap<ServiceName, VersionReq>);

impl Dependencies {
    /// Parses `(name, requirement)` pairs, as found in package.json's `vasco.dependencies`;
    /// names may be npm package names (see [`ServiceName::from_package_name`]).
    pub fn parse<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Result<Self> {
        name_map("dependencies", pairs, VersionReq::parse).map(Self)
    }

    /// Parses a JSON object `{"api": "^2", ...}`.
    pub fn from_json_value(value: &serde_json::Value) -> Result<Self> {
        Self::parse(string_pairs("dependencies", value)?)
    }

    /// The number of dependencies.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Fixed urls that replace registry lookups (`vasco.mocks` in package.json). A mock only
/// applies to a name that is also a dependency, as in the original.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Mocks(pub BTreeMap<ServiceName, String>);

impl Mocks {
    /// Parses `(name, url)` pairs. The url is returned as given, never validated or rewritten.
    pub fn parse<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Result<Self> {
        name_map("mocks", pairs, |url| Ok(url.into())).map(Self)
    }

    /// Parses a JSON object `{"auth": "localhost:3000", ...}`.
    pub fn from_json_value(value: &serde_json::Value) -> Result<Self> {
        Self::parse(string_pairs("mocks", value)?)
    }
}

/// Parses `(name, value)` pairs into a map by service name (npm package names allowed), each
/// value by `parse`; the first error, about a name or a value, is reported as one in `field`.
/// A repeated name keeps its last value.
fn name_map<'a, V>(
    field: &'static str,
    pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
    parse: impl Fn(&str) -> Result<V>,
) -> Result<BTreeMap<ServiceName, V>> {
    let mut map = BTreeMap::new();
    for (name, value) in pairs {
        let name = ServiceName::from_package_name(name).map_err(|e| in_field(field, e))?;
        let value = parse(value).map_err(|e| in_field(field, e))?;
        map.insert(name, value);
    }
    Ok(map)
}

fn string_pairs<'a>(
    field: &'static str,
    value: &'a serde_json::Value,
) -> Result<Vec<(&'a str, &'a str)>> {
    match value {
        serde_json::Value::Null => Ok(Vec::new()),
        serde_json::Value::Object(entries) => entries
            .iter()
            .map(|(name, v)| match v {
                serde_json::Value::String(text) => Ok((name.as_str(), text.as_str())),
                _ => Err(Error::invalid(
                    field,
                    alloc::format!("value of {name:?} must be a string"),
                )),
            })
            .collect(),
        _ => Err(Error::invalid(field, "must be an object of name to string")),
    }
}

/// Re-labels an error about a name or version as an error about the whole argument.
fn in_field(field: &'static str, error: Error) -> Error {
    match error {
        Error::Invalid {
            field: inner,
            reason,
        } => Error::invalid(field, alloc::format!("{inner} {reason}")),
        other => other,
    }
}

/// What one dependency resolved to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resolved {
    /// The newest version that has live instances (absent for a mock).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<Version>,
    /// Its live instances, by id (empty for a mock).
    #[serde(default)]
    pub instances: Vec<Instance>,
    /// The mock url that replaced the lookup.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mock: Option<String>,
}

impl Resolved {
    /// The urls to use: the mock, or every instance's url.
    pub fn urls(&self) -> Vec<&str> {
        match &self.mock {
            Some(url) => alloc::vec![url.as_str()],
            None => self.instances.iter().map(|i| i.url.as_str()).collect(),
        }
    }
}

/// The outcome of resolving a set of dependencies.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resolution {
    /// Each dependency that has a mock or a live instance.
    pub resolved: BTreeMap<String, Resolved>,
    /// Each dependency with neither, sorted by name.
    pub missing: Vec<String>,
}

impl Resolution {
    /// Whether every dependency resolved.
    pub fn is_complete(&self) -> bool {
        self.missing.is_empty()
    }
}

/// The one rule for which instances a version range selects: of `instances` (live ones
/// matching the range, in any order), the indices of those running the newest version, in
/// their order. Resolution (`POST /v1/resolve`, the npm client's `findDependencies` and
/// `resolve`), `pick` and the page's picks all choose among these, so a range means one
/// version wherever it is used, the newest one that is up, as the original Vasco resolved a
/// dependency to one version. Listings (`GET /v1/services/{name}`, `instances()`) show every
/// matching version. (Build metadata only breaks ties: `1.0.0+b` is newer than `1.0.0+a`.)
pub fn newest_version<T: core::borrow::Borrow<Instance>>(instances: &[T]) -> Vec<usize> {
    let Some(newest) = instances.iter().map(|i| &i.borrow().version).max() else {
        return Vec::new();
    };
    (0..instances.len())
        .filter(|&i| instances[i].borrow().version == *newest)
        .collect()
}

/// The instances a pick chooses among when `instances` may hold some that selection never
/// picks (critical or in maintenance, listed by a lookup with `?all` or `?status=`): the
/// instances of the newest version that has a selectable (passing or warning) instance, every
/// status of that version included, so a chart or a selector sees them and the core's
/// [`crate::select::Selector`] leaves them out. Without any selectable instance it is
/// [`newest_version`] (and the selector picks nothing). For lists of selectable instances only
/// (every default lookup) it is exactly [`newest_version`], the version resolution picks.
pub fn pick_pool<T: core::borrow::Borrow<Instance>>(instances: &[T]) -> Vec<usize> {
    let newest = instances
        .iter()
        .map(Borrow::borrow)
        .filter(|i| i.health.status.is_selectable())
        .map(|i| &i.version)
        .max();
    match newest {
        Some(newest) => (0..instances.len())
            .filter(|&i| instances[i].borrow().version == *newest)
            .collect(),
        None => newest_version(instances),
    }
}

/// Resolves every dependency at once. Mocks win; otherwise the newest version with a live
/// instance matching the requirement is chosen and all of its live instances returned.
/// `lookup` yields the stored instances of one service (live or not; filtering happens here).
pub fn resolve<'a, F, I>(
    dependencies: &Dependencies,
    mocks: &Mocks,
    now: Millis,
    lookup: F,
) -> Resolution
where
    F: FnMut(&ServiceName) -> I,
    I: IntoIterator<Item = &'a Instance>,
{
    resolve_filtered(dependencies, mocks, &Query::any(), now, lookup)
}

/// Like [`resolve`], keeping only instances that also carry every tag of `filter` and sit in its
/// zone (`filter.version` is ignored: each dependency brings its own requirement).
pub fn resolve_filtered<'a, F, I>(
    dependencies: &Dependencies,
    mocks: &Mocks,
    filter: &Query,
    now: Millis,
    mut lookup: F,
) -> Resolution
where
    F: FnMut(&ServiceName) -> I,
    I: IntoIterator<Item = &'a Instance>,
{
    let mut resolution = Resolution::default();
    for (name, requirement) in &dependencies.0 {
        if let Some(url) = mocks.0.get(name) {
            resolution.resolved.insert(
                name.as_str().into(),
                Resolved {
                    version: None,
                    instances: Vec::new(),
                    mock: Some(url.clone()),
                },
            );
            continue;
        }
        let query = Query {
            version: requirement.clone(),
            ..filter.clone()
        };
        let live = live_matching(lookup(name), &query, now);
        let chosen = newest_version(&live);
        match chosen.first().map(|&i| live[i].version.clone()) {
            Some(version) => {
                let instances = chosen.iter().map(|&i| live[i].clone()).collect();
                resolution.resolved.insert(
                    name.as_str().into(),
                    Resolved {
                        version: Some(version),
                        instances,
                        mock: None,
                    },
                );
            }
            None => resolution.missing.push(name.as_str().into()),
        }
    }
    resolution
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;
    use crate::{instance::InstanceSpec, registry::Registry, InstanceId, InstanceKey};

    fn registry() -> Registry {
        let mut registry = Registry::new();
        for (service, version, id, url, ttl) in [
            ("api", "2.0.0", "a", "h:1", 10_000),
            ("api", "2.1.0", "b", "h:2", 10_000),
            ("api", "2.1.0", "c", "h:3", 10_000),
            ("api", "3.0.0", "d", "h:4", 1_000),
            ("auth", "1.0.0", "a", "h:5", 10_000),
        ] {
            let key = InstanceKey {
                service: ServiceName::parse(service).unwrap(),
                version: Version::parse(version).unwrap(),
                id: InstanceId::parse(id).unwrap(),
            };
            let spec = InstanceSpec {
                ttl_ms: ttl,
                ..InstanceSpec::new(url).unwrap()
            };
            registry.register(key, spec, 0).unwrap();
        }
        registry
    }

    #[test]
    fn newest_live_matching_version_wins() {
        let deps = Dependencies::parse([("api", "^2")]).unwrap();
        let resolution = registry().resolve(&deps, &Mocks::default(), 5_000);
        let api = &resolution.resolved["api"];
        assert_eq!(api.version.as_ref().unwrap().to_string(), "2.1.0");
        assert_eq!(api.urls(), ["h:2", "h:3"]);
        // 3.0.0 is live only until 1 s; `*` picks it then, 2.1.0 afterwards.
        let any = Dependencies::parse([("api", "*")]).unwrap();
        let early = registry().resolve(&any, &Mocks::default(), 500);
        assert_eq!(early.resolved["api"].urls(), ["h:4"]);
        let late = registry().resolve(&any, &Mocks::default(), 1_000);
        assert_eq!(late.resolved["api"].urls(), ["h:2", "h:3"]);
    }

    #[test]
    fn a_range_selects_one_version_the_newest_live_one() {
        let registry = registry();
        let api = ServiceName::parse("api").unwrap();
        let live = registry.instances(
            &api,
            &Query::version(VersionReq::parse("^2").unwrap()),
            5_000,
        );
        let picked: Vec<&str> = newest_version(&live)
            .into_iter()
            .map(|i| live[i].url.as_str())
            .collect();
        assert_eq!(picked, ["h:2", "h:3"], "2.1.0 only, not 2.0.0");
        let deps = Dependencies::parse([("api", "^2")]).unwrap();
        let resolved = registry.resolve(&deps, &Mocks::default(), 5_000);
        assert_eq!(resolved.resolved["api"].urls(), picked, "resolve agrees");
        assert!(newest_version::<Instance>(&[]).is_empty());
    }

    #[test]
    fn a_pick_pool_is_the_newest_version_with_a_selectable_instance() {
        use crate::health::{HealthUpdate, Status, StatusFilter};
        let mut registry = registry();
        let api = ServiceName::parse("api").unwrap();
        let all = Query {
            statuses: StatusFilter::ALL,
            ..Query::version(VersionReq::parse("^2").unwrap())
        };
        // Default lookups hold selectable instances only: the pool is newest_version.
        let live = registry.instances(&api, &Query::version(VersionReq::parse("^2").unwrap()), 0);
        assert_eq!(pick_pool(&live), newest_version(&live));
        // Both 2.1.0 instances in maintenance: the pool is 2.0.0, as resolution says.
        for id in ["b", "c"] {
            let key = InstanceKey {
                service: api.clone(),
                version: Version::parse("2.1.0").unwrap(),
                id: InstanceId::parse(id).unwrap(),
            };
            registry
                .set_health(&key, &HealthUpdate::set(Status::Maintenance, None), 0)
                .unwrap();
        }
        let listed = registry.instances(&api, &all, 0);
        let pool: Vec<&str> = pick_pool(&listed)
            .into_iter()
            .map(|i| listed[i].url.as_str())
            .collect();
        assert_eq!(pool, ["h:1"]);
        let deps = Dependencies::parse([("api", "^2")]).unwrap();
        assert_eq!(
            registry.resolve(&deps, &Mocks::default(), 0).resolved["api"].urls(),
            pool
        );
        // One 2.1.0 instance back: its version again, the one in maintenance included.
        let b = InstanceKey {
            service: api.clone(),
            version: Version::parse("2.1.0").unwrap(),
            id: InstanceId::parse("b").unwrap(),
        };
        registry
            .set_health(&b, &HealthUpdate::set(Status::Warning, None), 0)
            .unwrap();
        let listed = registry.instances(&api, &all, 0);
        let pool: Vec<&str> = pick_pool(&listed)
            .into_iter()
            .map(|i| listed[i].url.as_str())
            .collect();
        assert_eq!(pool, ["h:2", "h:3"]);
        // Nothing selectable: the newest version, from which the selector picks nothing.
        let only = [listed[1]];
        assert_eq!(pick_pool(&only), [0]);
    }

    #[test]
    fn star_leaves_prereleases_out_as_in_npm() {
        let mut registry = Registry::new();
        for (version, url) in [("1.0.0", "h:1"), ("2.0.0-beta.1", "h:2")] {
            let key = InstanceKey {
                service: ServiceName::parse("api").unwrap(),
                version: Version::parse(version).unwrap(),
                id: InstanceId::parse("a").unwrap(),
            };
            registry
                .register(key, InstanceSpec::new(url).unwrap(), 0)
                .unwrap();
        }
        for (range, url) in [
            ("*", "h:1"),
            ("", "h:1"),
            ("x", "h:1"),
            (">=2.0.0-beta", "h:2"),
        ] {
            let deps = Dependencies::parse([("api", range)]).unwrap();
            let resolved = registry.resolve(&deps, &Mocks::default(), 1);
            assert_eq!(resolved.resolved["api"].urls(), [url], "{range:?}");
        }
    }

    #[test]
    fn exact_strings_and_missing_names_are_all_reported() {
        let deps = Dependencies::parse([("api", "2.0.0"), ("billing", "1.0.0"), ("auth", "2.0.0")])
            .unwrap();
        let resolution = registry().resolve(&deps, &Mocks::default(), 0);
        assert_eq!(resolution.resolved["api"].urls(), ["h:1"]);
        assert_eq!(resolution.missing, ["auth", "billing"]);
        assert!(!resolution.is_complete());
    }

    #[test]
    fn mocks_win_but_only_for_dependencies() {
        let deps = Dependencies::parse([("api", "^2"), ("auth", "1.0.0")]).unwrap();
        let mocks = Mocks::parse([("auth", "localhost:3000"), ("other", "x:1")]).unwrap();
        let resolution = registry().resolve(&deps, &mocks, 0);
        assert_eq!(resolution.resolved["auth"].urls(), ["localhost:3000"]);
        assert!(!resolution.resolved.contains_key("other"));
        assert!(resolution.is_complete());
    }

    #[test]
    fn filters_narrow_every_dependency_before_the_newest_version_is_chosen() {
        let mut registry = registry();
        let key = InstanceKey {
            service: ServiceName::parse("api").unwrap(),
            version: Version::parse("2.0.0").unwrap(),
            id: InstanceId::parse("canary").unwrap(),
        };
        let mut spec = InstanceSpec::new("h:9").unwrap();
        spec.tags = alloc::vec!["canary".into()];
        registry.register(key, spec, 0).unwrap();
        let deps = Dependencies::parse([("api", "^2"), ("auth", "1.0.0")]).unwrap();
        let filter = Query {
            tags: alloc::vec!["canary".into()],
            ..Query::any()
        };
        let resolution = resolve_filtered(&deps, &Mocks::default(), &filter, 0, |name| {
            let name = name.clone();
            registry.all().filter(move |i| i.service == name)
        });
        // 2.1.0 is newer but has no canary; 2.0.0's canary wins, and auth has none at all.
        let api = &resolution.resolved["api"];
        assert_eq!(api.version.as_ref().unwrap().to_string(), "2.0.0");
        assert_eq!(api.urls(), ["h:9"]);
        assert_eq!(resolution.missing, ["auth"]);
    }

    #[test]
    fn serializes_as_the_http_api_documents() {
        let deps = Dependencies::parse([("auth", "1.0.0"), ("nope", "1")]).unwrap();
        let mocks = Mocks::parse([("auth", "localhost:3000")]).unwrap();
        let json = serde_json::to_value(registry().resolve(&deps, &mocks, 0)).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"resolved": {"auth": {"instances": [], "mock": "localhost:3000"}}, "missing": ["nope"]})
        );
        let back: Resolution = serde_json::from_value(json).unwrap();
        assert_eq!(back.missing, ["nope"]);
    }

    #[test]
    fn bad_arguments_name_the_argument() {
        let err = Dependencies::parse([("Bad Name", "1")]).unwrap_err();
        assert_eq!(err.code(), "invalid_dependencies");
        let err = Dependencies::parse([("api", "not a range")]).unwrap_err();
        assert_eq!(err.code(), "invalid_dependencies");
        let err = Mocks::from_json_value(&serde_json::json!({"api": 3})).unwrap_err();
        assert_eq!(err.code(), "invalid_mocks");
        let err = Dependencies::from_json_value(&serde_json::json!([1])).unwrap_err();
        assert_eq!(err.code(), "invalid_dependencies");
    }
}
