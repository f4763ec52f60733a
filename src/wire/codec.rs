//! Field-level coding shared by every message: the [`Reader`] cursor, the `put_*` writers
//! and length-prefixed framing (PROTOCOL.md §2.1 notation: `(i)`, `(8)`, `(s)`, "+1",
//! `(z)`, "len-prefixed").

use super::{varint, DecodeError, EncodeError};
use crate::path;

/// The largest length-prefixed body we accept or send: 1 MiB.
///
/// moq-net 0.3.18 allows 64 MiB for control messages and 64 KiB for SETUP. No control
/// message of a compliant peer comes near 1 MiB (a SETUP carrying a JWT stays under 64 KiB),
/// and the cap bounds what a peer can make us buffer before a message is complete.
pub const MAX_MESSAGE_SIZE: usize = 1 << 20;

/// A cursor over bytes from a peer.
///
/// Running out of bytes is [`DecodeError::Incomplete`] for a [`Reader::new`] (a stream whose
/// next bytes may still arrive) and [`DecodeError::ShortBody`] for a [`Reader::whole`] (a
/// length-prefixed body or a datagram, which is all there is).
#[derive(Debug)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    shortfall: DecodeError,
}

impl<'a> Reader<'a> {
    /// A reader over the bytes of a stream received so far.
    pub fn new(buf: &'a [u8]) -> Self {
        Self {
            buf,
            pos: 0,
            shortfall: DecodeError::Incomplete,
        }
    }

    /// A reader over a complete unit: a message body or a datagram.
    pub fn whole(buf: &'a [u8]) -> Self {
        Self {
            shortfall: DecodeError::ShortBody,
            ..Self::new(buf)
        }
    }

    /// How many bytes have been read.
    pub fn consumed(&self) -> usize {
        self.pos
    }

    /// The bytes not yet read.
    pub fn remaining(&self) -> &'a [u8] {
        &self.buf[self.pos..]
    }

    /// Fails with [`DecodeError::TrailingBytes`] unless every byte has been read.
    pub fn finish(&self) -> Result<(), DecodeError> {
        match self.remaining().is_empty() {
            true => Ok(()),
            false => Err(DecodeError::TrailingBytes),
        }
    }

    /// The next `len` raw bytes `(b)`; nothing is allocated.
    pub fn bytes(&mut self, len: u64) -> Result<&'a [u8], DecodeError> {
        let rest = self.remaining();
        if len > rest.len() as u64 {
            return Err(self.shortfall);
        }
        self.pos += len as usize;
        Ok(&rest[..len as usize])
    }

    /// One raw byte `(8)`.
    pub fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.bytes(1)?[0])
    }

    /// A varint `(i)`.
    pub fn varint(&mut self) -> Result<u64, DecodeError> {
        let (value, len) = varint::decode(self.remaining()).ok_or(self.shortfall)?;
        self.pos += len;
        Ok(value)
    }

    /// A zigzag varint `(z)`.
    pub fn zigzag(&mut self) -> Result<i64, DecodeError> {
        self.varint().map(varint::unzigzag)
    }

    /// An optional "+1" varint: `0` is `None`, `n + 1` is `Some(n)`.
    pub fn plus_one(&mut self) -> Result<Option<u64>, DecodeError> {
        Ok(self.varint()?.checked_sub(1))
    }

    /// A string `(s)`, taken byte for byte (track names).
    pub fn string(&mut self) -> Result<String, DecodeError> {
        let len = self.varint()?;
        let bytes = self.bytes(len)?;
        let text = std::str::from_utf8(bytes).map_err(|_| DecodeError::InvalidUtf8)?;
        Ok(text.to_owned())
    }

    /// A broadcast path or prefix `(s)`, normalized (PROTOCOL.md §2.2).
    pub fn path(&mut self) -> Result<String, DecodeError> {
        Ok(path::normalize(&self.string()?)?)
    }

    /// A `Length (i)` and the body it announces, as a [`Reader::whole`].
    ///
    /// A length above [`MAX_MESSAGE_SIZE`] fails at once, before its body is awaited.
    pub fn framed(&mut self) -> Result<Reader<'a>, DecodeError> {
        let len = self.varint()?;
        if len > MAX_MESSAGE_SIZE as u64 {
            return Err(DecodeError::TooLong("message"));
        }
        self.bytes(len).map(Reader::whole)
    }
}

/// Runs `write`, restoring `buf` to its previous length if it fails.
pub(super) fn atomic(
    buf: &mut Vec<u8>,
    write: impl FnOnce(&mut Vec<u8>) -> Result<(), EncodeError>,
) -> Result<(), EncodeError> {
    let start = buf.len();
    let result = write(buf);
    if result.is_err() {
        buf.truncate(start);
    }
    result
}

/// Appends a varint `(i)`.
pub(super) fn put_varint(buf: &mut Vec<u8>, value: u64) -> Result<(), EncodeError> {
    varint::encode(value, buf)
}

/// Appends a zigzag varint `(z)`.
pub(super) fn put_zigzag(buf: &mut Vec<u8>, value: i64) -> Result<(), EncodeError> {
    varint::encode(varint::zigzag(value), buf)
}

/// Appends an optional "+1" varint.
pub(super) fn put_plus_one(buf: &mut Vec<u8>, value: Option<u64>) -> Result<(), EncodeError> {
    let encoded = match value {
        None => 0,
        Some(value) => value
            .checked_add(1)
            .ok_or(EncodeError::ValueTooLarge(value))?,
    };
    varint::encode(encoded, buf)
}

/// Appends a string `(s)`.
pub(super) fn put_string(buf: &mut Vec<u8>, text: &str) -> Result<(), EncodeError> {
    put_varint(buf, text.len() as u64)?;
    buf.extend_from_slice(text.as_bytes());
    Ok(())
}

