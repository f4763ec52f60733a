//! QMux frames (PROTOCOL.md §7.3): QUIC frame layouts minus ACKs, plus QX_TRANSPORT_PARAMETERS
//! and QX_PING, with decoding of one frame from the front of a record and encoding of one
//! frame. Records (qmux-01) are frames back to back; qmux-00 messages carry exactly one.

use super::params::Params;
use super::varint::{get, put};
use super::FrameError;

pub const PADDING: u64 = 0x00;
pub const RESET_STREAM: u64 = 0x04;
pub const STOP_SENDING: u64 = 0x05;
pub const STREAM_BASE: u64 = 0x08;
pub const MAX_DATA: u64 = 0x10;
pub const MAX_STREAM_DATA: u64 = 0x11;
pub const MAX_STREAMS_BIDI: u64 = 0x12;
pub const MAX_STREAMS_UNI: u64 = 0x13;
pub const DATA_BLOCKED: u64 = 0x14;
pub const STREAM_DATA_BLOCKED: u64 = 0x15;
pub const STREAMS_BLOCKED_BIDI: u64 = 0x16;
pub const STREAMS_BLOCKED_UNI: u64 = 0x17;
pub const CONNECTION_CLOSE: u64 = 0x1c;
pub const APPLICATION_CLOSE: u64 = 0x1d;
pub const DATAGRAM: u64 = 0x30;
pub const DATAGRAM_LEN: u64 = 0x31;
pub const QX_TRANSPORT_PARAMETERS: u64 = 0x3f51_5330_0d0a_0d0a;
pub const QX_PING_REQUEST: u64 = 0x348c_6752_9ef8_c7bd;
pub const QX_PING_RESPONSE: u64 = 0x348c_6752_9ef8_c7be;

/// STREAM type bits.
const OFF: u64 = 0x04;
const LEN: u64 = 0x02;
const FIN: u64 = 0x01;

/// One QMux frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Frame {
    /// One or more PADDING bytes.
    Padding,
    /// `offset` is `None` when the frame had no OFF bit. QUIC reads that as offset 0, but
    /// qmux 0.0.7 (moq-clock 0.10.21) never sends OFF and means "after the data so far";
    /// over a reliable WebSocket both readings agree once taken as "append".
    Stream {
        id: u64,
        offset: Option<u64>,
        data: Vec<u8>,
        fin: bool,
    },
    ResetStream {
        id: u64,
        code: u64,
        final_size: u64,
    },
    StopSending {
        id: u64,
        code: u64,
    },
    MaxData(u64),
    MaxStreamData {
        id: u64,
        max: u64,
    },
    MaxStreams {
        bidi: bool,
        max: u64,
    },
    DataBlocked(u64),
    StreamDataBlocked {
        id: u64,
        limit: u64,
    },
    StreamsBlocked {
        bidi: bool,
        limit: u64,
    },
    /// A transport error; `frame_type` is the offending frame's type (0 if unknown).
    ConnectionClose {
        code: u64,
        frame_type: u64,
        reason: Vec<u8>,
    },
    ApplicationClose {
        code: u64,
        reason: Vec<u8>,
    },
    /// qmux-01 records only.
    Datagram(Vec<u8>),
    TransportParameters(Params),
    /// qmux-01 records only.
    PingRequest(u64),
    /// qmux-01 records only.
    PingResponse(u64),
}

fn take<'a>(buf: &mut &'a [u8], len: u64) -> Result<&'a [u8], FrameError> {
    if len > buf.len() as u64 {
        return Err(FrameError::Truncated);
    }
    let (head, rest) = buf.split_at(len as usize);
    *buf = rest;
    Ok(head)
}

impl Frame {
    /// Decodes the frame at the front of `buf` (which ends where the record ends) and
    /// returns it with the bytes it used.
    pub fn decode(buf: &[u8]) -> Result<(Frame, usize), FrameError> {
        let mut rest = buf;
        let frame = Self::decode_inner(&mut rest)?;
        Ok((frame, buf.len() - rest.len()))
    }

