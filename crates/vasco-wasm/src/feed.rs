//! The rules behind the package's two WebSockets, free of I/O and tested natively:
//!
//! * a service's **change feed** (`GET /v1/services/{name}/watch`) becomes a [`Membership`]:
//!   the snapshot, then each change event applied in index order, answering the same questions
//!   the cache asks over HTTP (instances matching a query; what a requirement resolves to) with
//!   the core's own query and resolution functions;
//! * the replies on a **WebSocket lease** (`GET /v1/services/{name}/{version}/instances/{id}/lease`)
//!   become a [`LeaseStep`]: what the socket's owner does next.
//!
//! The JavaScript layer (`js/feed.cjs`, `js/lease.cjs`) owns the sockets and timers and calls
//! these through the wasm `Client`.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;
use vasco_core::{
    registry::live_matching, resolve::resolve, ChangeEvent, Dependencies, Instance, InstanceId,
    Mocks, Query, ServiceName, Version,
};

use crate::{
    client::Kind,
    error::{Error, Result},
};

/// One service's instances as its change feed reports them.
///
/// Lease expiry is not checked here: renewals are not sent on the feed, so the `expires_at` of a
/// held record is only as new as its last change; the registry sends a removal when a lease
/// lapses (or its socket closes), and that is what takes an instance out.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Membership {
    /// The service's change index of the last snapshot or event applied.
    pub index: u64,
    instances: BTreeMap<(Version, InstanceId), Instance>,
}

impl Membership {
    /// The membership a `snapshot` message gives.
    pub fn from_snapshot(index: u64, instances: Vec<Instance>) -> Self {
        Self {
            index,
            instances: instances
                .into_iter()
                .map(|i| ((i.version.clone(), i.id.clone()), i))
                .collect(),
        }
    }

    /// Applies one change event. Returns false (and changes nothing) for an event not newer
    /// than what is held: a duplicate, or one the snapshot already contains.
    pub fn apply(&mut self, event: ChangeEvent) -> bool {
        if event.index <= self.index {
            return false;
        }
        self.index = event.index;
        for key in event.removed {
            self.instances.remove(&(key.version, key.id));
        }
        for instance in event.added.into_iter().chain(event.updated) {
            self.instances
                .insert((instance.version.clone(), instance.id.clone()), instance);
        }
        true
    }

    /// How many instances are held.
    pub fn len(&self) -> usize {
        self.instances.len()
    }

    /// Whether none are.
    pub fn is_empty(&self) -> bool {
        self.instances.is_empty()
    }

    /// The answer to a cache slot's question: for [`Kind::Instances`], the instances passing
    /// `query` newest version first (the core's [`live_matching`]); for [`Kind::Resolve`], the
    /// instances of the newest version matching `query.version` and that version (the core's
    /// [`resolve`]), or nothing.
    pub fn answer(&self, kind: Kind, query: &Query) -> (Vec<Instance>, Option<Version>) {
        // `now` 0: every held record counts as live (see the type's docs).
        match kind {
            Kind::Instances => (
                live_matching(self.instances.values(), query, 0)
                    .into_iter()
                    .cloned()
                    .collect(),
                None,
            ),
            Kind::Resolve => {
                let Some(first) = self.instances.values().next() else {
                    return (Vec::new(), None);
                };
                let service = first.service.clone();
                let mut dependencies = Dependencies::default();
                dependencies
                    .0
                    .insert(service.clone(), query.version.clone());
                let mut resolution = resolve(&dependencies, &Mocks::default(), 0, |_| {
                    self.instances.values()
                });
                match resolution.resolved.remove(service.as_str()) {
                    Some(resolved) => (resolved.instances, resolved.version),
                    None => (Vec::new(), None),
                }
            }
        }
    }
}

/// A message of a change feed, as far as the client needs it.
#[derive(Debug, Clone, PartialEq)]
pub enum FeedMessage {
    /// The membership when the socket opened.
    Snapshot {
        /// The service.
        service: ServiceName,
        /// Its change index.
        index: u64,
        /// Its live instances.
        instances: Vec<Instance>,
    },
    /// A change after it.
    Change(ChangeEvent),
    /// Anything else (`pong`, a message type this client does not know).
    Other,
}

