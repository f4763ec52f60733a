//! Unidirectional stream types on an HTTP/3 connection (RFC 9114 §6.2, RFC 9204 §4.2,
//! draft-ietf-webtrans-http3 §4.2).

use super::frame::is_grease;

/// Control stream.
pub const CONTROL: u64 = 0x00;
/// Server push (never allowed: we send no MAX_PUSH_ID).
pub const PUSH: u64 = 0x01;
/// QPACK encoder stream.
pub const QPACK_ENCODER: u64 = 0x02;
/// QPACK decoder stream.
pub const QPACK_DECODER: u64 = 0x03;
/// WebTransport unidirectional stream.
pub const WEBTRANSPORT: u64 = 0x54;

/// What to do with a peer's unidirectional stream, by its first varint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UniStream {
    /// The peer's control stream: SETTINGS first, then frames we mostly skip.
    Control,
    /// A QPACK encoder or decoder stream: read and discard.
    Qpack,
    /// A WebTransport uni stream; the session id follows.
    WebTransport,
    /// A push stream: a connection error (H3_ID_ERROR), as we never allowed pushes.
    Push,
    /// GREASE or unknown: stop reading it (STOP_SENDING H3_STREAM_CREATION_ERROR) and ignore.
    Ignore,
}

/// Classifies a unidirectional stream type.
pub fn classify(ty: u64) -> UniStream {
    match ty {
        CONTROL => UniStream::Control,
        QPACK_ENCODER | QPACK_DECODER => UniStream::Qpack,
        WEBTRANSPORT => UniStream::WebTransport,
        PUSH => UniStream::Push,
        ty if is_grease(ty) => UniStream::Ignore,
        _ => UniStream::Ignore,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types() {
        assert_eq!(classify(0x00), UniStream::Control);
        assert_eq!(classify(0x02), UniStream::Qpack);
        assert_eq!(classify(0x03), UniStream::Qpack);
        assert_eq!(classify(0x54), UniStream::WebTransport);
        assert_eq!(classify(0x01), UniStream::Push);
        assert_eq!(classify(0x21), UniStream::Ignore);
        assert_eq!(classify(0x1234), UniStream::Ignore);
    }
}
