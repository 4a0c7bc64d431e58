//! The Worker's own small view of HTTP: a request already read (method, path, query,
//! the headers we use, body bytes) and a response to write. The wasm edge converts from and to
//! the `worker` crate's types; everything in between is plain Rust, tested natively.

use vasco_core::Millis;

use crate::error::AppError;
pub use crate::method::Method;

/// The largest request body accepted: 16 KiB. Larger bodies get a 413 before they are parsed,
/// and the edge stops reading a body as soon as it passes the limit ([`BodyLimit`]).
pub const MAX_BODY_BYTES: usize = 16 * 1024;

/// A request as the handlers see it.
#[derive(Debug, Clone)]
pub struct ApiRequest {
    /// The method.
    pub method: Method,
    /// The URL path, still percent-encoded (`/v1/services/api`).
    pub path: String,
    /// The raw query string without `?` (may be empty).
    pub query: String,
    /// Every request header as sent, names lower-cased (the edge copies them all, so a
    /// handler that needs a new header reads it here without changes to the edge).
    pub headers: Vec<(String, String)>,
    /// The body bytes (empty for GET).
    pub body: Vec<u8>,
    /// Who sent it, once the edge's admission found out (so the token is checked once).
    pub principal: Option<crate::auth::Principal>,
}

impl ApiRequest {
    /// A request with no headers and no body, for tests and simple callers.
    pub fn new(method: Method, path_and_query: &str) -> Self {
        let (path, query) = match path_and_query.split_once('?') {
            Some((path, query)) => (path, query),
            None => (path_and_query, ""),
        };
        Self {
            method,
            path: path.to_string(),
            query: query.to_string(),
            headers: Vec::new(),
            body: Vec::new(),
            principal: None,
        }
    }

    /// The value of header `name` (any case); the first one when repeated.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    /// The same request with header `name: value` added.
    pub fn with_header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.to_ascii_lowercase(), value.into()));
        self
    }

    /// True when the client sent `Cache-Control: no-cache` (or `no-store`, `max-age=0`): skip
    /// the isolate cache.
    pub fn no_cache(&self) -> bool {
        self.header("cache-control")
            .is_some_and(cache_control_bypasses)
    }

    /// The credentials the request carries, as an `Authorization` value (`Bearer <token>`):
    /// the `Authorization` header; else Consul's `X-Consul-Token`; else, when `query_token`
    /// (clients that cannot set headers: browsers' WebSockets, Consul and lyft tools), a
    /// `token` query parameter.
    pub fn authorization(&self, query_token: bool) -> Option<String> {
        if let Some(value) = self.header("authorization") {
            return Some(value.to_string());
        }
        if let Some(token) = self
            .header("x-consul-token")
            .filter(|t| !t.trim().is_empty())
        {
            return Some(format!("Bearer {}", token.trim()));
        }
        if !query_token {
            return None;
        }
        let raw = self
            .query
            .split('&')
            .find_map(|part| part.strip_prefix("token="))?;
        let token = percent_decode(raw, true, "token").ok()?;
        (!token.is_empty()).then(|| format!("Bearer {token}"))
    }

    /// The same request with a body.
    pub fn with_body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    /// The same request with `Authorization: Bearer <token>`.
    pub fn with_bearer(self, token: &str) -> Self {
        self.with_header("authorization", format!("Bearer {token}"))
    }
}

/// Whether a `Cache-Control` request header asks to bypass caches.
pub fn cache_control_bypasses(value: &str) -> bool {
    value.split(',').any(|directive| {
        let directive = directive.trim().to_ascii_lowercase();
        directive == "no-cache" || directive == "no-store" || directive == "max-age=0"
    })
}

/// Refuses a body over [`MAX_BODY_BYTES`]. Called with the `Content-Length` header before the
/// body is read, and with the real length after.
pub fn check_body_size(size: u64) -> Result<(), AppError> {
    let limit = MAX_BODY_BYTES as u64;
    if size > limit {
        Err(AppError::PayloadTooLarge { size, limit })
    } else {
        Ok(())
    }
}

