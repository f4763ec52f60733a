//! Value parsers shared by the TOML file and the command line: humane durations, socket and
//! `host:port` addresses, public prefixes, certificate host names, shard counts, hop ids and
//! log filters.
//!
//! Every parser returns `Result<T, String>`; the string is the reason only (no key, no file),
//! so the same function serves clap's `value_parser` (which prefixes the flag) and the file
//! loader (which prefixes `file: key:` and appends the position).

use std::fmt;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::str::FromStr;
use std::time::Duration;

use crate::transport::quic::RetryMode;

/// Largest shard count accepted (`server.shards`, `--shards`).
pub const MAX_SHARDS: usize = 256;

/// Hop ids (`cluster.id`) must stay below 2^53 so JavaScript peers can carry them exactly.
pub const MAX_HOP_ID: u64 = (1 << 53) - 1;

/// Longest duration any key accepts; beyond it `Instant` arithmetic stops being sensible.
pub const MAX_DURATION: Duration = Duration::from_secs(365 * 24 * 3600);

/// Most path segments a broadcast path may have (PROTOCOL.md §2.2).
pub const MAX_PATH_PARTS: usize = 32;

const DURATION_HINT: &str =
    r#"expected a number and a unit, e.g. "5s", "250ms", "2m", "1h" or "1m30s""#;

/// Parses a humane duration: one or more `<number><unit>` parts, e.g. `5s`, `250ms`, `1.5s`,
/// `2m`, `1h30m`. Units: `ns`, `us`/`µs`, `ms`, `s`, `m`/`min`, `h`, `d`. A bare `0` is zero.
pub fn parse_duration(input: &str) -> Result<Duration, String> {
    let bad = |why: &str| format!("invalid duration {input:?}: {why} ({DURATION_HINT})");
    let s = input.trim();
    if s.is_empty() {
        return Err(bad("empty"));
    }
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    let mut total: u128 = 0; // nanoseconds
    let mut rest = s;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let number = &rest[..num_len];
        rest = rest[num_len..].trim_start();
        let unit_len = rest
            .find(|c: char| !c.is_alphabetic())
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        rest = rest[unit_len..].trim_start();

        if number.is_empty() {
            return Err(bad("expected a number"));
        }
        let scale: u128 = match unit {
            "ns" => 1,
            "us" | "µs" => 1_000,
            "ms" => 1_000_000,
            "s" | "sec" | "secs" => 1_000_000_000,
            "m" | "min" | "mins" => 60 * 1_000_000_000,
            "h" | "hr" | "hrs" => 3_600 * 1_000_000_000,
            "d" => 86_400 * 1_000_000_000,
            "" => return Err(bad(&format!("missing unit after {number:?}"))),
            other => return Err(bad(&format!("unknown unit {other:?}"))),
        };
        let (int, frac) = number.split_once('.').unwrap_or((number, ""));
        if (int.is_empty() && frac.is_empty()) || frac.contains('.') {
            return Err(bad(&format!("malformed number {number:?}")));
        }
        if int.len() > 20 || frac.len() > 18 {
            return Err(bad("number too long"));
        }
        let int: u128 = if int.is_empty() {
            0
        } else {
            int.parse().map_err(|_| bad("malformed number"))?
        };
        let mut part = int.checked_mul(scale).ok_or_else(|| bad("too large"))?;
        if !frac.is_empty() {
            let digits: u128 = frac.parse().map_err(|_| bad("malformed number"))?;
            part += digits * scale / 10u128.pow(frac.len() as u32);
        }
        total = total.checked_add(part).ok_or_else(|| bad("too large"))?;
    }
    let secs = u64::try_from(total / 1_000_000_000).map_err(|_| bad("too large"))?;
    Ok(Duration::new(secs, (total % 1_000_000_000) as u32))
}

