//! Ancillary data (`cmsg`) for `sendmsg`/`recvmsg`: an aligned buffer, an encoder for the
//! control messages we send (`UDP_SEGMENT`, `IP_PKTINFO`, `IPV6_PKTINFO`) and a decoder for
//! those we receive (`UDP_GRO`, `IP_PKTINFO`, `IPV6_PKTINFO`).

use std::mem;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::ptr;

/// Room for every control message we send or receive at once (each needs at most
/// `CMSG_SPACE(20)` = 40 bytes on 64-bit Linux).
pub(crate) const CMSG_CAPACITY: usize = 128;

/// A control-message buffer aligned like `cmsghdr`.
#[derive(Clone, Copy)]
#[repr(C, align(8))]
pub(crate) struct CmsgBuf(pub [u8; CMSG_CAPACITY]);

impl CmsgBuf {
    pub(crate) const fn new() -> CmsgBuf {
        CmsgBuf([0; CMSG_CAPACITY])
    }
}

fn space(len: usize) -> usize {
    // SAFETY: pure arithmetic.
    unsafe { libc::CMSG_SPACE(len as libc::c_uint) as usize }
}

/// Writes control messages into a [`CmsgBuf`] attached to a `msghdr`.
pub(crate) struct Encoder<'a> {
    hdr: &'a mut libc::msghdr,
    cursor: *mut libc::cmsghdr,
    len: usize,
}

impl<'a> Encoder<'a> {
    /// Attaches `buf` to `hdr` and starts encoding at its beginning.
    pub(crate) fn new(hdr: &'a mut libc::msghdr, buf: &'a mut CmsgBuf) -> Encoder<'a> {
        hdr.msg_control = buf.0.as_mut_ptr().cast();
        hdr.msg_controllen = CMSG_CAPACITY as _;
        // SAFETY: msg_control/msg_controllen describe `buf`.
        let cursor = unsafe { libc::CMSG_FIRSTHDR(hdr) };
        Encoder {
            hdr,
            cursor,
            len: 0,
        }
    }

    /// Appends one control message carrying `value`.
    pub(crate) fn push<T: Copy>(&mut self, level: libc::c_int, ty: libc::c_int, value: T) {
        let size = mem::size_of::<T>();
        // Only our own fixed set of small messages is ever pushed; running out of room is a
        // bug in this module, not something input can cause.
        assert!(
            !self.cursor.is_null() && self.len + space(size) <= CMSG_CAPACITY,
            "cmsg buffer too small"
        );
        // SAFETY: `cursor` points into the attached buffer with room for this message (checked
        // above); unaligned writes because CMSG_DATA is only guaranteed `usize`-aligned.
        unsafe {
            let cmsg = &mut *self.cursor;
            cmsg.cmsg_level = level;
            cmsg.cmsg_type = ty;
            cmsg.cmsg_len = libc::CMSG_LEN(size as libc::c_uint) as _;
            ptr::write_unaligned(libc::CMSG_DATA(cmsg).cast::<T>(), value);
            self.len += space(size);
            self.cursor = libc::CMSG_NXTHDR(self.hdr, cmsg);
        }
    }

    /// Sets the final control length (no control data at all when nothing was pushed).
    pub(crate) fn finish(self) {
        if self.len == 0 {
            self.hdr.msg_control = ptr::null_mut();
        }
        self.hdr.msg_controllen = self.len as _;
    }
}

/// What the received control messages told us about one datagram.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Decoded {
    /// GRO segment size (`UDP_GRO`), when the kernel coalesced datagrams.
    pub gro_segment: Option<usize>,
    /// Destination address of the datagram (`IP_PKTINFO` / `IPV6_PKTINFO`).
    pub dst_ip: Option<IpAddr>,
}

