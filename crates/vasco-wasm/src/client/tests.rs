//! Unit tests of the client's logic.

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

use super::*;
use serde_json::json;
use vasco_core::SplitMix64;

fn instance(service: &str, version: &str, id: &str, url: &str, now: Millis) -> Instance {
    let key = InstanceKey {
        service: ServiceName::parse(service).unwrap(),
        version: Version::parse(version).unwrap(),
        id: InstanceId::parse(id).unwrap(),
    };
    Instance::lease(key, InstanceSpec::new(url).unwrap(), now, None)
}

fn deps(pairs: &[(&str, &str)]) -> Dependencies {
    Dependencies::parse(pairs.iter().copied()).unwrap()
}

#[test]
fn registry_urls() {
    let http = |s: &str| Endpoint::Http(s.into());
    assert_eq!(Endpoint::parse(None).unwrap(), http(DEFAULT_REGISTRY));
    assert_eq!(Endpoint::parse(Some(" ")).unwrap(), http(DEFAULT_REGISTRY));
    assert_eq!(
        Endpoint::parse(Some("10.0.0.1:8787")).unwrap(),
        http("http://10.0.0.1:8787")
    );
    assert_eq!(
        Endpoint::parse(Some("HTTPS://vasco.example.dev/")).unwrap(),
        http("https://vasco.example.dev")
    );
    assert_eq!(
        Endpoint::parse(Some("https://example.dev/registry/")).unwrap(),
        http("https://example.dev/registry")
    );
    assert_eq!(
        Endpoint::parse(Some("http://[::1]:8787")).unwrap(),
        http("http://[::1]:8787")
    );
    assert_eq!(Endpoint::parse(Some("memory:")).unwrap(), Endpoint::Memory);
    assert_eq!(Endpoint::parse(Some("memory")).unwrap(), Endpoint::Memory);
    let redis = Endpoint::parse(Some("redis://localhost:6379")).unwrap_err();
    assert_eq!(redis.code(), "invalid_registry_url");
    assert!(redis.to_string().contains("VASCO_URL"), "{redis}");
    assert!(redis.to_string().contains("memory:"), "{redis}");
    for bad in ["ftp://x", "http://", "host:port", "ho st:1", "host:0"] {
        assert!(Endpoint::parse(Some(bad)).is_err(), "{bad}");
    }
    // Each message names the url and says what to write instead.
    let message = |text: &str| Endpoint::parse(Some(text)).unwrap_err().to_string();
    for (typo, meant) in [
        ("http//x", "http://x"),
        ("http:/x:80", "http://x:80"),
        ("https//vasco.dev", "https://vasco.dev"),
        ("https:vasco.dev", "https://vasco.dev"),
    ] {
        let text = message(typo);
        assert!(text.contains(&format!("{typo:?}")), "{text}");
        assert!(text.contains(&format!("did you mean {meant}?")), "{text}");
    }
    assert!(message("htp://x").contains("did you mean http://?"));
    let redis_port = message("10.0.0.5:6379");
    assert!(redis_port.contains("\"10.0.0.5:6379\""), "{redis_port}");
    assert!(redis_port.contains("no longer uses Redis"), "{redis_port}");
    assert!(message("host:port").contains("\"host:port\""));
    // A registry on 6379 is still reachable when the scheme says so; so is a host named http.
    assert_eq!(
        Endpoint::parse(Some("http://10.0.0.5:6379")).unwrap(),
        http("http://10.0.0.5:6379")
    );
    assert_eq!(
        Endpoint::parse(Some("http:8080")).unwrap(),
        http("http://http:8080")
    );
}

#[test]
fn packages_of_the_original() {
    let pkg = json!({
        "name": "frontend", "version": "1.3.0",
        "vasco": {"dependencies": {"api": "2.0.0", "auth": "^1"}, "mocks": {"auth": "localhost:3000"}, "aliveDuration": 3}
    });
    let reg = Registration::from_package(&json!("127.0.0.1:4000"), &pkg).unwrap();
    assert_eq!(reg.key.service.as_str(), "frontend");
    assert_eq!(reg.key.version.to_string(), "1.3.0");
    assert_eq!(reg.spec.url, "127.0.0.1:4000");
    assert_eq!(reg.spec.ttl_ms, 3_000);
    assert_eq!(reg.dependencies.len(), 2);
    assert_eq!(reg.mocks.0.len(), 1);
    assert_eq!(reg.key.id, InstanceId::from_url("127.0.0.1:4000"));

    let bare = json!({"name": "svc", "version": "1.0.0"});
    let reg = Registration::from_package(&json!("h:1"), &bare).unwrap();
    assert_eq!(reg.spec.ttl_ms, 10_000);
    let zero = json!({"name": "svc", "version": "1.0.0", "vasco": {"aliveDuration": 0}});
    assert_eq!(
        Registration::from_package(&json!("h:1"), &zero)
            .unwrap()
            .spec
            .ttl_ms,
        10_000
    );
    let text = json!({"name": "svc", "version": "1.0.0", "vasco": {"aliveDuration": "2"}});
    assert_eq!(
        Registration::from_package(&json!("h:1"), &text)
            .unwrap()
            .spec
            .ttl_ms,
        2_000
    );
}

