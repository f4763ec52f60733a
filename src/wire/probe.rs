//! The Probe stream (bidi 0x4), PROTOCOL.md §3.7 and §4.1: bandwidth and RTT reports.

use super::codec::{put_varint, Reader};
use super::{DecodeError, EncodeError, Message, Version};

/// `PROBE = Length | Bitrate (i) | RTT (i)`; 0 means unknown.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Probe {
    /// Bits per second.
    pub bitrate: u64,
    /// Milliseconds.
    pub rtt: u64,
}

impl Message for Probe {
    const NAME: &'static str = "PROBE";

    fn is_defined(version: Version) -> bool {
        match version {
            Version::Lite04 | Version::Lite05 => true,
        }
    }

    fn encode_body(&self, _: Version, buf: &mut Vec<u8>) -> Result<(), EncodeError> {
        put_varint(buf, self.bitrate)?;
        put_varint(buf, self.rtt)
    }

    fn decode_body(_: Version, body: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            bitrate: body.varint()?,
            rtt: body.varint()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::testing::{check_golden, check_round_trip, hex};

    #[test]
    fn golden_vector_and_round_trip() {
        let probe = Probe {
            bitrate: 2_000_000,
            rtt: 25,
        };
        for version in Version::ALL {
            check_golden(version, &probe, &hex("05 80 1e 84 80 19"));
            check_round_trip(version, &Probe::default());
        }
    }
}
