//! Client↔server [`QmuxConnection`] pairs exchanging streams in memory: flow control with
//! small windows, stream limits, resets, closes, keep-alive and peer misbehaviour.

use std::time::{Duration, Instant};

use super::frame::Frame;
use super::params::Params;
use super::{code, CloseReason, Config, QmuxConnection, QmuxVersion, Role};
use crate::transport::{StreamError, Streams};

fn config(version: QmuxVersion) -> Config {
    Config {
        version,
        max_data: 1000,
        max_stream_data: 100,
        max_streams_bidi: 4,
        max_streams_uni: 2,
        ..Config::default()
    }
}

fn pair(version: QmuxVersion) -> (QmuxConnection, QmuxConnection, Instant) {
    let now = Instant::now();
    let mut c = QmuxConnection::new(Role::Client, config(version), now);
    let mut s = QmuxConnection::new(Role::Server, config(version), now);
    pump(&mut c, &mut s, now);
    assert!(c.is_established() && s.is_established());
    (c, s, now)
}

/// Delivers queued messages both ways until both sides are quiet; returns how many moved.
fn pump(a: &mut QmuxConnection, b: &mut QmuxConnection, now: Instant) -> usize {
    let mut moved = 0;
    loop {
        let mut any = false;
        while let Some(m) = a.poll_transmit() {
            let _ = b.on_message(&m, now);
            any = true;
            moved += 1;
        }
        while let Some(m) = b.poll_transmit() {
            let _ = a.on_message(&m, now);
            any = true;
            moved += 1;
        }
        if !any {
            return moved;
        }
    }
}

/// Reads everything currently readable on `id`.
fn read_all(conn: &mut QmuxConnection, id: u64) -> (Vec<u8>, bool) {
    let mut out = Vec::new();
    let mut buf = [0u8; 7];
    loop {
        match conn.recv(id, &mut buf) {
            Ok((n, fin)) => {
                out.extend_from_slice(&buf[..n]);
                if fin {
                    return (out, true);
                }
            }
            Err(StreamError::Blocked) => return (out, false),
            Err(e) => panic!("recv {id}: {e:?}"),
        }
    }
}

#[test]
fn stream_ids_follow_quic() {
    let (mut c, mut s, _) = pair(QmuxVersion::Qmux01);
    assert_eq!(c.open_bidi(), Ok(0));
    assert_eq!(c.open_bidi(), Ok(4));
    assert_eq!(c.open_uni(), Ok(2));
    assert_eq!(c.open_uni(), Ok(6));
    assert_eq!(s.open_bidi(), Ok(1));
    assert_eq!(s.open_uni(), Ok(3));
    assert_eq!(s.open_uni(), Ok(7));
    assert!(c.is_bidi(0) && !c.is_bidi(2));
    assert!(!c.is_peer_initiated(0) && c.is_peer_initiated(1));
    assert!(s.is_peer_initiated(0) && !s.is_peer_initiated(3));
    // The peer allows only two uni streams.
    assert_eq!(c.open_uni(), Err(StreamError::Blocked));
}