#[test]
fn bad_registrations() {
    let pkg = json!({"name": "svc", "version": "1.0.0"});
    for url in [json!(null), json!(""), json!(3000)] {
        assert_eq!(
            Registration::from_package(&url, &pkg).unwrap_err(),
            Error::NeedUrl
        );
    }
    for pkg in [
        json!(null),
        json!({}),
        json!({"name": "svc"}),
        json!({"version": "1.0.0"}),
    ] {
        let err = Registration::from_package(&json!("h:1"), &pkg).unwrap_err();
        assert!(err.to_string().starts_with("Invalid package: "), "{pkg}");
        assert_eq!(err.code(), "invalid_package");
    }
    // The message names the field.
    let message = |pkg: Value| {
        Registration::from_package(&json!("h:1"), &pkg)
            .unwrap_err()
            .to_string()
    };
    assert!(message(json!({"name": "svc"})).starts_with("Invalid package: \"version\" is missing"));
    assert!(
        message(json!({"version": "1.0.0"})).starts_with("Invalid package: \"name\" is missing")
    );
    assert!(message(json!({"name": "svc", "version": ""})).contains("\"version\" is empty"));
    assert!(message(json!({"name": "svc", "version": 1})).contains("\"version\" must be a string"));
    assert!(message(json!("pkg")).contains("got a string"));
    // A typo in pkg.vasco is refused, with the key it was probably meant to be.
    let typo =
        message(json!({"name": "svc", "version": "1.0.0", "vasco": {"dependecies": {"api": "1"}}}));
    assert!(
        typo.starts_with("Invalid package: unknown key \"dependecies\""),
        "{typo}"
    );
    assert!(typo.contains("did you mean \"dependencies\"?"), "{typo}");
    let alive = message(json!({"name": "svc", "version": "1.0.0", "vasco": {"aliveduration": 3}}));
    assert!(alive.contains("did you mean \"aliveDuration\"?"), "{alive}");
    let far = message(json!({"name": "svc", "version": "1.0.0", "vasco": {"colour": "red"}}));
    assert!(!far.contains("did you mean"), "{far}");
    // Every documented key is accepted.
    let full = json!({"name": "svc", "version": "1.0.0", "vasco": {
        "dependencies": {}, "mocks": {}, "aliveDuration": 3, "tags": ["a"], "meta": {"k": "v"},
        "weight": 2, "zone": "z", "id": "i1", "handleSignals": false
    }});
    assert!(Registration::from_package(&json!("h:1"), &full).is_ok());
    let option = Registration::from_options(
        &json!({"name": "svc", "version": "1.0.0", "url": "h:1", "dependecies": {}}),
    )
    .unwrap_err();
    assert_eq!(option.code(), "invalid_argument");
    assert!(
        option
            .to_string()
            .contains("did you mean \"dependencies\"?"),
        "{option}"
    );
    let bad_ttl = json!({"name": "svc", "version": "1.0.0", "vasco": {"aliveDuration": -1}});
    assert_eq!(
        Registration::from_package(&json!("h:1"), &bad_ttl)
            .unwrap_err()
            .code(),
        "invalid_ttl"
    );
    let bad_deps =
        json!({"name": "svc", "version": "1.0.0", "vasco": {"dependencies": {"api": 2}}});
    assert_eq!(
        Registration::from_package(&json!("h:1"), &bad_deps)
            .unwrap_err()
            .code(),
        "invalid_dependencies"
    );
    assert_eq!(
        Registration::from_options(&json!({"name": "svc", "url": "h:1"}))
            .unwrap_err()
            .code(),
        "invalid_version"
    );
}

#[test]
fn answers_age_into_refresh_then_miss_then_stale_on_error() {
    // The core's default policy: fresh 5 s, refreshed after 3 s, stale-if-error 5 min.
    let config = Config::default();
    let mut rng = SplitMix64::from_seed(2);
    let mut cache: Cache<()> = Cache::default();
    let api = ServiceName::parse("api").unwrap();
    let slot = cache.slot(Kind::Instances, api.clone(), Query::any());
    assert_eq!(cache.slot(Kind::Instances, api, Query::any()), slot);
    assert_eq!(cache.lookup(slot, 0, &config, None), Lookup::Miss);
    let t0 = 1_000_000;
    let list = vec![instance("api", "1.0.0", "a", "h:1", t0)];
    cache.store(slot, list, None, (), t0, 0, RegistryClock::LOCAL);
    assert_eq!(cache.lookup(slot, t0 + 100, &config, None), Lookup::Hit);
    assert_eq!(
        cache.lookup(slot, t0 + 3_000, &config, None),
        Lookup::HitRefresh
    );
    // Only one background refresh at a time.
    assert_eq!(cache.lookup(slot, t0 + 3_001, &config, None), Lookup::Hit);
    let stale = t0 + 5_000;
    // Past its life while that refresh is still in flight: wait for it.
    assert_eq!(cache.lookup(slot, stale, &config, None), Lookup::Wait);
    cache.set_in_flight(slot, false);
    assert_eq!(cache.lookup(slot, stale, &config, None), Lookup::Miss);
    // The registry is down: the old answer is served until the retry is due.
    for _ in 0..4 {
        assert!(cache.failed(slot, stale, &config, &mut rng));
    }
    let retry_at = cache.get(slot).unwrap().retry_at;
    assert!(retry_at > stale && retry_at <= stale + 800, "{retry_at}");
    assert_eq!(
        cache.lookup(slot, retry_at - 1, &config, None),
        Lookup::HitStale
    );
    assert_eq!(cache.lookup(slot, retry_at, &config, None), Lookup::Miss);
    // Past the stale-if-error limit nothing old is served.
    let expired = t0 + config.cache.stale_if_error_ms;
    assert!(cache.usable(slot, expired - 1, &config));
    assert!(!cache.usable(slot, expired, &config));
    assert!(!cache.failed(slot, expired, &config, &mut rng));
}

