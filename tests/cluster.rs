//! Relays linked to each other, as separate processes on loopback with real TLS.

mod common;

use common::http;
use common::Relay;
use moq_bench::client::{Event, MoqClient};
use moq_relay::wire::Version;
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(15);

/// Polls both clients until `done` holds for `viewer`'s events, or the wait is over.
fn poll_until(
    viewer: &mut MoqClient,
    publisher: &mut MoqClient,
    done: impl Fn(&[Event]) -> bool,
) -> bool {
    let deadline = Instant::now() + WAIT;
    while Instant::now() < deadline {
        if done(&viewer.events) {
            return true;
        }
        let _ = publisher.poll(Duration::from_millis(1));
        let _ = viewer.poll(Duration::from_millis(5));
    }
    done(&viewer.events)
}

#[test]
fn a_relay_dials_its_peer_over_raw_quic_and_serves_the_peers_broadcasts() {
    let far = Relay::start("");
    let (status, fingerprint) = http::get(far.http, "/certificate.sha256");
    assert_eq!(status, 200);
    let mut publisher = MoqClient::connect(far.addr, Version::Lite05, "/anon").unwrap();
    publisher.publish("peered");

    // The near relay dials the far one from one of its shards, pinning its certificate.
    let peer = format!(
        "moqt://127.0.0.1:{}/?fingerprint={}",
        far.addr.port(),
        fingerprint.trim()
    );
    let near = Relay::start_with("", &["--cluster-peer", &peer]);
    let mut viewer = MoqClient::connect(near.addr, Version::Lite05, "/anon").unwrap();
    viewer.request_announces("");
    let announced = |e: &[Event]| {
        e.iter().any(
            |e| matches!(e, Event::Announced { suffix, active: true, .. } if suffix == "peered"),
        )
    };
    assert!(
        poll_until(&mut viewer, &mut publisher, announced),
        "the far relay's broadcast is announced on the near one"
    );

    viewer.subscribe("peered", "video");
    let subscribed = |e: &[Event]| e.iter().any(|e| matches!(e, Event::Subscribed { .. }));
    assert!(
        poll_until(&mut publisher, &mut viewer, subscribed),
        "the subscription reaches the publisher through the link"
    );
    publisher.send_group("peered", "video", 0, &[b"across", b"relays"]);
    let delivered = |e: &[Event]| {
        e.iter()
            .any(|e| matches!(e, Event::GroupDone { group: 0, .. }))
    };
    assert!(poll_until(&mut viewer, &mut publisher, delivered));
    let frames: Vec<_> = viewer
        .events
        .iter()
        .filter_map(|e| match e {
            Event::Frame { payload, .. } => Some(payload.to_vec()),
            _ => None,
        })
        .collect();
    assert_eq!(frames, [b"across".to_vec(), b"relays".to_vec()]);
}

#[test]
fn a_peer_with_another_certificate_than_the_pinned_one_is_refused() {
    let far = Relay::start("");
    let mut publisher = MoqClient::connect(far.addr, Version::Lite05, "/anon").unwrap();
    publisher.publish("pinned");
    let peer = format!(
        "moqt://127.0.0.1:{}/?fingerprint={}",
        far.addr.port(),
        "00".repeat(32)
    );
    let near = Relay::start_with("", &["--cluster-peer", &peer]);
    let mut viewer = MoqClient::connect(near.addr, Version::Lite05, "/anon").unwrap();
    viewer.request_announces("");
    // Nothing of the far relay may appear: the handshake fails on the pin. The window is
    // what a working link needs to announce many times over.
    let announced = |e: &[Event]| e.iter().any(|e| matches!(e, Event::Announced { .. }));
    let deadline = Instant::now() + Duration::from_secs(3);
    while Instant::now() < deadline {
        let _ = publisher.poll(Duration::from_millis(1));
        let _ = viewer.poll(Duration::from_millis(5));
    }
    assert!(!announced(&viewer.events));
}
