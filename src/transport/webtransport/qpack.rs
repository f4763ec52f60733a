//! QPACK field sections (RFC 9204 §4.5) with the static table only.
//!
//! We advertise no dynamic table (no QPACK_MAX_TABLE_CAPACITY setting), so a peer's field
//! section must have Required Insert Count 0 and never refer to dynamic entries. Strings may
//! be Huffman coded (Chrome codes everything). We encode with static references and plain
//! literals, which every decoder accepts.

use super::{huffman, static_table, H3Error};

/// The most field lines we accept in one section.
pub const MAX_FIELDS: usize = 64;
/// The largest decoded section we accept: the sum over fields of name + value + 32
/// (RFC 9114 §4.2.2), as we advertise in SETTINGS_MAX_FIELD_SECTION_SIZE.
pub const MAX_SECTION_SIZE: usize = 16384;

/// A decoded list of header fields, in order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Headers {
    pub fields: Vec<(String, String)>,
}

impl Headers {
    /// The value of the first field named `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// How many fields are named `name`.
    pub fn count(&self, name: &str) -> usize {
        self.fields.iter().filter(|(n, _)| n == name).count()
    }
}

/// Reads a prefix integer (RFC 7541 §5.1) whose first `bits` bits sit in `buf[*pos]`.
fn read_int(buf: &[u8], pos: &mut usize, bits: u32) -> Result<u64, H3Error> {
    let mask = (1u16 << bits) as u64 - 1;
    let first = *buf.get(*pos).ok_or(H3Error::Short)?;
    *pos += 1;
    let mut value = u64::from(first) & mask;
    if value < mask {
        return Ok(value);
    }
    let mut shift = 0u32;
    loop {
        let byte = *buf.get(*pos).ok_or(H3Error::Short)?;
        *pos += 1;
        if shift > 56 {
            return Err(H3Error::TooLarge("QPACK integer"));
        }
        value += u64::from(byte & 0x7f) << shift;
        shift += 7;
        if byte & 0x80 == 0 {
            return Ok(value);
        }
    }
}

/// Appends a prefix integer: `flags` fills the bits above the `bits`-bit prefix.
fn write_int(buf: &mut Vec<u8>, flags: u8, bits: u32, mut value: u64) {
    let mask = (1u16 << bits) as u64 - 1;
    if value < mask {
        buf.push(flags | value as u8);
        return;
    }
    buf.push(flags | mask as u8);
    value -= mask;
    while value >= 0x80 {
        buf.push(0x80 | (value & 0x7f) as u8);
        value >>= 7;
    }
    buf.push(value as u8);
}

/// Reads a string literal whose Huffman flag is the bit just above a `bits`-bit length prefix.
fn read_string(buf: &[u8], pos: &mut usize, bits: u32) -> Result<String, H3Error> {
    let first = *buf.get(*pos).ok_or(H3Error::Short)?;
    let huffman_coded = first & (1 << bits) != 0;
    let len = read_int(buf, pos, bits)?;
    if len > MAX_SECTION_SIZE as u64 {
        return Err(H3Error::TooLarge("QPACK string"));
    }
    let end = *pos + len as usize;
    let raw = buf.get(*pos..end).ok_or(H3Error::Short)?;
    *pos = end;
    let bytes = if huffman_coded {
        huffman::decode(raw, MAX_SECTION_SIZE)?
    } else {
        raw.to_vec()
    };
    String::from_utf8(bytes).map_err(|_| H3Error::Malformed("QPACK string (not UTF-8)"))
}

/// Appends a plain (not Huffman-coded) string literal with a `bits`-bit length prefix.
fn write_string(buf: &mut Vec<u8>, flags: u8, bits: u32, s: &str) {
    write_int(buf, flags, bits, s.len() as u64);
    buf.extend_from_slice(s.as_bytes());
}

fn static_entry(index: u64) -> Result<(&'static str, &'static str), H3Error> {
    static_table::get(index).ok_or(H3Error::Malformed("QPACK static index"))
}

