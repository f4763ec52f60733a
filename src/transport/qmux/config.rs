//! A QMux connection's local limits and timers: the windows and stream counts we advertise,
//! the idle timeout and keep-alive, and the largest record we accept.

use std::time::Duration;

use super::params::DEFAULT_MAX_RECORD_SIZE;
use super::QmuxVersion;

/// Local limits and timers.
#[derive(Clone, Debug)]
pub struct Config {
    pub version: QmuxVersion,
    /// Connection receive window (bytes buffered across all streams).
    pub max_data: u64,
    /// Per-stream receive window.
    pub max_stream_data: u64,
    /// Concurrent peer-initiated streams we allow, per direction.
    pub max_streams_bidi: u64,
    pub max_streams_uni: u64,
    /// Close after this long without hearing from the peer.
    pub idle_timeout: Duration,
    /// Send a QX_PING (qmux-01) or ask for a WebSocket ping (qmux-00) after this much silence.
    pub keepalive: Duration,
    /// The largest record (message) we accept.
    pub max_record_size: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            version: QmuxVersion::Qmux01,
            max_data: 16 << 20,
            max_stream_data: 1 << 20,
            max_streams_bidi: 10_000,
            max_streams_uni: 10_000,
            idle_timeout: Duration::from_secs(30),
            keepalive: Duration::from_secs(5),
            max_record_size: DEFAULT_MAX_RECORD_SIZE,
        }
    }
}
