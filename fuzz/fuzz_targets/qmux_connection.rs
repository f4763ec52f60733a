//! A server-side QMux connection (src/transport/qmux/connection.rs) driven by a peer's
//! messages: stream ids, offsets, flow-control credit, resets, closes and pings meet the
//! state machine, not just the frame decoder. The first byte picks qmux-00 or qmux-01; then
//! each message is `length (2 bytes, big-endian) | bytes`. Between messages the relay's side
//! reads every readable stream, answers on bidi streams, and lets time pass.
#![no_main]

use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use moq_relay::transport::qmux::{Config, QmuxConnection, QmuxVersion, Role};
use moq_relay::transport::{StreamError, Streams};

fuzz_target!(|data: &[u8]| {
    let Some((&selector, mut rest)) = data.split_first() else {
        return;
    };
    let version = match selector & 1 {
        0 => QmuxVersion::Qmux00,
        _ => QmuxVersion::Qmux01,
    };
    let config = Config {
        version,
        // Small windows, so a short input reaches the limits.
        max_data: 4096,
        max_stream_data: 1024,
        max_streams_bidi: 4,
        max_streams_uni: 4,
        ..Config::default()
    };
    let mut now = Instant::now();
    let mut conn = QmuxConnection::new(Role::Server, config, now);
    let mut buf = [0u8; 700];
    while let [high, low, tail @ ..] = rest {
        let len = usize::from(u16::from_be_bytes([*high, *low])).min(tail.len());
        let (message, next) = tail.split_at(len);
        rest = next;
        let _ = conn.on_message(message, now);
        while let Some(id) = conn.next_readable() {
            match conn.recv(id, &mut buf) {
                Ok((read, _fin)) if read > 0 && conn.is_bidi(id) => {
                    let _ = conn.send(id, &buf[..read], false);
                }
                Ok(_) | Err(StreamError::Blocked) => {}
                Err(_) => conn.stop(id, 0),
            }
        }
        if let Ok(id) = conn.open_uni() {
            let _ = conn.send(id, b"relay", true);
        }
        while conn.poll_transmit().is_some() {}
        now += Duration::from_millis(u64::from(*low) * 40);
        conn.on_timeout(now);
        let _ = conn.take_ws_ping();
    }
});
