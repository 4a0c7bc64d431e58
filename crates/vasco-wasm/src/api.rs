//! The `Client` and `Registration` classes the package's JavaScript layer drives.
//!
//! The JavaScript side owns what only JavaScript can do well in Node (timers, signals, event
//! emitters, `fetch` with a timeout) and calls in here for everything else. Over HTTP, each
//! registry call is handed to the `send(request)` function given to the constructor, which
//! answers `{status, body, now}` (status 0 when the network failed; `now` is the registry's
//! `x-vasco-now` header, its clock, when present).
//!
//! Every fetch that fills cache slots is a [`Flight`], registered under each of its slots
//! while it runs: a caller whose question is already being asked waits for that flight
//! instead of sending the same request again (one request per distinct question in flight).

use std::{cell::RefCell, collections::BTreeMap, future::Future, rc::Rc};

use js_sys::{Array, Function, Object, Promise};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::{future_to_promise, JsFuture};

use vasco_core::{
    heartbeat_delay_ms, select::Strategy, Backoff, Dependencies, Mocks, Query, RegistryClock,
    ServiceName, SplitMix64, VersionReq,
};

mod socket;

use crate::{
    client::{self, Config, Endpoint, Handle, Kind, Lookup, Source, State},
    convert::{
        entropy, from_js, frozen_instances, get, js_error, now, opt_number, opt_string, set,
        strings, to_js, JsErr,
    },
    error::{Error, Result, Wanted},
    transport::{
        already_gone, read_response, registry_now, update_json, Call, CatalogCall, DeregisterCall,
        HttpEndpoint, InstancesCall, MemoryRegistry, RegisterCall, ResolveCall, StatusCall,
    },
};

thread_local! {
    /// The registry of `memory:` mode: one per process (per wasm instance), shared by every
    /// client in it, as a real registry would be.
    static MEMORY: RefCell<MemoryRegistry> = RefCell::default();
}

fn memory_generation() -> u64 {
    MEMORY.with(|memory| memory.borrow().generation())
}

enum Link {
    Http {
        endpoint: HttpEndpoint,
        send: Function,
    },
    Memory,
}

struct Shared {
    endpoint: Endpoint,
    link: Link,
    /// Called (without arguments) whenever a fetched answer is stored, so the JavaScript
    /// side knows to drop what it memoized (see [`Client::hot_until`]).
    changed: Option<Function>,
    /// Called with each slot handle the answer cache evicts, so the JavaScript side forgets
    /// it (see [`Shared::flush_evicted`]).
    evicted: Option<Function>,
    state: RefCell<State<Array, SplitMix64>>,
    /// Each service with an open change feed, and its membership (see `socket`).
    feeds: RefCell<BTreeMap<ServiceName, crate::feed::Membership>>,
    /// For each slot answered from a feed, the feed's index it was computed at.
    fed: RefCell<BTreeMap<Handle, u64>>,
    /// The fetch in flight for each slot being fetched, so concurrent misses share it.
    flights: RefCell<BTreeMap<Handle, Flight>>,
    /// Numbers flights, so a finished one unregisters only itself.
    next_flight: std::cell::Cell<u64>,
}

/// One fetch in flight, shared by everyone waiting for the slots it fills.
#[derive(Clone)]
struct Flight {
    id: u64,
    /// Settles (always fulfilled) when the fetch is over.
    done: Promise,
    /// Its outcome, once over.
    outcome: Rc<RefCell<Option<Result<()>>>>,
}

impl Flight {
    /// Waits for the fetch and answers its outcome.
    async fn wait(&self) -> Result<()> {
        let _ = JsFuture::from(self.done.clone()).await;
        self.outcome.borrow().clone().unwrap_or(Ok(()))
    }
}

/// Runs `task` as the fetch of `slots` (already marked in flight in the cache), registered as
/// their flight until it ends.
fn fly(
    shared: &Rc<Shared>,
    slots: Vec<Handle>,
    task: impl Future<Output = Result<()>> + 'static,
) -> Flight {
    let id = shared.next_flight.get() + 1;
    shared.next_flight.set(id);
    let outcome = Rc::new(RefCell::new(None));
    let done = {
        let shared = shared.clone();
        let outcome = outcome.clone();
        let slots = slots.clone();
        future_to_promise(async move {
            let result = task.await;
            *outcome.borrow_mut() = Some(result);
            let mut flights = shared.flights.borrow_mut();
            let mut state = shared.state.borrow_mut();
            for slot in &slots {
                if flights.get(slot).is_some_and(|f| f.id == id) {
                    flights.remove(slot);
                    // Stored or failed already clears it; a task that ended early did not.
                    state.cache.set_in_flight(*slot, false);
                }
            }
            drop((flights, state));
            shared.let_go();
            Ok(JsValue::UNDEFINED)
        })
    };
    let flight = Flight { id, done, outcome };
    let mut flights = shared.flights.borrow_mut();
    for slot in slots {
        flights.insert(slot, flight.clone());
    }
    flight
}

impl Shared {
    fn changed(&self) {
        if let Some(changed) = &self.changed {
            let _ = changed.call0(&JsValue::UNDEFINED);
        }
    }

    /// Tells the JavaScript side which slot handles the cache evicted since the last call, and
    /// forgets them here. Called after anything that may have created a slot, before control
    /// returns to JavaScript (an `await` or a return), so JavaScript never keeps a handle of
    /// an evicted slot for long; one it still uses answers [`Error::Evicted`].
    fn flush_evicted(&self) {
        let Ok(mut state) = self.state.try_borrow_mut() else {
            return; // the state is in use up the stack: the next flush reports them
        };
        if !state.cache.has_evicted() {
            return;
        }
        let evicted = state.take_evicted(now());
        drop(state);
        if evicted.is_empty() {
            return;
        }
        let mut fed = self.fed.borrow_mut();
        for handle in &evicted {
            fed.remove(handle);
        }
        drop(fed);
        if let Some(callback) = &self.evicted {
            for handle in evicted {
                let _ = callback.call1(&JsValue::UNDEFINED, &JsValue::from(handle as f64));
            }
        }
    }

    /// Slots were let go (unpinned, or their fetch ended): the cache may go back to its
    /// capacity ([`client::Cache::trim`]), and JavaScript hears of what it evicted.
    fn let_go(&self) {
        if let Ok(mut state) = self.state.try_borrow_mut() {
            state.cache.trim();
        }
        self.flush_evicted();
    }

    fn generation(&self) -> Option<u64> {
        match self.link {
            Link::Memory => Some(memory_generation()),
            Link::Http { .. } => None,
        }
    }

