//! Bearer tokens: writes need `VASCO_TOKEN`; reads are open unless `VASCO_READ_TOKEN` is set
//! (then either token reads). Comparison takes the same time whatever the bytes are.

use crate::error::AppError;
use crate::router::Access;

/// The tokens configured for this Worker. Empty strings count as unset.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tokens {
    /// `VASCO_TOKEN`: required for `PUT` and `DELETE`. Without it, writes answer 503.
    pub write: Option<String>,
    /// `VASCO_READ_TOKEN`: when set, reads need it (or the write token).
    pub read: Option<String>,
}

impl Tokens {
    /// Builds the tokens from raw configuration values: surrounding whitespace is trimmed (as
    /// it is from the token a client sends, so a secret pasted with a trailing newline still
    /// authorizes), and empty or all-whitespace values count as unset.
    pub fn new(write: Option<String>, read: Option<String>) -> Self {
        let clean = |value: Option<String>| {
            value
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        Self {
            write: clean(write),
            read: clean(read),
        }
    }

    /// Checks the `Authorization` header against what `access` requires.
    pub fn check(&self, access: Access, authorization: Option<&str>) -> Result<(), AppError> {
        let sent = authorization.and_then(bearer);
        match access {
            Access::Open => Ok(()),
            Access::Write => {
                let Some(write) = &self.write else {
                    return Err(AppError::NotConfigured);
                };
                match sent {
                    Some(token) if constant_time_eq(token.as_bytes(), write.as_bytes()) => Ok(()),
                    _ => Err(AppError::Unauthorized {
                        scope: "write",
                        sent: sent.is_some(),
                    }),
                }
            }
            Access::Read => {
                let Some(read) = &self.read else {
                    return Ok(());
                };
                let ok = sent.is_some_and(|token| {
                    // Evaluate both comparisons so timing does not say which token matched.
                    let read_ok = constant_time_eq(token.as_bytes(), read.as_bytes());
                    let write_ok = self
                        .write
                        .as_ref()
                        .is_some_and(|write| constant_time_eq(token.as_bytes(), write.as_bytes()));
                    read_ok | write_ok
                });
                if ok {
                    Ok(())
                } else {
                    Err(AppError::Unauthorized {
                        scope: "read",
                        sent: sent.is_some(),
                    })
                }
            }
        }
    }
}

/// The token of an `Authorization: Bearer <token>` header (scheme case-insensitive).
pub fn bearer(header: &str) -> Option<&str> {
    let header = header.trim();
    let (scheme, token) = header.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let token = token.trim();
    (!token.is_empty()).then_some(token)
}

/// Compares two byte strings in time that depends only on their lengths, not on where they
/// differ. (A length mismatch is still detected, also without an early exit.)
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let len = a.len().max(b.len());
    let mut diff = u8::from(a.len() != b.len());
    for i in 0..len {
        let x = a.get(i).copied().unwrap_or(0);
        let y = b.get(i).copied().unwrap_or(0);
        diff |= x ^ y;
    }
    core::hint::black_box(diff) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(write: Option<&str>, read: Option<&str>) -> Tokens {
        Tokens::new(write.map(String::from), read.map(String::from))
    }

    #[test]
    fn constant_time_compare() {
        assert!(constant_time_eq(b"secret", b"secret"));
        assert!(!constant_time_eq(b"secret", b"secreT"));
        assert!(!constant_time_eq(b"secret", b"secret2"));
        assert!(!constant_time_eq(b"", b"x"));
        assert!(constant_time_eq(b"", b""));
        // A prefix padded with NULs must not pass.
        assert!(!constant_time_eq(b"ab", b"ab\0"));
    }

    #[test]
    fn bearer_parsing() {
        assert_eq!(bearer("Bearer abc"), Some("abc"));
        assert_eq!(bearer("bearer  abc "), Some("abc"));
        assert_eq!(bearer("Basic abc"), None);
        assert_eq!(bearer("Bearer "), None);
        assert_eq!(bearer("abc"), None);
    }

    #[test]
    fn writes_need_the_write_token() {
        let t = tokens(Some("w"), None);
        assert!(t.check(Access::Write, Some("Bearer w")).is_ok());
        let none = t.check(Access::Write, None).unwrap_err();
        assert_eq!(none.status(), 401);
        let wrong = t.check(Access::Write, Some("Bearer x")).unwrap_err();
        assert_eq!(wrong.status(), 401);
        assert!(wrong.to_string().contains("not the write token"));
    }

    #[test]
    fn writes_without_configured_token_are_503() {
        for t in [
            tokens(None, None),
            tokens(Some(""), None),
            tokens(Some("  "), Some("r")),
        ] {
            let err = t.check(Access::Write, Some("Bearer anything")).unwrap_err();
            assert_eq!(err.status(), 503);
            assert_eq!(err.code(), "not_configured");
        }
    }

    #[test]
    fn configured_tokens_are_trimmed_like_sent_ones() {
        let t = tokens(Some(" w\n"), Some("\tr "));
        assert_eq!(t.write.as_deref(), Some("w"));
        assert_eq!(t.read.as_deref(), Some("r"));
        assert!(t.check(Access::Write, Some("Bearer w")).is_ok());
        assert!(t.check(Access::Write, Some("Bearer  w ")).is_ok());
        assert!(t.check(Access::Read, Some("Bearer r")).is_ok());
        assert!(t.check(Access::Read, Some("Bearer w")).is_ok());
        assert_eq!(
            t.check(Access::Write, Some("Bearer r"))
                .unwrap_err()
                .status(),
            401
        );
        // All whitespace is not a token: writes stay disabled, reads stay open.
        let blank = tokens(Some(" \r\n\t"), Some("\n"));
        assert_eq!(blank, Tokens::default());
        assert_eq!(
            blank
                .check(Access::Write, Some("Bearer x"))
                .unwrap_err()
                .status(),
            503
        );
        assert!(blank.check(Access::Read, None).is_ok());
    }

    #[test]
    fn reads_are_open_unless_read_token_set() {
        let open = tokens(Some("w"), None);
        assert!(open.check(Access::Read, None).is_ok());
        let closed = tokens(Some("w"), Some("r"));
        assert_eq!(closed.check(Access::Read, None).unwrap_err().status(), 401);
        assert!(closed.check(Access::Read, Some("Bearer r")).is_ok());
        assert!(closed.check(Access::Read, Some("Bearer w")).is_ok());
        assert!(closed.check(Access::Read, Some("Bearer x")).is_err());
        assert!(closed.check(Access::Open, None).is_ok());
    }
}