    fn decode_inner(buf: &mut &[u8]) -> Result<Frame, FrameError> {
        let ty = get(buf)?;
        let frame = match ty {
            PADDING => {
                let zeros = buf.iter().take_while(|&&b| b == 0).count();
                *buf = &buf[zeros..];
                Frame::Padding
            }
            0x08..=0x0f => {
                let id = get(buf)?;
                let offset = if ty & OFF != 0 { Some(get(buf)?) } else { None };
                let data = if ty & LEN != 0 {
                    let len = get(buf)?;
                    take(buf, len)?
                } else {
                    take(buf, buf.len() as u64)?
                };
                if offset.unwrap_or(0).saturating_add(data.len() as u64) > crate::wire::varint::MAX
                {
                    return Err(FrameError::Malformed(ty));
                }
                Frame::Stream {
                    id,
                    offset,
                    data: data.to_vec(),
                    fin: ty & FIN != 0,
                }
            }
            RESET_STREAM => Frame::ResetStream {
                id: get(buf)?,
                code: get(buf)?,
                final_size: get(buf)?,
            },
            STOP_SENDING => Frame::StopSending {
                id: get(buf)?,
                code: get(buf)?,
            },
            MAX_DATA => Frame::MaxData(get(buf)?),
            MAX_STREAM_DATA => Frame::MaxStreamData {
                id: get(buf)?,
                max: get(buf)?,
            },
            MAX_STREAMS_BIDI | MAX_STREAMS_UNI => Frame::MaxStreams {
                bidi: ty == MAX_STREAMS_BIDI,
                max: get(buf)?,
            },
            DATA_BLOCKED => Frame::DataBlocked(get(buf)?),
            STREAM_DATA_BLOCKED => Frame::StreamDataBlocked {
                id: get(buf)?,
                limit: get(buf)?,
            },
            STREAMS_BLOCKED_BIDI | STREAMS_BLOCKED_UNI => Frame::StreamsBlocked {
                bidi: ty == STREAMS_BLOCKED_BIDI,
                limit: get(buf)?,
            },
            CONNECTION_CLOSE => {
                let code = get(buf)?;
                let frame_type = get(buf)?;
                let len = get(buf)?;
                Frame::ConnectionClose {
                    code,
                    frame_type,
                    reason: take(buf, len)?.to_vec(),
                }
            }
            APPLICATION_CLOSE => {
                let code = get(buf)?;
                let len = get(buf)?;
                Frame::ApplicationClose {
                    code,
                    reason: take(buf, len)?.to_vec(),
                }
            }
            DATAGRAM => Frame::Datagram(take(buf, buf.len() as u64)?.to_vec()),
            DATAGRAM_LEN => {
                let len = get(buf)?;
                Frame::Datagram(take(buf, len)?.to_vec())
            }
            QX_TRANSPORT_PARAMETERS => {
                let len = get(buf)?;
                Frame::TransportParameters(Params::decode(take(buf, len)?)?)
            }
            QX_PING_REQUEST => Frame::PingRequest(get(buf)?),
            QX_PING_RESPONSE => Frame::PingResponse(get(buf)?),
            other => return Err(FrameError::UnknownType(other)),
        };
        Ok(frame)
    }

    /// Appends the frame. STREAM is always written with OFF and LEN; DATAGRAM as `0x31`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Frame::Padding => out.push(0),
            Frame::Stream {
                id,
                offset,
                data,
                fin,
            } => {
                let off = if offset.is_some() { OFF } else { 0 };
                put(STREAM_BASE | off | LEN | if *fin { FIN } else { 0 }, out);
                put(*id, out);
                if let Some(offset) = offset {
                    put(*offset, out);
                }
                put(data.len() as u64, out);
                out.extend_from_slice(data);
            }
            Frame::ResetStream {
                id,
                code,
                final_size,
            } => {
                put(RESET_STREAM, out);
                put(*id, out);
                put(*code, out);
                put(*final_size, out);
            }
            Frame::StopSending { id, code } => {
                put(STOP_SENDING, out);
                put(*id, out);
                put(*code, out);
            }
            Frame::MaxData(max) => {
                put(MAX_DATA, out);
                put(*max, out);
            }
            Frame::MaxStreamData { id, max } => {
                put(MAX_STREAM_DATA, out);
                put(*id, out);
                put(*max, out);
            }
            Frame::MaxStreams { bidi, max } => {
                put(
                    if *bidi {
                        MAX_STREAMS_BIDI
                    } else {
                        MAX_STREAMS_UNI
                    },
                    out,
                );
                put(*max, out);
            }
            Frame::DataBlocked(limit) => {
                put(DATA_BLOCKED, out);
                put(*limit, out);
            }
            Frame::StreamDataBlocked { id, limit } => {
                put(STREAM_DATA_BLOCKED, out);
                put(*id, out);
                put(*limit, out);
            }
            Frame::StreamsBlocked { bidi, limit } => {
                put(
                    if *bidi {
                        STREAMS_BLOCKED_BIDI
                    } else {
                        STREAMS_BLOCKED_UNI
                    },
                    out,
                );
                put(*limit, out);
            }
            Frame::ConnectionClose {
                code,
                frame_type,
                reason,
            } => {
                put(CONNECTION_CLOSE, out);
                put(*code, out);
                put(*frame_type, out);
                put(reason.len() as u64, out);
                out.extend_from_slice(reason);
            }
            Frame::ApplicationClose { code, reason } => {
                put(APPLICATION_CLOSE, out);
                put(*code, out);
                put(reason.len() as u64, out);
                out.extend_from_slice(reason);
            }
            Frame::Datagram(data) => {
                put(DATAGRAM_LEN, out);
                put(data.len() as u64, out);
                out.extend_from_slice(data);
            }
            Frame::TransportParameters(params) => {
                put(QX_TRANSPORT_PARAMETERS, out);
                let mut body = Vec::new();
                params.encode(&mut body);
                put(body.len() as u64, out);
                out.extend_from_slice(&body);
            }
            Frame::PingRequest(seq) => {
                put(QX_PING_REQUEST, out);
                put(*seq, out);
            }
            Frame::PingResponse(seq) => {
                put(QX_PING_RESPONSE, out);
                put(*seq, out);
            }
        }
    }

    /// Whether only qmux-01 records may carry this frame.
    pub fn records_only(&self) -> bool {
        matches!(
            self,
            Frame::Datagram(_) | Frame::PingRequest(_) | Frame::PingResponse(_)
        )
    }
}

