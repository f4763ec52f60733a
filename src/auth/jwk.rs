//! JWK key files as moq-token writes them (PROTOCOL.md §8.7): parsing with precise reasons,
//! validation of the material against the algorithm, and serialization back to JSON or to
//! the base64url form.

use super::algorithm::{Algorithm, Curve, Family};
use super::base64url;
use crate::path;
use serde_json::{Map, Value};
use std::fmt;
use std::path::Path;

/// Shortest shared secret accepted, in bytes (moq-token and its JS twin agree on 32).
pub const MIN_SECRET_BYTES: usize = 32;
/// Smallest RSA modulus accepted, in bits.
pub const MIN_RSA_BITS: usize = 2048;
/// Longest key id.
pub const MAX_KID_LEN: usize = 128;

/// A parsed and validated JWK.
#[derive(Clone, PartialEq, Eq)]
pub struct Jwk {
    pub alg: Algorithm,
    /// `key_ops` allows `sign`.
    pub can_sign: bool,
    /// `key_ops` allows `verify`.
    pub can_verify: bool,
    pub kid: Option<String>,
    /// An immutable ceiling on what tokens of this key may grant.
    pub scope: Option<KeyScope>,
    pub material: Material,
}

/// The key material, by `kty`.
#[derive(Clone, PartialEq, Eq)]
pub enum Material {
    /// `oct`: a shared secret.
    Secret { k: Vec<u8> },
    /// `EC`: a point, and the private scalar `d` when present.
    Ec {
        curve: Curve,
        x: Vec<u8>,
        y: Vec<u8>,
        d: Option<Vec<u8>>,
    },
    /// `RSA`: modulus and exponent, and the private parts when present.
    Rsa {
        n: Vec<u8>,
        e: Vec<u8>,
        private: Option<RsaPrivate>,
    },
    /// `OKP` with `crv: Ed25519`: the public key, and the seed `d` when present.
    Ed25519 { x: Vec<u8>, d: Option<Vec<u8>> },
}

/// The private half of an RSA JWK (RFC 7518 §6.3.2).
#[derive(Clone, PartialEq, Eq)]
pub struct RsaPrivate {
    pub d: Vec<u8>,
    pub p: Vec<u8>,
    pub q: Vec<u8>,
    pub dp: Vec<u8>,
    pub dq: Vec<u8>,
    pub qi: Vec<u8>,
}

/// A key's `scope`: grants relative to `root`, per role.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KeyScope {
    pub root: String,
    pub put: Vec<String>,
    pub get: Vec<String>,
}

/// Why a key file was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JwkError(pub String);

impl fmt::Display for JwkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for JwkError {}

fn err<T>(reason: impl Into<String>) -> Result<T, JwkError> {
    Err(JwkError(reason.into()))
}

// Never print key material, not even in a debug log.
impl fmt::Debug for Jwk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Jwk")
            .field("alg", &self.alg)
            .field("kid", &self.kid)
            .field("private", &self.has_private())
            .finish_non_exhaustive()
    }
}

impl Jwk {
    /// Reads a key file holding JWK JSON or base64url of it.
    pub fn load(file: &Path) -> Result<Self, JwkError> {
        let text = std::fs::read_to_string(file)
            .map_err(|e| JwkError(format!("cannot read {}: {e}", file.display())))?;
        Self::parse(&text)
    }

    /// Parses JWK JSON, or base64url (padded or not) of it; surrounding whitespace is ignored.
    pub fn parse(text: &str) -> Result<Self, JwkError> {
        let text = text.trim();
        let json = if text.starts_with('{') {
            text.to_string()
        } else {
            let bytes = base64url::decode(text)
                .map_err(|e| JwkError(format!("not a JWK: neither JSON nor base64url ({e})")))?;
            String::from_utf8(bytes)
                .map_err(|_| JwkError("not a JWK: the base64url content is not JSON".into()))?
        };
        let value: Value = serde_json::from_str(&json)
            .map_err(|e| JwkError(format!("not a JWK: invalid JSON ({e})")))?;
        let Value::Object(object) = value else {
            return err("a JWK must be a JSON object");
        };
        Self::from_object(&object)
    }

