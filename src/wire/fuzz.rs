//! Deterministic fuzzing of every decoder (tests only): random and mutated inputs must never
//! panic, and whatever decodes must re-encode and decode back to the same value.

use std::fmt::Debug;

use bytes::Bytes;

use super::*;

/// xorshift64*: small, fast, and the same sequence on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, bound: usize) -> usize {
        (self.next() % bound as u64) as usize
    }

    fn byte(&mut self) -> u8 {
        // Favour the bytes where varint lengths and limits change.
        const EDGES: [u8; 8] = [0x00, 0x01, 0x3f, 0x40, 0x7f, 0x80, 0xc0, 0xff];
        match self.below(3) {
            0 => EDGES[self.below(EDGES.len())],
            _ => self.next() as u8,
        }
    }
}

fn check_message<M: Message + PartialEq + Debug>(version: Version, input: &[u8]) {
    let Ok((message, used)) = M::decode(version, input) else {
        return;
    };
    assert!(used <= input.len());
    let mut wire = Vec::new();
    message
        .encode(version, &mut wire)
        .unwrap_or_else(|err| panic!("{message:?} decoded on {version} but encodes to {err}"));
    assert_eq!(M::decode(version, &wire), Ok((message, wire.len())));
}

fn check_response(version: Version, input: &[u8]) {
    if let Ok((response, used)) = SubscribeResponse::decode(version, input) {
        assert!(used <= input.len());
        let mut wire = Vec::new();
        response.encode(version, &mut wire).unwrap();
        assert_eq!(
            SubscribeResponse::decode(version, &wire),
            Ok((response, wire.len()))
        );
    }
}

fn check_frame(version: Version, input: &[u8]) {
    if let Ok((header, used)) = FrameHeader::decode(version, input) {
        assert!(used <= input.len());
        let mut wire = Vec::new();
        header.encode(version, &mut wire).unwrap();
        assert_eq!(
            FrameHeader::decode(version, &wire),
            Ok((header, wire.len()))
        );
    }
}

fn check_datagram(version: Version, input: &[u8]) {
    if let Ok(datagram) = Datagram::decode(version, &Bytes::copy_from_slice(input)) {
        let mut wire = Vec::new();
        datagram.encode(version, &mut wire).unwrap();
        assert_eq!(Datagram::decode(version, &Bytes::from(wire)), Ok(datagram));
    }
}

fn check_stream_types(version: Version, input: &[u8]) {
    if let Ok((kind, used)) = BidiType::decode(version, input) {
        assert!(used <= input.len() && kind.is_defined(version));
    }
    if let Ok((kind, used)) = UniType::decode(version, input) {
        assert!(used <= input.len() && kind.is_defined(version));
    }
}

/// Feeds `input` to every decoder of every version.
fn exercise(input: &[u8]) {
    for version in Version::ALL {
        check_message::<Setup>(version, input);
        check_message::<AnnounceRequest>(version, input);
        check_message::<AnnounceOk>(version, input);
        check_message::<Announce>(version, input);
        check_message::<TrackRequest>(version, input);
        check_message::<TrackInfo>(version, input);
        check_message::<Subscribe>(version, input);
        check_message::<SubscribeUpdate>(version, input);
        check_message::<GroupHeader>(version, input);
        check_message::<Fetch>(version, input);
        check_message::<Probe>(version, input);
        check_message::<Goaway>(version, input);
        check_response(version, input);
        check_frame(version, input);
        check_datagram(version, input);
        check_stream_types(version, input);
    }
}

/// Valid encodings of every message, the starting points for mutation.
fn seeds() -> Vec<Vec<u8>> {
    fn encoded<M: Message>(version: Version, message: M) -> Vec<u8> {
        let mut wire = Vec::new();
        message.encode(version, &mut wire).unwrap();
        wire
    }
    let v4 = Version::Lite04;
    let v5 = Version::Lite05;
    let subscribe = Subscribe {
        id: 3,
        broadcast: "anon/clock".into(),
        track: "seconds".into(),
        priority: 9,
        max_latency_ms: 5000,
        start_group: Some(28),
        end_group: None,
    };
    let mut seeds = vec![
        encoded(
            v5,
            Setup {
                probe: ProbeLevel::Report,
                path: Some("/anon?jwt=x".into()),
                role: Role::Publisher,
                cost: Some(1),
                hop: 0x1234,
            },
        ),
        encoded(
            v5,
            AnnounceRequest {
                prefix: "anon".into(),
                exclude_hop: 7,
            },
        ),
        encoded(
            v5,
            AnnounceOk {
                hop: 7,
                active_count: 2,
            },
        ),
        encoded(
            v4,
            Announce {
                status: AnnounceStatus::Active,
                suffix: "clock".into(),
                hops: vec![9, 7],
            },
        ),
        encoded(
            v5,
            TrackRequest {
                broadcast: "clock".into(),
                track: "seconds".into(),
            },
        ),
        encoded(v5, TrackInfo::default()),
        encoded(v5, subscribe.clone()),
        encoded(v4, SubscribeUpdate::default()),
        encoded(
            v5,
            GroupHeader {
                subscribe_id: 0,
                sequence: 28,
            },
        ),
        encoded(
            v5,
            Fetch {
                broadcast: "clock".into(),
                track: "seconds".into(),
                priority: 0,
                group: 28,
            },
        ),
        encoded(
            v4,
            Probe {
                bitrate: 2_000_000,
                rtt: 25,
            },
        ),
        encoded(
            v4,
            Goaway {
                uri: "moqt://x".into(),
            },
        ),
        vec![0x00, 0x01, 0x1c],
        vec![0x02, 0x03, 0x05, 0x07, 0x33],
        vec![0x00, 0x05, 0x20, 0x00, 0x00, 0x00, 0x00],
        vec![0x47, 0xd0, 0x05, 1, 2, 3, 4, 5],
        vec![0x00, 0x1c, 0x43, 0xe8, b'h', b'i'],
    ];
    seeds.push(seeds.concat());
    seeds
}

fn mutate(rng: &mut Rng, seed: &[u8]) -> Vec<u8> {
    let mut input = seed.to_vec();
    for _ in 0..=rng.below(4) {
        let at = rng.below(input.len() + 1);
        match rng.below(6) {
            0 if at < input.len() => input[at] ^= 1 << rng.below(8),
            1 if at < input.len() => input[at] = rng.byte(),
            2 => input.insert(at, rng.byte()),
            3 if at < input.len() => {
                input.remove(at);
            }
            4 => input.truncate(at),
            _ => {
                let end = (at + rng.below(8)).min(input.len());
                let chunk = input[at..end].to_vec();
                input.splice(at..at, chunk);
            }
        }
    }
    input
}

#[test]
fn mutated_valid_messages_never_panic() {
    let seeds = seeds();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for seed in &seeds {
        exercise(seed);
    }
    for _ in 0..20_000 {
        let seed = &seeds[rng.below(seeds.len())];
        exercise(&mutate(&mut rng, seed));
    }
}

#[test]
fn random_bytes_never_panic() {
    let mut rng = Rng(0x0123_4567_89ab_cdef);
    for _ in 0..10_000 {
        let len = rng.below(48);
        let input: Vec<u8> = (0..len).map(|_| rng.byte()).collect();
        exercise(&input);
    }
}

#[test]
fn every_truncation_of_every_seed_is_handled() {
    for seed in seeds() {
        for end in 0..=seed.len() {
            exercise(&seed[..end]);
        }
    }
}