/// Decodes a whole field section (a HEADERS frame payload).
pub fn decode(buf: &[u8]) -> Result<Headers, H3Error> {
    // A truncated section inside a complete frame is malformed, not "short".
    let short = |e: H3Error| match e {
        H3Error::Short => H3Error::Malformed("QPACK field section (truncated)"),
        e => e,
    };
    let mut pos = 0;
    let required_insert_count = read_int(buf, &mut pos, 8).map_err(short)?;
    if required_insert_count != 0 {
        return Err(H3Error::DynamicTable);
    }
    // Sign bit and Delta Base: meaningless without a dynamic table.
    read_int(buf, &mut pos, 7).map_err(short)?;

    let mut headers = Headers::default();
    let mut size = 0usize;
    while pos < buf.len() {
        let first = buf[pos];
        let (name, value) = if first & 0x80 != 0 {
            // 1T: indexed field line.
            if first & 0x40 == 0 {
                return Err(H3Error::DynamicTable);
            }
            let index = read_int(buf, &mut pos, 6).map_err(short)?;
            let (n, v) = static_entry(index)?;
            (n.to_string(), v.to_string())
        } else if first & 0x40 != 0 {
            // 01NT: literal field line with name reference.
            if first & 0x10 == 0 {
                return Err(H3Error::DynamicTable);
            }
            let index = read_int(buf, &mut pos, 4).map_err(short)?;
            let (n, _) = static_entry(index)?;
            let value = read_string(buf, &mut pos, 7).map_err(short)?;
            (n.to_string(), value)
        } else if first & 0x20 != 0 {
            // 001NH: literal field line with literal name.
            let name = read_string(buf, &mut pos, 3).map_err(short)?;
            let value = read_string(buf, &mut pos, 7).map_err(short)?;
            (name, value)
        } else {
            // 0001 indexed post-base, 0000 literal with post-base name: dynamic only.
            return Err(H3Error::DynamicTable);
        };
        if name.is_empty() || name.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(H3Error::Malformed("QPACK field name"));
        }
        size += name.len() + value.len() + 32;
        if size > MAX_SECTION_SIZE {
            return Err(H3Error::TooLarge("QPACK field section"));
        }
        if headers.fields.len() == MAX_FIELDS {
            return Err(H3Error::TooLarge("QPACK field count"));
        }
        headers.fields.push((name, value));
    }
    Ok(headers)
}

