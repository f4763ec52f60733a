//! Sessions driven over an in-memory quiche client↔server pair: the server role against raw
//! client bytes (CONNECT, early streams, control stream errors, capsules, random bytes), and
//! the client role against our own server.

use super::capsule::Capsule;
use super::connect::Rejection;
use super::{error_code, frame, qpack, settings};
use super::{Event, WebTransportSession, WebTransportStreams};
use crate::transport::quic::QuicConnection;
use crate::transport::tls;
use crate::transport::{StreamError, Streams};
use std::net::SocketAddr;

fn config(server: Option<&tls::Certificate>) -> quiche::Config {
    let mut c = match server {
        Some(cert) => {
            let mut ctx =
                boring::ssl::SslContextBuilder::new(boring::ssl::SslMethod::tls()).unwrap();
            cert.configure(&mut ctx).unwrap();
            quiche::Config::with_boring_ssl_ctx_builder(quiche::PROTOCOL_VERSION, ctx).unwrap()
        }
        None => quiche::Config::new(quiche::PROTOCOL_VERSION).unwrap(),
    };
    c.verify_peer(false);
    c.set_application_protos(&[b"h3"]).unwrap();
    c.set_max_idle_timeout(5000);
    c.set_initial_max_data(1 << 20);
    c.set_initial_max_stream_data_bidi_local(1 << 18);
    c.set_initial_max_stream_data_bidi_remote(1 << 18);
    c.set_initial_max_stream_data_uni(1 << 18);
    c.set_initial_max_streams_bidi(100);
    c.set_initial_max_streams_uni(100);
    c
}

struct Pair {
    client: QuicConnection,
    server: QuicConnection,
}

fn pair() -> Pair {
    let cert = tls::generate(&["localhost".into()]).unwrap();
    let mut sc = config(Some(&cert));
    let mut cc = config(None);
    let caddr: SocketAddr = "127.0.0.1:1000".parse().unwrap();
    let saddr: SocketAddr = "127.0.0.1:2000".parse().unwrap();
    let ccid = quiche::ConnectionId::from_ref(&[1; 16]);
    let scid = quiche::ConnectionId::from_ref(&[2; 16]);
    let client =
        quiche::connect_with_buffer_factory(Some("localhost"), &ccid, caddr, saddr, &mut cc)
            .unwrap();
    let server = quiche::accept_with_buf_factory(&scid, None, saddr, caddr, &mut sc).unwrap();
    let mut p = Pair { client, server };
    p.shuttle();
    assert!(p.client.is_established() && p.server.is_established());
    p
}

impl Pair {
    fn shuttle(&mut self) {
        let mut buf = [0u8; 1500];
        for _ in 0..100 {
            let mut moved = false;
            for flip in [false, true] {
                let (from, to) = if flip {
                    (&mut self.server, &mut self.client)
                } else {
                    (&mut self.client, &mut self.server)
                };
                while let Ok((n, info)) = from.send(&mut buf) {
                    let recv = quiche::RecvInfo {
                        from: info.from,
                        to: info.to,
                    };
                    let _ = to.recv(&mut buf[..n], recv);
                    moved = true;
                }
            }
            if !moved {
                return;
            }
        }
    }
}

fn read_all(conn: &mut QuicConnection, id: u64) -> Result<(Vec<u8>, bool), quiche::Error> {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match conn.stream_recv(id, &mut buf) {
            Ok((n, fin)) => {
                out.extend_from_slice(&buf[..n]);
                if fin {
                    return Ok((out, true));
                }
            }
            Err(quiche::Error::Done) => return Ok((out, false)),
            Err(e) => return Err(e),
        }
    }
}

/// Reads every stream moq-lite would be handed: (id, bytes, fin), sorted by id.
fn read_readable(s: &mut WebTransportStreams<'_>) -> Vec<(u64, Vec<u8>, bool)> {
    let mut got = Vec::new();
    while let Some(id) = s.next_readable() {
        let mut buf = [0u8; 64];
        let (n, fin) = s.recv(id, &mut buf).unwrap();
        got.push((id, buf[..n].to_vec(), fin));
    }
    got.sort();
    got
}