fn transfer_both_ways(version: QmuxVersion) {
    let (mut c, mut s, now) = pair(version);
    // 2500 bytes through 100-byte stream and 1000-byte connection windows.
    let payload: Vec<u8> = (0..2500u32).map(|i| (i % 251) as u8).collect();
    let bidi = c.open_bidi().unwrap();
    let uni = s.open_uni().unwrap();
    let (mut c_sent, mut s_sent) = (0, 0);
    let (mut s_got, mut c_got) = (Vec::new(), Vec::new());
    let (mut s_fin, mut c_fin) = (false, false);
    let mut blocked = 0;
    for _ in 0..200 {
        if c_sent < payload.len() {
            match c.send(bidi, &payload[c_sent..], true) {
                Ok(n) => {
                    c_sent += n;
                    if c_sent < payload.len() {
                        // The window is used up until the server reads.
                        assert_eq!(
                            c.send(bidi, &payload[c_sent..], true),
                            Err(StreamError::Blocked)
                        );
                        blocked += 1;
                    }
                }
                Err(StreamError::Blocked) => blocked += 1,
                Err(e) => panic!("{e:?}"),
            }
        }
        if s_sent < payload.len() {
            match s.send(uni, &payload[s_sent..], true) {
                Ok(n) => s_sent += n,
                Err(StreamError::Blocked) => blocked += 1,
                Err(e) => panic!("{e:?}"),
            }
        }
        pump(&mut c, &mut s, now);
        while let Some(id) = s.next_readable() {
            assert_eq!(id, bidi);
            let (d, f) = read_all(&mut s, id);
            s_got.extend(d);
            s_fin |= f;
        }
        while let Some(id) = c.next_readable() {
            assert_eq!(id, uni);
            let (d, f) = read_all(&mut c, id);
            c_got.extend(d);
            c_fin |= f;
        }
        pump(&mut c, &mut s, now);
        if s_fin && c_fin {
            break;
        }
    }
    assert_eq!(s_got, payload);
    assert_eq!(c_got, payload);
    assert!(s_fin && c_fin);
    assert!(blocked > 0, "flow control never blocked");
    assert!(!c.is_closed() && !s.is_closed());
    // The server answers on the client's bidi stream.
    assert_eq!(s.send(bidi, b"reply", true), Ok(5));
    pump(&mut c, &mut s, now);
    assert_eq!(c.next_readable(), Some(bidi));
    assert_eq!(read_all(&mut c, bidi), (b"reply".to_vec(), true));
    assert_eq!(c.recv(bidi, &mut [0; 4]), Err(StreamError::Gone));
}

#[test]
fn transfer_qmux01() {
    transfer_both_ways(QmuxVersion::Qmux01);
}

#[test]
fn transfer_qmux00() {
    transfer_both_ways(QmuxVersion::Qmux00);
}

#[test]
fn connection_window_is_shared() {
    let (mut c, mut s, now) = pair(QmuxVersion::Qmux01);
    let mut total = 0;
    let mut ids = Vec::new();
    for _ in 0..2 {
        let id = c.open_uni().unwrap();
        ids.push(id);
        total += c.send(id, &[1; 100], false).unwrap();
    }
    // Stream windows full: blocked until the server reads.
    assert_eq!(c.send(ids[0], &[1], false), Err(StreamError::Blocked));
    pump(&mut c, &mut s, now);
    assert_eq!(total, 200);
    for id in &ids {
        assert_eq!(read_all(&mut s, *id).0.len(), 100);
    }
    pump(&mut c, &mut s, now);
    assert!(c.send(ids[0], &[1; 100], false).unwrap() > 0);
}

#[test]
fn stream_limit_credit_returns() {
    let (mut c, mut s, now) = pair(QmuxVersion::Qmux01);
    for round in 0..5 {
        let a = c.open_uni().unwrap();
        let b = c.open_uni().unwrap();
        assert_eq!(c.open_uni(), Err(StreamError::Blocked), "round {round}");
        c.send(a, b"x", true).unwrap();
        c.send(b, b"y", true).unwrap();
        pump(&mut c, &mut s, now);
        while let Some(id) = s.next_readable() {
            assert!(read_all(&mut s, id).1);
        }
        pump(&mut c, &mut s, now);
    }
}

#[test]
fn reset_and_stop_sending() {
    let (mut c, mut s, now) = pair(QmuxVersion::Qmux01);
    let id = c.open_bidi().unwrap();
    c.send(id, b"partial", false).unwrap();
    c.reset(id, 0x36);
    pump(&mut c, &mut s, now);
    assert_eq!(s.next_readable(), Some(id));
    assert_eq!(s.recv(id, &mut [0; 16]), Err(StreamError::Reset(0x36)));
    // The server can still send on its half, until the client stops it.
    assert_eq!(s.send(id, b"hi", false), Ok(2));
    c.stop(id, 0x1);
    pump(&mut c, &mut s, now);
    assert_eq!(s.send(id, b"more", false), Err(StreamError::Stopped(0x1)));
    assert!(!c.is_closed() && !s.is_closed());
}

#[test]
fn application_close() {
    let (mut c, mut s, now) = pair(QmuxVersion::Qmux01);
    s.close(0x2, "unauthorized");
    assert_eq!(s.open_bidi(), Err(StreamError::Gone));
    pump(&mut c, &mut s, now);
    assert_eq!(
        c.close_reason(),
        Some(&CloseReason::Peer {
            application: true,
            code: 0x2,
            reason: "unauthorized".into()
        })
    );
    assert!(c.poll_transmit().is_none());
}

