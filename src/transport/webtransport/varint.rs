//! QUIC variable-length integers (RFC 9000 §16) over a cursor, for the HTTP/3 decoders.

use super::H3Error;
use crate::wire::varint;

/// Reads one varint at `*pos`, advancing it; [`H3Error::Short`] if the input ends first.
pub fn read(buf: &[u8], pos: &mut usize) -> Result<u64, H3Error> {
    let rest = buf.get(*pos..).ok_or(H3Error::Short)?;
    let (value, len) = varint::decode(rest).ok_or(H3Error::Short)?;
    *pos += len;
    Ok(value)
}

/// Appends `value` in its shortest form. Values above 2^62 - 1 are a caller bug; they are
/// clamped to the maximum rather than panicking.
pub fn write(buf: &mut Vec<u8>, value: u64) {
    let _ = varint::encode(value.min(varint::MAX), buf);
}