#[test]
fn an_answer_never_outlives_a_lease_on_the_registrys_clock() {
    let config = Config::default();
    let mut rng = SplitMix64::from_seed(5);
    let mut cache: Cache<()> = Cache::default();
    let slot = cache.slot(
        Kind::Instances,
        ServiceName::parse("api").unwrap(),
        Query::any(),
    );
    // The registry's clock is 10 s ahead of ours. It answered a request we sent at t0
    // with two instances: one beating every 3 s on a 10 s lease, one whose 1 s lease it
    // renewed last (then its process was killed).
    let t0 = 1_000_000;
    let registry_now = t0 + 10_000;
    let mut short = instance("api", "1.0.0", "killed", "h:1", registry_now);
    short.expires_at = registry_now + 1_000;
    let long = instance("api", "1.0.0", "alive", "h:2", registry_now);
    let clock = RegistryClock::from_answer(t0, registry_now);
    cache.store(slot, vec![long, short], None, (), t0, 0, clock);
    assert_eq!(cache.lookup(slot, t0 + 100, &config, None), Lookup::Hit);
    // Refreshed ahead of the lease end, once ...
    assert_eq!(
        cache.lookup(slot, t0 + 600, &config, None),
        Lookup::HitRefresh
    );
    assert_eq!(cache.lookup(slot, t0 + 601, &config, None), Lookup::Hit);
    // ... and once the lease may have ended, never served while the registry answers:
    // callers wait for the refresh in flight, or fetch.
    assert_eq!(cache.lookup(slot, t0 + 1_000, &config, None), Lookup::Wait);
    cache.set_in_flight(slot, false);
    assert_eq!(cache.lookup(slot, t0 + 1_600, &config, None), Lookup::Miss);
    // Judged on our own clock instead, the lease would still have 9 s to run.
    assert!(vasco_core::lease_serves(registry_now + 1_000, t0 + 1_600));
    // The registry cannot be reached: the last answer stands in (stale-if-error) and
    // says so.
    assert!(cache.failed(slot, t0 + 1_600, &config, &mut rng));
    assert_eq!(
        cache.lookup(slot, t0 + 1_601, &config, None),
        Lookup::HitStale
    );
    assert!(cache.is_stale(slot, t0 + 1_601, &config));
    // The next answer, without the killed instance, lives its full cache life.
    let renewed = instance("api", "1.0.0", "alive", "h:2", registry_now + 2_000);
    let clock = RegistryClock::from_answer(t0 + 2_000, registry_now + 2_000);
    cache.store(slot, vec![renewed], None, (), t0 + 2_000, 0, clock);
    assert_eq!(cache.lookup(slot, t0 + 4_999, &config, None), Lookup::Hit);
    assert!(!cache.is_stale(slot, t0 + 4_999, &config));
}

#[test]
fn keyed_picks_may_be_memoized_until_anything_could_change_them() {
    let config = Config::default();
    let mut rng = SplitMix64::from_seed(8);
    let mut outliers = Outliers::new(config.outlier.clone());
    let mut cache: Cache<()> = Cache::default();
    let slot = cache.slot(
        Kind::Instances,
        ServiceName::parse("api").unwrap(),
        Query::any(),
    );
    let t0 = 1_000_000;
    let until = |cache: &Cache<()>, outliers: &Outliers, now| {
        cache.hit_until(slot, Strategy::Maglev, now, &config, outliers)
    };
    assert_eq!(until(&cache, &outliers, t0), 0, "nothing cached");
    let mut short = instance("api", "1.0.0", "a", "h:1", t0);
    short.expires_at = t0 + 2_000;
    let list = vec![short, instance("api", "1.0.0", "b", "h:2", t0)];
    cache.store(slot, list, None, (), t0, 0, RegistryClock::LOCAL);
    assert_eq!(until(&cache, &outliers, t0), 0, "no picker yet");
    let pick = |cache: &mut Cache<()>, outliers: &Outliers, rng: &mut SplitMix64, now| {
        cache.pick(
            slot,
            Strategy::Maglev,
            Some(&b"k"[..]),
            now,
            &config,
            outliers,
            rng,
        )
    };
    let first = pick(&mut cache, &outliers, &mut rng, t0);
    // Until the refresh is due, 60% into the 2 s lease.
    assert_eq!(until(&cache, &outliers, t0 + 10), t0 + 1_200);
    assert_eq!(
        cache.hit_until(slot, Strategy::RoundRobin, t0, &config, &outliers),
        0,
        "only keyed strategies"
    );
    // Within that time every pick of the key agrees.
    for now in [t0 + 10, t0 + 600, t0 + 1_199] {
        assert_eq!(pick(&mut cache, &outliers, &mut rng, now), first);
    }
    // Refresh due: the caller must go through the cache again.
    assert_eq!(until(&cache, &outliers, t0 + 1_200), 0);
    // A refresh in flight: good until the lease ends.
    assert_eq!(
        cache.lookup(slot, t0 + 1_200, &config, None),
        Lookup::HitRefresh
    );
    assert_eq!(until(&cache, &outliers, t0 + 1_300), t0 + 2_000);
    // An ejection changes the picker's view at once.
    for _ in 0..config.outlier.consecutive_failures {
        outliers.report_failure("api", "h:1", t0 + 1_300);
        outliers.report_failure("api", "h:2", t0 + 1_300);
    }
    assert_eq!(until(&cache, &outliers, t0 + 1_300), 0);
}

#[test]
fn one_fetch_per_question_in_flight() {
    let config = Config::default();
    let mut rng = SplitMix64::from_seed(6);
    let mut cache: Cache<()> = Cache::default();
    let api = ServiceName::parse("api").unwrap();
    let slot = cache.slot(Kind::Instances, api, Query::any());
    assert_eq!(cache.lookup(slot, 0, &config, None), Lookup::Miss);
    cache.begin(slot);
    assert!(cache.in_flight(slot));
    for _ in 0..50 {
        assert_eq!(cache.lookup(slot, 0, &config, None), Lookup::Wait);
    }
    // A failed fetch ends the flight: the next caller asks again.
    assert!(!cache.failed(slot, 0, &config, &mut rng));
    assert_eq!(cache.lookup(slot, 1_000, &config, None), Lookup::Miss);

    // Resolutions: a second caller asks only what nobody is asking yet.
    let mut state: State<(), _> = State::new(Config::default(), SplitMix64::from_seed(7));
    let t0 = 1_000_000;
    let first = state.plan(
        &deps(&[("a", "1"), ("b", "^2")]),
        &Mocks::default(),
        t0,
        None,
    );
    assert_eq!(first.fetch, deps(&[("a", "1"), ("b", "^2")]));
    let second = state.plan(
        &deps(&[("b", "^2"), ("c", "*")]),
        &Mocks::default(),
        t0,
        None,
    );
    assert_eq!(second.fetch, deps(&[("c", "*")]));
    assert_eq!(second.wait, deps(&[("b", "^2")]));
    // The same question again waits for both.
    let third = state.plan(
        &deps(&[("a", "1"), ("c", "*")]),
        &Mocks::default(),
        t0,
        None,
    );
    assert!(third.fetch.is_empty());
    assert_eq!(third.wait, deps(&[("a", "1"), ("c", "*")]));
    // Once answered (even with nothing), the flight is over.
    state.store_resolution(
        &first.fetch,
        Resolution::default(),
        t0,
        (0, RegistryClock::LOCAL),
        &mut |_| (),
    );
    let fourth = state.plan(&deps(&[("a", "1")]), &Mocks::default(), t0, None);
    assert_eq!(
        fourth.fetch,
        deps(&[("a", "1")]),
        "nothing found is asked again"
    );
    assert!(fourth.wait.is_empty());
}