fn connect_request(protocols: &str) -> Vec<u8> {
    let section = qpack::encode(&[
        (":method", "CONNECT"),
        (":protocol", "webtransport"),
        (":scheme", "https"),
        (":authority", "localhost"),
        (":path", "/anon/room?jwt=x"),
        ("wt-available-protocols", protocols),
    ]);
    let mut out = Vec::new();
    // A GREASE frame first, which must be skipped.
    frame::encode_frame(0x21, b"x", &mut out);
    frame::encode_frame(frame::HEADERS, &section, &mut out);
    out
}

fn client_control(p: &mut Pair) {
    p.client
        .stream_send(2, &settings::server_control_stream(), false)
        .unwrap();
    // A QPACK encoder stream and a GREASE stream type.
    p.client.stream_send(6, &[0x02], false).unwrap();
    p.client.stream_send(10, &[0x21, 1, 2, 3], false).unwrap();
}

/// Sets up an accepted session; returns the decoded response headers.
fn established(p: &mut Pair, wt: &mut WebTransportSession) -> qpack::Headers {
    client_control(p);
    p.client
        .stream_send(
            0,
            &connect_request("\"moq-lite-05\", \"moq-lite-04\""),
            false,
        )
        .unwrap();
    // A WebTransport uni stream that arrives before the session is accepted.
    p.client
        .stream_send(14, &[0x40, 0x54, 0x00, b'e'], false)
        .unwrap();
    p.shuttle();
    let events = wt.drive(&mut p.server);
    let Some(Event::Connect(req)) = events.first() else {
        panic!("{events:?}");
    };
    assert_eq!(req.path_only(), "/anon/room");
    assert_eq!(req.protocol, "moq-lite-05");
    wt.accept(&mut p.server, Some(req.protocol));
    p.shuttle();
    assert!(wt.peer_settings().unwrap().supports_webtransport());
    let (bytes, fin) = read_all(&mut p.client, 0).unwrap();
    assert!(!fin);
    let (ty, payload, _) = frame::decode_frame(&bytes, 4096).unwrap();
    assert_eq!(ty, frame::HEADERS);
    qpack::decode(payload).unwrap()
}

#[test]
fn control_stream_sent_at_once() {
    let mut p = pair();
    let mut wt = WebTransportSession::new();
    assert!(wt.drive(&mut p.server).is_empty());
    p.shuttle();
    let (bytes, fin) = read_all(&mut p.client, 3).unwrap();
    assert_eq!(bytes, settings::server_control_stream());
    assert!(!fin);
}

