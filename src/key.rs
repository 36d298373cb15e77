//! Keys: what verifies a token and what signs one.
//!
//! Every key is bound to the algorithms of its own type. An RSA public key can
//! never verify an HMAC token (the classic algorithm-confusion attack of RFC
//! 8725 section 2.1), and `none` is not an algorithm this crate knows.

use std::{fmt, str::FromStr};

use jsonwebtoken as jwt;

use crate::error::ConfigError;

/// Installs the process-wide crypto provider of `jsonwebtoken`, if none is.
///
/// With both backend features enabled (as `--all-features` does),
/// `jsonwebtoken` cannot pick a provider by itself and panics on first use;
/// this crate installs one (aws-lc-rs, the faster) whenever a [`Verifier`],
/// a [`TokenIssuer`](crate::TokenIssuer) or a key set is built. Call this
/// first only if your code uses `jsonwebtoken` directly before any of those.
/// It is cheap and idempotent.
///
/// [`Verifier`]: crate::Verifier
pub fn install_crypto_provider() {
    if jwt::crypto::CryptoProvider::try_get_default().is_some() {
        return;
    }
    #[cfg(feature = "aws_lc_rs")]
    let provider = &jwt::crypto::aws_lc::DEFAULT_PROVIDER;
    #[cfg(not(feature = "aws_lc_rs"))]
    let provider = &jwt::crypto::rust_crypto::DEFAULT_PROVIDER;
    // Losing a race to another thread's install is fine.
    let _ = provider.install_default();
}

/// A JWS signature algorithm.
///
/// `none` is deliberately absent: an unsigned token is never accepted.
#[allow(clippy::upper_case_acronyms)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Algorithm {
    /// HMAC with SHA-256.
    HS256,
    /// HMAC with SHA-384.
    HS384,
    /// HMAC with SHA-512.
    HS512,
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    RS256,
    /// RSASSA-PKCS1-v1_5 with SHA-384.
    RS384,
    /// RSASSA-PKCS1-v1_5 with SHA-512.
    RS512,
    /// RSASSA-PSS with SHA-256.
    PS256,
    /// RSASSA-PSS with SHA-384.
    PS384,
    /// RSASSA-PSS with SHA-512.
    PS512,
    /// ECDSA with P-256 and SHA-256.
    ES256,
    /// ECDSA with P-384 and SHA-384.
    ES384,
    /// EdDSA (Ed25519).
    EdDSA,
}

/// The type of a key, which fixes the algorithms it may be used with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Family {
    Hmac,
    Rsa,
    Ec,
    Ed,
}

impl Algorithm {
    /// The algorithm's name as it appears in a JWS header.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::HS256 => "HS256",
            Self::HS384 => "HS384",
            Self::HS512 => "HS512",
            Self::RS256 => "RS256",
            Self::RS384 => "RS384",
            Self::RS512 => "RS512",
            Self::PS256 => "PS256",
            Self::PS384 => "PS384",
            Self::PS512 => "PS512",
            Self::ES256 => "ES256",
            Self::ES384 => "ES384",
            Self::EdDSA => "EdDSA",
        }
    }

    pub(crate) fn family(self) -> Family {
        match self {
            Self::HS256 | Self::HS384 | Self::HS512 => Family::Hmac,
            Self::RS256 | Self::RS384 | Self::RS512 | Self::PS256 | Self::PS384 | Self::PS512 => {
                Family::Rsa
            }
            Self::ES256 | Self::ES384 => Family::Ec,
            Self::EdDSA => Family::Ed,
        }
    }

    pub(crate) fn to_jwt(self) -> jwt::Algorithm {
        match self {
            Self::HS256 => jwt::Algorithm::HS256,
            Self::HS384 => jwt::Algorithm::HS384,
            Self::HS512 => jwt::Algorithm::HS512,
            Self::RS256 => jwt::Algorithm::RS256,
            Self::RS384 => jwt::Algorithm::RS384,
            Self::RS512 => jwt::Algorithm::RS512,
            Self::PS256 => jwt::Algorithm::PS256,
            Self::PS384 => jwt::Algorithm::PS384,
            Self::PS512 => jwt::Algorithm::PS512,
            Self::ES256 => jwt::Algorithm::ES256,
            Self::ES384 => jwt::Algorithm::ES384,
            Self::EdDSA => jwt::Algorithm::EdDSA,
        }
    }

    /// The smallest HMAC secret RFC 7518 section 3.2 allows: the hash size.
    fn min_hmac_secret_len(self) -> usize {
        match self {
            Self::HS384 => 48,
            Self::HS512 => 64,
            _ => 32,
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error of parsing an unknown algorithm name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownAlgorithm(());

impl fmt::Display for UnknownAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("unknown or unsupported JWS algorithm")
    }
}

