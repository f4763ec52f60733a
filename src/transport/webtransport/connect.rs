//! The extended CONNECT that opens a WebTransport session (RFC 9220, PROTOCOL.md §7.2 steps
//! 3–4 and §1.2). Server side: validation, protocol choice, and our response. Client side:
//! the request we send and the reading of the server's answer.

use super::qpack::{self, Headers};
use super::sfv;

/// The moq-lite versions we accept over WebTransport, as `wt-available-protocols` names.
pub const SUPPORTED_PROTOCOLS: [&str; 2] = ["moq-lite-05", "moq-lite-04"];

/// The longest `:path` (path and query) we accept.
pub const MAX_PATH: usize = 8192;

/// A valid WebTransport CONNECT.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectRequest {
    pub authority: String,
    /// Path and query as sent, e.g. `/anon/room?jwt=…`.
    pub path: String,
    pub origin: Option<String>,
    /// The first protocol the client offered that we support (the client's order wins).
    pub protocol: &'static str,
}

/// Why a CONNECT is refused, and the status to answer with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rejection {
    pub status: u16,
    pub reason: &'static str,
}

const fn bad(reason: &'static str) -> Rejection {
    Rejection {
        status: 400,
        reason,
    }
}

fn single<'a>(headers: &'a Headers, name: &str) -> Result<Option<&'a str>, Rejection> {
    match headers.count(name) {
        0 => Ok(None),
        1 => Ok(headers.get(name)),
        _ => Err(bad("duplicate pseudo-header")),
    }
}

impl ConnectRequest {
    /// Validates a decoded request. No `wt-available-protocols`, or no protocol we support,
    /// is a 400 until the legacy `moql` SETUP is supported (PROTOCOL.md §1.2).
    pub fn from_headers(headers: &Headers) -> Result<Self, Rejection> {
        for (name, _) in &headers.fields {
            if name.starts_with(':')
                && !matches!(
                    name.as_str(),
                    ":method" | ":protocol" | ":scheme" | ":authority" | ":path"
                )
            {
                return Err(bad("unknown pseudo-header"));
            }
        }
        if single(headers, ":method")? != Some("CONNECT") {
            return Err(bad("not a CONNECT"));
        }
        if single(headers, ":protocol")? != Some("webtransport") {
            return Err(bad(":protocol is not webtransport"));
        }
        if single(headers, ":scheme")? != Some("https") {
            return Err(bad(":scheme is not https"));
        }
        let authority = match single(headers, ":authority")? {
            Some(a) if !a.is_empty() => a.to_string(),
            _ => return Err(bad("missing :authority")),
        };
        let path = match single(headers, ":path")? {
            Some(p) if p.starts_with('/') && p.len() <= MAX_PATH => p.to_string(),
            Some(_) => return Err(bad("bad :path")),
            None => return Err(bad("missing :path")),
        };
        let origin = headers.get("origin").map(str::to_string);
        let offered = headers
            .get("wt-available-protocols")
            .ok_or(bad("no wt-available-protocols (legacy moql unsupported)"))?;
        let offered =
            sfv::parse_string_list(offered).map_err(|_| bad("malformed wt-available-protocols"))?;
        let protocol = offered
            .iter()
            .find_map(|p| SUPPORTED_PROTOCOLS.iter().find(|&&s| s == p))
            .copied()
            .ok_or(bad("no supported protocol offered"))?;
        Ok(Self {
            authority,
            path,
            origin,
            protocol,
        })
    }

    /// The path without its query.
    pub fn path_only(&self) -> &str {
        self.path.split_once('?').map_or(&self.path, |(p, _)| p)
    }

    /// The query (after `?`), if any.
    pub fn query(&self) -> Option<&str> {
        self.path.split_once('?').map(|(_, q)| q)
    }
}

/// Encodes a response field section: `:status`, `sec-webtransport-http3-draft: draft02`, and
/// `wt-protocol` as an sf-string when a protocol was chosen.
pub fn encode_response(status: u16, protocol: Option<&str>) -> Vec<u8> {
    let status = status.to_string();
    let wt_protocol = protocol.map(sfv::string_item);
    let mut fields = vec![
        (":status", status.as_str()),
        ("sec-webtransport-http3-draft", "draft02"),
    ];
    if let Some(p) = &wt_protocol {
        fields.push(("wt-protocol", p.as_str()));
    }
    qpack::encode(&fields)
}

/// Encodes a client's CONNECT field section for `authority` and `path` (path and query),
/// offering `protocols` in order of preference as `wt-available-protocols`.
pub fn encode_request(authority: &str, path: &str, protocols: &[&str]) -> Vec<u8> {
    let offered: Vec<String> = protocols.iter().map(|p| sfv::string_item(p)).collect();
    let offered = offered.join(", ");
    let mut fields = vec![
        (":method", "CONNECT"),
        (":protocol", "webtransport"),
        (":scheme", "https"),
        (":authority", authority),
        (":path", path),
    ];
    if !protocols.is_empty() {
        fields.push(("wt-available-protocols", offered.as_str()));
    }
    qpack::encode(&fields)
}

/// A server's answer to our CONNECT.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectResponse {
    pub status: u16,
    /// The protocol the server chose (`wt-protocol`), if it named one.
    pub protocol: Option<String>,
}

