//! JWK key files (src/auth/jwk.rs): JSON or base64url of it, every key type and algorithm,
//! scopes and key_ops. A key that parses must serialize (JSON and base64url) to text that
//! parses to the same key, and its public half too.
#![no_main]

use libfuzzer_sys::fuzz_target;
use moq_relay::auth::{Jwk, Verifier};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(key) = Jwk::parse(text) else {
        return;
    };
    assert_eq!(
        Jwk::parse(&key.to_json()).ok().as_ref(),
        Some(&key),
        "{}",
        key.to_json()
    );
    assert_eq!(Jwk::parse(&key.to_base64url()).ok().as_ref(), Some(&key));
    if let Some(public) = key.to_public() {
        assert!(!public.has_private());
        assert_eq!(Jwk::parse(&public.to_json()).ok(), Some(public));
    }
    let _ = Verifier::new(key);
});