    fn check_open(&self) -> Result<()> {
        if self.state.borrow().closed {
            Err(Error::Closed)
        } else {
            Ok(())
        }
    }
}

/// Runs one registry call over the client's link. Also answers what the answer said of the
/// registry's clock (over HTTP, its `x-vasco-now`; the local clock when absent or in process).
async fn call<C: Call>(shared: &Shared, call: &C) -> Result<(C::Output, RegistryClock)> {
    match &shared.link {
        Link::Memory => MEMORY.with(|memory| {
            let output = call.run(&mut memory.borrow_mut(), now())?;
            Ok((output, RegistryClock::LOCAL))
        }),
        Link::Http { endpoint, send } => {
            let request = call.request(endpoint);
            let what = format!("{} {}", request.method, request.url);
            let token_sent = request.token.is_some();
            let sent = now();
            http_call(call, send, &request)
                .await
                .map(|(output, registry_now)| {
                    let clock = registry_now.map_or(RegistryClock::LOCAL, |registry_now| {
                        RegistryClock::from_answer(sent, registry_now)
                    });
                    (output, clock)
                })
                .map_err(|e| e.at(&what, token_sent))
        }
    }
}

/// One HTTP request through `send`: the parsed answer and the registry's `x-vasco-now`.
async fn http_call<C: Call>(
    call: &C,
    send: &Function,
    request: &crate::transport::HttpRequest,
) -> Result<(C::Output, Option<u64>)> {
    let js = Object::new();
    set(&js, "method", request.method);
    set(&js, "url", request.url.as_str());
    if let Some(body) = &request.body {
        set(&js, "body", body.as_str());
    }
    if let Some(token) = &request.token {
        set(&js, "token", token.as_str());
    }
    let unavailable = |e: JsValue| Error::unavailable(describe(&e));
    let pending = send.call1(&JsValue::UNDEFINED, &js).map_err(unavailable)?;
    let reply = JsFuture::from(Promise::resolve(&pending))
        .await
        .map_err(unavailable)?;
    let status = get(&reply, "status").as_f64().unwrap_or(0.0) as u16;
    let body = get(&reply, "body").as_string().unwrap_or_default();
    if status == 0 {
        return Err(Error::unavailable(if body.is_empty() {
            "no answer".into()
        } else {
            body
        }));
    }
    let clock = registry_now(get(&reply, "now").as_string().as_deref());
    read_response(call, status, &body).map(|output| (output, clock))
}

/// A thrown JavaScript value as text.
fn describe(value: &JsValue) -> String {
    if let Some(message) = get(value, "message").as_string() {
        return message;
    }
    value.as_string().unwrap_or_else(|| "unknown error".into())
}

/// A JavaScript promise of `future`; its error, the crate's or a JavaScript one, rejects it
/// through the one conversion ([`JsErr`]).
fn promise(
    future: impl std::future::Future<Output = std::result::Result<JsValue, JsErr>> + 'static,
) -> Promise {
    future_to_promise(async move { Ok(future.await?) })
}

/// A slot handle as JavaScript holds it (a number below 2^49, see [`Handle`]); anything else
/// names no slot.
fn handle(slot: f64) -> Handle {
    if slot >= 0.0 && slot < (1u64 << 53) as f64 && slot == slot.trunc() {
        slot as Handle
    } else {
        Handle::MAX
    }
}

/// Slots kept from eviction while a caller waits for their answers ([`client::Cache::pin`]);
/// unpinned when dropped.
struct Pins {
    shared: Rc<Shared>,
    handles: Vec<Handle>,
}

impl Pins {
    fn new(shared: &Rc<Shared>, mut handles: Vec<Handle>) -> Self {
        let mut state = shared.state.borrow_mut();
        handles.retain(|&handle| state.cache.pin(handle));
        Self::pinned(shared, handles)
    }

    /// For `handles` pinned already.
    fn pinned(shared: &Rc<Shared>, handles: Vec<Handle>) -> Self {
        Self {
            shared: shared.clone(),
            handles,
        }
    }
}

impl Drop for Pins {
    fn drop(&mut self) {
        let Ok(mut state) = self.shared.state.try_borrow_mut() else {
            return;
        };
        for &handle in &self.handles {
            state.cache.unpin(handle);
        }
        drop(state);
        self.shared.let_go();
    }
}

/// The strategy of a code from [`Client::strategy`]. Errors: `invalid_strategy` for any other
/// number (never a silent fallback).
fn strategy_of(code: u8) -> Result<Strategy> {
    Strategy::ALL.get(code as usize).copied().ok_or_else(|| {
        Error::Core(vasco_core::Error::invalid(
            "strategy",
            format!("unknown strategy code {code}; get codes from client.strategy(name)"),
        ))
    })
}

/// Whether picks with the strategy named `name` depend on the key (the core's
/// `Strategy::uses_key`: `maglev`, `consistent-hash`, `ring`), so the same key always gets the
/// same candidate while the candidates stay the same. False for unknown names.
#[wasm_bindgen(js_name = strategyUsesKey)]
pub fn strategy_uses_key(name: &str) -> bool {
    name.parse::<Strategy>().is_ok_and(Strategy::uses_key)
}

/// A registry client: cached, outlier-aware lookups and resolutions, and single registry calls
/// for registrations. The package's `connect()` wraps it; see `index.d.ts` for that API.
#[wasm_bindgen]
pub struct Client {
    shared: Rc<Shared>,
}

