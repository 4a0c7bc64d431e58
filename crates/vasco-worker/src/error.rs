//! The Worker's one error type: every way a request can fail, mapped once to an HTTP status and
//! the JSON body `{"error": {"code": "...", "message": "..."}}`.
//!
//! Core errors ([`vasco_core::error::Error`]) are mapped here at the boundary, so handlers can
//! use `?` on core calls and still answer with the right status.

use core::fmt;

use serde::Serialize;
use vasco_core::error::Error as CoreError;

use crate::method::Method;

/// Everything a request can fail with. New variants may be added; match with a wildcard.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AppError {
    /// A core validation error (bad name, version, url, ttl, tags, record too large, ...).
    Core(CoreError),
    /// A request field the Worker itself checks (query parameters, body shape); 400.
    Invalid {
        /// The field as the API names it (`body`, `version`, `tag`, `dependencies.api`, ...).
        field: String,
        /// What was wrong with it.
        reason: String,
    },
    /// The body is not JSON at all (syntax error, wrong encoding); 400.
    BadJson {
        /// The parser's description, with line and column.
        reason: String,
    },
    /// No token, or not the right one; 401.
    Unauthorized {
        /// Which token the route wanted (`write` or `read`).
        scope: &'static str,
        /// Whether a token was sent at all.
        sent: bool,
    },
    /// No route has this path; 404.
    RouteNotFound {
        /// The path asked for.
        path: String,
    },
    /// The instance to deregister is not registered (or its lease has lapsed); 404.
    InstanceNotFound {
        /// `name@version/id`.
        instance: String,
    },
    /// A Consul service or check ID no registration made (or one deregistered); 404.
    UnknownId {
        /// `service` or `check`.
        what: &'static str,
        /// The ID asked for.
        id: String,
    },
    /// The path exists but not with this method; 405 with an `Allow` header.
    MethodNotAllowed {
        /// The method used.
        method: Method,
        /// The methods the path accepts.
        allow: Vec<Method>,
    },
    /// The body is larger than [`crate::http::MAX_BODY_BYTES`]; 413.
    PayloadTooLarge {
        /// The size seen (or announced by `Content-Length`).
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// A WebSocket route was called without `Upgrade: websocket`; 426.
    UpgradeRequired,
    /// Writes are refused because no `VASCO_TOKEN` is configured; 503.
    NotConfigured,
    /// A Durable Object's storage failed; 503.
    StorageUnavailable {
        /// What the runtime said.
        reason: String,
    },
    /// A Durable Object answered with an error; relayed as it was.
    Relayed {
        /// Its status.
        status: u16,
        /// Its code.
        code: String,
        /// Its message.
        message: String,
    },
    /// Workers KV failed or is not bound; 503.
    KvUnavailable {
        /// What the runtime said.
        reason: String,
    },
    /// A bug: something that cannot fail did; 500.
    Internal {
        /// What failed.
        reason: String,
    },
}

/// The `{"error": {...}}` body.
#[derive(Debug, Serialize)]
struct ErrorBody<'a> {
    error: ErrorDetail<'a>,
}

#[derive(Debug, Serialize)]
struct ErrorDetail<'a> {
    code: &'a str,
    message: String,
}

