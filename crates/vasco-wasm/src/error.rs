//! The crate's one error type. It wraps the core's errors once, adds what only a client can get
//! wrong (the registry is unreachable, a dependency has no instance, the caller passed a bad
//! argument), and becomes a JavaScript `Error` with a stable `code` at the wasm boundary.

use core::fmt;

/// Everything the package can report.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Error {
    /// The core refused an input (a name, a version, a url, a ttl, ...).
    Core(vasco_core::error::Error),
    /// `register` was called without the service's own url (the original's message).
    NeedUrl,
    /// `register` was given no package, or one without `name` or `version` (the original's
    /// message); `reason` says which.
    InvalidPackage {
        /// What exactly is wrong with the package.
        reason: String,
    },
    /// Some dependencies have no live instance (and no mock).
    NoUrl {
        /// The names without an instance, sorted.
        missing: Vec<String>,
        /// What was asked of each and what is live instead, when known (see [`Wanted`]).
        wanted: Vec<Wanted>,
    },
    /// `VASCO_URL` (or the `url` option) is not something the package can talk to.
    RegistryUrl {
        /// The url as given.
        url: String,
        /// Why, and what to set instead.
        reason: String,
    },
    /// A function got an argument of the wrong shape.
    Argument {
        /// The argument, as named in the API.
        name: &'static str,
        /// What was expected.
        reason: String,
    },
    /// The registry answered with an error (4xx): a bad field, a wrong token, an unknown instance.
    Registry {
        /// The HTTP status.
        status: u16,
        /// The registry's error code (`unauthorized`, `invalid_url`, `not_found`, ...).
        code: String,
        /// The registry's message.
        message: String,
        /// Which request (`PUT http://host:8787/v1/...`); empty when unknown.
        request: String,
        /// What to do about it, when the client knows better than the registry (a missing or
        /// refused token: set `VASCO_TOKEN`); empty otherwise.
        hint: String,
    },
    /// The registry could not be reached or answered 5xx/429; callers fall back to cached data.
    Unavailable {
        /// What happened (connection refused, timeout, the registry's message ...).
        reason: String,
        /// The HTTP status when the registry answered (503, 429 ...), else `None`.
        status: Option<u16>,
        /// The registry's own error code when it gave one (`not_configured`, `kv_unavailable`).
        registry_code: Option<String>,
        /// Which registry and request; empty when unknown.
        request: String,
    },
    /// The registry answered 2xx with a body this client cannot read.
    BadResponse {
        /// What was wrong with it.
        reason: String,
    },
    /// The client was closed.
    Closed,
    /// A cache slot handle names a slot the answer cache evicted (it keeps `cacheSize`
    /// questions, least recently used out): ask for the slot again.
    Evicted,
}

/// One dependency without an instance: the range asked, and the versions that are live (when
/// the client knows them), for the `No url for:` message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wanted {
    /// The dependency, as the caller named it.
    pub name: String,
    /// The version range asked (`^2`, `1.0.0`, `*`).
    pub range: String,
    /// The versions with live instances, newest first; `None` when unknown.
    pub live: Option<Vec<String>>,
}

impl fmt::Display for Wanted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.name, self.range)?;
        match &self.live {
            None => Ok(()),
            Some(live) if live.is_empty() => f.write_str(": no live instance"),
            Some(live) => write!(f, ": live versions {}", live.join(", ")),
        }
    }
}

impl Error {
    /// An unavailable registry, for `reason`.
    pub fn unavailable(reason: impl Into<String>) -> Self {
        Self::Unavailable {
            reason: reason.into(),
            status: None,
            registry_code: None,
            request: String::new(),
        }
    }

