//! Key generation and token signing for the `moq-token` tool, sans IO.
//!
//! [`generate`] makes keys in the JWK shape moq-token 0.7.4 writes (PROTOCOL.md §8.7), and
//! [`sign`] makes tokens the relay's [`Verifier`](super::Verifier) accepts: the header names
//! the key's `alg` and `kid`, the payload carries `root`, `put`, `get`, `exp` and `iat`. A
//! key that may not sign, a public half, claims that grant nothing and claims outside the
//! key's scope are refused before anything is signed.

use super::algorithm::{Algorithm, Curve, Family};
use super::claims::Claims;
use super::jwk::{validate_kid, Jwk, Material, RsaPrivate};
use crate::path;
use jsonwebtoken::{EncodingKey, Header};
use p256::elliptic_curve as ec;
use ring::rand::{SecureRandom, SystemRandom};
use serde_json::{Map, Value};

/// Bits in a generated RSA modulus (moq-token's choice).
pub const RSA_BITS: usize = 2048;

/// What a token should grant, as `moq-token sign` takes it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TokenClaims {
    /// The base path of the grants; omitted from the payload when empty.
    pub root: String,
    /// Publish prefixes relative to `root`; omitted when empty.
    pub put: Vec<String>,
    /// Subscribe prefixes relative to `root`; omitted when empty.
    pub get: Vec<String>,
    /// Expiry, unix seconds. The relay refuses tokens without one.
    pub exp: Option<u64>,
    /// Issue time, unix seconds.
    pub iat: Option<u64>,
}

impl TokenClaims {
    /// The JWT payload: only the fields that are set.
    pub fn to_payload(&self) -> Value {
        let mut o = Map::new();
        if !self.root.is_empty() {
            o.insert("root".into(), self.root.clone().into());
        }
        if !self.put.is_empty() {
            o.insert("put".into(), self.put.clone().into());
        }
        if !self.get.is_empty() {
            o.insert("get".into(), self.get.clone().into());
        }
        if let Some(exp) = self.exp {
            o.insert("exp".into(), exp.into());
        }
        if let Some(iat) = self.iat {
            o.insert("iat".into(), iat.into());
        }
        Value::Object(o)
    }

    /// The grants normalized the way the verifier reads them, for the scope check.
    fn normalized(&self) -> Result<Claims, String> {
        let norm = |what: &str, raw: &str| {
            path::normalize(raw).map_err(|e| format!("{what} {raw:?}: {e}"))
        };
        let list = |what: &str, raw: &[String]| -> Result<Vec<String>, String> {
            raw.iter().map(|p| norm(what, p)).collect()
        };
        Ok(Claims {
            root: norm("root", &self.root)?,
            put: list("put", &self.put)?,
            get: list("get", &self.get)?,
            cluster: false,
            exp: self.exp,
            iat: self.iat,
        })
    }
}

/// A new key for `alg` that may sign and verify. Without `kid`, a random one of 16
/// lowercase hex characters is assigned, as moq-token does.
pub fn generate(alg: Algorithm, kid: Option<String>) -> Result<Jwk, String> {
    let kid = match kid {
        Some(kid) => validate_kid(&kid)?.to_string(),
        None => random_kid()?,
    };
    let material = match alg.family() {
        Family::Hmac => secret(match alg {
            Algorithm::HS384 => 48,
            Algorithm::HS512 => 64,
            _ => 32,
        })?,
        Family::Ec(curve) => ec_key(curve)?,
        Family::Rsa => rsa_key()?,
        Family::Ed25519 => ed25519()?,
    };
    Ok(Jwk {
        alg,
        can_sign: true,
        can_verify: true,
        kid: Some(kid),
        scope: None,
        material,
    })
}

