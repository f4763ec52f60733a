//! The seed inputs of every target: valid encodings made with the relay's own encoders (plus a
//! few hand-written edge cases), prefixed with the selector bytes each target reads. libFuzzer
//! mutates from these, so each decoder's interesting paths are a few mutations away.
//!
//! `write_seed_corpora` (an ignored test) writes them to `fuzz/corpus/<target>/`, one file per
//! seed named after its content's hash; run it after changing a target's input layout.

use moq_relay::auth::signing::{generate, sign, TokenClaims};
use moq_relay::auth::Algorithm;
use moq_relay::transport::qmux::frame::Frame;
use moq_relay::transport::qmux::Params;
use moq_relay::transport::websocket::{encode, encode_masked, Message as WsMessage};
use moq_relay::transport::webtransport::capsule::Capsule;
use moq_relay::transport::webtransport::settings::{client_control_stream, server_control_stream};
use moq_relay::transport::webtransport::{connect, datagram, header, huffman, qpack};
use moq_relay::wire::{
    Announce, AnnounceOk, AnnounceRequest, AnnounceStatus, BidiType, Fetch, FrameHeader, Goaway,
    GroupHeader, Message, Probe, ProbeLevel, Role, Setup, Subscribe, SubscribeResponse,
    SubscribeUpdate, TrackInfo, TrackRequest, UniType, Version,
};

use crate::wire::version_selector;

