//! A set of verification keys, prepared once and looked up per token.

use std::{collections::HashMap, fmt};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use hmac::{Hmac, Mac};
use jsonwebtoken as jwt;
use sha2::{Sha256, Sha384, Sha512};

use crate::{
    error::{AuthError, AuthErrorKind, ConfigError},
    keys::{Algorithm, KeyType, VerificationKey, prepared::PreparedKey},
};

/// HMAC keys with their inner and outer pads already absorbed, so a request
/// only clones the state instead of re-deriving it from the secret.
#[derive(Clone)]
struct HmacKeys {
    hs256: Option<Hmac<Sha256>>,
    hs384: Option<Hmac<Sha384>>,
    hs512: Option<Hmac<Sha512>>,
}

impl HmacKeys {
    fn new(secret: &[u8], algorithms: &[Algorithm]) -> Self {
        let has = |alg| algorithms.contains(&alg);
        // HMAC accepts keys of any length, so these cannot fail.
        Self {
            hs256: has(Algorithm::HS256)
                .then(|| Hmac::new_from_slice(secret).expect("any key size")),
            hs384: has(Algorithm::HS384)
                .then(|| Hmac::new_from_slice(secret).expect("any key size")),
            hs512: has(Algorithm::HS512)
                .then(|| Hmac::new_from_slice(secret).expect("any key size")),
        }
    }

    /// Verifies in constant time (`verify_slice`). `None` if `alg` is not prepared.
    fn verify(&self, alg: Algorithm, message: &[u8], signature: &[u8]) -> Option<bool> {
        fn check<M: Mac + Clone>(mac: &M, message: &[u8], signature: &[u8]) -> bool {
            let mut mac = mac.clone();
            mac.update(message);
            mac.verify_slice(signature).is_ok()
        }
        match alg {
            Algorithm::HS256 => self.hs256.as_ref().map(|m| check(m, message, signature)),
            Algorithm::HS384 => self.hs384.as_ref().map(|m| check(m, message, signature)),
            Algorithm::HS512 => self.hs512.as_ref().map(|m| check(m, message, signature)),
            _ => None,
        }
    }
}

struct Prepared {
    key: VerificationKey,
    hmac: Option<HmacKeys>,
    /// The public key parsed once, when it could be.
    public: Option<PreparedKey>,
}

/// Keys by `kid`, plus the keys without one.
pub(crate) struct KeySet {
    /// Changes whenever the keys do (a remote set that was refetched with
    /// other keys); a verified-token cache entry is only good for the
    /// generation that verified it. Static keys never change: 0.
    generation: u64,
    keys: Vec<Prepared>,
    by_kid: HashMap<String, usize>,
    /// Keys without a `kid`: candidates for any token whose `kid` matches no key.
    anonymous: Vec<usize>,
}

impl fmt::Debug for KeySet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.keys.iter().map(|k| &k.key))
            .finish()
    }
}

impl KeySet {
    /// Checks every key and prepares it. Kids must be unique.
    pub(crate) fn new(keys: Vec<VerificationKey>) -> Result<Self, ConfigError> {
        let mut by_kid = HashMap::new();
        let mut anonymous = Vec::new();
        let mut prepared = Vec::with_capacity(keys.len());
        for (index, key) in keys.into_iter().enumerate() {
            key.check()?;
            match &key.kid {
                Some(kid) => {
                    if by_kid.insert(kid.clone(), index).is_some() {
                        return Err(ConfigError::new(format!("two keys share the kid {kid:?}")));
                    }
                }
                None => anonymous.push(index),
            }
            let hmac = match key.key_type {
                KeyType::Hmac => {
                    let secret = key
                        .key
                        .try_get_as_bytes()
                        .map_err(|e| ConfigError::with_source("invalid HMAC secret", e))?;
                    Some(HmacKeys::new(secret, &key.algorithms))
                }
                _ => None,
            };
            let public = PreparedKey::new(&key.key, key.key_type, &key.algorithms);
            prepared.push(Prepared { key, hmac, public });
        }
        Ok(Self {
            generation: 0,
            keys: prepared,
            by_kid,
            anonymous,
        })
    }

    /// This set, as generation `generation` of its source.
    #[cfg_attr(not(feature = "jwks"), allow(dead_code))]
    pub(crate) fn with_generation(mut self, generation: u64) -> Self {
        self.generation = generation;
        self
    }

