//! HTTP/3 SETTINGS (RFC 9114 §7.2.4): the bytes of our control stream and the checks on the
//! peer's (PROTOCOL.md §7.2 steps 1–2).

use super::frame::{self, is_grease};
use super::{varint, H3Error};

/// SETTINGS_MAX_FIELD_SECTION_SIZE.
pub const MAX_FIELD_SECTION_SIZE: u64 = 0x06;
/// SETTINGS_QPACK_MAX_TABLE_CAPACITY.
pub const QPACK_MAX_TABLE_CAPACITY: u64 = 0x01;
/// SETTINGS_QPACK_BLOCKED_STREAMS.
pub const QPACK_BLOCKED_STREAMS: u64 = 0x07;
/// SETTINGS_ENABLE_CONNECT_PROTOCOL (RFC 9220).
pub const ENABLE_CONNECT_PROTOCOL: u64 = 0x08;
/// SETTINGS_H3_DATAGRAM (RFC 9297).
pub const H3_DATAGRAM: u64 = 0x33;
/// The draft H3_DATAGRAM id Chrome still sends.
pub const H3_DATAGRAM_OLD: u64 = 0xff_d277;
/// SETTINGS_WT_MAX_SESSIONS.
pub const WEBTRANSPORT_MAX_SESSIONS: u64 = 0xc671_706a;
/// The draft WebTransport max-sessions id.
pub const WEBTRANSPORT_MAX_SESSIONS_OLD: u64 = 0x2b60_3743;
/// The draft SETTINGS_ENABLE_WEBTRANSPORT.
pub const WEBTRANSPORT_ENABLE_OLD: u64 = 0x2b60_3742;

/// The largest field section we accept, and advertise.
pub const OUR_MAX_FIELD_SECTION_SIZE: u64 = 16384;

/// The most settings we keep from one SETTINGS frame.
pub const MAX_SETTINGS: usize = 64;

/// Unidirectional stream type of a control stream.
pub const CONTROL_STREAM_TYPE: u64 = 0x00;

/// The settings we send, in order.
pub const OURS: [(u64, u64); 7] = [
    (MAX_FIELD_SECTION_SIZE, OUR_MAX_FIELD_SECTION_SIZE),
    (ENABLE_CONNECT_PROTOCOL, 1),
    (H3_DATAGRAM, 1),
    (H3_DATAGRAM_OLD, 1),
    (WEBTRANSPORT_MAX_SESSIONS, 1),
    (WEBTRANSPORT_MAX_SESSIONS_OLD, 1),
    (WEBTRANSPORT_ENABLE_OLD, 1),
];

/// The settings a client sends: ours without ENABLE_CONNECT_PROTOCOL, which only a server
/// advertises (RFC 9220 §3).
pub const CLIENT: [(u64, u64); 6] = [
    (MAX_FIELD_SECTION_SIZE, OUR_MAX_FIELD_SECTION_SIZE),
    (H3_DATAGRAM, 1),
    (H3_DATAGRAM_OLD, 1),
    (WEBTRANSPORT_MAX_SESSIONS, 1),
    (WEBTRANSPORT_MAX_SESSIONS_OLD, 1),
    (WEBTRANSPORT_ENABLE_OLD, 1),
];

/// Encodes a SETTINGS frame with `pairs`.
pub fn encode_settings(pairs: &[(u64, u64)], buf: &mut Vec<u8>) {
    let mut payload = Vec::new();
    for &(id, value) in pairs {
        varint::write(&mut payload, id);
        varint::write(&mut payload, value);
    }
    frame::encode_frame(frame::SETTINGS, &payload, buf);
}

/// The first bytes of our control stream: the stream type, then our SETTINGS frame.
pub fn server_control_stream() -> Vec<u8> {
    let mut buf = vec![CONTROL_STREAM_TYPE as u8];
    encode_settings(&OURS, &mut buf);
    buf
}

/// The first bytes of a client's control stream.
pub fn client_control_stream() -> Vec<u8> {
    let mut buf = vec![CONTROL_STREAM_TYPE as u8];
    encode_settings(&CLIENT, &mut buf);
    buf
}

/// The settings a peer sent (GREASE ids dropped).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Settings {
    pub pairs: Vec<(u64, u64)>,
}

impl Settings {
    /// Decodes a SETTINGS frame payload. Duplicates are an error (RFC 9114 §7.2.4), as are
    /// HTTP/2 settings ids 0x02–0x05 and more than [`MAX_SETTINGS`] settings.
    pub fn decode(payload: &[u8]) -> Result<Self, H3Error> {
        let mut pos = 0;
        let mut pairs: Vec<(u64, u64)> = Vec::new();
        while pos < payload.len() {
            let id = varint::read(payload, &mut pos).map_err(|_| H3Error::Malformed("SETTINGS"))?;
            let value =
                varint::read(payload, &mut pos).map_err(|_| H3Error::Malformed("SETTINGS"))?;
            if is_grease(id) {
                continue;
            }
            if (0x02..=0x05).contains(&id) {
                return Err(H3Error::Malformed("SETTINGS (HTTP/2 id)"));
            }
            if pairs.iter().any(|&(seen, _)| seen == id) {
                return Err(H3Error::Malformed("SETTINGS (duplicate id)"));
            }
            if pairs.len() == MAX_SETTINGS {
                return Err(H3Error::TooLarge("SETTINGS"));
            }
            pairs.push((id, value));
        }
        Ok(Self { pairs })
    }