/// Formats a duration the way [`parse_duration`] reads it: `0s`, `250ms`, `5s`, `1m30s`, `1d2h`.
pub fn format_duration(d: Duration) -> String {
    if d.is_zero() {
        return "0s".to_string();
    }
    let secs = d.as_secs();
    let nanos = d.subsec_nanos();
    let parts = [
        (secs / 86_400, "d"),
        (secs % 86_400 / 3_600, "h"),
        (secs % 3_600 / 60, "m"),
        (secs % 60, "s"),
        (u64::from(nanos / 1_000_000), "ms"),
        (u64::from(nanos / 1_000 % 1_000), "us"),
        (u64::from(nanos % 1_000), "ns"),
    ];
    let mut out = String::new();
    for (n, unit) in parts {
        if n != 0 {
            out.push_str(&n.to_string());
            out.push_str(unit);
        }
    }
    out
}

/// `quic.retry`: `auto`, `always` or `never`.
pub fn parse_retry(input: &str) -> Result<RetryMode, String> {
    match input {
        "auto" => Ok(RetryMode::Auto),
        "always" => Ok(RetryMode::Always),
        "never" => Ok(RetryMode::Never),
        other => Err(format!(
            "unknown mode \"{other}\" (expected \"auto\", \"always\" or \"never\")"
        )),
    }
}

/// A duration that must be non-zero (and at most [`MAX_DURATION`]).
pub fn parse_nonzero_duration(input: &str) -> Result<Duration, String> {
    let d = parse_duration(input)?;
    check_duration(d, false)?;
    Ok(d)
}

/// A duration that may be zero (and at most [`MAX_DURATION`]).
pub fn parse_any_duration(input: &str) -> Result<Duration, String> {
    let d = parse_duration(input)?;
    check_duration(d, true)?;
    Ok(d)
}

pub(crate) fn check_duration(d: Duration, zero_ok: bool) -> Result<(), String> {
    if d.is_zero() && !zero_ok {
        return Err("must be greater than zero".to_string());
    }
    if d > MAX_DURATION {
        return Err(format!(
            "{} is too long (at most {})",
            format_duration(d),
            format_duration(MAX_DURATION)
        ));
    }
    Ok(())
}

/// Parses an `ip:port` socket address, `[::]:4443` or `0.0.0.0:4443`.
pub fn parse_socket_addr(input: &str) -> Result<SocketAddr, String> {
    SocketAddr::from_str(input.trim()).map_err(|_| {
        format!(r#"invalid socket address {input:?} (expected ip:port, e.g. "[::]:4443" or "0.0.0.0:4443")"#)
    })
}

/// A `host:port` address another relay dials (`cluster.root`, `cluster.node`). The host is a
/// DNS name or an IP address (IPv6 in brackets when written); the port is non-zero.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct HostPort {
    /// The host, without brackets for IPv6.
    pub host: String,
    pub port: u16,
}

impl fmt::Display for HostPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

impl FromStr for HostPort {
    type Err = String;

    fn from_str(input: &str) -> Result<Self, String> {
        let bad = |why: &str| {
            format!(
                r#"invalid address {input:?}: {why} (expected host:port, e.g. "relay.example.com:4443")"#
            )
        };
        let s = input.trim();
        let (host, port) = if let Some(rest) = s.strip_prefix('[') {
            let (host, port) = rest.split_once("]:").ok_or_else(|| bad("missing ]:port"))?;
            Ipv6Addr::from_str(host).map_err(|_| bad("invalid IPv6 address"))?;
            (host, port)
        } else {
            let (host, port) = s.rsplit_once(':').ok_or_else(|| bad("missing :port"))?;
            if host.contains(':') {
                return Err(bad("write IPv6 addresses in brackets, e.g. [::1]:4443"));
            }
            if host.parse::<IpAddr>().is_err() && !is_dns_name(host, false) {
                return Err(bad("invalid host name"));
            }
            (host, port)
        };
        let port: u16 = port.parse().map_err(|_| bad("invalid port"))?;
        if port == 0 {
            return Err(bad("port must not be 0"));
        }
        Ok(HostPort {
            host: host.to_ascii_lowercase(),
            port,
        })
    }
}

