//! The Subscribe stream (bidi 0x2), PROTOCOL.md §3.4 and §4.1: SUBSCRIBE and
//! SUBSCRIBE_UPDATE from the subscriber (byte-identical on 04 and 05), and the typed
//! responses from the publisher, which differ: lite-04 has OK and DROP, lite-05 has START, END
//! and DROP.
//!
//! Group bounds use the "+1" encoding (0 = absent). The retired Ordered byte is written as 0
//! and ignored on read. A response type the version does not define is
//! [`DecodeError::UnknownType`], as in moq-net 0.3.18; it is not skipped.

use super::codec::{atomic, put_framed, put_path, put_plus_one, put_string, put_varint, Reader};
use super::{DecodeError, EncodeError, Message, Version};

/// `SUBSCRIBE = Length | SubscribeID (i) | Broadcast (s) | Track (s) | Priority (8) |
/// Ordered (8) | MaxLatency (i) | StartGroup (i, +1) | EndGroup (i, +1)`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Subscribe {
    /// Chosen by the subscriber; group streams and datagrams refer to it.
    pub id: u64,
    /// Normalized broadcast path.
    pub broadcast: String,
    /// Track name, byte for byte.
    pub track: String,
    pub priority: u8,
    pub max_latency_ms: u64,
    /// First group wanted; `None` = the latest.
    pub start_group: Option<u64>,
    /// Last group wanted (a cap, not a terminator); `None` = open.
    pub end_group: Option<u64>,
}

/// `SUBSCRIBE_UPDATE = Length | Priority (8) | Ordered (8) | MaxLatency (i) |
/// StartGroup (i, +1) | EndGroup (i, +1)`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SubscribeUpdate {
    pub priority: u8,
    pub max_latency_ms: u64,
    pub start_group: Option<u64>,
    pub end_group: Option<u64>,
}

/// A publisher's reply on a Subscribe stream, framed `Type (i) | Length (i) | Body`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubscribeResponse {
    /// lite-04 type 0, always the first response: `Priority (8) | Ordered (8) |
    /// MaxLatency (i) | StartGroup (i, +1) | EndGroup (i, +1)`.
    Ok {
        priority: u8,
        max_latency_ms: u64,
        start_group: Option<u64>,
        end_group: Option<u64>,
    },
    /// lite-05 type 0: `Group (i)`, the first group that will be delivered.
    Start { group: u64 },
    /// lite-05 type 1: `Group (i)`, the first group that will never be delivered.
    End { group: u64 },
    /// lite-04 type 1, lite-05 type 2: `Start (i) | End (i) | ErrorCode (i)`, groups
    /// `start..=end` will not come.
    Drop { start: u64, end: u64, code: u64 },
}

impl Message for Subscribe {
    const NAME: &'static str = "SUBSCRIBE";

    fn is_defined(version: Version) -> bool {
        match version {
            Version::Lite04 | Version::Lite05 => true,
        }
    }

    fn encode_body(&self, _: Version, buf: &mut Vec<u8>) -> Result<(), EncodeError> {
        put_varint(buf, self.id)?;
        put_path(buf, &self.broadcast)?;
        put_string(buf, &self.track)?;
        put_window(
            buf,
            self.priority,
            self.max_latency_ms,
            self.start_group,
            self.end_group,
        )
    }

    fn decode_body(_: Version, body: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let id = body.varint()?;
        let broadcast = body.path()?;
        let track = body.string()?;
        let update = read_window(body)?;
        Ok(Self {
            id,
            broadcast,
            track,
            priority: update.priority,
            max_latency_ms: update.max_latency_ms,
            start_group: update.start_group,
            end_group: update.end_group,
        })
    }
}

impl Message for SubscribeUpdate {
    const NAME: &'static str = "SUBSCRIBE_UPDATE";

    fn is_defined(version: Version) -> bool {
        match version {
            Version::Lite04 | Version::Lite05 => true,
        }
    }

    fn encode_body(&self, _: Version, buf: &mut Vec<u8>) -> Result<(), EncodeError> {
        put_window(
            buf,
            self.priority,
            self.max_latency_ms,
            self.start_group,
            self.end_group,
        )
    }

    fn decode_body(_: Version, body: &mut Reader<'_>) -> Result<Self, DecodeError> {
        read_window(body)
    }
}

/// `Priority (8) | Ordered (8) = 0 | MaxLatency (i) | StartGroup (i, +1) | EndGroup (i, +1)`,
/// the tail shared by SUBSCRIBE, SUBSCRIBE_UPDATE and lite-04's SUBSCRIBE_OK.
fn put_window(
    buf: &mut Vec<u8>,
    priority: u8,
    max_latency_ms: u64,
    start_group: Option<u64>,
    end_group: Option<u64>,
) -> Result<(), EncodeError> {
    buf.extend_from_slice(&[priority, 0]);
    put_varint(buf, max_latency_ms)?;
    put_plus_one(buf, start_group)?;
    put_plus_one(buf, end_group)
}

