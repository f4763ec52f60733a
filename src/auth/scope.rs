//! A session's publish and subscribe prefixes, and the rebasing of grants onto the connect
//! path (PROTOCOL.md §8.3).

use crate::path;

/// What one session may do, relative to its root.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Scope {
    /// The normalized connect path; every wire path of the session is relative to it.
    pub root: String,
    /// Prefixes (relative to `root`) the session may announce and publish under.
    pub publish: Vec<String>,
    /// Prefixes (relative to `root`) the session may see and subscribe to.
    pub subscribe: Vec<String>,
}

impl Scope {
    /// The absolute path of a wire path of this session.
    pub fn absolute(&self, relative: &str) -> String {
        path::join(&self.root, relative)
    }

    /// The wire path of an absolute path, if it lies under the root.
    pub fn relative<'a>(&self, absolute: &'a str) -> Option<&'a str> {
        path::strip_prefix(absolute, &self.root)
    }

    /// Whether the session may subscribe to broadcast `relative`.
    pub fn may_subscribe(&self, relative: &str) -> bool {
        self.subscribe.iter().any(|p| path::has_prefix(relative, p))
    }

    /// Whether the session may publish broadcast `relative`.
    pub fn may_publish(&self, relative: &str) -> bool {
        self.publish.iter().any(|p| path::has_prefix(relative, p))
    }

    /// The prefixes (relative to the root) to watch for an announce request of `prefix`:
    /// all of it where a grant covers it, or the granted parts inside it.
    pub fn visible_within(&self, prefix: &str) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for grant in &self.subscribe {
            let watch = if path::has_prefix(prefix, grant) {
                prefix.to_string()
            } else if path::has_prefix(grant, prefix) {
                grant.clone()
            } else {
                continue;
            };
            if !out.iter().any(|w| path::has_prefix(&watch, w)) {
                out.retain(|w| !path::has_prefix(w, &watch));
                out.push(watch);
            }
        }
        out
    }
}

/// Rebases grants relative to `token_root` onto the connect path `connect` (both
/// normalized). Returns `None` on a root mismatch or when nothing is left.
pub fn rebase(connect: &str, token_root: &str, put: &[String], get: &[String]) -> Option<Scope> {
    let (prefix, suffix) = if let Some(suffix) = path::strip_prefix(connect, token_root) {
        ("", suffix)
    } else if let Some(prefix) = path::strip_prefix(token_root, connect) {
        (prefix, "")
    } else {
        return None;
    };
    let apply = |grants: &[String]| -> Vec<String> {
        let mut out = Vec::new();
        for grant in grants {
            let joined = path::join(prefix, grant);
            let kept = if let Some(rest) = path::strip_prefix(&joined, suffix) {
                rest.to_string()
            } else if path::has_prefix(suffix, &joined) {
                String::new()
            } else {
                continue;
            };
            if !out.contains(&kept) {
                out.push(kept);
            }
        }
        out
    };
    let publish = apply(put);
    let subscribe = apply(get);
    if publish.is_empty() && subscribe.is_empty() {
        return None;
    }
    Some(Scope {
        root: connect.to_string(),
        publish,
        subscribe,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn worked_example_of_the_protocol() {
        let put = s(&["my-stream"]);
        let get = s(&[""]);
        let demo = rebase("demo", "demo", &put, &get).unwrap();
        assert_eq!(
            (demo.publish, demo.subscribe),
            (s(&["my-stream"]), s(&[""]))
        );
        let top = rebase("", "demo", &put, &get).unwrap();
        assert_eq!(
            (top.publish, top.subscribe),
            (s(&["demo/my-stream"]), s(&["demo"]))
        );
        let room = rebase("demo/room", "demo", &put, &get).unwrap();
        assert_eq!((room.publish, room.subscribe), (s(&[]), s(&[""])));
        let stream = rebase("demo/my-stream", "demo", &put, &get).unwrap();
        assert_eq!((stream.publish, stream.subscribe), (s(&[""]), s(&[""])));
        assert!(rebase("other", "demo", &put, &get).is_none());
    }

    #[test]
    fn visibility_within_an_announce_prefix() {
        let scope = Scope {
            root: String::new(),
            publish: vec![],
            subscribe: s(&["anon", "shared/x"]),
        };
        assert_eq!(scope.visible_within(""), s(&["anon", "shared/x"]));
        assert_eq!(scope.visible_within("anon/room"), s(&["anon/room"]));
        assert!(scope.visible_within("other").is_empty());
        assert!(scope.may_subscribe("anon/clock"));
        assert!(!scope.may_subscribe("anonymous"));
    }
}