#[wasm_bindgen]
impl Client {
    /// `options`: `{url?, token?, cacheTtl?, cacheSize?, staleIfError?, zone?,
    /// protectionThreshold?, outlier?: {consecutiveFailures?, baseEjectionMs?,
    /// maxEjectionPercent?}, seed?}`. `send(request)` performs HTTP for this client; it is
    /// required unless the url is `memory:`. `changed()` is called when a fetched answer is
    /// stored, `evicted(handle)` when the answer cache evicts a slot.
    #[wasm_bindgen(constructor)]
    pub fn new(
        #[wasm_bindgen(unchecked_param_type = "Record<string, unknown>")] options: JsValue,
        #[wasm_bindgen(
            unchecked_param_type = "((request: {method: string, url: string, body?: string, token?: string}) => Promise<{status: number, body: string}>) | undefined"
        )]
        send: Option<Function>,
        #[wasm_bindgen(unchecked_param_type = "(() => void) | undefined")] changed: Option<
            Function,
        >,
        #[wasm_bindgen(unchecked_param_type = "((slot: number) => void) | undefined")]
        evicted: Option<Function>,
    ) -> Result<Client, JsErr> {
        Ok(Self::create(&options, send, changed, evicted)?)
    }

    fn create(
        options: &JsValue,
        send: Option<Function>,
        changed: Option<Function>,
        evicted: Option<Function>,
    ) -> Result<Client> {
        let url = opt_string(options, "url")?;
        let endpoint = Endpoint::parse(url.as_deref())?;
        let token = opt_string(options, "token")?.filter(|t| !t.is_empty());
        let link = match (&endpoint, send) {
            (Endpoint::Memory, _) => Link::Memory,
            (Endpoint::Http(base), Some(send)) => Link::Http {
                endpoint: HttpEndpoint {
                    base: base.clone(),
                    token,
                },
                send,
            },
            (Endpoint::Http(_), None) => {
                return Err(Error::argument("send", "is required for an http registry"))
            }
        };
        let seed = match opt_number(options, "seed")? {
            Some(seed) => seed as u64,
            None => entropy(),
        };
        let state = State::new(Config::from_options(options)?, SplitMix64::from_seed(seed));
        Ok(Client {
            shared: Rc::new(Shared {
                endpoint,
                link,
                changed,
                evicted,
                state: RefCell::new(state),
                feeds: RefCell::default(),
                fed: RefCell::default(),
                flights: RefCell::default(),
                next_flight: Default::default(),
            }),
        })
    }

    /// The registry address: the normalized http(s) base URL, or `memory:`.
    #[wasm_bindgen(getter)]
    pub fn url(&self) -> String {
        self.shared.endpoint.display().into()
    }

    /// Whether this client uses the in-process registry.
    #[wasm_bindgen(getter)]
    pub fn memory(&self) -> bool {
        matches!(self.shared.link, Link::Memory)
    }

    /// The code of a selection strategy name (`random`, `round-robin`, `weighted`,
    /// `least-request`, `maglev` or `consistent-hash`, `ring`), for [`Client::pick`].
    pub fn strategy(&self, name: &str) -> Result<u8, JsErr> {
        let strategy: Strategy = name.parse()?;
        Ok(Strategy::ALL
            .iter()
            .position(|s| *s == strategy)
            .unwrap_or(0) as u8)
    }

    /// A handle for the question "live instances of `name` matching `range` (and `tag`,
    /// `zone`, and the health statuses `options` asks for: `{status?, passing?, all?}`, passing
    /// and warning by default)", for [`Client::instances`] and [`Client::pick`]. Validates its
    /// arguments. The handle lasts until the cache evicts the slot (the `evicted` callback
    /// says when; [`Client::hold_slot`] prevents it).
    pub fn slot(
        &self,
        name: &str,
        range: Option<String>,
        tag: Option<String>,
        zone: Option<String>,
        #[wasm_bindgen(
            unchecked_param_type = "{ status?: string | string[]; passing?: boolean; all?: boolean } | undefined"
        )]
        options: JsValue,
    ) -> Result<f64, JsErr> {
        let service = ServiceName::parse(name)?;
        let version = match range.as_deref() {
            None => VersionReq::any(),
            Some(range) => VersionReq::parse(range)?,
        };
        // `tag` is the core's lookup tag list ("a,b": both), as `?tag=` over HTTP.
        let tags = match tag.as_deref() {
            None => Vec::new(),
            Some(tag) => vasco_core::parse_tags(tag)?,
        };
        let statuses = status_options(&options)?;
        let query = Query {
            version,
            tags,
            zone,
            statuses,
        };
        let slot = (self.shared.state.borrow_mut().cache).slot(Kind::Instances, service, query);
        self.shared.flush_evicted();
        Ok(slot as f64)
    }

    /// Keeps `slot` from eviction until [`Client::release_slot`] (a watcher's slot). Throws
    /// `evicted` when the handle names no slot any more.
    #[wasm_bindgen(js_name = holdSlot)]
    pub fn hold_slot(&self, slot: f64) -> Result<(), JsErr> {
        let slot = handle(slot);
        if self.shared.state.borrow_mut().cache.pin(slot) {
            Ok(())
        } else {
            Err(Error::Evicted.into())
        }
    }

    /// Ends one [`Client::hold_slot`].
    #[wasm_bindgen(js_name = releaseSlot)]
    pub fn release_slot(&self, slot: f64) {
        drop(Pins::pinned(&self.shared, vec![handle(slot)]));
    }

    /// How many distinct questions the answer cache holds now (at most `cacheSize`, but for
    /// slots held or being fetched).
    #[wasm_bindgen(getter, js_name = cachedQuestions)]
    pub fn cached_questions(&self) -> u32 {
        self.shared.state.borrow().cache.len() as u32
    }

    /// The live instances of a slot (a copy of the cached list): from the cache while fresh,
    /// else fetched (one request however many callers wait); while the registry is
    /// unreachable, the last good list (stale-if-error).
    #[wasm_bindgen(unchecked_return_type = "Promise<Instance[]>")]
    pub fn instances(&self, slot: f64) -> Promise {
        let slot = handle(slot);
        let shared = self.shared.clone();
        let usable =
            shared
                .check_open()
                .and_then(|()| match shared.state.borrow().cache.get(slot) {
                    Some(_) => Ok(()),
                    None => Err(Error::Evicted),
                });
        if let Err(e) = usable {
            return Promise::reject(&js_error(&e));
        }
        socket::sync(&shared, slot, now());
        let lookup = {
            let state = &mut *shared.state.borrow_mut();
            state
                .cache
                .lookup(slot, now(), &state.config, shared.generation())
        };
        match lookup {
            Lookup::Hit | Lookup::HitStale | Lookup::HitRefresh => {
                if lookup == Lookup::HitRefresh {
                    refresh_in_background(&shared, slot);
                }
                let copy: JsValue = copy_of(&shared, slot).into();
                Promise::resolve(&copy)
            }
            Lookup::Miss | Lookup::Wait => {
                let flight = flight_for(&shared, slot);
                let pins = Pins::new(&shared, vec![slot]);
                promise(async move {
                    let _pins = pins;
                    settle(&shared, slot, flight).await?;
                    Ok(copy_of(&shared, slot).into())
                })
            }
        }
    }

    /// Picks one instance of a slot from the cache: the instance object, `null` when the
    /// answer is that there are none, `undefined` when the cache cannot answer without
    /// waiting (call [`Client::instances`] first, then pick with `force`). Starts a background
    /// refresh when one is due. `key` makes the consistent-hash strategies sticky.
    /// Errors: `invalid_strategy` for a code [`Client::strategy`] never gave.
    #[wasm_bindgen(unchecked_return_type = "Instance | null | undefined")]
    pub fn pick(
        &self,
        slot: f64,
        strategy: u8,
        key: Option<String>,
        force: bool,
    ) -> Result<JsValue, JsErr> {
        let slot = handle(slot);
        let strategy = strategy_of(strategy)?;
        Ok(pick_from(&self.shared, slot, strategy, key, force))
    }

    /// [`Client::instances`] then a forced [`Client::pick`] of `slot` as one step, holding the
    /// slot in between so that its answer cannot be evicted before the pick: the instance, or
    /// `null` when the answer is that there are none. Rejects as `instances` does (`evicted`
    /// when the handle names no slot any more), or `invalid_strategy`.
    #[wasm_bindgen(js_name = pickLoaded, unchecked_return_type = "Promise<Instance | null>")]
    pub fn pick_loaded(&self, slot: f64, strategy: u8, key: Option<String>) -> Promise {
        let shared = self.shared.clone();
        let strategy = strategy_of(strategy);
        let pins = Pins::new(&shared, vec![handle(slot)]);
        let loading = self.instances(slot);
        promise(async move {
            let strategy = strategy?;
            let _pins = pins;
            JsFuture::from(loading).await?;
            Ok(pick_from(&shared, handle(slot), strategy, key, true))
        })
    }

    /// Until when (ms since the epoch, local clock) a pick of `slot` with the keyed
    /// `strategy` keeps answering the same instance for the same key, unless the `changed`
    /// callback fires or `reportFailure` ejects an instance first: the JavaScript side may
    /// memoize key -> instance until then. 0 when it may not (see `Cache::hit_until`; always
    /// 0 for `memory:`, whose answers follow the in-process registry).
    #[wasm_bindgen(js_name = hotUntil)]
    pub fn hot_until(&self, slot: f64, strategy: u8) -> f64 {
        let slot = handle(slot);
        if matches!(self.shared.link, Link::Memory) {
            return 0.0;
        }
        let Some(&strategy) = Strategy::ALL.get(strategy as usize) else {
            return 0.0;
        };
        let state = &*self.shared.state.borrow();
        state
            .cache
            .hit_until(slot, strategy, now(), &state.config, &state.outliers) as f64
    }

    /// Resolves `dependencies` (`{name: range}`) with `mocks` (`{name: url}`) in one registry
    /// round trip at most, from the cache when it can: `{resolved: {name: {version,
    /// instances, mock?}}, missing: [names], stale: boolean}`.
    #[wasm_bindgen(unchecked_return_type = "Promise<Resolution>")]
    pub fn resolve(
        &self,
        #[wasm_bindgen(unchecked_param_type = "Record<string, string>")] dependencies: JsValue,
        #[wasm_bindgen(unchecked_param_type = "Record<string, string> | undefined")] mocks: JsValue,
    ) -> Promise {
        let resolving = self.resolving(dependencies, mocks);
        promise(async move {
            let resolved = resolving.await?;
            let Resolved {
                shared,
                answer,
                given,
                ..
            } = &resolved;
            let state = shared.state.borrow();
            let resolved = Object::new();
            for (name, source) in &answer.resolved {
                let entry = Object::new();
                match source {
                    Source::Mock(url) => {
                        set(&entry, "mock", url.as_str());
                        set(&entry, "instances", Array::new());
                    }
                    Source::Slot(slot) => {
                        if let Some((_, version, payload)) = state.cache.answer(*slot) {
                            if let Some(version) = version {
                                set(&entry, "version", version.to_string());
                            }
                            set(&entry, "instances", payload.slice(0, payload.length()));
                        }
                    }
                }
                set(&resolved, as_given(given, name), entry);
            }
            let missing: Vec<String> = answer
                .missing
                .iter()
                .map(|name| as_given(given, name).to_owned())
                .collect();
            let result = Object::new();
            set(&result, "resolved", resolved);
            set(&result, "missing", strings(&missing));
            set(&result, "stale", answer.stale);
            Ok(result.into())
        })
    }

    /// `findDependencies` of the original: `{name: url}` with one url per dependency (the
    /// mock, or a live instance of the newest matching version, avoiding ejected ones).
    /// Rejects with `No url for: <names> (wanted <name> <range>: live versions ...)` (code
    /// `no_url`) when some have no instance; the error then carries `missing` and the partial
    /// `dependencies`.
    #[wasm_bindgen(js_name = findDependencies, unchecked_return_type = "Promise<Record<string, string>>")]
    pub fn find_dependencies(
        &self,
        #[wasm_bindgen(unchecked_param_type = "Record<string, string>")] dependencies: JsValue,
        #[wasm_bindgen(unchecked_param_type = "Record<string, string> | undefined")] mocks: JsValue,
    ) -> Promise {
        let resolving = self.resolving(dependencies, mocks);
        promise(async move {
            let resolved = resolving.await?;
            let Resolved {
                shared,
                answer,
                given,
                dependencies,
                ..
            } = &resolved;
            let urls: BTreeMap<String, String> = shared
                .state
                .borrow_mut()
                .urls(answer, now())
                .into_iter()
                .map(|(name, url)| (as_given(given, &name).to_owned(), url))
                .collect();
            let urls = to_js(&urls);
            if answer.missing.is_empty() {
                Ok(urls)
            } else {
                let mut asked = Vec::new();
                for name in &answer.missing {
                    let Some((service, range)) =
                        dependencies.0.iter().find(|(n, _)| n.as_str() == name)
                    else {
                        continue;
                    };
                    asked.push((
                        as_given(given, name).to_owned(),
                        service.clone(),
                        range.as_str().to_owned(),
                    ));
                }
                let error = js_error(&no_url(shared, asked).await);
                set(&error, "dependencies", urls);
                Err(JsErr::from(error))
            }
        })
    }

    /// The `No url for:` error of a pick that found no instance of `name` in `range`, with
    /// the versions that are live (resolves to the error; it does not reject).
    #[wasm_bindgen(js_name = noUrl, unchecked_return_type = "Promise<Error>")]
    pub fn no_url(&self, name: String, range: Option<String>) -> Promise {
        let shared = self.shared.clone();
        promise(async move {
            let service = ServiceName::parse(&name)?;
            let range = range.unwrap_or_else(|| "*".into());
            Ok(js_error(
                &no_url(&shared, vec![(name, service, range)]).await,
            ))
        })
    }

    /// Registers (or renews: the same call is the heartbeat) `registration`; resolves to the
    /// stored instance.
    #[wasm_bindgen(unchecked_return_type = "Promise<Instance>")]
    pub fn register(&self, registration: &Registration) -> Promise {
        let shared = self.shared.clone();
        let call_ = RegisterCall {
            key: registration.inner.key.clone(),
            spec: registration.inner.spec.clone(),
        };
        promise(async move {
            shared.check_open()?;
            let (instance, _) = call(&shared, &call_).await?;
            Ok(to_js(&instance))
        })
    }

    /// Sends a status set or check result of `registration` (`update`, from
    /// [`Registration::set_status`] or [`Registration::follow_up`]) with `PUT .../status`;
    /// resolves to the stored instance. Rejects `not_found` when the instance is not
    /// registered (or its lease lapsed).
    #[wasm_bindgen(js_name = setStatus, unchecked_return_type = "Promise<Instance>")]
    pub fn set_status(&self, registration: &Registration, update: &HealthUpdateHandle) -> Promise {
        let shared = self.shared.clone();
        let call_ = StatusCall {
            key: registration.inner.key.clone(),
            update: update.update.clone(),
        };
        promise(async move {
            shared.check_open()?;
            let (instance, _) = call(&shared, &call_).await?;
            Ok(to_js(&instance))
        })
    }

    /// How long a registration drains on SIGINT/SIGTERM unless it says otherwise (ms): the
    /// `drainMs` option, else `VASCO_DRAIN_MS` (as the JavaScript layer passes it), else 3000.
    #[wasm_bindgen(getter, js_name = drainMs)]
    pub fn drain_ms(&self) -> f64 {
        self.shared.state.borrow().config.drain_ms as f64
    }

    /// Deregisters `registration`; an instance the registry no longer knows is not an error.
    #[wasm_bindgen(unchecked_return_type = "Promise<boolean>")]
    pub fn deregister(&self, registration: &Registration) -> Promise {
        let shared = self.shared.clone();
        let call_ = DeregisterCall {
            key: registration.inner.key.clone(),
        };
        promise(async move {
            match call(&shared, &call_).await {
                Ok(_) => Ok(JsValue::TRUE),
                Err(e) if already_gone(&e) => Ok(JsValue::FALSE),
                Err(e) => Err(e.into()),
            }
        })
    }

    /// The catalog: every service with its versions and live instance counts.
    #[wasm_bindgen(unchecked_return_type = "Promise<Catalog>")]
    pub fn catalog(&self) -> Promise {
        let shared = self.shared.clone();
        promise(async move {
            shared.check_open()?;
            Ok(to_js(&call(&shared, &CatalogCall).await?.0))
        })
    }

    /// A call to `url` of `name` failed: feeds the core's outlier detection (enough failures
    /// in a row eject the instance from picks for a while) and ends a least-request pick.
    /// Returns whether this report ejected it.
    #[wasm_bindgen(js_name = reportFailure)]
    pub fn report_failure(&self, name: &str, url: &str) -> bool {
        (self.shared.state.borrow_mut()).report_failure(name, url, now())
    }

    /// A call to `url` of `name` succeeded: ends its failure streak and a least-request pick.
    #[wasm_bindgen(js_name = reportSuccess)]
    pub fn report_success(&self, name: &str, url: &str) {
        (self.shared.state.borrow_mut()).report_success(name, url, now());
    }

    /// Milliseconds until the next heartbeat of a lease of `ttl_ms` (the core's period with
    /// jitter).
    #[wasm_bindgen(js_name = heartbeatDelay)]
    pub fn heartbeat_delay(&self, ttl_ms: f64) -> f64 {
        let state = &mut *self.shared.state.borrow_mut();
        heartbeat_delay_ms(ttl_ms.max(1.0) as u64, &mut state.rng) as f64
    }

    /// Milliseconds before retry number `attempt` (0-based) after a failure: the core's
    /// backoff from 100 ms, at most `max_ms`.
    #[wasm_bindgen(js_name = retryDelay)]
    pub fn retry_delay(&self, attempt: u32, max_ms: f64) -> f64 {
        let backoff = Backoff {
            base_ms: 100,
            max_ms: max_ms.max(1.0) as u64,
        };
        let state = &mut *self.shared.state.borrow_mut();
        backoff.delay_ms(attempt, &mut state.rng) as f64
    }

    /// Stops the client: later calls reject with code `closed`.
    pub fn close(&self) {
        self.shared.state.borrow_mut().closed = true;
    }

    /// Whether [`Client::close`] was called.
    #[wasm_bindgen(getter)]
    pub fn closed(&self) -> bool {
        self.shared.state.borrow().closed
    }
}

