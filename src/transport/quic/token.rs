//! Address-validation tokens for stateless Retry (RFC 9000 §8.1.2): what a Retry packet
//! carries and the client echoes in its next Initial, proving it receives packets at the
//! address it sends from.
//!
//! A token is `issued (u64 ms since the Unix epoch) | odcid length (u8) | odcid | tag`, the
//! tag an HMAC-SHA256 over the client's address (IP and port), the connection id the Retry
//! told the client to use, and the rest of the token. The key is made once at start-up and
//! shared by every shard, so any shard can check a token another issued. Nothing is stored
//! per token: a token is good for anyone at that address until it expires, which is what a
//! Retry token needs to be (it comes back one round trip later). Time is passed in, so the
//! checks run in unit tests with a fake clock.

use ring::hmac;
use std::net::SocketAddr;
use std::time::Duration;

/// Longest connection id QUIC v1 allows (RFC 9000 §17.2).
const MAX_CID_LEN: usize = 20;
const TAG_LEN: usize = 32;
const ISSUED_LEN: usize = 8;
/// Longest token we issue: issue time, odcid length and odcid, tag.
pub const MAX_TOKEN_LEN: usize = ISSUED_LEN + 1 + MAX_CID_LEN + TAG_LEN;
/// What the tag covers besides the token's own bytes: the address (IPv6 form and port) and
/// the Retry's connection id.
const MAX_SIGNED_LEN: usize = 16 + 2 + 1 + MAX_CID_LEN + ISSUED_LEN + 1 + MAX_CID_LEN;

/// How long a token is good for after its Retry: a round trip, with room for slow paths and
/// clock steps between shards' reads of the wall clock.
pub const TOKEN_LIFETIME: Duration = Duration::from_secs(10);

/// What a client's token says.
#[derive(Debug, PartialEq, Eq)]
pub enum TokenCheck<'a> {
    /// Ours, for this address and connection id, and fresh: the client's address is
    /// validated and `odcid` is the destination id of its first Initial.
    Valid { odcid: &'a [u8] },
    /// Ours and for this address, but older than [`TOKEN_LIFETIME`] (or from the future).
    Expired,
    /// Not a token we issued for this address and connection id.
    Invalid,
}

/// The key that signs and checks Retry tokens. Cloning shares the key.
#[derive(Clone)]
pub struct RetryKey(hmac::Key);

impl std::fmt::Debug for RetryKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RetryKey(..)")
    }
}

impl RetryKey {
    /// A fresh random key.
    pub fn generate() -> Self {
        let rng = ring::rand::SystemRandom::new();
        Self(hmac::Key::generate(hmac::HMAC_SHA256, &rng).expect("system random numbers"))
    }

    /// Writes into `out` a token for `client`, whose first Initial went to `odcid`, told by
    /// our Retry to use `retry_scid`; returns its length. Ids longer than QUIC allows are cut
    /// (the caller only passes ids from parsed headers, which cannot be longer).
    pub fn mint(
        &self,
        client: SocketAddr,
        odcid: &[u8],
        retry_scid: &[u8],
        now_ms: u64,
        out: &mut [u8; MAX_TOKEN_LEN],
    ) -> usize {
        let odcid = &odcid[..odcid.len().min(MAX_CID_LEN)];
        let body = ISSUED_LEN + 1 + odcid.len();
        out[..ISSUED_LEN].copy_from_slice(&now_ms.to_be_bytes());
        out[ISSUED_LEN] = odcid.len() as u8;
        out[ISSUED_LEN + 1..body].copy_from_slice(odcid);
        let mut signed = [0u8; MAX_SIGNED_LEN];
        let len = signed_input(client, retry_scid, &out[..body], &mut signed);
        let tag = hmac::sign(&self.0, &signed[..len]);
        out[body..body + TAG_LEN].copy_from_slice(tag.as_ref());
        body + TAG_LEN
    }

    /// Checks `token`, sent by `client` in an Initial to `dcid`, at `now_ms`.
    pub fn check<'a>(
        &self,
        token: &'a [u8],
        client: SocketAddr,
        dcid: &[u8],
        now_ms: u64,
    ) -> TokenCheck<'a> {
        let Some((body, tag)) = split(token) else {
            return TokenCheck::Invalid;
        };
        let mut signed = [0u8; MAX_SIGNED_LEN];
        let len = signed_input(client, dcid, body, &mut signed);
        if hmac::verify(&self.0, &signed[..len], tag).is_err() {
            return TokenCheck::Invalid;
        }
        let mut issued = [0u8; ISSUED_LEN];
        issued.copy_from_slice(&body[..ISSUED_LEN]);
        let issued = u64::from_be_bytes(issued);
        let lifetime = TOKEN_LIFETIME.as_millis() as u64;
        // A token from up to a lifetime ahead passes too: shards read the wall clock
        // separately, and it may step.
        let fresh = now_ms.abs_diff(issued) <= lifetime;
        if !fresh {
            return TokenCheck::Expired;
        }
        TokenCheck::Valid {
            odcid: &body[ISSUED_LEN + 1..],
        }
    }
}

/// The token's signed part and its tag, if its lengths are consistent.
fn split(token: &[u8]) -> Option<(&[u8], &[u8])> {
    let odcid_len = usize::from(*token.get(ISSUED_LEN)?);
    if odcid_len > MAX_CID_LEN {
        return None;
    }
    let body = ISSUED_LEN + 1 + odcid_len;
    (token.len() == body + TAG_LEN).then(|| token.split_at(body))
}

