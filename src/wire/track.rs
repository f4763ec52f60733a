//! The Track stream (lite-05 bidi 0x6), PROTOCOL.md §3.3: TRACK asks for a track's
//! publisher properties, TRACK_INFO answers.

use super::codec::{put_path, put_string, put_varint, Reader};
use super::{DecodeError, EncodeError, Message, Version};

/// `TRACK = Length | Broadcast (s) | Track (s)`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrackRequest {
    /// Normalized broadcast path.
    pub broadcast: String,
    /// Track name, byte for byte (not a path).
    pub track: String,
}

/// `TRACK_INFO = Length | PubPriority (8) | Ordered (8) | LatencyMax (i) | Timescale (i)`.
/// The retired Ordered byte is written as 0 and ignored on read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrackInfo {
    pub priority: u8,
    /// The publisher's max age: how long non-latest groups are kept.
    pub max_latency_ms: u64,
    /// Timestamp units per second; never 0.
    pub timescale: u64,
}

impl Default for TrackInfo {
    /// moq-net 0.3.18's defaults: priority 127, 5 s, milliseconds.
    fn default() -> Self {
        Self {
            priority: 127,
            max_latency_ms: 5000,
            timescale: 1000,
        }
    }
}

impl Message for TrackRequest {
    const NAME: &'static str = "TRACK";

    fn is_defined(version: Version) -> bool {
        match version {
            Version::Lite04 => false,
            Version::Lite05 => true,
        }
    }

    fn encode_body(&self, _: Version, buf: &mut Vec<u8>) -> Result<(), EncodeError> {
        put_path(buf, &self.broadcast)?;
        put_string(buf, &self.track)
    }

    fn decode_body(_: Version, body: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            broadcast: body.path()?,
            track: body.string()?,
        })
    }
}

impl Message for TrackInfo {
    const NAME: &'static str = "TRACK_INFO";

    fn is_defined(version: Version) -> bool {
        match version {
            Version::Lite04 => false,
            Version::Lite05 => true,
        }
    }

    fn encode_body(&self, _: Version, buf: &mut Vec<u8>) -> Result<(), EncodeError> {
        if self.timescale == 0 {
            return Err(EncodeError::InvalidValue("TRACK_INFO timescale"));
        }
        buf.extend_from_slice(&[self.priority, 0]);
        put_varint(buf, self.max_latency_ms)?;
        put_varint(buf, self.timescale)
    }

    fn decode_body(_: Version, body: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let priority = body.u8()?;
        body.u8()?;
        let max_latency_ms = body.varint()?;
        let timescale = body.varint()?;
        if timescale == 0 {
            return Err(DecodeError::InvalidValue("TRACK_INFO timescale"));
        }
        Ok(Self {
            priority,
            max_latency_ms,
            timescale,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::testing::{after_type, body_error, check_golden, check_round_trip, hex};

    const V: Version = Version::Lite05;

    #[test]
    fn golden_vectors() {
        let request = TrackRequest {
            broadcast: "clock".into(),
            track: "seconds".into(),
        };
        check_golden(
            V,
            &request,
            after_type(
                0x06,
                &hex("06 0e 05 63 6c 6f 63 6b 07 73 65 63 6f 6e 64 73"),
            ),
        );
        check_golden(V, &TrackInfo::default(), &hex("06 7f 00 53 88 43 e8"));
    }

    #[test]
    fn round_trips() {
        check_round_trip(
            V,
            &TrackRequest {
                broadcast: String::new(),
                track: "/literal//slashes/".into(),
            },
        );
        check_round_trip(
            V,
            &TrackInfo {
                priority: 255,
                max_latency_ms: 30_000,
                timescale: 90_000,
            },
        );
    }

    #[test]
    fn ordered_is_ignored_and_timescale_must_be_set() {
        let (info, _) = TrackInfo::decode(V, &hex("06 7f 01 53 88 43 e8")).unwrap();
        assert_eq!(info, TrackInfo::default());
        assert_eq!(
            body_error::<TrackInfo>(V, &hex("7f 00 00 00")),
            DecodeError::InvalidValue("TRACK_INFO timescale")
        );
        let zero = TrackInfo {
            timescale: 0,
            ..TrackInfo::default()
        };
        assert!(zero.encode(V, &mut Vec::new()).is_err());
    }

    #[test]
    fn track_names_are_literal() {
        let (request, _) = TrackRequest::decode(V, &hex("05 01 2f 02 2f 2f")).unwrap();
        assert_eq!(request.broadcast, "");
        assert_eq!(request.track, "//");
    }

    #[test]
    fn lite04_has_no_track_stream() {
        let wire = hex("06 7f 00 53 88 43 e8");
        assert!(TrackInfo::decode(Version::Lite04, &wire).is_err());
        assert!(TrackRequest::default()
            .encode(Version::Lite04, &mut Vec::new())
            .is_err());
    }
}