    /// The same error, saying which request it came from (`request`, e.g.
    /// `PUT http://127.0.0.1:8787/v1/services/api/1.0.0/instances/a`), and for a refused
    /// token, what to set: `token_sent` says whether the request carried one.
    pub fn at(self, request: &str, token_sent: bool) -> Self {
        match self {
            Self::Registry {
                status,
                code,
                message,
                hint,
                ..
            } => {
                let hint = match status {
                    401 | 403 if !token_sent => "no token was sent: set VASCO_TOKEN (or \
                                                 connect({token})) to the registry's token"
                        .to_string(),
                    401 | 403 => "the registry refused the token sent: set VASCO_TOKEN (or \
                                  connect({token})) to the registry's token"
                        .to_string(),
                    _ => hint,
                };
                Self::Registry {
                    status,
                    code,
                    message,
                    request: request.into(),
                    hint,
                }
            }
            Self::Unavailable {
                reason,
                status,
                registry_code,
                ..
            } => Self::Unavailable {
                reason,
                status,
                registry_code,
                request: request.into(),
            },
            other => other,
        }
    }

    /// Whether this is a refusal that asking again with the same request cannot change (a
    /// bad token, an invalid field), as opposed to the registry being unreachable.
    pub fn is_refusal(&self) -> bool {
        matches!(self, Self::Registry { status, .. } if *status != 404)
    }

    /// The stable, machine-readable code exposed to JavaScript as `err.code`.
    pub fn code(&self) -> String {
        match self {
            Self::Core(e) => e.code(),
            Self::NeedUrl => "need_url".into(),
            Self::InvalidPackage { .. } => "invalid_package".into(),
            Self::NoUrl { .. } => "no_url".into(),
            Self::RegistryUrl { .. } => "invalid_registry_url".into(),
            Self::Argument { .. } => "invalid_argument".into(),
            Self::Registry { code, .. } => code.clone(),
            Self::Unavailable { .. } => "unavailable".into(),
            Self::BadResponse { .. } => "bad_response".into(),
            Self::Closed => "closed".into(),
            Self::Evicted => "evicted".into(),
        }
    }

    /// Whether cached data may stand in for the answer (the registry is down, not wrong).
    pub fn is_unavailable(&self) -> bool {
        matches!(self, Self::Unavailable { .. })
    }

    /// A bad argument.
    pub(crate) fn argument(name: &'static str, reason: impl Into<String>) -> Self {
        Self::Argument {
            name,
            reason: reason.into(),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Core(e) => e.fmt(f),
            // The original's messages come first, so code matching them keeps working.
            Self::NeedUrl => f.write_str("Need url of service"),
            Self::InvalidPackage { reason } => write!(f, "Invalid package: {reason}"),
            Self::NoUrl { missing, wanted } => {
                write!(f, "No url for: {}", missing.join(", "))?;
                if !wanted.is_empty() {
                    let wanted: Vec<String> = wanted.iter().map(Wanted::to_string).collect();
                    write!(f, " (wanted {})", wanted.join("; "))?;
                }
                Ok(())
            }
            Self::RegistryUrl { url, reason } => write!(f, "VASCO_URL {url:?}: {reason}"),
            Self::Argument { name, reason } => write!(f, "{name}: {reason}"),
            Self::Registry {
                status,
                code,
                message,
                request,
                hint,
            } => {
                if request.is_empty() {
                    f.write_str("registry refused the request")?;
                } else {
                    write!(f, "registry refused {request}")?;
                }
                write!(f, " ({status} {code}): {message}")?;
                if !hint.is_empty() {
                    write!(f, " ({hint})")?;
                }
                Ok(())
            }
            Self::Unavailable {
                reason,
                status,
                registry_code,
                request,
            } => {
                f.write_str("registry unavailable")?;
                if !request.is_empty() {
                    write!(f, " for {request}")?;
                }
                f.write_str(": ")?;
                match (status, registry_code) {
                    (Some(status), Some(code)) => write!(f, "{status} {code}: ")?,
                    (Some(status), None) => write!(f, "status {status}: ")?,
                    _ => {}
                }
                f.write_str(reason)
            }
            Self::BadResponse { reason } => write!(f, "unreadable registry response: {reason}"),
            Self::Closed => f.write_str("the vasco client is closed"),
            Self::Evicted => f.write_str(
                "this answer-cache slot was evicted (the cache keeps `cacheSize` questions); \
                 ask for the slot again",
            ),
        }
    }
}

