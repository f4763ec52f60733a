//! QX_TRANSPORT_PARAMETERS contents (PROTOCOL.md §7.3): the QUIC-style transport parameters
//! each side sends first, as `id (i) | len (i) | value` entries with varint values.

use super::varint::{self, get};
use super::FrameError;

pub const MAX_IDLE_TIMEOUT: u64 = 0x01;
pub const INITIAL_MAX_DATA: u64 = 0x04;
pub const INITIAL_MAX_STREAM_DATA_BIDI_LOCAL: u64 = 0x05;
pub const INITIAL_MAX_STREAM_DATA_BIDI_REMOTE: u64 = 0x06;
pub const INITIAL_MAX_STREAM_DATA_UNI: u64 = 0x07;
pub const INITIAL_MAX_STREAMS_BIDI: u64 = 0x08;
pub const INITIAL_MAX_STREAMS_UNI: u64 = 0x09;
pub const MAX_DATAGRAM_FRAME_SIZE: u64 = 0x20;
pub const MAX_RECORD_SIZE: u64 = 0x0571_c594_29cd_0845;
pub const APPLICATION_PROTOCOLS: u64 = 0x3d4f_9c2a_8b1e_6075;

/// The default `max_record_size` when the peer sends none.
pub const DEFAULT_MAX_RECORD_SIZE: u64 = 16382;

/// Transport parameters; absent entries take the QUIC defaults (0), except
/// `max_record_size` (16382).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Params {
    pub max_idle_timeout_ms: u64,
    pub initial_max_data: u64,
    pub initial_max_stream_data_bidi_local: u64,
    pub initial_max_stream_data_bidi_remote: u64,
    pub initial_max_stream_data_uni: u64,
    pub initial_max_streams_bidi: u64,
    pub initial_max_streams_uni: u64,
    pub max_datagram_frame_size: u64,
    pub max_record_size: u64,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            max_idle_timeout_ms: 0,
            initial_max_data: 0,
            initial_max_stream_data_bidi_local: 0,
            initial_max_stream_data_bidi_remote: 0,
            initial_max_stream_data_uni: 0,
            initial_max_streams_bidi: 0,
            initial_max_streams_uni: 0,
            max_datagram_frame_size: 0,
            max_record_size: DEFAULT_MAX_RECORD_SIZE,
        }
    }
}

impl Params {
    fn entries(&self) -> [(u64, u64); 9] {
        [
            (MAX_IDLE_TIMEOUT, self.max_idle_timeout_ms),
            (INITIAL_MAX_DATA, self.initial_max_data),
            (
                INITIAL_MAX_STREAM_DATA_BIDI_LOCAL,
                self.initial_max_stream_data_bidi_local,
            ),
            (
                INITIAL_MAX_STREAM_DATA_BIDI_REMOTE,
                self.initial_max_stream_data_bidi_remote,
            ),
            (
                INITIAL_MAX_STREAM_DATA_UNI,
                self.initial_max_stream_data_uni,
            ),
            (INITIAL_MAX_STREAMS_BIDI, self.initial_max_streams_bidi),
            (INITIAL_MAX_STREAMS_UNI, self.initial_max_streams_uni),
            (MAX_DATAGRAM_FRAME_SIZE, self.max_datagram_frame_size),
            (MAX_RECORD_SIZE, self.max_record_size),
        ]
    }

    /// Appends the parameter list (without the frame's type and length). Values equal to
    /// their default (0, or 16382 for `max_record_size`) are left out.
    pub fn encode(&self, out: &mut Vec<u8>) {
        for (id, value) in self.entries() {
            let default = match id {
                MAX_RECORD_SIZE => DEFAULT_MAX_RECORD_SIZE,
                _ => 0,
            };
            if value == default {
                continue;
            }
            varint::put(id, out);
            varint::put(varint::len(value) as u64, out);
            varint::put(value, out);
        }
    }

