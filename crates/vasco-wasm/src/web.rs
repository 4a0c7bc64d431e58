//! What the dashboard's simulator runs in the browser: the core's in-memory registry with an
//! injected clock, its selector with every strategy, consistent-hash key movement, and version
//! matching. Documented for the page in `WEB_API.md`.

use js_sys::{Array, Float64Array, Object, Uint32Array};
use wasm_bindgen::prelude::*;

use vasco_core::{
    retry::Backoff as CoreBackoff,
    select::{Candidate, Selector as CoreSelector, SelectorConfig, Strategy},
    Change, HealthUpdate, InstanceId, InstanceKey, InstanceSpec, Query, Registry as CoreRegistry,
    ServiceName, SplitMix64, Status, Version, VersionReq,
};

use crate::convert::JsErr;
use crate::{
    convert::{entropy, from_js, js_error, opt_number, opt_string, to_js},
    error::Error,
};

fn key(name: &str, version: &str, id: &str) -> Result<InstanceKey, JsErr> {
    Ok(InstanceKey {
        service: ServiceName::parse(name)?,
        version: Version::parse(version)?,
        id: InstanceId::parse(id)?,
    })
}

fn query(range: Option<String>, options: &JsValue) -> Result<Query, JsErr> {
    let version = match range.as_deref() {
        None => VersionReq::any(),
        Some(range) => VersionReq::parse(range)?,
    };
    Ok(Query {
        version,
        // The core's lookup tag list ("a,b": both), as `?tag=` over HTTP.
        tags: match opt_string(options, "tag")? {
            None => Vec::new(),
            Some(tag) => vasco_core::parse_tags(&tag)?,
        },
        zone: opt_string(options, "zone")?,
        statuses: crate::api::status_options(options)?,
    })
}

/// The core's in-memory registry with the clock passed in (`now`, ms since the epoch), for a
/// simulator that runs its own time.
#[wasm_bindgen]
pub struct Registry {
    inner: CoreRegistry,
}

impl Default for Registry {
    fn default() -> Self {
        Self::new()
    }
}

#[wasm_bindgen]
impl Registry {
    /// An empty registry.
    #[wasm_bindgen(constructor)]
    pub fn new() -> Registry {
        Registry {
            inner: CoreRegistry::new(),
        }
    }

    /// Registers `name@version/id` (or re-registers it: an upsert). `spec` is the HTTP
    /// body: `{url, ttl? (seconds), tags?, meta?, weight?, zone?}`. Returns the instance.
    #[wasm_bindgen(unchecked_return_type = "Instance")]
    pub fn register(
        &mut self,
        name: &str,
        version: &str,
        id: &str,
        #[wasm_bindgen(unchecked_param_type = "InstanceSpec")] spec: JsValue,
        now: f64,
    ) -> Result<JsValue, JsErr> {
        let key = key(name, version, id)?;
        let spec = from_js(spec, "spec")?;
        let spec = InstanceSpec::from_json_value(&spec)?;
        let instance = self.inner.register(key, spec, now as u64)?;
        Ok(to_js(instance))
    }

    /// Renews the lease of a live instance; throws `not_found` when it lapsed or is unknown.
    #[wasm_bindgen(unchecked_return_type = "Instance")]
    pub fn heartbeat(
        &mut self,
        name: &str,
        version: &str,
        id: &str,
        now: f64,
    ) -> Result<JsValue, JsErr> {
        let key = key(name, version, id)?;
        let instance = self.inner.heartbeat(&key, now as u64)?;
        Ok(to_js(instance))
    }

    /// Removes an instance; throws `not_found` when it is unknown or already lapsed.
    #[wasm_bindgen(unchecked_return_type = "Instance")]
    pub fn deregister(
        &mut self,
        name: &str,
        version: &str,
        id: &str,
        now: f64,
    ) -> Result<JsValue, JsErr> {
        let key = key(name, version, id)?;
        let instance = self.inner.deregister(&key, now as u64)?;
        Ok(to_js(&instance))
    }

