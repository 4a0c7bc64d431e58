//! Who a request is and what it may do.
//!
//! Three kinds of token: the bootstrap `VASCO_TOKEN` (may do everything, tokens included),
//! the legacy `VASCO_READ_TOKEN` (reads everything), and scoped tokens `vt.<id>.<secret>` kept
//! by the token object ([`crate::tokens`]) with the policies of [`vasco_core::acl`]. Reads
//! need a token unless `VASCO_PUBLIC_READS=true`. Admission ([`Tokens::admit`]) looks only at
//! the route's kind and is decided before any body byte is read; what a route touches
//! (a service) is then checked with [`Guard::require`]. No token, or one that is no token:
//! 401; a valid token without the scope: 403. Static tokens are compared in constant time.

use vasco_core::acl::{hash_secret, parse_token, Action, Policy, TokenRecord};
use vasco_core::{Millis, ServiceName};

use crate::backend::Objects;
use crate::error::AppError;
use crate::tokens::TokenCommand;

/// Who may call a route (each route in [`crate::router`] names one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone (health, the OpenAPI document).
    Open,
    /// Anyone when `VASCO_PUBLIC_READS=true`; else a token that may read what the route reads.
    Read,
    /// A token that may write (the services a route touches are checked by the route).
    Write,
    /// A token that may manage tokens (`VASCO_TOKEN`, or a scoped token with `manage`).
    Manage,
}

/// The tokens configured for this Worker. Empty strings count as unset.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tokens {
    /// `VASCO_TOKEN`: the bootstrap token, which may do everything. Without it, writes
    /// answer 503.
    pub write: Option<String>,
    /// `VASCO_READ_TOKEN`: a token that reads everything.
    pub read: Option<String>,
    /// `VASCO_PUBLIC_READS=true`: reads need no token.
    pub public_reads: bool,
}

/// Who sent a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// No token.
    Anonymous,
    /// `VASCO_TOKEN`.
    Bootstrap,
    /// `VASCO_READ_TOKEN`.
    Reader,
    /// A scoped token (its record, without the secret's hash).
    Token(TokenRecord),
}

impl Principal {
    /// What it may do (`None` for anonymous).
    pub fn policy(&self) -> Option<Policy> {
        match self {
            Principal::Anonymous => None,
            Principal::Bootstrap => Some(Policy::everything()),
            Principal::Reader => Some(Policy::read_all()),
            Principal::Token(record) => Some(record.policy.clone()),
        }
    }
}

impl Tokens {
    /// Builds the tokens from raw configuration values: surrounding whitespace is trimmed (as
    /// it is from the token a client sends, so a secret pasted with a trailing newline still
    /// authorizes), and empty or all-whitespace values count as unset. Reads are closed.
    pub fn new(write: Option<String>, read: Option<String>) -> Self {
        let clean = |value: Option<String>| {
            value
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        Self {
            write: clean(write),
            read: clean(read),
            public_reads: false,
        }
    }

    /// The same tokens with reads open to anyone (`VASCO_PUBLIC_READS=true`) or not.
    pub fn with_public_reads(mut self, public: bool) -> Self {
        self.public_reads = public;
        self
    }

    /// Who `authorization` (an `Authorization` value) says the request is. A scoped token is
    /// checked with the token object. Errors: 401 for a token that is none of them (or a
    /// revoked or expired scoped token).
    pub async fn authenticate<O: Objects>(
        &self,
        authorization: Option<&str>,
        objects: &O,
        now: Millis,
    ) -> Result<Principal, AppError> {
        let Some(sent) = authorization.and_then(bearer) else {
            return Ok(Principal::Anonymous);
        };
        // Evaluate both comparisons so timing does not say which token matched.
        let is_write = self
            .write
            .as_ref()
            .is_some_and(|w| constant_time_eq(sent.as_bytes(), w.as_bytes()));
        let is_read = self
            .read
            .as_ref()
            .is_some_and(|r| constant_time_eq(sent.as_bytes(), r.as_bytes()));
        if is_write {
            return Ok(Principal::Bootstrap);
        }
        if is_read {
            return Ok(Principal::Reader);
        }
        if let Some((id, secret)) = parse_token(sent) {
            let reply = objects
                .tokens(&TokenCommand::Verify {
                    id: id.into(),
                    secret_hash: hash_secret(secret),
                    now,
                })
                .await?;
            if let Some(record) = reply.record {
                return Ok(Principal::Token(record));
            }
        }
        Err(AppError::Unauthorized {
            scope: "valid",
            sent: true,
        })
    }

    /// Whether `principal` may call a route of kind `access` at all (before its body is read
    /// and the services it touches are known).
    pub fn admit(&self, access: Access, principal: &Principal) -> Result<(), AppError> {
        let policy = principal.policy();
        let unauthorized = |scope| AppError::Unauthorized {
            scope,
            sent: !matches!(principal, Principal::Anonymous),
        };
        match access {
            Access::Open => Ok(()),
            Access::Read => match policy {
                None if self.public_reads => Ok(()),
                None => Err(unauthorized("read")),
                Some(p) if p.reads_something() => Ok(()),
                Some(_) => Err(forbidden("read anything")),
            },
            Access::Write => {
                if self.write.is_none() {
                    return Err(AppError::NotConfigured);
                }
                match (principal, policy) {
                    (Principal::Anonymous | Principal::Reader, _) => Err(unauthorized("write")),
                    (_, Some(p)) if p.writes_something() => Ok(()),
                    _ => Err(forbidden("write anything")),
                }
            }
            Access::Manage => match (principal, policy) {
                (Principal::Anonymous, _) => Err(unauthorized("manage")),
                (_, Some(p)) if p.allows(Action::Manage) => Ok(()),
                _ => Err(forbidden("manage tokens")),
            },
        }
    }

    /// Checks `principal` may do `action`: 403 when its token lacks the scope; 401 when there
    /// is no token and the action needs one.
    pub fn require(&self, principal: &Principal, action: Action<'_>) -> Result<(), AppError> {
        let read = matches!(action, Action::Read(_) | Action::ReadAll);
        if read && self.public_reads {
            return Ok(());
        }
        match principal.policy() {
            None => Err(AppError::Unauthorized {
                scope: if read { "read" } else { "write" },
                sent: false,
            }),
            Some(policy) if policy.allows(action) => Ok(()),
            Some(_) => Err(forbidden(&describe(action))),
        }
    }
}

/// A request's principal with the configuration that judges it: what handlers call to check
/// the services they touch.
#[derive(Debug, Clone)]
pub struct Guard<'a> {
    /// The configured tokens.
    pub tokens: &'a Tokens,
    /// Who sent the request.
    pub principal: Principal,
}

