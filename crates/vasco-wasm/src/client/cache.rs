//! The answer cache: one slot per distinct question, its freshness, and the pickers over it.

use super::*;

/// Retries of a failed cache refresh: from 100 ms, doubling, at most 10 s apart.
const REFRESH_BACKOFF: Backoff = Backoff {
    base_ms: 100,
    max_ms: 10_000,
};

/// What a slot answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    /// Every live instance matching a query (`instances`, `pick`).
    Instances,
    /// The newest version with live instances (`resolve`, `findDependencies`).
    Resolve,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct SlotKey {
    kind: Kind,
    service: ServiceName,
    version: String,
    tags: Vec<String>,
    zone: Option<String>,
    /// The statuses listed, as a bit set (`StatusFilter` is not ordered).
    statuses: u8,
}

/// What a caller does with a slot right now (the core's [`Freshness`] plus this client's
/// retry schedule).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup {
    /// Serve the cached answer.
    Hit,
    /// Serve it, and start a background refresh (the slot is now marked in flight).
    HitRefresh,
    /// Past its lifetime, but the registry failed recently and the next retry is not due:
    /// serve the last good answer (stale-if-error).
    HitStale,
    /// Nothing servable without asking: fetch and wait (serving the old answer if that fails
    /// and it is young enough). The caller marks the slot with [`Cache::begin`] when it starts
    /// that fetch.
    Miss,
    /// Nothing servable without asking, and a fetch of this slot is already in flight: wait
    /// for it rather than sending the same question again.
    Wait,
}

/// A slot's handle, as JavaScript holds it: the slot's place in the cache in the low
/// [`PLACE_BITS`] bits and, above them, how many slots held that place before it, so the
/// handle of an evicted slot never names the slot that took its place (for 4,096 reuses of
/// one place, after which it wraps: 2^29 reuses; the package also drops evicted handles when
/// told, see [`Cache::take_evicted`]). Below 2^49, so JavaScript holds it exactly as a number.
pub type Handle = u64;

/// Bits of a [`Handle`] that give the slot's place.
pub const PLACE_BITS: u32 = 20;

/// The most places a cache has: slots beyond [`Cache::capacity`] exist only while every other
/// slot is pinned or being fetched, and never beyond this.
pub const MAX_PLACES: usize = 1 << PLACE_BITS;

/// Bits of a [`Handle`] above its place that count the place's reuses.
const REUSE_BITS: u32 = 29;

/// The largest capacity ([`Cache::with_capacity`], `cacheSize`): finding the least recently
/// used slot scans the slots, so a new question costs about 0.1 ms per 1,000 slots held.
pub const MAX_CAPACITY: usize = 16_384;

/// How many distinct questions a client keeps answers to unless `cacheSize` says otherwise.
pub const DEFAULT_CAPACITY: usize = 1024;

/// The place a [`Handle`] names (its low [`PLACE_BITS`] bits).
fn place_of(handle: Handle) -> usize {
    (handle & (MAX_PLACES as Handle - 1)) as usize
}

/// One cached question and its last good answer.
#[derive(Debug)]
pub struct Slot<P> {
    /// What is asked.
    pub kind: Kind,
    /// Of which service.
    pub service: ServiceName,
    /// Which instances.
    pub query: Query,
    handle: Handle,
    key: SlotKey,
    /// The cache's use counter when the slot was last asked for, looked up or picked from.
    last_use: u64,
    /// Holders that need the slot to stay (a watcher, a caller waiting for its answer).
    pins: u32,
    entry: Option<Entry<P>>,
    in_flight: bool,
    failures: u32,
    pub(super) retry_at: Millis,
}

#[derive(Debug)]
struct Entry<P> {
    instances: Vec<Instance>,
    version: Option<Version>,
    payload: P,
    fetched_at: Millis,
    generation: u64,
    /// Local time from which the first lease in `instances` may have ended.
    lease_end: Millis,
    pickers: Vec<Picker>,
}