    /// Sets the health status of a live instance, or reports a check result, without renewing
    /// its lease: `update` is the body of `PUT .../status` (`{status, reason?, by?}` or
    /// `{check: {status, note?}}`; see the core's `health` module). Returns the instance;
    /// throws `invalid_*` for a bad update, `not_found` when the instance is not live.
    #[wasm_bindgen(js_name = setStatus, unchecked_return_type = "Instance")]
    pub fn set_status(
        &mut self,
        name: &str,
        version: &str,
        id: &str,
        #[wasm_bindgen(unchecked_param_type = "StatusUpdate")] update: JsValue,
        now: f64,
    ) -> Result<JsValue, JsErr> {
        let key = key(name, version, id)?;
        let update = from_js(update, "update")?;
        let update = HealthUpdate::from_value(&update)?;
        let (instance, _) = self.inner.set_health(&key, &update, now as u64)?;
        Ok(to_js(instance))
    }

    /// Drops every instance whose lease lapsed at `now`; returns how many.
    pub fn expire(&mut self, now: f64) -> u32 {
        self.inner.expire(now as u64) as u32
    }

    /// The live instances of `name` matching `range` (any when absent) and `options`
    /// (`{tag?, zone?}`, and which health statuses: `status` (`"passing,critical"` or an
    /// array), `passing: true` or `all: true`; passing and warning by default), newest version
    /// first.
    #[wasm_bindgen(unchecked_return_type = "Instance[]")]
    pub fn instances(
        &self,
        name: &str,
        range: Option<String>,
        #[wasm_bindgen(unchecked_param_type = "QueryOptions | undefined")] options: JsValue,
        now: f64,
    ) -> Result<Array, JsErr> {
        let service = ServiceName::parse(name)?;
        let query = query(range, &options)?;
        Ok(self
            .inner
            .instances(&service, &query, now as u64)
            .into_iter()
            .map(to_js)
            .collect())
    }

    /// Every record held, live or lapsed (lapsed ones stay until [`Registry::expire`]).
    #[wasm_bindgen(unchecked_return_type = "Instance[]")]
    pub fn all(&self) -> Array {
        self.inner.all().map(to_js).collect()
    }

    /// `{services: [{name, versions: [{version, instances}]}]}` of what is live at `now`.
    #[wasm_bindgen(unchecked_return_type = "Catalog")]
    pub fn catalog(&self, now: f64) -> JsValue {
        to_js(&self.inner.catalog(now as u64))
    }

    /// Resolves `{name: range}` with `{name: url}` mocks: `{resolved, missing}`.
    #[wasm_bindgen(unchecked_return_type = "Resolution")]
    pub fn resolve(
        &self,
        #[wasm_bindgen(unchecked_param_type = "Record<string, string>")] dependencies: JsValue,
        #[wasm_bindgen(unchecked_param_type = "Record<string, string> | undefined")] mocks: JsValue,
        now: f64,
    ) -> Result<JsValue, JsErr> {
        let dependencies =
            vasco_core::Dependencies::from_json_value(&from_js(dependencies, "dependencies")?)?;
        let mocks = vasco_core::Mocks::from_json_value(&from_js(mocks, "mocks")?)?;
        Ok(to_js(&self.inner.resolve(
            &dependencies,
            &mocks,
            now as u64,
        )))
    }

    /// The changes since the last call, oldest first: `{type: "insert", instance}` or
    /// `{type: "remove", service, version, id}`.
    #[wasm_bindgen(js_name = takeChanges, unchecked_return_type = "Change[]")]
    pub fn take_changes(&mut self) -> Array {
        self.inner
            .take_changes()
            .into_iter()
            .map(|change| {
                let object = Object::new();
                match change {
                    Change::Insert(instance) => {
                        crate::convert::set(&object, "type", "insert");
                        crate::convert::set(&object, "instance", to_js(&instance));
                    }
                    Change::Remove(key) => {
                        crate::convert::set(&object, "type", "remove");
                        crate::convert::set(&object, "service", key.service.to_string());
                        crate::convert::set(&object, "version", key.version.to_string());
                        crate::convert::set(&object, "id", key.id.to_string());
                    }
                }
                JsValue::from(object)
            })
            .collect()
    }
}

