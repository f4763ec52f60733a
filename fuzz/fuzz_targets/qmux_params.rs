//! QX_TRANSPORT_PARAMETERS contents (src/transport/qmux/params.rs), the first thing a QMux
//! peer sends. What decodes must encode to a list that decodes the same.
#![no_main]

use libfuzzer_sys::fuzz_target;
use moq_relay::transport::qmux::Params;

fuzz_target!(|data: &[u8]| {
    let Ok(params) = Params::decode(data) else {
        return;
    };
    let mut wire = Vec::new();
    params.encode(&mut wire);
    assert_eq!(Params::decode(&wire), Ok(params));
});
