//! Micro-benchmarks of the sans-IO moq-lite codec (`moq_relay::wire`), std only.
//!
//! Run with `cargo bench --bench wire` (add a substring to run only the matching rows, e.g.
//! `cargo bench --bench wire -- group`).
//!
//! Two parts:
//!
//! * **Control messages**: `encode` (append to a reused `Vec`) and `decode` (from a prepared
//!   buffer) of every message kind, on lite-05 unless the name says lite-04. One op is one
//!   message.
//! * **Data path**: a GROUP stream of [`FRAMES`] frames with 4 KiB or 20 KiB payloads. The
//!   publisher side writes the stream type, the GROUP header and every FRAME header and
//!   appends the payloads; the relay side parses a whole group buffer the way
//!   `session::consume` does (frame headers off a `BytesMut`, payloads split off as zero-copy
//!   `Bytes`). One op is one frame; GB/s counts the group's wire bytes (payloads included),
//!   so for the zero-copy rows it is bytes *handled*, not bytes copied.
//!
//! Method: each row calibrates an iteration count so that one sample takes ~100 ms, takes
//! [`SAMPLES`] samples (~0.5 s per row) and reports the median; `spread` is
//! (max − min) / median over the samples, a noise indicator. Results go to stdout as a table.

use bytes::{Buf, Bytes, BytesMut};
use moq_relay::wire::{
    Announce, AnnounceOk, AnnounceRequest, AnnounceStatus, BidiType, Datagram, Fetch, FrameHeader,
    Goaway, GroupHeader, Message, Probe, ProbeLevel, Role, Setup, Subscribe, SubscribeResponse,
    SubscribeUpdate, TrackInfo, TrackRequest, UniType, Version,
};
use std::fmt::Debug;
use std::hint::black_box;
use std::time::{Duration, Instant};

/// Samples per row; the median is reported.
const SAMPLES: usize = 5;
/// Target duration of one sample.
const SAMPLE_TIME: Duration = Duration::from_millis(80);
/// Frames per group in the data-path rows (a 1 s GOP at 30 fps).
const FRAMES: usize = 30;
/// Frame timestamp delta in the data-path rows (33 ms at a 1 kHz timescale).
const FRAME_DELTA: i64 = 33;
/// Read size of the ingest row that refills its buffer like `Inbound::fill`.
const READ_CHUNK: usize = 64 * 1024;

const V5: Version = Version::Lite05;
const V4: Version = Version::Lite04;

/// Runs and prints the rows whose name contains the filter (all rows without one).
struct Bench {
    filter: Option<String>,
}

impl Bench {
    fn from_args() -> Self {
        // `cargo bench` passes `--bench`; anything not starting with `-` is a filter.
        let filter = std::env::args().skip(1).find(|arg| !arg.starts_with('-'));
        Bench { filter }
    }

    fn section(&self, title: &str) {
        println!("-- {title}");
    }

    /// Measures `f`, which performs `ops` operations covering `bytes` bytes per call.
    fn run(&self, name: &str, ops: u64, bytes: u64, mut f: impl FnMut()) {
        if let Some(filter) = &self.filter {
            if !name.contains(filter.as_str()) {
                return;
            }
        }
        let mut sample = |iters: u64| {
            let start = Instant::now();
            for _ in 0..iters {
                f();
            }
            start.elapsed()
        };
        // Calibrate: double until a run takes ≥ 10 ms, then scale to SAMPLE_TIME.
        let mut iters = 1u64;
        let elapsed = loop {
            let elapsed = sample(iters);
            if elapsed >= Duration::from_millis(10) {
                break elapsed;
            }
            iters *= 2;
        };
        let per_iter = elapsed.as_secs_f64() / iters as f64;
        let iters = ((SAMPLE_TIME.as_secs_f64() / per_iter) as u64).max(1);

        let mut ns_per_op: Vec<f64> = (0..SAMPLES)
            .map(|_| sample(iters).as_secs_f64() * 1e9 / (iters * ops) as f64)
            .collect();
        ns_per_op.sort_by(f64::total_cmp);
        let median = ns_per_op[SAMPLES / 2];
        let spread = (ns_per_op[SAMPLES - 1] - ns_per_op[0]) / median * 100.0;
        let mops = 1e3 / median;
        let gbps = match bytes {
            0 => "-".to_string(),
            // bytes per op / ns per op = GB/s (10^9 bytes per second).
            _ => format!("{:.2}", bytes as f64 / ops as f64 / median),
        };
        println!(
            "{name:<58} {median:>10.1} {mops:>9.2} {gbps:>8} {:>9} {spread:>6.1}%",
            bytes / ops,
        );
    }
}

