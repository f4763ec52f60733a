//! Glue between the WebSocket frame codec and a [`QmuxConnection`] on the server side:
//! bytes read from the upgraded TCP connection go in, bytes to write come out. WebSocket
//! Pings are answered, Close is echoed, and a qmux-00 keep-alive becomes a WebSocket Ping.
//!
//! A message may be no larger than the QMux connection can take at that point (a record;
//! before the peer's transport parameters, just those), so a peer that has not started its
//! session yet makes us buffer at most one record, not the WebSocket message cap.

use std::time::Instant;

use super::refusals::count_oversized;
use super::QmuxConnection;
use crate::transport::websocket::{encode, Decoder, Message, WsError};

/// Why the WebSocket side ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WsEnd {
    /// The peer sent a Close with this status.
    PeerClosed(Option<u16>),
    /// The peer's bytes broke RFC 6455 (or sent text).
    Protocol(WsError),
}

/// A server-side QMux-over-WebSocket connection, sans-IO.
#[derive(Debug)]
pub struct WsQmux {
    /// The QMux connection; use it through [`crate::transport::Streams`].
    pub conn: QmuxConnection,
    decoder: Decoder,
    /// The cap on client messages once the QMux connection sets none of its own.
    max_message: usize,
    out: Vec<u8>,
    end: Option<WsEnd>,
    close_sent: bool,
}

impl WsQmux {
    /// Wraps `conn`; client messages larger than `max_message` end the connection.
    pub fn new(conn: QmuxConnection, max_message: usize) -> Self {
        let mut ws = WsQmux {
            conn,
            decoder: Decoder::new(max_message),
            max_message,
            out: Vec::new(),
            end: None,
            close_sent: false,
        };
        ws.fit_decoder();
        ws
    }

    /// Caps the decoder at what the QMux connection can take now.
    fn fit_decoder(&mut self) {
        let cap = self
            .conn
            .max_incoming_message()
            .map_or(self.max_message, |m| m.min(self.max_message));
        if cap != self.decoder.max_message() {
            self.decoder.set_max_message(cap);
        }
    }

    /// How the WebSocket side ended, if it did.
    pub fn end(&self) -> Option<&WsEnd> {
        self.end.as_ref()
    }

    /// Whether everything is over and flushed: the caller may close the socket.
    pub fn is_finished(&self) -> bool {
        self.close_sent && self.out.is_empty()
    }

    /// Handles bytes read from the socket. QMux errors close the QMux connection (see
    /// [`QmuxConnection::close_reason`]); WebSocket errors are returned and end the socket.
    pub fn on_bytes(&mut self, mut data: &[u8], now: Instant) -> Result<(), WsError> {
        while !data.is_empty() && self.end.is_none() {
            let n = self.decoder.capacity().min(data.len());
            if n == 0 {
                return self.ws_fail(WsError::BufferFull);
            }
            if let Err(e) = self.decoder.push(&data[..n]) {
                return self.ws_fail(e);
            }
            data = &data[n..];
            loop {
                match self.decoder.next() {
                    Ok(None) => break,
                    Ok(Some(Message::Binary(payload))) => {
                        // A QMux error is recorded in the connection, which queues its close.
                        let _ = self.conn.on_message(&payload, now);
                        self.fit_decoder();
                    }
                    Ok(Some(Message::Ping(payload))) => {
                        encode(&Message::Pong(payload), &mut self.out);
                    }
                    Ok(Some(Message::Pong(_))) => {}
                    Ok(Some(Message::Close(code, _))) => {
                        self.end = Some(WsEnd::PeerClosed(code));
                        if !self.close_sent {
                            self.close_sent = true;
                            encode(&Message::Close(code, String::new()), &mut self.out);
                        }
                        return Ok(());
                    }
                    Err(e) => return self.ws_fail(e),
                }
            }
        }
        Ok(())
    }

    fn ws_fail(&mut self, e: WsError) -> Result<(), WsError> {
        if matches!(e, WsError::TooLarge | WsError::BufferFull) {
            count_oversized(self.conn.is_established());
        }
        self.end = Some(WsEnd::Protocol(e));
        if !self.close_sent {
            self.close_sent = true;
            encode(
                &Message::Close(Some(e.close_code()), String::new()),
                &mut self.out,
            );
        }
        Err(e)
    }

    /// Runs the QMux timers; a qmux-00 keep-alive becomes a WebSocket Ping.
    pub fn on_timeout(&mut self, now: Instant) {
        self.conn.on_timeout(now);
        if self.conn.take_ws_ping() && !self.close_sent {
            encode(&Message::Ping(Vec::new()), &mut self.out);
        }
    }