#[test]
fn full_session() {
    let mut p = pair();
    let mut wt = WebTransportSession::new();
    let response = established(&mut p, &mut wt);
    assert_eq!(response.get(":status"), Some("200"));
    assert_eq!(response.get("wt-protocol"), Some("\"moq-lite-05\""));
    assert_eq!(
        response.get("sec-webtransport-http3-draft"),
        Some("draft02")
    );
    assert!(wt.is_established());

    // Client streams: a uni, a bidi, and a bidi that is a plain HTTP request.
    p.client
        .stream_send(18, &[0x40, 0x54, 0x00, b'u', b'n', b'i'], true)
        .unwrap();
    p.client
        .stream_send(4, &[0x40, 0x41, 0x00, b'b', b'i'], false)
        .unwrap();
    p.client.stream_send(8, &[0x01, 0x00], false).unwrap();
    p.shuttle();
    wt.drive(&mut p.server);
    let got = read_readable(&mut wt.streams(&mut p.server));
    assert!(got.iter().all(|&(id, ..)| wt.is_peer_initiated(id)));
    assert_eq!(
        got,
        [
            (4, b"bi".to_vec(), false),
            (14, b"e".to_vec(), false),
            (18, b"uni".to_vec(), true)
        ]
    );
    p.shuttle();
    let mut buf = [0u8; 16];
    assert_eq!(
        p.client.stream_recv(8, &mut buf),
        Err(quiche::Error::StreamReset(error_code::H3_REQUEST_REJECTED))
    );

    // Server streams get their headers; codes are mapped.
    let (uni, bidi) = {
        let mut s = wt.streams(&mut p.server);
        let uni = s.open_uni().unwrap();
        let bidi = s.open_bidi().unwrap();
        assert!(!s.is_peer_initiated(uni) && !s.is_bidi(uni) && s.is_bidi(bidi));
        assert_eq!(s.send(uni, b"group", false).unwrap(), 5);
        assert_eq!(s.send(bidi, b"req", false).unwrap(), 3);
        s.reset(uni, 0x34);
        s.stop(4, 0x36);
        (uni, bidi)
    };
    assert_eq!((uni, bidi), (7, 1));
    p.shuttle();
    let (bytes, _) = read_all(&mut p.client, bidi).unwrap();
    assert_eq!(bytes, [0x40, 0x41, 0x00, b'r', b'e', b'q']);
    assert_eq!(
        read_all(&mut p.client, uni),
        Err(quiche::Error::StreamReset(0x52e4a40fa910))
    );
    assert_eq!(
        p.client.stream_send(4, b"more", false),
        Err(quiche::Error::StreamStopped(0x52e4a40fa912))
    );

    // A peer reset arrives with the WebTransport code.
    p.client.stream_send(bidi, b"", false).ok();
    p.client
        .stream_shutdown(bidi, quiche::Shutdown::Write, error_code::to_http3(1))
        .unwrap();
    p.shuttle();
    {
        let mut s = wt.streams(&mut p.server);
        let mut buf = [0u8; 16];
        assert_eq!(s.next_readable(), Some(bidi));
        assert_eq!(s.recv(bidi, &mut buf), Err(StreamError::Reset(1)));
    }

    // Closing: capsule in a DATA frame and FIN; the driver's CONNECTION_CLOSE follows.
    wt.streams(&mut p.server).close(2, "unauthorized");
    p.shuttle();
    let (bytes, fin) = read_all(&mut p.client, 0).unwrap();
    assert!(fin);
    let (ty, payload, _) = frame::decode_frame(&bytes, 4096).unwrap();
    assert_eq!(ty, frame::DATA);
    assert_eq!(
        payload,
        [
            0x68, 0x43, 0x10, 0, 0, 0, 2, b'u', b'n', b'a', b'u', b't', b'h', b'o', b'r', b'i',
            b'z', b'e', b'd'
        ]
    );
    wt.drive(&mut p.server);
    assert!(wt.is_closed() && !p.server.is_closed());
    let (code, reason) = wt.connection_close().unwrap();
    assert_eq!(reason, "unauthorized");
    p.server.close(true, code, reason.as_bytes()).unwrap();
    p.shuttle();
    assert!(p.server.is_closed() || p.server.is_draining());
    assert_eq!(
        p.client.peer_error().map(|e| e.error_code),
        Some(error_code::to_http3(2))
    );
}

#[test]
fn streams_before_connect_wait_for_acceptance() {
    let mut p = pair();
    let mut wt = WebTransportSession::new();
    client_control(&mut p);
    // A WebTransport bidi (id 4) and one for another session (id 8) before the CONNECT.
    p.client
        .stream_send(4, &[0x40, 0x41, 0x00, b'a'], false)
        .unwrap();
    p.client
        .stream_send(8, &[0x40, 0x41, 0x09, b'b'], false)
        .unwrap();
    p.shuttle();
    assert!(wt.drive(&mut p.server).is_empty());
    assert_eq!(wt.streams(&mut p.server).next_readable(), None);
    p.client
        .stream_send(0, &connect_request("\"moq-lite-04\""), false)
        .unwrap();
    p.shuttle();
    let events = wt.drive(&mut p.server);
    assert!(matches!(events[..], [Event::Connect(_)]));
    assert_eq!(wt.session_id(), Some(0));
    wt.accept(&mut p.server, Some("moq-lite-04"));
    let mut s = wt.streams(&mut p.server);
    assert_eq!(s.next_readable(), Some(4));
    let mut buf = [0u8; 8];
    assert_eq!(s.recv(4, &mut buf).unwrap(), (1, false));
    assert_eq!(buf[0], b'a');
    assert_eq!(s.next_readable(), None);
    p.shuttle();
    assert_eq!(
        p.client.stream_recv(8, &mut buf),
        Err(quiche::Error::StreamReset(error_code::H3_ID_ERROR))
    );
}

