//! The TOML file as written: serde structs with `deny_unknown_fields` everywhere, holding raw
//! values with their spans (`toml::Spanned`) so `mod.rs` can check them and point at the exact
//! line and column. Also turns toml's serde errors into [`ConfigError`]s with the dotted key,
//! found by walking the document's spans.

use std::fmt;
use std::ops::Range;

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::Deserialize;
use toml::de::{DeTable, DeValue};
use toml::Spanned;

use super::error::{ConfigError, ErrorKind, Position};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(super) struct FileConfig {
    pub log: Option<LogFile>,
    pub server: Option<ServerFile>,
    pub web: Option<WebFile>,
    pub auth: Option<AuthFile>,
    pub relay: Option<RelayFile>,
    pub quic: Option<QuicFile>,
    pub cluster: Option<ClusterFile>,
    pub limits: Option<LimitsFile>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a [log] table")]
pub(super) struct LogFile {
    pub level: Option<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a [server] table")]
pub(super) struct ServerFile {
    pub listen: Option<Spanned<String>>,
    pub shards: Option<Spanned<Int>>,
    pub pin: Option<bool>,
    pub tls: Option<TlsFile>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a [server.tls] table")]
pub(super) struct TlsFile {
    pub cert: Option<Spanned<String>>,
    pub key: Option<Spanned<String>>,
    pub generate: Option<Spanned<Vec<Spanned<String>>>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a [web] table")]
pub(super) struct WebFile {
    pub http: Option<HttpFile>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a [web.http] table")]
pub(super) struct HttpFile {
    pub listen: Option<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "an [auth] table")]
pub(super) struct AuthFile {
    pub public: Option<Spanned<Prefixes>>,
    pub key: Option<Spanned<String>>,
    pub require_exp: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a [relay] table")]
pub(super) struct RelayFile {
    pub linger: Option<Spanned<DurationText>>,
    pub cache_duration: Option<Spanned<DurationText>>,
    pub max_group_bytes: Option<Spanned<Int>>,
    pub max_frame_bytes: Option<Spanned<Int>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a [quic] table")]
pub(super) struct QuicFile {
    pub idle_timeout: Option<Spanned<DurationText>>,
    pub keep_alive: Option<Spanned<DurationText>>,
    pub max_streams: Option<Spanned<Int>>,
    pub handshake_timeout: Option<Spanned<DurationText>>,
    pub retry: Option<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a [limits] table")]
pub(super) struct LimitsFile {
    pub mesh_control_lane: Option<Spanned<Int>>,
    pub mesh_data_lane: Option<Spanned<Int>>,
    pub mesh_control_backlog: Option<Spanned<Int>>,
    pub mesh_data_backlog: Option<Spanned<Int>>,
    pub setup_timeout: Option<Spanned<DurationText>>,
    pub unvalidated_handshakes: Option<Spanned<Int>>,
    pub handshakes_per_ip: Option<Spanned<Int>>,
    pub proven_handshakes_per_ip: Option<Spanned<Int>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a [cluster] table")]
pub(super) struct ClusterFile {
    pub root: Option<Spanned<String>>,
    pub node: Option<Spanned<String>>,
    pub id: Option<Spanned<Int>>,
    pub peers: Option<Spanned<Vec<String>>>,
}

/// A TOML integer, with friendlier messages than serde's `expected i64`.
#[derive(Debug, Clone, Copy)]
pub(super) struct Int(pub i64);

impl<'de> Deserialize<'de> for Int {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Int;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an integer")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Int, E> {
                Ok(Int(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Int, E> {
                i64::try_from(v)
                    .map(Int)
                    .map_err(|_| E::custom(format!("integer {v} is out of range")))
            }
            fn visit_i128<E: de::Error>(self, v: i128) -> Result<Int, E> {
                i64::try_from(v)
                    .map(Int)
                    .map_err(|_| E::custom(format!("integer {v} is out of range")))
            }
            fn visit_u128<E: de::Error>(self, v: u128) -> Result<Int, E> {
                i64::try_from(v)
                    .map(Int)
                    .map_err(|_| E::custom(format!("integer {v} is out of range")))
            }
        }
        d.deserialize_i64(V)
    }
}

/// A duration as written (`"5s"`); parsed by `mod.rs` so the error can name the key.
#[derive(Debug, Clone)]
pub(super) struct DurationText(pub String);

impl<'de> Deserialize<'de> for DurationText {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = DurationText;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(r#"a duration string such as "5s", "250ms", "2m" or "1h""#)
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<DurationText, E> {
                Ok(DurationText(v.to_string()))
            }
        }
        d.deserialize_str(V)
    }
}

/// `public = "anon"` or `public = ["anon", "demo"]`.
#[derive(Debug, Clone, Default)]
pub(super) struct Prefixes(pub Vec<String>);

impl<'de> Deserialize<'de> for Prefixes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Prefixes;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a prefix string or a list of prefix strings")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Prefixes, E> {
                Ok(Prefixes(vec![v.to_string()]))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Prefixes, A::Error> {
                let mut out = Vec::new();
                while let Some(s) = seq.next_element::<String>()? {
                    out.push(s);
                }
                Ok(Prefixes(out))
            }
        }
        d.deserialize_any(V)
    }
}

/// Parses the file's text. Errors carry the dotted key and position but not the file name.
pub(super) fn parse(text: &str) -> Result<FileConfig, ConfigError> {
    // Parse the syntax first, so syntax errors and schema errors are told apart.
    let doc = DeTable::parse(text).map_err(|e| {
        ConfigError::new(ErrorKind::Syntax, one_line(e.message()))
            .at(e.span().map(|s| Position::of(text, s.start)))
    })?;
    toml::from_str::<FileConfig>(text).map_err(|e| schema_error(text, doc.get_ref(), &e))
}

fn one_line(message: &str) -> String {
    message
        .trim()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ")
}

fn schema_error(text: &str, doc: &DeTable<'_>, e: &toml::de::Error) -> ConfigError {
    let message = one_line(e.message());
    let span = e.span();
    let key = span.as_ref().and_then(|s| key_at(doc, s));
    let position = span.map(|s| Position::of(text, s.start));

    // serde: "unknown field `lisen`, expected one of `listen`, `shards`" (or "expected `x`",
    // "expected `x` or `y`", "there are no fields").
    if let Some(rest) = message.strip_prefix("unknown field `") {
        if let Some((field, expected)) = rest.split_once("`, ") {
            let key = key.unwrap_or_else(|| field.to_string());
            return ConfigError::new(ErrorKind::UnknownKey, expected)
                .with_key(key)
                .at(position);
        }
    }
    let mut err = ConfigError::new(ErrorKind::Invalid, message).at(position);
    if let Some(key) = key {
        err = err.with_key(key);
    }
    err
}

/// The dotted path of the key or value whose span contains `span.start`: the deepest match.
pub(super) fn key_at(doc: &DeTable<'_>, span: &Range<usize>) -> Option<String> {
    let at = span.start;
    let contains = |s: Range<usize>| s.contains(&at) || (s.start == at && s.end == at);
    fn walk_value(
        value: &Spanned<DeValue<'_>>,
        path: &str,
        contains: &dyn Fn(Range<usize>) -> bool,
    ) -> Option<String> {
        match value.get_ref() {
            DeValue::Table(t) => {
                if let Some(found) = walk_table(t, path, contains) {
                    return Some(found);
                }
            }
            DeValue::Array(a) => {
                for (i, item) in a.iter().enumerate() {
                    if let Some(found) = walk_value(item, &format!("{path}[{i}]"), contains) {
                        return Some(found);
                    }
                }
            }
            _ => {}
        }
        contains(value.span()).then(|| path.to_string())
    }
    fn walk_table(
        table: &DeTable<'_>,
        prefix: &str,
        contains: &dyn Fn(Range<usize>) -> bool,
    ) -> Option<String> {
        // Check every key before any value: a parent table's span may cover a child's key.
        let mut fallback = None;
        for (key, value) in table {
            let path = join_key(prefix, key.get_ref());
            if contains(key.span()) {
                return Some(path);
            }
            let scalar = !matches!(value.get_ref(), DeValue::Table(_) | DeValue::Array(_));
            if let Some(found) = walk_value(value, &path, contains) {
                if scalar || found != path {
                    return Some(found);
                }
                // A table or array matched only by its own span: keep looking deeper elsewhere.
                fallback.get_or_insert(found);
            }
        }
        fallback
    }
    walk_table(doc, "", &contains)
}

fn join_key(prefix: &str, key: &str) -> String {
    let bare = !key.is_empty()
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    let key = if bare {
        key.to_string()
    } else {
        format!("{key:?}")
    };
    if prefix.is_empty() {
        key
    } else {
        format!("{prefix}.{key}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> ConfigError {
        parse(text).unwrap_err()
    }

    #[test]
    fn unknown_keys_name_the_dotted_path() {
        let e = err("[server]\nlisten = \"[::]:1\"\nlisen = 1\n");
        assert_eq!(e.kind(), ErrorKind::UnknownKey);
        assert_eq!(e.key(), Some("server.lisen"));
        assert_eq!(e.position(), Some(Position { line: 3, column: 1 }));
        assert!(e.to_string().contains("expected one of `listen`"), "{e}");

        let e = err("[server.tls]\ngenerat = []\n");
        assert_eq!(e.key(), Some("server.tls.generat"));
        let e = err("server = { tls = { foo = 1 } }");
        assert_eq!(e.key(), Some("server.tls.foo"));
        let e = err("[serve]\n");
        assert_eq!(e.key(), Some("serve"));
        let e = err("[log]\nlevel = \"info\"\n[relay]\n\"a.b\" = 1\n");
        assert_eq!(e.key(), Some("relay.\"a.b\""));
    }

    #[test]
    fn type_errors_name_the_key() {
        let e = err("[server]\nlisten = 5\n");
        assert_eq!(e.kind(), ErrorKind::Invalid);
        assert_eq!(e.key(), Some("server.listen"));
        assert_eq!(
            e.position(),
            Some(Position {
                line: 2,
                column: 10
            })
        );
        let e = err("[server.tls]\ngenerate = [\"a\", 1]\n");
        assert_eq!(e.key(), Some("server.tls.generate[1]"));
        let e = err("[relay]\nlinger = 5\n");
        assert_eq!(e.key(), Some("relay.linger"));
        assert!(e.reason().contains("duration string"), "{e}");
        let e = err("[server]\nshards = \"two\"\n");
        assert!(e.reason().contains("expected an integer"), "{e}");
        let e = err("[auth]\npublic = 1\n");
        assert_eq!(e.key(), Some("auth.public"));
        let e = err("web = 1\n");
        assert_eq!(e.key(), Some("web"));
        assert!(e.reason().contains("[web] table"), "{e}");
    }

    #[test]
    fn syntax_errors_have_positions() {
        let e = err("[server]\nlisten = \n");
        assert_eq!(e.kind(), ErrorKind::Syntax);
        assert_eq!(e.position().map(|p| p.line), Some(2));
        let e = err("[log]\n[log]\n");
        assert_eq!(e.kind(), ErrorKind::Syntax);
        assert!(e.reason().contains("duplicate"), "{e}");
    }

    #[test]
    fn public_accepts_string_or_list() {
        let f = parse("[auth]\npublic = \"anon\"\n").unwrap();
        assert_eq!(f.auth.unwrap().public.unwrap().into_inner().0, ["anon"]);
        let f = parse("[auth]\npublic = [\"a\", \"b\"]\n").unwrap();
        assert_eq!(f.auth.unwrap().public.unwrap().into_inner().0, ["a", "b"]);
    }
}
