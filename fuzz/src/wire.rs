//! The moq-lite checks behind the `wire_message` target: the decoder table, and for each
//! decoder the round trip and the "one byte short is Incomplete" rule a stream reader relies on.

use std::fmt::Debug;

use bytes::Bytes;
use moq_relay::wire::{
    Announce, AnnounceOk, AnnounceRequest, BidiType, Datagram, DecodeError, Fetch, FrameHeader,
    Goaway, GroupHeader, Message, Probe, Setup, Subscribe, SubscribeResponse, SubscribeUpdate,
    TrackInfo, TrackRequest, UniType, Version,
};

/// The decoders, in the order the kind byte selects them (`kind % KINDS.len()`).
pub const KINDS: [&str; 17] = [
    "SETUP",
    "ANNOUNCE_REQUEST",
    "ANNOUNCE_OK",
    "ANNOUNCE",
    "TRACK_REQUEST",
    "TRACK_INFO",
    "SUBSCRIBE",
    "SUBSCRIBE_UPDATE",
    "GROUP",
    "FETCH",
    "PROBE",
    "GOAWAY",
    "subscribe response",
    "FRAME header",
    "DATAGRAM",
    "bidi stream type",
    "uni stream type",
];

/// The version a selector byte picks.
pub fn version(selector: u8) -> Version {
    Version::ALL[usize::from(selector) % Version::ALL.len()]
}

/// The selector byte that picks `version`.
pub fn version_selector(version: Version) -> u8 {
    let index = Version::ALL.iter().position(|v| *v == version);
    index.expect("Version::ALL lists every version") as u8
}

/// Runs decoder `kind` on `input` with every check.
pub fn check(version: Version, kind: u8, input: &[u8]) {
    match usize::from(kind) % KINDS.len() {
        0 => message::<Setup>(version, input),
        1 => message::<AnnounceRequest>(version, input),
        2 => message::<AnnounceOk>(version, input),
        3 => message::<Announce>(version, input),
        4 => message::<TrackRequest>(version, input),
        5 => message::<TrackInfo>(version, input),
        6 => message::<Subscribe>(version, input),
        7 => message::<SubscribeUpdate>(version, input),
        8 => message::<GroupHeader>(version, input),
        9 => message::<Fetch>(version, input),
        10 => message::<Probe>(version, input),
        11 => message::<Goaway>(version, input),
        12 => stream_value(
            input,
            |buf| SubscribeResponse::decode(version, buf),
            |value: &SubscribeResponse, out: &mut Vec<u8>| {
                value.encode(version, out).map_err(|e| format!("{e}"))
            },
        ),
        13 => stream_value(
            input,
            |buf| FrameHeader::decode(version, buf),
            |value: &FrameHeader, out: &mut Vec<u8>| {
                value.encode(version, out).map_err(|e| format!("{e}"))
            },
        ),
        14 => datagram(version, input),
        15 => stream_value(
            input,
            |buf| BidiType::decode(version, buf),
            |value: &BidiType, out: &mut Vec<u8>| {
                value.encode(version, out).map_err(|e| format!("{e}"))
            },
        ),
        _ => stream_value(
            input,
            |buf| UniType::decode(version, buf),
            |value: &UniType, out: &mut Vec<u8>| {
                value.encode(version, out).map_err(|e| format!("{e}"))
            },
        ),
    }
}

fn message<M: Message + PartialEq + Debug>(version: Version, input: &[u8]) {
    stream_value(
        input,
        |buf| M::decode(version, buf),
        |value: &M, out: &mut Vec<u8>| value.encode(version, out).map_err(|e| format!("{e}")),
    );
}

/// The checks for a value read from the front of a stream: it used no more than it was
/// given, one byte less is `Incomplete`, and it encodes to bytes that decode to itself.
fn stream_value<T: PartialEq + Debug>(
    input: &[u8],
    decode: impl Fn(&[u8]) -> Result<(T, usize), DecodeError>,
    encode: impl Fn(&T, &mut Vec<u8>) -> Result<(), String>,
) {
    let Ok((value, used)) = decode(input) else {
        return;
    };
    assert!(
        used > 0 && used <= input.len(),
        "{value:?} used {used} of {}",
        input.len()
    );
    assert_eq!(
        decode(&input[..used - 1]).err(),
        Some(DecodeError::Incomplete),
        "{value:?} decoded from {used} bytes, but not from one less"
    );
    let mut wire = Vec::new();
    if let Err(e) = encode(&value, &mut wire) {
        panic!("{value:?} decoded but does not encode: {e}");
    }
    assert_eq!(decode(&wire).ok(), Some((value, wire.len())));
}

fn datagram(version: Version, input: &[u8]) {
    let Ok(datagram) = Datagram::decode(version, &Bytes::copy_from_slice(input)) else {
        return;
    };
    let mut wire = Vec::new();
    if let Err(e) = datagram.encode(version, &mut wire) {
        panic!("{datagram:?} decoded but does not encode: {e}");
    }
    assert_eq!(Datagram::decode(version, &Bytes::from(wire)), Ok(datagram));
}
