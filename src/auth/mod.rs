//! Who may publish and subscribe what: public prefixes now, JWT grants later, both reduced
//! to a [`Scope`] relative to the session root.

mod scope;

pub use scope::{rebase, Scope};

use crate::path;
use std::fmt;

/// Why a session was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AuthError {
    /// The connect path is not valid.
    BadPath(String),
    /// A token was presented but cannot be verified.
    Token(String),
    /// No public prefix covers the path and no token was given.
    NotPublic(String),
    /// The grants leave nothing to publish or subscribe.
    NoAccess,
    /// The client's declared role has no matching grant.
    Role(&'static str),
}

impl fmt::Display for AuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AuthError::BadPath(p) => write!(f, "invalid connect path {p:?}"),
            AuthError::Token(reason) => write!(f, "token refused: {reason}"),
            AuthError::NotPublic(p) => write!(f, "path {p:?} is not public and no token was given"),
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
}

/// The connect path split from its `jwt` query parameter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectPath {
    pub path: String,
    pub jwt: Option<String>,
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
    /// Decides what a session connecting at `connect` may do.
    pub fn authorize(&self, connect: &ConnectPath) -> Result<Scope, AuthError> {
        let root =
            path::normalize(&connect.path).map_err(|_| AuthError::BadPath(connect.path.clone()))?;
        if connect.jwt.is_some() {
            return Err(AuthError::Token("no token key is configured".into()));
        }
        let public = &self.public;
        let overlaps = public
            .iter()
            .any(|p| path::has_prefix(&root, p) || path::has_prefix(p, &root));
        if !overlaps {
            return Err(AuthError::NotPublic(root));
        }
        rebase(&root, "", public, public).ok_or(AuthError::NoAccess)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth() -> Auth {
        Auth {
            public: vec!["anon".into()],
        }
    }

    #[test]
    fn public_prefix_rules_follow_the_protocol_table() {
        let root = auth().authorize(&ConnectPath::parse("/")).unwrap();
        assert_eq!(root.root, "");
        assert_eq!(root.publish, vec!["anon".to_string()]);
        assert_eq!(root.subscribe, vec!["anon".to_string()]);
        let anon = auth().authorize(&ConnectPath::parse("/anon/x")).unwrap();
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
