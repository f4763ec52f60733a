//! A deterministic xorshift fuzz loop over every decoder of the module: random and mutated
//! inputs must give a value or an error, never a panic.

use super::capsule::Capsule;
use super::connect::ConnectRequest;
use super::frame::{decode_frame, FrameHeader};
use super::settings::{server_control_stream, Settings};
use super::{connect, datagram, error_code, header, huffman, qpack, sfv};

struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
}

fn seeds() -> Vec<Vec<u8>> {
    let mut close = Vec::new();
    Capsule::Close {
        code: 2,
        reason: "unauthorized".into(),
    }
    .encode(&mut close);
    let mut huff = Vec::new();
    huffman::encode(b"wt-available-protocols", &mut huff);
    vec![
        server_control_stream(),
        server_control_stream()[3..].to_vec(),
        connect::encode_response(200, Some("moq-lite-05")),
        qpack::encode(&[
            (":method", "CONNECT"),
            (":protocol", "webtransport"),
            (":scheme", "https"),
            (":authority", "localhost"),
            (":path", "/anon"),
            ("wt-available-protocols", "\"moq-lite-05\""),
        ]),
        close,
        huff,
        b"\"moq-lite-05\", \"moq-lite-04\";q=1".to_vec(),
        vec![0x40, 0x41, 0x00, 0x40, 0x54, 0x00],
    ]
}

fn all_decoders(input: &[u8]) {
    let _ = FrameHeader::decode(input, 1 << 14);
    let _ = decode_frame(input, 1 << 14);
    let _ = Settings::decode(input);
    let _ = huffman::decode(input, 4096);
    if let Ok(h) = qpack::decode(input) {
        let _ = ConnectRequest::from_headers(&h);
    }
    let _ = Capsule::decode(input);
    let _ = datagram::decode(input);
    let _ = header::decode_bidi(input);
    let _ = header::decode_uni(input);
    let _ = header::decode_session(input);
    if let Ok(s) = std::str::from_utf8(input) {
        let _ = sfv::parse_string_list(s);
        let _ = sfv::parse_string_item(s);
    }
    let mut code = [0u8; 8];
    for (d, s) in code.iter_mut().zip(input) {
        *d = *s;
    }
    let _ = error_code::from_http3(u64::from_le_bytes(code));
}

#[test]
fn fuzz_every_decoder() {
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    let seeds = seeds();
    for round in 0..20_000 {
        let input: Vec<u8> = if round % 2 == 0 {
            let len = (rng.next() % 64) as usize;
            (0..len).map(|_| rng.next() as u8).collect()
        } else {
            let mut input = seeds[(rng.next() as usize) % seeds.len()].clone();
            for _ in 0..1 + rng.next() % 4 {
                if input.is_empty() {
                    break;
                }
                let i = (rng.next() as usize) % input.len();
                match rng.next() % 3 {
                    0 => input[i] = rng.next() as u8,
                    1 => input.truncate(i),
                    _ => input.insert(i, rng.next() as u8),
                }
            }
            input
        };
        all_decoders(&input);
    }
}

#[test]
fn every_truncation_of_every_seed() {
    for seed in seeds() {
        for cut in 0..=seed.len() {
            all_decoders(&seed[..cut]);
        }
    }
}
