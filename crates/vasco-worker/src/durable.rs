//! The Durable Objects on the Workers runtime (wasm only): [`ServiceObject`], one per service
//! (`id_from_name(service)`), holding its leases, and [`CatalogObject`], one for the registry.
//! Both run the plain-Rust logic of [`crate::object`] and [`crate::catalog`] over SQLite rows;
//! this file only binds it to the runtime: storage, alarms, KV, held requests and WebSockets.
//!
//! The Worker talks to an object over internal requests:
//! - `POST https://vasco.internal/command` with `{"service": "api", "command": {...}}`
//!   ([`crate::object::Command`]) answers a [`crate::object::Reply`], or an error body with its
//!   status;
//! - `GET https://vasco.internal/wait?service=api&index=N&wait_ms=M`: a blocking read;
//! - a WebSocket upgrade forwarded unchanged (its public path says what it is: a change feed,
//!   `/v1/services/{name}/watch` or `/v1/watch`, or a lease,
//!   `/v1/services/{name}/{version}/instances/{id}/lease`).
//!
//! WebSockets are accepted through the hibernation API: an idle socket costs no duration,
//! `ping` is answered `pong` by the runtime without waking the object, and closes still arrive
//! after the object was evicted (the attachment says whose socket it was).

use core::cell::{Cell, RefCell};
use core::time::Duration;

use futures_channel::oneshot;
use futures_util::future::{select, Either};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use vasco_core::blocking::BlockingQuery;
use vasco_core::service::ChangeEvent;
use vasco_core::snapshot::{CatalogSnapshot, ServiceSummary};
use vasco_core::{InstanceKey, Millis, ServiceName};
use worker::{
    durable_object, js_sys, wasm_bindgen::JsValue, Date, Delay, DurableObject, Env, Method,
    Request, RequestInit, Response, ScheduledTime, SqlStorage, State, WebSocket,
    WebSocketIncomingMessage, WebSocketPair,
};

use crate::agent::{AgentCommand, AgentReply, AgentState, AGENT_OBJECT_NAME};
use crate::backend::Objects;
use crate::catalog::{self, CatalogCommand, CatalogHost, CatalogKeeper, CATALOG_OBJECT_NAME};
use crate::error::AppError;
use crate::http::Method as ApiMethod;
use crate::kv::{workers::WorkersKv, Kv, KvFailure};
use crate::object::{settle, Command, ObjectHost, Reply, Rows, ServiceState, StorageFailure};
use crate::router::{route, RouteId};
use crate::tokens::{TokenCommand, TokenReply, TokenStore, TOKENS_OBJECT_NAME};
use crate::ROUTES;

/// The Durable Object binding of service objects in wrangler.toml.
pub const SERVICES_BINDING: &str = "SERVICES";
/// The Durable Object binding of the catalog object in wrangler.toml.
pub const CATALOG_BINDING: &str = "CATALOG";
/// The Durable Object binding of the token object in wrangler.toml.
pub const TOKENS_BINDING: &str = "TOKENS";
/// The Durable Object binding of the Consul agent object in wrangler.toml.
pub const AGENT_BINDING: &str = "AGENT";
/// The KV binding holding the snapshots.
pub const KV_BINDING: &str = "REGISTRY";
const INTERNAL: &str = "https://vasco.internal";
const FEED_TAG: &str = "feed";

fn now_ms() -> Millis {
    Date::now().as_millis()
}

fn internal(reason: impl core::fmt::Display) -> AppError {
    AppError::Internal {
        reason: reason.to_string(),
    }
}

// --- storage -------------------------------------------------------------------------------

/// [`Rows`] in the object's SQLite storage: one table `rows(key TEXT PRIMARY KEY, value TEXT)`.
pub struct SqlRows(SqlStorage);

#[derive(Deserialize)]
struct KeyValue {
    key: String,
    value: String,
}

impl SqlRows {
    fn new(state: &State) -> Self {
        let sql = state.storage().sql();
        if let Err(e) = sql.exec(
            "CREATE TABLE IF NOT EXISTS rows (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
            None,
        ) {
            worker::console_error!("vasco: creating the rows table failed: {e}");
        }
        Self(sql)
    }
}

fn storage_failure(e: worker::Error) -> StorageFailure {
    StorageFailure(e.to_string())
}

