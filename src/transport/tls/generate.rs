//! Self-signed certificates (rcgen): ECDSA P-256, SANs = the names (IP SANs for IP literals;
//! `localhost` adds 127.0.0.1 and ::1), CN = the first name, valid from now − 1 day for
//! exactly 14 days, the longest Chrome accepts for `serverCertificateHashes`. The caller
//! regenerates before [`Certificate::not_after`] (clients fetch the hash on every connect).

use std::net::IpAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use boring::pkey::PKey;
use boring::x509::X509;

use super::{Certificate, TlsError};

/// Validity of a generated certificate: 14 days, Chrome's `serverCertificateHashes` limit.
pub const GENERATED_VALIDITY: Duration = Duration::from_secs(14 * 24 * 3600);

/// How far a generated certificate's `not_before` is back-dated, for clients with slow clocks.
pub const GENERATED_BACKDATE: Duration = Duration::from_secs(24 * 3600);

/// Generates a self-signed ECDSA P-256 certificate for `names` (see the module docs).
pub fn generate(names: &[String]) -> Result<Certificate, TlsError> {
    use rcgen::{
        CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, KeyPair,
        KeyUsagePurpose, PKCS_ECDSA_P256_SHA256,
    };
    let gen_err = |e: rcgen::Error| TlsError::Generate(e.to_string());
    let boring_err = |e: boring::error::ErrorStack| TlsError::Generate(e.to_string());

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
    let leaf = X509::from_der(cert.der()).map_err(boring_err)?;
    let key = PKey::private_key_from_pkcs8(&key.serialize_der()).map_err(boring_err)?;
    Certificate::new(vec![leaf], key).map_err(boring_err)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::tls::system_time;
    use boring::nid::Nid;
    use boring::pkey::Id;
    use boring::x509::X509Ref;
    use std::net::{Ipv4Addr, Ipv6Addr};

    const DAY: Duration = Duration::from_secs(86_400);

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    fn common_name(cert: &X509Ref) -> Option<String> {
        let entry = cert.subject_name().entries_by_nid(Nid::COMMONNAME).next()?;
        Some(entry.data().as_utf8().unwrap().to_string())
    }

    /// DNS and IP subject alternative names, in order.
    fn sans(cert: &X509Ref) -> (Vec<String>, Vec<IpAddr>) {
        let (mut dns, mut ips) = (Vec::new(), Vec::new());
        for name in cert.subject_alt_names().into_iter().flatten() {
            if let Some(d) = name.dnsname() {
                dns.push(d.to_string());
            } else if let Some(ip) = name.ipaddress() {
                ips.push(match ip.len() {
                    4 => IpAddr::from(<[u8; 4]>::try_from(ip).unwrap()),
                    _ => IpAddr::from(<[u8; 16]>::try_from(ip).unwrap()),
                });
            }
        }
        (dns, ips)
    }

    #[test]
    fn generated_certificate_parses() {
        let cert = generate(&names(&["localhost"])).unwrap();
        assert_eq!(cert.chain().len(), 1);
        let leaf = cert.leaf();

        // ECDSA P-256, self-signed with ECDSA-SHA256.
        let public = leaf.public_key().unwrap();
        assert_eq!(public.id(), Id::EC);
        assert_eq!(
            public.ec_key().unwrap().group().curve_name(),
            Some(Nid::X9_62_PRIME256V1)
        );
        assert_eq!(
            leaf.signature_algorithm().object().nid(),
            Nid::ECDSA_WITH_SHA256
        );
        assert!(leaf.verify(&public).unwrap(), "self-signature verifies");

        // The key is P-256, serialises as PKCS#8, and belongs to the certificate.
        assert_eq!(cert.key().id(), Id::EC);
        assert!(cert.key().public_eq(&public));
        let pem = cert.key().private_key_to_pem_pkcs8().unwrap();
        assert!(pem.starts_with(b"-----BEGIN PRIVATE KEY-----\n"));

        // Names.
        assert_eq!(common_name(leaf).as_deref(), Some("localhost"));
        let (dns, ips) = sans(leaf);
        assert_eq!(dns, ["localhost"]);
        assert_eq!(
            ips,
            [
                IpAddr::from(Ipv4Addr::LOCALHOST),
                IpAddr::from(Ipv6Addr::LOCALHOST)
            ]
        );

        // Validity: from a day ago, for 14 days (Chrome's serverCertificateHashes limit).
        let not_before = system_time(leaf.not_before()).unwrap();
        let not_after = system_time(leaf.not_after()).unwrap();
        let validity = not_after.duration_since(not_before).unwrap();
        assert!(validity <= 14 * DAY, "{validity:?}");
        assert_eq!(validity, GENERATED_VALIDITY);
        let now = SystemTime::now();
        let age = now.duration_since(not_before).unwrap();
        assert!(age >= DAY - Duration::from_secs(5) && age <= DAY + Duration::from_secs(5));
        assert_eq!(cert.not_after, not_after);
        assert!(cert.remaining() > 12 * DAY && cert.remaining() <= 13 * DAY);
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
        assert_eq!(
            common_name(cert.leaf()).as_deref(),
            Some("relay.example.com")
        );
        let (dns, ips) = sans(cert.leaf());
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
        assert_eq!(common_name(cert.leaf()).as_deref(), Some("127.0.0.1"));
        let (dns, ips) = sans(cert.leaf());
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
        assert_ne!(
            a.key().private_key_to_der().unwrap(),
            b.key().private_key_to_der().unwrap()
        );
    }
}
