//! TLS certificates: load a PEM chain and key from files, or generate a self-signed one, and
//! compute the SHA-256 fingerprint served at `/certificate.sha256` (PROTOCOL.md §7.4).
//!
//! - [`generate`]: ECDSA P-256 (rcgen), SANs = the names (IP SANs for IP literals; `localhost`
//!   adds 127.0.0.1 and ::1), CN = the first name, valid from now − 1 day for exactly 14 days,
//!   the longest Chrome accepts for `serverCertificateHashes`. The caller regenerates before
//!   [`Certificate::not_after`] (clients fetch the hash on every connect).
//! - [`load`]: a small PEM reader (CERTIFICATE blocks in order; one PRIVATE KEY, EC PRIVATE KEY
//!   or RSA PRIVATE KEY block; other blocks and text ignored; encrypted keys refused) and a
//!   minimal DER walker that reads the leaf's validity and public key, so a key that does not
//!   belong to the certificate is an error naming both files rather than a TLS failure later.
//! - [`Certificate::pem_files`] writes `cert.pem` and `key.pem` (mode 0600) for quiche, which
//!   loads PEM from paths; files are replaced atomically so a reload never sees half a key.
//!
//! Expired or not-yet-valid loaded certificates are accepted with a warning: refusing to start
//! would not make them valid, and operators see the warning in the journal.

use std::fmt;
use std::fs;
use std::io::{self, Write};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::config::TlsConfig;

/// Validity of a generated certificate: 14 days, Chrome's `serverCertificateHashes` limit.
pub const GENERATED_VALIDITY: Duration = Duration::from_secs(14 * 24 * 3600);

/// How far a generated certificate's `not_before` is back-dated, for clients with slow clocks.
pub const GENERATED_BACKDATE: Duration = Duration::from_secs(24 * 3600);

/// The encoding of [`Certificate::key_der`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// PKCS#8 `PrivateKeyInfo` (PEM `PRIVATE KEY`); always the case for generated keys.
    Pkcs8,
    /// SEC1 `ECPrivateKey` (PEM `EC PRIVATE KEY`).
    Sec1,
    /// PKCS#1 `RSAPrivateKey` (PEM `RSA PRIVATE KEY`).
    Pkcs1,
}

impl KeyKind {
    fn pem_label(self) -> &'static str {
        match self {
            KeyKind::Pkcs8 => "PRIVATE KEY",
            KeyKind::Sec1 => "EC PRIVATE KEY",
            KeyKind::Pkcs1 => "RSA PRIVATE KEY",
        }
    }
}

/// A certificate chain and its private key, in DER and PEM.
#[derive(Clone, PartialEq, Eq)]
pub struct Certificate {
    /// DER certificates, leaf first.
    pub chain_der: Vec<Vec<u8>>,
    /// DER private key, encoded as [`Certificate::key_kind`] says (PKCS#8 for generated keys).
    pub key_der: Vec<u8>,
    /// The chain as PEM `CERTIFICATE` blocks, leaf first.
    pub chain_pem: String,
    /// The key as one PEM block.
    pub key_pem: String,
    /// Lowercase hex SHA-256 of `chain_der[0]`: 64 characters, no separators.
    pub fingerprint_sha256: String,
    /// The leaf's `notAfter`.
    pub not_after: SystemTime,
    /// How `key_der` is encoded.
    pub key_kind: KeyKind,
}

impl fmt::Debug for Certificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print key material.
        f.debug_struct("Certificate")
            .field("chain_len", &self.chain_der.len())
            .field("fingerprint_sha256", &self.fingerprint_sha256)
            .field("not_after", &self.not_after)
            .field("key_kind", &self.key_kind)
            .finish_non_exhaustive()
    }
}

impl Certificate {
    /// Time left until `not_after` (zero once expired).
    pub fn remaining(&self) -> Duration {
        self.not_after
            .duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO)
    }

    /// Writes `cert.pem` (the chain) and `key.pem` (mode 0600) into `dir`, creating it if
    /// needed, each replaced atomically; returns their paths.
    pub fn pem_files(&self, dir: &Path) -> io::Result<(PathBuf, PathBuf)> {
        fs::create_dir_all(dir)?;
        let cert = dir.join("cert.pem");
        let key = dir.join("key.pem");
        write_atomically(&cert, self.chain_pem.as_bytes(), 0o644)?;
        write_atomically(&key, self.key_pem.as_bytes(), 0o600)?;
        Ok((cert, key))
    }
}

fn write_atomically(path: &Path, contents: &[u8], mode: u32) -> io::Result<()> {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("pem");
    let tmp = path.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
    let _ = fs::remove_file(&tmp);
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, mode);
    #[cfg(not(unix))]
    let _ = mode;
    let result = (|| {
        let mut file = options.open(&tmp)?;
        file.write_all(contents)?;
        file.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Why a certificate could not be loaded or generated.
#[derive(Debug)]
pub enum TlsError {
    /// A file could not be read.
    Read { path: PathBuf, source: io::Error },
    /// A file's contents are not what was expected.
    Parse { path: PathBuf, reason: String },
    /// The private key does not belong to the leaf certificate.
    Mismatch { cert: PathBuf, key: PathBuf },
    /// Generating a self-signed certificate failed.
    Generate(String),
}

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TlsError::Read { path, source } => {
                write!(f, "{}: cannot read: {source}", path.display())
            }
            TlsError::Parse { path, reason } => write!(f, "{}: {reason}", path.display()),
            TlsError::Mismatch { cert, key } => write!(
                f,
                "{}: the private key does not match the certificate in {}",
                key.display(),
                cert.display()
            ),
            TlsError::Generate(reason) => {
                write!(f, "cannot generate a self-signed certificate: {reason}")
            }
        }
    }
}

impl std::error::Error for TlsError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            TlsError::Read { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// The certificate `[server.tls]` asks for: loaded from its files, or generated.
pub fn from_config(config: &TlsConfig) -> Result<Certificate, TlsError> {
    match config {
        TlsConfig::Files { cert, key } => load(cert, key),
        TlsConfig::Generate { names } => generate(names),
    }
}

/// Lowercase hex SHA-256 of `der` (64 characters), as `/certificate.sha256` serves it.
pub fn fingerprint_sha256(der: &[u8]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, der);
    let mut hex = String::with_capacity(64);
    for byte in digest.as_ref() {
        hex.push_str(&format!("{byte:02x}"));
    }
    hex
}

