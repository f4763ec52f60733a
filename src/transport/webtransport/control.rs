//! The HTTP/3 control streams: ours (its type and our SETTINGS, opened once), and the peer's,
//! whose first frame must be SETTINGS; later frames we do not act on are skipped, however
//! large, without buffering them (RFC 9114 §6.2.1, §7.2.4).

use super::error_code;
use super::frame::{self, MAX_FRAME_PAYLOAD};
use super::peers::Peer;
use super::read::{read_into, MAX_BUFFER};
use super::settings::{self, Settings};
use super::state::WebTransportSession;
use super::H3Error;
use crate::transport::quic::QuicConnection;

impl WebTransportSession {
    /// Queues our control stream on our first uni stream, the first time only.
    pub(super) fn open_control(&mut self) {
        if self.control_opened {
            return;
        }
        self.control_opened = true;
        let id = self.next_uni;
        self.next_uni += 4;
        let control = if self.is_server() {
            settings::server_control_stream()
        } else {
            settings::client_control_stream()
        };
        self.outbox.queue(id, control, false);
    }

    /// Reads the peer's control stream as far as it goes; `None` means the connection failed.
    pub(super) fn control_stream(
        &mut self,
        conn: &mut QuicConnection,
        id: u64,
        mut buf: Vec<u8>,
        mut settings: bool,
        mut skip: u64,
    ) -> Option<Peer> {
        // Read and parse in turns, so skipped frames never fill the buffer.
        let ended = loop {
            let read = read_into(conn, id, &mut buf);
            settings = self.control_frames(conn, &mut buf, settings, &mut skip)?;
            match read {
                Ok(ended) => break ended,
                Err(_) if buf.len() < MAX_BUFFER => continue,
                Err(_) => {
                    self.fail(
                        conn,
                        error_code::H3_FRAME_UNEXPECTED,
                        "control frame too large",
                    );
                    return None;
                }
            }
        };
        if ended {
            self.fail(
                conn,
                error_code::H3_CLOSED_CRITICAL_STREAM,
                "control stream closed",
            );
            return None;
        }
        Some(Peer::Control {
            buf,
            settings,
            skip,
        })
    }

    /// Parses buffered control frames; `None` means the connection failed.
    fn control_frames(
        &mut self,
        conn: &mut QuicConnection,
        buf: &mut Vec<u8>,
        mut settings: bool,
        skip: &mut u64,
    ) -> Option<bool> {
        loop {
            if *skip > 0 {
                let n = (*skip).min(buf.len() as u64);
                buf.drain(..n as usize);
                *skip -= n;
                if *skip > 0 {
                    return Some(settings);
                }
            }
            // Frames we ignore may be of any size: drop them without buffering.
            if let Ok((h, used)) = frame::FrameHeader::decode(buf, u64::MAX) {
                let known = matches!(
                    h.ty,
                    frame::DATA | frame::HEADERS | frame::SETTINGS | frame::GOAWAY
                );
                if settings && !known && h.len > MAX_FRAME_PAYLOAD {
                    buf.drain(..used);
                    *skip = h.len;
                    continue;
                }
            }
            let (ty, payload, used) = match frame::decode_frame(buf, MAX_FRAME_PAYLOAD) {
                Ok(f) => f,
                Err(H3Error::Short) => return Some(settings),
                Err(_) => {
                    self.fail(conn, error_code::H3_FRAME_UNEXPECTED, "bad control frame");
                    return None;
                }
            };
            match (ty, settings) {
                (frame::SETTINGS, false) => match Settings::decode(payload) {
                    Ok(s) => {
                        settings = true;
                        self.peer_settings = Some(s);
                    }
                    Err(_) => {
                        self.fail(conn, error_code::H3_SETTINGS_ERROR, "bad SETTINGS");
                        return None;
                    }
                },
                (_, false) => {
                    self.fail(conn, error_code::H3_MISSING_SETTINGS, "SETTINGS not first");
                    return None;
                }
                (frame::SETTINGS | frame::DATA | frame::HEADERS, true) => {
                    self.fail(
                        conn,
                        error_code::H3_FRAME_UNEXPECTED,
                        "unexpected control frame",
                    );
                    return None;
                }
                // GOAWAY, MAX_PUSH_ID, CANCEL_PUSH, GREASE and unknown frames: skipped.
                _ => {}
            }
            buf.drain(..used);
        }
    }
}
