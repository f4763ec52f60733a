//! The HTTP endpoints of a running relay (`--shards 2`): certificate fingerprint, announced
//! broadcasts, fetch, health, and refusal of bad or slow clients while others are served.

mod common;

use common::http::{exchange, get};
use common::Relay;
use moq_bench::client::{Event, MoqClient};
use moq_relay::wire::Version;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(10);

fn publisher(relay: &Relay, broadcast: &str) -> MoqClient {
    let mut publisher = MoqClient::connect(relay.addr, Version::Lite05, "/anon").unwrap();
    publisher.publish(broadcast);
    assert!(publisher.wait_for(WAIT, |e| e
        .iter()
        .any(|e| matches!(e, Event::AnnounceRequested { .. }))));
    publisher
}

#[test]
fn the_fingerprint_is_the_certificate_quic_presents() {
    let relay = Relay::start("");
    let (status, body) = get(relay.http, "/certificate.sha256");
    assert_eq!(status, 200);
    assert_eq!(body.len(), 64, "64 hex characters, no newline: {body:?}");
    assert!(body
        .chars()
        .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
    let client = MoqClient::connect(relay.addr, Version::Lite05, "/anon").unwrap();
    let der = client
        .quic
        .conn
        .peer_cert()
        .expect("the relay presents a certificate");
    let digest = ring::digest::digest(&ring::digest::SHA256, der);
    let hex: String = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(body, hex);
    let head = exchange(
        relay.http,
        b"GET /certificate.sha256 HTTP/1.1\r\nConnection: close\r\n\r\n",
    );
    assert!(head.contains("Access-Control-Allow-Origin: *"));
    assert_eq!(get(relay.http, "/health"), (200, "ok\n".to_string()));
    assert_eq!(get(relay.http, "/nothing/here").0, 404);
}

#[test]
fn announced_lists_live_broadcasts_relative_to_the_prefix() {
    let relay = Relay::start("");
    let mut publisher = publisher(&relay, "room/one");
    publisher.publish("room/two");
    let deadline = Instant::now() + WAIT;
    let mut listed = String::new();
    while Instant::now() < deadline {
        let _ = publisher.poll(Duration::from_millis(20));
        listed = get(relay.http, "/announced/anon/room").1;
        if listed == "one\ntwo" {
            break;
        }
    }
    assert_eq!(
        listed, "one\ntwo",
        "one per line, relative, no trailing newline"
    );
    assert_eq!(get(relay.http, "/announced/anon").1, "room/one\nroom/two");
    assert_eq!(
        get(relay.http, "/announced").1,
        "anon/room/one\nanon/room/two"
    );
    assert_eq!(
        get(relay.http, "/announced/secret").0,
        401,
        "not public, no token"
    );
    publisher.unpublish("room/one");
    let deadline = Instant::now() + WAIT;
    while Instant::now() < deadline && listed != "two" {
        let _ = publisher.poll(Duration::from_millis(20));
        listed = get(relay.http, "/announced/anon/room").1;
    }
    assert_eq!(listed, "two", "an ended broadcast is no longer listed");
}

#[test]
fn fetch_returns_exactly_the_payloads_a_subscriber_received() {
    let relay = Relay::start("");
    let mut publisher = publisher(&relay, "feed");
    let mut viewer = MoqClient::connect(relay.addr, Version::Lite05, "/anon").unwrap();
    // Subscribe once the broadcast is announced to this viewer (its shard may learn of it
    // after the publisher's shard; an earlier SUBSCRIBE is refused as unroutable).
    viewer.request_announces("");
    let deadline = Instant::now() + WAIT;
    while !viewer
        .events
        .iter()
        .any(|e| matches!(e, Event::Announced { suffix, active: true, .. } if suffix == "feed"))
        && Instant::now() < deadline
    {
        let _ = publisher.poll(Duration::from_millis(1));
        let _ = viewer.poll(Duration::from_millis(5));
    }
    viewer.subscribe("feed", "t");
    let deadline = Instant::now() + WAIT;
    while !publisher
        .events
        .iter()
        .any(|e| matches!(e, Event::Subscribed { .. }))
        && Instant::now() < deadline
    {
        let _ = publisher.poll(Duration::from_millis(5));
        let _ = viewer.poll(Duration::from_millis(1));
    }
    publisher.send_group("feed", "t", 4, &[b"alpha-", b"beta-", b"gamma"]);
    publisher.send_group("feed", "t", 5, &[b"latest"]);
    let deadline = Instant::now() + WAIT;
    // Wait for the group compared below: group 4 often completes first, and reading frames
    // before group 5 has arrived compared the fetch with nothing (1 run in ~10 failed so).
    let done = |e: &[Event]| {
        e.iter()
            .any(|e| matches!(e, Event::GroupDone { group: 5, .. }))
    };
    while !done(&viewer.events) && Instant::now() < deadline {
        let _ = publisher.poll(Duration::from_millis(2));
        let _ = viewer.poll(Duration::from_millis(5));
    }
    let received: String = viewer
        .events
        .iter()
        .filter_map(|e| match e {
            Event::Frame {
                group: 5, payload, ..
            } => Some(String::from_utf8_lossy(payload).into_owned()),
            _ => None,
        })
        .collect();
    assert_eq!(
        get(relay.http, "/fetch/anon/feed/t"),
        (200, received.clone()),
        "latest group"
    );
    assert_eq!(received, "latest");
    assert_eq!(
        get(relay.http, "/fetch/anon/feed/t?group=4"),
        (200, "alpha-beta-gamma".into())
    );
    assert_eq!(
        get(relay.http, "/fetch/anon/feed/t?group=1").0,
        404,
        "a group older than the cache"
    );
    assert_eq!(get(relay.http, "/fetch/anon/feed/t?group=x").0, 400);
    assert_eq!(get(relay.http, "/fetch/anon").0, 400, "no track segment");
    assert_eq!(get(relay.http, "/fetch/secret/feed/t").0, 401);
}

#[test]
fn malformed_oversized_and_slow_requests_are_refused_while_others_are_served() {
    let relay = Relay::start("");
    let addr = relay.http;
    // A slow client that never finishes its head holds nothing up.
    let mut slow = TcpStream::connect(addr).unwrap();
    slow.write_all(b"GET /health HTTP/1.1\r\nHost: slo")
        .unwrap();
    let idle = TcpStream::connect(addr).unwrap();

    assert!(exchange(addr, b"NONSENSE\r\n\r\n").starts_with("HTTP/1.1 400"));
    assert!(exchange(addr, b"GET / SPDY/9\r\n\r\n").starts_with("HTTP/1.1 400"));
    let mut oversized = b"GET /health HTTP/1.1\r\nX-Big: ".to_vec();
    oversized.extend(std::iter::repeat_n(b'a', 64 * 1024));
    assert!(exchange(addr, &oversized).starts_with("HTTP/1.1 431"));
    assert!(exchange(
        addr,
        b"POST /health HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc"
    )
    .starts_with("HTTP/1.1 501"));
    assert_eq!(
        get(addr, "/health"),
        (200, "ok\n".into()),
        "well-behaved clients are served meanwhile"
    );

    // Keep-alive: two requests on one connection.
    let two = exchange(
        addr,
        b"GET /health HTTP/1.1\r\n\r\nGET /health HTTP/1.1\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(two.matches("HTTP/1.1 200 OK").count(), 2);

    // The slow and the idle client are cut off after the head timeout.
    slow.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let started = Instant::now();
    let mut out = Vec::new();
    let _ = slow.read_to_end(&mut out);
    assert!(
        String::from_utf8_lossy(&out).starts_with("HTTP/1.1 408"),
        "{:?}",
        String::from_utf8_lossy(&out)
    );
    assert!(started.elapsed() < Duration::from_secs(15));
    let mut idle = idle;
    idle.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut out = Vec::new();
    assert_eq!(
        idle.read_to_end(&mut out).unwrap_or(0),
        0,
        "an idle connection is closed"
    );
}
