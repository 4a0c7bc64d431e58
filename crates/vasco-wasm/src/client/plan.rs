//! Resolution from the cache: which dependencies are answered, mocked or still to fetch, and
//! the client state that ties the cache, the outliers and the randomness together.

use super::*;

/// Where one resolved dependency's urls come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A mock url, returned as given.
    Mock(String),
    /// A cache slot of kind [`Kind::Resolve`].
    Slot(Handle),
}

/// A resolution answered from the cache.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Answer {
    /// Each resolved dependency, by name.
    pub resolved: Vec<(String, Source)>,
    /// Dependencies without a live instance, sorted.
    pub missing: Vec<String>,
    /// Dependencies the registry could not be asked about and the cache does not know.
    pub unknown: Vec<String>,
    /// Whether some answer came from past its lifetime (the registry was unreachable).
    pub stale: bool,
}

/// What a resolution needs before it can be answered.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    /// Dependencies to ask the registry about now, waiting for the answer.
    pub fetch: Dependencies,
    /// Dependencies to refresh in the background (already answerable).
    pub refresh: Dependencies,
    /// Dependencies being fetched already (by another caller or a background refresh): wait
    /// for that fetch instead of asking again.
    pub wait: Dependencies,
}

/// The client's whole state, one per `connect()`.
#[derive(Debug)]
pub struct State<P, R> {
    /// Tuning.
    pub config: Config,
    /// Cached answers.
    pub cache: Cache<P>,
    /// Failure reports.
    pub outliers: Outliers,
    /// Randomness for picks and jitter, seeded at the edge.
    pub rng: R,
    /// Set by `close()`.
    pub closed: bool,
}

impl<P, R: Rng> State<P, R> {
    /// A client with `config` and `rng`.
    pub fn new(config: Config, rng: R) -> Self {
        Self {
            outliers: Outliers::new(config.outlier.clone()),
            cache: Cache::with_capacity(config.cache_size),
            config,
            rng,
            closed: false,
        }
    }

    /// Stores a fresh answer in `slot` (see [`Cache::store`]) and tells the outlier detector
    /// which instances of the service are known now.
    #[allow(clippy::too_many_arguments)] // one answer and its circumstances
    pub fn store(
        &mut self,
        slot: Handle,
        instances: Vec<Instance>,
        version: Option<Version>,
        payload: P,
        now: Millis,
        generation: u64,
        clock: RegistryClock,
    ) {
        self.cache
            .store(slot, instances, version, payload, now, generation, clock);
        let Some(service) = self.cache.get(slot).map(|s| s.service.clone()) else {
            return;
        };
        let urls = self.cache.urls(&service);
        self.outliers
            .set_hosts(service.as_str(), urls.iter().map(String::as_str));
    }

    /// The slots the cache evicted since the last call (see [`Cache::take_evicted`]), at
    /// `now`. The outlier detector forgets the instances only they knew, and the services the
    /// cache no longer asks about unless an ejection of theirs is running (see
    /// [`State::report_failure`]).
    pub fn take_evicted(&mut self, now: Millis) -> Vec<Handle> {
        let evicted = self.cache.take_evicted();
        if evicted.is_empty() {
            return Vec::new();
        }
        let services: BTreeSet<&ServiceName> = evicted.iter().map(|(_, s)| s).collect();
        for service in services {
            let urls = self.cache.urls(service);
            if !urls.is_empty() {
                self.outliers
                    .set_hosts(service.as_str(), urls.iter().map(String::as_str));
            }
        }
        let cache = &self.cache;
        self.outliers
            .retain(now, |service| cache.asks_about(service));
        evicted.into_iter().map(|(handle, _)| handle).collect()
    }

    /// A call to `url` of `service` failed: feeds outlier detection and ends a least-request
    /// pick. Returns whether this report ejected it.
    pub fn report_failure(&mut self, service: &str, url: &str, now: Millis) -> bool {
        self.cache.release(service, url);
        let ejected = self.outliers.report_failure(service, url, now);
        self.prune_outliers(service, now);
        ejected
    }

    /// A call to `url` of `service` succeeded: ends its failure streak and a least-request pick.
    pub fn report_success(&mut self, service: &str, url: &str, now: Millis) {
        self.cache.release(service, url);
        self.outliers.report_success(service, url);
        self.prune_outliers(service, now);
    }

    /// Outlier state is kept for the services the cache asks about, and for those with an
    /// ejection running (so that an ejection lasts its time even when the service's answers
    /// are pushed out of the cache); the failure streaks of a service nobody asks about are
    /// dropped, so reports about any number of names never grow the client (such a service
    /// cannot reach an ejection; one that had it is let go once it ends and an eviction sweeps).
    fn prune_outliers(&mut self, service: &str, now: Millis) {
        if !self.cache.asks_about(service) {
            self.outliers.retain_one(service, now);
        }
    }