    fn from_object(o: &Map<String, Value>) -> Result<Self, JwkError> {
        let alg: Algorithm = match string(o, "alg")? {
            Some(alg) => alg.parse().map_err(JwkError)?,
            None => return err("missing \"alg\""),
        };
        let (can_sign, can_verify) = key_ops(o)?;
        let kid = match string(o, "kid")? {
            Some(kid) => Some(validate_kid(kid).map_err(JwkError)?.to_string()),
            None => None,
        };
        let scope = match o.get("scope") {
            None | Some(Value::Null) => None,
            Some(Value::Object(s)) => Some(KeyScope::from_object(s)?),
            Some(_) => return err("\"scope\" must be an object"),
        };
        let kty = string(o, "kty")?.unwrap_or("oct");
        let material = Material::from_object(kty, o)?;
        let jwk = Self {
            alg,
            can_sign,
            can_verify,
            kid,
            scope,
            material,
        };
        jwk.validate()?;
        Ok(jwk)
    }

    /// Checks that the material fits the algorithm and is a usable key.
    fn validate(&self) -> Result<(), JwkError> {
        let alg = self.alg;
        match (&self.material, alg.family()) {
            (Material::Secret { k }, Family::Hmac) => {
                if k.len() < MIN_SECRET_BYTES {
                    return err(format!(
                        "the {alg} secret is {} bytes; at least {MIN_SECRET_BYTES} are required",
                        k.len()
                    ));
                }
            }
            (Material::Ec { curve, x, y, d }, Family::Ec(want)) => {
                if *curve != want {
                    return err(format!(
                        "{alg} needs curve {}, not {}",
                        want.name(),
                        curve.name()
                    ));
                }
                let len = curve.coordinate_len();
                if x.len() != len || y.len() != len || d.as_ref().is_some_and(|d| d.len() != len) {
                    return err(format!("{} coordinates must be {len} bytes", curve.name()));
                }
                let mut point = vec![0x04];
                point.extend_from_slice(x);
                point.extend_from_slice(y);
                let valid = match curve {
                    Curve::P256 => p256::PublicKey::from_sec1_bytes(&point).is_ok(),
                    Curve::P384 => p384::PublicKey::from_sec1_bytes(&point).is_ok(),
                };
                if !valid {
                    return err(format!("x and y are not a point on {}", curve.name()));
                }
            }
            (Material::Rsa { n, e, private }, Family::Rsa) => {
                let bits = significant_bits(n);
                if bits < MIN_RSA_BITS {
                    return err(format!(
                        "the RSA modulus has {bits} bits; at least {MIN_RSA_BITS} are required"
                    ));
                }
                if significant_bits(e) < 2 {
                    return err("the RSA exponent is invalid");
                }
                if let Some(p) = private {
                    let parts = [&p.d, &p.p, &p.q, &p.dp, &p.dq, &p.qi];
                    if parts.iter().any(|part| part.is_empty()) {
                        return err("an RSA private key needs d, p, q, dp, dq and qi");
                    }
                }
            }
            (Material::Ed25519 { x, d }, Family::Ed25519) => {
                let Ok(public) = <[u8; 32]>::try_from(x.as_slice()) else {
                    return err("an Ed25519 public key is 32 bytes");
                };
                if ed25519_dalek::VerifyingKey::from_bytes(&public).is_err() {
                    return err("x is not a valid Ed25519 public key");
                }
                if d.as_ref().is_some_and(|d| d.len() != 32) {
                    return err("an Ed25519 private key is 32 bytes");
                }
            }
            (material, _) => {
                return err(format!(
                    "{alg} needs kty {}, but the key is kty {}",
                    kty_of(alg.family()),
                    material.kty()
                ))
            }
        }
        if let Some(scope) = &self.scope {
            if scope.put.is_empty() && scope.get.is_empty() {
                return err("the key's scope grants nothing");
            }
        }
        Ok(())
    }

    /// Whether the file holds private material (a secret counts).
    pub fn has_private(&self) -> bool {
        match &self.material {
            Material::Secret { .. } => true,
            Material::Ec { d, .. } | Material::Ed25519 { d, .. } => d.is_some(),
            Material::Rsa { private, .. } => private.is_some(),
        }
    }

    /// The verify-only public half of an asymmetric key; `None` for a shared secret.
    pub fn to_public(&self) -> Option<Jwk> {
        let material = match &self.material {
            Material::Secret { .. } => return None,
            Material::Ec { curve, x, y, .. } => Material::Ec {
                curve: *curve,
                x: x.clone(),
                y: y.clone(),
                d: None,
            },
            Material::Rsa { n, e, .. } => Material::Rsa {
                n: n.clone(),
                e: e.clone(),
                private: None,
            },
            Material::Ed25519 { x, .. } => Material::Ed25519 {
                x: x.clone(),
                d: None,
            },
        };
        Some(Jwk {
            can_sign: false,
            can_verify: true,
            material,
            ..self.clone()
        })
    }

