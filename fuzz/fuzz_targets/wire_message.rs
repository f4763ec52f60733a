//! moq-lite messages of every version (src/wire). The first input byte picks the version
//! (`Version::ALL[b % len]`), the second the decoder ([`moq_relay_fuzz::wire::KINDS`]); the
//! rest is what the peer sent. Whatever decodes must re-encode and decode back to the same
//! value with the same length, and a stream decoder given one byte less must ask for more
//! (`Incomplete`), as src/wire/fuzz.rs checks deterministically.
#![no_main]

use libfuzzer_sys::fuzz_target;
use moq_relay_fuzz::wire;

fuzz_target!(|data: &[u8]| {
    if let [version, kind, input @ ..] = data {
        wire::check(wire::version(*version), *kind, input);
    }
});