#[test]
fn ping_and_idle_timeout() {
    let (mut c, mut s, now) = pair(QmuxVersion::Qmux01);
    let t = c.next_timeout().unwrap();
    assert_eq!(t, now + Duration::from_secs(5));
    c.on_timeout(t);
    let ping = c.poll_transmit().unwrap();
    s.on_message(&ping, t).unwrap();
    let pong = s.poll_transmit().unwrap();
    let mut expected = Vec::new();
    Frame::PingResponse(1).encode(&mut expected);
    assert_eq!(pong, expected);
    c.on_message(&pong, t).unwrap();
    let late = t + Duration::from_secs(31);
    c.on_timeout(late);
    assert_eq!(c.close_reason(), Some(&CloseReason::IdleTimeout));
    assert_eq!(c.next_timeout(), None);
}

#[test]
fn huge_peer_idle_timeout_does_not_overflow() {
    let now = Instant::now();
    let mut cfg = config(QmuxVersion::Qmux01);
    cfg.idle_timeout = Duration::ZERO;
    let mut s = QmuxConnection::new(Role::Server, cfg, now);
    let params = Params {
        max_idle_timeout_ms: (1 << 62) - 1,
        ..Params::default()
    };
    s.on_message(&encoded(&[Frame::TransportParameters(params)]), now)
        .unwrap();
    assert_eq!(s.next_timeout(), Some(now + Duration::from_secs(5)));
    s.on_timeout(now + Duration::from_secs(3600));
    assert!(!s.is_closed());
}

#[test]
fn qmux00_keepalive_asks_for_ws_ping() {
    let (mut c, _s, now) = pair(QmuxVersion::Qmux00);
    c.on_timeout(now + Duration::from_secs(5));
    assert!(c.take_ws_ping());
    assert!(!c.take_ws_ping());
    assert!(c.poll_transmit().is_none());
}

fn encoded(frames: &[Frame]) -> Vec<u8> {
    let mut out = Vec::new();
    for f in frames {
        f.encode(&mut out);
    }
    out
}

fn server_after(frames: &[Frame]) -> (QmuxConnection, Result<(), super::Error>) {
    let now = Instant::now();
    let mut s = QmuxConnection::new(Role::Server, config(QmuxVersion::Qmux01), now);
    let params = Params {
        initial_max_data: 1000,
        initial_max_stream_data_bidi_local: 100,
        initial_max_stream_data_bidi_remote: 100,
        initial_max_stream_data_uni: 100,
        initial_max_streams_bidi: 4,
        initial_max_streams_uni: 4,
        ..Params::default()
    };
    let mut all = vec![Frame::TransportParameters(params)];
    all.extend_from_slice(frames);
    let r = s.on_message(&encoded(&all), now);
    (s, r)
}

fn assert_closed_with(frames: &[Frame], expected: u64) {
    let (mut s, r) = server_after(frames);
    let err = r.expect_err("should fail");
    assert_eq!(err.code, expected, "{frames:?}: {err:?}");
    assert_eq!(s.close_reason(), Some(&CloseReason::Error(err)));
    let mut last = None;
    while let Some(m) = s.poll_transmit() {
        last = Some(m);
    }
    let (frame, _) = Frame::decode(&last.unwrap()).unwrap();
    assert!(matches!(frame, Frame::ConnectionClose { code, .. } if code == expected));
}

fn data(id: u64, offset: u64, len: usize) -> Frame {
    Frame::Stream {
        id,
        offset: Some(offset),
        data: vec![0; len],
        fin: false,
    }
}

