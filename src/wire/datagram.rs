//! Datagrams (lite-05, raw QUIC and WebTransport only), PROTOCOL.md §3.8: a one-frame group
//! in one QUIC DATAGRAM. Not len-prefixed: the payload is the rest of the datagram.

use bytes::Bytes;

use super::codec::{atomic, put_varint, Reader};
use super::{DecodeError, EncodeError, Version};

/// `SubscribeID (i) | GroupSequence (i) | Timestamp (i) | Payload (rest)`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Datagram {
    pub subscribe_id: u64,
    pub group: u64,
    /// Absolute, in the track's timescale.
    pub timestamp: u64,
    pub payload: Bytes,
}

impl Datagram {
    /// Parses a whole datagram; the payload is a zero-copy slice of `datagram`. A datagram
    /// that ends inside the header is [`DecodeError::ShortBody`].
    pub fn decode(version: Version, datagram: &Bytes) -> Result<Self, DecodeError> {
        match version {
            Version::Lite04 => {
                return Err(DecodeError::Unsupported {
                    message: "DATAGRAM",
                    version,
                })
            }
            Version::Lite05 => {}
        }
        let mut reader = Reader::whole(datagram);
        let subscribe_id = reader.varint()?;
        let group = reader.varint()?;
        let timestamp = reader.varint()?;
        Ok(Self {
            subscribe_id,
            group,
            timestamp,
            payload: datagram.slice(reader.consumed()..),
        })
    }

    /// Appends the whole datagram. On error `buf` is left as it was.
    pub fn encode(&self, version: Version, buf: &mut Vec<u8>) -> Result<(), EncodeError> {
        match version {
            Version::Lite04 => {
                return Err(EncodeError::Unsupported {
                    message: "DATAGRAM",
                    version,
                })
            }
            Version::Lite05 => {}
        }
        atomic(buf, |buf| {
            put_varint(buf, self.subscribe_id)?;
            put_varint(buf, self.group)?;
            put_varint(buf, self.timestamp)?;
            buf.extend_from_slice(&self.payload);
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::testing::hex;

    #[test]
    fn golden_vector() {
        let wire = Bytes::from(hex("00 1c 43 e8 68 69"));
        let datagram = Datagram {
            subscribe_id: 0,
            group: 28,
            timestamp: 1000,
            payload: Bytes::from_static(b"hi"),
        };
        assert_eq!(
            Datagram::decode(Version::Lite05, &wire),
            Ok(datagram.clone())
        );
        let mut encoded = Vec::new();
        datagram.encode(Version::Lite05, &mut encoded).unwrap();
        assert_eq!(encoded, wire);
    }

    #[test]
    fn payload_is_a_zero_copy_slice() {
        let wire = Bytes::from(hex("00 1c 43 e8 68 69"));
        let datagram = Datagram::decode(Version::Lite05, &wire).unwrap();
        assert_eq!(datagram.payload.as_ptr(), wire[4..].as_ptr());
        let empty = Datagram::decode(Version::Lite05, &wire.slice(..4)).unwrap();
        assert!(empty.payload.is_empty());
    }

    #[test]
    fn truncated_headers_and_lite04() {
        let wire = Bytes::from(hex("00 1c 43 e8"));
        for end in 0..wire.len() {
            assert_eq!(
                Datagram::decode(Version::Lite05, &wire.slice(..end)),
                Err(DecodeError::ShortBody)
            );
        }
        assert!(Datagram::decode(Version::Lite04, &wire).is_err());
        assert!(Datagram::default()
            .encode(Version::Lite04, &mut Vec::new())
            .is_err());
    }
}