#[derive(Debug)]
struct Picker {
    strategy: Strategy,
    selector: Selector,
    /// Candidate index to instance index: the instances of the newest version.
    map: Vec<usize>,
    /// Instance indexes that were ejected when this picker was built (marked unhealthy).
    excluded: Vec<usize>,
    /// Candidate index by url, for ending least-request picks (empty for other strategies).
    by_url: BTreeMap<String, usize>,
    epoch: u64,
    recheck_at: Millis,
}

/// Cached answers, at most [`Cache::capacity`] distinct questions (least recently used
/// first out); slots are addressed by [`Handle`] so JavaScript can hold one.
///
/// A slot that is pinned ([`Cache::pin`]) or being fetched is never evicted: while the cache
/// is full of those, a new question is added beyond the capacity, and the cache comes back to
/// its capacity as they are let go ([`Cache::trim`]). The places of evicted slots are reused,
/// so the table of places grows no larger than the most slots ever held at once.
///
/// ```
/// # use vasco_wasm::client::{Cache, Kind};
/// # use vasco_core::{Query, ServiceName};
/// let mut cache: Cache<()> = Cache::with_capacity(2);
/// let name = |n: &str| ServiceName::parse(n).unwrap();
/// let api = cache.slot(Kind::Instances, name("api"), Query::any());
/// let auth = cache.slot(Kind::Instances, name("auth"), Query::any());
/// cache.slot(Kind::Instances, name("api"), Query::any()); // api is used again
/// let db = cache.slot(Kind::Instances, name("db"), Query::any()); // auth goes
/// assert_eq!(cache.len(), 2);
/// assert_eq!(cache.take_evicted(), vec![(auth, name("auth"))]);
/// assert!(cache.get(auth).is_none() && cache.get(api).is_some() && cache.get(db).is_some());
/// ```
#[derive(Debug)]
pub struct Cache<P> {
    places: Vec<Place<P>>,
    /// Places without a slot.
    free: Vec<usize>,
    index: BTreeMap<SlotKey, usize>,
    /// The places of each service's slots (so a service's answers are found without a scan).
    by_service: BTreeMap<ServiceName, BTreeSet<usize>>,
    capacity: usize,
    /// Counts uses, for least-recently-used eviction.
    uses: u64,
    /// Slots evicted since [`Cache::take_evicted`] was last called.
    evicted: Vec<(Handle, ServiceName)>,
}

/// One place of the slot table: its slot, if any, and how many slots it held before.
#[derive(Debug)]
struct Place<P> {
    reuses: u64,
    slot: Option<Slot<P>>,
}

impl<P> Default for Cache<P> {
    fn default() -> Self {
        Self::with_capacity(DEFAULT_CAPACITY)
    }
}