    /// The generation of these keys; see the field.
    pub(crate) fn generation(&self) -> u64 {
        self.generation
    }

    /// The `kid`s of the keys that have one.
    #[cfg_attr(not(feature = "jwks"), allow(dead_code))]
    pub(crate) fn kids(&self) -> Vec<String> {
        self.keys.iter().filter_map(|k| k.key.kid.clone()).collect()
    }

    /// Verifies `signature` over `message` with the key `kid` names (exact
    /// match), or else with the keys that have no `kid`; the key must allow
    /// `alg`. Returns the generation of the keys that verified it.
    pub(crate) fn verify(
        &self,
        kid: Option<&str>,
        alg: Algorithm,
        message: &str,
        signature: &str,
    ) -> Result<u64, AuthError> {
        self.verify_signature(kid, alg, message, signature)
            .map(|()| self.generation)
    }

    fn verify_signature(
        &self,
        kid: Option<&str>,
        alg: Algorithm,
        message: &str,
        signature: &str,
    ) -> Result<(), AuthError> {
        let exact = kid.and_then(|kid| self.by_kid.get(kid));
        let candidates: &[usize] = match exact {
            Some(index) => std::slice::from_ref(index),
            None => &self.anonymous,
        };
        if candidates.is_empty() {
            return Err(AuthError::new(AuthErrorKind::UnknownKey));
        }
        let mut allowed = false;
        for &index in candidates {
            let prepared = &self.keys[index];
            if !prepared.key.algorithms.contains(&alg) {
                continue;
            }
            allowed = true;
            if let Some(verified) = prepared
                .hmac
                .as_ref()
                .map(|hmac| verify_hmac(hmac, alg, message, signature))
            {
                if verified? {
                    return Ok(());
                }
                continue;
            }
            if let Some(verified) = prepared
                .public
                .as_ref()
                .and_then(|public| verify_prepared(public, alg, message, signature).transpose())
            {
                if verified? {
                    return Ok(());
                }
                continue;
            }
            match jwt::crypto::verify(
                signature,
                message.as_bytes(),
                &prepared.key.key,
                alg.to_jwt(),
            ) {
                Ok(true) => return Ok(()),
                Ok(false) => {}
                Err(e) => {
                    // A signature that is not base64url makes the JWS malformed.
                    let kind = if matches!(e.kind(), jwt::errors::ErrorKind::Base64(_)) {
                        AuthErrorKind::Malformed
                    } else {
                        AuthErrorKind::InvalidSignature
                    };
                    return Err(AuthError::new(kind).with_source(e));
                }
            }
        }
        Err(AuthError::new(if allowed {
            AuthErrorKind::InvalidSignature
        } else {
            AuthErrorKind::UnsupportedAlgorithm
        }))
    }
}

/// `None` if `alg` was not prepared for this key.
fn verify_prepared(
    public: &PreparedKey,
    alg: Algorithm,
    message: &str,
    signature: &str,
) -> Result<Option<bool>, AuthError> {
    // The longest signature is RSA-8192's, 1024 bytes (1366 base64url
    // characters); base64 asks for a little room beyond it.
    let mut buffer = [0u8; 1032];
    if signature.len() > 1366 {
        return Ok(Some(false));
    }
    let len = URL_SAFE_NO_PAD
        .decode_slice(signature, &mut buffer)
        .map_err(|e| AuthError::new(AuthErrorKind::Malformed).with_source(e))?;
    Ok(public.verify(alg, message.as_bytes(), &buffer[..len]))
}

fn verify_hmac(
    hmac: &HmacKeys,
    alg: Algorithm,
    message: &str,
    signature: &str,
) -> Result<bool, AuthError> {
    // The longest HMAC output is 64 bytes; a longer signature cannot match,
    // and is refused before decoding into the fixed buffer.
    let mut buffer = [0u8; 64];
    if signature.len() > 86 {
        return Ok(false);
    }
    let len = URL_SAFE_NO_PAD
        .decode_slice(signature, &mut buffer)
        .map_err(|e| AuthError::new(AuthErrorKind::Malformed).with_source(e))?;
    Ok(hmac
        .verify(alg, message.as_bytes(), &buffer[..len])
        .unwrap_or(false))
}