/// Lays out what the tag covers in `out`; returns its length.
fn signed_input(
    client: SocketAddr,
    cid: &[u8],
    body: &[u8],
    out: &mut [u8; MAX_SIGNED_LEN],
) -> usize {
    let ip = match client {
        SocketAddr::V4(v4) => v4.ip().to_ipv6_mapped(),
        SocketAddr::V6(v6) => *v6.ip(),
    };
    let cid = &cid[..cid.len().min(MAX_CID_LEN)];
    let mut at = 0;
    for piece in [
        &ip.octets()[..],
        &client.port().to_be_bytes()[..],
        &[cid.len() as u8][..],
        cid,
        body,
    ] {
        let end = (at + piece.len()).min(out.len());
        out[at..end].copy_from_slice(&piece[..end - at]);
        at = end;
    }
    at
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_700_000_000_000;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    fn minted(key: &RetryKey, client: &str, odcid: &[u8], scid: &[u8], at: u64) -> Vec<u8> {
        let mut out = [0u8; MAX_TOKEN_LEN];
        let len = key.mint(addr(client), odcid, scid, at, &mut out);
        out[..len].to_vec()
    }

    #[test]
    fn a_token_is_valid_for_its_address_and_connection_id_and_returns_the_odcid() {
        let key = RetryKey::generate();
        let token = minted(&key, "192.0.2.1:4000", &[7; 8], &[1; 20], NOW);
        assert_eq!(
            key.check(&token, addr("192.0.2.1:4000"), &[1; 20], NOW + 500),
            TokenCheck::Valid { odcid: &[7; 8] }
        );
        // Another shard holds a clone of the same key.
        let shared = key.clone();
        assert!(matches!(
            shared.check(&token, addr("192.0.2.1:4000"), &[1; 20], NOW),
            TokenCheck::Valid { .. }
        ));
    }

    #[test]
    fn a_token_from_another_address_port_id_or_key_is_invalid() {
        let key = RetryKey::generate();
        let token = minted(&key, "192.0.2.1:4000", &[7; 8], &[1; 20], NOW);
        for (client, dcid) in [
            ("192.0.2.2:4000", [1u8; 20]),
            ("192.0.2.1:4001", [1; 20]),
            ("[::ffff:192.0.2.2]:4000", [1; 20]),
            ("192.0.2.1:4000", [2; 20]),
        ] {
            assert_eq!(
                key.check(&token, addr(client), &dcid, NOW),
                TokenCheck::Invalid,
                "{client}"
            );
        }
        assert_eq!(
            RetryKey::generate().check(&token, addr("192.0.2.1:4000"), &[1; 20], NOW),
            TokenCheck::Invalid
        );
        // The v4-mapped form of the same address is the same address.
        assert!(matches!(
            key.check(&token, addr("[::ffff:192.0.2.1]:4000"), &[1; 20], NOW),
            TokenCheck::Valid { .. }
        ));
    }

    #[test]
    fn an_old_token_is_expired_and_a_tampered_one_invalid() {
        let key = RetryKey::generate();
        let client = addr("[2001:db8::1]:443");
        let token = minted(&key, "[2001:db8::1]:443", &[9; 20], &[3; 20], NOW);
        let lifetime = TOKEN_LIFETIME.as_millis() as u64;
        assert!(matches!(
            key.check(&token, client, &[3; 20], NOW + lifetime),
            TokenCheck::Valid { .. }
        ));
        assert_eq!(
            key.check(&token, client, &[3; 20], NOW + lifetime + 1),
            TokenCheck::Expired
        );
        // Moving the issue time forward breaks the tag.
        let mut later = token.clone();
        later[7] ^= 0x40;
        assert_eq!(
            key.check(&later, client, &[3; 20], NOW),
            TokenCheck::Invalid
        );
    }

    #[test]
    fn malformed_tokens_are_invalid_without_panicking() {
        let key = RetryKey::generate();
        let client = addr("192.0.2.1:1");
        let token = minted(&key, "192.0.2.1:1", &[], &[1; 8], NOW);
        for cut in 0..token.len() {
            assert_eq!(
                key.check(&token[..cut], client, &[1; 8], NOW),
                TokenCheck::Invalid
            );
        }
        let mut long = token.clone();
        long.push(0);
        assert_eq!(key.check(&long, client, &[1; 8], NOW), TokenCheck::Invalid);
        let mut bad_len = token.clone();
        bad_len[ISSUED_LEN] = 255;
        assert_eq!(
            key.check(&bad_len, client, &[1; 8], NOW),
            TokenCheck::Invalid
        );
        // Deterministic junk of every length up to and past the longest token.
        let mut x = 0x2545_f491_4f6c_dd1du64;
        for len in 0..(MAX_TOKEN_LEN + 8) {
            let junk: Vec<u8> = (0..len)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x as u8
                })
                .collect();
            assert_eq!(key.check(&junk, client, &[1; 8], NOW), TokenCheck::Invalid);
        }
        // An id longer than QUIC allows cannot overflow the signed input.
        assert_eq!(
            key.check(&token, client, &[1; 64], NOW),
            TokenCheck::Invalid
        );
    }
}