/// Signs `claims` with `key`, returning the compact JWT.
pub fn sign(key: &Jwk, claims: &TokenClaims) -> Result<String, String> {
    if !key.has_private() {
        return Err("the key has no private material: a public key can only verify".into());
    }
    if !key.can_sign {
        return Err("the key's key_ops do not include \"sign\"".into());
    }
    if claims.put.is_empty() && claims.get.is_empty() {
        return Err(
            "the token would grant nothing: give at least one publish or subscribe path".into(),
        );
    }
    let normalized = claims.normalized()?;
    if let Some(scope) = &key.scope {
        if !normalized.within(scope) {
            return Err("the claims grant more than the key's scope allows".into());
        }
    }
    let encoding = encoding_key(key)?;
    let mut header = Header::new(key.alg.jsonwebtoken());
    header.kid = key.kid.clone();
    jsonwebtoken::encode(&header, &claims.to_payload(), &encoding)
        .map_err(|e| format!("signing failed: {e}"))
}

/// The private material as jsonwebtoken signs with it: PKCS#8 DER for EC and Ed25519,
/// PKCS#1 DER for RSA. The private half is checked against the public half on the way.
fn encoding_key(key: &Jwk) -> Result<EncodingKey, String> {
    match &key.material {
        Material::Secret { k } => {
            EncodingKey::from_secret(k).map_err(|e| format!("unusable secret: {e}"))
        }
        Material::Ec { curve, x, y, d } => {
            let d = d.as_deref().ok_or("the EC key has no private scalar (d)")?;
            let (point, der) = match curve {
                Curve::P256 => ec_parts::<p256::NistP256>(d),
                Curve::P384 => ec_parts::<p384::NistP384>(d),
            }
            .ok_or("the EC private scalar (d) is invalid")?;
            let mut expected = vec![0x04];
            expected.extend_from_slice(x);
            expected.extend_from_slice(y);
            if point != expected {
                return Err("the EC private scalar (d) does not match x and y".into());
            }
            Ok(EncodingKey::from_ec_der(&der))
        }
        Material::Ed25519 { x, d } => {
            let d = d.as_deref().ok_or("the Ed25519 key has no seed (d)")?;
            let seed: [u8; 32] = d.try_into().map_err(|_| "an Ed25519 seed is 32 bytes")?;
            let public = ed25519_dalek::SigningKey::from_bytes(&seed)
                .verifying_key()
                .to_bytes();
            if public.as_slice() != x.as_slice() {
                return Err("the Ed25519 seed (d) does not match x".into());
            }
            Ok(EncodingKey::from_ed_der(&ed25519_pkcs8(&seed)))
        }
        Material::Rsa { n, e, private } => {
            use rsa::pkcs1::EncodeRsaPrivateKey;
            let p = private.as_ref().ok_or("the RSA key has no private parts")?;
            let uint = rsa::BoxedUint::from_be_slice_vartime;
            let rsa = rsa::PrivateKey::from_components(
                uint(n),
                uint(e),
                uint(&p.d),
                vec![uint(&p.p), uint(&p.q)],
            )
            .map_err(|e| format!("invalid RSA private key: {e}"))?;
            let der = rsa
                .to_pkcs1_der()
                .map_err(|e| format!("cannot encode the RSA key: {e}"))?;
            Ok(EncodingKey::from_rsa_der(der.as_bytes()))
        }
    }
}

/// A OneAsymmetricKey (RFC 8410 §7) holding an Ed25519 seed: a fixed 16-byte prefix, then
/// the seed as an OCTET STRING inside the privateKey OCTET STRING.
fn ed25519_pkcs8(seed: &[u8; 32]) -> Vec<u8> {
    const PREFIX: [u8; 16] = [
        0x30, 0x2e, // SEQUENCE, 46 bytes
        0x02, 0x01, 0x00, // INTEGER 0 (version)
        0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, // AlgorithmIdentifier: id-Ed25519
        0x04, 0x22, 0x04, 0x20, // OCTET STRING { OCTET STRING, 32 bytes }
    ];
    let mut der = PREFIX.to_vec();
    der.extend_from_slice(seed);
    der
}

