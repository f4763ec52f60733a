//! An incremental reader of one group stream (after its type byte): `GROUP` header, then
//! `FRAME`s, fed in whatever chunks QUIC delivers. Payload bodies are skipped in place; only
//! each frame's first 16 bytes (send time and sequence) are read, so nothing is copied but a
//! header split across two chunks.

use moq_relay::wire::{DecodeError, FrameHeader, GroupHeader, Message, Version};

/// Bytes at the front of every payload: send time (ns, LE) and frame sequence (LE).
pub const STAMP: usize = 16;

/// One frame's stamp, as read from its payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    pub send_ns: u64,
    pub seq: u64,
    pub size: u64,
}

/// Writes the stamp into the front of `payload` (at least [`STAMP`] bytes).
pub fn put_stamp(payload: &mut [u8], send_ns: u64, seq: u64) {
    payload[..8].copy_from_slice(&send_ns.to_le_bytes());
    payload[8..16].copy_from_slice(&seq.to_le_bytes());
}

/// What a chunk of group stream held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Item {
    /// The group header: subscription id and group sequence.
    Header {
        subscribe_id: u64,
        sequence: u64,
    },
    Frame(Stamp),
}

/// State of one group stream being read.
#[derive(Debug, Default)]
pub struct GroupReader {
    pub header: Option<(u64, u64)>,
    /// Payload bytes still to skip.
    skip: u64,
    /// A header (or stamp) cut off at the end of the previous chunk.
    carry: Vec<u8>,
    /// The stream broke the framing; the rest is ignored.
    pub broken: bool,
}

impl GroupReader {
    /// Feeds one chunk, calling `item` for the header and every frame whose stamp is in.
    pub fn feed(&mut self, data: &[u8], item: &mut impl FnMut(Item)) {
        if self.broken {
            return;
        }
        if self.carry.is_empty() {
            let used = self.parse(data, item);
            self.carry.extend_from_slice(&data[used..]);
        } else {
            // Only the carried header needs joining; take just enough of `data` for it.
            let mut joined = std::mem::take(&mut self.carry);
            let take = data.len().min(64);
            joined.extend_from_slice(&data[..take]);
            let used = self.parse(&joined, item);
            if used >= joined.len() - take {
                let from_data = used - (joined.len() - take);
                joined.clear();
                self.carry = joined;
                let rest = &data[from_data..];
                let used = self.parse(rest, item);
                self.carry.extend_from_slice(&rest[used..]);
            } else {
                // Still incomplete even with 64 more bytes: keep everything.
                joined.truncate(joined.len() - take);
                joined.extend_from_slice(data);
                self.carry = joined;
            }
        }
        if self.carry.len() > 1024 {
            self.broken = true;
        }
    }

    /// Parses as much of `buf` as is complete; returns the bytes used.
    fn parse(&mut self, buf: &[u8], item: &mut impl FnMut(Item)) -> usize {
        let v = Version::Lite05;
        let mut at = 0;
        loop {
            if self.skip > 0 {
                let n = (self.skip).min((buf.len() - at) as u64) as usize;
                self.skip -= n as u64;
                at += n;
                if self.skip > 0 {
                    return at;
                }
            }
            if at == buf.len() {
                return at;
            }
            let rest = &buf[at..];
            if self.header.is_none() {
                match GroupHeader::decode(v, rest) {
                    Ok((h, used)) => {
                        self.header = Some((h.subscribe_id, h.sequence));
                        item(Item::Header {
                            subscribe_id: h.subscribe_id,
                            sequence: h.sequence,
                        });
                        at += used;
                        continue;
                    }
                    Err(DecodeError::Incomplete) => return at,
                    Err(_) => {
                        self.broken = true;
                        return buf.len();
                    }
                }
            }
            match FrameHeader::decode(v, rest) {
                Ok((h, used)) => {
                    let prefix = (h.size as usize).min(STAMP);
                    if rest.len() < used + prefix {
                        return at;
                    }
                    let p = &rest[used..used + prefix];
                    let word = |range: std::ops::Range<usize>| {
                        p.get(range)
                            .map_or(0, |b| u64::from_le_bytes(b.try_into().unwrap()))
                    };
                    item(Item::Frame(Stamp {
                        send_ns: word(0..8),
                        seq: word(8..16),
                        size: h.size,
                    }));
                    at += used + prefix;
                    self.skip = h.size - prefix as u64;
                }
                Err(DecodeError::Incomplete) => return at,
                Err(_) => {
                    self.broken = true;
                    return buf.len();
                }
            }
        }
    }

    /// Whether the stream ended on a frame boundary.
    pub fn clean_end(&self) -> bool {
        !self.broken && self.skip == 0 && self.carry.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use moq_relay::wire::UniType;

    fn stream(frames: &[(u64, u64, usize)]) -> Vec<u8> {
        let v = Version::Lite05;
        let mut buf = Vec::new();
        UniType::Group.encode(v, &mut buf).unwrap();
        buf.remove(0);
        GroupHeader {
            subscribe_id: 3,
            sequence: 300,
        }
        .encode(v, &mut buf)
        .unwrap();
        for &(ns, seq, size) in frames {
            FrameHeader {
                timestamp_delta: 1000,
                size: size as u64,
            }
            .encode(v, &mut buf)
            .unwrap();
            let mut payload = vec![0u8; size];
            put_stamp(&mut payload, ns, seq);
            buf.extend_from_slice(&payload);
        }
        buf
    }

    #[test]
    fn every_split_point() {
        let bytes = stream(&[(11, 1, 4096), (22, 2, 16), (33, 3, 200)]);
        for split in 0..bytes.len() {
            for second in split..bytes.len().min(split + 40) {
                let mut reader = GroupReader::default();
                let mut items = Vec::new();
                let mut push = |i| items.push(i);
                reader.feed(&bytes[..split], &mut push);
                reader.feed(&bytes[split..second], &mut push);
                reader.feed(&bytes[second..], &mut push);
                assert!(reader.clean_end(), "split {split}/{second}");
                assert_eq!(items.len(), 4, "split {split}/{second}");
                assert_eq!(
                    items[0],
                    Item::Header {
                        subscribe_id: 3,
                        sequence: 300
                    }
                );
                assert_eq!(
                    items[3],
                    Item::Frame(Stamp {
                        send_ns: 33,
                        seq: 3,
                        size: 200
                    })
                );
            }
        }
    }
}
