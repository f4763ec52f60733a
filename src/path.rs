//! Broadcast paths: normalization and segment-aware prefix rules (PROTOCOL.md §2.2).
//!
//! A normalized path has no leading or trailing `/`, no empty parts, and at most
//! [`MAX_PARTS`] parts; `""` is the root. Every function other than [`normalize`] expects
//! normalized input. Track names are not paths and never pass through here.

use std::fmt;

/// The most `/`-separated parts a path may have (moq-net 0.3.18 `Path::MAX_PARTS`).
pub const MAX_PARTS: usize = 32;

/// Why a string is not an acceptable path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathError {
    /// The path has more than [`MAX_PARTS`] parts.
    TooManyParts,
}

impl fmt::Display for PathError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooManyParts => write!(f, "path has more than {MAX_PARTS} parts"),
        }
    }
}

impl std::error::Error for PathError {}

/// Trims leading and trailing `/` and collapses runs of `/`: `/foo//bar/` becomes `foo/bar`.
pub fn normalize(path: &str) -> Result<String, PathError> {
    let mut normalized = String::with_capacity(path.len());
    for (index, part) in path.split('/').filter(|part| !part.is_empty()).enumerate() {
        if index == MAX_PARTS {
            return Err(PathError::TooManyParts);
        }
        if index > 0 {
            normalized.push('/');
        }
        normalized.push_str(part);
    }
    Ok(normalized)
}

/// Whether `prefix` names `path` or one of its ancestors, part by part: `foo` matches `foo`
/// and `foo/bar` but never `foobar`; `""` matches every path.
pub fn has_prefix(path: &str, prefix: &str) -> bool {
    strip_prefix(path, prefix).is_some()
}

/// The rest of `path` below `prefix`, or `None` if `prefix` does not match it
/// (see [`has_prefix`]): `strip_prefix("foo/bar", "foo") == Some("bar")`,
/// `strip_prefix("foo", "foo") == Some("")`.
pub fn strip_prefix<'a>(path: &'a str, prefix: &str) -> Option<&'a str> {
    if prefix.is_empty() {
        return Some(path);
    }
    let rest = path.strip_prefix(prefix)?;
    if rest.is_empty() {
        Some(rest)
    } else {
        rest.strip_prefix('/')
    }
}

/// `a/b`, or whichever side is non-empty. The result may exceed [`MAX_PARTS`].
pub fn join(a: &str, b: &str) -> String {
    match (a.is_empty(), b.is_empty()) {
        (true, _) => b.to_owned(),
        (_, true) => a.to_owned(),
        _ => format!("{a}/{b}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_trims_and_collapses() {
        assert_eq!(normalize("/foo//bar/").unwrap(), "foo/bar");
        assert_eq!(normalize("/").unwrap(), "");
        assert_eq!(normalize("").unwrap(), "");
        assert_eq!(normalize("///").unwrap(), "");
        assert_eq!(normalize("anon/clock").unwrap(), "anon/clock");
        assert_eq!(normalize("//a///b//c//").unwrap(), "a/b/c");
    }

    #[test]
    fn normalize_limits_parts() {
        let parts = |n: usize| vec!["p"; n].join("/");
        assert_eq!(normalize(&parts(MAX_PARTS)).unwrap(), parts(MAX_PARTS));
        assert_eq!(
            normalize(&format!("/{}//", parts(MAX_PARTS))).unwrap(),
            parts(MAX_PARTS)
        );
        assert_eq!(
            normalize(&parts(MAX_PARTS + 1)),
            Err(PathError::TooManyParts)
        );
        assert_eq!(
            normalize(&"/".repeat(100_000)).unwrap(),
            "",
            "empty parts do not count"
        );
    }

    #[test]
    fn prefix_matching_is_segment_aware() {
        assert!(has_prefix("foo", "foo"));
        assert!(has_prefix("foo/bar", "foo"));
        assert!(has_prefix("foo/bar/baz", "foo/bar"));
        assert!(!has_prefix("foobar", "foo"));
        assert!(!has_prefix("foo", "foo/bar"));
        assert!(!has_prefix("", "foo"));
        assert!(has_prefix("foo", ""));
        assert!(has_prefix("", ""));
    }

    #[test]
    fn strip_prefix_returns_the_relative_rest() {
        assert_eq!(strip_prefix("foo/bar", "foo"), Some("bar"));
        assert_eq!(strip_prefix("foo", "foo"), Some(""));
        assert_eq!(strip_prefix("foo/bar", ""), Some("foo/bar"));
        assert_eq!(strip_prefix("anon/clock", "anon"), Some("clock"));
        assert_eq!(strip_prefix("foobar", "foo"), None);
        assert_eq!(strip_prefix("bar", "foo"), None);
    }

    #[test]
    fn join_skips_empty_sides() {
        assert_eq!(join("anon", "clock"), "anon/clock");
        assert_eq!(join("", "clock"), "clock");
        assert_eq!(join("anon", ""), "anon");
        assert_eq!(join("", ""), "");
    }
}