impl FeedMessage {
    /// Reads one text message of `GET /v1/services/{name}/watch`.
    pub fn parse(text: &str) -> Result<Self> {
        let bad = |e: serde_json::Error| Error::BadResponse {
            reason: format!("change feed message: {e}"),
        };
        let value: Value = match serde_json::from_str(text) {
            Ok(value) => value,
            // `pong` and other plain text.
            Err(_) => return Ok(Self::Other),
        };
        match value.get("type").and_then(Value::as_str) {
            Some("snapshot") => {
                #[derive(Deserialize)]
                struct Snapshot {
                    service: ServiceName,
                    index: u64,
                    #[serde(default)]
                    instances: Vec<Instance>,
                }
                let s: Snapshot = serde_json::from_value(value).map_err(bad)?;
                Ok(Self::Snapshot {
                    service: s.service,
                    index: s.index,
                    instances: s.instances,
                })
            }
            Some("change") => Ok(Self::Change(serde_json::from_value(value).map_err(bad)?)),
            _ => Ok(Self::Other),
        }
    }
}

/// What the owner of a lease socket does after a message from the registry.
#[derive(Debug, Clone, PartialEq)]
pub enum LeaseStep {
    /// The lease is held (after `registered`, `renewed`, or `status`, the answer to a status
    /// set or check result sent on the lease): keep renewing at the core's heartbeat period.
    Held(Box<Instance>),
    /// The registry no longer knows the instance (`not_found`: the lease lapsed between two
    /// renewals): send the registration again on the same socket.
    Register,
    /// The registry refused the lease (a bad field, a wrong token): report it and retry later
    /// with backoff.
    Refused(Error),
    /// The lease ended on the registry's side (`closed`: it lapsed); the socket is closing.
    /// Reconnect and register again.
    Ended,
    /// Nothing to do (`deregistered`, `pong`, an unknown message).
    Nothing,
}

impl LeaseStep {
    /// Reads one text message of a lease socket.
    pub fn parse(text: &str) -> Self {
        let Ok(value) = serde_json::from_str::<Value>(text) else {
            return Self::Nothing;
        };
        match value.get("type").and_then(Value::as_str) {
            Some("registered") | Some("renewed") | Some("status") => {
                match value
                    .get("instance")
                    .cloned()
                    .map(serde_json::from_value::<Instance>)
                {
                    Some(Ok(instance)) => Self::Held(Box::new(instance)),
                    _ => Self::Refused(Error::BadResponse {
                        reason: "lease reply without a readable instance".into(),
                    }),
                }
            }
            Some("error") => {
                let error = value.get("error").cloned().unwrap_or(Value::Null);
                let code = error
                    .get("code")
                    .and_then(Value::as_str)
                    .unwrap_or("error")
                    .to_owned();
                if code == "not_found" {
                    return Self::Register;
                }
                let status = error.get("status").and_then(Value::as_u64).unwrap_or(400) as u16;
                let message = error
                    .get("message")
                    .and_then(Value::as_str)
                    .unwrap_or("the registry refused the lease")
                    .to_owned();
                Self::Refused(if status >= 500 || status == 429 {
                    Error::Unavailable {
                        reason: format!("{code}: {message}"),
                        status: Some(status),
                        registry_code: Some(code),
                        request: String::new(),
                    }
                } else {
                    Error::Registry {
                        status,
                        code,
                        message,
                        request: String::new(),
                        hint: String::new(),
                    }
                })
            }
            Some("closed") => Self::Ended,
            _ => Self::Nothing,
        }
    }
}