    /// Bytes to write to the socket, if any.
    pub fn poll_bytes(&mut self) -> Option<Vec<u8>> {
        if !self.close_sent {
            while let Some(payload) = self.conn.poll_transmit() {
                encode(&Message::Binary(payload), &mut self.out);
            }
            if self.conn.is_closed() {
                self.close_sent = true;
                encode(&Message::Close(Some(1000), String::new()), &mut self.out);
            }
        }
        if self.out.is_empty() {
            None
        } else {
            Some(std::mem::take(&mut self.out))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::qmux::{refusals, Config, Role};
    use crate::transport::websocket::{encode_masked, QmuxVersion};
    use crate::transport::Streams;

    const MASK: [u8; 4] = [1, 2, 3, 4];

    /// Decodes unmasked server frames.
    fn server_messages(bytes: &[u8]) -> Vec<Message> {
        let mut d = Decoder::client(1 << 20);
        d.push(bytes).unwrap();
        let mut out = Vec::new();
        while let Some(m) = d.next().unwrap() {
            out.push(m);
        }
        out
    }

    #[test]
    fn stream_through_websocket_frames() {
        let now = Instant::now();
        let cfg = Config {
            version: QmuxVersion::Qmux00,
            ..Config::default()
        };
        let mut server = WsQmux::new(QmuxConnection::new(Role::Server, cfg.clone(), now), 1 << 16);
        let mut client = QmuxConnection::new(Role::Client, cfg, now);

        let mut wire = Vec::new();
        while let Some(p) = client.poll_transmit() {
            encode_masked(&Message::Binary(p), MASK, &mut wire);
        }
        encode_masked(&Message::Ping(b"hi".to_vec()), MASK, &mut wire);
        // Byte at a time, as TCP might deliver it.
        for b in &wire {
            server.on_bytes(&[*b], now).unwrap();
        }
        let out = server_messages(&server.poll_bytes().unwrap());
        assert_eq!(out.first(), Some(&Message::Pong(b"hi".to_vec())));
        for m in &out[1..] {
            let Message::Binary(p) = m else {
                panic!("{m:?}")
            };
            client.on_message(p, now).unwrap();
        }
        assert!(client.is_established() && server.conn.is_established());

        let id = client.open_uni().unwrap();
        client.send(id, b"group", true).unwrap();
        let mut wire = Vec::new();
        while let Some(p) = client.poll_transmit() {
            encode_masked(&Message::Binary(p), MASK, &mut wire);
        }
        server.on_bytes(&wire, now).unwrap();
        assert_eq!(server.conn.next_readable(), Some(id));
        let mut buf = [0; 16];
        assert_eq!(server.conn.recv(id, &mut buf), Ok((5, true)));

        server.conn.close(0, "bye");
        let out = server_messages(&server.poll_bytes().unwrap());
        assert_eq!(out.last(), Some(&Message::Close(Some(1000), String::new())));
        assert!(server.is_finished());
    }

    #[test]
    fn before_its_transport_parameters_a_peer_makes_us_hold_one_record_at_most() {
        let now = Instant::now();
        for version in [QmuxVersion::Qmux00, QmuxVersion::Qmux01] {
            let cfg = Config {
                version,
                ..Config::default()
            };
            let record = cfg.max_record_size as usize;
            let conn = QmuxConnection::new(Role::Server, cfg, now);
            let mut server = WsQmux::new(conn, 1 << 20);
            // The header of a 1 MiB binary message, then its first bytes: refused at the
            // header (close 1009), with nothing of it buffered.
            let mut wire = vec![0x82, 0xff];
            wire.extend_from_slice(&(1u64 << 20).to_be_bytes());
            wire.extend_from_slice(&MASK);
            wire.extend_from_slice(&[0; 1000]);
            let before = refusals::refusals().oversized_before_session;
            assert_eq!(server.on_bytes(&wire, now), Err(WsError::TooLarge));
            assert!(server.decoder.capacity() <= record + 14);
            let out = server_messages(&server.poll_bytes().unwrap());
            assert_eq!(out, vec![Message::Close(Some(1009), String::new())]);
            let after = refusals::refusals().oversized_before_session;
            assert_eq!(after, before + 1, "{version:?}");
        }
    }

    #[test]
    fn qmux_00_takes_large_messages_once_the_peer_started() {
        let now = Instant::now();
        let cfg = Config {
            version: QmuxVersion::Qmux00,
            ..Config::default()
        };
        let mut server = WsQmux::new(QmuxConnection::new(Role::Server, cfg.clone(), now), 1 << 20);
        let mut client = QmuxConnection::new(Role::Client, cfg, now);
        let mut wire = Vec::new();
        while let Some(p) = client.poll_transmit() {
            encode_masked(&Message::Binary(p), MASK, &mut wire);
        }
        server.on_bytes(&wire, now).unwrap();
        assert!(server.conn.is_established());
        // A 100 KiB STREAM frame in one message, over a record's size (qmux-00 has no
        // records: a message is one frame of any size).
        let id = 2;
        let mut payload = Vec::new();
        crate::transport::qmux::Frame::Stream {
            id,
            offset: Some(0),
            data: vec![5; 100 * 1024],
            fin: true,
        }
        .encode(&mut payload);
        let mut wire = Vec::new();
        encode_masked(&Message::Binary(payload), MASK, &mut wire);
        server.on_bytes(&wire, now).unwrap();
        assert_eq!(server.conn.next_readable(), Some(id));
    }

    #[test]
    fn text_and_close() {
        let now = Instant::now();
        let conn = QmuxConnection::new(Role::Server, Config::default(), now);
        let mut server = WsQmux::new(conn, 1024);
        let text = [0x81, 0x80, 1, 2, 3, 4];
        assert_eq!(server.on_bytes(&text, now), Err(WsError::Text));
        let out = server_messages(&server.poll_bytes().unwrap());
        assert_eq!(out, vec![Message::Close(Some(1003), String::new())]);
        assert!(server.is_finished());

        let conn = QmuxConnection::new(Role::Server, Config::default(), now);
        let mut server = WsQmux::new(conn, 1024);
        let mut wire = Vec::new();
        encode_masked(&Message::Close(Some(1000), String::new()), MASK, &mut wire);
        server.on_bytes(&wire, now).unwrap();
        assert_eq!(server.end(), Some(&WsEnd::PeerClosed(Some(1000))));
        let out = server_messages(&server.poll_bytes().unwrap());
        assert_eq!(out, vec![Message::Close(Some(1000), String::new())]);
    }
}