/// Reads the tail that [`put_window`] writes.
fn read_window(body: &mut Reader<'_>) -> Result<SubscribeUpdate, DecodeError> {
    let priority = body.u8()?;
    body.u8()?;
    Ok(SubscribeUpdate {
        priority,
        max_latency_ms: body.varint()?,
        start_group: body.plus_one()?,
        end_group: body.plus_one()?,
    })
}

impl SubscribeResponse {
    fn name(&self) -> &'static str {
        match self {
            Self::Ok { .. } => "SUBSCRIBE_OK",
            Self::Start { .. } => "SUBSCRIBE_START",
            Self::End { .. } => "SUBSCRIBE_END",
            Self::Drop { .. } => "SUBSCRIBE_DROP",
        }
    }

    /// The response's type on `version`, if `version` defines it.
    fn code(&self, version: Version) -> Option<u64> {
        match (version, self) {
            (Version::Lite04, Self::Ok { .. }) => Some(0),
            (Version::Lite04, Self::Drop { .. }) => Some(1),
            (Version::Lite05, Self::Start { .. }) => Some(0),
            (Version::Lite05, Self::End { .. }) => Some(1),
            (Version::Lite05, Self::Drop { .. }) => Some(2),
            (Version::Lite04, Self::Start { .. } | Self::End { .. })
            | (Version::Lite05, Self::Ok { .. }) => None,
        }
    }

    /// Appends `Type | Length | Body`. On error `buf` is left as it was.
    pub fn encode(&self, version: Version, buf: &mut Vec<u8>) -> Result<(), EncodeError> {
        let code = self.code(version).ok_or(EncodeError::Unsupported {
            message: self.name(),
            version,
        })?;
        atomic(buf, |buf| {
            put_varint(buf, code)?;
            put_framed(buf, |buf| match *self {
                Self::Ok {
                    priority,
                    max_latency_ms,
                    start_group,
                    end_group,
                } => put_window(buf, priority, max_latency_ms, start_group, end_group),
                Self::Start { group } | Self::End { group } => put_varint(buf, group),
                Self::Drop { start, end, code } => {
                    put_varint(buf, start)?;
                    put_varint(buf, end)?;
                    put_varint(buf, code)
                }
            })
        })
    }

    /// Reads one response from the front of `buf`, returning it and the bytes it used.
    pub fn decode(version: Version, buf: &[u8]) -> Result<(Self, usize), DecodeError> {
        let mut reader = Reader::new(buf);
        let code = reader.varint()?;
        let mut body = reader.framed()?;
        let response = match (version, code) {
            (Version::Lite04, 0) => {
                let window = read_window(&mut body)?;
                Self::Ok {
                    priority: window.priority,
                    max_latency_ms: window.max_latency_ms,
                    start_group: window.start_group,
                    end_group: window.end_group,
                }
            }
            (Version::Lite05, 0) => Self::Start {
                group: body.varint()?,
            },
            (Version::Lite05, 1) => Self::End {
                group: body.varint()?,
            },
            (Version::Lite04, 1) | (Version::Lite05, 2) => Self::Drop {
                start: body.varint()?,
                end: body.varint()?,
                code: body.varint()?,
            },
            _ => return Err(DecodeError::UnknownType(code)),
        };
        body.finish()?;
        Ok((response, reader.consumed()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::testing::{after_type, body_error, check_golden, check_round_trip, hex};

    fn clock_seconds() -> Subscribe {
        Subscribe {
            broadcast: "clock".into(),
            track: "seconds".into(),
            ..Subscribe::default()
        }
    }

    #[test]
    fn subscribe_golden_vector_on_both_versions() {
        let wire = hex("02 14 00 05 63 6c 6f 63 6b 07 73 65 63 6f 6e 64 73 00 00 00 00 00");
        for version in Version::ALL {
            check_golden(version, &clock_seconds(), after_type(0x02, &wire));
        }
    }

    #[test]
    fn subscribe_round_trips() {
        let subscribe = Subscribe {
            id: 12345,
            broadcast: "anon/room".into(),
            track: "video/hd".into(),
            priority: 255,
            max_latency_ms: 30_000,
            start_group: Some(0),
            end_group: Some(1 << 40),
        };
        let update = SubscribeUpdate {
            priority: 3,
            max_latency_ms: 0,
            start_group: None,
            end_group: Some(28),
        };
        for version in Version::ALL {
            check_round_trip(version, &subscribe);
            check_round_trip(version, &update);
            check_round_trip(version, &SubscribeUpdate::default());
        }
    }

    #[test]
    fn plus_one_fields_and_ordered_byte() {
        // Ordered 1 is ignored; start group 28, end group 29.
        let (update, _) =
            SubscribeUpdate::decode(Version::Lite05, &hex("05 07 01 00 1d 1e")).unwrap();
        assert_eq!(
            update,
            SubscribeUpdate {
                priority: 7,
                max_latency_ms: 0,
                start_group: Some(28),
                end_group: Some(29),
            }
        );
        let mut buf = Vec::new();
        let overflow = SubscribeUpdate {
            start_group: Some(crate::wire::varint::MAX),
            ..update
        };
        assert!(overflow.encode(Version::Lite05, &mut buf).is_err());
        assert!(buf.is_empty());
        assert_eq!(
            body_error::<SubscribeUpdate>(Version::Lite05, &hex("05 00 00 00")),
            DecodeError::ShortBody
        );
        assert_eq!(
            body_error::<SubscribeUpdate>(Version::Lite05, &hex("05 00 00 00 00 00")),
            DecodeError::TrailingBytes
        );
    }

    fn check_response(version: Version, response: SubscribeResponse, wire: &[u8]) {
        let mut encoded = Vec::new();
        response.encode(version, &mut encoded).unwrap();
        assert_eq!(encoded, wire, "{response:?} on {version}");
        assert_eq!(
            SubscribeResponse::decode(version, wire),
            Ok((response, wire.len()))
        );
        let mut followed = wire.to_vec();
        followed.push(0x00);
        assert_eq!(
            SubscribeResponse::decode(version, &followed),
            Ok((response, wire.len()))
        );
        for end in 0..wire.len() {
            assert_eq!(
                SubscribeResponse::decode(version, &wire[..end]),
                Err(DecodeError::Incomplete)
            );
        }
    }

    #[test]
    fn lite05_responses() {
        let v = Version::Lite05;
        check_response(v, SubscribeResponse::Start { group: 28 }, &hex("00 01 1c"));
        check_response(v, SubscribeResponse::End { group: 30 }, &hex("01 01 1e"));
        check_response(
            v,
            SubscribeResponse::Drop {
                start: 5,
                end: 7,
                code: 0x33,
            },
            &hex("02 03 05 07 33"),
        );
    }

    #[test]
    fn lite04_responses() {
        let v = Version::Lite04;
        // What moq-relay sends at once: the subscriber's priority, the rest 0.
        check_response(
            v,
            SubscribeResponse::Ok {
                priority: 0x20,
                max_latency_ms: 0,
                start_group: None,
                end_group: None,
            },
            &hex("00 05 20 00 00 00 00"),
        );
        check_response(
            v,
            SubscribeResponse::Ok {
                priority: 1,
                max_latency_ms: 5000,
                start_group: Some(28),
                end_group: Some(0),
            },
            &hex("00 06 01 00 53 88 1d 01"),
        );
        check_response(
            v,
            SubscribeResponse::Drop {
                start: 1,
                end: 3,
                code: 0,
            },
            &hex("01 03 01 03 00"),
        );
    }

    #[test]
    fn responses_are_version_checked() {
        let mut buf = Vec::new();
        let ok = SubscribeResponse::Ok {
            priority: 0,
            max_latency_ms: 0,
            start_group: None,
            end_group: None,
        };
        assert!(ok.encode(Version::Lite05, &mut buf).is_err());
        assert!(SubscribeResponse::Start { group: 0 }
            .encode(Version::Lite04, &mut buf)
            .is_err());
        assert!(SubscribeResponse::End { group: 0 }
            .encode(Version::Lite04, &mut buf)
            .is_err());
        assert!(buf.is_empty());

        assert_eq!(
            SubscribeResponse::decode(Version::Lite04, &hex("02 03 01 03 00")),
            Err(DecodeError::UnknownType(2))
        );
        assert_eq!(
            SubscribeResponse::decode(Version::Lite05, &hex("03 00")),
            Err(DecodeError::UnknownType(3))
        );
        // On lite-04, type 0 is OK: the lite-05 START body is too short for it.
        assert_eq!(
            SubscribeResponse::decode(Version::Lite04, &hex("00 01 1c")),
            Err(DecodeError::ShortBody)
        );
        assert_eq!(
            SubscribeResponse::decode(Version::Lite05, &hex("00 02 1c 00")),
            Err(DecodeError::TrailingBytes)
        );
        let mut oversize = vec![0x00];
        put_varint(&mut oversize, crate::wire::MAX_MESSAGE_SIZE as u64 + 1).unwrap();
        assert_eq!(
            SubscribeResponse::decode(Version::Lite05, &oversize),
            Err(DecodeError::TooLong("message"))
        );
    }
}
