//! Verification keys: public keys and HMAC secrets, each bound to the
//! algorithms of its type.

use std::fmt;

use jsonwebtoken as jwt;

use super::{Algorithm, KeyType};
use crate::error::ConfigError;

/// A key that verifies token signatures, bound to the algorithms of its type.
///
/// Each constructor allows one algorithm by default (the common one of its
/// type); widen or change it with [`with_algorithms`](Self::with_algorithms).
///
/// ```
/// use tower_jwt_auth::{Algorithm, VerificationKey};
///
/// let key = VerificationKey::hmac(b"a secret of at least thirty-two bytes!")?
///     .with_kid("2026-11")
///     .with_algorithms([Algorithm::HS256]);
/// # Ok::<_, tower_jwt_auth::ConfigError>(())
/// ```
#[derive(Clone)]
pub struct VerificationKey {
    pub(crate) key: jwt::DecodingKey,
    pub(crate) key_type: KeyType,
    pub(crate) algorithms: Vec<Algorithm>,
    pub(crate) kid: Option<String>,
    /// The HMAC secret length, checked against the algorithms when built.
    secret_len: Option<usize>,
}

impl fmt::Debug for VerificationKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print key material: an HMAC secret is a secret.
        f.debug_struct("VerificationKey")
            .field("key_type", &self.key_type)
            .field("algorithms", &self.algorithms)
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

pub(super) fn key_error(what: &'static str) -> impl FnOnce(jwt::errors::Error) -> ConfigError {
    move |e| ConfigError::with_source(what, e)
}

impl VerificationKey {
    fn with_key_type(key: jwt::DecodingKey, key_type: KeyType, algorithm: Algorithm) -> Self {
        Self {
            key,
            key_type,
            algorithms: vec![algorithm],
            kid: None,
            secret_len: None,
        }
    }

    /// An HMAC secret, allowed for `HS256`. It must be at least as long as the
    /// hash: 32 bytes for HS256 (checked here), 48 for HS384 and 64 for HS512
    /// (checked when the verifier is built).
    pub fn hmac(secret: impl AsRef<[u8]>) -> Result<Self, ConfigError> {
        let secret = secret.as_ref();
        check_algorithms(KeyType::Hmac, &[Algorithm::HS256], Some(secret.len()))?;
        let key =
            jwt::DecodingKey::from_secret(secret).map_err(key_error("invalid HMAC secret"))?;
        let mut key = Self::with_key_type(key, KeyType::Hmac, Algorithm::HS256);
        key.secret_len = Some(secret.len());
        Ok(key)
    }

    /// An RSA public key in PEM (PKCS#1 or SPKI), allowed for `RS256`.
    pub fn rsa_pem(pem: impl AsRef<[u8]>) -> Result<Self, ConfigError> {
        let key = jwt::DecodingKey::from_rsa_pem(pem.as_ref())
            .map_err(key_error("invalid RSA public key"))?;
        Ok(Self::with_key_type(key, KeyType::Rsa, Algorithm::RS256))
    }

    /// An RSA public key in PKCS#1 DER, allowed for `RS256`.
    pub fn rsa_der(der: impl AsRef<[u8]>) -> Self {
        Self::with_key_type(
            jwt::DecodingKey::from_rsa_der(der.as_ref()),
            KeyType::Rsa,
            Algorithm::RS256,
        )
    }

    /// An RSA public key from its base64url modulus and exponent (as in a JWK),
    /// allowed for `RS256`.
    pub fn rsa_components(modulus: &str, exponent: &str) -> Result<Self, ConfigError> {
        let key = jwt::DecodingKey::from_rsa_components(modulus, exponent)
            .map_err(key_error("invalid RSA components"))?;
        Ok(Self::with_key_type(key, KeyType::Rsa, Algorithm::RS256))
    }

    /// An EC public key (P-256 or P-384) in PEM, allowed for `ES256`.
    pub fn ec_pem(pem: impl AsRef<[u8]>) -> Result<Self, ConfigError> {
        let key = jwt::DecodingKey::from_ec_pem(pem.as_ref())
            .map_err(key_error("invalid EC public key"))?;
        Ok(Self::with_key_type(key, KeyType::Ec, Algorithm::ES256))
    }

    /// An EC public key as an uncompressed SEC1 point (`0x04 || x || y`, the
    /// bit string inside an SPKI), allowed for `ES256`.
    pub fn ec_point(point: impl AsRef<[u8]>) -> Self {
        Self::with_key_type(
            jwt::DecodingKey::from_ec_der(point.as_ref()),
            KeyType::Ec,
            Algorithm::ES256,
        )
    }

    /// An Ed25519 public key in PEM, allowed for `EdDSA`.
    pub fn ed_pem(pem: impl AsRef<[u8]>) -> Result<Self, ConfigError> {
        let key = jwt::DecodingKey::from_ed_pem(pem.as_ref())
            .map_err(key_error("invalid Ed25519 public key"))?;
        Ok(Self::with_key_type(key, KeyType::Ed, Algorithm::EdDSA))
    }

    /// An Ed25519 public key as its 32 raw bytes, allowed for `EdDSA`.
    pub fn ed_raw(bytes: impl AsRef<[u8]>) -> Self {
        Self::with_key_type(
            jwt::DecodingKey::from_ed_der(bytes.as_ref()),
            KeyType::Ed,
            Algorithm::EdDSA,
        )
    }

