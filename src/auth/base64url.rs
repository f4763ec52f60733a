//! The base64url form JOSE uses (RFC 7515 §2): the URL-safe alphabet, written without
//! padding. Tokens and key files from other tools sometimes carry padding, so reading accepts
//! it either way. The `base64` crate does the work; this only fixes its configuration.

use base64::alphabet::URL_SAFE;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine;

const ENGINE: GeneralPurpose = GeneralPurpose::new(
    &URL_SAFE,
    GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Encodes `data` as unpadded base64url.
pub(crate) fn encode(data: &[u8]) -> String {
    ENGINE.encode(data)
}

/// Decodes base64url, padded or not.
pub(crate) fn decode(text: &str) -> Result<Vec<u8>, base64::DecodeError> {
    ENGINE.decode(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_without_padding_and_reads_either_way() {
        assert_eq!(encode(b"\xfb\xff"), "-_8");
        assert_eq!(decode("-_8").unwrap(), b"\xfb\xff");
        assert_eq!(decode("-_8=").unwrap(), b"\xfb\xff");
        assert!(
            decode("+/8").is_err(),
            "the standard alphabet is not base64url"
        );
    }
}
