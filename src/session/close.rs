//! Why a session ends: the application error code and reason it closes with.

use crate::wire::{error_code, DecodeError};

/// Why a session ends.
#[derive(Debug)]
pub struct Close {
    pub code: u64,
    pub reason: String,
}

impl Close {
    pub(super) fn protocol(what: &str, err: DecodeError) -> Self {
        Self {
            code: error_code::session::PROTOCOL_VIOLATION,
            reason: format!("{what}: {err}"),
        }
    }
}
