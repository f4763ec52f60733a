//! The check every unknown client Initial meets before we answer it
//! (src/transport/quic/initial.rs): header parsing, key derivation and opening, on whatever
//! bytes a peer sends. It must return a verdict for any input, never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use moq_relay::transport::quic::check_initial;

fuzz_target!(|data: &[u8]| {
    let _ = check_initial(data);
});