/// Encode and decode rows for one control message, after checking that it round-trips.
fn message<M: Message + PartialEq + Debug>(bench: &Bench, name: &str, version: Version, msg: &M) {
    let mut wire = Vec::new();
    msg.encode(version, &mut wire).expect("encodes");
    let (decoded, used) = M::decode(version, &wire).expect("decodes");
    assert_eq!((&decoded, used), (msg, wire.len()), "{name} round-trips");
    let len = wire.len() as u64;

    let mut buf = Vec::with_capacity(256);
    bench.run(&format!("{name} encode"), 1, len, || {
        buf.clear();
        black_box(msg).encode(version, &mut buf).unwrap();
        black_box(&buf);
    });
    bench.run(&format!("{name} decode"), 1, len, || {
        black_box(M::decode(version, black_box(&wire)).unwrap());
    });
}

fn control_messages(bench: &Bench) {
    bench.section("control messages (op = one message)");
    let setup = Setup {
        probe: ProbeLevel::Report,
        path: Some("/anon?jwt=eyJhbGciOiJIUzI1NiJ9.eyJyb290IjoiYW5vbiJ9.c2lnbmF0dXJl".into()),
        role: Role::Publisher,
        cost: None,
        hop: 0x1234_5678,
    };
    message(bench, "SETUP (path+jwt, 3 params)", V5, &setup);
    message(
        bench,
        "ANNOUNCE_REQUEST",
        V5,
        &AnnounceRequest {
            prefix: "anon/room".into(),
            exclude_hop: 0x1234_5678,
        },
    );
    message(
        bench,
        "ANNOUNCE_OK",
        V5,
        &AnnounceOk {
            hop: 0x1234_5678,
            active_count: 12,
        },
    );
    message(
        bench,
        "ANNOUNCE (3 hops)",
        V5,
        &Announce {
            status: AnnounceStatus::Active,
            suffix: "alice/camera".into(),
            hops: vec![0x1111_1111, 0x2222, 0x33],
        },
    );
    message(
        bench,
        "SUBSCRIBE",
        V5,
        &Subscribe {
            id: 17,
            broadcast: "anon/room/alice".into(),
            track: "video/hd".into(),
            priority: 10,
            max_latency_ms: 5000,
            start_group: Some(1234),
            end_group: None,
        },
    );
    message(
        bench,
        "SUBSCRIBE_UPDATE",
        V5,
        &SubscribeUpdate {
            priority: 20,
            max_latency_ms: 2000,
            start_group: None,
            end_group: Some(99),
        },
    );
    message(
        bench,
        "TRACK",
        V5,
        &TrackRequest {
            broadcast: "anon/room/alice".into(),
            track: "video/hd".into(),
        },
    );
    message(bench, "TRACK_INFO", V5, &TrackInfo::default());
    message(
        bench,
        "FETCH",
        V5,
        &Fetch {
            broadcast: "anon/room/alice".into(),
            track: "video/hd".into(),
            priority: 5,
            group: 1234,
        },
    );
    message(
        bench,
        "GOAWAY",
        V5,
        &Goaway {
            uri: "https://relay-2.example.com/anon".into(),
        },
    );
    message(
        bench,
        "PROBE",
        V5,
        &Probe {
            bitrate: 2_500_000,
            rtt: 40,
        },
    );
    message(
        bench,
        "GROUP header",
        V5,
        &GroupHeader {
            subscribe_id: 17,
            sequence: 1234,
        },
    );

    // SUBSCRIBE responses have their own `Type | Length | Body` framing.
    let responses = [
        (
            "SUBSCRIBE_START",
            V5,
            SubscribeResponse::Start { group: 1234 },
        ),
        (
            "SUBSCRIBE_DROP",
            V5,
            SubscribeResponse::Drop {
                start: 10,
                end: 20,
                code: 3,
            },
        ),
        (
            "SUBSCRIBE_OK (lite-04)",
            V4,
            SubscribeResponse::Ok {
                priority: 10,
                max_latency_ms: 5000,
                start_group: Some(1234),
                end_group: None,
            },
        ),
    ];
    for (name, version, response) in responses {
        let mut wire = Vec::new();
        response.encode(version, &mut wire).unwrap();
        assert_eq!(
            SubscribeResponse::decode(version, &wire),
            Ok((response, wire.len()))
        );
        let len = wire.len() as u64;
        let mut buf = Vec::with_capacity(64);
        bench.run(&format!("{name} encode"), 1, len, || {
            buf.clear();
            black_box(&response).encode(version, &mut buf).unwrap();
            black_box(&buf);
        });
        bench.run(&format!("{name} decode"), 1, len, || {
            black_box(SubscribeResponse::decode(version, black_box(&wire)).unwrap());
        });
    }

    // FRAME headers: the per-frame cost of every group stream.
    let frames = [
        (
            "FRAME header (lite-05)",
            V5,
            FrameHeader {
                timestamp_delta: FRAME_DELTA,
                size: 20 << 10,
            },
        ),
        (
            "FRAME header (lite-04)",
            V4,
            FrameHeader {
                timestamp_delta: 0,
                size: 20 << 10,
            },
        ),
    ];
    for (name, version, header) in frames {
        let mut wire = Vec::new();
        header.encode(version, &mut wire).unwrap();
        assert_eq!(
            FrameHeader::decode(version, &wire),
            Ok((header, wire.len()))
        );
        let len = wire.len() as u64;
        let mut buf = Vec::with_capacity(16);
        bench.run(&format!("{name} encode"), 1, len, || {
            buf.clear();
            black_box(&header).encode(version, &mut buf).unwrap();
            black_box(&buf);
        });
        bench.run(&format!("{name} decode"), 1, len, || {
            black_box(FrameHeader::decode(version, black_box(&wire)).unwrap());
        });
    }

    // Stream types: the first varint of every stream.
    let mut wire = Vec::new();
    UniType::Group.encode(V5, &mut wire).unwrap();
    let mut buf = Vec::with_capacity(16);
    bench.run("uni stream type encode", 1, 1, || {
        buf.clear();
        black_box(UniType::Group).encode(V5, &mut buf).unwrap();
        black_box(&buf);
    });
    bench.run("uni stream type decode", 1, 1, || {
        black_box(UniType::decode(V5, black_box(&wire)).unwrap());
    });
    let mut wire = Vec::new();
    BidiType::Subscribe.encode(V5, &mut wire).unwrap();
    bench.run("bidi stream type decode", 1, 1, || {
        black_box(BidiType::decode(V5, black_box(&wire)).unwrap());
    });

    // DATAGRAM: header plus a payload copied in (encode) or sliced out (decode).
    let datagram = Datagram {
        subscribe_id: 17,
        group: 1234,
        timestamp: 1_700_000_000,
        payload: Bytes::from(vec![0x5a; 1200]),
    };
    let mut wire = Vec::new();
    datagram.encode(V5, &mut wire).unwrap();
    let wire = Bytes::from(wire);
    assert_eq!(Datagram::decode(V5, &wire).as_ref(), Ok(&datagram));
    let len = wire.len() as u64;
    let mut buf = Vec::with_capacity(2048);
    bench.run("DATAGRAM 1200 B encode (payload copied)", 1, len, || {
        buf.clear();
        black_box(&datagram).encode(V5, &mut buf).unwrap();
        black_box(&buf);
    });
    bench.run("DATAGRAM 1200 B decode (payload sliced)", 1, len, || {
        black_box(Datagram::decode(V5, black_box(&wire)).unwrap());
    });
}