fn random_bytes(len: usize) -> Result<Vec<u8>, String> {
    let mut bytes = vec![0u8; len];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| "the system random number generator failed".to_string())?;
    Ok(bytes)
}

fn random_kid() -> Result<String, String> {
    Ok(random_bytes(8)?
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

fn secret(len: usize) -> Result<Material, String> {
    Ok(Material::Secret {
        k: random_bytes(len)?,
    })
}

fn ec_key(curve: Curve) -> Result<Material, String> {
    let len = curve.coordinate_len();
    // Draw scalars until one is in range (all but a negligible fraction are).
    loop {
        let d = random_bytes(len)?;
        let parts = match curve {
            Curve::P256 => ec_parts::<p256::NistP256>(&d),
            Curve::P384 => ec_parts::<p384::NistP384>(&d),
        };
        if let Some((point, _)) = parts {
            return Ok(Material::Ec {
                curve,
                x: point[1..1 + len].to_vec(),
                y: point[1 + len..].to_vec(),
                d: Some(d),
            });
        }
    }
}

/// The uncompressed public point of scalar `d` and its PKCS#8 DER, or `None` when `d` is
/// not a valid scalar.
fn ec_parts<C>(d: &[u8]) -> Option<(Vec<u8>, Vec<u8>)>
where
    C: ec::pkcs8::AssociatedOid + ec::CurveArithmetic,
    ec::AffinePoint<C>: ec::sec1::FromSec1Point<C> + ec::sec1::ToSec1Point<C>,
    ec::FieldBytesSize<C>: ec::sec1::ModulusSize,
{
    use ec::pkcs8::EncodePrivateKey;
    use ec::sec1::ToSec1Point;
    let secret = ec::SecretKey::<C>::from_slice(d).ok()?;
    let point = secret.public_key().to_sec1_point(false).as_bytes().to_vec();
    let der = secret.to_pkcs8_der().ok()?.as_bytes().to_vec();
    Some((point, der))
}

fn ed25519() -> Result<Material, String> {
    let seed: [u8; 32] = random_bytes(32)?
        .try_into()
        .map_err(|_| "short random read".to_string())?;
    let x = ed25519_dalek::SigningKey::from_bytes(&seed)
        .verifying_key()
        .to_bytes()
        .to_vec();
    Ok(Material::Ed25519 {
        x,
        d: Some(seed.to_vec()),
    })
}

/// The system RNG in the `rand_core` generation the `rsa` crate takes.
struct SystemRng(SystemRandom);

#[derive(Debug)]
struct RngError;

impl std::fmt::Display for RngError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the system random number generator failed")
    }
}

impl std::error::Error for RngError {}

impl rsa::rand_core::TryRng for SystemRng {
    type Error = RngError;

    fn try_next_u32(&mut self) -> Result<u32, RngError> {
        let mut b = [0u8; 4];
        self.try_fill_bytes(&mut b)?;
        Ok(u32::from_le_bytes(b))
    }

    fn try_next_u64(&mut self) -> Result<u64, RngError> {
        let mut b = [0u8; 8];
        self.try_fill_bytes(&mut b)?;
        Ok(u64::from_le_bytes(b))
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), RngError> {
        self.0.fill(dst).map_err(|_| RngError)
    }
}

impl rsa::rand_core::TryCryptoRng for SystemRng {}

