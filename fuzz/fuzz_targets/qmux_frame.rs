//! QMux frames (src/transport/qmux/frame.rs) as a WebSocket message brings them: a qmux-01
//! record (frames back to back) and a qmux-00 message (exactly one frame). Every frame decoded
//! must encode to bytes that decode to the same frame.
#![no_main]

use libfuzzer_sys::fuzz_target;
use moq_relay::transport::qmux::frame::{decode_record, decode_single, Frame};

fuzz_target!(|data: &[u8]| {
    if let Ok(frames) = decode_record(data) {
        for frame in &frames {
            round_trip(frame);
        }
    }
    if let Ok(frame) = decode_single(data) {
        assert!(!frame.records_only());
        round_trip(&frame);
    }
});

fn round_trip(frame: &Frame) {
    let mut wire = Vec::new();
    frame.encode(&mut wire);
    assert_eq!(Frame::decode(&wire), Ok((frame.clone(), wire.len())));
}
