//! The WebSocket upgrade (src/transport/websocket/handshake.rs): header validation,
//! `Sec-WebSocket-Accept` and the choice among offered QMux subprotocols. The input is text:
//! a first line `METHOD path`, then `name: value` lines, as the relay hands over a parsed head.
//! An accepted upgrade must name a subprotocol the client offered and answer 101.
#![no_main]

use libfuzzer_sys::fuzz_target;
use moq_relay::transport::websocket::{accept, Request};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut lines = text.split('\n');
    let first = lines.next().unwrap_or_default();
    let (method, path) = first.split_once(' ').unwrap_or((first, "/"));
    let headers: Vec<(&str, &str)> = lines.filter_map(|line| line.split_once(':')).collect();
    let request = Request {
        method,
        path,
        headers: &headers,
    };
    match accept(&request) {
        Ok(accepted) => {
            assert!(
                text.contains(accepted.subprotocol),
                "{accepted:?} was not offered"
            );
            assert!(accepted
                .response()
                .starts_with("HTTP/1.1 101 Switching Protocols\r\n"));
            assert_eq!(accepted.path, path);
        }
        Err(refused) => {
            assert!(matches!(refused.status(), 400 | 426));
            let _ = refused.response();
        }
    }
});
