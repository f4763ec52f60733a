//! Zero-copy stream sends: quiche's send buffers hold our refcounted [`Bytes`] instead of
//! copies. A frame payload received once from a publisher is queued on every subscriber's
//! stream by reference; quiche copies it only into the packets it encrypts.

use bytes::Bytes;

/// Buffer factory for every quiche connection of the relay: stream buffers are [`Bytes`]
/// (quiche splits them with `Bytes::split_off`, which shares the allocation).
#[derive(Clone, Copy, Debug, Default)]
pub struct SharedBufs;

impl quiche::BufFactory for SharedBufs {
    type Buf = Bytes;
    type DgramBuf = Vec<u8>;

    fn buf_from_slice(buf: &[u8]) -> Bytes {
        Bytes::copy_from_slice(buf)
    }

    fn dgram_buf_from_slice(buf: &[u8]) -> Vec<u8> {
        buf.to_vec()
    }
}

/// A quiche connection whose stream send buffers are shared [`Bytes`].
pub type QuicConnection = quiche::Connection<SharedBufs>;
