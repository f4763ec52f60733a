//! The Group stream (uni 0x0), PROTOCOL.md §3.5 and §4.1: a GROUP header, then FRAMEs.
//!
//! Only frame *headers* are decoded here: the caller takes the `size` payload bytes that
//! follow as a zero-copy `Bytes` slice, and can forward a group byte for byte behind a
//! rewritten GROUP header. Fetch streams (§3.6) carry the same lite-05 FRAMEs.

use super::codec::{atomic, put_varint, put_zigzag, Reader};
use super::{DecodeError, EncodeError, Message, Version};

/// The largest frame payload we accept or send: 32 MiB, moq-net's default. A larger one is
/// [`DecodeError::FrameTooLarge`] (reset FrameTooLarge `0x38`).
pub const MAX_FRAME_SIZE: u64 = 32 << 20;

/// `GROUP = Length | SubscribeID (i) | GroupSequence (i)`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GroupHeader {
    pub subscribe_id: u64,
    pub sequence: u64,
}

/// lite-05 `FRAME = TimestampDelta (z) | Size (i) | Payload`; lite-04 `FRAME = Size (i) |
/// Payload`. This is the part before the payload.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FrameHeader {
    /// Timestamp change since the previous frame of the same group stream (the first is
    /// against 0), in the track's timescale. Always 0 from lite-04, and not sent to it.
    pub timestamp_delta: i64,
    /// Payload length, at most [`MAX_FRAME_SIZE`].
    pub size: u64,
}

impl Message for GroupHeader {
    const NAME: &'static str = "GROUP";

    fn is_defined(version: Version) -> bool {
        match version {
            Version::Lite04 | Version::Lite05 => true,
        }
    }

    fn encode_body(&self, _: Version, buf: &mut Vec<u8>) -> Result<(), EncodeError> {
        put_varint(buf, self.subscribe_id)?;
        put_varint(buf, self.sequence)
    }

    fn decode_body(_: Version, body: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            subscribe_id: body.varint()?,
            sequence: body.varint()?,
        })
    }
}

impl FrameHeader {
    /// Reads a frame header from the front of `buf`, returning it and the bytes it used;
    /// the payload need not be there yet.
    pub fn decode(version: Version, buf: &[u8]) -> Result<(Self, usize), DecodeError> {
        let mut reader = Reader::new(buf);
        let timestamp_delta = match version {
            Version::Lite04 => 0,
            Version::Lite05 => reader.zigzag()?,
        };
        let size = reader.varint()?;
        if size > MAX_FRAME_SIZE {
            return Err(DecodeError::FrameTooLarge(size));
        }
        let header = Self {
            timestamp_delta,
            size,
        };
        Ok((header, reader.consumed()))
    }

    /// Appends the frame header; the caller appends or sends the payload. On lite-04 the
    /// timestamp is dropped, since that version has none. On error `buf` is left as it was.
    pub fn encode(&self, version: Version, buf: &mut Vec<u8>) -> Result<(), EncodeError> {
        if self.size > MAX_FRAME_SIZE {
            return Err(EncodeError::TooLong("frame"));
        }
        atomic(buf, |buf| {
            match version {
                Version::Lite04 => {}
                Version::Lite05 => put_zigzag(buf, self.timestamp_delta)?,
            }
            put_varint(buf, self.size)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::testing::{after_type, check_golden, check_round_trip, hex};

    fn check_frame(version: Version, header: FrameHeader, wire: &[u8]) {
        let mut encoded = Vec::new();
        header.encode(version, &mut encoded).unwrap();
        assert_eq!(encoded, wire);
        assert_eq!(FrameHeader::decode(version, wire), Ok((header, wire.len())));
        for end in 0..wire.len() {
            assert_eq!(
                FrameHeader::decode(version, &wire[..end]),
                Err(DecodeError::Incomplete)
            );
        }
    }

    #[test]
    fn lite05_group_example() {
        // `00 | 02 00 1c | 47 d0 05 <5 bytes>`: group 28 of subscription 0, 5 bytes at t=1000.
        let wire = hex("00 02 00 1c 47 d0 05 68 65 6c 6c 6f");
        let stream = after_type(0x00, &wire);
        let group = GroupHeader {
            subscribe_id: 0,
            sequence: 28,
        };
        check_golden(Version::Lite05, &group, &stream[..3]);
        let frame = FrameHeader {
            timestamp_delta: 1000,
            size: 5,
        };
        let (decoded, used) = FrameHeader::decode(Version::Lite05, &stream[3..]).unwrap();
        assert_eq!((decoded, used), (frame, 3), "the payload is not read");
        assert_eq!(&stream[3 + used..], b"hello");
        check_frame(Version::Lite05, frame, &hex("47 d0 05"));
    }

    #[test]
    fn frame_headers() {
        check_frame(
            Version::Lite05,
            FrameHeader {
                timestamp_delta: -40,
                size: 0,
            },
            &hex("40 4f 00"),
        );
        check_frame(
            Version::Lite05,
            FrameHeader {
                timestamp_delta: 200_000_000_000,
                size: MAX_FRAME_SIZE,
            },
            &hex("c0 00 00 5d 21 db a0 00 82 00 00 00"),
        );
        check_frame(
            Version::Lite04,
            FrameHeader {
                timestamp_delta: 0,
                size: 15293,
            },
            &hex("7b bd"),
        );
        let mut buf = Vec::new();
        let timed = FrameHeader {
            timestamp_delta: 1000,
            size: 2,
        };
        timed.encode(Version::Lite04, &mut buf).unwrap();
        assert_eq!(buf, [0x02], "lite-04 frames carry no timestamp");
    }

    #[test]
    fn frame_size_is_capped() {
        let mut wire = Vec::new();
        put_varint(&mut wire, MAX_FRAME_SIZE + 1).unwrap();
        assert_eq!(
            FrameHeader::decode(Version::Lite04, &wire),
            Err(DecodeError::FrameTooLarge(MAX_FRAME_SIZE + 1))
        );
        let mut buf = Vec::new();
        let huge = FrameHeader {
            timestamp_delta: 0,
            size: MAX_FRAME_SIZE + 1,
        };
        assert!(huge.encode(Version::Lite05, &mut buf).is_err());
        let far = FrameHeader {
            timestamp_delta: i64::MIN,
            size: 1,
        };
        assert!(far.encode(Version::Lite05, &mut buf).is_err());
        assert!(buf.is_empty());
    }

    #[test]
    fn group_header_round_trips() {
        for version in Version::ALL {
            check_round_trip(
                version,
                &GroupHeader {
                    subscribe_id: 1 << 30,
                    sequence: crate::wire::varint::MAX,
                },
            );
        }
    }
}
