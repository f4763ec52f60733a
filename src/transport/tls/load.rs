//! Loading a certificate chain and its private key from PEM files, with BoringSSL's own PEM,
//! X.509 and key parsers (the BoringSSL quiche links).
//!
//! The certificate file holds CERTIFICATE blocks, leaf first; the key file exactly one
//! PRIVATE KEY (PKCS#8), EC PRIVATE KEY (SEC1) or RSA PRIVATE KEY (PKCS#1) block. Other
//! blocks and text around them are ignored, so one file may hold both. Encrypted keys are
//! refused, and a key that does not belong to the leaf is an error naming both files rather
//! than a TLS failure later.
//!
//! Expired or not-yet-valid certificates are accepted with a warning: refusing to start would
//! not make them valid, and operators see the warning in the journal.

use std::ffi::c_void;
use std::fs;
use std::path::Path;
use std::ptr;

use boring::asn1::Asn1Time;
use boring::error::ErrorStack;
use boring::pkey::{PKey, Private};
use boring::x509::X509;
use boring_sys as ffi;
use foreign_types::ForeignType;

use super::{signed_secs, Certificate, TlsError};

/// Loads a PEM certificate chain (leaf first) and its PEM private key.
pub fn load(cert_path: &Path, key_path: &Path) -> Result<Certificate, TlsError> {
    let parse_err = |path: &Path, reason: String| TlsError::Parse {
        path: path.to_path_buf(),
        reason,
    };

    let cert_pem = read(cert_path)?;
    // SAFETY: `PEM_read_bio_X509` has the signature `read_pem` asks for, for `X509`.
    let chain: Vec<X509> =
        unsafe { read_pem(&cert_pem, ffi::PEM_read_bio_X509) }.map_err(|(read, e)| {
            parse_err(
                cert_path,
                format!("certificate {}: {}", read + 1, describe(&e, "certificate")),
            )
        })?;
    if chain.is_empty() {
        return Err(parse_err(
            cert_path,
            nothing_found(&cert_pem, "no PEM CERTIFICATE block found"),
        ));
    }
    let leaf_public = chain[0]
        .public_key()
        .and_then(|k| k.public_key_to_der())
        .map_err(|e| {
            parse_err(
                cert_path,
                format!("certificate 1: {}", describe(&e, "public key")),
            )
        })?;

    let key_pem = read(key_path)?;
    // SAFETY: `PEM_read_bio_PrivateKey` has the signature `read_pem` asks for, for `PKey`.
    let mut keys: Vec<PKey<Private>> = unsafe { read_pem(&key_pem, ffi::PEM_read_bio_PrivateKey) }
        .map_err(|(_, e)| parse_err(key_path, describe(&e, "private key")))?;
    let key = match keys.len() {
        1 => keys.pop().expect("one key"),
        0 => {
            return Err(parse_err(
                key_path,
                nothing_found(
                    &key_pem,
                    "no private key found (expected a PEM PRIVATE KEY, EC PRIVATE KEY or RSA PRIVATE KEY block)",
                ),
            ))
        }
        n => {
            return Err(parse_err(
                key_path,
                format!("{n} private keys found; expected exactly one"),
            ))
        }
    };
    let key_public = key
        .public_key_to_der()
        .map_err(|e| parse_err(key_path, describe(&e, "private key")))?;
    if key_public != leaf_public {
        return Err(TlsError::Mismatch {
            cert: cert_path.to_path_buf(),
            key: key_path.to_path_buf(),
        });
    }

    let leaf = &chain[0];
    let time_err = |e: ErrorStack| {
        parse_err(
            cert_path,
            format!("certificate 1: {}", describe(&e, "validity")),
        )
    };
    let now = Asn1Time::days_from_now(0).map_err(time_err)?;
    if leaf.not_after() < now {
        let ago = signed_secs(leaf.not_after().diff(&now).map_err(time_err)?);
        tracing::warn!(cert = %cert_path.display(), "the certificate expired {ago}s ago");
    } else if leaf.not_before() > now {
        tracing::warn!(cert = %cert_path.display(), "the certificate is not valid yet");
    }

    Certificate::new(chain, key).map_err(|e| parse_err(cert_path, describe(&e, "certificate")))
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// Why a file yielded nothing: `reason`, or that it is not text at all (a DER file, say).
fn nothing_found(contents: &[u8], reason: &str) -> String {
    match std::str::from_utf8(contents) {
        Ok(_) => reason.to_string(),
        Err(_) => "not a PEM file (not text; DER files must be converted to PEM)".to_string(),
    }
}

/// A BoringSSL parse failure in words: the PEM and key problems people meet named plainly,
/// anything else as "invalid `what`" with BoringSSL's reasons.
fn describe(e: &ErrorStack, what: &str) -> String {
    let has = |lib: ffi::ErrLib, reason: i32| {
        e.errors()
            .iter()
            .any(|err| err.library_reason(lib) == Some(reason))
    };
    if has(ffi::ERR_LIB_PEM, ffi::PEM_R_BAD_PASSWORD_READ)
        || has(ffi::ERR_LIB_PEM, ffi::PEM_R_BAD_DECRYPT)
        || has(ffi::ERR_LIB_PEM, ffi::PEM_R_UNSUPPORTED_ENCRYPTION)
    {
        return "encrypted private keys are not supported (decrypt it with `openssl pkey`)"
            .to_string();
    }
    if has(ffi::ERR_LIB_PEM, ffi::PEM_R_BAD_END_LINE) {
        return "a PEM block has no END line, or one with another label".to_string();
    }
    if has(ffi::ERR_LIB_PEM, ffi::PEM_R_BAD_BASE64_DECODE) {
        return "a PEM block is not valid base64".to_string();
    }
    if has(ffi::ERR_LIB_EVP, ffi::EVP_R_UNSUPPORTED_ALGORITHM)
        || has(ffi::ERR_LIB_EVP, ffi::EVP_R_UNSUPPORTED_PUBLIC_KEY_TYPE)
    {
        return format!("unsupported {what} algorithm (RSA, ECDSA and Ed25519 are supported)");
    }
    let mut reasons: Vec<String> = Vec::new();
    for err in e.errors() {
        // Reasons below ERR_NUM_LIBS only say "an error from library X", which X's own entry
        // says better.
        if err.reason_code() < ffi::ERR_NUM_LIBS.0 as i32 {
            continue;
        }
        let reason = match (err.library(), err.reason()) {
            (Some(lib), Some(reason)) => format!("{lib}: {reason}"),
            (None, Some(reason)) => reason.to_string(),
            _ => continue,
        };
        if !reasons.contains(&reason) {
            reasons.push(reason);
        }
    }
    if reasons.is_empty() {
        format!("invalid {what}")
    } else {
        format!("invalid {what} (BoringSSL: {})", reasons.join("; "))
    }
}

/// A BoringSSL `PEM_read_bio_*` function for objects of C type `T`.
type PemRead<T> =
    unsafe extern "C" fn(*mut ffi::BIO, *mut *mut T, ffi::pem_password_cb, *mut c_void) -> *mut T;

/// Every object `read` finds in `pem`, in order: BoringSSL's PEM reader skips blocks of
/// other types and text between blocks. Encrypted blocks fail (no password callback). On
/// failure, how many objects were read before it and BoringSSL's errors.
///
/// # Safety
///
/// `read` must return a new `T::CType` that the caller owns, or null with an error queued, as
/// BoringSSL's `PEM_read_bio_*` functions do.
unsafe fn read_pem<T: ForeignType>(
    pem: &[u8],
    read: PemRead<T::CType>,
) -> Result<Vec<T>, (usize, ErrorStack)> {
    struct Bio(*mut ffi::BIO);
    impl Drop for Bio {
        fn drop(&mut self) {
            // SAFETY: a BIO we created and no one else frees.
            unsafe { ffi::BIO_free(self.0) };
        }
    }

    ffi::init();
    // SAFETY: clears this thread's error queue, so the errors returned are this call's.
    unsafe { ffi::ERR_clear_error() };
    let len = isize::try_from(pem.len()).map_err(|_| (0, ErrorStack::get()))?;
    // SAFETY: a read-only memory BIO over `pem`, which outlives it.
    let bio = unsafe { ffi::BIO_new_mem_buf(pem.as_ptr().cast(), len) };
    if bio.is_null() {
        return Err((0, ErrorStack::get()));
    }
    let bio = Bio(bio);
    let mut out = Vec::new();
    loop {
        // SAFETY: `bio` is live; no output pointer, password callback or user data.
        let obj = unsafe { read(bio.0, ptr::null_mut(), None, ptr::null_mut()) };
        if !obj.is_null() {
            // SAFETY: `read` handed us ownership of a new object (the function's contract).
            out.push(unsafe { T::from_ptr(obj) });
            continue;
        }
        let errors = ErrorStack::get();
        let end = errors
            .errors()
            .last()
            .is_some_and(|e| e.library_reason(ffi::ERR_LIB_PEM) == Some(ffi::PEM_R_NO_START_LINE));
        return if end {
            Ok(out)
        } else {
            Err((out.len(), errors))
        };
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::transport::tls::fixtures::*;
    use crate::transport::tls::{fingerprint_sha256, generate};
    use boring::ec::{EcGroup, EcKey};
    use boring::nid::Nid;
    use boring::pkey::Id;
    use boring::symm::Cipher;
    use std::path::PathBuf;
    use std::time::{SystemTime, UNIX_EPOCH};

    fn localhost() -> Certificate {
        generate(&["localhost".to_string()]).unwrap()
    }

    fn chain_pem(cert: &Certificate) -> String {
        cert.chain()
            .iter()
            .map(|c| String::from_utf8(c.to_pem().unwrap()).unwrap())
            .collect()
    }

    fn key_pem(cert: &Certificate) -> String {
        String::from_utf8(cert.key().private_key_to_pem_pkcs8().unwrap()).unwrap()
    }

    fn write(dir: &Path, name: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        let path = dir.join(name);
        fs::write(&path, contents).unwrap();
        path
    }

    /// Writes `cert`'s chain and key (PKCS#8) as `cert.pem` and `key.pem` in `dir`.
    pub(in crate::transport::tls) fn write_pem(
        cert: &Certificate,
        dir: &Path,
    ) -> (PathBuf, PathBuf) {
        (
            write(dir, "cert.pem", chain_pem(cert)),
            write(dir, "key.pem", key_pem(cert)),
        )
    }

    #[test]
    fn load_round_trips_generate() {
        let dir = tempfile::tempdir().unwrap();
        let cert = localhost();
        let (cert_path, key_path) = write_pem(&cert, dir.path());
        let loaded = load(&cert_path, &key_path).unwrap();
        assert_eq!(loaded, cert);
        assert_eq!(loaded.fingerprint_sha256, cert.fingerprint_sha256);
        assert_eq!(loaded.not_after, cert.not_after);

        // Another certificate in the same files is another certificate.
        let other = localhost();
        write_pem(&other, dir.path());
        let reloaded = load(&cert_path, &key_path).unwrap();
        assert_eq!(reloaded, other);
        assert_ne!(reloaded, cert);
    }

    #[test]
    fn load_accepts_sec1_pkcs1_and_ed25519_keys() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        for (cert, key, kind) in [
            (EC_CERT, EC_KEY, Id::EC),
            (RSA_CERT, RSA_KEY, Id::RSA),
            (ED_CERT, ED_KEY, Id::ED25519),
        ] {
            let loaded = load(&write(d, "c.pem", cert), &write(d, "k.pem", key)).unwrap();
            assert_eq!(loaded.key().id(), kind);
            assert_eq!(loaded.chain().len(), 1);
            assert_eq!(
                loaded.fingerprint_sha256,
                fingerprint_sha256(&loaded.leaf().to_der().unwrap())
            );
            assert_eq!(chain_pem(&loaded), cert);
            // notAfter is in 2126, written as a GeneralizedTime.
            let years = loaded
                .not_after
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_secs()
                / 31_556_952;
            assert_eq!(1970 + years, 2126);
            assert!(loaded.remaining().as_secs() > 99 * 31_556_952);
        }
    }

    #[test]
    fn load_reads_chains_and_combined_files() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let leaf = localhost();
        // Leaf then "intermediate", with text around the blocks, as some CAs ship them.
        let chain = format!(
            "subject=CN=localhost\n{}\nissuer=...\n{EC_CERT}",
            chain_pem(&leaf)
        );
        let combined_key = format!("{}{}", chain_pem(&leaf), key_pem(&leaf));
        let loaded = load(
            &write(d, "chain.pem", &chain),
            &write(d, "k.pem", combined_key),
        )
        .unwrap();
        assert_eq!(loaded.chain().len(), 2);
        assert_eq!(
            loaded.leaf().to_der().unwrap(),
            leaf.leaf().to_der().unwrap()
        );
        assert_eq!(loaded.fingerprint_sha256, leaf.fingerprint_sha256);
        assert_eq!(loaded.not_after, leaf.not_after);
        assert_eq!(chain_pem(&loaded), format!("{}{EC_CERT}", chain_pem(&leaf)));
        // One file holding both the chain and the key.
        let both = write(
            d,
            "both.pem",
            format!("{}{}", key_pem(&leaf), chain_pem(&leaf)),
        );
        assert_eq!(load(&both, &both).unwrap(), leaf);
    }

    #[test]
    fn expired_and_future_certificates_load() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap();
        let key = PKey::from_ec_key(EcKey::generate(&group).unwrap()).unwrap();
        for (from, to) in [(-3, -1), (1, 3)] {
            let day = |n: i64| Asn1Time::from_unix(now_secs() + n * 86_400).unwrap();
            let mut b = boring::x509::X509Builder::new().unwrap();
            b.set_pubkey(&key).unwrap();
            b.set_not_before(&day(from)).unwrap();
            b.set_not_after(&day(to)).unwrap();
            b.sign(&key, boring::hash::MessageDigest::sha256()).unwrap();
            let cert = b.build();
            let loaded = load(
                &write(d, "c.pem", cert.to_pem().unwrap()),
                &write(d, "k.pem", key.private_key_to_pem_pkcs8().unwrap()),
            )
            .unwrap();
            let expected =
                UNIX_EPOCH + std::time::Duration::from_secs((now_secs() + to * 86_400) as u64);
            let off = loaded
                .not_after
                .duration_since(expected)
                .unwrap_or_else(|e| e.duration());
            assert!(off.as_secs() <= 5, "{off:?}");
            if to < 0 {
                assert_eq!(loaded.remaining(), std::time::Duration::ZERO);
            } else {
                assert!(loaded.remaining().as_secs() > 86_400);
            }
        }
    }

    fn now_secs() -> i64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64
    }

    #[test]
    fn bad_files_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let good = localhost();
        let (cert, key) = write_pem(&good, d);
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

        let bad_der = write(
            d,
            "bad-der.pem",
            "-----BEGIN CERTIFICATE-----\nbm90IGRlcg==\n-----END CERTIFICATE-----\n",
        );
        check(
            load(&bad_der, &key).unwrap_err(),
            &bad_der,
            "certificate 1: invalid certificate (BoringSSL: ASN.1 encoding routines: DECODE_ERROR)",
        );
        let second_bad = write(
            d,
            "second-bad.pem",
            format!(
                "{}{}",
                chain_pem(&good),
                fs::read_to_string(&bad_der).unwrap()
            ),
        );
        check(
            load(&second_bad, &key).unwrap_err(),
            &second_bad,
            "certificate 2: invalid certificate",
        );
        let bad_key = write(
            d,
            "bad-key.pem",
            "-----BEGIN PRIVATE KEY-----\nbm90IGRlcg==\n-----END PRIVATE KEY-----\n",
        );
        check(
            load(&cert, &bad_key).unwrap_err(),
            &bad_key,
            "invalid private key",
        );
        let bad_base64 = write(
            d,
            "bad-b64.pem",
            "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n",
        );
        check(
            load(&bad_base64, &key).unwrap_err(),
            &bad_base64,
            "not valid base64",
        );

        let bin = write(d, "bin.der", good.leaf().to_der().unwrap());
        check(load(&bin, &key).unwrap_err(), &bin, "not a PEM file");
        check(load(&cert, &bin).unwrap_err(), &bin, "not a PEM file");

        let pem = chain_pem(&good);
        let unterminated = write(d, "cut.pem", &pem[..pem.len() - 30]);
        check(
            load(&unterminated, &key).unwrap_err(),
            &unterminated,
            "no END line",
        );

        let two = write(d, "two.pem", format!("{}{EC_KEY}", key_pem(&good)));
        check(load(&cert, &two).unwrap_err(), &two, "2 private keys");

        // Encrypted keys, PKCS#8 and the traditional Proc-Type form.
        let pkcs8 = good
            .key()
            .private_key_to_pem_pkcs8_passphrase(Cipher::aes_128_cbc(), b"secret")
            .unwrap();
        assert!(pkcs8.starts_with(b"-----BEGIN ENCRYPTED PRIVATE KEY-----"));
        let traditional = good
            .key()
            .ec_key()
            .unwrap()
            .private_key_to_pem_passphrase(Cipher::aes_128_cbc(), b"secret")
            .unwrap();
        assert!(String::from_utf8_lossy(&traditional).contains("Proc-Type: 4,ENCRYPTED"));
        for encrypted in [pkcs8, traditional] {
            let encrypted = write(d, "enc.pem", encrypted);
            check(
                load(&cert, &encrypted).unwrap_err(),
                &encrypted,
                "encrypted private keys are not supported",
            );
        }

        // A key of an algorithm BoringSSL does not know (Ed448, PKCS#8).
        let mut ed448 = vec![0x30, 0x47, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03];
        ed448.extend([0x2b, 0x65, 0x71, 0x04, 0x3b, 0x04, 0x39]);
        ed448.extend([7; 57]);
        let ed448 = write(
            d,
            "ed448.pem",
            format!(
                "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
                boring::base64::encode_block(&ed448)
            ),
        );
        check(
            load(&cert, &ed448).unwrap_err(),
            &ed448,
            "unsupported private key algorithm",
        );

        // A key that belongs to another certificate, of the same or another algorithm.
        let other = write(d, "other.pem", key_pem(&localhost()));
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
}
