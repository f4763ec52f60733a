//! Capsules on the WebTransport CONNECT stream (src/transport/webtransport/capsule.rs), read
//! back to back as the session does. Every capsule decoded must encode to one that decodes
//! the same.
#![no_main]

use libfuzzer_sys::fuzz_target;
use moq_relay::transport::webtransport::capsule::{Capsule, MAX_CAPSULE, MAX_REASON};

fuzz_target!(|data: &[u8]| {
    let mut rest = data;
    while let Ok((capsule, used)) = Capsule::decode(rest) {
        assert!(used > 0 && used <= rest.len());
        assert!(used as u64 <= MAX_CAPSULE + 16);
        if let Capsule::Close { reason, .. } = &capsule {
            assert!(reason.len() <= MAX_REASON);
        }
        let mut wire = Vec::new();
        capsule.encode(&mut wire);
        assert_eq!(Capsule::decode(&wire), Ok((capsule, wire.len())));
        rest = &rest[used..];
    }
});
