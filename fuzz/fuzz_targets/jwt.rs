//! Token verification (src/auth/verifier.rs, claims.rs) with a fixed HS256 key, and the
//! authorization that follows it (src/auth/mod.rs). The first byte picks the input's shape:
//! 0: a raw `?jwt=` value; 1: a JOSE header and a payload (split at the first NUL byte)
//! that this target signs with the key, so the header checks and the claims parser see
//! anything; 2: a payload under a valid header, signed. A token the relay accepts must
//! authorize its own root or be refused with a reason.
#![no_main]

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use libfuzzer_sys::fuzz_target;
use moq_relay::auth::{Auth, ConnectPath, Jwk, Verifier};
use std::sync::{Arc, OnceLock};

/// A 32-byte HS256 secret, base64url (the `k` of the key below).
const SECRET_B64: &str = "ZnV6ei10YXJnZXQtc2VjcmV0LW9mLTMyLWJ5dGVzISE";
const KEY: &str =
    r#"{"kty":"oct","alg":"HS256","k":"ZnV6ei10YXJnZXQtc2VjcmV0LW9mLTMyLWJ5dGVzISE"}"#;
/// Unix time the claims are checked at.
const NOW: u64 = 1_750_000_000;

fn auth() -> &'static Auth {
    static AUTH: OnceLock<Auth> = OnceLock::new();
    AUTH.get_or_init(|| {
        let key = Jwk::parse(KEY).expect("the fixed key parses");
        Auth {
            public: vec!["anon".into()],
            verifier: Some(Arc::new(
                Verifier::new(key).expect("the fixed key verifies"),
            )),
        }
    })
}

fn sign(header: &[u8], payload: &[u8]) -> String {
    let secret = URL_SAFE_NO_PAD.decode(SECRET_B64).expect("fixed secret");
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &secret);
    let signed = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(payload)
    );
    let tag = ring::hmac::sign(&key, signed.as_bytes());
    format!("{signed}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref()))
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, input)) = data.split_first() else {
        return;
    };
    let auth = auth();
    let verifier = auth.verifier.as_ref().expect("configured");
    let token = match selector % 3 {
        0 => {
            let Ok(raw) = std::str::from_utf8(input) else {
                return;
            };
            let _ = auth.authorize_at(&ConnectPath::parse(raw), NOW);
            raw.to_string()
        }
        1 => {
            let at = input.iter().position(|&b| b == 0).unwrap_or(input.len());
            let (header, payload) = input.split_at(at);
            sign(header, payload.get(1..).unwrap_or_default())
        }
        _ => sign(br#"{"alg":"HS256","typ":"JWT"}"#, input),
    };
    let Ok(claims) = verifier.verify(&token, NOW) else {
        return;
    };
    assert!(claims.exp.is_none_or(|exp| exp > NOW));
    let connect = ConnectPath {
        path: format!("/{}", claims.root),
        jwt: Some(token),
    };
    match auth.authorize_at(&connect, NOW) {
        Ok(grant) => assert_eq!(grant.expires, claims.exp),
        Err(refused) => assert!(!refused.to_string().is_empty()),
    }
});
