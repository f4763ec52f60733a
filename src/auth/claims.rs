//! A verified token's payload, read in both claim generations (PROTOCOL.md §8.2): `put`/`get`
//! as moq-token 0.7.4 writes them, and the seed-era `pub`/`sub` with wildcard forms.

use super::jwk::{string_or_list, KeyScope};
use crate::path;
use serde_json::{Map, Value};

/// What a token grants, relative to its `root`, with both generations merged.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Claims {
    /// The normalized base path of the grants.
    pub root: String,
    /// Normalized publish prefixes, relative to `root`.
    pub put: Vec<String>,
    /// Normalized subscribe prefixes, relative to `root`.
    pub get: Vec<String>,
    /// Marks a cluster-node credential.
    pub cluster: bool,
    /// Expiry, unix seconds; `None` when the token has no `exp` (it never expires).
    pub exp: Option<u64>,
    /// Issue time, unix seconds (informational).
    pub iat: Option<u64>,
}

impl Claims {
    /// Reads and checks a token payload. `now` is unix seconds. `exp` is checked when present;
    /// a token without one is accepted (as moq-relay does, and as `moq-token` signs by
    /// default) unless `require_exp` is set.
    pub fn from_payload(payload: &Value, now: u64, require_exp: bool) -> Result<Self, String> {
        let Value::Object(o) = payload else {
            return Err("the payload is not a JSON object".into());
        };
        if o.contains_key("aud") {
            return Err("tokens carrying an audience (aud) are not accepted".into());
        }
        if o.contains_key("publish") || o.contains_key("subscribe") {
            return Err(
                "glob-pattern grants (publish/subscribe claims) are not supported; \
                        sign plain prefixes as put/get"
                    .into(),
            );
        }
        let exp = match o.get("exp") {
            None | Some(Value::Null) if require_exp => {
                return Err("the token has no expiry (exp), and this relay requires one".into())
            }
            None | Some(Value::Null) => None,
            Some(v) => Some(numeric_date(v).ok_or("exp is not a unix time")?),
        };
        if let Some(exp) = exp.filter(|&exp| now >= exp) {
            return Err(format!("the token expired {} s ago", now - exp));
        }
        let iat = match o.get("iat") {
            None | Some(Value::Null) => None,
            Some(v) => Some(numeric_date(v).ok_or("iat is not a unix time")?),
        };
        let root = match o.get("root") {
            None | Some(Value::Null) => String::new(),
            Some(Value::String(root)) => normalized("root", root)?,
            Some(_) => return Err("root must be a string".into()),
        };
        let cluster = match o.get("cluster") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => return Err("cluster must be true or false".into()),
        };
        let mut put = prefixes(o, "put", false)?;
        let mut get = prefixes(o, "get", false)?;
        merge(&mut put, prefixes(o, "pub", true)?);
        merge(&mut get, prefixes(o, "sub", true)?);
        if put.is_empty() && get.is_empty() {
            return Err("the token grants nothing (no put/get or pub/sub)".into());
        }
        Ok(Self {
            root,
            put,
            get,
            cluster,
            exp,
            iat,
        })
    }

    /// Whether every grant lies within the key's scope, role by role.
    pub fn within(&self, scope: &KeyScope) -> bool {
        let covered = |granted: &[String], requested: &[String]| {
            requested.iter().all(|request| {
                let request = path::join(&self.root, request);
                granted
                    .iter()
                    .any(|g| path::has_prefix(&request, &path::join(&scope.root, g)))
            })
        };
        covered(&scope.put, &self.put) && covered(&scope.get, &self.get)
    }
}

/// A NumericDate: a non-negative number of seconds, fractions truncated.
fn numeric_date(v: &Value) -> Option<u64> {
    v.as_u64().or_else(|| {
        v.as_f64()
            .filter(|f| f.is_finite() && *f >= 0.0)
            .map(|f| f as u64)
    })
}

fn normalized(what: &str, raw: &str) -> Result<String, String> {
    path::normalize(raw).map_err(|e| format!("{what} {raw:?}: {e}"))
}

/// Reads one grant claim. Seed-era claims may end in `/*` or `/**`, or be a lone `*` or
/// `**`; the current generation has no wildcards, so there a `*` is just a name.
fn prefixes(o: &Map<String, Value>, name: &str, wildcards: bool) -> Result<Vec<String>, String> {
    let raw = string_or_list(o.get(name)).map_err(|e| format!("{name}: {e}"))?;
    let mut out = Vec::new();
    for grant in raw {
        let grant = if wildcards {
            seed_prefix(&grant).ok_or_else(|| {
                format!("{name} grant {grant:?}: a wildcard may only end a grant (prefix/*)")
            })?
        } else {
            grant.as_str()
        };
        let grant = normalized(name, grant)?;
        if !out.contains(&grant) {
            out.push(grant);
        }
    }
    Ok(out)
}

