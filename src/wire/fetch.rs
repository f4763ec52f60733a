//! The Fetch stream (lite-05 bidi 0x3), PROTOCOL.md §3.6: FETCH asks for one whole group;
//! the reply is lite-05 FRAMEs ([`FrameHeader`](super::FrameHeader)), then FIN.

use super::codec::{put_path, put_string, put_varint, Reader};
use super::{DecodeError, EncodeError, Message, Version};

/// `FETCH = Length | Broadcast (s) | Track (s) | Priority (8) | Group (i)`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Fetch {
    /// Normalized broadcast path.
    pub broadcast: String,
    /// Track name, byte for byte.
    pub track: String,
    pub priority: u8,
    /// Absolute group sequence (not "+1").
    pub group: u64,
}

impl Message for Fetch {
    const NAME: &'static str = "FETCH";

    fn is_defined(version: Version) -> bool {
        match version {
            Version::Lite04 => false,
            Version::Lite05 => true,
        }
    }

    fn encode_body(&self, _: Version, buf: &mut Vec<u8>) -> Result<(), EncodeError> {
        put_path(buf, &self.broadcast)?;
        put_string(buf, &self.track)?;
        buf.push(self.priority);
        put_varint(buf, self.group)
    }

    fn decode_body(_: Version, body: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            broadcast: body.path()?,
            track: body.string()?,
            priority: body.u8()?,
            group: body.varint()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::testing::{after_type, check_golden, check_round_trip, hex};

    #[test]
    fn golden_vector() {
        let fetch = Fetch {
            broadcast: "clock".into(),
            track: "seconds".into(),
            priority: 0,
            group: 28,
        };
        let wire = hex("03 10 05 63 6c 6f 63 6b 07 73 65 63 6f 6e 64 73 00 1c");
        check_golden(Version::Lite05, &fetch, after_type(0x03, &wire));
    }

    #[test]
    fn round_trips_on_lite05_only() {
        let fetch = Fetch {
            broadcast: "a/b/c".into(),
            track: "catalog.json".into(),
            priority: 200,
            group: 0,
        };
        check_round_trip(Version::Lite05, &fetch);
        assert!(fetch.encode(Version::Lite04, &mut Vec::new()).is_err());
        assert!(Fetch::decode(Version::Lite04, &[0x00]).is_err());
    }
}
