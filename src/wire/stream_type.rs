//! The type varint that opens every moq-lite stream, and which versions define each type
//! (PROTOCOL.md §2.4). An unknown or version-invalid type is [`DecodeError::UnknownType`]:
//! the session resets that stream with Internal `0x0` and stays up.

use super::codec::{put_varint, Reader};
use super::{DecodeError, EncodeError, Version};

/// The type of a bidirectional stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BidiType {
    Announce = 1,
    Subscribe = 2,
    Fetch = 3,
    Probe = 4,
    Goaway = 5,
    Track = 6,
}

/// The type of a unidirectional stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UniType {
    Group = 0,
    Setup = 1,
}

impl BidiType {
    /// The type for `code`, if any version defines one.
    pub fn from_code(code: u64) -> Option<Self> {
        Some(match code {
            1 => Self::Announce,
            2 => Self::Subscribe,
            3 => Self::Fetch,
            4 => Self::Probe,
            5 => Self::Goaway,
            6 => Self::Track,
            _ => return None,
        })
    }

    /// Whether `version` defines this stream type.
    pub fn is_defined(self, version: Version) -> bool {
        match version {
            Version::Lite04 => !matches!(self, Self::Fetch | Self::Track),
            Version::Lite05 => true,
        }
    }

    /// Reads the stream type at the front of `buf`, returning it and the bytes it used.
    pub fn decode(version: Version, buf: &[u8]) -> Result<(Self, usize), DecodeError> {
        decode_type(buf, |code| {
            Self::from_code(code).filter(|kind| kind.is_defined(version))
        })
    }

    /// Appends the stream type.
    pub fn encode(self, version: Version, buf: &mut Vec<u8>) -> Result<(), EncodeError> {
        encode_type(self.is_defined(version), self as u64, version, buf)
    }
}

impl UniType {
    /// The type for `code`, if any version defines one.
    pub fn from_code(code: u64) -> Option<Self> {
        match code {
            0 => Some(Self::Group),
            1 => Some(Self::Setup),
            _ => None,
        }
    }

    /// Whether `version` defines this stream type.
    pub fn is_defined(self, version: Version) -> bool {
        match version {
            Version::Lite04 => self == Self::Group,
            Version::Lite05 => true,
        }
    }

    /// Reads the stream type at the front of `buf`, returning it and the bytes it used.
    pub fn decode(version: Version, buf: &[u8]) -> Result<(Self, usize), DecodeError> {
        decode_type(buf, |code| {
            Self::from_code(code).filter(|kind| kind.is_defined(version))
        })
    }

    /// Appends the stream type.
    pub fn encode(self, version: Version, buf: &mut Vec<u8>) -> Result<(), EncodeError> {
        encode_type(self.is_defined(version), self as u64, version, buf)
    }
}

fn decode_type<T>(
    buf: &[u8],
    parse: impl FnOnce(u64) -> Option<T>,
) -> Result<(T, usize), DecodeError> {
    let mut reader = Reader::new(buf);
    let code = reader.varint()?;
    let kind = parse(code).ok_or(DecodeError::UnknownType(code))?;
    Ok((kind, reader.consumed()))
}

fn encode_type(
    defined: bool,
    code: u64,
    version: Version,
    buf: &mut Vec<u8>,
) -> Result<(), EncodeError> {
    if !defined {
        return Err(EncodeError::Unsupported {
            message: "stream type",
            version,
        });
    }
    put_varint(buf, code)
}

#[cfg(test)]
mod tests {
    use super::*;

    const BIDI: [BidiType; 6] = [
        BidiType::Announce,
        BidiType::Subscribe,
        BidiType::Fetch,
        BidiType::Probe,
        BidiType::Goaway,
        BidiType::Track,
    ];

    #[test]
    fn codes_match_the_table() {
        let codes: Vec<u64> = BIDI.iter().map(|kind| *kind as u64).collect();
        assert_eq!(codes, [1, 2, 3, 4, 5, 6]);
        assert_eq!(UniType::Group as u64, 0);
        assert_eq!(UniType::Setup as u64, 1);
        for kind in BIDI {
            assert_eq!(BidiType::from_code(kind as u64), Some(kind));
        }
        assert_eq!(
            BidiType::from_code(0),
            None,
            "Session (0) is gone since lite-03"
        );
        assert_eq!(BidiType::from_code(7), None);
        assert_eq!(UniType::from_code(2), None);
    }

    #[test]
    fn lite04_lacks_fetch_track_and_setup() {
        for kind in BIDI {
            let expected = !matches!(kind, BidiType::Fetch | BidiType::Track);
            assert_eq!(kind.is_defined(Version::Lite04), expected, "{kind:?}");
            assert!(kind.is_defined(Version::Lite05));
        }
        assert!(UniType::Group.is_defined(Version::Lite04));
        assert!(!UniType::Setup.is_defined(Version::Lite04));
        assert!(UniType::Setup.is_defined(Version::Lite05));
    }

    #[test]
    fn decode_and_encode() {
        assert_eq!(
            BidiType::decode(Version::Lite05, &[0x06, 0x0e]),
            Ok((BidiType::Track, 1))
        );
        assert_eq!(
            BidiType::decode(Version::Lite04, &[0x06]),
            Err(DecodeError::UnknownType(6))
        );
        assert_eq!(
            BidiType::decode(Version::Lite05, &[0x40, 0x02]),
            Ok((BidiType::Subscribe, 2)),
            "non-minimal type varint"
        );
        assert_eq!(
            BidiType::decode(Version::Lite05, &[0x00]),
            Err(DecodeError::UnknownType(0))
        );
        assert_eq!(
            BidiType::decode(Version::Lite05, &[0x40]),
            Err(DecodeError::Incomplete)
        );
        assert_eq!(
            BidiType::decode(Version::Lite05, &[]),
            Err(DecodeError::Incomplete)
        );
        assert_eq!(
            UniType::decode(Version::Lite04, &[0x01]),
            Err(DecodeError::UnknownType(1))
        );
        assert_eq!(
            UniType::decode(Version::Lite05, &[0x01, 0x01, 0x00]),
            Ok((UniType::Setup, 1))
        );

        let mut buf = Vec::new();
        BidiType::Goaway.encode(Version::Lite04, &mut buf).unwrap();
        UniType::Setup.encode(Version::Lite05, &mut buf).unwrap();
        assert_eq!(buf, [0x05, 0x01]);
        assert!(UniType::Setup.encode(Version::Lite04, &mut buf).is_err());
        assert!(BidiType::Fetch.encode(Version::Lite04, &mut buf).is_err());
        assert_eq!(buf, [0x05, 0x01]);
    }
}