#[test]
fn memory_answers_follow_the_registry_generation_and_leases() {
    let config = Config::default();
    let mut cache: Cache<()> = Cache::default();
    let slot = cache.slot(
        Kind::Instances,
        ServiceName::parse("api").unwrap(),
        Query::any(),
    );
    let t0 = 1_000_000;
    cache.store(
        slot,
        vec![instance("api", "1.0.0", "a", "h:1", t0)],
        None,
        (),
        t0,
        7,
        RegistryClock::LOCAL,
    );
    assert_eq!(cache.lookup(slot, t0 + 1, &config, Some(7)), Lookup::Hit);
    assert_eq!(cache.lookup(slot, t0 + 1, &config, Some(8)), Lookup::Miss);
    assert_eq!(
        cache.lookup(slot, t0 + 10_000, &config, Some(7)),
        Lookup::Miss
    );
}

#[test]
fn picks_avoid_ejected_instances_until_the_ejection_ends() {
    let config = Config::default();
    let mut rng = SplitMix64::from_seed(3);
    let mut outliers = Outliers::new(config.outlier.clone());
    let mut cache: Cache<()> = Cache::default();
    let slot = cache.slot(
        Kind::Instances,
        ServiceName::parse("api").unwrap(),
        Query::any(),
    );
    let t0 = 1_000_000;
    let list = vec![
        instance("api", "1.0.0", "a", "h:1", t0),
        instance("api", "1.0.0", "b", "h:2", t0),
    ];
    cache.store(slot, list, None, (), t0, 0, RegistryClock::LOCAL);
    let mut pick = |cache: &mut Cache<()>, outliers: &Outliers, now| {
        cache
            .pick(
                slot,
                Strategy::RoundRobin,
                None,
                now,
                &config,
                outliers,
                &mut rng,
            )
            .unwrap()
    };
    let seen: Vec<usize> = (0..4).map(|_| pick(&mut cache, &outliers, t0)).collect();
    assert!(seen.contains(&0) && seen.contains(&1), "{seen:?}");
    let mut ejected = false;
    for _ in 0..config.outlier.consecutive_failures {
        ejected |= outliers.report_failure("api", "h:1", t0);
    }
    assert!(ejected);
    for _ in 0..10 {
        assert_eq!(pick(&mut cache, &outliers, t0 + 1), 1);
    }
    // Back once the ejection ends.
    let later = t0 + 1 + config.outlier.base_ejection_ms;
    let seen: Vec<usize> = (0..4).map(|_| pick(&mut cache, &outliers, later)).collect();
    assert!(seen.contains(&0), "{seen:?}");
}

/// A slot holding `list`, and a closure picking from it with `strategy` and `key`.
fn stored(list: Vec<Instance>, t0: Millis) -> (Cache<()>, Handle) {
    let mut cache: Cache<()> = Cache::default();
    let slot = cache.slot(
        Kind::Instances,
        ServiceName::parse("api").unwrap(),
        Query::any(),
    );
    cache.store(slot, list, None, (), t0, 0, RegistryClock::LOCAL);
    (cache, slot)
}

#[test]
fn picks_choose_among_the_newest_version_as_resolution_does() {
    let t0 = 1_000_000;
    let list = vec![
        instance("api", "2.1.0", "a", "h:1", t0),
        instance("api", "2.1.0", "b", "h:2", t0),
        instance("api", "2.0.3", "c", "h:3", t0),
    ];
    let config = Config::default();
    let outliers = Outliers::new(config.outlier.clone());
    let mut rng = SplitMix64::from_seed(4);
    let (mut cache, slot) = stored(list.clone(), t0);
    let mut seen = BTreeSet::new();
    for &strategy in Strategy::ALL {
        for k in 0..200u32 {
            let key = k.to_le_bytes();
            let picked = cache
                .pick(slot, strategy, Some(&key), t0, &config, &outliers, &mut rng)
                .unwrap();
            seen.insert(list[picked].url.clone());
        }
    }
    let resolved = vasco_core::registry::live_matching(list.iter(), &Query::any(), t0);
    let resolution =
        vasco_core::resolve::resolve(&deps(&[("api", "^2")]), &Mocks::default(), t0, |_| {
            resolved.iter().copied()
        });
    let expected: BTreeSet<String> = resolution.resolved["api"]
        .urls()
        .into_iter()
        .map(String::from)
        .collect();
    assert_eq!(seen, expected);
}

#[test]
fn consistent_hash_picks_agree_with_the_core_selector_over_instances() {
    // The page builds `Selector`s from instances through the same core rule; the client's
    // pick for a key must be the same instance.
    let t0 = 1_000_000;
    let list: Vec<Instance> = (0..20)
        .map(|i| {
            instance(
                "api",
                "1.0.0",
                &format!("id-{i}"),
                &format!("10.0.0.{i}:80"),
                t0,
            )
        })
        .collect();
    let config = Config::default();
    let outliers = Outliers::new(config.outlier.clone());
    let mut rng = SplitMix64::from_seed(5);
    let (mut cache, slot) = stored(list.clone(), t0);
    for strategy in [Strategy::Maglev, Strategy::Ring] {
        let mut core = Selector::new(
            SelectorConfig::new(strategy),
            list.iter().map(Candidate::from_instance).collect(),
        );
        for k in 0..50 {
            let key = format!("user-{k}");
            let ours = cache
                .pick(
                    slot,
                    strategy,
                    Some(key.as_bytes()),
                    t0,
                    &config,
                    &outliers,
                    &mut rng,
                )
                .unwrap();
            let theirs = core.pick(&mut rng, Some(key.as_bytes())).unwrap();
            assert_eq!(list[ours].id, list[theirs].id, "{strategy} {key}");
        }
    }
}