/// How much of a refused body (no token, or over [`MAX_BODY_BYTES`]) the edge still reads and
/// drops before answering: 1 MiB. Within it the upload ends cleanly and the client reads the
/// answer; past it the edge cancels the upload rather than spend time on it (memory is never at
/// stake: discarded chunks are not kept).
pub const DISCARD_BYTES: u64 = 1024 * 1024;

/// A request body read chunk by chunk with a running cap: the edge feeds it the chunks of the
/// body stream as they arrive and stops reading at the first error, so a body over
/// [`MAX_BODY_BYTES`] is never held whole (a chunked upload of any size costs at most the
/// limit plus one chunk of memory).
#[derive(Debug, Default)]
pub struct BodyLimit {
    bytes: Vec<u8>,
    seen: u64,
}

impl BodyLimit {
    /// An empty body.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends one chunk; a 413 once the bytes seen so far pass [`MAX_BODY_BYTES`] (the error
    /// reports the size seen when reading stopped, a lower bound of the real size).
    pub fn push(&mut self, chunk: &[u8]) -> Result<(), AppError> {
        self.seen = self.seen.saturating_add(chunk.len() as u64);
        check_body_size(self.seen)?;
        self.bytes.extend_from_slice(chunk);
        Ok(())
    }

    /// How many bytes were pushed, kept or not.
    pub fn seen(&self) -> u64 {
        self.seen
    }

    /// The whole body, at most [`MAX_BODY_BYTES`].
    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }
}

/// The headers an error answer carries in every dialect: `Allow` on a 405, `Retry-After` on
/// a 429.
pub fn error_headers(err: &AppError) -> Vec<(&'static str, String)> {
    let mut headers = Vec::new();
    if let Some(allow) = err.allow_header() {
        headers.push(("allow", allow));
    }
    if let AppError::RateLimited { retry_after_s } = err {
        headers.push(("retry-after", retry_after_s.to_string()));
    }
    headers
}

/// A response as the handlers build it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiResponse {
    /// The status code.
    pub status: u16,
    /// A JSON body, or `None` for an empty body (204).
    pub body: Option<String>,
    /// Extra headers (`Allow`, `WWW-Authenticate`, ...).
    pub headers: Vec<(&'static str, String)>,
    /// How many KV operations the request made; sent as `x-vasco-kv-ops`.
    pub kv_ops: u32,
    /// The body's media type (JSON unless a dialect answers otherwise).
    pub content_type: &'static str,
    /// When the registry answered, if later than the request began (a held blocking query):
    /// what `x-vasco-now` then says.
    pub answered_at: Option<Millis>,
}

/// The media type of JSON answers.
pub const JSON: &str = "application/json; charset=utf-8";

/// The media type of plain-text answers (Consul's errors, lyft's health check).
pub const TEXT: &str = "text/plain; charset=utf-8";

/// The header carrying the KV operation count of a request.
pub const KV_OPS_HEADER: &str = "x-vasco-kv-ops";

/// The header carrying a service's change index (see [`vasco_core::service`]).
pub const INDEX_HEADER: &str = "x-vasco-index";

/// The header carrying the registry's `now` (ms since the Unix epoch) for the request.
pub const NOW_HEADER: &str = "x-vasco-now";

impl ApiResponse {
    /// A JSON response.
    pub fn json(status: u16, body: String) -> Self {
        Self {
            status,
            body: Some(body),
            headers: Vec::new(),
            kv_ops: 0,
            content_type: JSON,
            answered_at: None,
        }
    }

    /// A plain-text response.
    pub fn text(status: u16, body: impl Into<String>) -> Self {
        Self {
            content_type: TEXT,
            ..Self::json(status, body.into())
        }
    }

    /// A 204 with no body.
    pub fn no_content() -> Self {
        Self {
            status: 204,
            body: None,
            headers: Vec::new(),
            kv_ops: 0,
            content_type: JSON,
            answered_at: None,
        }
    }

