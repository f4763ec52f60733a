//! The RFC 6455 frame codec: decodes masked client frames (reassembling fragmented binary
//! messages up to a size cap) and encodes unmasked server frames. Text messages are a
//! protocol error for QMux (PROTOCOL.md §7.3).
//!
//! The decoder reads frames from the front of its buffer by moving a cursor; the consumed
//! bytes are dropped once per [`Decoder::push`], not once per frame, so a read full of small
//! frames costs no memmove per frame (each byte moves at most once: only an incomplete frame
//! is ever left at the front).

/// A whole WebSocket message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    Binary(Vec<u8>),
    Ping(Vec<u8>),
    Pong(Vec<u8>),
    /// A close with an optional status code and reason.
    Close(Option<u16>, String),
}

/// A decoding failure; the connection should be closed (status 1002, or 1009 for size).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WsError {
    /// A client frame without the mask bit.
    Unmasked,
    /// A masked frame where we expect unmasked ones (client-role decoding).
    Masked,
    /// RSV bits set (no extensions are negotiated).
    ReservedBits,
    /// An opcode RFC 6455 reserves.
    BadOpcode(u8),
    /// A text message; QMux only uses binary.
    Text,
    /// A message larger than the cap.
    TooLarge,
    /// A fragmented control frame or one over 125 bytes.
    BadControl,
    /// A continuation without a message in progress, or a new message while one is.
    BadContinuation,
    /// A close payload of one byte, or a reason that is not UTF-8.
    BadClose,
    /// A 64-bit length with the top bit set.
    BadLength,
    /// More input was pushed than the decoder buffers.
    BufferFull,
}

impl std::fmt::Display for WsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "websocket protocol error: {self:?}")
    }
}

impl std::error::Error for WsError {}

impl WsError {
    /// The close status to send: 1009 (too big) for size errors, else 1002, 1003 for text.
    pub fn close_code(&self) -> u16 {
        match self {
            WsError::TooLarge | WsError::BufferFull => 1009,
            WsError::Text => 1003,
            _ => 1002,
        }
    }
}

const OP_CONT: u8 = 0x0;
const OP_TEXT: u8 = 0x1;
const OP_BINARY: u8 = 0x2;
const OP_CLOSE: u8 = 0x8;
const OP_PING: u8 = 0x9;
const OP_PONG: u8 = 0xa;

/// The longest frame header: 2 + 8 (length) + 4 (mask).
const MAX_HEADER: usize = 14;

/// One parsed frame: FIN, opcode, unmasked payload, and the bytes it took.
struct RawFrame {
    fin: bool,
    opcode: u8,
    payload: Vec<u8>,
    used: usize,
}

/// Incremental decoder over the bytes of one direction of a connection.
#[derive(Debug)]
pub struct Decoder {
    buf: Vec<u8>,
    /// Bytes at the front of `buf` already decoded, dropped at the next push.
    start: usize,
    partial: Option<Vec<u8>>,
    max_message: usize,
    expect_masked: bool,
    /// Bytes moved to the front of `buf` so far: the decoder's copying work.
    moved: u64,
}

impl Decoder {
    /// A server-side decoder (client frames must be masked) capping messages at `max_message`.
    pub fn new(max_message: usize) -> Self {
        Decoder {
            buf: Vec::new(),
            start: 0,
            partial: None,
            max_message,
            expect_masked: true,
            moved: 0,
        }
    }

    /// A client-side decoder: server frames must be unmasked.
    pub fn client(max_message: usize) -> Self {
        Decoder {
            expect_masked: false,
            ..Decoder::new(max_message)
        }
    }

    /// Changes the cap on messages (and so on what the decoder buffers) from here on.
    pub fn set_max_message(&mut self, max_message: usize) {
        self.max_message = max_message;
    }

    /// The cap on messages.
    pub fn max_message(&self) -> usize {
        self.max_message
    }

    /// How many more bytes [`push`](Self::push) accepts right now.
    pub fn capacity(&self) -> usize {
        (self.max_message + MAX_HEADER).saturating_sub(self.buf.len() - self.start)
    }

    /// Buffers input; fails without buffering if it exceeds [`capacity`](Self::capacity).
    /// Call [`next`](Self::next) until it returns `None` between pushes.
    pub fn push(&mut self, data: &[u8]) -> Result<(), WsError> {
        if data.len() > self.capacity() {
            return Err(WsError::BufferFull);
        }
        if self.start > 0 {
            self.moved += (self.buf.len() - self.start) as u64;
            self.buf.drain(..self.start);
            self.start = 0;
        }
        self.buf.extend_from_slice(data);
        Ok(())
    }

