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
    },
    /// The registry could not be reached or answered 5xx/429; callers fall back to cached data.
    Unavailable {
        /// What happened (connection refused, timeout, status 503 ...).
        reason: String,
    },
    /// The registry answered 2xx with a body this client cannot read.
    BadResponse {
        /// What was wrong with it.
        reason: String,
    },
    /// The client was closed.
    Closed,
}

impl Error {
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
            Self::NeedUrl => f.write_str("Need url of service"),
            Self::InvalidPackage { .. } => f.write_str("Invalid package"),
            Self::NoUrl { missing } => write!(f, "No url for: {}", missing.join(", ")),
            Self::RegistryUrl { url, reason } => write!(f, "VASCO_URL {url:?}: {reason}"),
            Self::Argument { name, reason } => write!(f, "{name}: {reason}"),
            Self::Registry {
                status, message, ..
            } => write!(f, "registry refused the request ({status}): {message}"),
            Self::Unavailable { reason } => write!(f, "registry unavailable: {reason}"),
            Self::BadResponse { reason } => write!(f, "unreadable registry response: {reason}"),
            Self::Closed => f.write_str("the vasco client is closed"),
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
        assert_eq!(
            Error::InvalidPackage {
                reason: "no name".into()
            }
            .to_string(),
            "Invalid package"
        );
        assert_eq!(
            Error::NoUrl {
                missing: vec!["auth".into()]
            }
            .to_string(),
            "No url for: auth"
        );
    }

    #[test]
    fn codes_are_stable() {
        assert_eq!(Error::NeedUrl.code(), "need_url");
        assert_eq!(Error::NoUrl { missing: vec![] }.code(), "no_url");
        assert!(Error::Unavailable {
            reason: String::new()
        }
        .is_unavailable());
        let registry = Error::Registry {
            status: 401,
            code: "unauthorized".into(),
            message: "no".into(),
        };
        assert_eq!(registry.code(), "unauthorized");
        assert!(!registry.is_unavailable());
    }
}