#[test]
fn below_the_protection_threshold_ejected_instances_are_picked_again() {
    let t0 = 1_000_000;
    let list: Vec<Instance> = (0..4)
        .map(|i| instance("api", "1.0.0", &format!("i{i}"), &format!("h:1{i}"), t0))
        .collect();
    let config = Config {
        protection_threshold: 0.8,
        outlier: OutlierConfig {
            max_ejection_percent: 100,
            ..Config::default().outlier
        },
        ..Config::default()
    };
    let mut outliers = Outliers::new(config.outlier.clone());
    let mut rng = SplitMix64::from_seed(6);
    let (mut cache, slot) = stored(list.clone(), t0);
    let mut picks = |cache: &mut Cache<()>, outliers: &Outliers| {
        (0..40)
            .map(|_| {
                let i = cache
                    .pick(
                        slot,
                        Strategy::RoundRobin,
                        None,
                        t0 + 1,
                        &config,
                        outliers,
                        &mut rng,
                    )
                    .unwrap();
                list[i].url.clone()
            })
            .collect::<BTreeSet<_>>()
    };
    for _ in 0..config.outlier.consecutive_failures {
        outliers.report_failure("api", "h:10", t0);
    }
    // 3 of 4 healthy (0.75 < 0.8): the selector panics and uses all four.
    assert_eq!(picks(&mut cache, &outliers).len(), 4);
    // With a threshold of 0.5 the same ejection is honoured (a fresh picker).
    let lenient = Config {
        protection_threshold: 0.5,
        ..config.clone()
    };
    let (mut fresh, fresh_slot) = stored(list.clone(), t0);
    let mut seen = BTreeSet::new();
    for _ in 0..40 {
        let i = fresh
            .pick(
                fresh_slot,
                Strategy::RoundRobin,
                None,
                t0 + 1,
                &lenient,
                &outliers,
                &mut rng,
            )
            .unwrap();
        seen.insert(list[i].url.clone());
    }
    assert!(!seen.contains("h:10") && seen.len() == 3, "{seen:?}");
}

#[test]
fn resolutions_plan_fetch_answer_and_survive_outages() {
    let mut state: State<(), _> = State::new(Config::default(), SplitMix64::from_seed(4));
    let deps = deps(&[("api", "^2"), ("auth", "1.0.0"), ("db", "*")]);
    let mocks = Mocks::parse([("auth", "localhost:3000")]).unwrap();
    let t0 = 1_000_000;
    let plan = state.plan(&deps, &mocks, t0, None);
    assert_eq!(plan.fetch.len(), 2, "auth is mocked");
    let mut resolution = Resolution::default();
    resolution.resolved.insert(
        "api".into(),
        vasco_core::Resolved {
            version: Some(Version::parse("2.1.0").unwrap()),
            instances: vec![instance("api", "2.1.0", "a", "h:1", t0)],
            mock: None,
        },
    );
    resolution.missing.push("db".into());
    state.store_resolution(
        &plan.fetch,
        resolution,
        t0,
        (0, RegistryClock::LOCAL),
        &mut |_| (),
    );
    let answer = state.answer(&deps, &mocks, t0);
    assert_eq!(answer.missing, vec!["db".to_string()]);
    assert!(answer.unknown.is_empty() && !answer.stale);
    let urls = state.urls(&answer, t0);
    assert_eq!(urls["api"], "h:1");
    assert_eq!(urls["auth"], "localhost:3000");

    // Fresh: only the missing one is asked again; api is answered from the cache.
    let plan = state.plan(&deps, &mocks, t0 + 10, None);
    assert_eq!(plan.fetch, self::deps(&[("db", "*")]));
    state.store_resolution(
        &plan.fetch,
        Resolution::default(),
        t0 + 10,
        (0, RegistryClock::LOCAL),
        &mut |_| (),
    );
    // Later the registry is down: api is served stale, db stays missing.
    let later = t0 + 20_000;
    let plan = state.plan(&deps, &mocks, later, None);
    assert_eq!(plan.fetch.len(), 2);
    state.resolution_failed(&plan.fetch, later);
    let answer = state.answer(&deps, &mocks, later);
    assert!(answer.stale);
    assert_eq!(state.urls(&answer, later)["api"], "h:1");
    // A dependency never seen cannot be answered during an outage.
    let other = self::deps(&[("billing", "1.0.0")]);
    let plan = state.plan(&other, &Mocks::default(), later, None);
    state.resolution_failed(&plan.fetch, later);
    assert_eq!(
        state.answer(&other, &Mocks::default(), later).unknown,
        vec!["billing".to_string()]
    );
}

#[test]
fn status_options_read_as_the_registry_reads_its_query() {
    let none = Value::Null;
    let f = |status: Value, passing: Value, all: Value| status_filter(&status, &passing, &all);
    assert_eq!(
        f(none.clone(), none.clone(), none.clone()).unwrap(),
        StatusFilter::DEFAULT
    );
    assert_eq!(
        f(json!("passing, warning"), none.clone(), none.clone()).unwrap(),
        StatusFilter::DEFAULT
    );
    let critical = f(
        json!(["critical", "maintenance"]),
        json!(false),
        none.clone(),
    )
    .unwrap();
    assert!(critical.contains(Status::Critical) && !critical.contains(Status::Passing));
    assert_eq!(
        f(none.clone(), json!(true), none.clone()).unwrap(),
        StatusFilter::PASSING
    );
    assert_eq!(
        f(none.clone(), json!(false), json!(true)).unwrap(),
        StatusFilter::ALL
    );
    for (status, passing, all) in [
        (json!("sick"), none.clone(), none.clone()),
        (json!(""), none.clone(), none.clone()),
        (json!([1]), none.clone(), none.clone()),
        (json!(3), none.clone(), none.clone()),
        (none.clone(), json!("yes"), none.clone()),
        (json!("passing"), none.clone(), json!(true)),
        (none.clone(), json!(true), json!(true)),
    ] {
        let err = f(status.clone(), passing.clone(), all.clone()).unwrap_err();
        assert_eq!(err.code(), "invalid_status", "{status} {passing} {all}");
    }
    let both = f(json!("passing"), Value::Null, json!(true)).unwrap_err();
    assert!(both.to_string().contains("not status and all"), "{both}");
}