/// Parses a `host:port` address, see [`HostPort`].
pub fn parse_host_port(input: &str) -> Result<HostPort, String> {
    input.parse()
}

/// Normalizes a public (anonymous) prefix (PROTOCOL.md §8.5): trims `/`, collapses `//`, and
/// accepts moq-relay's pattern spelling, `anon/**` = `anon` and `**` = `""` (everything).
pub fn normalize_public_prefix(input: &str) -> Result<String, String> {
    let s = input.trim();
    let s = if s == "**" {
        ""
    } else {
        s.strip_suffix("/**").unwrap_or(s)
    };
    if s.contains('*') {
        return Err(format!(
            r#"invalid public prefix {input:?}: the only wildcard accepted is a trailing "/**" (write "anon" or "anon/**"; "" or "**" makes everything public)"#
        ));
    }
    if s.chars().any(|c| c.is_control()) {
        return Err(format!(
            "invalid public prefix {input:?}: control characters are not allowed"
        ));
    }
    let parts: Vec<&str> = s.split('/').filter(|p| !p.is_empty()).collect();
    if parts.len() > MAX_PATH_PARTS {
        return Err(format!(
            "invalid public prefix {input:?}: more than {MAX_PATH_PARTS} path segments"
        ));
    }
    Ok(parts.join("/"))
}

/// Validates a host name for a generated certificate: a DNS name (a leading `*.` wildcard is
/// allowed) or an IP address (`[::1]` brackets are removed). DNS names are lower-cased.
pub fn parse_tls_name(input: &str) -> Result<String, String> {
    let s = input.trim();
    let unbracketed = s
        .strip_prefix('[')
        .and_then(|s| s.strip_suffix(']'))
        .unwrap_or(s);
    if let Ok(ip) = unbracketed.parse::<IpAddr>() {
        return Ok(ip.to_string());
    }
    if is_dns_name(s, true) {
        return Ok(s.to_ascii_lowercase());
    }
    Err(format!(
        r#"invalid certificate host name {input:?} (expected a DNS name such as "localhost" or "relay.example.com", or an IP address)"#
    ))
}

/// Whether `s` is a syntactically valid DNS name (letters, digits, `-`, `_`; labels of 1 to 63
/// characters; at most 253 in all). With `wildcard`, the first label may be `*`.
pub(crate) fn is_dns_name(s: &str, wildcard: bool) -> bool {
    if s.is_empty() || s.len() > 253 {
        return false;
    }
    s.split('.').enumerate().all(|(i, label)| {
        if wildcard && i == 0 && label == "*" {
            return s.len() > 2;
        }
        !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    })
}

/// Parses a shard count, 1 to [`MAX_SHARDS`].
pub fn parse_shards(input: &str) -> Result<usize, String> {
    let n: i64 = input
        .trim()
        .parse()
        .map_err(|_| format!("invalid shard count {input:?} (expected an integer)"))?;
    check_shards(n)
}

pub(crate) fn check_shards(n: i64) -> Result<usize, String> {
    if (1..=MAX_SHARDS as i64).contains(&n) {
        Ok(n as usize)
    } else {
        Err(format!("must be between 1 and {MAX_SHARDS} (got {n})"))
    }
}

/// Parses a cluster hop id: non-zero and below 2^53.
pub fn parse_cluster_id(input: &str) -> Result<u64, String> {
    let n: i64 = input
        .trim()
        .parse()
        .map_err(|_| format!("invalid cluster id {input:?} (expected an integer)"))?;
    check_cluster_id(n)
}

pub(crate) fn check_cluster_id(n: i64) -> Result<u64, String> {
    if n >= 1 && n as u64 <= MAX_HOP_ID {
        Ok(n as u64)
    } else {
        Err(format!(
            "must be non-zero and below 2^53 (1 to {MAX_HOP_ID}; got {n})"
        ))
    }
}

