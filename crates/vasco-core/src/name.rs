//! Validated identifiers: service names and instance ids.
//!
//! Both end up in KV keys and URL paths, so they are checked once, here, and carried as
//! types afterwards; nothing downstream re-validates or escapes them.

use alloc::string::{String, ToString};
use core::{fmt, str::FromStr};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::{Error, Result};

/// A service name: 1 to 63 of `a-z 0-9 - _ .` (the shape of a DNS label, plus `_` and `.`,
/// so npm package names without a scope fit), except `.` and `..` (dot segments of a URL path).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ServiceName(String);

/// The longest service name accepted.
pub const MAX_NAME_LEN: usize = 63;
/// The longest instance id accepted.
pub const MAX_ID_LEN: usize = 128;

/// Maps keyed by service name can be looked up with a `&str` (the name compares, orders and
/// hashes as its text).
impl core::borrow::Borrow<str> for ServiceName {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl ServiceName {
    /// Checks `text` and wraps it.
    pub fn parse(text: &str) -> Result<Self> {
        check_chars(
            "name",
            text,
            MAX_NAME_LEN,
            |c| matches!(c, 'a'..='z' | '0'..='9' | '-' | '_' | '.'),
            "lowercase letters, digits, '-', '_' and '.'",
        )?;
        Ok(Self(text.to_string()))
    }

    /// The service name for an npm package name, so a package.json's `name` (and the names in
    /// its `vasco.dependencies`) work as they are: a scoped `@scope/pkg` becomes `scope.pkg`,
    /// which fits a KV key and a URL path segment; any other name must already be valid.
    pub fn from_package_name(name: &str) -> Result<Self> {
        match name.strip_prefix('@').and_then(|rest| rest.split_once('/')) {
            Some((scope, package)) if !scope.is_empty() && !package.contains('/') => {
                Self::parse(&alloc::format!("{scope}.{package}"))
            }
            _ => Self::parse(name),
        }
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An instance id, unique within one `name@version`: 1 to 128 URL-safe characters
/// (`A-Z a-z 0-9 - _ . ~`), so it can sit in a path segment and a KV key unescaped; `.` and
/// `..` are refused (dot segments of a URL path).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct InstanceId(String);

impl InstanceId {
    /// Checks `text` and wraps it.
    pub fn parse(text: &str) -> Result<Self> {
        check_chars(
            "id",
            text,
            MAX_ID_LEN,
            |c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '~'),
            "letters, digits, '-', '_', '.' and '~'",
        )?;
        Ok(Self(text.to_string()))
    }

    /// An id derived from an instance's url, for clients that register by url alone (the
    /// original Vasco API): every character outside the id alphabet becomes `_`, and a hash
    /// suffix keeps distinct urls distinct.
    pub fn from_url(url: &str) -> Self {
        let mut id: String = url
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '~') {
                    c
                } else {
                    '_'
                }
            })
            .take(MAX_ID_LEN - 17)
            .collect();
        let hash = xxhash_rust::xxh64::xxh64(url.as_bytes(), 0);
        id.push_str(&alloc::format!("-{hash:016x}"));
        Self(id)
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn check_chars(
    field: &'static str,
    text: &str,
    max: usize,
    allowed: impl Fn(char) -> bool,
    alphabet: &str,
) -> Result<()> {
    if text.is_empty() {
        return Err(Error::invalid(field, "must not be empty"));
    }
    let chars = text.chars().count();
    if chars > max {
        return Err(Error::invalid(
            field,
            alloc::format!("is {chars} characters long, the limit is {max}"),
        ));
    }
    if let Some(bad) = text.chars().find(|&c| !allowed(c)) {
        return Err(Error::invalid(
            field,
            alloc::format!("{text:?} contains {bad:?}; allowed are {alphabet}"),
        ));
    }
    // Both sit in URL paths, where `.` and `..` are dot segments that clients and servers
    // normalise away: such a name could be stored but never reached over HTTP.
    if text == "." || text == ".." {
        return Err(Error::invalid(
            field,
            alloc::format!("{text:?} is a path segment, not a {field}"),
        ));
    }
    Ok(())
}

macro_rules! string_type_impls {
    ($ty:ident) => {
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl FromStr for $ty {
            type Err = Error;
            fn from_str(text: &str) -> Result<Self> {
                Self::parse(text)
            }
        }

        impl AsRef<str> for $ty {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl Serialize for $ty {
            fn serialize<S: Serializer>(
                &self,
                serializer: S,
            ) -> core::result::Result<S::Ok, S::Error> {
                serializer.serialize_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(
                deserializer: D,
            ) -> core::result::Result<Self, D::Error> {
                let text = String::deserialize(deserializer)?;
                Self::parse(&text).map_err(serde::de::Error::custom)
            }
        }
    };
}

string_type_impls!(ServiceName);
string_type_impls!(InstanceId);

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;

    #[test]
    fn service_names() {
        for ok in [
            "api",
            "user-service",
            "a",
            "svc_2.internal",
            &"x".repeat(63),
        ] {
            assert_eq!(ServiceName::parse(ok).unwrap().as_str(), ok);
        }
        for bad in [
            "",
            "API",
            "a b",
            "a/b",
            "@scope/pkg",
            "ü",
            ".",
            "..",
            &"x".repeat(64),
        ] {
            let err = ServiceName::parse(bad).unwrap_err();
            assert_eq!(err.code(), "invalid_name", "{bad:?}");
        }
        assert!(ServiceName::parse("...").is_ok() && ServiceName::parse(".a").is_ok());
        // Lengths are counted in characters, as the message says.
        let err = ServiceName::parse(&"é".repeat(40)).unwrap_err();
        assert!(err.to_string().contains("\'é\'"), "{err}");
        let err = ServiceName::parse(&"a".repeat(64)).unwrap_err();
        assert!(err.to_string().contains("64 characters"), "{err}");
    }

    #[test]
    fn package_names_map_scopes() {
        let name = |text| ServiceName::from_package_name(text).map(|n| n.as_str().to_string());
        assert_eq!(name("@acme/api").unwrap(), "acme.api");
        assert_eq!(name("api").unwrap(), "api");
        for bad in ["@acme", "@/api", "@acme/a/b", "@Acme/api", "Api", ".", ".."] {
            assert_eq!(name(bad).unwrap_err().code(), "invalid_name", "{bad:?}");
        }
    }

    #[test]
    fn instance_ids() {
        for ok in ["a1", "10.0.0.1_3000", "Host-1~x", &"i".repeat(128)] {
            assert!(InstanceId::parse(ok).is_ok(), "{ok:?}");
        }
        for bad in ["", "a/b", "a b", "..", ".", "a?b", &"i".repeat(129)] {
            assert_eq!(
                InstanceId::parse(bad).unwrap_err().code(),
                "invalid_id",
                "{bad:?}"
            );
        }
    }

    #[test]
    fn ids_from_urls_are_valid_and_distinct() {
        let a = InstanceId::from_url("10.0.0.1:3000");
        let b = InstanceId::from_url("10.0.0.1_3000");
        assert_ne!(a, b);
        assert!(InstanceId::parse(a.as_str()).is_ok());
        let long = InstanceId::from_url(&"h".repeat(400));
        assert!(long.as_str().len() <= MAX_ID_LEN);
        assert!(InstanceId::parse(long.as_str()).is_ok());
    }

    #[test]
    fn serde_validates() {
        let name: ServiceName = serde_json::from_str("\"api\"").unwrap();
        assert_eq!(name.as_str(), "api");
        assert!(serde_json::from_str::<ServiceName>("\"Bad Name\"").is_err());
    }
}