/// Generates a self-signed ECDSA P-256 certificate for `names` (see the module docs).
pub fn generate(names: &[String]) -> Result<Certificate, TlsError> {
    use rcgen::{
        CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, KeyPair,
        KeyUsagePurpose, PKCS_ECDSA_P256_SHA256,
    };
    let gen_err = |e: rcgen::Error| TlsError::Generate(e.to_string());

    let mut sans: Vec<String> = Vec::new();
    for name in names {
        if name.trim().is_empty() {
            return Err(TlsError::Generate("empty host name".to_string()));
        }
        add_san(&mut sans, name);
    }
    let Some(first) = sans.first().cloned() else {
        return Err(TlsError::Generate("no host names given".to_string()));
    };
    if names
        .iter()
        .any(|n| n.trim().eq_ignore_ascii_case("localhost"))
    {
        add_san(&mut sans, "127.0.0.1");
        add_san(&mut sans, "::1");
    }

    let mut params = CertificateParams::new(sans).map_err(gen_err)?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, first);
    params.distinguished_name = dn;
    let not_before = whole_seconds(SystemTime::now() - GENERATED_BACKDATE);
    params.not_before = not_before.into();
    params.not_after = (not_before + GENERATED_VALIDITY).into();
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];

    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(gen_err)?;
    let cert = params.self_signed(&key).map_err(gen_err)?;
    let der = cert.der().to_vec();
    let leaf = x509::parse(&der).map_err(TlsError::Generate)?;
    let key_der = key.serialize_der();
    Ok(Certificate {
        chain_pem: pem::encode("CERTIFICATE", &der),
        key_pem: pem::encode(KeyKind::Pkcs8.pem_label(), &key_der),
        fingerprint_sha256: fingerprint_sha256(&der),
        not_after: leaf.not_after,
        chain_der: vec![der],
        key_der,
        key_kind: KeyKind::Pkcs8,
    })
}

/// Adds `name` to the SAN list unless present: IP literals (brackets removed) in canonical
/// form, DNS names lower-cased.
fn add_san(sans: &mut Vec<String>, name: &str) {
    let name = name.trim();
    let bare = name
        .strip_prefix('[')
        .and_then(|n| n.strip_suffix(']'))
        .unwrap_or(name);
    let name = match bare.parse::<IpAddr>() {
        Ok(ip) => ip.to_string(),
        Err(_) => name.to_ascii_lowercase(),
    };
    if !sans.contains(&name) {
        sans.push(name);
    }
}

fn whole_seconds(t: SystemTime) -> SystemTime {
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    UNIX_EPOCH + Duration::from_secs(secs)
}

/// Loads a PEM certificate chain (leaf first) and its PEM private key.
pub fn load(cert_path: &Path, key_path: &Path) -> Result<Certificate, TlsError> {
    let parse_err = |path: &Path, reason: String| TlsError::Parse {
        path: path.to_path_buf(),
        reason,
    };

    let cert_text = read_text(cert_path)?;
    let blocks = pem::parse(&cert_text).map_err(|r| parse_err(cert_path, r))?;
    let chain_der: Vec<Vec<u8>> = blocks
        .into_iter()
        .filter(|b| b.label == "CERTIFICATE")
        .map(|b| b.der)
        .collect();
    if chain_der.is_empty() {
        return Err(parse_err(
            cert_path,
            "no PEM CERTIFICATE block found".to_string(),
        ));
    }
    let mut leaf = None;
    for (i, der) in chain_der.iter().enumerate() {
        let info = x509::parse(der).map_err(|r| {
            parse_err(
                cert_path,
                format!("certificate {} of {}: {r}", i + 1, chain_der.len()),
            )
        })?;
        leaf.get_or_insert(info);
    }
    let leaf = leaf.expect("chain is not empty");

    let key_text = read_text(key_path)?;
    let blocks = pem::parse(&key_text).map_err(|r| parse_err(key_path, r))?;
    let mut keys = Vec::new();
    for block in blocks {
        let kind = match block.label.as_str() {
            "PRIVATE KEY" => KeyKind::Pkcs8,
            "EC PRIVATE KEY" => KeyKind::Sec1,
            "RSA PRIVATE KEY" => KeyKind::Pkcs1,
            "ENCRYPTED PRIVATE KEY" => {
                return Err(parse_err(
                    key_path,
                    "encrypted private keys are not supported (decrypt it with `openssl pkey`)"
                        .to_string(),
                ))
            }
            _ => continue,
        };
        keys.push((kind, block.der));
    }
    let (key_kind, key_der) = match keys.len() {
        1 => keys.pop().expect("one key"),
        0 => {
            return Err(parse_err(
                key_path,
                "no private key found (expected a PEM PRIVATE KEY, EC PRIVATE KEY or RSA PRIVATE KEY block)"
                    .to_string(),
            ))
        }
        n => {
            return Err(parse_err(
                key_path,
                format!("{n} private keys found; expected exactly one"),
            ))
        }
    };
    let public = x509::private_key_public(key_kind, &key_der).map_err(|r| {
        parse_err(
            key_path,
            format!("invalid {} block: {r}", key_kind.pem_label()),
        )
    })?;
    if let Some(public) = public {
        if !public.matches(&leaf) {
            return Err(TlsError::Mismatch {
                cert: cert_path.to_path_buf(),
                key: key_path.to_path_buf(),
            });
        }
    }

    let now = SystemTime::now();
    if leaf.not_after < now {
        tracing::warn!(
            cert = %cert_path.display(),
            "the certificate expired {}s ago",
            now.duration_since(leaf.not_after).map_or(0, |d| d.as_secs())
        );
    } else if leaf.not_before > now {
        tracing::warn!(cert = %cert_path.display(), "the certificate is not valid yet");
    }

    let chain_pem = chain_der
        .iter()
        .map(|der| pem::encode("CERTIFICATE", der))
        .collect();
    Ok(Certificate {
        fingerprint_sha256: fingerprint_sha256(&chain_der[0]),
        not_after: leaf.not_after,
        chain_pem,
        key_pem: pem::encode(key_kind.pem_label(), &key_der),
        chain_der,
        key_der,
        key_kind,
    })
}

fn read_text(path: &Path) -> Result<String, TlsError> {
    let bytes = fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    String::from_utf8(bytes).map_err(|_| TlsError::Parse {
        path: path.to_path_buf(),
        reason: "not a PEM file (not text; DER files must be converted to PEM)".to_string(),
    })
}

/// A minimal PEM reader and writer (RFC 7468).
mod pem {
    use base64::engine::general_purpose::STANDARD;
    use base64::Engine;

    pub(super) struct Block {
        pub label: String,
        pub der: Vec<u8>,
    }

