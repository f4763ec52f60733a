//! Who may publish and subscribe what: public prefixes for requests without a token, JWT
//! grants for requests with one, both reduced to a [`Scope`] relative to the session root
//! (PROTOCOL.md §8). Every way into the relay asks [`Auth::authorize`].

mod algorithm;
mod base64url;
mod claims;
mod jwk;
mod scope;
pub mod signing;
mod verifier;

pub use algorithm::{Algorithm, Curve, Family};
pub use claims::Claims;
pub use jwk::{Jwk, JwkError, KeyScope, Material, RsaPrivate};
pub use scope::{rebase, Scope};
pub use verifier::{unix_now, Verifier};

use crate::path;
use std::fmt;
use std::sync::Arc;

/// Why a session was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AuthError {
    /// The connect path is not valid.
    BadPath(String),
    /// A token was presented but cannot be verified.
    Token(String),
    /// No public prefix covers the path and no token was given.
    NotPublic(String),
    /// The token's root and the connect path do not overlap.
    RootMismatch { root: String, path: String },
    /// The grants leave nothing to publish or subscribe.
    NoAccess,
    /// The client's declared role has no matching grant.
    Role(&'static str),
}

impl AuthError {
    /// The HTTP status this refusal maps to: 400 for a bad path, 403 for a role the grants
    /// do not cover, 401 otherwise.
    pub fn http_status(&self) -> u16 {
        match self {
            AuthError::BadPath(_) => 400,
            AuthError::Role(_) => 403,
            _ => 401,
        }
    }
}

impl fmt::Display for AuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AuthError::BadPath(p) => write!(f, "invalid connect path {p:?}"),
            AuthError::Token(reason) => write!(f, "token refused: {reason}"),
            AuthError::NotPublic(p) => write!(f, "path {p:?} is not public and no token was given"),
            AuthError::RootMismatch { root, path } => {
                write!(f, "the token's root {root:?} does not cover path {path:?}")
            }
            AuthError::NoAccess => write!(f, "nothing may be published or subscribed here"),
            AuthError::Role(role) => write!(f, "no grant for the declared {role} role"),
        }
    }
}

impl std::error::Error for AuthError {}

/// The relay's authorization rules.
#[derive(Clone, Debug, Default)]
pub struct Auth {
    /// Normalized prefixes open without a token.
    pub public: Vec<String>,
    /// Verifies tokens; without it every token is refused.
    pub verifier: Option<Arc<Verifier>>,
}

/// What an authorized request may do, and until when.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Grant {
    pub scope: Scope,
    /// Unix seconds at which the token expires; `None` for public access and for tokens
    /// without `exp`.
    pub expires: Option<u64>,
    /// The token marks a cluster node.
    pub cluster: bool,
}

/// The connect path split from its `jwt` query parameter.
#[derive(Clone, PartialEq, Eq)]
pub struct ConnectPath {
    pub path: String,
    pub jwt: Option<String>,
}

// The token is a credential: never print it.
impl fmt::Debug for ConnectPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectPath")
            .field("path", &self.path)
            .field("jwt", &self.jwt.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

impl ConnectPath {
    /// Splits `path?query` at the first `?` and takes a non-empty `jwt` parameter.
    pub fn parse(raw: &str) -> Self {
        let (path, query) = raw.split_once('?').unwrap_or((raw, ""));
        let jwt = query
            .split('&')
            .filter_map(|kv| kv.split_once('='))
            .find(|(k, _)| *k == "jwt")
            .map(|(_, v)| v.to_string())
            .filter(|v| !v.is_empty());
        Self {
            path: path.to_string(),
            jwt,
        }
    }
}

impl Auth {
    /// Decides what a session connecting at `connect` may do, at the current time.
    pub fn authorize(&self, connect: &ConnectPath) -> Result<Grant, AuthError> {
        self.authorize_at(connect, unix_now())
    }

    /// Decides what a session connecting at `connect` may do at unix time `now`.
    pub fn authorize_at(&self, connect: &ConnectPath, now: u64) -> Result<Grant, AuthError> {
        let root = connect_root(&connect.path)?;
        let Some(jwt) = &connect.jwt else {
            return self.authorize_public(root);
        };
        let Some(verifier) = &self.verifier else {
            return Err(AuthError::Token("no token key is configured".into()));
        };
        let claims = verifier.verify(jwt, now).map_err(AuthError::Token)?;
        if path::strip_prefix(&root, &claims.root).is_none()
            && path::strip_prefix(&claims.root, &root).is_none()
        {
            return Err(AuthError::RootMismatch {
                root: claims.root,
                path: root,
            });
        }
        let scope =
            rebase(&root, &claims.root, &claims.put, &claims.get).ok_or(AuthError::NoAccess)?;
        Ok(Grant {
            scope,
            expires: claims.exp,
            cluster: claims.cluster,
        })
    }

    fn authorize_public(&self, root: String) -> Result<Grant, AuthError> {
        let public = &self.public;
        let overlaps = public
            .iter()
            .any(|p| path::has_prefix(&root, p) || path::has_prefix(p, &root));
        if !overlaps {
            return Err(AuthError::NotPublic(root));
        }
        let scope = rebase(&root, "", public, public).ok_or(AuthError::NoAccess)?;
        Ok(Grant {
            scope,
            expires: None,
            cluster: false,
        })
    }
}

/// The normalized session root of a connect path. `.` and `..` parts are refused rather
/// than kept as names, so no path can look like it escapes its prefix.
fn connect_root(raw: &str) -> Result<String, AuthError> {
    let root = path::normalize(raw).map_err(|_| AuthError::BadPath(raw.to_string()))?;
    if root.split('/').any(|part| part == "." || part == "..") {
        return Err(AuthError::BadPath(raw.to_string()));
    }
    Ok(root)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth() -> Auth {
        Auth {
            public: vec!["anon".into()],
            verifier: None,
        }
    }

    #[test]
    fn public_prefix_rules_follow_the_protocol_table() {
        let root = auth().authorize(&ConnectPath::parse("/")).unwrap().scope;
        assert_eq!(root.root, "");
        assert_eq!(root.publish, vec!["anon".to_string()]);
        assert_eq!(root.subscribe, vec!["anon".to_string()]);
        let anon = auth()
            .authorize(&ConnectPath::parse("/anon/x"))
            .unwrap()
            .scope;
        assert_eq!(anon.root, "anon/x");
        assert_eq!(anon.publish, vec![String::new()]);
        assert!(matches!(
            auth().authorize(&ConnectPath::parse("/foo")),
            Err(AuthError::NotPublic(_))
        ));
        assert!(matches!(
            auth().authorize(&ConnectPath::parse("/anonymous")),
            Err(AuthError::NotPublic(_))
        ));
    }

    #[test]
    fn a_token_is_never_a_fallback_to_public() {
        let connect = ConnectPath::parse("/anon?x=1&jwt=abc");
        assert_eq!(connect.jwt.as_deref(), Some("abc"));
        assert!(matches!(
            auth().authorize(&connect),
            Err(AuthError::Token(_))
        ));
        assert_eq!(ConnectPath::parse("/anon?jwt=").jwt, None);
    }
}