fn rsa_key() -> Result<Material, String> {
    use rsa::traits::{PrivateKeyParts, PublicKeyParts};
    let mut rng = SystemRng(SystemRandom::new());
    let key = rsa::PrivateKey::new(&mut rng, RSA_BITS)
        .map_err(|e| format!("RSA key generation failed: {e}"))?;
    let bytes = |v: &rsa::BoxedUint| v.to_be_bytes_trimmed_vartime().to_vec();
    let missing = || "RSA key generation left out the CRT parameters".to_string();
    let primes = key.primes();
    if primes.len() != 2 {
        return Err("RSA key generation did not give two primes".into());
    }
    let private = RsaPrivate {
        d: bytes(key.d()),
        p: bytes(primes[0].as_ref()),
        q: bytes(primes[1].as_ref()),
        dp: bytes(key.dp().ok_or_else(missing)?),
        dq: bytes(key.dq().ok_or_else(missing)?),
        qi: bytes(&key.crt_coefficient().ok_or_else(missing)?),
    };
    Ok(Material::Rsa {
        n: bytes(key.n().as_ref()),
        e: bytes(key.e()),
        private: Some(private),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::base64url;
    use crate::auth::{unix_now, KeyScope, Verifier};

    fn claims() -> TokenClaims {
        TokenClaims {
            root: "demo".into(),
            put: vec!["live".into()],
            get: vec!["".into(), "chat".into()],
            exp: Some(unix_now() + 600),
            iat: Some(unix_now()),
        }
    }

    /// One key per algorithm; the RSA algorithms share one modulus, since keygen is slow.
    fn keys() -> Vec<Jwk> {
        let rsa = generate(Algorithm::RS256, None).unwrap();
        Algorithm::ALL
            .into_iter()
            .map(|alg| match alg.family() {
                Family::Rsa => Jwk { alg, ..rsa.clone() },
                _ => generate(alg, None).unwrap(),
            })
            .collect()
    }

    /// `token` with one bit of its first signature byte flipped.
    fn tamper(token: &str) -> String {
        let (message, signature) = token.rsplit_once('.').unwrap();
        let mut sig = base64url::decode(signature).unwrap();
        sig[0] ^= 0x01;
        format!("{message}.{}", base64url::encode(&sig))
    }

    #[test]
    fn every_algorithm_signs_what_the_verifier_accepts() {
        let now = unix_now();
        for key in keys() {
            let alg = key.alg;
            // The generated key survives its own file format.
            assert_eq!(Jwk::parse(&key.to_base64url()).unwrap(), key, "{alg}");
            let kid = key.kid.clone().unwrap();
            assert_eq!(kid.len(), 16, "{alg}");
            assert!(kid
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));

            // One set of claims: a second boundary between signing and checking must not
            // move the expected expiry.
            let signed = claims();
            let token = sign(&key, &signed).unwrap();
            let header = token.split('.').next().unwrap();
            let header: Value =
                serde_json::from_slice(&base64url::decode(header).unwrap()).unwrap();
            assert_eq!(header["alg"], alg.name(), "{alg}");
            assert_eq!(header["typ"], "JWT", "{alg}");
            assert_eq!(header["kid"], kid.as_str(), "{alg}");

            let verifier = Verifier::new(key.clone()).unwrap();
            let got = verifier
                .verify(&token, now)
                .unwrap_or_else(|e| panic!("{alg}: {e}"));
            assert_eq!(got.root, "demo");
            assert_eq!(got.put, ["live"]);
            assert_eq!(got.get, ["", "chat"]);
            assert_eq!(got.exp, signed.exp);

            let e = verifier.verify(&tamper(&token), now).unwrap_err();
            assert!(e.contains("bad signature"), "{alg}: {e}");

            match key.to_public() {
                None => assert!(!alg.is_asymmetric()),
                Some(public) => {
                    assert!(!public.has_private());
                    let public_verifier = Verifier::new(public.clone()).unwrap();
                    assert!(public_verifier.verify(&token, now).is_ok(), "{alg}");
                    let e = sign(&public, &claims()).unwrap_err();
                    assert!(e.contains("public key can only verify"), "{alg}: {e}");
                    // Even with key_ops claiming "sign", there is nothing to sign with.
                    let pretend = Jwk {
                        can_sign: true,
                        ..public
                    };
                    let e = sign(&pretend, &claims()).unwrap_err();
                    assert!(e.contains("private"), "{alg}: {e}");
                }
            }
        }
    }

    #[test]
    fn the_payload_holds_only_what_is_set() {
        let bare = TokenClaims {
            get: vec!["x".into()],
            ..Default::default()
        };
        assert_eq!(bare.to_payload().to_string(), r#"{"get":["x"]}"#);
        let full = claims().to_payload();
        assert_eq!(full["root"], "demo");
        assert_eq!(full["put"], serde_json::json!(["live"]));
        assert!(full["exp"].is_u64() && full["iat"].is_u64());
    }

    #[test]
    fn refusals_come_before_signing() {
        let key = generate(Algorithm::HS256, Some("k1".into())).unwrap();
        assert_eq!(key.kid.as_deref(), Some("k1"));
        assert!(generate(Algorithm::HS256, Some("a b".into())).is_err());
        let nothing = TokenClaims {
            root: "demo".into(),
            exp: Some(unix_now() + 60),
            ..Default::default()
        };
        assert!(sign(&key, &nothing).unwrap_err().contains("nothing"));
        let verify_only = Jwk {
            can_sign: false,
            ..key.clone()
        };
        assert!(sign(&verify_only, &claims())
            .unwrap_err()
            .contains("key_ops"));
        // Without exp the token is signed and accepted, unless the relay requires an expiry.
        let no_exp = TokenClaims {
            exp: None,
            ..claims()
        };
        let token = sign(&key, &no_exp).unwrap();
        let verifier = Verifier::new(key).unwrap();
        assert_eq!(verifier.verify(&token, unix_now()).unwrap().exp, None);
        let e = verifier.requiring_exp(true).verify(&token, unix_now());
        assert!(e.unwrap_err().contains("no expiry"));
    }

    #[test]
    fn a_scoped_key_signs_only_within_its_scope() {
        let mut key = generate(Algorithm::EdDSA, None).unwrap();
        key.scope = Some(KeyScope {
            root: "demo".into(),
            put: vec!["live".into()],
            get: vec![],
        });
        let inside = TokenClaims {
            root: "/demo/".into(),
            put: vec!["live/cam".into()],
            exp: Some(unix_now() + 60),
            ..Default::default()
        };
        let token = sign(&key, &inside).unwrap();
        let public = Verifier::new(key.to_public().unwrap()).unwrap();
        assert_eq!(public.verify(&token, unix_now()).unwrap().put, ["live/cam"]);
        for outside in [
            TokenClaims {
                put: vec!["other".into()],
                ..inside.clone()
            },
            TokenClaims {
                put: vec![],
                get: vec!["live".into()],
                ..inside.clone()
            },
            TokenClaims {
                root: String::new(),
                put: vec!["".into()],
                ..inside.clone()
            },
        ] {
            let e = sign(&key, &outside).unwrap_err();
            assert!(e.contains("scope"), "{outside:?}: {e}");
        }
    }

    #[test]
    fn mismatched_private_halves_are_refused() {
        let a = generate(Algorithm::ES256, None).unwrap();
        let b = generate(Algorithm::ES256, None).unwrap();
        let (Material::Ec { d, .. }, Material::Ec { x, y, .. }) = (&a.material, &b.material) else {
            unreachable!()
        };
        let mixed = Jwk {
            material: Material::Ec {
                curve: Curve::P256,
                x: x.clone(),
                y: y.clone(),
                d: d.clone(),
            },
            ..a
        };
        assert!(sign(&mixed, &claims())
            .unwrap_err()
            .contains("does not match"));
        let ed = generate(Algorithm::EdDSA, None).unwrap();
        let Material::Ed25519 { d, .. } = &ed.material else {
            unreachable!()
        };
        let mixed = Jwk {
            material: Material::Ed25519 {
                x: ed25519_dalek::SigningKey::from_bytes(&[9u8; 32])
                    .verifying_key()
                    .to_bytes()
                    .to_vec(),
                d: d.clone(),
            },
            ..ed
        };
        assert!(sign(&mixed, &claims())
            .unwrap_err()
            .contains("does not match"));
    }
}