/// The GROUP header of the data-path rows.
const GROUP: GroupHeader = GroupHeader {
    subscribe_id: 17,
    sequence: 1234,
};

/// Appends the stream type, GROUP header and `FRAMES` frames of `payload.len()` bytes.
fn write_group(buf: &mut Vec<u8>, payload: &[u8], copy_payload: bool) {
    UniType::Group.encode(V5, buf).unwrap();
    GROUP.encode(V5, buf).unwrap();
    let header = FrameHeader {
        timestamp_delta: FRAME_DELTA,
        size: payload.len() as u64,
    };
    for _ in 0..FRAMES {
        header.encode(V5, buf).unwrap();
        if copy_payload {
            buf.extend_from_slice(payload);
        }
    }
}

/// Parses a group stream held in one `Bytes`: headers decoded in place, payloads split off
/// by refcount. Returns the payload bytes seen.
fn read_group(mut rest: Bytes) -> usize {
    let (_, used) = UniType::decode(V5, &rest).unwrap();
    rest.advance(used);
    let (_, used) = GroupHeader::decode(V5, &rest).unwrap();
    rest.advance(used);
    let mut total = 0;
    while !rest.is_empty() {
        let (header, used) = FrameHeader::decode(V5, &rest).unwrap();
        rest.advance(used);
        let payload = rest.split_to(header.size as usize);
        total += black_box(payload).len();
    }
    total
}

