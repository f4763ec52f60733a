//! Capsules on the CONNECT stream (RFC 9297 §3.2: `type (i) | length (i) | value`), of which
//! WebTransport uses CLOSE_WEBTRANSPORT_SESSION and DRAIN_WEBTRANSPORT_SESSION.

use super::{varint, H3Error};

/// CLOSE_WEBTRANSPORT_SESSION.
pub const CLOSE: u64 = 0x2843;
/// DRAIN_WEBTRANSPORT_SESSION.
pub const DRAIN: u64 = 0x78ae;
/// The longest close reason, in bytes.
pub const MAX_REASON: usize = 1024;
/// The largest capsule we buffer (unknown ones are skipped, but still held whole).
pub const MAX_CAPSULE: u64 = 16 * 1024;

/// A decoded capsule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Capsule {
    Close {
        code: u32,
        reason: String,
    },
    Drain,
    /// Any other type: skip it.
    Unknown(u64),
}

impl Capsule {
    /// Decodes a capsule from the front of `buf` as `(capsule, bytes used)`;
    /// [`H3Error::Short`] until the whole capsule is there.
    pub fn decode(buf: &[u8]) -> Result<(Self, usize), H3Error> {
        let mut pos = 0;
        let ty = varint::read(buf, &mut pos)?;
        let len = varint::read(buf, &mut pos)?;
        if len > MAX_CAPSULE {
            return Err(H3Error::TooLarge("capsule"));
        }
        let end = pos + len as usize;
        let value = buf.get(pos..end).ok_or(H3Error::Short)?;
        let capsule = match ty {
            CLOSE => {
                let (code, reason) = value
                    .split_first_chunk::<4>()
                    .ok_or(H3Error::Malformed("CLOSE_WEBTRANSPORT_SESSION"))?;
                if reason.len() > MAX_REASON {
                    return Err(H3Error::TooLarge("close reason"));
                }
                let reason = std::str::from_utf8(reason)
                    .map_err(|_| H3Error::Malformed("close reason (not UTF-8)"))?;
                Self::Close {
                    code: u32::from_be_bytes(*code),
                    reason: reason.to_string(),
                }
            }
            DRAIN if value.is_empty() => Self::Drain,
            DRAIN => return Err(H3Error::Malformed("DRAIN_WEBTRANSPORT_SESSION")),
            other => Self::Unknown(other),
        };
        Ok((capsule, end))
    }

    /// Appends the capsule. A close reason is cut to [`MAX_REASON`] bytes at a character
    /// boundary.
    pub fn encode(&self, buf: &mut Vec<u8>) {
        match self {
            Self::Close { code, reason } => {
                let mut cut = reason.len().min(MAX_REASON);
                while !reason.is_char_boundary(cut) {
                    cut -= 1;
                }
                varint::write(buf, CLOSE);
                varint::write(buf, 4 + cut as u64);
                buf.extend_from_slice(&code.to_be_bytes());
                buf.extend_from_slice(&reason.as_bytes()[..cut]);
            }
            Self::Drain => {
                varint::write(buf, DRAIN);
                varint::write(buf, 0);
            }
            Self::Unknown(ty) => {
                varint::write(buf, *ty);
                varint::write(buf, 0);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const UNAUTHORIZED: [u8; 19] = [
        0x68, 0x43, 0x10, 0x00, 0x00, 0x00, 0x02, 0x75, 0x6e, 0x61, 0x75, 0x74, 0x68, 0x6f, 0x72,
        0x69, 0x7a, 0x65, 0x64,
    ];

    #[test]
    fn golden() {
        let close = Capsule::Close {
            code: 2,
            reason: "unauthorized".into(),
        };
        let mut buf = Vec::new();
        close.encode(&mut buf);
        assert_eq!(buf, UNAUTHORIZED);
        assert_eq!(Capsule::decode(&buf).unwrap(), (close, 19));

        buf.clear();
        Capsule::Drain.encode(&mut buf);
        assert_eq!(buf, [0x80, 0x00, 0x78, 0xae, 0x00]);
        assert_eq!(Capsule::decode(&buf).unwrap(), (Capsule::Drain, 5));
    }

    #[test]
    fn unknown_skipped() {
        let buf = [0x29, 0x03, 1, 2, 3, 0x80, 0x00, 0x78, 0xae, 0x00];
        let (c, used) = Capsule::decode(&buf).unwrap();
        assert_eq!((c, used), (Capsule::Unknown(0x29), 5));
        assert_eq!(Capsule::decode(&buf[used..]).unwrap().0, Capsule::Drain);
    }

    #[test]
    fn malformed_and_truncated() {
        for cut in 0..UNAUTHORIZED.len() {
            assert_eq!(Capsule::decode(&UNAUTHORIZED[..cut]), Err(H3Error::Short));
        }
        assert!(Capsule::decode(&[0x68, 0x43, 0x03, 0, 0, 0]).is_err());
        assert!(Capsule::decode(&[0x68, 0x43, 0x05, 0, 0, 0, 0, 0xff]).is_err());
        assert!(Capsule::decode(&[0x80, 0x00, 0x78, 0xae, 0x01, 0x00]).is_err());
        assert!(Capsule::decode(&[0x29, 0xbf, 0xff, 0xff, 0xff]).is_err());
        let long = Capsule::Close {
            code: 7,
            reason: "é".repeat(MAX_REASON),
        };
        let mut buf = Vec::new();
        long.encode(&mut buf);
        match Capsule::decode(&buf).unwrap().0 {
            Capsule::Close { code, reason } => {
                assert_eq!(code, 7);
                assert_eq!(reason.len(), MAX_REASON);
            }
            other => panic!("{other:?}"),
        }
        let mut too_long = vec![0x68, 0x43, 0x44, 0x05, 0, 0, 0, 0];
        too_long.extend(std::iter::repeat_n(b'a', MAX_REASON + 1));
        assert_eq!(
            Capsule::decode(&too_long),
            Err(H3Error::TooLarge("close reason"))
        );
    }
}
