//! The certificate fingerprint served at `/certificate.sha256` (PROTOCOL.md §7.4): lowercase
//! hex SHA-256 of the leaf certificate's DER, as browsers' `serverCertificateHashes` take it.

use boring::hash::{hash, MessageDigest};

/// Lowercase hex SHA-256 of `der` (64 characters, no separators).
pub fn fingerprint_sha256(der: &[u8]) -> String {
    let digest = hash(MessageDigest::sha256(), der).expect("SHA-256 does not fail");
    let mut hex = String::with_capacity(64);
    for byte in digest.iter() {
        hex.push_str(&format!("{byte:02x}"));
    }
    hex
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::tls::generate;

    #[test]
    fn fingerprint_is_sha256_of_the_leaf() {
        assert_eq!(
            fingerprint_sha256(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let cert = generate(&["localhost".to_string()]).unwrap();
        let fp = &cert.fingerprint_sha256;
        assert_eq!(fp.len(), 64);
        assert!(
            fp.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
            "{fp}"
        );
        // An independent SHA-256 (ring's) of the leaf's DER.
        let der = cert.leaf().to_der().unwrap();
        let digest = ring::digest::digest(&ring::digest::SHA256, &der);
        let expected: String = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(fp, &expected);
    }
}