/// Like `session::consume`: the group arrives in `READ_CHUNK` reads appended to a `BytesMut`;
/// after each read, complete frame headers are decoded and split off, and complete payloads
/// are split off and frozen into `Bytes`. Returns the payload bytes seen.
fn ingest_group(inbound: &mut BytesMut, wire: &[u8]) -> usize {
    inbound.clear();
    let mut started = false;
    let mut pending: Option<FrameHeader> = None;
    let mut total = 0;
    for chunk in wire.chunks(READ_CHUNK) {
        // Reclaims the previous group's allocation once its payloads are gone.
        inbound.reserve(chunk.len());
        inbound.extend_from_slice(chunk);
        if !started {
            let (_, used) = UniType::decode(V5, inbound).unwrap();
            let _ = inbound.split_to(used);
            let (_, used) = GroupHeader::decode(V5, inbound).unwrap();
            let _ = inbound.split_to(used);
            started = true;
        }
        loop {
            let header = match pending.take() {
                Some(header) => header,
                None => match FrameHeader::decode(V5, inbound) {
                    Ok((header, used)) => {
                        let _ = inbound.split_to(used);
                        header
                    }
                    Err(_) => break,
                },
            };
            if inbound.len() < header.size as usize {
                pending = Some(header);
                break;
            }
            let payload = inbound.split_to(header.size as usize).freeze();
            total += black_box(payload).len();
        }
    }
    assert!(pending.is_none() && inbound.is_empty());
    total
}

fn data_path(bench: &Bench) {
    let frames = FRAMES as u64;
    for size in [4 << 10, 20 << 10] {
        let kib = size >> 10;
        let payload = vec![0xa5u8; size];
        let mut wire = Vec::new();
        write_group(&mut wire, &payload, true);
        let group_len = wire.len() as u64;
        let headers_len = group_len - (FRAMES * size) as u64;
        bench.section(&format!(
            "data path, {kib} KiB frames: GROUP + {FRAMES} FRAMEs, {group_len} B per group \
             (op = one frame)"
        ));

        let mut buf = Vec::with_capacity(wire.len());
        bench.run(
            &format!("publish {kib}K: encode headers + copy payloads"),
            frames,
            group_len,
            || {
                buf.clear();
                write_group(&mut buf, black_box(&payload), true);
                black_box(&buf);
            },
        );
        bench.run(
            &format!("publish {kib}K: encode headers only (zero-copy)"),
            frames,
            group_len,
            || {
                buf.clear();
                write_group(&mut buf, black_box(&payload), false);
                black_box(&buf);
                debug_assert_eq!(buf.len() as u64, headers_len);
            },
        );
        // `session::egress` allocates a fresh `Vec` per frame header and queues it as `Bytes`
        // beside a refcounted clone of the payload.
        let shared = Bytes::from(payload.clone());
        let header = FrameHeader {
            timestamp_delta: FRAME_DELTA,
            size: size as u64,
        };
        bench.run(
            &format!("egress {kib}K: Vec per header -> Bytes, cloned into the stream"),
            frames,
            group_len,
            || {
                for _ in 0..FRAMES {
                    let mut buf = Vec::with_capacity(16);
                    black_box(&header).encode(V5, &mut buf).unwrap();
                    // The stream send keeps a clone (Streams::send_shared), as measured here.
                    let header = Bytes::from(buf);
                    black_box((header.clone(), header, shared.clone()));
                }
            },
        );

        let frozen = Bytes::from(wire.clone());
        bench.run(
            &format!("relay {kib}K: decode group from &[u8] (skip payloads)"),
            frames,
            group_len,
            || {
                let buf = black_box(&wire[..]);
                let (_, mut pos) = UniType::decode(V5, buf).unwrap();
                let (_, used) = GroupHeader::decode(V5, &buf[pos..]).unwrap();
                pos += used;
                while pos < buf.len() {
                    let (header, used) = FrameHeader::decode(V5, &buf[pos..]).unwrap();
                    pos += used + header.size as usize;
                }
                black_box(pos);
            },
        );
        bench.run(
            &format!("relay {kib}K: decode group from Bytes (split payloads)"),
            frames,
            group_len,
            || {
                black_box(read_group(black_box(frozen.clone())));
            },
        );
        let mut inbound = BytesMut::with_capacity(wire.len());
        bench.run(
            &format!("relay {kib}K: ingest 64K reads into BytesMut (copy + split)"),
            frames,
            group_len,
            || {
                black_box(ingest_group(&mut inbound, black_box(&wire)));
            },
        );
    }
}

fn main() {
    let bench = Bench::from_args();
    let start = Instant::now();
    println!(
        "moq_relay::wire micro-benchmarks: median of {SAMPLES} samples of ~{} ms each",
        SAMPLE_TIME.as_millis()
    );
    println!("ns/op = nanoseconds per op; Mops/s = million ops per second;");
    println!(
        "GB/s = wire bytes per second (10^9); B/op = wire bytes per op; spread = (max-min)/median"
    );
    println!();
    println!(
        "{:<58} {:>10} {:>9} {:>8} {:>9} {:>7}",
        "benchmark", "ns/op", "Mops/s", "GB/s", "B/op", "spread"
    );
    control_messages(&bench);
    data_path(&bench);
    println!();
    println!("total: {:.1} s", start.elapsed().as_secs_f64());
}