impl<P> Cache<P> {
    /// An empty cache keeping at most `capacity` distinct questions (1 to [`MAX_CAPACITY`];
    /// clamped).
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            places: Vec::new(),
            free: Vec::new(),
            index: BTreeMap::new(),
            by_service: BTreeMap::new(),
            capacity: capacity.clamp(1, MAX_CAPACITY),
            uses: 0,
            evicted: Vec::new(),
        }
    }

    /// How many distinct questions it keeps (see the type's documentation for when it holds
    /// more for a while).
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// How many slots it holds now.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// Whether it holds no slot.
    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// The slot for a question, created on first use (evicting the least recently used slots
    /// that are neither pinned nor being fetched when the cache is full).
    pub fn slot(&mut self, kind: Kind, service: ServiceName, query: Query) -> Handle {
        let key = SlotKey {
            kind,
            service: service.clone(),
            version: query.version.as_str().into(),
            tags: query.tags.clone(),
            zone: query.zone.clone(),
            statuses: query
                .statuses
                .iter()
                .fold(0, |bits, status| bits | 1 << status as u8),
        };
        self.uses += 1;
        if let Some(&place) = self.index.get(&key) {
            if let Some(slot) = self.places[place].slot.as_mut() {
                slot.last_use = self.uses;
                return slot.handle;
            }
        }
        self.evict_down_to(self.capacity - 1);
        let place = match self.free.pop() {
            Some(place) => place,
            None if self.places.len() < MAX_PLACES => {
                self.places.push(Place {
                    reuses: 0,
                    slot: None,
                });
                self.places.len() - 1
            }
            // Every place holds a pinned or fetching slot: the least recently used goes anyway
            // (its holders then get `Evicted`), rather than failing.
            None => {
                let place = self.least_recently_used(true).unwrap_or(0);
                self.evict(place);
                self.free.pop().unwrap_or(place)
            }
        };
        let handle = (self.places[place].reuses << PLACE_BITS) | place as Handle;
        self.by_service
            .entry(service.clone())
            .or_default()
            .insert(place);
        self.places[place].slot = Some(Slot {
            kind,
            service,
            query,
            handle,
            key: key.clone(),
            last_use: self.uses,
            pins: 0,
            entry: None,
            in_flight: false,
            failures: 0,
            retry_at: 0,
        });
        self.index.insert(key, place);
        handle
    }

    /// Evicts the least recently used slots that are neither pinned nor being fetched while it
    /// holds more than its capacity; call it when slots are let go (a fetch ends, a pin is
    /// released). The evicted slots are reported by [`Cache::take_evicted`].
    pub fn trim(&mut self) {
        self.evict_down_to(self.capacity);
    }

    fn evict_down_to(&mut self, len: usize) {
        while self.index.len() > len {
            match self.least_recently_used(false) {
                Some(place) => self.evict(place),
                None => break,
            }
        }
    }

    /// The place of the least recently used slot that is neither pinned nor being fetched
    /// (`any`: of any slot).
    fn least_recently_used(&self, any: bool) -> Option<usize> {
        self.places
            .iter()
            .enumerate()
            .filter_map(|(place, p)| Some((place, p.slot.as_ref()?)))
            .filter(|(_, slot)| any || (slot.pins == 0 && !slot.in_flight))
            .min_by_key(|(_, slot)| slot.last_use)
            .map(|(place, _)| place)
    }

    fn evict(&mut self, place: usize) {
        let Some(slot) = self.places[place].slot.take() else {
            return;
        };
        // The place's reuse count goes up, so the old handle stays dead.
        self.places[place].reuses = (self.places[place].reuses + 1) % (1 << REUSE_BITS);
        self.index.remove(&slot.key);
        if let Some(places) = self.by_service.get_mut(&slot.service) {
            places.remove(&place);
            if places.is_empty() {
                self.by_service.remove(&slot.service);
            }
        }
        self.free.push(place);
        self.evicted.push((slot.handle, slot.service));
    }

    /// Whether slots were evicted since [`Cache::take_evicted`] was last called.
    pub fn has_evicted(&self) -> bool {
        !self.evicted.is_empty()
    }

    /// The slots evicted since the last call, with their services: their handles name nothing
    /// any more, and whatever the caller keeps for them can go.
    pub fn take_evicted(&mut self) -> Vec<(Handle, ServiceName)> {
        core::mem::take(&mut self.evicted)
    }

    /// Keeps slot `handle` from being evicted until as many [`Cache::unpin`]s; false when the
    /// handle names no slot (any more).
    pub fn pin(&mut self, handle: Handle) -> bool {
        self.get_mut(handle)
            .map(|slot| slot.pins = slot.pins.saturating_add(1))
            .is_some()
    }

    /// Ends one [`Cache::pin`] of slot `handle`.
    pub fn unpin(&mut self, handle: Handle) {
        if let Some(slot) = self.get_mut(handle) {
            slot.pins = slot.pins.saturating_sub(1);
        }
    }

    /// The slot `handle` names, if it was not evicted.
    pub fn get(&self, handle: Handle) -> Option<&Slot<P>> {
        self.places
            .get(place_of(handle))?
            .slot
            .as_ref()
            .filter(|s| s.handle == handle)
    }

    fn get_mut(&mut self, handle: Handle) -> Option<&mut Slot<P>> {
        self.places
            .get_mut(place_of(handle))?
            .slot
            .as_mut()
            .filter(|s| s.handle == handle)
    }

    /// Whether any slot asks about `service`.
    pub fn asks_about(&self, service: &str) -> bool {
        self.by_service.contains_key(service)
    }

    /// Slot `handle`, as used now (for least-recently-used eviction).
    fn used(&mut self, handle: Handle) -> Option<&mut Slot<P>> {
        self.uses += 1;
        let uses = self.uses;
        let slot = self.get_mut(handle)?;
        slot.last_use = uses;
        Some(slot)
    }

    /// What to do with slot `handle` at `now`. `generation` is the in-process registry's
    /// change counter in `memory:` mode (answers stay good until it moves or a lease in them
    /// lapses) and `None` over HTTP (the core's [`CachePolicy::freshness_until`] decides, with
    /// the answer's first lease end). `HitRefresh` marks the slot as in flight, so only one
    /// background refresh starts; a slot in flight answers `Wait` where it would answer
    /// `Miss`.
    pub fn lookup(
        &mut self,
        handle: Handle,
        now: Millis,
        config: &Config,
        generation: Option<u64>,
    ) -> Lookup {
        let Some(slot) = self.used(handle) else {
            return Lookup::Miss;
        };
        let miss = if slot.in_flight {
            Lookup::Wait
        } else {
            Lookup::Miss
        };
        let Some(entry) = &slot.entry else {
            return miss;
        };
        // A resolution that found nothing is never reused: the caller is waiting for it.
        if slot.kind == Kind::Resolve && entry.instances.is_empty() {
            return miss;
        }
        if let Some(generation) = generation {
            return if entry.generation == generation && now < entry.lease_end {
                Lookup::Hit
            } else {
                miss
            };
        }
        match config
            .cache
            .freshness_until(entry.fetched_at, entry.lease_end, now)
        {
            Freshness::Fresh => Lookup::Hit,
            Freshness::RefreshAhead if slot.in_flight || now < slot.retry_at => Lookup::Hit,
            Freshness::RefreshAhead => {
                slot.in_flight = true;
                Lookup::HitRefresh
            }
            Freshness::Stale if slot.failures > 0 && now < slot.retry_at => Lookup::HitStale,
            _ => miss,
        }
    }

    /// Until when (local time) picks of slot `handle` with the keyed `strategy` keep answering
    /// the same instance for the same key with nothing for the cache to do: the slot answers a
    /// plain [`Lookup::Hit`] (no refresh due, no lease ended) and the picker's view of
    /// ejections holds. A new answer or a new ejection ends it sooner; the caller watches for
    /// those. 0 when such picks cannot be memoized now (no answer, a refresh due, a stale
    /// answer, a strategy that does not pick by key, a picker not built yet). Over HTTP only:
    /// `memory:` answers also end when the in-process registry changes.
    pub fn hit_until(
        &self,
        handle: Handle,
        strategy: Strategy,
        now: Millis,
        config: &Config,
        outliers: &Outliers,
    ) -> Millis {
        let Some(slot) = self.get(handle) else {
            return 0;
        };
        let Some(entry) = &slot.entry else {
            return 0;
        };
        if !strategy.uses_key() || entry.instances.is_empty() {
            return 0;
        }
        let (fresh, servable) = config.cache.fresh_until(entry.fetched_at, entry.lease_end);
        let until = if now < fresh {
            fresh
        } else if now < servable && slot.in_flight {
            servable
        } else if now < servable && now < slot.retry_at {
            servable.min(slot.retry_at)
        } else {
            return 0;
        };
        match entry.pickers.iter().find(|p| p.strategy == strategy) {
            Some(picker) if picker.epoch == outliers.epoch && now < picker.recheck_at => {
                until.min(picker.recheck_at)
            }
            _ => 0,
        }
    }

    /// Marks slot `handle` as being fetched: until the answer is stored (or the fetch fails),
    /// lookups that cannot be served answer [`Lookup::Wait`].
    pub fn begin(&mut self, handle: Handle) {
        if let Some(slot) = self.get_mut(handle) {
            slot.in_flight = true;
        }
    }

    /// Marks slot `handle` as being fetched (or not any more).
    pub fn set_in_flight(&mut self, handle: Handle, in_flight: bool) {
        if let Some(slot) = self.get_mut(handle) {
            slot.in_flight = in_flight;
        }
    }

    /// Whether a fetch of slot `handle` is in flight.
    pub fn in_flight(&self, handle: Handle) -> bool {
        self.get(handle).is_some_and(|s| s.in_flight)
    }

    /// Stores a fresh answer in slot `handle`; `payload` is the caller's copy of the instances
    /// (JavaScript objects in the package). `clock` is what the answer said of the registry's
    /// clock: the answer lives no longer than the first of its leases on that clock.
    #[allow(clippy::too_many_arguments)] // one answer and its circumstances
    pub fn store(
        &mut self,
        handle: Handle,
        instances: Vec<Instance>,
        version: Option<Version>,
        payload: P,
        now: Millis,
        generation: u64,
        clock: RegistryClock,
    ) {
        // A new answer counts as a use: the answer just fetched is not the first to go.
        let Some(slot) = self.used(handle) else {
            return;
        };
        let lease_end = instances
            .iter()
            .map(|i| clock.local_deadline(i.expires_at))
            .min()
            .unwrap_or(Millis::MAX);
        slot.entry = Some(Entry {
            instances,
            version,
            payload,
            fetched_at: now,
            generation,
            lease_end,
            pickers: Vec::new(),
        });
        slot.in_flight = false;
        slot.failures = 0;
        slot.retry_at = 0;
    }

    /// Marks the answer of slot `handle` as fetched at `now` without replacing it (a change
    /// feed vouches that it is still current), keeping its pickers' state.
    pub fn touch(&mut self, handle: Handle, now: Millis) {
        if let Some(slot) = self.get_mut(handle) {
            if let Some(entry) = slot.entry.as_mut() {
                entry.fetched_at = now;
                slot.failures = 0;
                slot.retry_at = 0;
            }
        }
    }

    /// A refresh of slot `handle` failed because the registry is unavailable: backs off and
    /// says whether the last good answer may still be served.
    pub fn failed(
        &mut self,
        handle: Handle,
        now: Millis,
        config: &Config,
        rng: &mut impl Rng,
    ) -> bool {
        let Some(slot) = self.get_mut(handle) else {
            return false;
        };
        slot.in_flight = false;
        slot.retry_at = now + REFRESH_BACKOFF.delay_ms(slot.failures, rng);
        slot.failures = slot.failures.saturating_add(1);
        slot.entry
            .as_ref()
            .is_some_and(|e| e.serves_on_error(now, config))
    }

    /// The answer held by slot `handle`, however old: instances, resolved version, payload.
    pub fn answer(&self, handle: Handle) -> Option<(&[Instance], Option<&Version>, &P)> {
        let entry = self.get(handle)?.entry.as_ref()?;
        Some((&entry.instances, entry.version.as_ref(), &entry.payload))
    }

    /// Whether slot `handle` holds an answer that may be served at `now`, ignoring freshness
    /// but not the stale-if-error limit.
    pub fn usable(&self, handle: Handle, now: Millis, config: &Config) -> bool {
        self.get(handle)
            .and_then(|s| s.entry.as_ref())
            .is_some_and(|e| e.serves_on_error(now, config))
    }

    /// Whether the answer of slot `handle` is past its life at `now` (its cache lifetime or
    /// the first lease in it): it is then served only because the registry cannot be asked.
    pub fn is_stale(&self, handle: Handle, now: Millis, config: &Config) -> bool {
        self.get(handle)
            .and_then(|s| s.entry.as_ref())
            .is_some_and(|e| {
                matches!(
                    e.freshness(now, config),
                    Freshness::Stale | Freshness::Expired
                )
            })
    }

    /// Picks one instance of slot `handle` with `strategy`, among the instances of the newest
    /// matching version, leaving out ejected instances unless the core's selector ignores
    /// health (none healthy, or fewer than the protection threshold). Returns the instance's
    /// index.
    #[allow(clippy::too_many_arguments)] // the client's parts are borrowed separately
    pub fn pick(
        &mut self,
        handle: Handle,
        strategy: Strategy,
        key: Option<&[u8]>,
        now: Millis,
        config: &Config,
        outliers: &Outliers,
        rng: &mut impl Rng,
    ) -> Option<usize> {
        let entry = self.used(handle)?.entry.as_mut()?;
        if entry.instances.is_empty() {
            return None;
        }
        let position = match entry.pickers.iter().position(|p| p.strategy == strategy) {
            Some(position) => position,
            None => {
                let picker = Picker::build(&entry.instances, strategy, now, config, outliers);
                entry.pickers.push(picker);
                entry.pickers.len() - 1
            }
        };
        let picker = &mut entry.pickers[position];
        if picker.epoch != outliers.epoch || now >= picker.recheck_at {
            let (excluded, recheck_at) = ejected(&entry.instances, &picker.map, now, outliers);
            if excluded == picker.excluded {
                picker.epoch = outliers.epoch;
                picker.recheck_at = recheck_at;
            } else {
                *picker = Picker::build(&entry.instances, strategy, now, config, outliers);
            }
        }
        let candidate = picker.selector.pick(rng, key)?;
        if strategy == Strategy::LeastRequest {
            picker.selector.begin(candidate);
        }
        picker.map.get(candidate).copied()
    }

    /// Every instance url of `service` in any cached answer.
    pub fn urls(&self, service: &ServiceName) -> BTreeSet<String> {
        self.by_service
            .get(service)
            .into_iter()
            .flatten()
            .filter_map(|&place| self.places[place].slot.as_ref()?.entry.as_ref())
            .flat_map(|e| e.instances.iter().map(|i| i.url.clone()))
            .collect()
    }

    /// A call to `url` of `service` picked with least-request finished: its in-flight count
    /// goes down again.
    pub fn release(&mut self, service: &str, url: &str) {
        let Cache {
            places, by_service, ..
        } = self;
        for &place in by_service.get(service).into_iter().flatten() {
            let Some(entry) = places[place].slot.as_mut().and_then(|s| s.entry.as_mut()) else {
                continue;
            };
            for picker in entry
                .pickers
                .iter_mut()
                .filter(|p| p.strategy == Strategy::LeastRequest)
            {
                if let Some(&candidate) = picker.by_url.get(url) {
                    picker.selector.end(candidate);
                }
            }
        }
    }
}

