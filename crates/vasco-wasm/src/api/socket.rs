//! The `Client` methods behind the package's WebSockets (`js/feed.cjs`, `js/lease.cjs`): where
//! the sockets go, what their messages mean, and how a service's change feed keeps the cache's
//! answers about that service current (the rules are in [`crate::feed`]).
//!
//! While a service has a feed, every cached answer about it is recomputed from the feed's
//! membership when the membership moves, and is otherwise vouched for by the feed (its age is
//! reset on use), so the cache asks the registry nothing about that service: no polling, and a
//! removal is seen as soon as its event arrives. When the feed is lost, the answers age
//! normally again and the cache's HTTP policy takes over.

use js_sys::Object;
use wasm_bindgen::prelude::*;

use vasco_core::{Dependencies, Mocks, ServiceName};

use super::{Client, Link, Shared};
use crate::{
    client::Handle,
    convert::{frozen_instances, js_error, set, to_js, JsErr},
    feed::{websocket_url, FeedMessage, LeaseStep, Membership},
    transport::{Call, RegisterCall},
};

/// Brings `slot`'s answer up to date from its service's feed, if the service has one: a
/// recomputed answer when the membership moved since it was stored, else a refreshed age.
/// Returns whether the service is fed.
pub(super) fn sync(shared: &Shared, slot: Handle, now: u64) -> bool {
    let feeds = shared.feeds.borrow();
    if feeds.is_empty() {
        return false;
    }
    let state = &mut *shared.state.borrow_mut();
    let Some(entry) = state.cache.get(slot) else {
        return false;
    };
    let Some(membership) = feeds.get(&entry.service) else {
        return false;
    };
    let mut fed = shared.fed.borrow_mut();
    if fed.get(&slot) == Some(&membership.index) && state.cache.answer(slot).is_some() {
        state.cache.touch(slot, now);
        return true;
    }
    let (instances, version) = membership.answer(entry.kind, &entry.query);
    // A feed sends removals but no renewals: its members' leases are open until they leave.
    let instances: Vec<_> = instances
        .iter()
        .map(|i| vasco_core::snapshot::as_member(i, now))
        .collect();
    let payload = frozen_instances(&instances);
    state.store(
        slot,
        instances,
        version,
        payload,
        now,
        0,
        vasco_core::cache::RegistryClock::LOCAL,
    );
    fed.insert(slot, membership.index);
    true
}

/// Brings the resolution slots of every fed, unmocked dependency up to date (see [`sync`]).
pub(super) fn sync_dependencies(
    shared: &Shared,
    dependencies: &Dependencies,
    mocks: &Mocks,
    now: u64,
) {
    if shared.feeds.borrow().is_empty() {
        return;
    }
    for (name, requirement) in &dependencies.0 {
        if !mocks.0.contains_key(name) && is_fed(shared, name) {
            let slot = shared.state.borrow_mut().resolve_slot(name, requirement);
            sync(shared, slot, now);
        }
    }
}

/// `asked` without the services that have a feed now (their answers come from the feed, not
/// from an HTTP answer that may be older).
pub(super) fn unfed(shared: &Shared, mut asked: Dependencies) -> Dependencies {
    let feeds = shared.feeds.borrow();
    if !feeds.is_empty() {
        asked.0.retain(|service, _| !feeds.contains_key(service));
    }
    asked
}

/// Whether `service` has a feed now.
pub(super) fn is_fed(shared: &Shared, service: &ServiceName) -> bool {
    shared.feeds.borrow().contains_key(service)
}

#[wasm_bindgen]
impl Client {
    /// Where the change feed of `name` (a service or package name) is: `{service, url, token}`
    /// with a `ws(s)://` url, or `undefined` for the in-process registry (which has no
    /// sockets). Throws for an invalid name.
    #[wasm_bindgen(js_name = feedTarget)]
    pub fn feed_target(&self, name: &str) -> Result<JsValue, JsErr> {
        let service = ServiceName::from_package_name(name)?;
        let Link::Http { endpoint, .. } = &self.shared.link else {
            return Ok(JsValue::UNDEFINED);
        };
        let target = Object::new();
        set(&target, "service", service.as_str());
        let url = format!("{}/v1/services/{service}/watch", endpoint.base);
        set(&target, "url", websocket_url(&url));
        if let Some(token) = &endpoint.token {
            set(&target, "token", token.as_str());
        }
        Ok(target.into())
    }