    /// Every `-----BEGIN X-----` ... `-----END X-----` block, in order; text outside blocks
    /// is ignored.
    pub(super) fn parse(text: &str) -> Result<Vec<Block>, String> {
        let mut blocks = Vec::new();
        let mut current: Option<(String, usize, String)> = None; // label, line, base64
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            match &mut current {
                None => {
                    if let Some(label) = line
                        .strip_prefix("-----BEGIN ")
                        .and_then(|l| l.strip_suffix("-----"))
                    {
                        current = Some((label.to_string(), n + 1, String::new()));
                    }
                }
                Some((label, start, body)) => {
                    if let Some(end) = line
                        .strip_prefix("-----END ")
                        .and_then(|l| l.strip_suffix("-----"))
                    {
                        if end != label {
                            return Err(format!(
                                "line {}: END {end} closes BEGIN {label} of line {start}",
                                n + 1
                            ));
                        }
                        let der = decode_base64(body).map_err(|e| {
                            format!("the {label} block at line {start} is not valid base64: {e}")
                        })?;
                        blocks.push(Block {
                            label: std::mem::take(label),
                            der,
                        });
                        current = None;
                    } else if line.contains(':') {
                        // RFC 1421 headers, e.g. "Proc-Type: 4,ENCRYPTED".
                        return Err(format!(
                            "the {label} block at line {start} has headers ({line:?}); encrypted PEM is not supported"
                        ));
                    } else {
                        body.push_str(line);
                    }
                }
            }
        }
        if let Some((label, start, _)) = current {
            return Err(format!("the {label} block at line {start} has no END line"));
        }
        Ok(blocks)
    }

    pub(super) fn encode(label: &str, der: &[u8]) -> String {
        let b64 = STANDARD.encode(der);
        let mut out = format!("-----BEGIN {label}-----\n");
        for chunk in b64.as_bytes().chunks(64) {
            out.push_str(std::str::from_utf8(chunk).expect("base64 is ASCII"));
            out.push('\n');
        }
        out.push_str(&format!("-----END {label}-----\n"));
        out
    }

    fn decode_base64(text: &str) -> Result<Vec<u8>, String> {
        let text: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
        let out = STANDARD.decode(text).map_err(|e| e.to_string())?;
        if out.is_empty() {
            return Err("empty block".to_string());
        }
        Ok(out)
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn empty_blocks_are_refused() {
            assert!(decode_base64("").is_err());
            assert_eq!(decode_base64("Zm8=").unwrap(), b"fo");
        }

        #[test]
        fn blocks() {
            let text = format!(
                "Bag Attributes\n{}junk\n{}",
                encode("CERTIFICATE", b"abc"),
                encode("EC PRIVATE KEY", &[7; 100])
            );
            let blocks = parse(&text).unwrap();
            assert_eq!(blocks.len(), 2);
            assert_eq!(blocks[0].label, "CERTIFICATE");
            assert_eq!(blocks[0].der, b"abc");
            assert_eq!(blocks[1].der, [7; 100]);
            assert!(parse("-----BEGIN X-----\nAAAA\n").is_err());
            assert!(parse("-----BEGIN X-----\nAAAA\n-----END Y-----\n").is_err());
            assert!(
                parse("-----BEGIN X-----\nProc-Type: 4,ENCRYPTED\n\nAAAA\n-----END X-----\n")
                    .is_err()
            );
            assert!(parse("no blocks here").unwrap().is_empty());
        }
    }
}

/// Just enough DER and X.509 to read a certificate's validity and public key, and a private
/// key's public half.
mod x509 {
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    use super::KeyKind;

    pub(super) const OID_EC_PUBLIC_KEY: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
    pub(super) const OID_RSA_ENCRYPTION: &[u8] =
        &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
    pub(super) const OID_ED25519: &[u8] = &[0x2b, 0x65, 0x70];

    const SEQUENCE: u8 = 0x30;
    const INTEGER: u8 = 0x02;
    const BIT_STRING: u8 = 0x03;
    const OCTET_STRING: u8 = 0x04;
    const OID: u8 = 0x06;
    const UTC_TIME: u8 = 0x17;
    const GENERALIZED_TIME: u8 = 0x18;