impl std::error::Error for UnknownAlgorithm {}

impl FromStr for Algorithm {
    type Err = UnknownAlgorithm;

    /// Parses an algorithm name exactly as it appears in a JWS header
    /// (case-sensitive, per RFC 7515). `none` is an error.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "HS256" => Self::HS256,
            "HS384" => Self::HS384,
            "HS512" => Self::HS512,
            "RS256" => Self::RS256,
            "RS384" => Self::RS384,
            "RS512" => Self::RS512,
            "PS256" => Self::PS256,
            "PS384" => Self::PS384,
            "PS512" => Self::PS512,
            "ES256" => Self::ES256,
            "ES384" => Self::ES384,
            "EdDSA" => Self::EdDSA,
            _ => return Err(UnknownAlgorithm(())),
        })
    }
}

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
    pub(crate) family: Family,
    pub(crate) algorithms: Vec<Algorithm>,
    pub(crate) kid: Option<String>,
    /// The HMAC secret length, checked against the algorithms when built.
    secret_len: Option<usize>,
}

impl fmt::Debug for VerificationKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print key material: an HMAC secret is a secret.
        f.debug_struct("VerificationKey")
            .field("family", &self.family)
            .field("algorithms", &self.algorithms)
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

fn key_error(what: &'static str) -> impl FnOnce(jwt::errors::Error) -> ConfigError {
    move |e| ConfigError::with_source(what, e)
}

