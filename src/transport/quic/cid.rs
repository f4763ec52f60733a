//! Server connection IDs: 20 bytes whose first byte names the owning shard.
//!
//! Every CID we issue encodes the shard that owns the connection, so a packet the kernel
//! delivers to another shard (NAT rebinding, migration) can be forwarded to its owner.

use rand::RngCore;

/// Length of every connection id we issue.
pub const CID_LEN: usize = 20;

/// A fresh connection id owned by `shard`.
pub fn generate(shard: usize) -> [u8; CID_LEN] {
    let mut cid = [0u8; CID_LEN];
    rand::rng().fill_bytes(&mut cid);
    cid[0] = shard as u8;
    cid
}

/// The shard a connection id of ours belongs to, if it can be one of ours.
pub fn owner(cid: &[u8], shards: usize) -> Option<usize> {
    if cid.len() != CID_LEN {
        return None;
    }
    let shard = cid[0] as usize;
    (shard < shards).then_some(shard)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_name_their_shard() {
        for shard in [0, 1, 7, 255] {
            let cid = generate(shard);
            assert_eq!(owner(&cid, 256), Some(shard));
        }
        assert_eq!(owner(&generate(3), 2), None);
        assert_eq!(owner(&[1u8; 8], 4), None);
    }
}