/// Encodes a field section: exact static matches as indexed lines, static names as name
/// references, everything else as literals; no Huffman coding.
pub fn encode(fields: &[(&str, &str)]) -> Vec<u8> {
    let mut buf = vec![0x00, 0x00];
    for &(name, value) in fields {
        if let Some(index) = static_table::find(name, value) {
            write_int(&mut buf, 0xc0, 6, index);
        } else if let Some(index) = static_table::find_name(name) {
            write_int(&mut buf, 0x50, 4, index);
            write_string(&mut buf, 0x00, 7, value);
        } else {
            write_string(&mut buf, 0x20, 3, name);
            write_string(&mut buf, 0x00, 7, value);
        }
    }
    buf
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(h: &Headers) -> Vec<(&str, &str)> {
        h.fields
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect()
    }

    #[test]
    fn round_trip() {
        let input = [
            (":status", "200"),
            (":status", "401"),
            ("sec-webtransport-http3-draft", "draft02"),
            ("wt-protocol", "\"moq-lite-05\""),
            ("origin", "https://example.com"),
        ];
        let buf = encode(&input);
        assert_eq!(&buf[..3], &[0x00, 0x00, 0xd9]);
        // :status 401 by name reference to index 24: 0x5f 0x09, length 3.
        assert_eq!(&buf[3..9], &[0x5f, 0x09, 0x03, b'4', b'0', b'1']);
        assert_eq!(fields(&decode(&buf).unwrap()), input);
    }

    #[test]
    fn huffman_and_long_literals() {
        // Literal name "wt-available-protocols" Huffman coded, value Huffman coded.
        let mut buf = vec![0x00, 0x00];
        let name = "wt-available-protocols";
        let value = "\"moq-lite-05\", \"moq-lite-04\"";
        write_int(
            &mut buf,
            0x28,
            3,
            huffman::encoded_len(name.as_bytes()) as u64,
        );
        huffman::encode(name.as_bytes(), &mut buf);
        write_int(
            &mut buf,
            0x80,
            7,
            huffman::encoded_len(value.as_bytes()) as u64,
        );
        huffman::encode(value.as_bytes(), &mut buf);
        // :path by name reference (index 1), Huffman value.
        let path = "/anon/room?jwt=abc";
        write_int(&mut buf, 0x50, 4, 1);
        write_int(
            &mut buf,
            0x80,
            7,
            huffman::encoded_len(path.as_bytes()) as u64,
        );
        huffman::encode(path.as_bytes(), &mut buf);
        let h = decode(&buf).unwrap();
        assert_eq!(fields(&h), [(name, value), (":path", path)]);
        assert_eq!(h.get(":path"), Some(path));
    }

    #[test]
    fn prefix_integers() {
        for value in [0u64, 1, 14, 15, 16, 127, 128, 300, 1 << 20, 1 << 40] {
            for bits in [3, 4, 6, 7, 8] {
                let mut buf = Vec::new();
                write_int(&mut buf, 0, bits, value);
                let mut pos = 0;
                assert_eq!(read_int(&buf, &mut pos, bits).unwrap(), value);
                assert_eq!(pos, buf.len());
            }
        }
        let mut pos = 0;
        assert_eq!(
            read_int(&[0xff; 20], &mut pos, 8),
            Err(H3Error::TooLarge("QPACK integer"))
        );
    }

    #[test]
    fn malformed() {
        // Required Insert Count non-zero.
        assert_eq!(decode(&[0x01, 0x00]), Err(H3Error::DynamicTable));
        // Dynamic indexed line, dynamic name reference, post-base forms.
        assert_eq!(decode(&[0x00, 0x00, 0x80]), Err(H3Error::DynamicTable));
        assert_eq!(
            decode(&[0x00, 0x00, 0x40, 0x00]),
            Err(H3Error::DynamicTable)
        );
        assert_eq!(decode(&[0x00, 0x00, 0x10]), Err(H3Error::DynamicTable));
        assert_eq!(decode(&[0x00, 0x00, 0x00]), Err(H3Error::DynamicTable));
        // Static index out of range (99).
        assert!(decode(&[0x00, 0x00, 0xff, 0x24]).is_err());
        // Truncated prefix, string, Huffman.
        assert!(decode(&[]).is_err());
        assert!(decode(&[0x00]).is_err());
        assert!(decode(&[0x00, 0x00, 0x51, 0x05, b'/']).is_err());
        assert!(decode(&[0x00, 0x00, 0x51, 0x81, 0x00]).is_err());
        // Uppercase name, empty name.
        assert!(decode(&[0x00, 0x00, 0x21, b'A', 0x00]).is_err());
        assert!(decode(&[0x00, 0x00, 0x20, 0x00]).is_err());
        // Too many fields.
        let many: Vec<(&str, &str)> = (0..MAX_FIELDS + 1).map(|_| (":path", "/")).collect();
        assert_eq!(
            decode(&encode(&many)),
            Err(H3Error::TooLarge("QPACK field count"))
        );
        // Too large.
        let big = "x".repeat(MAX_SECTION_SIZE);
        assert!(decode(&encode(&[("a", &big)])).is_err());
        // Every truncation of a valid section fails or yields a prefix of its fields.
        let buf = encode(&[(":method", "CONNECT"), ("wt-protocol", "\"moq-lite-05\"")]);
        for cut in 0..buf.len() {
            let _ = decode(&buf[..cut]);
        }
    }
}
