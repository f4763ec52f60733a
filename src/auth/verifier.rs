//! Token verification against the relay's key: header checks with precise reasons (`alg`
//! must equal the key's, `kid` must match), the signature through jsonwebtoken, then the
//! claims and the key's scope.

use super::algorithm::Algorithm;
use super::base64url;
use super::claims::Claims;
use super::jwk::{validate_kid, Jwk, JwkError, Material};
use jsonwebtoken::DecodingKey;
use serde_json::Value;

/// Longest token accepted, in bytes; real ones are a few hundred.
pub const MAX_TOKEN_LEN: usize = 8 * 1024;

/// Verifies tokens with one key.
pub struct Verifier {
    key: Jwk,
    decoding: DecodingKey,
    /// Refuse tokens without `exp` (`[auth] require_exp`); by default they never expire.
    require_exp: bool,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier").field("key", &self.key).finish()
    }
}

impl Verifier {
    /// A verifier for `key`, which must allow `verify`.
    pub fn new(key: Jwk) -> Result<Self, JwkError> {
        if !key.can_verify {
            return Err(JwkError(
                "the key's key_ops do not include \"verify\"".into(),
            ));
        }
        let decoding = decoding_key(&key.material)?;
        Ok(Self {
            key,
            decoding,
            require_exp: false,
        })
    }

    /// Refuses tokens that carry no `exp` claim (by default they are accepted and never
    /// expire; `exp` is checked whenever present).
    pub fn requiring_exp(mut self, require: bool) -> Self {
        self.require_exp = require;
        self
    }

    /// The key tokens are checked against.
    pub fn key(&self) -> &Jwk {
        &self.key
    }

    /// Checks `token` at unix time `now` and returns what it grants.
    pub fn verify(&self, token: &str, now: u64) -> Result<Claims, String> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(format!("the token is longer than {MAX_TOKEN_LEN} bytes"));
        }
        let mut parts = token.split('.');
        let (Some(header), Some(payload), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err("malformed token: not three dot-separated parts".into());
        };
        let alg = self.check_header(header)?;
        // The signature covers the first two parts exactly as sent.
        let signed = &token[..header.len() + 1 + payload.len()];
        let valid = jsonwebtoken::crypto::verify(
            signature,
            signed.as_bytes(),
            &self.decoding,
            alg.jsonwebtoken(),
        )
        .map_err(|e| format!("malformed token signature: {e}"))?;
        if !valid {
            return Err("bad signature".into());
        }
        // The payload is read only once the signature holds. (jsonwebtoken's own `decode`
        // cannot read seed-era tokens: it insists that `sub` is a string.)
        let payload =
            base64url::decode(payload).map_err(|e| format!("malformed token payload: {e}"))?;
        let payload: Value = serde_json::from_slice(&payload)
            .map_err(|e| format!("malformed token payload: {e}"))?;
        let claims = Claims::from_payload(&payload, now, self.require_exp)?;
        if let Some(scope) = &self.key.scope {
            if !claims.within(scope) {
                return Err("the token grants more than the key's scope allows".into());
            }
        }
        Ok(claims)
    }

    /// Reads the JOSE header and checks `alg` and `kid` against the key.
    fn check_header(&self, encoded: &str) -> Result<Algorithm, String> {
        let bytes =
            base64url::decode(encoded).map_err(|e| format!("malformed token header: {e}"))?;
        let header: Value =
            serde_json::from_slice(&bytes).map_err(|e| format!("malformed token header: {e}"))?;
        let Value::Object(header) = header else {
            return Err("malformed token header: not a JSON object".into());
        };
        let alg = match header.get("alg") {
            Some(Value::String(alg)) => alg.as_str(),
            _ => return Err("the token header has no alg".into()),
        };
        if alg.eq_ignore_ascii_case("none") {
            return Err("unsigned tokens (alg none) are refused".into());
        }
        let alg: Algorithm = alg.parse()?;
        if alg != self.key.alg {
            return Err(format!(
                "the token is signed with {alg}, but the key is {}",
                self.key.alg
            ));
        }
        if header.contains_key("crit") {
            return Err("the token header has critical extensions (crit)".into());
        }
        match header.get("kid") {
            None | Some(Value::Null) => {}
            Some(Value::String(kid)) => {
                validate_kid(kid)?;
                if let Some(ours) = &self.key.kid {
                    if ours != kid {
                        return Err(format!("the token's kid {kid:?} is not the key's {ours:?}"));
                    }
                }
            }
            Some(_) => return Err("the token's kid is not a string".into()),
        }
        Ok(alg)
    }
}

/// The public part of the material, as jsonwebtoken verifies with it.
fn decoding_key(material: &Material) -> Result<DecodingKey, JwkError> {
    Ok(match material {
        Material::Secret { k } => {
            DecodingKey::from_secret(k).map_err(|e| JwkError(format!("unusable secret: {e}")))?
        }
        Material::Ec { x, y, .. } => {
            let mut point = Vec::with_capacity(1 + x.len() + y.len());
            point.push(0x04);
            point.extend_from_slice(x);
            point.extend_from_slice(y);
            DecodingKey::from_ec_der(&point)
        }
        Material::Rsa { n, e, .. } => DecodingKey::from_rsa_raw_components(n, e),
        Material::Ed25519 { x, .. } => DecodingKey::from_ed_der(x),
    })
}

/// Seconds since the unix epoch.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