#[test]
fn random_bytes_on_every_stream_never_panic() {
    let mut x = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let seeds = [
        settings::server_control_stream(),
        connect_request("\"moq-lite-05\""),
        vec![0x40, 0x41, 0x00, 1, 2],
        vec![0x40, 0x54, 0x00, 0, 2],
    ];
    for round in 0..24 {
        let mut p = pair();
        let mut wt = WebTransportSession::new();
        for (i, id) in [2u64, 0, 4, 6].into_iter().enumerate() {
            let mut data = seeds[i].clone();
            if round % 3 != 0 {
                for _ in 0..1 + next() % 4 {
                    let at = (next() as usize) % data.len().max(1);
                    if at < data.len() {
                        data[at] = next() as u8;
                    }
                }
            } else {
                data = (0..next() % 40).map(|_| next() as u8).collect();
            }
            let _ = p.client.stream_send(id, &data, next() % 2 == 0);
        }
        p.shuttle();
        for event in wt.drive(&mut p.server) {
            if let Event::Connect(req) = event {
                wt.accept(&mut p.server, Some(req.protocol));
            }
        }
        let mut s = wt.streams(&mut p.server);
        let mut buf = [0u8; 64];
        for _ in 0..16 {
            match s.next_readable() {
                Some(id) => {
                    let _ = s.recv(id, &mut buf);
                }
                None => break,
            }
        }
        p.shuttle();
    }
}

#[test]
fn peer_close_capsule() {
    let mut p = pair();
    let mut wt = WebTransportSession::new();
    established(&mut p, &mut wt);
    let mut capsule = Vec::new();
    Capsule::Close {
        code: 7,
        reason: "bye".into(),
    }
    .encode(&mut capsule);
    let mut out = Vec::new();
    frame::encode_frame(frame::DATA, &capsule, &mut out);
    p.client.stream_send(0, &out, true).unwrap();
    p.shuttle();
    assert_eq!(
        wt.drive(&mut p.server),
        [Event::Closed {
            code: 7,
            reason: "bye".into()
        }]
    );
    assert!(wt.is_closed());
}

#[test]
fn rejects_without_protocol() {
    let mut p = pair();
    let mut wt = WebTransportSession::new();
    client_control(&mut p);
    p.client
        .stream_send(0, &connect_request("\"moql\""), false)
        .unwrap();
    p.shuttle();
    let events = wt.drive(&mut p.server);
    assert!(matches!(
        events[..],
        [Event::Rejected(Rejection { status: 400, .. })]
    ));
    p.shuttle();
    let (bytes, fin) = read_all(&mut p.client, 0).unwrap();
    assert!(fin);
    let (_, payload, _) = frame::decode_frame(&bytes, 4096).unwrap();
    assert_eq!(qpack::decode(payload).unwrap().get(":status"), Some("400"));
}

#[test]
fn auth_rejection_and_bad_qpack() {
    let mut p = pair();
    let mut wt = WebTransportSession::new();
    client_control(&mut p);
    p.client
        .stream_send(0, &connect_request("\"moq-lite-04\""), false)
        .unwrap();
    p.shuttle();
    assert!(matches!(wt.drive(&mut p.server)[..], [Event::Connect(_)]));
    wt.reject(&mut p.server, 403);
    p.shuttle();
    let (bytes, fin) = read_all(&mut p.client, 0).unwrap();
    assert!(fin);
    let (_, payload, _) = frame::decode_frame(&bytes, 4096).unwrap();
    assert_eq!(qpack::decode(payload).unwrap().get(":status"), Some("403"));

    let mut p = pair();
    let mut wt = WebTransportSession::new();
    let mut out = Vec::new();
    frame::encode_frame(frame::HEADERS, &[0x01, 0x00, 0x80], &mut out);
    p.client.stream_send(0, &out, false).unwrap();
    p.shuttle();
    assert!(matches!(wt.drive(&mut p.server)[..], [Event::Rejected(_)]));
}

