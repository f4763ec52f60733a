//! The server side of the WebSocket upgrade: validates the request headers, computes
//! `Sec-WebSocket-Accept`, picks the QMux subprotocol (server order wins, PROTOCOL.md §1.2)
//! and renders the `101 Switching Protocols` response.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;

/// The GUID RFC 6455 §1.3 appends to the client key.
const GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// Our subprotocols, most preferred first, with their QMux wire version and moq-lite ALPN.
const SUPPORTED: [(&str, QmuxVersion, &str); 4] = [
    ("qmux-01.moq-lite-05", QmuxVersion::Qmux01, "moq-lite-05"),
    ("qmux-00.moq-lite-05", QmuxVersion::Qmux00, "moq-lite-05"),
    ("qmux-01.moq-lite-04", QmuxVersion::Qmux01, "moq-lite-04"),
    ("qmux-00.moq-lite-04", QmuxVersion::Qmux00, "moq-lite-04"),
];

/// The QMux wire version a subprotocol selects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QmuxVersion {
    /// `qmux-00`: one bare frame per WebSocket message.
    Qmux00,
    /// `qmux-01`: one record (one or more frames) per WebSocket message.
    Qmux01,
}

/// The parts of an HTTP/1.1 request the handshake looks at.
#[derive(Clone, Copy, Debug)]
pub struct Request<'a> {
    pub method: &'a str,
    pub path: &'a str,
    /// Header `(name, value)` pairs in arrival order; names are matched case-insensitively.
    pub headers: &'a [(&'a str, &'a str)],
}

/// Why an upgrade was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HandshakeError {
    /// No `Upgrade: websocket` or no `upgrade` token in `Connection`.
    NotUpgrade,
    /// `Sec-WebSocket-Key` missing or not 16 base64-encoded bytes.
    BadKey,
    /// `Sec-WebSocket-Version` is not 13.
    BadVersion,
    /// The client offered no subprotocol (we have no legacy SETUP).
    NoSubprotocol,
    /// The client offered subprotocols, none of them ours.
    NoMatch,
}

impl HandshakeError {
    /// The HTTP status to answer with.
    pub fn status(&self) -> u16 {
        match self {
            HandshakeError::BadVersion => 426,
            _ => 400,
        }
    }

    /// A full HTTP/1.1 error response.
    pub fn response(&self) -> String {
        let mut out = match self.status() {
            426 => "HTTP/1.1 426 Upgrade Required\r\nSec-WebSocket-Version: 13\r\n".to_string(),
            _ => "HTTP/1.1 400 Bad Request\r\n".to_string(),
        };
        out.push_str("Content-Length: 0\r\nConnection: close\r\n\r\n");
        out
    }
}

/// A successful negotiation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Accepted {
    /// The `Sec-WebSocket-Accept` value.
    pub accept_key: String,
    /// The chosen `Sec-WebSocket-Protocol`, e.g. `qmux-01.moq-lite-05`.
    pub subprotocol: &'static str,
    /// The QMux wire version it selects.
    pub qmux: QmuxVersion,
    /// The moq-lite version name (ALPN) it selects, e.g. `moq-lite-05`.
    pub moq_lite: &'static str,
    /// The request path (auth uses it, as for WebTransport).
    pub path: String,
}

impl Accepted {
    /// The `101 Switching Protocols` response.
    pub fn response(&self) -> String {
        format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Accept: {}\r\nSec-WebSocket-Protocol: {}\r\n\r\n",
            self.accept_key, self.subprotocol
        )
    }
}

/// `base64(SHA-1(key + GUID))` per RFC 6455 §4.2.2.
pub fn accept_key(key: &str) -> String {
    let mut input = Vec::with_capacity(key.len() + GUID.len());
    input.extend_from_slice(key.as_bytes());
    input.extend_from_slice(GUID.as_bytes());
    let digest = ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, &input);
    STANDARD.encode(digest.as_ref())
}

fn header_values<'a>(req: &'a Request<'a>, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
    req.headers
        .iter()
        .filter(move |(n, _)| n.trim().eq_ignore_ascii_case(name))
        .map(|(_, v)| v.trim())
}

/// Comma-separated tokens across every occurrence of a header.
fn header_tokens<'a>(req: &'a Request<'a>, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
    header_values(req, name)
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