/// Parses a positive integer (a byte or stream count).
pub fn parse_positive(input: &str) -> Result<u64, String> {
    let n: i64 = input
        .trim()
        .parse()
        .map_err(|_| format!("invalid number {input:?} (expected a positive integer)"))?;
    check_positive(n)
}

pub(crate) fn check_positive(n: i64) -> Result<u64, String> {
    if n >= 1 {
        Ok(n as u64)
    } else {
        Err(format!("must be a positive integer (got {n})"))
    }
}

/// Validates a log filter: a bare level (`off`, `error`, `warn`, `info`, `debug`, `trace`), or
/// an `EnvFilter` directive list such as `info,moq_relay=debug`.
pub fn parse_log_level(input: &str) -> Result<String, String> {
    const LEVELS: [&str; 6] = ["off", "error", "warn", "info", "debug", "trace"];
    let s = input.trim();
    let is_directive = s.contains([',', '=', '[', ':']);
    let ok = if is_directive {
        tracing_subscriber::EnvFilter::builder()
            .parse(s)
            .map(|_| ())
            .map_err(|e| e.to_string())
    } else if LEVELS.iter().any(|l| l.eq_ignore_ascii_case(s)) {
        Ok(())
    } else {
        Err("not a level".to_string())
    };
    match ok {
        Ok(()) => Ok(s.to_string()),
        Err(why) => Err(format!(
            "invalid log level {input:?}: {why} (expected one of {}, or a filter like \"info,moq_relay=debug\")",
            LEVELS.join(", ")
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        let ms = Duration::from_millis;
        let s = Duration::from_secs;
        assert_eq!(parse_duration("5s"), Ok(s(5)));
        assert_eq!(parse_duration("250ms"), Ok(ms(250)));
        assert_eq!(parse_duration("2m"), Ok(s(120)));
        assert_eq!(parse_duration("1h"), Ok(s(3600)));
        assert_eq!(parse_duration("1d"), Ok(s(86_400)));
        assert_eq!(parse_duration("1m30s"), Ok(s(90)));
        assert_eq!(parse_duration(" 1h 2m 3s "), Ok(s(3723)));
        assert_eq!(parse_duration("1.5s"), Ok(ms(1500)));
        assert_eq!(parse_duration(".5s"), Ok(ms(500)));
        assert_eq!(parse_duration("10us"), Ok(Duration::from_micros(10)));
        assert_eq!(parse_duration("10µs"), Ok(Duration::from_micros(10)));
        assert_eq!(parse_duration("7ns"), Ok(Duration::from_nanos(7)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("5 s"), Ok(s(5)));
        for bad in [
            "", "5", "s", "5x", "-5s", "1..5s", "5s3", "1.2.3s", "abc", "5 5s",
        ] {
            let e = parse_duration(bad).unwrap_err();
            assert!(e.contains("invalid duration"), "{bad:?}: {e}");
        }
        assert!(parse_duration("99999999999999999999999d").is_err());
        assert!(parse_duration("5x")
            .unwrap_err()
            .contains("unknown unit \"x\""));
        assert!(parse_duration("5").unwrap_err().contains("missing unit"));
    }

    #[test]
    fn duration_checks() {
        assert!(parse_nonzero_duration("0s").is_err());
        assert!(parse_any_duration("0s").is_ok());
        assert!(parse_any_duration("366d").unwrap_err().contains("too long"));
    }

    #[test]
    fn durations_format_round_trip() {
        for (d, text) in [
            (Duration::ZERO, "0s"),
            (Duration::from_millis(250), "250ms"),
            (Duration::from_secs(5), "5s"),
            (Duration::from_secs(90), "1m30s"),
            (Duration::from_secs(3600), "1h"),
            (Duration::from_millis(1500), "1s500ms"),
            (Duration::from_nanos(86_400_000_000_001), "1d1ns"),
        ] {
            assert_eq!(format_duration(d), text);
            assert_eq!(parse_duration(text), Ok(d));
        }
    }

    #[test]
    fn socket_addrs() {
        assert_eq!(
            parse_socket_addr("[::]:4443").unwrap(),
            "[::]:4443".parse().unwrap()
        );
        assert!(parse_socket_addr("0.0.0.0:1").is_ok());
        let e = parse_socket_addr("foo").unwrap_err();
        assert!(e.starts_with(r#"invalid socket address "foo""#), "{e}");
        assert!(parse_socket_addr("localhost:4443").is_err());
        assert!(parse_socket_addr("[::]").is_err());
    }

    #[test]
    fn host_ports() {
        let hp: HostPort = "Relay.Example.com:4443".parse().unwrap();
        assert_eq!(hp.host, "relay.example.com");
        assert_eq!(hp.port, 4443);
        assert_eq!(hp.to_string(), "relay.example.com:4443");
        let v6: HostPort = "[::1]:4443".parse().unwrap();
        assert_eq!(v6.host, "::1");
        assert_eq!(v6.to_string(), "[::1]:4443");
        assert_eq!("10.0.0.1:1".parse::<HostPort>().unwrap().host, "10.0.0.1");
        for bad in [
            "foo",
            "foo:",
            "foo:0",
            "foo:70000",
            "::1:4443",
            "[zz]:1",
            "a b:1",
            ":1",
        ] {
            assert!(bad.parse::<HostPort>().is_err(), "{bad}");
        }
    }

    #[test]
    fn public_prefixes() {
        let n = |s| normalize_public_prefix(s).unwrap();
        assert_eq!(n("anon"), "anon");
        assert_eq!(n("/anon/"), "anon");
        assert_eq!(n("anon/**"), "anon");
        assert_eq!(n("/foo//bar/"), "foo/bar");
        assert_eq!(n("**"), "");
        assert_eq!(n(""), "");
        assert_eq!(n("/"), "");
        assert!(normalize_public_prefix("anon/*").is_err());
        assert!(normalize_public_prefix("a/**/b").is_err());
        assert!(normalize_public_prefix(&"a/".repeat(33)).is_err());
    }

    #[test]
    fn tls_names() {
        assert_eq!(parse_tls_name("localhost").unwrap(), "localhost");
        assert_eq!(
            parse_tls_name("Relay.Example.COM").unwrap(),
            "relay.example.com"
        );
        assert_eq!(parse_tls_name("*.example.com").unwrap(), "*.example.com");
        assert_eq!(parse_tls_name("127.0.0.1").unwrap(), "127.0.0.1");
        assert_eq!(parse_tls_name("[::1]").unwrap(), "::1");
        for bad in [
            "",
            "a b",
            "-a.com",
            "a..b",
            "*",
            "a.*.com",
            "ex\u{e4}mple.com",
            "a:b",
        ] {
            assert!(parse_tls_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn counts_and_ids() {
        assert_eq!(parse_shards("1"), Ok(1));
        assert_eq!(parse_shards("256"), Ok(256));
        assert!(parse_shards("0").is_err());
        assert!(parse_shards("257").is_err());
        assert!(parse_shards("x").is_err());
        assert_eq!(parse_cluster_id("123"), Ok(123));
        assert_eq!(parse_cluster_id(&MAX_HOP_ID.to_string()), Ok(MAX_HOP_ID));
        assert!(parse_cluster_id("0").is_err());
        assert!(parse_cluster_id(&(1u64 << 53).to_string()).is_err());
        assert!(parse_cluster_id("-1").is_err());
        assert!(parse_positive("0").is_err());
        assert_eq!(parse_positive("10000"), Ok(10_000));
    }

    #[test]
    fn log_levels() {
        assert_eq!(parse_log_level("info").unwrap(), "info");
        assert_eq!(parse_log_level("DEBUG").unwrap(), "DEBUG");
        assert!(parse_log_level("info,moq_relay=debug").is_ok());
        assert!(parse_log_level("debg")
            .unwrap_err()
            .contains("invalid log level"));
        assert!(parse_log_level("info,x=notalevel").is_err());
    }
}