    /// The error's status and `{"error": {...}}` body, with `Allow` on a 405 and
    /// `WWW-Authenticate` on a 401.
    pub fn from_error(err: &AppError) -> Self {
        let mut response = Self::json(err.status(), err.to_json());
        response.headers = error_headers(err);
        if err.status() == 401 {
            response
                .headers
                .push(("www-authenticate", "Bearer realm=\"vasco\"".into()));
        }
        response
    }

    /// Every header to send: content type (JSON unless the handler set its own), cache
    /// policy, the KV op count, the registry's clock `now` ([`NOW_HEADER`]) and the handler's
    /// own. The one place the standard headers are stamped, so every answer carries them,
    /// whoever built it (handler, router, auth, the edge's own body-limit and URL errors).
    pub fn all_headers(&self, now: Millis) -> Vec<(&'static str, String)> {
        let mut headers = Vec::with_capacity(self.headers.len() + 4);
        if self.body.is_some() {
            headers.push(("content-type", self.content_type.into()));
        }
        headers.push(("cache-control", "no-store".into()));
        headers.push((KV_OPS_HEADER, self.kv_ops.to_string()));
        headers.push((NOW_HEADER, now.to_string()));
        headers.extend(
            self.headers
                .iter()
                .filter(|(name, _)| *name != KV_OPS_HEADER && *name != NOW_HEADER)
                .cloned(),
        );
        headers
    }

    /// What goes on the wire for a request made with `method` at `now`: the status, every
    /// header ([`ApiResponse::all_headers`]) and the body, except that a `HEAD` answer keeps
    /// the GET answer's status and headers and drops its body (RFC 9110, section 9.3.2).
    pub fn into_wire(self, method: &Method, now: Millis) -> WireResponse {
        let headers = self.all_headers(self.answered_at.map_or(now, |at| at.max(now)));
        let body = match method {
            Method::Head => None,
            _ => self.body.map(String::into_bytes),
        };
        WireResponse {
            status: self.status,
            headers,
            body,
        }
    }
}

/// A response exactly as the edge writes it ([`ApiResponse::into_wire`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireResponse {
    /// The status code.
    pub status: u16,
    /// Every header, standard ones included.
    pub headers: Vec<(&'static str, String)>,
    /// The body bytes; `None` for an empty body (204, or any answer to `HEAD`).
    pub body: Option<Vec<u8>>,
}

impl WireResponse {
    /// The value of header `name` (lower-case), if present.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| *key == name)
            .map(|(_, value)| value.as_str())
    }
}

/// Decodes `%XX` escapes (and, in query strings, `+` as space). Malformed escapes or bytes that
/// are not UTF-8 are an error naming `field`.
pub fn percent_decode(raw: &str, plus_is_space: bool, field: &str) -> Result<String, AppError> {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = bytes
                    .get(i + 1..i + 3)
                    .and_then(|pair| core::str::from_utf8(pair).ok())
                    .and_then(|pair| u8::from_str_radix(pair, 16).ok())
                    .ok_or_else(|| AppError::invalid(field, "malformed percent-escape"))?;
                out.push(hex);
                i += 3;
            }
            b'+' if plus_is_space => {
                out.push(b' ');
                i += 1;
            }
            byte => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8(out).map_err(|_| AppError::invalid(field, "not valid UTF-8"))
}