impl AppError {
    /// A 400 for a field the Worker validates itself.
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::Invalid {
            field: field.into(),
            reason: reason.into(),
        }
    }

    /// The HTTP status this error answers with.
    pub fn status(&self) -> u16 {
        match self {
            Self::Core(err) => match err {
                CoreError::NotFound { .. } => 404,
                // Stored data the Worker cannot read is the server's fault, not the caller's.
                // (The read path skips such records, so this is not expected to surface.)
                CoreError::Corrupt { .. } => 500,
                // Invalid, TooLarge (record over KV's metadata limit) and anything newer are
                // the caller's input: a 400, never a 500.
                _ => 400,
            },
            Self::Invalid { .. } | Self::BadJson { .. } => 400,
            Self::Unauthorized { .. } => 401,
            Self::RouteNotFound { .. } | Self::InstanceNotFound { .. } | Self::UnknownId { .. } => {
                404
            }
            Self::MethodNotAllowed { .. } => 405,
            Self::PayloadTooLarge { .. } => 413,
            Self::UpgradeRequired => 426,
            Self::NotConfigured | Self::KvUnavailable { .. } | Self::StorageUnavailable { .. } => {
                503
            }
            Self::Relayed { status, .. } => *status,
            Self::Internal { .. } => 500,
        }
    }

    /// The stable, machine-readable code (`invalid_<field>`, `unauthorized`, ...).
    pub fn code(&self) -> String {
        match self {
            Self::Core(err) => err.code().to_string(),
            Self::Invalid { field, .. } => {
                // `dependencies.api` -> `invalid_dependencies`: codes name the top-level field.
                let top = field.split(['.', '[']).next().unwrap_or(field);
                format!("invalid_{top}")
            }
            Self::BadJson { .. } => "bad_json".into(),
            Self::Unauthorized { .. } => "unauthorized".into(),
            Self::RouteNotFound { .. } => "route_not_found".into(),
            Self::InstanceNotFound { .. } | Self::UnknownId { .. } => "not_found".into(),
            Self::MethodNotAllowed { .. } => "method_not_allowed".into(),
            Self::PayloadTooLarge { .. } => "payload_too_large".into(),
            Self::UpgradeRequired => "upgrade_required".into(),
            Self::NotConfigured => "not_configured".into(),
            Self::StorageUnavailable { .. } => "storage_unavailable".into(),
            Self::Relayed { code, .. } => code.clone(),
            Self::KvUnavailable { .. } => "kv_unavailable".into(),
            Self::Internal { .. } => "internal".into(),
        }
    }

    /// The `Allow` header value for a 405.
    pub fn allow_header(&self) -> Option<String> {
        match self {
            Self::MethodNotAllowed { allow, .. } => Some(
                allow
                    .iter()
                    .map(|m| m.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            ),
            _ => None,
        }
    }

    /// The JSON error body.
    pub fn to_json(&self) -> String {
        let code = self.code();
        let body = ErrorBody {
            error: ErrorDetail {
                code: &code,
                message: self.to_string(),
            },
        };
        // Serializing two strings cannot fail; fall back to a fixed body rather than panic.
        serde_json::to_string(&body).unwrap_or_else(|_| {
            r#"{"error":{"code":"internal","message":"error body not serializable"}}"#.into()
        })
    }
}

impl fmt::Display for AppError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Core(err) => write!(f, "{err}"),
            Self::Invalid { field, reason } => write!(f, "invalid `{field}`: {reason}"),
            Self::BadJson { reason } => write!(f, "request body is not valid JSON: {reason}"),
            Self::Unauthorized { scope, sent: false } => write!(
                f,
                "this route needs the {scope} token: send `Authorization: Bearer <token>`"
            ),
            Self::Unauthorized { scope, sent: true } => {
                write!(f, "the bearer token sent is not the {scope} token")
            }
            Self::RouteNotFound { path } => write!(
                f,
                "no route for `{path}`; see GET /v1/openapi.json for the API"
            ),
            Self::InstanceNotFound { instance } => write!(
                f,
                "instance `{instance}` is not registered (or its lease has lapsed)"
            ),
            Self::UnknownId { what: "service", id } => write!(
                f,
                "Unknown service ID {id:?}. Ensure that the service ID is passed, not the service name."
            ),
            Self::UnknownId { what, id } => write!(f, "Unknown {what} ID {id:?}"),
            Self::MethodNotAllowed { method, allow } => {
                write!(f, "method {} is not allowed here; use ", method.as_str())?;
                let names: Vec<_> = allow.iter().map(|m| m.as_str()).collect();
                write!(f, "{}", names.join(" or "))
            }
            Self::PayloadTooLarge { size, limit } => write!(
                f,
                "request body is {size} bytes; the limit is {limit} bytes"
            ),
            Self::NotConfigured => write!(
                f,
                "writes are disabled: no VASCO_TOKEN is configured. Set it with \
                 `wrangler secret put VASCO_TOKEN` (deployed), or in .dev.vars / \
                 `wrangler dev --var VASCO_TOKEN:<token>` (local)"
            ),
            Self::KvUnavailable { reason } => {
                write!(f, "Workers KV is unavailable: {reason}; retry later")
            }
            Self::Internal { reason } => write!(f, "internal error: {reason}"),
            Self::UpgradeRequired => write!(
                f,
                "this route is a WebSocket: connect with `Upgrade: websocket` (e.g. the npm \
                 `ws` package)"
            ),
            Self::StorageUnavailable { reason } => {
                write!(
                    f,
                    "the registry's storage is unavailable: {reason}; retry later"
                )
            }
            Self::Relayed { message, .. } => write!(f, "{message}"),
        }
    }
}