    /// Bytes moved inside the buffer so far (at most one incomplete frame per push).
    pub fn bytes_moved(&self) -> u64 {
        self.moved
    }

    /// The next complete message, `None` if more input is needed.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Result<Option<Message>, WsError> {
        loop {
            let Some(RawFrame {
                fin,
                opcode,
                payload,
                used,
            }) = self.parse_frame()?
            else {
                return Ok(None);
            };
            self.start += used;
            match opcode {
                OP_CLOSE | OP_PING | OP_PONG => {
                    if !fin {
                        return Err(WsError::BadControl);
                    }
                    return control(opcode, payload).map(Some);
                }
                OP_TEXT => return Err(WsError::Text),
                OP_BINARY => {
                    if self.partial.is_some() {
                        return Err(WsError::BadContinuation);
                    }
                    if fin {
                        return Ok(Some(Message::Binary(payload)));
                    }
                    self.partial = Some(payload);
                }
                OP_CONT => {
                    let Some(partial) = self.partial.as_mut() else {
                        return Err(WsError::BadContinuation);
                    };
                    if partial.len() + payload.len() > self.max_message {
                        return Err(WsError::TooLarge);
                    }
                    partial.extend_from_slice(&payload);
                    if fin {
                        return Ok(self.partial.take().map(Message::Binary));
                    }
                }
                other => return Err(WsError::BadOpcode(other)),
            }
        }
    }

    /// Parses one frame at the front of the buffer.
    fn parse_frame(&self) -> Result<Option<RawFrame>, WsError> {
        let b = &self.buf[self.start..];
        if b.len() < 2 {
            return Ok(None);
        }
        let fin = b[0] & 0x80 != 0;
        if b[0] & 0x70 != 0 {
            return Err(WsError::ReservedBits);
        }
        let opcode = b[0] & 0x0f;
        if !matches!(
            opcode,
            OP_CONT | OP_TEXT | OP_BINARY | OP_CLOSE | OP_PING | OP_PONG
        ) {
            return Err(WsError::BadOpcode(opcode));
        }
        let masked = b[1] & 0x80 != 0;
        if masked != self.expect_masked {
            return Err(if masked {
                WsError::Masked
            } else {
                WsError::Unmasked
            });
        }
        let (len, mut at) = match b[1] & 0x7f {
            126 => match b.get(2..4) {
                Some(s) => (u64::from(u16::from_be_bytes([s[0], s[1]])), 4),
                None => return Ok(None),
            },
            127 => match b.get(2..10) {
                Some(s) => {
                    let mut a = [0u8; 8];
                    a.copy_from_slice(s);
                    let len = u64::from_be_bytes(a);
                    if len >> 63 != 0 {
                        return Err(WsError::BadLength);
                    }
                    (len, 10)
                }
                None => return Ok(None),
            },
            n => (u64::from(n), 2),
        };
        if opcode >= OP_CLOSE && len > 125 {
            return Err(WsError::BadControl);
        }
        if len > self.max_message as u64 {
            return Err(WsError::TooLarge);
        }
        let len = len as usize;
        let mask = if masked {
            let Some(m) = b.get(at..at + 4) else {
                return Ok(None);
            };
            at += 4;
            Some([m[0], m[1], m[2], m[3]])
        } else {
            None
        };
        let Some(data) = b.get(at..at + len) else {
            return Ok(None);
        };
        let mut payload = data.to_vec();
        if let Some(mask) = mask {
            apply_mask(&mut payload, mask);
        }
        Ok(Some(RawFrame {
            fin,
            opcode,
            payload,
            used: at + len,
        }))
    }
}

fn control(opcode: u8, payload: Vec<u8>) -> Result<Message, WsError> {
    Ok(match opcode {
        OP_PING => Message::Ping(payload),
        OP_PONG => Message::Pong(payload),
        _ => match payload.len() {
            0 => Message::Close(None, String::new()),
            1 => return Err(WsError::BadClose),
            _ => {
                let code = u16::from_be_bytes([payload[0], payload[1]]);
                let reason =
                    String::from_utf8(payload[2..].to_vec()).map_err(|_| WsError::BadClose)?;
                Message::Close(Some(code), reason)
            }
        },
    })
}

fn apply_mask(data: &mut [u8], mask: [u8; 4]) {
    for (i, byte) in data.iter_mut().enumerate() {
        *byte ^= mask[i % 4];
    }
}