#[test]
fn peer_misbehaviour_closes() {
    let now = Instant::now();
    let mut s = QmuxConnection::new(Role::Server, config(QmuxVersion::Qmux01), now);
    let err = s.on_message(&encoded(&[data(0, 0, 1)]), now).unwrap_err();
    assert_eq!(err.code, code::PROTOCOL_VIOLATION);

    assert_closed_with(&[data(0, 0, 101)], code::FLOW_CONTROL_ERROR);
    // Uni index 2 is past our limit of 2; bidi index 4 past our limit of 4.
    assert_closed_with(&[data(10, 0, 1)], code::STREAM_LIMIT_ERROR);
    assert_closed_with(&[data(16, 0, 1)], code::STREAM_LIMIT_ERROR);
    // Data on the server's own uni stream id, and on a server bidi not yet opened.
    assert_closed_with(&[data(3, 0, 1)], code::STREAM_STATE_ERROR);
    assert_closed_with(&[data(1, 0, 1)], code::STREAM_STATE_ERROR);
    assert_closed_with(
        &[Frame::MaxStreamData { id: 2, max: 10 }],
        code::STREAM_STATE_ERROR,
    );
    assert_closed_with(
        &[Frame::TransportParameters(Params::default())],
        code::PROTOCOL_VIOLATION,
    );
    assert_closed_with(
        &[
            Frame::Stream {
                id: 0,
                offset: Some(0),
                data: vec![1; 5],
                fin: true,
            },
            data(0, 5, 1),
        ],
        code::FINAL_SIZE_ERROR,
    );
    assert_closed_with(
        &[
            data(0, 0, 5),
            Frame::ResetStream {
                id: 0,
                code: 0,
                final_size: 3,
            },
        ],
        code::FINAL_SIZE_ERROR,
    );
    assert_closed_with(&[data(0, 10, 1)], code::PROTOCOL_VIOLATION);
    assert_closed_with(&[Frame::Datagram(vec![1])], code::PROTOCOL_VIOLATION);

    // Malformed bytes after valid parameters.
    let (_, r) = server_after(&[]);
    r.unwrap();
    let now = Instant::now();
    let mut s = QmuxConnection::new(Role::Server, config(QmuxVersion::Qmux01), now);
    let mut msg = encoded(&[Frame::TransportParameters(Params::default())]);
    msg.push(0x06);
    assert_eq!(
        s.on_message(&msg, now).unwrap_err().code,
        code::FRAME_ENCODING_ERROR
    );
}

#[test]
fn connection_flow_control_violation() {
    // Our connection window is 1000 over streams of 100: eleven full streams exceed it.
    let mut frames: Vec<Frame> = (0..4).map(|i| data(i * 4, 0, 100)).collect();
    frames.extend((0..2).map(|i| data(i * 4 + 2, 0, 100)));
    let (_, r) = server_after(&frames);
    r.unwrap();
    let mut small = config(QmuxVersion::Qmux01);
    small.max_data = 150;
    let now = Instant::now();
    let mut s = QmuxConnection::new(Role::Server, small, now);
    let msg = encoded(&[
        Frame::TransportParameters(Params::default()),
        data(0, 0, 100),
        data(4, 0, 60),
    ]);
    assert_eq!(
        s.on_message(&msg, now).unwrap_err().code,
        code::FLOW_CONTROL_ERROR
    );
}

#[test]
fn fuzz_connection_no_panics() {
    let mut x: u64 = 0xdead_beef_cafe_f00d;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let now = Instant::now();
    for round in 0..2000 {
        let version = if round % 2 == 0 {
            QmuxVersion::Qmux01
        } else {
            QmuxVersion::Qmux00
        };
        let mut s = QmuxConnection::new(Role::Server, config(version), now);
        let params = encoded(&[Frame::TransportParameters(Params {
            initial_max_data: 1000,
            initial_max_streams_bidi: 4,
            initial_max_stream_data_bidi_local: 100,
            ..Params::default()
        })]);
        let _ = s.on_message(&params, now);
        for _ in 0..8 {
            let frame = match next() % 6 {
                0 => data(next() % 32, next() % 128, (next() % 64) as usize),
                1 => Frame::ResetStream {
                    id: next() % 32,
                    code: next() % 8,
                    final_size: next() % 200,
                },
                2 => Frame::StopSending {
                    id: next() % 32,
                    code: 1,
                },
                3 => Frame::MaxStreamData {
                    id: next() % 32,
                    max: next() % 1000,
                },
                4 => Frame::MaxStreams {
                    bidi: next() % 2 == 0,
                    max: next() % 100,
                },
                _ => Frame::PingRequest(next() % 100),
            };
            let mut msg = encoded(&[frame]);
            if next() % 4 == 0 && !msg.is_empty() {
                let at = next() as usize % msg.len();
                msg[at] = next() as u8;
            }
            let _ = s.on_message(&msg, now);
            while let Some(id) = s.next_readable() {
                let _ = s.recv(id, &mut [0; 32]);
            }
            if let Ok(id) = s.open_bidi() {
                let _ = s.send(id, &[0; 50], next() % 2 == 0);
            }
            while s.poll_transmit().is_some() {}
        }
    }
}

