//! How a relay checks the certificate of a peer it dials: against the system's roots, or
//! against a pinned SHA-256 of the leaf (for peers with self-signed certificates, the way
//! browsers pin a relay's `/certificate.sha256`).

use super::fingerprint::fingerprint_sha256;
use boring::error::ErrorStack;
use boring::ssl::{SslContextBuilder, SslMethod, SslVerifyMode};

/// What a dialed peer's certificate must satisfy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PeerTrust {
    /// Chain to a root the system trusts, for the name dialed.
    SystemRoots,
    /// Have a leaf whose DER hashes to this SHA-256; the chain and name are not checked.
    Pinned([u8; 32]),
}

/// A TLS client context that verifies peers by `trust`.
pub fn client_context(trust: &PeerTrust) -> Result<SslContextBuilder, ErrorStack> {
    let mut ctx = SslContextBuilder::new(SslMethod::tls())?;
    match trust {
        PeerTrust::SystemRoots => {
            ctx.set_default_verify_paths()?;
            ctx.set_verify(SslVerifyMode::PEER);
        }
        PeerTrust::Pinned(pin) => {
            let expected = hex(pin);
            ctx.set_verify_callback(SslVerifyMode::PEER, move |_, store| {
                // Called per certificate of the chain; only the leaf (depth 0) decides.
                if store.error_depth() != 0 {
                    return true;
                }
                let leaf = store.current_cert().and_then(|c| c.to_der().ok());
                leaf.is_some_and(|der| fingerprint_sha256(&der) == expected)
            });
        }
    }
    Ok(ctx)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