    /// The JWK as a JSON object.
    pub fn to_json(&self) -> String {
        let mut o = Map::new();
        o.insert("alg".into(), self.alg.name().into());
        let mut ops = Vec::new();
        if self.can_sign {
            ops.push(Value::from("sign"));
        }
        if self.can_verify {
            ops.push(Value::from("verify"));
        }
        o.insert("key_ops".into(), Value::Array(ops));
        o.insert("kty".into(), self.material.kty().into());
        let mut put = |name: &str, bytes: &[u8]| {
            o.insert(name.into(), base64url::encode(bytes).into());
        };
        match &self.material {
            Material::Secret { k } => put("k", k),
            Material::Ec { curve, x, y, d } => {
                put("x", x);
                put("y", y);
                if let Some(d) = d {
                    put("d", d);
                }
                o.insert("crv".into(), curve.name().into());
            }
            Material::Rsa { n, e, private } => {
                put("n", n);
                put("e", e);
                if let Some(p) = private {
                    put("d", &p.d);
                    put("p", &p.p);
                    put("q", &p.q);
                    put("dp", &p.dp);
                    put("dq", &p.dq);
                    put("qi", &p.qi);
                }
            }
            Material::Ed25519 { x, d } => {
                put("x", x);
                if let Some(d) = d {
                    put("d", d);
                }
                o.insert("crv".into(), "Ed25519".into());
            }
        }
        if let Some(kid) = &self.kid {
            o.insert("kid".into(), kid.clone().into());
        }
        if let Some(scope) = &self.scope {
            let mut s = Map::new();
            if !scope.root.is_empty() {
                s.insert("root".into(), scope.root.clone().into());
            }
            if !scope.put.is_empty() {
                s.insert("put".into(), scope.put.clone().into());
            }
            if !scope.get.is_empty() {
                s.insert("get".into(), scope.get.clone().into());
            }
            o.insert("scope".into(), Value::Object(s));
        }
        Value::Object(o).to_string()
    }

    /// The form `moq-token generate` writes: base64url of the JSON, without padding.
    pub fn to_base64url(&self) -> String {
        base64url::encode(self.to_json().as_bytes())
    }
}

impl Material {
    fn from_object(kty: &str, o: &Map<String, Value>) -> Result<Self, JwkError> {
        Ok(match kty {
            "oct" => Material::Secret {
                k: required_bytes(o, "k")?,
            },
            "EC" => {
                let curve = match string(o, "crv")? {
                    Some("P-256") => Curve::P256,
                    Some("P-384") => Curve::P384,
                    Some(other) => return err(format!("unsupported EC curve {other:?}")),
                    None => return err("missing \"crv\""),
                };
                Material::Ec {
                    curve,
                    x: required_bytes(o, "x")?,
                    y: required_bytes(o, "y")?,
                    d: bytes(o, "d")?,
                }
            }
            "RSA" => {
                let private = match bytes(o, "d")? {
                    None => None,
                    Some(d) => Some(RsaPrivate {
                        d,
                        p: required_bytes(o, "p")?,
                        q: required_bytes(o, "q")?,
                        dp: required_bytes(o, "dp")?,
                        dq: required_bytes(o, "dq")?,
                        qi: required_bytes(o, "qi")?,
                    }),
                };
                if o.contains_key("oth") {
                    return err("multi-prime RSA keys (\"oth\") are not supported");
                }
                Material::Rsa {
                    n: required_bytes(o, "n")?,
                    e: required_bytes(o, "e")?,
                    private,
                }
            }
            "OKP" => {
                match string(o, "crv")? {
                    Some("Ed25519") => {}
                    Some(other) => return err(format!("unsupported OKP curve {other:?}")),
                    None => return err("missing \"crv\""),
                }
                Material::Ed25519 {
                    x: required_bytes(o, "x")?,
                    d: bytes(o, "d")?,
                }
            }
            other => return err(format!("unsupported kty {other:?}")),
        })
    }