impl core::error::Error for Error {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            Self::Core(e) => Some(e),
            _ => None,
        }
    }
}

impl From<vasco_core::error::Error> for Error {
    fn from(e: vasco_core::error::Error) -> Self {
        Self::Core(e)
    }
}

/// The crate's result alias.
pub type Result<T, E = Error> = core::result::Result<T, E>;

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;

    #[test]
    fn messages_of_the_original_are_kept() {
        assert_eq!(Error::NeedUrl.to_string(), "Need url of service");
        // The original's text first (2018 code matches it), the detail after.
        assert_eq!(
            Error::InvalidPackage {
                reason: "no \"version\"".into()
            }
            .to_string(),
            "Invalid package: no \"version\""
        );
        assert_eq!(
            Error::NoUrl {
                missing: vec!["auth".into()],
                wanted: vec![],
            }
            .to_string(),
            "No url for: auth"
        );
        let detailed = Error::NoUrl {
            missing: vec!["api".into(), "db".into()],
            wanted: vec![
                Wanted {
                    name: "api".into(),
                    range: "^2".into(),
                    live: Some(vec!["1.4.0".into(), "1.0.0".into()]),
                },
                Wanted {
                    name: "db".into(),
                    range: "*".into(),
                    live: Some(vec![]),
                },
            ],
        };
        assert_eq!(
            detailed.to_string(),
            "No url for: api, db (wanted api ^2: live versions 1.4.0, 1.0.0; db *: no live instance)"
        );
    }

    #[test]
    fn registry_errors_say_where_and_what_to_do() {
        let refused = |status| Error::Registry {
            status,
            code: "unauthorized".into(),
            message: "this route needs the write token".into(),
            request: String::new(),
            hint: String::new(),
        };
        let unsent = refused(401).at("PUT http://h:8787/v1/x", false).to_string();
        assert!(
            unsent.starts_with("registry refused PUT http://h:8787/v1/x (401 unauthorized): "),
            "{unsent}"
        );
        assert!(
            unsent.contains("no token was sent: set VASCO_TOKEN"),
            "{unsent}"
        );
        let wrong = refused(403).at("PUT http://h:8787/v1/x", true).to_string();
        assert!(
            wrong.contains("refused the token sent: set VASCO_TOKEN"),
            "{wrong}"
        );
        assert!(refused(401).is_refusal());
        let down = Error::Unavailable {
            reason: "writes are disabled".into(),
            status: Some(503),
            registry_code: Some("not_configured".into()),
            request: String::new(),
        }
        .at("PUT http://h:8787/v1/x", true);
        assert_eq!(
            down.to_string(),
            "registry unavailable for PUT http://h:8787/v1/x: 503 not_configured: writes are disabled"
        );
        assert!(down.is_unavailable() && !down.is_refusal());
        assert_eq!(
            Error::unavailable("connection refused").to_string(),
            "registry unavailable: connection refused"
        );
    }

    #[test]
    fn codes_are_stable() {
        assert_eq!(Error::NeedUrl.code(), "need_url");
        assert_eq!(
            Error::NoUrl {
                missing: vec![],
                wanted: vec![]
            }
            .code(),
            "no_url"
        );
        assert!(Error::unavailable("").is_unavailable());
        let registry = Error::Registry {
            status: 401,
            code: "unauthorized".into(),
            message: "no".into(),
            request: String::new(),
            hint: String::new(),
        };
        assert_eq!(registry.code(), "unauthorized");
        assert!(!registry.is_unavailable());
    }
}