/// Candidates from ids, `{id, weight?, zone?, healthy?, status?}` objects, or instances as the
/// registry returns them (objects with `service` and `url`), which become candidates by the
/// core's one rule ([`Candidate::from_instance`], their health status included), as in the npm
/// client. An instance may carry `healthy: false` too (ejected, for outlier detection).
fn candidates(list: &JsValue) -> Result<Vec<Candidate>, JsErr> {
    if !Array::is_array(list) {
        return Err(Error::argument("candidates", "must be an array").into());
    }
    let list = Array::from(list);
    list.iter()
        .map(|item| {
            if let Some(id) = item.as_string() {
                return Ok(Candidate::new(id, 1));
            }
            let healthy = match crate::convert::get(&item, "healthy") {
                v if v.is_undefined() || v.is_null() => true,
                v => v.as_bool().ok_or_else(|| {
                    js_error(&Error::argument("candidates", "healthy must be a boolean"))
                })?,
            };
            let is_instance = ["service", "url"]
                .iter()
                .all(|key| !crate::convert::get(&item, key).is_undefined());
            if is_instance {
                let mut value = from_js(item, "candidates")?;
                if let Some(object) = value.as_object_mut() {
                    object.remove("healthy");
                }
                let instance: vasco_core::Instance =
                    serde_json::from_value(value).map_err(|e| {
                        js_error(&Error::argument(
                            "candidates",
                            format!("an instance is malformed: {e}"),
                        ))
                    })?;
                return Ok(Candidate::from_instance(&instance).with_health(healthy));
            }
            let id = opt_string(&item, "id")?
                .ok_or_else(|| js_error(&Error::argument("candidates", "each needs an id")))?;
            let weight = opt_number(&item, "weight")?.unwrap_or(1.0);
            let mut candidate =
                Candidate::new(id, weight.clamp(0.0, u32::MAX as f64) as u32).with_health(healthy);
            candidate.zone = opt_string(&item, "zone")?;
            if let Some(status) = opt_string(&item, "status")? {
                candidate.status = status.parse::<Status>()?;
            }
            Ok(candidate)
        })
        .collect()
}

fn selector_config(strategy: &str, options: &JsValue) -> Result<SelectorConfig, JsErr> {
    Ok(SelectorConfig {
        strategy: strategy.parse()?,
        local_zone: opt_string(options, "localZone")?,
        protection_threshold: opt_number(options, "protectionThreshold")?.unwrap_or(0.0),
    })
}

/// The core's selector over a candidate list, with its own seeded random source.
#[wasm_bindgen]
pub struct Selector {
    inner: CoreSelector,
    rng: SplitMix64,
}