/// A resolution with what it was asked (see [`Client::resolving`]).
struct Resolved {
    shared: Rc<Shared>,
    answer: client::Answer,
    dependencies: Dependencies,
    given: BTreeMap<String, String>,
    /// The answer's slots, kept until the caller has read them.
    _pins: Pins,
}

impl Client {
    /// Parses `dependencies` and `mocks` (now, so the arguments need not outlive the call) and
    /// resolves them with the cache: how `resolve` and `findDependencies` both begin.
    fn resolving(
        &self,
        dependencies: JsValue,
        mocks: JsValue,
    ) -> impl Future<Output = Result<Resolved>> {
        let shared = self.shared.clone();
        let parsed = parse_dependencies(dependencies, mocks);
        async move {
            let (dependencies, mocks, given) = parsed?;
            shared.check_open()?;
            let pins = pin_resolution(&shared, &dependencies, &mocks);
            let answer = resolve(&shared, &dependencies, &mocks).await?;
            Ok(Resolved {
                shared,
                answer,
                dependencies,
                given,
                _pins: pins,
            })
        }
    }
}

/// Parses `dependencies` and `mocks`. Also returns, for each dependency named other than its
/// service (`@acme/api` is the service `acme.api`), the name the caller wrote, so answers are
/// keyed as the caller asked, as the original Vasco did.
fn parse_dependencies(
    dependencies: JsValue,
    mocks: JsValue,
) -> Result<(Dependencies, Mocks, BTreeMap<String, String>)> {
    let dependencies = from_js(dependencies, "dependencies")?;
    let parsed = Dependencies::from_json_value(&dependencies)?;
    let mocks = Mocks::from_json_value(&from_js(mocks, "mocks")?)?;
    let mut given = BTreeMap::new();
    if let serde_json::Value::Object(entries) = &dependencies {
        for name in entries.keys() {
            let service = ServiceName::from_package_name(name)?;
            if service.as_str() != name {
                given.insert(service.as_str().to_owned(), name.clone());
            }
        }
    }
    Ok((parsed, mocks, given))
}

