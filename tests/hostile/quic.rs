//! Attacks on the QUIC endpoint: tiny and spoofed Initials, handshake floods, amplification.

use crate::common::Relay;
use std::net::UdpSocket;
use std::time::Duration;

/// A long-header packet of a version nobody speaks (0x?a?a?a?a is reserved to force Version
/// Negotiation), from connection id `scid` to `dcid`, padded to `len` bytes.
fn unknown_version_packet(dcid: [u8; 8], scid: [u8; 8], len: usize) -> Vec<u8> {
    let mut packet = vec![0xc0, 0x1a, 0x2a, 0x3a, 0x4a, 8];
    packet.extend_from_slice(&dcid);
    packet.push(8);
    packet.extend_from_slice(&scid);
    packet.resize(len, 0);
    packet
}

#[test]
fn a_datagram_too_small_to_start_a_connection_gets_no_reply() {
    let relay = Relay::start("");
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    // First the packets that must be dropped silently, then one a relay must answer. Both come
    // from one socket, so they reach the same shard and are handled in order: if any of the
    // small ones had been answered, that reply would arrive first.
    // 8 bytes with empty connection ids still parse as a long header; 3 bytes do not.
    socket
        .send_to(&[0xc0, 0x1a, 0x2a, 0x3a, 0x4a, 0, 0, 0], relay.addr)
        .unwrap();
    socket.send_to(&[0xc0, 0x00, 0x01], relay.addr).unwrap();
    for (i, len) in [64usize, 1199].into_iter().enumerate() {
        let packet = unknown_version_packet([i as u8; 8], [0xee; 8], len);
        socket.send_to(&packet, relay.addr).unwrap();
    }
    let answered = [0x42; 8];
    let packet = unknown_version_packet(answered, [0xee; 8], 1200);
    socket.send_to(&packet, relay.addr).unwrap();

    let mut reply = [0u8; 1500];
    let (len, _) = socket
        .recv_from(&mut reply)
        .expect("a Version Negotiation reply");
    let reply = &reply[..len];
    assert_eq!(&reply[1..5], &[0, 0, 0, 0], "Version Negotiation");
    // Its source connection id is the destination id of the packet it answers.
    let dcid_len = reply[5] as usize;
    let scid_at = 6 + dcid_len;
    assert_eq!(reply[scid_at] as usize, 8);
    assert_eq!(&reply[scid_at + 1..scid_at + 9], &answered);

    // The drops are counted: the shard that took them reports them when it stops.
    let (status, log) = relay.terminate(Duration::from_secs(10));
    assert!(status.is_some_and(|s| s.success()), "a clean stop: {log}");
    let counted = |field: &str| -> u64 {
        log.lines()
            .filter(|l| l.contains("shard stopped"))
            .filter_map(|l| l.split(&format!("{field}=")).nth(1))
            .filter_map(|v| v.split_whitespace().next()?.parse::<u64>().ok())
            .sum()
    };
    assert_eq!(counted("short_initials_dropped"), 3, "{log}");
    assert_eq!(counted("undecodable_dropped"), 1, "{log}");
}
