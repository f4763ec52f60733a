//! Helpers for the codec's unit tests: hex literals, golden vectors and round trips of
//! [`Message`]s, including the "every strict prefix is incomplete" property.

use std::fmt::Debug;

use super::{codec, DecodeError, Message, Version};

/// Bytes from PROTOCOL.md's notation, e.g. `"01 05 2f"`.
pub fn hex(text: &str) -> Vec<u8> {
    text.split_whitespace()
        .map(|byte| u8::from_str_radix(byte, 16).expect("hex byte"))
        .collect()
}

/// The bytes after the stream type `code` that PROTOCOL.md's examples start with.
pub fn after_type(code: u8, wire: &[u8]) -> &[u8] {
    assert_eq!(wire[0], code, "the example starts with stream type {code}");
    &wire[1..]
}

/// `Length | body`, for feeding hand-made (often malformed) bodies to a decoder.
pub fn framed(body: &[u8]) -> Vec<u8> {
    let mut wire = Vec::new();
    codec::put_varint(&mut wire, body.len() as u64).unwrap();
    wire.extend_from_slice(body);
    wire
}

/// The error `M` reports for `Length | body`.
pub fn body_error<M: Message + Debug>(version: Version, body: &[u8]) -> DecodeError {
    M::decode(version, &framed(body)).expect_err("malformed body must not decode")
}

/// `message` encodes to exactly `wire`, and `wire` decodes back to it.
pub fn check_golden<M: Message + PartialEq + Debug>(version: Version, message: &M, wire: &[u8]) {
    let mut encoded = Vec::new();
    message.encode(version, &mut encoded).unwrap();
    assert_eq!(encoded, wire, "encoding of {message:?} on {version}");
    check_decodes(version, message, wire);
}

/// `message` survives encode then decode on `version`.
pub fn check_round_trip<M: Message + PartialEq + Debug>(version: Version, message: &M) {
    let mut wire = Vec::new();
    message.encode(version, &mut wire).unwrap();
    check_decodes(version, message, &wire);
}

fn check_decodes<M: Message + PartialEq + Debug>(version: Version, message: &M, wire: &[u8]) {
    let (decoded, used) = M::decode(version, wire).unwrap();
    assert_eq!(&decoded, message, "decoding {wire:02x?} on {version}");
    assert_eq!(used, wire.len());

    let mut followed = wire.to_vec();
    followed.extend_from_slice(&[0x40, 0xff, 0x00]);
    let (decoded, used) = M::decode(version, &followed).unwrap();
    assert_eq!((&decoded, used), (message, wire.len()), "stops at its end");

    for end in 0..wire.len() {
        assert_eq!(
            M::decode(version, &wire[..end]).err(),
            Some(DecodeError::Incomplete),
            "prefix of {end} bytes of {wire:02x?}"
        );
    }
}