/// `name` as the caller wrote it (see [`parse_dependencies`]).
fn as_given<'a>(given: &'a BTreeMap<String, String>, name: &'a str) -> &'a str {
    given.get(name).map_or(name, String::as_str)
}

/// A pick of `slot` from the cache (see [`Client::pick`]); `force` picks from an answer past
/// its life rather than answering `undefined`.
fn pick_from(
    shared: &Rc<Shared>,
    slot: Handle,
    strategy: Strategy,
    key: Option<String>,
    force: bool,
) -> JsValue {
    let now = now();
    socket::sync(shared, slot, now);
    let generation = shared.generation();
    let lookup = {
        let state = &mut *shared.state.borrow_mut();
        state.cache.lookup(slot, now, &state.config, generation)
    };
    match lookup {
        Lookup::Hit | Lookup::HitStale => {}
        Lookup::HitRefresh => refresh_in_background(shared, slot),
        Lookup::Miss | Lookup::Wait if matches!(shared.link, Link::Memory) => {
            // The in-process registry answers at once: no reason to make anyone wait.
            if load_memory(shared, slot).is_err() {
                return JsValue::UNDEFINED;
            }
        }
        Lookup::Miss | Lookup::Wait if force => {}
        Lookup::Miss | Lookup::Wait => return JsValue::UNDEFINED,
    }
    let state = &mut *shared.state.borrow_mut();
    let State {
        config,
        cache,
        outliers,
        rng,
        ..
    } = state;
    match cache.pick(
        slot,
        strategy,
        key.as_deref().map(str::as_bytes),
        now,
        config,
        outliers,
        rng,
    ) {
        Some(index) => match cache.answer(slot) {
            Some((_, _, payload)) => payload.get(index as u32),
            None => JsValue::UNDEFINED,
        },
        None if cache.answer(slot).is_some() => JsValue::NULL,
        None => JsValue::UNDEFINED,
    }
}

