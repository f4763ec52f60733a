//! HTTP/1.1 response heads and bodies as the endpoints send them: CORS open to every
//! origin (browsers fetch the certificate hash cross-origin), explicit lengths or chunks.

/// The reason phrase of the statuses we send.
fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Unknown",
    }
}

/// A complete response with a body of known length.
pub fn full(status: u16, content_type: Option<&str>, body: &[u8], keep_alive: bool) -> Vec<u8> {
    let mut out = head(status, content_type, keep_alive);
    out.extend_from_slice(format!("Content-Length: {}\r\n\r\n", body.len()).as_bytes());
    out.extend_from_slice(body);
    out
}

/// The head of a streamed (chunked) response; chunks follow with [`chunk`].
pub fn chunked(status: u16, keep_alive: bool) -> Vec<u8> {
    let mut out = head(status, None, keep_alive);
    out.extend_from_slice(b"Transfer-Encoding: chunked\r\n\r\n");
    out
}

/// One chunk of a chunked body; an empty `data` is the final chunk.
pub fn chunk(data: &[u8]) -> Vec<u8> {
    let mut out = format!("{:x}\r\n", data.len()).into_bytes();
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
    out
}

/// A small HTML error page.
pub fn error(status: u16, keep_alive: bool) -> Vec<u8> {
    let body = format!(
        "<!doctype html><title>{status} {r}</title><h1>{status} {r}</h1>\n",
        r = reason(status)
    );
    full(
        status,
        Some("text/html; charset=utf-8"),
        body.as_bytes(),
        keep_alive,
    )
}

fn head(status: u16, content_type: Option<&str>, keep_alive: bool) -> Vec<u8> {
    let mut out = format!("HTTP/1.1 {status} {}\r\n", reason(status));
    out.push_str("Access-Control-Allow-Origin: *\r\n");
    if let Some(content_type) = content_type {
        out.push_str(&format!("Content-Type: {content_type}\r\n"));
    }
    out.push_str(if keep_alive {
        "Connection: keep-alive\r\n"
    } else {
        "Connection: close\r\n"
    });
    out.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn responses_carry_cors_and_lengths() {
        let r = String::from_utf8(full(200, Some("text/plain"), b"ok\n", true)).unwrap();
        assert!(r.starts_with("HTTP/1.1 200 OK\r\n"));
        assert!(r.contains("Access-Control-Allow-Origin: *\r\n"));
        assert!(r.ends_with("Content-Length: 3\r\n\r\nok\n"));
        assert_eq!(chunk(b"hello"), b"5\r\nhello\r\n");
        assert_eq!(chunk(b""), b"0\r\n\r\n");
        assert!(String::from_utf8(error(404, false))
            .unwrap()
            .contains("Connection: close"));
    }
}