#[test]
fn large_unknown_control_frame_is_skipped() {
    let mut p = pair();
    let mut wt = WebTransportSession::new();
    let mut control = settings::server_control_stream();
    let big = vec![0xaa; 100_000];
    frame::encode_frame(0x21 + 0x1f * 3, &big, &mut control);
    frame::encode_frame(frame::GOAWAY, &[0x00], &mut control);
    p.client.stream_send(2, &control, false).unwrap();
    for _ in 0..20 {
        p.shuttle();
        wt.drive(&mut p.server);
    }
    p.shuttle();
    assert!(!p.server.is_closed() && p.client.peer_error().is_none());
    assert!(wt.peer_settings().is_some());
}

#[test]
fn bad_control_stream_closes_connection() {
    let mut p = pair();
    let mut wt = WebTransportSession::new();
    // A control stream whose first frame is not SETTINGS.
    p.client
        .stream_send(2, &[0x00, 0x07, 0x01, 0x00], false)
        .unwrap();
    p.shuttle();
    wt.drive(&mut p.server);
    p.shuttle();
    assert_eq!(
        p.client.peer_error().map(|e| e.error_code),
        Some(error_code::H3_MISSING_SETTINGS)
    );
}

/// Drives both sides until neither has anything left to say; returns the client's events.
fn converse(
    p: &mut Pair,
    client: &mut WebTransportSession,
    server: &mut WebTransportSession,
    mut on_server: impl FnMut(&mut WebTransportSession, &mut QuicConnection, Event),
) -> Vec<Event> {
    let mut client_events = Vec::new();
    for _ in 0..10 {
        client_events.extend(client.drive(&mut p.client));
        p.shuttle();
        for event in server.drive(&mut p.server) {
            on_server(server, &mut p.server, event);
        }
        p.shuttle();
    }
    client_events
}

#[test]
fn client_session_end_to_end() {
    let mut p = pair();
    let mut client = WebTransportSession::client("localhost:4443", "/anon", &["moq-lite-05"]);
    let mut server = WebTransportSession::new();
    let mut requests = Vec::new();
    let events = converse(&mut p, &mut client, &mut server, |s, conn, event| {
        if let Event::Connect(req) = event {
            s.accept(conn, Some(req.protocol));
            requests.push(req);
        }
    });
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].path, "/anon");
    assert_eq!(requests[0].authority, "localhost:4443");
    assert_eq!(
        events,
        [Event::Accepted {
            protocol: Some("moq-lite-05".into())
        }]
    );
    assert!(client.is_established() && server.is_established());
    assert_eq!(client.session_id(), Some(0));
    assert!(server.peer_settings().unwrap().supports_webtransport());

    // Streams in both directions, headers added and stripped on each side.
    let (uni, bidi) = {
        let mut s = client.streams(&mut p.client);
        let uni = s.open_uni().unwrap();
        let bidi = s.open_bidi().unwrap();
        assert_eq!((uni, bidi), (6, 4));
        assert_eq!(s.send(uni, b"hello", true), Ok(5));
        assert_eq!(s.send(bidi, b"ask", false), Ok(3));
        (uni, bidi)
    };
    p.shuttle();
    server.drive(&mut p.server);
    let got = {
        let mut s = server.streams(&mut p.server);
        let got = read_readable(&mut s);
        assert_eq!(s.send(bidi, b"answer", true), Ok(6));
        let back = s.open_uni().unwrap();
        assert_eq!(s.send(back, b"group", true), Ok(5));
        got
    };
    assert_eq!(
        got,
        [
            (bidi, b"ask".to_vec(), false),
            (uni, b"hello".to_vec(), true)
        ]
    );
    p.shuttle();
    client.drive(&mut p.client);
    let got: Vec<_> = read_readable(&mut client.streams(&mut p.client))
        .into_iter()
        .map(|(id, bytes, fin)| (id, client.is_peer_initiated(id), bytes, fin))
        .collect();
    assert_eq!(
        got,
        [
            (bidi, false, b"answer".to_vec(), true),
            (7, true, b"group".to_vec(), true)
        ]
    );

    // The client closes: the server sees the capsule's code and reason.
    client.streams(&mut p.client).close(2, "unauthorized");
    p.shuttle();
    let closed = server.drive(&mut p.server);
    assert_eq!(
        closed,
        [Event::Closed {
            code: 2,
            reason: "unauthorized".into()
        }]
    );
}