/// A copy of the cached list of `slot` (empty when there is none).
fn copy_of(shared: &Shared, slot: Handle) -> Array {
    match shared.state.borrow().cache.answer(slot) {
        Some((_, _, payload)) => payload.slice(0, payload.length()),
        None => Array::new(),
    }
}

/// The fetch that makes instances slot `slot` servable: the one in flight, or one started
/// now (the slot is marked in flight at once, so every later caller shares it); `None` in
/// `memory:` mode, where the in-process registry answers at once. Call it synchronously when
/// the slot's lookup says `Miss` or `Wait`, not from a task that runs later.
fn flight_for(shared: &Rc<Shared>, slot: Handle) -> Option<Flight> {
    if matches!(shared.link, Link::Memory) {
        return None;
    }
    if let Some(flight) = shared.flights.borrow().get(&slot).cloned() {
        return Some(flight);
    }
    shared.state.borrow_mut().cache.begin(slot);
    let task_shared = shared.clone();
    Some(fly(shared, vec![slot], async move {
        fetch_slot(&task_shared, slot).await
    }))
}

/// Waits for `flight` (from [`flight_for`]) to fill instances slot `slot`: succeeds when the
/// answer was stored, or on an outage when the last good answer may still be served.
async fn settle(shared: &Rc<Shared>, slot: Handle, flight: Option<Flight>) -> Result<()> {
    match flight {
        Some(flight) => flight.wait().await,
        None => load_memory(shared, slot),
    }
}

/// Makes instances slot `slot` servable if it is not (see [`settle`]).
async fn ensure(shared: &Rc<Shared>, slot: Handle) -> Result<()> {
    let lookup = {
        let state = &mut *shared.state.borrow_mut();
        state
            .cache
            .lookup(slot, now(), &state.config, shared.generation())
    };
    match lookup {
        Lookup::Hit | Lookup::HitStale => Ok(()),
        Lookup::HitRefresh => {
            refresh_in_background(shared, slot);
            Ok(())
        }
        Lookup::Miss | Lookup::Wait => settle(shared, slot, flight_for(shared, slot)).await,
    }
}

/// The `No url for:` error for `asked` (`(name as given, service, range)` of each dependency
/// without an instance), with the versions of each that are live, from the cache (or one
/// lookup of each service, shared with concurrent ones); unknown when the registry cannot say.
async fn no_url(shared: &Rc<Shared>, asked: Vec<(String, ServiceName, String)>) -> Error {
    let mut missing = Vec::new();
    let mut wanted = Vec::new();
    for (name, service, range) in asked {
        let slot = shared
            .state
            .borrow_mut()
            .cache
            .slot(Kind::Instances, service, Query::any());
        shared.flush_evicted();
        let _pins = Pins::new(shared, vec![slot]);
        let live = match ensure(shared, slot).await {
            Ok(()) => shared
                .state
                .borrow()
                .cache
                .answer(slot)
                .map(|(list, _, _)| {
                    let mut versions: Vec<String> = Vec::new();
                    for instance in list {
                        let version = instance.version.to_string();
                        if !versions.contains(&version) {
                            versions.push(version);
                        }
                    }
                    versions
                }),
            Err(_) => None,
        };
        missing.push(name.clone());
        wanted.push(Wanted { name, range, live });
    }
    Error::NoUrl { missing, wanted }
}

/// The lookup that fills instances slot `slot`.
fn instances_call(shared: &Shared, slot: Handle) -> Result<InstancesCall> {
    let state = shared.state.borrow();
    let slot = state.cache.get(slot).ok_or(Error::Evicted)?;
    Ok(InstancesCall {
        service: slot.service.clone(),
        query: slot.query.clone(),
    })
}

/// One fetch of an instances slot, stored on success; failures back off and fall back.
async fn fetch_slot(shared: &Shared, slot: Handle) -> Result<()> {
    let query = instances_call(shared, slot)?;
    let generation = shared.generation().unwrap_or(0);
    let result = call(shared, &query).await;
    let now = now();
    if socket::sync(shared, slot, now) {
        // A feed opened meanwhile: it is newer than this answer.
        return Ok(());
    }
    let mut state = shared.state.borrow_mut();
    match result {
        Ok((instances, clock)) => {
            let payload = frozen_instances(&instances);
            state.store(slot, instances, None, payload, now, generation, clock);
            drop(state);
            shared.changed();
            Ok(())
        }
        Err(e) => {
            let state = &mut *state;
            let serves = state.cache.failed(slot, now, &state.config, &mut state.rng);
            if serves && e.is_unavailable() {
                Ok(())
            } else {
                Err(e)
            }
        }
    }
}