/// Splits a query string into decoded `(key, value)` pairs, in order. Empty pairs are skipped.
pub fn parse_query(query: &str) -> Result<Vec<(String, String)>, AppError> {
    let mut pairs = Vec::new();
    for part in query.split('&').filter(|part| !part.is_empty()) {
        let (key, value) = part.split_once('=').unwrap_or((part, ""));
        let key = percent_decode(key, true, "query")?;
        let value = percent_decode(value, true, &key)?;
        pairs.push((key, value));
    }
    Ok(pairs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_round_trip() {
        for name in ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"] {
            assert_eq!(Method::parse(name).as_str(), name);
            assert_eq!(Method::parse(&name.to_lowercase()).as_str(), name);
        }
        assert_eq!(Method::parse("brew"), Method::Other("BREW".into()));
    }

    #[test]
    fn body_limit_is_16_kib() {
        assert!(check_body_size(16 * 1024).is_ok());
        let err = check_body_size(16 * 1024 + 1).unwrap_err();
        assert_eq!(err.status(), 413);
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("a%2Fb", false, "id").unwrap(), "a/b");
        assert_eq!(percent_decode("a+b", false, "id").unwrap(), "a+b");
        assert_eq!(percent_decode("a+b", true, "q").unwrap(), "a b");
        assert_eq!(percent_decode("%E2%82%AC", false, "q").unwrap(), "€");
        let err = percent_decode("%zz", false, "id").unwrap_err();
        assert_eq!(err.code(), "invalid_id");
        assert!(percent_decode("%4", false, "id").is_err());
        assert!(percent_decode("%ff", false, "id").is_err());
    }

    #[test]
    fn query_pairs() {
        let pairs = parse_query("version=%5E2&tag=a&tag=b&&flag").unwrap();
        assert_eq!(
            pairs,
            vec![
                ("version".into(), "^2".into()),
                ("tag".into(), "a".into()),
                ("tag".into(), "b".into()),
                ("flag".into(), String::new()),
            ]
        );
        assert!(parse_query("").unwrap().is_empty());
    }

    #[test]
    fn request_new_splits_query() {
        let req = ApiRequest::new(Method::Get, "/v1/services/api?version=1");
        assert_eq!(req.path, "/v1/services/api");
        assert_eq!(req.query, "version=1");
    }

    #[test]
    fn cache_control() {
        assert!(cache_control_bypasses("no-cache"));
        assert!(cache_control_bypasses("max-age=0, No-Store"));
        assert!(!cache_control_bypasses("max-age=60"));
    }

    #[test]
    fn error_responses_carry_headers() {
        let response = ApiResponse::from_error(&AppError::Unauthorized {
            scope: "write",
            sent: false,
        });
        assert_eq!(response.status, 401);
        assert!(response
            .headers
            .iter()
            .any(|(k, _)| *k == "www-authenticate"));
        let headers = response.all_headers(7);
        assert!(headers.contains(&(KV_OPS_HEADER, "0".into())));
        assert!(headers.contains(&(NOW_HEADER, "7".into())));
    }

    #[test]
    fn body_limit_stops_at_the_first_chunk_past_the_cap() {
        let mut body = BodyLimit::new();
        let chunk = vec![b'x'; 4096];
        for _ in 0..4 {
            body.push(&chunk).unwrap();
        }
        let err = body.push(b"y").unwrap_err();
        assert_eq!(err.status(), 413);
        assert_eq!(
            err,
            AppError::PayloadTooLarge {
                size: MAX_BODY_BYTES as u64 + 1,
                limit: MAX_BODY_BYTES as u64
            }
        );
        let mut exact = BodyLimit::new();
        exact.push(&vec![b'x'; MAX_BODY_BYTES]).unwrap();
        exact.push(b"").unwrap();
        assert_eq!(exact.into_bytes().len(), MAX_BODY_BYTES);
    }

    #[test]
    fn head_answers_keep_headers_and_drop_the_body() {
        let get = ApiResponse::json(200, "{}".into()).into_wire(&Method::Get, 5);
        let head = ApiResponse::json(200, "{}".into()).into_wire(&Method::Head, 5);
        assert_eq!(get.body.as_deref(), Some(&b"{}"[..]));
        assert_eq!(head.body, None);
        assert_eq!(get.status, head.status);
        assert_eq!(get.headers, head.headers);
        assert_eq!(
            head.header("content-type"),
            Some("application/json; charset=utf-8")
        );
        assert_eq!(head.header(NOW_HEADER), Some("5"));
    }
}