impl VerificationKey {
    fn with_family(key: jwt::DecodingKey, family: Family, algorithm: Algorithm) -> Self {
        Self {
            key,
            family,
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
        check_algorithms(Family::Hmac, &[Algorithm::HS256], Some(secret.len()))?;
        let key =
            jwt::DecodingKey::from_secret(secret).map_err(key_error("invalid HMAC secret"))?;
        let mut key = Self::with_family(key, Family::Hmac, Algorithm::HS256);
        key.secret_len = Some(secret.len());
        Ok(key)
    }

    /// An RSA public key in PEM (PKCS#1 or SPKI), allowed for `RS256`.
    pub fn rsa_pem(pem: impl AsRef<[u8]>) -> Result<Self, ConfigError> {
        let key = jwt::DecodingKey::from_rsa_pem(pem.as_ref())
            .map_err(key_error("invalid RSA public key"))?;
        Ok(Self::with_family(key, Family::Rsa, Algorithm::RS256))
    }

    /// An RSA public key in PKCS#1 DER, allowed for `RS256`.
    pub fn rsa_der(der: impl AsRef<[u8]>) -> Self {
        Self::with_family(
            jwt::DecodingKey::from_rsa_der(der.as_ref()),
            Family::Rsa,
            Algorithm::RS256,
        )
    }

    /// An RSA public key from its base64url modulus and exponent (as in a JWK),
    /// allowed for `RS256`.
    pub fn rsa_components(modulus: &str, exponent: &str) -> Result<Self, ConfigError> {
        let key = jwt::DecodingKey::from_rsa_components(modulus, exponent)
            .map_err(key_error("invalid RSA components"))?;
        Ok(Self::with_family(key, Family::Rsa, Algorithm::RS256))
    }

    /// An EC public key (P-256 or P-384) in PEM, allowed for `ES256`.
    pub fn ec_pem(pem: impl AsRef<[u8]>) -> Result<Self, ConfigError> {
        let key = jwt::DecodingKey::from_ec_pem(pem.as_ref())
            .map_err(key_error("invalid EC public key"))?;
        Ok(Self::with_family(key, Family::Ec, Algorithm::ES256))
    }

    /// An EC public key as an uncompressed SEC1 point (the DER content of an
    /// SPKI), allowed for `ES256`.
    pub fn ec_der(der: impl AsRef<[u8]>) -> Self {
        Self::with_family(
            jwt::DecodingKey::from_ec_der(der.as_ref()),
            Family::Ec,
            Algorithm::ES256,
        )
    }

    /// An Ed25519 public key in PEM, allowed for `EdDSA`.
    pub fn ed_pem(pem: impl AsRef<[u8]>) -> Result<Self, ConfigError> {
        let key = jwt::DecodingKey::from_ed_pem(pem.as_ref())
            .map_err(key_error("invalid Ed25519 public key"))?;
        Ok(Self::with_family(key, Family::Ed, Algorithm::EdDSA))
    }

    /// An Ed25519 public key as its 32 raw bytes, allowed for `EdDSA`.
    pub fn ed_der(der: impl AsRef<[u8]>) -> Self {
        Self::with_family(
            jwt::DecodingKey::from_ed_der(der.as_ref()),
            Family::Ed,
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
        check_algorithms(self.family, &self.algorithms, self.secret_len)?;
        if self.family == Family::Rsa {
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

fn check_algorithms(
    family: Family,
    algorithms: &[Algorithm],
    secret_len: Option<usize>,
) -> Result<(), ConfigError> {
    if algorithms.is_empty() {
        return Err(ConfigError::new("a key must allow at least one algorithm"));
    }
    for alg in algorithms {
        if alg.family() != family {
            return Err(ConfigError::new(format!(
                "algorithm {alg} does not fit a {family:?} key"
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
        family: Family,
        algorithm: Algorithm,
        secret_len: Option<usize>,
    ) -> Result<Self, ConfigError> {
        check_algorithms(family, &[algorithm], secret_len)?;
        Ok(Self {
            key,
            algorithm,
            kid: None,
        })
    }

    /// An HMAC secret for `HS256`, `HS384` or `HS512`, at least as long as the hash.
    pub fn hmac(algorithm: Algorithm, secret: impl AsRef<[u8]>) -> Result<Self, ConfigError> {
        let secret = secret.as_ref();
        check_algorithms(Family::Hmac, &[algorithm], Some(secret.len()))?;
        let key =
            jwt::EncodingKey::from_secret(secret).map_err(key_error("invalid HMAC secret"))?;
        Self::checked(key, Family::Hmac, algorithm, Some(secret.len()))
    }

    /// An RSA private key in PEM (PKCS#1 or PKCS#8), for `RS*` or `PS*`.
    pub fn rsa_pem(algorithm: Algorithm, pem: impl AsRef<[u8]>) -> Result<Self, ConfigError> {
        let key = jwt::EncodingKey::from_rsa_pem(pem.as_ref())
            .map_err(key_error("invalid RSA private key"))?;
        Self::checked(key, Family::Rsa, algorithm, None)
    }

    /// An EC private key in PKCS#8 PEM, for `ES256` or `ES384`.
    pub fn ec_pem(algorithm: Algorithm, pem: impl AsRef<[u8]>) -> Result<Self, ConfigError> {
        let key = jwt::EncodingKey::from_ec_pem(pem.as_ref())
            .map_err(key_error("invalid EC private key"))?;
        Self::checked(key, Family::Ec, algorithm, None)
    }

    /// An Ed25519 private key in PKCS#8 PEM, for `EdDSA`.
    pub fn ed_pem(pem: impl AsRef<[u8]>) -> Result<Self, ConfigError> {
        let key = jwt::EncodingKey::from_ed_pem(pem.as_ref())
            .map_err(key_error("invalid Ed25519 private key"))?;
        Self::checked(key, Family::Ed, Algorithm::EdDSA, None)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn none_is_not_an_algorithm() {
        assert!("none".parse::<Algorithm>().is_err());
        assert!("hs256".parse::<Algorithm>().is_err());
        assert_eq!("EdDSA".parse::<Algorithm>(), Ok(Algorithm::EdDSA));
    }

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
        let weak =
            VerificationKey::rsa_pem(include_bytes!("../tests/keys/rsa1024_public.pem")).unwrap();
        let error = weak.check().unwrap_err().to_string();
        assert!(error.contains("at least 2048 bits"), "{error}");
        let strong =
            VerificationKey::rsa_pem(include_bytes!("../tests/keys/rsa_public.pem")).unwrap();
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
