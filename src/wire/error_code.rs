//! The moq-net 0.3.x error code registries (PROTOCOL.md §5), which we send on every version.
//!
//! There are two disjoint registries: [`session`] codes close a connection, [`stream`] codes
//! go in RESET_STREAM and STOP_SENDING. The same number means different things in each
//! (0x1 is Internal for a session but Cancel for a stream). Codes 32–47 are reserved.

/// Session close codes.
pub mod session {
    /// Clean close ("Cancel").
    pub const CANCEL: u64 = 0x0;
    pub const INTERNAL: u64 = 0x1;
    /// Authentication or authorization failure.
    pub const UNAUTHORIZED: u64 = 0x2;
    /// A decode error, an unexpected message or a duplicate.
    pub const PROTOCOL_VIOLATION: u64 = 0x3;
    /// Too many parameters.
    pub const KEY_VALUE_FORMATTING: u64 = 0x6;
    pub const GOAWAY_TIMEOUT: u64 = 0x10;
    pub const TIMEOUT: u64 = 0x11;
    /// No common version.
    pub const VERSION: u64 = 0x15;
    /// Application code `n` is sent as `APPLICATION + n`.
    pub const APPLICATION: u64 = 64;
}

/// Stream reset and STOP_SENDING codes.
pub mod stream {
    /// Also sent for an unknown or version-invalid stream type.
    pub const INTERNAL: u64 = 0x0;
    /// Normal unsubscribe or cleanup; what a dropped writer sends.
    pub const CANCEL: u64 = 0x1;
    pub const DELIVERY_TIMEOUT: u64 = 0x2;
    /// The upstream session died.
    pub const SESSION_CLOSED: u64 = 0x3;
    /// Shutting down.
    pub const GOING_AWAY: u64 = 0x4;
    /// The reader is behind the group cache, or an exact frame start is gone.
    pub const TOO_FAR_BEHIND: u64 = 0x5;
    /// Our decode failure on a data stream.
    pub const MALFORMED_TRACK: u64 = 0x12;
    pub const CONTROL_TIMEOUT: u64 = 0x31;
    pub const GROUP_TOO_LARGE: u64 = 0x32;
    /// The track is missing upstream.
    pub const NOT_FOUND: u64 = 0x33;
    /// Aged out: cache window or subscriber max age exceeded.
    pub const OLD: u64 = 0x34;
    /// Dropped under memory pressure.
    pub const EVICTED: u64 = 0x35;
    /// The broadcast is not announced, or not visible to this session.
    pub const UNROUTABLE: u64 = 0x36;
    /// A group stream ended inside a frame.
    pub const WRONG_SIZE: u64 = 0x37;
    pub const FRAME_TOO_LARGE: u64 = 0x38;
    pub const TIMESTAMP_MISMATCH: u64 = 0x39;
    /// Application code `n` is sent as `APPLICATION + n`.
    pub const APPLICATION: u64 = 64;
}

/// Whether a received reset, STOP_SENDING or close code is an ordinary cancel: moq-net 0.1.x
/// cancels with 0, moq-net 0.3.x with 1. Other codes are for logs only.
pub fn is_benign_cancel(code: u64) -> bool {
    code <= 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cancels_of_both_generations_are_benign() {
        assert!(is_benign_cancel(0));
        assert!(is_benign_cancel(1));
        assert!(!is_benign_cancel(stream::DELIVERY_TIMEOUT));
        assert!(!is_benign_cancel(stream::OLD));
        assert!(!is_benign_cancel(u64::MAX));
    }

    #[test]
    fn registries_avoid_the_reserved_range() {
        let codes = [
            session::CANCEL,
            session::INTERNAL,
            session::UNAUTHORIZED,
            session::PROTOCOL_VIOLATION,
            session::KEY_VALUE_FORMATTING,
            session::GOAWAY_TIMEOUT,
            session::TIMEOUT,
            session::VERSION,
            stream::INTERNAL,
            stream::CANCEL,
            stream::DELIVERY_TIMEOUT,
            stream::SESSION_CLOSED,
            stream::GOING_AWAY,
            stream::TOO_FAR_BEHIND,
            stream::MALFORMED_TRACK,
            stream::CONTROL_TIMEOUT,
            stream::GROUP_TOO_LARGE,
            stream::NOT_FOUND,
            stream::OLD,
            stream::EVICTED,
            stream::UNROUTABLE,
            stream::WRONG_SIZE,
            stream::FRAME_TOO_LARGE,
            stream::TIMESTAMP_MISMATCH,
        ];
        assert!(codes.iter().all(|code| !(32..=47).contains(code)));
        assert_eq!(stream::UNROUTABLE, 0x36);
        assert_eq!(session::UNAUTHORIZED, 0x2);
    }
}
