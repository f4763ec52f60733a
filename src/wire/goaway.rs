//! The Goaway stream (bidi 0x5), PROTOCOL.md §3.7: the peer is shutting down.

use super::codec::{put_string, Reader};
use super::{DecodeError, EncodeError, Message, Version};

/// The longest NewSessionURI accepted or sent, in bytes.
pub const MAX_GOAWAY_URI: usize = 8192;

/// `GOAWAY = Length | NewSessionURI (s)`; moq-relay sends an empty URI.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Goaway {
    pub uri: String,
}

impl Message for Goaway {
    const NAME: &'static str = "GOAWAY";

    fn is_defined(version: Version) -> bool {
        match version {
            Version::Lite04 | Version::Lite05 => true,
        }
    }

    fn encode_body(&self, _: Version, buf: &mut Vec<u8>) -> Result<(), EncodeError> {
        if self.uri.len() > MAX_GOAWAY_URI {
            return Err(EncodeError::TooLong("GOAWAY URI"));
        }
        put_string(buf, &self.uri)
    }

    fn decode_body(_: Version, body: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let uri = body.string()?;
        if uri.len() > MAX_GOAWAY_URI {
            return Err(DecodeError::TooLong("GOAWAY URI"));
        }
        Ok(Self { uri })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::testing::{
        after_type, body_error, check_golden, check_round_trip, framed, hex,
    };

    #[test]
    fn golden_vector_and_round_trip() {
        for version in Version::ALL {
            check_golden(
                version,
                &Goaway::default(),
                after_type(0x05, &hex("05 01 00")),
            );
            let uri = Goaway {
                uri: "https://relay.example/anon".into(),
            };
            check_round_trip(version, &uri);
        }
    }

    #[test]
    fn uri_is_capped() {
        let at_cap = Goaway {
            uri: "u".repeat(MAX_GOAWAY_URI),
        };
        check_round_trip(Version::Lite05, &at_cap);
        let over = Goaway {
            uri: "u".repeat(MAX_GOAWAY_URI + 1),
        };
        assert_eq!(
            over.encode(Version::Lite05, &mut Vec::new()),
            Err(EncodeError::TooLong("GOAWAY URI"))
        );
        let mut body = Vec::new();
        put_string(&mut body, &over.uri).unwrap();
        assert_eq!(
            body_error::<Goaway>(Version::Lite04, &body),
            DecodeError::TooLong("GOAWAY URI")
        );
        assert_eq!(
            Goaway::decode(Version::Lite05, &framed(&hex("02 c3 28"))),
            Err(DecodeError::InvalidUtf8)
        );
    }
}
