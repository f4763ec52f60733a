//! Varint helpers over [`crate::wire::varint`] shaped for frame parsing: reading advances a
//! slice, writing cannot fail for values the connection produces.

use super::FrameError;
use crate::wire::varint;

/// Reads a varint from the front of `buf` and advances past it.
pub fn get(buf: &mut &[u8]) -> Result<u64, FrameError> {
    let (value, used) = varint::decode(buf).ok_or(FrameError::Truncated)?;
    *buf = &buf[used..];
    Ok(value)
}

/// Appends `value`, clamped to the varint maximum (our values never exceed it).
pub fn put(value: u64, out: &mut Vec<u8>) {
    // Clamping keeps this infallible; callers only pass counts and ids below 2^62.
    let _ = varint::encode(value.min(varint::MAX), out);
}

/// The encoded size of `value`.
pub fn len(value: u64) -> usize {
    match value {
        0..=0x3f => 1,
        0x40..=0x3fff => 2,
        0x4000..=0x3fff_ffff => 4,
        _ => 8,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn get_put_len() {
        for v in [
            0u64,
            63,
            64,
            16383,
            16384,
            (1 << 30) - 1,
            1 << 30,
            varint::MAX,
        ] {
            let mut out = Vec::new();
            put(v, &mut out);
            assert_eq!(out.len(), len(v));
            let mut s = out.as_slice();
            assert_eq!(get(&mut s), Ok(v));
            assert!(s.is_empty());
            for cut in 0..out.len() {
                assert_eq!(get(&mut &out[..cut]), Err(FrameError::Truncated));
            }
        }
    }
}