    /// One DER element.
    #[derive(Clone, Copy)]
    pub(super) struct Tlv<'a> {
        pub tag: u8,
        pub content: &'a [u8],
        /// The whole element, header included.
        pub raw: &'a [u8],
    }

    pub(super) struct Reader<'a> {
        data: &'a [u8],
    }

    impl<'a> Reader<'a> {
        pub fn new(data: &'a [u8]) -> Self {
            Reader { data }
        }

        pub fn is_empty(&self) -> bool {
            self.data.is_empty()
        }

        pub fn peek_tag(&self) -> Option<u8> {
            self.data.first().copied()
        }

        pub fn read(&mut self) -> Result<Tlv<'a>, String> {
            let d = self.data;
            let (&tag, rest) = d.split_first().ok_or("truncated DER")?;
            if tag & 0x1f == 0x1f {
                return Err("unsupported DER tag".to_string());
            }
            let (&first, rest) = rest.split_first().ok_or("truncated DER")?;
            let (len, rest) = match first {
                n @ 0..=0x7f => (usize::from(n), rest),
                0x81..=0x84 => {
                    let n = usize::from(first & 0x7f);
                    if rest.len() < n {
                        return Err("truncated DER length".to_string());
                    }
                    let len = rest[..n]
                        .iter()
                        .fold(0usize, |acc, &b| acc << 8 | usize::from(b));
                    (len, &rest[n..])
                }
                _ => return Err("unsupported DER length".to_string()),
            };
            if rest.len() < len {
                return Err("truncated DER element".to_string());
            }
            let header = d.len() - rest.len();
            self.data = &rest[len..];
            Ok(Tlv {
                tag,
                content: &rest[..len],
                raw: &d[..header + len],
            })
        }

        /// Reads an element that must have `tag`, returning its content.
        pub fn expect(&mut self, tag: u8, what: &str) -> Result<&'a [u8], String> {
            let tlv = self.read().map_err(|e| format!("{what}: {e}"))?;
            if tlv.tag != tag {
                return Err(format!("{what}: unexpected DER tag 0x{:02x}", tlv.tag));
            }
            Ok(tlv.content)
        }

        /// Reads the next element only if it has `tag`.
        pub fn optional(&mut self, tag: u8) -> Result<Option<&'a [u8]>, String> {
            if self.peek_tag() == Some(tag) {
                Ok(Some(self.read()?.content))
            } else {
                Ok(None)
            }
        }
    }

    /// The parts of a certificate the relay (and its tests) look at.
    pub(super) struct CertInfo<'a> {
        /// The whole tbsCertificate element (what the signature covers).
        #[cfg_attr(not(test), allow(dead_code))]
        pub tbs: &'a [u8],
        pub not_before: SystemTime,
        pub not_after: SystemTime,
        /// `subject` (a DER Name, contents only).
        #[cfg_attr(not(test), allow(dead_code))]
        pub subject: &'a [u8],
        /// The SubjectPublicKeyInfo algorithm OID and parameters (raw TLV, if any).
        pub key_algorithm: &'a [u8],
        #[cfg_attr(not(test), allow(dead_code))]
        pub key_parameters: Option<&'a [u8]>,
        /// The subjectPublicKey bits.
        pub public_key: &'a [u8],
        /// `[3]` extensions (contents of the SEQUENCE), if any.
        #[cfg_attr(not(test), allow(dead_code))]
        pub extensions: Option<&'a [u8]>,
        #[cfg_attr(not(test), allow(dead_code))]
        pub signature_algorithm: &'a [u8],
        #[cfg_attr(not(test), allow(dead_code))]
        pub signature: &'a [u8],
    }

    pub(super) fn parse(der: &[u8]) -> Result<CertInfo<'_>, String> {
        let mut outer = Reader::new(der);
        let cert = outer.expect(SEQUENCE, "certificate")?;
        if !outer.is_empty() {
            return Err("trailing data after the certificate".to_string());
        }
        let mut cert = Reader::new(cert);
        let tbs = cert.read()?;
        if tbs.tag != SEQUENCE {
            return Err("tbsCertificate is not a SEQUENCE".to_string());
        }
        let mut sig_alg = Reader::new(cert.expect(SEQUENCE, "signatureAlgorithm")?);
        let signature_algorithm = sig_alg.expect(OID, "signatureAlgorithm")?;
        let signature = bit_string(cert.expect(BIT_STRING, "signature")?)?;

        let mut t = Reader::new(tbs.content);
        t.optional(0xa0)?; // version
        t.expect(INTEGER, "serialNumber")?;
        t.expect(SEQUENCE, "signature")?;
        t.expect(SEQUENCE, "issuer")?;
        let mut validity = Reader::new(t.expect(SEQUENCE, "validity")?);
        let not_before = time(validity.read()?).map_err(|e| format!("notBefore: {e}"))?;
        let not_after = time(validity.read()?).map_err(|e| format!("notAfter: {e}"))?;
        let subject = t.expect(SEQUENCE, "subject")?;
        let mut spki = Reader::new(t.expect(SEQUENCE, "subjectPublicKeyInfo")?);
        let mut alg = Reader::new(spki.expect(SEQUENCE, "algorithm")?);
        let key_algorithm = alg.expect(OID, "algorithm")?;
        let key_parameters = if alg.is_empty() {
            None
        } else {
            Some(alg.read()?.raw)
        };
        let public_key = bit_string(spki.expect(BIT_STRING, "subjectPublicKey")?)?;
        t.optional(0x81)?; // issuerUniqueID
        t.optional(0x82)?; // subjectUniqueID
        let extensions = match t.optional(0xa3)? {
            Some(ext) => Some(Reader::new(ext).expect(SEQUENCE, "extensions")?),
            None => None,
        };
        Ok(CertInfo {
            tbs: tbs.raw,
            not_before,
            not_after,
            subject,
            key_algorithm,
            key_parameters,
            public_key,
            extensions,
            signature_algorithm,
            signature,
        })
    }

    /// A BIT STRING's bytes (which must be whole octets).
    fn bit_string(content: &[u8]) -> Result<&[u8], String> {
        match content.split_first() {
            Some((0, bits)) => Ok(bits),
            _ => Err("unsupported BIT STRING".to_string()),
        }
    }

    fn time(tlv: Tlv<'_>) -> Result<SystemTime, String> {
        let s = std::str::from_utf8(tlv.content).map_err(|_| "not ASCII")?;
        let s = s.strip_suffix('Z').ok_or("not UTC")?;
        let (year, rest) = match tlv.tag {
            UTC_TIME if s.len() == 12 => {
                let yy: i64 = digits(&s[..2])?;
                (if yy >= 50 { 1900 + yy } else { 2000 + yy }, &s[2..])
            }
            GENERALIZED_TIME if s.len() >= 14 => (digits(&s[..4])?, &s[4..14]),
            _ => return Err("unsupported time format".to_string()),
        };
        let month = digits(&rest[0..2])?;
        let day = digits(&rest[2..4])?;
        let (h, m, sec): (i64, i64, i64) = (
            digits(&rest[4..6])?,
            digits(&rest[6..8])?,
            digits(&rest[8..10])?,
        );
        if !(1..=12).contains(&month) || !(1..=31).contains(&day) || h > 23 || m > 59 || sec > 60 {
            return Err("invalid date".to_string());
        }
        let secs = days_from_civil(year, month, day) * 86_400 + h * 3600 + m * 60 + sec;
        Ok(if secs >= 0 {
            UNIX_EPOCH + Duration::from_secs(secs as u64)
        } else {
            UNIX_EPOCH - Duration::from_secs(secs.unsigned_abs())
        })
    }

    fn digits(s: &str) -> Result<i64, String> {
        if s.bytes().all(|b| b.is_ascii_digit()) {
            s.parse().map_err(|_| "invalid number".to_string())
        } else {
            Err("invalid number".to_string())
        }
    }

    /// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
    fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
        let y = if m <= 2 { y - 1 } else { y };
        let era = y.div_euclid(400);
        let yoe = y - era * 400;
        let mp = (m + 9) % 12;
        let doy = (153 * mp + 2) / 5 + d - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        era * 146_097 + doe - 719_468
    }

    /// The public half of a private key, to compare with a certificate.
    pub(super) enum PublicKey {
        /// An EC point, as in the certificate's subjectPublicKey.
        Ec(Vec<u8>),
        /// RSA modulus and exponent, without leading zeros.
        Rsa(Vec<u8>, Vec<u8>),
        Ed25519(Vec<u8>),
    }

    impl PublicKey {
        pub fn matches(&self, cert: &CertInfo<'_>) -> bool {
            match self {
                PublicKey::Ec(point) => {
                    cert.key_algorithm == OID_EC_PUBLIC_KEY && cert.public_key == point.as_slice()
                }
                PublicKey::Ed25519(key) => {
                    cert.key_algorithm == OID_ED25519 && cert.public_key == key.as_slice()
                }
                PublicKey::Rsa(n, e) => {
                    cert.key_algorithm == OID_RSA_ENCRYPTION
                        && rsa_public(cert.public_key)
                            .is_ok_and(|(cn, ce)| cn == n.as_slice() && ce == e.as_slice())
                }
            }
        }
    }

    fn unsigned(int: &[u8]) -> &[u8] {
        let zeros = int.iter().take_while(|&&b| b == 0).count();
        &int[zeros.min(int.len().saturating_sub(1))..]
    }

    /// RSAPublicKey ::= SEQUENCE { modulus INTEGER, publicExponent INTEGER }
    fn rsa_public(der: &[u8]) -> Result<(&[u8], &[u8]), String> {
        let mut seq = Reader::new(Reader::new(der).expect(SEQUENCE, "RSAPublicKey")?);
        let n = seq.expect(INTEGER, "modulus")?;
        let e = seq.expect(INTEGER, "publicExponent")?;
        Ok((unsigned(n), unsigned(e)))
    }

    /// Checks a private key's structure and returns its public half when it can be known
    /// (`None` for algorithms this walker does not know, or SEC1 keys without the public key).
    pub(super) fn private_key_public(
        kind: KeyKind,
        der: &[u8],
    ) -> Result<Option<PublicKey>, String> {
        let mut outer = Reader::new(der);
        let body = outer.expect(SEQUENCE, "private key")?;
        if !outer.is_empty() {
            return Err("trailing data after the key".to_string());
        }
        match kind {
            KeyKind::Sec1 => sec1_public(body),
            KeyKind::Pkcs1 => pkcs1_public(body).map(Some),
            KeyKind::Pkcs8 => {
                // PrivateKeyInfo ::= SEQUENCE { version, algorithm, privateKey OCTET STRING,
                //   [0] attributes OPTIONAL, [1] publicKey OPTIONAL }
                let mut r = Reader::new(body);
                r.expect(INTEGER, "version")?;
                let mut alg = Reader::new(r.expect(SEQUENCE, "privateKeyAlgorithm")?);
                let oid = alg.expect(OID, "privateKeyAlgorithm")?;
                let private = r.expect(OCTET_STRING, "privateKey")?;
                r.optional(0xa0)?;
                let public = r.optional(0x81)?;
                if oid == OID_EC_PUBLIC_KEY {
                    let mut inner = Reader::new(private);
                    sec1_public(inner.expect(SEQUENCE, "ECPrivateKey")?)
                } else if oid == OID_RSA_ENCRYPTION {
                    let mut inner = Reader::new(private);
                    pkcs1_public(inner.expect(SEQUENCE, "RSAPrivateKey")?).map(Some)
                } else if oid == OID_ED25519 {
                    if let Some(public) = public {
                        return Ok(Some(PublicKey::Ed25519(bit_string(public)?.to_vec())));
                    }
                    let seed = Reader::new(private).expect(OCTET_STRING, "Ed25519 seed")?;
                    let pair = ring::signature::Ed25519KeyPair::from_seed_unchecked(seed)
                        .map_err(|_| "invalid Ed25519 seed".to_string())?;
                    use ring::signature::KeyPair;
                    Ok(Some(PublicKey::Ed25519(
                        pair.public_key().as_ref().to_vec(),
                    )))
                } else {
                    Ok(None)
                }
            }
        }
    }

    /// ECPrivateKey ::= SEQUENCE { version 1, privateKey OCTET STRING,
    ///   [0] parameters OPTIONAL, [1] publicKey BIT STRING OPTIONAL }
    fn sec1_public(body: &[u8]) -> Result<Option<PublicKey>, String> {
        let mut r = Reader::new(body);
        r.expect(INTEGER, "version")?;
        r.expect(OCTET_STRING, "privateKey")?;
        r.optional(0xa0)?;
        match r.optional(0xa1)? {
            Some(public) => {
                let bits = Reader::new(public).expect(BIT_STRING, "publicKey")?;
                Ok(Some(PublicKey::Ec(bit_string(bits)?.to_vec())))
            }
            None => Ok(None),
        }
    }

    /// RSAPrivateKey ::= SEQUENCE { version, modulus, publicExponent, privateExponent, ... }
    fn pkcs1_public(body: &[u8]) -> Result<PublicKey, String> {
        let mut r = Reader::new(body);
        r.expect(INTEGER, "version")?;
        let n = r.expect(INTEGER, "modulus")?;
        let e = r.expect(INTEGER, "publicExponent")?;
        r.expect(INTEGER, "privateExponent")?;
        Ok(PublicKey::Rsa(unsigned(n).to_vec(), unsigned(e).to_vec()))
    }

    #[cfg(test)]
    pub(super) mod testing {
        //! Test-only readers for the parts of a certificate only tests look at.
        use super::*;
        use std::net::IpAddr;

        const OID_SAN: &[u8] = &[0x55, 0x1d, 0x11];
        const OID_CN: &[u8] = &[0x55, 0x04, 0x03];

        /// DNS and IP subject alternative names.
        pub fn sans(cert: &CertInfo<'_>) -> (Vec<String>, Vec<IpAddr>) {
            let (mut dns, mut ips) = (Vec::new(), Vec::new());
            let mut exts = Reader::new(cert.extensions.unwrap_or_default());
            while !exts.is_empty() {
                let mut ext = Reader::new(exts.expect(SEQUENCE, "extension").unwrap());
                let oid = ext.expect(OID, "extnID").unwrap();
                ext.optional(0x01).unwrap(); // critical
                let value = ext.expect(OCTET_STRING, "extnValue").unwrap();
                if oid != OID_SAN {
                    continue;
                }
                let mut names = Reader::new(Reader::new(value).expect(SEQUENCE, "SAN").unwrap());
                while !names.is_empty() {
                    let name = names.read().unwrap();
                    match name.tag {
                        0x82 => dns.push(String::from_utf8(name.content.to_vec()).unwrap()),
                        0x87 => ips.push(match name.content.len() {
                            4 => IpAddr::from(<[u8; 4]>::try_from(name.content).unwrap()),
                            _ => IpAddr::from(<[u8; 16]>::try_from(name.content).unwrap()),
                        }),
                        _ => {}
                    }
                }
            }
            (dns, ips)
        }

        /// The subject's common name.
        pub fn common_name(cert: &CertInfo<'_>) -> Option<String> {
            let mut rdns = Reader::new(cert.subject);
            while !rdns.is_empty() {
                let mut set = Reader::new(rdns.expect(0x31, "RDN").unwrap());
                while !set.is_empty() {
                    let mut atv = Reader::new(set.expect(SEQUENCE, "ATV").unwrap());
                    let oid = atv.expect(OID, "type").unwrap();
                    let value = atv.read().unwrap();
                    if oid == OID_CN {
                        return Some(String::from_utf8(value.content.to_vec()).unwrap());
                    }
                }
            }
            None
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn civil_days() {
            assert_eq!(days_from_civil(1970, 1, 1), 0);
            assert_eq!(days_from_civil(2000, 3, 1), 11_017);
            assert_eq!(days_from_civil(1969, 12, 31), -1);
            assert_eq!(days_from_civil(2024, 2, 29), 19_782);
        }

        #[test]
        fn times() {
            let t = |tag, s: &str| {
                time(Tlv {
                    tag,
                    content: s.as_bytes(),
                    raw: &[],
                })
            };
            let epoch = |secs: u64| UNIX_EPOCH + Duration::from_secs(secs);
            assert_eq!(t(UTC_TIME, "700101000000Z").unwrap(), epoch(0));
            assert_eq!(t(UTC_TIME, "491231235959Z").unwrap(), epoch(2_524_607_999));
            assert_eq!(
                t(GENERALIZED_TIME, "20491231235959Z").unwrap(),
                epoch(2_524_607_999)
            );
            assert!(t(UTC_TIME, "700101000000").is_err());
            assert!(t(UTC_TIME, "701301000000Z").is_err());
            assert!(t(0x02, "700101000000Z").is_err());
        }

        #[test]
        fn der_lengths() {
            let mut long = vec![0x04, 0x82, 0x01, 0x00];
            long.extend([9; 256]);
            let tlv = Reader::new(&long).read().unwrap();
            assert_eq!(tlv.content.len(), 256);
            assert_eq!(tlv.raw.len(), 260);
            assert!(Reader::new(&[0x04, 0x05, 1]).read().is_err());
            assert!(Reader::new(&[0x04, 0x80]).read().is_err());
            assert!(Reader::new(&[0x04]).read().is_err());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    // Test-only keys and self-signed certificates made with openssl 3 for these tests
    // (valid until 2126): a SEC1 P-256 key (with its EC PARAMETERS block), a PKCS#1 RSA-2048
    // key and a PKCS#8 Ed25519 key.
    const EC_CERT: &str = r"-----BEGIN CERTIFICATE-----
MIIBjzCCATWgAwIBAgIUNv5YcNc6fvi14hCsdb0RiolxzCMwCgYIKoZIzj0EAwIw
EjEQMA4GA1UEAwwHZWMudGVzdDAgFw0yNjEyMDExODE5MDlaGA8yMTI2MTEwNzE4
MTkwOVowEjEQMA4GA1UEAwwHZWMudGVzdDBZMBMGByqGSM49AgEGCCqGSM49AwEH
A0IABBq4vWXjlk9VaDqXTwl0W4/jAGPxqL7oHj9w8c+YMyIIuLUI7AjSi4i1UHYk
ft/3vMKvkp74qo+aUbCVoXr9Q26jZzBlMB0GA1UdDgQWBBTLkHUNzYc5z28E/V+D
LigsD3ySuTAfBgNVHSMEGDAWgBTLkHUNzYc5z28E/V+DLigsD3ySuTAPBgNVHRMB
Af8EBTADAQH/MBIGA1UdEQQLMAmCB2VjLnRlc3QwCgYIKoZIzj0EAwIDSAAwRQIg
PtzAZYlKv3gtyngi3A5dE+KMmJBIInBr8D5ah4SvId0CIQCs4pd5RlFlHYUncczz
Ux307/ClTnG0Z9QXbVKRvqf2Ig==
-----END CERTIFICATE-----
";
    const EC_KEY: &str = r"-----BEGIN EC PARAMETERS-----
BggqhkjOPQMBBw==
-----END EC PARAMETERS-----
-----BEGIN EC PRIVATE KEY-----
MHcCAQEEIMjKUkSke0K+dRiD92KEu/OJPeWx8BaWRFZbIRqVicZuoAoGCCqGSM49
AwEHoUQDQgAEGri9ZeOWT1VoOpdPCXRbj+MAY/GovugeP3Dxz5gzIgi4tQjsCNKL
iLVQdiR+3/e8wq+Snviqj5pRsJWhev1Dbg==
-----END EC PRIVATE KEY-----
";
    const RSA_CERT: &str = r"-----BEGIN CERTIFICATE-----
MIIDCTCCAfGgAwIBAgIUL4SxsoqqC+x5UwRbhVqMp/nfinIwDQYJKoZIhvcNAQEL
BQAwEzERMA8GA1UEAwwIcnNhLnRlc3QwIBcNMjYxMjAxMTgxOTA5WhgPMjEyNjEx
MDcxODE5MDlaMBMxETAPBgNVBAMMCHJzYS50ZXN0MIIBIjANBgkqhkiG9w0BAQEF
AAOCAQ8AMIIBCgKCAQEA8V38a4deOqXl8HtoUj0YDf8B5kxR0QfKyMhGoDxJXGZX
sMoFASa2foI3e+U+qt3O8N/VQLOxa75RTwfohM4tQDuF4GR1a//VazM/eQ7iejDu
7fI/z0RN7QSO3nvbuJVppFHzjt4gDiBLOjtvbXmH7zZluhMTdPB8K1UClCAZKQuO
VQRAFYZ1eP1Q/eBcZZ1kQljfZkKSSnklA6Qx1dSAy9h7w+1V+v4WyDUa5ACW3Pbu
4JMrBzUqJkuVh59/lBDVPLQTG0ThQpADmhZj4BKbMyDX7Dx2NTLeBnDawKdgjvhv
2lh2RoyXyx9EtvGNTNPHCKxGFpHWsToGbDABcXi01QIDAQABo1MwUTAdBgNVHQ4E
FgQUq/Ift9LKxYbCu8mYdLAxeVlxwVQwHwYDVR0jBBgwFoAUq/Ift9LKxYbCu8mY
dLAxeVlxwVQwDwYDVR0TAQH/BAUwAwEB/zANBgkqhkiG9w0BAQsFAAOCAQEAcAfJ
4aog07MruTDWUbtlMO3UVenhBCsdQXp/xNJKi8K9hKTwB/0ChBtTIWmG817cST5b
Fw4cwavItVYH4uqO57Zo4ON9K+UDNVSIVi/WNa5qOslVxWkM2UXbg8I6FznhWw60
1T+DUIPzLMki+BPDiON7ZpS46nRMwWHYa1OjshwpkpkM7u3z+DV91OhMIgODGNdX
E8sL2pnK4wqV7GP4jJmrKkVczo5p45VKaJ05JYHiesk8PQNnpbwXff1szspEtYbs
dVxeaaWByKIKL97IDSTDTvlRGOPreo8RxePoHayJOw0++FiM9RLAQXxqALu5JbnN
RtmesovPDx3rPicnqA==
-----END CERTIFICATE-----
";
    const RSA_KEY: &str = r"-----BEGIN RSA PRIVATE KEY-----
MIIEowIBAAKCAQEA8V38a4deOqXl8HtoUj0YDf8B5kxR0QfKyMhGoDxJXGZXsMoF
ASa2foI3e+U+qt3O8N/VQLOxa75RTwfohM4tQDuF4GR1a//VazM/eQ7iejDu7fI/
z0RN7QSO3nvbuJVppFHzjt4gDiBLOjtvbXmH7zZluhMTdPB8K1UClCAZKQuOVQRA
FYZ1eP1Q/eBcZZ1kQljfZkKSSnklA6Qx1dSAy9h7w+1V+v4WyDUa5ACW3Pbu4JMr
BzUqJkuVh59/lBDVPLQTG0ThQpADmhZj4BKbMyDX7Dx2NTLeBnDawKdgjvhv2lh2
RoyXyx9EtvGNTNPHCKxGFpHWsToGbDABcXi01QIDAQABAoIBAAY4v1JLlv45WzKr
u7CtqnpnNwv8rk85Et0XbIVM3dySjB1z16qD7khXNZ7tSy7psMqSD9PZze+nuZN+
nLEaWh2XFd2xjo/4yZjjJUu1j9jz0fTdkw+Arzw2KzNI9gz4AlUeAlfjGeht+gJy
QxkLUkRe8+2r+DXCIoaWFmRDFOLzQH14jqr15ogp2EoFSm6C8kwsWjOIhozxIMTK
QjKexO1ZRE+IvSJwIEB5YB5XckNysjwMGxHq4To6VMli92c8k64nZ79ShkImU0AQ
Rk7n2wZV6IPJN+6OGojB8C9WnFlfqjoex0qDUrP1yO0OdAhWtIArt60xKwhLW8HU
3oYKEAECgYEA/PfDU5SAJP794K14bOX/cWtcmmVCU1eEXAKYvfX1un08cgOz+wBt
lk/Ew1/8sDMxug5/gearZ5FAhXl8fpwW6DdXZeL8+cb8WyCmIiFt8SqUkH+D031g
5Ku+wSRY4mKd81ZpYi4QX1FLLUDCcYOUg4bTd4YWzBUP6cCillYu89UCgYEA9EKg
RXrggaqioNOz1q0SaPi7DQ2E4WDr1nP1LaEWaFXAwx0CS79fzcP2NmwJd4AAjoUk
+AZhRvXknr8r+feTPteigCcqkbXho96JWyAbyNE/EThUQivkzUcGajzrIW8HTSqt
MpyioNfpLD8eLFXdV+H9mn/IzCgGvrzVf0ZwPQECgYBcTWdHEvNjDGvEVGeRjKaV
UvBaIcJ+uHtCO2xSO/HqlxG8JF/CoVhbNUX9aAPCoxts4SdjVbCLPLPHQBnN9NRi
7PaF5boaxaGE+rfD0mDUU44b33tRavk01vnmbYXFLOinRotzWI1+yiHdJDkOxE0n
ZMW6YgHle3Xv++sXYeEF9QKBgAGmraSqlvfpal4B8FZEJzq0a7dD3yES4aU6dW7Q
hvE/myT2fjx616/xYimuA0ZehCJyffR7Po8XPGtiSW7QIJutI3kQSrZfb14HNBB8
oBN0bqO0KMWlvE8y6rUvIjvAn2EDJ9aOvn6t1vKonpCYJ/3fFjLEKFxQ7PK/HgZV
OI8BAoGBAKD0vq1BkxIuPr2qyr3RMgTBI8e4H5iXwlq191Q1YI6HVD1eH3OwKr72
88tJ72zGPuSOPZc2YBsfYmD89QfYR5z+VAA79OJyWgTTdHbeH+A7tLpVBEOs3+ni
Hax7jAheHKl7Regd3Y1tmog8R2/KOnaM2FH9FnvGlEUFkoVSR5In
-----END RSA PRIVATE KEY-----
";
    const ED_CERT: &str = r"-----BEGIN CERTIFICATE-----
MIIBOjCB7aADAgECAhQF3ao3KcuS39Ccf8INmG5xbz2DBzAFBgMrZXAwEjEQMA4G
A1UEAwwHZWQudGVzdDAgFw0yNjEyMDExODE5MDlaGA8yMTI2MTEwNzE4MTkwOVow
EjEQMA4GA1UEAwwHZWQudGVzdDAqMAUGAytlcAMhAHIZom/5q4YM0Rgu7g49kJyn
i6uRDe4ARHC4olba3ZVRo1MwUTAdBgNVHQ4EFgQU0ERpvkZLm+RhHc58kxSL4WVm
7SAwHwYDVR0jBBgwFoAU0ERpvkZLm+RhHc58kxSL4WVm7SAwDwYDVR0TAQH/BAUw
AwEB/zAFBgMrZXADQQAor7hV07JUcpRrKGX6ggt1DtVZaIcjiRnbLBwSt892p3l8
bqKvSIvtSkj3JrnexhW4su0e/Eg8b5Le8ZeojDgO
-----END CERTIFICATE-----
";
    const ED_KEY: &str = r"-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEIGqyOcSPTxdGBdb72DgIMpLhXHaS4bZbb761KNBZOwZt
-----END PRIVATE KEY-----
";

    const OID_P256: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
    const OID_ECDSA_SHA256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02];
    const DAY: Duration = Duration::from_secs(86_400);

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    fn write(dir: &Path, name: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        let path = dir.join(name);
        fs::write(&path, contents).unwrap();
        path
    }

    #[test]
    fn generated_certificate_parses() {
        let cert = generate(&names(&["localhost"])).unwrap();
        assert_eq!(cert.chain_der.len(), 1);
        assert_eq!(cert.key_kind, KeyKind::Pkcs8);
        let info = x509::parse(&cert.chain_der[0]).unwrap();

        // ECDSA P-256, self-signed with ECDSA-SHA256.
        assert_eq!(info.key_algorithm, x509::OID_EC_PUBLIC_KEY);
        assert_eq!(info.key_parameters, Some(OID_P256));
        assert_eq!(info.signature_algorithm, OID_ECDSA_SHA256);
        ring::signature::UnparsedPublicKey::new(
            &ring::signature::ECDSA_P256_SHA256_ASN1,
            info.public_key,
        )
        .verify(info.tbs, info.signature)
        .expect("self-signature verifies");

        // The key is PKCS#8 P-256 and belongs to the certificate.
        let pair = ring::signature::EcdsaKeyPair::from_pkcs8(
            &ring::signature::ECDSA_P256_SHA256_ASN1_SIGNING,
            &cert.key_der,
            &ring::rand::SystemRandom::new(),
        )
        .unwrap();
        use ring::signature::KeyPair;
        assert_eq!(pair.public_key().as_ref(), info.public_key);

        // Names.
        assert_eq!(
            x509::testing::common_name(&info).as_deref(),
            Some("localhost")
        );
        let (dns, ips) = x509::testing::sans(&info);
        assert_eq!(dns, ["localhost"]);
        assert_eq!(
            ips,
            [
                IpAddr::from(Ipv4Addr::LOCALHOST),
                IpAddr::from(Ipv6Addr::LOCALHOST)
            ]
        );

        // Validity: from a day ago, for 14 days (Chrome's serverCertificateHashes limit).
        let validity = info.not_after.duration_since(info.not_before).unwrap();
        assert!(validity <= 14 * DAY, "{validity:?}");
        assert_eq!(validity, GENERATED_VALIDITY);
        let now = SystemTime::now();
        let age = now.duration_since(info.not_before).unwrap();
        assert!(age >= DAY - Duration::from_secs(5) && age <= DAY + Duration::from_secs(5));
        assert_eq!(cert.not_after, info.not_after);
        assert!(cert.remaining() > 12 * DAY && cert.remaining() <= 13 * DAY);

        // PEM forms carry the same DER.
        assert!(cert.chain_pem.starts_with("-----BEGIN CERTIFICATE-----\n"));
        assert!(cert.key_pem.starts_with("-----BEGIN PRIVATE KEY-----\n"));
        let blocks = pem::parse(&cert.chain_pem).unwrap();
        assert_eq!(blocks[0].der, cert.chain_der[0]);
        let blocks = pem::parse(&cert.key_pem).unwrap();
        assert_eq!(blocks[0].der, cert.key_der);
    }

    #[test]
    fn generated_names() {
        let cert = generate(&names(&[
            "relay.example.com",
            "10.0.0.1",
            "[::1]",
            "Relay.Example.com",
            "*.example.com",
        ]))
        .unwrap();
        let info = x509::parse(&cert.chain_der[0]).unwrap();
        assert_eq!(
            x509::testing::common_name(&info).as_deref(),
            Some("relay.example.com")
        );
        let (dns, ips) = x509::testing::sans(&info);
        assert_eq!(dns, ["relay.example.com", "*.example.com"]);
        assert_eq!(
            ips,
            [
                IpAddr::from([10, 0, 0, 1]),
                IpAddr::from(Ipv6Addr::LOCALHOST)
            ]
        );

        // localhost alongside an explicit loopback address: no duplicate SANs.
        let cert = generate(&names(&["127.0.0.1", "localhost"])).unwrap();
        let info = x509::parse(&cert.chain_der[0]).unwrap();
        assert_eq!(
            x509::testing::common_name(&info).as_deref(),
            Some("127.0.0.1")
        );
        let (dns, ips) = x509::testing::sans(&info);
        assert_eq!(dns, ["localhost"]);
        assert_eq!(ips.len(), 2);

        for bad in [&[][..], &[""], &["ex\u{e4}mple.com"]] {
            let e = generate(&names(bad)).unwrap_err();
            assert!(matches!(e, TlsError::Generate(_)), "{bad:?}: {e}");
            assert!(e.to_string().starts_with("cannot generate"), "{e}");
        }
    }

    #[test]
    fn generated_certificates_differ() {
        let a = generate(&names(&["localhost"])).unwrap();
        let b = generate(&names(&["localhost"])).unwrap();
        assert_ne!(a.fingerprint_sha256, b.fingerprint_sha256);
        assert_ne!(a.key_der, b.key_der);
    }

    #[test]
    fn fingerprint_is_sha256_of_the_leaf() {
        assert_eq!(
            fingerprint_sha256(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let cert = generate(&names(&["localhost"])).unwrap();
        let fp = &cert.fingerprint_sha256;
        assert_eq!(fp.len(), 64);
        assert!(
            fp.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
            "{fp}"
        );
        let digest = ring::digest::digest(&ring::digest::SHA256, &cert.chain_der[0]);
        let expected: String = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(fp, &expected);
    }

    #[test]
    fn load_round_trips_generate() {
        let dir = tempfile::tempdir().unwrap();
        let cert = generate(&names(&["localhost"])).unwrap();
        let (cert_path, key_path) = cert.pem_files(dir.path()).unwrap();
        assert_eq!(cert_path, dir.path().join("cert.pem"));
        assert_eq!(key_path, dir.path().join("key.pem"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&key_path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let loaded = load(&cert_path, &key_path).unwrap();
        assert_eq!(loaded, cert);

        // Writing again replaces both files, and leaves no temporary files behind.
        let other = generate(&names(&["localhost"])).unwrap();
        other.pem_files(dir.path()).unwrap();
        assert_eq!(load(&cert_path, &key_path).unwrap(), other);
        let mut entries: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        entries.sort();
        assert_eq!(entries, ["cert.pem", "key.pem"]);

        // pem_files creates the directory.
        let nested = dir.path().join("a/b");
        let (c, k) = cert.pem_files(&nested).unwrap();
        assert_eq!(load(&c, &k).unwrap(), cert);
    }

    #[test]
    fn load_accepts_sec1_pkcs1_and_ed25519_keys() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        for (cert, key, kind) in [
            (EC_CERT, EC_KEY, KeyKind::Sec1),
            (RSA_CERT, RSA_KEY, KeyKind::Pkcs1),
            (ED_CERT, ED_KEY, KeyKind::Pkcs8),
        ] {
            let loaded = load(&write(d, "c.pem", cert), &write(d, "k.pem", key)).unwrap();
            assert_eq!(loaded.key_kind, kind);
            assert_eq!(loaded.chain_der.len(), 1);
            assert_eq!(
                loaded.fingerprint_sha256,
                fingerprint_sha256(&loaded.chain_der[0])
            );
            assert_eq!(loaded.chain_pem, cert);
            assert!(loaded
                .key_pem
                .starts_with(&format!("-----BEGIN {}-----", kind.pem_label())));
            // notAfter is in 2126, written as a GeneralizedTime.
            let years = loaded
                .not_after
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_secs()
                / 31_556_952;
            assert_eq!(1970 + years, 2126);
        }
    }

    #[test]
    fn load_reads_chains_and_combined_files() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let leaf = generate(&names(&["localhost"])).unwrap();
        // Leaf then "intermediate", with text around the blocks, as some CAs ship them.
        let chain = format!(
            "subject=CN=localhost\n{}\nissuer=...\n{EC_CERT}",
            leaf.chain_pem
        );
        let combined_key = format!("{}{}", leaf.chain_pem, leaf.key_pem);
        let loaded = load(
            &write(d, "chain.pem", &chain),
            &write(d, "k.pem", combined_key),
        )
        .unwrap();
        assert_eq!(loaded.chain_der.len(), 2);
        assert_eq!(loaded.chain_der[0], leaf.chain_der[0]);
        assert_eq!(loaded.fingerprint_sha256, leaf.fingerprint_sha256);
        assert_eq!(loaded.not_after, leaf.not_after);
        assert_eq!(loaded.chain_pem, format!("{}{EC_CERT}", leaf.chain_pem));
        // One file holding both the chain and the key.
        let both = write(d, "both.pem", format!("{}{}", leaf.key_pem, leaf.chain_pem));
        assert_eq!(load(&both, &both).unwrap(), leaf);
    }

    #[test]
    fn bad_files_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let good = generate(&names(&["localhost"])).unwrap();
        let (cert, key) = good.pem_files(d).unwrap();
        let missing = d.join("missing.pem");
        let check = |e: TlsError, path: &Path, reason: &str| {
            let msg = e.to_string();
            assert!(msg.starts_with(&format!("{}: ", path.display())), "{msg}");
            assert!(msg.contains(reason), "{msg}");
        };

        let e = load(&missing, &key).unwrap_err();
        assert!(matches!(e, TlsError::Read { .. }));
        check(e, &missing, "cannot read: No such file");
        let e = load(&cert, &missing).unwrap_err();
        check(e, &missing, "cannot read");

        let junk = write(d, "junk.pem", "hello");
        check(
            load(&junk, &key).unwrap_err(),
            &junk,
            "no PEM CERTIFICATE block",
        );
        check(
            load(&cert, &junk).unwrap_err(),
            &junk,
            "no private key found",
        );

        let bad_der = write(d, "bad-der.pem", pem::encode("CERTIFICATE", b"not der"));
        check(
            load(&bad_der, &key).unwrap_err(),
            &bad_der,
            "certificate 1 of 1",
        );
        let bad_key = write(d, "bad-key.pem", pem::encode("PRIVATE KEY", b"not der"));
        check(
            load(&cert, &bad_key).unwrap_err(),
            &bad_key,
            "invalid PRIVATE KEY block",
        );

        let bin = write(d, "bin.der", &good.chain_der[0]);
        check(load(&bin, &key).unwrap_err(), &bin, "not a PEM file");

        let unterminated = write(d, "cut.pem", &good.chain_pem[..good.chain_pem.len() - 30]);
        check(
            load(&unterminated, &key).unwrap_err(),
            &unterminated,
            "no END line",
        );

        let two = write(d, "two.pem", format!("{}{EC_KEY}", good.key_pem));
        check(load(&cert, &two).unwrap_err(), &two, "2 private keys");

        let encrypted = write(
            d,
            "enc.pem",
            "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n",
        );
        check(
            load(&cert, &encrypted).unwrap_err(),
            &encrypted,
            "encrypted",
        );

        // A key that belongs to another certificate, of the same or another algorithm.
        let other = write(
            d,
            "other.pem",
            generate(&names(&["localhost"])).unwrap().key_pem,
        );
        for wrong in [
            other,
            write(d, "rsa.pem", RSA_KEY),
            write(d, "ec.pem", EC_KEY),
        ] {
            let e = load(&cert, &wrong).unwrap_err();
            assert!(matches!(e, TlsError::Mismatch { .. }), "{e}");
            let msg = e.to_string();
            assert!(msg.starts_with(&format!("{}: ", wrong.display())), "{msg}");
            assert!(msg.contains(&cert.display().to_string()), "{msg}");
        }
        let e = load(&write(d, "rsa.crt", RSA_CERT), &write(d, "ed.key", ED_KEY)).unwrap_err();
        assert!(matches!(e, TlsError::Mismatch { .. }), "{e}");
    }

    #[test]
    fn debug_hides_the_key() {
        let cert = generate(&names(&["localhost"])).unwrap();
        let debug = format!("{cert:?}");
        assert!(debug.contains(&cert.fingerprint_sha256));
        let key_b64 = cert.key_pem.lines().nth(1).unwrap();
        assert!(!debug.contains(key_b64), "{debug}");
        assert!(!debug.contains("key_der"), "{debug}");
    }

    #[test]
    fn from_config_generates_or_loads() {
        let generated = from_config(&TlsConfig::Generate {
            names: names(&["localhost"]),
        })
        .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = generated.pem_files(dir.path()).unwrap();
        let loaded = from_config(&TlsConfig::Files { cert, key }).unwrap();
        assert_eq!(loaded, generated);
    }
}
