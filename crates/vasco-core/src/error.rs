//! The one error type of the core. Every layer above maps it once, at its boundary.

use alloc::string::String;
use core::fmt;

/// Which input field a validation error is about, so callers can name it to users.
pub type Field = &'static str;

/// Everything the core can refuse.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// An input field failed validation; `reason` says why in plain words.
    Invalid {
        /// The field, as named in the HTTP API and the npm package (`name`, `url`, `ttl`, ...).
        field: Field,
        /// What was wrong.
        reason: String,
    },
    /// The instance is not registered (or its lease has already lapsed).
    NotFound {
        /// `name@version/id` of the instance asked for.
        instance: String,
    },
    /// An encoded record does not fit the storage limit (KV metadata is at most 1024 bytes).
    TooLarge {
        /// What was too large.
        what: Field,
        /// Its encoded size in bytes.
        size: usize,
        /// The limit in bytes.
        limit: usize,
    },
    /// A stored record could not be decoded: written by an incompatible version or corrupted.
    Corrupt {
        /// The storage key of the record.
        key: String,
        /// What failed.
        reason: String,
    },
}

impl Error {
    /// Shorthand for [`Error::Invalid`].
    pub fn invalid(field: Field, reason: impl Into<String>) -> Self {
        Error::Invalid {
            field,
            reason: reason.into(),
        }
    }

    /// A stable, machine-readable code (`invalid_<field>`, `not_found`, ...), used as the
    /// `code` of HTTP error bodies and of JS errors.
    pub fn code(&self) -> String {
        match self {
            Error::Invalid { field, .. } => alloc::format!("invalid_{field}"),
            Error::NotFound { .. } => "not_found".into(),
            Error::TooLarge { .. } => "too_large".into(),
            Error::Corrupt { .. } => "corrupt_record".into(),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Invalid { field, reason } => write!(f, "invalid {field}: {reason}"),
            Error::NotFound { instance } => write!(f, "instance not found: {instance}"),
            Error::TooLarge { what, size, limit } => {
                write!(
                    f,
                    "{what} is {size} bytes encoded, over the limit of {limit} bytes"
                )
            }
            Error::Corrupt { key, reason } => write!(f, "stored record {key} is corrupt: {reason}"),
        }
    }
}

impl core::error::Error for Error {}

/// The core's result alias.
pub type Result<T, E = Error> = core::result::Result<T, E>;
