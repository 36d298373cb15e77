//! Signing keys: what [`TokenIssuer`](crate::TokenIssuer) signs with.

use std::fmt;

use jsonwebtoken as jwt;

use super::{
    Algorithm, KeyType,
    verification::{check_algorithms, key_error},
};
use crate::error::ConfigError;

/// A key that signs tokens, with the one algorithm it signs with.
///
/// ```
/// use tower_jwt_auth::{Algorithm, SigningKey};
///
/// let key = SigningKey::hmac(Algorithm::HS256, b"a secret of at least thirty-two bytes!")?
///     .with_kid("2026-11");
/// # Ok::<_, tower_jwt_auth::ConfigError>(())
/// ```
#[derive(Clone)]
pub struct SigningKey {
    pub(crate) key: jwt::EncodingKey,
    pub(crate) algorithm: Algorithm,
    pub(crate) kid: Option<String>,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("algorithm", &self.algorithm)
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    fn checked(
        key: jwt::EncodingKey,
        key_type: KeyType,
        algorithm: Algorithm,
        secret_len: Option<usize>,
    ) -> Result<Self, ConfigError> {
        check_algorithms(key_type, &[algorithm], secret_len)?;
        Ok(Self {
            key,
            algorithm,
            kid: None,
        })
    }

    /// An HMAC secret for `HS256`, `HS384` or `HS512`, at least as long as the hash.
    pub fn hmac(algorithm: Algorithm, secret: impl AsRef<[u8]>) -> Result<Self, ConfigError> {
        let secret = secret.as_ref();
        check_algorithms(KeyType::Hmac, &[algorithm], Some(secret.len()))?;
        let key =
            jwt::EncodingKey::from_secret(secret).map_err(key_error("invalid HMAC secret"))?;
        Self::checked(key, KeyType::Hmac, algorithm, Some(secret.len()))
    }

    /// An RSA private key in PEM (PKCS#1 or PKCS#8), for `RS*` or `PS*`.
    pub fn rsa_pem(algorithm: Algorithm, pem: impl AsRef<[u8]>) -> Result<Self, ConfigError> {
        let key = jwt::EncodingKey::from_rsa_pem(pem.as_ref())
            .map_err(key_error("invalid RSA private key"))?;
        Self::checked(key, KeyType::Rsa, algorithm, None)
    }

    /// An EC private key in PKCS#8 PEM, for `ES256` or `ES384`.
    pub fn ec_pem(algorithm: Algorithm, pem: impl AsRef<[u8]>) -> Result<Self, ConfigError> {
        let key = jwt::EncodingKey::from_ec_pem(pem.as_ref())
            .map_err(key_error("invalid EC private key"))?;
        Self::checked(key, KeyType::Ec, algorithm, None)
    }

    /// An Ed25519 private key in PKCS#8 PEM, for `EdDSA`.
    pub fn ed_pem(pem: impl AsRef<[u8]>) -> Result<Self, ConfigError> {
        let key = jwt::EncodingKey::from_ed_pem(pem.as_ref())
            .map_err(key_error("invalid Ed25519 private key"))?;
        Self::checked(key, KeyType::Ed, Algorithm::EdDSA, None)
    }

    /// The key id written into the header of every token signed with this key.
    #[must_use]
    pub fn with_kid(mut self, kid: impl Into<String>) -> Self {
        self.kid = Some(kid.into());
        self
    }

    /// The algorithm this key signs with.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }
}