fn load_memory(shared: &Shared, slot: Handle) -> Result<()> {
    let query = instances_call(shared, slot)?;
    let now = now();
    let (instances, generation) = MEMORY.with(|memory| {
        let memory = &mut *memory.borrow_mut();
        (query.run(memory, now), memory.generation())
    });
    let instances = instances?;
    let payload = frozen_instances(&instances);
    shared.state.borrow_mut().store(
        slot,
        instances,
        None,
        payload,
        now,
        generation,
        RegistryClock::LOCAL,
    );
    Ok(())
}

/// Refreshes `slot` (already marked in flight by its lookup) in the background.
fn refresh_in_background(shared: &Rc<Shared>, slot: Handle) {
    let task_shared = shared.clone();
    // Failures are recorded in the slot (backoff, stale-if-error); nothing to report.
    fly(shared, vec![slot], async move {
        fetch_slot(&task_shared, slot).await
    });
}

/// The resolve slots of `asked`.
fn resolve_slots(shared: &Shared, asked: &Dependencies) -> Vec<Handle> {
    let mut state = shared.state.borrow_mut();
    asked
        .0
        .iter()
        .map(|(name, requirement)| state.resolve_slot(name, requirement))
        .collect()
}

/// Pins the resolve slots of the unmocked dependencies of `asked` (creating them), so none of
/// them is evicted while the resolution runs: each is pinned as it is created, before the next
/// one can push it out.
fn pin_resolution(shared: &Rc<Shared>, asked: &Dependencies, mocks: &Mocks) -> Pins {
    let slots = {
        let mut state = shared.state.borrow_mut();
        let mut slots = Vec::new();
        for (name, requirement) in &asked.0 {
            if !mocks.0.contains_key(name) {
                let slot = state.resolve_slot(name, requirement);
                state.cache.pin(slot);
                slots.push(slot);
            }
        }
        slots
    };
    let pins = Pins::pinned(shared, slots);
    shared.flush_evicted();
    pins
}

/// Resolves `asked` (its slots already marked in flight) as one flight.
fn fly_resolution(shared: &Rc<Shared>, asked: Dependencies) -> Flight {
    let slots = resolve_slots(shared, &asked);
    let task_shared = shared.clone();
    fly(shared, slots, async move {
        fetch_resolution(&task_shared, asked).await
    })
}

/// Resolution with the cache: at most one round trip (for what the cache cannot answer and
/// nobody is asking already), a background refresh for what is due, stale answers while the
/// registry is unreachable.
async fn resolve(
    shared: &Rc<Shared>,
    dependencies: &Dependencies,
    mocks: &Mocks,
) -> Result<client::Answer> {
    let generation = shared.generation();
    let now_ms = now();
    socket::sync_dependencies(shared, dependencies, mocks, now_ms);
    let mut plan = shared
        .state
        .borrow_mut()
        .plan(dependencies, mocks, now_ms, generation);
    // Fed services are answered by their feed (even "no instance"), never fetched.
    plan.fetch = socket::unfed(shared, plan.fetch);
    plan.refresh = socket::unfed(shared, plan.refresh);
    if !plan.refresh.is_empty() {
        fly_resolution(shared, core::mem::take(&mut plan.refresh));
    }
    let mut flights: Vec<Flight> = Vec::new();
    for (name, requirement) in &plan.wait.0 {
        let slot = shared.state.borrow_mut().resolve_slot(name, requirement);
        let flight = shared.flights.borrow().get(&slot).cloned();
        match flight {
            Some(flight) => {
                if !flights.iter().any(|f| f.id == flight.id) {
                    flights.push(flight);
                }
            }
            // In flight without a flight to wait for: ask along with the others.
            None => {
                shared.state.borrow_mut().cache.begin(slot);
                plan.fetch.0.insert(name.clone(), requirement.clone());
            }
        }
    }
    if !plan.fetch.is_empty() {
        flights.push(fly_resolution(shared, plan.fetch));
    }
    let mut outage = None;
    for flight in flights {
        if let Err(e) = flight.wait().await {
            if !e.is_unavailable() {
                return Err(e);
            }
            outage = Some(e);
        }
    }
    // A feed that opened during the fetch answers for its service (its answer was not stored).
    socket::sync_dependencies(shared, dependencies, mocks, now());
    let answer = shared.state.borrow_mut().answer(dependencies, mocks, now());
    if !answer.unknown.is_empty() {
        let nothing = format!("nothing cached for: {}", answer.unknown.join(", "));
        return Err(match outage {
            Some(Error::Unavailable {
                reason,
                status,
                registry_code,
                request,
            }) => Error::Unavailable {
                reason: format!("{reason} (and {nothing})"),
                status,
                registry_code,
                request,
            },
            _ => Error::unavailable(format!("no answer ({nothing})")),
        });
    }
    Ok(answer)
}

async fn fetch_resolution(shared: &Shared, asked: Dependencies) -> Result<()> {
    let generation = shared.generation().unwrap_or(0);
    let result = call(
        shared,
        &ResolveCall {
            dependencies: asked.clone(),
        },
    )
    .await;
    let now = now();
    let mut state = shared.state.borrow_mut();
    match result {
        Ok((resolution, clock)) => {
            let asked = socket::unfed(shared, asked);
            state.store_resolution(&asked, resolution, now, (generation, clock), &mut |list| {
                frozen_instances(list)
            });
            Ok(())
        }
        Err(e) => {
            state.resolution_failed(&asked, now);
            Err(e)
        }
    }
}

/// One instance registration, validated: from the original `register(url, pkg)` or from the
/// options of the modern `client.register({...})`.
#[wasm_bindgen]
pub struct Registration {
    inner: client::Registration,
}

#[wasm_bindgen]
impl Registration {
    /// From the original API's arguments. Errors: `Need url of service` (code `need_url`),
    /// `Invalid package` (code `invalid_package`), or a field's validation error.
    #[wasm_bindgen(js_name = fromPackage)]
    pub fn from_package(url: JsValue, pkg: JsValue) -> Result<Registration, JsErr> {
        let url = if url.is_string() {
            serde_json::Value::String(url.as_string().unwrap_or_default())
        } else {
            serde_json::Value::Null
        };
        let pkg = from_js(pkg, "pkg").map_err(|_| Error::InvalidPackage {
            reason: "not plain JSON data".into(),
        })?;
        let inner = client::Registration::from_package(&url, &pkg)?;
        Ok(Registration { inner })
    }