/// Reads the control messages of a received `msghdr`. Unknown messages are ignored; truncated
/// or malformed ones are skipped (the kernel does not produce them, but nothing here trusts it).
///
/// # Safety
///
/// `hdr.msg_control`/`msg_controllen` must describe initialised memory written by `recvmsg`.
// `msg_controllen` is a `size_t` on glibc but a `socklen_t` on musl: keep the casts.
#[allow(clippy::unnecessary_cast)]
pub(crate) unsafe fn decode(hdr: &libc::msghdr) -> Decoded {
    let mut out = Decoded::default();
    if hdr.msg_control.is_null() || (hdr.msg_controllen as usize) < mem::size_of::<libc::cmsghdr>()
    {
        return out;
    }
    let end = hdr.msg_control as usize + hdr.msg_controllen as usize;
    let mut cursor = libc::CMSG_FIRSTHDR(hdr);
    while !cursor.is_null() {
        let cmsg = &*cursor;
        let data = libc::CMSG_DATA(cmsg);
        let data_len = (cmsg.cmsg_len as usize).saturating_sub(libc::CMSG_LEN(0) as usize);
        if data_len > end.saturating_sub(data as usize) {
            break;
        }
        match (cmsg.cmsg_level, cmsg.cmsg_type) {
            (libc::SOL_UDP, libc::UDP_GRO) if data_len >= mem::size_of::<libc::c_int>() => {
                let size = ptr::read_unaligned(data.cast::<libc::c_int>());
                if size > 0 {
                    out.gro_segment = Some(size as usize);
                }
            }
            (libc::IPPROTO_IP, libc::IP_PKTINFO)
                if data_len >= mem::size_of::<libc::in_pktinfo>() =>
            {
                let info = ptr::read_unaligned(data.cast::<libc::in_pktinfo>());
                out.dst_ip = Some(IpAddr::V4(Ipv4Addr::from(u32::from_be(
                    info.ipi_addr.s_addr,
                ))));
            }
            (libc::IPPROTO_IPV6, libc::IPV6_PKTINFO)
                if data_len >= mem::size_of::<libc::in6_pktinfo>() =>
            {
                let info = ptr::read_unaligned(data.cast::<libc::in6_pktinfo>());
                out.dst_ip =
                    Some(IpAddr::V6(Ipv6Addr::from(info.ipi6_addr.s6_addr)).to_canonical());
            }
            _ => {}
        }
        cursor = libc::CMSG_NXTHDR(hdr, cursor);
    }
    out
}

/// Encodes the `IP_PKTINFO`/`IPV6_PKTINFO` message that picks the source address of a sent
/// datagram. An IPv4 source uses `IP_PKTINFO` even on a dual-stack IPv6 socket (for a
/// v4-mapped destination), which Linux accepts.
pub(crate) fn push_source(enc: &mut Encoder<'_>, src: IpAddr) {
    match src {
        IpAddr::V4(v4) => {
            let info = libc::in_pktinfo {
                ipi_ifindex: 0,
                ipi_spec_dst: libc::in_addr {
                    s_addr: u32::from(v4).to_be(),
                },
                ipi_addr: libc::in_addr { s_addr: 0 },
            };
            enc.push(libc::IPPROTO_IP, libc::IP_PKTINFO, info);
        }
        IpAddr::V6(v6) => {
            let info = libc::in6_pktinfo {
                ipi6_addr: libc::in6_addr {
                    s6_addr: v6.octets(),
                },
                ipi6_ifindex: 0,
            };
            enc.push(libc::IPPROTO_IPV6, libc::IPV6_PKTINFO, info);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[allow(clippy::unnecessary_cast)]
    fn encode_then_decode_round_trips() {
        let mut hdr: libc::msghdr = unsafe { mem::zeroed() };
        let mut buf = CmsgBuf::new();
        let mut enc = Encoder::new(&mut hdr, &mut buf);
        enc.push(libc::SOL_UDP, libc::UDP_GRO, 1200 as libc::c_int);
        push_source(&mut enc, IpAddr::V4(Ipv4Addr::new(10, 1, 2, 3)));
        enc.finish();
        assert_eq!(hdr.msg_controllen as usize, space(4) + space(12));
        let decoded = unsafe { decode(&hdr) };
        assert_eq!(decoded.gro_segment, Some(1200));
        // IP_PKTINFO's ipi_addr (the header destination) is what decode reports; the encoder
        // fills ipi_spec_dst (the source to use), so the decoded address is 0.0.0.0 here.
        assert_eq!(decoded.dst_ip, Some(IpAddr::V4(Ipv4Addr::UNSPECIFIED)));
    }

    #[test]
    fn decode_ignores_garbage() {
        let mut hdr: libc::msghdr = unsafe { mem::zeroed() };
        let mut buf = CmsgBuf([0xff; CMSG_CAPACITY]);
        hdr.msg_control = buf.0.as_mut_ptr().cast();
        hdr.msg_controllen = CMSG_CAPACITY as _;
        let decoded = unsafe { decode(&hdr) };
        assert_eq!(decoded, Decoded::default());
        hdr.msg_controllen = 3;
        assert_eq!(unsafe { decode(&hdr) }, Decoded::default());
    }
}
