//! Server nonces (RFC 9449 section 8): stateless, so every instance that
//! shares the secret accepts the others' nonces.
//!
//! A nonce is base64url(`t` || HMAC-SHA-256(secret, `t`)[..16]), with `t` the
//! issue time in Unix seconds (8 bytes, big-endian).

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Issues and checks nonces.
#[derive(Clone)]
pub(crate) struct Nonces {
    mac: Hmac<Sha256>,
    lifetime: i64,
    leeway: i64,
}

const TAG_LEN: usize = 16;

impl Nonces {
    pub(crate) fn new(mac: Hmac<Sha256>, lifetime: i64, leeway: i64) -> Self {
        Self {
            mac,
            lifetime,
            leeway,
        }
    }

    fn tag(&self, time: [u8; 8]) -> Hmac<Sha256> {
        let mut mac = self.mac.clone();
        mac.update(&time);
        mac
    }

    /// A nonce issued at `now`.
    pub(crate) fn issue(&self, now: i64) -> String {
        let time = now.to_be_bytes();
        let tag = self.tag(time).finalize().into_bytes();
        let mut bytes = [0u8; 8 + TAG_LEN];
        bytes[..8].copy_from_slice(&time);
        bytes[8..].copy_from_slice(&tag[..TAG_LEN]);
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// Whether `nonce` was issued by a holder of the secret no longer than
    /// the lifetime before `now` (and not after `now` plus the leeway).
    pub(crate) fn is_fresh(&self, nonce: &str, now: i64) -> bool {
        let mut bytes = [0u8; 8 + TAG_LEN + 3];
        if nonce.len() > 40 {
            return false;
        }
        match URL_SAFE_NO_PAD.decode_slice(nonce, &mut bytes) {
            Ok(len) if len == 8 + TAG_LEN => {}
            _ => return false,
        }
        let time: [u8; 8] = bytes[..8].try_into().expect("eight bytes");
        if self
            .tag(time)
            .verify_truncated_left(&bytes[8..8 + TAG_LEN])
            .is_err()
        {
            return false;
        }
        let issued = i64::from_be_bytes(time);
        issued <= now.saturating_add(self.leeway) && now.saturating_sub(issued) <= self.lifetime
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nonces() -> Nonces {
        Nonces::new(Hmac::new_from_slice(&[9u8; 32]).unwrap(), 300, 5)
    }

    #[test]
    fn nonces_are_fresh_for_their_lifetime_only() {
        let nonces = nonces();
        let nonce = nonces.issue(1_000);
        assert!(nonces.is_fresh(&nonce, 1_000));
        assert!(nonces.is_fresh(&nonce, 1_300));
        assert!(!nonces.is_fresh(&nonce, 1_301));
        assert!(!nonces.is_fresh(&nonce, 990), "issued in the future");
        assert!(!nonces.is_fresh("", 1_000));
        assert!(!nonces.is_fresh(&format!("{nonce}A"), 1_000));
        let other = Nonces::new(Hmac::new_from_slice(&[8u8; 32]).unwrap(), 300, 5);
        assert!(!other.is_fresh(&nonce, 1_000), "another secret");
        let mut forged = URL_SAFE_NO_PAD.decode(&nonce).unwrap();
        forged[7] ^= 1;
        assert!(!nonces.is_fresh(&URL_SAFE_NO_PAD.encode(forged), 1_000));
    }
}