impl core::error::Error for AppError {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            Self::Core(err) => Some(err),
            _ => None,
        }
    }
}

impl From<CoreError> for AppError {
    fn from(err: CoreError) -> Self {
        Self::Core(err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_and_codes() {
        let cases: Vec<(AppError, u16, &str)> = vec![
            (AppError::invalid("tag", "empty"), 400, "invalid_tag"),
            (
                AppError::invalid("dependencies.api", "bad range"),
                400,
                "invalid_dependencies",
            ),
            (AppError::BadJson { reason: "x".into() }, 400, "bad_json"),
            (
                AppError::Unauthorized {
                    scope: "write",
                    sent: false,
                },
                401,
                "unauthorized",
            ),
            (
                AppError::RouteNotFound { path: "/x".into() },
                404,
                "route_not_found",
            ),
            (
                AppError::InstanceNotFound {
                    instance: "a@1.0.0/x".into(),
                },
                404,
                "not_found",
            ),
            (
                AppError::MethodNotAllowed {
                    method: Method::Post,
                    allow: vec![Method::Get],
                },
                405,
                "method_not_allowed",
            ),
            (
                AppError::PayloadTooLarge {
                    size: 20_000,
                    limit: 16_384,
                },
                413,
                "payload_too_large",
            ),
            (AppError::NotConfigured, 503, "not_configured"),
            (
                AppError::KvUnavailable { reason: "x".into() },
                503,
                "kv_unavailable",
            ),
        ];
        for (err, status, code) in cases {
            assert_eq!(err.status(), status, "{err:?}");
            assert_eq!(err.code(), code, "{err:?}");
        }
    }

    #[test]
    fn core_errors_map_to_client_errors() {
        let invalid = AppError::from(CoreError::Invalid {
            field: "url",
            reason: "missing port".into(),
        });
        assert_eq!(invalid.status(), 400);
        assert_eq!(invalid.code(), "invalid_url");
        assert!(invalid.to_string().contains("url"));
        let large = AppError::from(CoreError::TooLarge {
            what: "record",
            size: 2000,
            limit: 1024,
        });
        assert_eq!(large.status(), 400);
        let missing = AppError::from(CoreError::NotFound {
            instance: "a@1.0.0/x".into(),
        });
        assert_eq!(missing.status(), 404);
    }

    #[test]
    fn json_body_shape() {
        let body: serde_json::Value =
            serde_json::from_str(&AppError::NotConfigured.to_json()).unwrap();
        assert_eq!(body["error"]["code"], "not_configured");
        assert!(body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("VASCO_TOKEN"));
        assert_eq!(body.as_object().unwrap().len(), 1);
    }

    #[test]
    fn allow_header_lists_methods() {
        let err = AppError::MethodNotAllowed {
            method: Method::Post,
            allow: vec![Method::Put, Method::Delete],
        };
        assert_eq!(err.allow_header().as_deref(), Some("PUT, DELETE"));
        assert_eq!(AppError::NotConfigured.allow_header(), None);
    }
}
