//! A sans-IO HTTP/1.1 request-head parser with hard bounds: what the TCP listener reads
//! before it routes a request.

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
    let Some(end) = find_head_end(buf) else {
        return if buf.len() > MAX_HEAD {
            Err(HeadError::TooLarge)
        } else {
            Ok(None)
        };
    };
    if end > MAX_HEAD {
        return Err(HeadError::TooLarge);
    }
    let head = std::str::from_utf8(&buf[..end]).map_err(|_| HeadError::Malformed)?;
    let mut lines = head.split("\r\n").filter(|l| !l.is_empty());
    let request_line = lines.next().ok_or(HeadError::Malformed)?;
    let mut parts = request_line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(HeadError::Malformed);
    };
    if !matches!(version, "HTTP/1.1" | "HTTP/1.0") || method.is_empty() || !target.starts_with('/')
    {
        return Err(HeadError::Malformed);
    }
    let mut headers = Vec::new();
    for line in lines {
        if headers.len() >= MAX_HEADERS {
            return Err(HeadError::TooLarge);
        }
        let (name, value) = line.split_once(':').ok_or(HeadError::Malformed)?;
        if name.is_empty() || name.contains(' ') {
            return Err(HeadError::Malformed);
        }
        headers.push((name.to_ascii_lowercase(), value.trim().to_string()));
    }
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
    Ok(Some((request, end + 4)))
}

fn find_head_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n")
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