#[wasm_bindgen]
impl Selector {
    /// `strategy`: `random`, `round-robin`, `weighted`, `least-request`, `maglev` (or
    /// `consistent-hash`), `ring`. `candidates`: ids, `{id, weight?, zone?, healthy?}`, or
    /// registry instances (see `candidates`). `options`: `{localZone?, protectionThreshold?,
    /// seed?}`: unhealthy candidates are left out unless fewer than `protectionThreshold`
    /// (a fraction) are healthy, or none is.
    #[wasm_bindgen(constructor)]
    pub fn new(
        #[wasm_bindgen(unchecked_param_type = "Strategy")] strategy: &str,
        #[wasm_bindgen(unchecked_param_type = "Candidate[]")] candidates: JsValue,
        #[wasm_bindgen(
            unchecked_param_type = "{ localZone?: string; protectionThreshold?: number; seed?: number } | undefined"
        )]
        options: JsValue,
    ) -> Result<Selector, JsErr> {
        let config = selector_config(strategy, &options)?;
        let seed = opt_number(&options, "seed")?.map_or_else(entropy, |s| s as u64);
        Ok(Selector {
            inner: CoreSelector::new(config, self::candidates(&candidates)?),
            rng: SplitMix64::from_seed(seed),
        })
    }

    /// The index of the picked candidate, or -1 when there are none. `key` makes `maglev` and
    /// `ring` sticky.
    pub fn pick(&mut self, key: Option<String>) -> i32 {
        self.inner
            .pick(&mut self.rng, key.as_deref().map(str::as_bytes))
            .map_or(-1, |i| i as i32)
    }

    /// Picks `n` times (random keys for the consistent-hash strategies) and counts the picks
    /// per candidate. With `inFlight` true, each pick also starts a request (least-request
    /// then spreads them).
    #[wasm_bindgen(js_name = pickMany)]
    pub fn pick_many(&mut self, n: u32, in_flight: Option<bool>) -> Uint32Array {
        let mut counts = vec![0u32; self.inner.len()];
        for _ in 0..n {
            if let Some(index) = self.inner.pick(&mut self.rng, None) {
                counts[index] += 1;
                if in_flight == Some(true) {
                    self.inner.begin(index);
                }
            }
        }
        Uint32Array::from(counts.as_slice())
    }

    /// Picks once per key and returns the chosen index for each (-1 for none).
    #[wasm_bindgen(js_name = pickKeys)]
    pub fn pick_keys(&mut self, keys: Vec<String>) -> Vec<i32> {
        keys.iter()
            .map(|key| {
                self.inner
                    .pick(&mut self.rng, Some(key.as_bytes()))
                    .map_or(-1, |i| i as i32)
            })
            .collect()
    }

    /// A request to candidate `index` started (least-request counts these).
    pub fn begin(&mut self, index: u32) {
        self.inner.begin(index as usize);
    }

    /// A request to candidate `index` finished.
    pub fn end(&mut self, index: u32) {
        self.inner.end(index as usize);
    }

    /// Requests in flight at candidate `index`.
    #[wasm_bindgen(js_name = inFlight)]
    pub fn in_flight(&self, index: u32) -> u32 {
        self.inner.in_flight(index as usize)
    }

    /// For `maglev` and `ring`, the exact share of all keys each candidate owns; else
    /// `undefined`.
    #[wasm_bindgen(js_name = keyShares)]
    pub fn key_shares(&self) -> Option<Float64Array> {
        self.inner
            .key_shares()
            .map(|shares| Float64Array::from(shares.as_slice()))
    }

    /// The number of candidates.
    #[wasm_bindgen(getter)]
    pub fn length(&self) -> u32 {
        self.inner.len() as u32
    }

    /// The strategy's name.
    #[wasm_bindgen(getter)]
    pub fn strategy(&self) -> String {
        self.inner.config().strategy.name().into()
    }

    /// Whether health is being ignored: true when fewer candidates are healthy than
    /// `protectionThreshold` asks for (or none is), so every candidate is picked from.
    #[wasm_bindgen(getter)]
    pub fn panic(&self) -> bool {
        self.inner.protection() != vasco_core::select::Protection::Normal
    }

    /// How many candidates picks are drawn from (healthy ones, then the local zone's).
    #[wasm_bindgen(getter, js_name = eligibleCount)]
    pub fn eligible_count(&self) -> u32 {
        self.inner.preferred_len() as u32
    }
}

/// The instances a version range picks among (the core's rule, as in `findDependencies` and
/// the npm client's `pick`): of `instances`, those of the newest version, in their order.
#[wasm_bindgen(js_name = newestVersion, unchecked_return_type = "Instance[]")]
pub fn newest_version(
    #[wasm_bindgen(unchecked_param_type = "Instance[]")] instances: JsValue,
) -> Result<Array, JsErr> {
    subset_of(instances, vasco_core::newest_version)
}