impl Guard<'_> {
    /// See [`Tokens::require`].
    pub fn require(&self, action: Action<'_>) -> Result<(), AppError> {
        self.tokens.require(&self.principal, action)
    }

    /// Read on `service`.
    pub fn read(&self, service: &ServiceName) -> Result<(), AppError> {
        self.require(Action::Read(service))
    }

    /// Write on `service`.
    pub fn write(&self, service: &ServiceName) -> Result<(), AppError> {
        self.require(Action::Write(service))
    }
}

fn describe(action: Action<'_>) -> String {
    match action {
        Action::Read(service) => format!("read {service}"),
        Action::ReadAll => "read every service (needs read on *)".into(),
        Action::Write(service) => format!("write {service}"),
        Action::Manage => "manage tokens".into(),
    }
}

fn forbidden(what: &str) -> AppError {
    AppError::Forbidden {
        reason: format!("this token may not {what}"),
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

    fn principal(t: &Tokens, header: Option<&str>) -> Result<Principal, AppError> {
        let objects = crate::local::LocalObjects::new(crate::kv::memory::MemoryKv::new(), 0);
        futures_util::FutureExt::now_or_never(t.authenticate(header, &objects, 0))
            .expect("the local objects answer at once")
    }

    fn check(t: &Tokens, access: Access, header: Option<&str>) -> Result<(), AppError> {
        t.admit(access, &principal(t, header)?)
    }

    #[test]
    fn writes_need_the_write_token() {
        let t = tokens(Some("w"), None);
        assert!(check(&t, Access::Write, Some("Bearer w")).is_ok());
        let none = check(&t, Access::Write, None).unwrap_err();
        assert_eq!(none.status(), 401);
        let wrong = check(&t, Access::Write, Some("Bearer x")).unwrap_err();
        assert_eq!(wrong.status(), 401);
    }

    #[test]
    fn writes_without_configured_token_are_503() {
        for t in [
            tokens(None, None),
            tokens(Some(""), None),
            tokens(Some("  "), Some("r")),
        ] {
            let err = check(&t, Access::Write, Some("Bearer r")).unwrap_err();
            assert!(matches!(err.status(), 503 | 401), "{err}");
        }
        let err = check(&tokens(None, None), Access::Write, None).unwrap_err();
        assert_eq!((err.status(), err.code()), (503, "not_configured".into()));
    }

    #[test]
    fn configured_tokens_are_trimmed_like_sent_ones() {
        let t = tokens(Some(" w\n"), Some("\tr "));
        assert_eq!(t.write.as_deref(), Some("w"));
        assert_eq!(t.read.as_deref(), Some("r"));
        assert!(check(&t, Access::Write, Some("Bearer w")).is_ok());
        assert!(check(&t, Access::Write, Some("Bearer  w ")).is_ok());
        assert!(check(&t, Access::Read, Some("Bearer r")).is_ok());
        assert!(check(&t, Access::Read, Some("Bearer w")).is_ok());
        assert_eq!(
            check(&t, Access::Write, Some("Bearer r"))
                .unwrap_err()
                .status(),
            401
        );
        let blank = tokens(Some(" \r\n\t"), Some("\n"));
        assert_eq!(blank, Tokens::default());
    }

    #[test]
    fn reads_are_closed_unless_public() {
        let closed = tokens(Some("w"), None);
        assert_eq!(
            check(&closed, Access::Read, None).unwrap_err().status(),
            401
        );
        assert!(check(&closed.clone().with_public_reads(true), Access::Read, None).is_ok());
        let with_reader = tokens(Some("w"), Some("r"));
        assert!(check(&with_reader, Access::Read, Some("Bearer r")).is_ok());
        assert!(check(&with_reader, Access::Read, Some("Bearer w")).is_ok());
        assert!(check(&with_reader, Access::Read, Some("Bearer x")).is_err());
        assert!(check(&with_reader, Access::Open, None).is_ok());
        // A scoped-token-shaped text nobody issued is refused like any wrong token.
        let err = check(&with_reader, Access::Read, Some("Bearer vt.00ff.abcd")).unwrap_err();
        assert_eq!(err.status(), 401);
    }
}
