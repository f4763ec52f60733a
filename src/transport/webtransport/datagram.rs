//! HTTP/3 datagrams (RFC 9297 §2.1): a QUIC DATAGRAM starts with the quarter stream id of
//! the CONNECT stream, then the payload (PROTOCOL.md §7.2 step 6).
//!
//! moq-dev's Rust stacks write the raw session id instead; the two agree for session 0, the
//! only session we allow, so a decoder that accepts "0" accepts both.

use super::{varint, H3Error};

/// Appends the datagram prefix for `session` (the CONNECT stream id) and the payload.
pub fn encode(session: u64, payload: &[u8], buf: &mut Vec<u8>) {
    varint::write(buf, session / 4);
    buf.extend_from_slice(payload);
}

/// Splits a received datagram into `(session id, payload)`.
pub fn decode(buf: &[u8]) -> Result<(u64, &[u8]), H3Error> {
    let mut pos = 0;
    let quarter = varint::read(buf, &mut pos)?;
    let session = quarter
        .checked_mul(4)
        .filter(|&id| id < 1 << 62)
        .ok_or(H3Error::Malformed("datagram quarter stream id"))?;
    Ok((session, &buf[pos..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let mut buf = Vec::new();
        encode(0, b"moq", &mut buf);
        assert_eq!(buf, [0x00, b'm', b'o', b'q']);
        assert_eq!(decode(&buf).unwrap(), (0, &b"moq"[..]));
        buf.clear();
        encode(8, b"", &mut buf);
        assert_eq!(decode(&buf).unwrap(), (8, &b""[..]));
        assert_eq!(decode(&[]), Err(H3Error::Short));
        assert_eq!(decode(&[0x40]), Err(H3Error::Short));
        assert!(decode(&[0xff; 8]).is_err());
    }
}