    /// The JWK `kty` name.
    pub fn kty(&self) -> &'static str {
        match self {
            Material::Secret { .. } => "oct",
            Material::Ec { .. } => "EC",
            Material::Rsa { .. } => "RSA",
            Material::Ed25519 { .. } => "OKP",
        }
    }
}

impl KeyScope {
    fn from_object(o: &Map<String, Value>) -> Result<Self, JwkError> {
        let root = string(o, "root")?.unwrap_or("");
        let root = path::normalize(root).map_err(|e| JwkError(format!("scope.root: {e}")))?;
        let list = |name: &str| -> Result<Vec<String>, JwkError> {
            string_or_list(o.get(name))
                .map_err(|reason| JwkError(format!("scope.{name}: {reason}")))?
                .iter()
                .map(|p| path::normalize(p).map_err(|e| JwkError(format!("scope.{name}: {e}"))))
                .collect()
        };
        Ok(Self {
            root,
            put: list("put")?,
            get: list("get")?,
        })
    }
}

fn kty_of(family: Family) -> &'static str {
    match family {
        Family::Hmac => "oct",
        Family::Ec(_) => "EC",
        Family::Rsa => "RSA",
        Family::Ed25519 => "OKP",
    }
}

/// Checks a key id: `[A-Za-z0-9_-]`, 1 to 128 characters.
pub fn validate_kid(kid: &str) -> Result<&str, String> {
    let valid_chars = kid
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if kid.is_empty() || kid.len() > MAX_KID_LEN || !valid_chars {
        return Err(format!(
            "invalid key id {kid:?}: use 1 to {MAX_KID_LEN} characters of A-Z a-z 0-9 _ -"
        ));
    }
    Ok(kid)
}

fn key_ops(o: &Map<String, Value>) -> Result<(bool, bool), JwkError> {
    let Some(value) = o.get("key_ops") else {
        return Ok((true, true));
    };
    let Value::Array(ops) = value else {
        return err("\"key_ops\" must be an array");
    };
    let (mut sign, mut verify) = (false, false);
    for op in ops {
        match op.as_str() {
            Some("sign") => sign = true,
            Some("verify") => verify = true,
            Some("encrypt" | "decrypt") => {}
            _ => return err(format!("unknown key_ops entry {op}")),
        }
    }
    Ok((sign, verify))
}

/// A string field, or `None` when absent or null.
fn string<'a>(o: &'a Map<String, Value>, name: &str) -> Result<Option<&'a str>, JwkError> {
    match o.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => err(format!("\"{name}\" must be a string")),
    }
}

fn bytes(o: &Map<String, Value>, name: &str) -> Result<Option<Vec<u8>>, JwkError> {
    match string(o, name)? {
        None => Ok(None),
        Some(text) => base64url::decode(text)
            .map(Some)
            .map_err(|e| JwkError(format!("\"{name}\" is not base64url: {e}"))),
    }
}

fn required_bytes(o: &Map<String, Value>, name: &str) -> Result<Vec<u8>, JwkError> {
    match bytes(o, name)? {
        Some(b) if !b.is_empty() => Ok(b),
        Some(_) => err(format!("\"{name}\" is empty")),
        None => err(format!("missing \"{name}\"")),
    }
}

/// A JSON string or array of strings, as claims and scopes allow.
pub fn string_or_list(value: Option<&Value>) -> Result<Vec<String>, String> {
    match value {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::String(s)) => Ok(vec![s.clone()]),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| {
                item.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| format!("expected strings, found {item}"))
            })
            .collect(),
        Some(other) => Err(format!(
            "expected a string or a list of strings, found {other}"
        )),
    }
}