/// Appends a broadcast path or prefix `(s)` in its normalized form.
pub(super) fn put_path(buf: &mut Vec<u8>, path: &str) -> Result<(), EncodeError> {
    put_string(buf, &path::normalize(path)?)
}

/// Appends `Length (i)` and the body that `write` produces; the whole append is atomic.
pub(super) fn put_framed(
    buf: &mut Vec<u8>,
    write: impl FnOnce(&mut Vec<u8>) -> Result<(), EncodeError>,
) -> Result<(), EncodeError> {
    atomic(buf, |buf| {
        let start = buf.len();
        write(buf)?;
        let len = buf.len() - start;
        if len > MAX_MESSAGE_SIZE {
            return Err(EncodeError::TooLong("message"));
        }
        put_varint(buf, len as u64)?;
        // The length went in after the body; rotate it in front.
        let prefix = buf.len() - start - len;
        buf[start..].rotate_right(prefix);
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::path::PathError;

    #[test]
    fn stream_reader_reports_incomplete_and_whole_reader_short_body() {
        assert_eq!(Reader::new(&[]).u8(), Err(DecodeError::Incomplete));
        assert_eq!(Reader::new(&[0x40]).varint(), Err(DecodeError::Incomplete));
        assert_eq!(Reader::whole(&[]).u8(), Err(DecodeError::ShortBody));
        assert_eq!(Reader::whole(&[0x40]).varint(), Err(DecodeError::ShortBody));
        assert_eq!(
            Reader::whole(&[0x03, b'a']).string(),
            Err(DecodeError::ShortBody)
        );
    }

    #[test]
    fn strings_are_utf8() {
        let mut reader = Reader::new(&[0x02, b'h', b'i', 0x01]);
        assert_eq!(reader.string().unwrap(), "hi");
        assert_eq!(reader.consumed(), 3);
        assert_eq!(reader.finish(), Err(DecodeError::TrailingBytes));
        assert_eq!(
            Reader::new(&[0x02, 0xc3, 0x28]).string(),
            Err(DecodeError::InvalidUtf8)
        );
        let mut buf = Vec::new();
        put_string(&mut buf, "é").unwrap();
        assert_eq!(buf, [0x02, 0xc3, 0xa9]);
    }

    #[test]
    fn paths_are_normalized_both_ways() {
        let mut buf = Vec::new();
        put_path(&mut buf, "/anon//clock/").unwrap();
        assert_eq!(buf, b"\x0aanon/clock");
        assert_eq!(Reader::new(b"\x07/clock/").path().unwrap(), "clock");
        let deep = "a/".repeat(33);
        assert_eq!(
            put_path(&mut Vec::new(), &deep),
            Err(EncodeError::Path(PathError::TooManyParts))
        );
        let mut wire = Vec::new();
        put_string(&mut wire, &deep).unwrap();
        assert_eq!(
            Reader::new(&wire).path(),
            Err(DecodeError::Path(PathError::TooManyParts))
        );
    }

    #[test]
    fn plus_one_maps_zero_to_none() {
        let mut buf = Vec::new();
        put_plus_one(&mut buf, None).unwrap();
        put_plus_one(&mut buf, Some(0)).unwrap();
        put_plus_one(&mut buf, Some(28)).unwrap();
        assert_eq!(buf, [0x00, 0x01, 0x1d]);
        let mut reader = Reader::new(&buf);
        assert_eq!(reader.plus_one(), Ok(None));
        assert_eq!(reader.plus_one(), Ok(Some(0)));
        assert_eq!(reader.plus_one(), Ok(Some(28)));
        assert_eq!(
            put_plus_one(&mut buf, Some(varint::MAX)),
            Err(EncodeError::ValueTooLarge(varint::MAX + 1))
        );
        assert_eq!(
            put_plus_one(&mut buf, Some(u64::MAX)),
            Err(EncodeError::ValueTooLarge(u64::MAX))
        );
    }

    #[test]
    fn framing_prefixes_the_length_and_is_atomic() {
        let mut buf = vec![0xaa];
        put_framed(&mut buf, |buf| {
            buf.extend_from_slice(&[7; 100]);
            Ok(())
        })
        .unwrap();
        assert_eq!(&buf[..3], [0xaa, 0x40, 100]);
        assert_eq!(buf.len(), 103);

        let failed = put_framed(&mut buf, |buf| {
            buf.push(1);
            put_varint(buf, u64::MAX)
        });
        assert_eq!(failed, Err(EncodeError::ValueTooLarge(u64::MAX)));
        assert_eq!(
            buf.len(),
            103,
            "a failed encode leaves the buffer as it was"
        );

        let oversize = put_framed(&mut buf, |buf| {
            buf.resize(buf.len() + MAX_MESSAGE_SIZE + 1, 0);
            Ok(())
        });
        assert_eq!(oversize, Err(EncodeError::TooLong("message")));
        assert_eq!(buf.len(), 103);
    }

    #[test]
    fn framed_checks_the_length_before_waiting_for_the_body() {
        let mut wire = Vec::new();
        put_varint(&mut wire, MAX_MESSAGE_SIZE as u64 + 1).unwrap();
        assert_eq!(
            Reader::new(&wire).framed().err(),
            Some(DecodeError::TooLong("message"))
        );
        let mut wire = Vec::new();
        put_varint(&mut wire, MAX_MESSAGE_SIZE as u64).unwrap();
        assert_eq!(
            Reader::new(&wire).framed().err(),
            Some(DecodeError::Incomplete)
        );
        let huge = [0xff; 8];
        assert_eq!(
            Reader::new(&huge).framed().err(),
            Some(DecodeError::TooLong("message"))
        );
    }
}
