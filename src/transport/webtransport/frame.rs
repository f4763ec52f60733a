//! HTTP/3 frame headers (RFC 9114 §7.1): `type (i) | length (i)`, then `length` payload bytes.

use super::{varint, H3Error};

/// DATA frame type.
pub const DATA: u64 = 0x00;
/// HEADERS frame type.
pub const HEADERS: u64 = 0x01;
/// SETTINGS frame type.
pub const SETTINGS: u64 = 0x04;
/// GOAWAY frame type.
pub const GOAWAY: u64 = 0x07;
/// The WebTransport bidi stream signal, which looks like a frame type on a request stream.
pub const WEBTRANSPORT_STREAM: u64 = 0x41;

/// The largest frame payload we buffer (SETTINGS, HEADERS); larger frames are refused.
pub const MAX_FRAME_PAYLOAD: u64 = 16 * 1024;

/// Whether `id` is a reserved GREASE value `0x1f·N + 0x21` (frame types, settings, stream
/// types and error codes share the pattern).
pub fn is_grease(id: u64) -> bool {
    id >= 0x21 && (id - 0x21).is_multiple_of(0x1f)
}

/// A decoded frame header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameHeader {
    pub ty: u64,
    pub len: u64,
}

impl FrameHeader {
    /// Decodes a header from the front of `buf` as `(header, bytes used)`. A payload longer
    /// than `cap` is an error, so callers never buffer more than `cap` bytes for it.
    pub fn decode(buf: &[u8], cap: u64) -> Result<(Self, usize), H3Error> {
        let mut pos = 0;
        let ty = varint::read(buf, &mut pos)?;
        let len = varint::read(buf, &mut pos)?;
        if len > cap {
            return Err(H3Error::TooLarge("HTTP/3 frame"));
        }
        Ok((Self { ty, len }, pos))
    }

    /// Appends the header.
    pub fn encode(&self, buf: &mut Vec<u8>) {
        varint::write(buf, self.ty);
        varint::write(buf, self.len);
    }
}

/// Decodes one whole frame from the front of `buf` as `(type, payload, bytes used)`.
pub fn decode_frame(buf: &[u8], cap: u64) -> Result<(u64, &[u8], usize), H3Error> {
    let (header, used) = FrameHeader::decode(buf, cap)?;
    let end = usize::try_from(header.len)
        .ok()
        .and_then(|len| used.checked_add(len))
        .ok_or(H3Error::TooLarge("HTTP/3 frame"))?;
    let payload = buf.get(used..end).ok_or(H3Error::Short)?;
    Ok((header.ty, payload, end))
}

/// Appends a whole frame.
pub fn encode_frame(ty: u64, payload: &[u8], buf: &mut Vec<u8>) {
    FrameHeader {
        ty,
        len: payload.len() as u64,
    }
    .encode(buf);
    buf.extend_from_slice(payload);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let mut buf = Vec::new();
        encode_frame(HEADERS, b"abc", &mut buf);
        assert_eq!(buf, [0x01, 0x03, b'a', b'b', b'c']);
        assert_eq!(decode_frame(&buf, 16).unwrap(), (HEADERS, &b"abc"[..], 5));
    }

    #[test]
    fn cap_and_truncation() {
        let mut buf = Vec::new();
        encode_frame(DATA, &[0; 100], &mut buf);
        assert_eq!(
            decode_frame(&buf, 99),
            Err(H3Error::TooLarge("HTTP/3 frame"))
        );
        for cut in 0..buf.len() {
            assert_eq!(decode_frame(&buf[..cut], 100), Err(H3Error::Short));
        }
        // A huge length is refused before anything is buffered.
        assert!(FrameHeader::decode(
            &[0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
            u64::MAX
        )
        .is_ok());
        assert!(FrameHeader::decode(&[0x00, 0xbf, 0xff, 0xff, 0xff], MAX_FRAME_PAYLOAD).is_err());
        let huge = [0x21, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff];
        assert!(decode_frame(&huge, u64::MAX).is_err());
    }

    #[test]
    fn grease() {
        assert!(is_grease(0x21));
        assert!(is_grease(0x40));
        assert!(is_grease(0x1f * 1000 + 0x21));
        assert!(!is_grease(0x20));
        assert!(!is_grease(0x41));
        assert!(!is_grease(0x04));
    }
}