/// Every target's seeds, by target name.
pub fn all() -> Vec<(&'static str, Vec<Vec<u8>>)> {
    vec![
        ("wire_message", wire_message()),
        ("h3_frame", h3_frame()),
        ("qpack", qpack()),
        ("capsule", capsule()),
        (
            "sfv",
            texts(&[r#""moq-lite-05", "moq-lite-04";q=1"#, r#""a\"b\\c""#, ""]),
        ),
        (
            "qmux_frame",
            qmux_frames().into_iter().map(|(_, f)| f).collect(),
        ),
        ("qmux_params", qmux_params()),
        ("qmux_connection", qmux_connection()),
        ("ws_frame", ws_frame()),
        ("ws_handshake", texts(&[WS_UPGRADE])),
        ("http_request", http_request()),
        ("jwt", jwt()),
        ("jwk", jwk()),
        ("config", config()),
    ]
}

fn texts(texts: &[&str]) -> Vec<Vec<u8>> {
    texts.iter().map(|t| t.as_bytes().to_vec()).collect()
}

fn prefixed(prefix: &[u8], body: &[u8]) -> Vec<u8> {
    [prefix, body].concat()
}

fn wire_message() -> Vec<Vec<u8>> {
    fn message<M: Message>(version: Version, kind: u8, value: M) -> Vec<u8> {
        let mut wire = vec![version_selector(version), kind];
        value.encode(version, &mut wire).expect("seed encodes");
        wire
    }
    let mut seeds = Vec::new();
    for v in Version::ALL {
        let setup = Setup {
            probe: ProbeLevel::Report,
            path: Some("/anon?jwt=x".into()),
            role: Role::Publisher,
            cost: Some(1),
            hop: 0x1234,
        };
        if Setup::is_defined(v) {
            seeds.push(message(v, 0, setup));
        }
        let request = AnnounceRequest {
            prefix: "anon".into(),
            exclude_hop: 7,
        };
        seeds.push(message(v, 1, request));
        if AnnounceOk::is_defined(v) {
            let ok = AnnounceOk {
                hop: 7,
                active_count: 2,
            };
            seeds.push(message(v, 2, ok));
        }
        let announce = Announce {
            status: AnnounceStatus::Active,
            suffix: "clock".into(),
            hops: vec![9, 7],
        };
        seeds.push(message(v, 3, announce));
        if TrackRequest::is_defined(v) {
            let track = TrackRequest {
                broadcast: "clock".into(),
                track: "seconds".into(),
            };
            seeds.push(message(v, 4, track));
            seeds.push(message(v, 5, TrackInfo::default()));
        }
        let subscribe = Subscribe {
            id: 3,
            broadcast: "anon/clock".into(),
            track: "seconds".into(),
            priority: 9,
            max_latency_ms: 5000,
            start_group: Some(28),
            end_group: None,
        };
        seeds.push(message(v, 6, subscribe));
        seeds.push(message(v, 7, SubscribeUpdate::default()));
        let group = GroupHeader {
            subscribe_id: 0,
            sequence: 28,
        };
        seeds.push(message(v, 8, group));
        if Fetch::is_defined(v) {
            let fetch = Fetch {
                broadcast: "clock".into(),
                track: "seconds".into(),
                priority: 0,
                group: 28,
            };
            seeds.push(message(v, 9, fetch));
        }
        if Probe::is_defined(v) {
            let probe = Probe {
                bitrate: 2_000_000,
                rtt: 25,
            };
            seeds.push(message(v, 10, probe));
        }
        if Goaway::is_defined(v) {
            let goaway = Goaway {
                uri: "moqt://x".into(),
            };
            seeds.push(message(v, 11, goaway));
        }
        let selector = [version_selector(v)];
        for response in [
            SubscribeResponse::Start { group: 28 },
            SubscribeResponse::Ok {
                priority: 1,
                max_latency_ms: 100,
                start_group: Some(1),
                end_group: None,
            },
            SubscribeResponse::Drop {
                start: 1,
                end: 2,
                code: 3,
            },
        ] {
            let mut wire = prefixed(&selector, &[12]);
            if response.encode(v, &mut wire).is_ok() {
                seeds.push(wire);
            }
        }
        let frame = FrameHeader {
            timestamp_delta: -1000,
            size: 5,
        };
        let mut wire = prefixed(&selector, &[13]);
        frame.encode(v, &mut wire).expect("seed encodes");
        seeds.push(wire);
        seeds.push(prefixed(
            &selector,
            &[14, 0x00, 0x1c, 0x43, 0xe8, b'h', b'i'],
        ));
        let mut wire = prefixed(&selector, &[15]);
        if BidiType::Subscribe.encode(v, &mut wire).is_ok() {
            seeds.push(wire);
        }
        let mut wire = prefixed(&selector, &[16]);
        if UniType::Group.encode(v, &mut wire).is_ok() {
            seeds.push(wire);
        }
    }
    seeds
}

fn h3_frame() -> Vec<Vec<u8>> {
    let mut bidi = vec![2];
    header::encode_bidi(0, &mut bidi);
    let mut uni = vec![2];
    header::encode_uni(0, &mut uni);
    let mut dgram = vec![3];
    datagram::encode(0, b"payload", &mut dgram);
    vec![
        prefixed(&[0], &server_control_stream()[1..]),
        prefixed(&[1], &server_control_stream()[3..]),
        prefixed(&[1], &client_control_stream()[3..]),
        bidi,
        uni,
        dgram,
        vec![4, 0xdb, 0xa8, 0x0f, 0xa4, 0xe4, 0x52, 0, 0],
        prefixed(&[5], &client_control_stream()),
    ]
}

fn qpack() -> Vec<Vec<u8>> {
    let request = connect::encode_request("localhost:4443", "/anon?jwt=x", &["moq-lite-05"]);
    let response = connect::encode_response(200, Some("moq-lite-05"));
    let mut huff = vec![1];
    huffman::encode(b"wt-available-protocols", &mut huff);
    // A Huffman-coded literal value, as Chrome sends every string.
    let mut coded = vec![0x00, 0x00, 0x51];
    let mut path = Vec::new();
    huffman::encode(b"/anon", &mut path);
    coded.push(0x80 | path.len() as u8);
    coded.extend(path);
    vec![
        prefixed(&[0], &request),
        prefixed(&[0], &response),
        prefixed(
            &[0],
            &qpack::encode(&[("x-custom", "value"), (":status", "404")]),
        ),
        prefixed(&[0], &coded),
        huff,
        b"\x02CONNECT webtransport".to_vec(),
    ]
}

fn capsule() -> Vec<Vec<u8>> {
    let mut all = Vec::new();
    let close = Capsule::Close {
        code: 2,
        reason: "unauthorized".into(),
    };
    for capsule in [close, Capsule::Drain, Capsule::Unknown(0x29)] {
        capsule.encode(&mut all);
    }
    vec![all]
}

fn qmux_frames() -> Vec<(&'static str, Vec<u8>)> {
    let frames = [
        (
            "stream",
            Frame::Stream {
                id: 0,
                offset: Some(0),
                data: b"\x00\x05hello".to_vec(),
                fin: false,
            },
        ),
        (
            "stream_implicit",
            Frame::Stream {
                id: 4,
                offset: None,
                data: b"hi".to_vec(),
                fin: true,
            },
        ),
        (
            "reset",
            Frame::ResetStream {
                id: 4,
                code: 1,
                final_size: 2,
            },
        ),
        ("stop", Frame::StopSending { id: 3, code: 0 }),
        ("max_data", Frame::MaxData(1 << 20)),
        ("max_stream_data", Frame::MaxStreamData { id: 0, max: 4096 }),
        (
            "max_streams",
            Frame::MaxStreams {
                bidi: true,
                max: 100,
            },
        ),
        ("data_blocked", Frame::DataBlocked(10)),
        (
            "streams_blocked",
            Frame::StreamsBlocked {
                bidi: false,
                limit: 4,
            },
        ),
        (
            "close",
            Frame::ApplicationClose {
                code: 2,
                reason: b"bye".to_vec(),
            },
        ),
        ("datagram", Frame::Datagram(b"d".to_vec())),
        ("params", Frame::TransportParameters(Params::default())),
        ("ping", Frame::PingRequest(7)),
    ];
    frames
        .into_iter()
        .map(|(name, frame)| {
            let mut wire = Vec::new();
            frame.encode(&mut wire);
            (name, wire)
        })
        .collect()
}

fn params() -> Params {
    Params {
        max_idle_timeout_ms: 30_000,
        initial_max_data: 1 << 20,
        initial_max_stream_data_bidi_local: 1000,
        initial_max_stream_data_bidi_remote: 2000,
        initial_max_stream_data_uni: 3000,
        initial_max_streams_bidi: 100,
        initial_max_streams_uni: 100,
        max_datagram_frame_size: 1200,
        max_record_size: 65536,
    }
}

fn qmux_params() -> Vec<Vec<u8>> {
    let mut wire = Vec::new();
    params().encode(&mut wire);
    vec![wire]
}

fn qmux_connection() -> Vec<Vec<u8>> {
    let mut seeds = Vec::new();
    for version in [0u8, 1] {
        let mut input = vec![version];
        let mut message = |frame: Frame| {
            let mut wire = Vec::new();
            frame.encode(&mut wire);
            input.extend((wire.len() as u16).to_be_bytes());
            input.extend(wire);
        };
        message(Frame::TransportParameters(params()));
        for (_, wire) in qmux_frames() {
            let (frame, _) = Frame::decode(&wire).expect("our frame decodes");
            if version == 1 || !frame.records_only() {
                message(frame);
            }
        }
        seeds.push(input);
    }
    seeds
}

fn ws_frame() -> Vec<Vec<u8>> {
    const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];
    let messages = [
        WsMessage::Binary(b"hello".to_vec()),
        WsMessage::Ping(b"p".to_vec()),
        WsMessage::Pong(Vec::new()),
        WsMessage::Binary(vec![0xaa; 130]),
        WsMessage::Close(Some(1000), "bye".into()),
    ];
    let mut masked = vec![3 | 2 << 3];
    let mut unmasked = vec![3 | 4];
    for message in &messages {
        encode_masked(message, MASK, &mut masked);
        encode(message, &mut unmasked);
    }
    // A fragmented message: a non-final binary frame, then a final continuation.
    let mut fragmented = vec![1];
    encode_masked(&WsMessage::Binary(b"ab".to_vec()), MASK, &mut fragmented);
    fragmented[1] &= 0x7f;
    let mut tail = Vec::new();
    encode_masked(&WsMessage::Binary(b"cd".to_vec()), MASK, &mut tail);
    tail[0] &= 0xf0;
    fragmented.extend(tail);
    vec![masked, unmasked, fragmented]
}

const WS_UPGRADE: &str = "GET /anon?jwt=x\nHost: localhost\nUpgrade: websocket\nConnection: keep-alive, Upgrade\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\nSec-WebSocket-Version: 13\nSec-WebSocket-Protocol: qmux-00.moq-lite-04, qmux-01.moq-lite-05";

fn http_request() -> Vec<Vec<u8>> {
    texts(&[
        "GET /fetch/anon/clock/seconds?group=12&jwt=a%2Bb HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        "GET /announced/anon HTTP/1.1\r\nHost: x\r\n\r\n",
        "GET /anon HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: qmux-01.moq-lite-05\r\n\r\n",
    ])
}

fn jwt() -> Vec<Vec<u8>> {
    let claims = br#"{"root":"demo","put":["alice"],"get":[""],"exp":1900000000,"iat":1700000000}"#;
    let seed_era = br#"{"path":"demo","pub":"alice/*","sub":"*","cluster":false}"#;
    let key = generate(Algorithm::HS256, Some("fuzz".into())).expect("HS256 key");
    let token = sign(
        &key,
        &TokenClaims {
            root: "demo".into(),
            put: vec!["alice".into()],
            get: vec![String::new()],
            exp: Some(1_900_000_000),
            iat: None,
        },
    )
    .expect("signs");
    vec![
        prefixed(&[0], format!("/demo?jwt={token}").as_bytes()),
        prefixed(
            &[1],
            &[
                br#"{"alg":"HS256","typ":"JWT","kid":"k"}"#,
                &b"\0"[..],
                claims,
            ]
            .concat(),
        ),
        prefixed(&[2], claims),
        prefixed(&[2], seed_era),
    ]
}

fn jwk() -> Vec<Vec<u8>> {
    let mut seeds = Vec::new();
    for alg in [
        Algorithm::HS256,
        Algorithm::ES256,
        Algorithm::ES384,
        Algorithm::RS256,
        Algorithm::EdDSA,
    ] {
        let key = generate(alg, None).expect("key generates");
        seeds.push(key.to_json().into_bytes());
        if let Some(public) = key.to_public() {
            seeds.push(public.to_base64url().into_bytes());
        }
    }
    seeds.push(
        br#"{"alg":"HS256","key_ops":["verify"],"kty":"oct","k":"ivHWmtyy5C_r882OyKhHR6Zl73r9BiDeyhIJkRa0WIw","kid":"a","scope":{"root":"demo","put":["x"],"get":[""]}}"#
            .to_vec(),
    );
    seeds
}

fn config() -> Vec<Vec<u8>> {
    // Every key of config/relay.toml except the ones naming files, which the target skips.
    texts(&[
        "[log]\nlevel = \"info,moq_relay=debug\"\n\
         [server]\nlisten = \"[::]:4443\"\nshards = 2\npin = true\n\
         [server.tls]\ngenerate = [\"localhost\", \"relay.example\"]\n\
         [web.http]\nlisten = \"[::]:4443\"\n\
         [auth]\npublic = [\"anon\", \"open/**\"]\nrequire_exp = false\n\
         [relay]\nlinger = \"5s\"\ncache_duration = \"30s\"\n\
         max_group_bytes = 33554432\nmax_frame_bytes = 33554432\n\
         [quic]\nidle_timeout = \"30s\"\nkeep_alive = \"5s\"\nmax_streams = 10000\n\
         [limits]\nmesh_control_lane = 1024\nmesh_data_lane = 4096\n\
         mesh_control_backlog = 65536\nmesh_data_backlog = 16384\n\
         [cluster]\nroot = \"root.example:4443\"\nnode = \"edge.example:4443\"\nid = 7\n\
         peers = [\"moqt://peer:4443/?jwt=x&fingerprint=00\"]\n",
        "[server]\nlisten = \"127.0.0.1:4443\"\n[auth]\npublic = \"\"\n",
    ])
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::hash::{DefaultHasher, Hash, Hasher};

    #[test]
    #[ignore = "writes fuzz/corpus; run after changing a target's input layout"]
    fn write_seed_corpora() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
        for (target, seeds) in all() {
            let dir = root.join(target);
            std::fs::create_dir_all(&dir).unwrap();
            for seed in seeds {
                let mut hasher = DefaultHasher::new();
                seed.hash(&mut hasher);
                std::fs::write(dir.join(format!("seed-{:016x}", hasher.finish())), seed).unwrap();
            }
        }
    }

    #[test]
    fn every_target_has_seeds() {
        let targets = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/fuzz_targets"))
            .unwrap()
            .map(|entry| entry.unwrap().file_name().into_string().unwrap())
            .collect::<Vec<_>>();
        let seeded: Vec<&str> = all().into_iter().map(|(name, _)| name).collect();
        for target in targets {
            let name = target.trim_end_matches(".rs");
            assert!(seeded.contains(&name), "no seeds for {name}");
        }
    }
}
