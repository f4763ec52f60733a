//! The Announce stream (bidi 0x1), PROTOCOL.md §3.2 (lite-05) and §4.1 (lite-04):
//! ANNOUNCE_REQUEST, ANNOUNCE_OK (lite-05 only) and ANNOUNCE.
//!
//! The layouts of ANNOUNCE_REQUEST and ANNOUNCE are the same on 04 and 05; what differs is
//! who appends a hop id to the chain (the sender on 04, the receiver on 05), which is the
//! session's business. The codec takes hop lists as they are on the wire.

use super::codec::{put_path, put_varint, Reader};
use super::{DecodeError, EncodeError, Message, Version};

/// The longest hop list a message may carry.
pub const MAX_HOPS: usize = 32;

/// `ANNOUNCE_REQUEST = Length | Prefix (s) | ExcludeHop (i)`: the requester's only message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AnnounceRequest {
    /// Normalized broadcast path prefix; `""` asks for everything.
    pub prefix: String,
    /// The requester's own hop id: routes through it are not announced back (0 = none).
    pub exclude_hop: u64,
}

/// `ANNOUNCE_OK = Length | HopID (i) | ActiveCount (i)`: lite-05's first reply.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AnnounceOk {
    /// The responder's hop id, which the receiver appends to every chain.
    pub hop: u64,
    /// How many `Active` announcements of the initial set follow at once.
    pub active_count: u64,
}

/// The Status byte of an [`Announce`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnnounceStatus {
    /// 0: the broadcast is gone.
    Ended,
    /// 1: the broadcast is live (on lite-05 a repeat replaces its route).
    Active,
    /// 2 (lite-05 only): treat as `Active`; never sent by moq-net.
    Restart,
}

/// `ANNOUNCE = Length | Status (8) | Suffix (s) | HopCount (i) | HopID (i)…`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Announce {
    pub status: AnnounceStatus,
    /// Normalized path relative to the request prefix; may be empty.
    pub suffix: String,
    /// The route's chain, original publisher first, at most [`MAX_HOPS`].
    pub hops: Vec<u64>,
}

impl Message for AnnounceRequest {
    const NAME: &'static str = "ANNOUNCE_REQUEST";

    fn is_defined(version: Version) -> bool {
        match version {
            Version::Lite04 | Version::Lite05 => true,
        }
    }

    fn encode_body(&self, _: Version, buf: &mut Vec<u8>) -> Result<(), EncodeError> {
        put_path(buf, &self.prefix)?;
        put_varint(buf, self.exclude_hop)
    }

    fn decode_body(_: Version, body: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            prefix: body.path()?,
            exclude_hop: body.varint()?,
        })
    }
}

impl Message for AnnounceOk {
    const NAME: &'static str = "ANNOUNCE_OK";

    fn is_defined(version: Version) -> bool {
        match version {
            Version::Lite04 => false,
            Version::Lite05 => true,
        }
    }

    fn encode_body(&self, _: Version, buf: &mut Vec<u8>) -> Result<(), EncodeError> {
        put_varint(buf, self.hop)?;
        put_varint(buf, self.active_count)
    }

    fn decode_body(_: Version, body: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            hop: body.varint()?,
            active_count: body.varint()?,
        })
    }
}

impl Message for Announce {
    const NAME: &'static str = "ANNOUNCE";

    fn is_defined(version: Version) -> bool {
        match version {
            Version::Lite04 | Version::Lite05 => true,
        }
    }

    fn encode_body(&self, version: Version, buf: &mut Vec<u8>) -> Result<(), EncodeError> {
        let status = match (self.status, version) {
            (AnnounceStatus::Ended, _) => 0,
            (AnnounceStatus::Active, _) => 1,
            (AnnounceStatus::Restart, Version::Lite05) => 2,
            (AnnounceStatus::Restart, Version::Lite04) => {
                return Err(EncodeError::Unsupported {
                    message: "ANNOUNCE status restart",
                    version,
                })
            }
        };
        if self.hops.len() > MAX_HOPS {
            return Err(EncodeError::TooLong("hop list"));
        }
        buf.push(status);
        put_path(buf, &self.suffix)?;
        put_varint(buf, self.hops.len() as u64)?;
        self.hops.iter().try_for_each(|&hop| put_varint(buf, hop))
    }