/// Decodes every frame of a qmux-01 record.
pub fn decode_record(mut buf: &[u8]) -> Result<Vec<Frame>, FrameError> {
    let mut frames = Vec::new();
    while !buf.is_empty() {
        let (frame, used) = Frame::decode(buf)?;
        buf = &buf[used..];
        frames.push(frame);
    }
    Ok(frames)
}

/// Decodes a qmux-00 message: exactly one frame, no record-only frames.
pub fn decode_single(buf: &[u8]) -> Result<Frame, FrameError> {
    let (frame, used) = Frame::decode(buf)?;
    if used != buf.len() {
        return Err(FrameError::TrailingBytes);
    }
    if frame.records_only() {
        return Err(FrameError::NotInVersion);
    }
    Ok(frame)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all_frames() -> Vec<Frame> {
        vec![
            Frame::Padding,
            Frame::Stream {
                id: 4,
                offset: Some(1000),
                data: b"hello".to_vec(),
                fin: true,
            },
            Frame::Stream {
                id: 3,
                offset: Some(0),
                data: vec![],
                fin: false,
            },
            Frame::ResetStream {
                id: 2,
                code: 0x36,
                final_size: 77,
            },
            Frame::StopSending { id: 6, code: 1 },
            Frame::MaxData(1 << 40),
            Frame::MaxStreamData { id: 9, max: 65536 },
            Frame::MaxStreams {
                bidi: true,
                max: 10_000,
            },
            Frame::MaxStreams {
                bidi: false,
                max: 20_000,
            },
            Frame::DataBlocked(5),
            Frame::StreamDataBlocked { id: 1, limit: 7 },
            Frame::StreamsBlocked {
                bidi: true,
                limit: 1,
            },
            Frame::StreamsBlocked {
                bidi: false,
                limit: 2,
            },
            Frame::ConnectionClose {
                code: 0xa,
                frame_type: 0x08,
                reason: b"bad".to_vec(),
            },
            Frame::ApplicationClose {
                code: 2,
                reason: b"unauthorized".to_vec(),
            },
            Frame::Datagram(b"dg".to_vec()),
            Frame::TransportParameters(Params {
                initial_max_data: 100,
                initial_max_streams_bidi: 10_000,
                ..Params::default()
            }),
            Frame::PingRequest(1),
            Frame::PingResponse(1 << 20),
        ]
    }

    #[test]
    fn golden_bytes() {
        let mut out = Vec::new();
        Frame::TransportParameters(Params::default()).encode(&mut out);
        assert_eq!(out, [0xff, 0x51, 0x53, 0x30, 0x0d, 0x0a, 0x0d, 0x0a, 0x00]);
        let mut out = Vec::new();
        Frame::Stream {
            id: 4,
            offset: Some(0),
            data: b"ab".to_vec(),
            fin: true,
        }
        .encode(&mut out);
        assert_eq!(out, [0x0f, 0x04, 0x00, 0x02, b'a', b'b']);
        let mut out = Vec::new();
        Frame::PingRequest(3).encode(&mut out);
        assert_eq!(out, [0xf4, 0x8c, 0x67, 0x52, 0x9e, 0xf8, 0xc7, 0xbd, 0x03]);
        let mut out = Vec::new();
        Frame::ApplicationClose {
            code: 0,
            reason: vec![],
        }
        .encode(&mut out);
        assert_eq!(out, [0x1d, 0x00, 0x00]);
    }

    #[test]
    fn round_trips() {
        for frame in all_frames() {
            let mut out = Vec::new();
            frame.encode(&mut out);
            assert_eq!(Frame::decode(&out).unwrap(), (frame.clone(), out.len()));
            if !frame.records_only() {
                assert_eq!(decode_single(&out).unwrap(), frame);
            } else {
                assert_eq!(decode_single(&out), Err(FrameError::NotInVersion));
            }
        }
        let mut record = Vec::new();
        for frame in all_frames() {
            frame.encode(&mut record);
        }
        assert_eq!(decode_record(&record).unwrap(), all_frames());
    }

    #[test]
    fn implicit_lengths() {
        // STREAM without OFF/LEN runs to the end of the record; so does DATAGRAM 0x30.
        assert_eq!(
            decode_record(&[0x09, 0x00, b'x', b'y']).unwrap(),
            vec![Frame::Stream {
                id: 0,
                offset: None,
                data: b"xy".to_vec(),
                fin: true
            }]
        );
        assert_eq!(
            decode_record(&[0x30, 1, 2]).unwrap(),
            vec![Frame::Datagram(vec![1, 2])]
        );
        assert_eq!(decode_record(&[0, 0, 0]).unwrap(), vec![Frame::Padding]);
    }

    #[test]
    fn truncated_at_every_offset() {
        for frame in all_frames() {
            let mut out = Vec::new();
            frame.encode(&mut out);
            for cut in 1..out.len() {
                let r = decode_single(&out[..cut]);
                // Only implicit-length frames could parse short; ours are all explicit.
                assert!(r.is_err(), "{frame:?} cut at {cut} gave {r:?}");
            }
        }
        assert_eq!(decode_single(&[]), Err(FrameError::Truncated));
    }

    #[test]
    fn bad_types_and_trailing() {
        assert_eq!(decode_single(&[0x06]), Err(FrameError::UnknownType(6)));
        assert_eq!(
            decode_single(&[0x02, 0, 0]),
            Err(FrameError::UnknownType(2))
        );
        assert_eq!(
            decode_single(&[0x10, 0x01, 0x00]),
            Err(FrameError::TrailingBytes)
        );
        assert_eq!(decode_single(&[0x40]), Err(FrameError::Truncated));
        // A varint that claims 8 bytes with fewer present.
        assert_eq!(
            decode_single(&[0x10, 0xc0, 0, 0]),
            Err(FrameError::Truncated)
        );
        // A stream frame whose end passes 2^62.
        let mut out = vec![0x0e, 0x00];
        put(crate::wire::varint::MAX, &mut out);
        out.extend([0x01, 0xaa]);
        assert_eq!(decode_single(&out), Err(FrameError::Malformed(0x0e)));
    }

    #[test]
    fn fuzz_no_panics() {
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let seeds: Vec<Vec<u8>> = all_frames()
            .iter()
            .map(|f| {
                let mut out = Vec::new();
                f.encode(&mut out);
                out
            })
            .collect();
        for i in 0..50_000 {
            let mut bytes = if i % 2 == 0 {
                seeds[next() as usize % seeds.len()].clone()
            } else {
                (0..next() % 32).map(|_| next() as u8).collect()
            };
            if !bytes.is_empty() {
                let at = next() as usize % bytes.len();
                bytes[at] = next() as u8;
            }
            let _ = decode_record(&bytes);
            let _ = decode_single(&bytes);
            let _ = Params::decode(&bytes);
        }
    }
}

#[cfg(test)]
mod implicit_offset {
    use super::*;

    #[test]
    fn a_stream_frame_without_off_has_no_offset_and_encodes_back_without_one() {
        // qmux 0.0.7 (moq-clock 0.10.21) writes every STREAM frame as 0x0a: LEN, no OFF.
        let wire = [0x0a, 0x00, 0x02, b'h', b'i'];
        let (frame, used) = Frame::decode(&wire).unwrap();
        assert_eq!(used, wire.len());
        assert_eq!(
            frame,
            Frame::Stream {
                id: 0,
                offset: None,
                data: b"hi".to_vec(),
                fin: false
            }
        );
        let mut out = Vec::new();
        frame.encode(&mut out);
        assert_eq!(out, wire);
    }
}
