//! Checks that a client's Initial packet really is one before we answer it or keep anything
//! for it: Initial packets are protected with keys anyone can derive from the packet's own
//! destination connection id (RFC 9001 §5.2), so we derive them, remove the header
//! protection and check the payload's AEAD tag, without a connection and without touching
//! the datagram (quiche reads it again if we accept). A flood of Initials with random bytes
//! where the encrypted ClientHello belongs costs us this check (a few microseconds, no
//! system call) instead of a Retry sent for each. A flooder that encrypts its Initials passes
//! it; the Retry and handshake limits take over from there.
//!
//! Written here rather than taken from quiche, which only opens packets inside a
//! connection: ring (already a dependency) has every primitive (HKDF-SHA256, AES-128-GCM,
//! the AES header-protection mask).

use ring::aead::{self, quic::HeaderProtectionKey, Aad, LessSafeKey, Nonce, UnboundKey};
use ring::hkdf;

/// The QUIC v1 Initial salt (RFC 9001 §5.2).
const INITIAL_SALT_V1: [u8; 20] = [
    0x38, 0x76, 0x2c, 0xf7, 0xf5, 0x59, 0x34, 0xb3, 0x4d, 0x17, 0x9a, 0xe6, 0xa4, 0xc8, 0x0c, 0xad,
    0xcc, 0xbb, 0x7f, 0x0a,
];

/// QUIC version 1.
const VERSION_1: u32 = 1;

/// Header protection samples 16 bytes starting 4 bytes after the packet number's start.
const SAMPLE_LEN: usize = 16;
/// AES-128-GCM's tag.
const TAG_LEN: usize = 16;

/// What [`check`] concluded about a datagram that starts with a long-header Initial.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InitialCheck {
    /// Its first packet is an Initial that opens with the keys of its destination id.
    Opens,
    /// It does not: malformed, truncated, or the tag does not match.
    Forged,
    /// A version whose Initial keys we do not derive here; quiche decides.
    Unchecked,
}

/// The client's Initial keys for a destination id: AEAD key, IV and header-protection key.
#[derive(Debug, PartialEq, Eq)]
struct ClientKeys {
    key: [u8; 16],
    iv: [u8; 12],
    hp: [u8; 16],
}

/// An output length for ring's HKDF.
struct Len(usize);

impl hkdf::KeyType for Len {
    fn len(&self) -> usize {
        self.0
    }
}

/// TLS 1.3's HKDF-Expand-Label with an empty context (RFC 8446 §7.1).
fn expand_label(prk: &hkdf::Prk, label: &[u8], out: &mut [u8]) -> Option<()> {
    let length = u16::try_from(out.len()).ok()?.to_be_bytes();
    let label_len = [u8::try_from(b"tls13 ".len() + label.len()).ok()?];
    let info: [&[u8]; 5] = [&length, &label_len, b"tls13 ", label, &[0]];
    prk.expand(&info, Len(out.len())).ok()?.fill(out).ok()
}

fn client_keys(dcid: &[u8]) -> Option<ClientKeys> {
    let initial = hkdf::Salt::new(hkdf::HKDF_SHA256, &INITIAL_SALT_V1).extract(dcid);
    let mut secret = [0u8; 32];
    expand_label(&initial, b"client in", &mut secret)?;
    let client = hkdf::Prk::new_less_safe(hkdf::HKDF_SHA256, &secret);
    let mut keys = ClientKeys {
        key: [0; 16],
        iv: [0; 12],
        hp: [0; 16],
    };
    expand_label(&client, b"quic key", &mut keys.key)?;
    expand_label(&client, b"quic iv", &mut keys.iv)?;
    expand_label(&client, b"quic hp", &mut keys.hp)?;
    Some(keys)
}

/// Reads a QUIC variable-length integer at `*at`, moving past it.
fn varint(data: &[u8], at: &mut usize) -> Option<u64> {
    let first = *data.get(*at)?;
    let len = 1usize << (first >> 6);
    let bytes = data.get(*at..at.checked_add(len)?)?;
    let mut value = u64::from(first & 0x3f);
    for &b in &bytes[1..] {
        value = (value << 8) | u64::from(b);
    }
    *at += len;
    Some(value)
}

/// Checks the first packet of `datagram`, which the caller found to be a long-header Initial.
pub fn check(datagram: &[u8]) -> InitialCheck {
    let Some(version) = datagram
        .get(1..5)
        .map(|v| u32::from_be_bytes([v[0], v[1], v[2], v[3]]))
    else {
        return InitialCheck::Forged;
    };
    if version != VERSION_1 {
        return InitialCheck::Unchecked;
    }
    match open(datagram) {
        Some(()) => InitialCheck::Opens,
        None => InitialCheck::Forged,
    }
}