/// The `ws://` or `wss://` URL for an `http://` or `https://` one.
pub fn websocket_url(http_url: &str) -> String {
    if let Some(rest) = http_url.strip_prefix("https://") {
        format!("wss://{rest}")
    } else if let Some(rest) = http_url.strip_prefix("http://") {
        format!("ws://{rest}")
    } else {
        http_url.to_owned()
    }
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;
    use serde_json::json;
    use vasco_core::{InstanceKey, InstanceSpec, VersionReq};

    fn instance(version: &str, id: &str, url: &str, tags: &[&str]) -> Instance {
        let key = InstanceKey {
            service: ServiceName::parse("api").unwrap(),
            version: Version::parse(version).unwrap(),
            id: InstanceId::parse(id).unwrap(),
        };
        let mut spec = InstanceSpec::new(url).unwrap();
        spec.tags = tags.iter().map(|t| t.to_string()).collect();
        // Registered long ago with a short lease: held records are not checked for expiry.
        Instance::lease(key, spec, 1_000, None)
    }

    fn urls(list: &[Instance]) -> Vec<&str> {
        list.iter().map(|i| i.url.as_str()).collect()
    }

    #[test]
    fn a_snapshot_then_changes_in_index_order() {
        let mut m = Membership::from_snapshot(
            5,
            vec![
                instance("1.0.0", "a", "h:1", &[]),
                instance("2.0.0", "b", "h:2", &["canary"]),
            ],
        );
        let any = Query::any();
        assert_eq!(
            urls(&m.answer(Kind::Instances, &any).0),
            ["h:2", "h:1"],
            "newest version first, although every lease in it ended long ago"
        );
        let removal = ChangeEvent {
            service: ServiceName::parse("api").unwrap(),
            index: 6,
            added: vec![instance("1.0.0", "c", "h:3", &[])],
            updated: vec![],
            removed: vec![instance("2.0.0", "b", "h:2", &[]).key()],
        };
        assert!(m.apply(removal.clone()));
        assert_eq!(urls(&m.answer(Kind::Instances, &any).0), ["h:1", "h:3"]);
        // A duplicate or older event changes nothing.
        let mut older = removal;
        older.added = vec![instance("3.0.0", "z", "h:9", &[])];
        assert!(!m.apply(older.clone()));
        older.index = 2;
        assert!(!m.apply(older));
        assert_eq!(m.len(), 2);
        // An update replaces the record.
        let update = ChangeEvent {
            service: ServiceName::parse("api").unwrap(),
            index: 7,
            added: vec![],
            updated: vec![instance("1.0.0", "a", "h:11", &[])],
            removed: vec![],
        };
        assert!(m.apply(update));
        assert_eq!(urls(&m.answer(Kind::Instances, &any).0), ["h:11", "h:3"]);
    }

    #[test]
    fn an_update_to_maintenance_leaves_default_answers_at_once() {
        let mut m = Membership::from_snapshot(
            3,
            vec![
                instance("1.0.0", "a", "h:1", &[]),
                instance("1.0.0", "b", "h:2", &[]),
            ],
        );
        let any = Query::any();
        let mut drained = instance("1.0.0", "a", "h:1", &[]);
        drained.health.apply(
            &vasco_core::HealthUpdate::set(
                vasco_core::Status::Maintenance,
                Some("shutdown".into()),
            ),
            0,
        );
        assert!(m.apply(ChangeEvent {
            service: ServiceName::parse("api").unwrap(),
            index: 4,
            added: vec![],
            updated: vec![drained],
            removed: vec![],
        }));
        assert_eq!(urls(&m.answer(Kind::Instances, &any).0), ["h:2"]);
        let caret1 = Query::version(VersionReq::parse("^1").unwrap());
        assert_eq!(urls(&m.answer(Kind::Resolve, &caret1).0), ["h:2"]);
        let all = Query {
            statuses: vasco_core::StatusFilter::ALL,
            ..Query::any()
        };
        let listed = m.answer(Kind::Instances, &all).0;
        assert_eq!(urls(&listed), ["h:1", "h:2"]);
        assert_eq!(listed[0].health.reason.as_deref(), Some("shutdown"));
    }

    #[test]
    fn answers_follow_queries_and_resolution() {
        let m = Membership::from_snapshot(
            1,
            vec![
                instance("1.2.0", "a", "h:1", &[]),
                instance("1.3.0", "b", "h:2", &["canary"]),
                instance("1.3.0", "c", "h:3", &[]),
                instance("2.0.0", "d", "h:4", &[]),
            ],
        );
        let caret1 = Query::version(VersionReq::parse("^1").unwrap());
        assert_eq!(
            urls(&m.answer(Kind::Instances, &caret1).0),
            ["h:2", "h:3", "h:1"]
        );
        let canary = Query {
            tags: vec!["canary".into()],
            ..Query::any()
        };
        assert_eq!(urls(&m.answer(Kind::Instances, &canary).0), ["h:2"]);
        let (list, version) = m.answer(Kind::Resolve, &caret1);
        assert_eq!(urls(&list), ["h:2", "h:3"]);
        assert_eq!(version.unwrap().to_string(), "1.3.0");
        let none = Query::version(VersionReq::parse("^3").unwrap());
        assert_eq!(m.answer(Kind::Resolve, &none), (Vec::new(), None));
        assert_eq!(
            Membership::default().answer(Kind::Resolve, &caret1),
            (Vec::new(), None)
        );
    }

    #[test]
    fn feed_messages() {
        let record = serde_json::to_value(instance("1.0.0", "a", "h:1", &[])).unwrap();
        let snapshot = json!({"type": "snapshot", "service": "api", "index": 3,
                              "instances": [record], "now": 5});
        match FeedMessage::parse(&snapshot.to_string()).unwrap() {
            FeedMessage::Snapshot {
                service,
                index,
                instances,
            } => {
                assert_eq!(service.as_str(), "api");
                assert_eq!(index, 3);
                assert_eq!(instances.len(), 1);
            }
            other => panic!("{other:?}"),
        }
        let change = json!({"type": "change", "service": "api", "index": 4, "added": [],
                            "updated": [], "now": 6,
                            "removed": [{"service": "api", "version": "1.0.0", "id": "a"}]});
        match FeedMessage::parse(&change.to_string()).unwrap() {
            FeedMessage::Change(event) => assert_eq!(event.removed.len(), 1),
            other => panic!("{other:?}"),
        }
        assert_eq!(FeedMessage::parse("pong").unwrap(), FeedMessage::Other);
        assert_eq!(
            FeedMessage::parse(r#"{"type":"catalog"}"#).unwrap(),
            FeedMessage::Other
        );
        let broken = json!({"type": "change", "service": "api"});
        assert_eq!(
            FeedMessage::parse(&broken.to_string()).unwrap_err().code(),
            "bad_response"
        );
    }

    #[test]
    fn lease_replies() {
        let record = serde_json::to_value(instance("1.0.0", "a", "h:1", &[])).unwrap();
        let held = json!({"type": "renewed", "index": 2, "now": 3, "instance": record,
                          "outcome": "renewed"});
        assert!(
            matches!(LeaseStep::parse(&held.to_string()), LeaseStep::Held(i) if i.url == "h:1")
        );
        let lapsed = json!({"type": "error", "error": {"code": "not_found", "message": "gone", "status": 404}});
        assert_eq!(LeaseStep::parse(&lapsed.to_string()), LeaseStep::Register);
        let bad = json!({"type": "error", "error": {"code": "invalid_url", "message": "bad", "status": 400}});
        match LeaseStep::parse(&bad.to_string()) {
            LeaseStep::Refused(e) => assert_eq!(e.code(), "invalid_url"),
            other => panic!("{other:?}"),
        }
        let busy = json!({"type": "error", "error": {"code": "storage_unavailable", "message": "x", "status": 503}});
        match LeaseStep::parse(&busy.to_string()) {
            LeaseStep::Refused(e) => assert!(e.is_unavailable()),
            other => panic!("{other:?}"),
        }
        let status = json!({"type": "status", "index": 3, "now": 4, "instance": record,
                            "outcome": "updated"});
        assert!(matches!(
            LeaseStep::parse(&status.to_string()),
            LeaseStep::Held(_)
        ));
        assert_eq!(LeaseStep::parse(r#"{"type":"closed"}"#), LeaseStep::Ended);
        assert_eq!(
            LeaseStep::parse(r#"{"type":"deregistered"}"#),
            LeaseStep::Nothing
        );
        assert_eq!(LeaseStep::parse("pong"), LeaseStep::Nothing);
    }

    #[test]
    fn websocket_urls() {
        assert_eq!(
            websocket_url("http://127.0.0.1:8787/v1/x"),
            "ws://127.0.0.1:8787/v1/x"
        );
        assert_eq!(websocket_url("https://v.dev/a"), "wss://v.dev/a");
    }
}