#[test]
fn client_waits_for_server_settings_and_reports_refusal() {
    let mut p = pair();
    let mut client = WebTransportSession::client("localhost", "/private", &["moq-lite-05"]);
    // No server SETTINGS yet: only our control stream goes out, no CONNECT.
    assert!(client.drive(&mut p.client).is_empty());
    p.shuttle();
    assert!(matches!(
        read_all(&mut p.server, 0),
        Err(_) | Ok((_, false))
    ));
    assert_eq!(
        read_all(&mut p.server, 2).unwrap().0,
        settings::client_control_stream()
    );
    let mut server = WebTransportSession::new();
    let events = converse(&mut p, &mut client, &mut server, |s, conn, event| {
        if let Event::Connect(_) = event {
            s.reject(conn, 403);
        }
    });
    assert_eq!(events, [Event::Refused { status: 403 }]);
    assert!(client.is_closed());
    assert_eq!(
        client.streams(&mut p.client).open_uni(),
        Err(StreamError::Gone)
    );
}

#[test]
fn client_refuses_a_server_without_webtransport() {
    let mut p = pair();
    let mut client = WebTransportSession::client("localhost", "/anon", &["moq-lite-05"]);
    client.drive(&mut p.client);
    // A plain HTTP/3 server: SETTINGS without H3_DATAGRAM or WebTransport.
    let mut control = vec![settings::CONTROL_STREAM_TYPE as u8];
    settings::encode_settings(&[(settings::MAX_FIELD_SECTION_SIZE, 4096)], &mut control);
    p.server.stream_send(3, &control, false).unwrap();
    p.shuttle();
    assert!(client.drive(&mut p.client).is_empty());
    p.shuttle();
    assert_eq!(
        p.server.peer_error().map(|e| e.error_code),
        Some(error_code::H3_SETTINGS_ERROR)
    );
}

#[test]
fn client_rejects_a_malformed_response_and_ignores_server_requests() {
    let mut p = pair();
    let mut client = WebTransportSession::client("localhost", "/anon", &["moq-lite-05"]);
    client.drive(&mut p.client);
    p.server
        .stream_send(3, &settings::server_control_stream(), false)
        .unwrap();
    // A server-initiated bidi stream that is not a WebTransport stream.
    p.server.stream_send(1, &[0x01, 0x00], false).unwrap();
    p.shuttle();
    client.drive(&mut p.client);
    p.shuttle();
    assert!(read_all(&mut p.server, 0).unwrap().0.len() > 2);
    assert_eq!(
        p.server.stream_send(1, b"x", false),
        Err(quiche::Error::StreamStopped(
            error_code::H3_REQUEST_REJECTED
        ))
    );
    let mut response = Vec::new();
    frame::encode_frame(
        frame::HEADERS,
        &qpack::encode(&[(":status", "2x0")]),
        &mut response,
    );
    p.server.stream_send(0, &response, false).unwrap();
    p.shuttle();
    assert!(client.drive(&mut p.client).is_empty());
    p.shuttle();
    assert_eq!(
        p.server.peer_error().map(|e| e.error_code),
        Some(error_code::H3_MESSAGE_ERROR)
    );
}

