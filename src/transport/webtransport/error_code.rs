//! WebTransport application error codes in the HTTP/3 error space (draft-ietf-webtrans-http3
//! §4.4): RESET_STREAM and STOP_SENDING carry `0x52e4a40fa8db + e + ⌊e / 0x1e⌋`, which skips
//! the GREASE code points `0x1f·N + 0x21`.

/// The first mapped code (application code 0).
pub const FIRST: u64 = 0x52e4_a40f_a8db;
/// The last mapped code (application code `u32::MAX`).
pub const LAST: u64 = 0x52e5_ac98_3162;
/// H3_NO_ERROR, which peers send for a plain cancel.
pub const H3_NO_ERROR: u64 = 0x100;
/// H3_REQUEST_REJECTED, for a client bidi stream that is not a WebTransport stream.
pub const H3_REQUEST_REJECTED: u64 = 0x10b;
/// H3_STREAM_CREATION_ERROR, for a uni stream type we do not read.
pub const H3_STREAM_CREATION_ERROR: u64 = 0x103;
/// H3_CLOSED_CRITICAL_STREAM.
pub const H3_CLOSED_CRITICAL_STREAM: u64 = 0x104;
/// H3_FRAME_UNEXPECTED.
pub const H3_FRAME_UNEXPECTED: u64 = 0x105;
/// H3_ID_ERROR.
pub const H3_ID_ERROR: u64 = 0x108;
/// H3_SETTINGS_ERROR.
pub const H3_SETTINGS_ERROR: u64 = 0x109;
/// H3_MISSING_SETTINGS.
pub const H3_MISSING_SETTINGS: u64 = 0x10a;
/// H3_MESSAGE_ERROR.
pub const H3_MESSAGE_ERROR: u64 = 0x10e;
/// QPACK_DECOMPRESSION_FAILED.
pub const QPACK_DECOMPRESSION_FAILED: u64 = 0x200;

/// The moq stream code H3_NO_ERROR stands for (Cancel).
pub const CANCEL: u32 = 1;

/// Maps an application code to its HTTP/3 code.
pub fn to_http3(code: u32) -> u64 {
    let e = u64::from(code);
    FIRST + e + e / 0x1e
}

/// Maps an HTTP/3 code back: `None` for codes outside the range, and for the GREASE points
/// inside it; H3_NO_ERROR reads as [`CANCEL`].
pub fn from_http3(code: u64) -> Option<u32> {
    if code == H3_NO_ERROR {
        return Some(CANCEL);
    }
    if !(FIRST..=LAST).contains(&code) {
        return None;
    }
    let x = code - FIRST;
    if x % 0x1f == 0x1e {
        return None;
    }
    u32::try_from(x - x / 0x1f).ok()
}

/// Maps a stream code for the wire: application codes above `u32::MAX` are clamped.
pub fn stream_code_to_http3(code: u64) -> u64 {
    to_http3(u32::try_from(code).unwrap_or(u32::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::webtransport::frame::is_grease;

    #[test]
    fn examples() {
        assert_eq!(to_http3(0), FIRST);
        assert_eq!(to_http3(1), 0x52e4a40fa8dc);
        assert_eq!(to_http3(0x34), 0x52e4a40fa910);
        assert_eq!(to_http3(0x36), 0x52e4a40fa912);
        assert_eq!(to_http3(u32::MAX), LAST);
        assert_eq!(from_http3(0x52e4a40fa912), Some(0x36));
        assert_eq!(from_http3(H3_NO_ERROR), Some(CANCEL));
        assert_eq!(from_http3(FIRST - 1), None);
        assert_eq!(from_http3(LAST + 1), None);
        assert_eq!(from_http3(0), None);
    }

    #[test]
    fn round_trip_and_grease() {
        let mut e = 0u32;
        loop {
            let h = to_http3(e);
            assert!(!is_grease(h), "{e}");
            assert_eq!(from_http3(h), Some(e));
            match e.checked_add(e / 3 + 1) {
                Some(next) => e = next,
                None => break,
            }
        }
        for e in 0..1000 {
            assert_eq!(from_http3(to_http3(e)), Some(e));
        }
        // The GREASE point between 0x1d and 0x1e.
        let grease = to_http3(0x1d) + 1;
        assert!(is_grease(grease));
        assert_eq!(from_http3(grease), None);
        assert_eq!(to_http3(0x1e), grease + 1);
    }
}