/// The JavaScript instances of `instances` that `choose` picks (by index) from their parsed
/// form, in its order.
fn subset_of(
    instances: JsValue,
    choose: impl FnOnce(&[vasco_core::Instance]) -> Vec<usize>,
) -> Result<Array, JsErr> {
    let value = from_js(instances.clone(), "instances")?;
    let parsed: Vec<vasco_core::Instance> = serde_json::from_value(value).map_err(|e| {
        js_error(&Error::argument(
            "instances",
            format!("must be instances: {e}"),
        ))
    })?;
    let list = Array::from(&instances);
    Ok(choose(&parsed)
        .into_iter()
        .map(|i| list.get(i as u32))
        .collect())
}

/// The instances a pick over `instances` chooses among (the core's `pick_pool`, as the npm
/// client's `pick`): those of the newest version that has a passing or warning instance, every
/// status of that version included, in their order. A selector over them never picks the
/// critical or maintenance ones; a chart of its picks shows them at zero.
#[wasm_bindgen(js_name = pickPool, unchecked_return_type = "Instance[]")]
pub fn pick_pool(
    #[wasm_bindgen(unchecked_param_type = "Instance[]")] instances: JsValue,
) -> Result<Array, JsErr> {
    subset_of(instances, vasco_core::pick_pool)
}

/// How many of `keys` sample keys move to another candidate when candidate `removed` is
/// taken out of `candidates`, for a consistent-hash strategy:
/// `{total, moved, fromRemoved, elsewhere, fraction}`. Ideal consistent hashing moves only the
/// keys of the removed candidate (`elsewhere` = 0, `fraction` ≈ 1/N).
#[wasm_bindgen(js_name = keyMovement, unchecked_return_type = "KeyMovement")]
pub fn key_movement(
    #[wasm_bindgen(unchecked_param_type = "Strategy")] strategy: &str,
    #[wasm_bindgen(unchecked_param_type = "Candidate[]")] candidates: JsValue,
    removed: u32,
    keys: u32,
) -> Result<JsValue, JsErr> {
    let config = selector_config(strategy, &JsValue::UNDEFINED)?;
    let before_list = self::candidates(&candidates)?;
    let removed = removed as usize;
    if removed >= before_list.len() {
        return Err(Error::argument("removed", "is not a candidate index").into());
    }
    let mut after_list = before_list.clone();
    after_list.remove(removed);
    let mut before = CoreSelector::new(config.clone(), before_list.clone());
    let mut after = CoreSelector::new(config, after_list.clone());
    let mut rng = SplitMix64::from_seed(1);
    let (mut moved, mut from_removed, mut elsewhere) = (0u32, 0u32, 0u32);
    for k in 0..keys {
        let key = format!("key-{k}");
        let a = before.pick(&mut rng, Some(key.as_bytes()));
        let b = after.pick(&mut rng, Some(key.as_bytes()));
        let a_id = a.map(|i| before_list[i].id.as_str());
        let b_id = b.map(|i| after_list[i].id.as_str());
        if a_id != b_id {
            moved += 1;
            if a == Some(removed) {
                from_removed += 1;
            } else {
                elsewhere += 1;
            }
        }
    }
    let result = Object::new();
    crate::convert::set(&result, "total", keys);
    crate::convert::set(&result, "moved", moved);
    crate::convert::set(&result, "fromRemoved", from_removed);
    crate::convert::set(&result, "elsewhere", elsewhere);
    crate::convert::set(
        &result,
        "fraction",
        if keys == 0 {
            0.0
        } else {
            f64::from(moved) / f64::from(keys)
        },
    );
    Ok(result.into())
}

/// Whether `version` satisfies the npm-style `range` (`2.0.0`, `^2`, `~1.2`, `>=1 <3`, `1.x`,
/// `*`, `a || b`, `1.0.0 - 2.0.0`). Throws on an invalid range or version.
#[wasm_bindgen(js_name = versionMatches)]
pub fn version_matches(range: &str, version: &str) -> Result<bool, JsErr> {
    let range = VersionReq::parse(range)?;
    let version = Version::parse(version)?;
    Ok(range.matches(&version))
}

/// A version in normal form (`v2.1.0` is `2.1.0`); throws when invalid.
#[wasm_bindgen(js_name = normalizeVersion)]
pub fn normalize_version(version: &str) -> Result<String, JsErr> {
    Ok(Version::parse(version).map(|v| v.to_string())?)
}

