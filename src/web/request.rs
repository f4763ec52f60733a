//! The HTTP/1.1 request head the TCP listener reads before it routes a request: parsed by
//! `httparse` (sans-IO, no allocation of its own), then held to our bounds and turned into an
//! owned [`Request`] with lowercased header names.

/// Largest request head (request line and headers) we accept.
pub const MAX_HEAD: usize = 16 * 1024;
/// Most header lines we accept.
pub const MAX_HEADERS: usize = 64;

/// A parsed request head.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    pub method: String,
    /// The request target as sent: path and optional `?query`.
    pub target: String,
    /// Header names lowercased, values trimmed, in order.
    pub headers: Vec<(String, String)>,
}

impl Request {
    /// The first value of header `name` (lowercase).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The path without the query.
    pub fn path(&self) -> &str {
        self.target
            .split_once('?')
            .map_or(self.target.as_str(), |(p, _)| p)
    }

    /// The value of query parameter `key`, form-decoded.
    pub fn query(&self, key: &str) -> Option<String> {
        let (_, query) = self.target.split_once('?')?;
        query
            .split('&')
            .filter_map(|kv| kv.split_once('=').or(Some((kv, ""))))
            .find(|(k, _)| *k == key)
            .map(|(_, v)| form_decode(v))
    }

    /// Whether the client wants the connection kept open after this request.
    pub fn keep_alive(&self) -> bool {
        !self
            .header("connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"))
    }
}

/// Why a request head was refused, with the status to answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeadError {
    /// 400: not HTTP/1.x, or a malformed line.
    Malformed,
    /// 431: the head or the header count is over the bounds.
    TooLarge,
    /// 501: a request body we do not accept (Content-Length > 0 or chunked).
    Body,
}

impl HeadError {
    pub fn status(self) -> u16 {
        match self {
            HeadError::Malformed => 400,
            HeadError::TooLarge => 431,
            HeadError::Body => 501,
        }
    }
}

/// Parses a request head from the front of `buf`: `Ok(None)` while incomplete, else the
/// request and the bytes it used.
pub fn parse(buf: &[u8]) -> Result<Option<(Request, usize)>, HeadError> {
    let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut head = httparse::Request::new(&mut slots);
    let used = match head.parse(buf) {
        Ok(httparse::Status::Complete(used)) => used,
        Ok(httparse::Status::Partial) if buf.len() > MAX_HEAD => return Err(HeadError::TooLarge),
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err(HeadError::TooLarge),
        Err(_) => return Err(HeadError::Malformed),
    };
    if used > MAX_HEAD {
        return Err(HeadError::TooLarge);
    }
    // A complete parse has all three; only origin-form targets ("/path?query") are ours.
    let (Some(method), Some(target)) = (head.method, head.path) else {
        return Err(HeadError::Malformed);
    };
    if !target.starts_with('/') {
        return Err(HeadError::Malformed);
    }
    let headers = head
        .headers
        .iter()
        .map(|h| {
            let value = std::str::from_utf8(h.value).map_err(|_| HeadError::Malformed)?;
            Ok((h.name.to_ascii_lowercase(), value.trim().to_string()))
        })
        .collect::<Result<Vec<_>, HeadError>>()?;
    let request = Request {
        method: method.to_string(),
        target: target.to_string(),
        headers,
    };
    let has_body = request
        .header("content-length")
        .is_some_and(|v| v.trim() != "0")
        || request.header("transfer-encoding").is_some();
    if has_body {
        return Err(HeadError::Body);
    }
    Ok(Some((request, used)))
}

/// `application/x-www-form-urlencoded` decoding: `+` is a space, `%XX` a byte.
fn form_decode(value: &str) -> String {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_request_head_and_its_query() {
        let raw = b"GET /fetch/anon/clock/seconds?group=12&jwt=a%2Bb HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\nrest";
        let (request, used) = parse(raw).unwrap().unwrap();
        assert_eq!(used, raw.len() - 4);
        assert_eq!(&raw[used..], b"rest");
        assert_eq!(request.method, "GET");
        assert_eq!(request.path(), "/fetch/anon/clock/seconds");
        assert_eq!(request.query("group").as_deref(), Some("12"));
        assert_eq!(request.query("jwt").as_deref(), Some("a+b"));
        assert_eq!(request.header("host"), Some("x"));
        assert!(!request.keep_alive());
    }

    #[test]
    fn incomplete_malformed_and_oversized_heads() {
        assert_eq!(parse(b"GET / HTTP/1.1\r\nHost: x\r\n"), Ok(None));
        assert_eq!(parse(b"GET / SPDY/3\r\n\r\n"), Err(HeadError::Malformed));
        assert_eq!(
            parse(b"GET nope HTTP/1.1\r\n\r\n"),
            Err(HeadError::Malformed)
        );
        assert_eq!(
            parse(b"GET / HTTP/1.1\r\nbad header\r\n\r\n"),
            Err(HeadError::Malformed)
        );
        assert_eq!(
            parse(b"\xff\xfe / HTTP/1.1\r\n\r\n"),
            Err(HeadError::Malformed)
        );
        let huge = vec![b'a'; MAX_HEAD + 1];
        assert_eq!(parse(&huge), Err(HeadError::TooLarge));
        let mut many = b"GET / HTTP/1.1\r\n".to_vec();
        for i in 0..=MAX_HEADERS {
            many.extend_from_slice(format!("x-{i}: y\r\n").as_bytes());
        }
        many.extend_from_slice(b"\r\n");
        assert_eq!(parse(&many), Err(HeadError::TooLarge));
        assert_eq!(
            parse(b"POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\n"),
            Err(HeadError::Body)
        );
    }

    #[test]
    fn form_decoding_tolerates_broken_escapes() {
        assert_eq!(form_decode("a%20b+c"), "a b c");
        assert_eq!(form_decode("100%"), "100%");
        assert_eq!(form_decode("%zz"), "%zz");
    }
}
