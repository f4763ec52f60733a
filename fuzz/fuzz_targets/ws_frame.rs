//! RFC 6455 frames (src/transport/websocket/frame.rs) as the TCP listener feeds them to the
//! decoder: in pieces no larger than its free capacity, draining messages between pushes, as
//! `WsQmux::on_bytes` does. The first byte picks the message cap, the server (masked) or
//! client (unmasked) role and the piece size. The same bytes fed whole-as-fits and in small
//! pieces must give the same messages and the same error, and every message must encode to a
//! frame that decodes to itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use moq_relay::transport::websocket::{encode, encode_masked, Decoder, Message, WsError};

const CAPS: [usize; 4] = [16, 125, 1024, 1 << 20];
const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

fuzz_target!(|data: &[u8]| {
    let Some((&selector, input)) = data.split_first() else {
        return;
    };
    let max = CAPS[usize::from(selector & 3)];
    let server = selector & 4 == 0;
    let piece = usize::from(selector >> 3) + 1;
    let whole = feed(decoder(server, max), input, usize::MAX);
    let pieces = feed(decoder(server, max), input, piece);
    assert_eq!(whole, pieces, "pieces of {piece} bytes");
    for message in &whole.0 {
        let mut wire = Vec::new();
        if server {
            encode_masked(message, MASK, &mut wire);
        } else {
            encode(message, &mut wire);
        }
        assert_eq!(
            feed(decoder(server, max), &wire, usize::MAX),
            (vec![message.clone()], None)
        );
    }
});

fn decoder(server: bool, max: usize) -> Decoder {
    match server {
        true => Decoder::new(max),
        false => Decoder::client(max),
    }
}

/// Every message `input` gives, and the error that ended it if one did.
fn feed(mut decoder: Decoder, mut input: &[u8], piece: usize) -> (Vec<Message>, Option<WsError>) {
    let mut messages = Vec::new();
    while !input.is_empty() {
        let n = decoder.capacity().min(piece).min(input.len());
        if n == 0 {
            return (messages, Some(WsError::BufferFull));
        }
        if let Err(e) = decoder.push(&input[..n]) {
            return (messages, Some(e));
        }
        input = &input[n..];
        loop {
            match decoder.next() {
                Ok(Some(message)) => messages.push(message),
                Ok(None) => break,
                Err(e) => return (messages, Some(e)),
            }
        }
    }
    (messages, None)
}