/// How often a client renews a lease of `ttl_ms` (the core's rule: a third of it, so one late
/// beat never lets the lease lapse).
#[wasm_bindgen(js_name = heartbeatPeriod)]
pub fn heartbeat_period(ttl_ms: f64) -> f64 {
    // Leases are at most an hour, far inside f64's exact integers.
    vasco_core::heartbeat_period_ms(ttl_ms.max(0.0) as u64) as f64
}

/// The service name the registry uses for `name`, which may be an npm package name: a scoped
/// `@scope/pkg` is `scope.pkg`, any other name must already be a valid service name (1-63 of
/// `a-z 0-9 - _ .`). Throws `invalid_name` with the core's message otherwise. The page checks
/// the names typed into its resolve box with this, so it accepts exactly what the API accepts.
#[wasm_bindgen(js_name = serviceName)]
pub fn service_name(name: &str) -> Result<String, JsErr> {
    Ok(ServiceName::from_package_name(name).map(|n| n.as_str().to_string())?)
}

/// The core's retry backoff (`vasco_core::retry::Backoff`: full-jitter exponential, attempt `n`
/// waits a uniform delay in `[0, min(maxMs, baseMs * 2^n)]`), with its own seeded random source.
/// The page's live view waits this long before retrying an unreachable registry.
#[wasm_bindgen]
pub struct Backoff {
    inner: CoreBackoff,
    rng: SplitMix64,
}

#[wasm_bindgen]
impl Backoff {
    /// `options`: `{baseMs?, maxMs?, seed?}`; the defaults are the core's (100 ms, 30 s) and a
    /// seed from the platform's entropy. Throws `invalid_argument` when `maxMs < baseMs`.
    #[wasm_bindgen(constructor)]
    pub fn new(
        #[wasm_bindgen(
            unchecked_param_type = "{ baseMs?: number; maxMs?: number; seed?: number } | undefined"
        )]
        options: JsValue,
    ) -> Result<Backoff, JsErr> {
        let defaults = CoreBackoff::default();
        let ms = |value: Option<f64>, default: u64| value.map_or(default, |v| v.max(0.0) as u64);
        let inner = CoreBackoff {
            base_ms: ms(opt_number(&options, "baseMs")?, defaults.base_ms),
            max_ms: ms(opt_number(&options, "maxMs")?, defaults.max_ms),
        };
        if inner.max_ms < inner.base_ms {
            return Err(Error::argument("maxMs", "must be at least baseMs").into());
        }
        let seed = opt_number(&options, "seed")?.map_or_else(entropy, |s| s as u64);
        Ok(Backoff {
            inner,
            rng: SplitMix64::from_seed(seed),
        })
    }

    /// The delay in ms before retry number `attempt` (0 is the first retry).
    pub fn delay(&mut self, attempt: u32) -> f64 {
        self.inner.delay_ms(attempt, &mut self.rng) as f64
    }

    /// The longest delay retry number `attempt` may wait, in ms.
    pub fn ceiling(&self, attempt: u32) -> f64 {
        self.inner.ceiling_ms(attempt) as f64
    }
}

/// The health statuses, best first (`passing`, `warning`, `critical`, `maintenance`): the
/// core's names, for pickers of a status.
#[wasm_bindgen]
pub fn statuses() -> Vec<String> {
    Status::ALL.iter().map(|s| s.name().to_string()).collect()
}

/// Whether selection may ever pick an instance in `status` (passing or warning: the core's
/// rule); false for critical and maintenance, which are out of rotation. Throws
/// `invalid_status` for an unknown name.
#[wasm_bindgen(js_name = statusSelectable)]
pub fn status_selectable(status: &str) -> Result<bool, JsErr> {
    Ok(status.parse::<Status>().map(Status::is_selectable)?)
}

/// The names of every selection strategy.
#[wasm_bindgen]
pub fn strategies() -> Vec<String> {
    Strategy::ALL.iter().map(|s| s.name().to_string()).collect()
}