#[test]
fn slots_are_distinct_per_status_filter() {
    let mut cache: Cache<()> = Cache::default();
    let api = ServiceName::parse("api").unwrap();
    let default = cache.slot(Kind::Instances, api.clone(), Query::any());
    let all = Query {
        statuses: StatusFilter::ALL,
        ..Query::any()
    };
    let every = cache.slot(Kind::Instances, api.clone(), all.clone());
    assert_ne!(default, every);
    assert_eq!(cache.slot(Kind::Instances, api, all), every);
}

#[test]
fn health_check_outcomes_become_check_results() {
    let r = |value: Value, thrown: bool| check_outcome(&value, thrown);
    assert_eq!(r(json!(true), false), (Status::Passing, None));
    assert_eq!(r(Value::Null, false), (Status::Passing, None));
    assert_eq!(
        r(json!(false), false),
        (
            Status::Critical,
            Some("the health check returned false".into())
        )
    );
    assert_eq!(
        r(json!("db down\nretrying"), true),
        (Status::Critical, Some("db down retrying".into()))
    );
    assert_eq!(
        r(json!({"status": "warning", "note": "slow"}), false),
        (Status::Warning, Some("slow".into()))
    );
    assert_eq!(
        r(json!({"status": "passing"}), false),
        (Status::Passing, None)
    );
    // Not a result a check may give: critical, saying what came back.
    for bad in [
        json!({"status": "maintenance"}),
        json!({"status": "fine"}),
        json!({"state": "passing"}),
        json!("ok"),
        json!(1),
    ] {
        let (status, note) = r(bad.clone(), false);
        assert_eq!(status, Status::Critical, "{bad}");
        assert!(
            note.unwrap().starts_with("the health check returned "),
            "{bad}"
        );
    }
    // Notes fit the registry's limit.
    let (_, note) = r(json!("x".repeat(1000)), true);
    assert_eq!(note.unwrap().chars().count(), REASON_LEN);
}

fn registration() -> Registration {
    Registration::from_options(&json!({"name": "api", "version": "1.0.0", "url": "h:1"})).unwrap()
}

/// The registration's instance as the registry stores it, registered at `at`, with
/// `updates` applied.
fn leased(reg: &Registration, at: Millis, updates: &[HealthUpdate]) -> Instance {
    let mut instance = Instance::lease(reg.key.clone(), reg.spec.clone(), at, None);
    for update in updates {
        instance.health.apply(update, 0);
    }
    instance
}

#[test]
fn a_maintenance_set_rides_every_registration_and_comes_back_after_a_lost_lease() {
    let mut reg = registration();
    let update = reg
        .set_status("maintenance", Some("shutdown".into()), None)
        .unwrap();
    assert_eq!(reg.spec.health.set.as_ref(), Some(&update));
    // The instance as it was before the set: the set is to be sent.
    let before = Instance::lease(
        reg.key.clone(),
        InstanceSpec::new("h:1").unwrap(),
        1_000,
        None,
    );
    assert_eq!(reg.follow_up(&before), Some(update.clone()));
    let after = leased(&reg, 1_000, &[]);
    assert_eq!(
        after.health.status,
        Status::Maintenance,
        "the body carries it"
    );
    reg.applied(&after);
    assert_eq!(reg.follow_up(&after), None);
    // A lease registered anew carries it from its registration: nothing to send.
    let again = leased(&reg, 9_000, &[]);
    assert_eq!(reg.follow_up(&again), None);
    // Bad input is refused as the registry refuses it.
    assert_eq!(
        reg.set_status("sleeping", None, None).unwrap_err().code(),
        "invalid_status"
    );
    assert_eq!(
        reg.set_status("warning", Some("x".repeat(REASON_LEN + 1)), None)
            .unwrap_err()
            .code(),
        "invalid_reason"
    );
}

#[test]
fn another_set_is_sent_once_and_again_only_to_an_instance_registered_anew() {
    let mut reg = registration();
    let update = reg
        .set_status("warning", Some("degraded".into()), None)
        .unwrap();
    assert_eq!(
        reg.spec.health.set, None,
        "renewals must not undo others' sets"
    );
    let fresh = leased(&reg, 1_000, &[]);
    assert_eq!(reg.follow_up(&fresh), Some(update.clone()));
    let warned = leased(&reg, 1_000, std::slice::from_ref(&update));
    reg.applied(&warned);
    // A check moves it later on the same instance: not undone.
    let moved = leased(
        &reg,
        1_000,
        &[update.clone(), HealthUpdate::check(Status::Passing, None)],
    );
    assert_eq!(reg.follow_up(&moved), None);
    // The lease was lost and taken anew: passing again, so the set goes again.
    let anew = leased(&reg, 5_000, &[]);
    assert_eq!(reg.follow_up(&anew), Some(update));
}

#[test]
fn check_results_go_in_bodies_and_as_messages_when_the_registry_differs() {
    let mut reg = registration();
    let check = reg.report_check(&json!(false), false);
    assert_eq!(check.status(), Some(Status::Critical));
    // A first registration takes it undamped.
    let first = leased(&reg, 1_000, &[]);
    assert_eq!(first.health.status, Status::Critical);
    assert_eq!(reg.follow_up(&first), None);
    // Back to passing: the registry still says critical, so it is sent.
    let ok = reg.report_check(&Value::Null, false);
    assert_eq!(reg.follow_up(&first), Some(ok.clone()));
    let healed = leased(&reg, 1_000, &[check, ok.clone()]);
    assert_eq!(reg.follow_up(&healed), None);
    // An instance that damps its checks gets every result.
    let mut damped = healed.clone();
    damped.health.check.damping.success_before_passing = 3;
    assert_eq!(reg.follow_up(&damped), Some(ok));
}

#[test]
fn drain_times_read_numbers_and_environment_strings() {
    assert_eq!(drain_ms(&Value::Null).unwrap(), None);
    assert_eq!(drain_ms(&json!(0)).unwrap(), Some(0));
    assert_eq!(drain_ms(&json!(1500.4)).unwrap(), Some(1500));
    assert_eq!(drain_ms(&json!(" 250 ")).unwrap(), Some(250));
    assert_eq!(drain_ms(&json!("")).unwrap(), None);
    for bad in [
        json!(-1),
        json!("soon"),
        json!(true),
        json!(MAX_DRAIN_MS + 1),
    ] {
        assert_eq!(
            drain_ms(&bad).unwrap_err().code(),
            "invalid_argument",
            "{bad}"
        );
    }
    let reg = Registration::from_options(
        &json!({"name": "api", "version": "1.0.0", "url": "h:1", "drainMs": 0}),
    )
    .unwrap();
    assert_eq!(reg.drain_ms, Some(0));
    let pkg = json!({"name": "api", "version": "1.0.0", "vasco": {"drainMs": 100}});
    assert_eq!(
        Registration::from_package(&json!("h:1"), &pkg)
            .unwrap()
            .drain_ms,
        Some(100)
    );
}