fn opcode_and_payload(msg: &Message) -> (u8, Vec<u8>) {
    match msg {
        Message::Binary(d) => (OP_BINARY, d.clone()),
        Message::Ping(d) => (OP_PING, d[..d.len().min(125)].to_vec()),
        Message::Pong(d) => (OP_PONG, d[..d.len().min(125)].to_vec()),
        Message::Close(code, reason) => {
            let mut p = Vec::new();
            if let Some(code) = code {
                p.extend_from_slice(&code.to_be_bytes());
                // Truncate the reason on a char boundary so the payload stays ≤ 125.
                let mut end = reason.len().min(123);
                while !reason.is_char_boundary(end) {
                    end -= 1;
                }
                p.extend_from_slice(&reason.as_bytes()[..end]);
            }
            (OP_CLOSE, p)
        }
    }
}

fn write_frame(opcode: u8, payload: &[u8], mask: Option<[u8; 4]>, out: &mut Vec<u8>) {
    out.push(0x80 | opcode);
    let mask_bit = if mask.is_some() { 0x80 } else { 0 };
    let len = payload.len();
    if len < 126 {
        out.push(mask_bit | len as u8);
    } else if len <= 0xffff {
        out.push(mask_bit | 126);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(mask_bit | 127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
    match mask {
        Some(mask) => {
            out.extend_from_slice(&mask);
            let start = out.len();
            out.extend_from_slice(payload);
            apply_mask(&mut out[start..], mask);
        }
        None => out.extend_from_slice(payload),
    }
}

/// Appends `msg` as one unmasked (server) frame. Control payloads are cut to 125 bytes.
pub fn encode(msg: &Message, out: &mut Vec<u8>) {
    let (opcode, payload) = opcode_and_payload(msg);
    write_frame(opcode, &payload, None, out);
}

/// Appends `msg` as one frame masked with `mask` (client role, and tests).
pub fn encode_masked(msg: &Message, mask: [u8; 4], out: &mut Vec<u8>) {
    let (opcode, payload) = opcode_and_payload(msg);
    write_frame(opcode, &payload, Some(mask), out);
}

#[cfg(test)]
mod tests {
    use super::*;

    const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

    fn decode_all(bytes: &[u8], max: usize) -> Result<Vec<Message>, WsError> {
        let mut d = Decoder::new(max);
        d.push(bytes)?;
        let mut out = Vec::new();
        while let Some(m) = d.next()? {
            out.push(m);
        }
        Ok(out)
    }

    #[test]
    fn rfc6455_masked_hello() {
        // RFC 6455 §5.7: a masked single-frame text "Hello" (text is rejected for QMux).
        let text = [
            0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
        ];
        assert_eq!(decode_all(&text, 100), Err(WsError::Text));
        let mut binary = text;
        binary[0] = 0x82;
        assert_eq!(
            decode_all(&binary, 100).unwrap(),
            vec![Message::Binary(b"Hello".to_vec())]
        );
    }

    #[test]
    fn server_frames_are_unmasked() {
        let mut out = Vec::new();
        encode(&Message::Binary(b"Hello".to_vec()), &mut out);
        assert_eq!(out, [0x82, 0x05, b'H', b'e', b'l', b'l', b'o']);
        let mut d = Decoder::client(100);
        d.push(&out).unwrap();
        assert_eq!(d.next().unwrap(), Some(Message::Binary(b"Hello".to_vec())));
        // A server decoder rejects it.
        assert_eq!(decode_all(&out, 100), Err(WsError::Unmasked));
    }

    #[test]
    fn round_trip_lengths_and_controls() {
        for len in [0usize, 1, 125, 126, 65535, 65536, 70000] {
            let msg = Message::Binary((0..len).map(|i| i as u8).collect());
            let mut out = Vec::new();
            encode_masked(&msg, MASK, &mut out);
            assert_eq!(decode_all(&out, 100_000).unwrap(), vec![msg]);
        }
        for msg in [
            Message::Ping(b"p".to_vec()),
            Message::Pong(vec![]),
            Message::Close(Some(1000), "bye".into()),
            Message::Close(None, String::new()),
        ] {
            let mut out = Vec::new();
            encode_masked(&msg, MASK, &mut out);
            assert_eq!(decode_all(&out, 100).unwrap(), vec![msg]);
        }
    }

    fn raw(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        write_frame(opcode, payload, Some(MASK), &mut out);
        if !fin {
            out[0] &= 0x7f;
        }
        out
    }

    #[test]
    fn fragmentation_with_interleaved_ping() {
        let mut bytes = raw(false, OP_BINARY, b"ab");
        bytes.extend(raw(true, OP_PING, b"x"));
        bytes.extend(raw(false, OP_CONT, b"cd"));
        bytes.extend(raw(true, OP_CONT, b"e"));
        // Fed one byte at a time.
        let mut d = Decoder::new(10);
        let mut out = Vec::new();
        for b in &bytes {
            d.push(&[*b]).unwrap();
            while let Some(m) = d.next().unwrap() {
                out.push(m);
            }
        }
        assert_eq!(
            out,
            vec![
                Message::Ping(b"x".to_vec()),
                Message::Binary(b"abcde".to_vec())
            ]
        );
    }

    #[test]
    fn errors() {
        let mut big = raw(false, OP_BINARY, b"abcdef");
        big.extend(raw(true, OP_CONT, b"ghijk"));
        assert_eq!(decode_all(&big, 10), Err(WsError::TooLarge));
        assert_eq!(
            decode_all(&raw(true, OP_BINARY, &[0; 11]), 10),
            Err(WsError::TooLarge)
        );
        assert_eq!(
            decode_all(&raw(true, OP_CONT, b"a"), 10),
            Err(WsError::BadContinuation)
        );
        let mut twice = raw(false, OP_BINARY, b"a");
        twice.extend(raw(true, OP_BINARY, b"b"));
        assert_eq!(decode_all(&twice, 10), Err(WsError::BadContinuation));
        assert_eq!(
            decode_all(&raw(false, OP_PING, b""), 10),
            Err(WsError::BadControl)
        );
        assert_eq!(
            decode_all(&raw(true, OP_PING, &[0; 126]), 1000),
            Err(WsError::BadControl)
        );
        assert_eq!(
            decode_all(&raw(true, 0x3, b""), 10),
            Err(WsError::BadOpcode(3))
        );
        assert_eq!(
            decode_all(&raw(true, OP_CLOSE, b"x"), 10),
            Err(WsError::BadClose)
        );
        let mut rsv = raw(true, OP_BINARY, b"");
        rsv[0] |= 0x40;
        assert_eq!(decode_all(&rsv, 10), Err(WsError::ReservedBits));
        let huge = [0x82, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 0];
        assert_eq!(decode_all(&huge, 10), Err(WsError::BadLength));
        let mut d = Decoder::new(10);
        assert_eq!(d.push(&[0; 25]), Err(WsError::BufferFull));
    }

    #[test]
    fn a_read_of_many_small_frames_moves_no_bytes() {
        // 4,000 frames in one push: decoding them moves nothing (it used to move everything
        // behind each frame, about 4,000²/2 frames' worth).
        let frame = raw(true, OP_BINARY, b"0123456789");
        let mut bytes = Vec::new();
        for _ in 0..4_000 {
            bytes.extend_from_slice(&frame);
        }
        // Half a frame more: the only bytes that move, at the next push.
        bytes.extend_from_slice(&frame[..frame.len() / 2]);
        let mut d = Decoder::new(1 << 20);
        d.push(&bytes).unwrap();
        let mut n = 0;
        while let Some(m) = d.next().unwrap() {
            assert_eq!(m, Message::Binary(b"0123456789".to_vec()));
            n += 1;
        }
        assert_eq!((n, d.bytes_moved()), (4_000, 0));
        d.push(&frame[frame.len() / 2..]).unwrap();
        assert!(d.next().unwrap().is_some());
        assert_eq!(d.bytes_moved(), (frame.len() / 2) as u64);
    }

    #[test]
    fn each_byte_moves_at_most_once_whatever_the_read_sizes() {
        // Frames of every size fed in reads of every size: the copying work stays under the
        // input size, and the capacity counts only what is not decoded yet.
        let mut bytes = Vec::new();
        for len in 0..300usize {
            bytes.extend(raw(true, OP_BINARY, &vec![len as u8; len]));
        }
        for read in [1usize, 7, 100, 1000, 4096] {
            let mut d = Decoder::new(1000);
            let mut n = 0;
            for mut piece in bytes.chunks(read) {
                // As `WsQmux::on_bytes` does: never more than the decoder takes.
                while !piece.is_empty() {
                    let take = d.capacity().min(piece.len());
                    d.push(&piece[..take]).unwrap();
                    piece = &piece[take..];
                    while d.next().unwrap().is_some() {
                        n += 1;
                    }
                    // Only an incomplete frame (under 300 + 14 bytes) is left.
                    assert!(d.capacity() >= 1000 + 14 - 314);
                }
            }
            assert_eq!(n, 300);
            assert!(
                d.bytes_moved() <= bytes.len() as u64,
                "read {read}: {}",
                d.bytes_moved()
            );
        }
    }

    #[test]
    fn fuzz_no_panics() {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..20_000 {
            let mut d = Decoder::new(64);
            let len = (x % 40) as usize;
            let mut bytes = Vec::with_capacity(len);
            for _ in 0..len {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                bytes.push(x as u8);
            }
            if bytes.len() > 1 && x & 1 == 0 {
                bytes[1] |= 0x80;
            }
            if d.push(&bytes).is_ok() {
                while let Ok(Some(_)) = d.next() {}
            }
        }
    }
}