/// A qmux-00 server whose peer allows plenty of data but 64-byte records (32-byte chunks).
fn server_with_small_records() -> QmuxConnection {
    let now = Instant::now();
    let mut s = QmuxConnection::new(Role::Server, config(QmuxVersion::Qmux00), now);
    let params = Params {
        initial_max_data: 10_000,
        initial_max_stream_data_uni: 1000,
        initial_max_streams_uni: 10,
        max_record_size: 64,
        ..Params::default()
    };
    s.on_message(&encoded(&[Frame::TransportParameters(params)]), now)
        .unwrap();
    // Our own transport parameters.
    assert!(matches!(
        Frame::decode(&s.poll_transmit().unwrap()).unwrap().0,
        Frame::TransportParameters(_)
    ));
    s
}

fn sent_order(s: &mut QmuxConnection) -> Vec<(u64, bool)> {
    let mut order = Vec::new();
    while let Some(m) = s.poll_transmit() {
        assert!(m.len() <= 64);
        match Frame::decode(&m).unwrap().0 {
            Frame::Stream { id, .. } => order.push((id, false)),
            Frame::ResetStream { id, .. } => order.push((id, true)),
            other => panic!("{other:?}"),
        }
    }
    order
}

#[test]
fn urgency_then_round_robin() {
    let mut s = server_with_small_records();
    let (a, b, c) = (
        s.open_uni().unwrap(),
        s.open_uni().unwrap(),
        s.open_uni().unwrap(),
    );
    s.set_urgency(c, 200);
    s.set_urgency(b, 10);
    s.set_urgency(a, 10);
    for id in [c, a, b] {
        assert_eq!(s.send(id, &[7; 64], false), Ok(64));
    }
    let order: Vec<u64> = sent_order(&mut s).into_iter().map(|(id, _)| id).collect();
    assert_eq!(order, vec![a, b, a, b, c, c]);
}

#[test]
fn reset_drops_pending_data() {
    let mut s = server_with_small_records();
    let a = s.open_uni().unwrap();
    assert_eq!(s.send(a, &[1; 96], false), Ok(96));
    s.reset(a, 0x35);
    assert_eq!(sent_order(&mut s), vec![(a, true)]);
    assert_eq!(s.send(a, b"x", false), Err(StreamError::Gone));
}

#[test]
fn records_pack_frames_up_to_the_peer_limit() {
    let (mut c, mut s, now) = pair(QmuxVersion::Qmux01);
    let ids: Vec<u64> = (0..2).map(|_| c.open_uni().unwrap()).collect();
    for id in &ids {
        c.send(*id, b"abc", true).unwrap();
    }
    // Both STREAM frames ride one record.
    let record = c.poll_transmit().unwrap();
    assert!(c.poll_transmit().is_none());
    s.on_message(&record, now).unwrap();
    let readable: Vec<u64> = std::iter::from_fn(|| s.next_readable()).collect();
    assert_eq!(readable, ids);
}

#[test]
fn stop_after_fin_retires_the_stream() {
    let (mut c, mut s, now) = pair(QmuxVersion::Qmux01);
    let id = s.open_bidi().unwrap();
    s.send(id, b"done", true).unwrap();
    s.stop(id, 0x1);
    pump(&mut c, &mut s, now);
    assert_eq!(read_all(&mut c, id), (b"done".to_vec(), true));
    c.send(id, b"late", false).unwrap_or(0);
    pump(&mut c, &mut s, now);
    // Both sides of the server's stream are over, so it is gone.
    assert_eq!(s.send(id, b"x", false), Err(StreamError::Gone));
    assert!(!c.is_closed() && !s.is_closed());
}