#[test]
fn picks_never_return_critical_or_maintenance_and_warning_only_as_a_last_resort() {
    let t0 = 1_000_000;
    let with = |mut i: Instance, status: Status| {
        i.health.apply(&HealthUpdate::set(status, None), 0);
        i
    };
    let a = instance("api", "1.0.0", "a", "h:1", t0);
    let b = with(
        instance("api", "2.0.0", "b", "h:2", t0),
        Status::Maintenance,
    );
    let c = with(instance("api", "2.0.0", "c", "h:3", t0), Status::Warning);
    let d = instance("api", "2.0.0", "d", "h:4", t0);
    let config = Config::default();
    let outliers = Outliers::new(config.outlier.clone());
    let mut rng = SplitMix64::from_seed(9);
    let picked = |list: Vec<Instance>, rng: &mut SplitMix64| {
        let (mut cache, slot) = stored_list(list.clone(), t0);
        let mut seen = BTreeSet::new();
        for &strategy in Strategy::ALL {
            for k in 0..100u32 {
                let key = k.to_le_bytes();
                if let Some(i) = cache.pick(slot, strategy, Some(&key), t0, &config, &outliers, rng)
                {
                    seen.insert(list[i].id.to_string());
                }
            }
        }
        seen
    };
    let all = vec![a.clone(), b.clone(), c.clone(), d.clone()];
    assert_eq!(picked(all, &mut rng), BTreeSet::from(["d".to_string()]));
    let d_critical = with(d.clone(), Status::Critical);
    let list = vec![a.clone(), b.clone(), c.clone(), d_critical.clone()];
    assert_eq!(picked(list, &mut rng), BTreeSet::from(["c".to_string()]));
    // Nothing selectable in 2.0.0: the pool is 1.0.0, the version resolution picks.
    let c_down = with(c, Status::Maintenance);
    let list = vec![a, b.clone(), c_down.clone(), d_critical.clone()];
    assert_eq!(picked(list, &mut rng), BTreeSet::from(["a".to_string()]));
    assert!(picked(vec![b, c_down, d_critical], &mut rng).is_empty());
}

fn stored_list(list: Vec<Instance>, t0: Millis) -> (Cache<()>, Handle) {
    let mut cache: Cache<()> = Cache::default();
    let query = Query {
        statuses: StatusFilter::ALL,
        ..Query::any()
    };
    let slot = cache.slot(Kind::Instances, ServiceName::parse("api").unwrap(), query);
    cache.store(slot, list, None, (), t0, 0, RegistryClock::LOCAL);
    (cache, slot)
}

fn service(name: &str) -> ServiceName {
    ServiceName::parse(name).unwrap()
}

#[test]
fn the_cache_keeps_at_most_its_capacity_of_questions() {
    // A long-lived client asked many distinct questions: the cache stays at its capacity, and
    // each question pushed out is reported once, with its service.
    let mut cache: Cache<()> = Cache::with_capacity(64);
    let mut handles = Vec::new();
    let mut evicted = Vec::new();
    for n in 0..10_000 {
        let range = VersionReq::parse(&format!("^{n}")).unwrap();
        handles.push(cache.slot(Kind::Instances, service("api"), Query::version(range)));
        assert!(
            cache.len() <= 64,
            "{} slots after {n} questions",
            cache.len()
        );
        evicted.extend(cache.take_evicted());
    }
    assert_eq!(cache.len(), 64);
    assert_eq!(evicted.len(), 10_000 - 64);
    assert!(evicted.iter().all(|(_, s)| s.as_str() == "api"));
    // The first questions went first; their handles name nothing any more, although their
    // places hold other questions now.
    let gone: BTreeSet<Handle> = evicted.iter().map(|(h, _)| *h).collect();
    assert_eq!(gone.len(), evicted.len(), "a handle is never reused");
    assert!(gone.contains(&handles[0]) && !gone.contains(&handles[9_999]));
    for handle in &handles[..10_000 - 64] {
        assert!(cache.get(*handle).is_none());
        assert!(cache.answer(*handle).is_none());
        assert_eq!(
            cache.lookup(*handle, 0, &Config::default(), None),
            Lookup::Miss
        );
    }
    for handle in &handles[10_000 - 64..] {
        assert!(cache.get(*handle).is_some());
    }
}

#[test]
fn the_cache_evicts_the_least_recently_used_question() {
    let config = Config::default();
    let mut rng = SplitMix64::from_seed(3);
    let outliers = Outliers::new(config.outlier.clone());
    let mut cache: Cache<()> = Cache::with_capacity(3);
    let t0 = 1_000_000;
    let [a, b, c] = ["a", "b", "c"].map(|n| cache.slot(Kind::Instances, service(n), Query::any()));
    cache.store(
        a,
        vec![instance("a", "1.0.0", "x", "h:1", t0)],
        None,
        (),
        t0,
        0,
        RegistryClock::LOCAL,
    );
    // Asking for a again, looking b up and picking from a all count as uses: c is the least
    // recently used when d arrives, then b when e does.
    cache.slot(Kind::Instances, service("a"), Query::any());
    cache.lookup(b, t0, &config, None);
    assert!(cache
        .pick(a, Strategy::Random, None, t0, &config, &outliers, &mut rng)
        .is_some());
    let d = cache.slot(Kind::Instances, service("d"), Query::any());
    assert_eq!(cache.take_evicted(), vec![(c, service("c"))]);
    let e = cache.slot(Kind::Instances, service("e"), Query::any());
    assert_eq!(cache.take_evicted(), vec![(b, service("b"))]);
    assert!([a, d, e].iter().all(|h| cache.get(*h).is_some()));
    // An evicted question asked again is a new slot, with no answer.
    let c_again = cache.slot(Kind::Instances, service("c"), Query::any());
    assert_ne!(c_again, c);
    assert!(cache.answer(c_again).is_none());
}

