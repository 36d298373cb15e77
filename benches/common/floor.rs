//! The floor of an HS256 verification, shared by the benches that measure
//! against it (`verify`'s `floor` subject, `load`'s `/floor` route).

use std::hint::black_box;

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use hmac::{Hmac, Mac};
use serde::de::DeserializeOwned;
use sha2::Sha256;

/// What no HS256 verifier can skip: the three parts decoded, a prekeyed
/// HMAC-SHA256 checked, and the claims deserialized; nothing else (no claim
/// is checked). Panics on a token it cannot verify.
pub fn floor<C: DeserializeOwned>(token: &str, mac: &Hmac<Sha256>) -> C {
    let mut parts = token.split('.');
    let (header, payload, signature) = (
        parts.next().unwrap(),
        parts.next().unwrap(),
        parts.next().unwrap(),
    );
    let header_json = URL_SAFE_NO_PAD.decode(header).unwrap();
    let payload_json = URL_SAFE_NO_PAD.decode(payload).unwrap();
    let mut sig = [0u8; 32];
    URL_SAFE_NO_PAD.decode_slice(signature, &mut sig).unwrap();
    let mut mac = mac.clone();
    mac.update(&token.as_bytes()[..header.len() + 1 + payload.len()]);
    mac.verify_slice(&sig).unwrap();
    black_box(header_json);
    serde_json::from_slice(&payload_json).unwrap()
}