impl Rows for SqlRows {
    fn load(&self) -> Result<Vec<(String, String)>, StorageFailure> {
        let rows: Vec<KeyValue> = self
            .0
            .exec("SELECT key, value FROM rows ORDER BY key", None)
            .and_then(|cursor| cursor.to_array())
            .map_err(storage_failure)?;
        Ok(rows.into_iter().map(|r| (r.key, r.value)).collect())
    }

    fn put(&self, key: &str, value: &str) -> Result<(), StorageFailure> {
        self.0
            .exec(
                "INSERT INTO rows (key, value) VALUES (?, ?) \
                 ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                vec![key.into(), value.into()],
            )
            .map(|_| ())
            .map_err(storage_failure)
    }

    fn delete(&self, key: &str) -> Result<(), StorageFailure> {
        self.0
            .exec("DELETE FROM rows WHERE key = ?", vec![key.into()])
            .map(|_| ())
            .map_err(storage_failure)
    }
}

// --- the Worker's side: Objects over stubs ---------------------------------------------------

/// [`Objects`] over the Durable Object bindings of `env`.
pub struct DoObjects<'a>(pub &'a Env);

#[derive(Serialize, Deserialize)]
struct ServiceRequest {
    service: ServiceName,
    command: Command,
}

#[derive(Deserialize)]
struct ErrorBody {
    error: ErrorDetail,
}

#[derive(Deserialize)]
struct ErrorDetail {
    code: String,
    message: String,
}

/// A request to an object that got no answer at all.
fn unanswered(e: worker::Error) -> AppError {
    AppError::StorageUnavailable {
        reason: format!("the registry object did not answer: {e}"),
    }
}

async fn call<T: serde::de::DeserializeOwned>(
    stub: worker::Stub,
    request: Request,
) -> Result<T, AppError> {
    let mut response = stub.fetch_with_request(request).await.map_err(unanswered)?;
    let status = response.status_code();
    let text = response.text().await.map_err(internal)?;
    if status == 200 {
        serde_json::from_str(&text).map_err(|e| internal(format!("object answer unreadable: {e}")))
    } else {
        let body: ErrorBody =
            serde_json::from_str(&text).map_err(|_| AppError::StorageUnavailable {
                reason: format!("the registry object answered {status}: {text}"),
            })?;
        Err(AppError::Relayed {
            status,
            code: body.error.code,
            message: body.error.message,
        })
    }
}

/// Sends `command` as JSON to the object behind `stub` (`POST /command`); answers its reply.
async fn command<C: Serialize, T: serde::de::DeserializeOwned>(
    stub: worker::Stub,
    command: &C,
) -> Result<T, AppError> {
    let body = serde_json::to_string(command).map_err(internal)?;
    let mut init = RequestInit::new();
    init.with_method(Method::Post)
        .with_body(Some(JsValue::from_str(&body)));
    let request =
        Request::new_with_init(&format!("{INTERNAL}/command"), &init).map_err(internal)?;
    call(stub, request).await
}

impl DoObjects<'_> {
    fn service_stub(&self, service: &ServiceName) -> Result<worker::Stub, AppError> {
        stub(self.0, SERVICES_BINDING, service.as_str())
    }

    fn catalog_stub(&self) -> Result<worker::Stub, AppError> {
        stub(self.0, CATALOG_BINDING, CATALOG_OBJECT_NAME)
    }

    /// Forwards a WebSocket upgrade to the object `target` names.
    pub async fn forward_upgrade(
        &self,
        target: &crate::app::UpgradeTarget,
        request: Request,
    ) -> Result<Response, AppError> {
        use crate::app::UpgradeTarget;
        let stub = match target {
            UpgradeTarget::ServiceFeed(name) => self.service_stub(name)?,
            UpgradeTarget::Lease(key) => self.service_stub(&key.service)?,
            UpgradeTarget::CatalogFeed => self.catalog_stub()?,
        };
        stub.fetch_with_request(request).await.map_err(unanswered)
    }
}

fn stub(env: &Env, binding: &str, name: &str) -> Result<worker::Stub, AppError> {
    let stub = || -> worker::Result<worker::Stub> {
        let namespace = env.durable_object(binding)?;
        let id = namespace.id_from_name(name)?;
        id.get_stub()
    };
    stub().map_err(|e| AppError::StorageUnavailable {
        reason: format!(
            "the Durable Object binding `{binding}` is missing or failed ({e}); see wrangler.toml"
        ),
    })
}