    /// The key id: a token naming this `kid` in its header is verified with
    /// this key and no other (exact, case-sensitive match).
    #[must_use]
    pub fn with_kid(mut self, kid: impl Into<String>) -> Self {
        self.kid = Some(kid.into());
        self
    }

    /// The algorithms this key may verify. Each must fit the key's type
    /// (checked when the verifier is built).
    #[must_use]
    pub fn with_algorithms(mut self, algorithms: impl IntoIterator<Item = Algorithm>) -> Self {
        self.algorithms = algorithms.into_iter().collect();
        self
    }

    /// The key id, if one was set.
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    /// The algorithms this key may verify.
    pub fn algorithms(&self) -> &[Algorithm] {
        &self.algorithms
    }

    pub(crate) fn check(&self) -> Result<(), ConfigError> {
        check_algorithms(self.key_type, &self.algorithms, self.secret_len)?;
        if self.key_type == KeyType::Rsa {
            let bits = rsa_modulus_bits(&self.key)?;
            if bits < MIN_RSA_BITS {
                return Err(ConfigError::new(format!(
                    "an RSA key must have at least {MIN_RSA_BITS} bits (RFC 7518 section 3.3); this one has {bits}"
                )));
            }
        }
        Ok(())
    }
}

/// The smallest RSA modulus RFC 7518 section 3.3 allows.
const MIN_RSA_BITS: u64 = 2048;

/// The size of an RSA public key's modulus, from its components or its
/// PKCS#1 DER (`SEQUENCE { INTEGER n, INTEGER e }`).
fn rsa_modulus_bits(key: &jwt::DecodingKey) -> Result<u64, ConfigError> {
    match key.kind() {
        jwt::DecodingKeyKind::RsaModulusExponent { n, .. } => {
            let n = match n.iter().position(|&b| b != 0) {
                Some(first) => &n[first..],
                None => return Ok(0),
            };
            Ok(n.len() as u64 * 8 - u64::from(n[0].leading_zeros()))
        }
        jwt::DecodingKeyKind::SecretOrDer(der) => {
            let invalid = || ConfigError::new("invalid RSA public key: expected PKCS#1 DER");
            let blocks = simple_asn1::from_der(der).map_err(|_| invalid())?;
            match blocks.as_slice() {
                [simple_asn1::ASN1Block::Sequence(_, items)] => match items.as_slice() {
                    [
                        simple_asn1::ASN1Block::Integer(_, n),
                        simple_asn1::ASN1Block::Integer(..),
                    ] => Ok(n.bits()),
                    _ => Err(invalid()),
                },
                _ => Err(invalid()),
            }
        }
    }
}

pub(super) fn check_algorithms(
    key_type: KeyType,
    algorithms: &[Algorithm],
    secret_len: Option<usize>,
) -> Result<(), ConfigError> {
    if algorithms.is_empty() {
        return Err(ConfigError::new("a key must allow at least one algorithm"));
    }
    for alg in algorithms {
        if alg.key_type() != key_type {
            return Err(ConfigError::new(format!(
                "algorithm {alg} does not fit a {key_type:?} key"
            )));
        }
        if let Some(len) = secret_len
            && len < alg.min_hmac_secret_len()
        {
            return Err(ConfigError::new(format!(
                "an HMAC secret for {alg} must be at least {} bytes (RFC 7518 section 3.2)",
                alg.min_hmac_secret_len()
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SigningKey;

    #[test]
    fn keys_are_bound_to_their_family() {
        let key = VerificationKey::hmac([7u8; 32]).unwrap();
        assert!(key.check().is_ok());
        assert!(
            key.clone()
                .with_algorithms([Algorithm::RS256])
                .check()
                .is_err()
        );
        assert!(key.with_algorithms([]).check().is_err());
    }

    #[test]
    fn short_hmac_secrets_are_refused() {
        assert!(VerificationKey::hmac([7u8; 31]).is_err());
        assert!(VerificationKey::hmac([]).is_err());
        assert!(
            VerificationKey::hmac([7u8; 32])
                .unwrap()
                .with_algorithms([Algorithm::HS512])
                .check()
                .is_err()
        );
        assert!(SigningKey::hmac(Algorithm::HS256, [7u8; 16]).is_err());
        assert!(SigningKey::hmac(Algorithm::ES256, [7u8; 32]).is_err());
    }

    #[test]
    fn rsa_keys_under_2048_bits_are_refused() {
        let weak = VerificationKey::rsa_pem(include_bytes!("../../tests/keys/rsa1024_public.pem"))
            .unwrap();
        let error = weak.check().unwrap_err().to_string();
        assert!(error.contains("at least 2048 bits"), "{error}");
        let strong =
            VerificationKey::rsa_pem(include_bytes!("../../tests/keys/rsa_public.pem")).unwrap();
        assert!(strong.check().is_ok());
        // Components: a 1024-bit modulus (leading zero byte ignored).
        use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
        let mut n = vec![0u8; 1];
        n.extend([0xC5u8; 128]);
        let small = VerificationKey::rsa_components(&URL_SAFE_NO_PAD.encode(&n), "AQAB").unwrap();
        assert!(small.check().is_err());
    }

    #[test]
    fn debug_never_prints_secrets() {
        let key = VerificationKey::hmac(b"super-secret-value-that-is-long-enough").unwrap();
        assert!(!format!("{key:?}").contains("super-secret"));
    }
}
