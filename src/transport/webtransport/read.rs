//! Reading raw quiche streams for the HTTP/3 layer: a varint byte by byte (so nothing past it
//! is consumed before we know whose the stream is), or whatever is available up to a bound.

use super::frame::MAX_FRAME_PAYLOAD;
use super::H3Error;
use crate::transport::quic::QuicConnection;

/// The most bytes we buffer on the peer's control or CONNECT stream.
pub(super) const MAX_BUFFER: usize = MAX_FRAME_PAYLOAD as usize + 16;

pub(super) enum Varint {
    Done(u64),
    Pending,
    Ended,
}

/// Reads one varint byte by byte into `part`, so no byte past it is consumed.
pub(super) fn read_varint(conn: &mut QuicConnection, id: u64, part: &mut Vec<u8>) -> Varint {
    loop {
        let want = match part.first() {
            None => 1,
            Some(first) => 1usize << (first >> 6),
        };
        if part.len() == want && !part.is_empty() {
            let mut pos = 0;
            return match super::varint::read(part, &mut pos) {
                Ok(v) => Varint::Done(v),
                Err(_) => Varint::Ended,
            };
        }
        let mut byte = [0u8; 1];
        match conn.stream_recv(id, &mut byte) {
            Ok((1, _)) => part.push(byte[0]),
            Ok((_, true)) => return Varint::Ended,
            Ok(_) | Err(quiche::Error::Done) => {
                return if conn.stream_finished(id) {
                    Varint::Ended
                } else {
                    Varint::Pending
                }
            }
            Err(_) => return Varint::Ended,
        }
    }
}

/// Reads whatever is available into `buf`, up to `MAX_BUFFER`; returns whether the stream
/// ended (FIN or reset), or an error if the bound is hit.
pub(super) fn read_into(
    conn: &mut QuicConnection,
    id: u64,
    buf: &mut Vec<u8>,
) -> Result<bool, H3Error> {
    let mut chunk = [0u8; 4096];
    loop {
        let room = MAX_BUFFER.saturating_sub(buf.len()).min(chunk.len());
        if room == 0 {
            return Err(H3Error::TooLarge("stream buffer"));
        }
        match conn.stream_recv(id, &mut chunk[..room]) {
            Ok((n, fin)) => {
                buf.extend_from_slice(&chunk[..n]);
                if fin {
                    return Ok(true);
                }
            }
            Err(quiche::Error::Done) => return Ok(conn.stream_finished(id)),
            Err(_) => return Ok(true),
        }
    }
}