    /// Applies one text message of a change feed. Returns the service's name when its
    /// membership moved (a snapshot, or a change newer than what is held), else `undefined`.
    /// Throws `bad_response` for a message that cannot be read.
    #[wasm_bindgen(js_name = feedMessage)]
    pub fn feed_message(&self, text: &str) -> Result<Option<String>, JsErr> {
        let message = FeedMessage::parse(text)?;
        let mut feeds = self.shared.feeds.borrow_mut();
        let moved = match message {
            FeedMessage::Snapshot {
                service,
                index,
                instances,
            } => {
                let name = service.to_string();
                feeds.insert(service, Membership::from_snapshot(index, instances));
                // Every slot of the service is recomputed on its next use.
                self.forget_slots(&name);
                Some(name)
            }
            FeedMessage::Change(event) => {
                let name = event.service.to_string();
                let applied = feeds
                    .get_mut(&event.service)
                    .is_some_and(|membership| membership.apply(event));
                applied.then_some(name)
            }
            FeedMessage::Other => None,
        };
        drop(feeds);
        if moved.is_some() {
            // Picks memoized by the JavaScript side (sticky keys) are over: an instance may
            // have left, or changed its status (a drain's maintenance), just now.
            self.shared.changed();
        }
        Ok(moved)
    }

    /// The feed of `service` is gone (its socket closed): its answers age normally again.
    #[wasm_bindgen(js_name = feedLost)]
    pub fn feed_lost(&self, service: &str) {
        if let Ok(service) = ServiceName::parse(service) {
            self.shared.feeds.borrow_mut().remove(&service);
        }
        self.forget_slots(service);
    }

    /// Whether `service` has a feed now (for tests and debugging).
    #[wasm_bindgen(js_name = isFed)]
    pub fn is_fed(&self, service: &str) -> bool {
        ServiceName::parse(service).is_ok_and(|s| is_fed(&self.shared, &s))
    }

    /// Where `registration`'s WebSocket lease is and what to send on it:
    /// `{url, token, register}`, `register` being the `{"type":"register", ...}` message text.
    /// `undefined` for the in-process registry.
    #[wasm_bindgen(js_name = leaseTarget)]
    pub fn lease_target(&self, registration: &super::Registration) -> JsValue {
        let Link::Http { endpoint, .. } = &self.shared.link else {
            return JsValue::UNDEFINED;
        };
        let request = RegisterCall {
            key: registration.inner.key.clone(),
            spec: registration.inner.spec.clone(),
        }
        .request(endpoint);
        let mut body: serde_json::Value = request
            .body
            .as_deref()
            .and_then(|b| serde_json::from_str(b).ok())
            .unwrap_or_else(|| serde_json::json!({}));
        body["type"] = "register".into();
        let target = Object::new();
        set(
            &target,
            "url",
            websocket_url(&format!("{}/lease", request.url)),
        );
        if let Some(token) = &request.token {
            set(&target, "token", token.as_str());
        }
        set(&target, "register", body.to_string());
        target.into()
    }

    /// What a lease socket's message means: `{step: "held", instance}` (keep renewing),
    /// `{step: "register"}` (the registry forgot the lease: register again), `{step:
    /// "refused", error}`, `{step: "ended"}` (the registry closed the lease: reconnect), or
    /// `{step: "nothing"}`.
    #[wasm_bindgen(js_name = leaseStep)]
    pub fn lease_step(&self, text: &str) -> JsValue {
        let result = Object::new();
        let step = match LeaseStep::parse(text) {
            LeaseStep::Held(instance) => {
                set(&result, "instance", to_js(&instance));
                "held"
            }
            LeaseStep::Register => "register",
            LeaseStep::Refused(error) => {
                set(&result, "error", js_error(&error));
                "refused"
            }
            LeaseStep::Ended => "ended",
            LeaseStep::Nothing => "nothing",
        };
        set(&result, "step", step);
        result.into()
    }
}

impl Client {
    /// Drops the feed marks of every slot of `service`, so the next use recomputes them.
    fn forget_slots(&self, service: &str) {
        let state = self.shared.state.borrow();
        self.shared.fed.borrow_mut().retain(|slot, _| {
            state
                .cache
                .get(*slot)
                .is_none_or(|s| s.service.as_str() != service)
        });
    }
}