    /// The slot answering "what does `service` at `requirement` resolve to".
    pub fn resolve_slot(&mut self, service: &ServiceName, requirement: &VersionReq) -> Handle {
        self.cache.slot(
            Kind::Resolve,
            service.clone(),
            Query::version(requirement.clone()),
        )
    }

    /// Which dependencies must be fetched before answering, which only want a background
    /// refresh, and which are being fetched already. Mocked names are never asked about. The
    /// slots to fetch and refresh are marked in flight: the caller must fetch them, then
    /// [`State::store_resolution`] or [`State::resolution_failed`].
    pub fn plan(
        &mut self,
        dependencies: &Dependencies,
        mocks: &Mocks,
        now: Millis,
        generation: Option<u64>,
    ) -> Plan {
        let mut plan = Plan::default();
        for (name, requirement) in &dependencies.0 {
            if mocks.0.contains_key(name) {
                continue;
            }
            let slot = self.resolve_slot(name, requirement);
            match self.cache.lookup(slot, now, &self.config, generation) {
                Lookup::Hit | Lookup::HitStale => {}
                Lookup::HitRefresh => {
                    plan.refresh.0.insert(name.clone(), requirement.clone());
                }
                Lookup::Miss => {
                    self.cache.begin(slot);
                    plan.fetch.0.insert(name.clone(), requirement.clone());
                }
                Lookup::Wait => {
                    plan.wait.0.insert(name.clone(), requirement.clone());
                }
            }
        }
        if !plan.fetch.is_empty() {
            // One round trip: refresh the due ones along with the missing ones.
            let refresh = core::mem::take(&mut plan.refresh);
            plan.fetch.0.extend(refresh.0);
        }
        plan
    }

    /// Stores what the registry answered for `asked` (with what it said of its clock);
    /// `payload` makes the caller's copy of each instance list.
    pub fn store_resolution(
        &mut self,
        asked: &Dependencies,
        mut resolution: Resolution,
        now: Millis,
        (generation, clock): (u64, RegistryClock),
        payload: &mut dyn FnMut(&[Instance]) -> P,
    ) {
        for (name, requirement) in &asked.0 {
            let slot = self.resolve_slot(name, requirement);
            let (instances, version) = match resolution.resolved.remove(name.as_str()) {
                Some(resolved) => (resolved.instances, resolved.version),
                None => (Vec::new(), None),
            };
            let copy = payload(&instances);
            self.store(slot, instances, version, copy, now, generation, clock);
        }
    }

    /// The registry could not be asked about `asked`: back off on each.
    pub fn resolution_failed(&mut self, asked: &Dependencies, now: Millis) {
        for (name, requirement) in &asked.0 {
            let slot = self.resolve_slot(name, requirement);
            self.cache.failed(slot, now, &self.config, &mut self.rng);
        }
    }

    /// The answer from what the cache holds now, however old, within the stale-if-error limit.
    pub fn answer(&mut self, dependencies: &Dependencies, mocks: &Mocks, now: Millis) -> Answer {
        let mut answer = Answer::default();
        for (name, requirement) in &dependencies.0 {
            if let Some(url) = mocks.0.get(name) {
                answer
                    .resolved
                    .push((name.as_str().into(), Source::Mock(url.clone())));
                continue;
            }
            let slot = self.resolve_slot(name, requirement);
            if !self.cache.usable(slot, now, &self.config) {
                answer.unknown.push(name.as_str().into());
                continue;
            }
            let Some((instances, _, _)) = self.cache.answer(slot) else {
                answer.unknown.push(name.as_str().into());
                continue;
            };
            if instances.is_empty() {
                answer.missing.push(name.as_str().into());
                continue;
            }
            if self.cache.is_stale(slot, now, &self.config) {
                answer.stale = true;
            }
            answer
                .resolved
                .push((name.as_str().into(), Source::Slot(slot)));
        }
        answer
    }

    /// One url per resolved dependency (`findDependencies`): the mock, or a random live,
    /// non-ejected instance of the resolved version.
    pub fn urls(&mut self, answer: &Answer, now: Millis) -> BTreeMap<String, String> {
        let mut urls = BTreeMap::new();
        for (name, source) in &answer.resolved {
            let url = match source {
                Source::Mock(url) => Some(url.clone()),
                Source::Slot(slot) => self
                    .cache
                    .pick(
                        *slot,
                        Strategy::Random,
                        None,
                        now,
                        &self.config,
                        &self.outliers,
                        &mut self.rng,
                    )
                    .and_then(|i| {
                        self.cache
                            .answer(*slot)
                            .map(|(list, _, _)| list[i].url.clone())
                    }),
            };
            if let Some(url) = url {
                urls.insert(name.clone(), url);
            }
        }
        urls
    }
}
