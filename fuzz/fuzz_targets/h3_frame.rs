//! HTTP/3 framing a WebTransport peer reaches (src/transport/webtransport): frame headers and
//! whole frames under the payload cap, SETTINGS, uni-stream types, the WebTransport stream
//! headers, the datagram prefix and application error codes. The first byte picks the decoder;
//! whatever decodes must encode back to the same value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use moq_relay::transport::webtransport::frame::{
    decode_frame, encode_frame, FrameHeader, MAX_FRAME_PAYLOAD, SETTINGS,
};
use moq_relay::transport::webtransport::header::{self, BidiStart};
use moq_relay::transport::webtransport::settings::{encode_settings, Settings};
use moq_relay::transport::webtransport::{datagram, error_code, stream_type};

fuzz_target!(|data: &[u8]| {
    let Some((&selector, input)) = data.split_first() else {
        return;
    };
    match selector % 6 {
        0 => frame(input),
        1 => settings(input),
        2 => stream_headers(input),
        3 => datagram_prefix(input),
        4 => error_codes(input),
        _ => control_stream(input),
    }
});

fn frame(input: &[u8]) {
    if let Ok((header, used)) = FrameHeader::decode(input, MAX_FRAME_PAYLOAD) {
        assert!(used <= input.len() && header.len <= MAX_FRAME_PAYLOAD);
        let mut wire = Vec::new();
        header.encode(&mut wire);
        assert_eq!(
            FrameHeader::decode(&wire, MAX_FRAME_PAYLOAD),
            Ok((header, wire.len()))
        );
    }
    if let Ok((ty, payload, used)) = decode_frame(input, MAX_FRAME_PAYLOAD) {
        assert!(used <= input.len());
        let mut wire = Vec::new();
        encode_frame(ty, payload, &mut wire);
        assert_eq!(
            decode_frame(&wire, MAX_FRAME_PAYLOAD),
            Ok((ty, payload, wire.len()))
        );
    }
}

fn settings(input: &[u8]) {
    let Ok(settings) = Settings::decode(input) else {
        return;
    };
    let _ = settings.supports_webtransport();
    let mut wire = Vec::new();
    encode_settings(&settings.pairs, &mut wire);
    let (ty, payload, _) = decode_frame(&wire, u64::MAX).expect("our SETTINGS frame decodes");
    assert_eq!(ty, SETTINGS);
    assert_eq!(Settings::decode(payload), Ok(settings));
}

fn stream_headers(input: &[u8]) {
    if let Ok(BidiStart::WebTransport { session, used }) = header::decode_bidi(input) {
        assert!(used <= input.len());
        let mut wire = Vec::new();
        header::encode_bidi(session, &mut wire);
        assert_eq!(
            header::decode_bidi(&wire),
            Ok(BidiStart::WebTransport {
                session,
                used: wire.len()
            })
        );
    }
    if let Ok((session, used)) = header::decode_uni(input) {
        assert!(used <= input.len());
        let mut wire = Vec::new();
        header::encode_uni(session, &mut wire);
        assert_eq!(header::decode_uni(&wire), Ok((session, wire.len())));
    }
    if let Ok((session, used)) = header::decode_session(input) {
        assert!(used <= input.len());
        let _ = stream_type::classify(session);
    }
}

fn datagram_prefix(input: &[u8]) {
    let Ok((session, payload)) = datagram::decode(input) else {
        return;
    };
    let mut wire = Vec::new();
    datagram::encode(session, payload, &mut wire);
    assert_eq!(datagram::decode(&wire), Ok((session, payload)));
}

fn error_codes(input: &[u8]) {
    let mut bytes = [0u8; 8];
    for (to, from) in bytes.iter_mut().zip(input) {
        *to = *from;
    }
    let code = u64::from_le_bytes(bytes);
    if let Some(app) = error_code::from_http3(code) {
        if code != error_code::H3_NO_ERROR {
            assert_eq!(error_code::to_http3(app), code, "application code {app}");
        }
    }
    let _ = error_code::stream_code_to_http3(code);
}

/// A peer's control stream as the session reads it: the stream type, then frames.
fn control_stream(input: &[u8]) {
    let Ok((ty, mut used)) = header::decode_session(input) else {
        return;
    };
    let _ = stream_type::classify(ty);
    while let Ok((ty, payload, len)) = decode_frame(&input[used..], MAX_FRAME_PAYLOAD) {
        if ty == SETTINGS {
            let _ = Settings::decode(payload);
        }
        used += len;
    }
}