fn open(datagram: &[u8]) -> Option<()> {
    // Long header: flags, version, DCID, SCID, token, length, then the packet number.
    let mut at = 5;
    let dcid_len = usize::from(*datagram.get(at)?);
    let dcid = datagram.get(at + 1..at + 1 + dcid_len)?;
    at += 1 + dcid_len;
    let scid_len = usize::from(*datagram.get(at)?);
    at += 1 + scid_len;
    let token_len = usize::try_from(varint(datagram, &mut at)?).ok()?;
    at = at.checked_add(token_len)?;
    let length = usize::try_from(varint(datagram, &mut at)?).ok()?;
    let pn_offset = at;
    let end = pn_offset.checked_add(length)?;
    let packet = datagram.get(..end)?;
    let sample = packet.get(pn_offset + 4..pn_offset + 4 + SAMPLE_LEN)?;

    let keys = client_keys(dcid)?;
    let hp = HeaderProtectionKey::new(&aead::quic::AES_128, &keys.hp).ok()?;
    let mask = hp.new_mask(sample).ok()?;
    let first = packet[0] ^ (mask[0] & 0x0f);
    let pn_len = usize::from(first & 0x03) + 1;
    let payload_start = pn_offset + pn_len;
    if packet.len() < payload_start + TAG_LEN {
        return None;
    }
    // One copy: the unprotected header (the AAD), then the payload opened in place.
    let mut copy = packet.to_vec();
    let (header, payload) = copy.split_at_mut(payload_start);
    header[0] = first;
    let mut pn = 0u64;
    for i in 0..pn_len {
        header[pn_offset + i] ^= mask[1 + i];
        pn = (pn << 8) | u64::from(header[pn_offset + i]);
    }
    let mut nonce = keys.iv;
    for (n, p) in nonce[4..].iter_mut().zip(pn.to_be_bytes()) {
        *n ^= p;
    }
    let key = LessSafeKey::new(UnboundKey::new(&aead::AES_128_GCM, &keys.key).ok()?);
    key.open_in_place(
        Nonce::assume_unique_for_key(nonce),
        Aad::from(&*header),
        payload,
    )
    .ok()?;
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn client_keys_match_rfc_9001_appendix_a() {
        let keys = client_keys(&hex("8394c8f03e515708")).unwrap();
        assert_eq!(keys.key.to_vec(), hex("1f369613dd76d5467730efcbe3b1a22d"));
        assert_eq!(keys.iv.to_vec(), hex("fa044b2f42a3fd3b46fb255c"));
        assert_eq!(keys.hp.to_vec(), hex("9f50449e04a0e810283a1e9933adedd2"));
    }

    /// The first datagram a quiche client sends: a real, padded Initial.
    fn real_initial() -> Vec<u8> {
        let mut config = quiche::Config::new(quiche::PROTOCOL_VERSION).unwrap();
        config.set_application_protos(&[b"moq-lite-05"]).unwrap();
        config.verify_peer(false);
        let scid = [7u8; 16];
        let local = "127.0.0.1:5000".parse().unwrap();
        let peer = "127.0.0.1:4443".parse().unwrap();
        let mut conn = quiche::connect(
            Some("localhost"),
            &quiche::ConnectionId::from_ref(&scid),
            local,
            peer,
            &mut config,
        )
        .unwrap();
        let mut out = vec![0u8; 1500];
        let (len, _) = conn.send(&mut out).unwrap();
        out.truncate(len);
        out
    }

    #[test]
    fn a_real_initial_opens_and_any_changed_byte_makes_it_forged() {
        let initial = real_initial();
        assert_eq!(check(&initial), InitialCheck::Opens);
        // A byte of the encrypted payload, of the header (the destination id changes the
        // keys), and of the tag.
        for at in [200, 7, initial.len() - 1] {
            let mut tampered = initial.clone();
            tampered[at] ^= 0x01;
            assert_eq!(check(&tampered), InitialCheck::Forged, "byte {at}");
        }
    }

    #[test]
    fn random_bytes_behind_a_valid_header_and_truncated_packets_are_forged() {
        let initial = real_initial();
        let mut fake = initial.clone();
        for (i, byte) in fake[60..].iter_mut().enumerate() {
            *byte = (i * 31 % 251) as u8;
        }
        assert_eq!(check(&fake), InitialCheck::Forged);
        for len in [0, 1, 5, 6, 30, 60, initial.len() / 2] {
            assert_eq!(check(&initial[..len]), InitialCheck::Forged, "{len} bytes");
        }
        // A length field pointing past the datagram.
        let mut long = initial.clone();
        long.truncate(1100);
        assert_eq!(check(&long), InitialCheck::Forged);
    }

    #[test]
    fn other_versions_are_left_to_quiche() {
        let mut initial = real_initial();
        initial[1..5].copy_from_slice(&0x6b33_43cfu32.to_be_bytes());
        assert_eq!(check(&initial), InitialCheck::Unchecked);
    }
}
