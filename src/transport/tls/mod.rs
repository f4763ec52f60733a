//! TLS certificates: the [`Certificate`] the relay presents (held in memory as BoringSSL
//! objects, handed to quiche through an `SslContextBuilder`) and [`TlsError`].
//!
//! - [`load`] (`load.rs`): a PEM chain and key from files, read by BoringSSL.
//! - [`generate`] (`generate.rs`): a self-signed ECDSA P-256 certificate (rcgen).
//! - [`fingerprint_sha256`] (`fingerprint.rs`): the hash served at `/certificate.sha256`
//!   (PROTOCOL.md §7.4).
//! - [`client_context`] (`verify.rs`): how a dialed peer's certificate is checked.

use std::fmt;
use std::io;
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use boring::asn1::{Asn1Time, Asn1TimeRef};
use boring::error::ErrorStack;
use boring::pkey::{PKey, PKeyRef, Private};
use boring::ssl::SslContextBuilder;
use boring::x509::{X509Ref, X509};

use crate::config::TlsConfig;

mod fingerprint;
#[cfg(test)]
mod fixtures;
mod generate;
mod load;
mod verify;

pub use fingerprint::fingerprint_sha256;
pub use generate::{generate, GENERATED_BACKDATE, GENERATED_VALIDITY};
pub use load::load;
pub use verify::{client_context, PeerTrust};

/// A certificate chain and its private key, as BoringSSL objects.
#[derive(Clone)]
pub struct Certificate {
    /// Leaf first; never empty.
    chain: Vec<X509>,
    key: PKey<Private>,
    /// Lowercase hex SHA-256 of the leaf's DER: 64 characters, no separators.
    pub fingerprint_sha256: String,
    /// The leaf's `notAfter`.
    pub not_after: SystemTime,
}

impl fmt::Debug for Certificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print key material.
        f.debug_struct("Certificate")
            .field("chain_len", &self.chain.len())
            .field("fingerprint_sha256", &self.fingerprint_sha256)
            .field("not_after", &self.not_after)
            .field("key_type", &self.key.id())
            .finish_non_exhaustive()
    }
}

impl PartialEq for Certificate {
    /// The same certificates (by DER) and the same private key.
    fn eq(&self, other: &Self) -> bool {
        let chain_der = |c: &Self| -> Option<Vec<Vec<u8>>> {
            c.chain.iter().map(|x| x.to_der().ok()).collect()
        };
        chain_der(self).is_some()
            && chain_der(self) == chain_der(other)
            && self.key.private_key_to_der().ok() == other.key.private_key_to_der().ok()
    }
}

impl Eq for Certificate {}

impl Certificate {
    /// Wraps a non-empty chain (leaf first) and the leaf's key; the caller has checked that
    /// they belong together.
    fn new(chain: Vec<X509>, key: PKey<Private>) -> Result<Certificate, ErrorStack> {
        let leaf = chain.first().expect("a chain is never empty");
        let not_after = system_time(leaf.not_after())?;
        Ok(Certificate {
            fingerprint_sha256: fingerprint_sha256(&leaf.to_der()?),
            not_after,
            chain,
            key,
        })
    }

    /// The certificates, leaf first.
    pub fn chain(&self) -> &[X509] {
        &self.chain
    }

    /// The leaf certificate.
    pub fn leaf(&self) -> &X509Ref {
        &self.chain[0]
    }

    /// The leaf's private key.
    pub fn key(&self) -> &PKeyRef<Private> {
        &self.key
    }

    /// Time left until `not_after` (zero once expired).
    pub fn remaining(&self) -> Duration {
        self.not_after
            .duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO)
    }

    /// Presents this certificate from `ctx`: the leaf, the rest of the chain as extra chain
    /// certificates, and the key, which BoringSSL checks against the leaf.
    pub fn configure(&self, ctx: &mut SslContextBuilder) -> Result<(), ErrorStack> {
        ctx.set_certificate(self.leaf())?;
        for cert in &self.chain[1..] {
            ctx.add_extra_chain_cert(cert.clone())?;
        }
        ctx.set_private_key(&self.key)?;
        ctx.check_private_key()
    }
}

/// `time` as a `SystemTime`, counted by BoringSSL from the Unix epoch.
fn system_time(time: &Asn1TimeRef) -> Result<SystemTime, ErrorStack> {
    let secs = signed_secs(Asn1Time::from_unix(0)?.diff(time)?);
    Ok(match u64::try_from(secs) {
        Ok(secs) => UNIX_EPOCH + Duration::from_secs(secs),
        Err(_) => UNIX_EPOCH - Duration::from_secs(secs.unsigned_abs()),
    })
}

/// A BoringSSL time difference in seconds (negative when the second time is earlier).
fn signed_secs(diff: boring::asn1::TimeDiff) -> i64 {
    i64::from(diff.days) * 86_400 + i64::from(diff.secs)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_the_key() {
        let cert = generate(&["localhost".to_string()]).unwrap();
        let debug = format!("{cert:?}");
        assert!(debug.contains(&cert.fingerprint_sha256));
        let pem = String::from_utf8(cert.key().private_key_to_pem_pkcs8().unwrap()).unwrap();
        let key_b64 = pem.lines().nth(1).unwrap();
        assert!(!debug.contains(key_b64), "{debug}");
        assert!(!debug.contains("key_der"), "{debug}");
        assert!(!debug.contains("PRIVATE"), "{debug}");
    }

    #[test]
    fn from_config_generates_or_loads() {
        let generated = from_config(&TlsConfig::Generate {
            names: vec!["localhost".to_string()],
        })
        .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = load::tests::write_pem(&generated, dir.path());
        let loaded = from_config(&TlsConfig::Files { cert, key }).unwrap();
        assert_eq!(loaded, generated);
    }

    #[test]
    fn equality_compares_chain_and_key() {
        let a = generate(&["localhost".to_string()]).unwrap();
        let b = generate(&["localhost".to_string()]).unwrap();
        assert_eq!(a, a.clone());
        assert_ne!(a, b);
        let mixed = Certificate {
            key: b.key.clone(),
            ..a.clone()
        };
        assert_ne!(a, mixed);
    }

    #[test]
    fn times_are_counted_from_the_epoch() {
        let t = |s: u32| system_time(&Asn1Time::from_unix(s.into()).unwrap()).unwrap();
        assert_eq!(t(0), UNIX_EPOCH);
        assert_eq!(
            t(2_524_607_999),
            UNIX_EPOCH + Duration::from_secs(2_524_607_999)
        );
    }

    #[test]
    fn the_context_presents_the_chain() {
        let cert = generate(&["localhost".to_string()]).unwrap();
        let mut ctx = SslContextBuilder::new(boring::ssl::SslMethod::tls()).unwrap();
        cert.configure(&mut ctx).unwrap();
        let ctx = ctx.build();
        assert_eq!(
            ctx.certificate().unwrap().to_der().unwrap(),
            cert.leaf().to_der().unwrap()
        );

        // A key of another certificate is refused by BoringSSL too.
        let other = generate(&["localhost".to_string()]).unwrap();
        let mixed = Certificate {
            key: other.key.clone(),
            ..cert
        };
        let mut ctx = SslContextBuilder::new(boring::ssl::SslMethod::tls()).unwrap();
        assert!(mixed.configure(&mut ctx).is_err());
    }
}
