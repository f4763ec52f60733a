//! The HPACK/QPACK Huffman code (RFC 7541 Appendix B), for string literals in field sections.
//!
//! The code is canonical: codes of one length are consecutive and follow symbol order, and
//! each length's first code continues from the previous length's last. So the table is just
//! the code length of every symbol (256 octets and EOS), and the codes are derived from it at
//! compile time. Decoding walks one bit at a time, which is plenty for header-sized strings.

use super::H3Error;

/// Code length in bits of each symbol 0..=255, then EOS (256).
const LENGTHS: [u8; 257] = [
    13, 23, 28, 28, 28, 28, 28, 28, 28, 24, 30, 28, 28, 30, 28, 28, // 0..
    28, 28, 28, 28, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 28, // 16..
    6, 10, 10, 12, 13, 6, 8, 11, 10, 10, 8, 11, 8, 6, 6, 6, // 32..
    5, 5, 5, 6, 6, 6, 6, 6, 6, 6, 7, 8, 15, 6, 12, 10, // 48..
    13, 6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, // 64..
    7, 7, 7, 7, 7, 7, 7, 7, 8, 7, 8, 13, 19, 13, 14, 6, // 80..
    15, 5, 6, 5, 6, 5, 6, 6, 6, 5, 7, 7, 6, 6, 6, 5, // 96..
    6, 7, 6, 5, 5, 6, 7, 7, 7, 7, 7, 15, 11, 14, 13, 28, // 112..
    20, 22, 20, 20, 22, 22, 22, 23, 22, 23, 23, 23, 23, 23, 24, 23, // 128..
    24, 24, 22, 23, 24, 23, 23, 23, 23, 21, 22, 23, 22, 23, 23, 24, // 144..
    22, 21, 20, 22, 22, 23, 23, 21, 23, 22, 22, 24, 21, 22, 23, 23, // 160..
    21, 21, 22, 21, 23, 22, 23, 23, 20, 22, 22, 22, 23, 22, 22, 23, // 176..
    26, 26, 20, 19, 22, 23, 22, 25, 26, 26, 26, 27, 27, 26, 24, 25, // 192..
    19, 21, 26, 27, 27, 26, 27, 24, 21, 21, 26, 26, 28, 27, 27, 27, // 208..
    20, 24, 20, 21, 22, 21, 21, 23, 22, 22, 25, 25, 24, 24, 26, 23, // 224..
    26, 27, 26, 26, 27, 27, 27, 27, 27, 28, 27, 27, 27, 27, 27, 26, // 240..
    30, // 256..
];

const EOS: usize = 256;
const MAX_LEN: usize = 30;

/// The canonical tables: per-symbol codes, and per-length first code, count and offset into
/// the symbols sorted by (length, symbol).
struct Tables {
    codes: [u32; 257],
    first: [u32; MAX_LEN + 1],
    count: [u16; MAX_LEN + 1],
    offset: [u16; MAX_LEN + 1],
    sorted: [u16; 257],
}

const fn build() -> Tables {
    let mut count = [0u16; MAX_LEN + 1];
    let mut i = 0;
    while i < 257 {
        count[LENGTHS[i] as usize] += 1;
        i += 1;
    }
    let mut first = [0u32; MAX_LEN + 1];
    let mut offset = [0u16; MAX_LEN + 1];
    let mut code = 0u32;
    let mut seen = 0u16;
    let mut len = 1;
    while len <= MAX_LEN {
        first[len] = code;
        offset[len] = seen;
        code = (code + count[len] as u32) << 1;
        seen += count[len];
        len += 1;
    }
    let mut codes = [0u32; 257];
    let mut sorted = [0u16; 257];
    let mut next = first;
    let mut fill = offset;
    let mut sym = 0;
    while sym < 257 {
        let len = LENGTHS[sym] as usize;
        codes[sym] = next[len];
        next[len] += 1;
        sorted[fill[len] as usize] = sym as u16;
        fill[len] += 1;
        sym += 1;
    }
    Tables {
        codes,
        first,
        count,
        offset,
        sorted,
    }
}

static TABLES: Tables = build();

/// Decodes a Huffman-coded string. Padding must be at most 7 bits, all ones (a prefix of
/// EOS); an encoded EOS is an error (RFC 7541 §5.2). The output is at most `max` bytes.
pub fn decode(input: &[u8], max: usize) -> Result<Vec<u8>, H3Error> {
    let t = &TABLES;
    let mut out = Vec::with_capacity(input.len().saturating_mul(8) / 5 + 1);
    let mut code = 0u32;
    let mut len = 0usize;
    for &byte in input {
        for shift in (0..8).rev() {
            code = code << 1 | u32::from(byte >> shift & 1);
            len += 1;
            if len > MAX_LEN {
                return Err(H3Error::Huffman);
            }
            let index = code.wrapping_sub(t.first[len]);
            if code >= t.first[len] && index < u32::from(t.count[len]) {
                let sym = t.sorted[(t.offset[len] as u32 + index) as usize] as usize;
                if sym == EOS {
                    return Err(H3Error::Huffman);
                }
                if out.len() == max {
                    return Err(H3Error::TooLarge("Huffman string"));
                }
                out.push(sym as u8);
                code = 0;
                len = 0;
            }
        }
    }
    // Leftover bits are padding: fewer than 8, and all ones.
    if len > 7 || code != (1u32 << len) - 1 {
        return Err(H3Error::Huffman);
    }
    Ok(out)
}

