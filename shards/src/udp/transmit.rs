//! [`Transmit`]: what the QUIC layer hands to the socket, and how a transmit is cut into the
//! pieces one `sendmsg` each can carry (GSO limits, or one datagram per call without GSO).

use std::net::{IpAddr, SocketAddr};

/// Most segments one GSO `sendmsg` may carry. The kernel's `UDP_MAX_SEGMENTS` is 64 on older
/// kernels and 128 on newer ones; 64 works everywhere.
pub const MAX_GSO_SEGMENTS: usize = 64;

/// Most payload bytes one `sendmsg` may carry: 65535 minus the IPv4 and UDP headers.
pub const MAX_SEND_BYTES: usize = 65_507;

/// One or more datagrams to one destination.
///
/// With `segment_size: Some(s)`, `contents` is a run of datagrams of `s` bytes each (the last
/// one may be shorter), sent with one GSO `sendmsg` when the kernel supports it (and split into
/// as many calls as the GSO limits require), or one `sendmsg` per datagram otherwise. With
/// `None` (or a segment size of 0 or at least `contents.len()`) `contents` is one datagram. An
/// empty `contents` sends nothing.
#[derive(Clone, Copy, Debug)]
pub struct Transmit<'a> {
    /// Destination. IPv4 destinations work on dual-stack (`[::]`) sockets.
    pub dst: SocketAddr,
    /// Payload: one datagram, or back-to-back segments of `segment_size` bytes.
    pub contents: &'a [u8],
    /// Size of each datagram within `contents`, for GSO.
    pub segment_size: Option<usize>,
    /// Source address to send from (`IP_PKTINFO`/`IPV6_PKTINFO`), typically the destination
    /// address a received datagram reported, so replies leave from the address the peer used
    /// on a multi-homed host. `None` lets the kernel choose.
    pub src_ip: Option<IpAddr>,
}

impl<'a> Transmit<'a> {
    /// A single datagram to `dst`.
    pub fn single(dst: SocketAddr, contents: &'a [u8]) -> Transmit<'a> {
        Transmit {
            dst,
            contents,
            segment_size: None,
            src_ip: None,
        }
    }

    /// Back-to-back datagrams of `segment_size` bytes to `dst`.
    pub fn segmented(dst: SocketAddr, contents: &'a [u8], segment_size: usize) -> Transmit<'a> {
        Transmit {
            dst,
            contents,
            segment_size: Some(segment_size),
            src_ip: None,
        }
    }

    /// The segment size in effect: `None` when `contents` is a single datagram.
    pub(crate) fn stride(&self, offset: usize) -> Option<usize> {
        match self.segment_size {
            Some(s) if s > 0 && s < self.contents.len() - offset => Some(s),
            _ => None,
        }
    }

    /// Number of datagrams this transmit puts on the wire.
    pub fn datagrams(&self) -> usize {
        match self.stride(0) {
            _ if self.contents.is_empty() => 0,
            Some(s) => self.contents.len().div_ceil(s),
            None => 1,
        }
    }
}

/// The next `sendmsg` of a transmit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Piece {
    /// Bytes of `contents` (from the current offset) this call carries.
    pub len: usize,
    /// The `UDP_SEGMENT` value, when the call carries more than one datagram.
    pub segment: Option<u16>,
}

/// Plans the next `sendmsg` for `transmit` from byte `offset`, given how many segments one
/// call may carry (`max_segments`, 1 = no GSO). `offset < contents.len()`.
pub(crate) fn next_piece(transmit: &Transmit<'_>, offset: usize, max_segments: usize) -> Piece {
    let rest = transmit.contents.len() - offset;
    let Some(s) = transmit.stride(offset) else {
        return Piece {
            len: rest,
            segment: None,
        };
    };
    let segments = max_segments.min(MAX_SEND_BYTES / s);
    if segments <= 1 || s > usize::from(u16::MAX) {
        return Piece {
            len: s,
            segment: None,
        };
    }
    let len = rest.min(segments * s);
    Piece {
        len,
        segment: (len > s).then_some(s as u16),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dst() -> SocketAddr {
        "127.0.0.1:1".parse().unwrap()
    }

    #[test]
    fn single_datagrams() {
        let data = [0u8; 100];
        let t = Transmit::single(dst(), &data);
        assert_eq!(
            next_piece(&t, 0, 64),
            Piece {
                len: 100,
                segment: None
            }
        );
        assert_eq!(t.datagrams(), 1);
        let t = Transmit::segmented(dst(), &data, 100);
        assert_eq!(
            next_piece(&t, 0, 64),
            Piece {
                len: 100,
                segment: None
            }
        );
        let t = Transmit::segmented(dst(), &data, 0);
        assert_eq!(
            next_piece(&t, 0, 64),
            Piece {
                len: 100,
                segment: None
            }
        );
        assert_eq!(Transmit::single(dst(), &[]).datagrams(), 0);
    }

    #[test]
    fn gso_pieces_respect_limits() {
        let data = vec![0u8; 1200 * 100 + 17];
        let t = Transmit::segmented(dst(), &data, 1200);
        assert_eq!(t.datagrams(), 101);
        // 65507 / 1200 = 54 segments per call.
        let p = next_piece(&t, 0, 64);
        assert_eq!(
            p,
            Piece {
                len: 54 * 1200,
                segment: Some(1200)
            }
        );
        let p = next_piece(&t, 54 * 1200, 64);
        assert_eq!(
            p,
            Piece {
                len: 46 * 1200 + 17,
                segment: Some(1200)
            }
        );
        // Only the short tail left: a single datagram.
        assert_eq!(
            next_piece(&t, 100 * 1200, 64),
            Piece {
                len: 17,
                segment: None
            }
        );
        // The segment count limit.
        let small = vec![0u8; 100 * 100];
        let t = Transmit::segmented(dst(), &small, 100);
        assert_eq!(
            next_piece(&t, 0, 64),
            Piece {
                len: 6400,
                segment: Some(100)
            }
        );
    }

    #[test]
    fn without_gso_one_datagram_per_call() {
        let data = vec![0u8; 2500];
        let t = Transmit::segmented(dst(), &data, 1000);
        assert_eq!(
            next_piece(&t, 0, 1),
            Piece {
                len: 1000,
                segment: None
            }
        );
        assert_eq!(
            next_piece(&t, 2000, 1),
            Piece {
                len: 500,
                segment: None
            }
        );
    }
}