impl Objects for DoObjects<'_> {
    async fn service(&self, service: &ServiceName, command: &Command) -> Result<Reply, AppError> {
        let request = ServiceRequest {
            service: service.clone(),
            command: command.clone(),
        };
        self::command(self.service_stub(service)?, &request).await
    }

    async fn wait(&self, service: &ServiceName, query: BlockingQuery) -> Result<Reply, AppError> {
        let url = format!(
            "{INTERNAL}/wait?service={service}&index={}&wait_ms={}",
            query.index, query.wait_ms
        );
        let request = Request::new(&url, Method::Get).map_err(internal)?;
        call(self.service_stub(service)?, request).await
    }

    async fn catalog(&self, command: &CatalogCommand) -> Result<CatalogSnapshot, AppError> {
        self::command(self.catalog_stub()?, command).await
    }

    async fn catalog_wait(&self, query: BlockingQuery) -> Result<CatalogSnapshot, AppError> {
        let url = format!(
            "{INTERNAL}/wait?index={}&wait_ms={}",
            query.index, query.wait_ms
        );
        let request = Request::new(&url, Method::Get).map_err(internal)?;
        call(self.catalog_stub()?, request).await
    }

    async fn tokens(&self, command: &TokenCommand) -> Result<TokenReply, AppError> {
        self::command(stub(self.0, TOKENS_BINDING, TOKENS_OBJECT_NAME)?, command).await
    }

    async fn agent(&self, command: &AgentCommand) -> Result<AgentReply, AppError> {
        self::command(stub(self.0, AGENT_BINDING, AGENT_OBJECT_NAME)?, command).await
    }
}

fn json_response(status: u16, body: &impl Serialize) -> worker::Result<Response> {
    let text = serde_json::to_string(body).map_err(|e| worker::Error::RustError(e.to_string()))?;
    let response = Response::ok(text)?.with_status(status);
    response
        .headers()
        .set("content-type", "application/json; charset=utf-8")?;
    Ok(response)
}

fn error_response(err: &AppError) -> worker::Result<Response> {
    let body: Value = serde_json::from_str(&err.to_json()).unwrap_or(Value::Null);
    json_response(err.status(), &body)
}

/// Sets the alarm to `at` unless this object already set it there (`cached` remembers; the
/// alarm handler clears it).
async fn set_alarm_at(state: &State, cached: &Cell<Option<Millis>>, at: Millis) {
    if cached.get() == Some(at) {
        return;
    }
    cached.set(Some(at));
    let date = js_sys::Date::new(&JsValue::from_f64(at as f64));
    if let Err(e) = state.storage().set_alarm(ScheduledTime::new(date)).await {
        cached.set(None);
        worker::console_error!("vasco: setting the alarm failed: {e}");
    }
}

/// An object's storage, and `ping` answered `pong` by the runtime without waking the object.
fn prepare(state: &State) -> SqlRows {
    if let Ok(pair) = worker::worker_sys::WebSocketRequestResponsePair::new("ping", "pong") {
        state.set_websocket_auto_response(&pair);
    }
    SqlRows::new(state)
}

/// An object's held blocking reads, each waiting to be woken by the next change.
#[derive(Default)]
struct Waiters(RefCell<Vec<oneshot::Sender<()>>>);

impl Waiters {
    /// Wakes every held read (on a change).
    fn wake(&self) {
        for waiter in self.0.borrow_mut().drain(..) {
            let _ = waiter.send(());
        }
    }

    /// Holds a blocking read: `read`s until `query` no longer holds on the answer's `index`
    /// ([`BlockingQuery::holds`]) or its wait is over, reading again each time a change wakes
    /// it; one last read when the wait ends.
    async fn hold<T, F: core::future::Future<Output = Result<T, AppError>>>(
        &self,
        query: BlockingQuery,
        index: impl Fn(&T) -> u64,
        read: impl Fn() -> F,
    ) -> Result<T, AppError> {
        let deadline = now_ms().saturating_add(query.wait_ms);
        loop {
            let answer = read().await?;
            let now = now_ms();
            if !query.holds(index(&answer)) || now >= deadline {
                return Ok(answer);
            }
            let (sender, receiver) = oneshot::channel();
            self.0.borrow_mut().push(sender);
            let delay = Delay::from(Duration::from_millis(deadline - now));
            if let Either::Right(_) = select(receiver, delay).await {
                return read().await;
            }
        }
    }
}

