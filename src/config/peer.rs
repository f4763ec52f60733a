//! A peer relay's URL (`cluster.peers`, `--cluster-peer`): where to dial it and how to check
//! its certificate.
//!
//! `moqt://host[:port][/path][?query]` dials raw QUIC (moq-lite-05); the port defaults to 443.
//! A `fingerprint=<64 hex digits>` query parameter pins the SHA-256 of the peer's leaf
//! certificate (for self-signed certificates); without it the certificate must chain to the
//! system's roots. The rest of the path and query (a `jwt=` token, say) is sent in SETUP.

use std::fmt;
use std::net::{IpAddr, Ipv6Addr};
use std::str::FromStr;

/// A parsed peer URL.
#[derive(Clone, PartialEq, Eq)]
pub struct PeerUrl {
    /// The host, without brackets for IPv6; also the name its certificate must carry.
    pub host: String,
    pub port: u16,
    /// The path and query sent in SETUP, the fingerprint removed; at least `/`.
    pub path: String,
    /// A pinned SHA-256 of the peer's leaf certificate.
    pub fingerprint: Option<[u8; 32]>,
}

impl PeerUrl {
    /// The host as a TLS server name (IP addresses have none).
    pub fn server_name(&self) -> Option<&str> {
        self.host
            .parse::<IpAddr>()
            .is_err()
            .then_some(self.host.as_str())
    }

    /// `host:port` for address resolution.
    pub fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// The URL without its query, which may hold a token.
impl fmt::Display for PeerUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = self.path.split('?').next().unwrap_or("/");
        write!(f, "moqt://{}{}", self.authority(), path)
    }
}

impl fmt::Debug for PeerUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl FromStr for PeerUrl {
    type Err = String;

    fn from_str(input: &str) -> Result<Self, String> {
        let bad = |why: &str| format!("invalid peer URL {input:?}: {why}");
        let s = input.trim();
        let Some((scheme, rest)) = s.split_once("://") else {
            return Err(bad("missing scheme (expected moqt://host:port)"));
        };
        if !scheme.eq_ignore_ascii_case("moqt") {
            return Err(bad(&format!(
                "scheme {scheme:?} cannot be dialed (raw QUIC peers use moqt://)"
            )));
        }
        let (authority, path_query) = match rest.find(['/', '?']) {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        let (host, port) = split_authority(authority).map_err(|why| bad(&why))?;
        let (path, query) = match path_query.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (path_query, None),
        };
        let mut fingerprint = None;
        let mut kept = Vec::new();
        for pair in query
            .into_iter()
            .flat_map(|q| q.split('&'))
            .filter(|p| !p.is_empty())
        {
            match pair.split_once('=') {
                Some(("fingerprint", hex)) => {
                    fingerprint = Some(parse_fingerprint(hex).map_err(|why| bad(&why))?)
                }
                _ => kept.push(pair),
            }
        }
        let path = if path.is_empty() { "/" } else { path };
        let path = if kept.is_empty() {
            path.to_string()
        } else {
            format!("{path}?{}", kept.join("&"))
        };
        Ok(Self {
            host,
            port,
            path,
            fingerprint,
        })
    }
}

fn split_authority(authority: &str) -> Result<(String, u16), String> {
    if authority.contains('@') {
        return Err("user info is not allowed".into());
    }
    let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
        let (host, after) = rest.split_once(']').ok_or("missing ]")?;
        Ipv6Addr::from_str(host).map_err(|_| "invalid IPv6 address")?;
        (host, after.strip_prefix(':'))
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    let valid_name = !host.is_empty()
        && host
            .split('.')
            .all(|l| !l.is_empty() && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'));
    if host.parse::<IpAddr>().is_err() && !valid_name {
        return Err("invalid host".into());
    }
    let port = match port {
        None => 443,
        Some(p) => match p.parse::<u16>() {
            Ok(0) | Err(_) => return Err("invalid port".into()),
            Ok(p) => p,
        },
    };
    Ok((host.to_ascii_lowercase(), port))
}

fn parse_fingerprint(hex: &str) -> Result<[u8; 32], String> {
    let hex: String = hex.chars().filter(|&c| c != ':').collect();
    if hex.len() != 64 {
        return Err("fingerprint must be 64 hex digits (a SHA-256)".into());
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16)
            .map_err(|_| "fingerprint must be 64 hex digits (a SHA-256)")?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_peer_url_gives_address_path_token_and_pin() {
        let pin = "ab".repeat(32);
        let url: PeerUrl = format!("moqt://Relay.Example.com:4443/?jwt=x.y.z&fingerprint={pin}")
            .parse()
            .unwrap();
        assert_eq!(url.host, "relay.example.com");
        assert_eq!(url.port, 4443);
        assert_eq!(url.path, "/?jwt=x.y.z");
        assert_eq!(url.fingerprint, Some([0xab; 32]));
        assert_eq!(url.server_name(), Some("relay.example.com"));
        assert_eq!(
            url.to_string(),
            "moqt://relay.example.com:4443/",
            "no token shown"
        );

        let url: PeerUrl = "moqt://[::1]".parse().unwrap();
        assert_eq!(
            (url.host.as_str(), url.port, url.path.as_str()),
            ("::1", 443, "/")
        );
        assert_eq!(url.server_name(), None);
        assert_eq!(url.authority(), "[::1]:443");
    }

    #[test]
    fn bad_peer_urls_say_why() {
        for (input, why) in [
            ("relay:4443", "missing scheme"),
            ("https://relay:4443", "cannot be dialed"),
            ("moqt://:4443", "invalid host"),
            ("moqt://relay:0", "invalid port"),
            ("moqt://relay:x", "invalid port"),
            ("moqt://u@relay:1", "user info"),
            ("moqt://[::1:1", "missing ]"),
            ("moqt://relay:1/?fingerprint=abc", "64 hex digits"),
        ] {
            let err = input.parse::<PeerUrl>().unwrap_err();
            assert!(err.contains(why), "{input}: {err}");
        }
    }
}