impl ConnectResponse {
    /// Reads `:status` (a three-digit code, required) and `wt-protocol` (an sf-string).
    pub fn from_headers(headers: &Headers) -> Result<Self, &'static str> {
        if headers.count(":status") != 1 {
            return Err("no single :status");
        }
        let status = headers
            .get(":status")
            .filter(|s| s.len() == 3)
            .and_then(|s| s.parse::<u16>().ok())
            .filter(|s| (100..600).contains(s))
            .ok_or("bad :status")?;
        let protocol = match headers.get("wt-protocol") {
            None => None,
            Some(value) => {
                Some(sfv::parse_string_item(value).map_err(|_| "malformed wt-protocol")?)
            }
        };
        Ok(Self { status, protocol })
    }

    /// Whether the session was accepted (any 2xx).
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(fields: &[(&str, &str)]) -> Headers {
        Headers {
            fields: fields
                .iter()
                .map(|&(n, v)| (n.to_string(), v.to_string()))
                .collect(),
        }
    }

    fn good() -> Vec<(&'static str, &'static str)> {
        vec![
            (":method", "CONNECT"),
            (":protocol", "webtransport"),
            (":scheme", "https"),
            (":authority", "localhost:4443"),
            (":path", "/anon/room?jwt=abc"),
            ("origin", "https://localhost"),
            (
                "wt-available-protocols",
                "\"moq-lite-06\", \"moq-lite-04\", \"moq-lite-05\"",
            ),
        ]
    }

    #[test]
    fn accepts_and_chooses_client_order() {
        let req = ConnectRequest::from_headers(&headers(&good())).unwrap();
        assert_eq!(req.protocol, "moq-lite-04");
        assert_eq!(req.path, "/anon/room?jwt=abc");
        assert_eq!(req.path_only(), "/anon/room");
        assert_eq!(req.query(), Some("jwt=abc"));
        assert_eq!(req.authority, "localhost:4443");
        assert_eq!(req.origin.as_deref(), Some("https://localhost"));
    }

    #[test]
    fn rejections() {
        let cases: [(usize, &str, &str); 8] = [
            (0, ":method", "GET"),
            (1, ":protocol", "websocket"),
            (2, ":scheme", "http"),
            (3, ":authority", ""),
            (4, ":path", "anon"),
            (6, "wt-available-protocols", "\"moql\""),
            (6, "wt-available-protocols", "moq-lite-05"),
            (6, "wt-available-protocols", ""),
        ];
        for (i, name, value) in cases {
            let mut fields = good();
            fields[i] = (name, value);
            let r = ConnectRequest::from_headers(&headers(&fields)).unwrap_err();
            assert_eq!(r.status, 400, "{name}: {value}");
        }
        for missing in [0, 1, 2, 3, 4, 6] {
            let mut fields = good();
            fields.remove(missing);
            assert_eq!(
                ConnectRequest::from_headers(&headers(&fields))
                    .unwrap_err()
                    .status,
                400
            );
        }
        let mut dup = good();
        dup.push((":path", "/other"));
        assert!(ConnectRequest::from_headers(&headers(&dup)).is_err());
        let mut unknown = good();
        unknown.push((":status", "200"));
        assert!(ConnectRequest::from_headers(&headers(&unknown)).is_err());
    }

    #[test]
    fn response() {
        let buf = encode_response(200, Some("moq-lite-05"));
        let h = qpack::decode(&buf).unwrap();
        assert_eq!(h.get(":status"), Some("200"));
        assert_eq!(h.get("sec-webtransport-http3-draft"), Some("draft02"));
        assert_eq!(h.get("wt-protocol"), Some("\"moq-lite-05\""));
        let h = qpack::decode(&encode_response(400, None)).unwrap();
        assert_eq!(h.get(":status"), Some("400"));
        assert_eq!(h.get("wt-protocol"), None);
    }

    #[test]
    fn from_wire() {
        let buf = qpack::encode(&good());
        let req = ConnectRequest::from_headers(&qpack::decode(&buf).unwrap()).unwrap();
        assert_eq!(req.protocol, "moq-lite-04");
    }

    #[test]
    fn client_request_round_trips_through_the_server_checks() {
        let buf = encode_request(
            "localhost:4443",
            "/anon?jwt=x",
            &["moq-lite-05", "moq-lite-04"],
        );
        let h = qpack::decode(&buf).unwrap();
        assert_eq!(
            h.get("wt-available-protocols"),
            Some("\"moq-lite-05\", \"moq-lite-04\"")
        );
        let req = ConnectRequest::from_headers(&h).unwrap();
        assert_eq!(req.protocol, "moq-lite-05");
        assert_eq!(req.path, "/anon?jwt=x");
        assert_eq!(req.authority, "localhost:4443");
        let bare = qpack::decode(&encode_request("h", "/", &[])).unwrap();
        assert_eq!(bare.get("wt-available-protocols"), None);
    }

    #[test]
    fn client_reads_responses() {
        let ok = |buf: Vec<u8>| ConnectResponse::from_headers(&qpack::decode(&buf).unwrap());
        let r = ok(encode_response(200, Some("moq-lite-05"))).unwrap();
        assert!(r.is_success());
        assert_eq!(r.protocol.as_deref(), Some("moq-lite-05"));
        let r = ok(encode_response(403, None)).unwrap();
        assert!(!r.is_success());
        assert_eq!((r.status, r.protocol), (403, None));
        for fields in [
            vec![(":status", "2000")],
            vec![(":status", "abc")],
            vec![(":status", "099")],
            vec![("wt-protocol", "\"x\"")],
            vec![(":status", "200"), (":status", "200")],
            vec![(":status", "200"), ("wt-protocol", "moq-lite-05")],
        ] {
            assert!(ok(qpack::encode(&fields)).is_err(), "{fields:?}");
        }
    }
}
