//! The moq-lite versions we speak and their ALPN / WebTransport protocol names
//! (PROTOCOL.md §1). Codecs `match` on [`Version`] exhaustively, so adding a version makes the
//! compiler point at every layout that must decide what it does.

use std::fmt;

/// A negotiated moq-lite version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Version {
    /// `moq-lite-04`: moq-clock 0.10.21 (moq-net 0.1.x).
    Lite04,
    /// `moq-lite-05`: @moq/net 0.3.4 and every moq-net 0.3.x peer.
    Lite05,
}

impl Version {
    /// Every supported version, newest (most preferred) first.
    pub const ALL: [Version; 2] = [Version::Lite05, Version::Lite04];

    /// The ALPN and WebTransport protocol name, as text.
    pub fn name(self) -> &'static str {
        match self {
            Self::Lite04 => "moq-lite-04",
            Self::Lite05 => "moq-lite-05",
        }
    }

    /// The ALPN and WebTransport protocol name.
    pub fn alpn(self) -> &'static [u8] {
        self.name().as_bytes()
    }

    /// The version an ALPN or WebTransport protocol name selects, if we speak it.
    pub fn from_alpn(alpn: &[u8]) -> Option<Self> {
        Self::ALL.into_iter().find(|version| version.alpn() == alpn)
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alpn_round_trips() {
        for version in Version::ALL {
            assert_eq!(Version::from_alpn(version.alpn()), Some(version));
        }
        assert_eq!(Version::from_alpn(b"moq-lite-05"), Some(Version::Lite05));
        assert_eq!(Version::from_alpn(b"moq-lite-04"), Some(Version::Lite04));
        assert_eq!(Version::from_alpn(b"moq-lite-06-wip"), None);
        assert_eq!(Version::from_alpn(b"h3"), None);
    }

    #[test]
    fn newest_first_and_displayed_as_alpn() {
        assert!(Version::ALL.windows(2).all(|pair| pair[0] > pair[1]));
        assert_eq!(Version::Lite05.to_string(), "moq-lite-05");
        assert_eq!(Version::Lite04.to_string(), "moq-lite-04");
    }
}