    /// Parses a whole parameter list. Unknown ids are skipped; duplicates are an error.
    pub fn decode(mut buf: &[u8]) -> Result<Params, FrameError> {
        let mut p = Params::default();
        let mut seen: Vec<u64> = Vec::new();
        while !buf.is_empty() {
            let id = get(&mut buf)?;
            let len = get(&mut buf)?;
            if len > buf.len() as u64 {
                return Err(FrameError::Truncated);
            }
            let (mut value, rest) = buf.split_at(len as usize);
            buf = rest;
            if seen.contains(&id) {
                return Err(FrameError::BadParameter(id));
            }
            seen.push(id);
            let field = match id {
                MAX_IDLE_TIMEOUT => &mut p.max_idle_timeout_ms,
                INITIAL_MAX_DATA => &mut p.initial_max_data,
                INITIAL_MAX_STREAM_DATA_BIDI_LOCAL => &mut p.initial_max_stream_data_bidi_local,
                INITIAL_MAX_STREAM_DATA_BIDI_REMOTE => &mut p.initial_max_stream_data_bidi_remote,
                INITIAL_MAX_STREAM_DATA_UNI => &mut p.initial_max_stream_data_uni,
                INITIAL_MAX_STREAMS_BIDI => &mut p.initial_max_streams_bidi,
                INITIAL_MAX_STREAMS_UNI => &mut p.initial_max_streams_uni,
                MAX_DATAGRAM_FRAME_SIZE => &mut p.max_datagram_frame_size,
                MAX_RECORD_SIZE => &mut p.max_record_size,
                _ => continue,
            };
            *field = get(&mut value).map_err(|_| FrameError::BadParameter(id))?;
            if !value.is_empty() {
                return Err(FrameError::BadParameter(id));
            }
        }
        if p.initial_max_streams_bidi > 1 << 60 || p.initial_max_streams_uni > 1 << 60 {
            return Err(FrameError::BadParameter(INITIAL_MAX_STREAMS_BIDI));
        }
        Ok(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_defaults() {
        let p = Params {
            max_idle_timeout_ms: 30_000,
            initial_max_data: 1 << 20,
            initial_max_stream_data_bidi_local: 1000,
            initial_max_stream_data_bidi_remote: 2000,
            initial_max_stream_data_uni: 3000,
            initial_max_streams_bidi: 10_000,
            initial_max_streams_uni: 10_000,
            max_datagram_frame_size: 0,
            max_record_size: 65536,
        };
        let mut out = Vec::new();
        p.encode(&mut out);
        assert_eq!(Params::decode(&out).unwrap(), p);
        assert_eq!(Params::decode(&[]).unwrap(), Params::default());
    }

    #[test]
    fn a_zero_max_record_size_is_sent_since_absent_means_16382() {
        // Found by the qmux_params fuzz target: 0 was left out like the other zero values,
        // so it decoded back as the default.
        let zero = Params {
            max_record_size: 0,
            ..Params::default()
        };
        let mut out = Vec::new();
        zero.encode(&mut out);
        assert_eq!(Params::decode(&out), Ok(zero));
        let mut default = Vec::new();
        Params::default().encode(&mut default);
        assert!(default.is_empty(), "defaults are not sent");
    }

    #[test]
    fn golden_and_errors() {
        // max_idle_timeout = 37 (1-byte value), then an unknown id 0x40 with 2 bytes.
        let bytes = [0x01, 0x01, 0x25, 0x40, 0x40, 0x02, 0xaa, 0xbb];
        assert_eq!(Params::decode(&bytes).unwrap().max_idle_timeout_ms, 37);
        assert_eq!(
            Params::decode(&[0x01, 0x01, 0x25, 0x01, 0x01, 0x25]),
            Err(FrameError::BadParameter(1))
        );
        assert_eq!(
            Params::decode(&[0x01, 0x02, 0x25, 0x00]),
            Err(FrameError::BadParameter(1))
        );
        for cut in 0..bytes.len() {
            // Cuts inside an entry are truncation (cut 3 ends cleanly after one entry).
            if cut != 0 && cut != 3 {
                assert!(Params::decode(&bytes[..cut]).is_err(), "cut {cut}");
            }
        }
    }
}
