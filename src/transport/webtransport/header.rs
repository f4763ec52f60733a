//! The header in front of every WebTransport stream (draft-ietf-webtrans-http3 §4.2–4.3):
//! bidi `0x41 | session id`, uni `0x54 | session id`, both varints.

use super::frame::WEBTRANSPORT_STREAM;
use super::stream_type::WEBTRANSPORT;
use super::{varint, H3Error};

/// The bidi header signal.
pub const BIDI: u64 = WEBTRANSPORT_STREAM;
/// The uni stream type.
pub const UNI: u64 = WEBTRANSPORT;

/// Appends the header of a bidi stream in `session`.
pub fn encode_bidi(session: u64, buf: &mut Vec<u8>) {
    varint::write(buf, BIDI);
    varint::write(buf, session);
}

/// Appends the header of a uni stream in `session`.
pub fn encode_uni(session: u64, buf: &mut Vec<u8>) {
    varint::write(buf, UNI);
    varint::write(buf, session);
}

/// What starts a peer's bidi stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BidiStart {
    /// A WebTransport stream of `session`; `used` header bytes.
    WebTransport { session: u64, used: usize },
    /// Anything else: an HTTP/3 request (a frame type `0x01` etc.) that we reject.
    Request(u64),
}

/// Decodes the start of a peer's bidi stream.
pub fn decode_bidi(buf: &[u8]) -> Result<BidiStart, H3Error> {
    let mut pos = 0;
    let ty = varint::read(buf, &mut pos)?;
    if ty != BIDI {
        return Ok(BidiStart::Request(ty));
    }
    let session = varint::read(buf, &mut pos)?;
    Ok(BidiStart::WebTransport { session, used: pos })
}

/// Decodes the header of a peer's uni stream as `(session, bytes used)`; the stream type
/// must be `0x54`.
pub fn decode_uni(buf: &[u8]) -> Result<(u64, usize), H3Error> {
    let mut pos = 0;
    if varint::read(buf, &mut pos)? != UNI {
        return Err(H3Error::Malformed("WebTransport uni stream type"));
    }
    let session = varint::read(buf, &mut pos)?;
    Ok((session, pos))
}

/// Decodes only the session id after a uni stream type that was already read.
pub fn decode_session(buf: &[u8]) -> Result<(u64, usize), H3Error> {
    let mut pos = 0;
    let session = varint::read(buf, &mut pos)?;
    Ok((session, pos))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn golden() {
        let mut buf = Vec::new();
        encode_bidi(0, &mut buf);
        assert_eq!(buf, [0x40, 0x41, 0x00]);
        buf.clear();
        encode_uni(0, &mut buf);
        assert_eq!(buf, [0x40, 0x54, 0x00]);
        let group = [0x40, 0x54, 0x00, 0x00, 0x02, 0x00, 0x1c];
        assert_eq!(decode_uni(&group).unwrap(), (0, 3));
        assert_eq!(
            decode_bidi(&[0x40, 0x41, 0x00, 0x02]).unwrap(),
            BidiStart::WebTransport {
                session: 0,
                used: 3
            }
        );
        let mut buf = Vec::new();
        encode_bidi(1234, &mut buf);
        assert_eq!(
            decode_bidi(&buf).unwrap(),
            BidiStart::WebTransport {
                session: 1234,
                used: 4
            }
        );
    }

    #[test]
    fn wrong_and_truncated() {
        assert_eq!(decode_bidi(&[0x01, 0x10]).unwrap(), BidiStart::Request(1));
        assert!(decode_uni(&[0x00, 0x00]).is_err());
        for cut in 0..3 {
            assert_eq!(decode_bidi(&[0x40, 0x41, 0x00][..cut]), Err(H3Error::Short));
            assert_eq!(decode_uni(&[0x40, 0x54, 0x00][..cut]), Err(H3Error::Short));
        }
        assert_eq!(decode_session(&[]), Err(H3Error::Short));
    }
}