/// The prefix a seed-era grant means: `my-app/*` and `my-app/**` are `my-app`, `*` and `**`
/// everything. `None` for a wildcard anywhere else.
fn seed_prefix(grant: &str) -> Option<&str> {
    let trimmed = grant.trim_end_matches('/');
    let prefix = if trimmed == "*" || trimmed == "**" {
        ""
    } else if let Some(p) = trimmed
        .strip_suffix("/**")
        .or_else(|| trimmed.strip_suffix("/*"))
    {
        p
    } else {
        trimmed
    };
    (!prefix.contains('*')).then_some(prefix)
}

fn merge(into: &mut Vec<String>, more: Vec<String>) {
    for grant in more {
        if !into.contains(&grant) {
            into.push(grant);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const NOW: u64 = 1_800_000_000;

    fn claims(v: Value) -> Result<Claims, String> {
        Claims::from_payload(&v, NOW, false)
    }

    #[test]
    fn exp_is_checked_when_present_and_required_only_when_asked() {
        let forever = claims(json!({"put": "a"})).unwrap();
        assert_eq!(forever.exp, None, "no exp: accepted, never expires");
        let e = Claims::from_payload(&json!({"put": "a"}), NOW, true).unwrap_err();
        assert!(e.contains("no expiry"), "{e}");
        let dated = Claims::from_payload(&json!({"put": "a", "exp": NOW + 5}), NOW, true);
        assert_eq!(dated.unwrap().exp, Some(NOW + 5));
        // The largest NumericDate a signer can write is accepted as a far-off expiry.
        let far = claims(json!({"put": "a", "exp": u64::MAX})).unwrap();
        assert_eq!(far.exp, Some(u64::MAX));
        assert_eq!(
            claims(json!({"put": "a", "exp": 1e300})).unwrap().exp,
            Some(u64::MAX)
        );
    }

    #[test]
    fn both_generations_are_read_and_merged() {
        let c = claims(json!({"root": "/demo/", "put": "a", "get": ["", "b"], "exp": NOW + 1}))
            .unwrap();
        assert_eq!(c.root, "demo");
        assert_eq!(c.put, ["a"]);
        assert_eq!(c.get, ["", "b"]);
        let seed = claims(
            json!({"pub": "my-app/*", "sub": ["my-app/**", "shared/*", "*"],
            "exp": NOW + 60, "cluster": true}),
        )
        .unwrap();
        assert_eq!(seed.put, ["my-app"]);
        assert_eq!(seed.get, ["my-app", "shared", ""]);
        assert!(seed.cluster);
        let both = claims(json!({"put": ["x"], "pub": ["y/*", "x"], "exp": NOW + 1})).unwrap();
        assert_eq!(both.put, ["x", "y"]);
        // In the current generation `*` is a name, not a wildcard.
        assert_eq!(
            claims(json!({"get": "*", "exp": NOW + 1})).unwrap().get,
            ["*"]
        );
    }

    #[test]
    fn refusals_name_their_reason() {
        for (payload, reason) in [
            (json!({"put": "a", "exp": NOW}), "expired"),
            (json!({"put": "a", "exp": "soon"}), "not a unix time"),
            (json!({"put": "a", "exp": NOW + 1, "aud": "x"}), "audience"),
            (json!({"publish": ["a/**"], "exp": NOW + 1}), "glob-pattern"),
            (json!({"exp": NOW + 1}), "grants nothing"),
            (
                json!({"put": [], "get": [], "exp": NOW + 1}),
                "grants nothing",
            ),
            (json!({"put": [1], "exp": NOW + 1}), "expected strings"),
            (json!({"pub": "a/*/b", "exp": NOW + 1}), "wildcard"),
            (
                json!({"root": 7, "put": "a", "exp": NOW + 1}),
                "root must be",
            ),
            (json!(["put"]), "not a JSON object"),
        ] {
            let e = claims(payload.clone()).expect_err(&payload.to_string());
            assert!(e.contains(reason), "{payload}: {e}");
        }
    }

    #[test]
    fn the_key_scope_caps_every_grant_per_role() {
        let scope = KeyScope {
            root: "demo".into(),
            put: vec!["live".into()],
            get: vec!["".into()],
        };
        let inside = claims(json!({"root": "demo/live", "put": "cam", "get": "", "exp": NOW + 1}));
        assert!(inside.unwrap().within(&scope));
        let sideways = claims(json!({"root": "demo", "put": "lively", "exp": NOW + 1})).unwrap();
        assert!(!sideways.within(&scope));
        let above = claims(json!({"get": "", "exp": NOW + 1})).unwrap();
        assert!(!above.within(&scope));
        let publish_only = KeyScope {
            root: String::new(),
            put: vec![String::new()],
            get: vec![],
        };
        let subscribes = claims(json!({"get": "x", "exp": NOW + 1})).unwrap();
        assert!(!subscribes.within(&publish_only));
    }
}
