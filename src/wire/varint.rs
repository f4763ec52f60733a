//! QUIC variable-length integers (RFC 9000 §16) and the zigzag mapping of signed values
//! (PROTOCOL.md §2.1). We send minimal encodings and accept non-minimal ones.

use super::EncodeError;

/// The largest value a varint can carry, 2^62 − 1.
pub const MAX: u64 = (1 << 62) - 1;

/// Appends the minimal encoding of `value`.
pub fn encode(value: u64, buf: &mut Vec<u8>) -> Result<(), EncodeError> {
    match value {
        0..=0x3f => buf.push(value as u8),
        0x40..=0x3fff => buf.extend_from_slice(&(0x4000 | value as u16).to_be_bytes()),
        0x4000..=0x3fff_ffff => buf.extend_from_slice(&(0x8000_0000 | value as u32).to_be_bytes()),
        0x4000_0000..=MAX => buf.extend_from_slice(&(0xc000_0000_0000_0000 | value).to_be_bytes()),
        _ => return Err(EncodeError::ValueTooLarge(value)),
    }
    Ok(())
}

/// Reads the varint at the front of `buf` as `(value, bytes used)`, or `None` if `buf`
/// ends before it does.
pub fn decode(buf: &[u8]) -> Option<(u64, usize)> {
    let first = *buf.first()?;
    let len = 1 << (first >> 6);
    let rest = buf.get(1..len)?;
    let value = rest.iter().fold(u64::from(first & 0x3f), |value, &byte| {
        value << 8 | u64::from(byte)
    });
    Some((value, len))
}

/// Maps a signed value onto an unsigned one so that small magnitudes stay small:
/// 0, −1, 1, −2, … become 0, 1, 2, 3, …
pub fn zigzag(value: i64) -> u64 {
    ((value << 1) ^ (value >> 63)) as u64
}

/// The inverse of [`zigzag`].
pub fn unzigzag(value: u64) -> i64 {
    (value >> 1) as i64 ^ -((value & 1) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoded(value: u64) -> Vec<u8> {
        let mut buf = Vec::new();
        encode(value, &mut buf).unwrap();
        buf
    }

    #[test]
    fn rfc9000_examples() {
        let examples: [(u64, &[u8]); 4] = [
            (37, &[0x25]),
            (15293, &[0x7b, 0xbd]),
            (494878333, &[0x9d, 0x7f, 0x3e, 0x7d]),
            (
                151288809941952652,
                &[0xc2, 0x19, 0x7c, 0x5e, 0xff, 0x14, 0xe8, 0x8c],
            ),
        ];
        for (value, bytes) in examples {
            assert_eq!(encoded(value), bytes);
            assert_eq!(decode(bytes), Some((value, bytes.len())));
        }
    }

    #[test]
    fn boundaries_use_the_minimal_length() {
        let lengths = [
            (0, 1),
            (0x3f, 1),
            (0x40, 2),
            (0x3fff, 2),
            (0x4000, 4),
            (0x3fff_ffff, 4),
            (0x4000_0000, 8),
            (MAX, 8),
        ];
        for (value, len) in lengths {
            let bytes = encoded(value);
            assert_eq!(bytes.len(), len, "{value:#x}");
            assert_eq!(decode(&bytes), Some((value, len)));
        }
        assert_eq!(
            encode(MAX + 1, &mut Vec::new()),
            Err(EncodeError::ValueTooLarge(MAX + 1))
        );
        assert_eq!(
            encode(u64::MAX, &mut Vec::new()),
            Err(EncodeError::ValueTooLarge(u64::MAX))
        );
    }

    #[test]
    fn non_minimal_encodings_are_accepted() {
        assert_eq!(decode(&[0x40, 0x25]), Some((37, 2)));
        assert_eq!(decode(&[0x80, 0, 0, 0x25]), Some((37, 4)));
        assert_eq!(decode(&[0xc0, 0, 0, 0, 0, 0, 0, 0x25]), Some((37, 8)));
    }

    #[test]
    fn truncated_varints_need_more_bytes() {
        let bytes = encoded(151288809941952652);
        for end in 0..bytes.len() {
            assert_eq!(decode(&bytes[..end]), None, "prefix of {end} bytes");
        }
        assert_eq!(
            decode(&[0x7b, 0xbd, 0xff]),
            Some((15293, 2)),
            "stops at its end"
        );
    }

    #[test]
    fn zigzag_examples() {
        assert_eq!(zigzag(1000), 2000);
        assert_eq!(encoded(zigzag(1000)), [0x47, 0xd0]);
        assert_eq!(encoded(zigzag(-40)), [0x40, 0x4f]);
        assert_eq!(
            encoded(zigzag(200_000_000_000)),
            [0xc0, 0x00, 0x00, 0x5d, 0x21, 0xdb, 0xa0, 0x00]
        );
        for value in [0, 1, -1, 2, -2, 1000, -40, i64::MAX, i64::MIN] {
            assert_eq!(unzigzag(zigzag(value)), value);
        }
        assert_eq!(zigzag(-1), 1);
        assert_eq!(zigzag(i64::MIN), u64::MAX);
    }
}