/// The blocking query of an internal `/wait?index=&wait_ms=` request (0 for either missing).
fn blocking_query(url: &worker::Url) -> BlockingQuery {
    let number = |name| query_param(url, name).and_then(|v| v.parse().ok());
    BlockingQuery {
        index: number("index").unwrap_or(0),
        wait_ms: number("wait_ms").unwrap_or(0),
    }
}

/// Sends `event` to every change-feed subscriber of the object, as a `change` message.
fn broadcast(state: &State, event: &ChangeEvent) {
    let mut message = serde_json::to_value(event).unwrap_or(Value::Null);
    message["type"] = json!("change");
    message["now"] = json!(now_ms());
    for ws in state.get_websockets_with_tag(FEED_TAG) {
        send(&ws, &message);
    }
}

fn upgrade_pair() -> worker::Result<WebSocketPair> {
    WebSocketPair::new()
}

fn send(ws: &WebSocket, message: &Value) {
    // A socket that is closing cannot take messages; its close handler cleans up.
    let _ = ws.send_with_str(message.to_string());
}

// --- the service object ----------------------------------------------------------------------

/// Whose socket it is: a change-feed subscriber or the holder of a lease.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum Attachment {
    Feed,
    Lease { key: InstanceKey, conn: u64 },
}

fn lease_tag(key: &InstanceKey) -> String {
    format!("lease:{}/{}", key.version, key.id)
}

/// The Durable Object of one service (class `ServiceObject` in wrangler.toml).
#[durable_object]
pub struct ServiceObject {
    state: State,
    env: Env,
    inner: RefCell<ServiceState<SqlRows>>,
    waiters: Waiters,
    alarm_at: Cell<Option<Millis>>,
}

impl ObjectHost for ServiceObject {
    async fn put_snapshot(&self, key: &str, json: &str, ttl_s: u64) -> Result<(), KvFailure> {
        WorkersKv::from_env(&self.env, KV_BINDING)
            .put(key, json, ttl_s)
            .await
    }

    async fn report(&self, summary: &ServiceSummary, events: &[ChangeEvent]) -> Result<(), String> {
        let report = CatalogCommand::Report {
            summary: summary.clone(),
            events: events.to_vec(),
        };
        let stub =
            stub(&self.env, CATALOG_BINDING, CATALOG_OBJECT_NAME).map_err(|e| e.to_string())?;
        command::<_, CatalogSnapshot>(stub, &report)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    fn publish(&self, event: &ChangeEvent) {
        self.waiters.wake();
        broadcast(&self.state, event);
    }

    fn close_lease(&self, key: &InstanceKey, conn: u64) {
        for ws in self.state.get_websockets_with_tag(&lease_tag(key)) {
            if let Ok(Some(Attachment::Lease { conn: c, .. })) = ws.deserialize_attachment() {
                if c == conn {
                    send(
                        &ws,
                        &json!({"type": "closed", "reason": "the lease ended (lapsed or deregistered)"}),
                    );
                    let _ = ws.close(Some(4001), Some("lease ended"));
                }
            }
        }
    }

    async fn set_alarm(&self, at: Millis) {
        set_alarm_at(&self.state, &self.alarm_at, at).await;
    }
}

impl ServiceObject {
    /// Runs a command and settles what it left to do; answers the reply with the KV ops made.
    async fn run(&self, service: &ServiceName, command: Command) -> Result<Reply, AppError> {
        let now = now_ms();
        let result = self.inner.borrow_mut().apply(service, command, now);
        let kv_ops = settle(&self.inner, self, now).await;
        let mut reply = result?;
        reply.kv_ops = kv_ops;
        Ok(reply)
    }

    async fn wait(&self, service: &ServiceName, query: BlockingQuery) -> Result<Reply, AppError> {
        let read = || self.run(service, Command::Read);
        self.waiters.hold(query, |r: &Reply| r.index, read).await
    }

