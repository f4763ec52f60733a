//! The [`Message`] trait: a len-prefixed control message (`Length (i)` then exactly `Length`
//! body bytes) whose body layout may depend on the [`Version`].

use super::codec::{put_framed, Reader};
use super::{DecodeError, EncodeError, Version};

/// A len-prefixed moq-lite message. Implementors describe the body; the provided
/// [`encode`](Message::encode) and [`decode`](Message::decode) add the framing, the size cap
/// ([`MAX_MESSAGE_SIZE`](super::MAX_MESSAGE_SIZE)) and the version gate.
pub trait Message: Sized {
    /// The message's name in PROTOCOL.md, for errors.
    const NAME: &'static str;

    /// Whether `version` defines this message.
    fn is_defined(version: Version) -> bool;

    /// Appends the body, without its length.
    fn encode_body(&self, version: Version, buf: &mut Vec<u8>) -> Result<(), EncodeError>;

    /// Reads the body's fields; [`decode`](Message::decode) checks that none are left over.
    fn decode_body(version: Version, body: &mut Reader<'_>) -> Result<Self, DecodeError>;

    /// Appends `Length | Body`. On error `buf` is left as it was.
    fn encode(&self, version: Version, buf: &mut Vec<u8>) -> Result<(), EncodeError> {
        if !Self::is_defined(version) {
            return Err(EncodeError::Unsupported {
                message: Self::NAME,
                version,
            });
        }
        put_framed(buf, |buf| self.encode_body(version, buf))
    }

    /// Reads one message from the front of `buf`, returning it and the bytes it used.
    ///
    /// [`DecodeError::Incomplete`] means `buf` does not hold the whole message yet.
    fn decode(version: Version, buf: &[u8]) -> Result<(Self, usize), DecodeError> {
        if !Self::is_defined(version) {
            return Err(DecodeError::Unsupported {
                message: Self::NAME,
                version,
            });
        }
        let mut reader = Reader::new(buf);
        let mut body = reader.framed()?;
        let message = Self::decode_body(version, &mut body)?;
        body.finish()?;
        Ok((message, reader.consumed()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::testing::hex;
    use crate::wire::{codec::put_varint, AnnounceOk, Probe, MAX_MESSAGE_SIZE};

    #[test]
    fn framing_errors() {
        let v = Version::Lite05;
        assert_eq!(Probe::decode(v, &[]), Err(DecodeError::Incomplete));
        assert_eq!(Probe::decode(v, &hex("40")), Err(DecodeError::Incomplete));
        assert_eq!(
            Probe::decode(v, &hex("02 01")),
            Err(DecodeError::Incomplete)
        );
        assert_eq!(Probe::decode(v, &hex("01 01")), Err(DecodeError::ShortBody));
        assert_eq!(
            Probe::decode(v, &hex("03 01 02 03")),
            Err(DecodeError::TrailingBytes)
        );
        assert_eq!(
            Probe::decode(v, &hex("40 02 01 02 ff")),
            Ok((Probe { bitrate: 1, rtt: 2 }, 4)),
            "a non-minimal length"
        );
        let mut oversize = Vec::new();
        put_varint(&mut oversize, MAX_MESSAGE_SIZE as u64 + 1).unwrap();
        assert_eq!(
            Probe::decode(v, &oversize),
            Err(DecodeError::TooLong("message"))
        );
    }

    #[test]
    fn version_gate() {
        let unsupported = DecodeError::Unsupported {
            message: "ANNOUNCE_OK",
            version: Version::Lite04,
        };
        assert_eq!(
            AnnounceOk::decode(Version::Lite04, &hex("02 07 01")),
            Err(unsupported)
        );
        assert_eq!(
            AnnounceOk::default().encode(Version::Lite04, &mut Vec::new()),
            Err(EncodeError::Unsupported {
                message: "ANNOUNCE_OK",
                version: Version::Lite04,
            })
        );
    }
}
