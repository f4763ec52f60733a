//! Base64 (RFC 4648) for the few places that need it: the standard padded alphabet for PEM
//! files and the WebSocket accept key, the unpadded URL-safe one for JWTs and JWK files.

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const URL_ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// Encodes `data` as padded base64.
pub fn encode(data: &[u8]) -> String {
    encode_with(data, ALPHABET, true)
}

/// Encodes `data` as unpadded base64url.
pub fn encode_url(data: &[u8]) -> String {
    encode_with(data, URL_ALPHABET, false)
}

/// Decodes padded or unpadded base64, ignoring ASCII whitespace.
pub fn decode(text: &str) -> Result<Vec<u8>, String> {
    decode_with(text, ALPHABET)
}

/// Decodes base64url, padded or not, ignoring ASCII whitespace.
pub fn decode_url(text: &str) -> Result<Vec<u8>, String> {
    decode_with(text, URL_ALPHABET)
}

fn encode_with(data: &[u8], alphabet: &[u8; 64], pad: bool) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(alphabet[(n >> (18 - 6 * i) & 0x3f) as usize] as char);
            } else if pad {
                out.push('=');
            }
        }
    }
    out
}

fn decode_with(text: &str, alphabet: &[u8; 64]) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(text.len() / 4 * 3);
    let (mut acc, mut bits, mut padding) = (0u32, 0u32, 0usize);
    for c in text.bytes().filter(|c| !c.is_ascii_whitespace()) {
        if c == b'=' {
            padding += 1;
            continue;
        }
        if padding > 0 {
            return Err("data after padding".to_string());
        }
        let v = alphabet
            .iter()
            .position(|&a| a == c)
            .ok_or_else(|| format!("unexpected character {:?}", c as char))?;
        acc = acc << 6 | v as u32;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    if padding > 2 || bits >= 6 {
        return Err("truncated data".to_string());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc4648_vectors_and_round_trips() {
        for (plain, coded) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(encode(plain.as_bytes()), coded);
            assert_eq!(decode(coded).unwrap(), plain.as_bytes());
        }
        for len in 0..40 {
            let data: Vec<u8> = (0..len).map(|i| (i * 37 + 11) as u8).collect();
            assert_eq!(decode(&encode(&data)).unwrap(), data);
        }
        assert!(decode("Zm8=x").is_err());
        assert!(decode("Z").is_err());
        assert!(decode("Zm!=").is_err());
    }

    #[test]
    fn url_alphabet_is_unpadded_and_accepts_padding() {
        let data = [0xfb, 0xff, 0xbf, 0x01];
        assert_eq!(encode(&data), "+/+/AQ==");
        assert_eq!(encode_url(&data), "-_-_AQ");
        assert_eq!(decode_url("-_-_AQ").unwrap(), data);
        assert_eq!(decode_url("-_-_AQ==").unwrap(), data);
        assert!(decode_url("+/+/AQ").is_err());
        for len in 0..40 {
            let data: Vec<u8> = (0..len).map(|i| (i * 53 + 7) as u8).collect();
            assert_eq!(decode_url(&encode_url(&data)).unwrap(), data);
        }
    }
}