/// Validates the upgrade and picks a subprotocol.
pub fn accept(req: &Request<'_>) -> Result<Accepted, HandshakeError> {
    if !header_tokens(req, "upgrade").any(|t| t.eq_ignore_ascii_case("websocket"))
        || !header_tokens(req, "connection").any(|t| t.eq_ignore_ascii_case("upgrade"))
    {
        return Err(HandshakeError::NotUpgrade);
    }
    let key = header_values(req, "sec-websocket-key")
        .next()
        .ok_or(HandshakeError::BadKey)?;
    // 16 bytes base64-encoded are 24 characters ending in "==".
    if key.len() != 24 || !key.ends_with("==") {
        return Err(HandshakeError::BadKey);
    }
    if header_values(req, "sec-websocket-version").next() != Some("13") {
        return Err(HandshakeError::BadVersion);
    }
    let offered: Vec<&str> = header_tokens(req, "sec-websocket-protocol").collect();
    if offered.is_empty() {
        return Err(HandshakeError::NoSubprotocol);
    }
    let (subprotocol, qmux, moq_lite) = SUPPORTED
        .iter()
        .find(|(name, _, _)| offered.contains(name))
        .copied()
        .ok_or(HandshakeError::NoMatch)?;
    Ok(Accepted {
        accept_key: accept_key(key),
        subprotocol,
        qmux,
        moq_lite,
        path: req.path.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

    fn request(protocols: &[&str]) -> Result<Accepted, HandshakeError> {
        let mut headers = vec![
            ("Host", "relay"),
            ("Upgrade", "websocket"),
            ("Connection", "keep-alive, Upgrade"),
            ("Sec-WebSocket-Key", KEY),
            ("Sec-WebSocket-Version", "13"),
        ];
        for p in protocols {
            headers.push(("Sec-WebSocket-Protocol", p));
        }
        accept(&Request {
            method: "GET",
            path: "/anon",
            headers: &headers,
        })
    }

    #[test]
    fn rfc6455_accept_key() {
        assert_eq!(accept_key(KEY), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    }

    #[test]
    fn server_order_wins() {
        let a = request(&["qmux-00.moq-lite-04, qmux-01.moq-lite-05"]).unwrap();
        assert_eq!(a.subprotocol, "qmux-01.moq-lite-05");
        assert_eq!(a.qmux, QmuxVersion::Qmux01);
        assert_eq!(a.moq_lite, "moq-lite-05");
        assert_eq!(a.path, "/anon");
        assert!(a
            .response()
            .contains("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo="));
        assert!(a
            .response()
            .contains("Sec-WebSocket-Protocol: qmux-01.moq-lite-05"));
    }

    #[test]
    fn moq_clock_lands_on_qmux00_lite04() {
        let a = request(&["qmux-00.moq-lite-04", "qmux-00", "webtransport"]).unwrap();
        assert_eq!(a.subprotocol, "qmux-00.moq-lite-04");
        assert_eq!(a.qmux, QmuxVersion::Qmux00);
        assert_eq!(a.moq_lite, "moq-lite-04");
    }

    #[test]
    fn no_match_and_none_offered_are_400() {
        let e = request(&["qmux-01", "webtransport"]).unwrap_err();
        assert_eq!(e, HandshakeError::NoMatch);
        assert_eq!(e.status(), 400);
        assert_eq!(request(&[]).unwrap_err(), HandshakeError::NoSubprotocol);
        assert!(request(&[])
            .unwrap_err()
            .response()
            .starts_with("HTTP/1.1 400"));
    }

    #[test]
    fn bad_headers() {
        let base = [
            ("Upgrade", "websocket"),
            ("Connection", "Upgrade"),
            ("Sec-WebSocket-Key", KEY),
            ("Sec-WebSocket-Version", "13"),
            ("Sec-WebSocket-Protocol", "qmux-01.moq-lite-05"),
        ];
        let run = |skip: usize, replace: Option<(&'static str, &'static str)>| {
            let mut headers: Vec<(&str, &str)> = base.to_vec();
            headers.remove(skip);
            headers.extend(replace);
            accept(&Request {
                method: "GET",
                path: "/",
                headers: &headers,
            })
        };
        assert_eq!(run(0, None), Err(HandshakeError::NotUpgrade));
        assert_eq!(run(1, None), Err(HandshakeError::NotUpgrade));
        assert_eq!(run(2, None), Err(HandshakeError::BadKey));
        assert_eq!(
            run(2, Some(("Sec-WebSocket-Key", "short"))),
            Err(HandshakeError::BadKey)
        );
        assert_eq!(run(3, None), Err(HandshakeError::BadVersion));
        assert_eq!(
            run(3, Some(("sec-websocket-version", "8"))),
            Err(HandshakeError::BadVersion)
        );
        assert_eq!(run(3, None).unwrap_err().status(), 426);
        assert!(run(4, Some(("upgrade", "x"))).is_err());
    }
}