#[test]
fn pinned_and_fetching_slots_are_never_evicted() {
    let mut cache: Cache<()> = Cache::with_capacity(2);
    let a = cache.slot(Kind::Instances, service("a"), Query::any());
    let b = cache.slot(Kind::Instances, service("b"), Query::any());
    assert!(cache.pin(a));
    cache.begin(b);
    // Both are held: a new question gets a place beyond the capacity; the next one takes the
    // place of the one free slot, that new question.
    let c = cache.slot(Kind::Instances, service("c"), Query::any());
    assert_eq!(cache.len(), 3);
    assert!(cache.take_evicted().is_empty());
    let d = cache.slot(Kind::Instances, service("d"), Query::any());
    assert_eq!(cache.len(), 3);
    assert_eq!(cache.take_evicted(), vec![(c, service("c"))]);
    // Once a and b are let go, the cache trims itself back to its capacity (a, the least
    // recently used, goes), then stays there.
    cache.unpin(a);
    cache.set_in_flight(b, false);
    cache.trim();
    assert_eq!(cache.len(), 2);
    assert_eq!(cache.take_evicted(), vec![(a, service("a"))]);
    for n in 0..100 {
        cache.slot(Kind::Instances, service(&format!("s{n}")), Query::any());
        assert_eq!(cache.len(), 2);
    }
    let gone: Vec<Handle> = cache.take_evicted().into_iter().map(|(h, _)| h).collect();
    assert_eq!(gone.len(), 100);
    assert!([b, d].iter().all(|h| gone.contains(h)));
    // A pin on a dead handle is refused.
    assert!(!cache.pin(a));
}

#[test]
fn outlier_state_is_kept_for_asked_services_and_running_ejections_only() {
    let config = Config {
        cache_size: 2,
        ..Config::default()
    };
    let mut state = State::new(config, SplitMix64::from_seed(4));
    let t0 = 1_000_000;
    for name in ["api", "web"] {
        let slot = state
            .cache
            .slot(Kind::Instances, service(name), Query::any());
        let list = vec![instance(name, "1.0.0", "x", "h:1", t0)];
        state.store(slot, list, None, (), t0, 0, RegistryClock::LOCAL);
    }
    let ejected = (0..5).any(|_| state.report_failure("api", "h:1", t0));
    assert!(ejected, "five failures in a row eject");
    assert!(
        !state.report_failure("web", "h:1", t0),
        "one failure does not"
    );
    assert_eq!(state.outliers.services(), 2);
    // Both questions are pushed out: the running ejection of api stays (it lasts its time),
    // web's streak goes.
    state
        .cache
        .slot(Kind::Instances, service("db"), Query::any());
    state
        .cache
        .slot(Kind::Instances, service("q"), Query::any());
    assert_eq!(state.take_evicted(t0).len(), 2);
    assert_eq!(state.outliers.services(), 1);
    let api = instance("api", "1.0.0", "x", "h:1", t0);
    assert!(state.outliers.ejected_until(&api, t0 + 1).is_some());
    // Reports about a service nobody asks about leave nothing behind, however many.
    for n in 0..1_000 {
        for _ in 0..5 {
            assert!(!state.report_failure(&format!("s{n}"), "h:1", t0));
        }
    }
    assert_eq!(state.outliers.services(), 1);
    // Once the ejection has ended, the next eviction lets api go too.
    let later = t0 + 10 * 60 * 1000;
    state
        .cache
        .slot(Kind::Instances, service("r"), Query::any());
    state.take_evicted(later);
    assert_eq!(state.outliers.services(), 0);
}

#[test]
fn connect_options_become_the_clients_tuning() {
    let config = Config::from_options(&json!({
        "url": "memory:",
        "cacheTtl": 1000,
        "staleIfError": 60000,
        "cacheSize": 16,
        "zone": "eu-1",
        "protectionThreshold": 0.5,
        "drainMs": "250",
        "outlier": {"consecutiveFailures": 3, "maxEjectionPercent": 150, "alwaysEjectOne": false},
    }))
    .unwrap();
    let default = CachePolicy::default();
    assert_eq!(config.cache.fresh_ms, 1000);
    assert_eq!(
        config.cache.refresh_after_ms,
        1000 * default.refresh_after_ms / default.fresh_ms,
        "the core's refresh proportion is kept"
    );
    assert_eq!(
        config.cache.stale_if_error_ms, 61_000,
        "counted from the fetch"
    );
    assert_eq!(config.cache_size, 16);
    assert_eq!(config.local_zone.as_deref(), Some("eu-1"));
    assert_eq!(config.protection_threshold, 0.5);
    assert_eq!(config.drain_ms, 250);
    assert_eq!(config.outlier.consecutive_failures, 3);
    assert_eq!(config.outlier.max_ejection_percent, 100, "clamped");
    assert!(!config.outlier.always_eject_one);
    // Absent options are the defaults; null is absent.
    let none = Config::from_options(&json!({"zone": null})).unwrap();
    assert_eq!(none.cache_size, DEFAULT_CAPACITY);
    assert_eq!(none.cache.fresh_ms, default.fresh_ms);
    assert!(none.outlier.always_eject_one);

    let refused = |options: Value| Config::from_options(&options).unwrap_err().to_string();
    assert!(refused(json!({"cacheSize": 0})).starts_with("cacheSize: must be a whole number"));
    assert!(refused(json!({"cacheSize": 2.5})).starts_with("cacheSize:"));
    assert!(refused(json!({"cacheTtl": -1})).starts_with("cacheTtl:"));
    assert!(refused(json!({"staleIfError": "long"})).starts_with("staleIfError: must be a number"));
    assert!(
        refused(json!({"outlier": {"alwaysEjectOne": 1}})).starts_with("outlier.alwaysEjectOne:")
    );
    assert!(refused(json!({"cacheSzie": 4})).contains("did you mean \"cacheSize\""));
    assert!(refused(json!({"outlier": {"baseEjection": 4}})).starts_with("outlier: unknown key"));
}