    async fn accept_upgrade(&self, path: &str) -> Result<Response, AppError> {
        let matched = route(ROUTES, &ApiMethod::Get, path)?;
        let pair = upgrade_pair().map_err(internal)?;
        match matched.def.id {
            RouteId::Watch => {
                let service = ServiceName::parse(matched.params.get("name"))?;
                let reply = self.run(&service, Command::Read).await?;
                self.state
                    .accept_websocket_with_tags(&pair.server, &[FEED_TAG]);
                pair.server
                    .serialize_attachment(Attachment::Feed)
                    .map_err(internal)?;
                send(
                    &pair.server,
                    &json!({"type": "snapshot", "service": service, "index": reply.index,
                            "instances": reply.instances, "now": reply.now}),
                );
            }
            RouteId::Lease => {
                let key = crate::routes::services::instance_key(&matched.params)?;
                let conn = self.inner.borrow_mut().open_lease(&key.service, &key)?;
                let tag = lease_tag(&key);
                self.state
                    .accept_websocket_with_tags(&pair.server, &[tag.as_str()]);
                pair.server
                    .serialize_attachment(Attachment::Lease { key, conn })
                    .map_err(internal)?;
            }
            _ => {
                return Err(AppError::invalid(
                    "upgrade",
                    "this route does not take a WebSocket",
                ))
            }
        }
        Response::from_websocket(pair.client).map_err(internal)
    }

    async fn lease_message(&self, ws: &WebSocket, key: &InstanceKey, conn: u64, text: &str) {
        if text == "ping" {
            // Normally answered by the runtime's auto-response without waking the object.
            let _ = ws.send_with_str("pong");
            return;
        }
        let message: Value = match serde_json::from_str(text) {
            Ok(value) => value,
            Err(e) => {
                let err = AppError::BadJson {
                    reason: e.to_string(),
                };
                send(ws, &lease_error(&err));
                return;
            }
        };
        let kind = message.get("type").and_then(Value::as_str).unwrap_or("");
        let (command, answer) = match kind {
            "register" => {
                let mut spec = message.clone();
                if let Some(object) = spec.as_object_mut() {
                    object.remove("type");
                }
                let check = crate::routes::services::check_registration(key, &spec, now_ms());
                if let Err(err) = check {
                    send(ws, &lease_error(&err));
                    return;
                }
                (
                    Command::Register {
                        key: key.clone(),
                        spec,
                    },
                    "registered",
                )
            }
            "renew" => (Command::Renew { key: key.clone() }, "renewed"),
            "status" => {
                let mut update = message.clone();
                if let Some(object) = update.as_object_mut() {
                    object.remove("type");
                }
                if let Err(err) = vasco_core::HealthUpdate::from_value(&update) {
                    send(ws, &lease_error(&err.into()));
                    return;
                }
                (
                    Command::SetHealth {
                        key: key.clone(),
                        update,
                    },
                    "status",
                )
            }
            "deregister" => (Command::Deregister { key: key.clone() }, "deregistered"),
            other => {
                let err = AppError::invalid(
                    "type",
                    format!(
                        "unknown message type {other:?}; use register, renew, status or deregister"
                    ),
                );
                send(ws, &lease_error(&err));
                return;
            }
        };
        // A socket replaced by a newer one for the same instance (a reconnect) holds nothing.
        if !self.inner.borrow().holds_lease(key, conn) {
            send(
                ws,
                &json!({"type": "error", "error": {"code": "lease_taken",
                        "message": "another connection holds this instance's lease now"}}),
            );
            let _ = ws.close(Some(4002), Some("lease taken over"));
            return;
        }
        match self.run(&key.service, command).await {
            Ok(reply) => {
                send(
                    ws,
                    &json!({"type": answer, "index": reply.index, "now": reply.now,
                            "instance": reply.instance, "outcome": reply.outcome}),
                );
                if answer == "deregistered" {
                    let _ = ws.close(Some(1000), Some("deregistered"));
                }
            }
            Err(err) => send(ws, &lease_error(&err)),
        }
    }