    /// The value of setting `id`, if sent.
    pub fn get(&self, id: u64) -> Option<u64> {
        self.pairs
            .iter()
            .find(|&&(seen, _)| seen == id)
            .map(|&(_, v)| v)
    }

    /// Whether the peer can run WebTransport: H3_DATAGRAM (new or old) is 1, and it sent a
    /// WebTransport max-sessions (new or old, non-zero) or the old enable setting = 1.
    pub fn supports_webtransport(&self) -> bool {
        let datagram = self.get(H3_DATAGRAM) == Some(1) || self.get(H3_DATAGRAM_OLD) == Some(1);
        let sessions = self.get(WEBTRANSPORT_MAX_SESSIONS).is_some_and(|v| v > 0)
            || self
                .get(WEBTRANSPORT_MAX_SESSIONS_OLD)
                .is_some_and(|v| v > 0)
            || self.get(WEBTRANSPORT_ENABLE_OLD) == Some(1);
        datagram && sessions
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOLDEN: [u8; 36] = [
        0x00, 0x04, 0x21, 0x06, 0x80, 0x00, 0x40, 0x00, 0x08, 0x01, 0x33, 0x01, 0x80, 0xff, 0xd2,
        0x77, 0x01, 0xc0, 0x00, 0x00, 0x00, 0xc6, 0x71, 0x70, 0x6a, 0x01, 0xab, 0x60, 0x37, 0x43,
        0x01, 0xab, 0x60, 0x37, 0x42, 0x01,
    ];

    #[test]
    fn golden_control_stream() {
        assert_eq!(server_control_stream(), GOLDEN);
    }

    #[test]
    fn our_settings_decode_and_support_webtransport() {
        let (ty, payload, used) = frame::decode_frame(&GOLDEN[1..], 1024).unwrap();
        assert_eq!((ty, used), (frame::SETTINGS, GOLDEN.len() - 1));
        let settings = Settings::decode(payload).unwrap();
        assert_eq!(settings.pairs, OURS);
        assert!(settings.supports_webtransport());
    }

    #[test]
    fn client_settings_support_webtransport_without_connect_protocol() {
        let stream = client_control_stream();
        assert_eq!(stream[0], 0x00);
        let (ty, payload, _) = frame::decode_frame(&stream[1..], 1024).unwrap();
        assert_eq!(ty, frame::SETTINGS);
        let settings = Settings::decode(payload).unwrap();
        assert!(settings.supports_webtransport());
        assert_eq!(settings.get(ENABLE_CONNECT_PROTOCOL), None);
    }

    #[test]
    fn grease_skipped_and_checks() {
        let mut payload = Vec::new();
        for (id, v) in [
            (0x21 + 0x1f * 7, 99),
            (H3_DATAGRAM_OLD, 1),
            (WEBTRANSPORT_ENABLE_OLD, 1),
        ] {
            varint::write(&mut payload, id);
            varint::write(&mut payload, v);
        }
        let s = Settings::decode(&payload).unwrap();
        assert_eq!(s.pairs.len(), 2);
        assert!(s.supports_webtransport());

        let only_datagram = Settings {
            pairs: vec![(H3_DATAGRAM, 1)],
        };
        assert!(!only_datagram.supports_webtransport());
        let no_datagram = Settings {
            pairs: vec![(WEBTRANSPORT_MAX_SESSIONS, 4)],
        };
        assert!(!no_datagram.supports_webtransport());
    }

    #[test]
    fn malformed() {
        assert!(Settings::decode(&[0x06]).is_err());
        assert!(Settings::decode(&[0x06, 0x40]).is_err());
        assert!(Settings::decode(&[0x06, 0x01, 0x06, 0x02]).is_err());
        assert!(Settings::decode(&[0x02, 0x01]).is_err());
        let mut many = Vec::new();
        for id in 0..100u64 {
            varint::write(&mut many, 0x1000 + id);
            varint::write(&mut many, 0);
        }
        assert_eq!(Settings::decode(&many), Err(H3Error::TooLarge("SETTINGS")));
        // Cutting inside a pair's id or value is an error: the cuts that end a pair succeed.
        let payload = &GOLDEN[3..];
        let ends = [5, 7, 9, 14, 23, 28];
        for cut in 1..payload.len() {
            assert_eq!(
                Settings::decode(&payload[..cut]).is_ok(),
                ends.contains(&cut),
                "{cut}"
            );
        }
    }
}