#[test]
fn early_streams_hold_their_bytes_within_the_early_budget_and_refuse_beyond_it() {
    use super::peers::MAX_EARLY_BYTES;
    use super::refusals::refusals;
    let mut p = pair();
    let mut wt = WebTransportSession::new();
    client_control(&mut p);
    let before = refusals();
    // Before any CONNECT: a bidi WebTransport stream with a few bytes, then uni streams of
    // 40 KiB each (the test's QUIC windows allow 256 KiB per stream, 1 MiB in all).
    p.client
        .stream_send(4, &[0x40, 0x41, 0x00, b'a', b'b'], true)
        .unwrap();
    let mut big = vec![0x40, 0x54, 0x00];
    big.extend_from_slice(&[9; 40 * 1024]);
    // QUIC takes it in over several flights (its congestion window), each driven in turn,
    // until it is all sent or the stream is stopped.
    for id in [14u64, 18, 22] {
        let mut sent = 0;
        for _ in 0..100 {
            match p.client.stream_send(id, &big[sent..], false) {
                Ok(n) => sent += n,
                Err(quiche::Error::Done) => {}
                Err(_) => break,
            }
            p.shuttle();
            assert!(wt.drive(&mut p.server).is_empty());
            if sent == big.len() {
                break;
            }
        }
    }
    // The first 40 KiB stream fits; the next two would pass 64 KiB: refused and counted.
    assert!(wt.peers.early_bytes() <= MAX_EARLY_BYTES);
    assert_eq!(refusals().early_bytes - before.early_bytes, 2);
    p.shuttle();
    let mut buf = [0u8; 8];
    for id in [18u64, 22] {
        assert_eq!(
            p.client.stream_send(id, b"more", false),
            Err(quiche::Error::StreamStopped(
                error_code::H3_REQUEST_REJECTED
            )),
            "stream {id}"
        );
    }
    // Accepted: the held bytes come first, then what QUIC still has.
    p.client
        .stream_send(0, &connect_request("\"moq-lite-04\""), false)
        .unwrap();
    p.shuttle();
    assert!(matches!(wt.drive(&mut p.server)[..], [Event::Connect(_)]));
    wt.accept(&mut p.server, Some("moq-lite-04"));
    p.client.stream_send(14, b"tail", true).unwrap();
    p.shuttle();
    let mut s = wt.streams(&mut p.server);
    assert_eq!(s.next_readable(), Some(4));
    assert_eq!(s.recv(4, &mut buf).unwrap(), (2, true));
    assert_eq!(&buf[..2], b"ab");
    let mut got = Vec::new();
    let mut fin = false;
    let mut chunk = [0u8; 4096];
    while !fin {
        match s.recv(14, &mut chunk) {
            Ok((n, f)) => {
                got.extend_from_slice(&chunk[..n]);
                fin = f;
            }
            Err(StreamError::Blocked) => match s.next_readable() {
                Some(_) => {}
                None => break,
            },
            Err(e) => panic!("{e:?}"),
        }
    }
    assert!(fin);
    assert_eq!(got.len(), 40 * 1024 + 4);
    assert_eq!(&got[got.len() - 4..], b"tail");
}

#[test]
fn incomplete_stream_headers_are_bounded_before_the_session() {
    use super::peers::MAX_PENDING_HEADERS;
    use super::refusals::refusals;
    let mut p = pair();
    let mut wt = WebTransportSession::new();
    client_control(&mut p);
    let before = refusals();
    // 80 uni streams each with the first byte of a two-byte stream type, and nothing more.
    let ids: Vec<u64> = (0..80u64).map(|i| 14 + 4 * i).collect();
    for &id in &ids {
        p.client.stream_send(id, &[0x40], false).unwrap();
    }
    p.shuttle();
    assert!(wt.drive(&mut p.server).is_empty());
    assert_eq!(wt.peers.pending_headers(), MAX_PENDING_HEADERS);
    assert_eq!(
        refusals().pending_headers - before.pending_headers,
        (80 - MAX_PENDING_HEADERS) as u64
    );
    assert!(!p.server.is_closed());
}

#[test]
fn a_second_qpack_encoder_stream_closes_the_connection() {
    use super::refusals::refusals;
    let mut p = pair();
    let mut wt = WebTransportSession::new();
    client_control(&mut p);
    // client_control opened an encoder stream (6); a decoder stream is fine, a second
    // encoder stream is not (RFC 9204 §4.2).
    p.client.stream_send(18, &[0x03], false).unwrap();
    p.shuttle();
    assert!(wt.drive(&mut p.server).is_empty());
    assert!(!p.server.is_closed());
    let before = refusals().qpack_streams;
    p.client.stream_send(22, &[0x02], false).unwrap();
    p.shuttle();
    wt.drive(&mut p.server);
    p.shuttle();
    assert_eq!(refusals().qpack_streams, before + 1);
    assert_eq!(
        p.client.peer_error().map(|e| e.error_code),
        Some(error_code::H3_STREAM_CREATION_ERROR)
    );
}