    /// From `{name, version, url, id?, ttl? (seconds), tags?, meta?, weight?, zone?,
    /// dependencies?, mocks?}`.
    #[wasm_bindgen(js_name = fromOptions)]
    pub fn from_options(options: JsValue) -> Result<Registration, JsErr> {
        let options = from_js(options, "options")?;
        let inner = client::Registration::from_options(&options)?;
        Ok(Registration { inner })
    }

    /// The service name.
    #[wasm_bindgen(getter)]
    pub fn name(&self) -> String {
        self.inner.key.service.to_string()
    }

    /// The version, normalized (`v1.0.0` is `1.0.0`).
    #[wasm_bindgen(getter)]
    pub fn version(&self) -> String {
        self.inner.key.version.to_string()
    }

    /// The instance id (derived from the url unless given).
    #[wasm_bindgen(getter)]
    pub fn id(&self) -> String {
        self.inner.key.id.to_string()
    }

    /// The url others reach it at.
    #[wasm_bindgen(getter)]
    pub fn url(&self) -> String {
        self.inner.spec.url.clone()
    }

    /// The lease, in milliseconds.
    #[wasm_bindgen(getter, js_name = ttlMs)]
    pub fn ttl_ms(&self) -> f64 {
        self.inner.spec.ttl_ms as f64
    }

    /// `{name: range}` of its dependencies.
    #[wasm_bindgen(getter, unchecked_return_type = "Record<string, string>")]
    pub fn dependencies(&self) -> JsValue {
        let map: BTreeMap<&str, &str> = self
            .inner
            .dependencies
            .0
            .iter()
            .map(|(name, req)| (name.as_str(), req.as_str()))
            .collect();
        to_js(&map)
    }

    /// `{name: url}` of its mocks.
    #[wasm_bindgen(getter, unchecked_return_type = "Record<string, string>")]
    pub fn mocks(&self) -> JsValue {
        let map: BTreeMap<&str, &str> = self
            .inner
            .mocks
            .0
            .iter()
            .map(|(name, url)| (name.as_str(), url.as_str()))
            .collect();
        to_js(&map)
    }

    /// Whether it has any dependencies to resolve.
    #[wasm_bindgen(getter, js_name = hasDependencies)]
    pub fn has_dependencies(&self) -> bool {
        !self.inner.dependencies.is_empty()
    }

    /// Its own drain time (`drainMs`, ms), or `undefined` for the client's.
    #[wasm_bindgen(getter, js_name = drainMs)]
    pub fn drain_ms(&self) -> Option<f64> {
        self.inner.drain_ms.map(|ms| ms as f64)
    }

    /// Records the status set `status` (`passing`, `warning`, `critical`, `maintenance`) with
    /// an optional `reason` and `by` as this registration's (see
    /// [`client::Registration::set_status`]); returns the update to send. Throws
    /// `invalid_status`, `invalid_reason` or `invalid_by`.
    #[wasm_bindgen(js_name = setStatus)]
    pub fn set_status(
        &mut self,
        status: &str,
        reason: Option<String>,
        by: Option<String>,
    ) -> Result<HealthUpdateHandle, JsErr> {
        let update = self.inner.set_status(status, reason, by)?;
        Ok(HealthUpdateHandle { update })
    }

    /// Records what the registration's `healthCheck` function gave: its value, or with
    /// `thrown` the message of what it threw (see [`client::check_outcome`]). Returns the
    /// check result, `{status, note?}`.
    #[wasm_bindgen(js_name = reportCheck, unchecked_return_type = "{ status: string; note?: string }")]
    pub fn report_check(&mut self, outcome: JsValue, thrown: bool) -> JsValue {
        // A value that is not plain data (a function, a symbol) is reported as such.
        let value = from_js(outcome, "outcome")
            .unwrap_or_else(|e| serde_json::Value::String(format!("<{e}>")));
        let check = self.inner.report_check(&value, thrown);
        match update_json(&check) {
            serde_json::Value::Object(mut body) => to_js(&body.remove("check")),
            _ => JsValue::UNDEFINED,
        }
    }

    /// What to send after a beat answered `instance` (see
    /// [`client::Registration::follow_up`]), or `undefined`.
    #[wasm_bindgen(js_name = followUp)]
    pub fn follow_up(
        &mut self,
        #[wasm_bindgen(unchecked_param_type = "Instance")] instance: JsValue,
    ) -> Option<HealthUpdateHandle> {
        let instance = instance_from(instance)?;
        self.inner
            .follow_up(&instance)
            .map(|update| HealthUpdateHandle { update })
    }

    /// A status update reached `instance` (the registry's answer to it).
    pub fn applied(
        &mut self,
        #[wasm_bindgen(unchecked_param_type = "Instance")] instance: JsValue,
    ) {
        if let Some(instance) = instance_from(instance) {
            self.inner.applied(&instance);
        }
    }
}

/// An instance as the registry answered it, from its JavaScript object.
fn instance_from(value: JsValue) -> Option<vasco_core::Instance> {
    serde_json::from_value(from_js(value, "instance").ok()?).ok()
}

/// One health update to send: a status set or a check result, validated.
#[wasm_bindgen]
pub struct HealthUpdateHandle {
    update: vasco_core::HealthUpdate,
}

#[wasm_bindgen]
impl HealthUpdateHandle {
    /// The body of `PUT .../status`.
    #[wasm_bindgen(getter)]
    pub fn body(&self) -> String {
        update_json(&self.update).to_string()
    }

    /// The same update as a message on a WebSocket lease (`{"type": "status", ...}`).
    #[wasm_bindgen(getter)]
    pub fn message(&self) -> String {
        let mut body = update_json(&self.update);
        body["type"] = "status".into();
        body.to_string()
    }

    /// Whether it is a status set (else a check result).
    #[wasm_bindgen(getter, js_name = isSet)]
    pub fn is_set(&self) -> bool {
        matches!(self.update, vasco_core::HealthUpdate::Set { .. })
    }

    /// The status it names.
    #[wasm_bindgen(getter)]
    pub fn status(&self) -> String {
        self.update
            .status()
            .map_or("resume", vasco_core::Status::name)
            .into()
    }
}

/// The status filter of a lookup's options: `{status?, passing?, all?}` (see
/// [`client::status_filter`]).
pub(crate) fn status_options(options: &JsValue) -> Result<vasco_core::StatusFilter> {
    let field = |name: &'static str| from_js(get(options, name), name);
    client::status_filter(&field("status")?, &field("passing")?, &field("all")?)
}