/// Bits in a big-endian unsigned integer, leading zeros not counted.
fn significant_bits(be: &[u8]) -> usize {
    match be.iter().position(|&b| b != 0) {
        Some(i) => (be.len() - i) * 8 - be[i].leading_zeros() as usize,
        None => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A key moq-token-cli 0.5.48 generated (`moq-token generate`), in its base64url form.
    const REFERENCE_HS256: &str = "eyJhbGciOiJIUzI1NiIsImtleV9vcHMiOlsidmVyaWZ5Iiwic2lnbiJdLCJrdHkiOiJvY3QiLCJrIjoiamxlQ2Y4SUs4MTZDQnhJWGNweFBvVDRLU3RzSE1IT3ZCLTBoeWpxT0tUZyIsImtpZCI6ImZmMzA3ZWQ4M2JlYTNkMWIifQ";
    /// Its ES256 public half (`--public`).
    const REFERENCE_ES256_PUBLIC: &str = "eyJhbGciOiJFUzI1NiIsImtleV9vcHMiOlsidmVyaWZ5Il0sImt0eSI6IkVDIiwiY3J2IjoiUC0yNTYiLCJ4IjoiZlF3RXN5dUtjU3FlWmtmaDlDOXJ5UVZOWEpOTmlLMlRfYVBabWNwYTN6ayIsInkiOiJGOU1LdHJnMkFHVFRvd2wwLXRYNHl5em1VVGNMUE9fSW13Q0s2VzE1elZrIiwia2lkIjoiZTI5MDY3ZjU4MmE5ZTE3ZCJ9";

    #[test]
    fn reads_keys_the_reference_tool_wrote() {
        let hs = Jwk::parse(REFERENCE_HS256).unwrap();
        assert_eq!(hs.alg, Algorithm::HS256);
        assert_eq!(hs.kid.as_deref(), Some("ff307ed83bea3d1b"));
        assert!(hs.can_sign && hs.can_verify && hs.has_private());
        let es = Jwk::parse(&format!("  {REFERENCE_ES256_PUBLIC}\n")).unwrap();
        assert_eq!(es.alg, Algorithm::ES256);
        assert!(!es.can_sign && es.can_verify && !es.has_private());
        // Round trips through both of our forms.
        assert_eq!(Jwk::parse(&es.to_json()).unwrap(), es);
        assert_eq!(Jwk::parse(&hs.to_base64url()).unwrap(), hs);
    }

    #[test]
    fn defaults_and_padded_values_are_accepted() {
        let k = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, [7u8; 32]);
        let json = format!(r#"{{"alg":"HS384","k":"{k}"}}"#);
        let key = Jwk::parse(&json).unwrap();
        assert_eq!(key.material.kty(), "oct");
        assert!(key.can_sign && key.can_verify);
        assert_eq!(key.kid, None);
    }

    #[test]
    fn bad_keys_are_refused_with_a_reason() {
        let short = base64url::encode(&[1u8; 16]);
        let ok = base64url::encode(&[1u8; 32]);
        for (json, reason) in [
            (base64url::encode(b"[1]"), "JSON object"),
            ("not base64!".to_string(), "not a JWK"),
            (r#"{"kty":"oct","k":"AAAA"}"#.to_string(), "missing \"alg\""),
            (format!(r#"{{"alg":"HS256","k":"{short}"}}"#), "at least 32"),
            (
                format!(r#"{{"alg":"none","k":"{ok}"}}"#),
                "unknown algorithm",
            ),
            (format!(r#"{{"alg":"RS256","k":"{ok}"}}"#), "needs kty RSA"),
            (
                format!(r#"{{"alg":"HS256","kty":"EC","k":"{ok}"}}"#),
                "missing \"crv\"",
            ),
            (
                format!(r#"{{"alg":"HS256","k":"{ok}","kid":"a b"}}"#),
                "invalid key id",
            ),
            (
                format!(r#"{{"alg":"HS256","k":"{ok}","key_ops":["fly"]}}"#),
                "key_ops",
            ),
            (
                format!(r#"{{"alg":"HS256","k":"{ok}","scope":{{"root":"a"}}}}"#),
                "grants nothing",
            ),
            (
                format!(r#"{{"alg":"EdDSA","kty":"OKP","crv":"Ed25519","x":"{short}"}}"#),
                "32 bytes",
            ),
            (
                format!(r#"{{"alg":"ES256","kty":"EC","crv":"P-256","x":"{ok}","y":"{ok}"}}"#),
                "not a point",
            ),
            (
                format!(r#"{{"alg":"ES384","kty":"EC","crv":"P-256","x":"{ok}","y":"{ok}"}}"#),
                "needs curve P-384",
            ),
            (
                format!(r#"{{"alg":"RS256","kty":"RSA","n":"{ok}","e":"AQAB"}}"#),
                "at least 2048",
            ),
        ] {
            let e = Jwk::parse(&json).expect_err(&json);
            assert!(e.0.contains(reason), "{json}: {e}");
        }
    }

    #[test]
    fn debug_output_hides_material() {
        let key = Jwk::parse(REFERENCE_HS256).unwrap();
        let shown = format!("{key:?}");
        assert!(!shown.contains("jleCf8"), "{shown}");
    }
}