impl<P> Entry<P> {
    fn freshness(&self, now: Millis, config: &Config) -> Freshness {
        config
            .cache
            .freshness_until(self.fetched_at, self.lease_end, now)
    }

    fn serves_on_error(&self, now: Millis, config: &Config) -> bool {
        config.cache.serves_on_error(self.freshness(now, config))
    }
}

/// The instances among `pool` that outlier detection has ejected at `now`, and when the first
/// of those ejections ends (when the picker must look again). Whether they are then left out
/// (or, below the protection threshold, kept) is the core selector's decision.
fn ejected(
    instances: &[Instance],
    pool: &[usize],
    now: Millis,
    outliers: &Outliers,
) -> (Vec<usize>, Millis) {
    let mut recheck_at = Millis::MAX;
    let excluded: Vec<usize> = pool
        .iter()
        .copied()
        .filter(|&i| match outliers.ejected_until(&instances[i], now) {
            Some(until) => {
                recheck_at = recheck_at.min(until);
                true
            }
            None => false,
        })
        .collect();
    (excluded, recheck_at)
}

impl Picker {
    fn build(
        instances: &[Instance],
        strategy: Strategy,
        now: Millis,
        config: &Config,
        outliers: &Outliers,
    ) -> Self {
        // The core's rules: a range picks among its newest live version (with a selectable
        // instance, when the answer lists critical or maintenance ones too), candidates are
        // built from instances in one way, and health (registry status, ejection, the
        // protection threshold) is applied by the selector.
        let map = vasco_core::pick_pool(instances);
        let (excluded, recheck_at) = ejected(instances, &map, now, outliers);
        let by_url = if strategy == Strategy::LeastRequest {
            map.iter()
                .enumerate()
                .map(|(candidate, &i)| (instances[i].url.clone(), candidate))
                .collect()
        } else {
            BTreeMap::new()
        };
        let candidates = map
            .iter()
            .map(|&i| {
                Candidate::from_instance(&instances[i])
                    .with_health(excluded.binary_search(&i).is_err())
            })
            .collect();
        let selector = Selector::new(
            SelectorConfig {
                strategy,
                local_zone: config.local_zone.clone(),
                protection_threshold: config.protection_threshold,
            },
            candidates,
        );
        Self {
            strategy,
            selector,
            map,
            excluded,
            by_url,
            epoch: outliers.epoch,
            recheck_at,
        }
    }
}
