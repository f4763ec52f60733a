//! The one error type of the HTTP/3 + WebTransport decoders.

use std::fmt;

/// Why some HTTP/3 or WebTransport bytes could not be decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum H3Error {
    /// The input ends before the item does; more bytes may complete it.
    Short,
    /// An item is larger than the bound we accept.
    TooLarge(&'static str),
    /// The bytes break the protocol.
    Malformed(&'static str),
    /// A QPACK field section refers to a dynamic table we never advertised.
    DynamicTable,
    /// A Huffman-coded string is invalid (bad padding or the EOS symbol).
    Huffman,
}

impl fmt::Display for H3Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Short => f.write_str("truncated input"),
            Self::TooLarge(what) => write!(f, "{what} too large"),
            Self::Malformed(what) => write!(f, "malformed {what}"),
            Self::DynamicTable => f.write_str("QPACK dynamic table reference"),
            Self::Huffman => f.write_str("invalid Huffman string"),
        }
    }
}

impl std::error::Error for H3Error {}