    fn decode_body(version: Version, body: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let status = match (body.u8()?, version) {
            (0, _) => AnnounceStatus::Ended,
            (1, _) => AnnounceStatus::Active,
            (2, Version::Lite05) => AnnounceStatus::Restart,
            _ => return Err(DecodeError::InvalidValue("ANNOUNCE status")),
        };
        let suffix = body.path()?;
        let count = body.varint()?;
        if count > MAX_HOPS as u64 {
            return Err(DecodeError::TooManyHops);
        }
        let hops = (0..count)
            .map(|_| body.varint())
            .collect::<Result<_, _>>()?;
        Ok(Self {
            status,
            suffix,
            hops,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::testing::{after_type, body_error, check_golden, check_round_trip, hex};

    fn announce(status: AnnounceStatus, suffix: &str, hops: &[u64]) -> Announce {
        Announce {
            status,
            suffix: suffix.into(),
            hops: hops.to_vec(),
        }
    }

    #[test]
    fn lite05_golden_vectors() {
        let v = Version::Lite05;
        let request = AnnounceRequest {
            prefix: String::new(),
            exclude_hop: 0x1234,
        };
        check_golden(v, &request, after_type(0x01, &hex("01 03 00 52 34")));
        let ok = |hop, active_count| AnnounceOk { hop, active_count };
        check_golden(v, &ok(7, 1), &hex("02 07 01"));
        check_golden(v, &ok(0x1234, 0), &hex("03 52 34 00"));
        check_golden(
            v,
            &announce(AnnounceStatus::Active, "clock", &[9]),
            &hex("09 01 05 63 6c 6f 63 6b 01 09"),
        );
        check_golden(
            v,
            &announce(AnnounceStatus::Ended, "clock", &[]),
            &hex("08 00 05 63 6c 6f 63 6b 00"),
        );
    }

    #[test]
    fn lite04_golden_vector() {
        check_golden(
            Version::Lite04,
            &announce(AnnounceStatus::Active, "clock", &[9, 7]),
            &hex("0a 01 05 63 6c 6f 63 6b 02 09 07"),
        );
    }

    #[test]
    fn round_trips() {
        for version in Version::ALL {
            check_round_trip(
                version,
                &AnnounceRequest {
                    prefix: "anon/room".into(),
                    exclude_hop: 0,
                },
            );
            check_round_trip(
                version,
                &announce(AnnounceStatus::Active, "", &[u64::MAX >> 2; MAX_HOPS]),
            );
            check_round_trip(version, &announce(AnnounceStatus::Ended, "a/b", &[]));
        }
        check_round_trip(
            Version::Lite05,
            &announce(AnnounceStatus::Restart, "clock", &[1, 0, 0]),
        );
    }

    #[test]
    fn paths_are_normalized() {
        let (request, _) =
            AnnounceRequest::decode(Version::Lite05, &hex("08 06 2f 61 2f 2f 62 2f 00")).unwrap();
        assert_eq!(request.prefix, "a/b");
    }

    #[test]
    fn status_and_hop_limits() {
        assert_eq!(
            body_error::<Announce>(Version::Lite04, &hex("02 00 00")),
            DecodeError::InvalidValue("ANNOUNCE status"),
            "restart is invalid on lite-04"
        );
        assert_eq!(
            body_error::<Announce>(Version::Lite05, &hex("03 00 00")),
            DecodeError::InvalidValue("ANNOUNCE status")
        );
        let mut too_many = hex("01 00 21");
        too_many.extend_from_slice(&[0; 33]);
        assert_eq!(
            body_error::<Announce>(Version::Lite05, &too_many),
            DecodeError::TooManyHops
        );
        assert_eq!(
            body_error::<Announce>(Version::Lite05, &hex("01 00 7f ff")),
            DecodeError::TooManyHops,
            "checked before any hop is read"
        );
        assert_eq!(
            body_error::<Announce>(Version::Lite05, &hex("01 00 02 09")),
            DecodeError::ShortBody
        );
        assert_eq!(
            body_error::<Announce>(Version::Lite05, &hex("01 02 c3 28 00")),
            DecodeError::InvalidUtf8
        );
        assert_eq!(
            body_error::<AnnounceOk>(Version::Lite05, &hex("07 01 00")),
            DecodeError::TrailingBytes
        );

        let mut buf = Vec::new();
        let long = announce(AnnounceStatus::Active, "x", &[1; MAX_HOPS + 1]);
        assert_eq!(
            long.encode(Version::Lite05, &mut buf),
            Err(EncodeError::TooLong("hop list"))
        );
        let restart = announce(AnnounceStatus::Restart, "x", &[]);
        assert!(restart.encode(Version::Lite04, &mut buf).is_err());
        assert!(buf.is_empty());
    }

    #[test]
    fn lite04_has_no_announce_ok() {
        assert!(AnnounceOk::decode(Version::Lite04, &hex("02 07 01")).is_err());
        assert!(AnnounceOk::default()
            .encode(Version::Lite04, &mut Vec::new())
            .is_err());
    }
}
