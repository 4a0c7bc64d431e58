//! Where the registry is: `VASCO_URL` or the `url` option, parsed once.

use super::*;

/// Where the package looks when neither `VASCO_URL` nor the `url` option says: the local
/// `wrangler dev`.
pub const DEFAULT_REGISTRY: &str = "http://127.0.0.1:8787";

/// What `VASCO_URL` (or the `url` option) selects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// A registry over HTTP, by base URL without a trailing slash.
    Http(String),
    /// The in-process registry shared by every client of this process.
    Memory,
}

impl Endpoint {
    /// Reads a registry address: an `http(s)://` URL, a bare `host:port` (meaning http),
    /// `memory:`, or nothing (the default local registry). Redis addresses of the original
    /// Vasco (`redis://`, or a bare `host:6379` as its README had it) get an error that says
    /// what to set instead; so does a mistyped scheme (`http//host`, `http:/host`, `htp://`).
    pub fn parse(text: Option<&str>) -> Result<Self> {
        let raw = text.map(str::trim).unwrap_or("");
        if raw.is_empty() {
            return Ok(Self::Http(DEFAULT_REGISTRY.into()));
        }
        let lower = raw.to_ascii_lowercase();
        let refuse = |reason: String| Error::RegistryUrl {
            url: raw.into(),
            reason,
        };
        if lower == "memory" || lower.starts_with("memory:") {
            return Ok(Self::Memory);
        }
        let no_redis = "Vasco no longer uses Redis. Set VASCO_URL to the http(s) URL of the \
                        Vasco registry (the Worker, e.g. https://vasco.<account>.workers.dev, or \
                        http://127.0.0.1:8787 for a local `wrangler dev`) and VASCO_TOKEN to its \
                        token, or set VASCO_URL=memory: for an in-process registry";
        if lower.starts_with("redis:") || lower.starts_with("rediss:") {
            return Err(refuse(no_redis.into()));
        }
        let forms = "use http(s)://host[:port], host:port or memory:";
        let (scheme, rest) = match lower.split_once("://") {
            Some((scheme, _)) if scheme == "http" || scheme == "https" => {
                (scheme, &raw[scheme.len() + 3..])
            }
            Some((scheme, _)) => {
                let near = ["http", "https"]
                    .into_iter()
                    .find(|s| edit_distance(scheme, s) <= 1)
                    .map(|s| format!(" (did you mean {s}://?)"))
                    .unwrap_or_default();
                return Err(refuse(format!(
                    "unsupported scheme {scheme:?}{near}; {forms}"
                )));
            }
            None => {
                // `http//host`, `http:/host`, `https:host`: a scheme with its `://` mistyped.
                for scheme in ["https", "http", "redis"] {
                    let after = lower.strip_prefix(scheme).unwrap_or("");
                    if after.starts_with(':')
                        && !after[1..].starts_with(|c: char| c.is_ascii_digit())
                        || after.starts_with('/')
                    {
                        let host = raw[scheme.len()..].trim_start_matches([':', '/']);
                        return Err(refuse(format!(
                            "the scheme is mistyped (did you mean {scheme}://{host}?); {forms}"
                        )));
                    }
                }
                ("http", raw)
            }
        };
        let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
        let authority_ok = !authority.is_empty()
            && authority
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-._~:[]%".contains(c));
        if !authority_ok || rest.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(refuse(format!("not a registry address; {forms}")));
        }
        if let Some((_, port)) = authority
            .rsplit_once(':')
            .filter(|_| !authority.ends_with(']'))
        {
            if !port.parse::<u16>().is_ok_and(|p| p > 0) {
                return Err(refuse(format!("{port:?} is not a port; {forms}")));
            }
            // The original's README had VASCO_URL=<host>:6379, Redis's port.
            if lower.split_once("://").is_none() && port == "6379" {
                return Err(refuse(format!("port 6379 is Redis's. {no_redis}")));
            }
        }
        let rest = rest
            .split(['?', '#'])
            .next()
            .unwrap_or("")
            .trim_end_matches('/');
        Ok(Self::Http(format!("{scheme}://{rest}")))
    }

    /// The address as shown to users.
    pub fn display(&self) -> &str {
        match self {
            Self::Http(base) => base,
            Self::Memory => "memory:",
        }
    }
}