    async fn socket_gone(&self, ws: &WebSocket) {
        if let Ok(Some(Attachment::Lease { key, conn })) = ws.deserialize_attachment() {
            let now = now_ms();
            let closed = self.inner.borrow_mut().close_lease(&key, conn, now);
            if let Err(e) = closed {
                worker::console_error!("vasco: closing the lease of {key} failed: {e}");
            }
            settle(&self.inner, self, now).await;
        }
    }
}

fn lease_error(err: &AppError) -> Value {
    json!({"type": "error", "error": {"code": err.code(), "message": err.to_string(), "status": err.status()}})
}

fn query_param(url: &worker::Url, name: &str) -> Option<String> {
    url.query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

impl DurableObject for ServiceObject {
    fn new(state: State, env: Env) -> Self {
        let rows = prepare(&state);
        Self {
            state,
            env,
            inner: RefCell::new(ServiceState::new(rows)),
            waiters: Waiters::default(),
            alarm_at: Cell::new(None),
        }
    }

    async fn fetch(&self, mut req: Request) -> worker::Result<Response> {
        let url = req.url()?;
        let result = match url.path() {
            "/command" => match req.json::<ServiceRequest>().await {
                Ok(request) => self.run(&request.service, request.command).await.map(Some),
                Err(e) => Err(internal(format!("bad internal request: {e}"))),
            },
            "/wait" => {
                let service = query_param(&url, "service").unwrap_or_default();
                match ServiceName::parse(&service) {
                    Ok(service) => self.wait(&service, blocking_query(&url)).await.map(Some),
                    Err(e) => Err(e.into()),
                }
            }
            path => {
                return match self.accept_upgrade(path).await {
                    Ok(response) => Ok(response),
                    Err(err) => error_response(&err),
                }
            }
        };
        match result {
            Ok(reply) => json_response(200, &reply),
            Err(err) => error_response(&err),
        }
    }

    async fn alarm(&self) -> worker::Result<Response> {
        self.alarm_at.set(None);
        let now = now_ms();
        let reaped = self.inner.borrow_mut().alarm(now);
        match reaped {
            Ok(()) => {
                settle(&self.inner, self, now).await;
            }
            Err(e) => worker::console_error!("vasco: service alarm failed: {e}"),
        }
        Response::empty()
    }

    async fn websocket_message(
        &self,
        ws: WebSocket,
        message: WebSocketIncomingMessage,
    ) -> worker::Result<()> {
        let text = match message {
            WebSocketIncomingMessage::String(text) => text,
            WebSocketIncomingMessage::Binary(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        };
        // Feed subscribers only listen; anything they send is ignored.
        if let Ok(Some(Attachment::Lease { key, conn })) = ws.deserialize_attachment::<Attachment>()
        {
            self.lease_message(&ws, &key, conn, &text).await
        }
        Ok(())
    }

    async fn websocket_close(
        &self,
        ws: WebSocket,
        _code: usize,
        _reason: String,
        _was_clean: bool,
    ) -> worker::Result<()> {
        self.socket_gone(&ws).await;
        Ok(())
    }

    async fn websocket_error(&self, ws: WebSocket, _error: worker::Error) -> worker::Result<()> {
        self.socket_gone(&ws).await;
        Ok(())
    }
}

/// Answers an object's internal command request: the JSON command in, `apply`'s reply (or
/// error) out. For the objects whose whole state is synchronous (tokens, Consul IDs).
async fn answer_command<C, R>(
    mut req: Request,
    apply: impl FnOnce(C) -> Result<R, AppError>,
) -> worker::Result<Response>
where
    C: serde::de::DeserializeOwned,
    R: Serialize,
{
    let result = match req.json::<C>().await {
        Ok(command) => apply(command),
        Err(e) => Err(internal(format!("bad internal request: {e}"))),
    };
    match result {
        Ok(reply) => json_response(200, &reply),
        Err(err) => error_response(&err),
    }
}

// --- the token object ------------------------------------------------------------------------

/// The token object (class `TokenObject` in wrangler.toml): scoped access tokens
/// ([`crate::tokens`]).
#[durable_object]
pub struct TokenObject {
    inner: RefCell<TokenStore<SqlRows>>,
}

impl DurableObject for TokenObject {
    fn new(state: State, _env: Env) -> Self {
        Self {
            inner: RefCell::new(TokenStore::new(SqlRows::new(&state))),
        }
    }

    async fn fetch(&self, req: Request) -> worker::Result<Response> {
        answer_command(req, |command: TokenCommand| {
            self.inner.borrow_mut().apply(command)
        })
        .await
    }
}

// --- the Consul agent object -----------------------------------------------------------------

/// The Consul agent object (class `AgentObject` in wrangler.toml): Consul service and check IDs
/// to registry instances ([`crate::agent`]).
#[durable_object]
pub struct AgentObject {
    inner: RefCell<AgentState<SqlRows>>,
}

impl DurableObject for AgentObject {
    fn new(state: State, _env: Env) -> Self {
        Self {
            inner: RefCell::new(AgentState::new(prepare(&state))),
        }
    }

    async fn fetch(&self, req: Request) -> worker::Result<Response> {
        answer_command(req, |command: AgentCommand| {
            self.inner.borrow_mut().apply(command)
        })
        .await
    }
}

// --- the catalog object ----------------------------------------------------------------------

/// The registry's catalog object (class `CatalogObject` in wrangler.toml).
#[durable_object]
pub struct CatalogObject {
    state: State,
    env: Env,
    inner: RefCell<CatalogKeeper<SqlRows>>,
    waiters: Waiters,
    alarm_at: Cell<Option<Millis>>,
}

impl CatalogObject {
    /// A blocking read of the catalog (Consul's `/v1/catalog/services?index=`).
    async fn wait(&self, query: BlockingQuery) -> Result<CatalogSnapshot, AppError> {
        let read = || async { self.inner.borrow_mut().read(now_ms()) };
        let index = |s: &CatalogSnapshot| s.index;
        self.waiters.hold(query, index, read).await
    }
}

impl CatalogHost for CatalogObject {
    async fn put_snapshot(&self, key: &str, json: &str, ttl_s: u64) -> Result<(), KvFailure> {
        WorkersKv::from_env(&self.env, KV_BINDING)
            .put(key, json, ttl_s)
            .await
    }

    fn publish(&self, event: &ChangeEvent) {
        self.waiters.wake();
        broadcast(&self.state, event);
    }

    async fn set_alarm(&self, at: Millis) {
        set_alarm_at(&self.state, &self.alarm_at, at).await;
    }
}

impl DurableObject for CatalogObject {
    fn new(state: State, env: Env) -> Self {
        let rows = prepare(&state);
        Self {
            state,
            env,
            inner: RefCell::new(CatalogKeeper::new(rows)),
            waiters: Waiters::default(),
            alarm_at: Cell::new(None),
        }
    }

    async fn fetch(&self, mut req: Request) -> worker::Result<Response> {
        let url = req.url()?;
        let now = now_ms();
        if url.path() == "/wait" {
            return match self.wait(blocking_query(&url)).await {
                Ok(catalog) => json_response(200, &catalog),
                Err(err) => error_response(&err),
            };
        }
        if url.path() != "/command" {
            let pair = upgrade_pair()?;
            let catalog = self.inner.borrow_mut().read(now);
            return match catalog {
                Ok(catalog) => {
                    self.state
                        .accept_websocket_with_tags(&pair.server, &[FEED_TAG]);
                    send(
                        &pair.server,
                        &json!({"type": "catalog", "services": catalog.services, "now": now}),
                    );
                    Response::from_websocket(pair.client)
                }
                Err(err) => error_response(&err),
            };
        }
        let result = match req.json::<CatalogCommand>().await {
            Ok(CatalogCommand::Report { summary, events }) => {
                match catalog::report(&self.inner, self, summary, &events, now).await {
                    Ok(()) => self.inner.borrow_mut().read(now),
                    Err(err) => Err(err),
                }
            }
            Ok(CatalogCommand::Read) => self.inner.borrow_mut().read(now),
            Err(e) => Err(internal(format!("bad internal request: {e}"))),
        };
        match result {
            Ok(catalog) => json_response(200, &catalog),
            Err(err) => error_response(&err),
        }
    }

    async fn alarm(&self) -> worker::Result<Response> {
        self.alarm_at.set(None);
        catalog::settle(&self.inner, self, now_ms()).await;
        Response::empty()
    }

    async fn websocket_message(
        &self,
        _ws: WebSocket,
        _message: WebSocketIncomingMessage,
    ) -> worker::Result<()> {
        Ok(())
    }

    async fn websocket_close(
        &self,
        _ws: WebSocket,
        _code: usize,
        _reason: String,
        _was_clean: bool,
    ) -> worker::Result<()> {
        Ok(())
    }
}