/// The Huffman-coded size of `input` in bytes.
pub fn encoded_len(input: &[u8]) -> usize {
    let bits: usize = input.iter().map(|&b| LENGTHS[b as usize] as usize).sum();
    bits.div_ceil(8)
}

/// Appends the Huffman coding of `input`, padded with ones.
pub fn encode(input: &[u8], buf: &mut Vec<u8>) {
    let mut acc = 0u64;
    let mut bits = 0u32;
    for &b in input {
        let len = u32::from(LENGTHS[b as usize]);
        acc = acc << len | u64::from(TABLES.codes[b as usize]);
        bits += len;
        while bits >= 8 {
            bits -= 8;
            buf.push((acc >> bits) as u8);
        }
        acc &= (1u64 << bits) - 1;
    }
    if bits > 0 {
        let pad = 8 - bits;
        buf.push((acc << pad | ((1u64 << pad) - 1)) as u8);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_codes() {
        // Spot checks against RFC 7541 Appendix B.
        let t = &TABLES;
        assert_eq!((t.codes[0], LENGTHS[0]), (0x1ff8, 13));
        assert_eq!((t.codes[b' ' as usize], LENGTHS[b' ' as usize]), (0x14, 6));
        assert_eq!((t.codes[b'0' as usize], LENGTHS[b'0' as usize]), (0x0, 5));
        assert_eq!((t.codes[b'a' as usize], LENGTHS[b'a' as usize]), (0x3, 5));
        assert_eq!((t.codes[b'A' as usize], LENGTHS[b'A' as usize]), (0x21, 6));
        assert_eq!((t.codes[b'z' as usize], LENGTHS[b'z' as usize]), (0x7b, 7));
        assert_eq!(
            (t.codes[b'~' as usize], LENGTHS[b'~' as usize]),
            (0x1ffd, 13)
        );
        assert_eq!((t.codes[255], LENGTHS[255]), (0x3ffffee, 26));
        assert_eq!((t.codes[EOS], LENGTHS[EOS]), (0x3fffffff, 30));
        // The last code of the longest length is all ones: the code is complete.
        assert_eq!(t.first[30] + u32::from(t.count[30]) - 1, (1 << 30) - 1);
    }

    #[test]
    fn rfc_7541_examples() {
        // RFC 7541 C.4.1: "www.example.com".
        let www = [
            0xf1, 0xe3, 0xc2, 0xe5, 0xf2, 0x3a, 0x6b, 0xa0, 0xab, 0x90, 0xf4, 0xff,
        ];
        assert_eq!(decode(&www, 64).unwrap(), b"www.example.com");
        let mut buf = Vec::new();
        encode(b"www.example.com", &mut buf);
        assert_eq!(buf, www);
        assert_eq!(encoded_len(b"www.example.com"), www.len());
        // C.4.2: "no-cache".
        let nc = [0xa8, 0xeb, 0x10, 0x64, 0x9c, 0xbf];
        assert_eq!(decode(&nc, 64).unwrap(), b"no-cache");
        // C.6.1: "Mon, 21 Oct 2013 20:13:21 GMT".
        let date = [
            0xd0, 0x7a, 0xbe, 0x94, 0x10, 0x54, 0xd4, 0x44, 0xa8, 0x20, 0x05, 0x95, 0x04, 0x0b,
            0x81, 0x66, 0xe0, 0x82, 0xa6, 0x2d, 0x1b, 0xff,
        ];
        assert_eq!(decode(&date, 64).unwrap(), b"Mon, 21 Oct 2013 20:13:21 GMT");
    }

    #[test]
    fn round_trip_all_bytes() {
        let all: Vec<u8> = (0..=255).collect();
        let mut buf = Vec::new();
        encode(&all, &mut buf);
        assert_eq!(decode(&buf, 256).unwrap(), all);
        assert!(decode(&buf, 255).is_err());
    }

    #[test]
    fn bad_padding_and_eos() {
        // 'a' is 00011; padding with zeros is invalid.
        assert_eq!(decode(&[0b0001_1000], 8), Err(H3Error::Huffman));
        assert_eq!(decode(&[0b0001_1111], 8).unwrap(), b"a");
        // A whole byte of ones is padding longer than 7 bits.
        assert_eq!(decode(&[0b0001_1111, 0xff], 8), Err(H3Error::Huffman));
        // EOS encoded explicitly (30 ones, then padding).
        assert_eq!(decode(&[0xff, 0xff, 0xff, 0xff], 8), Err(H3Error::Huffman));
        assert_eq!(decode(&[], 8).unwrap(), b"");
    }
}
